#!/usr/bin/env bash
# Start-up and reload at scale, on loopback:
#   * `steerdns check` (load and compile, no sockets) of a zone of RECORDS
#     records (default 100,000: A, AAAA, TXT and CNAME in turn), wall time and
#     peak RSS, against the same config with a 4-record zone; and of the
#     example (the built-in world database compiled for a 3-region geo name);
#   * `serve`: time from exec to the first answer, and resident size, for the
#     big zone with the example zone beside it (geo name included);
#   * reloads under load: loadgen offers RATE queries/s (default 20,000; geo
#     with ECS, 50,000 subnets) for SECONDS (default 10) while the script
#     sends SIGHUP every second; every query must be answered (lost=0), and
#     the log must show one successful reload per SIGHUP.
#
#   make build && bench/run-startup.sh [RECORDS] [SECONDS] [RATE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=${STEERDNS_BIN:-$top/build/steerdns}
loadgen=$top/build/bench/loadgen
records=${1:-100000}
seconds=${2:-10}
rate=${3:-20000}
port=5398
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}

# shellcheck source=bench/common.sh
. "$here/common.sh"
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

python3 - "$tmp" "$records" <<'EOF'
import sys
tmp, n = sys.argv[1], int(sys.argv[2])
def zone(path, count):
    lines = ["zone: big.test", "soa: {mname: ns1, rname: hostmaster}", "ns: [ns1]", "records:", "  ns1: {A: 127.0.0.1}"]
    for i in range(count - 3):  # with the SOA, the NS and ns1's A: COUNT records
        k = i % 4
        if k == 0: lines.append(f"  h{i}: {{A: 127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}}}")
        elif k == 1: lines.append(f"  h{i}: {{AAAA: \"fd00::{i >> 16:x}:{i & 0xffff:x}\"}}")
        elif k == 2: lines.append(f"  h{i}: {{TXT: \"record {i}\"}}")
        else: lines.append(f"  h{i}: {{CNAME: h{i - 3}}}")
    open(path, "w").write("\n".join(lines) + "\n")
zone(f"{tmp}/big.test.yaml", n)
zone(f"{tmp}/small.test.yaml", 4)
EOF
cp "$top/examples/zones/example.com.yaml" "$tmp/"
for what in small big; do
  printf 'server:\n  listen: [127.0.0.1:%s]\n  workers: 1\nzones: [%s.test.yaml]\nlogging: {level: info}\n' \
    "$port" "$what" >"$tmp/$what.yaml"
done
printf 'server:\n  listen: [127.0.0.1:%s]\n  workers: 1\nzones: [big.test.yaml, example.com.yaml]\nlogging: {level: info}\n' \
  "$port" >"$tmp/serve.yaml"
printf 'server:\n  listen: [127.0.0.1:%s]\n  workers: 1\nzones: [example.com.yaml]\nlogging: {level: info}\n' \
  "$port" >"$tmp/geo.yaml"

echo "== $(nproc) cores, $(uname -r); steerdns $("$bin" --version | cut -d' ' -f2)"
echo "== steerdns check: wall time and peak RSS (3 runs each)"
for what in small big geo; do
  for _ in 1 2 3; do
    /usr/bin/time -f "$what: %e s, %M KiB peak" "$bin" check -c "$tmp/$what.yaml" 2>&1 >/dev/null | tail -1
  done
done

echo
echo "== serve: exec to first answer, resident size ($records records + the example's geo name)"
ms() { echo $(($(date +%s%N) / 1000000)); }
for _ in 1 2 3; do
  t0=$(ms)
  taskset -c "$server_cpu" "$bin" serve -c "$tmp/serve.yaml" 2>"$tmp/log" &
  pid=$!
  wait_answer "$port" h4.big.test A
  t1=$(ms)
  echo "first answer after $((t1 - t0)) ms; resident $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

echo
echo "== reloads under load: $rate queries/s (geo+ECS) for ${seconds}s, SIGHUP every second"
taskset -c "$server_cpu" "$bin" serve -c "$tmp/serve.yaml" 2>"$tmp/log" &
pid=$!
wait_answer "$port"
taskset -c "$client_cpu" "$loadgen" -p "$port" -m geo-ecs -t "$seconds" -r "$rate" -P "$pid" >"$tmp/load" &
load=$!
sent=0
for _ in $(seq $((seconds - 1))); do
  sleep 1
  kill -HUP "$pid"
  sent=$((sent + 1))
done
wait "$load"
cat "$tmp/load"
# Reloads are logged when done; the last may still be compiling.
for _ in $(seq 100); do
  [ "$(grep -c 'reloaded' "$tmp/log")" -ge "$sent" ] && break
  sleep 0.1
done
echo "SIGHUPs sent: $sent; reloads logged: $(grep -c 'reloaded' "$tmp/log"); failed: $(grep -ci 'reload failed' "$tmp/log" || true)"
grep 'reloaded' "$tmp/log" | tail -2
