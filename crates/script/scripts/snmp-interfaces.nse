-- snmp-interfaces: lists an SNMP agent's network interfaces (IF-MIB ifTable, IP-MIB addresses).
-- Written for RustMap from RFC 2863 (IF-MIB), RFC 4293 (IP-MIB ipAddrTable) and RFC 3416; not
-- derived from nmap's snmp-interfaces script.
local nmap = require "nmap"
local shortport = require "shortport"
local snmp = require "snmp"
local stdnse = require "stdnse"

description = [[
Walks an SNMP agent's interface table (IF-MIB ifTable: description, type, speed, physical
address, operational status, octets in and out; ifHighSpeed where ifSpeed saturates) and its IPv4 address table (ipAddrTable:
address and netmask per interface) with SNMPv2c get-next requests, and lists one entry per
interface. Walks are bounded (at most 1000 answers each).

Script arguments:
  snmp-interfaces.community  the community string (default: snmpcommunity, then "public")
  snmp-interfaces.timeout    milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({161}, {"snmp"}, "udp", {"open", "open|filtered"})

local IF_ENTRY = "1.3.6.1.2.1.2.2.1"
local IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"
local COLUMNS = { descr = 2, type = 3, speed = 5, phys = 6, oper = 8, in_octets = 10, out_octets = 16 }
local IP_ADDR, IP_IFINDEX, IP_MASK = "1.3.6.1.2.1.4.20.1.1", "1.3.6.1.2.1.4.20.1.2", "1.3.6.1.2.1.4.20.1.3"

-- IANAifType values seen on hosts and routers.
local TYPES = { [1] = "other", [6] = "ethernetCsmacd", [23] = "ppp", [24] = "softwareLoopback",
  [53] = "propVirtual", [71] = "ieee80211", [131] = "tunnel", [135] = "l2vlan", [161] = "ieee8023adLag",
  [209] = "bridge" }
local STATUS = { [1] = "up", [2] = "down", [3] = "testing", [4] = "unknown", [5] = "dormant",
  [6] = "notPresent", [7] = "lowerLayerDown" }

local function speed(bps)
  if bps >= 1000000000 and bps % 1000000000 == 0 then return (bps // 1000000000) .. " Gbps" end
  if bps >= 1000000 then return (bps // 1000000) .. " Mbps" end
  if bps >= 1000 then return (bps // 1000) .. " Kbps" end
  return bps .. " bps"
end

local function bytes(n)
  local units = { "Kb", "Mb", "Gb", "Tb" }
  if n < 1024 then return n .. " bytes" end
  local v, u = n / 1024, 1
  while v >= 1024 and u < #units do v, u = v / 1024, u + 1 end
  return string.format("%.2f %s", v, units[u])
end

--- The last component of an OID (a table index) and the rest after a prefix.
local function suffix(oid, base) return oid:sub(#base + 2) end

action = function(host, port)
  local community = stdnse.get_script_args(SCRIPT_NAME .. ".community")
    or stdnse.get_script_args("snmpcommunity") or "public"
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local session = snmp.open(host, port, { community = community, timeout = timeout, retries = 1 })
  if not session then return nil end
  local ifaces, order = {}, {}
  for name, column in pairs(COLUMNS) do
    local base = IF_ENTRY .. "." .. column
    for _, vb in ipairs(session:walk(base) or {}) do
      local index = suffix(vb.oid, base)
      if not ifaces[index] then
        ifaces[index] = {}
        order[#order + 1] = index
      end
      ifaces[index][name] = vb.value
    end
  end
  -- ifSpeed saturates at 2^32 - 1 bit/s: IF-MIB's ifHighSpeed (in Mbit/s) has the real value.
  for _, index in ipairs(order) do
    if ifaces[index].speed == 4294967295 then
      local vbs = session:get({ IF_HIGH_SPEED .. "." .. index })
      local mbps = vbs and vbs[1] and vbs[1].value
      if type(mbps) == "number" and mbps > 0 then ifaces[index].speed = mbps * 1000000 end
    end
  end
  local addrs = {}
  local masks = {}
  for _, vb in ipairs(session:walk(IP_MASK) or {}) do masks[suffix(vb.oid, IP_MASK)] = vb.value end
  for _, vb in ipairs(session:walk(IP_IFINDEX) or {}) do
    local addr = suffix(vb.oid, IP_IFINDEX)
    local index = tostring(vb.value)
    addrs[index] = addrs[index] or {}
    table.insert(addrs[index], { addr = addr, mask = masks[addr] })
  end
  session:close()
  if #order == 0 then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  table.sort(order, function(a, b) return (tonumber(a) or 0) < (tonumber(b) or 0) end)
  local out, lines = stdnse.output_table(), {}
  for _, index in ipairs(order) do
    local i = ifaces[index]
    local name = type(i.descr) == "string" and i.descr:gsub("[^\32-\126]", "?"):sub(1, 128) or ("interface " .. index)
    local entry = stdnse.output_table()
    local text = { "  " .. name }
    for _, a in ipairs(addrs[index] or {}) do
      entry["IP address"] = a.addr
      text[#text + 1] = "    IP address: " .. a.addr .. (a.mask and ("  Netmask: " .. a.mask) or "")
      if a.mask then entry.Netmask = a.mask end
    end
    if type(i.phys) == "string" and #i.phys == 6 then
      entry["MAC address"] = string.format("%02x:%02x:%02x:%02x:%02x:%02x", i.phys:byte(1, 6))
      text[#text + 1] = "    MAC address: " .. entry["MAC address"]
    end
    if type(i.type) == "number" then
      entry.Type = TYPES[i.type] or tostring(i.type)
      local line = "    Type: " .. entry.Type
      if type(i.speed) == "number" then
        entry.Speed = speed(i.speed)
        line = line .. "  Speed: " .. entry.Speed
      end
      text[#text + 1] = line
    end
    if type(i.oper) == "number" then
      entry.Status = STATUS[i.oper] or tostring(i.oper)
      text[#text + 1] = "    Status: " .. entry.Status
    end
    if type(i.in_octets) == "number" and type(i.out_octets) == "number" then
      entry.Traffic = "Received " .. bytes(i.in_octets) .. ", Sent " .. bytes(i.out_octets)
      text[#text + 1] = "    Traffic stats: " .. bytes(i.in_octets) .. " received, " .. bytes(i.out_octets) .. " sent"
    end
    out[name] = entry
    lines[#lines + 1] = table.concat(text, "\n")
  end
  return out, "\n" .. table.concat(lines, "\n")
end
