-- dns: DNS queries over UDP and TCP for scripts: building queries (with EDNS options), bounded
-- parsing of answers (compressed names, the record types scripts show), zone transfers.
-- Written for RustMap from RFC 1035 (sections 4.1 and 4.2), RFC 6891 (EDNS), RFC 5001 (NSID)
-- and RFC 5936 (AXFR); not derived from nmap's dns library.
--
-- Everything read is hostile: names are at most 255 bytes and follow at most 32 pointers, every
-- count and length is checked against the packet, a transfer stops after M.MAX_AXFR_RECORDS.
--
-- M.query(host, port, name, qtype, opts) -> response or nil, err. opts: class (1 = IN, 3 = CH),
--   rd (recursion desired, default true), nsid (ask for the NSID option), proto ("udp"/"tcp"),
--   timeout (ms, 5000). response: {id=, rcode=, rcode_name=, aa=, tc=, ra=, answers={rr},
--   authority={rr}, additional={rr}, nsid=} with rr = {name=, type=, type_name=, class=, ttl=,
--   data=text, raw=rdata}.
-- M.axfr(host, port, zone, opts) -> list of rr or nil, err.
-- M.TYPES: type names by number and numbers by name.
local nmap = require "nmap"

local M = {}

M.MAX_AXFR_RECORDS = 5000
M.MAX_RECORDS = 512

M.TYPES = { A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, HINFO = 13, MX = 15, TXT = 16, AAAA = 28, SRV = 33,
  OPT = 41, AXFR = 252, ANY = 255 }
-- (names by number added after the loop: adding keys while pairs() walks a table is undefined)
local by_number = {}
for k, v in pairs(M.TYPES) do by_number[v] = k end
for v, k in pairs(by_number) do M.TYPES[v] = k end
M.RCODES = { [0] = "NOERROR", [1] = "FORMERR", [2] = "SERVFAIL", [3] = "NXDOMAIN", [4] = "NOTIMP", [5] = "REFUSED" }

