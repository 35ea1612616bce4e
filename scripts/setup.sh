#!/usr/bin/env bash
# setup.sh [--with-browser] [--with-node]: installs what the project needs
# on Debian 12 (idempotent, no prompts).  --with-browser adds Debian's
# chromium for tests/blackbox/test_server_browser.py; --with-node adds
# Node.js and the npm `ws` and `playwright-core` packages (pinned by
# tests/blackbox/node/package-lock.json) for test_server_foreign_clients.py
# and test_server_sessions_browser.py (playwright-core drives the installed
# chromium; it never downloads a browser).
set -euo pipefail
cd "$(dirname "$0")/.."
with_browser=0 with_node=0
for a in "$@"; do
  case "$a" in
    --with-browser) with_browser=1 ;;
    --with-node) with_node=1 ;;
    *) echo "usage: setup.sh [--with-browser] [--with-node]" >&2; exit 2 ;;
  esac
done
pkgs=(build-essential cmake pkg-config libwebsockets-dev libjansson-dev libjwt-dev
      libsqlite3-dev libyaml-dev libcmocka-dev libssl-dev python3 python3-yaml
      python3-jsonschema python3-websockets curl openssl
      clang)  # clang: the libFuzzer targets (fuzz/, scripts/build.sh fuzz)
[ $with_browser = 1 ] && pkgs+=(chromium)
# A machine may already have Node.js (and npm) outside Debian's packages.
[ $with_node = 1 ] && ! command -v node >/dev/null 2>&1 && pkgs+=(nodejs)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq </dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
# npm only after nodejs: a nodejs from NodeSource ships its own npm (and
# conflicts with Debian's), Debian's nodejs needs the separate package.
if [ $with_node = 1 ] && ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing npm"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm \
    </dev/null >/dev/null
fi
if [ $with_node = 1 ] && { [ ! -f tests/blackbox/node/node_modules/ws/package.json ] ||
     [ ! -f tests/blackbox/node/node_modules/playwright-core/package.json ]; }; then
  echo "setup: npm ci in tests/blackbox/node (ws, playwright-core: no browser download)"
  (cd tests/blackbox/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
     npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi
