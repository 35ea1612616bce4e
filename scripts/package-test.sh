#!/usr/bin/env bash
# package-test.sh [BUILD_DIR]: build the Debian package from a configured
# and built tree (default build/), install it with apt, run the installed
# programs from the installed paths - every --version, hp-fake-server --help,
# one scenario in simulation and the same one in real mode (installed
# hp-fake-server, hp-fake-client and hp-fault-proxy on real sockets) - then
# remove the package.  Needs root (CI runs as root) or sudo.  Exits non-zero
# on any failure; the package is removed either way.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

echo "== package: cpack -G DEB in $dir"
rm -f "$dir"/hpsync-harness_*.deb
(cd "$dir" && cpack -G DEB >/dev/null)
deb=$(ls "$dir"/hpsync-harness_*.deb)
echo "package: $deb"

cleanup() { $sudo apt-get remove -y -qq hpsync-harness </dev/null >/dev/null 2>&1 || true; }
trap cleanup EXIT
# apt resolves the package's Depends (libwebsockets17, libjwt0, ...) itself.
$sudo apt-get install -y -qq --no-install-recommends "$(realpath "$deb")" </dev/null >/dev/null

share=/usr/share/hpsync-harness
scn=$share/scenarios/client/hello-revision-and-replay.yaml
for prog in hp-fake-server hp-fake-client hp-harness hp-fault-proxy; do
  path=$(command -v $prog)
  [ "$path" = /usr/bin/$prog ] || { echo "package: $prog is $path, not /usr/bin/$prog" >&2; exit 1; }
  $prog --version
done
# Not "--help | grep -q": grep leaves at the first match, and the rest of the
# help (over one 4 KiB stdio buffer) then dies of SIGPIPE, which pipefail
# reports as a failure (it did, once, in a CI rehearsal).
help=$(hp-fake-server --help)
grep -q -- "--listen" <<<"$help" || { echo "package: hp-fake-server --help" >&2; exit 1; }
test -f $share/scenario.schema.json
test -f /usr/share/doc/hpsync-harness/SYNC_POLICY.md
work=$(mktemp -d)
(cd "$work" && hp-harness run "$scn" --no-reports | tail -1)
# Real mode finds the installed programs next to hp-harness (/usr/bin).
(cd "$work" && hp-harness run "$scn" --mode real --no-reports | tail -1)
rm -rf "$work"
echo "package: ok ($deb installed, run and removed)"
