-- mqtt: a small MQTT client (CONNECT, SUBSCRIBE, receiving PUBLISH) for scripts.
-- Written for RustMap from the OASIS MQTT 3.1.1 and 5.0 specifications; not derived from
-- nmap's mqtt library.
--
-- M.connect(host, port, options) -> client or nil, err: options.version (3 = MQTT 3.1,
--   4 = 3.1.1, 5 = 5.0; default 4), options.client_id, options.timeout (ms), options.tls.
--   client.return_code is the CONNACK's return (3.x) or reason (5.0) code; 0 is accepted.
-- client:subscribe(filters) sends one SUBSCRIBE (QoS 0) for a list of topic filters.
-- client:next_publish(deadline_ms) -> topic, payload, retain (or nil when the time is up, the
--   peer closed or sent something malformed).
-- client:close() sends DISCONNECT and closes.
local nmap = require "nmap"

local M = {}

-- The largest packet read: anything larger is taken as hostile and ends the session.
M.MAX_PACKET = 256 * 1024

local function varint(n)
  local out = {}
  repeat
    local byte = n % 128
    n = n // 128
    if n > 0 then byte = byte | 0x80 end
    out[#out + 1] = string.char(byte)
  until n == 0
  return table.concat(out)
end

local function utf8str(s) return string.pack(">s2", s) end

local function packet(kind, flags, body) return string.char((kind << 4) | flags) .. varint(#body) .. body end

local Client = {}
Client.__index = Client

--- Reads exactly n bytes (from what is buffered, then the socket).
function Client:read(n)
  while #self.buf < n do
    local ok, data = self.socket:receive_bytes(n - #self.buf)
    if not ok then return nil end
    self.buf = self.buf .. data
  end
  local out = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return out
end

--- Reads one packet: type, flags, body; nil on error or a packet over MAX_PACKET.
function Client:read_packet()
  local first = self:read(1)
  if not first then return nil end
  local len, mult = 0, 1
  for _ = 1, 4 do
    local b = self:read(1)
    if not b then return nil end
    b = b:byte()
    len = len + (b & 0x7f) * mult
    mult = mult * 128
    if b & 0x80 == 0 then break end
  end
  if len > M.MAX_PACKET then return nil end
  local body = len > 0 and self:read(len) or ""
  if not body then return nil end
  return first:byte() >> 4, first:byte() & 0x0f, body
end

function M.connect(host, port, options)
  options = options or {}
  local version = options.version or 4
  local socket = nmap.new_socket()
  socket:set_timeout(options.timeout or 5000)
  local ok, err = socket:connect(host, port, options.tls and "ssl" or "tcp")
  if not ok then return nil, err end
  local name = version == 3 and "MQIsdp" or "MQTT"
  local body = utf8str(name) .. string.char(version, 0x02) .. string.pack(">I2", 30)
  if version == 5 then body = body .. varint(0) end -- no properties
  body = body .. utf8str(options.client_id or "rustmap")
  socket:send(packet(1, 0, body))
  local client = setmetatable({ socket = socket, buf = "", version = version, next_id = 1 }, Client)
  local kind, _, ack = client:read_packet()
  if kind ~= 2 or not ack or #ack < 2 then
    socket:close()
    return nil, "no CONNACK"
  end
  client.return_code = ack:byte(2)
  return client
end

function Client:subscribe(filters)
  local body = string.pack(">I2", self.next_id)
  self.next_id = self.next_id + 1
  if self.version == 5 then body = body .. varint(0) end
  for _, f in ipairs(filters) do body = body .. utf8str(f) .. "\0" end
  return self.socket:send(packet(8, 2, body))
end

function Client:next_publish(deadline_ms)
  while nmap.clock_ms() < deadline_ms do
    self.socket:set_timeout(math.max(1, math.floor(deadline_ms - nmap.clock_ms())))
    local kind, flags, body = self:read_packet()
    if not kind then return nil end
    if kind == 3 and #body >= 2 then
      local tlen = string.unpack(">I2", body)
      if 2 + tlen > #body then return nil end
      local topic = body:sub(3, 2 + tlen)
      local pos = 3 + tlen
      if (flags >> 1) & 3 > 0 then pos = pos + 2 end -- packet identifier
      if self.version == 5 then
        local plen, mult = 0, 1
        for _ = 1, 4 do
          local b = body:byte(pos)
          if not b then return nil end
          pos = pos + 1
          plen = plen + (b & 0x7f) * mult
          mult = mult * 128
          if b & 0x80 == 0 then break end
        end
        pos = pos + plen
      end
      return topic, body:sub(pos), flags & 1 == 1
    end
  end
  return nil
end

function Client:close()
  self.socket:send(packet(14, 0, ""))
  self.socket:close()
end

return M
