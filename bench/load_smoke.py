#!/usr/bin/env python3
"""CTest bench.load_smoke: hp-load and hp-floor work (no timing assertion).

Runs bench/load.sh (hp-fake-server on a fresh file store, then hp-floor)
with a few connections, writers and rounds for a second, and checks the
figures hp-load reports are whole: every stream became READY and is still
open, every fan-out round completed, every listener got every event, the
writes were answered 200 with no error, and the server's RSS and CPU were
read from /proc.  Usage: load_smoke.py BUILD_DIR SRC_DIR"""
import json, os, subprocess, sys, tempfile

build, src = sys.argv[1], sys.argv[2]
conns, rounds = 40, 4
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "runs.json")
    env = dict(os.environ, HP_LOAD_JSON=out)
    p = subprocess.run(["bash", os.path.join(src, "bench", "load.sh"), build, "--",
                        "--conns", str(conns), "--households", "2", "--writers", "3",
                        "--rounds", str(rounds), "--duration", "1", "--settle", "0.2"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=240)
    print(p.stdout)
    assert p.returncode == 0, "load.sh exit %d" % p.returncode
    runs = [json.loads(l) for l in open(out) if l.strip()]
labels = [r["label"] for r in runs]
assert labels == ["server", "floor"], labels
for r in runs:
    name = r["label"]
    assert r["ready"] == conns and r["failed"] == 0, (name, r["ready"], r["failed"])
    assert r["open_at_end"] == conns, (name, r["open_at_end"])
    assert r["rounds"] == rounds and r["rounds_timeout"] == 0, (name, r["rounds"])
    # Round r goes to household r % 2, which has conns/2 listeners.
    assert r["fanout"]["n"] == rounds * conns // 2, (name, r["fanout"])
    assert r["put_ok"] > 0 and r["put_errors"] == 0 and r["put_409"] == 0, name
    assert r["server_rss_kib"]["idle"] > 0 and r["server_cpu_s"]["total"] >= 0, name
    assert r["closes"] == 0, (name, r["closes"])
print("load smoke: ok")
