-- rdp-enum-encryption: lists the security protocols and Standard RDP Security encryption
-- methods an RDP server accepts.
-- Written for RustMap from MS-RDPBCGR (2.2.1.1 and 2.2.1.2: X.224 Connection Request and
-- Confirm with RDP Negotiation Request/Response/Failure; 2.2.1.3 and 2.2.1.4: MCS Connect
-- Initial and Connect Response with the GCC Conference Create Request/Response and the client
-- and server core, security and network data), T.125 (MCS, BER) and T.124 (GCC, PER); not
-- derived from nmap's rdp-enum-encryption script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends one X.224 Connection Request per security protocol (Native RDP, SSL, CredSSP, CredSSP
with Early User Authorization, RDSTLS) and lists those the server selects. When Native RDP
(Standard RDP Security) is accepted, it then offers the encryption methods one at a time
(40-bit, 56-bit and 128-bit RC4, FIPS 140-1) in an MCS Connect Initial and lists those the
server's security data confirms, with the server's encryption level and RDP version.

Script arguments:
  rdp-enum-encryption.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({3389}, {"ms-wbt-server"})

local MAX_TPKT = 16 * 1024

-- Requested protocols and the protocol the server must select for each, in output order.
local PROTOCOLS = {
  { name = "CredSSP (NLA)", request = 3, selected = 2 },
  { name = "CredSSP with Early User Auth", request = 11, selected = 8 },
  { name = "Native RDP", request = 0, selected = 0 },
  { name = "RDSTLS", request = 4, selected = 4 },
  { name = "SSL", request = 1, selected = 1 },
}
local METHODS = {
  { name = "40-bit RC4", bit = 0x01 },
  { name = "56-bit RC4", bit = 0x08 },
  { name = "128-bit RC4", bit = 0x02 },
  { name = "FIPS 140-1", bit = 0x10 },
}
local LEVELS = { [0] = "None", [1] = "Low", [2] = "Client Compatible", [3] = "High", [4] = "FIPS Compliant" }

