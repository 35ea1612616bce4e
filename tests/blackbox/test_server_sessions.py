#!/usr/bin/env python3
"""Sessions, scoped faults, the journal and verify (issue 10, points 1-3),
every admin endpoint black-box: isolated worlds on one server (data,
faults, journal, log lines), create / list / get / tokens / reset /
restart / delete; faults scoped to a household / user / device, listed
with their counts, cleared one or all, expiring; the new faults
(refuse_upgrade, hold_response, inject, close_stream, restart); strict
bodies (unknown key, wrong type, huge count, negative duration: 400 naming
the key, nothing changed); the journal (requests without the token,
frames both ways, who) and POST /_hp/verify (count, order)."""

import re
import time

from hpbb import API, STREAM, WSRefused, Env, raw_http, run_tests, wait_until

SCALE = 0.1


def admin(srv, method, path, body=None, expect=200):
    st, resp, h = srv.http(method, path, None, body)
    assert st == expect, (method, path, body, st, resp)
    return resp


def mk_session(srv, **kw):
    s = admin(srv, "POST", "/_hp/sessions", kw, 201)
    assert s["base_url"] == "/s/%s/api/v0.2" % s["id"], s
    return s


def token(srv, sid, user, hh, dev=None):
    b = {"user": user, "household": hh}
    if dev:
        b["device"] = dev
    return admin(srv, "POST", "/_hp/sessions/%s/tokens" % sid, b)["token"]


def put(srv, sid, tid, tok, title, base=0):
    prefix = "/s/%s" % sid if sid else ""
    return srv.http("PUT", "%s%s/%s" % (prefix, API, tid), tok,
                    {"base_revision": base, "task": {"title": title}})


def state(srv, sid):
    return admin(srv, "GET", "/_hp/state?session=" + sid)


def faults(srv, sid):
    return admin(srv, "GET", "/_hp/faults?session=" + sid)["faults"]


def test_sessions_are_isolated():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        a = mk_session(srv, id="team-a")
        b = mk_session(srv)                      # generated id
        assert b["id"] != "team-a" and a["jwt_secret"] != b["jwt_secret"], (a, b)
        ta = token(srv, "team-a", "alice", "home", "web")
        tb = token(srv, b["id"], "alice", "home", "phone")
        # Same household name in both worlds: separate data and revisions.
        st, t, _ = put(srv, "team-a", "t1", ta, "from A")
        assert st == 200 and t["revision"] == 1, t
        st, t, _ = put(srv, b["id"], "t1", tb, "from B")
        assert st == 200 and t["revision"] == 1, t
        st, t, _ = put(srv, b["id"], "t2", tb, "B again")
        assert t["revision"] == 2, t
        sa, sb = state(srv, "team-a"), state(srv, b["id"])
        assert sa["households"]["home"]["tasks"]["t1"]["title"] == "from A", sa
        assert sb["households"]["home"]["revision"] == 2 and "t2" not in \
            sa["households"]["home"]["tasks"], (sa, sb)
        assert state(srv, "default")["households"] == {}, "default session touched"
        # A token of one session is refused in another and in the default one.
        st, body, _ = srv.http("GET", "/s/%s%s?since=0" % (b["id"], API), ta)
        assert st == 401, (st, body)
        st, body, _ = srv.http("GET", API + "?since=0", ta)
        assert st == 401, (st, body)
        # Streams: an event of A never reaches B.
        wa = env.track(srv.ws(ta, path="/s/team-a" + STREAM))
        wb = env.track(srv.ws(tb, path="/s/%s%s" % (b["id"], STREAM)))
        wa.hello(0)
        wb.hello(0)
        wa.start_heartbeats(0.5)
        wb.start_heartbeats(0.5)
        ma, mb = wa.mark(), wb.mark()
        put(srv, "team-a", "t3", ta, "only A")
        wa.wait_event("TASK_UPDATED", "t3", since=ma)
        put(srv, b["id"], "t4", tb, "only B")
        wb.wait_event("TASK_UPDATED", "t4", since=mb)
        assert not any(m.get("entity_id") == "t4" for m in wa.messages), wa.messages
        assert not any(m.get("entity_id") == "t3" for m in wb.messages), wb.messages
        # Unknown session prefix: 404 on REST and on the stream.
        st, body, _ = srv.http("GET", "/s/nope%s?since=0" % API, ta)
        assert st == 404 and body["error"] == "not_found", (st, body)
        try:
            srv.ws(ta, path="/s/nope" + STREAM)
            raise AssertionError("upgrade to an unknown session accepted")
        except WSRefused as e:
            assert e.status == 404, e.status
        # Log lines carry session, household and device.
        lines = srv.log_lines("INFO", "path=/api/v0.2/tasks/t1")
        la = [l for l in lines if "session=team-a" in l]
        lb = [l for l in lines if "session=%s" % b["id"] in l]
        assert la and lb and all("hh=home dev=web" in l for l in la), lines
        assert all("dev=phone" in l for l in lb), lines
        # List, get.
        ids = [s["id"] for s in admin(srv, "GET", "/_hp/sessions")["sessions"]]
        assert ids == ["default", "team-a", b["id"]], ids
        g = admin(srv, "GET", "/_hp/sessions/team-a")
        assert g["households"] == ["home"] and len(g["connections"]) == 1, g
        # Delete: its sockets are closed 1001, its data is gone, B untouched.
        admin(srv, "DELETE", "/_hp/sessions/team-a")
        assert wa.wait_close() == 1001
        admin(srv, "GET", "/_hp/sessions/team-a", None, 404)
        st, body, _ = put(srv, "team-a", "t1", ta, "gone")
        assert st == 404, (st, body)
        assert state(srv, b["id"])["households"]["home"]["revision"] == 3
        # Recreating the id gives an empty world.
        mk_session(srv, id="team-a")
        assert state(srv, "team-a")["households"] == {}
        assert srv.stop() == 0


