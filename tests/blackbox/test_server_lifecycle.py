#!/usr/bin/env python3
"""Process lifecycle: SIGTERM/SIGINT close every WebSocket with 1001 and exit
0; a restart over the same --db keeps tasks, the revision counter and the
event log (replay); kill -9 in the middle of a stream of PUTs loses no
acknowledged write (Q-1's server side: durable before acknowledged)."""

import signal
import threading
import time

from hpbb import API, Env, run_tests, wait_until

SCALE = 0.1


def test_sigterm_closes_1001_and_exits_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Env() as env:
            srv = env.server(time_scale=SCALE).start()
            socks = []
            for i in range(3):
                w = env.track(srv.ws(srv.token("u%d" % i, "home")))
                w.hello(0)
                w.start_heartbeats(0.5)
                socks.append(w)
            # One connection that never said HELLO is closed too.
            raw = env.track(srv.ws(srv.token("late", "home")))
            t0 = time.monotonic()
            rc = srv.stop(sig)
            assert rc == 0, "exit code %s after %s" % (rc, sig)
            assert time.monotonic() - t0 < 20
            for w in socks:
                assert w.wait_close(timeout=10) == 1001, w.close_code
            assert raw.wait_close(timeout=10) in (1001, 4002), raw.close_code
            text = srv.stderr_text()
            assert " stopped" in text, text[-2000:]


def test_restart_keeps_tasks_revision_and_log():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        revs = []
        for i in range(5):
            st, t, _ = srv.put("t%d" % i, tok, {"title": "n%d" % i, "due_at":
                                               "2026-12-01T08:00:00-05:00"})
            assert st == 200, t
            revs.append(t["revision"])
        st, t, _ = srv.put("t0", tok, {"title": "n0 edited"}, base=revs[0])
        assert st == 200 and t["revision"] == 6, t
        st, before, _ = srv.http("GET", API + "?since=0", tok)
        assert srv.stop() == 0

        srv.start()
        st, after, _ = srv.http("GET", API + "?since=0", tok)
        assert st == 200 and after == before, (before, after)
        assert after["revision"] == 6
        # The counter goes on from 6; idempotency keys survive too.
        st, t, _ = srv.put("t9", tok, {"title": "after restart"}, idem="k-restart")
        assert st == 200 and t["revision"] == 7, t
        assert srv.stop() == 0
        srv.start()
        # A retry of the same request after the restart gets the stored answer...
        st, t2, _ = srv.put("t9", tok, {"title": "after restart"}, idem="k-restart")
        assert st == 200 and t2 == t, (t, t2)
        # ...and the key stays bound to that request: another body is refused, nothing applied.
        st, body, _ = srv.put("t9", tok, {"title": "replayed?"}, idem="k-restart")
        assert st == 422 and body["error"] == "idempotency_key_reused", (st, body)
        # The event log survived: replay from 0 gives all 7 revisions in order.
        w = env.track(srv.ws(tok))
        events, ready = w.hello(0)
        assert [e["revision"] for e in events] == list(range(1, 8)), events
        assert ready["revision"] == 7, ready
        assert srv.stop() == 0


