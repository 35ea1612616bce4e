#!/usr/bin/env python3
"""--admin: the fault endpoints client teams script against their real
apps.  Off by default (404, nothing applied); with --admin,
fail_requests (status + Retry-After in seconds or as an HTTP-date, then
normal service), force_conflict
(409 with the current task + WARNING), drop_heartbeats (the client sees
silence), GET /_hp/state; bad fault requests are 400 and change nothing."""

import email.utils
import re
import time

from hpbb import API, Env, run_tests

SCALE = 0.1


def test_admin_off_by_default():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        st, body, _ = srv.http("POST", "/_hp/faults", None,
                               {"fail_requests": {"count": 5, "status": 503}})
        # 404 with a JSON reason, never a misleading 401 "Bearer required"
        assert st == 404 and "--admin" in body["message"], (st, body)
        st, body, h = srv.http("GET", "/_hp/state")
        assert st == 404 and body["error"] == "not_found", (st, body)
        assert "access-control-allow-origin" not in h, h
        st, t, _ = srv.put("t1", tok, {"title": "unaffected"})
        assert st == 200, t
        assert srv.stop() == 0


def test_fail_requests_and_retry_after():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        tok = srv.token("alice", "home")
        st, body, _ = srv.http("POST", "/_hp/faults", None, {"fail_requests": {
            "method": "PUT", "path_prefix": API + "/", "count": 2, "status": 429,
            "retry_after": 7}})
        assert st == 200, body
        # GETs are not affected.
        st, body, _ = srv.http("GET", API + "?since=0", tok)
        assert st == 200, body
        for _ in range(2):
            st, body, h = srv.put("t1", tok, {"title": "x"}, idem="f-1")
            assert st == 429 and h.get("retry-after") == "7", (st, body, h)
            assert isinstance(body, dict) and "error" in body, body
        st, t, h = srv.put("t1", tok, {"title": "x"}, idem="f-1")
        assert st == 200 and t["revision"] == 1 and "retry-after" not in h, (t, h)
        # 503 without Retry-After.
        st, body, _ = srv.http("POST", "/_hp/faults", None, {"fail_requests": {"status": 503}})
        assert st == 200, body
        st, body, h = srv.http("GET", API + "/t1", tok)
        assert st == 503 and "retry-after" not in h, (st, h)
        st, body, h = srv.http("GET", API + "/t1", tok)
        assert st == 200, body
        # Retry-After as an HTTP-date (RFC 9110 allows both forms), then back.
        st, body, _ = srv.http("POST", "/_hp/faults", None, {"fail_requests": {
            "count": 1, "status": 429, "retry_after": 7, "retry_after_form": "http-date"}})
        assert st == 200, body
        before = time.time()
        st, body, h = srv.http("GET", API + "/t1", tok)
        assert st == 429, (st, body)
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
                            h.get("retry-after", "")), h
        at = email.utils.parsedate_to_datetime(h["retry-after"]).timestamp()
        assert before + 5 <= at <= time.time() + 7, (before, at, h)
        st, body, _ = srv.http("POST", "/_hp/faults", None, {"fail_requests": {
            "count": 1, "status": 429, "retry_after": 7, "retry_after_form": "seconds"}})
        assert st == 200, body
        st, body, h = srv.http("GET", API + "/t1", tok)
        assert st == 429 and h.get("retry-after") == "7", (st, h)
        st, body, _ = srv.http("POST", "/_hp/faults", None, {"fail_requests": {
            "status": 429, "retry_after_form": "date"}})
        assert st == 400 and "retry_after_form" in body["message"], (st, body)
        st, body, h = srv.http("GET", API + "/t1", tok)
        assert st == 200, body                 # the refused fault armed nothing
        assert srv.stop() == 0


def test_force_conflict_and_state():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        tok = srv.token("alice", "home")
        st, t, _ = srv.put("t1", tok, {"title": "one"})
        st, body, _ = srv.http("POST", "/_hp/faults", None, {"force_conflict": {"id": "t1"}})
        assert st == 200, body
        st, body, _ = srv.put("t1", tok, {"title": "two"}, base=t["revision"])
        assert st == 409 and body["current"]["title"] == "one", body
        st, t2, _ = srv.put("t1", tok, {"title": "two"}, base=t["revision"])
        assert st == 200 and t2["title"] == "two", t2
        assert srv.log_lines("WARNING", "conflict entity=task/t1"), srv.stderr_text()[-2000:]
        w = env.track(srv.ws(tok))
        w.hello(0)
        st, state, _ = srv.http("GET", "/_hp/state")
        assert st == 200, state
        hh = state["households"]["home"]
        assert hh["revision"] == 2 and hh["tasks"]["t1"]["title"] == "two", state
        assert any(c["user"] == "alice" for c in state["connections"]), state
        assert srv.stop() == 0


def test_drop_heartbeats():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        tok = srv.token("alice", "home")
        w = env.track(srv.ws(tok))
        _, ready = w.hello(0)
        w.start_heartbeats(0.5)
        hb = ready["heartbeat_interval_ms"] / 1000.0
        st, body, _ = srv.http("POST", "/_hp/faults", None,
                               {"drop_heartbeats": {"user": "alice", "count": 2}})
        assert st == 200, body
        m = w.mark()
        t0 = time.monotonic()
        w.wait_type("HEARTBEAT", since=m, timeout=30)
        # Two were swallowed: the first one we see comes ~3 intervals later.
        assert time.monotonic() - t0 >= 2 * hb - 0.5, time.monotonic() - t0
        assert srv.stop() == 0


def test_bad_fault_requests():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        tok = srv.token("alice", "home")
        for body in ("{oops", [], {}, {"explode": {}}, {"fail_requests": {"count": 1}},
                     {"fail_requests": {"status": "500"}}, {"fail_requests": {"status": 42}},
                     {"force_conflict": {}}, {"drop_heartbeats": {"count": "x"}},
                     {"force_conflict": {"id": "t1"}, "bogus": 1}):
            st, resp, _ = srv.http("POST", "/_hp/faults", None, body)
            assert st == 400 and resp["error"] == "bad_request", (body, st, resp)
        st, resp, _ = srv.http("GET", "/_hp/faults")
        assert st == 200 and resp["faults"] == [], (st, resp)
        # Nothing was armed: writes go through.
        st, t, _ = srv.put("t1", tok, {"title": "x"})
        assert st == 200, t
        st, t, _ = srv.put("t1", tok, {"title": "y"}, base=1)
        assert st == 200, t
        assert srv.stop() == 0


run_tests([test_admin_off_by_default, test_fail_requests_and_retry_after,
           test_force_conflict_and_state, test_drop_heartbeats, test_bad_fault_requests])
