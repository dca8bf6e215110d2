-- snmp: SNMP v1/v2c requests (get, get-next, walk) and SNMPv3
-- engine discovery, for scripts. Written for RustMap from RFC 1157, RFC 3416 (PDUs), RFC 3412
-- and RFC 3414 (the v3 message and USM parameters) and X.690 (BER); not derived from nmap's
-- snmp or asn1 libraries.
--
-- Everything read is hostile: every length is checked against the bytes that are there, long
-- lengths are at most four bytes, integers at most eight, and a walk stops after M.MAX_WALK
-- answers, when an answer leaves the subtree or does not move forward.
--
-- M.open(host, port, opts) -> session or nil, err: opts.community ("public"), opts.version
--   (0 = v1, 1 = v2c; default 1), opts.timeout (ms, default 5000).
-- session:get(oids) -> list of varbinds {oid=, type=, value=} or nil, err.
-- session:get_next(oids), session:walk(base_oid[, max]) likewise.
-- session:close().
-- M.engine_discovery(host, port, opts) -> {engine_id=, boots=, time=} or nil, err.
-- M.engine_id(bytes) -> {enterprise=, enterprise_name=, format=, format_name=, data=}.
-- M.encode, M.decode, M.children, M.int, M.octets, M.oid: the ber library's.
local nmap = require "nmap"

local M = {}

M.MAX_WALK = 1000

-- ASN.1 / SNMP tags.
M.INTEGER, M.OCTET_STRING, M.NULL, M.OID, M.SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
M.IP_ADDRESS, M.COUNTER32, M.GAUGE32, M.TIMETICKS, M.OPAQUE, M.COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
M.GET, M.GET_NEXT, M.RESPONSE, M.REPORT = 0xa0, 0xa1, 0xa2, 0xa8

local EXCEPTIONS = { [0x80] = "noSuchObject", [0x81] = "noSuchInstance", [0x82] = "endOfMibView" }

local ber = require "ber"

M.encode, M.int, M.octets, M.oid, M.decode, M.children = ber.encode, ber.int, ber.octets, ber.oid, ber.decode, ber.children
M.oid_string = ber.oid_string
local signed, unsigned, oid_string = ber.signed, ber.unsigned, ber.oid_string

--- A value's Lua form: integers as numbers, OIDs dotted, addresses dotted, strings raw.
function M.value(tag, body)
  if tag == M.INTEGER then return signed(body) end
  if tag == M.OCTET_STRING or tag == M.OPAQUE then return body end
  if tag == M.NULL then return nil end
  if tag == M.OID then return oid_string(body) end
  if tag == M.IP_ADDRESS then
    if #body ~= 4 then return nil end
    return string.format("%d.%d.%d.%d", body:byte(1, 4))
  end
  if tag == M.COUNTER32 or tag == M.GAUGE32 or tag == M.TIMETICKS or tag == M.COUNTER64 then
    return unsigned(body)
  end
  return EXCEPTIONS[tag]
end

