-- mqtt-subscribe: lists the messages an MQTT broker hands to an anonymous subscriber.
-- Written for RustMap from the OASIS MQTT 3.1.1 specification; not derived from nmap's
-- mqtt-subscribe script.
local mqtt = require "mqtt"
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Connects to an MQTT broker without credentials (MQTT 3.1.1, clean session), subscribes to
every topic ("#", and "$SYS/#" where brokers publish their own state) and reports the
messages that arrive within a short wait: the retained messages, which are delivered at
once, and whatever is published meanwhile — topics and payloads, often device names,
firmware versions and readings. A broker that refuses anonymous clients reports the refusal.
Nothing is published.

Script arguments: mqtt-subscribe.topics (a filter or list of filters, default {"#",
"$SYS/#"}), mqtt-subscribe.wait (how long to listen in seconds, default 2, at most 20), mqtt-subscribe.max (the
most messages reported, default 50).
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({1883, 8883}, {"mqtt", "secure-mqtt"})

local MAX_TOPIC = 128
local MAX_PAYLOAD = 128

local function printable(s, max)
  s = s:gsub("[^\32-\126]", "?")
  if #s > max then s = s:sub(1, max) .. "..." end
  return s
end

local REFUSED = { [1] = "unacceptable protocol version", [2] = "client identifier rejected",
  [3] = "server unavailable", [4] = "bad user name or password", [5] = "not authorized" }

action = function(host, port)
  local topics = stdnse.get_script_args(SCRIPT_NAME .. ".topics") or { "#", "$SYS/#" }
  if type(topics) == "string" then topics = { topics } end
  local wait = math.min(tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".wait")) or 2, 20)
  local max = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".max")) or 50
  local tls = port.number == 8883 or (port.version and port.version.service_tunnel == "ssl")
  local client = mqtt.connect(host, port, { version = 4, tls = tls,
    client_id = string.format("rustmap-%06d", math.random(0, 999999)) })
  if not client then return nil end
  local out = stdnse.output_table()
  if client.return_code ~= 0 then
    client:close()
    out.refused = REFUSED[client.return_code] or ("return code " .. client.return_code)
    return out, "Connection refused: " .. out.refused
  end
  client:subscribe(topics)
  local deadline = nmap.clock_ms() + wait * 1000
  local messages, lines, seen = stdnse.output_table(), {}, 0
  while seen < max do
    local topic, payload = client:next_publish(deadline)
    if not topic then break end
    seen = seen + 1
    local t = printable(topic, MAX_TOPIC)
    messages[t] = printable(payload, MAX_PAYLOAD)
    lines[#lines + 1] = t .. ": " .. messages[t]
  end
  client:close()
  if seen == 0 then return nil end
  out.messages = messages
  return out, table.concat(lines, "\n")
end
