-- http-favicon-hash: fingerprints a site's favicon the way Internet search engines index it.
-- Written for RustMap; MurmurHash3 (x86, 32-bit) implemented here from Austin Appleby's
-- public-domain algorithm description. Not derived from nmap's http-favicon script.
local base64 = require "base64"
local http = require "http"
local openssl = require "openssl"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Fetches /favicon.ico (or the path in http-favicon-hash.url) and reports its hashes: the
MurmurHash3 (32-bit, seed 0, signed) of its base64 encoding in MIME line layout (76 characters
and a newline per line), which is the number Shodan's http.favicon.hash filter searches for, and
the MD5 and SHA-256 of the file itself. Nothing is reported when the file is missing or empty.

Script arguments: http-favicon-hash.url (default "/favicon.ico").
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.http

-- Favicons are small; a larger body is cut (and the hash would not match an index anyway).
local MAX_ICON = 1024 * 1024

local function mul32(a, b) return (a * b) & 0xffffffff end
local function rotl32(x, r) return ((x << r) | (x >> (32 - r))) & 0xffffffff end

--- MurmurHash3_x86_32 of `data` with `seed`, as a signed 32-bit integer.
local function murmur3_32(data, seed)
  local c1, c2 = 0xcc9e2d51, 0x1b873593
  local h = seed & 0xffffffff
  local len = #data
  local blocks = len // 4
  for i = 0, blocks - 1 do
    local k = string.unpack("<I4", data, i * 4 + 1)
    k = mul32(rotl32(mul32(k, c1), 15), c2)
    h = rotl32(h ~ k, 13)
    h = (h * 5 + 0xe6546b64) & 0xffffffff
  end
  local tail, rest, k = blocks * 4, len & 3, 0
  if rest >= 3 then k = k ~ (data:byte(tail + 3) << 16) end
  if rest >= 2 then k = k ~ (data:byte(tail + 2) << 8) end
  if rest >= 1 then
    k = k ~ data:byte(tail + 1)
    h = h ~ mul32(rotl32(mul32(k, c1), 15), c2)
  end
  h = h ~ (len & 0xffffffff)
  h = h ~ (h >> 16)
  h = mul32(h, 0x85ebca6b)
  h = h ~ (h >> 13)
  h = mul32(h, 0xc2b2ae35)
  h = h ~ (h >> 16)
  if h >= 0x80000000 then h = h - 0x100000000 end
  return h
end

--- Base64 in MIME layout: lines of 76 characters, each ending in a newline.
local function mime_base64(data)
  local flat = base64.enc(data)
  local lines = {}
  for i = 1, #flat, 76 do lines[#lines + 1] = flat:sub(i, i + 75) end
  return table.concat(lines, "\n") .. "\n"
end

action = function(host, port)
  local path = stdnse.get_script_args(SCRIPT_NAME .. ".url") or "/favicon.ico"
  local response = http.get(host, port, path, { max_body_size = MAX_ICON })
  if not response or response.status ~= 200 or not response.body or #response.body == 0 then
    return nil
  end
  local icon = response.body
  local out = stdnse.output_table()
  out.mmh3 = murmur3_32(mime_base64(icon), 0)
  out.md5 = stdnse.tohex(openssl.md5(icon))
  out.sha256 = stdnse.tohex(openssl.sha256(icon))
  out.bytes = #icon
  local text = string.format("mmh3: %d (http.favicon.hash)\nMD5: %s\nSHA-256: %s\nsize: %d bytes%s",
    out.mmh3, out.md5, out.sha256, out.bytes, response.truncated and " (cut)" or "")
  return out, text
end
