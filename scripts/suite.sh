#!/usr/bin/env bash
# suite.sh [hp-harness run options]: set up, build, and run the scenario suite
# in the simulator.  Reports go to reports/ (terminal summary, JUnit XML,
# JSON, HTML).  Exit code is hp-harness's: 0 passed, 1 failed, 2 invalid, 3 error.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh normal >/dev/null
mkdir -p reports
exec build/harness/hp-harness run scenarios/ \
  --junit reports/junit.xml --json reports/report.json --html reports/report.html "$@"
