#!/usr/bin/env python3
"""The Python example client (examples/python_client/hp_client.py) against
hp-fake-server: the proof that a second, independent client follows the
policy through the JSON-lines driver contract of docs/CLIENT_DRIVER.md.

What is checked comes from the server's side whenever it can (its request
log: method, path, status, user and Idempotency-Key of every request, and
its ready lines with the HELLO revision), else from the client's level-1
lines (notification, connection, event):

- round trip: an edit of one Python client reaches another as TASK_UPDATED,
  times verbatim (WS-2, WS-3, C-4);
- FIFO replay of edits made offline, nothing sent while offline (Q-1, Q-2,
  Q-3 chaining: the second edit of a task is rebased, never a 409);
- retries of 503s on the Q-4 schedule with ONE Idempotency-Key, SYNC_FAILED
  at the 5th failure, once (Q-4, Q-5, Q-7);
- a 409 merged silently and retried on the current revision with the same
  key; a same-field 409 raises CONFLICT, `choose` settles it (CF-2..CF-4);
- a restart (kill -9 mid-retry) keeps the queue and resends the same key
  (Q-1); a restart with --online no stays silent until `online`;
- a token expiring on a live socket: close 4001, AUTH_REQUIRED once, nothing
  sent until `token`, then the queue resumes (A-2, Q-7); a REST 401 pauses
  the queue the same way, and the retry after `token` keeps its key;
- reconnect attempts seen on the wire (a listener that drops every
  connection): 1, 3, 9, 27 s apart, none while offline, at once on `online`
  (WS-6); no token at start (AUTH_REQUIRED no_token);
- the watchdog: a silent server is left after 2 intervals and the new HELLO
  carries the applied revision (WS-5, WS-6);
- --policy: a queue of 3 (coalesce, QUEUE_FULL, nothing dropped, Q-6) and a
  short OFFLINE_LONG, once per offline period (N-1);
- a 422 dead-lettered with REJECTED while the queue goes on, a 429 waiting
  for its Retry-After, RESYNC_REQUIRED -> reload -> HELLO again (Q-7, WS-2);
- a soft-lock kept past its TTL by the client's heartbeats alone, then
  released (CF-1, WS-4); the cache window and cap (C-1, C-2, via `cached`);
- a chained edit after a merged 409 keeps their change (Q-3, CF-2); an
  upgrade refused with 401 (in HTTP/1.0) is AUTH_REQUIRED, no reconnect;
  the send_frame probe (the server's 4002, a reconnect).

The client needs the `websockets` package (Debian: python3-websockets).
The test runs it with this interpreter if that one has it, else with
/usr/bin/python3; with neither it is skipped (exit 77), or fails when
HP_BB_REQUIRE_ALL is set.
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from hpbb import API, free_port, need_tools, run_tests, wait_until  # noqa: E402
from hpcli import Client, Env  # noqa: E402

SRC = os.environ.get("HP_SRC_DIR") or os.path.join(HERE, "..", "..")
CLIENT_PY = os.path.join(SRC, "examples", "python_client", "hp_client.py")
SCALE = 0.05   # heartbeat 30 s -> 1.5 s, retries 50, 150, 450 ms...
# The request timeout (10 s -> 0.5 s) is raised to 2 s: on a loaded machine a
# late answer would add a retry (same key) that the exact request lists below
# do not expect.  No test here is about the timeout itself.
POLICY = {"request_timeout": "40s"}


def find_python():
    """An interpreter that can import websockets: this one, else Debian's."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import websockets"], capture_output=True).returncode == 0:
            return exe
    return None


PYTHON = find_python()


