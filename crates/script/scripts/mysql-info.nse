-- mysql-info: reports what a MySQL or MariaDB server says in its greeting.
-- Written for RustMap from the MySQL client/server protocol documentation (Protocol::Handshake
-- v10, capability flags, status flags, ERR_Packet) and MariaDB's (extended capabilities); not
-- derived from nmap's mysql-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Reads the server's initial handshake packet (sent before any login) and reports the protocol
version, the server version, the connection (thread) id, the capability flags by name, the
status flags, the authentication plugin and the salt's printable form. A server that refuses
the client outright (e.g. "Host ... is not allowed to connect") answers with an error packet,
whose code and message are reported instead. Nothing is sent.

Script arguments:
  mysql-info.timeout  milliseconds to wait for the greeting (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({3306}, {"mysql"})

-- Capability flags (lower and upper 16 bits).
local CAPS = {
  [0x00000001] = "LongPassword", [0x00000002] = "FoundRows", [0x00000004] = "LongColumnFlag",
  [0x00000008] = "ConnectWithDatabase", [0x00000010] = "DontAllowDatabaseTableColumn",
  [0x00000020] = "SupportsCompression", [0x00000040] = "ODBCClient", [0x00000080] = "SupportsLoadDataLocal",
  [0x00000100] = "IgnoreSpaceBeforeParenthesis", [0x00000200] = "Speaks41ProtocolNew",
  [0x00000400] = "InteractiveClient", [0x00000800] = "SwitchToSSLAfterHandshake",
  [0x00001000] = "IgnoreSigpipes", [0x00002000] = "SupportsTransactions", [0x00004000] = "Speaks41ProtocolOld",
  [0x00008000] = "Support41Auth", [0x00010000] = "SupportsMultipleStatments",
  [0x00020000] = "SupportsMultipleResults", [0x00040000] = "SupportsPreparedStatementMultipleResults",
  [0x00080000] = "SupportsAuthPlugins", [0x00100000] = "ConnectAttributes",
  [0x00200000] = "PluginAuthLenencData", [0x00400000] = "CanHandleExpiredPasswords",
  [0x00800000] = "SessionTrack", [0x01000000] = "DeprecateEOF",
}
local STATUS = { [0x0001] = "InTransaction", [0x0002] = "Autocommit", [0x0008] = "MoreResultsExist",
  [0x4000] = "SessionStateChanged" }

local function printable(s) return (s:gsub("[^\32-\126]", "?")) end

local function names(flags, table_)
  local out = {}
  for bit = 0, 31 do
    local v = 1 << bit
    if flags & v ~= 0 and table_[v] then out[#out + 1] = table_[v] end
  end
  return out
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "tcp") then return nil end
  local ok, head = socket:receive_bytes(4)
  if not ok or #head < 4 then
    socket:close()
    return nil
  end
  local len = string.unpack("<I3", head)
  if len < 1 or len > 16384 then
    socket:close()
    return nil
  end
  local body = head:sub(5)
  while #body < len do
    local rok, more = socket:receive()
    if not rok then break end
    body = body .. more
    if #body > 16384 then break end
  end
  socket:close()
  body = body:sub(1, len)
  if #body < len then return nil end
  local out = stdnse.output_table()
  if body:byte(1) == 0xff then
    if #body < 3 then return nil end
    local code = string.unpack("<I2", body, 2)
    local msg = body:sub(4):gsub("^#%w%w%w%w%w", "")
    out["Error code"] = code
    out["Error message"] = printable(msg):sub(1, 256)
    return out
  end
  if body:byte(1) ~= 10 then return nil end
  -- Handshake v10: protocol, version (NUL-terminated), thread id, salt part 1, filler,
  -- capabilities (low), charset, status, capabilities (high), salt length, reserved, salt 2.
  local parsed, result = pcall(function()
    local version, p = string.unpack("z", body, 2)
    local thread, salt1, _, caps_lo, charset, status, caps_hi, salt_len
    thread, salt1, _, caps_lo, charset, status, caps_hi, salt_len, p = string.unpack("<I4c8BI2BI2I2B", body, p)
    p = p + 10
    local salt2 = body:sub(p, p + math.max(12, salt_len - 9) - 1)
    p = p + math.max(13, salt_len - 8)
    local plugin = body:sub(p):match("^[^%z]*")
    return { version = version, thread = thread, caps = caps_lo | (caps_hi << 16), charset = charset,
      status = status, salt = salt1 .. salt2, plugin = plugin }
  end)
  if not parsed then return nil end
  local h = result
  out.Protocol = 10
  out.Version = printable(h.version):sub(1, 128)
  out["Thread ID"] = h.thread
  out.Capabilities = string.format("0x%08x", h.caps)
  out["Some Capabilities"] = table.concat(names(h.caps, CAPS), ", ")
  out.Status = table.concat(names(h.status, STATUS), ", ")
  out.Salt = printable(h.salt)
  if h.plugin and h.plugin ~= "" then out["Auth Plugin Name"] = printable(h.plugin):sub(1, 64) end
  return out
end
