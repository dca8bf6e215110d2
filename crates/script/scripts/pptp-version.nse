-- pptp-version: reports what a PPTP server says of itself in its control-connection reply.
-- Written for RustMap from RFC 2637 (PPTP, section 2.1 and 2.2: Start-Control-Connection
-- Request and Reply); not derived from nmap's pptp-version script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends a PPTP Start-Control-Connection-Request and reports the server's reply: protocol
version, result, firmware revision, host name and vendor string, framing and bearer
capabilities and maximum channels. No call is placed: the control connection is closed
right after the reply.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({1723}, {"pptp"})

local MAGIC = 0x1A2B3C4D
local RESULTS = { [1] = "success", [2] = "general error", [3] = "command channel already exists",
  [4] = "not authorized", [5] = "protocol version not supported" }

local function cstr(s)
  s = s:match("^[^%z]*"):gsub("[^\32-\126]", "?")
  return s
end

action = function(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(8000)
  if not socket:connect(host, port, "tcp") then return nil end
  -- length, message type 1 (control), magic, SCCRQ (1), reserved, version 1.0, reserved,
  -- framing (async), bearer (digital), max channels, firmware, host name, vendor
  local request = string.pack(">I2I2I4I2I2I2I2I4I4I2I2", 156, 1, MAGIC, 1, 0, 0x0100, 0, 1, 1, 0, 0)
    .. ("rustmap" .. string.rep("\0", 57)) .. ("RustMap" .. string.rep("\0", 57))
  socket:send(request)
  local ok, reply = socket:receive_bytes(156)
  socket:close()
  if not ok or #reply < 156 then return nil end
  local len, mtype, magic, ctype, _, version, result, err, framing, bearer, channels, firmware =
    string.unpack(">I2I2I4I2I2I2BBI4I4I2I2", reply)
  if len ~= 156 or mtype ~= 1 or magic ~= MAGIC or ctype ~= 2 then return nil end
  local out = stdnse.output_table()
  out.protocol = string.format("%d.%d", version >> 8, version & 0xff)
  out.result = RESULTS[result] or ("code " .. result)
  if result ~= 1 and err ~= 0 then out.error = err end
  out.firmware = firmware
  out.hostname = cstr(reply:sub(29, 92))
  out.vendor = cstr(reply:sub(93, 156))
  out.framing = framing
  out.bearer = bearer
  out.max_channels = channels
  local text = string.format("Protocol %s, %s; firmware %d, hostname %q, vendor %q", out.protocol, out.result,
    firmware, out.hostname, out.vendor)
  return out, text
end
