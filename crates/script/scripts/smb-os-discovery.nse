-- smb-os-discovery: reports what an SMB server says of its names, domain, OS and clock.
-- Written for RustMap from MS-SMB2 (NEGOTIATE, SESSION_SETUP), MS-NLMP (the CHALLENGE_MESSAGE's
-- target information and version), RFC 4178 (SPNEGO) and MS-SMB / MS-CIFS
-- (SMB_COM_SESSION_SETUP_ANDX NativeOS and NativeLanMan); not derived from nmap's
-- smb-os-discovery script.
local smb = require "smb"
local ntlm = require "ntlm"
local stdnse = require "stdnse"

description = [[
Starts an SMB2 session setup with an NTLMSSP NEGOTIATE (wrapped in SPNEGO) and reads the
server's NTLMSSP CHALLENGE: NetBIOS computer and domain names, DNS computer, domain and
forest (tree) names, the server's clock and the OS version (major.minor.build) it announces.
When the server accepts SMBv1, an anonymous SMB1 session setup adds its native OS and LAN
manager strings. No credentials are sent and no session is completed.

Script arguments:
  smbport  the TCP port to use instead of 445/139
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

hostrule = function(host) return smb.port(host) ~= nil end

local function smb1_info(host, port)
  local conn = smb.connect(host, port)
  if not conn then return nil end
  local neg = smb.negotiate1(conn)
  local r
  if neg then
    r = smb.session_setup1(conn) or {}
    r.negotiate = neg
  end
  conn:close()
  return r
end

local function smb2_info(host, port)
  local conn = smb.connect(host, port)
  if not conn then return nil end
  local neg = smb.negotiate2(conn, smb.DIALECTS)
  local challenge
  if neg and neg.status == smb.STATUS_SUCCESS then
    local r = smb.session_setup2(conn, smb.spnego_init(ntlm.negotiate()), neg.dialect)
    if r and r.security_blob then challenge = ntlm.parse_challenge(r.security_blob) end
  end
  conn:close()
  return neg, challenge
end

local function nonempty(s)
  if s and s ~= "" then return s end
  return nil
end

action = function(host)
  local port = smb.port(host)
  if not port then return nil end
  local v1 = smb1_info(host, port)
  local neg, ch = smb2_info(host, port)
  ch = ch or {}
  local out = stdnse.output_table()
  if v1 and nonempty(v1.native_os) then
    local lanman = nonempty(v1.native_lanman)
    out.OS = v1.native_os .. (lanman and (" (" .. lanman .. ")") or "")
  end
  if ch.version then out["OS version"] = ch.version end
  local fqdn = nonempty(ch.dns_computer)
  if fqdn then out["Computer name"] = fqdn:match("^[^.]*") end
  out["NetBIOS computer name"] = nonempty(ch.netbios_computer) or (v1 and v1.negotiate and nonempty(v1.negotiate.server))
  out["Domain name"] = nonempty(ch.dns_domain)
  out["Forest name"] = nonempty(ch.dns_tree)
  out["FQDN"] = fqdn
  out["NetBIOS domain name"] = nonempty(ch.netbios_domain) or (v1 and nonempty(v1.primary_domain))
  local t = ch.timestamp or (neg and neg.system_time) or (v1 and v1.negotiate and v1.negotiate.system_time)
  out["System time"] = ntlm.format_time(t)
  if #stdnse.keys(out) == 0 then return nil end
  return out
end