def test_kill9_loses_no_acknowledged_write():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        acked = {}            # id -> the 200 body
        errors = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set() and i < 200:
                tid = "k%d" % i
                try:
                    st, body, _ = srv.http("PUT", API + "/" + tid, tok,
                                           {"base_revision": 0, "task": {"title": "v%d" % i}},
                                           {"Idempotency-Key": "kill-%d" % i}, timeout=10)
                except OSError as e:          # the server is gone: not acknowledged
                    errors.append(repr(e))
                    st, body = 0, None
                # Acknowledged = the whole response arrived.  A kill -9 can
                # fall between the status line and the body: like curl
                # ("transfer closed with bytes remaining"), a client treats
                # that as a failed request and retries with the same key.
                if st == 200 and isinstance(body, dict) and body.get("id") == tid:
                    acked[tid] = body
                elif st == 0 and srv.proc is None:
                    break
                i += 1

        th = threading.Thread(target=writer, daemon=True)
        th.start()
        wait_until(lambda: len(acked) >= 25, timeout=60, what="25 acknowledged PUTs")
        srv.kill9()                                # mid-stream, no warning
        stop.set()
        th.join(timeout=30)
        assert len(acked) >= 25, len(acked)

        srv.start()
        st, lst, _ = srv.http("GET", API + "?since=0", tok)
        assert st == 200, lst
        have = {t["id"]: t for t in lst["tasks"]}
        lost = [tid for tid in acked if tid not in have]
        assert not lost, "acknowledged writes lost after kill -9: %s" % lost
        for tid, body in acked.items():
            assert have[tid]["title"] == body["title"], (have[tid], body)
            assert have[tid]["revision"] == body["revision"], (have[tid], body)
        assert lst["revision"] >= max(b["revision"] for b in acked.values())
        # Each acknowledged write is in the replayable log exactly once.
        w = env.track(srv.ws(tok))
        events, ready = w.hello(0)
        seen = [e["entity_id"] for e in events if e["event_type"] == "TASK_UPDATED"]
        for tid in acked:
            assert seen.count(tid) == 1, (tid, seen)
        assert srv.stop() == 0


def test_kill9_under_load_group_commit():
    """The same guarantee with group commit (the default) under load: 8
    writers at once in 2 households (their writes share COMMITs) and READY
    listeners receiving the events; kill -9 mid-stream; every acknowledged
    write is there after the restart, once in the log, and no listener ever
    saw a revision the store does not have."""
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        lock = threading.Lock()
        acked = {}            # (hh, id) -> the 200 body
        seen_by = []          # (hh, revision) from the listeners
        stop = threading.Event()
        listeners = []
        for hh in ("h0", "h1"):
            for k in range(2):
                w = env.track(srv.ws(srv.token("l%d" % k, hh)))
                w.hello(0)
                w.start_heartbeats(0.5)
                listeners.append((hh, w))

        def writer(n):
            hh = "h%d" % (n % 2)
            tok = srv.token("w%d" % n, hh)
            for i in range(400):
                if stop.is_set():
                    return
                tid = "w%d-%d" % (n, i)
                try:
                    st, body, _ = srv.http("PUT", API + "/" + tid, tok,
                                           {"base_revision": 0, "task": {"title": tid}},
                                           {"Idempotency-Key": "kl-" + tid}, timeout=10)
                except OSError:
                    return                    # the server is gone
                if st == 200 and isinstance(body, dict) and body.get("id") == tid:
                    with lock:
                        acked[(hh, tid)] = body
                elif st == 0:
                    return

        ths = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(8)]
        for th in ths:
            th.start()
        wait_until(lambda: len(acked) >= 120, timeout=120, what="120 acknowledged PUTs")
        srv.kill9()
        stop.set()
        for th in ths:
            th.join(timeout=30)
        for hh, w in listeners:
            for m in list(w.messages):
                if m.get("event_type") == "TASK_UPDATED":
                    seen_by.append((hh, m["revision"]))

        srv.start()
        for hh in ("h0", "h1"):
            tok = srv.token("check", hh)
            st, lst, _ = srv.http("GET", API + "?since=0", tok)
            assert st == 200, lst
            have = {t["id"]: t for t in lst["tasks"]}
            mine = {tid: b for (h, tid), b in acked.items() if h == hh}
            lost = [tid for tid in mine if tid not in have]
            assert not lost, "acknowledged writes lost after kill -9 (%s): %s" % (hh, lost)
            for tid, body in mine.items():
                assert have[tid]["revision"] == body["revision"], (have[tid], body)
            # Events go out only after COMMIT: nothing a listener saw is missing.
            for h, rev in seen_by:
                if h == hh:
                    assert rev <= lst["revision"], (hh, rev, lst["revision"])
            w = env.track(srv.ws(tok))
            events, _ = w.hello(0)
            ids = [e["entity_id"] for e in events if e["event_type"] == "TASK_UPDATED"]
            for tid in mine:
                assert ids.count(tid) == 1, (tid, ids)
        assert srv.stop() == 0


run_tests([test_sigterm_closes_1001_and_exits_0, test_restart_keeps_tasks_revision_and_log,
           test_kill9_loses_no_acknowledged_write, test_kill9_under_load_group_commit])
