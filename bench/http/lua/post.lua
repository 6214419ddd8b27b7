-- POST an event (with a unique X-Idempotency-Key) or an evaluation with simulation,
-- rotating over `customers` customers.
-- wrk ... -s post.lua URL -- KEY CUSTOMERS event|evaluate NONCE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local customers, kind, nonce, counter
local auth

function init(args)
  auth = "Bearer " .. args[1]
  customers = tonumber(args[2])
  kind = args[3]
  nonce = args[4]
  counter = thread_index * math.floor(customers / 2 + 7919)
end

local function event_body(ref)
  return '{"eventName":"chat_completion","featureKey":"ai_chat","customerReferenceId":"' .. ref
    .. '","usageUnits":1830,"costInput":{"model":"gpt-4o","modelProvider":"openai",'
    .. '"inputTokens":1200,"outputTokens":630}}'
end

local function evaluate_body(ref)
  return '{"customerReferenceId":"' .. ref .. '","featureKey":"ai_chat",'
    .. '"track":{"eventName":"chat_completion","usageUnits":5000}}'
end

function request()
  counter = counter + 1
  local ref = "c" .. (counter % customers)
  local headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json" }
  if kind == "event" then
    headers["X-Idempotency-Key"] = nonce .. "-" .. thread_index .. "-" .. counter
    return wrk.format("POST", "/api/v1/client/events", headers, event_body(ref))
  end
  return wrk.format("POST", "/api/v1/client/entitlements", headers, evaluate_body(ref))
end
