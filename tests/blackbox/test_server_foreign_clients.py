#!/usr/bin/env python3
"""Clients nobody here wrote, against hp-fake-server (issue: "It must work
with ... curl, Node's ws"): the real `curl` binary for REST and Node.js with
the npm `ws` package (tests/blackbox/node/ws_probe.mjs) for the change
stream.  This is the README's newcomer flow done by machine: mint a token,
open the stream, PUT with curl, watch TASK_UPDATED arrive.

Needs curl, node and tests/blackbox/node/node_modules (scripts/setup.sh
--with-node installs them).  When one is missing the test says so and
exits 77, which CTest reports as skipped - unless HP_BB_REQUIRE_ALL is set
(scripts/test.sh sets it), then a missing tool is a failure."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time

from hpbb import API, STREAM, DEFAULT_TIMEOUT, Env, forge_jwt, need_tools, run_tests, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
PROBE = os.path.join(NODE_DIR, "ws_probe.mjs")
NODE = shutil.which("node") or shutil.which("nodejs")
CURL = shutil.which("curl")
SCALE = 0.1   # heartbeat 3 s, HELLO timeout 1 s


class NodeWS:
    """One ws_probe.mjs process: its stdout lines parsed, kept in order."""

    def __init__(self, env, url, revision=0):
        self.err = open(env.workdir.file("node-%d.stderr" % id(self)), "wb")
        self.proc = subprocess.Popen([NODE, PROBE, url, str(revision)], cwd=NODE_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                o = json.loads(raw)
            except ValueError:
                o = {"kind": "garbage", "text": raw.decode("utf-8", "replace")}
            with self.cond:
                self.lines.append(o)
                self.cond.notify_all()

    def wait(self, pred, what, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for o in self.lines:
                    if pred(o):
                        return o
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("node ws: no %s; got %s" % (what, self.lines[-8:]))
                self.cond.wait(min(left, 0.2))

    def message(self, pred, what, timeout=DEFAULT_TIMEOUT):
        return self.wait(lambda o: o["kind"] == "message" and pred(o["data"]), what,
                         timeout)["data"]

    def messages(self):
        with self.cond:
            return [o["data"] for o in self.lines if o["kind"] == "message"]

    def closes(self):
        with self.cond:
            return [o for o in self.lines if o["kind"] == "close"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.err.close()


def curl(srv, method, path, token=None, body=None, headers=None):
    """The real curl binary: (status, parsed JSON body or None, header dict)."""
    out = srv.workdir.file("curl.body")
    hdr = srv.workdir.file("curl.headers")
    args = [CURL, "-sS", "-X", method, "-o", out, "-D", hdr, "-w", "%{http_code}",
            "--max-time", str(int(DEFAULT_TIMEOUT))]
    if token:
        args += ["-H", "Authorization: Bearer " + token]
    for k, v in (headers or {}).items():
        args += ["-H", "%s: %s" % (k, v)]
    if body is not None:
        src = srv.workdir.file("curl.request")
        with open(src, "w") as f:
            f.write(body if isinstance(body, str) else json.dumps(body))
        args += ["-H", "Content-Type: application/json", "--data-binary", "@" + src]
    args.append("http://127.0.0.1:%d%s" % (srv.port, path))
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=DEFAULT_TIMEOUT + 10)
    assert r.returncode == 0, "curl failed (%d): %s" % (r.returncode, r.stderr.decode())
    status = int(r.stdout.decode().strip() or 0)
    with open(out, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    hdrs = {}
    with open(hdr, "rb") as f:
        for line in f.read().decode("latin-1").split("\r\n")[1:]:
            k, sep, v = line.partition(":")
            if sep:
                hdrs[k.strip().lower()] = v.strip()
    return status, (json.loads(text) if text else None), hdrs


def stream_url(srv, token):
    return "ws://127.0.0.1:%d%s?token=%s" % (srv.port, STREAM, token)


def test_node_ws_sees_curl_writes_and_1001():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        node = NodeWS(env, stream_url(srv, tok))
        try:
            ready = node.message(lambda m: m.get("type") == "READY", "READY")
            assert ready == {"type": "READY", "revision": 0, "heartbeat_interval_ms": 3000}, ready

            # curl PUT -> 200 with the stored task, time kept verbatim ...
            task = {"title": "Milk", "due_at": "2026-11-25T18:00:00+03:00"}
            st, t, _ = curl(srv, "PUT", API + "/t1", tok, {"base_revision": 0, "task": task},
                            {"Idempotency-Key": "m-1"})
            assert st == 200 and t["revision"] == 1 and t["title"] == "Milk", (st, t)
            assert t["due_at"] == "2026-11-25T18:00:00+03:00", t
            # ... and TASK_UPDATED in the Node client.
            ev = node.message(lambda m: m.get("event_type") == "TASK_UPDATED", "TASK_UPDATED")
            assert ev["entity_id"] == "t1" and ev["revision"] == 1, ev
            assert ev["payload"]["due_at"] == "2026-11-25T18:00:00+03:00", ev

            # The same request with the same Idempotency-Key: the first answer, nothing
            # applied twice; another body under that key: 422, nothing applied.
            st, t2, _ = curl(srv, "PUT", API + "/t1", tok, {"base_revision": 0, "task": task},
                             {"Idempotency-Key": "m-1"})
            assert st == 200 and t2 == t, (st, t2)
            st, r, _ = curl(srv, "PUT", API + "/t1", tok,
                            {"base_revision": 0, "task": {"title": "other"}},
                            {"Idempotency-Key": "m-1"})
            assert st == 422 and r["error"] == "idempotency_key_reused", (st, r)
            st, lst, _ = curl(srv, "GET", API + "?since=0", tok)
            assert st == 200 and lst["revision"] == 1 and len(lst["tasks"]) == 1, lst

            # A stale base: 409 with the current task, and a WARNING line (CF-4).
            st, c, _ = curl(srv, "PUT", API + "/t1", tok,
                            {"base_revision": 0, "task": {"title": "Bread"}},
                            {"Idempotency-Key": "m-2"})
            assert st == 409 and c["error"] == "conflict" and c["current"]["title"] == "Milk", c
            wait_until(lambda: srv.log_lines("WARNING", "conflict"), what="409 WARNING line")

            # Lock lifecycle seen by the Node client.
            # An empty POST carries Content-Length: 0 (RFC 9110 §8.6); the server
            # answers one without any body length 411 (docs/LIMITS.md).
            st, lk, _ = curl(srv, "POST", API + "/t1/lock", tok, headers={"Content-Length": "0"})
            assert st == 200 and lk["holder"] == "alice", (st, lk)
            node.message(lambda m: m.get("event_type") == "LOCK_REFRESHED" and
                         m["payload"]["state"] == "held", "lock held")
            st, _, _ = curl(srv, "DELETE", API + "/t1/lock", tok)
            assert st == 204, st
            node.message(lambda m: m.get("event_type") == "LOCK_REFRESHED" and
                         m["payload"]["state"] == "released", "lock released")

            # DELETE -> tombstone event.
            st, d, _ = curl(srv, "DELETE", API + "/t1?base_revision=1", tok,
                            headers={"Idempotency-Key": "m-3"})
            assert st == 200 and d["deleted"] is True, (st, d)
            node.message(lambda m: m.get("event_type") == "TASK_UPDATED" and m["revision"] == 2
                         and m["payload"]["deleted"] is True, "tombstone event")

            # Heartbeats both ways keep it open: over 2.5 intervals (7.5 s),
            # the server beats at least twice and never closes the socket.
            t0 = time.monotonic()
            while time.monotonic() - t0 < 7.5:
                assert not node.closes(), node.closes()
                time.sleep(0.25)
            beats = [m for m in node.messages() if m.get("type") == "HEARTBEAT"]
            assert len(beats) >= 2, beats

            # SIGTERM: the Node client sees 1001, the server exits 0.
            assert srv.stop(signal.SIGTERM) == 0
            close = node.wait(lambda o: o["kind"] == "close", "close")
            assert close["code"] == 1001, close
        finally:
            node.stop()


def test_node_ws_refused_tokens():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        bad = {
            "garbage": "not-a-token",
            "expired": forge_jwt({"sub": "alice", "hh": "home", "iat": 1, "exp": 2}),
            "wrong secret": forge_jwt({"sub": "alice", "hh": "home",
                                       "exp": int(time.time()) + 3600}, secret="other"),
        }
        for what, tok in bad.items():
            node = NodeWS(env, stream_url(srv, tok))
            try:
                r = node.wait(lambda o: o["kind"] in ("refused", "open", "close"), "refusal")
                assert r["kind"] == "refused" and r["status"] == 401, (what, r)
                assert json.loads(r["body"])["error"] == "unauthorized", (what, r)
            finally:
                node.stop()
        # No token: refused too.
        node = NodeWS(env, "ws://127.0.0.1:%d%s" % (srv.port, STREAM))
        try:
            r = node.wait(lambda o: o["kind"] in ("refused", "open", "close"), "refusal")
            assert r["kind"] == "refused" and r["status"] == 401, r
        finally:
            node.stop()
        # The server kept serving, and no token reached its log.
        tok = srv.token("alice", "home")
        st, lst, _ = curl(srv, "GET", API + "?since=0", tok)
        assert st == 200 and lst["revision"] == 0, lst
        for t in list(bad.values()) + [tok]:
            assert t not in srv.stderr_text(), "a token in the server log"
        assert srv.stop() == 0


def test_curl_bad_input_and_big_bodies():
    """What curl really sends: chunked bodies (no Content-Length), bodies over
    1 MiB (curl adds Expect: 100-continue), malformed JSON."""
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        body = {"base_revision": 0, "task": {"title": "Milk"}}
        st, e, _ = curl(srv, "PUT", API + "/t1", tok, body, {"Transfer-Encoding": "chunked"})
        assert st == 411 and e["error"] == "length_required", (st, e)
        big = json.dumps({"base_revision": 0, "task": {"title": "x", "notes": "n" * (1 << 20)}})
        st, e, _ = curl(srv, "PUT", API + "/t1", tok, big)
        assert st == 413 and e["error"] == "payload_too_large", (st, e)
        st, e, _ = curl(srv, "PUT", API + "/t1", tok, "{nope")
        assert st == 400 and e["error"] == "bad_request", (st, e)
        st, e, _ = curl(srv, "PUT", API + "/t1", tok,
                        {"base_revision": 0, "task": {"title": "x", "due_at": "2026-11-25T18:00:00"}})
        assert st == 400 and e["error"] == "bad_request" and "due_at" in e["message"], (st, e)
        st, e, _ = curl(srv, "GET", API + "/t1", tok)
        assert st == 404 and e["error"] == "not_found", (st, e)
        # Nothing stored by any of the above; a good PUT still works.
        st, t, _ = curl(srv, "PUT", API + "/t1", tok, body)
        assert st == 200 and t["revision"] == 1, (st, t)
        assert srv.stop() == 0


if __name__ == "__main__":
    missing = [n for n, ok in (("curl", CURL), ("node", NODE),
                               ("tests/blackbox/node/node_modules/ws (npm ci)",
                                os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws"))))
               if not ok]
    need_tools("test_server_foreign_clients", missing, "scripts/setup.sh --with-node")
    run_tests([test_node_ws_sees_curl_writes_and_1001, test_node_ws_refused_tokens,
               test_curl_bad_input_and_big_bodies])
