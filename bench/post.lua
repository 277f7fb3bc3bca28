-- wrk script for the benchmark's POSTs: the body from a file, the token from the environment.
--   BENCH_BODY_FILE  path of the request body (JSON)
--   BENCH_TOKEN      access token for "Authorization: Bearer ..." (optional)
--   BENCH_CONNECTION_CLOSE  "1": send "Connection: close" (a new connection per request)
-- At the end it prints one line, "BENCH_RESULT {json}", that bench/run.py reads.

local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
-- BENCH_CONNECTION_CLOSE=1: a client that closes its connection after each answer.
if os.getenv("BENCH_CONNECTION_CLOSE") == "1" then
   wrk.headers["Connection"] = "close"
end
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes_read": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end