def test_session_bodies_and_lifecycle():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        for body, key in (({"idd": "x"}, 'did you mean "id"'), ({"id": "Bad Id"}, "id"),
                          ({"time_scale": -1}, "time_scale"), ({"time_scale": "fast"}, "time_scale"),
                          ({"policy": {"lock_tll": "10s"}}, "lock_tll"), ({"policy": []}, "policy"),
                          ({"jwt_secret": ""}, "jwt_secret")):
            st, resp, _ = srv.http("POST", "/_hp/sessions", None, body)
            assert st == 400 and key in resp["message"], (body, st, resp)
        st, resp, _ = srv.http("POST", "/_hp/sessions", None, "[1]")
        assert st == 400, resp
        assert len(admin(srv, "GET", "/_hp/sessions")["sessions"]) == 1   # nothing created
        s = mk_session(srv, id="fast", time_scale=0.05, policy={"lock_ttl": "20s"},
                       jwt_secret="team-secret")
        assert s["jwt_secret"] == "team-secret" and s["time_scale"] == 0.05, s
        admin(srv, "POST", "/_hp/sessions", {"id": "fast"}, 409)
        # Its own time scale: READY announces its heartbeat (30 s x 0.05).
        tok = token(srv, "fast", "bob", "flat")
        w = env.track(srv.ws(tok, path="/s/fast" + STREAM))
        _, ready = w.hello(0)
        assert ready["heartbeat_interval_ms"] == 1500, ready
        w2 = env.track(srv.ws(srv.token("carol", "home")))
        _, ready2 = w2.hello(0)
        w2.start_heartbeats(0.5)
        assert ready2["heartbeat_interval_ms"] == 3000, ready2
        for body in ({"user": "u"}, {"user": "u", "household": "h", "ttl_s": 0},
                     {"user": "u", "household": "h", "dev": "x"}, {"user": 1, "household": "h"}):
            st, resp, _ = srv.http("POST", "/_hp/sessions/fast/tokens", None, body)
            assert st == 400, (body, st, resp)
        put(srv, "fast", "t1", tok, "one")
        # restart: sockets closed 1001, data kept.
        admin(srv, "POST", "/_hp/sessions/fast/restart")
        assert w.wait_close() == 1001
        assert state(srv, "fast")["households"]["flat"]["revision"] == 1
        assert not w2.closed, "a restart of one session closed another's socket"
        # reset: empty world, same secret.
        w = env.track(srv.ws(tok, path="/s/fast" + STREAM))
        w.hello(0)
        admin(srv, "POST", "/_hp/sessions/fast/reset")
        assert w.wait_close() == 1001
        assert state(srv, "fast")["households"] == {}
        st, t, _ = put(srv, "fast", "t1", tok, "after reset")
        assert st == 200 and t["revision"] == 1, t
        admin(srv, "POST", "/_hp/sessions/fast/reset", {"x": 1}, 400)
        admin(srv, "GET", "/_hp/sessions/fast/reset", None, 405)
        admin(srv, "DELETE", "/_hp/sessions/default", None, 400)
        admin(srv, "DELETE", "/_hp/sessions/nope", None, 404)
        # The default session can be reset too (the --db store is emptied).
        put(srv, None, "d1", srv.token("carol", "home"), "default data")
        admin(srv, "POST", "/_hp/sessions/default/reset")
        assert state(srv, "default")["households"] == {}
        assert srv.stop() == 0


