#!/usr/bin/env bash
# build.sh [normal|mutation|asan|fuzz]: configure and build into build/,
# build-asan/ or build-fuzz/ (clang, the libFuzzer targets of fuzz/ only).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-normal}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
  normal) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWITH_WERROR=ON -DWITH_MUTATION_TESTS=OFF) ;;
  # normal + the mutation check (tests/mutation): the suite must catch 48 rule breaks
  mutation) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWITH_WERROR=ON -DWITH_MUTATION_TESTS=ON) ;;
  asan)   dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DWITH_SANITIZERS=ON -DWITH_WERROR=ON) ;;
  # clang + libFuzzer + ASan + UBSan; builds only the targets (fuzz/README.md)
  fuzz)   dir=build-fuzz; flags=(-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DWITH_FUZZ=ON -DWITH_WERROR=ON) ;;
  *) echo "usage: build.sh [normal|mutation|asan|fuzz]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
if [ "$kind" = fuzz ]; then
  cmake --build "$dir" -j "$jobs" --target fuzz
else
  cmake --build "$dir" -j "$jobs"
fi
