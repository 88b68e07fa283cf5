#!/usr/bin/env bash
# What response rate limiting costs: steerdns (the example zone without
# checks, 1 worker pinned to CPU 1) under a fixed 40,000 queries/s from
# loadgen on CPU 0, all from 127.0.0.1 (one client network):
#   off      no server.rate_limit;
#   counted  rate_limit on with a rate nothing reaches: every answer is
#            classified, hashed and counted, none limited;
#   flooded  responses_per_second 100, slip 2: almost every answer is over
#            the rate, half slipped (TC=1), half dropped.
# Prints server CPU per query (sent, not answered: dropped ones cost too).
# 8 sockets of 4096 outstanding: room for the dropped ones, lost after 1 s.
#
#   make build && bench/run-rrl.sh [SECONDS] [RUNS]      (defaults 5 s, 3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${STEERDNS_BIN:-$top/build/steerdns}
loadgen=$top/build/bench/loadgen
seconds=${1:-5}
runs=${2:-3}
port=5397
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
# shellcheck source=bench/common.sh
. "$here/common.sh"
example_without_checks "$tmp/example.com.yaml"

start() {  # off|counted|flooded
  local rrl=""
  case $1 in
    counted) rrl='  rate_limit: {responses_per_second: 1000000}\n' ;;
    flooded) rrl='  rate_limit: {responses_per_second: 100, slip: 2}\n' ;;
  esac
  printf "server:\n  listen: [127.0.0.1:%s]\n  workers: 1\n${rrl}zones: [example.com.yaml]\nlogging: {level: error}\n" \
    "$port" >"$tmp/s.yaml"
  taskset -c 1 "$bin" serve -c "$tmp/s.yaml" 2>"$tmp/log" &
  pid=$!
  wait_answer "$port"
}

echo "$(nproc) cores, $(uname -r); ${seconds}s per run at 40000 q/s, $runs runs"
printf '%-8s %-8s %-4s %8s %9s %9s %12s\n' mode mix run sent answered p99_us cpu_us_per_q
for mode in off counted flooded; do
  start "$mode"
  for mix in static geo-ecs; do
    for run in $(seq "$runs"); do
      out=$(taskset -c 0 "$loadgen" -p "$port" -m "$mix" -t "$seconds" -r 40000 -S 8 -w 4096 -n 50000 -P "$pid" || true)
      field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$out"; }
      per_query=$(awk -v c="$(field server_cpu_us)" -v a="$(field answered)" -v s="$(field sent)" \
        'BEGIN { if (s > 0 && c != "") printf "%.2f", c * a / s; else print "-" }')
      printf '%-8s %-8s %-4s %8s %9s %9s %12s\n' "$mode" "$mix" "$run" "$(field sent)" "$(field answered)" \
        "$(field p99_us)" "$per_query"
    done
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
