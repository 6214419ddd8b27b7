-- Shared by the wrk scripts: thread numbering and a machine-readable report.
-- `done` prints one line "BENCH_JSON {...}" with exact counts and latency percentiles (µs).

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local e = summary.errors
  local item_failures = 0  -- batch.lua counts items of a batch answered neither 201 nor 200
  for _, thread in ipairs(threads) do
    item_failures = item_failures + (thread:get("item_failures") or 0)
  end
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
      latency.mean, latency.stdev, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)),
    string.format('"item_failures":%d', item_failures),
  }
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
