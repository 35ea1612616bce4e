#!/usr/bin/env python3
"""A-1, WS-1, A-2, A-3, A-4 on real sockets: every bad token gets HTTP 401
with a JSON reason, on REST and on the WebSocket upgrade (no socket
opened); a live connection whose token expires is closed with 4001;
households are isolated; no token ever reaches a log line."""

import time

from hpbb import (API, Env, SECRET, STREAM, WSRefused, forge_jwt, has_secret, raw_http,
                  run_tests)


def bad_tokens():
    now = int(time.time())
    ok = {"sub": "alice", "hh": "home", "iat": now, "exp": now + 3600}
    return [
        ("missing", None),
        ("empty", ""),
        ("garbage", "not-a-token"),
        ("bad signature", forge_jwt(ok, secret="wrong-secret")),
        ("alg none", forge_jwt(ok, alg="none")),
        ("alg none, HS256 signature", forge_jwt(ok, header={"alg": "none", "typ": "JWT"})),
        ("HS512", forge_jwt(ok, alg="HS512")),
        ("expired", forge_jwt(dict(ok, iat=now - 7200, exp=now - 3600))),
        ("nbf in the future", forge_jwt(dict(ok, nbf=now + 3600))),
        ("iat in the future", forge_jwt(dict(ok, iat=now + 3600))),
        ("no exp", forge_jwt({"sub": "alice", "hh": "home", "iat": now})),
        ("no hh", forge_jwt({"sub": "alice", "iat": now, "exp": now + 3600})),
        ("no sub", forge_jwt({"hh": "home", "iat": now, "exp": now + 3600})),
    ]


def check_401(what, status, body):
    assert status == 401, "%s: status %s body %r" % (what, status, body)
    assert isinstance(body, dict) and body.get("error") == "unauthorized", (what, body)
    assert isinstance(body.get("message"), str) and body["message"], (what, body)


def test_rest_refusals():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        good = srv.token("alice", "home")
        st, body, _ = srv.put("t1", good, {"title": "before"})
        assert st == 200, body
        for what, tok in bad_tokens():
            for method, path, payload in (
                    ("GET", API + "?since=0", None),
                    ("GET", API + "/t1", None),
                    ("PUT", API + "/t1", {"base_revision": 1, "task": {"title": "evil"}}),
                    ("DELETE", API + "/t1?base_revision=1", None),
                    ("POST", API + "/t1/lock", None)):
                st, body, hdrs = srv.http(method, path, tok, payload)
                check_401("%s %s with %s" % (method, path, what), st, body)
                assert hdrs.get("content-type", "").startswith("application/json"), hdrs
        # Wrong scheme ("Basic") and a bare token without "Bearer ".
        for auth in ("Basic " + good, good):
            st, body, _ = srv.http("GET", API + "?since=0", headers={"Authorization": auth})
            check_401("Authorization: %s..." % auth[:6], st, body)
        # Nothing was applied.
        st, body, _ = srv.http("GET", API + "/t1", good)
        assert st == 200 and body["title"] == "before" and body["revision"] == 1, body
        assert srv.stop() == 0
        text = srv.stderr_text()
        assert " WARNING fake_server token_refused" in text, text[-2000:]
        assert not has_secret(text), "a token leaked into the log"


def test_upgrade_refusals():
    # checks: WS-1.2 WS-1.3
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        for what, tok in bad_tokens():
            q = None if tok is None else "token=" + tok
            try:
                w = srv.ws(query=q if q is not None else "")
                w.abort()
                raise AssertionError("%s: upgrade accepted" % what)
            except WSRefused as e:
                check_401("upgrade with " + what, e.status, e.json())
        # A good token on a wrong path is not a stream.
        try:
            srv.ws(srv.token("alice", "home"), path=API + "/streamx").abort()
            raise AssertionError("upgrade on a wrong path accepted")
        except WSRefused as e:
            assert e.status in (400, 404), e.status
        # The server keeps serving: a good token still connects.
        w = env.track(srv.ws(srv.token("alice", "home")))
        _, ready = w.hello(0)
        assert ready["type"] == "READY", ready
        w.close()
        assert srv.stop() == 0
        assert not has_secret(srv.stderr_text()), "a token leaked into the log"


def test_token_expiry_closes_4001():
    # checks
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home", ttl="3s")
        w = env.track(srv.ws(tok))
        w.hello(0)
        w.start_heartbeats(0.5)        # stay alive: only the token may end it
        t0 = time.monotonic()
        code = w.wait_close(timeout=30)
        assert code == 4001, code
        assert time.monotonic() - t0 < 25
        assert srv.stop() == 0


def test_households_isolated():
    """A-3: bob in another household sees no task, event or lock of home."""
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        alice = srv.token("alice", "home")
        carol = srv.token("carol", "away")
        wa = env.track(srv.ws(alice))
        wa.hello(0)
        wc = env.track(srv.ws(carol))
        wc.hello(0)
        wa.start_heartbeats(0.5)
        wc.start_heartbeats(0.5)
        st, body, _ = srv.put("t1", alice, {"title": "home only"})
        assert st == 200, body
        st, body, _ = srv.http("POST", API + "/t1/lock", alice)
        assert st == 200, body
        wa.wait_event("TASK_UPDATED", "t1")
        wa.wait_event("LOCK_REFRESHED", "t1")
        # carol: nothing in her list, 404 on the id, her own t1 is separate.
        st, body, _ = srv.http("GET", API + "?since=0", carol)
        assert st == 200 and body["tasks"] == [] and body["revision"] == 0, body
        st, body, _ = srv.http("GET", API + "/t1", carol)
        assert st == 404 and body["error"] == "not_found", body
        st, body, _ = srv.put("t1", carol, {"title": "away"})
        assert st == 200 and body["revision"] == 1, body          # her own counter
        wc.wait_event("TASK_UPDATED", "t1")
        assert not any(m.get("payload", {}).get("title") == "home only" for m in wc.messages)
        assert not any(m.get("event_type") == "LOCK_REFRESHED" for m in wc.messages)
        assert not any(m.get("payload", {}).get("title") == "away" for m in wa.messages)
        assert srv.stop() == 0


def test_query_token_redacted_in_logs():
    """A-4: a token in the query of a REST URL never reaches a log line."""
    # checks: 
    with Env() as env:
        srv = env.server(time_scale=0.1, log_level="debug").start()
        tok = srv.token("alice", "home")
        raw_http(srv.port, ("GET %s?since=0&token=%s HTTP/1.1\r\nHost: x\r\n"
                            "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                            % (API, tok, tok)).encode())
        try:
            srv.ws(tok + "x").abort()
        except WSRefused:
            pass
        assert srv.stop() == 0
        assert not has_secret(srv.stderr_text()), srv.stderr_text()[-3000:]


run_tests([test_rest_refusals, test_upgrade_refusals, test_token_expiry_closes_4001,
           test_households_isolated, test_query_token_redacted_in_logs])
