-- smb: SMB over TCP (445, or 139 after a NetBIOS session request) for scripts: SMB2 NEGOTIATE
-- and SESSION_SETUP, the SMB1 (NT LM 0.12) NEGOTIATE and an anonymous SESSION_SETUP_ANDX, and
-- a SPNEGO NegTokenInit wrapper. Written for RustMap from MS-SMB2 (sections 2.2.1, 2.2.3,
-- 2.2.4, 2.2.5, 2.2.6), MS-SMB / MS-CIFS (SMB_COM_NEGOTIATE, SMB_COM_SESSION_SETUP_ANDX),
-- RFC 1002 (session service) and RFC 4178 (SPNEGO); not derived from nmap's smb or smb2
-- libraries.
--
-- Everything read is hostile: frames are at most M.MAX_FRAME bytes, every field is checked
-- against the bytes that are there, strings are made printable.
--
-- M.port(host) -> the TCP port to use (script arg smbport, else 445, else 139, if open) or nil.
-- M.connect(host, port, opts) -> conn or nil, err (opts.timeout in ms, default 5000).
-- conn:send(payload), conn:receive() -> payload (one session-service frame) or nil, err.
-- conn:close().
-- M.negotiate2(conn, dialects) -> { status=, dialect=, security_mode=, capabilities=,
--   server_guid=, system_time=, start_time= (Unix seconds or nil), security_blob= } or nil, err.
-- M.session_setup2(conn, blob, dialect) -> { status=, session_id=, security_blob= } or nil, err.
-- M.negotiate1(conn) -> { dialect_index=, security_mode=, capabilities=, system_time=,
--   timezone= (minutes), domain=, server= } or nil, err (nil when SMB1 is refused).
-- M.session_setup1(conn) -> { native_os=, native_lanman=, primary_domain= } or nil, err.
-- M.dialect_name(d) -> "3:1:1"; M.DIALECTS: the SMB2 dialects in order.
-- M.spnego_init(token) -> a NegTokenInit offering NTLMSSP with `token` as the mechToken.
local nmap = require "nmap"
local stdnse = require "stdnse"
local ntlm = require "ntlm"

local M = {}

M.MAX_FRAME = 256 * 1024
M.DIALECTS = { 0x0202, 0x0210, 0x0300, 0x0302, 0x0311 }
M.STATUS_SUCCESS = 0
M.STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016

-- SecurityMode bits (SMB2 negotiate).
M.SIGNING_ENABLED, M.SIGNING_REQUIRED = 0x01, 0x02

function M.dialect_name(d)
  return string.format("%d:%d:%d", d >> 8, (d >> 4) & 0xf, d & 0xf)
end

function M.port(host)
  local wanted = { 445, 139 }
  local arg = tonumber(stdnse.get_script_args("smbport"))
  if arg then wanted = { arg } end
  for _, n in ipairs(wanted) do
    local p = nmap.get_port_state(host, { number = n, protocol = "tcp" })
    if p and p.state == "open" then return n end
  end
  return nil
end

local Conn = {}
Conn.__index = Conn

