#!/usr/bin/env bash
# Installs the peer DNS servers for side-by-side benchmarks (Debian 12):
# gdnsd 3.8.1 and Knot DNS 3.2.6 with its GeoIP module. Idempotent.
#
# Debian's maintainer scripts would start gdnsd and knot with their default
# configs (listening on every address). A policy-rc.d answering 101 ("action
# forbidden") stops invoke-rc.d from doing that; it is created only if none
# forbids starts already, and removed (or the previous one restored) on exit.
# Afterwards no gdnsd/knotd may be running that this install started.
set -euo pipefail

PKGS=(gdnsd knot knot-module-geoip)

if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $st == installed ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install.sh: ${PKGS[*]} already installed" >&2
    exit 0
fi

POLICY=/usr/sbin/policy-rc.d
created=0
backup=""
restore_policy() {
    if [[ $created -eq 1 ]]; then
        rm -f "$POLICY"
        if [[ -n $backup ]]; then mv -f "$backup" "$POLICY"; fi
    fi
}
trap restore_policy EXIT

policy_forbids() {
    # An existing policy-rc.d that already answers 101 for a start is kept.
    [[ -x $POLICY ]] || return 1
    local rc=0
    "$POLICY" gdnsd start >/dev/null 2>&1 || rc=$?
    [[ $rc -eq 101 ]]
}

if ! policy_forbids; then
    if [[ -e $POLICY ]]; then
        backup=$(mktemp /usr/sbin/policy-rc.d.steerdns-bak.XXXXXX)
        cp -p "$POLICY" "$backup"
    fi
    created=1
    printf '#!/bin/sh\n# temporary, bench/peers/install.sh: no daemon starts during the install\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
fi

# PIDs of gdnsd/knotd before the install: never touched.
before=" $( (pgrep -x 'gdnsd|knotd' || true) | tr '\n' ' ') "

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    # Stale package lists: update once and retry.
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Anything named gdnsd/knotd that appeared during the install was started by
# it (despite the policy): stop exactly those PIDs.
for pid in $(pgrep -x 'gdnsd|knotd' || true); do
    if [[ $before != *" $pid "* ]]; then
        echo "install.sh: stopping $(ps -o comm= -p "$pid") PID $pid started by the package" >&2
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
done

# The packages enable their systemd units: on a machine booted with systemd,
# gdnsd would start at the next boot with its default config (port 53 on
# every address). The benchmark starts them itself, so disable the units this
# install enabled (symlinks only; harmless where systemd is not running).
if command -v systemctl >/dev/null; then
    for p in "${missing[@]}"; do
        case $p in gdnsd) unit=gdnsd.service ;; knot) unit=knot.service ;; *) continue ;; esac
        systemctl disable --no-reload "$unit" >&2 \
            || echo "install.sh: could not disable $unit (check it is not enabled)" >&2
    done
fi

dpkg-query -W -f='${Package} ${Version}\n' "${PKGS[@]}" >&2
