-- dns-service-discovery: lists the services a host announces with DNS-based service discovery.
-- Written for RustMap from RFC 6763 (DNS-SD: sections 4, 6, 9 and 11) and RFC 6762 (mDNS,
-- section 5.5: unicast queries to port 5353); not derived from nmap's dns-service-discovery
-- script.
local dns = require "dns"
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Browses DNS-SD (RFC 6763) with unicast queries: the PTR record _services._dns-sd._udp.<domain>
lists the service types, the PTR of each type its instances, and each instance's SRV and TXT
records say where it runs and what it tells about itself. On mDNS (5353/udp) the domain is
"local" (RFC 6762 section 5.5: a unicast query to port 5353 gets a unicast answer); on a DNS
server (53) it is dns-service-discovery.domain, or else the domain of the target's name. At most
32 service types and 32 instances each are listed.

Script arguments:
  dns-service-discovery.domain   the browsing domain (default: see above)
  dns-service-discovery.timeout  milliseconds to wait for each answer (default 3000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({5353, 53}, {"mdns", "zeroconf", "domain"}, "udp", {"open", "open|filtered"})

local MAX = 32

local function ptrs(host, port, name, opts)
  local r = dns.query(host, port, name, "PTR", opts)
  local out = {}
  for _, rr in ipairs(r and r.answers or {}) do
    if rr.type == 12 and #out < MAX then out[#out + 1] = rr.data:gsub("%.$", "") end
  end
  return out, r
end

action = function(host, port)
  local domain = stdnse.get_script_args(SCRIPT_NAME .. ".domain")
  if not domain then
    if port.number == 5353 then
      domain = "local"
    else
      local name = (host.targetname and host.targetname ~= "" and host.targetname) or host.name
      domain = name and name:match("^[^.]+%.(.+%..+)$")
    end
  end
  if not domain then return nil end
  domain = domain:gsub("%.$", "")
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 3000
  local opts = { timeout = timeout, rd = port.number ~= 5353 }
  local types, first = ptrs(host, port, "_services._dns-sd._udp." .. domain, opts)
  if first and port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  if #types == 0 then return nil end
  local out, lines = stdnse.output_table(), { "" }
  for _, t in ipairs(types) do
    local instances = ptrs(host, port, t, opts)
    local entries = {}
    lines[#lines + 1] = "  " .. t
    for _, inst in ipairs(instances) do
      local e = stdnse.output_table()
      e.instance = inst
      local srv = dns.query(host, port, inst, "SRV", opts)
      for _, rr in ipairs(srv and srv.answers or {}) do
        if rr.type == 33 then
          local _, _, p, target = rr.data:match("^(%d+) (%d+) (%d+) (.*)$")
          e.port, e.target = tonumber(p), target and target:gsub("%.$", "")
          break
        end
      end
      local txt = dns.query(host, port, inst, "TXT", opts)
      for _, rr in ipairs(txt and txt.answers or {}) do
        if rr.type == 16 and rr.strings then
          e.txt = rr.strings
          break
        end
      end
      entries[#entries + 1] = e
      lines[#lines + 1] = "    " .. inst .. (e.target and (" -> " .. e.target .. ":" .. tostring(e.port)) or "")
      for _, s in ipairs(e.txt or {}) do
        if s ~= "" then lines[#lines + 1] = "      " .. s end
      end
    end
    out[t] = entries
  end
  return out, table.concat(lines, "\n")
end