class PyClient(Client):
    """hpcli.Client, but the process is the Python example client, started
    with the command line of the foreign-client contract."""

    def start(self, token=None):
        if token is not None:
            self.token = token
        self.runs += 1
        err = open(self.stderr_path(self.runs), "wb")
        args = [PYTHON, CLIENT_PY, "--server", self.server_url, "--token", self.token or "",
                "--db", self.db, "--key-file", self.key_file, "--name", self.name,
                "--time-scale", str(self.time_scale),
                "--policy", json.dumps(dict(POLICY, **getattr(self, "policy", {}))),
                "--online", getattr(self, "online_arg", "yes")]
        self.proc = __import__("subprocess").Popen(
            args + self.extra_args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        err.close()
        import threading
        self.reader = threading.Thread(target=self._read, args=(self.proc, self.runs),
                                       daemon=True)
        self.reader.start()
        return self


def server(env, **kw):
    """env.server(...).start(), on a new free port when the one picked was
    taken meanwhile (the machine runs other developers' tests too)."""
    kw.setdefault("time_scale", SCALE)
    srv = env.server(**kw)
    for attempt in range(3):
        try:
            return srv.start()
        except AssertionError as e:
            if "exited with 3" not in str(e) or attempt == 2:
                raise
            srv.port = free_port()


def client(env, name, srv, sub=None, hh="home", ttl="1h", **kw):
    kw.setdefault("time_scale", SCALE)
    c = PyClient(env.workdir, name, srv.url, srv.token(sub or name, hh, ttl=ttl), **kw)
    env.clients.append(c)
    return c


def is_event(entity, **match):
    return lambda x: (x.get("kind") == "event" and x.get("event_type") == "TASK_UPDATED"
                      and x.get("entity_id") == entity
                      and all(x["payload"].get(k) == v for k, v in match.items()))


def is_note(typ):
    return lambda x: x.get("kind") == "notification" and x.get("type") == typ


def is_conn(state, code=None):
    return lambda x: (x.get("kind") == "connection" and x.get("state") == state
                      and (code is None or x.get("code") == code))


def server_requests(srv, method=None, path=None):
    """The server's record of requests: [(time s, method, path, status, user, idem)]."""
    out = []
    rx = re.compile(r"T(\d\d):(\d\d):(\d\d)\.(\d{3})Z INFO \S+ request method=(\S+) "
                    r"path=(\S+) status=(\d+) user=(\S*)(?: idem=(\S+))?")
    for line in srv.stderr_text().splitlines():
        m = rx.search(line)
        if not m:
            continue
        h, mi, s, ms = (int(g) for g in m.groups()[:4])
        rec = (h * 3600 + mi * 60 + s + ms / 1000.0, m.group(5), m.group(6),
               int(m.group(7)), m.group(8), m.group(9))
        if (method is None or rec[1] == method) and (path is None or rec[2] == path):
            out.append(rec)
    return out


def get_task(srv, token, tid):
    st, body, _ = srv.http("GET", "%s/%s" % (API, tid), token)
    return body if st == 200 else None


def arm(srv, fault):
    st, body, _ = srv.http("POST", "/_hp/faults", None, fault)
    assert st == 200, (st, body)


# ---- tests ---------------------------------------------------------------------


def test_round_trip_between_two_python_clients():
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv).start()
        bob = client(env, "bob", srv).start()
        alice.wait_ready()
        bob.wait_ready()
        m = bob.mark()
        due = "2026-11-25T18:00:00+03:00"
        alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Milk", "due_at": due}})
        ev = bob.wait(is_event("t1", title="Milk"), since=m, what="bob receives t1")
        assert ev["payload"]["due_at"] == due, ev            # C-4: verbatim
        assert ev["revision"] == 1 and ev["payload"]["updated_by"] == "alice", ev
        # and back: bob's edit reaches alice
        m = alice.mark()
        bob.ok({"cmd": "edit", "id": "t1", "fields": {"done": True}})
        ev = alice.wait(is_event("t1", done=True), since=m, what="alice receives bob's edit")
        assert ev["payload"]["title"] == "Milk" and ev["revision"] == 2, ev
        # duplicates are not re-applied: a restart HELLOs with revision 2
        assert alice.quit() == 0
        m = alice.mark()
        alice.start()
        alice.wait_ready(since=m)
        wait_until(lambda: re.search(r"ready conn=\d+ user=alice hello=2 replayed=0 ",
                                     srv.stderr_text()), what="HELLO with revision 2")
        assert alice.count(lambda x: x.get("kind") == "event", since=m) == 0
        # errors: a bad line, a bad field, an unknown command (level 1: ok / error)
        assert alice.cmd("nonsense")["kind"] == "error"
        r = alice.cmd({"cmd": "edit", "id": "t2", "fields": {"due_at": "2026-11-25T18:00:00"}})
        assert r["kind"] == "error" and r["id"] == "t2", r
        assert alice.cmd({"cmd": "fly"})["message"] == 'unknown command "fly"'
        assert not [x for x in alice.lines if x.get("kind") == "_not_json"]
        assert "eyJ" not in alice.stderr_text() and "eyJ" not in bob.stderr_text()
        assert alice.quit() == 0 and bob.quit() == 0


def test_fifo_replay_of_offline_edits():
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv).start()
        bob = client(env, "bob", srv).start()
        alice.wait_ready()
        bob.wait_ready()
        alice.ok({"cmd": "offline"})
        alice.wait(is_conn("closed", 1000), what="closed 1000 going offline")
        edits = [("f1", "one"), ("f2", "two"), ("f1", "one again"), ("f3", "three")]
        for tid, title in edits:
            alice.ok({"cmd": "edit", "id": tid, "fields": {"title": title}})
        st = alice.status()                                 # level 2, for the test only
        assert [i["entity_id"] for i in st["queue"]] == [e[0] for e in edits], st
        assert server_requests(srv, "PUT") == [], "a request went out while offline"
        m = bob.mark()
        alice.ok({"cmd": "online"})
        bob.wait(is_event("f3", title="three"), since=m, what="the last edit delivered")
        puts = server_requests(srv, "PUT")
        assert [(p[2].rsplit("/", 1)[1], p[3]) for p in puts] == \
            [("f1", 200), ("f2", 200), ("f1", 200), ("f3", 200)], puts
        assert len({p[5] for p in puts}) == 4, puts       # one key per edit
        got = [x for x in bob.lines[m:] if x.get("kind") == "event"]
        assert [(x["entity_id"], x["payload"]["title"]) for x in got] == edits, got
        # the chained second edit of f1 was rebased: no 409 anywhere
        assert "conflict" not in srv.stderr_text()
        assert alice.quit() == 0 and bob.quit() == 0


