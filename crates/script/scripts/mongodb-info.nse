-- mongodb-info: reports a MongoDB server's build information (buildInfo, no authentication).
-- Written for RustMap from MongoDB's wire protocol reference (OP_MSG) and the BSON
-- specification (bsonspec.org); not derived from nmap's mongodb-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends the buildInfo command (OP_MSG, database "admin"), which MongoDB answers before
authentication, and reports the server's version, Git version, version array, bits,
allocator, JavaScript engine, OpenSSL, maximum BSON object size and storage engines when the
answer carries them. Nothing is read from any database.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({27017, 27018, 27019}, {"mongodb", "mongod"})

local OP_MSG = 2013
local MAX_MESSAGE = 1024 * 1024
local MAX_DEPTH = 8

local function bson_cstring(s) return s .. "\0" end

local function bson_doc(elements) -- elements: list of raw element strings
  local body = table.concat(elements)
  return string.pack("<i4", #body + 5) .. body .. "\0"
end

--- Decodes a BSON document at `pos` of `data`: a table (arrays as lists), or nil.
local function decode(data, pos, depth, is_array)
  if depth > MAX_DEPTH or pos + 4 > #data then return nil end
  local len = string.unpack("<i4", data, pos)
  local stop = pos + len - 1
  if len < 5 or stop > #data then return nil end
  local doc, p = {}, pos + 4
  while p < stop do
    local t = data:byte(p)
    local name, q = data:match("^([^%z]*)%z()", p + 1)
    if not name then return nil end
    local value
    if t == 0x01 then value, q = string.unpack("<d", data, q)
    elseif t == 0x02 then
      local slen = string.unpack("<i4", data, q)
      if slen < 1 or q + 3 + slen > stop then return nil end
      value, q = data:sub(q + 4, q + 2 + slen), q + 4 + slen
    elseif t == 0x03 or t == 0x04 then
      value = decode(data, q, depth + 1, t == 0x04)
      if not value then return nil end
      q = q + string.unpack("<i4", data, q)
    elseif t == 0x05 then
      local blen = string.unpack("<i4", data, q)
      if blen < 0 or q + 4 + blen > stop then return nil end
      value, q = "<binary>", q + 5 + blen
    elseif t == 0x07 then value, q = stdnse.tohex(data:sub(q, q + 11)), q + 12
    elseif t == 0x08 then value, q = data:byte(q) == 1, q + 1
    elseif t == 0x09 or t == 0x11 then value, q = string.unpack("<i8", data, q)
    elseif t == 0x0A then value = "null"
    elseif t == 0x10 then value, q = string.unpack("<i4", data, q)
    elseif t == 0x12 then value, q = string.unpack("<i8", data, q)
    else return doc end -- a type not needed here: keep what was read
    if is_array then doc[#doc + 1] = value else doc[name] = value end
    p = q
  end
  return doc
end

local function printable(v)
  local s = tostring(v):gsub("[^\32-\126]", "?")
  if #s > 128 then s = s:sub(1, 128) .. "..." end
  return s
end

action = function(host, port)
  local socket = nmap.new_socket()
  socket:set_timeout(8000)
  local tls = port.version and port.version.service_tunnel == "ssl"
  if not socket:connect(host, port, tls and "ssl" or "tcp") then return nil end
  local doc = bson_doc({
    "\x10" .. bson_cstring("buildInfo") .. string.pack("<i4", 1),
    "\x02" .. bson_cstring("$db") .. string.pack("<i4", 6) .. "admin\0",
  })
  local body = string.pack("<I4", 0) .. "\0" .. doc
  socket:send(string.pack("<i4i4i4i4", 16 + #body, 1, 0, OP_MSG) .. body)
  local ok, data = socket:receive_bytes(16)
  if not ok or #data < 16 then socket:close() return nil end
  local len, _, _, opcode = string.unpack("<i4i4i4i4", data)
  if opcode ~= OP_MSG or len < 21 or len > MAX_MESSAGE then socket:close() return nil end
  while #data < len do
    local more
    ok, more = socket:receive_bytes(len - #data)
    if not ok then break end
    data = data .. more
  end
  socket:close()
  if #data < len or data:byte(21) ~= 0 then return nil end
  -- A fixed-width value cut off by the document's end makes string.unpack raise: no answer.
  local decoded, info = pcall(decode, data:sub(1, len), 22, 0, false)
  if not decoded or not info or type(info.version) ~= "string" then return nil end
  local out, lines = stdnse.output_table(), {}
  local function add(label, v)
    if v == nil then return end
    out[label] = printable(v)
    lines[#lines + 1] = label .. ": " .. out[label]
  end
  add("Version", info.version)
  add("Git version", info.gitVersion)
  if type(info.versionArray) == "table" then
    local parts = {}
    for i = 1, math.min(#info.versionArray, 8) do parts[i] = printable(info.versionArray[i]) end
    add("Version array", table.concat(parts, "."))
  end
  add("Bits", info.bits)
  add("Allocator", info.allocator)
  add("JavaScript engine", info.javascriptEngine)
  if type(info.openssl) == "table" then add("OpenSSL", info.openssl.running) end
  add("Max BSON object size", info.maxBsonObjectSize)
  if type(info.storageEngines) == "table" then
    local engines = {}
    for i = 1, math.min(#info.storageEngines, 16) do engines[i] = printable(info.storageEngines[i]) end
    add("Storage engines", table.concat(engines, ", "))
  end
  return out, table.concat(lines, "\n")
end
