-- wrk's results as one line for //testing/perf/asio:server_benchmark:
--   wrk -s wrk_report.lua ...  ->  "wrk_result duration_us=... requests=..."
-- Latencies in microseconds, as wrk's done() hook gives them.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk_result duration_us=%d requests=%d p50_us=%d p99_us=%d " ..
    "max_us=%d connect_errors=%d read_errors=%d write_errors=%d " ..
    "status_errors=%d timeouts=%d\n",
    summary.duration, summary.requests, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect, e.read, e.write,
    e.status, e.timeout))
end
