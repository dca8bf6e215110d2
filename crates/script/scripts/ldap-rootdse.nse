-- ldap-rootdse: reports an LDAP server's root DSE (naming contexts, versions, mechanisms).
-- Written for RustMap from RFC 4512 (section 5.1: the root DSE) and RFC 4511; not derived from
-- nmap's ldap-rootdse script.
local ldap = require "ldap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Reads the root DSE with an anonymous base search of the empty DN, as any client may without
binding, and lists its attributes: naming contexts, supported LDAP versions, SASL mechanisms,
extensions, controls and features (by OID), the schema entry, and the vendor's name and
version where the server tells them (Active Directory also names its domain and host).

Script arguments:
  ldap-rootdse.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({389, 636, 3268, 3269}, {"ldap", "ldapssl", "globalcatLDAP", "globalcatLDAPssl"})

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local ssl = shortport.ssl(host, port)
  local entry = ldap.rootdse(host, port, { timeout = timeout, ssl = ssl })
  if not entry then return nil end
  local out, lines = stdnse.output_table(), { "", "  LDAP Results", "    <ROOT>" }
  for _, name in ipairs(entry.order) do
    out[name] = entry.attrs[name]
    for _, v in ipairs(entry.attrs[name]) do lines[#lines + 1] = "      " .. name .. ": " .. v end
  end
  return out, table.concat(lines, "\n")
end
