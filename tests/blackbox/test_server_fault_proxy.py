#!/usr/bin/env python3
"""The fault proxy's control API through hp-fake-server's admin API (issue
10, point 2: "its API is reachable here too"; docs/ADMIN_API.md, "Network
faults"): with --fault-proxy HOST:PORT, /_hp/proxy/REST is relayed to
hp-fault-proxy's control API (method, path, query, JSON body) and its
status, Allow and JSON body come back unchanged, behind the same admin
token.  A fault armed through the server is the proxy's own (read back
from both), it acts on a connection through the proxy, and the errors are
the server's JSON: 404 proxy_not_configured without the flag, 502 when the
proxy is down or answers garbage, 504 when it does not answer.  Every wait
is a condition; the 504 case waits for the server's own 5 s timeout."""

import os
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from hpbb import API, DEFAULT_TIMEOUT, Env, free_port, http, run_cli, run_tests, wait_until  # noqa: E402
from test_fault_proxy import Proxy, by_kind  # noqa: E402

TOK = "adm-token-1"
SCALE = 0.5


class World:
    """A proxy in front of a server whose admin API relays to the proxy
    (the server's port is chosen first: the proxy needs it as upstream, the
    server needs the proxy's control port)."""

    def __init__(self):
        self.env = Env()
        self.env.__enter__()
        port = free_port()
        self.proxy = Proxy(self.env, "http://127.0.0.1:%d" % port)
        self.srv = self.env.server(
            port=port, time_scale=SCALE, admin=True,
            extra_args=["--admin-token", TOK,
                        "--fault-proxy", "127.0.0.1:%d" % self.proxy.control]).start()

    def adm(self, method, path, body=None, token=TOK, headers=None):
        """(status, JSON, headers) of /_hp/proxy + path on the server."""
        return self.srv.http(method, "/_hp/proxy" + path, token, body, headers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write("---- proxy stderr (tail) ----\n%s\n" % self.proxy.stderr()[-3000:])
            self.proxy.kill()
        elif self.proxy.proc.poll() is None:
            self.proxy.stop()
        self.env.__exit__(*exc)
        return False


def test_arm_read_back_and_effect():
    with World() as w:
        st, status, _ = w.adm("GET", "/status")
        assert st == 200 and status["control"] == w.proxy.info["control"], (st, status)
        st, cl, _ = w.adm("POST", "/clients", {"name": "alice"})
        assert st == 201 and cl["name"] == "alice", (st, cl)
        alice = cl["port"]
        tok = w.srv.token("alice", "home", dev="phone")

        # Latency armed through the server: the proxy's own fault...
        st, f, _ = w.adm("POST", "/clients/alice/faults",
                         {"kind": "latency", "direction": "s2c", "ms": 300})
        assert st == 201 and f["kind"] == "latency" and f["ms"] == 300, (st, f)
        direct = [x for x in w.proxy.faults() if x["id"] == f["id"]]
        assert direct and direct[0]["scope"] == {"client": "alice"}, w.proxy.faults()
        st, via, _ = w.adm("GET", "/faults/%d" % f["id"])
        assert st == 200 and via["id"] == f["id"] and via["ms"] == 300, (st, via)
        # ... which delays alice's answers (the proxy journals the delay).
        st, _, _ = http(alice, "PUT", API + "/l1", tok, {"base_revision": 0,
                                                          "task": {"title": "slow"}})
        assert st == 200
        st, j, _ = w.adm("GET", "/journal?client=alice")
        assert st == 200, (st, j)
        resp = by_kind(j["entries"], "response", method="PUT")
        assert resp and resp[0]["delay_ms"] >= 300, resp
        st, d, _ = w.adm("DELETE", "/faults/%d" % f["id"])
        assert st == 200 and d["deleted"] is True, (st, d)

        # Partition through the server: alice's request is held by the
        # proxy and never reaches the server until the heal.
        st, part, _ = w.adm("POST", "/clients/alice/partition")
        assert st == 201 and part["kind"] == "partition", (st, part)
        assert [x for x in w.proxy.faults() if x["kind"] == "partition"]
        result = {}

        def put():
            result["r"] = http(alice, "PUT", API + "/p1", tok,
                               {"base_revision": 0, "task": {"title": "held"}})
        t = threading.Thread(target=put, daemon=True)
        t.start()

        def held():
            st, j, _ = w.adm("GET", "/journal?client=alice")
            return [e for e in by_kind(j["entries"], "request", method="PUT")
                    if e.get("path") == API + "/p1" and e.get("held")]
        wait_until(held, what="the partitioned PUT to be held by the proxy")
        st, sj, _ = w.srv.http("GET", "/_hp/journal?kind=http", TOK)
        assert st == 200 and not [e for e in sj["entries"] if e["path"] == API + "/p1"], sj
        st, h, _ = w.adm("POST", "/clients/alice/heal")
        assert st == 200 and h["healed"] == 1, (st, h)
        t.join(DEFAULT_TIMEOUT)
        assert result["r"][0] == 200, result
        st, sj, _ = w.srv.http("GET", "/_hp/journal?kind=http", TOK)
        assert [e for e in sj["entries"] if e["path"] == API + "/p1" and e["status"] == 200], sj
        # One line per relay on the server (no token in it).
        lines = w.srv.log_lines(contains="proxy_relay")
        assert [l for l in lines if "path=/clients/alice/heal status=200" in l], lines
        assert TOK not in w.srv.stderr_text()
        assert w.srv.stop() == 0          # clean exit (under ASan: no leak)


def test_errors_relayed_and_own():
    with World() as w:
        w.proxy.add_client("alice")
        bad = {"kind": "latency", "scope": {"client": "alice"}, "ms": 100, "jiter_ms": 3}
        # The proxy's 400 comes back unchanged (status and body); nothing armed.
        st, body, _ = w.adm("POST", "/faults", bad)
        st2, body2, _ = w.proxy.ctl("POST", "/faults", bad)
        assert st == st2 == 400 and body == body2 and body["key"] == "jiter_ms", (body, body2)
        assert w.proxy.faults() == []
        # 405 with the proxy's Allow; the query goes along (400 naming it).
        st, body, h = w.adm("PUT", "/faults", {})
        assert st == 405 and h.get("allow") == "GET, POST, DELETE", (st, body, h)
        st, body, _ = w.adm("GET", "/journal?clinet=alice")
        assert st == 400 and body["key"] == "clinet", (st, body)
        st, body, _ = w.adm("GET", "/nope")
        assert st == 404 and body["error"] == "not_found", (st, body)
        # Same admin auth as every /_hp/ route: no token, a wrong token or a
        # foreign Origin reach nothing.
        for tok, hdr, want in ((None, None, 401), ("wrong", None, 401),
                               (TOK, {"Origin": "http://evil.example"}, 403)):
            st, body, h = w.adm("POST", "/clients/alice/partition", token=tok, headers=hdr)
            assert st == want, (tok, st, body)
            assert not any(k.startswith("access-control-") for k in h), h
        assert w.proxy.faults() == []
        assert not [l for l in w.srv.log_lines(contains="proxy_relay") if "partition" in l]
        # The proxy down: 502, the server's own error.
        w.proxy.stop()
        st, body, _ = w.adm("GET", "/status")
        assert st == 502 and body["error"] == "proxy_unreachable", (st, body)
        assert w.srv.stop() == 0


def test_not_configured():
    with Env() as env:
        srv = env.server(time_scale=SCALE, admin=True).start()
        st, body, _ = srv.http("GET", "/_hp/proxy/status")
        assert st == 404 and body["error"] == "proxy_not_configured", (st, body)
        assert "--fault-proxy" in body["message"], body
        assert srv.stop() == 0
    # The flag is checked at start (exit 2 = usage).
    for args in (["--fault-proxy", "127.0.0.1:9"],                     # no admin API
                 ["--admin", "--fault-proxy", "127.0.0.1:0"],          # port 0
                 ["--admin", "--fault-proxy", "127.0.0.1"],            # no port
                 ["--admin", "--fault-proxy", "127.0.0.1:70000"]):
        rc, _, err = run_cli(["--db", ":memory:", "--jwt-secret", "s"] + args)
        assert rc == 2 and "--fault-proxy" in err, (args, rc, err)


def fake_control(answer):
    """A listener that reads each request and answers `answer` (bytes), or
    never answers when answer is None.  Returns (port, stop)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    done = threading.Event()

    def serve(c):
        c.recv(65536)
        if answer is not None:
            c.sendall(answer)
        else:
            done.wait(DEFAULT_TIMEOUT * 4)
        c.close()

    def run():
        while not done.is_set():
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=run, daemon=True).start()

    def stop():
        done.set()
        ls.close()
    return ls.getsockname()[1], stop


def test_garbage_and_timeout():
    cases = ((b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
              502, "proxy_bad_answer"),
             (b"SSH-2.0-OpenSSH\r\n", 502, "proxy_bad_answer"),
             (None, 504, "proxy_timeout"))
    for answer, want, code in cases:
        port, stop = fake_control(answer)
        try:
            with Env() as env:
                srv = env.server(time_scale=SCALE, admin=True, extra_args=[
                    "--fault-proxy", "127.0.0.1:%d" % port]).start()
                if answer is None:
                    # An admin client gone before the relay's answer: the
                    # relay ends on its own (its 504 goes nowhere).
                    with socket.create_connection(("127.0.0.1", srv.port)) as s:
                        s.sendall(b"GET /_hp/proxy/faults HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                st, body, _ = srv.http("GET", "/_hp/proxy/status",
                                       timeout=DEFAULT_TIMEOUT * 2)
                assert st == want and body["error"] == code, (answer, st, body)
                if answer is None:
                    wait_until(lambda: len(srv.log_lines(contains="status=504")) == 2,
                               what="both relays to time out")
                assert srv.stop() == 0
        finally:
            stop()


if __name__ == "__main__":
    run_tests([test_arm_read_back_and_effect, test_errors_relayed_and_own, test_not_configured,
               test_garbage_and_timeout])