def test_scoped_faults_list_clear_expire():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        mk_session(srv, id="a")
        mk_session(srv, id="b")
        ta_web = token(srv, "a", "alice", "home", "web")
        ta_phone = token(srv, "a", "alice", "home", "phone")
        ta_other = token(srv, "a", "bob", "other")
        tb = token(srv, "b", "alice", "home", "web")
        r = admin(srv, "POST", "/_hp/faults?session=a", {
            "fail_requests": {"status": 503, "count": 2, "device": "web", "method": "PUT"},
            "force_conflict": {"id": "t1", "household": "home"}})
        assert [f["kind"] for f in r["armed"]] == ["fail_requests", "force_conflict"], r
        listed = faults(srv, "a")
        assert [(f["kind"], f["left"]) for f in listed] == [("fail_requests", 2),
                                                            ("force_conflict", 1)], listed
        assert listed[0]["scope"] == {"device": "web"}, listed
        assert faults(srv, "b") == [] and faults(srv, "default") == []
        # Out of scope: another device, another household, another session.
        st, t, _ = put(srv, "a", "t1", ta_other, "other hh")
        assert st == 200, (st, t)
        st, t, _ = put(srv, "b", "t9", tb, "session b")
        assert st == 200, (st, t)
        st, t, _ = put(srv, "a", "t1", ta_phone, "phone")
        assert st == 200, (st, t)
        st, body, _ = put(srv, "a", "t1", ta_phone, "phone again", base=1)
        assert st == 409 and body["current"]["title"] == "phone", (st, body)   # force_conflict
        st, body, _ = put(srv, "a", "t2", ta_web, "web")
        assert st == 503, (st, body)
        assert [(f["kind"], f["left"]) for f in faults(srv, "a")] == [("fail_requests", 1)]
        # Clear one, clear all.
        fid = faults(srv, "a")[0]["id"]
        admin(srv, "DELETE", "/_hp/faults/%d?session=a" % fid)
        admin(srv, "DELETE", "/_hp/faults/%d?session=a" % fid, None, 404)
        st, t, _ = put(srv, "a", "t2", ta_web, "web")
        assert st == 200, (st, t)
        admin(srv, "POST", "/_hp/faults?session=a", {"fail_requests": {"status": 500},
                                                     "drop_heartbeats": {"user": "zed"}})
        assert admin(srv, "DELETE", "/_hp/faults?session=a")["cleared"] == 2
        assert faults(srv, "a") == []
        # Expiry: a fault for a user who never connects goes away.
        admin(srv, "POST", "/_hp/faults?session=a", {"drop_heartbeats": {"user": "zed",
                                                                          "expires_in": 1}})
        assert faults(srv, "a")[0]["expires_in_ms"] <= 1000
        wait_until(lambda: faults(srv, "a") == [], what="the fault to expire")
        assert srv.log_lines("INFO", "fault_expired"), srv.stderr_text()[-2000:]
        # The /s/{id}/_hp prefix names the session too.
        admin(srv, "POST", "/s/b/_hp/faults", {"force_conflict": {"id": "t9"}})
        assert len(faults(srv, "b")) == 1 and faults(srv, "a") == []
        admin(srv, "GET", "/_hp/faults?session=nope", None, 404)
        assert srv.stop() == 0


