-- http-methods: reports the methods a web server says it supports (OPTIONS).
-- Written for RustMap from RFC 9110 (sections 9.3.7 and 10.2.1); not derived from nmap's
-- http-methods script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends an OPTIONS request for the root page (or the path in http-methods.url) and reports the
methods listed in the Allow header (or the older Public header), and which of them are
potentially risky: anything but GET, HEAD, POST and OPTIONS (PUT, DELETE, TRACE, CONNECT,
WebDAV methods...). A server that answers OPTIONS without such a header reports nothing.

Script arguments: http-methods.url (default "/").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.http

local SAFE = { GET = true, HEAD = true, POST = true, OPTIONS = true }
-- At most this many methods are reported; a method name is a token of at most 32 characters.
local MAX_METHODS = 64

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".url") or "/"
  local response = http.generic_request(host, port, "OPTIONS", path, { redirect_ok = false, max_body_size = 65536 })
  if not response or not response.status then
    return nil
  end
  local list = response.header["allow"] or response.header["public"]
  if not list then
    return nil
  end
  local supported, risky, seen = {}, {}, {}
  for token in list:gmatch("[^,%s]+") do
    local method = token:upper()
    if #supported >= MAX_METHODS then break end
    if #method <= 32 and method:match("^[%w!#$%%&'*+.^_`|~-]+$") and not seen[method] then
      seen[method] = true
      supported[#supported + 1] = method
      if not SAFE[method] then risky[#risky + 1] = method end
    end
  end
  if #supported == 0 then
    return nil
  end
  local out = stdnse.output_table()
  out["Supported Methods"] = supported
  if #risky > 0 then
    out["Potentially risky methods"] = risky
  end
  local text = "Supported Methods: " .. table.concat(supported, " ")
  if #risky > 0 then
    text = text .. "\nPotentially risky methods: " .. table.concat(risky, " ")
  end
  return out, text
end
