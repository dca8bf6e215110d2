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

function M.new_thread(f, ...)
  return core.new_thread(f, ...)
end

-- Objects are told apart by identity: each gets a number the Rust side keys its state by.
local ids, next_id = setmetatable({}, { __mode = "k" }), 0
local function id_of(obj)
  if ids[obj] == nil then
    next_id = next_id + 1
    ids[obj] = next_id
  end
  return ids[obj]
end

function M.condition_variable(obj)
  local id = id_of(obj)
  return function(op)
    if op == "wait" then
      core.cv_wait(id)
    elseif op == "signal" or op == "broadcast" then
      core.cv_signal(id)
    end
  end
end

-- A mutex among the script's threads: "lock" waits while another thread holds it.
function M.mutex(obj)
  local id = id_of(obj)
  local owner
  return function(op)
    local me = coroutine.running()
    if op == "lock" then
      while owner ~= nil and owner ~= me do core.cv_wait(-id) end
      owner = me
      return true
    elseif op == "trylock" then
      if owner == nil or owner == me then owner = me return true end
      return false
    elseif op == "done" or op == "unlock" then
      if owner == me then owner = nil core.cv_signal(-id) end
      return true
    elseif op == "running" then
      return owner
    end
  end
end

function M.base() return coroutine.running() end

M.silent_require = require
return M
