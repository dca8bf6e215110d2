-- ntp-info: reports what an NTP server says of itself and its clock.
-- Written for RustMap from RFC 5905 (NTPv4 packet, client/server mode) and RFC 1305 appendix B
-- (mode 6 control messages, READVAR); not derived from nmap's ntp-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends an NTPv4 client request (mode 3) and reports the server's answer: version, stratum,
leap indicator, poll interval, precision, root delay and dispersion, reference id (a
reference clock's name at stratum 1, the upstream server's address above), reference time,
the server's receive time stamp and how far the server's clock is from ours. Then asks for
the system variables with a mode 6 READVAR control request (ntpd and ntpsec answer it;
chrony does not) and reports them (version, system, processor, ...).

Script arguments:
  ntp-info.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({123}, {"ntp"}, "udp", {"open", "open|filtered"})

-- Seconds between the NTP era (1900) and the Unix epoch (1970).
local NTP_UNIX = 2208988800
local LEAP = { [0] = "no warning", [1] = "last minute has 61 seconds", [2] = "last minute has 59 seconds",
  [3] = "clock unsynchronized" }
-- READVAR variables shown, in order (others are left out: they change every second).
local VARS = { "version", "system", "processor", "leap", "stratum", "refid", "precision", "rootdelay",
  "rootdisp", "peer", "tc", "mintc", "clock", "reftime" }
local MAX_VARS_BYTES = 4096

local function stamp(secs, frac)
  if secs == 0 then return nil end
  local t = secs - NTP_UNIX + frac / 4294967296
  return t, os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t))
end

--- The mode 4 answer to a mode 3 request, or nil.
local function client_exchange(socket)
  -- LI 0, VN 4, mode 3; the transmit time stamp is ours, so the answer's origin must equal it.
  local now = os.time() + NTP_UNIX
  local token = math.random(1, 0x7fffffff)
  local req = string.pack(">BBbb I4I4 I4 I4I4 I4I4 I4I4 I4I4", 0x23, 0, 6, -20, 0, 0, 0, 0, 0, 0, 0, 0, 0, now, token)
  for _ = 1, 2 do
    if not socket:send(req) then return nil end
    local ok, data = socket:receive()
    if ok and #data >= 48 then
      local li_vn_mode, stratum, poll, precision, root_delay, root_disp, refid, ref_s, ref_f, org_s, org_f,
        rx_s, rx_f, tx_s, tx_f = string.unpack(">BBbb I4I4 c4 I4I4 I4I4 I4I4 I4I4", data)
      if li_vn_mode & 7 == 4 and org_s == now and org_f == token then
        return {
          leap = li_vn_mode >> 6, version = (li_vn_mode >> 3) & 7, stratum = stratum, poll = poll,
          precision = precision, root_delay = root_delay / 65536, root_disp = root_disp / 65536,
          refid = refid, ref = { ref_s, ref_f }, rx = { rx_s, rx_f }, tx = { tx_s, tx_f },
        }
      end
      return nil
    elseif not ok and data ~= "TIMEOUT" then
      return nil
    end
  end
  return nil
end

--- The system variables a mode 6 READVAR returns ("name=value, ..."), or nil.
local function readvar(socket)
  -- LI 0, VN 2, mode 6; opcode 2 (read variables), sequence 1, association 0 (the system).
  local seq = math.random(1, 0xffff)
  if not socket:send(string.pack(">BBI2I2I2I2I2", 0x16, 2, seq, 0, 0, 0, 0)) then return nil end
  local text = {}
  local total = 0
  -- A long answer comes in fragments; at most 16 of them, MAX_VARS_BYTES in all.
  for _ = 1, 16 do
    local ok, data = socket:receive()
    if not ok or #data < 12 then break end
    local _, op, rseq, _, _, offset, count = string.unpack(">BBI2I2I2I2I2", data)
    if rseq ~= seq or op & 0x80 == 0 or op & 0x40 ~= 0 or count > #data - 12 then break end
    total = total + count
    if total > MAX_VARS_BYTES then break end
    text[#text + 1] = { offset, data:sub(13, 12 + count) }
    if op & 0x20 == 0 then break end
  end
  if #text == 0 then return nil end
  table.sort(text, function(a, b) return a[1] < b[1] end)
  local all = {}
  for _, t in ipairs(text) do all[#all + 1] = t[2] end
  local vars = {}
  for k, v in table.concat(all):gmatch("([%w_]+)=([^,]*)") do
    v = v:gsub('^%s*"?', ""):gsub('"?%s*$', ""):gsub("[^\32-\126]", "?")
    vars[k] = v:sub(1, 256)
  end
  return vars
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "udp") then return nil end
  local sent = os.time()
  local answer = client_exchange(socket)
  local received = os.time()
  -- A server that answered the client request answers a control request at once if at all
  -- (chrony never does): wait less for it.
  if answer then socket:set_timeout(math.min(timeout, 2000)) end
  local vars = readvar(socket)
  socket:close()
  if not answer and not vars then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  local out = stdnse.output_table()
  if answer then
    local _, rx = stamp(answer.rx[1], answer.rx[2])
    out["receive time stamp"] = rx
    out.version = answer.version
    out.stratum = answer.stratum
    out.leap = LEAP[answer.leap]
    out.poll = string.format("%d s", 1 << math.max(0, math.min(answer.poll, 17)))
    out.precision = string.format("2^%d s", answer.precision)
    out["root delay"] = string.format("%.6f s", answer.root_delay)
    out["root dispersion"] = string.format("%.6f s", answer.root_disp)
    if answer.stratum <= 1 then
      out.refid = answer.refid:match("^[%w%.%-]*")
    else
      out.refid = string.format("%d.%d.%d.%d", answer.refid:byte(1, 4))
    end
    local _, ref = stamp(answer.ref[1], answer.ref[2])
    out["reference time"] = ref
    -- RFC 5905's offset, ((T2 - T1) + (T3 - T4)) / 2, with our clock read in whole seconds.
    local t2, t3 = stamp(answer.rx[1], answer.rx[2]), stamp(answer.tx[1], answer.tx[2])
    if t2 and t3 then
      out["clock offset"] = string.format("%+ds", math.floor(((t2 - sent) + (t3 - received)) / 2 + 0.5))
    end
  end
  if vars then
    local shown = stdnse.output_table()
    for _, k in ipairs(VARS) do
      if vars[k] then shown[k] = vars[k] end
    end
    out.variables = shown
  end
  return out
end
