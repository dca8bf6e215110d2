-- http-security-headers: reports which HTTP security headers a web server sends.
-- Written for RustMap from the headers' specifications (RFC 6797 HSTS, W3C CSP, RFC 7034
-- X-Frame-Options, the Fetch standard, W3C Referrer Policy); not derived from nmap's
-- http-security-headers script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends GET for the root page (or the path in http-security-headers.url), without following
redirects, and reports the security headers the response carries with their values
(Strict-Transport-Security, Content-Security-Policy, X-Frame-Options, X-Content-Type-Options,
Referrer-Policy, Permissions-Policy, Cross-Origin-Opener/Embedder/Resource-Policy) and which
of them are missing. Strict-Transport-Security only counts as missing over TLS, where it
means something.

Script arguments: http-security-headers.url (default "/").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.http

-- In report order: header name as printed, and whether it only applies over TLS.
local HEADERS = {
  { "Strict-Transport-Security", true },
  { "Content-Security-Policy", false },
  { "X-Frame-Options", false },
  { "X-Content-Type-Options", false },
  { "Referrer-Policy", false },
  { "Permissions-Policy", false },
  { "Cross-Origin-Opener-Policy", false },
  { "Cross-Origin-Embedder-Policy", false },
  { "Cross-Origin-Resource-Policy", false },
}
local MAX_VALUE = 256

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_VALUE then s = s:sub(1, MAX_VALUE) .. "..." end
  return s
end

local function over_tls(host, port)
  return port.service == "https" or (port.version and port.version.service_tunnel == "ssl")
    or shortport.ssl(host, port)
end

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".url") or "/"
  local response = http.get(host, port, path, { redirect_ok = false, max_body_size = 65536 })
  if not response or not response.status then
    return nil
  end
  local tls = over_tls(host, port)
  local present, missing, lines = stdnse.output_table(), {}, {}
  local any = false
  for _, h in ipairs(HEADERS) do
    local name, tls_only = h[1], h[2]
    local value = response.header[name:lower()]
    if value then
      any = true
      present[name] = printable(value)
      lines[#lines + 1] = name .. ": " .. present[name]
    elseif tls or not tls_only then
      missing[#missing + 1] = name
    end
  end
  local out = stdnse.output_table()
  if any then out.present = present end
  if #missing > 0 then out.missing = missing end
  if #lines == 0 then lines[1] = "No security headers." end
  if #missing > 0 then lines[#lines + 1] = "Missing: " .. table.concat(missing, ", ") end
  return out, table.concat(lines, "\n")
end
