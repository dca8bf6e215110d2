-- ssh2 for RustMap: enough of the SSH transport (RFC 4253, curve25519 key exchange of RFC 8731)
-- to learn a server's host key, under NSE's documented name fetch_host_key. The exchange stops
-- after the server's KEX_ECDH_REPLY: no session is set up and no secret is derived, so the
-- client's ephemeral key can be random bytes.
-- Written for RustMap from the RFCs and the NSE API documentation.
local nmap = require "nmap"
local openssl = require "openssl"
local base64 = require "base64"
local M = {}

local MSG_KEXINIT, MSG_KEX_ECDH_INIT, MSG_KEX_ECDH_REPLY = 20, 30, 31
local MAX_PACKET = 256 * 1024

local function namelist(s) return string.pack(">s4", s) end

local function packet(payload)
  local padding = 8 - ((#payload + 5) % 8)
  if padding < 4 then padding = padding + 8 end
  return string.pack(">I4B", #payload + padding + 1, padding) .. payload .. openssl.rand_bytes(padding)
end

local function kexinit(key_type)
  return string.char(MSG_KEXINIT) .. openssl.rand_bytes(16)
    .. namelist("curve25519-sha256,curve25519-sha256@libssh.org")
    .. namelist(key_type)
    .. namelist("aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,chacha20-poly1305@openssh.com")
    .. namelist("aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,chacha20-poly1305@openssh.com")
    .. namelist("hmac-sha2-256,hmac-sha1") .. namelist("hmac-sha2-256,hmac-sha1")
    .. namelist("none") .. namelist("none") .. namelist("") .. namelist("")
    .. string.pack(">BI4", 0, 0)
end

-- Reads one unencrypted packet's payload.
local function read_packet(socket, buf)
  while #buf < 5 do
    local ok, data = socket:receive()
    if not ok then return nil, data end
    buf = buf .. data
  end
  local len = string.unpack(">I4", buf)
  if len < 5 or len > MAX_PACKET then return nil, "bad packet length" end
  while #buf < 4 + len do
    local ok, data = socket:receive()
    if not ok then return nil, data end
    buf = buf .. data
  end
  local padding = buf:byte(5)
  if padding + 1 > len then return nil, "bad padding" end
  return buf:sub(6, 4 + len - padding), buf:sub(5 + len)
end

local function bits_of(mpint)
  local first = 1
  while first <= #mpint and mpint:byte(first) == 0 do first = first + 1 end
  if first > #mpint then return 0 end
  local top, bits = mpint:byte(first), 0
  while top > 0 do bits = bits + 1; top = top >> 1 end
  return (#mpint - first) * 8 + bits
end

local ALGORITHMS = {
  ["ssh-rsa"] = "RSA", ["ssh-dss"] = "DSA", ["ssh-ed25519"] = "ED25519",
  ["ecdsa-sha2-nistp256"] = "ECDSA", ["ecdsa-sha2-nistp384"] = "ECDSA", ["ecdsa-sha2-nistp521"] = "ECDSA",
}

-- Describes a host key blob as NSE's host key table.
function M.describe_key(blob)
  local ok, key_type, pos = pcall(string.unpack, ">s4", blob)
  if not ok then return nil end
  local bits
  if key_type == "ssh-rsa" then
    local ok2, _, n = pcall(string.unpack, ">s4s4", blob, pos)
    bits = ok2 and bits_of(n) or 0
  elseif key_type == "ssh-ed25519" then
    bits = 256
  elseif key_type:match("^ecdsa%-sha2%-nistp") then
    bits = tonumber(key_type:match("(%d+)$"))
  else
    bits = 0
  end
  return {
    key = base64.enc(blob), key_type = key_type, fp_input = blob, bits = bits,
    full_key = key_type .. " " .. base64.enc(blob),
    algorithm = ALGORITHMS[key_type] or key_type,
    fingerprint = openssl.md5(blob),
    fp_sha256 = openssl.digest("sha256", blob),
  }
end

function M.fetch_host_key(host, port, key_type)
  key_type = key_type or "ssh-ed25519"
  local socket = nmap.new_socket()
  socket:set_timeout(5000)
  if not socket:connect(host, port) then return nil end
  -- The server's identification may follow other lines (RFC 4253 4.2).
  local buf, version = "", nil
  for _ = 1, 20 do
    local ok, line = socket:receive_buf("\r?\n", false)
    if not ok then socket:close() return nil end
    if line:sub(1, 4) == "SSH-" then version = line break end
  end
  if not version then socket:close() return nil end
  socket:send("SSH-2.0-RustMap_SSH_probe\r\n")
  socket:send(packet(kexinit(key_type)))
  socket:send(packet(string.char(MSG_KEX_ECDH_INIT) .. string.pack(">s4", openssl.rand_bytes(32))))
  local result
  for _ = 1, 8 do
    local payload, rest = read_packet(socket, buf)
    if not payload then break end
    buf = rest
    local msg = payload:byte(1)
    if msg == MSG_KEX_ECDH_REPLY then
      local ok, blob = pcall(string.unpack, ">s4", payload, 2)
      if ok then result = M.describe_key(blob) end
      break
    elseif msg ~= MSG_KEXINIT and msg ~= 2 and msg ~= 4 then
      break -- a disconnect or anything unexpected
    end
  end
  socket:close()
  if result then result.server_version = version end
  return result
end

return M
