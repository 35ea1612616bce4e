#!/usr/bin/env python3
"""REST on real sockets: PUT/GET/DELETE, 409 with the current task and its
WARNING line (CF-4, no token in any line: A-4), Idempotency-Key (one
revision for a repeated key), bad input (400/404/405/411/413 with JSON
error bodies, nothing applied, the server keeps serving), time values
verbatim (C-4), CORS for browsers, keep-alive connections."""

import json
import re
import socket

from hpbb import API, Env, has_secret, parse_http_response, run_tests

DUE = "2026-11-25T18:00:00+03:00"


def err_body(what, st, body, status, code):
    assert st == status, "%s: status %s (want %s) body %r" % (what, st, status, body)
    assert isinstance(body, dict) and body.get("error") == code, (what, body)
    assert isinstance(body.get("message"), str), (what, body)


def test_put_get_delete_roundtrip():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        st, t, hdrs = srv.put("t1", tok, {"title": "Milk", "due_at": DUE, "notes": "2 l",
                                          "revision": 77, "updated_by": "mallory",
                                          "unknown_field": 1})
        assert st == 200, t
        assert hdrs["content-type"].startswith("application/json"), hdrs
        assert t["id"] == "t1" and t["title"] == "Milk" and t["due_at"] == DUE, t
        assert t["revision"] == 1 and t["updated_by"] == "alice", t   # server sets these
        assert "unknown_field" not in t and t["deleted"] is False, t
        st, g, _ = srv.http("GET", API + "/t1", tok)
        assert st == 200 and g == t, (g, t)
        st, lst, _ = srv.http("GET", API + "?since=0", tok)
        assert st == 200 and lst["revision"] == 1 and lst["tasks"] == [t], lst
        st, lst, _ = srv.http("GET", API + "?since=1", tok)
        assert st == 200 and lst["tasks"] == [], lst
        # DELETE needs base_revision; with it: a tombstone.
        st, body, _ = srv.http("DELETE", API + "/t1", tok)
        err_body("DELETE without base_revision", st, body, 400, "bad_request")
        st, d, _ = srv.http("DELETE", API + "/t1?base_revision=1", tok)
        assert st == 200 and d["deleted"] is True and d["revision"] == 2, d
        st, lst, _ = srv.http("GET", API + "?since=1", tok)
        assert [x["id"] for x in lst["tasks"]] == ["t1"] and lst["tasks"][0]["deleted"], lst
        # Creating over a tombstone with base 0: 409.
        st, body, _ = srv.put("t1", tok, {"title": "again"})
        assert st == 409, body
        assert srv.stop() == 0


def test_conflict_409_and_warning():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        alice = srv.token("alice", "home")
        bob = srv.token("bob", "home")
        st, t, _ = srv.put("t1", alice, {"title": "A"})
        st, t2, _ = srv.put("t1", alice, {"title": "A2"}, base=1)
        assert st == 200 and t2["revision"] == 2, t2
        # bob writes on base 1: the current version comes back with the 409.
        st, body, _ = srv.put("t1", bob, {"title": "B"}, base=1, idem="bob-1")
        assert st == 409, body
        assert body["error"] == "conflict" and body["current"]["title"] == "A2", body
        assert body["current"]["revision"] == 2, body
        # Nothing applied.
        st, g, _ = srv.http("GET", API + "/t1", alice)
        assert g["title"] == "A2" and g["revision"] == 2, g
        # A retry with the same key after the merge is applied (409s are not
        # stored as idempotent results).
        st, ok, _ = srv.put("t1", bob, {"title": "B"}, base=2, idem="bob-1")
        assert st == 200 and ok["revision"] == 3 and ok["title"] == "B", ok
        # DELETE with a stale base: 409 too.
        st, body, _ = srv.http("DELETE", API + "/t1?base_revision=1", bob)
        assert st == 409 and body["current"]["revision"] == 3, body
        # PUT with base > 0 on an unknown id: 404.
        st, body, _ = srv.put("nope", bob, {"title": "x"}, base=3)
        err_body("PUT base>0 unknown id", st, body, 404, "not_found")
        assert srv.stop() == 0
        # CF-4: one WARNING per 409 sent, naming entity, base, current, user.
        w = srv.log_lines("WARNING", " conflict ")
        assert len(w) == 2, w
        assert re.search(r"entity=task/t1 base=1 current=2 user=bob", w[0]), w[0]
        assert re.search(r"entity=task/t1 base=1 current=3 user=bob", w[1]), w[1]
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING fake_server conflict ",
                        w[0]), w[0]
        text = srv.stderr_text()
        assert not has_secret(text), "a token leaked into stderr"
        assert alice not in text and bob not in text


