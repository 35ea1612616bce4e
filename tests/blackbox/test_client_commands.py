#!/usr/bin/env python3
"""The hp-fake-client command line and JSON-lines driver: bad flags exit 2,
bad command lines get {"kind":"error"} objects and change nothing (never a
crash), a client without a token asks for one (AUTH_REQUIRED) and resumes
with the "token" command, end of stdin quits cleanly."""

import json
import os
import signal
import subprocess

from hpcli import CLIENT_BIN, DEFAULT_TIMEOUT, Env, mint_token, run_tests


def run(args, stdin=b""):
    return subprocess.run([CLIENT_BIN] + args, input=stdin, capture_output=True,
                          timeout=DEFAULT_TIMEOUT)


def test_flags():
    with Env() as env:
        key = env.workdir.file("k")
        with open(key, "w") as f:
            f.write("ab" * 32)
        db = env.workdir.file("c.db")
        base = ["--server", "http://127.0.0.1:9", "--db", db, "--key-file", key]
        r = run(["--help"])
        assert r.returncode == 0 and b"--server" in r.stdout, r
        for bad in (["--bogus"], base + ["--time-scale", "0"], base + ["--time-scale", "x"],
                    base + ["--log-level", "loud"], ["--db", db, "--key-file", key],
                    base[:2] + ["--key-file", key], base + ["extra"],
                    ["--server", "ftp://x", "--db", db, "--key-file", key],
                    ["--server", "http://h:1", "--db", db, "--key-file", env.workdir.file("no")],
                    base + ["--server"],
                    base + ["--ca-file", env.workdir.file("no-such.pem")],
                    base + ["--ca-file", key],             # --ca-file with http://
                    base + ["--policy", "{"], base + ["--policy", '{"queue_mx": 1}'],
                    base + ["--policy", '{"queue_max": 0}'],
                    # Issue 11: ranges (before: accepted, then overflowed)
                    base + ["--time-scale", "5000"],
                    base + ["--policy", '{"heartbeat_interval": "99999999d"}'],
                    base + ["--policy", '{"request_timeout": 9223372036854775807}']):
            r = run(bad)
            assert r.returncode == 2, (bad, r)
            assert r.stderr and r.stdout == b"", (bad, r)
        # Without --name the actor in log lines is the token's sub.
        tok = mint_token("zoe", "home")
        r = run(base + ["--token", tok])           # stdin at EOF at once: quit
        assert r.returncode == 0, r
        assert b" INFO zoe client_started" in r.stderr, r.stderr
        assert tok.encode() not in r.stderr, r.stderr
        # A short key file is a bad value too.
        with open(key, "w") as f:
            f.write("abcd")
        assert run(base).returncode == 2


def test_bad_command_lines_get_error_objects():
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        bad = [
            "not json at all",
            "[1, 2, 3]",
            '"a string"',
            "{}",
            '{"cmd": 42}',
            '{"cmd": "fly"}',
            '{"cmd": "edit"}',
            '{"cmd": "edit", "id": "t1"}',
            '{"cmd": "edit", "id": "t1", "fields": "title"}',
            '{"cmd": "edit", "id": "bad id!", "fields": {"title": "x"}}',
            '{"cmd": "edit", "id": "t1", "fields": {"due_at": "2026-11-25T09:00:00"}}',
            '{"cmd": "edit", "id": "t1", "fields": {"done": "yes"}}',
            '{"cmd": "delete"}',
            '{"cmd": "lock", "id": 7}',
            '{"cmd": "choose", "id": "t1"}',
            '{"cmd": "choose", "id": "t1", "choice": "merge"}',
            '{"cmd": "token"}',
            '{"cmd": "token", "token": ""}',
            '{"cmd": "cmd", "cmd": "status"}',
            '{"cmd": "edit", "id": "t1", "fields": {"title": "x"}',
        ]
        for line in bad:
            m = alice.mark()
            alice.send(line)
            r = alice.wait(lambda x: x.get("kind") in ("ok", "error", "status"), since=m,
                           what="an answer to %r" % line)
            assert r["kind"] == "error", (line, r)
            assert r["message"], (line, r)
        alice.send("")          # blank lines are ignored, not errors
        st = alice.status()
        assert st["queue"] == [] and st["connection"] == "ready", st
        assert alice.count(lambda x: x.get("kind") == "_not_json") == 0, alice.lines
        # Still fully working.
        alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "after the noise"}})
        alice.wait_status(lambda s: not s["queue"], what="edit after bad lines flushed")
        assert alice.quit() == 0


