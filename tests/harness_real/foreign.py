#!/usr/bin/env python3
"""Real mode against a server given with --server: our own hp-fake-server,
started here on its own (so to the harness it is a foreign server: its log,
state and connections are not on the wire).  Shows SPEC section 7:

- an unobservable assertion is reported on its own line and never hides an
  observable failure in the same step (exit 1, the failing line named);
- a scenario whose observable assertions pass but some are unobservable is
  PARTIAL (exit 0 only with --require-rules none);
- --require-rules: a rule without a passing observable check fails the run
  (exit 1, the rule named in the last line); with --server it defaults to
  the server rules, so a run that checked little never exits 0;
- --token-cmd mints the tokens (here with hp-fake-server token) and
  --server-reset runs before each scenario.

- with --server-profile SCENARIOS: the server-conformance profile
  (--tag server-profile) against that server, every server rule required:
  nothing fails, every server rule is checked.

usage: foreign.py HP-HARNESS BUILD-DIR TEST-DIR [--server-profile SCENARIOS]"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

hx, build, here = sys.argv[1], sys.argv[2], sys.argv[3]
# CTest runs at 0.03; tests/harness_real/margin.sh runs the profile at half
# that to show the real-mode margins hold (HP_REAL_TIME_SCALE).
scale = os.environ.get("HP_REAL_TIME_SCALE", "0.03")
profile = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--server-profile" else None
server_bin = os.path.join(build, "fake_server", "hp-fake-server")
fails = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def check(name, args, want_rc, patterns):
    r = subprocess.run([hx, "run"] + args, capture_output=True, text=True, timeout=240)
    out = r.stdout + r.stderr
    ok = r.returncode == want_rc and all(re.search(p, out, re.S) for p in patterns)
    print("%s %s (exit %d)" % ("PASS" if ok else "FAIL", name, r.returncode))
    if not ok:
        print(out)
        fails.append(name)
    return out


with tempfile.TemporaryDirectory() as d:
    secret = os.path.join(d, "secret")
    with open(secret, "w") as f:
        f.write("foreign-test-secret\n")
    port = free_port()
    srv = subprocess.Popen([server_bin, "--listen", "127.0.0.1:%d" % port, "--db",
                            os.path.join(d, "s.db"), "--jwt-secret-file", secret,
                            "--time-scale", scale],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "srv.log"), "w"))
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = "http://127.0.0.1:%d" % port
        common = ["--mode", "real", "--bin-dir", build, "--no-reports", "--server", url,
                  "--jwt-secret-file", secret, "--time-scale", scale]
        if profile:
            # The server profile against a server the harness sees as foreign:
            # the default --require-rules is every server rule.
            check("server profile", [profile, "--tag", "server-profile", "--jobs", "2"] + common,
                  0, [r"\d+ passed, 0 failed, \d+ partial, \d+ skipped, rules: \d+ of 27 checked$"])
            raise SystemExit(0 if not fails else 1)
        # One failing observable line beside an unobservable one: exit 1.
        check("unobservable line, failing line", [os.path.join(here, "unobservable-and-failing.yaml")]
              + common + ["--require-rules", "none"], 1,
              [r"unobservable-and-failing\.yaml:\d+: bob\.received", r"0 passed, 1 failed"])
        # Observable lines pass, one unobservable: PARTIAL, exit 0 when no
        # rule is required.
        out = check("partial", [os.path.join(here, "unobservable-partial.yaml")] + common +
                    ["--require-rules", "none", "--json", os.path.join(d, "p.json")], 0,
                    [r"PART  real/unobservable-partial", r"unobservable: .*server\.log",
                     r"0 passed, 0 failed, 1 partial, 0 skipped, rules: 1 of 27 checked"])
        # The default against --server: every server rule required.  One
        # scenario about WS-3 leaves the others unchecked: exit 1, named.
        check("require-rules by default with --server",
              [os.path.join(here, "unobservable-partial.yaml")] + common, 1,
              [r"required but unchecked: WS-1, WS-2, WS-4"])
        # An explicit list: WS-3 is checked, so the run passes.
        check("require-rules WS-3", [os.path.join(here, "unobservable-partial.yaml")] + common +
              ["--require-rules", "WS-3"], 0, [r"rules: 1 of 27 checked$"])
        # An unknown rule is a usage error.
        check("require-rules unknown", [os.path.join(here, "unobservable-partial.yaml")] + common
              + ["--require-rules", "WS-9"], 2, [r"unknown rule 'WS-9'"])
        # --token-cmd instead of the secret, and --server-reset before each
        # scenario (here it leaves a mark we look for).
        mark = os.path.join(d, "reset-ran")
        tok_cmd = ("%s token --sub {sub} --hh {hh} --dev {dev} --ttl 1h --jwt-secret-file %s"
                   % (server_bin, secret))
        common2 = [c for c in common if c not in ("--jwt-secret-file", secret)]
        check("token-cmd and server-reset", [os.path.join(here, "unobservable-partial.yaml")] +
              common2 + ["--token-cmd", tok_cmd, "--server-reset", "touch " + mark,
                         "--require-rules", "WS-3"], 0, [r"PART  real/unobservable-partial"])
        if not os.path.exists(mark):
            print("FAIL --server-reset did not run")
            fails.append("server-reset")
    finally:
        srv.terminate()
        srv.wait(timeout=20)

print("%d failed" % len(fails))
sys.exit(1 if fails else 0)
