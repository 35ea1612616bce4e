#!/usr/bin/env python3
"""Edge check of hp-fake-client's lock commands on real sockets (found by the
blind mutation catalogue, tests/mutation/catalogue/blind.txt):

- CF-1.9 / CF-1.6: "lock" sends POST .../lock and names the id in the
  heartbeats; "unlock" (save or cancel) sends DELETE .../lock (204), removes
  the id from the app's locks, and the household hears LOCK_REFRESHED
  released; afterwards another user takes the lock (200)."""

from hpcli import Env, run_tests


def http_lines(c, since, method, path):
    with c.cond:
        return [x for x in c.lines[since:] if x.get("kind") == "http"
                and x.get("method") == method and x.get("path") == path]


def lock_events(c, since, state):
    with c.cond:
        return [x for x in c.lines[since:] if x.get("kind") == "event"
                and x.get("event_type") == "LOCK_REFRESHED" and x.get("entity_id") == "t1"
                and (x.get("payload") or {}).get("state") == state]


def test_lock_then_unlock_releases():
    # checks: CF-1.9 CF-1.6
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        bob = env.client("bob", srv, "bob", "home").start()
        alice.wait_ready()
        bob.wait_ready()
        ma, mb = alice.mark(), bob.mark()
        alice.ok({"cmd": "lock", "id": "t1"})
        bob.wait(lambda x: x.get("kind") == "event" and x.get("event_type") == "LOCK_REFRESHED"
                 and (x.get("payload") or {}).get("state") == "held", since=mb,
                 what="LOCK_REFRESHED held")
        assert alice.status()["locks"] == ["t1"]
        alice.ok({"cmd": "unlock", "id": "t1"})
        bob.wait(lambda x: x.get("kind") == "event" and x.get("event_type") == "LOCK_REFRESHED"
                 and (x.get("payload") or {}).get("state") == "released", since=mb,
                 what="LOCK_REFRESHED released")
        alice.wait(lambda x: x.get("kind") == "http" and x.get("method") == "DELETE",
                   since=ma, what="the DELETE of the lock")
        assert [x["status"] for x in http_lines(alice, ma, "POST", "/api/v0.2/tasks/t1/lock")] \
            == [200], alice.lines[ma:]
        assert [x["status"] for x in http_lines(alice, ma, "DELETE", "/api/v0.2/tasks/t1/lock")] \
            == [204], alice.lines[ma:]
        assert alice.status()["locks"] == []
        assert len(lock_events(bob, mb, "released")) == 1
        m = bob.mark()
        bob.ok({"cmd": "lock", "id": "t1"})
        bob.wait(lambda x: x.get("kind") == "http" and x.get("method") == "POST", since=m,
                 what="bob's POST of the lock")
        assert [x["status"] for x in http_lines(bob, m, "POST", "/api/v0.2/tasks/t1/lock")] \
            == [200], bob.lines[m:]
        for c in (alice, bob):
            assert c.quit() == 0
        assert srv.stop() == 0


if __name__ == "__main__":
    run_tests([test_lock_then_unlock_releases])
