-- rdp-ntlm-info: reports the names, version and clock an RDP server's NTLM challenge reveals.
-- Written for RustMap from MS-RDPBCGR (section 2.2.1.1: X.224 Connection Request and RDP
-- Negotiation Request; 2.2.1.2: the response), MS-CSSP (section 2.2.1: TSRequest) and MS-NLMP
-- (NEGOTIATE and CHALLENGE messages); not derived from nmap's rdp-ntlm-info script.
local nmap = require "nmap"
local shortport = require "shortport"
local smb = require "smb"
local ntlm = require "ntlm"
local stdnse = require "stdnse"

description = [[
Asks the RDP server for CredSSP (Network Level Authentication) in an X.224 Connection Request.
When the server selects CredSSP, the script starts TLS and sends a CredSSP TSRequest carrying
an NTLMSSP NEGOTIATE; the server's NTLMSSP CHALLENGE gives its target name, NetBIOS and DNS
domain and computer names, product version and clock. Servers without CredSSP (such as xrdp)
give nothing to report. No credentials are sent.

Script arguments:
  rdp-ntlm-info.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({3389}, {"ms-wbt-server"})

local PROTOCOL_SSL, PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX = 1, 2, 8
local MAX_ANSWER = 64 * 1024

--- X.224 Connection Request with an RDP Negotiation Request for `protocols`.
local function connection_request(protocols)
  local neg = string.pack("<BBI2I4", 1, 0, 8, protocols)
  local x224 = string.pack(">BBI2I2B", 6 + #neg, 0xe0, 0, 0, 0) .. neg
  return string.pack(">BBI2", 3, 0, 4 + #x224) .. x224
end

--- Reads one DER element (the TSRequest), bounded.
local function read_der(socket)
  local buf = ""
  for _ = 1, 64 do
    if #buf >= 2 then
      local need
      local b = buf:byte(2)
      if b < 0x80 then
        need = 2 + b
      elseif b == 0x81 and #buf >= 3 then
        need = 3 + buf:byte(3)
      elseif b == 0x82 and #buf >= 4 then
        need = 4 + string.unpack(">I2", buf, 3)
      elseif b > 0x82 then
        return nil
      end
      if need and #buf >= need then return buf:sub(1, need) end
    end
    local ok, data = socket:receive()
    if not ok then return nil end
    buf = buf .. data
    if #buf > MAX_ANSWER then return nil end
  end
  return nil
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  if not socket:connect(host, port, "tcp") then return nil end
  socket:send(connection_request(PROTOCOL_SSL | PROTOCOL_HYBRID))
  local ok, cc = socket:receive_bytes(19)
  if not ok or #cc < 19 or cc:byte(1) ~= 3 or cc:byte(6) ~= 0xd0 or cc:byte(12) ~= 2 then
    socket:close()
    return nil
  end
  local selected = string.unpack("<I4", cc, 16)
  if selected & (PROTOCOL_HYBRID | PROTOCOL_HYBRID_EX) == 0 then
    socket:close()
    return nil
  end
  if not socket:reconnect_ssl() then
    socket:close()
    return nil
  end
  local der = smb.der
  local token = der(0x30, der(0x30, der(0xa0, der(0x04, ntlm.negotiate()))))
  local ts_request = der(0x30, der(0xa0, der(0x02, "\6")) .. der(0xa1, token))
  socket:send(ts_request)
  local answer = read_der(socket)
  socket:close()
  local ch = answer and ntlm.parse_challenge(answer)
  if not ch then return nil end
  local out = stdnse.output_table()
  out.Target_Name = ch.target_name
  out.NetBIOS_Domain_Name = ch.netbios_domain
  out.NetBIOS_Computer_Name = ch.netbios_computer
  out.DNS_Domain_Name = ch.dns_domain
  out.DNS_Computer_Name = ch.dns_computer
  out.DNS_Tree_Name = ch.dns_tree
  out.Product_Version = ch.version
  out.System_Time = ntlm.format_time(ch.timestamp)
  return out
end
