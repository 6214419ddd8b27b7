-- wrk script: GET the entitlement check for customers <prefix>0 .. <prefix><count-1> in turn,
-- with a Bearer key, and print a machine-readable summary line at the end.
--
--   wrk -t2 -c64 -d10s --latency -s rotate.lua http://127.0.0.1:PORT -- KEY PREFIX COUNT FEATURE
--
-- Requests are formatted once per thread at start, so the generator spends its time sending.

local requests = {}
local n = 0
local i = 0

function init(args)
  local key, prefix, count, feature = args[1], args[2], tonumber(args[3]), args[4]
  local headers = { ["Authorization"] = "Bearer " .. key }
  for c = 0, count - 1 do
    local path = "/api/v1/client/entitlements/" .. prefix .. c .. "/" .. feature
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  n = #requests
  i = math.random(n) - 1 -- threads start at different customers
end

function request()
  i = (i + 1) % n
  return requests[i + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,'
      .. '"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max
  ))
end
