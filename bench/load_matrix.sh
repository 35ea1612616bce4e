#!/usr/bin/env bash
# bench/load_matrix.sh - the runs behind bench/README.md "Server under load".
#
#   bench/load_matrix.sh [BUILD_DIR] [OUT.jsonl] [SIZES...]
#
# For each size N (default 1000 5000 10000 20000), against hp-fake-server
# and then the floor (bench/load.sh):
#   fanout-N  : N streams in 1 household, 20 fan-out rounds (every listener
#               hears every write), no write phase
#   w1-N      : N streams over N/10 households, 1 writer for 5 s
#   w64-N     : N streams over N/10 households, 64 writers for 5 s
# and, without streams, w1-0 and w64-0 (durable PUT/s alone).  Every JSON
# line goes to OUT.jsonl (default bench/load-runs.jsonl, not tracked);
# bench/load_table.py turns it into the README tables.
set -uo pipefail
BUILD=${1:-build}
OUT=${2:-bench/load-runs.jsonl}
shift $(( $# >= 2 ? 2 : $# ))
SIZES=${*:-1000 5000 10000 20000}
HERE=$(cd "$(dirname "$0")" && pwd)
run() { # label-prefix hp-load args...
  local pre=$1; shift
  HP_LOAD_JSON="$OUT.tmp" bash "$HERE/load.sh" "$BUILD" -- "$@" >/dev/null 2>&1 ||
      echo "load_matrix: $pre $* failed" >&2
  [ -f "$OUT.tmp" ] && sed "s/^{\"label\":\"\\([a-z]*\\)\"/{\"label\":\"\\1\",\"run\":\"$pre\"/" "$OUT.tmp" >> "$OUT"
  rm -f "$OUT.tmp"
}
for w in 1 64; do
  run "w$w-0" --conns 0 --writers $w --rounds 0 --duration 5 --settle 0
done
for n in $SIZES; do
  run "fanout-$n" --conns $n --households 1 --writers 1 --rounds 20 --duration 0
  for w in 1 64; do
    run "w$w-$n" --conns $n --households $(( n / 10 )) --writers $w --rounds 0 --duration 5
  done
done
