-- ssl-enum-ciphers: lists the TLS versions and cipher suites a server accepts, graded.
-- Written for RustMap from RFC 5246 (TLS 1.2: ClientHello, ServerHello, alerts), RFC 8446
-- (TLS 1.3: supported_versions, key_share, HelloRetryRequest), RFC 8996 (TLS 1.0 and 1.1
-- deprecated), RFC 7919 and RFC 8422 (groups) and the IANA TLS cipher suite registry; not
-- derived from nmap's ssl-enum-ciphers script or its tables.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Finds, for each of TLS 1.0, 1.1, 1.2 and 1.3, every cipher suite the server accepts: it offers
all the suites RustMap knows for that version, notes the one the server picks, offers the rest
again, and so on until the server refuses (an alert or a close). No handshake is completed: each
try ends after the ServerHello. Then, where two or more suites were accepted, it offers two of
them in both orders to tell whether the server or the client's order decides.

Each suite gets a grade (RustMap's scheme, documented in docs/scripts.md):
  A  forward secrecy (ECDHE, DHE, TLS 1.3) and a strong cipher (AES, ChaCha20, Camellia, ARIA)
  B  a strong cipher without forward secrecy (RSA key transport, static DH or ECDH, PSK)
  C  a 64-bit block cipher (3DES, IDEA: Sweet32), or any suite over TLS 1.0 or 1.1 (RFC 8996)
  F  no encryption, no authentication (anon), export-grade, RC4, DES, RC2 or MD5
"least strength" is the worst grade of all. Runs on TLS ports (the probe speaks TLS from the first
byte: ports that need STARTTLS first are not probed).

Script arguments:
  ssl-enum-ciphers.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "intrusive"}

portrule = function(host, port) return shortport.ssl(host, port) end

