-- rtsp-methods: reports the methods an RTSP server supports (OPTIONS).
-- Written for RustMap from RFC 2326 (RTSP 1.0, sections 10.1 and 12.34); not derived from
-- nmap's rtsp-methods script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends "OPTIONS * RTSP/1.0" to a streaming server (cameras, media servers) and reports the
methods its Public header lists, and its Server header when it sends one.

Script arguments: rtsp-methods.path (the request URI, default "*").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({554, 8554}, {"rtsp"})

local MAX_HEAD = 16384

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > 256 then s = s:sub(1, 256) .. "..." end
  return s
end

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".path") or "*"
  local socket = nmap.new_socket()
  socket:set_timeout(8000)
  if not socket:connect(host, port, "tcp") then return nil end
  socket:send("OPTIONS " .. path .. " RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: RustMap\r\n\r\n")
  local ok, head = socket:receive_buf("\r\n\r\n", false)
  socket:close()
  if not ok or not head:match("^RTSP/%d%.%d %d%d%d") then return nil end
  head = head:sub(1, MAX_HEAD)
  local headers = {}
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w-]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  if not headers.public then return nil end
  local methods = {}
  for m in headers.public:gmatch("[^,%s]+") do
    if #methods < 32 then methods[#methods + 1] = printable(m) end
  end
  local out = stdnse.output_table()
  out.methods = methods
  local text = table.concat(methods, ", ")
  if headers.server then
    out.server = printable(headers.server)
    text = text .. "\nServer: " .. out.server
  end
  return out, text
end