def test_idempotency():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        w = env.track(srv.ws(tok))
        w.hello(0)
        w.start_heartbeats(0.5)
        st, a, _ = srv.put("t1", tok, {"title": "once"}, idem="m-1")
        assert st == 200 and a["revision"] == 1, a
        # Same request again: the first result, nothing applied.
        st, b, _ = srv.put("t1", tok, {"title": "once"}, idem="m-1")
        assert st == 200 and b == a, (a, b)
        # Same key, another body: 422, nothing applied (Q-3, IETF draft).
        st, b, _ = srv.put("t1", tok, {"title": "twice"}, idem="m-1")
        err_body("key reused", st, b, 422, "idempotency_key_reused")
        st, b, _ = srv.put("t1", tok, {"title": "thrice"}, base=1, idem="m-1")
        err_body("key reused", st, b, 422, "idempotency_key_reused")
        st, lst, _ = srv.http("GET", API + "?since=0", tok)
        assert lst["revision"] == 1 and lst["tasks"][0]["title"] == "once", lst
        # Another key is another write.
        st, c, _ = srv.put("t1", tok, {"title": "second"}, base=1, idem="m-2")
        assert st == 200 and c["revision"] == 2, c
        # One TASK_UPDATED per applied write.
        w.wait_event("TASK_UPDATED", "t1", pred=lambda m: m["revision"] == 2)
        revs = [m["revision"] for m in w.messages if m.get("event_type") == "TASK_UPDATED"]
        assert revs == [1, 2], revs
        assert srv.stop() == 0


def test_idempotency_key_bound_to_request():
    """Q-3 / issue 11: a key is bound to method, path and body.  Before, a
    PUT to t2 with t1's key answered 200 with t1 (t2 never created) and a
    DELETE with a PUT's key answered 200 and deleted nothing."""
    # checks
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        w = env.track(srv.ws(tok))
        w.hello(0)
        w.start_heartbeats(0.5)
        st, a, _ = srv.put("t1", tok, {"title": "A", "notes": "n"}, idem="k-a")
        assert st == 200 and a["id"] == "t1", a
        # The same request re-serialized (other key order and spacing): a replay.
        body = '{ "task" : {"notes": "n", "title": "A"}, "base_revision": 0 }'
        st, b, _ = srv.http("PUT", API + "/t1", tok, body, {"Idempotency-Key": "k-a"})
        assert st == 200 and b == a, (a, b)
        st, b, _ = srv.put("t2", tok, {"title": "A", "notes": "n"}, idem="k-a")
        err_body("PUT t2 with t1's key", st, b, 422, "idempotency_key_reused")
        assert "PUT /api/v0.2/tasks/t1" in b["message"], b
        st, b, _ = srv.http("GET", API + "/t2", tok)
        assert st == 404, b
        st, b, _ = srv.http("DELETE", API + "/t1?base_revision=1", tok,
                            headers={"Idempotency-Key": "k-a"})
        err_body("DELETE with a PUT's key", st, b, 422, "idempotency_key_reused")
        st, g, _ = srv.http("GET", API + "/t1", tok)
        assert st == 200 and g == a and g["deleted"] is False, g
        # Nothing applied: revision 1, one event; the server keeps serving.
        st, lst, _ = srv.http("GET", API + "?since=0", tok)
        assert lst["revision"] == 1, lst
        st, c, _ = srv.put("t2", tok, {"title": "B"}, idem="k-b")
        assert st == 200 and c["revision"] == 2 and c["id"] == "t2", c
        w.wait_event("TASK_UPDATED", "t2")
        revs = [m["revision"] for m in w.messages if m.get("event_type") == "TASK_UPDATED"]
        assert revs == [1, 2], revs
        assert srv.stop() == 0
        log = open(srv.stderr_path()).read()
        assert log.count("idempotency_key_reused") == 2, log


