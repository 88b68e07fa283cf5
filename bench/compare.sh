#!/usr/bin/env bash
# steerdns, the UDP echo ceiling, gdnsd and Knot DNS side by side, on loopback.
#
#   make bench-deps build && bench/compare.sh [SECONDS] [RUNS]     (defaults 5 s, 3 rounds)
#
# Every server serves the example zone (bench/peers/ has the peers' configs)
# with one UDP thread, pinned to CPU $SERVER_CPU (1); the load runs on
# $CLIENT_CPU (0). All four stay up for the whole run on their own port, so
# the order of servers rotates in each round and each load is alternated
# across servers. Loads, each for SECONDS:
#   loadgen  geo-ecs    saturation, 50,000 ECS client subnets, 4 sockets × 50 outstanding (more overflows a default-sized receive buffer of a saturated server)
#   loadgen  geo-ecs    fixed 40,000 queries/s
#   loadgen  geo-ecs    fixed 100,000 queries/s (about half of saturation here: latency)
#   loadgen  static     saturation
#   loadgen  mix        saturation: static 4, geo-ecs 4, geo 1, nxdomain 1
#   dnsperf  static     saturation over queries-static.txt (4 sockets, 500 outstanding)
#   dnsperf  geo-ecs    saturation, one ECS subnet (193.51.24.0/24) on every query
#   dnsperf  geo-ecs    fixed 40,000 queries/s
# Server CPU per answered query = the scheduler's run time of the server's
# threads (/proc/PID/task/*/schedstat) over the run / answers. Prints every
# run, then medians per load and server with ratios to echo and gdnsd.
# Loopback only; every run is bounded by SECONDS (and 1 s of draining).
#
# steerdns's geo name has no check here (the peers have none either), so its
# VIPs are served as unchecked; the answer path still reads the health table.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${STEERDNS_BIN:-$top/build/steerdns}
loadgen=$top/build/bench/loadgen
echo_bin=$top/build/bench/echo
seconds=${1:-5}
runs=${2:-3}
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
servers=${SERVERS:-"steerdns echo gdnsd knot"}
for tool in "$bin" "$loadgen" "$echo_bin"; do
  [ -x "$tool" ] || { echo "missing $tool: make build" >&2; exit 1; }
done
command -v dnsperf >/dev/null || { echo "dnsperf is missing: make bench-deps" >&2; exit 1; }

tmp=$(mktemp -d)
declare -A pid port
cleanup() {
  for s in "${!pid[@]}"; do kill "${pid[$s]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=bench/common.sh
. "$here/common.sh"
example_without_checks "$tmp/example.com.yaml"  # as the peers: no health checks

start() {  # SERVER PORT
  local s=$1 p=$2
  port[$s]=$p
  case $s in
    steerdns)
      printf 'server:\n  listen: [127.0.0.1:%s]\n  workers: 1\nzones: [example.com.yaml]\nlogging: {level: warn}\n' \
        "$p" >"$tmp/steerdns.yaml"
      taskset -c "$server_cpu" "$bin" serve -c "$tmp/steerdns.yaml" 2>"$tmp/steerdns.log" &
      pid[$s]=$!
      wait_answer "$p" ;;
    echo)
      taskset -c "$server_cpu" "$echo_bin" -p "$p" &
      pid[$s]=$!
      sleep 0.2 ;;  # echo answers anything: no SOA to wait for; binding takes microseconds
    gdnsd|knot)
      "$here/peers/install.sh" >/dev/null
      pid[$s]=$("$here/peers/start.sh" "$s" "$p" "$server_cpu" 2>>"$tmp/peers.log") ;;
  esac
}

cpu_ns() {  # PID: scheduler run time of all its threads
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'
}

