#!/usr/bin/env bash
# Copies MaxMind's public test databases (fake data "for example purposes
# only", CC BY-SA 3.0, (c) MaxMind, Inc.) into tests/geoip/maxmind/. They ship
# inside the upstream tarball of Debian's python-maxminddb source package; this
# fetches it with a throw-away apt configuration (the system's is untouched).
# Run by hand when updating; the tests use the committed copies.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=$here/maxmind
want=(GeoIP2-City-Test.mmdb GeoLite2-City-Test.mmdb GeoIP2-Country-Test.mmdb
      GeoLite2-Country-Test.mmdb MaxMind-DB-test-broken-pointers-24.mmdb)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/src" "$dest"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
  > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1)
apt-get "${apt_opts[@]}" -qq update
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only python-maxminddb)
tarball=$(ls "$work"/src/*.orig.tar.* | head -n 1)
for name in "${want[@]}"; do
  member=$(tar -tf "$tarball" | grep "/test-data/$name\$" | head -n 1)
  [ -n "$member" ] || { echo "$name is not in $(basename "$tarball")" >&2; exit 1; }
  tar -xOf "$tarball" "$member" > "$dest/$name"
done
echo "copied ${#want[@]} databases from $(basename "$tarball") to $dest"
