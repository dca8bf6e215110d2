-- snmp-info: reports an SNMPv3 agent's engine id, boots and time, learnt without credentials.
-- Written for RustMap from RFC 3411 (snmpEngineID), RFC 3412 and RFC 3414 (discovery); not
-- derived from nmap's snmp-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local snmp = require "snmp"
local stdnse = require "stdnse"

description = [[
Runs SNMPv3 engine discovery (RFC 3414 section 4): an unauthenticated request with an empty
engine id, which an SNMPv3 agent answers with a Report carrying its snmpEngineID,
snmpEngineBoots and snmpEngineTime. Reports the engine id's enterprise (IANA private
enterprise number), its format (IPv4, IPv6, MAC, text, octets or enterprise-specific) and
data, how many times the engine has booted and how long ago it last did. No community string
or user name is needed or tried.

Script arguments:
  snmp-info.timeout  milliseconds to wait for the answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "safe", "version"}

portrule = shortport.port_or_service({161}, {"snmp"}, "udp", {"open", "open|filtered"})

local function duration(s)
  local d, h, m = s // 86400, (s % 86400) // 3600, (s % 3600) // 60
  s = s % 60
  if d > 0 then return string.format("%dd%02dh%02dm%02ds", d, h, m, s) end
  if h > 0 then return string.format("%dh%02dm%02ds", h, m, s) end
  if m > 0 then return string.format("%dm%02ds", m, s) end
  return string.format("%ds", s)
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local found = snmp.engine_discovery(host, port, { timeout = timeout, retries = 1 })
  if not found or #found.engine_id == 0 then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  local id = snmp.engine_id(found.engine_id)
  local out = stdnse.output_table()
  if id.enterprise then
    out.enterprise = id.enterprise_name or tostring(id.enterprise)
  end
  out.engineIDFormat = id.format_name
  out.engineIDData = id.data
  if found.boots then out.snmpEngineBoots = found.boots end
  if found.time then out.snmpEngineTime = duration(found.time) end
  return out
end
