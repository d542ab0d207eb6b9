-- report.lua -- shared by every wrk script of scripts/bench (loaded with dofile).
--
-- setup() numbers the threads (global `tid`, 0-based, for disjoint user ids) and keeps
-- them; done() prints one line "BENCH_JSON {...}" that scripts/bench parses: wrk's totals,
-- socket errors, latency average and percentiles (microseconds), and the number of
-- requests the scripts started (global `sent` of each thread, when a script counts it),
-- so that sent - requests = requests still in flight when wrk stopped: their outcome
-- exists on the server but the client never saw it.
--
-- BENCH_LINGER_S (environment): seconds done() waits before wrk exits. wrk leaves its
-- sockets open until it exits, so nginx can still deliver the answers in flight instead
-- of logging them as 499 (client closed) -- the audit then finds every outcome in the
-- access log.

local threads = {}
local nthreads = 0

function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
   table.insert(threads, thread)
end

local function pct(latency, p)
   return latency:percentile(p)
end

function done(summary, latency, requests)
   local sent, counted = 0, false
   for _, t in ipairs(threads) do
      local s = t:get("sent")
      if s ~= nil then
         sent = sent + s
         counted = true
      end
   end
   local e = summary.errors
   local fields = {
      string.format('"duration_us":%d', summary.duration),
      string.format('"requests":%d', summary.requests),
      string.format('"bytes":%d', summary.bytes),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
                    e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,' ..
                    '"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d}',
                    latency.mean, latency.stdev, latency.min, latency.max,
                    pct(latency, 50), pct(latency, 90), pct(latency, 95), pct(latency, 99),
                    pct(latency, 99.9)),
      string.format('"sent":%s', counted and string.format("%d", sent) or "null"),
      string.format('"threads":%d', nthreads),
   }
   io.write("BENCH_JSON {" .. table.concat(fields, ",") .. "}\n")
   io.flush()
   local linger = tonumber(os.getenv("BENCH_LINGER_S") or "0") or 0
   if linger > 0 then
      os.execute(string.format("sleep %g", linger))
   end
end
