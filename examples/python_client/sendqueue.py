"""sendqueue - the offline queue: Q-1 .. Q-7, CF-2 .. CF-4 (client side).

- Q-1: items live in the store (store.py), committed before reported; an
  item that was in flight at a crash is sent again with the same key.
- Q-2: at most queue_max (100) items, the one in flight included; FIFO, one
  request at a time: only the head is ever sent.
- Q-3: an item holds the snapshot, the base revision, the base snapshot and
  a mutation id sent as Idempotency-Key, the same on every retry (also after
  a merge or a banner choice).  Chaining: a later item of the same task is
  based on the earlier one's snapshot and rebased onto the acknowledged
  result (or onto the cached server version after a dead letter), its own
  changes replayed onto it.
- Q-4/Q-5: retry delays 1, 3, 9, 27, 120 s then 120 s; SYNC_FAILED at the
  5th consecutive failure, once per streak; "sync now" resets.
- Q-6: full queue: coalesce into the task's queued item that is not in
  flight (a new key if it had been sent), else QUEUE_FULL.
- Q-7: network error, timeout (10 s), 5xx, 429 (Retry-After) -> retry;
  401 -> AUTH_REQUIRED, not a failure; 409 -> CF-2/CF-3; other statuses ->
  dead letter + REJECTED; going offline aborts the request (not a failure).
- CF-2/CF-3/CF-4: 409 -> WARNING log, three-way merge and an automatic
  retry on current.revision, or the CONFLICT banner waiting for `choose`.
"""

import asyncio
import copy
import email.utils
import json
import os
import time

import merge
import rest
from policy import FIELDS
from store import Item

API = "/api/v0.2/tasks"


def new_mutation_id():
    return "m-" + os.urandom(16).hex()


