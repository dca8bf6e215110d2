-- dns-recursion: tells whether a DNS server resolves names for anyone (an open resolver).
-- Written for RustMap from RFC 1035 (section 4.1.1: the RD and RA bits) and RFC 5358
-- (preventing the use of recursive name servers in reflector attacks); not derived from nmap's
-- dns-recursion script.
local dns = require "dns"
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Asks the server, with recursion desired, for a name it is unlikely to be authoritative for
(dns-recursion.domain, default "www.example.com") and reports recursion as enabled when the
answer says recursion is available (RA) and the server resolved the name (NOERROR with an
answer, or NXDOMAIN): an open resolver that answers anyone can be abused for amplification
(RFC 5358). A server that refuses, fails or only refers is not reported.

Script arguments:
  dns-recursion.domain   the name asked (default www.example.com)
  dns-recursion.timeout  milliseconds to wait for the answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "safe"}

portrule = shortport.port_or_service({53}, {"domain"}, "udp", {"open", "open|filtered"})

action = function(host, port)
  local name = stdnse.get_script_args(SCRIPT_NAME .. ".domain") or "www.example.com"
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local r = dns.query(host, port, name, "A", { timeout = timeout })
  if not r then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  local resolved = (r.rcode == 0 and #r.answers > 0) or r.rcode == 3
  if r.ra and resolved then
    return "Recursion appears to be enabled"
  end
  return nil
end
