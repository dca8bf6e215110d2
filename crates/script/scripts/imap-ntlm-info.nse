-- imap-ntlm-info: reads what an IMAP server's NTLM challenge says about the host.
-- Written for RustMap from RFC 9051 (AUTHENTICATE, section 6.2.2), RFC 4959 (SASL-IR) and
-- MS-NLMP (the NTLM messages); not derived from nmap's imap-ntlm-info script.
local base64 = require "base64"
local nmap = require "nmap"
local ntlm = require "ntlm"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Starts an NTLM authentication ("AUTHENTICATE NTLM") with an anonymous NEGOTIATE message and
reads the server's CHALLENGE, which names the host: NetBIOS and DNS computer and domain names,
the DNS tree, the product version and the server's clock. The exchange is then cancelled ("*"):
no credentials are sent. Runs only where the greeting or CAPABILITY lists AUTH=NTLM.

Script arguments:
  imap-ntlm-info.timeout  milliseconds to wait for each answer (default 5000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service({143, 993}, {"imap", "imaps"})

local MAX_LINES = 32

local function read_line(socket, state)
  for _ = 1, 64 do
    local nl = state.buf:find("\n", 1, true)
    if nl then
      local line = state.buf:sub(1, nl):gsub("\r?\n$", "")
      state.buf = state.buf:sub(nl + 1)
      return line
    end
    if #state.buf > 65536 then return nil end
    local ok, data = socket:receive()
    if not ok then return nil end
    state.buf = state.buf .. data
  end
  return nil
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 5000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  local ssl = port.number == 993 or shortport.ssl(host, port)
  if not socket:connect(host, port, ssl and "ssl" or "tcp") then return nil end
  local state = { buf = "" }
  local greeting = read_line(socket, state)
  if not greeting or not greeting:match("^%* OK") then
    socket:close()
    return nil
  end
  local caps = greeting
  if not caps:upper():find("AUTH=NTLM", 1, true) then
    socket:send("a1 CAPABILITY\r\n")
    for _ = 1, MAX_LINES do
      local line = read_line(socket, state)
      if not line then break end
      caps = caps .. " " .. line
      if line:match("^a1 ") then break end
    end
  end
  if not caps:upper():find("AUTH=NTLM", 1, true) then
    socket:close()
    return nil
  end
  socket:send("a2 AUTHENTICATE NTLM\r\n")
  local cont = read_line(socket, state)
  if not cont or not cont:match("^%+") then
    socket:close()
    return nil
  end
  socket:send(base64.enc(ntlm.negotiate()) .. "\r\n")
  local answer = read_line(socket, state)
  -- Cancel the exchange (RFC 9051: a line of "*"), then log out.
  socket:send("*\r\n")
  socket:send("a3 LOGOUT\r\n")
  socket:close()
  local b64 = answer and answer:match("^%+ ?([%w%+/=]+)%s*$")
  if not b64 then return nil end
  local ch = ntlm.parse_challenge(base64.dec(b64))
  if not ch then return nil end
  local out = stdnse.output_table()
  -- Fields the challenge leaves empty are left out.
  for _, f in ipairs({ { "Target_Name", ch.target_name }, { "NetBIOS_Domain_Name", ch.netbios_domain },
    { "NetBIOS_Computer_Name", ch.netbios_computer }, { "DNS_Domain_Name", ch.dns_domain },
    { "DNS_Computer_Name", ch.dns_computer }, { "DNS_Tree_Name", ch.dns_tree },
    { "Product_Version", ch.version } }) do
    if f[2] and f[2] ~= "" then out[f[1]] = f[2] end
  end
  if ch.timestamp then out.System_Time = ntlm.format_time(ch.timestamp) end
  return out
end
