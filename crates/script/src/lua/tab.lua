-- tab for RustMap: aligned text tables under NSE's documented names (new, add, addrow,
-- nextrow, dump). Written for RustMap from the NSE API documentation.
local M = {}

function M.new() return { rows = {}, current = {} } end

function M.add(t, column, value) t.current[column] = tostring(value) end

function M.nextrow(t)
  t.rows[#t.rows + 1] = t.current
  t.current = {}
end

function M.addrow(t, ...)
  local row = {}
  for i = 1, select("#", ...) do row[i] = tostring((select(i, ...))) end
  if next(t.current) then M.nextrow(t) end
  t.rows[#t.rows + 1] = row
end

function M.dump(t)
  if next(t.current) then M.nextrow(t) end
  local widths, columns = {}, 0
  for _, row in ipairs(t.rows) do
    for i, cell in pairs(row) do
      widths[i] = math.max(widths[i] or 0, #cell)
      columns = math.max(columns, i)
    end
  end
  local lines = {}
  for _, row in ipairs(t.rows) do
    local cells = {}
    for i = 1, columns do
      local cell = row[i] or ""
      cells[i] = i < columns and (cell .. string.rep(" ", widths[i] - #cell)) or cell
    end
    lines[#lines + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
