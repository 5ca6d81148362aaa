-- wrk script: POST /v1/orders with a fresh Idempotency-Key per request
-- (run id, thread, counter), the API key from TW_KEY. Counts answers that
-- are not 202 and prints them at the end; gateway.sh fails the run if any.
local body = '{"customer_id":"c-bench","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1250}]}'
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  run = os.getenv("TW_RUN") or tostring(os.time())
  headers = {
    ["Authorization"] = "Bearer " .. assert(os.getenv("TW_KEY"), "set TW_KEY to an API key"),
    ["Content-Type"] = "application/json",
  }
  counter, not_accepted = 0, 0
end

function request()
  counter = counter + 1
  headers["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter
  return wrk.format("POST", "/v1/orders", headers, body)
end

function response(status, hdrs, body)
  if status ~= 202 then
    not_accepted = not_accepted + 1
    if not_accepted <= 3 then io.stderr:write("answer " .. status .. ": " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("not_accepted") end
  local ok = summary.requests - bad
  io.write(string.format("accepted %d of %d in %.1f s: %.0f accepted cmds/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    ok, summary.requests, summary.duration / 1e6, ok / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("not_accepted=%d accepted_per_s=%.0f p99_ms=%.2f\n", bad, ok / (summary.duration / 1e6), latency:percentile(99) / 1000))
end
