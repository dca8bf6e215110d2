-- telnet-banner: reports the text a telnet server shows before login.
-- Written for RustMap from RFC 854 (TELNET: IAC, DO, DONT, WILL, WONT) and RFC 855 (option
-- negotiation); not derived from nmap's scripts.
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Connects to a telnet server, refuses every option it asks for (WONT to each DO, DONT to each
WILL, as a plain network virtual terminal would) and collects the text it shows until a login
or password prompt appears, the server goes quiet or 4 KiB have arrived; reports that text
(non-printable bytes replaced, blank lines dropped, at most 16 lines).

Script arguments:
  telnet-banner.timeout  milliseconds to wait for more text (default 3000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({23, 992}, {"telnet", "telnets"})

local IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
local MAX_TEXT, MAX_LINES = 4096, 16

--- Splits IAC sequences out of data: the text, and the replies refusing each option asked.
local function strip(data)
  local text, replies, i = {}, {}, 1
  while i <= #data do
    local c = data:byte(i)
    if c ~= IAC then
      text[#text + 1] = string.char(c)
      i = i + 1
    else
      local cmd, opt = data:byte(i + 1), data:byte(i + 2)
      if cmd == DO and opt then
        replies[#replies + 1] = string.char(IAC, WONT, opt)
        i = i + 3
      elseif cmd == WILL and opt then
        replies[#replies + 1] = string.char(IAC, DONT, opt)
        i = i + 3
      elseif (cmd == DONT or cmd == WONT) and opt then
        i = i + 3
      elseif cmd == SB then
        local stop = data:find(string.char(IAC, SE), i + 2, true)
        i = stop and stop + 2 or #data + 1
      elseif cmd == IAC then
        text[#text + 1] = string.char(IAC)
        i = i + 2
      else
        i = i + 2
      end
    end
  end
  return table.concat(text), table.concat(replies)
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 3000
  local socket = nmap.new_socket()
  socket:set_timeout(timeout)
  local proto = port.number == 992 and "ssl" or "tcp"
  if not socket:connect(host, port, proto) then return nil end
  local text = ""
  for _ = 1, 32 do
    local ok, data = socket:receive()
    if not ok then break end
    local t, replies = strip(data)
    text = text .. t
    if #replies > 0 then socket:send(replies) end
    if #text >= MAX_TEXT or text:lower():find("login:%s*$") or text:lower():find("password:%s*$")
        or text:lower():find("username:%s*$") then
      break
    end
  end
  socket:close()
  local lines = {}
  for line in text:sub(1, MAX_TEXT):gmatch("[^\r\n]+") do
    line = line:gsub("[^\32-\126]", "?"):gsub("%s+$", "")
    if line ~= "" and #lines < MAX_LINES then lines[#lines + 1] = line:sub(1, 200) end
  end
  if #lines == 0 then return nil end
  return table.concat(lines, "\n")
end
