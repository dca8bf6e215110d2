-- sip-enum-users: finds which user names a SIP registrar knows.
-- Written for RustMap from RFC 3261 (sections 10 and 21: REGISTER and its response codes); not
-- derived from nmap's sip-enum-users script.
local nmap = require "nmap"
local shortport = require "shortport"
local sip = require "sip"
local stdnse = require "stdnse"

description = [[
Sends one unauthenticated REGISTER per candidate user name and reports the names the
registrar treats as existing: it asks them for credentials (401, 407) or accepts them (200),
while an unknown name gets 404 Not Found (or 403/604). When the server answers a name that
surely does not exist the same way as the others, it does not reveal users and the script
says so instead of listing every name.

Candidates: the names given in sip-enum-users.users, else a built-in list of common names
and the numeric extensions sip-enum-users.minext..maxext (default 100..120). At most 500
requests are sent.

Script arguments:
  sip-enum-users.users    comma-separated user names to try
  sip-enum-users.minext   first numeric extension (default 100)
  sip-enum-users.maxext   last numeric extension (default 120)
  sip-enum-users.timeout  milliseconds to wait for each answer (default 3000)
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"auth", "intrusive"}

portrule = shortport.port_or_service({5060}, {"sip"}, {"tcp", "udp"}, {"open", "open|filtered"})

local MAX_REQUESTS = 500
local COMMON = { "admin", "administrator", "alice", "bob", "guest", "info", "office", "operator",
  "reception", "sales", "support", "test", "user", "voicemail" }
local EXISTS = { [200] = true, [401] = true, [407] = true }

local function candidates()
  local list = {}
  local users = stdnse.get_script_args(SCRIPT_NAME .. ".users")
  if users then
    for u in tostring(users):gmatch("[^,%s]+") do list[#list + 1] = u end
    return list
  end
  for _, u in ipairs(COMMON) do list[#list + 1] = u end
  local min = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".minext")) or 100
  local max = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".maxext")) or 120
  for n = min, math.min(max, min + MAX_REQUESTS) do list[#list + 1] = tostring(n) end
  return list
end

local function status_of(host, port, user, timeout)
  local r = sip.exchange(host, port, "REGISTER", { user = user, from_user = user, timeout = timeout })
  return r and r.status
end

action = function(host, port)
  local timeout = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".timeout")) or 3000
  -- A name no registrar has: if it "exists" too, the answers say nothing about users.
  local control = status_of(host, port, "rm" .. tostring(math.random(100000000, 999999999)), timeout)
  if not control then return nil end
  if port.state ~= "open" then nmap.set_port_state(host, port, "open") end
  if EXISTS[control] then
    return "the server answers " .. control .. " for any user name: users cannot be told apart"
  end
  local found = {}
  for i, user in ipairs(candidates()) do
    if i > MAX_REQUESTS then break end
    local status = status_of(host, port, user, timeout)
    if status and EXISTS[status] then
      found[#found + 1] = user .. (status == 200 and " (registered without a password)" or " (password required)")
    end
  end
  if #found == 0 then return nil end
  local out = stdnse.output_table()
  out.users = found
  return out, "\n  " .. table.concat(found, "\n  ")
end
