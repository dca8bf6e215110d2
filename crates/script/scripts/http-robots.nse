-- http-robots: reports the paths a site's robots.txt asks crawlers to avoid.
-- Written for RustMap from RFC 9309 (Robots Exclusion Protocol); not derived from nmap's
-- http-robots.txt script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Fetches /robots.txt and reports its Disallow entries (the paths a site would rather not have
crawled, often the interesting ones), de-duplicated, in file order. A missing file, an error
status or an HTML page (a "soft 404") reports nothing.

Script arguments: http-robots.max (the most entries listed, default 50; the count covers all).
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.http

-- RFC 9309 asks crawlers to read at least 500 KiB; the report reads the first 512 KiB.
local MAX_FILE = 512 * 1024
local MAX_PATH = 256

action = function(host, port)
  local max = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".max")) or 50
  local response = http.get(host, port, "/robots.txt", { redirect_ok = false, max_body_size = MAX_FILE })
  if not response or response.status ~= 200 or not response.body then
    return nil
  end
  local body = response.body
  if body:sub(1, 512):lower():find("<html", 1, true) then
    return nil
  end
  local entries, seen, total = {}, {}, 0
  for line in body:gmatch("[^\r\n]+") do
    local path = line:match("^%s*[Dd][Ii][Ss][Aa][Ll][Ll][Oo][Ww]%s*:%s*([^#%s]+)")
    if path and not seen[path] then
      seen[path] = true
      total = total + 1
      if #entries < max then
        path = path:gsub("[^\33-\126]", "?")
        entries[#entries + 1] = #path > MAX_PATH and (path:sub(1, MAX_PATH) .. "...") or path
      end
    end
  end
  if total == 0 then
    return nil
  end
  local out = stdnse.output_table()
  out.disallowed = entries
  out.count = total
  local text = string.format("%d disallowed entr%s", total, total == 1 and "y" or "ies")
  if #entries < total then
    text = text .. string.format(" (%d shown)", #entries)
  end
  return out, text .. "\n" .. table.concat(entries, " ")
end