def test_strict_fault_bodies():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        tok = srv.token("alice", "home")
        bad = [
            ({"fail_requests": {"path": "/api", "status": 503}}, 'did you mean "path_prefix"'),
            ({"drop_heartbeats": {"device": "web", "cuont": 2}}, 'did you mean "count"'),
            ({"fail_request": {"status": 503}}, 'did you mean "fail_requests"'),
            ({"fail_requests": {"status": "503"}}, '"status" must be an integer'),
            ({"fail_requests": {"status": 503, "count": 0}}, '"count" must be 1..1000000'),
            ({"fail_requests": {"status": 503, "count": 10 ** 9}}, '"count"'),
            ({"fail_requests": {"status": 503, "expires_in": -5}}, '"expires_in"'),
            ({"hold_response": {"seconds": -1}}, '"seconds"'),
            ({"hold_response": {"seconds": 100000}}, '"seconds"'),
            ({"hold_response": {}}, '"seconds" is required'),
            ({"refuse_upgrade": {"status": 200}}, '"status"'),
            ({"close_stream": {"code": 1005}}, "cannot be sent"),
            ({"inject": {"type": "lower case"}}, '"type"'),
            ({"force_conflict": {"id": "bad id!"}}, '"id"'),
            ({"restart": {"now": True}}, "restart"),
            ({"fail_requests": {"status": 503, "user": 7}}, '"user" must be a string'),
            ({"fail_requests": [1]}, "expected a JSON object"),
            ({}, "expected a JSON object"),
        ]
        for body, want in bad:
            st, resp, _ = srv.http("POST", "/_hp/faults", None, body)
            assert st == 400 and want in resp["message"], (body, st, resp)
        # A good fault next to a bad one arms nothing.
        st, resp, _ = srv.http("POST", "/_hp/faults", None, {
            "fail_requests": {"status": 503}, "force_conflict": {"idd": "t1"}})
        assert st == 400 and 'did you mean "id"' in resp["message"], resp
        st, resp, _ = srv.http("POST", "/_hp/faults", None, "{oops")
        assert st == 400, resp
        st, resp, _ = srv.http("POST", "/_hp/faults", None, None)
        assert st in (400, 411), resp
        assert faults(srv, "default") == []
        st, t, _ = srv.put("t1", tok, {"title": "unaffected"})
        assert st == 200, t
        # Immediate faults need a live connection in scope: 404, nothing armed.
        st, resp, _ = srv.http("POST", "/_hp/faults", None, {
            "inject": {"type": "RESYNC_REQUIRED", "user": "ghost"},
            "fail_requests": {"status": 503}})
        assert st == 404 and "no live connection" in resp["message"], (st, resp)
        assert faults(srv, "default") == []
        # Bad journal / verify queries and bodies.
        for path in ("/_hp/journal?since=-1", "/_hp/journal?limit=0", "/_hp/journal?kind=x",
                     "/_hp/journal?devcie=web"):
            admin(srv, "GET", path, None, 400)
        for body in ({"pattern": {"methd": "PUT"}}, {"pattern": {}}, {"sequence": []},
                     {"pattern": {"kind": "http"}, "count": -1}, {"patern": {}},
                     {"pattern": {"kind": "http"}, "sequence": [{"kind": "http"}]}):
            admin(srv, "POST", "/_hp/verify", body, 400)
        assert srv.stop() == 0


def test_new_faults():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        mk_session(srv, id="a")
        tw = token(srv, "a", "alice", "home", "web")
        tp = token(srv, "a", "alice", "home", "phone")
        path = "/s/a" + STREAM
        # refuse_upgrade: only the scoped device, with the chosen status.
        admin(srv, "POST", "/_hp/faults?session=a",
              {"refuse_upgrade": {"status": 429, "device": "web"}})
        wp = env.track(srv.ws(tp, path=path))
        wp.hello(0)
        try:
            srv.ws(tw, path=path)
            raise AssertionError("refuse_upgrade did not refuse")
        except WSRefused as e:
            assert e.status == 429, e.status
        ww = env.track(srv.ws(tw, path=path))          # used up: accepted again
        ww.hello(0)
        ww.start_heartbeats(0.5)
        wp.start_heartbeats(0.5)
        # inject RESYNC_REQUIRED to one device; an unknown type to another.
        m1, m2 = ww.mark(), wp.mark()
        r = admin(srv, "POST", "/_hp/faults?session=a",
                  {"inject": {"type": "RESYNC_REQUIRED", "device": "web"}})
        assert r["armed"] == [{"kind": "inject", "applied": 1}], r
        ww.wait_type("RESYNC_REQUIRED", since=m1)
        _, ready = ww.hello(0)                          # a HELLO is welcome again
        admin(srv, "POST", "/_hp/faults?session=a", {"inject": {"type": "FUTURE_EVENT",
                                                                "device": "phone"}})
        wp.wait_event("FUTURE_EVENT", since=m2)
        assert not any(m.get("event_type") == "FUTURE_EVENT" for m in ww.messages)
        # hold_response: applied, answered later.
        admin(srv, "POST", "/_hp/faults?session=a", {"hold_response": {"seconds": 1,
                                                                       "method": "PUT"}})
        t0 = time.monotonic()
        st, t, _ = put(srv, "a", "h1", tw, "held")
        assert st == 200 and time.monotonic() - t0 >= 0.9, (st, time.monotonic() - t0)
        # close_stream with a chosen code, to one device.
        admin(srv, "POST", "/_hp/faults?session=a", {"close_stream": {"code": 4321,
                                                                      "device": "phone"}})
        assert wp.wait_close() == 4321
        # restart as a fault: every socket of the session closed 1001, data kept.
        admin(srv, "POST", "/_hp/faults?session=a", {"restart": {}})
        assert ww.wait_close() == 1001
        assert state(srv, "a")["households"]["home"]["tasks"]["h1"]["title"] == "held"
        assert srv.stop() == 0


