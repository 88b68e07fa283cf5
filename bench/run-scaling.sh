#!/usr/bin/env bash
# Scaling from 1 to 2 worker threads, on loopback: steerdns (the example zone
# without checks) with `workers: 1` pinned to CPU 1, then `workers: 2` on
# both cores; the echo ceiling likewise with 1 and 2 threads. loadgen (geo
# with ECS, 50,000 subnets, 8 sockets so SO_REUSEPORT spreads them over the
# workers) runs on CPU 0 against one worker and unpinned against two: on a
# 2-core machine the load shares the cores with the second worker, so this
# shows what a second worker costs and gains here, not a many-core figure.
#
#   make build && bench/run-scaling.sh [SECONDS] [RUNS]      (defaults 5 s, 3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${STEERDNS_BIN:-$top/build/steerdns}
loadgen=$top/build/bench/loadgen
seconds=${1:-5}
runs=${2:-3}
port=5396
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
# shellcheck source=bench/common.sh
. "$here/common.sh"
example_without_checks "$tmp/example.com.yaml"

start() {  # SERVER THREADS
  if [ "$1" = steerdns ]; then
    printf 'server:\n  listen: [127.0.0.1:%s]\n  workers: %s\nzones: [example.com.yaml]\nlogging: {level: warn}\n' \
      "$port" "$2" >"$tmp/s.yaml"
    if [ "$2" = 1 ]; then taskset -c 1 "$bin" serve -c "$tmp/s.yaml" 2>"$tmp/log" & else "$bin" serve -c "$tmp/s.yaml" 2>"$tmp/log" & fi
  else
    if [ "$2" = 1 ]; then taskset -c 1 "$top/build/bench/echo" -p "$port" & else "$top/build/bench/echo" -p "$port" -T 2 & fi
  fi
  pid=$!
  # The echo returns queries, never answers: nothing to wait for but its bind.
  if [ "$1" = steerdns ]; then wait_answer "$port"; else sleep 0.2; fi
}

echo "$(nproc) cores, $(uname -r); ${seconds}s per run, $runs runs"
printf '%-9s %-8s %-4s %9s %8s %8s %9s\n' server threads run qps p50_us p99_us cpu_us
for server in steerdns echo; do
  for threads in 1 2; do
    start "$server" "$threads"
    for run in $(seq "$runs"); do
      pin=(taskset -c 0)
      [ "$threads" = 2 ] && pin=()
      out=$("${pin[@]}" "$loadgen" -p "$port" -m geo-ecs -t "$seconds" -S 8 -w 25 -n 50000 -P "$pid")
      field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$out"; }
      printf '%-9s %-8s %-4s %9s %8s %8s %9s\n' "$server" "$threads" "$run" "$(field qps)" "$(field p50_us)" \
        "$(field p99_us)" "$(field server_cpu_us)"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
