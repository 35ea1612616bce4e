#!/usr/bin/env python3
"""Edge check of hp-fake-client's sealed store (found by the blind mutation
catalogue, tests/mutation/catalogue/blind.txt):

- C-3.6: a sealed value copied, intact, into another task's row does not
  open there (the entity id is the seal's associated data): after a restart
  the copy is dropped with a WARNING `tampered`, while the original still
  opens.  (A test that copies a value it has already corrupted cannot tell
  whether the entity id is bound to the seal.)"""

import sqlite3

from hpcli import Env, run_tests, warnings


def cached(c, tid):
    m = c.mark()
    c.send({"cmd": "cached", "id": tid})
    return c.wait(lambda x: x.get("kind") == "cached" and x.get("id") == tid, since=m,
                  what="cached %s" % tid).get("task")


def test_value_moved_to_another_row_does_not_open():
    # checks: C-3.6
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        bob = srv.token("bob", "home")
        for tid, title in (("t1", "One"), ("t2", "Two")):
            st, body, _ = srv.put(tid, bob, {"title": title})
            assert st == 200, (st, body)
        alice.wait_status(lambda s: s["applied_revision"] == 2 and s["cache"]["entries"] == 2,
                          what="both tasks cached")
        assert cached(alice, "t2")["title"] == "Two"
        assert alice.quit() == 0
        db = sqlite3.connect(alice.db)
        db.execute("UPDATE cache SET value=(SELECT value FROM cache WHERE id='t1') WHERE id='t2'")
        db.commit()
        db.close()
        alice.start()
        alice.wait_ready(since=len(alice.lines) - 1 if alice.lines else 0)
        assert cached(alice, "t2") is None
        assert cached(alice, "t1")["title"] == "One"
        assert len(warnings(alice.stderr_text(), "tampered table=cache entity=task/t2")) == 1, \
            alice.stderr_text()[-2000:]
        assert alice.quit() == 0
        assert srv.stop() == 0


if __name__ == "__main__":
    run_tests([test_value_moved_to_another_row_does_not_open])
