-- vnc-info: reports a VNC server's protocol version and the security types it offers.
-- Written for RustMap from RFC 6143 (The Remote Framebuffer Protocol, sections 7.1.1 and
-- 7.1.2) and the IANA RFB security types registry; not derived from nmap's vnc-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Reads the server's ProtocolVersion ("RFB 003.008"), answers with the same version (3.3, 3.7 or
3.8; 3.8 for anything newer) and reports the security types the server offers (RFB 3.7 and
later: a list; 3.3: the one the server chose), named from the IANA registry. A server that
offers "None" lets anyone see and control its screen: the script says so. No authentication is
attempted.

Script arguments:
  vnc-info.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({5900, 5901, 5902, 5903}, {"vnc"})

local TYPES = { [0] = "Invalid", [1] = "None", [2] = "VNC Authentication", [5] = "RA2", [6] = "RA2ne",
  [16] = "Tight", [17] = "Ultra", [18] = "TLS", [19] = "VeNCrypt", [20] = "GTK-VNC SASL",
  [21] = "MD5 hash authentication", [22] = "Colin Dean xvp", [30] = "Apple Remote Desktop",
  [113] = "MSLogon II", [129] = "Unix Logon" }

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "tcp") then return nil end
  local ok, hello = socket:receive_bytes(12)
  local major, minor
  if ok then major, minor = hello:match("^RFB (%d%d%d)%.(%d%d%d)\n") end
  if not major then
    socket:close()
    return nil
  end
  major, minor = tonumber(major), tonumber(minor)
  -- The versions RFC 6143 defines; anything newer is answered with 3.8.
  local reply = (major == 3 and (minor == 3 or minor == 7)) and minor or 8
  socket:send(string.format("RFB 003.%03d\n", reply))
  local types = {}
  local rok, data = socket:receive_bytes(reply == 3 and 4 or 1)
  if rok and reply == 3 and #data >= 4 then
    types[1] = string.unpack(">I4", data)
  elseif rok and #data >= 1 then
    local n = data:byte(1)
    while #data < 1 + n do
      local mok, more = socket:receive()
      if not mok then break end
      data = data .. more
    end
    for i = 2, math.min(1 + n, #data) do types[#types + 1] = data:byte(i) end
  end
  socket:close()
  local out = stdnse.output_table()
  out["Protocol version"] = string.format("%d.%d", major, minor)
  local list = {}
  local open = false
  for _, t in ipairs(types) do
    list[#list + 1] = (TYPES[t] or "Unknown") .. " (" .. t .. ")"
    if t == 1 then open = true end
  end
  if #list > 0 then out["Security types"] = list end
  if #types == 1 and types[1] == 0 then out["Security types"] = { "none offered: the server refused the connection" } end
  if open then out.WARNING = "the server does not require authentication" end
  return out
end
