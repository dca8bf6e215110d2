-- ber: ASN.1 Basic Encoding Rules for scripts (SNMP, LDAP, CredSSP): TLV encoding and
-- bounded decoding, integers, octet strings, object identifiers, and reading whole TLVs from a
-- TCP socket. Written for RustMap from ITU-T X.690; not derived from nmap's asn1 library.
--
-- Everything read is hostile: every length is checked against the bytes that are there, long
-- lengths are at most four bytes, integers at most eight, the indefinite form is refused.
--
-- M.encode(tag, body), M.int(n), M.octets(s), M.oid("1.3.6..."), M.bool(b), M.enum(n)
-- M.decode(data, pos) -> tag, body, next_pos (nil, err on bad input)
-- M.children(body[, max]) -> list of {tag=, body=} (nil, err on bad input)
-- M.signed(body), M.unsigned(body), M.oid_string(body)
-- M.read(socket, state, max) -> one whole TLV read from a stream socket (state buffers the rest)
local M = {}

M.BOOLEAN, M.INTEGER, M.OCTET_STRING, M.NULL, M.OID, M.ENUMERATED, M.SEQUENCE, M.SET =
  0x01, 0x02, 0x04, 0x05, 0x06, 0x0a, 0x30, 0x31

local function len_bytes(n)
  if n < 128 then return string.char(n) end
  local s = ""
  while n > 0 do
    s = string.char(n & 0xff) .. s
    n = n >> 8
  end
  return string.char(0x80 | #s) .. s
end

function M.encode(tag, body) return string.char(tag) .. len_bytes(#body) .. body end

function M.int(n)
  local s = ""
  repeat
    s = string.char(n & 0xff) .. s
    n = n >> 8
  until n == 0
  if s:byte(1) >= 0x80 then s = "\0" .. s end
  return M.encode(M.INTEGER, s)
end

function M.octets(s) return M.encode(M.OCTET_STRING, s) end

function M.oid(dotted)
  local parts = {}
  for n in dotted:gmatch("%d+") do parts[#parts + 1] = tonumber(n) end
  if #parts < 2 then error("snmp: bad OID " .. dotted) end
  local out = { string.char(parts[1] * 40 + parts[2]) }
  for i = 3, #parts do
    local n, bytes = parts[i], { string.char(parts[i] & 0x7f) }
    n = n >> 7
    while n > 0 do
      table.insert(bytes, 1, string.char(0x80 | (n & 0x7f)))
      n = n >> 7
    end
    out[#out + 1] = table.concat(bytes)
  end
  return M.encode(M.OID, table.concat(out))
end

--- One TLV at pos: tag, body, the position after it; nil and a reason on bad input.
function M.decode(data, pos)
  pos = pos or 1
  if pos + 1 > #data then return nil, "truncated" end
  local tag, len = data:byte(pos), data:byte(pos + 1)
  pos = pos + 2
  if len >= 0x80 then
    local n = len & 0x7f
    if n == 0 or n > 4 then return nil, "bad length" end
    if pos + n - 1 > #data then return nil, "truncated" end
    len = 0
    for i = 0, n - 1 do len = (len << 8) | data:byte(pos + i) end
    pos = pos + n
  end
  if pos + len - 1 > #data then return nil, "truncated" end
  return tag, data:sub(pos, pos + len - 1), pos + len
end

--- The TLVs inside a constructed body, in order ({tag=, body=}); nil, err on bad input.
function M.children(body, max)
  local out, pos = {}, 1
  while pos <= #body do
    if max and #out >= max then return nil, "too many elements" end
    local tag, inner, nextpos = M.decode(body, pos)
    if not tag then return nil, inner end
    out[#out + 1] = { tag = tag, body = inner }
    pos = nextpos
  end
  return out
end

function M.unsigned(b)
  if #b > 9 or (#b == 9 and b:byte(1) ~= 0) then return nil end
  local n = 0
  for i = 1, #b do n = (n << 8) | b:byte(i) end
  return n
end

function M.signed(b)
  if #b == 0 or #b > 8 then return nil end
  local n = b:byte(1) >= 0x80 and -1 or 0
  for i = 1, #b do n = (n << 8) | b:byte(i) end
  return n
end

function M.oid_string(b)
  if #b == 0 then return nil end
  local first = b:byte(1)
  local parts = { tostring(math.min(first // 40, 2)), tostring(first - 40 * math.min(first // 40, 2)) }
  local n, count = 0, 0
  for i = 2, #b do
    local c = b:byte(i)
    n = (n << 7) | (c & 0x7f)
    count = count + 1
    if count > 5 then return nil end
    if c < 0x80 then
      parts[#parts + 1] = tostring(n)
      n, count = 0, 0
    end
  end
  if count ~= 0 then return nil end
  return table.concat(parts, ".")
end

function M.bool(b) return M.encode(0x01, b and "\255" or "\0") end

function M.enum(n)
  local i = M.int(n)
  return "\10" .. i:sub(2)
end

--- The length of the TLV at the start of buf once its header is there: header length + body
--- length, or nil (need more), or false, err (bad header).
local function tlv_size(buf)
  if #buf < 2 then return nil end
  local len = buf:byte(2)
  if len < 0x80 then return 2 + len end
  local n = len & 0x7f
  if n == 0 or n > 4 then return false, "bad length" end
  if #buf < 2 + n then return nil end
  local body = 0
  for i = 1, n do body = (body << 8) | buf:byte(2 + i) end
  return 2 + n + body
end

--- Reads one whole TLV from a stream socket. state is a table the caller keeps per socket
--- (it holds bytes read past the TLV). Returns tag, body or nil, err; a TLV larger than max
--- bytes (default 1 MiB) is refused.
function M.read(socket, state, max)
  max = max or 1024 * 1024
  state.buf = state.buf or ""
  for _ = 1, 4096 do
    local size, err = tlv_size(state.buf)
    if size == false then return nil, err end
    if size and size > max then return nil, "message too large" end
    if size and #state.buf >= size then
      local tlv = state.buf:sub(1, size)
      state.buf = state.buf:sub(size + 1)
      local tag, body = M.decode(tlv, 1)
      return tag, body
    end
    local ok, data = socket:receive()
    if not ok then return nil, data end
    state.buf = state.buf .. data
  end
  return nil, "too many reads"
end

return M
