-- sslcert: a TLS server's certificate, on a TLS port or after the protocol's STARTTLS.
-- Written for RustMap from the NSE API documentation and the protocols' RFCs (SMTP 3207,
-- POP3/IMAP 2595, FTP 4217, PostgreSQL's SSLRequest); not derived from nmap's library.
local nmap = require "nmap"

local M = {}

-- Replies read while upgrading: bounded in lines and time, as everything read from the network.
local MAX_REPLIES = 32
local TIMEOUT_MS = 5000

-- Reads replies until one line matches `done` (true) or `fail` (false), or the peer stops.
local function expect(sock, done, fail)
  for _ = 1, MAX_REPLIES do
    local ok, data = sock:receive_lines(1)
    if not ok then return false, data end
    for line in data:gmatch("[^\r\n]+") do
      if line:match(done) then return true, line end
      if fail and line:match(fail) then return false, line end
    end
  end
  return false, "too many replies"
end

local function open(host, port)
  local sock = nmap.new_socket()
  sock:set_timeout(TIMEOUT_MS)
  local ok, err = sock:connect(host, port)
  if not ok then return nil, err end
  return sock
end

-- Each STARTTLS: connect in plain text, ask for TLS, return the socket ready for reconnect_ssl.
local function smtp(host, port)
  local sock, err = open(host, port)
  if not sock then return false, err end
  local ok, line = expect(sock, "^220 ", "^[45]%d%d ")
  if ok then
    sock:send("EHLO rustmap.invalid\r\n")
    ok, line = expect(sock, "^250 ", "^[45]%d%d ")
  end
  if ok then
    sock:send("STARTTLS\r\n")
    ok, line = expect(sock, "^220", "^[45]%d%d")
  end
  if not ok then sock:close() return false, "SMTP STARTTLS refused: " .. tostring(line) end
  return true, sock
end

local function pop3(host, port)
  local sock, err = open(host, port)
  if not sock then return false, err end
  local ok, line = expect(sock, "^%+OK", "^%-ERR")
  if ok then
    sock:send("STLS\r\n")
    ok, line = expect(sock, "^%+OK", "^%-ERR")
  end
  if not ok then sock:close() return false, "POP3 STLS refused: " .. tostring(line) end
  return true, sock
end

local function imap(host, port)
  local sock, err = open(host, port)
  if not sock then return false, err end
  local ok, line = expect(sock, "^%* OK", "^%* BYE")
  if ok then
    sock:send("a001 STARTTLS\r\n")
    ok, line = expect(sock, "^a001 OK", "^a001 ")
  end
  if not ok then sock:close() return false, "IMAP STARTTLS refused: " .. tostring(line) end
  return true, sock
end

local function ftp(host, port)
  local sock, err = open(host, port)
  if not sock then return false, err end
  local ok, line = expect(sock, "^220 ", "^[45]%d%d ")
  if ok then
    sock:send("AUTH TLS\r\n")
    ok, line = expect(sock, "^234", "^[45]%d%d")
  end
  if not ok then sock:close() return false, "FTP AUTH TLS refused: " .. tostring(line) end
  return true, sock
end

local function postgres(host, port)
  local sock, err = open(host, port)
  if not sock then return false, err end
  -- SSLRequest: length 8, code 80877103; the server answers one byte, S (yes) or N (no).
  sock:send("\0\0\0\8\4\210\22\47")
  local ok, answer = sock:receive_bytes(1)
  if not ok or answer:sub(1, 1) ~= "S" then
    sock:close()
    return false, "PostgreSQL refused SSL"
  end
  return true, sock
end

-- STARTTLS functions by service name and by the protocols' usual ports.
M.StartTLS = { smtp = smtp, submission = smtp, pop3 = pop3, imap = imap, ftp = ftp, postgresql = postgres }
local BY_PORT = { [21] = ftp, [25] = smtp, [110] = pop3, [143] = imap, [587] = smtp, [5432] = postgres }

--- The STARTTLS function for `port`, or nil: by its service name, else its number.
function M.isPortSupported(port)
  if type(port) ~= "table" or port.protocol ~= "tcp" then return nil end
  local name = port.service or (port.version and port.version.name)
  return (name and M.StartTLS[name]) or BY_PORT[port.number]
end

local function tls_port(port)
  return port.version and port.version.service_tunnel == "ssl"
end

--- The server's certificate: `true, cert` (NSE's certificate table) or `false, message`.
-- A port with TLS from the start is read directly; one whose protocol has a STARTTLS is upgraded.
function M.getCertificate(host, port)
  local sock
  local starttls = not tls_port(port) and M.isPortSupported(port)
  if starttls then
    local ok, s = starttls(host, port)
    if not ok then return false, s end
    sock = s
    local upgraded, err = sock:reconnect_ssl()
    if not upgraded then sock:close() return false, err end
  else
    sock = nmap.new_socket()
    sock:set_timeout(TIMEOUT_MS)
    local ok, err = sock:connect(host, port, "ssl")
    if not ok then return false, err end
  end
  local cert = sock:get_ssl_certificate()
  sock:close()
  if not cert then return false, "no certificate" end
  return true, cert
end

return M
