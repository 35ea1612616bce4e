#!/bin/sh
# A client program that closes its stdin and dies: the harness must report
# a runtime error (exit 3, the client named, reports written), not be killed
# by SIGPIPE when it writes the next command (exit 141, no summary line).
# usage: dead_client.sh HP-HARNESS BUILD-DIR SCENARIOS-DIR
set -u
harness=$1 build=$2 scenarios=$3
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/fake_server" "$dir/fake_client"
ln -s "$build/fake_server/hp-fake-server" "$dir/fake_server/hp-fake-server"
mkdir -p "$dir/fault_proxy"
ln -s "$build/fault_proxy/hp-fault-proxy" "$dir/fault_proxy/hp-fault-proxy"
cat > "$dir/fake_client/hp-fake-client" <<'SH'
#!/bin/sh
echo '{"kind":"connection","state":"ready"}'
exec 0<&-
sleep 2
SH
chmod +x "$dir/fake_client/hp-fake-client"
out=$("$harness" run "$scenarios" --filter queue/delete-offline-replayed --mode real \
      --bin-dir "$dir" --junit "$dir/junit.xml" --json "$dir/r.json" --html "$dir/r.html" 2>&1)
rc=$?
echo "$out"
echo "exit=$rc"
[ "$rc" -eq 3 ] || { echo "want exit 3"; exit 1; }
echo "$out" | grep -q "client alice: cannot write its stdin" || { echo "want the client named"; exit 1; }
echo "$out" | grep -q "0 passed, 1 failed" || { echo "want the summary line"; exit 1; }
grep -q "cannot write its stdin" "$dir/junit.xml" || { echo "want it in the JUnit report"; exit 1; }
echo "ok"
