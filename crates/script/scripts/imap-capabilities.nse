-- imap-capabilities: reports an IMAP server's capabilities (CAPABILITY).
-- Written for RustMap from RFC 9051 / RFC 3501 (sections 6.1.1 and 7.2.1); not derived from
-- nmap's imap-capabilities script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Connects to an IMAP server, reads its greeting and sends CAPABILITY, then reports each
capability of the untagged CAPABILITY response (IMAP4rev1, STARTTLS, AUTH=..., IDLE ...) and
logs out. TLS is used on port 993 (imaps) and wherever service detection saw TLS.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({143, 993}, {"imap", "imaps"})

local MAX_LINES = 64
local MAX_CAPS = 128

action = function(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(10000)
  local tls = port.number == 993 or port.service == "imaps" or (port.version and port.version.service_tunnel == "ssl")
  if not socket:connect(host, port, tls and "ssl" or "tcp") then return nil end
  local ok, greeting = socket:receive_buf("\r?\n", false)
  if not ok or not greeting:match("^%* OK") then socket:close() return nil end
  socket:send("rm1 CAPABILITY\r\n")
  local caps, seen = {}, {}
  for _ = 1, MAX_LINES do
    local line
    ok, line = socket:receive_buf("\r?\n", false)
    if not ok or line:match("^rm1 ") then break end
    local list = line:match("^%* [Cc][Aa][Pp][Aa][Bb][Ii][Ll][Ii][Tt][Yy] (.*)$")
    if list then
      for cap in list:gmatch("[\33-\126]+") do
        if #caps < MAX_CAPS and #cap <= 64 and not seen[cap] then
          seen[cap] = true
          caps[#caps + 1] = cap
        end
      end
    end
  end
  socket:send("rm2 LOGOUT\r\n")
  socket:close()
  if #caps == 0 then return nil end
  local out = stdnse.output_table()
  out.capabilities = caps
  return out, table.concat(caps, " ")
end
