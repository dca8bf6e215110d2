-- snmp-sysdescr: reports an SNMP agent's system description and uptime.
-- Written for RustMap from RFC 3418 (SNMPv2-MIB: sysDescr, sysUpTime) and RFC 3416; not
-- derived from nmap's snmp-sysdescr script.
local nmap = require "nmap"
local shortport = require "shortport"
local snmp = require "snmp"
local stdnse = require "stdnse"

description = [[
Asks an SNMP agent (UDP) for sysDescr.0 and sysUpTime.0 with an SNMPv2c get (SNMPv1 when
v2c goes unanswered) and reports the description and the uptime.

Script arguments:
  snmp-sysdescr.community  the community string (default: snmpcommunity, then "public")
  snmp-sysdescr.timeout    milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({161}, {"snmp"}, "udp", {"open", "open|filtered"})

local SYS_DESCR, SYS_UPTIME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0"

--- Timeticks (hundredths of a second) as NSE prints durations: 1d02h03m04.05s.
local function uptime(ticks)
  local cs = ticks % 100
  local s = ticks // 100
  local d, h, m = s // 86400, (s % 86400) // 3600, (s % 3600) // 60
  s = s % 60
  local out = ""
  if d > 0 then out = out .. d .. "d" end
  if d > 0 or h > 0 then out = out .. string.format(out == "" and "%d" or "%02d", h) .. "h" end
  if out ~= "" or m > 0 then out = out .. string.format(out == "" and "%d" or "%02d", m) .. "m" end
  return out .. string.format(out == "" and "%d.%02ds" or "%02d.%02ds", s, cs)
end

action = function(host, port)
  local community = stdnse.get_script_args(SCRIPT_NAME .. ".community")
    or stdnse.get_script_args("snmpcommunity") or "public"
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local vbs
  for _, version in ipairs({ 1, 0 }) do
    local session = snmp.open(host, port, { community = community, version = version, timeout = timeout, retries = 1 })
    if not session then return nil end
    vbs = session:get({ SYS_DESCR, SYS_UPTIME })
    session:close()
    if vbs then break end
  end
  if not vbs then return nil end
  local descr, ticks
  for _, vb in ipairs(vbs) do
    if vb.oid == SYS_DESCR and type(vb.value) == "string" then descr = vb.value end
    if vb.oid == SYS_UPTIME and type(vb.value) == "number" then ticks = vb.value end
  end
  if not descr then return nil end
  -- An answer proves the port open (a UDP scan alone may have left it open|filtered).
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  descr = descr:gsub("[^\32-\126\n]", "?"):sub(1, 1024)
  local out = stdnse.output_table()
  out.description = descr
  local text = descr
  if ticks then
    out.uptime = uptime(ticks)
    out.timeticks = ticks
    text = text .. "\n  System uptime: " .. out.uptime .. " (" .. ticks .. " timeticks)"
  end
  return out, text
end
