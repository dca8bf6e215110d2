-- mqtt-version: reports which MQTT protocol versions a broker accepts, and its own version.
-- Written for RustMap from the OASIS MQTT 3.1, 3.1.1 and 5.0 specifications; not derived from
-- any nmap script.
local mqtt = require "mqtt"
local nmap = require "nmap"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Connects to an MQTT broker once per protocol version (MQTT 5.0, 3.1.1 and 3.1, without
credentials) and reports which versions it accepts, then, over an accepted 3.1.1 session,
reads the retained "$SYS/broker/version" topic where brokers such as Mosquitto name their
software and version. A broker that accepts a version but refuses anonymous clients counts as
speaking it.

Script arguments: none.
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({1883, 8883}, {"mqtt", "secure-mqtt"})

local VERSIONS = { { 5, "5.0" }, { 4, "3.1.1" }, { 3, "3.1" } }

action = function(host, port)
  local tls = port.number == 8883 or (port.version and port.version.service_tunnel == "ssl")
  local accepted, anonymous = {}, false
  for _, v in ipairs(VERSIONS) do
    local client = mqtt.connect(host, port, { version = v[1], tls = tls,
      client_id = string.format("rustmap-%06d", math.random(0, 999999)) })
    if client then
      local rc = client.return_code
      -- 3.x: 0 accepted, 4/5 credentials; 5.0: 0 success, 0x86/0x87 credentials.
      if rc == 0 or rc == 4 or rc == 5 or rc == 0x86 or rc == 0x87 then
        accepted[#accepted + 1] = v[2]
        if rc == 0 then anonymous = true end
      end
      client:close()
    end
  end
  if #accepted == 0 then return nil end
  local out = stdnse.output_table()
  out.versions = accepted
  local lines = { "Protocol versions: " .. table.concat(accepted, ", ") }
  if anonymous then
    local client = mqtt.connect(host, port, { version = 4, tls = tls, client_id = "rustmap-version" })
    if client and client.return_code == 0 then
      client:subscribe({ "$SYS/broker/version" })
      local topic, payload = client:next_publish(nmap.clock_ms() + 2000)
      client:close()
      if topic == "$SYS/broker/version" then
        out.broker = payload:gsub("[^\32-\126]", "?"):sub(1, 128)
        lines[#lines + 1] = "Broker: " .. out.broker
      end
    end
  end
  return out, table.concat(lines, "\n")
end
