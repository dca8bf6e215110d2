-- http-open-redirect: looks for redirects that send visitors to any site a link names.
-- Written for RustMap from RFC 9110 (section 15.4, Location) and the open-redirect weakness
-- (CWE-601); not derived from nmap's http-open-redirect script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Requests common redirect endpoints (/go, /redirect, /redir, /out, /link, /login, /logout,
/r, /url) and, for each that exists (not 404 or 410), requests it with common target parameters (url, next, redirect, redirect_uri, return,
returnTo, dest, destination, target, goto, to, continue, u, r) pointing at a site that is not
the server's own, without following any redirect, and reports each request whose answer
redirects to that site: an open redirect (CWE-601), which lends the server's name to phishing
links. Each request is an ordinary GET; nothing is written.

Script arguments: http-open-redirect.paths (a path or a list of paths to try instead of the
built-in ones), http-open-redirect.params (the same for the parameter names).
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "intrusive", "vuln"}

portrule = shortport.http

local PATHS = { "/go", "/redirect", "/redir", "/out", "/link", "/login", "/logout", "/r", "/url" }
local PARAMS = { "url", "next", "redirect", "redirect_uri", "return", "returnTo", "dest", "destination",
  "target", "goto", "to", "continue", "u", "r" }
-- The foreign site the probes name (a reserved name: nothing there is ever contacted). Sent
-- unescaped: ":" and "/" are allowed in a query (RFC 3986 section 3.4).
local CANARY = "http://rustmap-redirect-check.example/"
-- At most this many requests per port, whatever the arguments ask.
local MAX_REQUESTS = 400

local function list_arg(name, default)
  local v = stdnse.get_script_args(SCRIPT_NAME .. "." .. name)
  if type(v) == "string" then return { v } end
  if type(v) == "table" then return v end
  return default
end

local function points_at_canary(location)
  if not location then return false end
  location = location:gsub("^%s+", ""):lower()
  return location:sub(1, #CANARY) == CANARY or location:sub(1, 32) == "//rustmap-redirect-check.example"
end

action = function(host, port)
  local paths, params = list_arg("paths", PATHS), list_arg("params", PARAMS)
  local found, requests = {}, 0
  for _, path in ipairs(paths) do
    -- A path that does not exist (404, 410) or draws no HTTP answer is not tried further.
    requests = requests + 1
    local bare = http.get(host, port, tostring(path), { redirect_ok = false, max_body_size = 16384, timeout = 10000 })
    local exists = bare and bare.status and bare.status ~= 404 and bare.status ~= 410
    for _, param in ipairs(exists and params or {}) do
      requests = requests + 1
      if requests > MAX_REQUESTS then break end
      local target = tostring(path) .. "?" .. tostring(param) .. "=" .. CANARY
      local response = http.get(host, port, target, { redirect_ok = false, max_body_size = 16384, timeout = 10000 })
      if response and response.status and response.status >= 300 and response.status < 400
          and points_at_canary(response.header["location"]) then
        found[#found + 1] = target
      end
    end
  end
  if #found == 0 then
    return nil
  end
  local out = stdnse.output_table()
  out.redirects = found
  out.to = CANARY
  return out, "Open redirect to " .. CANARY .. " from:\n" .. table.concat(found, "\n")
end
