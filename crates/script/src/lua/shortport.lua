-- shortport for RustMap: portrule builders under NSE's documented names.
-- Written for RustMap from the NSE API documentation; not derived from nmap's nselib.
local M = {}

local function as_set(v)
  local set = {}
  if type(v) == "table" then
    for _, x in ipairs(v) do set[x] = true end
  elseif v ~= nil then
    set[v] = true
  end
  return set
end

local function state_ok(port, states)
  return as_set(states or { "open", "open|filtered" })[port.state] == true
end

local function proto_ok(port, protos)
  return as_set(protos or "tcp")[port.protocol] == true
end

function M.portnumber(ports, protos, states)
  local set = as_set(ports)
  return function(host, port)
    return set[port.number] == true and proto_ok(port, protos) and state_ok(port, states)
  end
end

function M.service(services, protos, states)
  local set = as_set(services)
  return function(host, port)
    return set[port.service] == true and proto_ok(port, protos) and state_ok(port, states)
  end
end

function M.port_or_service(ports, services, protos, states)
  local by_port = M.portnumber(ports, protos, states)
  local by_service = M.service(services, protos, states)
  return function(host, port)
    return by_port(host, port) or by_service(host, port)
  end
end

function M.version_port_or_service(ports, services, protos, states)
  return M.port_or_service(ports, services, protos, states)
end

local LIKELY_HTTP = { 80, 443, 631, 7080, 8080, 8443, 8088, 5800, 3872, 8180, 8000 }
local HTTP_SERVICES = { "http", "https", "ipp", "http-alt", "https-alt", "vnc-http", "oem-agent",
  "soap", "http-proxy", "caldav", "carddav", "webdav" }
M.http = M.port_or_service(LIKELY_HTTP, HTTP_SERVICES)

local LIKELY_SSL = { 261, 271, 324, 443, 465, 563, 585, 636, 853, 989, 990, 992, 993, 994, 995,
  2221, 2252, 2376, 3269, 3389, 4911, 5061, 5986, 6679, 6697, 8443, 9001, 8883 }
local SSL_SERVICES = { "https", "ftps", "imaps", "ldapssl", "pop3s", "sips", "smtps", "ircs",
  "xmpp-client", "ms-wbt-server" }
local ssl_rule = M.port_or_service(LIKELY_SSL, SSL_SERVICES)
function M.ssl(host, port)
  return (port.version and port.version.service_tunnel == "ssl") or ssl_rule(host, port)
end

return M
