"""hp-fault-proxy with the reference client (hp-fake-client) behind it: the
faults real mode will play, seen from a real client and a real server.

- a device that goes offline during a partition: the server notices only by
  heartbeat timeout (as in the simulator), and the client comes back after
  the heal;
- a response lost on the way back: the write is applied, the client times
  out and retries with the same Idempotency-Key (the journal shows both);
- a request lost before the server: the same retry, applied once;
- a response held past the client's request timeout: the same retry.

Standard library only; waits are conditions (see hpbb.py).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from hpbb import API, run_tests, wait_until  # noqa: E402
from hpcli import Client  # noqa: E402
from test_fault_proxy import PROXY_BIN, World, by_kind  # noqa: E402

# Client and server on the same scaled clock: heartbeats every 3 s, the
# server's silence deadline 7.5 s, the client's request timeout 1 s.
SCALE = 0.1


def client(w, name):
    port = w.proxy.add_client(name)
    c = Client(w.env.workdir, name, "http://127.0.0.1:%d" % port, w.token(name),
               time_scale=SCALE)
    c.start()
    c.wait_ready()
    return c


def puts_of(w, name, tid):
    return [e for e in by_kind(w.proxy.journal(client=name), "request", method="PUT")
            if e["path"] == "%s/%s" % (API, tid)]


def test_offline_during_partition_is_a_heartbeat_timeout():
    with World(time_scale=SCALE) as w:
        c = client(w, "alice")
        try:
            w.proxy.ok("POST", "/clients/alice/partition", want=(201,))
            c.ok({"cmd": "offline"})       # the device closes its socket: no FIN crosses
            wait_until(lambda: w.srv.log_lines("WARNING", "heartbeat_timeout"),
                       what="the server's heartbeat_timeout")
            lines = w.srv.stderr_text().splitlines()
            hb = min(i for i, l in enumerate(lines) if "heartbeat_timeout" in l)
            assert not [l for l in lines[:hb] if " ws_closed " in l], \
                "the server saw the client's close before its own timeout"
            j = w.proxy.journal(client="alice")
            assert [e for e in by_kind(j, "close", side="client") if not e["passed"]]
            w.proxy.ok("POST", "/clients/alice/heal")
            m = c.mark()
            c.ok({"cmd": "online"})
            c.wait_ready(since=m)
            # Back to normal: an edit reaches the server through the proxy.
            c.ok({"cmd": "edit", "id": "t1", "fields": {"title": "after"}})
            wait_until(lambda: [r for r in by_kind(w.proxy.journal(client="alice"), "response",
                                                   method="PUT") if r["status"] == 200],
                       what="the PUT answered")
        finally:
            assert c.quit() == 0


def test_lost_response_is_retried_with_the_same_key():
    with World(time_scale=SCALE) as w:
        c = client(w, "alice")
        try:
            w.proxy.ok("POST", "/clients/alice/faults",
                       {"kind": "drop_response", "method": "PUT", "path": API + "/*"},
                       want=(201,))
            c.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Milk"}})
            wait_until(lambda: len(puts_of(w, "alice", "t1")) >= 2, what="the retry")
            wait_until(lambda: not c.status()["queue"], what="the queue to drain")
            # A timeout, not a network error: the proxy kept the connection silent.
            assert "reason=timeout" in [l for l in c.stderr_text().splitlines()
                                        if " retry " in l][0]
            puts = puts_of(w, "alice", "t1")
            keys = {p["headers"]["idempotency-key"] for p in puts}
            assert len(keys) == 1, keys
            resp = by_kind(w.proxy.journal(client="alice"), "response", method="PUT")
            assert resp[0].get("dropped") and resp[0]["status"] == 200
            assert [r for r in resp[1:] if r["status"] == 200 and not r.get("dropped")]
            # Applied once: revision 1, one write.
            assert resp[-1]["body"]["revision"] == 1
        finally:
            assert c.quit() == 0


def test_lost_request_is_retried_with_the_same_key():
    with World(time_scale=SCALE) as w:
        c = client(w, "alice")
        try:
            w.proxy.ok("POST", "/clients/alice/faults",
                       {"kind": "drop_request", "method": "PUT", "path": API + "/t3"},
                       want=(201,))
            c.ok({"cmd": "edit", "id": "t3", "fields": {"title": "Eggs"}})
            wait_until(lambda: len(puts_of(w, "alice", "t3")) >= 2, what="the retry")
            wait_until(lambda: not c.status()["queue"], what="the queue to drain")
            assert "reason=timeout" in [l for l in c.stderr_text().splitlines()
                                        if " retry " in l][0]
            puts = puts_of(w, "alice", "t3")
            assert puts[0].get("dropped") and not puts[-1].get("dropped")
            assert len({p["headers"]["idempotency-key"] for p in puts}) == 1
            resp = by_kind(w.proxy.journal(client="alice"), "response", method="PUT")
            assert len(resp) == 1 and resp[0]["body"]["revision"] == 1
        finally:
            assert c.quit() == 0


def test_held_response_past_the_timeout_is_retried_with_the_same_key():
    with World(time_scale=SCALE) as w:
        c = client(w, "alice")
        try:
            # 3 s: three times the scaled 10 s request timeout.
            w.proxy.ok("POST", "/clients/alice/faults",
                       {"kind": "hold_response", "method": "PUT", "path": API + "/t2",
                        "ms": 3000}, want=(201,))
            c.ok({"cmd": "edit", "id": "t2", "fields": {"title": "Bread"}})
            wait_until(lambda: len(puts_of(w, "alice", "t2")) >= 2, what="the retry")
            wait_until(lambda: not c.status()["queue"], what="the queue to drain")
            assert "reason=timeout" in [l for l in c.stderr_text().splitlines()
                                        if " retry " in l][0]
            puts = puts_of(w, "alice", "t2")
            assert len({p["headers"]["idempotency-key"] for p in puts}) == 1
            held = [r for r in by_kind(w.proxy.journal(client="alice"), "response",
                                       method="PUT") if "held_ms" in r]
            assert len(held) == 1 and held[0]["held_ms"] == 3000
        finally:
            assert c.quit() == 0


if __name__ == "__main__":
    if not os.path.exists(PROXY_BIN):
        print("FAIL: %s not built" % PROXY_BIN)
        sys.exit(1)
    run_tests([test_offline_during_partition_is_a_heartbeat_timeout,
               test_lost_response_is_retried_with_the_same_key,
               test_lost_request_is_retried_with_the_same_key,
               test_held_response_past_the_timeout_is_retried_with_the_same_key])
