#!/usr/bin/env bash
# Health prober (issue #4), on loopback: failover time of a VIP whose backend
# stops (refused, and hung for settings A), and the prober thread's CPU for
# 1,000 probed VIPs at a 1 s interval (http, tcp) plus https at 250 VIPs.
# steerdns runs with one worker pinned to CPU 1; the Python backends and the
# query loop run on CPU 0. All traffic stays in 127.0.0.0/8; the whole run is
# bounded by `timeout` (about 3 minutes with the defaults).
#
#   bench/run-health.sh                    (after `make build`)
#   bench/run-health.sh failover --runs-a 3        # any health_bench.py arguments
#   bench/run-health.sh cpu --variants https-insecure:1000 --window 10
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
export STEERDNS_BIN=${STEERDNS_BIN:-$top/build/steerdns}
[ -x "$STEERDNS_BIN" ] || { echo "no steerdns at $STEERDNS_BIN: make build" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl (the CLI) is missing" >&2; exit 1; }
[ $# -gt 0 ] || set -- all
# SIGTERM makes health_bench.py unwind and stop what it started; -k is the backstop.
exec timeout -k 10 "${LIMIT:-300}" python3 "$here/health_bench.py" "$@"