def test_retry_schedule_same_key_and_sync_failed():
    with Env() as env:
        srv = server(env, admin=True)
        alice = client(env, "alice", srv).start()
        alice.wait_ready()
        arm(srv, {"fail_requests": {"method": "PUT", "count": 5, "status": 503}})
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "r1", "fields": {"title": "retried"}})
        note = alice.wait(is_note("SYNC_FAILED"), since=m, what="SYNC_FAILED")
        assert note["entity_id"] == "r1" and note["attempts"] == 5, note
        alice.wait(lambda x: x.get("kind") == "queue" and x.get("op") == "acked", since=m,
                   timeout=60, what="acknowledged after five 503s")
        puts = server_requests(srv, "PUT", API + "/r1")
        statuses = [p[3] for p in puts]
        assert statuses[:5] == [503] * 5 and statuses[-1] == 200, puts
        # one Idempotency-Key for every attempt of the edit
        assert len({p[5] for p in puts}) == 1 and puts[0][5].startswith("m-"), puts
        # 1, 3, 9, 27, 120 s (scaled) between attempts; lower bounds only
        # (a loaded machine may be late, never early; a timed-out attempt would
        # add one more line, so the gaps are checked on the first five).
        gaps = [b[0] - a[0] for a, b in zip(puts, puts[1:])]
        for gap, want in zip(gaps, [1, 3, 9, 27, 120]):
            assert gap >= want * SCALE - 0.003, (gaps, want)
        assert alice.count(is_note("SYNC_FAILED"), since=m) == 1       # once
        assert get_task(srv, alice.token, "r1")["revision"] == 1        # applied once
        # sync_now tries at once: a failing edit, then sync_now well
        # before the 120 s (6 s scaled) cap would have retried it.
        arm(srv, {"fail_requests": {"method": "PUT", "count": 5, "status": 503}})
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "r2", "fields": {"title": "manual"}})
        alice.wait(is_note("SYNC_FAILED"), since=m, what="SYNC_FAILED for r2")
        n = len(server_requests(srv, "PUT", API + "/r2"))
        t0 = time.monotonic()
        alice.ok({"cmd": "sync_now"})
        alice.wait(lambda x: x.get("kind") == "queue" and x.get("op") == "acked", since=m,
                   what="r2 acknowledged after sync_now")
        assert time.monotonic() - t0 < 120 * SCALE, "sync_now did not retry at once"
        assert len(server_requests(srv, "PUT", API + "/r2")) == n + 1
        assert alice.quit() == 0