def test_journal_and_verify():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        mk_session(srv, id="a")
        mk_session(srv, id="b")
        tw = token(srv, "a", "alice", "home", "web")
        tb = token(srv, "b", "bob", "home", "cli")
        w = env.track(srv.ws(tw, path="/s/a" + STREAM))
        w.hello(0)
        put(srv, "a", "t1", tw, "one")
        st, body, _ = put(srv, "a", "t1", tw, "stale")           # 409
        assert st == 409
        put(srv, "b", "x1", tb, "other team")
        j = admin(srv, "GET", "/_hp/journal?session=a")
        kinds = [e["kind"] for e in j["entries"]]
        assert "http" in kinds and "ws_open" in kinds and "ws_in" in kinds \
            and "ws_out" in kinds and "log" in kinds, kinds
        http = [e for e in j["entries"] if e["kind"] == "http"]
        assert [e["status"] for e in http] == [200, 409], http
        assert http[0]["household"] == "home" and http[0]["device"] == "web", http[0]
        assert '"title": "one"' in http[0]["body"] or '"title":"one"' in http[0]["body"], http[0]
        assert http[0]["headers"]["authorization"] == "[REDACTED]", http[0]
        text = str(j)
        assert tw not in text and tw.split(".")[2] not in text, "token in the journal"
        assert "x1" not in text and "bob" not in text, "session b in session a's journal"
        ins = [e for e in j["entries"] if e["kind"] == "ws_in"]
        assert ins[0]["type"] == "HELLO", ins
        outs = [e for e in j["entries"] if e["kind"] == "ws_out"]
        assert any(e.get("event_type") == "TASK_UPDATED" and e.get("revision") == 1
                   for e in outs), outs
        # since / device / kind filters.
        j2 = admin(srv, "GET", "/_hp/journal?session=a&since=%d" % j["next"])
        assert j2["entries"] == [] or all(e["seq"] > j["next"] for e in j2["entries"]), j2
        jd = admin(srv, "GET", "/_hp/journal?session=a&device=nobody")
        assert jd["entries"] == [], jd
        jk = admin(srv, "GET", "/_hp/journal?session=a&kind=ws&limit=2")
        assert len(jk["entries"]) == 2 and all(e["kind"].startswith("ws_")
                                               for e in jk["entries"]), jk
        jb = admin(srv, "GET", "/_hp/journal?session=b")
        assert [e["path"] for e in jb["entries"] if e["kind"] == "http"] == [API + "/x1"], jb
        # verify: count, at_least, order.
        v = admin(srv, "POST", "/_hp/verify?session=a", {
            "pattern": {"kind": "http", "method": "PUT", "path": API + "/*", "status": 409},
            "count": 1})
        assert v["ok"] and v["matched"] == 1, v
        v = admin(srv, "POST", "/_hp/verify?session=b", {
            "pattern": {"kind": "http", "status": 409}})
        assert not v["ok"] and v["matched"] == 0, v
        v = admin(srv, "POST", "/_hp/verify", {"session": "a", "sequence": [
            {"kind": "ws_in", "type": "HELLO"}, {"kind": "http", "status": 200},
            {"kind": "ws_out", "event_type": "TASK_UPDATED"}, {"kind": "http", "status": 409}]})
        assert v["ok"] and v["matched"] == 4, v
        v = admin(srv, "POST", "/_hp/verify?session=a", {"sequence": [
            {"kind": "http", "status": 409}, {"kind": "http", "status": 200}]})
        assert not v["ok"] and v["matched"] == 1, v
        v = admin(srv, "POST", "/_hp/verify?session=a", {
            "pattern": {"kind": "log", "level": "WARNING", "message": "conflict"},
            "at_least": 1, "at_most": 1})
        assert v["ok"], v
        assert srv.stop() == 0


