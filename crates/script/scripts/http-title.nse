-- http-title: reports the title of a web server's root page.
-- Written for RustMap against the NSE API; not derived from nmap's http-title script.
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Fetches the root page (or the path in the script argument http-title.url) of an HTTP
server and reports its title, and where a redirect led, if it did.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.http

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".url") or "/"
  local response = http.get(host, port, path)
  if not response or not response.status then
    return nil
  end
  local out = stdnse.output_table()
  local title = (response.body or ""):match("<[Tt][Ii][Tt][Ll][Ee][^>]*>([^<]*)</[Tt][Ii][Tt][Ll][Ee]>")
  if title then
    title = title:gsub("[\r\n\t ]+", " "):gsub("^ ", ""):gsub(" $", "")
    out.title = title
  else
    out.title = nil
  end
  if response.location and #response.location > 0 then
    out.redirect_url = response.location[#response.location]
  end
  local text
  if title then
    text = title
  else
    text = "Site doesn't have a title" ..
      (response.header["content-type"] and (" (" .. response.header["content-type"] .. ").") or ".")
  end
  if out.redirect_url then
    text = text .. "\nRequested resource was " .. out.redirect_url
  end
  return out, text
end
