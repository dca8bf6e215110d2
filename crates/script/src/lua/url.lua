-- url for RustMap: parsing and escaping of URLs under NSE's documented names.
-- Written for RustMap from RFC 3986 and the NSE API documentation.
local M = {}

function M.escape(s)
  return (tostring(s):gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function M.unescape(s)
  return (tostring(s):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.parse(u)
  if type(u) ~= "string" then return nil end
  local parsed = {}
  local rest = u
  local fragment = rest:match("#(.*)$")
  if fragment then parsed.fragment = fragment; rest = rest:gsub("#.*$", "") end
  local scheme = rest:match("^(%a[%w+.-]*):")
  if scheme then parsed.scheme = scheme:lower(); rest = rest:sub(#scheme + 2) end
  if rest:sub(1, 2) == "//" then
    local authority = rest:sub(3):match("^([^/?]*)")
    parsed.authority = authority
    rest = rest:sub(3 + #authority)
    local userinfo, hostport = authority:match("^(.*)@(.*)$")
    if userinfo then parsed.userinfo = userinfo else hostport = authority end
    local host, port = hostport:match("^(%[.-%]):?(%d*)$")
    if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
    parsed.host = host
    parsed.port = tonumber(port)
  end
  local query = rest:match("%?(.*)$")
  if query then parsed.query = query; rest = rest:gsub("%?.*$", "") end
  if rest ~= "" then parsed.path = rest end
  return parsed
end

function M.build(p)
  local out = {}
  if p.scheme then out[#out + 1] = p.scheme .. ":" end
  if p.host then
    out[#out + 1] = "//" .. (p.userinfo and (p.userinfo .. "@") or "") .. p.host .. (p.port and (":" .. p.port) or "")
  end
  out[#out + 1] = p.path or ""
  if p.query then out[#out + 1] = "?" .. p.query end
  if p.fragment then out[#out + 1] = "#" .. p.fragment end
  return table.concat(out)
end

function M.absolute(base, relative)
  local r = M.parse(relative)
  if r and r.scheme then return relative end
  local b = M.parse(base) or {}
  if relative:sub(1, 2) == "//" then return (b.scheme or "http") .. ":" .. relative end
  if relative:sub(1, 1) == "/" then b.path = relative:match("^[^?#]*"); b.query = relative:match("%?([^#]*)")
  else
    local dir = (b.path or "/"):match("^(.*/)") or "/"
    b.path = dir .. relative:match("^[^?#]*"); b.query = relative:match("%?([^#]*)")
  end
  b.fragment = nil
  return M.build(b)
end

function M.parse_query(q)
  local out = {}
  for pair in tostring(q):gmatch("[^&;]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[M.unescape((k:gsub("%+", " ")))] = M.unescape((v:gsub("%+", " ")))
  end
  return out
end

return M
