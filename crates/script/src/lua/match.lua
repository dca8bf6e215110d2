-- match for RustMap: helpers for socket:receive_buf under NSE's documented names.
-- Written for RustMap from the NSE API documentation.
local M = {}

-- Returns a delimiter function that ends a read after `n` bytes.
function M.numbytes(n)
  return function(buf)
    if #buf >= n then return n, n end
    return nil
  end
end

-- Returns a delimiter function that finds a Lua pattern.
function M.pattern_limit(pattern, limit)
  return function(buf)
    local s, e = buf:find(pattern)
    if s then return s, e end
    if limit and #buf >= limit then return limit, limit end
    return nil
  end
end

return M