def test_bad_input():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        auth = "Authorization: Bearer %s\r\n" % tok
        put = "PUT %s/t1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s" % (API, auth)
        # 411: a body without Content-Length (chunked).
        st, h, b = srv.raw_http((put + "Transfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n0\r\n\r\n").encode())
        err_body("chunked PUT", st, json.loads(b), 411, "length_required")
        # 411: no Content-Length at all.
        st, h, b = srv.raw_http((put + "\r\n").encode())
        err_body("PUT without Content-Length", st, json.loads(b), 411, "length_required")
        # 413: over 1 MiB (the body is read and dropped; the answer is JSON).
        big = b'{"base_revision":0,"task":{"title":"' + b"x" * (1 << 20) + b'"}}'
        st, h, b = srv.raw_http((put + "Content-Length: %d\r\n\r\n" % len(big)).encode() + big)
        err_body("PUT over 1 MiB", st, json.loads(b), 413, "payload_too_large")
        # 400s: malformed JSON, wrong types, bad ids, a time without offset.
        bad = [
            ("malformed JSON", API + "/t1", "{not json"),
            ("not an object", API + "/t1", "[]"),
            ("no task", API + "/t1", {"base_revision": 0}),
            ("base_revision a string", API + "/t1", {"base_revision": "0", "task": {}}),
            ("title a number", API + "/t1", {"base_revision": 0, "task": {"title": 5}}),
            ("done a string", API + "/t1", {"base_revision": 0, "task": {"done": "yes"}}),
            ("naked local time", API + "/t1",
             {"base_revision": 0, "task": {"due_at": "2026-11-25T18:00:00"}}),
            ("not a time", API + "/t1", {"base_revision": 0, "task": {"remind_at": "soon"}}),
            ("bad id chars", API + "/bad%20id", {"base_revision": 0, "task": {}}),
            ("id too long", API + "/" + "a" * 65, {"base_revision": 0, "task": {}}),
            ("negative base", API + "/t1", {"base_revision": -1, "task": {}}),
        ]
        for what, path, body in bad:
            st, resp, _ = srv.http("PUT", path, tok, body)
            assert st in (400, 404), (what, st, resp)
            err_body(what, st, resp, st, "bad_request" if st == 400 else "not_found")
        st, resp, _ = srv.http("GET", API + "?since=abc", tok)
        err_body("since=abc", st, resp, 400, "bad_request")
        st, resp, _ = srv.http("GET", API + "/missing", tok)
        err_body("unknown id", st, resp, 404, "not_found")
        st, resp, _ = srv.http("GET", "/elsewhere", tok)
        err_body("unknown path", st, resp, 404, "not_found")
        st, resp, _ = srv.http("PATCH", API + "/t1", tok, {"x": 1})
        assert st in (404, 405) and isinstance(resp, dict) and "error" in resp, (st, resp)
        # Nothing was applied, and the server still serves.
        st, lst, _ = srv.http("GET", API + "?since=0", tok)
        assert st == 200 and lst == {"revision": 0, "tasks": []}, lst
        st, t, _ = srv.put("t1", tok, {"title": "fine", "due_at": DUE})
        assert st == 200 and t["due_at"] == DUE, t
        assert srv.stop() == 0
        assert "ERROR" not in srv.stderr_text(), srv.stderr_text()[-3000:]


