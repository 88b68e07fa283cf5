# Sourced by the bench scripts (which set $top, the repository): what several of them need.

# wait_answer PORT [NAME TYPE]: until 127.0.0.1:PORT answers NAME (default
# example.com SOA), polling every 10 ms for at most 10 s.
wait_answer() {
  local port=$1 name=${2:-example.com} type=${3:-SOA}
  for _ in $(seq 1000); do
    dig @127.0.0.1 -p "$port" "$name" "$type" +time=1 +tries=1 +short 2>/dev/null | grep -q . && return 0
    sleep 0.01
  done
  echo "nothing answers $name $type on 127.0.0.1:$port" >&2
  return 1
}

# example_without_checks DEST: the example zone without its check block, so
# its VIPs are served unchecked (as by peers that have no health checks),
# with the example's modification time (the SOA serial).
example_without_checks() {
  local zone=$top/examples/zones/example.com.yaml
  awk '/^    check:/ {skip = 1; next} skip && /^      / {next} {skip = 0; print}' "$zone" >"$1"
  touch -r "$zone" "$1"
}
