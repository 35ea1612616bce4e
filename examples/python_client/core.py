"""core - the client: what the driver's commands call, and the state that
the stream (stream.py) and the queue (sendqueue.py) share.

Shared state: the token and its generation (A-2), online/offline (Q-7: going
offline aborts requests in flight and closes the socket), AUTH_REQUIRED
(A-2, Q-7: no reconnect and no sends until a new token), the applied
revision (WS-2), the offline period (N-1: any time without a live READY
connection; OFFLINE_LONG once per period), soft-locks (CF-1), the cache's
window and cap (C-1, C-2).

Everything runs on one asyncio loop, so no locks are needed: network
results arrive as callbacks of tasks, timers are loop.call_later handles.
Every observable goes through emit() (one JSON line on stdout), every log
record through log() (one line on stderr; a token never appears, A-4).
"""

import asyncio
import base64
import json
import random
import sys
import time

import merge
import rest
from sendqueue import SendQueue
from stream import Stream

API = "/api/v0.2/tasks"


def token_sub(token):
    """The token's `sub`, read without verification (the client has no secret)."""
    try:
        seg = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
        sub = claims.get("sub")
        return sub if isinstance(sub, str) else None
    except (AttributeError, IndexError, ValueError):
        return None


class Core:
    def __init__(self, endpoint, token, store, policy, name, out, log_level="info", online=True):
        self.endpoint = endpoint
        self.token = token or None
        self.token_gen = 0
        self.user = token_sub(token) if token else None
        self.store = store
        self.policy = policy
        self.name = name
        self.out = out                       # the driver's emitter (a callable)
        self.log_level = {"debug": 0, "info": 1, "warning": 2, "error": 3}[log_level]
        self.rng = random.Random()
        self.started = False
        self.online = online                 # --online no: the device starts without a network
        self.auth_is_required = False
        self.applied = store.applied_revision()
        self.locks = []                      # CF-1: ids being edited
        self.unlocks = []                    # CF-1: releases to send at the next READY
        self.lock_requests = set()
        self.offline_since = None            # N-1: loop time the period began
        self.offline_timer = None
        self.cache_timer = None              # C-1: the next purge
        self.stream = Stream(self)
        self.queue = SendQueue(self)         # loaded from the store

    # -- output ------------------------------------------------------------------------

    def emit(self, obj):
        self.out(obj)

    def emit_http(self, method, path, status, idem_key=None, error=None):
        line = {"kind": "http", "method": method, "path": path}
        if idem_key:
            line["idem_key"] = idem_key
        line["status"] = status
        if error:
            line["error"] = error
        self.emit(line)

    def log(self, level, message, **fields):
        """One record: `time LEVEL actor message key=value...` (A-4: no token)."""
        if {"DEBUG": 0, "INFO": 1, "WARNING": 2, "ERROR": 3}[level] < self.log_level:
            return
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (
            int(t * 1000) % 1000)
        kv = " ".join("%s=%s" % (k, v) for k, v in fields.items())
        sys.stderr.write("%s %s %s %s%s\n" % (stamp, level, self.name, message,
                                              " " + kv if kv else ""))
        sys.stderr.flush()

    # -- shared state --------------------------------------------------------------------

    def paused(self):
        """No request and no connect: before start, offline, AUTH_REQUIRED."""
        return (not self.started or not self.online or self.auth_is_required
                or not self.token)

    def set_applied(self, rev):
        self.applied = rev
        self.store.set_applied_revision(rev)   # WS-2: persisted for the next HELLO

    def cache_put_server(self, entity_id, task):
        """A version from a REST answer never replaces a newer cached one
        (an event already brought it, and no later event would repair it)."""
        old = self.store.cache_get(entity_id)
        if old is not None and isinstance(old.get("revision"), int) and \
                old["revision"] > task.get("revision", 0):
            return
        self.store.cache_put(entity_id, task)
        self.cache_upkeep()

    def cache_upkeep(self):
        """C-1 / C-2: purge what is older than the window, evict LRU over the
        cap (never a task with queued changes), re-arm the C-1 timer."""
        pinned = self.queue.pinned()
        n = self.store.cache_enforce(self.policy.cache_window, self.policy.cache_cap, pinned)
        if n:
            self.log("INFO", "cache_evicted", entries=n)
        if self.cache_timer:
            self.cache_timer.cancel()
            self.cache_timer = None
        at = self.store.cache_next_expiry(self.policy.cache_window, pinned)
        if at is not None:
            self.cache_timer = asyncio.get_running_loop().call_later(
                max(0.0, at - time.time()) + 0.001, self.cache_upkeep)

    def auth_required(self, why):
        """A-2 / Q-7: stop, say AUTH_REQUIRED once, wait for a token."""
        self.stream._cancel_reconnect()
        if self.auth_is_required:
            return
        self.auth_is_required = True
        self.log("WARNING", "auth_required", reason=why)
        self.emit({"kind": "notification", "type": "AUTH_REQUIRED", "reason": why})
        self.emit({"kind": "connection", "state": "auth_required"})

    def offline_begin(self):
        """N-1: an offline period starts (if none is running)."""
        if self.offline_since is not None:
            return
        loop = asyncio.get_running_loop()
        self.offline_since = loop.time()
        # "more than" offline_long: 1 ms after, never at exactly 30:00.000
        self.offline_timer = loop.call_later(self.policy.offline_long + 0.001,
                                             self._offline_long)

    def offline_end(self):
        """N-1: a READY ends the period."""
        self.offline_since = None
        if self.offline_timer:
            self.offline_timer.cancel()
            self.offline_timer = None

    def _offline_long(self):
        self.offline_timer = None
        if self.offline_since is None:
            return
        ms = int((asyncio.get_running_loop().time() - self.offline_since) * 1000)
        self.log("INFO", "offline_long", since_ms=ms)
        self.emit({"kind": "notification", "type": "OFFLINE_LONG", "offline_ms": ms})

    # -- commands (the driver calls these; each returns None or an error message) ------

    def start(self):
        self.started = True
        self.offline_begin()                 # N-1: no READY connection yet
        self.cache_upkeep()                  # C-1: a week may have passed
        if not self.token:
            self.auth_required("no_token")
            return
        if not self.online:
            self.log("INFO", "offline")      # no connect, no request until `online`
            return
        self.stream.connect_now()            # WS-6: immediate at start
        self.queue.pump()                    # the kept queue goes at once

    def edit(self, entity_id, fields):
        return self.queue.edit(entity_id, fields)

    def delete(self, entity_id):
        return self.queue.delete(entity_id)

    def choose(self, entity_id, choice):
        return self.queue.choose(entity_id, choice)

    def set_online(self, online):
        if online == self.online:
            return
        self.online = online
        if not online:
            self.log("INFO", "offline")
            self.queue.abort()               # aborted, not failed: same key later
            for t in list(self.lock_requests):
                t.cancel()
            self.stream.close(1000, "offline")
            self.offline_begin()
            self.stream._cancel_reconnect()
            return
        self.log("INFO", "online")
        self.stream.reset_backoff()          # WS-6: immediate after "online"
        self.stream.connect_now()
        self.queue.resume_now()

    def sync_now(self):
        self.queue.sync_now()
        if self.stream.state == "idle" and self.stream.reconnect_pending():
            self.stream.reset_backoff()
            self.stream.connect_now()

    def set_token(self, token):
        """A-2: a new token resumes at once: connect now, the head with its key."""
        self.token = token
        self.user = token_sub(token)
        self.auth_is_required = False
        self.token_gen += 1
        self.log("INFO", "token_set", user=self.user or "-")
        self.stream.reset_backoff()
        if self.started:
            self.stream.connect_now()
            self.queue.resume_now()

    def send_frame(self, text):
        """A test probe, not a user action (docs/CLIENT_DRIVER.md): one text
        frame on the open stream behind the policy's back, to see how the
        server treats a frame that breaks the protocol."""
        if self.stream.state not in ("open", "ready") or not self.stream.send_text(text):
            return "no stream open"
        self.log("INFO", "send_frame", bytes=len(text.encode()))
        return None

    # -- CF-1: soft-locks (best effort, not queue items) ------------------------------------

    def lock(self, entity_id):
        if not merge.id_valid(entity_id):
            return "invalid task id"
        if entity_id not in self.locks:
            self.locks.append(entity_id)     # refreshed by every HEARTBEAT
        if entity_id in self.unlocks:
            self.unlocks.remove(entity_id)
        if not self.paused():
            self._lock_request("lock", entity_id)
        return None

    def unlock(self, entity_id):
        if not merge.id_valid(entity_id):
            return "invalid task id"
        was = entity_id in self.locks
        if was:
            self.locks.remove(entity_id)
        if not self.paused():
            self._lock_request("unlock", entity_id)
        elif was and entity_id not in self.unlocks:
            self.unlocks.append(entity_id)   # released on save/cancel: sent at READY
        return None

    def relock_all(self):
        """CF-1: after READY, take the locks again and send offline releases."""
        if self.paused():
            return
        for i in self.locks:
            self._lock_request("lock", i)
        for i in self.unlocks:
            self._lock_request("unlock", i)
        self.unlocks = []

    def _lock_request(self, op, entity_id):
        method = "POST" if op == "lock" else "DELETE"
        path = "%s/%s/lock" % (API, entity_id)
        token_gen = self.token_gen

        async def run():
            try:
                status, _, _ = await asyncio.wait_for(
                    rest.request(self.endpoint, method, path, self.token),
                    self.policy.request_timeout)
                self.emit_http(method, path, status)
            except asyncio.TimeoutError:
                self.log("INFO", "lock_failed", reason="timeout")
                return
            except (OSError, EOFError, ValueError):
                self.emit_http(method, path, 0, error="network")
                self.log("INFO", "lock_failed", reason="network")
                return
            finally:
                self.lock_requests.discard(task)
            self.emit({"kind": "lock", "op": op, "entity_id": entity_id, "status": status})
            if status == 401 and token_gen == self.token_gen:
                self.auth_required("http_401")
        task = asyncio.ensure_future(run())
        self.lock_requests.add(task)

    # -- level 2: status and cached --------------------------------------------------

    def status(self):
        loop = asyncio.get_running_loop()

        def epoch_ms(at):
            return None if at is None else int((time.time() + at - loop.time()) * 1000)
        q = self.queue.items
        head = q[0] if q else None
        return {"online": self.online,
                "connection": "auth_required" if self.auth_is_required else self.stream.state,
                "applied_revision": self.applied, "queue": self.queue.status_items(),
                "dead_letter": self.store.dead_letters(), "conflicts": self.queue.conflicts(),
                "cache": self.store.cache_info(), "locks": list(self.locks),
                "retry_attempt": head.attempts if head else 0,
                "next_retry_at": epoch_ms(head.next_at) if head and head.attempts > 0
                and head.request is None else None,
                "reconnect_attempt": self.stream.backoff,
                "next_reconnect_at": epoch_ms(self.stream.reconnect_at),
                "quarantined": 0}

    def cached(self, entity_id):
        return self.store.cache_get(entity_id, use=True)