local function encode_name(name)
  local out = {}
  for label in name:gmatch("[^.]+") do
    if #label > 63 then error("dns: label too long in " .. name) end
    out[#out + 1] = string.char(#label) .. label
  end
  return table.concat(out) .. "\0"
end

function M.build(id, name, qtype, class, rd, nsid)
  local flags = rd and 0x0100 or 0
  local arcount = nsid ~= nil and 1 or 0
  local q = string.pack(">I2I2I2I2I2I2", id, flags, 1, 0, 0, arcount) .. encode_name(name)
    .. string.pack(">I2I2", qtype, class)
  if nsid ~= nil then
    -- OPT pseudo-record: root name, type 41, UDP size 1232, NSID option (code 3) empty.
    local opts = nsid and string.pack(">I2I2", 3, 0) or ""
    q = q .. "\0" .. string.pack(">I2I2I4I2", 41, 1232, 0, #opts) .. opts
  end
  return q
end

--- Reads a (possibly compressed) name at pos: the dotted name and the position after it.
function M.read_name(data, pos)
  local labels, jumps, after, total = {}, 0, nil, 0
  while true do
    local len = data:byte(pos)
    if not len then return nil end
    if len >= 0xc0 then
      local b2 = data:byte(pos + 1)
      if not b2 then return nil end
      jumps = jumps + 1
      if jumps > 32 then return nil end
      after = after or pos + 2
      pos = ((len & 0x3f) << 8 | b2) + 1
    elseif len >= 0x40 then
      return nil
    elseif len == 0 then
      return table.concat(labels, "."), after or pos + 1
    else
      total = total + len + 1
      if total > 255 or pos + len > #data then return nil end
      labels[#labels + 1] = data:sub(pos + 1, pos + len):gsub("[^%w%-_*]", "?")
      pos = pos + 1 + len
    end
  end
end

local function txt_strings(rdata)
  local out, pos = {}, 1
  while pos <= #rdata do
    local n = rdata:byte(pos)
    out[#out + 1] = rdata:sub(pos + 1, pos + n):gsub("[^\32-\126]", "?")
    pos = pos + 1 + n
  end
  return out
end

--- RFC 5952 text of 16 address bytes: the longest run of two or more zero groups as "::".
function M.ipv6_text(raw)
  local g = {}
  for i = 1, 16, 2 do g[#g + 1] = string.unpack(">I2", raw, i) end
  local best, best_len, run, run_len = 0, 1, 0, 0
  for i = 1, 8 do
    if g[i] == 0 then
      if run_len == 0 then run = i end
      run_len = run_len + 1
      if run_len > best_len then best, best_len = run, run_len end
    else
      run_len = 0
    end
  end
  local parts = {}
  for i = 1, 8 do parts[i] = string.format("%x", g[i]) end
  if best == 0 then return table.concat(parts, ":") end
  local head = table.concat(parts, ":", 1, best - 1)
  local tail = table.concat(parts, ":", best + best_len, 8)
  return head .. "::" .. tail
end

--- A record's data as zone-file text.
local function rdata_text(data, rtype, start, rdlen)
  local rdata = data:sub(start, start + rdlen - 1)
  if rtype == 1 and rdlen == 4 then return string.format("%d.%d.%d.%d", rdata:byte(1, 4)) end
  if rtype == 28 and rdlen == 16 then return M.ipv6_text(rdata) end
  if rtype == 2 or rtype == 5 or rtype == 12 then return (M.read_name(data, start) or "?") .. "." end
  if rtype == 15 and rdlen > 2 then
    return string.unpack(">I2", data, start) .. " " .. (M.read_name(data, start + 2) or "?") .. "."
  end
  if rtype == 16 then
    local parts = {}
    for _, s in ipairs(txt_strings(rdata)) do parts[#parts + 1] = '"' .. s .. '"' end
    return table.concat(parts, " ")
  end
  if rtype == 33 and rdlen > 6 then
    local prio, weight, port = string.unpack(">I2I2I2", data, start)
    return string.format("%d %d %d %s.", prio, weight, port, M.read_name(data, start + 6) or "?")
  end
  if rtype == 6 then
    local mname, p = M.read_name(data, start)
    local rname, p2
    if mname then rname, p2 = M.read_name(data, p) end
    if rname and p2 + 19 <= #data then
      local serial, refresh, retry, expire, minimum = string.unpack(">I4I4I4I4I4", data, p2)
      return string.format("%s. %s. %d %d %d %d %d", mname, rname, serial, refresh, retry, expire, minimum)
    end
  end
  return "\\# " .. rdlen
end

--- Parses a whole DNS message; nil on anything malformed.
local function parse(data)
  if #data < 12 then return nil end
  local id, flags, qd, an, ns, ar = string.unpack(">I2I2I2I2I2I2", data)
  local r = { id = id, qr = flags & 0x8000 ~= 0, aa = flags & 0x0400 ~= 0, tc = flags & 0x0200 ~= 0,
    rd = flags & 0x0100 ~= 0, ra = flags & 0x0080 ~= 0, rcode = flags & 0x0f,
    answers = {}, authority = {}, additional = {} }
  r.rcode_name = M.RCODES[r.rcode] or tostring(r.rcode)
  if qd + an + ns + ar > M.MAX_RECORDS then return nil end
  local pos = 13
  for _ = 1, qd do
    local _, p = M.read_name(data, pos)
    if not p or p + 3 > #data then return nil end
    pos = p + 4
  end
  for section, count in ipairs({ an, ns, ar }) do
    local list = ({ r.answers, r.authority, r.additional })[section]
    for _ = 1, count do
      local name, p = M.read_name(data, pos)
      if not name or p + 9 > #data then return nil end
      local rtype, class, ttl, rdlen = string.unpack(">I2I2I4I2", data, p)
      local start = p + 10
      if start + rdlen - 1 > #data then return nil end
      if rtype == 41 then
        -- EDNS options: NSID (3) is the one scripts show.
        local o = start
        while o + 3 <= start + rdlen - 1 do
          local code, olen = string.unpack(">I2I2", data, o)
          if o + 3 + olen > start + rdlen - 1 then break end
          if code == 3 then r.nsid = data:sub(o + 4, o + 3 + olen) end
          o = o + 4 + olen
        end
      else
        list[#list + 1] = { name = name, type = rtype, type_name = M.TYPES[rtype] or ("TYPE" .. rtype), class = class,
          ttl = ttl, data = rdata_text(data, rtype, start, rdlen), raw = data:sub(start, start + rdlen - 1),
          strings = rtype == 16 and txt_strings(data:sub(start, start + rdlen - 1)) or nil }
      end
      pos = start + rdlen
    end
  end
  return r
end

--- Parses a whole DNS message; nil on anything malformed (a Lua error in the parser is
--- caught too: a hostile answer is never a script failure).
function M.parse(data)
  local ok, r = pcall(parse, data)
  if ok then return r end
  return nil
end

--- Reads one length-prefixed message from a TCP socket (state keeps the rest).
local function read_tcp(socket, state)
  state.buf = state.buf or ""
  for _ = 1, 1024 do
    if #state.buf >= 2 then
      local n = string.unpack(">I2", state.buf)
      if #state.buf >= 2 + n then
        local msg = state.buf:sub(3, 2 + n)
        state.buf = state.buf:sub(3 + n)
        return msg
      end
    end
    local ok, data = socket:receive()
    if not ok then return nil, data end
    state.buf = state.buf .. data
  end
  return nil, "too many reads"
end

function M.query(host, port, name, qtype, opts)
  opts = opts or {}
  if type(qtype) == "string" then qtype = M.TYPES[qtype] end
  local proto = opts.proto or "udp"
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, proto)
  if not ok then return nil, err end
  local id = math.random(0, 0xffff)
  local rd = opts.rd ~= false
  -- EDNS: nil = no OPT record, false = OPT without options, true = OPT asking for the NSID.
  local edns = nil
  if opts.nsid then
    edns = true
  elseif opts.edns then
    edns = false
  end
  local q = M.build(id, name, qtype, opts.class or 1, rd, edns)
  local answer
  for _ = 1, (proto == "udp") and 2 or 1 do
    ok, err = socket:send(proto == "tcp" and (string.pack(">I2", #q) .. q) or q)
    if not ok then break end
    local data
    if proto == "tcp" then
      data, err = read_tcp(socket, {})
    else
      ok, data = socket:receive()
      if not ok then err, data = data, nil end
    end
    if data then
      local r = M.parse(data)
      if r and r.id == id and r.qr then
        answer = r
        break
      end
      err = "malformed answer"
    end
    if err ~= "TIMEOUT" then break end
  end
  socket:close()
  if not answer then return nil, err end
  return answer
end

function M.axfr(host, port, zone, opts)
  opts = opts or {}
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, "tcp")
  if not ok then return nil, err end
  local id = math.random(0, 0xffff)
  local q = M.build(id, zone, M.TYPES.AXFR, 1, false, nil)
  socket:send(string.pack(">I2", #q) .. q)
  local records, state, soas = {}, {}, 0
  for _ = 1, 1000 do
    local data, rerr = read_tcp(socket, state)
    if not data then
      err = rerr
      break
    end
    local r = M.parse(data)
    if not r or r.id ~= id then
      err = "malformed answer"
      break
    end
    if r.rcode ~= 0 then
      err = r.rcode_name
      break
    end
    if #r.answers == 0 then
      err = "empty answer"
      break
    end
    for _, rr in ipairs(r.answers) do
      if #records >= M.MAX_AXFR_RECORDS then break end
      records[#records + 1] = rr
      if rr.type == 6 then soas = soas + 1 end
    end
    -- The transfer ends with the zone's SOA again (RFC 5936 section 2.2).
    if soas >= 2 or #records >= M.MAX_AXFR_RECORDS then break end
  end
  socket:close()
  if soas == 0 then return nil, err or "no SOA" end
  return records
end

return M
