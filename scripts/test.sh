#!/usr/bin/env bash
# test.sh: set up, then run every test (CTest) in the normal build - with the
# mutation check, which shows the suite catches 49 deliberate rule breaks - and
# again under ASan + UBSan; then the Debian package (installed with apt, run,
# removed: scripts/package-test.sh) and the fuzz targets (clang: replay of the seeds
# and regressions, a short campaign each; fuzz/README.md).  Exits non-zero on
# any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser --with-node
# Every black-box test runs here: a missing browser or Node is a failure, not a skip.
export HP_BB_REQUIRE_ALL=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for kind in mutation asan; do
  echo "== $kind build"
  bash scripts/build.sh "$kind"
  dir=build; [ "$kind" = asan ] && dir=build-asan
  echo "== $kind tests"
  (cd "$dir" && ctest --output-on-failure -j 2 --timeout 600) || status=1
done
echo "== package: build the .deb, install it with apt, run it, remove it"
bash scripts/package-test.sh build || status=1
echo "== fuzz build"
bash scripts/build.sh fuzz
echo "== fuzz: replay and short campaigns"
(cd build-fuzz && ctest -L fuzz --output-on-failure -j 2 --timeout 300) || status=1
exit $status
