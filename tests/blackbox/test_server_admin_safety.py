#!/usr/bin/env python3
"""The admin API is safe to leave on (issue 10, point 4): no CORS headers on
/_hp/* (a cross-origin page can neither read nor arm: Origin refused 403,
the preflight fails), --admin-token (401 with WWW-Authenticate: Bearer),
--admin-listen (a separate address; /_hp/* is 404 on the API address and
the API is 404 on the admin address), a non-loopback admin address without
a token refuses to start (exit 2), a non-loopback Host is refused without a
token (DNS rebinding), unknown endpoints 404 and wrong methods 405 with
Allow, as JSON; every 401 of the API names its scheme."""

import json

from hpbb import API, SECRET, STREAM, WSRefused, Env, free_port, http, run_cli, run_tests

SCALE = 0.1
ARM = {"fail_requests": {"status": 503, "count": 1}}


def no_cors(h):
    return not any(k.startswith("access-control-") for k in h)


def test_no_cors_on_admin():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        tok = srv.token("alice", "home")
        evil = {"Origin": "http://evil.example"}
        # A page of another origin: refused, and nothing armed.
        st, body, h = srv.http("POST", "/_hp/faults", None, ARM, evil)
        assert st == 403 and body["error"] == "forbidden" and no_cors(h), (st, body, h)
        st, body, h = srv.http("GET", "/_hp/state", None, None, evil)
        assert st == 403 and no_cors(h), (st, h)
        # Its preflight fails (no Access-Control-Allow-* at all).
        st, body, h = srv.http("OPTIONS", "/_hp/faults", None, None, dict(
            evil, **{"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}))
        assert st >= 400 and no_cors(h), (st, h)
        st, t, _ = srv.put("t1", tok, {"title": "x"})
        assert st == 200, t                       # the 403 armed nothing
        # Same origin (the page at /_hp/) works, still without CORS headers.
        st, body, h = srv.http("GET", "/_hp/faults", None, None,
                               {"Origin": "http://127.0.0.1:%d" % srv.port})
        assert st == 200 and no_cors(h), (st, body, h)
        # The task API keeps its CORS headers (browser apps use them).
        st, body, h = srv.http("GET", API + "?since=0", tok, None, evil)
        assert st == 200 and h.get("access-control-allow-origin") == "*", h
        # DNS rebinding: a non-loopback Host without a token is refused.
        st, body, h = srv.http("GET", "/_hp/state", None, None, {"Host": "evil.example"})
        assert st == 403, (st, body)
        assert srv.stop() == 0


def test_errors_are_json():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        st, body, _ = srv.http("GET", "/_hp/nope")
        assert st == 404 and body["error"] == "not_found", (st, body)
        st, body, h = srv.http("PUT", "/_hp/faults", None, ARM)
        assert st == 405 and body["error"] == "method_not_allowed", (st, body)
        assert "POST" in h.get("allow", ""), h
        st, body, h = srv.http("DELETE", "/_hp/state")
        assert st == 405 and h.get("allow") == "GET", (st, h)
        st, body, _ = srv.http("GET", "/_hp/faults?sesion=default")
        assert st == 400 and 'did you mean "session"' in body["message"], body
        # 401 of the API names its scheme (REST and the stream upgrade).
        st, body, h = srv.http("GET", API + "?since=0")
        assert st == 401 and h.get("www-authenticate") == "Bearer", (st, h)
        try:
            srv.ws(None, query="token=nope")
            raise AssertionError("upgrade accepted")
        except WSRefused as e:
            assert e.status == 401 and e.headers.get("www-authenticate") == "Bearer", e.headers
        assert srv.stop() == 0


def test_admin_token():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True,
                         extra_args=["--admin-token", "s3cret-admin"]).start()
        st, body, h = srv.http("POST", "/_hp/faults", None, ARM)
        assert st == 401 and h.get("www-authenticate", "").startswith("Bearer"), (st, h)
        assert no_cors(h), h
        st, body, h = srv.http("POST", "/_hp/faults", "wrong", ARM)
        assert st == 401, (st, body)
        tok = srv.token("alice", "home")
        st, t, _ = srv.put("t1", tok, {"title": "x"})
        assert st == 200, t                       # nothing armed by the 401s
        # The token is an admin secret, never a task-API token.
        st, body, _ = srv.http("GET", API + "?since=0", "s3cret-admin")
        assert st == 401, (st, body)
        st, body, _ = srv.http("POST", "/_hp/faults", "s3cret-admin", ARM)
        assert st == 200 and body["armed"][0]["kind"] == "fail_requests", body
        # The page holds no data and is served without the token.
        st, body, h = srv.http("GET", "/_hp/")
        assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
        assert "s3cret-admin" not in srv.stderr_text()
        assert srv.stop() == 0


def test_admin_listen():
    with Env() as env:
        aport = free_port()
        srv = env.server(time_scale=SCALE,
                         extra_args=["--admin-listen", "127.0.0.1:%d" % aport]).start()
        st, body, _ = srv.http("GET", "/_hp/faults")
        assert st == 404 and "--admin-listen" in body["message"], (st, body)
        st, body, h = http(aport, "GET", "/_hp/faults")
        assert st == 200 and body["faults"] == [] and no_cors(h), (st, body)
        st, body, _ = http(aport, "POST", "/_hp/faults", None, ARM)
        assert st == 200, body
        tok = srv.token("alice", "home")
        st, body, _ = srv.http("GET", API + "/t1", tok)
        assert st == 503, (st, body)              # armed on the admin address, seen on the API
        st, body, _ = http(aport, "GET", API + "?since=0", tok)
        assert st == 404, (st, body)              # the admin address serves only /_hp/
        assert any("admin_listening" in l and str(aport) in l for l in srv.log_lines("INFO")), \
            srv.stderr_text()
        assert srv.stop() == 0


def test_non_loopback_needs_token():
    for args in (["--admin", "--listen", "0.0.0.0:0"],
                 ["--admin", "--listen", "*:0"],
                 ["--admin-listen", "0.0.0.0:0"],
                 ["--admin-listen", "[::]:0"],
                 ["--admin-token", "x"],                          # token without admin
                 ["--admin", "--admin-token", ""],
                 ["--admin", "--admin-token", "a", "--admin-token-file", "/etc/hostname"]):
        rc, out, err = run_cli(["--jwt-secret", SECRET, "--db", ":memory:"] + args, timeout=20)
        assert rc == 2, (args, rc, err)
        assert err.strip(), args
    rc, out, err = run_cli(["--jwt-secret", SECRET, "--db", ":memory:", "--admin", "--listen", "0.0.0.0:0"])
    assert "--admin-token" in err, err
    # With a token, a non-loopback admin address starts.
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True, extra_args=[
            "--admin-token", "tok", "--admin-listen", "0.0.0.0:%d" % free_port()]).start()
        assert srv.stop() == 0


run_tests([test_no_cors_on_admin, test_errors_are_json, test_admin_token, test_admin_listen,
           test_non_loopback_needs_token])
