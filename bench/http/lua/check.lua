-- GET /api/v1/client/entitlements/c<i>/<feature>, rotating over `customers` customers.
-- wrk ... -s check.lua URL -- KEY CUSTOMERS FEATURE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local customers, feature, headers, counter

function init(args)
  customers = tonumber(args[2])
  feature = args[3]
  headers = { ["Authorization"] = "Bearer " .. args[1] }
  -- threads start far apart, so they do not walk the same customers in step
  counter = thread_index * math.floor(customers / 2 + 7919)
end

function request()
  counter = counter + 1
  local path = "/api/v1/client/entitlements/c" .. (counter % customers) .. "/" .. feature
  return wrk.format("GET", path, headers)
end
