-- nbstat: reports a host's NetBIOS names, workgroup and adapter address (NBSTAT over UDP 137).
-- Written for RustMap from RFC 1002 (sections 4.2.17 and 4.2.18: NODE STATUS REQUEST and
-- RESPONSE) and the first-level name encoding of RFC 1001 section 14.1; not derived from nmap's
-- nbstat script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends a NetBIOS NODE STATUS request for the name "*" to UDP port 137 and reports the
computer's NetBIOS name (the unique name with suffix 0x00), the logged-in user where the
node lists one (suffix 0x03 other than the computer name), the workgroup or domain (the group
name with suffix 0x00) and the adapter's MAC address (all zeros, as Samba sends, shows as
<unknown>). At verbosity 1 or more every name is listed with its suffix and flags.

Script arguments:
  nbstat.timeout  milliseconds to wait for the answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

-- As where NetBIOS may answer: 137/udp not closed, or SMB (139, 445) open.
hostrule = function(host)
  local udp = nmap.get_port_state(host, { number = 137, protocol = "udp" })
  if udp and (udp.state == "open" or udp.state == "open|filtered") then return true end
  for _, n in ipairs({ 139, 445 }) do
    local tcp = nmap.get_port_state(host, { number = n, protocol = "tcp" })
    if tcp and tcp.state == "open" then return true end
  end
  return false
end

local MAX_NAMES = 64

--- RFC 1001's first-level encoding of a 16-byte name: each half-byte as 'A' + value.
local function encode_name(name)
  local padded = name .. string.rep("\0", 16 - #name)
  local out = {}
  for i = 1, 16 do
    local b = padded:byte(i)
    out[i] = string.char(0x41 + (b >> 4), 0x41 + (b & 0x0f))
  end
  return string.char(32) .. table.concat(out) .. "\0"
end

local function parse(data, txid)
  if #data < 12 then return nil end
  local id, flags, _, ancount = string.unpack(">I2I2I2I2", data)
  if id ~= txid or flags & 0x8000 == 0 or ancount < 1 then return nil end
  local pos = 13
  -- The answer's name: length-prefixed labels (or a pointer), bounded by the packet.
  for _ = 1, 64 do
    local len = data:byte(pos)
    if not len then return nil end
    if len >= 0xc0 then
      pos = pos + 2
      break
    end
    pos = pos + 1 + len
    if len == 0 then break end
  end
  if pos + 10 > #data + 1 then return nil end
  local rtype, _, _, rdlen = string.unpack(">I2I2I4I2", data, pos)
  pos = pos + 10
  if rtype ~= 0x21 or pos + rdlen - 1 > #data or rdlen < 1 then return nil end
  local count = data:byte(pos)
  pos = pos + 1
  local names = {}
  for _ = 1, math.min(count, MAX_NAMES) do
    if pos + 17 > #data then return nil end
    local raw, suffix, nflags = data:sub(pos, pos + 14), data:byte(pos + 15), string.unpack(">I2", data, pos + 16)
    names[#names + 1] = {
      name = raw:gsub("%s+$", ""):gsub("[^\32-\126]", "?"),
      suffix = suffix,
      group = nflags & 0x8000 ~= 0,
      active = nflags & 0x0400 ~= 0,
    }
    pos = pos + 18
  end
  local mac
  if pos + 5 <= #data then mac = data:sub(pos, pos + 5) end
  return names, mac
end

action = function(host)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, 137, "udp") then return nil end
  local txid = math.random(1, 0xffff)
  local req = string.pack(">I2I2I2I2I2I2", txid, 0, 1, 0, 0, 0) .. encode_name("*") .. string.pack(">I2I2", 0x21, 1)
  local names, mac
  for _ = 1, 2 do
    if not socket:send(req) then break end
    local ok, data = socket:receive()
    if ok then
      names, mac = parse(data, txid)
      break
    elseif data ~= "TIMEOUT" then
      break
    end
  end
  socket:close()
  if not names or #names == 0 then return nil end
  local computer, user, workgroup
  for _, n in ipairs(names) do
    if n.suffix == 0 and not n.group and not computer then computer = n.name end
    if n.suffix == 0 and n.group and not workgroup then workgroup = n.name end
  end
  for _, n in ipairs(names) do
    if n.suffix == 3 and not n.group and n.name ~= computer and not user then user = n.name end
  end
  local mac_text = "<unknown>"
  if mac and mac ~= string.rep("\0", 6) then
    mac_text = string.format("%02x:%02x:%02x:%02x:%02x:%02x", mac:byte(1, 6))
  end
  local out = stdnse.output_table()
  out.server_name = computer
  out.workgroup = workgroup
  out.user = user or "<unknown>"
  out.mac = mac_text
  local text = string.format("NetBIOS name: %s, NetBIOS user: %s, NetBIOS MAC: %s", computer or "<unknown>",
    out.user, mac_text)
  if workgroup then text = text .. ", Workgroup: " .. workgroup end
  local list = {}
  for _, n in ipairs(names) do
    list[#list + 1] = string.format("%s<%02x>%s%s", n.name, n.suffix, n.group and " Group" or " Unique",
      n.active and " Active" or "")
  end
  out.names = list
  if nmap.verbosity() >= 1 then text = text .. "\nNames:\n  " .. table.concat(list, "\n  ") end
  return out, text
end