class SendQueue:
    def __init__(self, core):
        self.core = core
        self.items = core.store.queue_load()
        self.sync_failed_sent = False                 # once per streak
        self.timer = None

    # -- helpers ---------------------------------------------------------------------

    def _emit(self, op, it, length=None):
        self.core.emit({"kind": "queue", "op": op, "entity_id": it.entity_id,
                        "mutation_id": it.mutation_id,
                        "length": len(self.items) if length is None else length})

    def last_of(self, entity_id):
        for it in reversed(self.items):
            if it.entity_id == entity_id:
                return it
        return None

    def local_view(self, entity_id):
        """The task as this device sees it: last queued snapshot, else cache."""
        it = self.last_of(entity_id)
        if it is not None:
            return copy.deepcopy(it.snapshot)
        return self.core.store.cache_get(entity_id, use=True)

    def pinned(self):
        return {it.entity_id for it in self.items}

    # -- user actions ------------------------------------------------------------------

    def edit(self, entity_id, fields):
        """Returns None, or the error message (nothing changed)."""
        if not merge.id_valid(entity_id):
            return "invalid task id"
        err = merge.check_fields(fields)
        if err:
            return err
        snap = self.local_view(entity_id) or merge.new_task(entity_id)
        snap = merge.apply_fields(snap, fields)
        snap["deleted"] = False
        return self._enqueue(entity_id, "put", snap)

    def delete(self, entity_id):
        if not merge.id_valid(entity_id):
            return "invalid task id"
        snap = self.local_view(entity_id)
        if snap is None:
            return "unknown task"
        snap["deleted"] = True
        return self._enqueue(entity_id, "delete", snap)

    def _enqueue(self, entity_id, op, snap):
        core = self.core
        last = self.last_of(entity_id)
        if len(self.items) >= core.policy.queue_max:
            if last is not None and last.request is None:
                # coalesce in place (base kept); a new key if it was sent.
                last.snapshot, last.op = snap, op
                if last.sent:
                    last.mutation_id, last.sent = new_mutation_id(), False
                core.store.queue_update(last)
                self._emit("coalesced", last)
                self.pump()
                return None
            core.log("WARNING", "queue_full", entity="task/" + entity_id,
                     length=len(self.items), max=core.policy.queue_max)
            core.emit({"kind": "notification", "type": "QUEUE_FULL", "entity_id": entity_id,
                       "length": len(self.items)})
            core.emit({"kind": "queue", "op": "refused", "entity_id": entity_id,
                       "mutation_id": "", "length": len(self.items)})
            return "queue full"
        if last is not None:                 # Q-3 chaining
            base, base_rev = copy.deepcopy(last.snapshot), last.base_revision
        else:
            base = core.store.cache_get(entity_id)
            base_rev = base.get("revision", 0) if base else 0
        it = Item(new_mutation_id(), op, entity_id, base_rev, base, snap)
        it.next_at = _now()
        core.store.queue_push(it)            # committed before reported
        self.items.append(it)
        self._emit("enqueued", it)
        self.pump()
        return None

    def sync_now(self):
        """Q-5: try the head at once and reset the schedule."""
        if self.items:
            self._reset_streak(self.items[0])
            self.items[0].next_at = _now()
        else:
            self.sync_failed_sent = False
        self.pump()

    def resume_now(self):
        """After `online` or a new token: the head goes at once, same key."""
        if self.items and self.items[0].request is None:
            self.items[0].next_at = _now()
        self.pump()

    def abort(self):
        """Going offline: the request in flight is aborted, not a failure."""
        if self.items and self.items[0].request is not None:
            self.items[0].request.cancel()
            self.items[0].request = None

    # -- CF-3: the user's answer to the banner -------------------------------------

    def choose(self, entity_id, choice):
        h = self.items[0] if self.items else None
        if h is None or h.conflict_current is None or h.entity_id != entity_id:
            return "no conflict pending on that id"
        if choice not in ("merge", "overwrite"):
            return 'choice must be "merge" or "overwrite"'
        self.core.log("INFO", "conflict_choice", entity="task/" + entity_id, choice=choice)
        if choice == "overwrite":            # our snapshot (or our delete) everywhere
            self._retry_on_current(copy.deepcopy(h.snapshot), h.op)
        elif h.edit_vs_delete:               # theirs stands: settled without a request
            self._resolved()
        else:                                # three-way, their value on conflicts
            merged, _ = merge.merge3(h.base, h.snapshot, h.conflict_current,
                                     self.core.policy.mergeable)
            self._retry_on_current(merged, "put")
        return None

    # -- sending (Q-2) -------------------------------------------------------------------

    def pump(self):
        """Send the head when it is due: FIFO, one request in flight."""
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if self.core.paused() or not self.items:
            return
        h = self.items[0]
        if h.request is not None or h.conflict_current is not None:
            return
        wait = h.next_at - _now()
        if wait > 0:
            self.timer = asyncio.get_running_loop().call_later(wait, self.pump)
            return
        if h.op == "delete":
            method, path, body = "DELETE", "%s/%s?base_revision=%d" % (
                API, h.entity_id, h.base_revision), None
        else:
            method, path = "PUT", "%s/%s" % (API, h.entity_id)
            body = json.dumps({"base_revision": h.base_revision, "task": h.snapshot},
                              separators=(",", ":")).encode()
        if not h.sent:
            h.sent = True
            self.core.store.queue_update(h)
        h.request = asyncio.ensure_future(self._attempt(h, method, path, body))

    async def _attempt(self, h, method, path, body):
        core = self.core
        token_gen = core.token_gen
        try:
            status, headers, raw = await asyncio.wait_for(
                rest.request(core.endpoint, method, path, core.token, body, h.mutation_id),
                core.policy.request_timeout)
        except asyncio.TimeoutError:         # no answer within 10 s
            status, headers, raw, why = 0, {}, b"", "timeout"
        except (OSError, EOFError, ValueError):
            status, headers, raw, why = 0, {}, b"", "network"
            core.emit_http(method, path, 0, h.mutation_id, error="network")
        else:
            why = None
            core.emit_http(method, path, status, h.mutation_id)
        if not self.items or self.items[0] is not h or h.request is not asyncio.current_task():
            return                           # aborted meanwhile
        h.request = None
        line = {"kind": "request_result", "mutation_id": h.mutation_id, "status": status}
        if why:
            line["error"] = why
        core.emit(line)
        self._answer(h, status, headers, raw, why, stale_token=token_gen != core.token_gen)

    def _answer(self, h, status, headers, raw, why, stale_token):
        core = self.core
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if 200 <= status < 300:
            self._acked(h, body)
        elif status == 409:
            self._conflict(h, body)
        elif status == 401:
            # not a failure; the same key once a token arrives.
            h.next_at = _now()
            if stale_token:                  # refused for an older token: resend now
                self.pump()
            else:
                core.auth_required("http_401")
        elif status == 0 or status == 429 or status >= 500:
            ra = _retry_after(headers.get("retry-after")) if status == 429 else 0
            self._failed(h, ra, why or "http_%d" % status)
        else:
            self._dead_letter(h, status, body)

    def _acked(self, h, body):
        core = self.core
        res = body.get("task") if isinstance(body, dict) and isinstance(
            body.get("task"), dict) else body
        valid = isinstance(res, dict) and res.get("id") == h.entity_id and isinstance(
            res.get("revision"), int)
        if valid:
            core.cache_put_server(h.entity_id, res)
        core.store.queue_remove(h)
        self.items.pop(0)
        self._emit("acked", h)
        self.sync_failed_sent = False
        # rebase the next item of this task onto the result.
        self._rebase_next(h.entity_id, res if valid else core.store.cache_get(h.entity_id))
        core.cache_upkeep()                  # C-1: no longer pinned
        self.pump()

    def _failed(self, h, retry_after, why):
        """Q-4 / Q-5 / Q-7: a retryable failure of the head."""
        core = self.core
        h.attempts += 1
        core.store.queue_update(h)
        delay = core.policy.retry_delay(h.attempts, core.rng)
        if retry_after > delay:
            delay = retry_after              # honour Retry-After (server seconds)
        h.next_at = _now() + delay
        core.log("INFO", "retry", entity="task/" + h.entity_id, mutation_id=h.mutation_id,
                 attempts=h.attempts, reason=why, delay_ms=int(delay * 1000))
        if h.attempts >= core.policy.sync_failed_after and not self.sync_failed_sent:
            self.sync_failed_sent = True     # once per streak
            core.log("WARNING", "sync_failed", entity="task/" + h.entity_id,
                     attempts=h.attempts)
            core.emit({"kind": "notification", "type": "SYNC_FAILED",
                       "entity_id": h.entity_id, "attempts": h.attempts,
                       "actions": ["sync_now"]})
        self.pump()

    def _dead_letter(self, h, status, body):
        """Q-7: any other status: kept in the dead-letter list, queue goes on."""
        core = self.core
        code = body.get("error") if isinstance(body, dict) and isinstance(
            body.get("error"), str) else "http_%d" % status
        core.log("WARNING", "rejected", entity="task/" + h.entity_id,
                 mutation_id=h.mutation_id, status=status, error=code)
        core.store.dead_letter_move(h, status, "%d %s" % (status, code))
        self.items.pop(0)
        self._emit("dead_letter", h)
        core.emit({"kind": "notification", "type": "REJECTED", "entity_id": h.entity_id,
                   "mutation_id": h.mutation_id, "status": status, "error": code})
        self._reset_streak(None)
        self._rebase_next(h.entity_id, core.store.cache_get(h.entity_id))
        core.cache_upkeep()
        self.pump()

    def _conflict(self, h, body):
        """CF-2 / CF-3 / CF-4: a 409 on the head."""
        core = self.core
        cur = body.get("current") if isinstance(body, dict) else None
        crev = cur.get("revision") if isinstance(cur, dict) else None
        # CF-4: every 409 received, at WARNING.
        core.log("WARNING", "conflict", entity="task/" + h.entity_id, base=h.base_revision,
                 current=crev, user=core.user or "-")
        self._reset_streak(h)
        if not isinstance(cur, dict) or not isinstance(crev, int) or cur.get("id") != h.entity_id:
            core.log("WARNING", "bad_conflict_body", entity="task/" + h.entity_id)
            self._failed(h, 0, "bad_409")
            return
        core.cache_put_server(h.entity_id, cur)
        we_delete, they_deleted = h.op == "delete", cur.get("deleted") is True
        h.conflict_current = cur
        if we_delete and they_deleted:       # both deleted: nothing left to say
            self._resolved()
            return
        if we_delete and h.base is not None and merge.unchanged_since_base(h.base, cur):
            # Their version only moved the revision: our delete stands.
            self._retry_on_current(copy.deepcopy(h.snapshot), "delete")
            return
        merged, conflicts = merge.merge3(h.base, h.snapshot, cur, core.policy.mergeable)
        evd = we_delete != they_deleted
        if not conflicts and not evd:        # CF-2: clean merge, same key, at once
            self._retry_on_current(merged, "put")
            return
        h.conflict_fields, h.edit_vs_delete = conflicts, evd
        # CF-3: the banner; the queue waits for `choose`.
        core.emit({"kind": "notification", "type": "CONFLICT", "entity_id": h.entity_id,
                   "choices": ["merge", "overwrite"], "fields": conflicts,
                   "edit_vs_delete": evd})

    def _retry_on_current(self, snapshot, op):
        """Retry the head now, based on the 409's current version, same key."""
        h = self.items[0]
        cur, h.conflict_current = h.conflict_current, None
        h.snapshot, h.op = snapshot, op
        h.base, h.base_revision = cur, cur["revision"]
        h.conflict_fields, h.edit_vs_delete = [], False
        h.next_at = _now()
        self.core.store.queue_update(h)
        self._emit("rebased", h)
        self.pump()

    def _resolved(self):
        """The head is settled without sending: their version stands."""
        h = self.items[0]
        cur = h.conflict_current
        self.core.store.queue_remove(h)
        self.items.pop(0)
        self._emit("resolved", h)
        self._reset_streak(None)
        self._rebase_next(h.entity_id, cur)
        self.core.cache_upkeep()
        self.pump()

    def _rebase_next(self, entity_id, task):
        """Q-3: the next item of the task now builds on `task` (the acked
        result, or the cached server version after a dead letter; None:
        nothing known, revision 0).  The item's OWN changes (its snapshot
        against the base it was edited from) are replayed onto `task`, so
        a change of theirs that the earlier item took in after a 409 is not
        overwritten by the stale copy in this snapshot, and a dead-lettered
        item's changes do not go out through this one.  A field both changed
        keeps this item's value (the user's latest edit)."""
        for it in self.items:
            if it.entity_id == entity_id:
                if task is not None:
                    replayed, both = merge.merge3(it.base, it.snapshot, task, FIELDS)
                    for name in both:
                        replayed[name] = copy.deepcopy(it.snapshot.get(name))
                    replayed["deleted"] = it.snapshot.get("deleted", False)
                    it.snapshot = replayed
                it.base = copy.deepcopy(task) if task else None
                it.base_revision = task.get("revision", 0) if task else 0
                self.core.store.queue_update(it)
                self._emit("rebased", it)
                return

    def _reset_streak(self, h):
        """Q-5: a streak ends (ack, dead letter, a 409 answer, sync now)."""
        if h is not None:
            h.attempts = 0
            self.core.store.queue_update(h)
        self.sync_failed_sent = False

    # -- status -------------------------------------------------------------------------

    def status_items(self):
        return [{"mutation_id": it.mutation_id, "op": it.op, "entity_id": it.entity_id,
                 "base_revision": it.base_revision, "attempts": it.attempts,
                 "snapshot": it.snapshot, "in_flight": it.request is not None,
                 "sent": it.sent} for it in self.items]

    def conflicts(self):
        return [{"entity_id": it.entity_id, "fields": it.conflict_fields,
                 "edit_vs_delete": it.edit_vs_delete}
                for it in self.items if it.conflict_current is not None]


def _now():
    return asyncio.get_running_loop().time()


def _retry_after(value):
    """Q-7: Retry-After in seconds, as delta-seconds or an HTTP-date (RFC 9110);
    0 when absent or unreadable (the schedule alone)."""
    if not value:
        return 0.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())
