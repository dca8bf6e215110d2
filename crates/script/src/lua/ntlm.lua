-- ntlm: NTLMSSP messages for scripts that learn about a server from its NTLM CHALLENGE (SMB,
-- RDP's CredSSP, IMAP/POP3/SMTP/HTTP NTLM authentication): a NEGOTIATE_MESSAGE builder, a
-- CHALLENGE_MESSAGE parser with its target information (AV pairs) and OS version, and Windows
-- FILETIME conversion. Written for RustMap from MS-NLMP (sections 2.2.1.1, 2.2.1.2, 2.2.2.1,
-- 2.2.2.5 and 2.2.2.10); not derived from nmap's ntlm or smbauth libraries.
--
-- Everything read is hostile: every field's offset and length is checked against the message,
-- at most M.MAX_AV_PAIRS pairs are read, strings are made printable.
--
-- M.negotiate() -> the bytes of a NEGOTIATE_MESSAGE (no domain or workstation named).
-- M.parse_challenge(data) -> table or nil: finds "NTLMSSP\0" with type 2 in `data` (it may be
--   wrapped in SPNEGO or CredSSP) and returns { flags=, target_name=, challenge=,
--   netbios_computer=, netbios_domain=, dns_computer=, dns_domain=, dns_tree=, timestamp=
--   (Unix seconds), os_major=, os_minor=, os_build=, ntlm_revision=, version= ("6.1.7601") }.
-- M.filetime_to_unix(ft) -> seconds since 1970 (may be fractional) or nil for 0 / absurd values.
-- M.format_time(unix) -> "YYYY-MM-DDTHH:MM:SS" (UTC).
-- M.utf16le(s) -> printable UTF-8 text of a UTF-16LE string (at most M.MAX_STRING characters).
-- M.printable(s) -> `s` (at most M.MAX_STRING bytes) with bytes outside printable ASCII
--   replaced by "?".
local M = {}

M.MAX_AV_PAIRS = 64
M.MAX_STRING = 256

M.SIGNATURE = "NTLMSSP\0"

-- NegotiateFlags (MS-NLMP 2.2.2.5).
M.NEGOTIATE_UNICODE = 0x00000001
M.NEGOTIATE_OEM = 0x00000002
M.REQUEST_TARGET = 0x00000004
M.NEGOTIATE_NTLM = 0x00000200
M.NEGOTIATE_ALWAYS_SIGN = 0x00008000
M.NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
M.NEGOTIATE_TARGET_INFO = 0x00800000
M.NEGOTIATE_VERSION = 0x02000000
M.NEGOTIATE_128 = 0x20000000
M.NEGOTIATE_KEY_EXCH = 0x40000000
M.NEGOTIATE_56 = 0x80000000

-- AvId values (MS-NLMP 2.2.2.1).
local AV = { [1] = "netbios_computer", [2] = "netbios_domain", [3] = "dns_computer", [4] = "dns_domain",
  [5] = "dns_tree", [9] = "target_spn" }

-- Seconds between 1601-01-01 (FILETIME's epoch) and 1970-01-01.
local FILETIME_UNIX = 11644473600

function M.printable(s)
  if not s then return nil end
  return (s:sub(1, M.MAX_STRING):gsub("[^\32-\126]", "?"))
end

function M.utf16le(s)
  if not s then return nil end
  local out = {}
  for i = 1, math.min(#s, 2 * M.MAX_STRING) - 1, 2 do
    local c = s:byte(i) | (s:byte(i + 1) << 8)
    if c < 0x20 or c == 0x7f or (c >= 0x80 and c < 0xa0) or (c >= 0xd800 and c < 0xe000) then
      out[#out + 1] = "?"
    else
      out[#out + 1] = utf8.char(c)
    end
  end
  return table.concat(out)
end

function M.filetime_to_unix(ft)
  if type(ft) ~= "number" or ft <= 0 then return nil end
  local t = ft / 10000000 - FILETIME_UNIX
  -- Before 1970 or after 9999: not a clock.
  if t < 0 or t > 253402300799 then return nil end
  return t
end

function M.format_time(t)
  if not t then return nil end
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t))
end

--- NEGOTIATE_MESSAGE: Unicode and OEM, NTLM with extended session security, asking for the
--- target name and target information, with a Version field (which makes servers send theirs).
function M.negotiate()
  local flags = M.NEGOTIATE_UNICODE | M.NEGOTIATE_OEM | M.REQUEST_TARGET | M.NEGOTIATE_NTLM
    | M.NEGOTIATE_ALWAYS_SIGN | M.NEGOTIATE_EXTENDED_SESSIONSECURITY | M.NEGOTIATE_TARGET_INFO
    | M.NEGOTIATE_VERSION | M.NEGOTIATE_128 | M.NEGOTIATE_KEY_EXCH | M.NEGOTIATE_56
  -- Header (32 bytes) + Version (8): the empty domain and workstation fields point past both.
  return M.SIGNATURE .. string.pack("<I4I4 I2I2I4 I2I2I4", 1, flags, 0, 0, 40, 0, 0, 40)
    .. string.pack("<BBI2BBBB", 6, 1, 7601, 0, 0, 0, 15)
end

--- A (len, maxlen, offset) field of a message that starts at `base` in `data`: the bytes or nil.
local function field(data, base, pos)
  if base + pos + 7 > #data + 1 then return nil end
  local len, _, off = string.unpack("<I2I2I4", data, base + pos)
  if len == 0 then return "" end
  local first = base + off
  if off < 8 or first + len - 1 > #data then return nil end
  return data:sub(first, first + len - 1)
end

local function parse_at(data, base)
  if base + 32 > #data + 1 then return nil end
  local mtype = string.unpack("<I4", data, base + 8)
  if mtype ~= 2 then return nil end
  local flags = string.unpack("<I4", data, base + 20)
  local r = { flags = flags, challenge = data:sub(base + 24, base + 31) }
  local unicode = flags & M.NEGOTIATE_UNICODE ~= 0
  local target = field(data, base, 12)
  if target and target ~= "" then r.target_name = unicode and M.utf16le(target) or M.printable(target) end
  if base + 48 <= #data + 1 then
    local info = field(data, base, 40)
    local pos, n = 1, 0
    while info and pos + 3 <= #info and n < M.MAX_AV_PAIRS do
      n = n + 1
      local id, len = string.unpack("<I2I2", info, pos)
      pos = pos + 4
      if id == 0 or pos + len - 1 > #info then break end
      local value = info:sub(pos, pos + len - 1)
      pos = pos + len
      if AV[id] then
        r[AV[id]] = M.utf16le(value)
      elseif id == 7 and len == 8 then
        r.timestamp = M.filetime_to_unix(string.unpack("<I8", value))
      end
    end
  end
  -- The Version field sits after the fixed fields when NEGOTIATE_VERSION is set; a payload that
  -- starts before byte 56 means there is none.
  if flags & M.NEGOTIATE_VERSION ~= 0 and base + 56 <= #data + 1 then
    local major, minor, build, _, _, _, rev = string.unpack("<BBI2BBBB", data, base + 48)
    if major > 0 then
      r.os_major, r.os_minor, r.os_build, r.ntlm_revision = major, minor, build, rev
      r.version = string.format("%d.%d.%d", major, minor, build)
    end
  end
  return r
end

function M.parse_challenge(data)
  if type(data) ~= "string" then return nil end
  local start = 1
  for _ = 1, 16 do
    local base = data:find(M.SIGNATURE, start, true)
    if not base then return nil end
    local ok, r = pcall(parse_at, data, base)
    if ok and r then return r end
    start = base + 1
  end
  return nil
end

return M
