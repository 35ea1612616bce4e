"""Server transport limits (docs/LIMITS.md, "Server transport"), black-box.

- a new device syncs over a 100 MiB event log (WS-2 replay streamed under
  flow control; before: closed 1008 at 16 MiB, on every reconnect);
- a replay over --max-replay is answered RESYNC_REQUIRED;
- 500 readers that never read: memory stays under the documented ceiling
  (VmHWM from /proc), the slow ones are closed 1008 with a WARNING, a reader
  that keeps up gets every event;
- connections per user; sockets without a request head reaped;
- strict HTTP/1.1: 405 with Allow, CL + TE closed, POST/PUT without a length
  on keep-alive answered 411 and closed (the next request is not swallowed);
  an unknown method, %00 in the path, a 10 KB header, a 100 KB URL, no Host,
  a folded header, TLS bytes on the plain port: each a JSON answer (lws 4.1.6
  dropped the connection or sent an HTML 403); without --keep-alive every
  answer closes (Connection: close), so each request is read by the front
  door; with --keep-alive the callbacks' checks hold on later requests.
"""

import json
import os
import re
import socket
import sqlite3
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hpbb import (API, SECRET, SERVER_BIN, STREAM, Env, WS, WSRefused, forge_jwt,  # noqa: E402
                  run_tests, wait_until)

OP_TEXT = 0x1


