"""store - the device store: one SQLite file (the stdlib sqlite3 module).

Tables:
- meta(key, value): the last applied revision (WS-2: HELLO carries it);
- queue: the offline queue, FIFO by seq (Q-1..Q-3): mutation id, op,
  entity id, base revision, base snapshot, snapshot, attempts, sent flag;
- dead_letter: items a server refused with a 4xx (Q-7), kept and visible;
- cache: the server's version of each task, as the server sent it (C-4),
  with when it was last written from the server (C-1) and last used (C-2).

Q-1: every change is committed before the caller reports it (each method
is one transaction; WAL with synchronous=FULL), so a crash or kill -9
loses nothing the user was told about.  Restarting with the same file keeps
the queue, the dead letters, the cache and the applied revision.

Level 1 of the contract lets a client skip encryption: this store is NOT
encrypted (C-3 is not implemented by this example; see README.md).  Sizes
(C-2) are counted on the stored JSON text.
"""

import json
import sqlite3
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mutation_id TEXT NOT NULL, op TEXT NOT NULL, entity_id TEXT NOT NULL,
  base_revision INTEGER NOT NULL, base TEXT, snapshot TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dead_letter (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mutation_id TEXT NOT NULL, op TEXT NOT NULL, entity_id TEXT NOT NULL,
  status INTEGER NOT NULL, reason TEXT NOT NULL, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cache (
  entity_id TEXT PRIMARY KEY, task TEXT NOT NULL, updated_at REAL NOT NULL,
  used_at REAL NOT NULL);
"""


class Item:
    """One queued change (Q-3).  seq orders the queue; the rest is the
    persisted part.  The fields below `sent` live in memory only."""

    def __init__(self, mutation_id, op, entity_id, base_revision, base, snapshot,
                 attempts=0, sent=False, seq=None):
        self.seq = seq
        self.mutation_id = mutation_id
        self.op = op                      # "put" or "delete"
        self.entity_id = entity_id
        self.base_revision = base_revision
        self.base = base                  # the server version it was edited from (or None)
        self.snapshot = snapshot          # the full task to send
        self.attempts = attempts          # consecutive failed attempts
        self.sent = sent                  # sent at least once (Q-6: coalesce gets a new id)
        # in memory only
        self.request = None               # the asyncio task of the request in flight
        self.next_at = 0.0                # loop time of the next attempt
        self.conflict_current = None      # CF-3: the 409's current, while a banner waits
        self.conflict_fields = []
        self.edit_vs_delete = False


class Store:
    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    def _tx(self, sql, args=()):
        with self.db:  # BEGIN ... COMMIT (rolled back on an exception)
            self.db.execute("BEGIN IMMEDIATE")
            return self.db.execute(sql, args)

    # -- meta ---------------------------------------------------------------

    def applied_revision(self):
        row = self.db.execute("SELECT value FROM meta WHERE key='applied'").fetchone()
        return int(row[0]) if row else 0

    def set_applied_revision(self, rev):
        self._tx("INSERT OR REPLACE INTO meta (key, value) VALUES ('applied', ?)", (str(rev),))

    # -- queue (Q-1..Q-3) ---------------------------------------------------

    def queue_load(self):
        rows = self.db.execute("SELECT seq, mutation_id, op, entity_id, base_revision, base, "
                               "snapshot, attempts, sent FROM queue ORDER BY seq").fetchall()
        return [Item(r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None,
                     json.loads(r[6]), r[7], bool(r[8]), seq=r[0]) for r in rows]

    def queue_push(self, it):
        cur = self._tx("INSERT INTO queue (mutation_id, op, entity_id, base_revision, base, "
                       "snapshot, attempts, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (it.mutation_id, it.op, it.entity_id, it.base_revision,
                        None if it.base is None else json.dumps(it.base),
                        json.dumps(it.snapshot), it.attempts, int(it.sent)))
        it.seq = cur.lastrowid

    def queue_update(self, it):
        self._tx("UPDATE queue SET mutation_id=?, op=?, base_revision=?, base=?, snapshot=?, "
                 "attempts=?, sent=? WHERE seq=?",
                 (it.mutation_id, it.op, it.base_revision,
                  None if it.base is None else json.dumps(it.base), json.dumps(it.snapshot),
                  it.attempts, int(it.sent), it.seq))

    def queue_remove(self, it):
        self._tx("DELETE FROM queue WHERE seq=?", (it.seq,))

    def dead_letter_move(self, it, status, reason):
        """Q-7: the item leaves the queue for the dead-letter list, atomically."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO dead_letter (mutation_id, op, entity_id, status, "
                            "reason, snapshot) VALUES (?, ?, ?, ?, ?, ?)",
                            (it.mutation_id, it.op, it.entity_id, status, reason,
                             json.dumps(it.snapshot)))
            self.db.execute("DELETE FROM queue WHERE seq=?", (it.seq,))

    def dead_letters(self):
        return [{"mutation_id": r[0], "op": r[1], "entity_id": r[2], "status": r[3],
                 "reason": r[4], "snapshot": json.loads(r[5])}
                for r in self.db.execute("SELECT mutation_id, op, entity_id, status, reason, "
                                         "snapshot FROM dead_letter ORDER BY seq")]

    # -- cache (WS-2, C-4) -------------------------------------------------------

    def cache_get(self, entity_id, use=False):
        """The cached task or None; use=True when the user reads it (C-2:
        a read counts as a use), not for the client's own bookkeeping."""
        row = self.db.execute("SELECT task FROM cache WHERE entity_id=?", (entity_id,)).fetchone()
        if not row:
            return None
        if use:
            self._tx("UPDATE cache SET used_at=? WHERE entity_id=?", (time.time(), entity_id))
        return json.loads(row[0])

    def cache_put(self, entity_id, task):
        now = time.time()
        self._tx("INSERT OR REPLACE INTO cache (entity_id, task, updated_at, used_at) "
                 "VALUES (?, ?, ?, ?)", (entity_id, json.dumps(task), now, now))

    def cache_enforce(self, window_s, cap_bytes, pinned):
        """C-1: entries not written from the server for window_s are purged;
        C-2: over cap_bytes, least recently used entries are evicted until
        under.  Entities in `pinned` (queued changes) are never removed.
        Returns how many entries were removed."""
        removed = 0
        limit = time.time() - window_s
        for eid, in self.db.execute("SELECT entity_id FROM cache WHERE updated_at <= ? "
                                    "ORDER BY updated_at", (limit,)).fetchall():
            if eid not in pinned:
                self._tx("DELETE FROM cache WHERE entity_id=?", (eid,))
                removed += 1
        total = self.cache_info()["bytes"]
        if total > cap_bytes:
            for eid, size in self.db.execute("SELECT entity_id, length(task) FROM cache "
                                             "ORDER BY used_at, entity_id").fetchall():
                if total <= cap_bytes:
                    break
                if eid in pinned:
                    continue
                self._tx("DELETE FROM cache WHERE entity_id=?", (eid,))
                total -= size
                removed += 1
        return removed

    def cache_next_expiry(self, window_s, pinned):
        """C-1: the wall-clock time the oldest unpinned entry leaves, or None."""
        for eid, at in self.db.execute("SELECT entity_id, updated_at FROM cache "
                                       "ORDER BY updated_at"):
            if eid not in pinned:
                return at + window_s
        return None

    def apply_event(self, entity_id, task, revision):
        """WS-2: an event's task (None: REMINDER_DUE) and the applied
        revision it moves to, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if task is not None:
                now = time.time()
                self.db.execute("INSERT OR REPLACE INTO cache (entity_id, task, updated_at, "
                                "used_at) VALUES (?, ?, ?, ?)",
                                (entity_id, json.dumps(task), now, now))
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('applied', ?)",
                            (str(revision),))

    def cache_replace(self, tasks, revision):
        """WS-2 reload (RESYNC_REQUIRED): the cache becomes the server's list
        and the applied revision its revision, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM cache")
            now = time.time()
            for t in tasks:
                self.db.execute("INSERT OR REPLACE INTO cache (entity_id, task, updated_at, "
                                "used_at) VALUES (?, ?, ?, ?)", (t["id"], json.dumps(t), now, now))
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('applied', ?)",
                            (str(revision),))

    def cache_info(self):
        rows = self.db.execute("SELECT entity_id, length(task) FROM cache "
                               "ORDER BY entity_id").fetchall()
        return {"entries": len(rows), "bytes": sum(r[1] for r in rows),
                "ids": [r[0] for r in rows]}
