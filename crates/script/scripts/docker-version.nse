-- docker-version: reports a Docker Engine's version over its HTTP API (GET /version).
-- Written for RustMap from the Docker Engine API reference (System: "Get version"); not
-- derived from nmap's docker-version script.
local http = require "http"
local json = require "json"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends GET /version to a Docker Engine API port (2375 plain, 2376 TLS) and reports the engine's
version, API version range, Git commit, Go version, operating system, architecture, kernel
and platform. An engine API answering without authentication means full control of the host
(anyone can start a privileged container), so the report says so.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({2375, 2376}, {"docker"})

local FIELDS = {
  { "Version", "Version" },
  { "ApiVersion", "API version" },
  { "MinAPIVersion", "Minimum API version" },
  { "GitCommit", "Git commit" },
  { "GoVersion", "Go version" },
  { "Os", "OS" },
  { "Arch", "Architecture" },
  { "KernelVersion", "Kernel" },
}

local function printable(s)
  s = tostring(s):gsub("[^\32-\126]", "?")
  if #s > 128 then s = s:sub(1, 128) .. "..." end
  return s
end

action = function(host, port)
  local response = http.get(host, port, "/version", { redirect_ok = false, max_body_size = 65536,
    scheme = port.number == 2376 and "https" or nil })
  if not response or response.status ~= 200 or not response.body then return nil end
  local ok, doc = json.parse(response.body)
  if not ok or type(doc) ~= "table" or doc.Version == nil then return nil end
  local out, lines = stdnse.output_table(), {}
  for _, f in ipairs(FIELDS) do
    local v = doc[f[1]]
    if type(v) == "string" or type(v) == "number" then
      out[f[2]] = printable(v)
      lines[#lines + 1] = f[2] .. ": " .. out[f[2]]
    end
  end
  if type(doc.Platform) == "table" and type(doc.Platform.Name) == "string" then
    out.Platform = printable(doc.Platform.Name)
    lines[#lines + 1] = "Platform: " .. out.Platform
  end
  out.Unauthenticated = "the API answers without credentials: it gives control of the host"
  lines[#lines + 1] = "Unauthenticated: " .. out.Unauthenticated
  return out, table.concat(lines, "\n")
end
