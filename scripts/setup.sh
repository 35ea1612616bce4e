#!/usr/bin/env bash
# setup.sh [--with-browser]: installs what the project needs on Debian 12
# (idempotent, no prompts).  --with-browser adds Debian's chromium for the
# black-box browser test (tests/blackbox/test_server_browser.py).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libwebsockets-dev libjansson-dev libjwt-dev
      libsqlite3-dev libyaml-dev libcmocka-dev libssl-dev python3 python3-yaml
      python3-jsonschema curl)
[ "${1:-}" = "--with-browser" ] && pkgs+=(chromium)
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