def test_409_merged_then_conflict_banner_and_choose():
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv).start()
        bob_tok = srv.token("bob", "home")
        alice.wait_ready()
        alice.ok({"cmd": "edit", "id": "c1", "fields": {"title": "Milk", "notes": "2 l"}})
        wait_until(lambda: alice.status()["applied_revision"] == 1, what="c1 applied")
        # CF-2: different fields on both sides -> merged, retried on the current
        # revision with the same key, no banner.
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "c1", "fields": {"title": "Oat milk"}})
        st, body, _ = srv.put("c1", bob_tok, {"title": "Milk", "notes": "3 l", "done": False,
                                              "assignee": None, "due_at": None,
                                              "remind_at": None}, base=1)
        assert st == 200 and body["revision"] == 2, body
        m = alice.mark()
        alice.ok({"cmd": "online"})
        alice.wait(lambda x: x.get("kind") == "queue" and x.get("op") == "acked", since=m,
                   what="merged edit acknowledged")
        t = get_task(srv, bob_tok, "c1")
        assert (t["title"], t["notes"], t["revision"]) == ("Oat milk", "3 l", 3), t
        puts = server_requests(srv, "PUT", API + "/c1")
        assert [p[3] for p in puts[-2:]] == [409, 200], puts
        assert puts[-2][5] == puts[-1][5], "the retry after a merge must keep its key"
        assert alice.count(is_note("CONFLICT"), since=m) == 0
        # CF-4: a WARNING for the 409 received
        assert re.search(r" WARNING alice conflict entity=task/c1 base=1 current=2 user=alice",
                         alice.stderr_text()), alice.stderr_text()
        # CF-3: the same field on both sides -> CONFLICT, the queue waits.
        wait_until(lambda: alice.status()["applied_revision"] >= 3, what="c1 rev 3 applied")
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "c1", "fields": {"title": "Alice's"}})
        alice.ok({"cmd": "edit", "id": "c2", "fields": {"title": "behind the banner"}})
        st, body, _ = srv.put("c1", bob_tok, dict(t, title="Bob's"), base=3)
        assert st == 200 and body["revision"] == 4, body
        m = alice.mark()
        alice.ok({"cmd": "online"})
        note = alice.wait(is_note("CONFLICT"), since=m, what="CONFLICT")
        assert note["entity_id"] == "c1" and note["fields"] == ["title"], note
        assert note["choices"] == ["merge", "overwrite"] and note["edit_vs_delete"] is False
        assert alice.cmd({"cmd": "choose", "id": "c9", "choice": "merge"})["kind"] == "error"
        n409 = len(server_requests(srv, "PUT", API + "/c1"))
        # the queue waits for the choice, whatever else happens meanwhile
        alice.ok({"cmd": "edit", "id": "c3", "fields": {"title": "also behind"}})
        alice.ok({"cmd": "sync_now"})
        assert alice.status()["conflicts"][0]["entity_id"] == "c1"
        assert len(server_requests(srv, "PUT", API + "/c1")) == n409, "resent before choose"
        assert server_requests(srv, "PUT", API + "/c2") == [], "the queue must wait"
        alice.ok({"cmd": "choose", "id": "c1", "choice": "overwrite"})
        alice.wait_status(lambda s: not s["queue"], what="queue drained after the choice")
        t = get_task(srv, bob_tok, "c1")
        assert t["title"] == "Alice's" and t["revision"] == 5, t
        puts = server_requests(srv, "PUT", API + "/c1")
        assert len(puts) == n409 + 1 and puts[-1][5] == puts[-2][5], puts   # same key
        assert get_task(srv, bob_tok, "c2")["title"] == "behind the banner"
        # edit meets delete: bob deletes, alice edits -> banner with edit_vs_delete
        wait_until(lambda: alice.status()["applied_revision"] >= 6, what="rev 6 applied")
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "c2", "fields": {"notes": "still wanted"}})
        st, body, _ = srv.http("DELETE", API + "/c2?base_revision=6", bob_tok)
        assert st == 200 and body["deleted"] is True, (st, body)
        m = alice.mark()
        alice.ok({"cmd": "online"})
        note = alice.wait(is_note("CONFLICT"), since=m, what="edit-vs-delete CONFLICT")
        assert note["entity_id"] == "c2" and note["edit_vs_delete"] is True, note
        alice.ok({"cmd": "choose", "id": "c2", "choice": "merge"})   # theirs: deleted
        alice.wait_status(lambda s: not s["queue"], what="settled without a request")
        assert get_task(srv, bob_tok, "c2")["deleted"] is True
        # CF-4 on the server: one WARNING per 409 sent, matched by the client's
        assert len(srv.log_lines("WARNING", "conflict entity=")) == \
            len([l for l in alice.stderr_text().splitlines()
                 if " WARNING " in l and " conflict entity=" in l]) == 3
        assert alice.quit() == 0


def test_restart_keeps_queue_and_key():
    with Env() as env:
        srv = server(env, admin=True)
        alice = client(env, "alice", srv).start()
        alice.wait_ready()
        # Every PUT fails until further notice: the edit is sent, retried, and
        # the client is killed between two attempts.
        arm(srv, {"fail_requests": {"method": "PUT", "count": 1000000, "status": 503}})
        alice.ok({"cmd": "edit", "id": "k1", "fields": {"title": "survives"}})
        alice.ok({"cmd": "edit", "id": "k2", "fields": {"title": "behind it"}})
        wait_until(lambda: len(server_requests(srv, "PUT", API + "/k1")) >= 2,
                   what="k1 attempted twice")
        alice.kill9()
        key = server_requests(srv, "PUT", API + "/k1")[0][5]
        srv.kill9()                               # faults live in memory: gone
        srv.start()
        m = alice.mark()
        alice.start()
        alice.wait_status(lambda s: not s["queue"], what="kept queue flushed after restart")
        puts = server_requests(srv, "PUT")
        k1 = [p for p in puts if p[2] == API + "/k1"]
        assert k1[-1][3] == 200 and {p[5] for p in k1} == {key}, k1      # same key
        assert [p[2] for p in puts if p[3] == 200] == [API + "/k1", API + "/k2"], puts
        assert alice.count(is_conn("ready"), since=m) >= 1
        # --online no (the contract's {online}): an app restarted on a device
        # without network makes no connect attempt and sends nothing until
        # `online`.
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "k3", "fields": {"title": "offline restart"}})
        alice.kill9()
        n_ws = len(srv.log_lines(contains="ws_open conn="))
        alice.online_arg = "no"
        m = alice.mark()
        alice.start()
        alice.ok({"cmd": "edit", "id": "k4", "fields": {"title": "still offline"}})
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            assert alice.count(is_conn("connecting"), since=m) == 0, "connected while offline"
            time.sleep(0.05)
        assert len(srv.log_lines(contains="ws_open conn=")) == n_ws
        assert server_requests(srv, "PUT", API + "/k3") == []
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: not s["queue"], what="k3, k4 delivered after online")
        assert [p[2] for p in server_requests(srv, "PUT") if p[3] == 200][-2:] == \
            [API + "/k3", API + "/k4"]
        assert alice.quit() == 0


