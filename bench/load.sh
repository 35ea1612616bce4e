#!/usr/bin/env bash
# bench/load.sh - hp-load against hp-fake-server and the bare floor
# (hp-floor), one after the other in the same run, with the same flags.
#
#   bench/load.sh [BUILD_DIR] -- [hp-load flags: --conns N --writers W ...]
#
# Starts each server on a free loopback port (hp-fake-server on a fresh
# file database in a temp dir: WAL + synchronous=FULL, group commit on,
# --max-conns 50000 (hp-load's users are all distinct, so the per-user limit
# is never reached), plus HP_LOAD_SERVER_ARGS), runs hp-load with --server-pid, stops the
# server, and prints both JSON lines plus the ratio server/floor of the main
# figures.  HP_LOAD_JSON=FILE appends the JSON lines to FILE.
# HP_LOAD_ONLY=server|floor runs one of the two.  HP_FLOOR_EVLIB=ev runs the
# floor on lws's libev plugin (epoll) instead of poll().
#
# Descriptors: hp-load holds one socket per stream and the server one per
# connection plus about 64 of its own, so a run of N streams needs a nofile
# limit above N + 64 in both.  The script raises its own limit (inherited by
# both) before starting anything: as root, the hard limit to HP_LOAD_NOFILE
# (default 65536) with prlimit; then the soft limit to the hard one.  Where
# the hard limit cannot be raised (a container without CAP_SYS_RESOURCE) it
# says so, and warns when --conns does not fit.
set -euo pipefail
BUILD=${1:-build}
[ "${2:-}" = "--" ] && shift 2 || shift $(( $# > 0 ? 1 : 0 ))
SRV=$BUILD/fake_server/hp-fake-server
FLOOR=$BUILD/bench/hp-floor
LOAD=$BUILD/bench/hp-load
TMP=$(mktemp -d /tmp/hp-load.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
SECRET=bench-secret-0123456789

run_one() { # name cmd...
  local name=$1; shift
  local port; port=$(free_port)
  "$@" --listen 127.0.0.1:$port 2>"$TMP/$name.log" &
  local pid=$!; PIDS+=($pid)
  wait_port "$port" || { echo "$name did not start:"; cat "$TMP/$name.log"; exit 3; }
  "$LOAD" --target 127.0.0.1:$port --secret $SECRET --server-pid $pid --label "$name" \
      ${HP_LOAD_JSON:+--json "$HP_LOAD_JSON"} "${LOAD_ARGS[@]}" | tee "$TMP/$name.out"
  kill -TERM $pid; wait $pid || true
  grep -h "commit_stats\|nofile" "$TMP/$name.log" || true
}
LOAD_ARGS=("$@")

conns=0
for ((i = 0; i < ${#LOAD_ARGS[@]}; i++)); do
  case "${LOAD_ARGS[$i]}" in
    --conns) conns=${LOAD_ARGS[$((i + 1))]:-0} ;;
    --conns=*) conns=${LOAD_ARGS[$i]#--conns=} ;;
  esac
done
[[ "$conns" =~ ^[0-9]+$ ]] || conns=0
NOFILE=${HP_LOAD_NOFILE:-65536}
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$NOFILE" ] && [ "$(id -u)" = 0 ]; then
  if prlimit --nofile="$NOFILE:$NOFILE" --pid $$ 2>/dev/null; then
    echo "load.sh: nofile raised to $NOFILE (hard and soft)" >&2
  elif [ $((conns + 64)) -gt "$hard" ]; then
    echo "load.sh: could not raise the hard nofile limit to $NOFILE" \
         "(no CAP_SYS_RESOURCE?); it stays $hard" >&2
  fi
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ $((conns + 64)) -gt "$nofile" ]; then
  echo "load.sh: --conns $conns needs a nofile limit above $((conns + 64)), it is $nofile:" \
       "expect refused or failed connections (at most about $((nofile - 64)) fit)" >&2
fi
ONLY=${HP_LOAD_ONLY:-both}
if [ "$ONLY" != floor ]; then
  # shellcheck disable=SC2086
  run_one server "$SRV" --db "${HP_LOAD_DB:-$TMP/server.db}" --jwt-secret $SECRET --log-level warning \
      --max-conns 50000 --keep-alive \
      ${HP_LOAD_SERVER_ARGS:-}
fi
if [ "$ONLY" != server ]; then
  run_one floor "$FLOOR"
fi
if [ "$ONLY" = both ]; then
  python3 - "$TMP/server.out" "$TMP/floor.out" <<'PY'
import json, sys
s, f = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
def g(d, path):
    for k in path.split("."):
        d = d.get(k) if isinstance(d, dict) else None
    return d
rows = [("setup rate (conn/s)", "setup_rate"), ("fan-out p50 (ms)", "fanout.p50_ms"),
        ("fan-out p99 (ms)", "fanout.p99_ms"), ("fan-out p999 (ms)", "fanout.p999_ms"),
        ("PUT/s", "puts_per_s"), ("PUT p99 (ms)", "put.p99_ms"),
        ("fan-out under load p99 (ms)", "fanout_load.p99_ms"),
        ("RSS per idle conn (KiB)", "rss_per_conn_kib"), ("server CPU (s)", "server_cpu_s.total")]
print("%-30s %12s %12s %8s" % ("figure", "server", "floor", "ratio"))
for name, path in rows:
    a, b = g(s, path), g(f, path)
    r = "%.2f" % (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "-"
    print("%-30s %12s %12s %8s" % (name, a, b, r))
PY
fi
