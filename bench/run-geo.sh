#!/usr/bin/env bash
# Geo+ECS against static answers, on loopback: steerdns pinned to one core
# with one worker, bench/loadgen (ours) pinned to the other. For each mix:
# QPS, latency and server CPU per answered query (the scheduler's run time of
# the server's threads, /proc/PID/task/*/schedstat, over the run). Mixes alternate within each round; RUNS rounds.
# Also the load cost of the built-in world database (time and peak memory of
# `steerdns check`, with and without a geo name) and the server's resident size.
#
#   bench/run-geo.sh [SECONDS] [RUNS]        (after `make build`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${STEERDNS_BIN:-$top/build/steerdns}
gen=${LOADGEN:-$top/build/bench/loadgen}
duration=${1:-5}
runs=${2:-3}
port=5399
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
window=${WINDOW:-50}  # per socket, 4 sockets: more overflows a default-sized receive buffer

tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

echo "== load cost of the built-in world database (steerdns check, wall time and peak RSS)"
sed '/^regions:/,$d' "$top/examples/zones/example.com.yaml" > "$tmp/static.yaml"
printf 'server:\n  listen: [127.0.0.1:%s]\nzones: [static.yaml]\n' "$port" > "$tmp/static-config.yaml"
for what in static geo; do
  config=$here/steerdns-bench.yaml
  [ "$what" = static ] && config=$tmp/static-config.yaml
  /usr/bin/time -f "$what: %e s, %M KiB peak" "$bin" check -c "$config" 2>&1 >/dev/null | tail -1
done

taskset -c "$server_cpu" "$bin" serve -c "$here/steerdns-bench.yaml" 2>"$tmp/log" &
pid=$!
# shellcheck source=bench/common.sh
. "$here/common.sh"
wait_answer "$port"
echo "server resident size while serving: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

echo
echo "== $(nproc) cores, $(uname -r); server on CPU $server_cpu (1 worker), loadgen on CPU $client_cpu, window $window, ${duration}s per run"
printf '%-5s %-9s %10s %8s %9s %9s %13s\n' run mix qps lost p50_us p99_us cpu_us/query
for run in $(seq "$runs"); do
  for mix in static geo-ecs geo nxdomain; do
    out=$(taskset -c "$client_cpu" "$gen" -s 127.0.0.1 -p "$port" -m "$mix" -t "$duration" -w "$window" -n 50000 -P "$pid")
    field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$out"; }
    cpu=$(field server_cpu_us)
    printf '%-5s %-9s %10s %8s %9s %9s %13s\n' "$run" "$mix" "$(field qps)" "$(field lost)" \
      "$(field p50_us)" "$(field p99_us)" "$cpu"
  done
done
