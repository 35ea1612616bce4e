#!/usr/bin/env bash
# Mutation check: breaks policy rules in a copy of the code and shows the
# scenario suite then fails.  See README.md; all options: run.sh --help.
#   tests/mutation/run.sh                      # every mutation (~1-2 min on 2 cores)
#   tests/mutation/run.sh --only q4-fifth-delay-81s
#   tests/mutation/run.sh --check              # do the replacements still match?
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/mutate.py" "$@"
