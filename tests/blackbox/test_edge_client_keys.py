#!/usr/bin/env python3
"""Edge check of hp-fake-client's Idempotency-Keys on real processes (found
by the blind mutation catalogue, tests/mutation/catalogue/blind.txt):

- Q-3.3: two devices of the same user (two processes, two stores) that do
  exactly the same things make different mutation ids.  The server keeps
  idempotency results per household, user and key, so two devices drawing
  the same key (a PRNG seeded with a constant, or with a coarse clock)
  would have the second device's write answered with the first one's
  stored result and silently dropped."""

from hpcli import Env, run_tests


def test_two_devices_of_one_user_never_share_a_key():
    # checks
    with Env() as env:
        srv = env.server().start()
        phone = env.client("phone", srv, "alice", "home").start()
        laptop = env.client("laptop", srv, "alice", "home").start()
        phone.wait_ready()
        laptop.wait_ready()
        # Same history on both: a fresh store, READY at 0, offline, one edit.
        for c in (phone, laptop):
            c.ok({"cmd": "offline"})
        phone.ok({"cmd": "edit", "id": "t1", "fields": {"title": "from the phone"}})
        laptop.ok({"cmd": "edit", "id": "t2", "fields": {"title": "from the laptop"}})
        keys = [c.status()["queue"][0]["mutation_id"] for c in (phone, laptop)]
        assert keys[0] != keys[1], keys
        for c in (phone, laptop):
            c.ok({"cmd": "online"})
        for c in (phone, laptop):
            c.wait_status(lambda s: not s["queue"], what="queue delivered")
        st, body, _ = srv.http("GET", "/api/v0.2/tasks?since=0", srv.token("alice", "home"))
        assert st == 200, (st, body)
        titles = {t["id"]: t["title"] for t in body["tasks"]}
        assert titles == {"t1": "from the phone", "t2": "from the laptop"}, titles
        assert body["revision"] == 2, body
        for c in (phone, laptop):
            assert c.quit() == 0
        assert srv.stop() == 0


if __name__ == "__main__":
    run_tests([test_two_devices_of_one_user_never_share_a_key])
