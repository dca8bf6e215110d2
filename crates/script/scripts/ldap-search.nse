-- ldap-search: lists what an LDAP directory shows to an anonymous client.
-- Written for RustMap from RFC 4511 (section 4.5: Search) and RFC 4515 (filters); not derived
-- from nmap's ldap-search script.
local ldap = require "ldap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Searches an LDAP directory anonymously (no bind) and lists the entries and attributes it
returns. Without ldap-search.base, every naming context of the root DSE is searched. The
filter is an RFC 4515 string filter; the default, "(objectClass=*)", returns everything the
server lets an anonymous client see. At most ldap-search.maxobjects entries (default 20, at
most 1000) are listed per base; binary values show as hex, long ones are cut at 1 KiB.

Script arguments:
  ldap-search.base        the search base (default: the root DSE's namingContexts)
  ldap-search.filter      an RFC 4515 filter (default "(objectClass=*)")
  ldap-search.attrs       attributes to return, comma-separated (default: all user attributes)
  ldap-search.scope       base, one or sub (default sub)
  ldap-search.maxobjects  entries listed per base (default 20)
  ldap-search.timeout     milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({389, 636, 3268, 3269}, {"ldap", "ldapssl", "globalcatLDAP", "globalcatLDAPssl"})

action = function(host, port)
  local arg = function(k) return stdnse.get_script_args(SCRIPT_NAME .. "." .. k) end
  local timeout = tonumber(arg("timeout")) or 5000
  local max = tonumber(arg("maxobjects")) or 20
  local filter = arg("filter") or "(objectClass=*)"
  local filter_ok, ferr = ldap.parse_filter(filter)
  if not filter_ok then return "bad ldap-search.filter: " .. ferr end
  local attrs = {}
  for a in tostring(arg("attrs") or ""):gmatch("[^,%s]+") do attrs[#attrs + 1] = a end
  local opts = { timeout = timeout, ssl = shortport.ssl(host, port) }
  local bases = {}
  if arg("base") then
    bases[1] = arg("base")
  else
    local dse = ldap.rootdse(host, port, opts)
    for _, nc in ipairs(dse and dse.attrs.namingContexts or {}) do bases[#bases + 1] = nc end
  end
  if #bases == 0 then return nil end
  local session = ldap.connect(host, port, opts)
  if not session then return nil end
  local out, lines = stdnse.output_table(), { "" }
  for i, base in ipairs(bases) do
    if i > 8 then break end
    local entries, result = session:search(base, arg("scope") or "sub", filter, attrs, max)
    if entries then
      lines[#lines + 1] = "  Context: " .. base .. "; filter: " .. filter .. "; " .. #entries .. " object(s)"
        .. (result.code ~= 0 and (" (" .. result.name .. ")") or "")
      local objects = {}
      for _, e in ipairs(entries) do
        local o = stdnse.output_table()
        o.dn = e.dn
        lines[#lines + 1] = "    dn: " .. e.dn
        for _, name in ipairs(e.order) do
          o[name] = e.attrs[name]
          for _, v in ipairs(e.attrs[name]) do lines[#lines + 1] = "      " .. name .. ": " .. v end
        end
        objects[#objects + 1] = o
      end
      out[base] = objects
    end
  end
  session:close()
  if #lines == 1 then return nil end
  return out, table.concat(lines, "\n")
end
