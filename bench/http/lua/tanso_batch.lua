-- POST /api/v1/client/events/batch with BATCH plain usage events of feature `bench_calls`
-- (1 unit, no cost model), each with a unique idempotency key, rotating over `customers`
-- customers c0..c<customers-1>: the Tanso twin of cloudevents.lua.
-- wrk ... -s tanso_batch.lua URL -- KEY CUSTOMERS BATCH NONCE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local customers, batch, nonce, counter, headers

function init(args)
  headers = { ["Authorization"] = "Bearer " .. args[1], ["Content-Type"] = "application/json" }
  customers = tonumber(args[2])
  batch = tonumber(args[3])
  nonce = args[4]
  counter = thread_index * math.floor(customers / 2 + 7919)
end

function request()
  local items = {}
  for n = 1, batch do
    counter = counter + 1
    items[n] = '{"eventName":"bench.api","featureKey":"bench_calls","customerReferenceId":"c'
      .. (counter % customers) .. '","eventIdempotencyKey":"' .. nonce .. "-" .. thread_index
      .. "-" .. counter .. '","usageUnits":1}'
  end
  return wrk.format("POST", "/api/v1/client/events/batch", headers,
    '{"events":[' .. table.concat(items, ",") .. "]}")
end

item_failures = 0

function response(status, headers, body)
  for code in body:gmatch('"status":(%d+)') do
    if code ~= "201" and code ~= "200" then
      item_failures = item_failures + 1
    end
  end
end
