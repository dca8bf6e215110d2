-- dns-nsid: asks a DNS server to identify itself (NSID, id.server, version.bind).
-- Written for RustMap from RFC 5001 (the NSID option), RFC 4892 (id.server and version.bind in
-- class CHAOS) and RFC 6891 (EDNS); not derived from nmap's dns-nsid script.
local dns = require "dns"
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Sends a query carrying an EDNS NSID option and reports the name server identifier the
server returns, then asks for the TXT records id.server and version.bind in class CHAOS,
which many servers answer with their instance name and their software and version
(BIND, Unbound, Knot, PowerDNS and dnsmasq do unless configured not to).

Script arguments:
  dns-nsid.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({53}, {"domain"}, {"udp", "tcp"}, {"open", "open|filtered"})

local function printable(s) return (s:gsub("[^\32-\126]", "?")):sub(1, 256) end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local opts = { class = 3, timeout = timeout, proto = port.protocol, rd = false }
  local out = stdnse.output_table()
  local answered = false
  local nsid_opts = { class = 3, timeout = timeout, proto = port.protocol, rd = false, nsid = true }
  local r = dns.query(host, port, "id.server", "TXT", nsid_opts)
  if r then
    answered = true
    if r.nsid and #r.nsid > 0 then
      local hex = r.nsid:gsub(".", function(c) return string.format("%02x", c:byte()) end)
      out.NSID = printable(r.nsid) .. " (" .. hex:sub(1, 128) .. ")"
    end
  end
  for _, name in ipairs({ "id.server", "version.bind" }) do
    local a = dns.query(host, port, name, "TXT", opts)
    if a then
      answered = true
      for _, rr in ipairs(a.answers) do
        if rr.type == 16 and rr.strings and rr.strings[1] then
          out[name == "version.bind" and "bind.version" or name] = table.concat(rr.strings, "")
          break
        end
      end
    end
  end
  if answered and port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  if #out == 0 and not out.NSID and not out["id.server"] and not out["bind.version"] then return nil end
  return out
end
