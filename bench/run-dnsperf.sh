#!/usr/bin/env bash
# End-to-end dnsperf run on loopback: steerdns pinned to one core with one
# worker, dnsperf pinned to the other. Reports QPS (dnsperf) and server CPU per
# answered query (utime+stime of the server's PID from /proc, over the run).
# Bounded: each run lasts DURATION seconds; traffic goes to 127.0.0.1 only.
#
#   bench/run-dnsperf.sh [DURATION] [RUNS]      (after `make build`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${STEERDNS_BIN:-$top/build/steerdns}
duration=${1:-10}
runs=${2:-3}
port=5399
rate=${RATE:-}            # queries/s; empty = as fast as dnsperf can (saturation)
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
command -v dnsperf >/dev/null || { echo "dnsperf is missing: make bench-deps" >&2; exit 1; }

log=$(mktemp)
taskset -c "$server_cpu" "$bin" serve -c "$here/steerdns-bench.yaml" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  dig @127.0.0.1 -p "$port" example.com SOA +time=1 +tries=1 >/dev/null 2>&1 && break
  sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

echo "steerdns $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $(uname -r), dnsperf $(dpkg-query -W -f="\${Version}" dnsperf 2>/dev/null)"
echo "server on CPU $server_cpu (1 worker), dnsperf on CPU $client_cpu, ${duration}s per run, $runs runs, rate ${rate:-unlimited}"
printf '%-8s %12s %10s %14s %10s\n' run qps lost "cpu_us/query" "avg_lat_ms"
for run in $(seq "$runs"); do
  before=$(ticks)
  out=$(taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$here/queries-static.txt" \
        -l "$duration" -c 4 -T 1 -q 500 -t 2 ${rate:+-Q "$rate"} 2>&1)
  after=$(ticks)
  completed=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
  lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  lat=$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$out")
  cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$completed" 'BEGIN{printf "%.2f", t / hz * 1e6 / n}')
  lat_ms=$(awk -v l="$lat" 'BEGIN{printf "%.3f", l * 1000}')
  printf '%-8s %12s %10s %14s %10s\n' "$run" "$qps" "$lost" "$cpu_us" "$lat_ms"
done