def test_cors_for_browsers():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        st, h, b = srv.raw_http((
            "OPTIONS %s/t1 HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:5173\r\n"
            "Access-Control-Request-Method: PUT\r\n"
            "Access-Control-Request-Headers: authorization, content-type, idempotency-key\r\n"
            "Connection: close\r\n\r\n" % API).encode())
        assert st == 204, (st, h, b)
        assert h.get("access-control-allow-origin") == "*", h
        allowed = h.get("access-control-allow-headers", "").lower()
        for name in ("authorization", "content-type", "idempotency-key"):
            assert name in allowed, h
        assert "PUT" in h.get("access-control-allow-methods", ""), h
        # Actual responses (also errors) carry the CORS header.
        st, body, h = srv.http("GET", API + "?since=0", tok, headers={"Origin": "http://x"})
        assert st == 200 and h.get("access-control-allow-origin") == "*", h
        st, body, h = srv.http("GET", API + "?since=0", "bad", headers={"Origin": "http://x"})
        assert st == 401 and h.get("access-control-allow-origin") == "*", h
        assert srv.stop() == 0


def test_default_answer_closes():
    """Without --keep-alive every answer says Connection: close and the
    server closes: the next request comes on a new connection, read
    strictly by the front door (docs/LIMITS.md); a request pipelined behind
    is not served."""
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        get = "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (API, tok)
        s.sendall((get + get).encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        assert buf.count(b"HTTP/1.1 ") == 1, buf[:600]
        st, h, _ = parse_http_response(buf)
        assert st == 200 and h.get("connection") == "close", (st, h)
        # The client's next connection is served as usual.
        st, _ = srv.http("GET", API, tok)[:2]
        assert st == 200, st
        assert srv.stop() == 0


def test_keep_alive_many_requests_one_connection():
    """Several requests on one keep-alive connection with --keep-alive
    (browsers, Node, curl reuse connections; lws resets per-session data
    between them)."""
    with Env() as env:
        srv = env.server(time_scale=0.1, extra_args=["--keep-alive"]).start()
        tok = srv.token("alice", "home")
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        buf = b""
        rev = 0
        for i in range(20):
            body = json.dumps({"base_revision": rev, "task": {"title": "n%d" % i}}).encode()
            req = ("PUT %s/k1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Idempotency-Key: ka-%d\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (API, tok, i, len(body))).encode() + body
            s.sendall(req)
            while True:
                if b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    st, h, _ = parse_http_response(head + b"\r\n\r\n")
                    n = int(h["content-length"])
                    if len(rest) >= n:
                        t = json.loads(rest[:n])
                        buf = rest[n:]
                        break
                chunk = s.recv(65536)
                assert chunk, "connection closed after %d requests" % i
                buf += chunk
            assert st == 200, (i, st, t)
            rev = t["revision"]
        # HEAD gets headers only: the next answer on the connection is intact.
        s.sendall(("HEAD %s?since=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   "GET %s/k1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Connection: close\r\n\r\n" % (API, tok, API, tok)).encode())
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        first, _, rest = buf.partition(b"\r\n\r\n")
        assert rest.startswith(b"HTTP/1.1 200"), buf[:600]
        st, h, body = parse_http_response(rest)
        assert st == 200 and json.loads(body)["revision"] == 20, (st, body)
        s.close()
        assert rev == 20, rev
        assert srv.stop() == 0


run_tests([test_put_get_delete_roundtrip, test_conflict_409_and_warning, test_idempotency,
           test_idempotency_key_bound_to_request,
           test_bad_input, test_cors_for_browsers, test_default_answer_closes,
           test_keep_alive_many_requests_one_connection])
