-- redis-info: reports what a Redis server tells about itself (INFO).
-- Written for RustMap from the Redis serialization protocol (RESP) specification and the
-- INFO command's documentation; not derived from nmap's redis-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends INFO to a Redis server (RESP, no authentication) and reports its version, mode, role,
operating system, process id, uptime, clients, memory and the number of keys per database.
A server that requires a password answers with an error, which is reported as such
(authentication required) — itself worth knowing. Nothing is written.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({6379}, {"redis"})

-- INFO answers are a few KiB; a bulk string announced larger than this is not read.
local MAX_INFO = 1024 * 1024
local MAX_VALUE = 256

-- Reported fields, in order: INFO key and label.
local FIELDS = {
  { "redis_version", "Version" },
  { "redis_mode", "Mode" },
  { "role", "Role" },
  { "os", "Operating system" },
  { "arch_bits", "Architecture" },
  { "process_id", "Process ID" },
  { "tcp_port", "TCP port" },
  { "uptime_in_seconds", "Uptime (seconds)" },
  { "connected_clients", "Connected clients" },
  { "used_memory_human", "Used memory" },
  { "executable", "Executable" },
  { "config_file", "Config file" },
}

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_VALUE then s = s:sub(1, MAX_VALUE) .. "..." end
  return s
end

action = function(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(10000)
  local tls = port.version and port.version.service_tunnel == "ssl"
  if not socket:connect(host, port, tls and "ssl" or "tcp") then return nil end
  socket:send("*1\r\n$4\r\nINFO\r\n")
  local ok, first = socket:receive_buf("\r\n", false)
  if not ok then socket:close() return nil end
  local out = stdnse.output_table()
  if first:sub(1, 1) == "-" then
    socket:close()
    if first:find("NOAUTH", 1, true) or first:lower():find("auth", 1, true) then
      out.authentication = "required"
      return out, "Authentication required: " .. printable(first:sub(2))
    end
    return nil
  end
  local size = tonumber(first:match("^%$(%d+)$"))
  if not size or size > MAX_INFO then socket:close() return nil end
  local body = ""
  while #body < size do
    local got, data = socket:receive_bytes(size - #body)
    if not got then break end
    body = body .. data
  end
  socket:close()
  local info, dbs = {}, {}
  for line in body:gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w_]+):(.*)$")
    if k then
      info[k] = v
      local db = k:match("^db(%d+)$")
      if db and #dbs < 64 then
        dbs[#dbs + 1] = { db = tonumber(db), keys = tonumber(v:match("keys=(%d+)")) }
      end
    end
  end
  if not info.redis_version then return nil end
  local lines = {}
  for _, f in ipairs(FIELDS) do
    local v = info[f[1]]
    if v and v ~= "" then
      v = printable(v)
      if f[1] == "arch_bits" then v = v .. " bits" end
      out[f[2]] = v
      lines[#lines + 1] = f[2] .. ": " .. v
    end
  end
  if #dbs > 0 then
    local keys = {}
    for _, d in ipairs(dbs) do keys[#keys + 1] = string.format("db%d=%s", d.db, tostring(d.keys)) end
    out.Keyspace = keys
    lines[#lines + 1] = "Keyspace: " .. table.concat(keys, " ")
  end
  return out, table.concat(lines, "\n")
end
