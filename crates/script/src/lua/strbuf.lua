-- strbuf for RustMap: string buffers under NSE's documented names (new, concatbuf via `..`,
-- dump, clear, tostring). Written for RustMap from the NSE API documentation.
local M = {}
local mt = {}
mt.__index = M

function M.new(...)
  local b = setmetatable({ parts = {}, separator = "" }, mt)
  for i = 1, select("#", ...) do b.parts[#b.parts + 1] = tostring((select(i, ...))) end
  return b
end

mt.__concat = function(a, b)
  if getmetatable(a) == mt then
    a.parts[#a.parts + 1] = getmetatable(b) == mt and b:dump() or tostring(b)
    return a
  end
  b.parts[#b.parts + 1] = tostring(a)
  return b
end
mt.__tostring = function(b) return b:dump() end
mt.__eq = function(a, b) return a:dump() == b:dump() end

function M.dump(b, separator) return table.concat(b.parts, separator or b.separator) end
function M.clear(b) b.parts = {} end
function M.eqbuf(a, b) return a:dump() == b:dump() end

return M
