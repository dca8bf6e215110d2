-- smtp-commands: reports the extensions an SMTP server announces in its EHLO reply.
-- Written for RustMap from RFC 5321 (sections 4.1.1.1 and 4.2); not derived from nmap's
-- smtp-commands script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Connects to an SMTP server, reads its greeting, sends EHLO (HELO if EHLO is refused) and
reports the reply: the server's greeting line and the service extensions it announces
(PIPELINING, SIZE, STARTTLS, AUTH ...), then says QUIT. Nothing is sent beyond that. TLS is
used on port 465 (smtps) and wherever service detection saw TLS.

Script arguments: smtp-commands.domain (the name given in EHLO, default "rustmap.invalid").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({25, 465, 587}, {"smtp", "smtps", "submission"})

-- A reply of more lines, or longer ones, than these is cut.
local MAX_LINES = 64
local MAX_LINE = 512

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_LINE then s = s:sub(1, MAX_LINE) .. "..." end
  return s
end

--- Reads one SMTP reply: its code and its text lines, or nil.
local function read_reply(socket)
  local code, lines = nil, {}
  for _ = 1, MAX_LINES do
    local ok, line = socket:receive_buf("\r?\n", false)
    if not ok then return nil end
    local c, sep, text = line:match("^(%d%d%d)([ -]?)(.*)$")
    if not c then return nil end
    code = tonumber(c)
    lines[#lines + 1] = printable(text)
    if sep ~= "-" then return code, lines end
  end
  return code, lines
end

action = function(host, port)
  local domain = stdnse.get_script_args(SCRIPT_NAME .. ".domain") or "rustmap.invalid"
  local socket = nmap.new_socket()
  socket:set_timeout(10000)
  local tls = port.number == 465 or port.service == "smtps" or (port.version and port.version.service_tunnel == "ssl")
  if not socket:connect(host, port, tls and "ssl" or "tcp") then return nil end
  local code = read_reply(socket)
  if code ~= 220 then socket:close() return nil end
  socket:send("EHLO " .. domain .. "\r\n")
  local lines
  code, lines = read_reply(socket)
  if code ~= 250 then
    socket:send("HELO " .. domain .. "\r\n")
    code, lines = read_reply(socket)
  end
  socket:send("QUIT\r\n")
  socket:close()
  if code ~= 250 or not lines then return nil end
  local out = stdnse.output_table()
  out.greeting = lines[1]
  local extensions = {}
  for i = 2, #lines do extensions[#extensions + 1] = lines[i] end
  out.extensions = extensions
  return out, table.concat(lines, ", ")
end
