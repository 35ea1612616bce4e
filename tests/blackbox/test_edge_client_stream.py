#!/usr/bin/env python3
"""Edge checks of hp-fake-client's change stream on real sockets (found by
the blind mutation catalogue, tests/mutation/catalogue/blind.txt):

- WS-3 / C-4: a TASK_UPDATED far larger than one socket read (notes of
  60 000 bytes, the event about 60 KiB, still under the 64 KiB frame limit)
  arrives in several pieces; the client must hand the whole message to its
  core: the event is applied, the cache holds the notes byte for byte, and
  no bad_message is logged."""

from hpcli import Env, run_tests, warnings

SCALE = 0.1


def test_large_event_is_applied_whole():
    # checks: WS-3.1 C-4.1
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE).start()
        alice.wait_ready()
        notes = "".join(chr(ord("a") + i % 26) for i in range(60000))
        due = "2026-11-25T18:00:00+03:00"
        m = alice.mark()
        st, body, _ = srv.put("big", srv.token("bob", "home"),
                              {"title": "Big", "notes": notes, "due_at": due})
        assert st == 200, (st, body)
        ev = alice.wait(lambda x: x.get("kind") == "event" and x.get("event_type") == "TASK_UPDATED"
                        and x.get("entity_id") == "big", since=m, what="the large TASK_UPDATED")
        assert ev.get("revision") == body["revision"], ev
        mc = alice.mark()
        alice.send({"cmd": "cached", "id": "big"})
        got = alice.wait(lambda x: x.get("kind") == "cached" and x.get("id") == "big", since=mc,
                         what="the cached line")
        task = got.get("task") or {}
        assert task.get("notes") == notes, (len(task.get("notes") or ""), task.get("title"))
        assert task.get("due_at") == due, task.get("due_at")
        assert alice.status()["applied_revision"] == body["revision"]
        assert warnings(alice.stderr_text(), "bad_message") == [], alice.stderr_text()[-2000:]
        assert alice.quit() == 0
        assert srv.stop() == 0


if __name__ == "__main__":
    run_tests([test_large_event_is_applied_whole])