def test_token_command_and_end_of_stdin():
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home")
        token = alice.token
        alice.token = None                      # start without --token
        alice.start()
        alice.wait(lambda x: x.get("kind") == "notification"
                   and x.get("type") == "AUTH_REQUIRED", what="AUTH_REQUIRED")
        alice.ok({"cmd": "edit", "id": "a1", "fields": {"title": "waits for a token"}})
        alice.ok({"cmd": "token", "token": token})
        alice.wait_ready()
        alice.wait_status(lambda s: not s["queue"], what="queue resumed with the token")
        # End of stdin = quit, exit 0.
        alice.proc.stdin.close()
        assert alice.proc.wait(timeout=DEFAULT_TIMEOUT) == 0
        assert token not in alice.stderr_text()


def test_token_file_flag_and_command():
    """Issue 11 (A-4): the token need not be on the command line, where every
    local user reads it (ps): --token-file, and the driver's token command
    with "file".  Bad files are refused without echoing their content."""
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home")
        token = alice.token
        tf = env.workdir.file("alice.token")
        with open(tf, "w") as f:
            f.write(token + "\n")
        os.chmod(tf, 0o600)
        alice.token = None
        alice.extra_args = ["--token-file", tf]
        alice.start()
        alice.wait_ready()
        with open("/proc/%d/cmdline" % alice.proc.pid, "rb") as f:
            assert token.encode() not in f.read()
        alice.ok({"cmd": "edit", "id": "f1", "fields": {"title": "via a token file"}})
        alice.wait_status(lambda s: not s["queue"], what="flushed with the file's token")
        assert alice.quit() == 0
        # The driver command: {"cmd":"token","file":PATH}.
        bob = env.client("bob", srv, "bob", "home")
        btf = env.workdir.file("bob.token")
        with open(btf, "w") as f:
            f.write(bob.token)
        bob.token = None
        bob.start()
        bob.wait(lambda x: x.get("kind") == "notification" and x.get("type") == "AUTH_REQUIRED",
                 what="AUTH_REQUIRED")
        bad = env.workdir.file("bad.token")
        with open(bad, "w") as f:
            f.write("secret-one\nsecret-two\n")
        fifo = env.workdir.file("fifo.token")
        os.mkfifo(fifo)         # must not hang the driver: only a regular file is read
        for cmd in ({"cmd": "token", "file": fifo}, {"cmd": "token", "file": "/dev/null"},
                    {"cmd": "token", "file": env.workdir.file("missing.token")},
                    {"cmd": "token", "file": bad}, {"cmd": "token", "file": 7},
                    {"cmd": "token", "file": btf, "token": "x"}):
            m = bob.mark()
            bob.send(json.dumps(cmd))
            r = bob.wait(lambda x: x.get("kind") in ("ok", "error"), since=m, what="answer")
            assert r["kind"] == "error" and r["message"], (cmd, r)
            assert "secret-one" not in r["message"], r
        bob.ok({"cmd": "token", "file": btf})
        bob.wait_ready()
        assert bob.quit() == 0
        # Bad --token-file values: exit 2, the content never echoed.
        key = env.workdir.file("k")
        with open(key, "w") as f:
            f.write("ab" * 32)
        base = ["--server", srv.url, "--db", env.workdir.file("x.db"), "--key-file", key]
        empty = env.workdir.file("empty.token")
        open(empty, "w").close()
        for args in (["--token-file", env.workdir.file("missing.token")],
                     ["--token-file", empty], ["--token-file", bad],
                     ["--token-file", tf, "--token", token]):
            r = run(base + args)
            assert r.returncode == 2, (args, r)
            assert b"token" in r.stderr and b"secret-one" not in r.stderr, r.stderr


def test_error_message_cut_inside_utf8():
    """Issue 11: an error message cut inside a UTF-8 character (a long
    non-ASCII command name echoed in it) lost its whole "message"."""
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        m = alice.mark()
        alice.send(json.dumps({"cmd": "x" + "\u00e9" * 40}, ensure_ascii=False))
        r = alice.wait(lambda x: x.get("kind") in ("ok", "error"), since=m, what="answer")
        assert r["kind"] == "error", r
        msg = r.get("message")
        assert isinstance(msg, str) and msg.startswith('unknown command "x\u00e9'), r
        assert "\ufffd" not in msg, r
        assert alice.quit() == 0