def test_token_expiry_4001_auth_required():
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv, ttl="3s").start()
        alice.wait_ready()
        m = alice.mark()
        alice.wait(is_conn("closed", 4001), since=m, what="close 4001 at the token's exp")
        note = alice.wait(is_note("AUTH_REQUIRED"), since=m, what="AUTH_REQUIRED")
        assert note["reason"] == "close_4001", note
        alice.ok({"cmd": "edit", "id": "a1", "fields": {"title": "paused"}})
        # No reconnect and no request until a token: two reconnect delays'
        # worth (1 s + 3 s scaled) of nothing.
        n_ws = len(srv.log_lines(contains="ws_open conn="))
        t_end = time.monotonic() + 4 * SCALE * 3
        while time.monotonic() < t_end:
            assert server_requests(srv, "PUT") == [], "a request while paused"
            time.sleep(0.05)
        assert len(srv.log_lines(contains="ws_open conn=")) == n_ws, "reconnected without token"
        assert alice.count(is_note("AUTH_REQUIRED"), since=m) == 1
        alice.ok({"cmd": "token", "token": srv.token("alice", "home")})
        alice.wait(is_conn("ready"), since=m, what="ready with the new token")
        alice.wait_status(lambda s: not s["queue"], what="queue resumed")
        assert [p[3] for p in server_requests(srv, "PUT", API + "/a1")] == [200]
        assert "eyJ" not in alice.stderr_text()
        assert alice.quit() == 0


def test_rest_401_pauses_the_queue():
    """Q-7 / A-2: a REST 401 (here scripted on a live session) is not a
    failure: AUTH_REQUIRED http_401 once, the queue pauses (nothing sent,
    even for a later edit or sync_now) until `token`, then the same key."""
    with Env() as env:
        srv = server(env, admin=True)
        alice = client(env, "alice", srv).start()
        alice.wait_ready()
        arm(srv, {"fail_requests": {"method": "PUT", "count": 1, "status": 401}})
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "p1", "fields": {"title": "paused"}})
        note = alice.wait(is_note("AUTH_REQUIRED"), since=m, what="AUTH_REQUIRED")
        assert note["reason"] == "http_401", note
        alice.ok({"cmd": "edit", "id": "p2", "fields": {"title": "also paused"}})
        alice.ok({"cmd": "sync_now"})
        assert alice.status()["connection"] == "auth_required"
        t_end = time.monotonic() + 9 * SCALE * 2       # well past the 3rd retry delay
        while time.monotonic() < t_end:
            assert len(server_requests(srv, "PUT")) == 1, server_requests(srv, "PUT")
            time.sleep(0.05)
        assert alice.count(is_note("AUTH_REQUIRED"), since=m) == 1
        alice.ok({"cmd": "token", "token": srv.token("alice", "home")})
        alice.wait_status(lambda s: not s["queue"], what="queue resumed")
        p1 = server_requests(srv, "PUT", API + "/p1")
        assert [p[3] for p in p1] == [401, 200] and p1[0][5] == p1[1][5], p1
        assert [p[3] for p in server_requests(srv, "PUT", API + "/p2")] == [200]
        assert alice.quit() == 0


def test_reconnect_backoff_on_the_wire():
    """WS-6 from the wire: a "server" that accepts TCP connections and
    closes them at once.  The client's connection attempts reach it at 0,
    then 1, 3, 9, 27 s (scaled) apart; `online` connects at once."""
    import socket
    import threading
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    accepts = []

    def serve():
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            accepts.append(time.monotonic())
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    with Env() as env:
        srv = env.server(time_scale=SCALE)          # only for minting the token
        alice = PyClient(env.workdir, "alice", "http://127.0.0.1:%d" % lsock.getsockname()[1],
                         srv.token("alice", "home"), time_scale=SCALE)
        env.clients.append(alice)
        alice.start()
        wait_until(lambda: len(accepts) >= 5, timeout=60, what="five connection attempts")
        gaps = [b - a for a, b in zip(accepts, accepts[1:])]
        for gap, want in zip(gaps, [1, 3, 9, 27]):
            assert gap >= want * SCALE - 0.003, (gaps, want)
        # offline: no attempt at all; online: one at once (long before the
        # next scheduled delay, 120 s x 0.05 = 6 s)
        alice.ok({"cmd": "offline"})
        n = len(accepts)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            assert len(accepts) == n, "a connection attempt while offline"
            time.sleep(0.05)
        alice.ok({"cmd": "online"})
        wait_until(lambda: len(accepts) > n, what="an immediate attempt after online")
        assert accepts[n] - t0 < 1.0 + 120 * SCALE * 0.5, accepts
        assert alice.quit() == 0
    try:
        lsock.shutdown(socket.SHUT_RDWR)   # wakes the accept() of the thread
    except OSError:
        pass
    lsock.close()


