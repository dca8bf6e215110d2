-- dns-zone-transfer: asks a DNS server for a full zone transfer (AXFR) and lists the zone.
-- Written for RustMap from RFC 5936 (DNS zone transfer protocol) and RFC 1035; not derived from
-- nmap's dns-zone-transfer script.
local dns = require "dns"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Requests an AXFR of a zone over TCP and, when the server allows it, lists every record of the
zone, as a secondary server would receive it. Servers should allow transfers only to their
secondaries: a successful transfer to a scanner gives away every name in the zone. The zone
is dns-zone-transfer.domain, or else the domain of the target's name (its name without the
first label). At most 5000 records are read; with more the listing says it was cut.

Script arguments:
  dns-zone-transfer.domain   the zone to ask for
  dns-zone-transfer.timeout  milliseconds to wait for each message (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"intrusive", "discovery"}

portrule = shortport.port_or_service({53}, {"domain"}, "tcp")

action = function(host, port)
  local zone = stdnse.get_script_args(SCRIPT_NAME .. ".domain")
  if not zone then
    local name = (host.targetname and host.targetname ~= "" and host.targetname) or host.name
    zone = name and name:match("^[^.]+%.(.+%..+)$")
  end
  if not zone then return nil end
  zone = zone:gsub("%.$", "")
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local records = dns.axfr(host, port, zone, { timeout = timeout })
  if not records then return nil end
  local out, lines = stdnse.output_table(), { "" }
  local list = {}
  for _, rr in ipairs(records) do
    local line = string.format("%-30s %-6s %s", rr.name ~= "" and rr.name or ".", rr.type_name, rr.data)
    list[#list + 1] = line
    lines[#lines + 1] = "  " .. line
  end
  if #records >= dns.MAX_AXFR_RECORDS then lines[#lines + 1] = "  (cut at " .. dns.MAX_AXFR_RECORDS .. " records)" end
  out.zone = zone
  out.records = list
  return out, table.concat(lines, "\n")
end
