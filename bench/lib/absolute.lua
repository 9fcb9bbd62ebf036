-- wrk script: absolute-form requests through a forward proxy (BENCH_URL), optional
-- Connection: close (BENCH_CLOSE=1); prints one RESULT line: req/s p99_ms errors requests.
local url = os.getenv("BENCH_URL")
local close = os.getenv("BENCH_CLOSE") == "1"
local host = url:match("^https?://([^/]+)")
request = function()
  local h = { ["Host"] = host }
  if close then h["Connection"] = "close" end
  return wrk.format("GET", url, h)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.0f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout,
    summary.requests))
end
