-- ssh-hostkey: reports an SSH server's host keys.
-- Written for RustMap against the NSE API; not derived from nmap's ssh-hostkey script.
local shortport = require "shortport"
local ssh2 = require "ssh2"
local stdnse = require "stdnse"

description = [[
Connects to an SSH server once per host key type (ED25519, ECDSA, RSA) and reports each key's
size, MD5 fingerprint and type, and its SHA-256 fingerprint in the structured output.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = shortport.port_or_service(22, "ssh")

action = function(host, port)
  local out, lines, seen = {}, {}, {}
  -- RSA keys are offered under their SHA-2 signature names too: current servers refuse ssh-rsa.
  for _, key_type in ipairs({"ecdsa-sha2-nistp256", "ssh-ed25519", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"}) do
    local key = ssh2.fetch_host_key(host, port, key_type)
    if key and not seen[key.key] then
      seen[key.key] = true
      local entry = stdnse.output_table()
      entry.type = key.key_type
      entry.bits = key.bits
      entry.fingerprint = stdnse.tohex(key.fingerprint)
      entry.sha256 = (require "base64").enc(key.fp_sha256):gsub("=+$", "")
      entry.key = key.key
      out[#out + 1] = entry
      -- nmap's text: the MD5 fingerprint as bare hex, so tools that read nmap's output read ours.
      lines[#lines + 1] = string.format("%d %s (%s)", key.bits, stdnse.tohex(key.fingerprint), key.algorithm)
    end
  end
  if #out == 0 then return nil end
  -- nmap's layout: the keys on their own lines under the script's name, indented.
  return out, "\n  " .. table.concat(lines, "\n  ")
end
