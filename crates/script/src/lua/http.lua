-- http for RustMap: an HTTP/1.1 client over nmap sockets under NSE's documented names
-- (get, head, generic_request, pipeline-free). Connections go through nmap.new_socket, so the
-- sandbox's target rule applies to every request and redirect; redirects are followed only to
-- the same host and port, at most MAX_REDIRECTS times; bodies are cut at max_body_size.
-- Written for RustMap from the NSE API documentation; not derived from nmap's nselib.
local nmap = require "nmap"
local url = require "url"
local shortport = require "shortport"
local M = {}

local MAX_REDIRECTS = 5
local DEFAULT_MAX_BODY = 2 * 1024 * 1024
M.USER_AGENT = "Mozilla/5.0 (compatible; RustMap Scripting Engine)"

local function host_header(host, port)
  local name = type(host) == "table" and (host.targetname or (host.name ~= "" and host.name) or host.ip) or host
  if name:find(":", 1, true) then name = "[" .. name .. "]" end
  local number = type(port) == "table" and port.number or tonumber(port)
  if number == 80 then return name end
  return name .. ":" .. tostring(number)
end

local function parse_head(head)
  local lines = {}
  for line in (head .. "\r\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local status_line = lines[1] or ""
  local version, status = status_line:match("^HTTP/(%d%.%d)%s+(%d%d%d)")
  local header, rawheader = {}, {}
  for i = 2, #lines do
    local line = lines[i]
    if line ~= "" then
      rawheader[#rawheader + 1] = line
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        header[name] = header[name] and (header[name] .. "," .. value) or value
      end
    end
  end
  return { ["status-line"] = status_line .. "\r\n", version = version, status = tonumber(status),
    header = header, rawheader = rawheader }
end

local function dechunk(body)
  local out, pos = {}, 1
  while true do
    local size_end = body:find("\r\n", pos, true)
    if not size_end then return table.concat(out), false end
    local size = tonumber(body:sub(pos, size_end - 1):match("^%s*(%x+)"), 16)
    if not size then return table.concat(out), false end
    if size == 0 then return table.concat(out), true end
    out[#out + 1] = body:sub(size_end + 2, size_end + 1 + size)
    pos = size_end + 2 + size + 2
  end
end

-- Whether buf (headers and what followed) holds a whole response yet.
local function complete(buf, method)
  local head_end = buf:find("\r\n\r\n", 1, true)
  if not head_end then return false end
  if method == "HEAD" then return true end
  local head = buf:sub(1, head_end)
  local len = tonumber(head:lower():match("\ncontent%-length:%s*(%d+)"))
  if len then return #buf - (head_end + 3) >= len end
  if head:lower():find("\ntransfer%-encoding:%s*chunked") then
    return buf:find("\r\n0\r\n\r\n", head_end, true) ~= nil or buf:sub(head_end + 4, head_end + 8) == "0\r\n\r\n"
  end
  return false
end

local function request_once(host, port, method, path, options)
  local socket = nmap.new_socket()
  socket:set_timeout(options.timeout or 30000)
  -- TLS when service detection saw it, or the port is one TLS usually runs on.
  local proto = options.scheme == "https" and "ssl" or "tcp"
  if type(port) == "table" and (port.service == "https" or shortport.ssl(host, port)) then proto = "ssl" end
  local ok, err = socket:connect(host, port, proto)
  if not ok then return { status = nil, ["status-line"] = nil, incomplete = true, error = err } end
  local headers = {
    "Host: " .. host_header(host, port),
    "User-Agent: " .. (options.useragent or M.USER_AGENT),
    "Connection: close",
  }
  for k, v in pairs(options.header or {}) do headers[#headers + 1] = k .. ": " .. tostring(v) end
  local content = options.content
  if type(content) == "table" then
    local parts = {}
    for k, v in pairs(content) do parts[#parts + 1] = url.escape(k) .. "=" .. url.escape(tostring(v)) end
    content = table.concat(parts, "&")
  end
  if content then headers[#headers + 1] = "Content-Length: " .. #content end
  local request = method .. " " .. path .. " HTTP/1.1\r\n" .. table.concat(headers, "\r\n") .. "\r\n\r\n" .. (content or "")
  ok, err = socket:send(request)
  if not ok then socket:close() return { status = nil, incomplete = true, error = err } end
  local max = options.max_body_size or DEFAULT_MAX_BODY
  local parts, size = {}, 0
  while true do
    local status, data = socket:receive()
    if not status then break end
    parts[#parts + 1] = data
    size = size + #data
    if size > max + 65536 then break end
    if complete(table.concat(parts), method) then break end
  end
  socket:close()
  local buf = table.concat(parts)
  local head_end = buf:find("\r\n\r\n", 1, true)
  if not head_end then return { status = nil, incomplete = true, error = "no HTTP response" } end
  local response = parse_head(buf:sub(1, head_end - 1))
  local body = buf:sub(head_end + 4)
  if (response.header["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    body = dechunk(body)
  end
  if method == "HEAD" then body = "" end
  if #body > max then
    body = body:sub(1, max)
    response.truncated = true
  end
  response.body = body
  return response
end

-- Follows a redirect only when it stays on the same host and port (the socket layer would
-- stop the script outright for another host; here we just stop following).
local function redirect_target(host, port, location)
  local u = url.parse(location)
  if not u then return nil end
  if u.host then
    local ip = type(host) == "table" and host.ip or host
    local names = { [ip] = true }
    if type(host) == "table" then
      if host.targetname then names[host.targetname:lower()] = true end
      if host.name and host.name ~= "" then names[host.name:lower()] = true end
    end
    local h = u.host:lower():gsub("^%[(.*)%]$", "%1")
    if not names[h] then return nil end
    local number = type(port) == "table" and port.number or tonumber(port)
    local want = u.port or (u.scheme == "https" and 443 or 80)
    if tonumber(want) ~= number then return nil end
  end
  local path = u.path or "/"
  if path:sub(1, 1) ~= "/" then path = "/" .. path end
  if u.query then path = path .. "?" .. u.query end
  return path
end

function M.generic_request(host, port, method, path, options)
  options = options or {}
  local response = request_once(host, port, method, path, options)
  local followed, limit = 0, MAX_REDIRECTS
  if options.redirect_ok == false then limit = 0 end
  if type(options.redirect_ok) == "number" then limit = math.min(options.redirect_ok, MAX_REDIRECTS) end
  while response.status and response.status >= 301 and response.status <= 308 and followed < limit do
    local location = response.header.location
    if not location then break end
    local next_path = redirect_target(host, port, location)
    if not next_path then break end
    followed = followed + 1
    response.location = response.location or {}
    local locations = response.location
    locations[#locations + 1] = location
    response = request_once(host, port, method == "HEAD" and "HEAD" or "GET", next_path, options)
    response.location = locations
  end
  return response
end

function M.get(host, port, path, options) return M.generic_request(host, port, "GET", path or "/", options) end
function M.head(host, port, path, options) return M.generic_request(host, port, "HEAD", path or "/", options) end
function M.post(host, port, path, options, _ignored, postdata)
  options = options or {}
  options.content = options.content or postdata
  return M.generic_request(host, port, "POST", path or "/", options)
end

return M
