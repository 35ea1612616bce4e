#!/usr/bin/env python3
"""hp-fake-client against hp-fake-server on loopback: an edit on one client
reaches the other as TASK_UPDATED (WS-2, WS-3, C-4), and nothing crosses a
household (A-3)."""

from hpcli import Env, run_tests

DUE = "2026-11-25T18:00:00+03:00"   # C-4: must come back byte-for-byte


def event(entity, etype="TASK_UPDATED"):
    return lambda x: (x.get("kind") == "event" and x.get("event_type") == etype
                      and x.get("entity_id") == entity)


def test_edit_round_trip_between_two_clients():
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        bob = env.client("bob", srv, "bob", "home").start()
        carol = env.client("carol", srv, "carol", "away").start()
        for c in (alice, bob, carol):
            c.wait_ready()

        alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Milk", "due_at": DUE}})
        ev = bob.wait(event("t1"), what="TASK_UPDATED t1 at bob")
        assert ev["payload"]["title"] == "Milk", ev
        assert ev["payload"]["due_at"] == DUE, ev          # verbatim, offset kept
        assert ev["revision"] >= 1, ev

        # The HTTP exchange is observable on the editing side.
        alice.wait(lambda x: x.get("kind") == "http" and x.get("method") == "PUT"
                   and x.get("path") == "/api/v0.2/tasks/t1" and x.get("status") == 200,
                   what="PUT t1 200")
        alice.wait_status(lambda s: len(s["queue"]) == 0, what="alice's queue empty")

        # And back: bob's change reaches alice, on top of alice's title.
        m = alice.mark()
        bob.ok({"cmd": "edit", "id": "t1", "fields": {"done": True}})
        ev2 = alice.wait(lambda x: event("t1")(x) and x["payload"].get("done") is True,
                         since=m, what="alice sees done=true")
        assert ev2["payload"]["title"] == "Milk", ev2
        assert ev2["payload"]["due_at"] == DUE, ev2
        assert ev2["revision"] > ev["revision"], (ev, ev2)

        # The cache holds the server version (time verbatim).
        alice.wait_status(lambda s: "t1" in s["cache"]["ids"], what="t1 cached at alice")
        m = alice.mark()
        alice.send({"cmd": "cached", "id": "t1"})
        cached = alice.wait(lambda x: x.get("kind") == "cached", since=m)
        assert cached["task"]["due_at"] == DUE, cached

        # the other household saw nothing of it.
        assert carol.count(event("t1")) == 0, carol.lines
        for c in (alice, bob, carol):
            assert c.count(lambda x: x.get("kind") == "_not_json") == 0, c.lines
            assert c.quit() == 0, "%s exit code" % c.name


if __name__ == "__main__":
    run_tests([test_edit_round_trip_between_two_clients])