-- IANA TLS cipher suite registry: value -> name (the suites TLS 1.0-1.2 servers commonly have).
local SUITES = {
  [0x0001] = "TLS_RSA_WITH_NULL_MD5", [0x0002] = "TLS_RSA_WITH_NULL_SHA",
  [0x0003] = "TLS_RSA_EXPORT_WITH_RC4_40_MD5", [0x0004] = "TLS_RSA_WITH_RC4_128_MD5",
  [0x0005] = "TLS_RSA_WITH_RC4_128_SHA", [0x0006] = "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5",
  [0x0007] = "TLS_RSA_WITH_IDEA_CBC_SHA", [0x0008] = "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
  [0x0009] = "TLS_RSA_WITH_DES_CBC_SHA", [0x000A] = "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
  [0x0011] = "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA", [0x0012] = "TLS_DHE_DSS_WITH_DES_CBC_SHA",
  [0x0013] = "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", [0x0014] = "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA",
  [0x0015] = "TLS_DHE_RSA_WITH_DES_CBC_SHA", [0x0016] = "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
  [0x0017] = "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", [0x0018] = "TLS_DH_anon_WITH_RC4_128_MD5",
  [0x0019] = "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA", [0x001A] = "TLS_DH_anon_WITH_DES_CBC_SHA",
  [0x001B] = "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA",
  [0x002F] = "TLS_RSA_WITH_AES_128_CBC_SHA", [0x0030] = "TLS_DH_DSS_WITH_AES_128_CBC_SHA",
  [0x0031] = "TLS_DH_RSA_WITH_AES_128_CBC_SHA", [0x0032] = "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
  [0x0033] = "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", [0x0034] = "TLS_DH_anon_WITH_AES_128_CBC_SHA",
  [0x0035] = "TLS_RSA_WITH_AES_256_CBC_SHA", [0x0036] = "TLS_DH_DSS_WITH_AES_256_CBC_SHA",
  [0x0037] = "TLS_DH_RSA_WITH_AES_256_CBC_SHA", [0x0038] = "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
  [0x0039] = "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", [0x003A] = "TLS_DH_anon_WITH_AES_256_CBC_SHA",
  [0x003B] = "TLS_RSA_WITH_NULL_SHA256", [0x003C] = "TLS_RSA_WITH_AES_128_CBC_SHA256",
  [0x003D] = "TLS_RSA_WITH_AES_256_CBC_SHA256", [0x0040] = "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
  [0x0041] = "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", [0x0044] = "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA",
  [0x0045] = "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", [0x0046] = "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA",
  [0x0067] = "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", [0x006A] = "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
  [0x006B] = "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", [0x006C] = "TLS_DH_anon_WITH_AES_128_CBC_SHA256",
  [0x006D] = "TLS_DH_anon_WITH_AES_256_CBC_SHA256",
  [0x0084] = "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", [0x0087] = "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA",
  [0x0088] = "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA", [0x0089] = "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA",
  [0x008A] = "TLS_PSK_WITH_RC4_128_SHA", [0x008B] = "TLS_PSK_WITH_3DES_EDE_CBC_SHA",
  [0x008C] = "TLS_PSK_WITH_AES_128_CBC_SHA", [0x008D] = "TLS_PSK_WITH_AES_256_CBC_SHA",
  [0x0096] = "TLS_RSA_WITH_SEED_CBC_SHA", [0x0099] = "TLS_DHE_DSS_WITH_SEED_CBC_SHA",
  [0x009A] = "TLS_DHE_RSA_WITH_SEED_CBC_SHA", [0x009B] = "TLS_DH_anon_WITH_SEED_CBC_SHA",
  [0x009C] = "TLS_RSA_WITH_AES_128_GCM_SHA256", [0x009D] = "TLS_RSA_WITH_AES_256_GCM_SHA384",
  [0x009E] = "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", [0x009F] = "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
  [0x00A2] = "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", [0x00A3] = "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
  [0x00A6] = "TLS_DH_anon_WITH_AES_128_GCM_SHA256", [0x00A7] = "TLS_DH_anon_WITH_AES_256_GCM_SHA384",
  [0x00A8] = "TLS_PSK_WITH_AES_128_GCM_SHA256", [0x00A9] = "TLS_PSK_WITH_AES_256_GCM_SHA384",
  [0x00BA] = "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256", [0x00BE] = "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",
  [0x00C0] = "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256", [0x00C4] = "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256",
  [0xC001] = "TLS_ECDH_ECDSA_WITH_NULL_SHA", [0xC002] = "TLS_ECDH_ECDSA_WITH_RC4_128_SHA",
  [0xC003] = "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA", [0xC004] = "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
  [0xC005] = "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA", [0xC006] = "TLS_ECDHE_ECDSA_WITH_NULL_SHA",
  [0xC007] = "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", [0xC008] = "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
  [0xC009] = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", [0xC00A] = "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
  [0xC00B] = "TLS_ECDH_RSA_WITH_NULL_SHA", [0xC00C] = "TLS_ECDH_RSA_WITH_RC4_128_SHA",
  [0xC00D] = "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA", [0xC00E] = "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
  [0xC00F] = "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA", [0xC010] = "TLS_ECDHE_RSA_WITH_NULL_SHA",
  [0xC011] = "TLS_ECDHE_RSA_WITH_RC4_128_SHA", [0xC012] = "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
  [0xC013] = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", [0xC014] = "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
  [0xC015] = "TLS_ECDH_anon_WITH_NULL_SHA", [0xC016] = "TLS_ECDH_anon_WITH_RC4_128_SHA",
  [0xC017] = "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA", [0xC018] = "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",
  [0xC019] = "TLS_ECDH_anon_WITH_AES_256_CBC_SHA",
  [0xC023] = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", [0xC024] = "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
  [0xC025] = "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256", [0xC026] = "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384",
  [0xC027] = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", [0xC028] = "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
  [0xC029] = "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256", [0xC02A] = "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384",
  [0xC02B] = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", [0xC02C] = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  [0xC02D] = "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", [0xC02E] = "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
  [0xC02F] = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", [0xC030] = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  [0xC031] = "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", [0xC032] = "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384",
  [0xC03C] = "TLS_RSA_WITH_ARIA_128_CBC_SHA256", [0xC03D] = "TLS_RSA_WITH_ARIA_256_CBC_SHA384",
  [0xC050] = "TLS_RSA_WITH_ARIA_128_GCM_SHA256", [0xC051] = "TLS_RSA_WITH_ARIA_256_GCM_SHA384",
  [0xC052] = "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256", [0xC053] = "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384",
  [0xC05C] = "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256", [0xC05D] = "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384",
  [0xC060] = "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256", [0xC061] = "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384",
  [0xC072] = "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256", [0xC073] = "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
  [0xC076] = "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256", [0xC077] = "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384",
  [0xC09C] = "TLS_RSA_WITH_AES_128_CCM", [0xC09D] = "TLS_RSA_WITH_AES_256_CCM",
  [0xC09E] = "TLS_DHE_RSA_WITH_AES_128_CCM", [0xC09F] = "TLS_DHE_RSA_WITH_AES_256_CCM",
  [0xC0A0] = "TLS_RSA_WITH_AES_128_CCM_8", [0xC0A1] = "TLS_RSA_WITH_AES_256_CCM_8",
  [0xC0A2] = "TLS_DHE_RSA_WITH_AES_128_CCM_8", [0xC0A3] = "TLS_DHE_RSA_WITH_AES_256_CCM_8",
  [0xC0AC] = "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", [0xC0AD] = "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
  [0xC0AE] = "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", [0xC0AF] = "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
  [0xCCA8] = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
  [0xCCA9] = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  [0xCCAA] = "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", [0xCCAB] = "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
  [0xCCAC] = "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
}
local TLS13_SUITES = {
  [0x1301] = "TLS_AES_128_GCM_SHA256", [0x1302] = "TLS_AES_256_GCM_SHA384",
  [0x1303] = "TLS_CHACHA20_POLY1305_SHA256", [0x1304] = "TLS_AES_128_CCM_SHA256",
  [0x1305] = "TLS_AES_128_CCM_8_SHA256",
}
local VERSIONS = { { "TLSv1.0", 0x0301 }, { "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 }, { "TLSv1.3", 0x0304 } }
-- SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest (RFC 8446 section 4.1.3).
local HRR_RANDOM = "\xCF\x21\xAD\x74\xE5\x9A\x61\x11\xBE\x1D\x8C\x02\x1E\x65\xB8\x91"
  .. "\xC2\xA2\x11\x16\x7A\xBB\x8C\x5E\x07\x9E\x09\xE2\xC8\xA8\x33\x9C"
local MAX_TRIES = 64

local function u16(n) return string.pack(">I2", n) end
local function ext(kind, body) return u16(kind) .. u16(#body) .. body end

--- A ClientHello for `version` offering `suites` (a list of numbers).
local function client_hello(version, suites, sni)
  local list = {}
  for _, s in ipairs(suites) do list[#list + 1] = u16(s) end
  -- TLS_EMPTY_RENEGOTIATION_INFO_SCSV: some servers refuse a renegotiation-unaware client.
  list[#list + 1] = u16(0x00FF)
  local exts = {}
  if sni then
    local name = u16(#sni + 3) .. "\0" .. u16(#sni) .. sni
    exts[#exts + 1] = ext(0x0000, name)
  end
  -- supported_groups: x25519, secp256r1, secp384r1, secp521r1, x448, ffdhe2048/3072/4096
  local groups = { 0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101, 0x0102 }
  local g = {}
  for _, v in ipairs(groups) do g[#g + 1] = u16(v) end
  exts[#exts + 1] = ext(0x000a, u16(#groups * 2) .. table.concat(g))
  exts[#exts + 1] = ext(0x000b, "\1\0") -- ec_point_formats: uncompressed
  local sigs = { 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601,
    0x0203, 0x0201, 0x0402, 0x0202 }
  local sg = {}
  for _, v in ipairs(sigs) do sg[#sg + 1] = u16(v) end
  exts[#exts + 1] = ext(0x000d, u16(#sigs * 2) .. table.concat(sg))
  local legacy = version
  if version == 0x0304 then
    legacy = 0x0303
    exts[#exts + 1] = ext(0x002b, "\2" .. u16(0x0304)) -- supported_versions
    -- key_share: an x25519 share (any 32 bytes are a valid point for the ServerHello).
    local key = {}
    for i = 1, 32 do key[i] = string.char(math.random(0, 255)) end
    local share = u16(0x001d) .. u16(32) .. table.concat(key)
    exts[#exts + 1] = ext(0x0033, u16(#share) .. share)
    exts[#exts + 1] = ext(0x002d, "\1\1") -- psk_key_exchange_modes: psk_dhe_ke
  end
  local random = {}
  for i = 1, 32 do random[i] = string.char(math.random(0, 255)) end
  local session = version == 0x0304 and string.rep("\0", 32) or ""
  local body = u16(legacy) .. table.concat(random) .. string.char(#session) .. session
    .. u16(#list * 2) .. table.concat(list) .. "\1\0" .. u16(#table.concat(exts)) .. table.concat(exts)
  local hs = "\1" .. string.pack(">I3", #body) .. body
  return "\22" .. u16(version == 0x0304 and 0x0301 or math.min(version, 0x0301)) .. u16(#hs) .. hs
end

--- Reads the server's first handshake message: the chosen suite and version, or nil (alert,
--- close, timeout or garbage).
local function server_hello(socket)
  local buf = ""
  for _ = 1, 16 do
    while #buf < 5 do
      local ok, data = socket:receive()
      if not ok then return nil end
      buf = buf .. data
    end
    local ctype, _, len = string.unpack(">BI2I2", buf)
    if len > 18432 then return nil end
    while #buf < 5 + len do
      local ok, data = socket:receive()
      if not ok then return nil end
      buf = buf .. data
      if #buf > 65536 then return nil end
    end
    if ctype == 21 then return nil end -- alert: refused
    if ctype ~= 22 then return nil end
    local hs = buf:sub(6, 5 + len)
    if #hs < 4 + 38 or hs:byte(1) ~= 2 then return nil end
    local hlen = string.unpack(">I3", hs, 2)
    local body = hs:sub(5, 4 + hlen)
    if #body < 38 then return nil end
    local version = string.unpack(">I2", body, 1)
    local random = body:sub(3, 34)
    local sid_len = body:byte(35)
    local p = 36 + sid_len
    if p + 2 > #body then return nil end
    local suite = string.unpack(">I2", body, p)
    p = p + 3
    -- extensions: supported_versions says TLS 1.3
    if p + 1 <= #body then
      local elen = string.unpack(">I2", body, p)
      local e, stop = p + 2, math.min(p + 1 + elen, #body)
      while e + 3 <= stop do
        local kind, l = string.unpack(">I2I2", body, e)
        if kind == 0x002b and l == 2 and e + 5 <= #body then version = string.unpack(">I2", body, e + 4) end
        e = e + 4 + l
      end
    end
    return suite, version, random == HRR_RANDOM
  end
  return nil
end

local function try(host, port, version, suites, sni, timeout)
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "tcp") then return nil end
  local suite, got
  if socket:send(client_hello(version, suites, sni)) then suite, got = server_hello(socket) end
  socket:close()
  if suite and got == version then return suite end
  return nil
end

local function grade(name, version)
  if name:find("NULL") or name:find("anon") or name:find("EXPORT") or name:find("RC4") or name:find("_DES_")
      or name:find("DES40") or name:find("RC2") or name:find("MD5") then
    return "F"
  end
  if name:find("3DES") or name:find("IDEA") or version < 0x0303 then return "C" end
  if name:find("^TLS_ECDHE_") or name:find("^TLS_DHE_") or version == 0x0304 then return "A" end
  return "B"
end

local ORDER = { A = 1, B = 2, C = 3, F = 4 }

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local name = (host.targetname and host.targetname ~= "" and host.targetname) or host.name
  local sni = name and name ~= "" and not name:match("^[%d.]+$") and not name:find(":") and name or nil
  local out = stdnse.output_table()
  local worst
  for _, v in ipairs(VERSIONS) do
    local label, version = v[1], v[2]
    local table_ = version == 0x0304 and TLS13_SUITES or SUITES
    local offered = {}
    for id in pairs(table_) do offered[#offered + 1] = id end
    -- Strongest first, as clients order them: the order decides only when the client's does.
    table.sort(offered, function(a, b)
      local ga, gb = ORDER[grade(table_[a], version)], ORDER[grade(table_[b], version)]
      if ga ~= gb then return ga < gb end
      return a > b
    end)
    local accepted = {}
    for _ = 1, MAX_TRIES do
      if #offered == 0 then break end
      local suite = try(host, port, version, offered, sni, timeout)
      if not suite or not table_[suite] then break end
      accepted[#accepted + 1] = suite
      for i, id in ipairs(offered) do
        if id == suite then
          table.remove(offered, i)
          break
        end
      end
    end
    if #accepted > 0 then
      local entry = stdnse.output_table()
      local ciphers = {}
      for _, id in ipairs(accepted) do
        local g = grade(table_[id], version)
        ciphers[#ciphers + 1] = table_[id] .. " - " .. g
        if not worst or ORDER[g] > ORDER[worst] then worst = g end
      end
      entry.ciphers = ciphers
      if #accepted >= 2 then
        -- Offer the first two found in the reverse of the order they were found in.
        local pick = try(host, port, version, { accepted[2], accepted[1] }, sni, timeout)
        if pick == accepted[1] then
          entry["cipher preference"] = "server"
        elseif pick == accepted[2] then
          entry["cipher preference"] = "client"
        end
      end
      if version < 0x0303 then entry.warnings = { "deprecated protocol version (RFC 8996)" } end
      out[label] = entry
    end
  end
  if not worst then return nil end
  out["least strength"] = worst
  return out
end
