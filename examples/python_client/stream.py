"""stream - the change stream: WS-2 .. WS-6 (client side), A-2, N-1 hooks.

One WebSocket connection at a time, through the `websockets` package
(Debian 12: python3-websockets 10.4, its asyncio client websockets.connect).

- WS-2: on open, HELLO with the last applied revision (persisted).  Events
  are applied in order; TASK_UPDATED / REMINDER_DUE at or below the applied
  revision are duplicates and ignored; unknown event types are ignored;
  LOCK_REFRESHED is reported but never moves the revision (not in the log).
  READY raises the applied revision to its own.  RESYNC_REQUIRED: GET
  ?since=0, the cache is replaced, HELLO again on the same connection.
- WS-4: HEARTBEAT every interval (READY's heartbeat_interval_ms, else the
  policy's), carrying "locks": the ids being edited (CF-1).
- WS-5: any server message resets the watchdog; heartbeat_misses x interval
  of silence -> close 4008 and reconnect.
- WS-6: reconnects wait 1, 3, 9, 27, 120, 120... s (scaled); the connect at
  start, after `online`, after a new token is immediate; READY resets it.
- A-2: a 401 upgrade or a 4001 close -> AUTH_REQUIRED, no reconnect until a
  new token.

A connection is identified by a generation number: when the client gives
up on a connection (offline, watchdog) it bumps the generation and forgets
it at once; whatever that connection's task does afterwards is ignored.
"""

import asyncio
import json
import logging
from urllib.parse import quote

import websockets
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatusCode
from websockets.legacy import client as ws_client
from websockets.legacy import http as ws_http

import rest

# The package's own log records never reach stderr: our log lines have one
# format, and an exception text there could carry the stream URL.
logging.getLogger("websockets").addHandler(logging.NullHandler())
logging.getLogger("websockets").propagate = False

STREAM_PATH = "/api/v0.2/tasks/stream"
API = "/api/v0.2/tasks"


class _Protocol(ws_client.WebSocketClientProtocol):
    """websockets 10.4 reads only "HTTP/1.1" status lines, but a server may
    refuse an upgrade in HTTP/1.0 (libwebsockets does: hp-fake-server answers
    a bad token with "HTTP/1.0 401").  The refusal's status is what A-2 needs
    (401 -> AUTH_REQUIRED, not a reconnect), so HTTP/1.0 is read too; a 101
    is HTTP/1.1 anyway and websockets checks the rest of the handshake."""

    async def read_http_response(self):
        try:
            line = await ws_http.read_line(self.reader)
            version, code = (line.split(b" ", 2) + [b""])[:2]
            if version not in (b"HTTP/1.1", b"HTTP/1.0") or not code.isdigit():
                raise ValueError("not an HTTP status line")
            headers = await ws_http.read_headers(self.reader)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - as websockets does it
            raise InvalidMessage("did not receive a valid HTTP response") from exc
        self.response_headers = headers
        return int(code), headers


