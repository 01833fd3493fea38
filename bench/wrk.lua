-- The load bench's requests, for wrk: `wrk ... -s bench/wrk.lua URL -- WORKLOAD [ARGS]`.
--   cancel  POST {} with a bearer token, as a client cancelling an operation
--   other   GET with the same token: traffic that lro_cancel only matches
--   batch   POST of a multipart/mixed batch with the same token: the body
--           is the file args[2], sent with Content-Type args[3]
--   distinct  POST {} with a new token each time, to fill the token cache;
--           args[2] names the run, so that runs do not repeat tokens
-- Every request is to the API at Host vault.googleapis.com.
-- done() prints one machine-readable BENCH line that bench/run.sh parses
-- (wrk's own report, with --latency, stays above it for people).

local workloads = {
  cancel = { method = "POST", body = "{}", content_type = "application/json" },
  other = { method = "GET" },
  batch = { method = "POST" },
  distinct = { method = "POST", body = "{}", content_type = "application/json" },
}

-- setup runs in the main state once per thread: number the threads so that
-- their tokens differ.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local sent, run, distinct = 0, "", false

local w, headers
function init(args)
  local name = args[1] or "cancel"
  w = workloads[name]
  if w == nil then
    error("unknown workload " .. name)
  end
  if name == "batch" then
    local f = assert(io.open(args[2] or "", "rb"), "batch needs the body's file")
    w.body = f:read("*a")
    f:close()
    w.content_type = assert(args[3], "batch needs the body's Content-Type")
  end
  headers = {
    ["Host"] = "vault.googleapis.com",
    ["Authorization"] = "Bearer ya29.bench",
  }
  if w.content_type then
    headers["Content-Type"] = w.content_type
  end
  req = wrk.format(w.method, nil, headers, w.body)
  distinct = name == "distinct"
  run = args[2] or ""
end

function request()
  if not distinct then
    return req
  end
  sent = sent + 1
  headers["Authorization"] = string.format("Bearer ya29.bench-%s-%d-%d", run, tid, sent)
  return wrk.format(w.method, nil, headers, w.body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write, e.timeout))
end
