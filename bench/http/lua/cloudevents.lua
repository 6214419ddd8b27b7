-- POST /api/v1/events with BATCH CloudEvents (application/cloudevents-batch+json), each with a
-- unique (source, id), rotating over `customers` subjects s0..s<customers-1>.
-- wrk ... -s cloudevents.lua URL -- KEY CUSTOMERS BATCH NONCE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local customers, batch, nonce, counter, headers

function init(args)
  headers = { ["Authorization"] = "Bearer " .. args[1],
              ["Content-Type"] = "application/cloudevents-batch+json" }
  customers = tonumber(args[2])
  batch = tonumber(args[3])
  nonce = args[4]
  counter = thread_index * math.floor(customers / 2 + 7919)
end

function request()
  local items = {}
  for n = 1, batch do
    counter = counter + 1
    items[n] = '{"specversion":"1.0","source":"bench","type":"bench.api","id":"' .. nonce .. "-"
      .. thread_index .. "-" .. counter .. '","subject":"s' .. (counter % customers)
      .. '","data":{"units":1}}'
  end
  return wrk.format("POST", "/api/v1/events", headers, "[" .. table.concat(items, ",") .. "]")
end

item_failures = 0

function response(status, headers, body)
  if status ~= 204 then
    item_failures = item_failures + batch
  end
end
