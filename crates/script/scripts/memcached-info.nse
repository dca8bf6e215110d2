-- memcached-info: reports what a memcached server tells about itself (stats).
-- Written for RustMap from memcached's protocol.txt (text protocol, "stats"); not derived from
-- nmap's memcached-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends the text protocol's "stats" command to a memcached server (TCP) and reports its version,
process id, uptime, the operating system word size, the memory limit, the connection limit,
threads and the items it holds. Nothing is written.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({11211}, {"memcache", "memcached"}, "tcp")

local MAX_LINES = 200
local MAX_VALUE = 128

-- Reported statistics, in order: stat name and label.
local FIELDS = {
  { "version", "Version" },
  { "pid", "Process ID" },
  { "uptime", "Uptime (seconds)" },
  { "pointer_size", "Architecture" },
  { "limit_maxbytes", "Memory limit (bytes)" },
  { "max_connections", "Connection limit" },
  { "threads", "Threads" },
  { "curr_connections", "Current connections" },
  { "curr_items", "Items" },
  { "total_items", "Items stored since start" },
}

action = function(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(10000)
  if not socket:connect(host, port, "tcp") then return nil end
  socket:send("stats\r\n")
  local stats = {}
  for _ = 1, MAX_LINES do
    local ok, line = socket:receive_buf("\r?\n", false)
    if not ok or line == "END" then break end
    local k, v = line:match("^STAT ([%w_:]+) (.*)$")
    if not k then break end
    stats[k] = v:gsub("[^\32-\126]", "?"):sub(1, MAX_VALUE)
  end
  socket:send("quit\r\n")
  socket:close()
  if not stats.version then return nil end
  local out, lines = stdnse.output_table(), {}
  for _, f in ipairs(FIELDS) do
    local v = stats[f[1]]
    if v then
      if f[1] == "pointer_size" then v = v .. " bits" end
      out[f[2]] = v
      lines[#lines + 1] = f[2] .. ": " .. v
    end
  end
  return out, table.concat(lines, "\n")
end