class Stream:
    def __init__(self, core):
        self.core = core
        self.state = "idle"          # idle, connecting, open, ready
        self.gen = 0                 # the current connection's generation
        self.conn_token_gen = 0      # the token generation it was opened with
        self.ws = None
        self.task = None             # the connection's reader task
        self.hb_task = None
        self.send_lock = asyncio.Lock()
        self.backoff = 0             # WS-6: attempts since the last READY
        self.reconnect_handle = None
        self.reconnect_at = None     # loop time, for `status`
        self.hb_interval = core.policy.heartbeat
        self.last_rx = 0.0
        self.reload_task = None

    # -- WS-6: connecting and reconnecting ---------------------------------------

    def connect_now(self):
        """Open the stream now, if allowed (not paused, no connection)."""
        self._cancel_reconnect()
        if self.core.paused() or self.state != "idle":
            return
        self.gen += 1
        self.state = "connecting"
        self.conn_token_gen = self.core.token_gen
        self.core.emit({"kind": "connection", "state": "connecting"})
        self.task = asyncio.ensure_future(self._run(self.gen, self.core.token))

    def schedule_reconnect(self):
        """WS-6: the next attempt after a lost connection: 1, 3, 9, 27, 120 s..."""
        if self.core.paused():
            return
        self.backoff += 1
        delay = self.core.policy.retry_delay(self.backoff, self.core.rng)
        loop = asyncio.get_running_loop()
        self._cancel_reconnect()
        self.reconnect_at = loop.time() + delay
        self.reconnect_handle = loop.call_later(delay, self.connect_now)
        self.core.log("INFO", "reconnect_scheduled", attempt=self.backoff,
                      delay_ms=int(delay * 1000))

    def _cancel_reconnect(self):
        if self.reconnect_handle:
            self.reconnect_handle.cancel()
        self.reconnect_handle = None
        self.reconnect_at = None

    def reconnect_pending(self):
        return self.reconnect_handle is not None

    def reset_backoff(self):
        self.backoff = 0

    # -- the connection ------------------------------------------------------------

    async def _run(self, gen, token):
        url = self.core.endpoint.ws_url(STREAM_PATH) + "?token=" + quote(token or "", safe="")
        try:
            ws = await websockets.connect(
                url, open_timeout=max(self.core.policy.request_timeout, 1.0),
                ping_interval=None,          # the policy's HEARTBEAT is the liveness check
                close_timeout=1.0, max_size=4 << 20, compression=None,
                user_agent_header="hp-python-client", create_protocol=_Protocol)
        except InvalidStatusCode as e:
            if gen == self.gen:
                self._refused(e.status_code)
            return
        except (OSError, EOFError, asyncio.TimeoutError, websockets.InvalidHandshake,
                websockets.InvalidURI) as e:
            if gen == self.gen:
                self.core.log("INFO", "ws_connect_failed", error=type(e).__name__)
                self._refused(0)
            return
        if gen != self.gen:                  # given up while connecting
            asyncio.ensure_future(ws.close(1000))
            return
        self.ws = ws
        self.state = "open"
        self.core.emit({"kind": "connection", "state": "open"})
        loop = asyncio.get_running_loop()
        self.last_rx = loop.time()
        self.core.log("INFO", "ws_open", revision=self.core.applied)
        self.send({"type": "HELLO", "revision": self.core.applied})   # WS-2
        self._start_heartbeats()
        try:
            while gen == self.gen:
                # WS-5: 2 intervals without any server message -> 4008.
                limit = self.hb_interval * self.core.policy.heartbeat_misses
                left = self.last_rx + limit - loop.time()
                if left <= 0:
                    self.core.log("WARNING", "heartbeat_timeout",
                                  silence_ms=int((loop.time() - self.last_rx) * 1000))
                    self.close(4008, "heartbeat timeout")
                    self.schedule_reconnect()
                    return
                try:
                    text = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    continue                 # cancelling recv() is safe in websockets
                if gen != self.gen:
                    return
                self.last_rx = loop.time()   # WS-5: any message resets the watchdog
                try:
                    self._message(text)
                except Exception as e:  # noqa: BLE001 - a bad message never kills the stream
                    self.core.log("ERROR", "message_failed", error=type(e).__name__)
        except ConnectionClosed as e:
            if gen == self.gen:
                self._closed(e.rcvd.code if e.rcvd is not None else 0)

    def _refused(self, http_status):
        """The upgrade failed: http_status 401, another status, or 0 (no answer)."""
        self.state = "idle"
        self._emit_closed(0)
        self.core.log("INFO", "ws_refused", status=http_status)
        if http_status == 401 and self.conn_token_gen != self.core.token_gen:
            self.reset_backoff()             # refused for an older token: try the new one
            self.connect_now()
        elif http_status == 401:
            self.core.auth_required("upgrade_401")
        else:
            self.schedule_reconnect()

    def _closed(self, code):
        """The server (or the network) closed the connection."""
        self._forget()
        self.core.offline_begin()
        self._emit_closed(code)
        self.core.log("INFO", "ws_closed", code=code)
        if code == 4001 and self.conn_token_gen != self.core.token_gen:
            self.reset_backoff()             # a new token arrived meanwhile
            self.connect_now()
        elif code == 4001:
            self.core.auth_required("close_4001")
        else:
            self.schedule_reconnect()

    def close(self, code, reason=""):
        """Close our side and forget the connection at once (offline: 1000;
        watchdog: 4008).  The close frame goes out in the background; with
        a dead network it never arrives, as on a real device."""
        if self.state == "idle":
            return
        ws = self.ws
        self._forget()
        if ws is not None:
            asyncio.ensure_future(_quiet_close(ws, code, reason))
        self.core.offline_begin()
        self._emit_closed(code)

    def _emit_closed(self, code):
        """The `closed` line; while AUTH_REQUIRED the state line that follows
        says so again (a scenario reads the client's last state)."""
        self.core.emit({"kind": "connection", "state": "closed", "code": code})
        if self.core.auth_is_required:
            self.core.emit({"kind": "connection", "state": "auth_required"})

    def _forget(self):
        self.gen += 1
        self.state = "idle"
        self.ws = None
        if self.hb_task:
            self.hb_task.cancel()
            self.hb_task = None
        if self.reload_task:
            self.reload_task.cancel()
            self.reload_task = None
        # The reader task (if it is not the caller) ends on the generation check.
        if self.task and self.task is not asyncio.current_task():
            self.task.cancel()
        self.task = None

    # -- sending -------------------------------------------------------------------------

    def send(self, obj):
        """Queue one JSON message on the open connection (one writer at a time)."""
        self.send_text(json.dumps(obj, separators=(",", ":")))

    def send_text(self, text):
        ws, gen = self.ws, self.gen
        if ws is None:
            return False

        async def write():
            async with self.send_lock:
                if gen != self.gen:
                    return
                try:
                    await ws.send(text)
                except (ConnectionClosed, OSError):
                    pass                     # the reader task sees the close
        asyncio.ensure_future(write())
        return True

    def _start_heartbeats(self):
        """WS-4 / CF-1: HEARTBEAT every interval with the ids being edited.
        The beats keep a fixed rate from now (anchor + k x interval), so
        the small delays of each wake-up do not add up: after one lost
        heartbeat the next still reaches the server within its 2 intervals."""
        if self.hb_task:
            self.hb_task.cancel()
        gen, loop = self.gen, asyncio.get_running_loop()
        anchor, interval = loop.time(), self.hb_interval

        async def beat():
            k = 1
            while gen == self.gen:
                await asyncio.sleep(max(0.0, anchor + k * interval - loop.time()))
                if gen != self.gen:
                    return
                self.send({"type": "HEARTBEAT", "locks": list(self.core.locks)})
                # one beat per wake-up, even when late (never a burst)
                k = max(k + 1, int((loop.time() - anchor) / interval) + 1)
        self.hb_task = asyncio.ensure_future(beat())

    # -- receiving -----------------------------------------------------------------------

    def _message(self, text):
        try:
            m = json.loads(text)
        except ValueError:
            self.core.log("WARNING", "bad_message", error="not JSON")
            return
        if not isinstance(m, dict):
            self.core.log("WARNING", "bad_message", error="not an object")
            return
        typ = m.get("type")
        if typ == "READY":
            self._ready(m)
        elif typ == "RESYNC_REQUIRED":
            self._resync(m)
        elif typ is None and "event_type" in m:
            self._event(m)
        # HEARTBEAT and unknown types: only the watchdog (already reset)

    def _ready(self, m):
        rev = m.get("revision")
        if _is_int(rev) and rev > self.core.applied:
            self.core.set_applied(rev)
        hb = m.get("heartbeat_interval_ms")
        if _is_int(hb) and hb > 0 and hb / 1000.0 != self.hb_interval:
            self.hb_interval = hb / 1000.0   # the server's actual (scaled) interval
            self._start_heartbeats()
        self.state = "ready"
        self.reset_backoff()                 # WS-6: READY resets the schedule
        self.core.offline_end()              # N-1: the offline period is over
        self.core.emit({"kind": "connection", "state": "ready", "revision": rev})
        self.core.log("INFO", "ws_ready", revision=rev)
        self.core.relock_all()               # CF-1: take the locks again

    def _event(self, m):
        """WS-2 / WS-3: apply one event, or ignore a duplicate or unknown type."""
        et, eid, rev, payload = (m.get("event_type"), m.get("entity_id"), m.get("revision"),
                                 m.get("payload"))
        if et not in ("TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED"):
            return                           # WS-3: unknown event types are ignored
        if not _is_int(rev) or not isinstance(eid, str):
            self.core.log("WARNING", "bad_event", error="no revision or entity_id")
            return
        line = {"kind": "event", "event_type": et, "entity_id": eid, "revision": rev,
                "payload": payload}
        if et == "LOCK_REFRESHED":           # not in the log: never moves the revision
            self.core.emit(line)
            return
        if rev <= self.core.applied:
            return                           # WS-2: a duplicate
        if et == "TASK_UPDATED" and (not isinstance(payload, dict) or payload.get("id") != eid):
            self.core.log("WARNING", "bad_event", entity="task/" + eid, revision=rev)
            return
        # C-4: the payload is cached verbatim; the revision moves with it.
        self.core.store.apply_event(eid, payload if et == "TASK_UPDATED" else None, rev)
        self.core.applied = rev
        self.core.emit(line)
        if et == "TASK_UPDATED":
            self.core.cache_upkeep()         # C-1 / C-2

    def _resync(self, m):
        """WS-2: RESYNC_REQUIRED -> GET ?since=0, replace the cache, HELLO again."""
        self.core.emit({"kind": "connection", "state": "resync", "revision": m.get("revision")})
        self.core.log("INFO", "resync_required", revision=m.get("revision"),
                      applied=self.core.applied)
        if self.reload_task is None:
            self.reload_task = asyncio.ensure_future(self._reload(self.gen))

    async def _reload(self, gen):
        core = self.core
        status, body = 0, None
        try:
            status, _, raw = await asyncio.wait_for(
                rest.request(core.endpoint, "GET", API + "?since=0", core.token),
                core.policy.request_timeout)
            body = json.loads(raw) if status == 200 else None
        except asyncio.TimeoutError:
            pass
        except (OSError, EOFError, ValueError):
            pass
        if gen != self.gen:
            return
        self.reload_task = None
        core.emit_http("GET", API + "?since=0", status)
        tasks = body.get("tasks") if isinstance(body, dict) else None
        rev = body.get("revision") if isinstance(body, dict) else None
        if not isinstance(tasks, list) or not _is_int(rev):
            if status == 401:
                core.auth_required("http_401")
            core.log("WARNING", "reload_failed", status=status)
            self.close(1000, "reload failed")
            self.schedule_reconnect()
            return
        core.store.cache_replace([t for t in tasks if isinstance(t, dict)
                                  and isinstance(t.get("id"), str)], rev)
        core.applied = rev
        core.log("INFO", "reloaded", revision=rev, tasks=len(tasks))
        core.cache_upkeep()
        if self.state == "open":
            self.send({"type": "HELLO", "revision": rev})


async def _quiet_close(ws, code, reason):
    try:
        await ws.close(code, reason)
    except Exception:  # noqa: BLE001 - the connection is already forgotten
        pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)
