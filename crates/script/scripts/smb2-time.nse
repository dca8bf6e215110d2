-- smb2-time: reports the server's clock and start time from its SMB2 NEGOTIATE response.
-- Written for RustMap from MS-SMB2 (sections 2.2.3 and 2.2.4: NEGOTIATE, SystemTime and
-- ServerStartTime); not derived from nmap's smb2-time script.
local smb = require "smb"
local ntlm = require "ntlm"
local stdnse = require "stdnse"

description = [[
Sends an SMB2 NEGOTIATE and reports the response's SystemTime (the server's clock, UTC) and
ServerStartTime (when the server started; N/A when it sends zero, as Samba does).

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
  local conn = smb.connect(host, port)
  if not conn then return nil end
  local r = smb.negotiate2(conn, smb.DIALECTS)
  conn:close()
  if not r or r.status ~= smb.STATUS_SUCCESS or not r.system_time then return nil end
  local out = stdnse.output_table()
  out.date = ntlm.format_time(r.system_time)
  out.start_date = ntlm.format_time(r.start_time) or "N/A"
  return out
end