def test_no_token_at_start_and_watchdog():
    with Env() as env:
        srv = server(env, admin=True)
        alice = client(env, "alice", srv)
        alice.token = ""
        alice.start()
        note = alice.wait(is_note("AUTH_REQUIRED"), what="AUTH_REQUIRED no_token")
        assert note["reason"] == "no_token", note
        alice.ok({"cmd": "edit", "id": "w1", "fields": {"title": "before the silence"}})
        m = alice.mark()
        alice.ok({"cmd": "token", "token": srv.token("alice", "home")})
        alice.wait(is_event("w1"), since=m, what="w1 applied")
        alice.wait(is_conn("ready"), since=m)
        # WS-5: the server goes silent (its heartbeats dropped): the client
        # leaves after 2 intervals (4008) and HELLOs again with revision 1.
        m = alice.mark()
        t0 = time.monotonic()
        arm(srv, {"drop_heartbeats": {"user": "alice", "count": 3}})
        alice.wait(is_conn("closed", 4008), since=m, timeout=60, what="watchdog close")
        assert time.monotonic() - t0 >= 30 * SCALE * 0.9
        alice.wait(is_conn("ready"), since=m, timeout=60, what="reconnected")
        wait_until(lambda: re.search(r"ready conn=\d+ user=alice hello=1 ",
                                     srv.stderr_text()), what="a HELLO with revision 1")
        assert alice.quit() == 0


def test_policy_queue_full_coalesce_and_offline_long():
    """--policy: a queue of 3 (Q-6: coalesce into a queued item, else
    QUEUE_FULL, nothing dropped) and OFFLINE_LONG after 20 s x 0.05 = 1 s
    (N-1: once per offline period, a READY ends the period)."""
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv)
        alice.policy = {"queue_max": 3, "offline_long": "20s"}
        alice.start()
        alice.wait_ready()
        m = alice.mark()
        t0 = time.monotonic()
        alice.ok({"cmd": "offline"})
        for tid in ("q1", "q2", "q3"):
            alice.ok({"cmd": "edit", "id": tid, "fields": {"title": tid}})
        r = alice.cmd({"cmd": "edit", "id": "q4", "fields": {"title": "refused"}})
        assert r["kind"] == "error" and r["message"] == "queue full", r
        note = alice.wait(is_note("QUEUE_FULL"), since=m, what="QUEUE_FULL")
        assert note["entity_id"] == "q4" and note["length"] == 3, note
        alice.ok({"cmd": "edit", "id": "q2", "fields": {"title": "q2 coalesced"}})
        note = alice.wait(is_note("OFFLINE_LONG"), since=m, what="OFFLINE_LONG")
        assert time.monotonic() - t0 >= 20 * SCALE, "OFFLINE_LONG too early"
        assert note["offline_ms"] > 20000 * SCALE, note
        n = alice.mark()
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: not s["queue"], what="queue flushed")
        puts = server_requests(srv, "PUT")
        assert [p[2].rsplit("/", 1)[1] for p in puts] == ["q1", "q2", "q3"], puts
        assert get_task(srv, alice.token, "q2")["title"] == "q2 coalesced"
        assert get_task(srv, alice.token, "q4") is None
        assert alice.count(is_note("OFFLINE_LONG")) == 1            # once per period
        # a new period: offline again, a second OFFLINE_LONG
        alice.wait(is_conn("ready"), since=n)
        m = alice.mark()
        alice.ok({"cmd": "offline"})
        alice.wait(is_note("OFFLINE_LONG"), since=m, what="a second OFFLINE_LONG")
        assert alice.count(is_note("OFFLINE_LONG")) == 2
        assert alice.quit() == 0