local function tpkt(payload) return string.pack(">BBI2", 3, 0, 4 + #payload) .. payload end

local function connection_request(protocols)
  local neg = string.pack("<BBI2I4", 1, 0, 8, protocols)
  return tpkt(string.pack(">BBI2I2B", 6 + #neg, 0xe0, 0, 0, 0) .. neg)
end

--- One TPKT's payload, bounded; nil on anything else.
local function read_tpkt(socket)
  local buf = ""
  for _ = 1, 64 do
    if #buf >= 4 then
      if buf:byte(1) ~= 3 then return nil end
      local len = string.unpack(">I2", buf, 3)
      if len < 4 or len > MAX_TPKT then return nil end
      if #buf >= len then return buf:sub(5, len) end
    end
    local ok, data = socket:receive()
    if not ok then return nil end
    buf = buf .. data
    if #buf > MAX_TPKT then return nil end
  end
  return nil
end

--- Connects and negotiates `protocols`: the selected protocol (0 without negotiation data),
--- or nil and the failure code; the open socket when `keep`.
local function negotiate(host, port, protocols, timeout, keep)
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "tcp") then return nil end
  socket:send(connection_request(protocols))
  local cc = read_tpkt(socket)
  local selected, failure
  if cc and #cc >= 7 and cc:byte(2) == 0xd0 then
    if #cc >= 15 and cc:byte(8) == 2 then
      selected = string.unpack("<I4", cc, 12)
    elseif #cc >= 15 and cc:byte(8) == 3 then
      failure = string.unpack("<I4", cc, 12)
    elseif #cc < 15 then
      selected = 0
    end
  end
  if keep and selected then return selected, socket end
  socket:close()
  return selected, failure
end

local function ber_len(n)
  if n < 0x80 then return string.char(n) end
  if n < 0x100 then return string.char(0x81, n) end
  return string.pack(">BI2", 0x82, n)
end
local function ber(tag, body) return tag .. ber_len(#body) .. body end
local function ber_int(n)
  if n < 0x80 then return ber("\2", string.char(n)) end
  if n < 0x8000 then return ber("\2", string.pack(">I2", n)) end
  return ber("\2", string.pack(">I3", n))
end
local function per_len(n)
  if n < 0x80 then return string.char(n) end
  return string.pack(">I2", 0x8000 | n)
end

local function domain_params(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = ber_int(v) end
  return ber("\x30", table.concat(parts))
end

local function connect_initial(method)
  local name = ("RUSTMAP"):gsub(".", "%0\0")
  local core = string.pack("<I4I2I2I2I2I4I4", 0x00080004, 1024, 768, 0xca01, 0xaa03, 0x409, 2600)
    .. name .. string.rep("\0", 32 - #name)
    .. string.pack("<I4I4I4", 4, 0, 12) .. string.rep("\0", 64)
    .. string.pack("<I2I2I4I2I2I2", 0xca01, 1, 0, 24, 0x07, 0x01) .. string.rep("\0", 64)
    .. string.pack("<BBI4", 0, 0, 0)
  local blocks = string.pack("<I2I2", 0xc001, 4 + #core) .. core
    .. string.pack("<I2I2I4I4", 0xc002, 12, method, 0)
    .. string.pack("<I2I2I4", 0xc003, 8, 0)
  local connect_pdu = "\x00\x08\x00\x10\x00\x01\xc0\x00Duca" .. per_len(#blocks) .. blocks
  local gcc = "\x00\x05\x00\x14\x7c\x00\x01" .. per_len(#connect_pdu) .. connect_pdu
  local body = ber("\4", "\1") .. ber("\4", "\1") .. ber("\1", "\xff")
    .. domain_params({ 34, 2, 0, 1, 0, 1, 65535, 2 })
    .. domain_params({ 1, 1, 1, 1, 0, 1, 1056, 2 })
    .. domain_params({ 65535, 64535, 65535, 1, 0, 1, 65535, 2 })
    .. ber("\4", gcc)
  return tpkt("\x02\xf0\x80" .. ber("\x7f\x65", body))
end

--- The server data blocks of a Connect Response: { version=, method=, level= } or nil.
local function server_data(data)
  local pos = data:find("\x01\x0c", 1, true)
  if not pos then return nil end
  local r = {}
  for _ = 1, 16 do
    if pos + 3 > #data then break end
    local btype, blen = string.unpack("<I2I2", data, pos)
    if blen < 4 or pos + blen - 1 > #data then break end
    if btype == 0x0c01 and blen >= 8 then
      r.version = string.unpack("<I4", data, pos + 4)
    elseif btype == 0x0c02 and blen >= 12 then
      r.method, r.level = string.unpack("<I4I4", data, pos + 4)
    end
    pos = pos + blen
  end
  return r
end

local function version_name(v)
  if v == 0x00080001 then return "RDP 4.0 server" end
  if v == 0x00080004 then return "RDP 5.x, 6.x, 7.x, or 8.x server" end
  if v and v >= 0x00080005 and v <= 0x000800ff then return string.format("RDP 10.%d server", v - 0x00080005) end
  return nil
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local out = stdnse.output_table()
  local layers = {}
  local native = false
  for _, p in ipairs(PROTOCOLS) do
    local selected = negotiate(host, port, p.request, timeout)
    if selected == p.selected then
      layers[#layers + 1] = p.name .. ": SUCCESS"
      if p.request == 0 then native = true end
    end
  end
  if #layers == 0 then return nil end
  out["Security layer"] = layers
  if native then
    local methods, level, version = {}, nil, nil
    for _, m in ipairs(METHODS) do
      local selected, socket = negotiate(host, port, 0, timeout, true)
      if selected == 0 and socket then
        socket:send(connect_initial(m.bit))
        local answer = read_tpkt(socket)
        socket:close()
        local sd = answer and server_data(answer)
        if sd then
          version = version or sd.version
          if sd.level then level = level or sd.level end
          if sd.method == m.bit then methods[#methods + 1] = m.name .. ": SUCCESS" end
        end
      elseif type(socket) == "userdata" or type(socket) == "table" then
        socket:close()
      end
    end
    if level then
      out["RDP Encryption level: " .. (LEVELS[level] or ("unknown " .. level))] = methods
    end
    out["RDP Protocol Version"] = version_name(version)
  end
  -- Normal output as nmap lays it out: section headings without a colon.
  local lines = { "", "  Security layer" }
  for _, l in ipairs(layers) do lines[#lines + 1] = "    " .. l end
  for k, v in pairs(out) do
    if k:find("^RDP Encryption level") then
      lines[#lines + 1] = "  " .. k
      for _, m in ipairs(v) do lines[#lines + 1] = "    " .. m end
    elseif k == "RDP Protocol Version" then
      lines[#lines + 1] = "  RDP Protocol Version: " .. v
    end
  end
  return out, table.concat(lines, "\n")
end
