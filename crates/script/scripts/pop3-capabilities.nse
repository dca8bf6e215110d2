-- pop3-capabilities: reports a POP3 server's capabilities (CAPA).
-- Written for RustMap from RFC 2449 (POP3 extension mechanism) and RFC 1939; not derived from
-- nmap's pop3-capabilities script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Connects to a POP3 server, reads its greeting and sends CAPA, then reports each capability
the server lists (TOP, USER, SASL ..., STLS, UIDL, IMPLEMENTATION ...) and says QUIT. A server
that refuses CAPA reports nothing. TLS is used on port 995 (pop3s) and wherever service
detection saw TLS.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({110, 995}, {"pop3", "pop3s"})

local MAX_LINES = 64
local MAX_LINE = 256

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_LINE then s = s:sub(1, MAX_LINE) .. "..." end
  return s
end

action = function(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(10000)
  local tls = port.number == 995 or port.service == "pop3s" or (port.version and port.version.service_tunnel == "ssl")
  if not socket:connect(host, port, tls and "ssl" or "tcp") then return nil end
  local ok, greeting = socket:receive_buf("\r?\n", false)
  if not ok or not greeting:match("^%+OK") then socket:close() return nil end
  socket:send("CAPA\r\n")
  local status
  ok, status = socket:receive_buf("\r?\n", false)
  if not ok or not status:match("^%+OK") then
    socket:send("QUIT\r\n")
    socket:close()
    return nil
  end
  local caps = {}
  for _ = 1, MAX_LINES do
    local line
    ok, line = socket:receive_buf("\r?\n", false)
    if not ok or line == "." then break end
    if line ~= "" then caps[#caps + 1] = printable(line) end
  end
  socket:send("QUIT\r\n")
  socket:close()
  if #caps == 0 then return nil end
  local out = stdnse.output_table()
  out.capabilities = caps
  return out, table.concat(caps, " ")
end