local function varbind_list(oids)
  local vbs = {}
  for _, o in ipairs(oids) do vbs[#vbs + 1] = M.encode(M.SEQUENCE, M.oid(o) .. M.encode(M.NULL, "")) end
  return M.encode(M.SEQUENCE, table.concat(vbs))
end

local function pdu(tag, reqid, oids)
  return M.encode(tag, M.int(reqid) .. M.int(0) .. M.int(0) .. varbind_list(oids))
end

--- Decodes a PDU body (request id, error status and index, varbinds).
local function parse_pdu(body)
  local parts, err = M.children(body, 4)
  if not parts then return nil, err end
  if #parts ~= 4 or parts[4].tag ~= M.SEQUENCE then return nil, "malformed PDU" end
  local result = {
    reqid = signed(parts[1].body),
    error_status = signed(parts[2].body),
    error_index = signed(parts[3].body),
    varbinds = {},
  }
  local vbs, verr = M.children(parts[4].body, M.MAX_WALK)
  if not vbs then return nil, verr end
  for _, vb in ipairs(vbs) do
    local pair = M.children(vb.body, 2)
    if not pair or #pair ~= 2 or pair[1].tag ~= M.OID then return nil, "malformed varbind" end
    local oid = oid_string(pair[1].body)
    if not oid then return nil, "malformed OID" end
    result.varbinds[#result.varbinds + 1] =
      { oid = oid, type = pair[2].tag, value = M.value(pair[2].tag, pair[2].body),
        exception = EXCEPTIONS[pair[2].tag] }
  end
  return result
end

--- A v1/v2c message: version, community and the PDU.
local function parse_message(data)
  local tag, body = M.decode(data, 1)
  if tag ~= M.SEQUENCE then return nil, "not an SNMP message" end
  local parts = M.children(body, 3)
  if not parts or #parts ~= 3 or parts[1].tag ~= M.INTEGER or parts[2].tag ~= M.OCTET_STRING then
    return nil, "not an SNMP message"
  end
  if parts[3].tag ~= M.RESPONSE then return nil, "not a response" end
  return parse_pdu(parts[3].body)
end

local Session = {}
Session.__index = Session

function M.open(host, port, opts)
  opts = opts or {}
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, "udp")
  if not ok then return nil, err end
  return setmetatable({
    socket = socket,
    community = opts.community or "public",
    version = opts.version or 1,
    reqid = math.random(1, 0x3fffffff),
    retries = opts.retries or 2,
  }, Session)
end

--- Sends one PDU and waits for the response with its request id (re-sent up to retries times).
function Session:request(tag, oids)
  self.reqid = (self.reqid % 0x3fffffff) + 1
  local msg = M.encode(M.SEQUENCE, M.int(self.version) .. M.octets(self.community) .. pdu(tag, self.reqid, oids))
  local last = "TIMEOUT"
  for _ = 0, self.retries do
    local ok, err = self.socket:send(msg)
    if not ok then return nil, err end
    -- Stray datagrams (late answers to an earlier try) are skipped, a bounded number of them.
    for _ = 1, 4 do
      local rok, data = self.socket:receive()
      if not rok then
        last = data
        break
      end
      local resp = parse_message(data)
      if resp and resp.reqid == self.reqid then
        if resp.error_status ~= 0 then return nil, "SNMP error " .. tostring(resp.error_status) end
        return resp.varbinds
      end
    end
    if last ~= "TIMEOUT" then return nil, last end
  end
  return nil, last
end

function Session:get(oids) return self:request(M.GET, oids) end

function Session:get_next(oids) return self:request(M.GET_NEXT, oids) end

--- Every varbind under base (get-next until the answer leaves the subtree), at most max.
function Session:walk(base, max)
  max = math.min(max or M.MAX_WALK, M.MAX_WALK)
  local out, current, prefix = {}, base, base .. "."
  while #out < max do
    local vbs, err = self:get_next({ current })
    if not vbs then
      if #out > 0 then break end
      return nil, err
    end
    local vb = vbs[1]
    if not vb or vb.exception or vb.oid:sub(1, #prefix) ~= prefix or vb.oid == current then break end
    out[#out + 1] = vb
    current = vb.oid
  end
  return out
end

function Session:close() self.socket:close() end

-- IANA private enterprise numbers of common SNMP agents' vendors.
M.ENTERPRISES = {
  [2] = "IBM", [9] = "Cisco", [11] = "Hewlett-Packard", [43] = "3Com", [311] = "Microsoft",
  [2021] = "UC Davis (ucd-snmp)", [2636] = "Juniper Networks", [4526] = "Netgear",
  [6876] = "VMware", [8072] = "net-snmp", [14988] = "MikroTik", [25506] = "H3C",
  [30065] = "Arista Networks", [41112] = "Ubiquiti Networks",
}

-- RFC 3411's snmpEngineID formats.
local FORMATS = { [1] = "IPv4", [2] = "IPv6", [3] = "MAC", [4] = "text", [5] = "octets" }

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

--- Describes an snmpEngineID (RFC 3411 section 5).
function M.engine_id(id)
  local out = { raw = hex(id) }
  if #id < 5 or id:byte(1) < 0x80 then
    out.format_name = "unknown"
    out.data = hex(id)
    return out
  end
  out.enterprise = string.unpack(">I4", id) & 0x7fffffff
  out.enterprise_name = M.ENTERPRISES[out.enterprise]
  out.format = id:byte(5)
  local data = id:sub(6)
  if out.format == 1 and #data == 4 then
    out.data = string.format("%d.%d.%d.%d", data:byte(1, 4))
  elseif out.format == 3 and #data == 6 then
    out.data = string.format("%02x:%02x:%02x:%02x:%02x:%02x", data:byte(1, 6))
  elseif out.format == 4 then
    out.data = data:gsub("[^\32-\126]", "?")
  else
    out.data = hex(data)
  end
  out.format_name = FORMATS[out.format] or (out.format >= 128 and "enterprise-specific" or "reserved")
  return out
end

--- SNMPv3 discovery (RFC 3414 section 4): an unauthenticated request with an empty engine
--- id, answered by a Report carrying the agent's engine id, boots and time.
function M.engine_discovery(host, port, opts)
  opts = opts or {}
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, "udp")
  if not ok then return nil, err end
  local msgid = math.random(1, 0x3fffffff)
  local global = M.encode(M.SEQUENCE, M.int(msgid) .. M.int(65507) .. M.octets("\4") .. M.int(3))
  local usm = M.encode(M.SEQUENCE, M.octets("") .. M.int(0) .. M.int(0) .. M.octets("") .. M.octets("") .. M.octets(""))
  local scoped = M.encode(M.SEQUENCE, M.octets("") .. M.octets("") .. pdu(M.GET, msgid, {}))
  local msg = M.encode(M.SEQUENCE, M.int(3) .. global .. M.octets(usm) .. scoped)
  local result, last = nil, "TIMEOUT"
  for _ = 0, opts.retries or 2 do
    if not socket:send(msg) then break end
    local rok, data = socket:receive()
    if rok then
      local tag, body = M.decode(data, 1)
      local parts = tag == M.SEQUENCE and M.children(body, 4)
      if parts and #parts == 4 and parts[1].tag == M.INTEGER and signed(parts[1].body) == 3
          and parts[3].tag == M.OCTET_STRING then
        local ptag, pbody = M.decode(parts[3].body, 1)
        local params = ptag == M.SEQUENCE and M.children(pbody, 6)
        if params and #params >= 3 and params[1].tag == M.OCTET_STRING then
          result = {
            engine_id = params[1].body,
            boots = params[2].tag == M.INTEGER and signed(params[2].body) or nil,
            time = params[3].tag == M.INTEGER and signed(params[3].body) or nil,
          }
          break
        end
      end
      last = "not an SNMPv3 answer"
      break
    else
      last = data
      if last ~= "TIMEOUT" then break end
    end
  end
  socket:close()
  if not result then return nil, last end
  return result
end

return M
