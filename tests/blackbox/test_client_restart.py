#!/usr/bin/env python3
"""The offline queue survives a client restart (Q-1) and is delivered in
FIFO order (Q-2): edits queued while "offline" and edits queued while the
server is down, each followed by a quit and a restart over the same --db."""

from hpcli import Env, api_get, run_tests


def event(entity):
    return lambda x: (x.get("kind") == "event" and x.get("event_type") == "TASK_UPDATED"
                      and x.get("entity_id") == entity)


def queued_ids(status):
    return [i["entity_id"] for i in status["queue"]]


def test_queue_survives_restart_while_offline():
    # checks: 
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        bob = env.client("bob", srv, "bob", "home").start()
        alice.wait_ready()
        bob.wait_ready()
        alice.ok({"cmd": "offline"})
        ids = ["r1", "r2", "r3"]
        for i, tid in enumerate(ids):
            alice.ok({"cmd": "edit", "id": tid, "fields": {"title": "Item %d" % i}})
        st = alice.status()
        assert queued_ids(st) == ids, st
        assert alice.quit() == 0

        # Restart over the same store: the queue is back, in order.
        m = bob.mark()
        alice.start()
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: len(s["queue"]) == 0, what="restored queue flushed")
        got = [bob.wait(event(tid), since=m, what="bob sees %s" % tid) for tid in ids]
        order = [bob.lines.index(g) for g in got]
        assert order == sorted(order), "FIFO broken: %s" % [g["entity_id"] for g in got]
        for i, tid in enumerate(ids):
            status, body = api_get(srv, "/api/v0.2/tasks/" + tid, bob.token)
            assert status == 200 and body["title"] == "Item %d" % i, (tid, status, body)
        assert alice.quit() == 0 and bob.quit() == 0


def test_queue_survives_restart_while_server_down():
    # checks: 
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        srv.stop()
        ids = ["d1", "d2"]
        for tid in ids:
            alice.ok({"cmd": "edit", "id": tid, "fields": {"title": "Down " + tid}})
        # Attempts fail (network), the items stay queued.
        alice.wait(lambda x: x.get("kind") == "http" and x.get("status") == 0,
                   what="a failed attempt while the server is down")
        assert queued_ids(alice.status()) == ids
        assert alice.quit() == 0

        srv.start()                      # same port, same server db
        alice.start()
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: len(s["queue"]) == 0, what="queue flushed after restart")
        status, body = api_get(srv, "/api/v0.2/tasks?since=0", alice.token)
        assert status == 200, (status, body)
        titles = {t["id"]: t["title"] for t in body["tasks"]}
        assert titles == {"d1": "Down d1", "d2": "Down d2"}, titles
        assert body["revision"] == 2, body          # each applied once
        assert alice.quit() == 0


if __name__ == "__main__":
    run_tests([test_queue_survives_restart_while_offline,
               test_queue_survives_restart_while_server_down])
