-- smb-security-mode: reports how a server authenticates and whether it signs SMB messages.
-- Written for RustMap from MS-SMB2 (section 2.2.4: NEGOTIATE response SecurityMode) and
-- MS-SMB / MS-CIFS (SMB_COM_NEGOTIATE response SecurityMode); not derived from nmap's
-- smb-security-mode or smb2-security-mode scripts.
local smb = require "smb"
local stdnse = require "stdnse"

description = [[
Reports the security mode of the server's SMB negotiate responses. For SMB2 (offering every
dialect from 2.0.2 to 3.1.1), the chosen dialect and whether message signing is enabled and
required. When the server accepts SMBv1 ("NT LM 0.12"), also its authentication level
(user or share), whether it takes challenge/response and its message signing.

Script arguments:
  smbport  the TCP port to use instead of 445/139
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

hostrule = function(host) return smb.port(host) ~= nil end

local function signing2(mode)
  if mode & smb.SIGNING_REQUIRED ~= 0 then return "Message signing enabled and required" end
  if mode & smb.SIGNING_ENABLED ~= 0 then return "Message signing enabled but not required" end
  return "Message signing disabled"
end

action = function(host)
  local port = smb.port(host)
  if not port then return nil end
  local out = stdnse.output_table()
  local any = false
  local conn = smb.connect(host, port)
  if conn then
    local r = smb.negotiate1(conn)
    conn:close()
    if r then
      any = true
      local m = r.security_mode
      out.authentication_level = (m & 0x01 ~= 0) and "user" or "share (dangerous)"
      out.challenge_response = (m & 0x02 ~= 0) and "supported" or "plaintext only (dangerous)"
      if m & 0x08 ~= 0 then
        out.message_signing = "required"
      elseif m & 0x04 ~= 0 then
        out.message_signing = "supported"
      else
        out.message_signing = "disabled (dangerous, but default)"
      end
    end
  end
  conn = smb.connect(host, port)
  if conn then
    local r = smb.negotiate2(conn, smb.DIALECTS)
    conn:close()
    if r and r.status == smb.STATUS_SUCCESS and r.dialect then
      any = true
      out[smb.dialect_name(r.dialect)] = signing2(r.security_mode)
    end
  end
  if not any then return nil end
  return out
end
