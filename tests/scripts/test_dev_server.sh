#!/usr/bin/env bash
# test_dev_server.sh HP_FAKE_SERVER: scripts/dev-server.sh as a client team
# uses it (issue 10 point 6): two servers side by side on their own --port,
# each with its store where it was told (--db) or, by default, under
# $XDG_STATE_HOME (never in the repository); each answers its printed token;
# a bad --port is a usage error (exit 2).  No build and no apt-get: --bin.
set -euo pipefail
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if bash "$root/scripts/dev-server.sh" --port 99999 --bin "$bin" 2>/dev/null; then
  fail "--port 99999 accepted"
else
  [ $? = 2 ] || fail "--port 99999: exit is not 2"
fi

p1=$(free_port) p2=$(free_port)
export XDG_STATE_HOME=$work/state
bash "$root/scripts/dev-server.sh" --port "$p1" --bin "$bin" >"$work/out1" 2>"$work/err1" &
pids+=($!)
bash "$root/scripts/dev-server.sh" --port "$p2" --db "$work/two.db" --bin "$bin" >"$work/out2" 2>"$work/err2" &
pids+=($!)

for n in 1 2; do
  port=$p1; [ $n = 2 ] && port=$p2
  ok=0
  for _ in $(seq 1 100); do   # until the server answers (not a timed assertion: 10 s at most)
    tok=$(sed -n 3p "$work/out$n" | tr -d ' ')
    if [ -n "$tok" ] && code=$(curl -s -o /dev/null -w '%{http_code}' \
         -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/v0.2/tasks?since=0") &&
       [ "$code" = 200 ]; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok = 1 ] || { cat "$work/err$n" >&2; fail "server $n on port $port did not answer 200"; }
done
[ -f "$work/state/hpsync-harness/dev-server-$p1.db" ] || fail "default store not under XDG_STATE_HOME"
[ -f "$work/two.db" ] || fail "--db not used"
grep -q "store: $work/two.db" "$work/out2" || fail "the banner does not name the store"
ls "$root"/dev-server*.db 2>/dev/null && fail "a store was written into the repository"
echo "ok: two dev servers side by side on $p1 and $p2"
