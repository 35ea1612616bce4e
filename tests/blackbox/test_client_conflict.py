#!/usr/bin/env python3
"""Two hp-fake-clients edit one task while offline (CF-2, CF-3, CF-4).

Same field, different values: the second writer gets a 409, raises CONFLICT
with its choices, and "overwrite" settles it.  Different fields: the 409 is
merged without asking.  Every 409 is a WARNING on the server and on the
client that received it."""

from hpcli import Env, api_get, run_tests, warnings


def event(entity):
    return lambda x: (x.get("kind") == "event" and x.get("event_type") == "TASK_UPDATED"
                      and x.get("entity_id") == entity)


def notification(ntype, entity=None):
    return lambda x: (x.get("kind") == "notification" and x.get("type") == ntype
                      and (entity is None or x.get("entity_id") == entity))


def queue_empty(s):
    return len(s["queue"]) == 0


def setup_shared_task(env, tid, title):
    srv = env.server().start()
    alice = env.client("alice", srv, "alice", "home").start()
    bob = env.client("bob", srv, "bob", "home").start()
    alice.wait_ready()
    bob.wait_ready()
    alice.ok({"cmd": "edit", "id": tid, "fields": {"title": title}})
    bob.wait(event(tid), what="bob sees %s" % tid)
    alice.wait_status(queue_empty, what="alice flushed")
    return srv, alice, bob


def test_same_field_conflict_banner_and_overwrite():
    # checks: CF-3.1 CF-3.4
    with Env() as env:
        srv, alice, bob = setup_shared_task(env, "t1", "Milk")
        alice.ok({"cmd": "offline"})
        bob.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Oat milk"}})
        bob.ok({"cmd": "edit", "id": "t1", "fields": {"title": "Soy milk"}})

        alice.ok({"cmd": "online"})
        alice.wait_status(queue_empty, what="alice's edit acknowledged")
        m = bob.mark()
        bob.ok({"cmd": "online"})
        n = bob.wait(notification("CONFLICT", "t1"), since=m, what="CONFLICT t1 at bob")
        assert "title" in n["fields"], n
        assert set(n["choices"]) == {"merge", "overwrite"}, n
        assert not n.get("edit_vs_delete"), n
        st = bob.status()
        assert any(c["entity_id"] == "t1" for c in st["conflicts"]), st
        assert len(st["queue"]) == 1, st         # CF-3: the queue waits for the choice

        # CF-4: the 409 is a WARNING on both sides, naming the entity.
        assert warnings(bob.stderr_text(), "t1"), bob.stderr_text()
        assert warnings(srv.stderr_text(), "t1"), srv.stderr_text()

        # A choice for a task without a conflict is refused, not a crash.
        r = bob.cmd({"cmd": "choose", "id": "nope", "choice": "merge"})
        assert r["kind"] == "error", r
        r = bob.cmd({"cmd": "choose", "id": "t1", "choice": "sideways"})
        assert r["kind"] == "error", r

        m = alice.mark()
        bob.ok({"cmd": "choose", "id": "t1", "choice": "overwrite"})
        bob.wait_status(queue_empty, what="bob's overwrite acknowledged")
        ev = alice.wait(lambda x: event("t1")(x) and x["payload"]["title"] == "Soy milk",
                        since=m, what="alice sees bob's overwrite")
        status, body = api_get(srv, "/api/v0.2/tasks/t1", alice.token)
        assert status == 200 and body["title"] == "Soy milk", (status, body)
        assert ev["payload"]["title"] == "Soy milk"
        assert alice.quit() == 0 and bob.quit() == 0


def test_different_fields_merge_without_banner():
    # checks: CF-2.1 CF-2.2
    with Env() as env:
        srv, alice, bob = setup_shared_task(env, "t2", "Bread")
        alice.ok({"cmd": "offline"})
        bob.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "t2", "fields": {"title": "Rye bread"}})
        bob.ok({"cmd": "edit", "id": "t2", "fields": {"notes": "from the corner shop"}})
        alice.ok({"cmd": "online"})
        alice.wait_status(queue_empty, what="alice's edit acknowledged")
        m = bob.mark()
        bob.ok({"cmd": "online"})
        bob.wait_status(queue_empty, what="bob's merged edit acknowledged")
        assert bob.count(notification("CONFLICT"), since=m) == 0, bob.lines[m:]
        status, body = api_get(srv, "/api/v0.2/tasks/t2", alice.token)
        assert status == 200, (status, body)
        assert body["title"] == "Rye bread" and body["notes"] == "from the corner shop", body
        # The 409 happened (then merged): WARNING on both sides all the same.
        bob.wait(lambda x: x.get("kind") == "http" and x.get("status") == 409, since=m,
                 what="bob's 409")
        assert warnings(bob.stderr_text(), "t2"), bob.stderr_text()
        assert warnings(srv.stderr_text(), "t2"), srv.stderr_text()
        assert alice.quit() == 0 and bob.quit() == 0


if __name__ == "__main__":
    run_tests([test_same_field_conflict_banner_and_overwrite,
               test_different_fields_merge_without_banner])
