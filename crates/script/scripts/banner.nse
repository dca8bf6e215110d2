-- banner: connects to an open TCP port and reports what the service says first.
-- Written for RustMap against the NSE API; not derived from nmap's banner script.
local nmap = require "nmap"
local stdnse = require "stdnse"

description = [[
Connects to an open TCP port and prints the first text the service sends, with
non-printable bytes escaped. Waits briefly; ports that wait for the client stay quiet.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = function(host, port)
  return port.protocol == "tcp" and port.state == "open"
end

local function printable(s)
  return (s:gsub("[^\32-\126\t]", function(c) return string.format("\\x%02X", c:byte()) end))
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  local ok, err = socket:connect(host, port)
  if not ok then
    stdnse.debug1("connect failed: %s", tostring(err))
    return nil
  end
  local status, data = socket:receive()
  socket:close()
  if not status or data == "" then return nil end
  data = data:gsub("[\r\n]+$", "")
  local lines = stdnse.strsplit("\r?\n", data)
  for i, line in ipairs(lines) do lines[i] = printable(line) end
  return table.concat(lines, "\n")
end