def test_sigterm_stops_cleanly():
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "q1", "fields": {"title": "kept over SIGTERM"}})
        alice.proc.send_signal(signal.SIGTERM)
        assert alice.proc.wait(timeout=DEFAULT_TIMEOUT) == 0
        alice.reader.join(timeout=5)
        alice.start()                     # starts online: the kept edit is delivered
        alice.wait_status(lambda s: not s["queue"], what="q1 delivered after the restart")
        st, body, _ = srv.http("GET", "/api/v0.2/tasks/q1", alice.token)
        assert st == 200 and body["title"] == "kept over SIGTERM", (st, body)
        assert alice.quit() == 0


def test_send_frame_probes_the_server():
    """send_frame: a raw frame on the open stream (scenario action
    send_frame in real mode): the server closes 4002 / 1009, the client
    reconnects; without a stream or text it is an error object."""
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home")
        alice.token = None                      # no stream yet
        alice.start()
        r = alice.cmd({"cmd": "send_frame", "text": "{}"})
        assert r["kind"] == "error" and "no open stream" in r["message"], r
        alice.ok({"cmd": "token", "token": mint_token("alice", "home")})
        alice.wait_ready()
        for cmd in ({"cmd": "send_frame"}, {"cmd": "send_frame", "text": 42}):
            r = alice.cmd(cmd)
            assert r["kind"] == "error" and "text" in r["message"], r
        for text, code in (('{"type":"PING"}', 4002),
                           ('{"type":"HEARTBEAT","pad":"%s"}' % ("x" * 65536), 1009)):
            m = alice.mark()
            alice.ok({"cmd": "send_frame", "text": text})
            closed = alice.wait(lambda x: x.get("kind") == "connection" and
                                x.get("state") == "closed", since=m, what="close %d" % code)
            assert closed.get("code") == code, closed
            alice.wait_ready(since=m)           # and back (WS-6)
        assert "send_frame conn=" in alice.stderr_text()
        assert len(srv.log_lines(contains=" ws_close conn=")) == 2, srv.stderr_text()
        assert alice.quit() == 0


def test_policy_flag():
    """--policy: a queue of 2 is full at the third entity (Q-6 with the
    override), and nothing queued is lost."""
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home",
                           extra_args=["--policy", '{"queue_max": 2}']).start()
        alice.wait_ready()
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "p1", "fields": {"title": "one"}})
        alice.ok({"cmd": "edit", "id": "p2", "fields": {"title": "two"}})
        r = alice.cmd({"cmd": "edit", "id": "p3", "fields": {"title": "three"}})
        assert r["kind"] == "error", r
        alice.wait(lambda x: x.get("kind") == "notification" and x.get("type") == "QUEUE_FULL",
                   what="QUEUE_FULL at 2")
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: not s["queue"], what="p1 and p2 delivered")
        st, lst, _ = srv.http("GET", "/api/v0.2/tasks?since=0", alice.token)
        assert sorted(t["id"] for t in lst["tasks"]) == ["p1", "p2"], lst
        assert alice.quit() == 0



def framed_pair(env):
    """A server, alice with --frames and bob without, both ready."""
    srv = env.server().start()
    alice = env.client("alice", srv, "alice", "home", extra_args=["--frames"]).start()
    bob = env.client("bob", srv, "bob", "home").start()
    alice.wait_ready()
    bob.wait_ready()
    return srv, alice, bob


def test_frames_flag():
    """--frames: one line per WebSocket message on the wire, in order: HELLO
    out, READY in, heartbeats both ways (WS-2, WS-4), a raw send_frame under
    its type; without the flag, no frame lines."""
    with Env() as env:
        srv, alice, bob = framed_pair(env)

        def frame(frm, typ):
            return lambda x: (x.get("kind") == "frame" and x.get("from") == frm
                              and x.get("type") == typ)
        alice.wait(frame("client", "HELLO"), what="HELLO written")
        alice.wait(frame("server", "READY"), what="READY read")
        frames = [x for x in alice.lines if x.get("kind") == "frame"]
        assert [(f["from"], f["type"]) for f in frames[:2]] == \
            [("client", "HELLO"), ("server", "READY")], frames
        assert frames[0]["bytes"] == len('{"type":"HELLO","revision":0}'), frames[0]
        # heartbeats both ways (300 ms at the tests' time scale)
        alice.wait(frame("client", "HEARTBEAT"), what="client HEARTBEAT")
        alice.wait(frame("server", "HEARTBEAT"), what="server HEARTBEAT")
        # an event is read under its event_type
        bob.ok({"cmd": "edit", "id": "f1", "fields": {"title": "Framed"}})
        alice.wait(frame("server", "TASK_UPDATED"), what="TASK_UPDATED read")
        # a raw frame that is not JSON has no type
        m = alice.mark()
        alice.ok({"cmd": "send_frame", "text": "not json"})
        f = alice.wait(lambda x: x.get("kind") == "frame" and x.get("from") == "client"
                       and x.get("bytes") == 8, since=m, what="raw frame written")
        assert f.get("type") is None, f
        assert bob.count(lambda x: x.get("kind") == "frame") == 0, "bob has no --frames"
        assert alice.quit() == 0 and bob.quit() == 0