def under_asan():
    """The server binary was built with AddressSanitizer (build-asan/)."""
    with open(SERVER_BIN, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"libasan" in data or b"AddressSanitizer" in data


ASAN = under_asan()


def rss_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def token(sub, hh="home"):
    now = int(time.time())
    return forge_jwt({"sub": sub, "hh": hh, "iat": now, "exp": now + 3600}, secret=SECRET)


def upgrade(port, tok, rcvbuf=None):
    """A raw WebSocket (no reader thread): the socket after the 101."""
    import base64
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (STREAM, tok, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(1)
        assert c, "upgrade: connection closed"
        head += c
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s


class FrameReader:
    """Reads server frames from a raw socket without keeping their payloads
    (a 100 MiB replay must not live in the test's memory)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("connection closed")
            self.buf += d

    def frame(self):
        """(opcode, first and last 200 bytes of the payload, payload length)."""
        self._need(2)
        op, ln = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        off = 2
        if ln == 126:
            self._need(4)
            ln = struct.unpack("!H", bytes(self.buf[2:4]))[0]
            off = 4
        elif ln == 127:
            self._need(10)
            ln = struct.unpack("!Q", bytes(self.buf[2:10]))[0]
            off = 10
        self._need(off + ln)
        head = bytes(self.buf[off:off + min(ln, 200)])
        self.tail = bytes(self.buf[off + max(0, ln - 200):off + ln])
        del self.buf[:off + ln]
        return op, head, ln


def fill_log(db, hh, n, note_bytes):
    """n TASK_UPDATED events (and their tasks) of about note_bytes each,
    written straight into a store the server created (fast: a 100 MiB log
    through REST would take minutes of fsyncs)."""
    con = sqlite3.connect(db)
    note = "n" * note_bytes
    rows_e, rows_t = [], []
    for r in range(1, n + 1):
        task = {"id": "t%d" % r, "title": "task %d" % r, "notes": note, "done": False,
                "assignee": None, "due_at": None, "remind_at": None, "revision": r,
                "updated_by": "alice", "deleted": False}
        js = json.dumps(task, separators=(",", ":"))
        rows_e.append((hh, r, "TASK_UPDATED", "t%d" % r, js))
        rows_t.append((hh, "t%d" % r, js, r, 0))
    with con:
        con.executemany("INSERT INTO events(hh, revision, event_type, entity_id, payload) "
                        "VALUES(?,?,?,?,?)", rows_e)
        con.executemany("INSERT INTO tasks(hh, id, json, revision, deleted) VALUES(?,?,?,?,?)",
                        rows_t)
        con.execute("INSERT INTO households(hh, revision, trimmed) VALUES(?,?,0) "
                    "ON CONFLICT(hh) DO UPDATE SET revision = excluded.revision", (hh, n))
    con.close()


# ---- WS-2: the replay ----------------------------------------------------------


def test_new_device_syncs_over_100mib_log():
    """Issue 11 "a household outgrows new devices": HELLO 0 over a 100 MiB log
    gets every event in order, then READY.  Under ASan the log is 24 MiB (still
    over the old 16 MiB cap): the sanitized server takes minutes for 100 MiB."""
    total_mib = 24 if ASAN else 100
    note = 60000
    n = total_mib * (1 << 20) // (note + 200) + 1
    with Env() as env:
        srv = env.server(time_scale=1.0).start()
        assert srv.stop() == 0  # the store exists with its schema
        fill_log(srv.db, "home", n, note)
        srv.start()
        s = upgrade(srv.port, token("newdev"))
        s.sendall(WS.frame(OP_TEXT, json.dumps({"type": "HELLO", "revision": 0})))
        rd = FrameReader(s)
        got, nbytes, last = 0, 0, 0
        while True:
            op, head, ln = rd.frame()
            assert op == OP_TEXT, (op, head)
            nbytes += ln
            if head.startswith(b'{"type":"READY"') or b'"READY"' in head:
                ready = head
                break
            if b'"HEARTBEAT"' in head:
                continue
            m = re.search(rb'"revision":(\d+)\}$', rd.tail)
            assert m and b"TASK_UPDATED" in head, (head, rd.tail)
            rev = int(m.group(1))
            assert rev == last + 1, (rev, last)
            last = rev
            got += 1
        assert got == n, (got, n)
        assert nbytes > total_mib * (1 << 20), nbytes
        assert re.search(rb'"revision":%d\b' % n, ready), ready
        assert not srv.log_lines("WARNING", "limit_reached"), srv.log_lines("WARNING")
        s.close()
        assert srv.stop() == 0


def test_replay_over_bound_is_resync_required():
    with Env() as env:
        srv = env.server(time_scale=1.0, extra_args=["--max-replay", "1MiB"]).start()
        assert srv.stop() == 0
        fill_log(srv.db, "home", 40, 30000)  # ~1.2 MB of replay
        srv.start()
        ws = env.track(srv.ws(token("bob")))
        ws.send_json({"type": "HELLO", "revision": 0})
        m = ws.wait(lambda m: m.get("type") in ("RESYNC_REQUIRED", "READY"))
        assert m["type"] == "RESYNC_REQUIRED" and m["revision"] == 40, m
        assert not [x for x in ws.messages if x.get("event_type")]
        assert srv.log_lines("WARNING", "limit=replay_max_bytes")
        # After the reload (GET ?since=0), a HELLO at a recent revision replays.
        ws.send_json({"type": "HELLO", "revision": 38})
        ws.wait(lambda m: m.get("type") == "READY")
        assert [x["revision"] for x in ws.messages if x.get("event_type")] == [39, 40]
        assert srv.stop() == 0


# ---- output buffers ------------------------------------------------------------------


def test_500_slow_readers_memory_ceiling():
    """500 authenticated readers that never read and a writer of 60 KB
    events: the server's peak RSS stays under the ceiling of docs/LIMITS.md,
    the slow readers are closed 1008 with a WARNING, and a reader that keeps
    up gets every event.  Under ASan, 100 readers and no RSS bound (the
    sanitizer's shadow memory and quarantine are not the server's)."""
    n_slow = 100 if ASAN else 500
    max_output = (8 if ASAN else 32) << 20  # fewer readers: a lower cap still trips
    events = 5
    note = 60000
    with Env() as env:
        srv = env.server(time_scale=1.0, extra_args=[
            "--max-output", str(max_output), "--max-conns", "2000", "--ws-sndbuf", "16KiB"]).start()
        slow = []
        t_setup = time.monotonic()
        for i in range(n_slow):
            s = upgrade(srv.port, token("r%d" % i), rcvbuf=4096)
            s.sendall(WS.frame(OP_TEXT, json.dumps({"type": "HELLO", "revision": 0})))
            slow.append(s)
        tok = srv.token("alice", "home")
        good = env.track(srv.ws(tok))
        good.hello(0)
        wait_until(lambda: len(srv.log_lines("INFO", "ready")) >= n_slow + 1,
                   what="every reader READY")
        t_start = time.monotonic()
        base_kb = rss_kb(srv.proc.pid, "VmRSS")
        if os.environ.get("HP_BB_VERBOSE"):
            print("setup %.1fs" % (time.monotonic() - t_setup))
        for i in range(events):
            t0 = time.monotonic()
            st, body, _ = srv.put("big%d" % i, tok, {"title": "t", "notes": "n" * note})
            assert st == 200, (i, st, body)
            t1 = time.monotonic()
            good.wait_event("TASK_UPDATED", "big%d" % i, timeout=60)
            if os.environ.get("HP_BB_VERBOSE"):
                print("event %d: put %.2fs, delivered %.2fs" % (i, t1 - t0, time.monotonic() - t1))
        # The reader that keeps up got everything, in order.
        revs = [m["revision"] for m in good.messages if m.get("event_type") == "TASK_UPDATED"]
        assert revs == list(range(1, events + 1)), revs
        closed = srv.log_lines("WARNING", "limit=output_total")
        assert closed, "no slow reader was closed"
        assert not [ln for ln in srv.log_lines("WARNING", "limit_reached")
                    if "user=alice" in ln], "the reader that keeps up was closed"
        hwm_kb = rss_kb(srv.proc.pid, "VmHWM")
        # docs/LIMITS.md: baseline + max-output + 2 x connections x frame (one
        # broadcast in flight, and the unsent rest of the frame libwebsockets
        # is writing to each) + 16 KiB per connection; 16 MiB of slack for the
        # allocator's fragmentation and SQLite's page cache.
        ceiling_kb = (base_kb + max_output // 1024 + 2 * (n_slow + 1) * (note + 1024) // 1024
                      + (n_slow + 1) * 16 + 16 * 1024)
        print("rss: base %d KiB, peak %d KiB, ceiling %d KiB, slow closed %d, %.1fs"
              % (base_kb, hwm_kb, ceiling_kb, len(closed), time.monotonic() - t_start))
        if not ASAN:
            assert hwm_kb < ceiling_kb, (hwm_kb, ceiling_kb)
        # A slow reader sees 1008 once it reads (after what the kernel held).
        m = re.search(r"user=r(\d+)", closed[0])
        s = slow[int(m.group(1))]
        s.settimeout(30)
        rd = FrameReader(s)
        code = None
        try:
            while True:
                op, head, ln = rd.frame()
                if op == 0x8:
                    code = struct.unpack("!H", head[:2])[0]
                    break
        except (EOFError, OSError):
            pass
        assert code == 1008, code
        for s in slow:
            s.close()
        assert srv.stop() == 0


# ---- connections and reaping -----------------------------------------------------------


def test_connections_per_user():
    with Env() as env:
        srv = env.server(time_scale=1.0, extra_args=["--max-conns-per-user", "2"]).start()
        tok = token("alice")
        env.track(srv.ws(tok))
        env.track(srv.ws(tok))
        try:
            srv.ws(tok)
            raise AssertionError("a third connection was accepted")
        except WSRefused as e:
            assert e.status == 429, e.status
            body = e.json()
            assert body["error"] == "too_many_connections" and "limit 2" in body["message"], body
        env.track(srv.ws(token("bob")))  # another user is not affected
        assert srv.log_lines("WARNING", "limit=conns_per_user")
        assert srv.stop() == 0


def test_socket_without_request_is_reaped():
    """A socket that never sends a request head is closed after
    --http-timeout (a half-open or idle peer holds nothing for ever)."""
    with Env() as env:
        srv = env.server(time_scale=1.0, extra_args=["--http-timeout", "1"]).start()
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(30)
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"", data
        assert time.monotonic() - t0 < 25
        s.close()
        assert srv.stop() == 0


# ---- strict HTTP/1.1 ----------------------------------------------------------------


def raw_exchange(port, data, timeout=10):
    """Send data, read until the server closes (or timeout): (bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    closed = False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def responses(data):
    """Status codes of the HTTP responses in data."""
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def test_strict_http():
    with Env() as env:
        srv = env.server(time_scale=1.0).start()
        tok = srv.token("alice", "home")
        auth = "Authorization: Bearer %s\r\n" % tok
        get = "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (API, auth)
        # 405 with Allow for a method the API does not have (was 403 HTML).
        out, closed = raw_exchange(srv.port, ("PATCH %s/t1 HTTP/1.1\r\nHost: x\r\n%s"
                                              "Content-Length: 2\r\n\r\n{}" % (API, auth)).encode())
        assert responses(out) == [405], out[:300]
        assert re.search(rb"(?i)\r\nallow: GET, HEAD, PUT, POST, DELETE, OPTIONS\r\n", out), out
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        assert body["error"] == "method_not_allowed", body
        assert closed
        # Content-Length with Transfer-Encoding: 400 and closed (RFC 9112 6.1);
        # the request smuggled behind it is never answered.
        out, closed = raw_exchange(srv.port, (
            "PUT %s/t1 HTTP/1.1\r\nHost: x\r\n%sContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s" % (API, auth, get)).encode())
        assert responses(out) == [400], out[:400]
        assert b"Transfer-Encoding" in out and closed, out
        # POST without Content-Length on keep-alive: 411 and closed, so the body
        # is not read as a request and the pipelined GET is not swallowed.
        out, closed = raw_exchange(srv.port, (
            "POST %s/t1/lock HTTP/1.1\r\nHost: x\r\n%s\r\n{}%s" % (API, auth, get)).encode())
        assert responses(out) == [411], out[:400]
        assert b"length_required" in out and closed, out
        # ... while with Content-Length the POST is served and, without
        # --keep-alive, the connection closes after it: the pipelined GET will
        # come on a new connection, through the front door.
        out, closed = raw_exchange(srv.port, (
            "POST %s/t1/lock HTTP/1.1\r\nHost: x\r\n%sContent-Length: 0\r\n\r\n%s"
            % (API, auth, get)).encode(), timeout=3)
        assert responses(out) == [200] and closed, out[:600]
        assert re.search(rb"(?i)\r\nconnection: close\r\n", out), out[:600]
        # The front door (srv_lws_front.c): what lws 4.1.6 dropped or answered
        # with an HTML page gets a JSON reason.
        cases = [
            (b"FOO %s HTTP/1.1\r\nHost: x\r\n\r\n" % API.encode(), 405, "method_not_allowed"),
            (b"GET %s/a%%00b HTTP/1.1\r\nHost: x\r\n\r\n" % API.encode(), 400, "bad_request"),
            (b"GET %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (API.encode(), b"a" * 10000),
             431, "header_too_large"),
            (b"GET %s?%s HTTP/1.1\r\nHost: x\r\n\r\n" % (API.encode(), b"a" * 100000), 414,
             "uri_too_long"),
            (b"GET %s HTTP/1.1\r\nAccept: */*\r\n\r\n" % API.encode(), 400, "bad_request"),
            (b"GET %s HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n" % API.encode(), 400,
             "bad_request"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "bad_request"),
        ]
        for req, want, code in cases:
            out, closed = raw_exchange(srv.port, req)
            assert responses(out) == [want], (req[:60], out[:300])
            body = json.loads(out.split(b"\r\n\r\n", 1)[1])
            assert body["error"] == code and body["message"], body
            assert closed, req[:60]
        assert srv.log_lines("INFO", "http_refused")
        assert srv.stop() == 0


def test_strict_http_keep_alive():
    """With --keep-alive a later request on a connection is lws's: the
    checks the adapter makes in its callbacks still hold there."""
    with Env() as env:
        srv = env.server(time_scale=1.0, extra_args=["--keep-alive"]).start()
        tok = srv.token("alice", "home")
        auth = "Authorization: Bearer %s\r\n" % tok
        get = "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (API, auth)
        # The same keep-alive pair is served on one connection.
        out, closed = raw_exchange(srv.port, (
            "POST %s/t1/lock HTTP/1.1\r\nHost: x\r\n%sContent-Length: 0\r\n\r\n%s"
            % (API, auth, get)).encode(), timeout=3)
        assert responses(out) == [200, 200], out[:600]
        # POST without Content-Length on keep-alive: still 411 and closed.
        out, closed = raw_exchange(srv.port, (
            "POST %s/t1/lock HTTP/1.1\r\nHost: x\r\n%s\r\n{}%s" % (API, auth, get)).encode())
        assert responses(out) == [411] and closed, out[:400]
        # A method the API lacks on a later request (past the
        # front door): 405 with Allow from the adapter.
        k = socket.create_connection(("127.0.0.1", srv.port))
        k.settimeout(10)
        k.sendall(get.encode())
        first = b""
        while responses(first) != [200] or not first.endswith(b"}"):
            d = k.recv(65536)
            assert d, first
            first += d
        k.sendall(("PATCH %s/t1 HTTP/1.1\r\nHost: x\r\n%sContent-Length: 2\r\n\r\n{}"
                   % (API, auth)).encode())
        out = b""
        try:
            while True:
                d = k.recv(65536)
                if not d:
                    break
                out += d
        except socket.timeout:
            pass
        k.close()
        assert responses(out) == [405], out[:600]
        assert re.search(rb"(?i)\r\nallow: GET, HEAD, PUT, POST, DELETE, OPTIONS\r\n", out), out
        assert srv.stop() == 0


run_tests([test_strict_http, test_strict_http_keep_alive, test_connections_per_user, test_socket_without_request_is_reaped,
           test_replay_over_bound_is_resync_required, test_new_device_syncs_over_100mib_log,
           test_500_slow_readers_memory_ceiling])
