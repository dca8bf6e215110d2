-- ssl-cert: reports a TLS server's certificate.
-- Written for RustMap against the NSE API; not derived from nmap's ssl-cert script.
local shortport = require "shortport"
local sslcert = require "sslcert"
local stdnse = require "stdnse"

description = [[
Opens a TLS session to the port (directly, or after STARTTLS on SMTP, POP3, IMAP, FTP and
PostgreSQL ports) and reports the server's certificate: subject, issuer, public key, validity
and SHA-256 fingerprint.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"default", "discovery", "safe"}

portrule = function(host, port)
  return shortport.ssl(host, port) or sslcert.isPortSupported(port) ~= nil
end

local function name_line(name)
  local parts = {}
  for _, key in ipairs({"commonName", "organizationName", "stateOrProvinceName", "countryName"}) do
    if name[key] then parts[#parts + 1] = key .. "=" .. name[key] end
  end
  return table.concat(parts, "/")
end

action = function(host, port)
  local ok, cert = sslcert.getCertificate(host, port)
  if not ok or not cert.subject then return nil end
  local out = stdnse.output_table()
  out.subject = cert.subject
  out.issuer = cert.issuer
  out.pubkey = cert.pubkey
  out.validity = cert.validity
  out.sha256 = stdnse.tohex(cert:digest("sha256"))
  out.pem = cert.pem
  local lines = {
    "Subject: " .. name_line(cert.subject),
    "Issuer: " .. name_line(cert.issuer),
    "Public Key type: " .. tostring(cert.pubkey.type),
    "Public Key bits: " .. tostring(cert.pubkey.bits),
    "Not valid before: " .. tostring(cert.validity.notBefore),
    "Not valid after:  " .. tostring(cert.validity.notAfter),
    "SHA-256: " .. stdnse.tohex(cert:digest("sha256"), {separator = " ", group = 4}),
  }
  return out, table.concat(lines, "\n")
end
