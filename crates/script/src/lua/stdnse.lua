-- stdnse for RustMap: NSE's standard helpers under their documented names and behaviour.
-- Written for RustMap from the NSE API documentation; not derived from nmap's nselib.
local core = ...
local nmap = require "nmap"
local M = {}

local concat, insert = table.concat, table.insert
local format, rep = string.format, string.rep

-- Script arguments: each name is looked up as given, then without its "script." prefix, as
-- NSE does; a table argument {name, alias, ...} tries each in turn.
local function lookup(args, name)
  local v = args[name]
  if v == nil then
    local short = name:match("^[^.]+%.(.+)$")
    if short then v = args[short] end
  end
  return v
end

function M.get_script_args(...)
  local args = nmap.registry.args or {}
  local out, n = {}, select("#", ...)
  for i = 1, n do
    local spec = select(i, ...)
    local v
    if type(spec) == "table" then
      for _, name in ipairs(spec) do
        v = lookup(args, name)
        if v ~= nil then break end
      end
    else
      v = lookup(args, spec)
    end
    out[i] = v
  end
  return table.unpack(out, 1, n)
end

-- An output table remembers the order its keys were first set in; the engine reads that
-- order (the metatable's __rm_order) to render and serialise it as the script built it.
function M.output_table()
  local order, seen = {}, {}
  local mt = { __rm_order = order }
  mt.__newindex = function(t, k, v)
    if v ~= nil and not seen[k] then
      seen[k] = true
      order[#order + 1] = k
    end
    rawset(t, k, v)
  end
  mt.__pairs = function(t)
    local i = 0
    return function()
      while true do
        i = i + 1
        local k = order[i]
        if k == nil then return nil end
        local v = rawget(t, k)
        if v ~= nil then return k, v end
      end
    end, t, nil
  end
  return setmetatable({}, mt)
end

local function render(out, value, indent)
  if type(value) ~= "table" then
    out[#out + 1] = rep("  ", indent) .. tostring(value)
    return
  end
  for k, v in pairs(value) do
    local prefix = rep("  ", indent)
    if type(k) ~= "number" then prefix = prefix .. tostring(k) .. ": " end
    if type(v) == "table" then
      out[#out + 1] = prefix
      render(out, v, indent + 1)
    else
      out[#out + 1] = prefix .. tostring(v)
    end
  end
end

function M.format_output(status, data, indent)
  if not status then return "ERROR: " .. tostring(data) end
  if type(data) ~= "table" then return tostring(data) end
  local out = {}
  render(out, data, indent or 1)
  return "\n" .. concat(out, "\n")
end

-- Messages go to RustMap's trace (nothing is printed by a library).
local function log(kind, level, fmt, ...)
  if type(level) ~= "number" then
    return log(kind, 1, level, fmt, ...)
  end
  local ok, msg = pcall(format, tostring(fmt), ...)
  core.log(kind, level, ok and msg or tostring(fmt))
end
function M.debug(level, fmt, ...) return log("debug", level, fmt, ...) end
function M.verbose(level, fmt, ...) return log("verbose", level, fmt, ...) end
M.print_debug = M.debug
M.print_verbose = M.verbose
function M.debug1(...) return log("debug", 1, ...) end
function M.debug2(...) return log("debug", 2, ...) end

function M.sleep(seconds) return core.sleep(tonumber(seconds) or 0) end

function M.tohex(s, options)
  options = options or {}
  local hex
  if type(s) == "number" then
    hex = format("%x", s)
  else
    hex = (tostring(s):gsub(".", function(c) return format("%02x", c:byte()) end))
  end
  if options.separator then
    local group = options.group or 2
    local parts = {}
    -- Groups are counted from the right, as NSE does.
    local first = #hex % group
    if first > 0 then parts[1] = hex:sub(1, first) end
    for i = first + 1, #hex, group do parts[#parts + 1] = hex:sub(i, i + group - 1) end
    hex = concat(parts, options.separator)
  end
  return hex
end

function M.fromhex(hex)
  hex = hex:gsub("[^%x]", "")
  return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

function M.strsplit(pattern, text)
  local list, pos = {}, 1
  assert(not (""):find(pattern), "delimiter matches empty string")
  while true do
    local first, last = text:find(pattern, pos)
    if not first then
      list[#list + 1] = text:sub(pos)
      return list
    end
    list[#list + 1] = text:sub(pos, first - 1)
    pos = last + 1
  end
end

function M.get_hostname(host)
  if type(host) ~= "table" then return host end
  return host.targetname or (host.name ~= "" and host.name) or host.ip
end

function M.string_or_blank(s) return (s == nil or s == "") and "<blank>" or s end

function M.keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  return out
end

function M.contains(t, value)
  for k, v in pairs(t) do if v == value then return true, k end end
  return false
end

local function unsupported(name)
  return function() error(name .. " is not supported yet by RustMap's engine", 2) end
end
M.new_thread = unsupported("stdnse.new_thread")
M.base = unsupported("stdnse.base")

-- Condition variables and mutexes: scripts here run one coroutine per state, so a mutex is
-- always free and a condition variable has no one to wait for.
function M.mutex(_)
  return function(op)
    if op == "trylock" then return true end
    if op == "running" then return nil end
    return true
  end
end
function M.condition_variable(_)
  return function() return true end
end

M.silent_require = require
return M
