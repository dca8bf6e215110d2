-- http-server-header: reports the Server header of a web server.
-- Written for RustMap from RFC 9110 (section 10.2.4); not derived from nmap's http-server-header script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends GET for the root page (or the path in http-server-header.url) without following
redirects and reports the Server response header: the software the web server names itself.
Ports that answer without a Server header report nothing.

Script arguments: http-server-header.url (default "/").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.http

-- The longest header value reported: a hostile server cannot fill the output.
local MAX_VALUE = 256

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_VALUE then s = s:sub(1, MAX_VALUE) .. "..." end
  return s
end

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".url") or "/"
  local response = http.get(host, port, path, { redirect_ok = false, max_body_size = 65536 })
  if not response or not response.status then
    return nil
  end
  local server = response.header["server"]
  if not server or server == "" then
    return nil
  end
  local out = stdnse.output_table()
  out.server = printable(server)
  return out, out.server
end
