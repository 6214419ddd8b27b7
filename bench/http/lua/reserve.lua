-- Reservations (issue 14): reserve+commit pairs, or plain events with the same body, rotating
-- over `customers` customers (1: one hot customer).
-- wrk ... -s reserve.lua URL -- KEY CUSTOMERS pair|event NONCE
--
-- A pair: POST /reservations (1 unit of ai_chat, a client-chosen reservationId), then, once its
-- 201 has arrived, POST /reservations/{id}/commit with the event's usage and cost. wrk asks a
-- thread for the next request of whichever of its connections is free, so the thread keeps the
-- ids whose reserve was answered and commits them first: a commit never overtakes its reserve.
-- An event: POST /events with the commit's body (the same units and costInput), so a pair and
-- an event record the same usage.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local customers, kind, nonce, counter, headers
local held = {}  -- ids whose reserve was answered 201, not yet committed
local pairs_done, denied = 0, 0

local USAGE = '"usageUnits":1,"costInput":{"model":"gpt-4o","modelProvider":"openai",'
  .. '"inputTokens":1200,"outputTokens":630}'

function init(args)
  headers = { ["Authorization"] = "Bearer " .. args[1], ["Content-Type"] = "application/json" }
  customers = tonumber(args[2])
  kind = args[3]
  nonce = args[4]
  counter = thread_index * math.floor(customers / 2 + 7919)
end

function request()
  if #held > 0 then
    local id = table.remove(held)
    return wrk.format("POST", "/api/v1/client/reservations/" .. id .. "/commit", headers,
      "{" .. USAGE .. "}")
  end
  counter = counter + 1
  local ref = "c" .. (counter % customers)
  local key = nonce .. "-" .. thread_index .. "-" .. counter
  if kind == "event" then
    local event_headers = { ["Authorization"] = headers["Authorization"],
      ["Content-Type"] = "application/json", ["X-Idempotency-Key"] = key }
    return wrk.format("POST", "/api/v1/client/events", event_headers,
      '{"eventName":"ai_chat","featureKey":"ai_chat","customerReferenceId":"' .. ref .. '",'
      .. USAGE .. "}")
  end
  return wrk.format("POST", "/api/v1/client/reservations", headers,
    '{"customerReferenceId":"' .. ref .. '","featureKey":"ai_chat","units":1,"ttlSeconds":300,'
    .. '"reservationId":"' .. key .. '"}')
end

function response(status, headers, body)
  if kind ~= "pair" then
    return
  end
  if status == 201 then
    table.insert(held, body:match('"id":"([^"]+)"'))
  elseif status == 200 and body:find('"recordedUnits"', 1, true) then
    pairs_done = pairs_done + 1
    wrk.thread:set("bench_pairs", pairs_done)
  elseif status == 200 then
    denied = denied + 1  -- a reserve answered isAllowed:false: nothing held
    wrk.thread:set("bench_denied", denied)
  end
end

-- Every thread's pairs and denials (thread:get reads globals: "pairs" would be the builtin),
-- on a line of their own before common.lua's report.
local base_setup, base_done = setup, done
local threads = {}

function setup(thread)
  base_setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total_pairs, total_denied = 0, 0
  for _, thread in ipairs(threads) do
    total_pairs = total_pairs + (thread:get("bench_pairs") or 0)
    total_denied = total_denied + (thread:get("bench_denied") or 0)
  end
  io.write(string.format('BENCH_PAIRS {"pairs":%d,"denied":%d}\n', total_pairs, total_denied))
  base_done(summary, latency, requests)
end
