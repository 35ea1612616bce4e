#!/usr/bin/env python3
"""hp-fake-client's timers and connection handling on real sockets, with
faults scripted through hp-fake-server --admin (POST /_hp/faults):

- Q-4/Q-7: writes answered 503 are retried on the real clock (1 s, 3 s x the
  time scale) and then delivered once; a 429 waits for its Retry-After,
  given in seconds or as an HTTP-date;
- WS-5: the server goes silent (dropped heartbeats): the client's watchdog
  closes after 2 intervals and reconnects with HELLO at its applied revision;
- WS-6: a server restart (close 1001) is followed by a reconnect;
- A-2: a token expiring on a live socket (close 4001) asks for a new token
  (AUTH_REQUIRED), and the "token" command resumes."""

import re
import time

from hpcli import Env, run_tests, wait_until

SCALE = 0.1   # retry 1 s -> 100 ms, heartbeat 30 s -> 3 s


def parse_ts(line):
    """Seconds since midnight of a log line's "2026-11-25T10:00:00.123Z"."""
    m = re.match(r"\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d)\.(\d{3})Z ", line)
    assert m, line
    h, mi, se, ms = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + se + ms / 1000.0


def http_lines(c, since, method, path):
    with c.cond:
        return [x for x in c.lines[since:] if x.get("kind") == "http"
                and x.get("method") == method and x.get("path") == path]


def test_retry_schedule_on_real_clock():
    # checks: 
    with Env() as env:
        srv = env.server(admin=True, time_scale=SCALE).start()
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE).start()
        alice.wait_ready()
        st, body, _ = srv.http("POST", "/_hp/faults", None,
                               {"fail_requests": {"method": "PUT", "count": 2, "status": 503}})
        assert st == 200, (st, body)
        m = alice.mark()
        alice.ok({"cmd": "edit", "id": "r1", "fields": {"title": "retried"}})
        alice.wait(lambda x: x.get("kind") == "queue" and x.get("op") == "acked", since=m,
                   what="acknowledged after two 503s")
        got = http_lines(alice, m, "PUT", "/api/v0.2/tasks/r1")
        assert [x["status"] for x in got] == [503, 503, 200], got
        # Q-4 timing, from the server's log timestamps (when each attempt
        # arrived): lower bounds only, a loaded machine may be late but
        # never early.  1 s then 3 s, scaled.
        stamps = [parse_ts(l) for l in srv.log_lines(
            contains="request method=PUT path=/api/v0.2/tasks/r1")]
        assert len(stamps) == 3, srv.stderr_text()
        assert stamps[1] - stamps[0] >= 1.0 * SCALE - 0.002, stamps
        assert stamps[2] - stamps[1] >= 3.0 * SCALE - 0.002, stamps
        st, body, _ = srv.http("GET", "/api/v0.2/tasks?since=0", alice.token)
        assert body["revision"] == 1, body            # delivered once
        assert alice.quit() == 0


def test_429_retry_after_both_forms():
    # checks
    """Q-7: a 429 waits for Retry-After, not the (scaled, 100 ms) schedule,
    in both forms of RFC 9110: delta-seconds and an HTTP-date."""
    with Env() as env:
        srv = env.server(admin=True, time_scale=SCALE).start()
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE).start()
        alice.wait_ready()
        for i, form in enumerate(("seconds", "http-date")):
            tid = "ra%d" % i
            st, body, _ = srv.http("POST", "/_hp/faults", None, {"fail_requests": {
                "method": "PUT", "count": 1, "status": 429, "retry_after": 3,
                "retry_after_form": form}})
            assert st == 200, (st, body)
            m = alice.mark()
            alice.ok({"cmd": "edit", "id": tid, "fields": {"title": form}})
            alice.wait(lambda x: x.get("kind") == "queue" and x.get("op") == "acked", since=m,
                       what="acknowledged after a 429 (%s)" % form)
            got = http_lines(alice, m, "PUT", "/api/v0.2/tasks/" + tid)
            assert [x["status"] for x in got] == [429, 200], got
            stamps = [parse_ts(l) for l in srv.log_lines(
                contains="request method=PUT path=/api/v0.2/tasks/%s " % tid)]
            assert len(stamps) == 2, srv.stderr_text()
            # 3 s exactly for delta-seconds; a date has whole seconds, so
            # "now + 3 s" truncated is more than 2 s ahead.  Either way far
            # beyond the 0.1 s the schedule alone would wait.
            floor = 3.0 if form == "seconds" else 2.0
            assert stamps[1] - stamps[0] >= floor - 0.002, (form, stamps)
        assert alice.quit() == 0