results=$tmp/results.tsv
run_load() {  # ROUND LOAD SERVER
  local round=$1 load=$2 s=$3 p=${port[$3]} out before after
  case $load in
    loadgen-*)
      local mix=geo-ecs extra=()
      case $load in
        loadgen-geo-ecs) ;;
        loadgen-geo-ecs-40k) extra=(-r 40000) ;;
        loadgen-geo-ecs-100k) extra=(-r 100000) ;;
        loadgen-static) mix=static ;;
        loadgen-mix) mix=static:4,geo-ecs:4,geo:1,nxdomain:1 ;;
      esac
      out=$(taskset -c "$client_cpu" "$loadgen" -p "$p" -m "$mix" -t "$seconds" -S 4 -w 50 -n 50000 \
            -P "${pid[$s]}" "${extra[@]}")
      field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$out"; }
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$load" "$s" "$(field qps)" "$(field server_cpu_us)" \
        "$(field lost)" "$(field p50_us)" "$(field p99_us)" >>"$results" ;;
    dnsperf-*)
      local args=(-d "$here/queries-static.txt")
      case $load in
        dnsperf-geo-ecs*) echo "artifacts.example.com A" >"$tmp/geo.txt"
                          args=(-d "$tmp/geo.txt" -E 8:00011800c13318) ;;
      esac
      [ "$load" = dnsperf-geo-ecs-40k ] && args+=(-Q 40000)
      before=$(cpu_ns "${pid[$s]}")
      out=$(taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$p" -l "$seconds" -c 4 -T 1 -q 500 -t 1 "${args[@]}" 2>&1)
      after=$(cpu_ns "${pid[$s]}")
      local done lost qps lat
      done=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
      lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")
      qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
      lat=$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$out")
      printf '%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t-\n' "$round" "$load" "$s" "$qps" \
        "$(awk -v a="$after" -v b="$before" -v n="$done" 'BEGIN{printf "%.2f", (a - b) / 1e3 / n}')" \
        "$lost" "$(awk -v l="$lat" 'BEGIN{printf "%.0f", l * 1e6}')" >>"$results" ;;
  esac
}

n=0
for s in $servers; do
  start "$s" $((5391 + n))
  n=$((n + 1))
done
loads=${LOADS:-"loadgen-geo-ecs loadgen-geo-ecs-40k loadgen-geo-ecs-100k loadgen-static loadgen-mix dnsperf-static dnsperf-geo-ecs dnsperf-geo-ecs-40k"}
echo "$(nproc) cores, $(uname -r), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "steerdns $("$bin" --version | cut -d' ' -f2), gdnsd $(dpkg-query -W -f='${Version}' gdnsd 2>/dev/null || echo -), knot $(dpkg-query -W -f='${Version}' knot 2>/dev/null || echo -), dnsperf $(dpkg-query -W -f='${Version}' dnsperf)"
echo "servers on CPU $server_cpu (one UDP thread each), load on CPU $client_cpu, ${seconds}s per run, $runs rounds"
printf 'round\tload\tserver\tqps\tcpu_us\tlost\tp50_us\tp99_us\n' | tee "$results.head"
: >"$results"
list=($servers)
for round in $(seq "$runs"); do
  for load in $loads; do
    for k in "${!list[@]}"; do  # rotate the order of servers each round
      s=${list[$(((k + round) % ${#list[@]}))]}
      run_load "$round" "$load" "$s"
      tail -1 "$results"
    done
  done
done

echo
echo "== medians over $runs rounds (cpu_us: server CPU per answered query; x echo, x gdnsd: ratios of cpu_us)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
med = {}
for r in rows:
    med.setdefault((r[1], r[2]), []).append(r)
def m(rs, i):
    vals = [float(r[i]) for r in rs if r[i] not in ("-", "")]
    return statistics.median(vals) if vals else float("nan")
loads = list(dict.fromkeys(r[1] for r in rows))
servers = list(dict.fromkeys(r[2] for r in rows))
print(f"{'load':<20} {'server':<9} {'qps':>9} {'cpu_us':>7} {'x echo':>7} {'x gdnsd':>8} {'lost':>7} {'p50_us':>7} {'p99_us':>7}")
for load in loads:
    for s in servers:
        rs = med.get((load, s))
        if not rs: continue
        cpu = m(rs, 4)
        def ratio(other):
            o = med.get((load, other))
            return f"{cpu / m(o, 4):.2f}" if o else "-"
        p99 = m(rs, 7)
        print(f"{load:<20} {s:<9} {m(rs, 3):>9.0f} {cpu:>7.2f} {ratio('echo'):>7} {ratio('gdnsd'):>8} "
              f"{m(rs, 5):>7.0f} {m(rs, 6):>7.0f} {'-' if p99 != p99 else f'{p99:.0f}':>7}")
EOF