def test_rejected_dead_letter_429_retry_after_and_resync():
    """Q-7: a 4xx other than 401/409 -> dead letter + REJECTED, the queue
    goes on; a 429 waits for its Retry-After (seconds, not scaled).  WS-2:
    a HELLO older than the retained log -> RESYNC_REQUIRED -> GET ?since=0
    -> HELLO again with the reloaded revision -> READY."""
    with Env() as env:
        srv = server(env, admin=True, extra_args=["--policy", '{"event_retain": 2}'])
        alice = client(env, "alice", srv).start()
        alice.wait_ready()
        arm(srv, {"fail_requests": {"method": "PUT", "count": 1, "status": 422}})
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "d1", "fields": {"title": "refused"}})
        alice.ok({"cmd": "edit", "id": "d2", "fields": {"title": "goes on"}})
        note = alice.wait(is_note("REJECTED"), since=m, what="REJECTED")
        assert note["entity_id"] == "d1" and note["status"] == 422, note
        alice.wait(is_event("d2"), since=m, what="the next item delivered")
        st = alice.status()
        assert [d["entity_id"] for d in st["dead_letter"]] == ["d1"], st
        assert re.search(r" WARNING alice rejected entity=task/d1 ", alice.stderr_text())
        assert [p[3] for p in server_requests(srv, "PUT", API + "/d1")] == [422]
        # 429 with Retry-After: 2 s (about 13 times the scaled schedule's 50 ms)
        arm(srv, {"fail_requests": {"method": "PUT", "count": 1, "status": 429,
                                    "retry_after": 2}})
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "d3", "fields": {"title": "later"}})
        alice.wait(is_event("d3"), since=m, what="d3 after its Retry-After")
        puts = server_requests(srv, "PUT", API + "/d3")
        assert [p[3] for p in puts] == [429, 200], puts
        assert puts[1][0] - puts[0][0] >= 2.0 - 0.003, puts
        assert puts[0][5] == puts[1][5], puts
        # RESYNC: alice stops at revision 2; bob writes 4 more (2 kept).
        applied = alice.status()["applied_revision"]
        assert alice.quit() == 0
        bob_tok = srv.token("bob", "home")
        for i in range(4):
            st, body, _ = srv.put("b%d" % i, bob_tok, {"title": "bob %d" % i})
            assert st == 200, body
        m = alice.mark()
        alice.start()
        res = alice.wait(is_conn("resync"), since=m, what="RESYNC_REQUIRED")
        alice.wait(is_conn("ready"), since=m, what="READY after the reload")
        cur = res["revision"]
        assert cur == applied + 4, (res, applied)
        wait_until(lambda: re.search(r"ready conn=\d+ user=alice hello=%d " % cur,
                                     srv.stderr_text()), what="HELLO with the reloaded revision")
        alice.send({"cmd": "cached", "id": "b3"})
        got = alice.wait(lambda x: x.get("kind") == "cached", since=m, what="cached b3")
        assert got["task"]["title"] == "bob 3", got
        assert alice.quit() == 0


def test_locks_carried_by_heartbeats():
    """CF-1: `lock` takes the soft-lock (POST) and the client's HEARTBEATs
    keep it beyond its TTL (the server refreshes the locks listed); `unlock`
    releases it (DELETE); the other device sees LOCK_REFRESHED events."""
    with Env() as env:
        srv = server(env, admin=True)
        alice = client(env, "alice", srv).start()
        bob = client(env, "bob", srv).start()
        alice.wait_ready()
        bob.wait_ready()
        m = bob.mark()
        alice.ok({"cmd": "lock", "id": "l1"})
        ev = bob.wait(lambda x: x.get("kind") == "event" and x.get("event_type") ==
                      "LOCK_REFRESHED" and x["payload"].get("state") == "held", since=m,
                      what="bob sees the lock held")
        assert ev["payload"]["holder"] == "alice", ev
        # lock_ttl 2 min x 0.05 = 6 s: still held after 8 s thanks to heartbeats
        time_held = time.monotonic()
        wait_until(lambda: time.monotonic() - time_held > 120 * SCALE + 2, timeout=60,
                   what="past the lock's TTL")
        st, state, _ = srv.http("GET", "/_hp/state")
        locks = state["households"]["home"]["locks"]
        assert locks.get("l1", {}).get("holder") == "alice" and bob.count(lambda x: x.get("kind") == "event" and x["payload"].get(
            "state") == "expired", since=m) == 0, (state, bob.lines[m:])
        # WS-4: alice's heartbeats kept her socket alive (no 4008 from the
        # server) and refreshed the lock: one POST, no re-take after a reconnect.
        assert not srv.log_lines("WARNING", "heartbeat_timeout"), srv.log_lines("WARNING")
        assert alice.count(is_conn("closed")) == 0
        assert len(server_requests(srv, "POST", API + "/l1/lock")) == 1
        m = bob.mark()
        alice.ok({"cmd": "unlock", "id": "l1"})
        bob.wait(lambda x: x.get("kind") == "event" and x.get("event_type") ==
                 "LOCK_REFRESHED" and x["payload"].get("state") == "released", since=m,
                 what="bob sees the lock released")
        assert alice.quit() == 0 and bob.quit() == 0


