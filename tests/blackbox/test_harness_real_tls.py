#!/usr/bin/env python3
"""hp-harness --mode real against a server behind TLS, as the backend team
runs it against an https:// dev server: the harness's own REST checks and
every reference client go through TLS, verified against --ca-file.
Without the CA nothing connects (and nothing passes); --ca-file with an
http:// server is a usage error."""

import os
import re
import subprocess

from hpbb import BIN_DIR, SECRET, Env, need_tools, run_tests
from test_client_tls import OPENSSL, TLSFront, make_certs

HARNESS = os.path.join(BIN_DIR, "harness", "hp-harness")
SRC = os.environ.get("HP_SRC_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SCALE = 0.03
# Scenarios that run against a foreign server (no faults, no server journal).
FILTERS = ["auth/household-isolation", "conflict/banner-merge", "conflict/edit-vs-delete"]


def harness(server_url, secret_file, extra):
    args = [HARNESS, "run", os.path.join(SRC, "scenarios"), "--mode", "real",
            "--server", server_url, "--jwt-secret-file", secret_file,
            "--time-scale", str(SCALE), "--no-reports",
            # three scenarios cannot check every server rule: not required here
            "--require-rules", "none"] + extra
    for f in FILTERS:
        args += ["--filter", f]
    r = subprocess.run(args, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def test_suite_over_tls():
    with Env() as env:
        ca, crt, key = make_certs(env.workdir, "IP:127.0.0.1")
        secret = env.workdir.file("secret")
        with open(secret, "w") as f:
            f.write(SECRET)
        srv = env.server(time_scale=SCALE).start()
        front = TLSFront(crt, key, srv.port)
        try:
            url = "https://127.0.0.1:%d" % front.port
            rc, out = harness(url, secret, ["--ca-file", ca])
            # Our server behind TLS is foreign to the harness: its log is
            # unobservable (PARTIAL is fine), nothing fails or is skipped.
            m = re.search(r"(\d+) passed, 0 failed, (\d+) partial, 0 skipped", out)
            assert rc == 0 and m and int(m.group(1)) + int(m.group(2)) == 3, (rc, out)
            assert front.connections > 0 and front.handshakes_failed == 0, \
                (front.connections, front.handshakes_failed)
            # Without the CA: no handshake completes, nothing passes.
            rc, out = harness(url, secret, [])
            assert rc in (1, 3) and "0 passed" in out and "give its CA with --ca-file" in out, \
                (rc, out)
            # --ca-file is for https:// only.
            rc, out = harness("http://127.0.0.1:%d" % srv.port, secret, ["--ca-file", ca])
            assert rc == 2 and "--ca-file is for an https:// --server" in out, (rc, out)
            assert srv.stop() == 0
        finally:
            front.close()


if __name__ == "__main__":
    need_tools("test_harness_real_tls", [] if OPENSSL else ["the openssl command"],
               "scripts/setup.sh")
    run_tests([test_suite_over_tls])
