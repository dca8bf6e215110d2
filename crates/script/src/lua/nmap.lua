-- The Lua half of RustMap's nmap library: helpers built on the Rust half.
-- Written for RustMap from the NSE API documentation.
local nmap = ...

-- new_try: a function that returns its arguments after a true status, and otherwise calls the
-- handler and raises an error NSE treats as a quiet failure.
function nmap.new_try(handler)
  return function(status, ...)
    if status then return ... end
    if handler then handler() end
    error({ errtype = "nmap.new_try", message = (...) }, 0)
  end
end

-- nmap.condvar and nmap.mutex are stdnse's (they share one implementation).
function nmap.condvar(obj) return require("stdnse").condition_variable(obj) end
function nmap.mutex(obj) return require("stdnse").mutex(obj) end

function nmap.get_port_state(host, port)
  if type(port) ~= "table" then return nil end
  if port.state then return port end
  local states = type(host) == "table" and rawget(host, "__rm_ports")
  local number, protocol = tonumber(port.number), port.protocol or "tcp"
  local state = states and number and states[number .. "/" .. protocol]
  if not state then return nil end
  return { number = number, protocol = protocol, state = state }
end

-- State and version changes a script makes to a port, carried back to the scan's result when
-- the action returns (the Rust side reads at most 64 of them, see libs::port_changes).
local changes = {}
nmap.__rm_port_changes = changes

local function record(port, change)
  if type(port) ~= "table" or #changes >= 64 then return end
  change.number, change.protocol = port.number, port.protocol
  changes[#changes + 1] = change
end

function nmap.set_port_state(host, port, state)
  if type(state) == "string" then record(port, { state = state }) end
end

local VERSION_FIELDS = { "name", "product", "version", "extrainfo", "hostname", "ostype", "devicetype",
  "service_tunnel" }

function nmap.set_port_version(host, port, probestate)
  if type(port) ~= "table" or type(port.version) ~= "table" then return end
  local v = {}
  for _, k in ipairs(VERSION_FIELDS) do
    if type(port.version[k]) == "string" then v[k] = port.version[k] end
  end
  record(port, { version = v })
end