def test_cache_window_and_cap():
    """C-1: a cache entry not written from the server for cache_window is
    purged, unless the task has a queued change; C-2: over cache_cap the
    least recently used entries go.  Seen through `cached` (level 2)."""
    with Env() as env:
        srv = server(env)
        bob_tok = srv.token("bob", "home")
        alice = client(env, "alice", srv)
        alice.policy = {"cache_window": "40s", "cache_cap": 600}   # 2 s; 600 bytes
        alice.start()
        alice.wait_ready()

        def cached(tid):
            m = alice.mark()
            alice.send({"cmd": "cached", "id": tid})
            return alice.wait(lambda x: x.get("kind") == "cached" and x.get("id") == tid,
                              since=m)["task"]
        m = alice.mark()
        st, body, _ = srv.put("w1", bob_tok, {"title": "purged after the window"})
        st, body, _ = srv.put("w2", bob_tok, {"title": "kept: alice edits it"})
        alice.wait(is_event("w2"), since=m)
        assert cached("w1")["title"] == "purged after the window"
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "w2", "fields": {"notes": "queued"}})
        wait_until(lambda: cached("w1") is None, timeout=60, what="w1 purged (C-1)")
        assert cached("w2") is not None, "a task with a queued change was purged"
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: not s["queue"], what="w2 delivered")
        # C-2: four tasks of ~200 bytes do not fit in 600: the oldest used go
        m = alice.mark()
        for i in range(4):
            srv.put("s%d" % i, bob_tok, {"title": "size %d" % i})
        alice.wait(is_event("s3"), since=m)
        st = alice.status()
        assert st["cache"]["bytes"] <= 600 and "s3" in st["cache"]["ids"], st["cache"]
        assert "s0" not in st["cache"]["ids"], st["cache"]
        assert alice.quit() == 0


def test_chained_edit_after_merge_keeps_theirs():
    """Q-3 with CF-2: two offline edits of one task (chained); their change
    meanwhile; the first PUT is merged after a 409, and the second, rebased
    onto that result, replays only its own change: their notes survive."""
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv).start()
        bob_tok = srv.token("bob", "home")
        alice.wait_ready()
        alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Milk", "notes": "2 l"}})
        wait_until(lambda: alice.status()["applied_revision"] == 1, what="t1 applied")
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Oat milk"}})
        alice.ok({"cmd": "edit", "id": "t1", "fields": {"done": True}})
        t = get_task(srv, bob_tok, "t1")
        st, body, _ = srv.put("t1", bob_tok, dict(t, notes="3 l"), base=1)
        assert st == 200 and body["revision"] == 2, body
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: not s["queue"], what="both items delivered")
        t = get_task(srv, bob_tok, "t1")
        assert (t["title"], t["notes"], t["done"], t["revision"]) == \
            ("Oat milk", "3 l", True, 4), t
        assert [p[3] for p in server_requests(srv, "PUT", API + "/t1")] == [200, 200, 409, 200, 200]
        assert alice.count(is_note("CONFLICT")) == 0
        assert alice.quit() == 0


def test_refused_upgrade_401():
    """A-2: an upgrade refused with 401 (hp-fake-server answers it in
    HTTP/1.0) is AUTH_REQUIRED upgrade_401, once, and no reconnect."""
    with Env() as env:
        srv = server(env)
        alice = client(env, "alice", srv)
        alice.token = srv.token("alice", "home").rsplit(".", 1)[0] + ".AAAA"   # bad signature
        alice.start()
        note = alice.wait(is_note("AUTH_REQUIRED"), what="AUTH_REQUIRED")
        assert note["reason"] == "upgrade_401", note
        alice.wait(is_conn("auth_required"), what="connection auth_required")
        assert alice.count(is_conn("closed", 0)) == 1
        t_end = time.monotonic() + 3 * SCALE * 3          # past the first two delays
        while time.monotonic() < t_end:
            assert alice.count(is_conn("connecting")) == 1, "reconnected without a token"
            time.sleep(0.05)
        m = alice.mark()
        alice.ok({"cmd": "token", "token": srv.token("alice", "home")})
        alice.wait(is_conn("ready"), since=m, what="ready with a good token")
        # the send_frame probe: a frame that is not JSON -> the server's
        # 4002, then a reconnect after 1 s (WS-6)
        m = alice.mark()
        alice.ok({"cmd": "send_frame", "text": "this is not json"})
        alice.wait(is_conn("closed", 4002), since=m, what="close 4002")
        alice.wait(is_conn("ready"), since=m, what="reconnected")
        alice.ok({"cmd": "offline"})
        assert alice.cmd({"cmd": "send_frame", "text": "x"})["kind"] == "error"
        assert alice.quit() == 0


if __name__ == "__main__":
    if PYTHON is None:
        need_tools("test_example_python_client", ["python3-websockets"],
                   "apt-get install python3-websockets")
    run_tests([test_round_trip_between_two_python_clients, test_fifo_replay_of_offline_edits,
               test_retry_schedule_same_key_and_sync_failed,
               test_409_merged_then_conflict_banner_and_choose,
               test_restart_keeps_queue_and_key, test_token_expiry_4001_auth_required,
               test_rest_401_pauses_the_queue, test_reconnect_backoff_on_the_wire,
               test_no_token_at_start_and_watchdog,
               test_policy_queue_full_coalesce_and_offline_long,
               test_rejected_dead_letter_429_retry_after_and_resync,
               test_locks_carried_by_heartbeats, test_cache_window_and_cap,
               test_chained_edit_after_merge_keeps_theirs, test_refused_upgrade_401])
