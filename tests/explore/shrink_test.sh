#!/bin/bash
# explore.shrink: the shrinker end to end on a planted property.
#   shrink_test.sh HP_HARNESS WORKDIR
# Property: the server never answers 409.  Explore must find a schedule that
# breaks it, shrink it to at most 10 steps, write it as a scenario that
# `hp-harness run` fails at the property's line, and write the same bytes
# when run again with the same seed (determinism).
set -u
hx=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prop='{server: {requests: {status: 409, count: 0}}}'
args=(explore --seed 3 --clients 2 --steps 40 --schedules 200 --budget 120s --property "$prop")
"$hx" "${args[@]}" --out "$work/a" > "$work/a.log" 2>&1
rc=$?
cat "$work/a.log"
[ $rc = 1 ] || { echo "FAIL: explore exited $rc, want 1 (a failure found)"; exit 1; }
f=$(ls "$work"/a/*.yaml 2>/dev/null)
[ -n "$f" ] && [ "$(echo "$f" | wc -l)" = 1 ] || { echo "FAIL: want one scenario in $work/a"; exit 1; }
cat "$f"
n=$(sed -n '/^steps:/,$p' "$f" | grep -c '^  - ')
[ "$n" -le 10 ] || { echo "FAIL: $n steps, want <= 10"; exit 1; }
"$hx" run "$f" --no-reports > "$work/run.log" 2>&1
rc=$?
cat "$work/run.log"
[ $rc = 1 ] || { echo "FAIL: hp-harness run exited $rc on the written file, want 1"; exit 1; }
line=$(grep -n '# the property' "$f" | cut -d: -f1)
grep -q "$(basename "$f"):$((line + 1)): server.requests" "$work/run.log" ||
    { echo "FAIL: the run does not fail at the property (line $((line + 1)))"; exit 1; }
"$hx" "${args[@]}" --out "$work/b" > /dev/null 2>&1
cmp "$f" "$work/b/$(basename "$f")" || { echo "FAIL: same seed, different file"; exit 1; }
echo "explore.shrink: ok ($n steps)"
