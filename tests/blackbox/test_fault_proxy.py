"""Black-box tests of hp-fault-proxy (docs/FAULT_PROXY.md) in front of a real
hp-fake-server: forwarding, every fault, scoping, the journal, and the 400s
of the control API.  Standard library only; every wait is a condition (no
timed upper bounds: the box is loaded and may run ASan builds).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from hpbb import (API, BIN_DIR, DEFAULT_TIMEOUT, STREAM, WS, Env, has_secret,  # noqa: E402
                  http, raw_http, run_tests, wait_until)

PROXY_BIN = os.path.join(BIN_DIR, "fault_proxy", "hp-fault-proxy")
TIME_SCALE = 0.05   # heartbeat 1.5 s, the server's silence deadline 3.75 s


class Proxy:
    """One hp-fault-proxy in front of `upstream` (a URL); the ports come from
    its first stdout line, its stderr goes to a file."""

    def __init__(self, env, upstream, extra=None):
        self.env = env
        self.err_path = env.workdir.file("proxy-%d.stderr" % id(self))
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [PROXY_BIN, "--listen", "127.0.0.1:0", "--upstream", upstream,
             "--log-level", "debug"] + (extra or []),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        err.close()
        line = self.proc.stdout.readline().decode()
        if not line:
            raise AssertionError("hp-fault-proxy printed nothing: %s" % self.stderr())
        info = json.loads(line)
        self.port = int(info["listen"].rsplit(":", 1)[1])
        self.control = int(info["control"].rsplit(":", 1)[1])
        self.info = info

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ctl(self, method, path, body=None, raw=None):
        """(status, parsed JSON, headers) of one control request."""
        if raw is not None:
            return http(self.control, method, path, body=raw,
                        headers={"Content-Type": "application/json"})
        return http(self.control, method, path, body=body)

    def ok(self, method, path, body=None, want=(200, 201)):
        st, b, _ = self.ctl(method, path, body)
        assert st in want, "%s %s -> %s %s" % (method, path, st, b)
        return b

    def add_client(self, name):
        return self.ok("POST", "/clients", {"name": name})["port"]

    def fault(self, spec):
        return self.ok("POST", "/faults", spec, want=(201,))

    def journal(self, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        return self.ok("GET", "/journal" + ("?" + qs if qs else ""))["entries"]

    def faults(self):
        return self.ok("GET", "/faults")["faults"]

    def stop(self):
        """SIGTERM; the proxy must exit 0 (under ASan: without a leak)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=DEFAULT_TIMEOUT)
        self.proc.stdout.close()
        rc = self.proc.returncode
        assert rc == 0, "hp-fault-proxy exited %s:\n%s" % (rc, self.stderr()[-3000:])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class World:
    """A server, a proxy in front of it and tokens; torn down in order."""

    def __init__(self, proxy_args=None, time_scale=TIME_SCALE):
        self.env = Env()
        self.env.__enter__()
        self.srv = self.env.server(time_scale=time_scale).start()
        self.proxy = Proxy(self.env, self.srv.url, proxy_args)
        self.tokens = {}

    def token(self, sub, dev=None):
        k = (sub, dev)
        if k not in self.tokens:
            self.tokens[k] = self.srv.token(sub, "home", dev=dev)
        return self.tokens[k]

    def ws(self, port, sub, dev=None, hello=True):
        """A stream through port; after READY it sends heartbeats every half
        interval (so a slow test never meets the server's 4008 by accident;
        tests that want silence call stop_heartbeats())."""
        w = self.env.track(WS.connect(port, STREAM + "?token=" + self.token(sub, dev)))
        if hello:
            _, ready = w.hello(0)
            assert ready["type"] == "READY", ready
            w.hb_ms = ready["heartbeat_interval_ms"]
            w.start_heartbeats(w.hb_ms / 2000.0)
        return w

    def put(self, port, sub, tid, task, base=0, idem=None, timeout=DEFAULT_TIMEOUT):
        h = {"Idempotency-Key": idem or ("k-" + tid + "-" + str(time.monotonic()))}
        return http(port, "PUT", "%s/%s" % (API, tid), self.token(sub),
                    {"base_revision": base, "task": task}, h, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write("---- proxy stderr (tail) ----\n%s\n" % self.proxy.stderr()[-5000:])
            self.proxy.kill()
        else:
            self.proxy.stop()
        self.env.__exit__(*exc)
        return False


def by_kind(entries, kind, **match):
    return [e for e in entries if e["kind"] == kind and
            all(e.get(k) == v for k, v in match.items())]


# ---- forwarding and the journal ---------------------------------------------------


def test_forwarding_rest_and_ws_and_journal():
    with World() as w:
        alice = w.proxy.add_client("alice")
        st, body, _ = w.put(alice, "alice", "t1", {"title": "Milk"})
        assert st == 200 and body["revision"] == 1, (st, body)
        # A token in another header is redacted in the journal too.
        st, body, _ = http(alice, "GET", API + "?since=0", w.token("alice"),
                           headers={"Cookie": "token=" + w.token("alice")})
        assert st == 200 and body["revision"] == 1, body
        ws = w.ws(alice, "alice", hello=False)
        events, ready = ws.hello(0)
        assert [e["entity_id"] for e in events] == ["t1"] and ready["type"] == "READY"
        # A write through the main port reaches alice's stream as an event.
        m = ws.mark()
        st, _, _ = w.put(w.proxy.port, "bob", "t2", {"title": "Bread"})
        assert st == 200
        ws.wait_event("TASK_UPDATED", "t2", since=m)
        ws.close()

        wait_until(lambda: not w.proxy.ok("GET", "/clients/alice")["connections"],
                   what="alice's connections closed on both sides")
        j = w.proxy.journal(client="alice")
        text = json.dumps(j)
        assert not has_secret(text), "a token in the journal"
        assert not [e for e in j if "authorization" in e.get("headers", {})]
        seqs = [e["seq"] for e in j]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        ts = [e["t_ms"] for e in j]
        assert ts == sorted(ts)
        puts = by_kind(j, "request", method="PUT")
        assert puts and puts[0]["path"] == API + "/t1" and puts[0]["body"]["task"]["title"] == "Milk"
        assert puts[0]["sub"] == "alice" and puts[0]["client"] == "alice"
        assert "idempotency-key" in puts[0]["headers"]
        gets = by_kind(j, "request", method="GET", path=API)
        assert gets and gets[0]["query"] == "since=0"
        assert gets[0]["headers"]["cookie"] == "token=[REDACTED]", gets[0]["headers"]
        up = by_kind(j, "request", path=STREAM)[0]
        assert "[REDACTED]" in up["query"] and "token" in up["query"]
        resp = by_kind(j, "response", method="PUT")
        assert resp[0]["status"] == 200 and resp[0]["body"]["revision"] == 1
        assert by_kind(j, "response", status=101)
        frames = by_kind(j, "frame")
        hello = [f for f in frames if f.get("type") == "HELLO"][0]
        assert hello["dir"] == "c2s" and hello["msg"]["revision"] == 0
        kinds = [(f["dir"], f.get("type") or f.get("event_type")) for f in frames]
        assert ("s2c", "READY") in kinds and ("s2c", "TASK_UPDATED") in kinds
        t2 = [f for f in frames if f.get("entity_id") == "t2"][0]
        assert t2["revision"] == 2 and t2["size"] > 0
        # The journal keeps the pair's order: the request before its response,
        # HELLO before READY.
        assert puts[0]["seq"] < resp[0]["seq"]
        rdy = [f for f in frames if f.get("type") == "READY"][0]
        assert hello["seq"] < rdy["seq"]
        closes = by_kind(j, "close")
        assert any(c.get("ws_close_code") == 1000 for c in closes), closes
        # since= returns only the newer entries.
        later = w.proxy.journal(client="alice", since=seqs[-2])
        assert [e["seq"] for e in later] == seqs[-1:]


def test_main_port_scoped_by_token_claims():
    """A fault scoped by sub/dev takes only that device's frames."""
    with World() as w:
        a_phone = w.ws(w.proxy.port, "alice", "phone")
        a_web = w.ws(w.proxy.port, "alice", "web")
        bob = w.ws(w.proxy.port, "bob")
        f = w.proxy.fault({"kind": "drop_message", "scope": {"sub": "alice", "dev": "phone"},
                           "direction": "s2c", "message": "TASK_UPDATED", "count": 1})
        marks = [x.mark() for x in (a_phone, a_web, bob)]
        assert w.put(w.proxy.port, "bob", "s1", {"title": "x"})[0] == 200
        a_web.wait_event("TASK_UPDATED", "s1", since=marks[1])
        bob.wait_event("TASK_UPDATED", "s1", since=marks[2])
        wait_until(lambda: not w.proxy.faults(), what="the drop to be used up")
        assert w.put(w.proxy.port, "bob", "s2", {"title": "y"})[0] == 200
        a_phone.wait_event("TASK_UPDATED", "s2", since=marks[0])
        assert not [m for m in a_phone.messages[marks[0]:] if m.get("entity_id") == "s1"]
        j = w.proxy.journal(sub="alice")
        dropped = [e for e in j if e.get("dropped")]
        assert len(dropped) == 1 and dropped[0]["dev"] == "phone" and dropped[0]["fault"] == f["id"]
        conns = w.proxy.ok("GET", "/clients")["main"]["connections"]
        assert {(c["sub"], c["dev"]) for c in conns} >= {("alice", "phone"), ("alice", "web")}
        # Scope by connection id: a reset takes alice's web stream only.
        web = [c for c in conns if c["dev"] == "web" and c["kind"] == "websocket"][0]
        r = w.proxy.ok("POST", "/faults", {"kind": "reset", "scope": {"conn": web["id"]}})
        assert r["reset"] == 1
        a_web.wait_closed()
        m = a_phone.mark()
        assert w.put(w.proxy.port, "bob", "s3", {"title": "z"})[0] == 200
        a_phone.wait_event("TASK_UPDATED", "s3", since=m)
        assert not a_phone.closed and not bob.closed


# ---- partition --------------------------------------------------------------------


def test_partition_close_is_not_passed_server_times_out():
    """The key property: a client that closes its socket during a partition
    is noticed by the server only through the heartbeat timeout."""
    with World() as w:
        alice = w.proxy.add_client("alice")
        ws = w.ws(alice, "alice")
        conn_line = wait_until(lambda: w.srv.log_lines(contains="ws_open"), what="ws_open")[-1]
        srv_conn = [f for f in conn_line.split() if f.startswith("conn=")][0]
        part = w.proxy.ok("POST", "/clients/alice/partition", want=(201,))
        assert part["kind"] == "partition"
        # Idempotent: a second partition returns the same fault.
        assert w.proxy.ok("POST", "/clients/alice/partition")["id"] == part["id"]
        ws.stop_heartbeats()
        ws.send_frame(8, b"\x03\xe8")          # a close frame: must not cross
        ws.abort()                             # then the socket goes (FIN)
        wait_until(lambda: w.srv.log_lines("WARNING", "heartbeat_timeout"),
                   what="the server's heartbeat_timeout")
        wait_until(lambda: w.srv.log_lines(contains="code=4008"), what="the server's 4008")
        lines = w.srv.stderr_text().splitlines()
        hb = [i for i, l in enumerate(lines) if "heartbeat_timeout" in l and srv_conn in l][0]
        closed = [i for i, l in enumerate(lines) if " ws_closed " in l and srv_conn in l]
        assert all(i > hb for i in closed), "the server saw the client's close first"
        j = w.proxy.journal(client="alice")
        cl = by_kind(j, "close", side="client")[0]
        assert cl["passed"] is False and cl["during_partition"] is True, cl
        held = [f for f in by_kind(j, "frame", dir="c2s") if f["opcode"] == "close"]
        assert held and held[0]["held"] is True
        s4008 = [f for f in by_kind(j, "frame", dir="s2c") if f.get("close_code") == 4008]
        assert s4008, "the server's 4008 frame reached the proxy"
        # Heal: the pair is gone, nothing is left open.
        assert w.proxy.ok("GET", "/faults/%d" % part["id"])["applied"] == 1
        healed = w.proxy.ok("POST", "/clients/alice/heal")
        assert healed["healed"] == 1 and healed["faults"] == [part["id"]]
        wait_until(lambda: not w.proxy.ok("GET", "/clients/alice")["connections"],
                   what="the pair to be freed after heal")


def test_partition_holds_data_and_new_connections_until_heal():
    # A slower clock: the partition must stay shorter than the server's
    # silence deadline (37 s here) however loaded the machine is.
    with World(time_scale=0.5) as w:
        alice = w.proxy.add_client("alice")
        bob = w.proxy.add_client("bob")
        ws = w.ws(alice, "alice")
        wb = w.ws(bob, "bob")
        w.proxy.ok("POST", "/clients/alice/partition", want=(201,))
        m, mb = ws.mark(), wb.mark()
        assert w.put(w.proxy.port, "carol", "p1", {"title": "during"})[0] == 200
        # bob is not partitioned: he gets the event at once.
        wb.wait_event("TASK_UPDATED", "p1", since=mb)
        # A new request from alice hangs: accepted, nothing sent upstream.
        result = {}

        def req():
            result["r"] = w.put(alice, "alice", "p2", {"title": "hung"})
        t = threading.Thread(target=req, daemon=True)
        t.start()
        wait_until(lambda: [e for e in by_kind(w.proxy.journal(client="alice"), "request",
                                               method="PUT") if e.get("held")],
                   what="the hung PUT to reach the proxy")
        # The proxy holds the event for alice (journaled, held, not delivered).
        wait_until(lambda: [e for e in by_kind(w.proxy.journal(client="alice"), "frame")
                            if e.get("entity_id") == "p1" and e.get("held")],
                   what="the held event")
        assert "r" not in result and not [x for x in ws.messages[m:] if x.get("entity_id") == "p1"]
        conns = w.proxy.ok("GET", "/clients/alice")["connections"]
        hung = [c for c in conns if c["kind"] == "http"]
        assert hung and hung[0]["server_open"] is False and hung[0]["partitioned"] is True
        assert not w.srv.log_lines(contains="path=/api/v0.2/tasks/p2")
        w.proxy.ok("POST", "/clients/alice/heal")
        t.join(DEFAULT_TIMEOUT)
        assert result["r"][0] == 200, result
        ws.wait_event("TASK_UPDATED", "p1", since=m)
        ws.wait_event("TASK_UPDATED", "p2", since=m)
        # Heartbeats kept flowing into the proxy, held; the server still has
        # the stream open (the partition was shorter than its deadline).
        assert not w.srv.log_lines("WARNING", "heartbeat_timeout")


# ---- link faults ---------------------------------------------------------------


def test_latency_and_jitter_lower_bound():
    with World() as w:
        alice = w.proxy.add_client("alice")
        w.proxy.fault({"kind": "latency", "scope": {"client": "alice"}, "direction": "s2c",
                       "ms": 400, "jitter_ms": 100})
        t0 = time.monotonic()
        st, _, _ = w.put(alice, "alice", "l1", {"title": "slow"})
        dt = time.monotonic() - t0
        assert st == 200 and dt >= 0.3, dt
        r = by_kind(w.proxy.journal(client="alice"), "response")[0]
        assert 300 <= r["delay_ms"] <= 500, r
        # The main port is not delayed (no fault covers it): no delay_ms.
        assert w.put(w.proxy.port, "alice", "l2", {"title": "fast"})[0] == 200
        assert not [e for e in w.proxy.journal(client="") if "delay_ms" in e]


def test_bandwidth_lower_bound():
    with World() as w:
        alice = w.proxy.add_client("alice")
        assert w.put(w.proxy.port, "alice", "b1", {"title": "big", "notes": "n" * 6000})[0] == 200
        w.proxy.fault({"kind": "bandwidth", "scope": {"client": "alice"}, "direction": "s2c",
                       "bytes_per_s": 3000})
        t0 = time.monotonic()
        st, body, _ = http(alice, "GET", API + "/b1", w.token("alice"))
        dt = time.monotonic() - t0
        assert st == 200 and len(body["notes"]) == 6000
        assert dt >= 1.5, dt       # >= 6 KB at 3 KB/s, minus the 150 B burst


def test_reset_only_the_scoped_client():
    with World() as w:
        alice, bob = w.proxy.add_client("alice"), w.proxy.add_client("bob")
        wa, wb = w.ws(alice, "alice"), w.ws(bob, "bob")
        r = w.proxy.ok("POST", "/clients/alice/reset")
        assert r["reset"] == 1 and r["kind"] == "reset", r
        wa.wait_closed()
        assert wa.close_code is None           # no close frame: a reset
        wait_until(lambda: w.srv.log_lines(contains="ws_closed"), what="the server's ws_closed")
        # bob's stream is untouched: it still carries events.
        m = wb.mark()
        assert w.put(w.proxy.port, "carol", "r1", {"title": "x"})[0] == 200
        wb.wait_event("TASK_UPDATED", "r1", since=m)
        assert not wb.closed
        j = w.proxy.journal(client="alice")
        assert [c for c in by_kind(j, "close", side="client") if c["how"] == "rst"]
        assert not w.proxy.faults()           # a reset is not kept armed


def test_cut_mid_frame():
    with World() as w:
        alice = w.proxy.add_client("alice")
        ws = w.ws(alice, "alice")
        f = w.proxy.fault({"kind": "cut", "scope": {"client": "alice"}, "direction": "s2c",
                           "after_bytes": 5})
        m = ws.mark()
        assert w.put(w.proxy.port, "bob", "c1", {"title": "cut me"})[0] == 200
        ws.wait_closed()
        # The cut frame (TASK_UPDATED c1, or a server heartbeat that came
        # first) never arrived whole; nothing after it either.
        assert ws.close_code is None
        assert not [x for x in ws.messages[m:] if x.get("entity_id") == "c1"], ws.messages[m:]
        j = w.proxy.journal(client="alice")
        cut = [e for e in by_kind(j, "frame", dir="s2c") if e.get("fault") == f["id"]]
        assert cut and cut[0]["cut_after"] == 5, cut
        assert cut[0]["seq"] == max(e["seq"] for e in by_kind(j, "frame", dir="s2c"))
        wait_until(lambda: w.srv.log_lines(contains="ws_closed"), what="the server's ws_closed")
        assert not w.proxy.faults()


def test_cut_http_response_mid_body():
    with World() as w:
        alice = w.proxy.add_client("alice")
        assert w.put(w.proxy.port, "alice", "c2", {"title": "x" * 200})[0] == 200
        f = w.proxy.ok("POST", "/clients/alice/faults", {"kind": "cut", "unit": "http",
                                                         "after_bytes": 40, "how": "rst"},
                       want=(201,))
        assert f["unit"] == "http" and f["how"] == "rst" and f["direction"] == "s2c"
        s = socket.create_connection(("127.0.0.1", alice))
        s.sendall(("GET %s/c2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (API, w.token("alice"))).encode())
        got = b""
        s.settimeout(DEFAULT_TIMEOUT)
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        s.close()
        assert got == got[:40] and got.startswith(b"HTTP/1.1 200"), got
        r = by_kind(w.proxy.journal(client="alice"), "response")[0]
        assert r["cut_after"] == 40 and r["fault"] == f["id"]


def test_partition_server_close_is_held_then_reset_on_heal():
    """The server gives up (4008, then closes) during the partition: the
    client hears nothing; at heal its connection is reset, as a peer that
    forgot the connection answers late packets."""
    with World() as w:
        alice = w.proxy.add_client("alice")
        ws = w.ws(alice, "alice")
        w.proxy.ok("POST", "/clients/alice/partition", want=(201,))
        wait_until(lambda: w.srv.log_lines("WARNING", "heartbeat_timeout"),
                   what="the server's heartbeat_timeout")
        wait_until(lambda: by_kind(w.proxy.journal(client="alice"), "close", side="server"),
                   what="the server's close at the proxy")
        cl = by_kind(w.proxy.journal(client="alice"), "close", side="server")[0]
        assert cl["passed"] is False and cl["ws_close_code"] == 4008, cl
        assert not ws.closed and ws.close_code is None
        w.proxy.ok("POST", "/clients/alice/heal")
        ws.wait_closed()
        assert ws.close_code is None, "the held 4008 must not be delivered after heal"
        j = w.proxy.journal(client="alice")
        assert [c for c in by_kind(j, "close", side="client", by="proxy")
                if c["how"] == "rst" and c["reason"] == "closed_during_partition"], j[-5:]
        # The held 4008 frame is on the record as never delivered.
        wait_until(lambda: by_kind(w.proxy.journal(client="alice"), "undelivered", dir="s2c"),
                   what="the undelivered entry")


def test_drop_two_server_heartbeats():
    with World() as w:
        alice = w.proxy.add_client("alice")
        ws = w.ws(alice, "alice")
        f = w.proxy.fault({"kind": "drop_message", "scope": {"client": "alice"},
                           "direction": "s2c", "message": "HEARTBEAT", "count": 2})
        wait_until(lambda: not w.proxy.faults(), what="two heartbeats dropped")
        j = w.proxy.journal(client="alice")
        armed = [e for e in by_kind(j, "fault", action="armed") if e["fault"] == f["id"]][0]
        hbs = [e for e in by_kind(j, "frame", dir="s2c", type="HEARTBEAT") if e["seq"] > armed["seq"]]
        assert [bool(e.get("dropped")) for e in hbs[:2]] == [True, True], hbs
        # The next one arrives, and the client never got a dropped one: what it
        # received is at most the undropped heartbeats journaled by then.
        m = ws.mark()
        ws.wait_type("HEARTBEAT", since=m)

        def passed():
            return len([e for e in by_kind(w.proxy.journal(client="alice"), "frame", dir="s2c",
                                           type="HEARTBEAT") if not e.get("dropped")])
        n = passed()
        wait_until(lambda: len([x for x in ws.messages if x.get("type") == "HEARTBEAT"]) >= n,
                   what="the client to receive every undropped heartbeat")
        got = len([x for x in ws.messages if x.get("type") == "HEARTBEAT"])
        assert got <= passed(), (got, passed())
        j = w.proxy.journal(client="alice")
        ex = [e for e in by_kind(j, "fault", action="exhausted") if e["fault"] == f["id"]]
        assert ex and ex[0]["spec"]["applied"] == 2
        # The stream stayed valid: events still parse after the drops.
        m = ws.mark()
        assert w.put(w.proxy.port, "bob", "h1", {"title": "x"})[0] == 200
        ws.wait_event("TASK_UPDATED", "h1", since=m)


def test_drop_client_heartbeats_make_server_close_4008():
    with World() as w:
        alice = w.proxy.add_client("alice")
        ws = w.ws(alice, "alice")
        w.proxy.fault({"kind": "drop_message", "scope": {"client": "alice"}, "direction": "c2s",
                       "message": "HEARTBEAT", "count": 1000})
        assert ws.wait_close() == 4008
        assert w.srv.log_lines("WARNING", "heartbeat_timeout")


def test_drop_response_applied_but_never_answered():
    with World() as w:
        alice = w.proxy.add_client("alice")
        f = w.proxy.fault({"kind": "drop_response", "scope": {"client": "alice"},
                           "method": "PUT", "path": API + "/*"})
        body = json.dumps({"base_revision": 0, "task": {"title": "lost"}}).encode()
        s = socket.create_connection(("127.0.0.1", alice))
        # Connection: close makes the server hang up after answering: that
        # close must not reach the client either.
        s.sendall(("PUT %s/d1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Authorization: Bearer %s\r\n"
                   "Idempotency-Key: d-1\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (API, w.token("alice"), len(body))).encode()
                  + body)
        wait_until(lambda: [e for e in by_kind(w.proxy.journal(client="alice"), "close",
                                               side="server") if not e["passed"]],
                   what="the server's close, kept from the client")
        # Applied on the server...
        st, task, _ = http(w.proxy.port, "GET", API + "/d1", w.token("alice"))
        assert st == 200 and task["title"] == "lost"
        # ...and the client's socket is open and silent (documented choice):
        # no response, no FIN.
        s.setblocking(False)
        try:
            data = s.recv(100)
            assert False, "the client got %r" % data
        except BlockingIOError:
            pass
        conns = w.proxy.ok("GET", "/clients/alice")["connections"]
        assert conns and conns[0]["client_open"]
        s.close()
        # Once the client hangs up too, nothing of the pair is left.
        wait_until(lambda: not w.proxy.ok("GET", "/clients/alice")["connections"],
                   what="the silent pair to be freed")
        r = by_kind(w.proxy.journal(client="alice"), "response")[0]
        assert r["status"] == 200 and r["fault"] == f["id"] and r["body"]["title"] == "lost"
        # The retry with the same key is answered (the fault was used up).
        st, task, _ = w.put(alice, "alice", "d1", {"title": "lost"}, idem="d-1")
        assert st == 200 and task["revision"] == 1


def test_drop_request_never_reaches_the_server():
    with World() as w:
        alice = w.proxy.add_client("alice")
        f = w.proxy.ok("POST", "/clients/alice/faults", {"kind": "drop_request", "method": "PUT",
                                                         "path": API + "/q*"}, want=(201,))
        body = json.dumps({"base_revision": 0, "task": {"title": "never"}}).encode()
        s = socket.create_connection(("127.0.0.1", alice))
        s.sendall(("PUT %s/q1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Idempotency-Key: q-1\r\nContent-Length: %d\r\n\r\n"
                   % (API, w.token("alice"), len(body))).encode() + body)
        # A second request on the same connection is not forwarded either.
        s.sendall(("GET %s/q1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (API, w.token("alice"))).encode())
        wait_until(lambda: len([e for e in by_kind(w.proxy.journal(client="alice"), "request")
                                if e.get("dropped")]) == 2, what="both requests dropped")
        j = by_kind(w.proxy.journal(client="alice"), "request")
        assert j[0]["fault"] == f["id"] and j[1]["reason"] == "after_dropped_request", j
        s.setblocking(False)
        try:
            assert False, "the client got %r" % s.recv(100)
        except BlockingIOError:
            pass
        s.close()
        st, _, _ = http(w.proxy.port, "GET", API + "/q1", w.token("alice"))
        assert st == 404, st                          # never applied
        assert not w.srv.log_lines(contains="path=/api/v0.2/tasks/q1 status=200")
        assert not w.proxy.faults()


def test_hold_response():
    with World() as w:
        alice = w.proxy.add_client("alice")
        w.proxy.fault({"kind": "hold_response", "scope": {"client": "alice"}, "method": "*",
                       "path": API + "/h*", "ms": 1500})
        t0 = time.monotonic()
        st, _, _ = w.put(alice, "alice", "h1", {"title": "held"})
        dt = time.monotonic() - t0
        assert st == 200 and dt >= 1.4, dt
        r = by_kind(w.proxy.journal(client="alice"), "response")[0]
        assert r["held_ms"] == 1500
        # Used up (count 1): the next one is not held.
        st, _, _ = w.put(alice, "alice", "h2", {"title": "free"})
        assert st == 200
        assert len([e for e in by_kind(w.proxy.journal(client="alice"), "response")
                    if "held_ms" in e]) == 1


# ---- the control API -------------------------------------------------------------


BAD_FAULTS = [
    ({}, "kind"),
    ({"kind": "latency", "ms": 10}, "scope"),
    ({"kind": "latncy", "scope": {"client": "alice"}}, "kind"),
    ({"kind": "latency", "scope": {"client": "alice"}}, "ms"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": -1}, "ms"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": 10 ** 12}, "ms"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": "100"}, "ms"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": 1.5}, "ms"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": 1, "jiter_ms": 3}, "jiter_ms"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": 1, "direction": "up"}, "direction"),
    ({"kind": "latency", "scope": {"client": "alice"}, "ms": 1, "count": 2}, "count"),
    ({"kind": "bandwidth", "scope": {"client": "alice"}, "bytes_per_s": 0}, "bytes_per_s"),
    ({"kind": "partition", "scope": {"client": "nobody"}}, "scope.client"),
    ({"kind": "partition", "scope": {"client": "a b"}}, "scope.client"),
    ({"kind": "partition", "scope": {"clinet": "alice"}}, "scope.clinet"),
    ({"kind": "partition", "scope": {}}, "scope"),
    ({"kind": "partition", "scope": {"client": "alice", "sub": "alice"}}, "scope"),
    ({"kind": "partition", "scope": {"dev": "phone"}}, "scope"),
    ({"kind": "partition", "scope": {"conn": 0}}, "scope.conn"),
    ({"kind": "partition", "scope": {"conn": 12345}}, "scope.conn"),
    ({"kind": "partition", "scope": "alice"}, "scope"),
    ({"kind": "drop_message", "scope": {"client": "alice"}, "message": "HEARTBEAT"}, "direction"),
    ({"kind": "drop_message", "scope": {"client": "alice"}, "direction": "s2c"}, "message"),
    ({"kind": "drop_message", "scope": {"client": "alice"}, "direction": "s2c",
      "message": "HEARTBEAT", "count": 0}, "count"),
    ({"kind": "drop_message", "scope": {"client": "alice"}, "direction": "s2c",
      "message": "HEARTBEAT", "count": 10 ** 7}, "count"),
    ({"kind": "hold_response", "scope": {"client": "alice"}, "method": "PUT", "path": "/x"}, "ms"),
    ({"kind": "hold_response", "scope": {"client": "alice"}, "method": "put", "path": "/x",
      "ms": 1}, "method"),
    ({"kind": "drop_request", "scope": {"client": "alice"}, "method": "PUT"}, "path"),
    ({"kind": "drop_response", "scope": {"client": "alice"}, "method": "PUT", "path": "x"}, "path"),
    ({"kind": "cut", "scope": {"client": "alice"}, "how": "kill"}, "how"),
    ({"kind": "cut", "scope": {"client": "alice"}, "unit": "byte"}, "unit"),
    ({"kind": "cut", "scope": {"client": "alice"}, "after_bytes": 1 << 30}, "after_bytes"),
    ({"kind": "reset", "scope": {"client": "alice"}, "ms": 5}, "ms"),
]


def test_bad_control_requests_are_400_and_change_nothing():
    with World() as w:
        w.proxy.add_client("alice")
        before = (w.proxy.ok("GET", "/faults"), w.proxy.ok("GET", "/clients"))
        for body, key in BAD_FAULTS:
            st, b, _ = w.proxy.ctl("POST", "/faults", body)
            assert st == 400, (body, st, b)
            assert b["error"] == "bad_request" and b["key"] == key and key.split(".")[-1] in \
                b["message"], (body, b)
        st, b, _ = w.proxy.ctl("POST", "/faults", raw="{not json")
        assert st == 400 and "JSON" in b["message"], b
        st, b, _ = w.proxy.ctl("POST", "/faults", raw="[1]")
        assert st == 400, b
        st, b, _ = w.proxy.ctl("POST", "/faults", raw='{"kind":"reset","kind":"reset"}')
        assert st == 400, b
        st, b, _ = w.proxy.ctl("POST", "/faults", {"kind": "latency", "scope": {"client": "alice"},
                                                   "ms": 1, "jiter_ms": 3})
        assert "did you mean 'jitter_ms'" in b["message"], b
        for body, key in [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 65}, "name"),
                          ({"name": "a/b"}, "name"), ({"name": 3}, "name"),
                          ({"name": "c", "port": -1}, "port"), ({"name": "c", "port": 70000}, "port"),
                          ({"name": "c", "prot": 0}, "prot"), ({"name": "alice"}, "name")]:
            st, b, _ = w.proxy.ctl("POST", "/clients", body)
            assert st in (400, 409) and b["key"] == key, (body, st, b)
        # Per-client shorthands take no scope and validate their body too.
        st, b, _ = w.proxy.ctl("POST", "/clients/alice/partition", {"scope": {"client": "bob"}})
        assert st == 400 and b["key"] == "scope", b
        st, b, _ = w.proxy.ctl("POST", "/clients/alice/heal", {"now": True})
        assert st == 400 and b["key"] == "now", b
        st, b, _ = w.proxy.ctl("POST", "/clients/alice/faults", {"kind": "latency", "ms": -5})
        assert st == 400 and b["key"] == "ms", b
        for q, key in [("since=-1", "since"), ("since=x", "since"), ("limit=0", "limit"),
                       ("limit=10001", "limit"), ("conn=0", "conn"), ("client=a%20b", "client"),
                       ("frm=1", "frm")]:
            st, b, _ = w.proxy.ctl("GET", "/journal?" + q)
            assert st == 400 and b["key"] == key, (q, b)
        # 404 and 405.
        for m, p in [("GET", "/nope"), ("GET", "/clients/nobody"), ("POST", "/clients/alice/x"),
                     ("DELETE", "/faults/99"), ("GET", "/faults/abc"), ("GET", "/clients/a/b/c")]:
            st, b, _ = w.proxy.ctl(m, p)
            assert st == 404 and b["error"] == "not_found", (m, p, st, b)
        for m, p, allow in [("PUT", "/faults", "GET, POST, DELETE"), ("POST", "/journal",
                            "GET, DELETE"), ("GET", "/clients/alice/partition", "POST"),
                            ("PUT", "/clients/alice", "GET, DELETE")]:
            st, b, h = w.proxy.ctl(m, p)
            assert st == 405 and h.get("allow") == allow and b["error"] == "method_not_allowed", \
                (m, p, st, h)
        st, b, _ = w.proxy.ctl("POST", "/faults", raw="x" * (65 * 1024))
        assert st == 413, st
        st, _, body = raw_http(w.proxy.control, b"\x00\x01 garbage\r\n\r\n")
        assert st == 400 and b"bad_request" in body, (st, body)
        st, _, body = raw_http(w.proxy.control, b"POST /faults HTTP/1.1\r\nHost: x\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert st == 411, (st, body)
        after = (w.proxy.ok("GET", "/faults"), w.proxy.ok("GET", "/clients"))
        strip = lambda c: [{k: v for k, v in x.items() if k != "connections"} for x in c["clients"]]
        assert before[0] == after[0] and strip(before[1]) == strip(after[1])
        # Still serving.
        assert w.put(w.proxy.port, "alice", "ok", {"title": "x"})[0] == 200


def test_fault_registry_list_and_delete():
    with World() as w:
        w.proxy.add_client("alice")
        a = w.proxy.fault({"kind": "drop_message", "scope": {"client": "alice"},
                           "direction": "both", "message": "any", "count": 3})
        b = w.proxy.fault({"kind": "latency", "scope": {"sub": "bob", "dev": "phone"}, "ms": 5})
        c = w.proxy.ok("POST", "/clients/alice/faults", {"kind": "hold_response", "method": "GET",
                                                         "path": "*", "ms": 10}, want=(201,))
        assert c["scope"] == {"client": "alice"}
        fs = w.proxy.faults()
        assert [f["id"] for f in fs] == [a["id"], b["id"], c["id"]]
        assert fs[0]["count"] == 3 and fs[0]["applied"] == 0 and "count" not in fs[1]
        assert w.proxy.ok("GET", "/faults/%d" % b["id"])["scope"] == {"sub": "bob", "dev": "phone"}
        assert w.proxy.ok("DELETE", "/faults/%d" % b["id"])["deleted"] is True
        assert [f["id"] for f in w.proxy.faults()] == [a["id"], c["id"]]
        assert w.proxy.ok("DELETE", "/faults")["deleted"] == 2
        assert w.proxy.faults() == []
        # Deleting a client removes its faults and its port.
        w.proxy.ok("POST", "/clients/alice/partition", want=(201,))
        port = w.proxy.ok("GET", "/clients/alice")["port"]
        w.proxy.ok("DELETE", "/clients/alice")
        assert w.proxy.faults() == []
        st, _, _ = w.proxy.ctl("GET", "/clients/alice")
        assert st == 404
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            refused = False
        except OSError:
            refused = True
        assert refused


def test_journal_cap_and_paging():
    with World(proxy_args=["--journal-max", "100"]) as w:
        for i in range(40):
            assert w.put(w.proxy.port, "alice", "j%d" % i, {"title": "x"})[0] == 200
        # The last closes are journaled after the client read its answer.
        wait_until(lambda: w.proxy.ok("GET", "/status")["connections"] == 0,
                   what="every connection closed")
        r = w.proxy.ok("GET", "/journal")
        assert len(r["entries"]) == 100 and r["dropped"] > 0
        assert r["first_seq"] == r["entries"][0]["seq"] > 1
        assert r["last_seq"] == r["entries"][-1]["seq"] == r["first_seq"] + 99
        p1 = w.proxy.ok("GET", "/journal?limit=30")
        assert len(p1["entries"]) == 30 and p1["more"] is True
        p2 = w.proxy.ok("GET", "/journal?limit=30&since=%d" % p1["next"])
        assert p2["entries"][0]["seq"] == p1["next"] + 1
        st = w.proxy.ok("GET", "/status")
        assert st["journal_entries"] == 100 and st["journal_dropped"] == r["dropped"]
        assert w.proxy.ok("DELETE", "/journal")["deleted"] == 100
        assert w.proxy.journal() == []


def test_bytes_that_are_not_http_go_through_opaquely():
    with World() as w:
        alice = w.proxy.add_client("alice")
        s = socket.create_connection(("127.0.0.1", alice), timeout=DEFAULT_TIMEOUT)
        junk = b"\x16\x03\x01 not http at all\r\n\r\n"
        s.sendall(junk)
        wait_until(lambda: by_kind(w.proxy.journal(client="alice"), "opaque", dir="c2s"),
                   what="the opaque entry")
        wait_until(lambda: sum(e["size"] for e in by_kind(w.proxy.journal(client="alice"),
                                                          "opaque_bytes", dir="c2s")) == len(junk),
                   what="every byte on the record")
        wait_until(lambda: by_kind(w.proxy.journal(client="alice"), "upstream_open"),
                   what="the bytes to get a server")
        s.close()
        # The proxy lives on and forwards the next client normally.
        assert w.put(alice, "alice", "o1", {"title": "x"})[0] == 200


def test_cli():
    for args, rc in [(["--help"], 0), (["--version"], 0), ([], 2), (["--listen", "x"], 2),
                     (["--listen", "127.0.0.1:0", "--upstream", "https://h:1"], 2),
                     (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1"], 2),
                     (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:0"], 2),
                     (["--listen", "127.0.0.1:0", "--upstream", "http://no-such-host.invalid:80"],
                      3),
                     (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1",
                       "--journal-max", "5"], 2),
                     (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1",
                       "--bogus"], 2)]:
        p = subprocess.run([PROXY_BIN] + args, capture_output=True, timeout=DEFAULT_TIMEOUT)
        assert p.returncode == rc, (args, p.returncode, p.stderr)
    # An upstream that refuses: the client's connection is reset, the proxy lives on.
    with Env() as env:
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()
        px = Proxy(env, "http://127.0.0.1:%d" % port)
        try:
            st, _, _ = raw_http(px.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
            assert st == 0
            j = px.journal()
            assert by_kind(j, "upstream_error"), j
        finally:
            px.stop()


if __name__ == "__main__":
    if not os.path.exists(PROXY_BIN):
        print("FAIL: %s not built" % PROXY_BIN)
        sys.exit(1)
    only = sys.argv[1:]
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    tests.sort(key=lambda f: f.__code__.co_firstlineno)
    if only:
        tests = [t for t in tests if t.__name__ in only]
    run_tests(tests)
