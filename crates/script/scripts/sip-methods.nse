-- sip-methods: reports the methods a SIP server allows.
-- Written for RustMap from RFC 3261 (sections 11 and 20.5: OPTIONS and Allow); not derived
-- from nmap's sip-methods script.
local nmap = require "nmap"
local shortport = require "shortport"
local sip = require "sip"
local stdnse = require "stdnse"

description = [[
Sends a SIP OPTIONS request (UDP or TCP, as the port is) and reports the response's status,
the methods in its Allow header and the Server or User-Agent it names.

Script arguments:
  sip-methods.timeout  milliseconds to wait for the answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "safe", "discovery"}

portrule = shortport.port_or_service({5060, 5061}, {"sip", "sip-tls"}, {"tcp", "udp"}, {"open", "open|filtered"})

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local r = sip.exchange(host, port, "OPTIONS", { timeout = timeout })
  if not r then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  local out = stdnse.output_table()
  out.status = r.status .. " " .. r.reason
  if r.headers.allow then
    local methods = {}
    for m in r.headers.allow:gmatch("[%w_%-]+") do methods[#methods + 1] = m end
    out.methods = table.concat(methods, ", ")
  end
  out.server = r.headers.server or r.headers["user-agent"]
  local text = out.methods and ("Methods: " .. out.methods) or ("no Allow header (" .. out.status .. ")")
  if out.server then text = text .. "\nServer: " .. out.server end
  return out, text
end
