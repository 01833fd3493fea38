-- The load bench's requests, for wrk: `wrk ... -s bench/wrk.lua URL -- WORKLOAD`.
--   cancel  POST {} with a bearer token, as a client cancelling an operation
--   other   GET with the same token: traffic that lro_cancel only matches
-- done() prints one machine-readable BENCH line that bench/run.sh parses
-- (wrk's own report, with --latency, stays above it for people).

local workloads = {
  cancel = { method = "POST", body = "{}", content_type = "application/json" },
  other = { method = "GET" },
}

function init(args)
  local name = args[1] or "cancel"
  local w = workloads[name]
  if w == nil then
    error("unknown workload " .. name)
  end
  local headers = {
    ["Host"] = "vault.googleapis.com",
    ["Authorization"] = "Bearer ya29.bench",
  }
  if w.content_type then
    headers["Content-Type"] = w.content_type
  end
  req = wrk.format(w.method, nil, headers, w.body)
end

function request()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
