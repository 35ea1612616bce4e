#!/usr/bin/env python3
"""hp-fake-server's command line (SPEC §6): --help, usage errors exit 2,
the `token` subcommand (claims, ttl, --jwt-secret-file), the listening INFO
line, and a port that is already taken (runtime error, exit 3)."""

import datetime
import subprocess
import os
import time

from hpbb import Env, SECRET, SERVER_BIN, jwt_claims, run_cli, run_tests, wait_until


def test_help_exits_0():
    for args in (["--help"], ["-h"], ["token", "--help"]):
        rc, out, err = run_cli(args)
        assert rc == 0, (args, rc, err)
        assert "usage: hp-fake-server" in out, out
        assert "--jwt-secret" in out and "--time-scale" in out and "--admin" in out, out


def test_usage_errors_exit_2():
    bad = [
        ["--bogus"],                                            # unknown flag
        ["--jwt-secret", SECRET, "--bogus"],
        ["--jwt-secret", SECRET, "--time-scale", "abc"],        # bad values
        ["--jwt-secret", SECRET, "--time-scale", "0"],
        ["--jwt-secret", SECRET, "--time-scale", "-1"],
        ["--jwt-secret", SECRET, "--log-level", "loud"],
        ["--jwt-secret", SECRET, "--listen", "nowhere"],
        ["--jwt-secret", SECRET, "--listen", "127.0.0.1:99999"],
        ["--jwt-secret", SECRET, "--listen"],                   # missing value
        ["--jwt-secret", SECRET, "--policy", "{"],              # bad policies
        ["--jwt-secret", SECRET, "--policy", '{"lock_tll": "10s"}'],
        ["--jwt-secret", SECRET, "--policy", '{"lock_ttl": 0}'],
        ["--jwt-secret", SECRET, "--policy", "[]"],
        [],                                                     # no secret
        ["--jwt-secret", ""],                                   # empty secret
        ["--jwt-secret", SECRET, "--jwt-secret-file", "/etc/hostname"],  # both
        ["--jwt-secret-file", "/nonexistent/secret"],
        ["token", "--hh", "home", "--jwt-secret", SECRET],      # no --sub
        ["token", "--sub", "alice", "--jwt-secret", SECRET],    # no --hh
        ["token", "--sub", "alice", "--hh", "home"],            # no secret
        ["token", "--sub", "alice", "--hh", "home", "--jwt-secret", SECRET, "--ttl", "soon"],
        ["token", "--sub", "alice", "--hh", "home", "--jwt-secret", SECRET, "--what"],
        # Issue 11: numbers from outside have ranges; tokens the server would refuse.
        ["--jwt-secret", SECRET, "--time-scale", "5000"],
        ["--jwt-secret", SECRET, "--policy", '{"heartbeat_interval": "99999999d"}'],
        ["--jwt-secret", SECRET, "--policy", '{"heartbeat_interval": 9223372036854775807}'],
        ["--jwt-secret", SECRET, "--policy", '{"heartbeat_misses": 1000}'],
        ["token", "--sub", "a" * 500, "--hh", "home", "--jwt-secret", SECRET],
        ["token", "--sub", "alice", "--hh", "h" * 128, "--jwt-secret", SECRET],
        ["token", "--sub", "alice", "--hh", "home", "--dev", "d" * 300, "--jwt-secret", SECRET],
        ["token", "--sub", "alice", "--hh", "home", "--jwt-secret", SECRET, "--ttl", "0s"],
        ["token", "--sub", "alice", "--hh", "home", "--jwt-secret", SECRET, "--ttl", "400d"],
    ]
    for args in bad:
        rc, out, err = run_cli(args, timeout=20)
        assert rc == 2, "%s: exit %d (want 2), stderr %r" % (args, rc, err)
        assert err.strip(), "%s: no message on stderr" % args
        assert out == "", "%s: stdout should be empty, got %r" % (args, out)


def test_ranges_named_in_refusals():
    """Issue 11: a refused number says its range; a token the server would
    refuse is not printed (before: a 500-byte sub gave a token the server
    answered 401, a 99999999-day heartbeat overflowed the deadlines)."""
    rc, out, err = run_cli(["--jwt-secret", SECRET, "--policy",
                            '{"heartbeat_interval": "99999999d"}'], timeout=20)
    assert rc == 2 and "from 1ms to 366d" in err, (rc, err)
    rc, out, err = run_cli(["--jwt-secret", SECRET, "--time-scale", "5000"], timeout=20)
    assert rc == 2 and "0.001 to 1000" in err, (rc, err)
    rc, out, err = run_cli(["token", "--sub", "a" * 500, "--hh", "home", "--jwt-secret", SECRET])
    assert rc == 2 and out == "" and "would refuse" in err and "sub" in err, (rc, out, err)
    # The longest sub the server takes is still minted and accepted.
    rc, out, err = run_cli(["token", "--sub", "a" * 127, "--hh", "home", "--jwt-secret", SECRET])
    assert rc == 0, err
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        st, body, _ = srv.http("GET", "/api/v0.2/tasks", out.strip())
        assert st == 200, body
        assert srv.stop() == 0


