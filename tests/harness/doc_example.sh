#!/bin/sh
# docs/SCENARIOS.md §1's example runs and passes as written (issue 12: it
# asserted zero server WARNINGs, which held only because alice went offline
# before her socket opened).  Usage: doc_example.sh HP_HARNESS SCENARIOS.md
set -eu
harness=$1
doc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '/^## 1\. A first scenario/{f=1} f&&/^```yaml/{g=1;next} g&&/^```/{exit} g{print}' "$doc" \
    | sed 's#^id: queue/fifo-replay-after-offline#id: doc/first-scenario#' >"$tmp/first.yaml"
test -s "$tmp/first.yaml" || { echo "no yaml block in §1 of $doc"; exit 1; }
grep -q 'wait: 1s' "$tmp/first.yaml" || { echo "§1's example lost its wait: 1s"; exit 1; }
"$harness" run "$tmp/first.yaml" --no-reports