# Every line about a request or a connection (docs/LOG_RECORDS.md).
WHO_LINES = {"request", "ws_open", "ready", "resync_required", "conflict", "idempotent_replay",
             "idempotency_key_reused", "lock", "limit_reached", "fault_applied", "http_refused",
             "ws_close", "ws_closed", "token_refused"}


def log_records(srv):
    """(message, {field: value}) of every server line."""
    out = []
    for l in srv.stderr_text().splitlines():
        parts = l.split(" ", 3)
        if len(parts) < 4 or parts[2] != "fake_server":
            continue
        msg, _, rest = parts[3].partition(" ")
        f = {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S*)', rest)}
        out.append((msg, f, l))
    return out


def test_log_lines_name_session_household_device():
    """Two sessions at once, each driving every kind of line that concerns a
    request or a connection: each line names its session, user, household
    and device (hh=/dev=, as the request line), and none crosses."""
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True,
                         extra_args=["--max-locks-per-user", "1"]).start()
        who = {"sa": ("alice", "hh-a", "web"), "sb": ("bob", "hh-b", "phone")}
        for sid, (user, hh, dev) in who.items():
            mk_session(srv, id=sid)
            tok = token(srv, sid, user, hh, dev)
            pre = "/s/" + sid
            w = env.track(srv.ws(tok, path=pre + STREAM))          # ws_open
            w.send_json({"type": "HELLO", "revision": 99})         # resync_required
            w.wait_type("RESYNC_REQUIRED")
            w.hello(0)                                             # ready
            w.start_heartbeats(0.5)
            k = {"Idempotency-Key": "key-" + sid}
            body = {"base_revision": 0, "task": {"title": "x"}}
            assert srv.http("PUT", pre + API + "/t1", tok, body, k)[0] == 200
            assert srv.http("PUT", pre + API + "/t1", tok, body, k)[0] == 200  # replay
            st = srv.http("PUT", pre + API + "/t2", tok, body, k)[0]            # key reused
            assert st == 422, st
            assert put(srv, sid, "t1", tok, "stale")[0] == 409                 # conflict
            assert srv.http("POST", pre + API + "/t1/lock", tok, {})[0] == 200  # lock
            assert put(srv, sid, "t3", tok, "y")[0] == 200
            st = srv.http("POST", pre + API + "/t3/lock", tok, {})[0]          # limit
            assert st == 429, st
            admin(srv, "POST", "/_hp/faults?session=" + sid,
                  {"fail_requests": {"status": 503, "device": dev}})
            assert put(srv, sid, "t4", tok, "z")[0] == 503                     # fault_applied
            req = ("PUT %s%s/t5 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (pre, API, srv.port, tok))
            assert raw_http(srv.port, req.encode())[0] == 411                  # http_refused
            st = srv.http("GET", pre + API + "?since=0", "not-a-token")[0]     # token_refused
            assert st == 401, st
            admin(srv, "POST", "/_hp/faults?session=" + sid,
                  {"close_stream": {"code": 4321, "device": dev}})          # ws_close
            assert w.wait_close() == 4321
        wait_until(lambda: len([1 for msg, f, _ in log_records(srv)
                                if msg == "ws_closed" and f.get("session")]) == 2,
                   what="both ws_closed lines")
        seen = {}
        for msg, f, line in log_records(srv):
            if msg not in WHO_LINES or "session" not in f:
                continue
            sid = f["session"]
            user, hh, dev = who[sid]
            seen.setdefault(sid, set()).add(msg)
            if msg == "token_refused" or f.get("status") == "401":  # a refused token names nobody
                assert (f["user"], f["hh"], f["dev"]) == ("-", "-", "-"), line
                continue
            assert (f.get("user"), f.get("hh"), f.get("dev")) == (user, hh, dev), line
            other = [x for x in who if x != sid][0]
            assert who[other][1] not in line and who[other][0] not in line, line
        for sid in who:
            assert seen.get(sid) == WHO_LINES, (sid, WHO_LINES - seen.get(sid, set()))
        assert srv.stop() == 0


run_tests([test_sessions_are_isolated, test_session_bodies_and_lifecycle,
           test_scoped_faults_list_clear_expire, test_strict_fault_bodies, test_new_faults,
           test_journal_and_verify, test_log_lines_name_session_household_device])