function Conn:send(payload)
  return self.socket:send(string.pack(">I4", #payload & 0xffffff) .. payload)
end

--- Reads until `n` bytes are buffered (bounded by M.MAX_FRAME); true or nil, err.
function Conn:fill(n)
  for _ = 1, 4096 do
    if #self.buf >= n then return true end
    local ok, data = self.socket:receive()
    if not ok then return nil, data end
    self.buf = self.buf .. data
    if #self.buf > M.MAX_FRAME + 4 then return nil, "frame too large" end
  end
  return nil, "too many reads"
end

function Conn:receive()
  for _ = 1, 8 do
    local ok, err = self:fill(4)
    if not ok then return nil, err end
    local kind, len = self.buf:byte(1), string.unpack(">I4", self.buf) & 0xffffff
    if len > M.MAX_FRAME then return nil, "frame too large" end
    ok, err = self:fill(4 + len)
    if not ok then return nil, err end
    local frame = self.buf:sub(5, 4 + len)
    self.buf = self.buf:sub(5 + len)
    -- 0x85: session keep-alive; anything else but a session message is not SMB.
    if kind == 0 then return frame end
    if kind ~= 0x85 then return nil, "not a session message" end
  end
  return nil, "no message"
end

function Conn:close() self.socket:close() end

--- RFC 1001 first-level encoding of a NetBIOS name with a suffix.
local function nb_name(name, suffix)
  local padded = (name .. string.rep(" ", 15)):sub(1, 15) .. string.char(suffix)
  local out = {}
  for i = 1, 16 do
    local b = padded:byte(i)
    out[i] = string.char(0x41 + (b >> 4), 0x41 + (b & 0x0f))
  end
  return "\32" .. table.concat(out) .. "\0"
end

function M.connect(host, port, opts)
  opts = opts or {}
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, "tcp")
  if not ok then return nil, err end
  local conn = setmetatable({ socket = socket, buf = "" }, Conn)
  if port == 139 then
    -- NetBIOS session request to the generic server name.
    local body = nb_name("*SMBSERVER", 0x20) .. nb_name("RUSTMAP", 0)
    socket:send(string.pack(">BBI2", 0x81, 0, #body) .. body)
    local got
    got, err = conn:fill(4)
    if not got or conn.buf:byte(1) ~= 0x82 then
      socket:close()
      return nil, err or "session request refused"
    end
    conn.buf = conn.buf:sub(5)
  end
  return conn
end

--- The 64-byte SMB2 header of a request.
local function header2(command, message_id, credit_charge, session_id)
  return string.pack("<c4I2I2I4I2I2I4I4I8I4I4I8", "\xfeSMB", 64, credit_charge or 0, 0, command, 31, 0, 0,
    message_id, 0xfeff, 0, session_id or 0) .. string.rep("\0", 16)
end

--- A parsed SMB2 response header: status, command, session id, or nil.
local function parse_header2(frame)
  if #frame < 64 or frame:sub(1, 4) ~= "\xfeSMB" then return nil end
  local _, _, status, command = string.unpack("<I2I2I4I2", frame, 5)
  local session_id = string.unpack("<I8", frame, 41)
  return status, command, session_id
end

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

function M.negotiate2(conn, dialects)
  local body = string.pack("<I2I2I2I2I4", 36, #dialects, M.SIGNING_ENABLED, 0, 0) .. random_bytes(16)
  local has311 = false
  for _, d in ipairs(dialects) do has311 = has311 or d == 0x0311 end
  local list = {}
  for i, d in ipairs(dialects) do list[i] = string.pack("<I2", d) end
  local dl = table.concat(list)
  local tail = ""
  if has311 then
    -- Negotiate contexts, 8-byte aligned: SHA-512 preauth integrity with a salt, and the
    -- AES-128-GCM and -CCM ciphers.
    local start = 64 + 36 + #dl
    local pad = (8 - start % 8) % 8
    local pre_data = string.pack("<I2I2I2", 1, 32, 1) .. random_bytes(32)
    local pre = string.pack("<I2I2I4", 1, #pre_data, 0) .. pre_data
    local enc_data = string.pack("<I2I2I2", 2, 2, 1)
    local enc = string.pack("<I2I2I4", 2, #enc_data, 0) .. enc_data
    local pad2 = (8 - #pre % 8) % 8
    body = body .. string.pack("<I4I2I2", start + pad, 2, 0)
    tail = string.rep("\0", pad) .. pre .. string.rep("\0", pad2) .. enc
  else
    body = body .. string.rep("\0", 8)
  end
  local ok, err = conn:send(header2(0, 0, 0) .. body .. dl .. tail)
  if not ok then return nil, err end
  local frame
  frame, err = conn:receive()
  if not frame then return nil, err end
  local status, command = parse_header2(frame)
  if not status then return nil, "not an SMB2 answer" end
  if command ~= 0 then return nil, "unexpected command" end
  local r = { status = status }
  if status ~= M.STATUS_SUCCESS then return r end
  if #frame < 128 then return nil, "short negotiate response" end
  local _, security_mode, dialect, _, guid, caps, _, _, _, systime, start, sb_off, sb_len =
    string.unpack("<I2I2I2I2c16I4I4I4I4I8I8I2I2", frame, 65)
  r.security_mode, r.dialect, r.capabilities = security_mode, dialect, caps
  r.server_guid = guid
  r.system_time = ntlm.filetime_to_unix(systime)
  r.start_time = ntlm.filetime_to_unix(start)
  if sb_len > 0 and sb_off >= 64 and sb_off + sb_len <= #frame then
    r.security_blob = frame:sub(sb_off + 1, sb_off + sb_len)
  end
  return r
end

function M.session_setup2(conn, blob, dialect)
  local charge = (dialect and dialect ~= 0x0202) and 1 or 0
  local body = string.pack("<I2BBI4I4I2I2I8", 25, 0, M.SIGNING_ENABLED, 0, 0, 64 + 24, #blob, 0)
  local ok, err = conn:send(header2(1, 1, charge) .. body .. blob)
  if not ok then return nil, err end
  local frame
  frame, err = conn:receive()
  if not frame then return nil, err end
  local status, command, session_id = parse_header2(frame)
  if not status or command ~= 1 then return nil, "not a session setup answer" end
  local r = { status = status, session_id = session_id }
  if #frame >= 72 then
    local _, _, sb_off, sb_len = string.unpack("<I2I2I2I2", frame, 65)
    if sb_len > 0 and sb_off >= 64 and sb_off + sb_len <= #frame then
      r.security_blob = frame:sub(sb_off + 1, sb_off + sb_len)
    end
  end
  return r
end

-- SMB1 -------------------------------------------------------------------------------------

local FLAGS2 = 0xc001 -- Unicode, NT status codes, long names

local function header1(command)
  return string.pack("<c4BI4BI2I2c8I2I2I2I2I2", "\xffSMB", command, 0, 0x18, FLAGS2, 0, string.rep("\0", 8), 0,
    0, 0xfeff, 0, 1)
end

--- A null-terminated string at `pos`: UTF-16LE (aligned to the SMB header) when `unicode`,
--- else OEM; its printable text (at most ntlm.MAX_STRING characters) and the position after it.
local function smb1_string(frame, pos, unicode)
  if pos > #frame then return nil, pos end
  if unicode then
    if (pos - 1) % 2 == 1 then pos = pos + 1 end
    local i, limit = pos, math.min(#frame, pos + 2 * ntlm.MAX_STRING)
    while i + 1 <= limit and frame:sub(i, i + 1) ~= "\0\0" do i = i + 2 end
    return ntlm.utf16le(frame:sub(pos, i - 1)), i + 2
  end
  local e = frame:find("\0", pos, true) or (#frame + 1)
  return ntlm.printable(frame:sub(pos, e - 1)), e + 1
end

function M.negotiate1(conn)
  local dialects = "\2NT LM 0.12\0"
  local ok, err = conn:send(header1(0x72) .. string.pack("<BI2", 0, #dialects) .. dialects)
  if not ok then return nil, err end
  local frame
  frame, err = conn:receive()
  if not frame then return nil, err end
  if #frame < 35 or frame:sub(1, 4) ~= "\xffSMB" or frame:byte(5) ~= 0x72 then return nil, "not SMB1" end
  local status = string.unpack("<I4", frame, 6)
  local wc = frame:byte(33)
  if status ~= 0 or wc ~= 17 or #frame < 33 + 34 + 2 then return nil, "SMB1 refused" end
  local index, security_mode, _, _, _, _, _, caps, systime, tz, clen =
    string.unpack("<I2BI2I2I4I4I4I4I8i2B", frame, 34)
  if index ~= 0 then return nil, "SMB1 refused" end
  local flags2 = string.unpack("<I2", frame, 11)
  local r = { dialect_index = index, security_mode = security_mode, capabilities = caps,
    system_time = ntlm.filetime_to_unix(systime), timezone = -tz }
  local bc_pos = 34 + 34
  local bc = string.unpack("<I2", frame, bc_pos)
  local data = frame:sub(bc_pos + 2, bc_pos + 1 + bc)
  -- Without extended security: the challenge, then the domain and server names.
  if caps & 0x80000000 == 0 and clen <= #data then
    local unicode = flags2 & 0x8000 ~= 0
    local pos = bc_pos + 2 + clen
    local limit = frame:sub(1, bc_pos + 1 + bc)
    r.domain, pos = smb1_string(limit, pos, unicode)
    r.server = smb1_string(limit, pos, unicode)
  end
  return r
end

function M.session_setup1(conn)
  local words = string.pack("<BBI2I2I2I2I4I2I2I4I4", 0xff, 0, 0, 0xffff, 1, 0, 0, 0, 0, 0, 0x4c)
  -- 32 + 1 + 26 + 2 = 61: one byte of padding aligns the Unicode strings.
  local bytes = "\0" .. "\0\0" .. "\0\0" .. "U\0n\0i\0x\0\0\0" .. "R\0u\0s\0t\0M\0a\0p\0\0\0"
  local ok, err = conn:send(header1(0x73) .. string.char(13) .. words .. string.pack("<I2", #bytes) .. bytes)
  if not ok then return nil, err end
  local frame
  frame, err = conn:receive()
  if not frame then return nil, err end
  if #frame < 35 or frame:sub(1, 4) ~= "\xffSMB" or frame:byte(5) ~= 0x73 then return nil, "not SMB1" end
  local wc = frame:byte(33)
  local bc_pos = 34 + 2 * wc
  if bc_pos + 1 > #frame then return nil, "short answer" end
  local flags2 = string.unpack("<I2", frame, 11)
  local bc = string.unpack("<I2", frame, bc_pos)
  local limit = frame:sub(1, bc_pos + 1 + bc)
  local unicode = flags2 & 0x8000 ~= 0
  local r, pos = {}, bc_pos + 2
  r.native_os, pos = smb1_string(limit, pos, unicode)
  r.native_lanman, pos = smb1_string(limit, pos, unicode)
  r.primary_domain = smb1_string(limit, pos, unicode)
  return r
end

-- SPNEGO -----------------------------------------------------------------------------------

local function der(tag, body)
  local n = #body
  local len
  if n < 128 then
    len = string.char(n)
  elseif n < 256 then
    len = string.char(0x81, n)
  else
    len = string.pack(">BI2", 0x82, n)
  end
  return string.char(tag) .. len .. body
end
M.der = der

function M.spnego_init(token)
  local spnego_oid = der(0x06, "\x2b\x06\x01\x05\x05\x02")
  local ntlm_oid = der(0x06, "\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a")
  local init = der(0x30, der(0xa0, der(0x30, ntlm_oid)) .. der(0xa2, der(0x04, token)))
  return der(0x60, spnego_oid .. der(0xa0, init))
end

return M
