-- wrk through an explicit HTTP proxy: every request in absolute form, e.g.
--   GET http://origin.test:8080/1k HTTP/1.1   Host: origin.test:8080
-- (or origin form when wrk talks to the origin itself). Parameters come from the environment:
--   WRK_TARGET  the request target;  WRK_HOST  the Host header;
--   WRK_LIMIT   optional: stop after this many responses (per thread), and say so on stderr:
--               wrk's main thread sleeps out the whole --duration regardless, so the
--               caller ends that sleep with SIGINT, and wrk reports as usual.
-- done() prints one line "WRK_JSON {...}" that bench/wrk.py reads.

wrk.method = "GET"
wrk.path = os.getenv("WRK_TARGET")
wrk.headers["Host"] = os.getenv("WRK_HOST")

local limit = tonumber(os.getenv("WRK_LIMIT") or "")
if limit then
   local seen = 0
   -- Defined only when a limit is asked for: a response() hook costs wrk a header parse.
   function response(status, headers, body)
      seen = seen + 1
      if seen == limit then
         wrk.thread:stop()
         io.stderr:write("WRK_LIMIT_REACHED\n")
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, '
         .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
