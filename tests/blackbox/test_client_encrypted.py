#!/usr/bin/env python3
"""No plain task text in the client's files (C-3): cache values and queued
snapshots are sealed.  The bytes of every file of the store (db, -wal,
-shm, -journal) are searched for the titles and notes, while the client runs
and after it quit.  A wrong key is a clear KEY_MISMATCH, not a crash, and
the queued edits come back with the right key."""

import glob

from hpcli import Env, api_get, run_tests

SECRETS = [b"PlainTitleAcked-7f3a", b"PlainTitleQueued-91bc", b"NotesSecret-44d0"]


def found_in_files(db, needle):
    """Paths of the store's files (db, -wal, -shm, -journal) holding needle."""
    hits = []
    for path in glob.glob(db + "*"):
        with open(path, "rb") as f:
            if needle in f.read():
                hits.append(path)
    return hits


def leaks(db):
    found = []
    for path in glob.glob(db + "*"):
        with open(path, "rb") as f:
            data = f.read()
        for s in SECRETS:
            if s in data:
                found.append((path, s))
    return found


def test_no_plain_text_in_store_files():
    # checks: C-3.1
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        alice.ok({"cmd": "edit", "id": "visible-id-e1", "fields": {"title": SECRETS[0].decode()}})
        alice.wait_status(lambda s: not s["queue"] and "visible-id-e1" in s["cache"]["ids"],
                          what="e1 acknowledged and cached")
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "visible-id-e2", "fields": {"title": SECRETS[1].decode(),
                                                         "notes": SECRETS[2].decode()}})
        assert len(alice.status()["queue"]) == 1
        files = glob.glob(alice.db + "*")
        assert alice.db in files, files
        # Positive control: entity ids are stored in clear (they are keys,
        # not task text), so the scan does read where the queue lives.
        assert found_in_files(alice.db, b"visible-id-e2"), files
        assert leaks(alice.db) == [], leaks(alice.db)       # while running (WAL live)
        assert alice.quit() == 0
        assert leaks(alice.db) == [], leaks(alice.db)       # after a clean stop


def test_wrong_key_is_clear_and_keeps_queued_edits():
    # checks: C-3.2 C-3.4
    with Env() as env:
        srv = env.server().start()
        alice = env.client("alice", srv, "alice", "home").start()
        alice.wait_ready()
        alice.ok({"cmd": "offline"})
        alice.ok({"cmd": "edit", "id": "w1", "fields": {"title": "Queued before the key change"}})
        assert alice.quit() == 0

        good_key = open(alice.key_file).read()
        with open(alice.key_file, "w") as f:
            f.write("00" * 32)
        m = alice.mark()
        alice.start()
        n = alice.wait(lambda x: x.get("kind") == "notification"
                       and x.get("type") == "KEY_MISMATCH", since=m, what="KEY_MISMATCH")
        assert n.get("quarantined") == 1, n
        st = alice.status()
        assert st["queue"] == [], st
        assert alice.quit() == 0

        with open(alice.key_file, "w") as f:
            f.write(good_key)
        m = alice.mark()
        alice.start()
        alice.ok({"cmd": "online"})
        alice.wait_status(lambda s: not s["queue"], what="restored item flushed")
        status, body = api_get(srv, "/api/v0.2/tasks/w1", alice.token)
        assert status == 200 and body["title"] == "Queued before the key change", (status, body)
        assert alice.quit() == 0


if __name__ == "__main__":
    run_tests([test_no_plain_text_in_store_files, test_wrong_key_is_clear_and_keeps_queued_edits])
