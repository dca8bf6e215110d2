-- ldap: anonymous LDAPv3 searches for scripts: search requests with RFC 4515 string filters,
-- bounded reading of the entries, the root DSE. Written for RustMap from RFC 4511 (the
-- protocol, section 4.5: Search) and RFC 4515 (filters); not derived from nmap's ldap library.
--
-- M.connect(host, port, opts) -> session or nil, err: opts.timeout (ms, 5000), opts.ssl.
-- session:search(base, scope, filter, attrs, max) -> entries {dn=, attrs={name -> {values}},
--   order={names}}, result {code=, message=} or nil, err. scope: "base", "one" or "sub".
-- session:close() (sends an UnbindRequest).
-- M.rootdse(host, port, opts) -> entry or nil, err (the root DSE's operational attributes).
-- M.parse_filter(text) -> BER-encoded filter or nil, err.
local nmap = require "nmap"
local ber = require "ber"

local M = {}

-- Bounds: entries and values kept, bytes per value, filter depth.
M.MAX_ENTRIES, M.MAX_VALUES, M.MAX_VALUE, M.MAX_DEPTH = 1000, 200, 1024, 16

local SCOPES = { base = 0, one = 1, sub = 2 }
M.RESULT_CODES = { [0] = "success", [1] = "operationsError", [2] = "protocolError", [3] = "timeLimitExceeded",
  [4] = "sizeLimitExceeded", [7] = "authMethodNotSupported", [8] = "strongerAuthRequired",
  [32] = "noSuchObject", [34] = "invalidDNSyntax", [48] = "inappropriateAuthentication",
  [49] = "invalidCredentials", [50] = "insufficientAccessRights", [53] = "unwillingToPerform" }

--- RFC 4515 value escapes (\2a) to bytes.
local function unescape(v)
  return (v:gsub("\\(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Parses the filter at text[pos] (which must be "("): the encoded filter and the next position.
local function filter_at(text, pos, depth)
  if depth > M.MAX_DEPTH then return nil, "filter nested too deep" end
  if text:sub(pos, pos) ~= "(" then return nil, "expected ( at " .. pos end
  local op = text:sub(pos + 1, pos + 1)
  if op == "&" or op == "|" or op == "!" then
    local parts, p = {}, pos + 2
    while text:sub(p, p) == "(" do
      local enc, nextp = filter_at(text, p, depth + 1)
      if not enc then return nil, nextp end
      parts[#parts + 1] = enc
      p = nextp
      if #parts > 64 then return nil, "too many filter terms" end
    end
    if text:sub(p, p) ~= ")" or #parts == 0 or (op == "!" and #parts ~= 1) then
      return nil, "bad filter near " .. p
    end
    local tag = ({ ["&"] = 0xa0, ["|"] = 0xa1, ["!"] = 0xa2 })[op]
    return ber.encode(tag, table.concat(parts)), p + 1
  end
  local close = text:find(")", pos + 1, true)
  if not close then return nil, "unclosed filter" end
  local item = text:sub(pos + 1, close - 1)
  local attr, kind, value = item:match("^([%w%.;%-]+)([~<>]?=)(.*)$")
  if not attr then return nil, "bad filter item " .. item end
  local pair = ber.octets(attr) .. ber.octets(unescape(value))
  if kind == ">=" then return ber.encode(0xa5, pair), close + 1 end
  if kind == "<=" then return ber.encode(0xa6, pair), close + 1 end
  if kind == "~=" then return ber.encode(0xa8, pair), close + 1 end
  if value == "*" then return ber.encode(0x87, attr), close + 1 end
  if value:find("*", 1, true) then
    -- substrings: initial [0], any [1], final [2]
    local pieces = {}
    for piece in (value .. "*"):gmatch("([^*]*)%*") do pieces[#pieces + 1] = piece end
    -- (the gmatch above sees the added "*"; the last piece is the final part)
    local subs = {}
    local n = #pieces
    for i, piece in ipairs(pieces) do
      if piece ~= "" then
        local tag = (i == 1) and 0x80 or ((i == n) and 0x82 or 0x81)
        subs[#subs + 1] = ber.encode(tag, unescape(piece))
      end
    end
    return ber.encode(0xa4, ber.octets(attr) .. ber.encode(ber.SEQUENCE, table.concat(subs))), close + 1
  end
  return ber.encode(0xa3, pair), close + 1
end

function M.parse_filter(text)
  if type(text) ~= "string" or #text > 4096 then return nil, "bad filter" end
  if text:sub(1, 1) ~= "(" then text = "(" .. text .. ")" end
  local enc, nextp = filter_at(text, 1, 0)
  if not enc then return nil, nextp end
  if nextp ~= #text + 1 then return nil, "trailing text after the filter" end
  return enc
end

local Session = {}
Session.__index = Session

function M.connect(host, port, opts)
  opts = opts or {}
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, opts.ssl and "ssl" or "tcp")
  if not ok then return nil, err end
  return setmetatable({ socket = socket, state = {}, id = 0 }, Session)
end

local function printable(s) return (s:gsub("[^\32-\126]", "?")) end

--- One attribute value for output: text when printable (UTF-8 allowed), hex otherwise.
local function show(v)
  if #v > M.MAX_VALUE then v = v:sub(1, M.MAX_VALUE) end
  if v:find("[%z\1-\8\14-\31\127]") then
    return "0x" .. v:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  end
  return printable(v)
end

local function parse_entry(body)
  local parts = ber.children(body, 2)
  if not parts or #parts ~= 2 or parts[1].tag ~= ber.OCTET_STRING or parts[2].tag ~= ber.SEQUENCE then return nil end
  local entry = { dn = show(parts[1].body), attrs = {}, order = {} }
  local attrs = ber.children(parts[2].body, M.MAX_VALUES) or {}
  for _, a in ipairs(attrs) do
    local pair = ber.children(a.body, 2)
    if pair and #pair == 2 and pair[1].tag == ber.OCTET_STRING then
      local name = printable(pair[1].body):sub(1, 128)
      local values = {}
      for _, v in ipairs(ber.children(pair[2].body, M.MAX_VALUES) or {}) do values[#values + 1] = show(v.body) end
      if not entry.attrs[name] then entry.order[#entry.order + 1] = name end
      entry.attrs[name] = values
    end
  end
  return entry
end

function Session:search(base, scope, filter, attrs, max)
  local enc, ferr = M.parse_filter(filter or "(objectClass=*)")
  if not enc then return nil, ferr end
  max = math.min(max or M.MAX_ENTRIES, M.MAX_ENTRIES)
  self.id = self.id + 1
  local attr_list = {}
  for _, a in ipairs(attrs or {}) do attr_list[#attr_list + 1] = ber.octets(a) end
  local req = ber.encode(0x63, ber.octets(base or "") .. ber.enum(SCOPES[scope or "sub"] or 2) .. ber.enum(0)
    .. ber.int(max) .. ber.int(10) .. ber.bool(false) .. enc .. ber.encode(ber.SEQUENCE, table.concat(attr_list)))
  local ok, err = self.socket:send(ber.encode(ber.SEQUENCE, ber.int(self.id) .. req))
  if not ok then return nil, err end
  local entries = {}
  for _ = 1, M.MAX_ENTRIES + 64 do
    local tag, body = ber.read(self.socket, self.state)
    if tag ~= ber.SEQUENCE then return nil, body or "not an LDAP message" end
    local parts = ber.children(body, 3)
    if not parts or #parts < 2 or parts[1].tag ~= ber.INTEGER then return nil, "malformed LDAP message" end
    local op = parts[2]
    if op.tag == 0x64 then
      if #entries < max then
        local e = parse_entry(op.body)
        if e then entries[#entries + 1] = e end
      end
    elseif op.tag == 0x65 then
      local res = ber.children(op.body, 4)
      if not res or #res < 3 then return nil, "malformed search result" end
      local code = ber.signed(res[1].body) or -1
      return entries, { code = code, name = M.RESULT_CODES[code] or tostring(code), message = printable(res[3].body):sub(1, 256) }
    elseif op.tag == 0x78 then
      -- an unsolicited notification (e.g. notice of disconnection): the session is over
      return nil, "notice of disconnection"
    end
    -- search result references (0x73) and anything else are skipped
  end
  return nil, "too many messages"
end

function Session:close()
  self.id = self.id + 1
  self.socket:send(ber.encode(ber.SEQUENCE, ber.int(self.id) .. ber.encode(0x42, "")))
  self.socket:close()
end

-- The root DSE attributes RFC 4512 section 5.1 lists, plus the vendor's.
M.ROOTDSE_ATTRS = { "namingContexts", "subschemaSubentry", "supportedLDAPVersion", "supportedSASLMechanisms",
  "supportedExtension", "supportedControl", "supportedFeatures", "vendorName", "vendorVersion", "altServer",
  "defaultNamingContext", "dnsHostName", "serverName", "configContext", "objectClass", "+" }

function M.rootdse(host, port, opts)
  local s, err = M.connect(host, port, opts)
  if not s then return nil, err end
  local entries, result = s:search("", "base", "(objectClass=*)", M.ROOTDSE_ATTRS, 1)
  s:close()
  if not entries then return nil, result end
  if #entries == 0 then return nil, "no root DSE (" .. result.name .. ")" end
  return entries[1]
end

return M