def test_drop_command():
    """drop: the network faults of a scenario, played by the client's socket
    layer.  A lost response: the server applied the write, the client times
    out (10 s x 0.1) and retries with the same key, applied once.  Lost client
    heartbeats: the server closes 4008.  A lost server event never reaches
    the core.  Bad rules are error objects."""
    with Env() as env:
        srv, alice, bob = framed_pair(env)
        for bad, why in (({"from": "moon", "message": "HELLO"}, "from"),
                         ({"from": "client", "message": "PING"}, "message"),
                         ({"from": "client", "message": "response"}, "comes from"),
                         ({"from": "server", "message": "any", "count": 0}, "count"),
                         ({"from": "server", "message": "any", "count": "2"}, "count")):
            r = alice.cmd(dict(bad, cmd="drop"))
            assert r["kind"] == "error" and why in r["message"], (bad, r)

        # a lost response: applied on the server, retried with the same key
        alice.ok({"cmd": "drop", "from": "server", "message": "response"})
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "d1", "fields": {"title": "Once"}})
        alice.wait_status(lambda s: not s["queue"], what="d1 acknowledged after the retry")
        puts = [x for x in alice.lines[m:] if x.get("kind") == "http" and x.get("method") == "PUT"]
        assert len(puts) == 1 and puts[0]["status"] == 200, puts  # the lost one has no line
        reqs = srv.log_lines(contains=" request method=PUT path=/api/v0.2/tasks/d1 ")
        assert len(reqs) == 2, srv.stderr_text()
        keys = {l.split("idem=")[1].split()[0] for l in reqs}
        assert len(keys) == 1, reqs                                 # same Idempotency-Key
        assert "request_timeout" in alice.stderr_text()
        st, body, _ = srv.http("GET", "/api/v0.2/tasks/d1", alice.token)
        assert st == 200 and body["revision"] == 1, body           # applied once

        # a lost server event: the frame is seen, lost, and not applied
        alice.wait(lambda x: x.get("kind") == "event" and x.get("entity_id") == "d1",
                   what="d1's own event first (the rule must not take it)")
        alice.ok({"cmd": "drop", "from": "server", "message": "TASK_UPDATED"})
        m = alice.mark()
        bob.ok({"cmd": "edit", "id": "d2", "fields": {"title": "Unseen"}})
        alice.wait(lambda x: x.get("kind") == "frame" and x.get("type") == "TASK_UPDATED"
                   and x.get("lost") is True, since=m, what="lost TASK_UPDATED frame")
        assert alice.count(lambda x: x.get("kind") == "event" and x.get("entity_id") == "d2",
                           since=m) == 0

        # lost client heartbeats: the server times the stream out with 4008
        m = alice.mark()
        alice.ok({"cmd": "drop", "from": "client", "message": "HEARTBEAT", "count": 3})
        closed = alice.wait(lambda x: x.get("kind") == "connection" and x.get("state") == "closed",
                            since=m, what="close 4008")
        assert closed.get("code") == 4008, closed
        alice.wait_ready(since=m)
        # The server's deadline (two intervals after the last heartbeat it got)
        # and the second lost heartbeat fall on the same instant: at least one
        # lost heartbeat is certain, the second is a race.
        assert alice.count(lambda x: x.get("kind") == "frame" and x.get("from") == "client"
                           and x.get("type") == "HEARTBEAT" and x.get("lost") is True,
                           since=m) >= 1
        assert "fault_drop from=client message=HEARTBEAT" in alice.stderr_text()
        assert alice.quit() == 0 and bob.quit() == 0


if __name__ == "__main__":
    run_tests([test_flags, test_bad_command_lines_get_error_objects,
               test_token_command_and_end_of_stdin, test_sigterm_stops_cleanly,
               test_send_frame_probes_the_server, test_policy_flag, test_frames_flag,
               test_drop_command, test_token_file_flag_and_command,
               test_error_message_cut_inside_utf8])