def test_watchdog_reconnects_after_silence():
    with Env() as env:
        srv = env.server(admin=True, time_scale=SCALE).start()
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE).start()
        alice.wait_ready()
        alice.ok({"cmd": "edit", "id": "w1", "fields": {"title": "before the silence"}})
        alice.wait_status(lambda s: s["applied_revision"] == 1 and not s["queue"],
                          what="w1 applied")
        m = alice.mark()
        t0 = time.monotonic()
        st, body, _ = srv.http("POST", "/_hp/faults", None,
                               {"drop_heartbeats": {"user": "alice", "count": 2}})
        assert st == 200, (st, body)
        closed = alice.wait(lambda x: x.get("kind") == "connection"
                            and x.get("state") == "closed", since=m, timeout=60,
                            what="the watchdog closing the silent socket")
        elapsed = time.monotonic() - t0
        # WS-5: 2 intervals (2 x 3 s) after the last message received; that
        # message may have come up to one interval before the fault was
        # armed, so at least one interval has passed since.
        assert elapsed >= 30 * SCALE * 0.9, (elapsed, closed)
        alice.wait_ready(since=m, timeout=60)
        # HELLO carried the applied revision (1): the server logs hello=1.
        wait_until(lambda: re.search(r"ready conn=\d+ user=alice hello=1 ",
                                     srv.stderr_text()), what="a HELLO with revision 1")
        assert alice.quit() == 0


def test_server_restart_and_reconnect():
    # checks: WS-6.1
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE).start()
        alice.wait_ready()
        m = alice.mark()
        assert srv.stop() == 0                       # SIGTERM: sockets closed with 1001
        alice.wait(lambda x: x.get("kind") == "connection" and x.get("state") == "closed"
                   and x.get("code") == 1001, since=m, what="close 1001")
        alice.ok({"cmd": "edit", "id": "s1", "fields": {"title": "while restarting"}})
        srv.start()
        alice.wait_ready(since=m, timeout=60)
        alice.wait_status(lambda s: not s["queue"], what="queued edit delivered after restart")
        assert alice.quit() == 0


def test_token_expiry_on_live_socket():
    # checks: WS-6.8
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE)
        alice.token = srv.token("alice", "home", ttl="4s")
        alice.start()
        alice.wait_ready()
        m = alice.mark()
        alice.wait(lambda x: x.get("kind") == "connection" and x.get("state") == "closed"
                   and x.get("code") == 4001, since=m, what="close 4001")
        alice.wait(lambda x: x.get("kind") == "notification"
                   and x.get("type") == "AUTH_REQUIRED", since=m, what="AUTH_REQUIRED")
        alice.ok({"cmd": "edit", "id": "a1", "fields": {"title": "paused until a token"}})
        assert alice.status()["connection"] == "auth_required"
        alice.ok({"cmd": "token", "token": srv.token("alice", "home", ttl="1h")})
        alice.wait_ready(since=m)
        alice.wait_status(lambda s: not s["queue"], what="queue resumed")
        assert alice.quit() == 0


if __name__ == "__main__":
    run_tests([test_retry_schedule_on_real_clock, test_429_retry_after_both_forms,
               test_watchdog_reconnects_after_silence,
               test_server_restart_and_reconnect, test_token_expiry_on_live_socket])
