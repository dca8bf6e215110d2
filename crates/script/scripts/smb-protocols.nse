-- smb-protocols: lists the SMB dialects a server accepts.
-- Written for RustMap from MS-SMB2 (sections 2.2.3 and 2.2.4: NEGOTIATE) and MS-SMB / MS-CIFS
-- (SMB_COM_NEGOTIATE); not derived from nmap's smb-protocols script.
local nmap = require "nmap"
local smb = require "smb"
local stdnse = require "stdnse"

description = [[
Offers the server one dialect per connection and lists those it accepts: SMBv1's "NT LM 0.12"
through an SMB1 NEGOTIATE, and the SMB2 dialects 2.0.2, 2.1, 3.0, 3.0.2 and 3.1.1 through SMB2
NEGOTIATE requests that name only that dialect. Dialects print as major:minor:revision
(2:0:2 ... 3:1:1). Runs when TCP 445 (or 139) is open.

Script arguments:
  smbport  the TCP port to use instead of 445/139
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

hostrule = function(host) return smb.port(host) ~= nil end

action = function(host)
  local port = smb.port(host)
  if not port then return nil end
  local dialects = {}
  local conn = smb.connect(host, port)
  if conn then
    local r = smb.negotiate1(conn)
    conn:close()
    if r then dialects[#dialects + 1] = "NT LM 0.12 (SMBv1) [dangerous, but default]" end
  end
  for _, d in ipairs(smb.DIALECTS) do
    conn = smb.connect(host, port)
    if conn then
      local r = smb.negotiate2(conn, { d })
      conn:close()
      if r and r.status == smb.STATUS_SUCCESS and r.dialect == d then dialects[#dialects + 1] = smb.dialect_name(d) end
    end
  end
  if #dialects == 0 then return nil end
  local out = stdnse.output_table()
  out.dialects = dialects
  return out
end
