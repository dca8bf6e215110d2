-- comm for RustMap: common connect/send/receive exchanges under NSE's documented names
-- (get_banner, exchange, opencon, tryssl). Written for RustMap from the NSE API documentation.
local nmap = require "nmap"
local shortport = require "shortport"
local M = {}

local function read(socket, opts)
  if opts.lines then return socket:receive_lines(opts.lines) end
  if opts.bytes then return socket:receive_bytes(opts.bytes) end
  return socket:receive()
end

function M.opencon(host, port, data, opts)
  opts = opts or {}
  local socket = nmap.new_socket()
  socket:set_timeout(opts.connect_timeout or opts.timeout or 5000)
  local proto = opts.proto or (type(port) == "table" and port.protocol) or "tcp"
  local ok, err = socket:connect(host, port, proto)
  if not ok then return nil, err end
  socket:set_timeout(opts.request_timeout or opts.timeout or 5000)
  local early
  if opts.recv_before then
    local rok, rdata = read(socket, opts)
    if rok then early = rdata end
  end
  if data and #data > 0 then
    ok, err = socket:send(data)
    if not ok then socket:close() return nil, err end
  end
  local rok, response = read(socket, opts)
  if not rok and not opts.any_af then
    return socket, nil, early
  end
  return socket, rok and response or nil, early
end

function M.get_banner(host, port, opts)
  opts = opts or {}
  local socket, err = M.opencon(host, port, nil, opts)
  if not socket then return false, err end
  local ok, data = read(socket, opts)
  socket:close()
  return ok, data
end

function M.exchange(host, port, data, opts)
  opts = opts or {}
  local socket, response = M.opencon(host, port, data, opts)
  if not socket then return false, response end
  socket:close()
  if not response then return false, "no response" end
  return true, response
end

function M.tryssl(host, port, data, opts)
  opts = opts or {}
  local first, second = "tcp", "ssl"
  if type(port) == "table" and shortport.ssl(host, port) then first, second = "ssl", "tcp" end
  for _, proto in ipairs({ first, second }) do
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.proto = proto
    local socket, response, early = M.opencon(host, port, data, o)
    if socket and response then return socket, response, proto, early end
    if socket then socket:close() end
  end
  return nil, nil, nil, nil
end

return M
