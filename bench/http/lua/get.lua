-- GET PREFIX .. <i> .. SUFFIX, rotating over `customers` customers (OpenMeter value, access).
-- wrk ... -s get.lua URL -- KEY CUSTOMERS PREFIX SUFFIX
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local customers, prefix, suffix, headers, counter

function init(args)
  customers = tonumber(args[2])
  prefix = args[3]
  suffix = args[4]
  headers = { ["Authorization"] = "Bearer " .. args[1] }
  -- threads start far apart, so they do not walk the same customers in step
  counter = thread_index * math.floor(customers / 2 + 7919)
end

function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. (counter % customers) .. suffix, headers)
end
