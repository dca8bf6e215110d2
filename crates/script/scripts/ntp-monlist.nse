-- ntp-monlist: lists the clients an NTP server's monitor list holds (ntpd's "monlist").
-- Written for RustMap from ntpd's documented private mode 7 request format (ntpdc's
-- MON_GETLIST_1, request code 42) and CVE-2013-5211's description; not derived from nmap's
-- ntp-monlist script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends one mode 7 MON_GETLIST_1 request (ntpdc's "monlist"; implementation XNTPD, then
XNTPD_OLD if that goes unanswered) and lists the entries the server returns: each address that
sent it packets, with port, NTP mode and version, packet count and how long ago the last came.
A server that answers monlist sends many datagrams for one small request: it can be abused for
traffic amplification (CVE-2013-5211); ntpd 4.2.7 and later no longer answer. At most 100
datagrams and 600 entries are read.

Script arguments:
  ntp-monlist.timeout  milliseconds to wait for each datagram (default 3000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "intrusive"}

portrule = shortport.port_or_service({123}, {"ntp"}, "udp", {"open", "open|filtered"})

local MAX_PACKETS, MAX_ENTRIES = 100, 600
local MODES = { [1] = "symmetric active", [2] = "symmetric passive", [3] = "client", [4] = "server",
  [5] = "broadcast", [6] = "control", [7] = "private" }

--- The request: response bit 0, version 2, mode 7; sequence 0; implementation; code 42; no
--- items; padded to the 48 bytes ntpd expects of an unauthenticated request.
local function request(impl)
  return string.char(0x17, 0x00, impl, 42) .. string.pack(">I2I2", 0, 0) .. string.rep("\0", 40)
end

local function parse(data, entries)
  if #data < 8 then return nil end
  local b0, _, _, code, n_err, size_mbz = string.unpack(">BBBBI2I2", data)
  if b0 & 0x80 == 0 or b0 & 7 ~= 7 or code ~= 42 then return nil end
  local err, count, size = n_err >> 12, n_err & 0x0fff, size_mbz & 0x0fff
  if err ~= 0 then return nil, "error " .. err end
  if size < 32 then return b0 & 0x40 ~= 0 end
  for i = 0, count - 1 do
    local at = 9 + i * size
    if at + 31 > #data or #entries >= MAX_ENTRIES then break end
    local avgint, lsint, _, cnt, addr, _, _, port, mode, version = string.unpack(">I4I4I4I4c4c4I4I2BB", data, at)
    entries[#entries + 1] = { addr = string.format("%d.%d.%d.%d", addr:byte(1, 4)), port = port, mode = mode,
      version = version, count = cnt, last = lsint, avg = avgint }
  end
  return b0 & 0x40 ~= 0
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 3000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "udp") then return nil end
  local entries, answered = {}, false
  for _, impl in ipairs({ 3, 2 }) do
    socket:send(request(impl))
    for _ = 1, MAX_PACKETS do
      local ok, data = socket:receive()
      if not ok then break end
      local more = parse(data, entries)
      if more ~= nil then answered = true end
      if not more then break end
    end
    if answered then break end
  end
  socket:close()
  if not answered then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  local out, lines = stdnse.output_table(), { "" }
  local list = {}
  for _, e in ipairs(entries) do
    local line = string.format("%s port %d, mode %d (%s), version %d, %d packets, last %d s ago", e.addr, e.port,
      e.mode, MODES[e.mode] or "?", e.version, e.count, e.last)
    list[#list + 1] = line
    lines[#lines + 1] = "  " .. line
  end
  out.entries = list
  out.warning = "the server answers monlist: traffic amplification (CVE-2013-5211)"
  lines[#lines + 1] = "  WARNING: " .. out.warning
  return out, table.concat(lines, "\n")
end
