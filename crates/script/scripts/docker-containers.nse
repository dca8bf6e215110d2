-- docker-containers: lists the containers of a Docker Engine whose API answers without
-- credentials (GET /containers/json).
-- Written for RustMap from the Docker Engine API reference (Containers: "List containers");
-- not derived from any nmap script.
local http = require "http"
local json = require "json"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[
Asks a Docker Engine API port (2375 plain, 2376 TLS) for its containers, running and stopped
(GET /containers/json?all=1), and reports each one's name, image, state, status, command and
published ports. Reading the list changes nothing; that anyone can read it means anyone can
also start containers there.

Script arguments: docker-containers.max (the most containers listed, default 50).
]]
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = {"discovery", "safe"}

portrule = shortport.port_or_service({2375, 2376}, {"docker"})

local function printable(v)
  local s = tostring(v):gsub("[^\32-\126]", "?")
  if #s > 128 then s = s:sub(1, 128) .. "..." end
  return s
end

action = function(host, port)
  local max = tonumber(stdnse.get_script_args(SCRIPT_NAME .. ".max")) or 50
  local response = http.get(host, port, "/containers/json?all=1", { redirect_ok = false,
    max_body_size = 1024 * 1024, scheme = port.number == 2376 and "https" or nil })
  if not response or response.status ~= 200 or not response.body then return nil end
  local ok, list = json.parse(response.body)
  if not ok or type(list) ~= "table" then return nil end
  local out, lines = stdnse.output_table(), {}
  local total = 0
  for _, c in ipairs(list) do
    if type(c) == "table" then
      total = total + 1
      if total <= max then
        local entry = stdnse.output_table()
        local name = type(c.Names) == "table" and c.Names[1] or c.Id or "?"
        name = printable(name):gsub("^/", "")
        entry.image = c.Image and printable(c.Image) or nil
        entry.state = c.State and printable(c.State) or nil
        entry.status = c.Status and printable(c.Status) or nil
        entry.command = c.Command and printable(c.Command) or nil
        local ports = {}
        if type(c.Ports) == "table" then
          for _, p in ipairs(c.Ports) do
            if type(p) == "table" and #ports < 16 then
              local s = tostring(p.PrivatePort or "?") .. "/" .. printable(p.Type or "tcp")
              if p.PublicPort then s = printable(p.IP or "") .. ":" .. tostring(p.PublicPort) .. "->" .. s end
              ports[#ports + 1] = s
            end
          end
        end
        if #ports > 0 then entry.ports = ports end
        out[name] = entry
        local line = string.format("%s: %s, %s (%s)", name, entry.image or "?", entry.state or "?", entry.status or "?")
        if #ports > 0 then line = line .. ", ports " .. table.concat(ports, " ") end
        lines[#lines + 1] = line
      end
    end
  end
  if total == 0 then return nil end
  local text = string.format("%d container%s", total, total == 1 and "" or "s")
  if total > max then text = text .. string.format(" (%d shown)", max) end
  return out, text .. "\n" .. table.concat(lines, "\n")
end
