-- ftp-anon: checks whether an FTP server allows anonymous login, and lists what it shows.
-- Written for RustMap from RFC 959 (FTP) and RFC 1635 (anonymous FTP); not derived from nmap's
-- ftp-anon script.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Logs in to an FTP server as "anonymous" (the password is an e-mail-like placeholder, as RFC
1635 asks) and, when the server accepts (code 230), lists the top directory through one
passive data connection (PASV, LIST), reporting the listing's lines. The data connection goes to
the scanned host whatever address the PASV reply names (no bounce to a third host). A server
that refuses says nothing. The login attempt is a credential test, so the script is in the auth
category (as nmap users expect) besides default.

Script arguments: ftp-anon.maxlist (the most listing lines shown, default 20; 0 lists
nothing).
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"auth", "default", "safe"}

portrule = shortport.port_or_service({21, 990}, {"ftp", "ftps"})

local MAX_LINE = 256
local MAX_REPLY_LINES = 32
local MAX_LISTING = 64 * 1024

local function printable(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > MAX_LINE then s = s:sub(1, MAX_LINE) .. "..." end
  return s
end

--- Reads an FTP reply (multi-line "123-" ... "123 "): its code and last line.
local function reply(socket)
  local first
  for _ = 1, MAX_REPLY_LINES do
    local ok, line = socket:receive_buf("\r?\n", false)
    if not ok then return nil end
    local code, sep = line:match("^(%d%d%d)(.?)")
    if code and not first then first = code end
    if code and code == first and sep ~= "-" then return tonumber(code), line end
  end
  return nil
end

local function listing(host, port, socket, max)
  socket:send("PASV\r\n")
  local code, line = reply(socket)
  if code ~= 227 then return nil end
  local p1, p2 = line:match("%d+,%d+,%d+,%d+,(%d+),(%d+)")
  if not p1 then return nil end
  local dport = tonumber(p1) * 256 + tonumber(p2)
  if dport < 1 or dport > 65535 then return nil end
  local data = nmap.new_socket()
  data:set_timeout(8000)
  if not data:connect(host, dport, "tcp") then return nil end
  socket:send("LIST\r\n")
  code = reply(socket)
  if code ~= 150 and code ~= 125 then data:close() return nil end
  local parts, size = {}, 0
  while size < MAX_LISTING do
    local ok, chunk = data:receive()
    if not ok then break end
    parts[#parts + 1] = chunk
    size = size + #chunk
  end
  data:close()
  reply(socket)
  local lines = {}
  for l in table.concat(parts):sub(1, MAX_LISTING):gmatch("[^\r\n]+") do
    if #lines >= max then break end
    lines[#lines + 1] = printable(l)
  end
  return lines
end

action = function(host, port)
  local max = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".maxlist")) or 20
  local socket = nmap.new_socket()
  socket:set_timeout(10000)
  local tls = port.number == 990 or port.service == "ftps" or (port.version and port.version.service_tunnel == "ssl")
  if not socket:connect(host, port, tls and "ssl" or "tcp") then return nil end
  if reply(socket) ~= 220 then socket:close() return nil end
  socket:send("USER anonymous\r\n")
  local code = reply(socket)
  if code == 331 then
    socket:send("PASS rustmap@example.com\r\n")
    code = reply(socket)
  end
  if code ~= 230 then
    socket:send("QUIT\r\n")
    socket:close()
    return nil
  end
  local out = stdnse.output_table()
  out.anonymous = "allowed"
  local text = "Anonymous FTP login allowed (FTP code 230)"
  if max > 0 then
    local lines = listing(host, port, socket, max)
    if lines and #lines > 0 then
      out.listing = lines
      text = text .. "\n" .. table.concat(lines, "\n")
    end
  end
  socket:send("QUIT\r\n")
  socket:close()
  return out, text
end
