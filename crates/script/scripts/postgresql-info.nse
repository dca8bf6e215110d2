-- postgresql-info: reports what a PostgreSQL server reveals before authentication.
-- Written for RustMap from PostgreSQL's frontend/backend protocol documentation (message
-- flow and formats, protocol 3.0); not derived from any nmap script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Learns what a PostgreSQL server tells a client that has no password, in three short
connections: whether it accepts TLS (SSLRequest: S or N), which protocol versions it speaks
(a StartupMessage for protocol 3.99 draws NegotiateProtocolVersion with the newest 3.x the
server supports), and which
authentication it asks of a user (StartupMessage for the user in postgresql-info.user:
trust — no password at all —, cleartext password, MD5, SASL with its mechanisms such as
SCRAM-SHA-256, or the server's refusal, e.g. no pg_hba.conf entry). No password is sent; the
connections end at the server's first answer.

Script arguments: postgresql-info.user (default "postgres"), postgresql-info.database
(default: the user's name).
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({5432}, {"postgresql"})

local MAX_MESSAGE = 8192
local MAX_TEXT = 256

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_TEXT then s = s:sub(1, MAX_TEXT) .. "..." end
  return s
end

local function connect(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(8000)
  if not socket:connect(host, port, "tcp") then return nil end
  return socket
end

local function startup(version, params)
  local body = string.pack(">I4", version)
  for _, kv in ipairs(params) do body = body .. kv[1] .. "\0" .. kv[2] .. "\0" end
  body = body .. "\0"
  return string.pack(">I4", #body + 4) .. body
end

--- Reads one backend message: its type byte and payload, or nil.
local function read_message(socket)
  local ok, head = socket:receive_bytes(5)
  if not ok or #head < 5 then return nil end
  local kind, len = head:sub(1, 1), string.unpack(">I4", head, 2)
  if len < 4 or len > MAX_MESSAGE then return nil end
  local payload = head:sub(6)
  while #payload < len - 4 do
    local got, more = socket:receive_bytes(len - 4 - #payload)
    if not got then return nil end
    payload = payload .. more
  end
  return kind, payload:sub(1, len - 4)
end

--- An ErrorResponse's fields: severity (S/V), code (C), message (M).
local function error_fields(payload)
  local fields, pos = {}, 1
  while pos <= #payload do
    local code = payload:sub(pos, pos)
    if code == "\0" then break end
    local value, nxt = payload:match("^([^%z]*)%z()", pos + 1)
    if not value then break end
    fields[code] = value
    pos = nxt
  end
  return fields
end

local AUTH = { [0] = "trust (no password)", [2] = "Kerberos V5", [3] = "cleartext password",
  [5] = "MD5 password", [7] = "GSSAPI", [9] = "SSPI" }

action = function(host, port)
  local user = stdnse.get_script_args(SCRIPT_NAME .. ".user") or "postgres"
  local database = stdnse.get_script_args(SCRIPT_NAME .. ".database") or user
  local out, lines = stdnse.output_table(), {}

  -- 1. SSLRequest (code 80877103): one byte back.
  local socket = connect(host, port)
  if not socket then return nil end
  socket:send(string.pack(">I4I4", 8, 80877103))
  local ok, answer = socket:receive_bytes(1)
  socket:close()
  if not ok then return nil end
  local first = answer:sub(1, 1)
  if first == "S" then out.ssl = "supported"
  elseif first == "N" then out.ssl = "not supported"
  else return nil end
  lines[#lines + 1] = "SSL: " .. out.ssl

  -- 2. Protocol 3.99, a minor version no server speaks: servers since 9.3 answer with
  -- NegotiateProtocolVersion ('v'), naming the newest 3.x minor version they support.
  socket = connect(host, port)
  if socket then
    socket:send(startup(3 * 65536 + 99, { { "user", user } }))
    local kind, payload = read_message(socket)
    socket:close()
    if kind == "v" and #payload >= 4 then
      -- The documentation says "newest minor version"; servers send the whole version
      -- number (major << 16 | minor): take the low half either way.
      local newest = string.unpack(">I4", payload) & 0xffff
      if newest < 99 then
        out.protocol = "3.0 to 3." .. newest
        lines[#lines + 1] = "Protocol versions: " .. out.protocol
      end
    elseif kind == "E" then
      local m = error_fields(payload).M or ""
      local range = m:match("server supports (%d+%.%d+ to %d+%.%d+)")
      if range then
        out.protocol = range
        lines[#lines + 1] = "Protocol versions: " .. range
      end
    end
  end

  -- 3. A StartupMessage for the user: the authentication request (or refusal).
  socket = connect(host, port)
  if not socket then return out, table.concat(lines, "\n") end
  socket:send(startup(196608, { { "user", user }, { "database", database }, { "application_name", "rustmap" } }))
  local kind, payload = read_message(socket)
  socket:close()
  if kind == "R" and #payload >= 4 then
    local code = string.unpack(">I4", payload)
    if code == 10 then
      local mechs = {}
      for m in payload:sub(5):gmatch("([^%z]+)%z") do
        if #mechs < 16 then mechs[#mechs + 1] = printable(m) end
      end
      out.authentication = "SASL (" .. table.concat(mechs, ", ") .. ")"
    else
      out.authentication = AUTH[code] or ("method " .. code)
    end
  elseif kind == "E" then
    local f = error_fields(payload)
    out.authentication = "refused: " .. printable((f.V or f.S or "ERROR") .. " " .. (f.C or "") .. " " .. (f.M or ""))
  end
  if out.authentication then
    out.user = user
    lines[#lines + 1] = "Authentication for " .. printable(user) .. ": " .. out.authentication
  end
  return out, table.concat(lines, "\n")
end
