#!/usr/bin/env bash
# Checks that a server on 127.0.0.1:PORT answers the example zone as the
# benchmark expects (geo placement by ECS, static data, NXDOMAIN with SOA).
# A handful of bounded digs, 127.0.0.1 only. Prints one line per check and
# "N passed, N failed"; exits non-zero on any failure.
#
#   bench/peers/verify.sh [PORT]            (default 5399)
#   pid=$(bench/peers/start.sh gdnsd 5399) && bench/peers/verify.sh 5399; kill "$pid"
set -euo pipefail
port=${1:-5399}
[[ $port =~ ^[0-9]+$ ]] || { echo "usage: $0 [PORT]" >&2; exit 2; }

pass=0 fail=0
ask() { dig @127.0.0.1 -p "$port" +time=2 +tries=1 "$@" 2>&1 || true; }

check() {  # check LABEL EXPECTED ACTUAL
    if [[ $3 == "$2" ]]; then
        pass=$((pass + 1)); printf 'ok    %-34s %s\n' "$1" "$3"
    else
        fail=$((fail + 1)); printf 'FAIL  %-34s got [%s], want [%s]\n' "$1" "$3" "$2"
    fi
}

# The A records of the answer, sorted, and the ECS scope echoed.
geo() {
    local out
    out=$(ask artifacts.example.com A +subnet="$1" +noall +answer +comments)
    local addrs scope
    addrs=$(awk '$4 == "A" {print $5}' <<<"$out" | sort | tr '\n' ' ')
    scope=$(sed -n 's/^; CLIENT-SUBNET: \(.*\)$/\1/p' <<<"$out")
    printf '%s(ECS %s)' "$addrs" "${scope:-none}"
}

# Paris (FR), US (NA), 1.1.1.0/24 (AU, Oceania), 202.12.27.0/24 (JP, Asia).
check "ECS 193.51.24.0/24 (FR) -> paris"   "127.1.0.1 127.1.0.2 " "$(geo 193.51.24.0/24 | sed 's/(ECS.*//')"
check "ECS 8.8.8.0/24 (US) -> virginia"     "127.2.0.1 127.2.0.2 " "$(geo 8.8.8.0/24 | sed 's/(ECS.*//')"
check "ECS 1.1.1.0/24 (AU) -> singapore"    "127.3.0.1 127.3.0.2 " "$(geo 1.1.1.0/24 | sed 's/(ECS.*//')"
check "ECS 202.12.27.0/24 (JP) -> singapore" "127.3.0.1 127.3.0.2 " "$(geo 202.12.27.0/24 | sed 's/(ECS.*//')"
for s in 193.51.24.0/24 8.8.8.0/24 1.1.1.0/24 202.12.27.0/24; do
    printf 'info  %-34s %s\n' "scope for $s" "$(geo "$s" | sed 's/.*(ECS \(.*\))/\1/')"
done
check "no ECS, source 127.0.0.1 -> default" "127.1.0.1 127.1.0.2 " \
    "$(ask artifacts.example.com A +noall +answer | awk '$4 == "A" {print $5}' | sort | tr '\n' ' ')"
check "artifacts TTL" "30" "$(ask artifacts.example.com A +subnet=8.8.8.0/24 +noall +answer | awk '$4 == "A" {print $2; exit}')"
check "www.example.com A" "127.0.0.10" "$(ask www.example.com A +short)"
check "www.example.com A, ECS scope" "193.51.24.0/24/0" \
    "$(ask www.example.com A +subnet=193.51.24.0/24 | sed -n 's/^; CLIENT-SUBNET: //p')"
nx=$(ask nosuch.example.com A +noall +comments +authority)
check "nosuch.example.com status" "NXDOMAIN" "$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$nx")"
check "nosuch.example.com authority" "example.com. SOA" "$(awk '$4 == "SOA" {print $1, $4}' <<<"$nx")"
check "nosuch.example.com aa flag" "aa" "$(grep -o ' aa' <<<"$nx" | tr -d ' ' | head -1)"
check "example.com MX" "10 mail.example.com." "$(ask example.com MX +short)"
check "example.com TXT" '"v=spf1 -all"' "$(ask example.com TXT +short)"
check "example.com NS" "ns1.example.com. ns2.example.com. " "$(ask example.com NS +short | sort | tr '\n' ' ')"
check "www.example.com A over TCP" "127.0.0.10" "$(ask www.example.com A +tcp +short)"
printf 'info  %-34s %s\n' "repo.example.com A, ECS 8.8.8.0/24" \
    "$(ask repo.example.com A +subnet=8.8.8.0/24 +noall +answer | awk '{print $4, $5}' | sort | tr '\n' ' ')"
printf 'info  %-34s %s\n' "example.com SOA" "$(ask example.com SOA +noall +answer | awk '{print "TTL", $2, $5, $6, $7, $8, $9, $10, $11}')"
printf 'info  %-34s %s\n' "nosuch SOA TTL" "$(awk '$4 == "SOA" {print $2}' <<<"$nx")"

echo "$pass passed, $fail failed"
((fail == 0))
