#!/usr/bin/env bash
# dev-server.sh [--port N] [--db PATH] [--listen HOST] [--secret S] [--no-build]
#               [--bin PATH]:
# start hp-fake-server for app development, with --admin and a development
# secret; print a token for alice@home and the URLs to use.  Several may run
# side by side (one per team or CI job): give each its own --port and --db.
#
# Defaults: port 8080 on 127.0.0.1; the store in
# ${XDG_STATE_HOME:-~/.local/state}/hpsync-harness/dev-server-PORT.db, outside
# the repository.  The program: this checkout's build/ (built with cmake when
# missing or stale; scripts/setup.sh, which may apt-get, runs only when there
# is no build at all), else an installed hp-fake-server (the .deb); --bin
# names another (and implies --no-build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=8080 host=127.0.0.1 db="" build=1 bin=
secret=${HP_DEV_SECRET:-dev-secret-change-me}
usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --port) [ $# -ge 2 ] || usage; port=$2; shift 2 ;;
    --db) [ $# -ge 2 ] || usage; db=$2; shift 2 ;;
    --listen) [ $# -ge 2 ] || usage; host=$2; shift 2 ;;
    --secret) [ $# -ge 2 ] || usage; secret=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --bin) [ $# -ge 2 ] || usage; bin=$2; build=0; shift 2 ;;
    -h|--help) usage ;;
    *) echo "dev-server.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$port" in
  ''|*[!0-9]*) echo "dev-server.sh: --port needs a number from 1 to 65535, not '$port'" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  echo "dev-server.sh: --port needs a number from 1 to 65535, not '$port'" >&2; exit 2
fi
if [ -z "$db" ]; then
  state=${XDG_STATE_HOME:-$HOME/.local/state}/hpsync-harness
  mkdir -p "$state"
  db=$state/dev-server-$port.db
fi

[ -n "$bin" ] || bin=$root/build/fake_server/hp-fake-server
if [ $build = 1 ] && [ -f "$root/CMakeLists.txt" ]; then
  if [ ! -d "$root/build" ]; then
    bash "$root/scripts/setup.sh"          # first time only: may apt-get
    bash "$root/scripts/build.sh" normal >/dev/null
  else
    cmake --build "$root/build" --target hp-fake-server >/dev/null  # no apt-get
  fi
fi
if [ ! -x "$bin" ]; then
  bin=$(command -v hp-fake-server || true)
  [ -n "$bin" ] || { echo "dev-server.sh: no hp-fake-server (build/ or installed)" >&2; exit 3; }
fi

token=$("$bin" token --sub alice --hh home --ttl 8h --jwt-secret "$secret")
cat <<MSG
hp-fake-server on http://$host:$port  (secret: $secret, store: $db)
token (alice@home, 8h):
  $token
REST:      curl -H "Authorization: Bearer \$TOKEN" http://$host:$port/api/v0.2/tasks?since=0
WebSocket: ws://$host:$port/api/v0.2/tasks/stream?token=\$TOKEN
MSG
exec "$bin" --listen "$host:$port" --db "$db" --jwt-secret "$secret" --admin