def test_foreign_db_refused_unchanged():
    """Issue 11: --db pointed at another program's SQLite file silently got
    the server's tables; now it is refused and left byte for byte as it was."""
    import hashlib
    import sqlite3
    with Env() as env:
        path = env.workdir.file("photos.db")
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE photos(name TEXT)")
        db.execute("INSERT INTO photos VALUES('cat.jpg')")
        db.commit()
        db.close()
        before = hashlib.sha256(open(path, "rb").read()).hexdigest()
        srv = env.server(time_scale=0.1, db_name="photos.db")
        try:
            srv.start(timeout=5)
            started = True
        except AssertionError:
            started = False
        assert not started, "the server started on another program's database"
        assert srv.proc.wait(timeout=10) == 3
        assert "not an hp-fake-server store" in srv.stderr_text(), srv.stderr_text()
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before
        assert not os.path.exists(path + "-wal")


def test_token_subcommand():
    before = int(time.time())
    rc, out, err = run_cli(["token", "--sub", "alice", "--hh", "home", "--dev", "phone",
                            "--ttl", "2h", "--jwt-secret", SECRET])
    after = int(time.time())
    assert rc == 0, err
    tok = out.strip()
    assert out.endswith("\n") and tok.count(".") == 2, out
    c = jwt_claims(tok)
    assert c["sub"] == "alice" and c["hh"] == "home" and c["dev"] == "phone", c
    assert before <= c["iat"] <= after, c
    assert c["exp"] - c["iat"] == 7200, c
    # Default ttl 1h; no dev claim when --dev is absent; --flag=value form.
    rc, out, err = run_cli(["token", "--sub=bob", "--hh=home", "--jwt-secret=" + SECRET])
    assert rc == 0, err
    c = jwt_claims(out.strip())
    assert c["exp"] - c["iat"] == 3600 and "dev" not in c and c["sub"] == "bob", c


def test_secret_file_and_token_accepted():
    with Env() as env:
        path = env.workdir.file("secret")
        with open(path, "w") as f:
            f.write("file-secret\n")          # trailing newline is not part of it
        srv = env.server(secret="file-secret").start()
        rc, out, err = run_cli(["token", "--sub", "alice", "--hh", "home",
                                "--jwt-secret-file", path])
        assert rc == 0, err
        st, body, _ = srv.http("GET", "/api/v0.2/tasks?since=0", out.strip())
        assert st == 200, (st, body)
        # A token signed with another secret is refused.
        rc, out2, _ = run_cli(["token", "--sub", "alice", "--hh", "home",
                               "--jwt-secret", "other"])
        st, body, _ = srv.http("GET", "/api/v0.2/tasks?since=0", out2.strip())
        assert st == 401, (st, body)
        assert srv.stop() == 0


def test_policy_flag():
    """--policy overrides the seed policy, then --time-scale scales it: a
    10 s lock at scale 0.1 expires 1 s after it was taken; the heartbeat
    announced in READY follows heartbeat_interval."""
    with Env() as env:
        srv = env.server(time_scale=0.1, extra_args=[
            "--policy", '{"lock_ttl": "10s", "heartbeat_interval": "20s"}']).start()
        tok = srv.token("alice", "home")
        t0 = time.time()
        st, lk, _ = srv.http("POST", "/api/v0.2/tasks/t1/lock", tok)
        assert st == 200, (st, lk)
        exp = epoch_of(lk["expires_at"])
        assert t0 + 0.5 <= exp <= time.time() + 1.5, (t0, lk)      # 1 s, not 12 s
        w = env.track(srv.ws(tok))
        _, ready = w.hello(0)
        assert ready["heartbeat_interval_ms"] == 2000, ready
        assert srv.stop() == 0


def epoch_of(rfc3339):
    """Seconds since the epoch of "2026-11-25T10:00:00.000Z"."""
    return datetime.datetime.strptime(rfc3339.replace("Z", "+0000"),
                                      "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def test_server_reads_secret_file():
    with Env() as env:
        path = env.workdir.file("secret")
        with open(path, "w") as f:
            f.write("from-a-file\n")
        srv = env.server(secret="unused")
        srv.secret = None
        base = srv.args

        def args():
            a = base()
            i = a.index("--jwt-secret")
            return a[:i] + ["--jwt-secret-file", path] + a[i + 2:]
        srv.args = args
        srv.start()
        rc, out, _ = run_cli(["token", "--sub", "u", "--hh", "h", "--jwt-secret", "from-a-file"])
        st, body, _ = srv.http("GET", "/api/v0.2/tasks?since=0", out.strip())
        assert st == 200, (st, body)
        assert srv.stop() == 0


def test_listening_line_and_port_taken():
    with Env() as env:
        srv = env.server().start()
        lines = wait_until(lambda: srv.log_lines("INFO", "listening"), what="listening line")
        assert ("127.0.0.1:%d" % srv.port) in lines[0], lines
        # Second server on the same port: runtime error (3), not a hang.
        p = subprocess.run([SERVER_BIN, "--listen", "127.0.0.1:%d" % srv.port,
                            "--jwt-secret", SECRET, "--db", env.workdir.file("b.db")],
                           capture_output=True, timeout=30)
        assert p.returncode == 3, (p.returncode, p.stderr)
        assert srv.stop() == 0


run_tests([test_help_exits_0, test_usage_errors_exit_2, test_token_subcommand,
           test_secret_file_and_token_accepted, test_server_reads_secret_file,
           test_listening_line_and_port_taken, test_policy_flag,
           test_ranges_named_in_refusals, test_foreign_db_refused_unchanged])
