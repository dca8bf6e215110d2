-- RustMap sandbox prelude: runs once in every script state before any script code, with the
-- sandbox's Rust hooks as arguments, so that scripts never see them as globals.
-- Written for RustMap; not derived from nmap's sources.
local forbid, check_abort, pattern_guard = ...

local raw_pcall, raw_xpcall, raw_load = pcall, xpcall, load
local raw_resume, raw_close = coroutine.resume, coroutine.close
local srep, tmove = string.rep, table.move
local sfind, smatch, sgmatch, sgsub = string.find, string.match, string.gmatch, string.gsub
local type, byte = type, string.byte
local raw_setmetatable, rawget = setmetatable, rawget

-- An error caught by pcall must not hide a sandbox stop (budget, memory, forbidden call):
-- check_abort raises again when the sandbox has stopped the script.
local function after(ok, ...)
  if not ok then check_abort((...)) end
  return ok, ...
end

pcall = function(f, ...) return after(raw_pcall(f, ...)) end
xpcall = function(f, handler, ...) return after(raw_xpcall(f, handler, ...)) end
coroutine.resume = function(co, ...) return after(raw_resume(co, ...)) end
coroutine.close = function(co) return after(raw_close(co)) end

-- Finalizers run inside the collector, which catches their errors: a looping __gc would meet
-- the hook's error there forever. Lua marks a table for finalization only when its metatable
-- has a __gc field at setmetatable time, so refusing that field here is enough.
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    return forbid("__gc metamethods")
  end
  return raw_setmetatable(t, mt)
end

-- Text chunks only: precompiled bytecode can break the VM's invariants.
load = function(chunk, name, _mode, env)
  if type(chunk) == "string" and byte(chunk, 1) == 27 then
    return forbid("loading a binary chunk")
  end
  -- load catches errors raised in a reader function, so it must not hide a stop either.
  local f, err = raw_load(chunk, name, "t", env)
  if not f then check_abort(err) end
  return f, err
end

-- C loops the instruction hook cannot interrupt: an empty string repeated 2^50 times copies
-- nothing but still counts to 2^50, and table.move walks any range it is given.
string.rep = function(s, n, sep)
  if type(n) == "number" and n > 0 and #tostring(s) + #tostring(sep or "") == 0 then return "" end
  return srep(s, n, sep)
end
table.move = function(a1, f, e, t, a2)
  if type(f) == "number" and type(e) == "number" and e - f >= 16777216 then
    return forbid("table.move of more than 2^24 elements")
  end
  return tmove(a1, f, e, t, a2)
end

-- Lua patterns backtrack inside C where the instruction hook cannot reach: each call is first
-- rehearsed with a step count (Rust), and refused when that runs out.
string.find = function(s, p, init, plain)
  if not plain then pattern_guard("find", s, p, init) end
  return sfind(s, p, init, plain)
end
string.match = function(s, p, init) pattern_guard("find", s, p, init) return smatch(s, p, init) end
string.gmatch = function(s, p, init) pattern_guard("gmatch", s, p, init) return sgmatch(s, p, init) end
string.gsub = function(s, p, r, n) pattern_guard("gsub", s, p, 1, n) return sgsub(s, p, r, n) end
