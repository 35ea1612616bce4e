#!/usr/bin/env bash
# margin.sh BUILD-DIR [SCALE]: the real-mode tests that CTest runs at
# --time-scale 0.03 (the client profile with hp-fake-client and with the
# Python example client, the server profile, the real suite), run once at
# SCALE (default 0.015, half).  Not part of CTest: it is a check of the
# scenarios' timing margins, for when a scenario or a policy timer changes.
#
# Why: in real mode a short wait is stretched to the settle time (100 ms of
# wall, whatever the scale) and steps take wall time, so an expectation that
# lies a few virtual seconds from a policy timer passes on a quiet machine
# and fails on a loaded one.  Halving the time scale doubles every such lag
# in virtual time: a scenario that passes here has at least twice the
# margin it needs at 0.03.  (client/watchdog-and-4001 as it was before
# 196b30d failed here 3 times in 3, and once in a CI run at 0.03.)
# Exit 0 when every run passed.
set -uo pipefail
build=$(cd "${1:?usage: margin.sh BUILD-DIR [SCALE]}" && pwd)
scale=${2:-0.015}
src=$(cd "$(dirname "$0")/../.." && pwd)
hx="$build/harness/hp-harness"
# The Debian python3, which has python3-websockets (scripts/setup.sh), as CTest uses.
py=/usr/bin/python3
common=(--mode real --bin-dir "$build" --no-reports --time-scale "$scale" --jobs 2)
cflags='--server {server} --db {db} --key-file {key_file} --name {name} --time-scale {time_scale} --policy {policy} --online {online}'
status=0
run() { # NAME COMMAND...: run, keep the last lines, record a failure
  local name=$1; shift
  echo "== $name (time scale $scale)"
  if ! "$@" > "$tmp/out" 2>&1; then
    status=1
    grep -E '^(FAIL|PARTIAL)|^      /' "$tmp/out" | head -20
  fi
  tail -1 "$tmp/out"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run "client profile, hp-fake-client" "$hx" run "$src/scenarios" "${common[@]}" --tag client-profile \
    --client-cmd "$build/fake_client/hp-fake-client --token-file {token_file} $cflags"
run "client profile, Python example client" "$hx" run "$src/scenarios" "${common[@]}" --tag client-profile \
    --client-cmd "$py $src/examples/python_client/hp_client.py --token {token} $cflags"
run "server profile" env HP_REAL_TIME_SCALE="$scale" "$py" "$src/tests/harness_real/foreign.py" \
    "$hx" "$build" "$src/tests/harness_real" --server-profile "$src/scenarios"
# The real suite: the scenarios CTest's harness_real_suite names.
mapfile -t filters < <(sed -n '/add_test(NAME harness_real_suite/,/--junit/p' "$src/tests/harness_real/CMakeLists.txt" |
                       grep -o -- '--filter [^ ]*' | cut -d' ' -f2)
fargs=()
for f in "${filters[@]}"; do fargs+=(--filter "$f"); done
run "real suite (${#filters[@]} scenarios)" "$hx" run "$src/scenarios" "${common[@]}" --require-rules all "${fargs[@]}"
exit $status
