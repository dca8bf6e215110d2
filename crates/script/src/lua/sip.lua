-- sip: builds SIP requests and reads SIP responses (over UDP or TCP) for scripts.
-- Written for RustMap from RFC 3261 (sections 7, 8.1, 18 and 20); not derived from nmap's sip
-- library.
--
-- M.request(method, host, port, opts) -> the request text: opts.user (the To/request-URI
-- user, default none), opts.from_user ("rustmap"), opts.local_addr, opts.local_port,
-- opts.proto ("udp"), opts.call_id, opts.cseq (1), opts.headers (extra lines).
-- M.parse(data) -> {status=, reason=, headers={lower-case name -> value}} or nil.
-- M.exchange(host, port, method, opts) -> response or nil, err: opts as above plus timeout.
local nmap = require "nmap"

local M = {}

-- Most header lines read from one response.
M.MAX_HEADERS = 64

local function random_token(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end

local function uri_host(addr)
  if addr:find(":", 1, true) then return "[" .. addr .. "]" end
  return addr
end

function M.request(method, host, port, opts)
  opts = opts or {}
  local target = uri_host(type(host) == "table" and host.ip or host)
  local pnum = type(port) == "table" and port.number or port
  local proto = (opts.proto or "udp"):upper()
  local here = uri_host(opts.local_addr or "0.0.0.0") .. ":" .. tostring(opts.local_port or 5060)
  local ruri = "sip:" .. (opts.user and (opts.user .. "@") or "") .. target .. ":" .. pnum
  local from = "sip:" .. (opts.from_user or "rustmap") .. "@" .. target
  local lines = {
    method .. " " .. ruri .. " SIP/2.0",
    "Via: SIP/2.0/" .. proto .. " " .. here .. ";branch=z9hG4bK" .. random_token(16) .. ";rport",
    "Max-Forwards: 70",
    "From: <" .. from .. ">;tag=" .. random_token(8),
    "To: <" .. (opts.user and ("sip:" .. opts.user .. "@" .. target) or ruri) .. ">",
    "Call-ID: " .. (opts.call_id or random_token(24)) .. "@rustmap",
    "CSeq: " .. (opts.cseq or 1) .. " " .. method,
    "Contact: <sip:" .. (opts.from_user or "rustmap") .. "@" .. here .. ">",
    "User-Agent: RustMap",
    "Accept: application/sdp",
  }
  for _, h in ipairs(opts.headers or {}) do lines[#lines + 1] = h end
  lines[#lines + 1] = "Content-Length: 0"
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

function M.parse(data)
  if type(data) ~= "string" then return nil end
  local status, reason = data:match("^SIP/2%.0 (%d%d%d) ([^\r\n]*)")
  if not status then return nil end
  local headers, count = {}, 0
  for line in data:gmatch("\r?\n([^\r\n]+)") do
    count = count + 1
    if count > M.MAX_HEADERS then break end
    local name, value = line:match("^([%w%-]+)%s*:%s*(.*)$")
    if name then
      name = name:lower()
      -- RFC 3261 7.3.3's compact forms of the headers scripts read.
      local long = ({ v = "via", f = "from", t = "to", i = "call-id", m = "contact", l = "content-length",
        k = "supported", u = "allow-events" })[name]
      name = long or name
      value = value:gsub("[^\32-\126]", "?"):sub(1, 512)
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  return { status = tonumber(status), reason = reason:gsub("[^\32-\126]", "?"):sub(1, 128), headers = headers }
end

function M.exchange(host, port, method, opts)
  opts = opts or {}
  local proto = opts.proto or (type(port) == "table" and port.protocol) or "udp"
  local socket = nmap.new_socket()
  socket:set_timeout(opts.timeout or 5000)
  local ok, err = socket:connect(host, port, proto)
  if not ok then return nil, err end
  local _, laddr, lport = socket:get_info()
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.proto, o.local_addr, o.local_port = proto, laddr, lport
  local req = M.request(method, host, port, o)
  local answer
  ok, err = socket:send(req)
  -- Provisional answers (1xx) are skipped; a UDP request is sent once more on a timeout.
  local resent = false
  for _ = 1, 4 do
    if not ok then break end
    local rok, data = socket:receive()
    if rok then
      local r = M.parse(data)
      if r and r.status >= 200 then
        answer = r
        break
      end
      err = r and "provisional only" or "not a SIP response"
    elseif data == "TIMEOUT" and proto == "udp" and not resent then
      resent = true
      ok, err = socket:send(req)
    else
      err = data
      break
    end
  end
  socket:close()
  if not answer then return nil, err end
  return answer
end

return M
