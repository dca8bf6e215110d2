-- RustMap sandbox prelude: runs once in every script state before any script code, with the
-- sandbox's Rust hooks as arguments, so that scripts never see them as globals.
-- Written for RustMap; not derived from nmap's sources.
local forbid, check_abort, pattern_guard = ...

local raw_pcall, raw_xpcall, raw_load = pcall, xpcall, load
local raw_resume = coroutine.resume
local sfind, smatch, sgmatch, sgsub = string.find, string.match, string.gmatch, string.gsub
local type, byte = type, string.byte

-- An error caught by pcall must not hide a sandbox stop (budget, memory, forbidden call):
-- check_abort raises again when the sandbox has stopped the script.
local function after(ok, ...)
  if not ok then check_abort((...)) end
  return ok, ...
end

pcall = function(f, ...) return after(raw_pcall(f, ...)) end
xpcall = function(f, handler, ...) return after(raw_xpcall(f, handler, ...)) end
coroutine.resume = function(co, ...) return after(raw_resume(co, ...)) end

-- Text chunks only: precompiled bytecode can break the VM's invariants.
load = function(chunk, name, _mode, env)
  if type(chunk) == "string" and byte(chunk, 1) == 27 then
    return forbid("loading a binary chunk")
  end
  return raw_load(chunk, name, "t", env)
end

-- Lua patterns backtrack inside C where the instruction hook cannot reach: refuse the ones
-- whose worst case is too costly before they start.
string.find = function(s, p, init, plain)
  if not plain then pattern_guard(s, p) end
  return sfind(s, p, init, plain)
end
string.match = function(s, p, init) pattern_guard(s, p) return smatch(s, p, init) end
string.gmatch = function(s, p, init) pattern_guard(s, p) return sgmatch(s, p, init) end
string.gsub = function(s, p, r, n) pattern_guard(s, p) return sgsub(s, p, r, n) end
