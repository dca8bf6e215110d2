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
  if type(port) == "table" and port.state then return port end
  return nil
end

-- Version and state changes by scripts are not carried back to the scan yet.
function nmap.set_port_state() end
function nmap.set_port_version() end
