-- http-cors: reports a web server's Cross-Origin Resource Sharing policy.
-- Written for RustMap from the Fetch standard's CORS protocol; not derived from nmap's
-- http-cors script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends GET for the root page (or the path in http-cors.url) with an Origin header naming a
foreign site and reports the Access-Control-* headers of the answer: which origins may read
the response, whether credentials (cookies) are allowed, and which methods and headers. It
flags the two risky policies: an answer that echoes any Origin back (any site may read it,
with the visitor's cookies when credentials are allowed too) and a wildcard origin.
Nothing is reported when the answer has no Access-Control-Allow-Origin header.

Script arguments: http-cors.url (default "/"), http-cors.origin (the origin sent, default
"https://rustmap-cors-check.example").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.http

local MAX_VALUE = 256

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_VALUE then s = s:sub(1, MAX_VALUE) .. "..." end
  return s
end

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".url") or "/"
  local origin = stdnse.get_script_args(SCRIPT_NAME .. ".origin") or "https://rustmap-cors-check.example"
  local response = http.get(host, port, path, { redirect_ok = false, max_body_size = 65536,
    header = { Origin = origin } })
  if not response or not response.status then
    return nil
  end
  local allow = response.header["access-control-allow-origin"]
  if not allow then
    return nil
  end
  local out = stdnse.output_table()
  out["allow-origin"] = printable(allow)
  local fields = {
    { "allow-credentials", "access-control-allow-credentials" },
    { "allow-methods", "access-control-allow-methods" },
    { "allow-headers", "access-control-allow-headers" },
    { "expose-headers", "access-control-expose-headers" },
  }
  local lines = { "Access-Control-Allow-Origin: " .. out["allow-origin"] }
  for _, f in ipairs(fields) do
    local v = response.header[f[2]]
    if v then
      out[f[1]] = printable(v)
      lines[#lines + 1] = "Access-Control-" .. f[1]:gsub("^%l", string.upper):gsub("%-%l", string.upper) .. ": " .. out[f[1]]
    end
  end
  local credentials = (response.header["access-control-allow-credentials"] or ""):lower() == "true"
  local findings = {}
  if allow == origin then
    findings[#findings + 1] = credentials and "any origin is reflected, with credentials: any site can read responses as the visitor"
      or "any origin is reflected"
  elseif allow == "*" then
    findings[#findings + 1] = "wildcard origin: any site can read responses (without credentials)"
  end
  if #findings > 0 then
    out.findings = findings
    lines[#lines + 1] = "Risky: " .. table.concat(findings, "; ")
  end
  return out, table.concat(lines, "\n")
end
