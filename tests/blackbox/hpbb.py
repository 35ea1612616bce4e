"""hpbb - shared python helpers for the black-box tests (standard library only).

What is here:
- paths: BIN_DIR ($HP_BIN_DIR, the CMake build dir), SERVER_BIN, CLIENT_BIN;
- wait_until(pred): poll a condition with a generous deadline (never a
  blind sleep: the tests run on a loaded 2-core box, also under ASan);
- Workdir: a temp dir removed at the end (kept when HP_KEEP_TMP is set);
- Server: one hp-fake-server on a free loopback port (readiness = the port
  accepts a TCP connection), with stop(signal) / kill9() / restart over the
  same --db, its stderr kept in a file per run, token minting through
  `hp-fake-server token`, and a small HTTP helper (http()/raw_http());
- forge_jwt(): hand-made tokens (alg none, HS512, expired...) for refusals;
- WS: a tiny WebSocket client (RFC 6455) that can also send raw, fragmented
  or oversized frames; a reader thread keeps every message and the close
  code so tests wait for conditions on them;
- run_tests(): run test functions, print PASS/FAIL, exit 1 on any failure.

Timing: the server closes a socket that sends no HELLO within 10 s x
--time-scale (1 s at 0.1), and one that is silent for 2 heartbeat intervals;
so mint tokens BEFORE connecting, send HELLO right after each connect, and
call start_heartbeats() on sockets that must live for several intervals.

Typical use:

    from hpbb import Server, WS, Workdir, run_tests
    wd = Workdir()
    srv = Server(wd, time_scale=0.05).start()
    tok = srv.token("alice", "home")
    ws = srv.ws(tok)                       # upgrade done, reader running
    ws.send_json({"type": "HELLO", "revision": 0})
    ready = ws.wait(lambda m: m.get("type") == "READY")
    st, body, hdrs = srv.http("PUT", "/api/v0.2/tasks/t1", tok,
                              {"base_revision": 0, "task": {"title": "x"}})
    srv.stop(); wd.cleanup()
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("HP_BIN_DIR") or os.path.join(HERE, "..", "..", "build")
SERVER_BIN = os.path.join(BIN_DIR, "fake_server", "hp-fake-server")
CLIENT_BIN = os.path.join(BIN_DIR, "fake_client", "hp-fake-client")

# Generous: a loaded CI machine running the ASan build.
DEFAULT_TIMEOUT = float(os.environ.get("HP_BB_TIMEOUT", "30"))
SECRET = "blackbox-secret"
API = "/api/v0.2/tasks"
STREAM = "/api/v0.2/tasks/stream"


# ---- small utilities ---------------------------------------------------------


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_origin_server(port, title="client team app"):
    """A page on another origin (another port) for browser tests, so CORS is exercised.
    Serves one small HTML page on 127.0.0.1:port from a daemon thread; returns the
    HTTPServer (call shutdown() when done)."""
    import http.server

    body = ("<!doctype html><title>%s</title><p>app</p>" % title).encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    httpd = http.server.HTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def wait_until(pred, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Poll pred() until it returns a truthy value; return it or raise."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Workdir:
    """A temporary directory removed by cleanup() unless HP_KEEP_TMP is set."""

    def __init__(self, prefix="hpbb-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        if os.environ.get("HP_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_jwt(claims, secret=SECRET, alg="HS256", header=None):
    """A token made by hand: alg "none" (empty signature), "HS256" or
    "HS512" with secret; header overrides the default header."""
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing = (b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if alg == "none":
        sig = ""
    else:
        dig = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
        sig = b64url(hmac.new(secret.encode(), signing.encode(), dig).digest())
    return signing + "." + sig


def run_cli(args, timeout=DEFAULT_TIMEOUT, stdin=None):
    """Run SERVER_BIN with args: (exit code, stdout text, stderr text)."""
    p = subprocess.run([SERVER_BIN] + list(args), capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL if stdin is None else None, input=stdin)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def mint_token(sub, hh, ttl="1h", dev=None, secret=SECRET):
    """A token from `hp-fake-server token` (the real minting path)."""
    args = ["token", "--sub", sub, "--hh", hh, "--ttl", ttl, "--jwt-secret", secret]
    if dev:
        args += ["--dev", dev]
    rc, out, err = run_cli(args)
    if rc != 0:
        raise AssertionError("hp-fake-server token exited %d: %s" % (rc, err))
    return out.strip()


# ---- HTTP --------------------------------------------------------------------


def parse_http_response(data):
    """(status, headers dict with lower-case names, body bytes) from a raw
    HTTP/1.1 response; the body is cut at Content-Length when present."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        body = body[:int(hdrs["content-length"])]
    return status, hdrs, body


def _recv_http(sock, timeout):
    """Read one HTTP response (headers + Content-Length body, or until EOF)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            _, hdrs, _ = parse_http_response(head + b"\r\n\r\n")
            if "content-length" in hdrs and len(body) >= int(hdrs["content-length"]):
                return data
        if time.monotonic() > deadline:
            return data
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk


def raw_http(port, request_bytes, timeout=DEFAULT_TIMEOUT, host="127.0.0.1"):
    """Send raw bytes on a fresh connection; parse the first response:
    (status, headers, body bytes).  Status 0 when the server sent nothing."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request_bytes)
        data = _recv_http(s, timeout)
    if not data:
        return 0, {}, b""
    return parse_http_response(data)


def http(port, method, path, token=None, body=None, headers=None, timeout=DEFAULT_TIMEOUT,
         host="127.0.0.1"):
    """One request with Content-Length (when there is a body).  body may be a
    dict/list (sent as JSON), str or bytes.  token: Bearer header.
    Returns (status, parsed JSON or None or the raw text, headers)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    h = {"Host": "%s:%d" % (host, port), "Connection": "close"}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    req += "".join("%s: %s\r\n" % (k, v) for k, v in h.items() if v is not None)
    req = req.encode() + b"\r\n" + (body or b"")
    status, hdrs, raw = raw_http(port, req, timeout, host)
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return status, parsed, hdrs


# ---- server ------------------------------------------------------------------


class Server:
    """One hp-fake-server on a free loopback port, its db in workdir.

    start() waits until the port accepts connections (or raises with the
    stderr when the process died).  Restart = stop()/kill9() then start():
    the same port and --db are reused.
    """

    def __init__(self, workdir, time_scale=0.05, port=None, db_name="server.db",
                 secret=SECRET, log_level="info", admin=False, extra_args=None):
        self.workdir = workdir
        self.time_scale = time_scale
        self.port = port or free_port()
        self.db = workdir.file(db_name) if db_name else None
        self.secret = secret
        self.log_level = log_level
        self.admin = admin
        self.extra_args = extra_args or []
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def args(self):
        a = [SERVER_BIN, "--listen", "127.0.0.1:%d" % self.port,
             "--jwt-secret", self.secret, "--log-level", self.log_level]
        if self.db:
            a += ["--db", self.db]
        if self.time_scale is not None:
            a += ["--time-scale", str(self.time_scale)]
        if self.admin:
            a.append("--admin")
        return a + self.extra_args

    def stderr_path(self, run=None):
        return self.workdir.file("server-%d.%d.stderr" % (self.port, run or self.starts))

    def start(self, timeout=DEFAULT_TIMEOUT):
        self.starts += 1
        err = open(self.stderr_path(), "wb")
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
        err.close()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("hp-fake-server exited with %s:\n%s"
                                     % (self.proc.returncode, self.stderr_text()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(up, timeout, interval=0.05, what="hp-fake-server to listen")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=DEFAULT_TIMEOUT):
        """Signal the server and wait; returns its exit code (None if not
        started).  Raises if it does not exit within timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                raise AssertionError("hp-fake-server did not exit after signal %d" % sig)
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def stderr_text(self):
        """Every stderr line of every run of this server."""
        out = []
        for i in range(1, self.starts + 1):
            p = self.stderr_path(i)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def log_lines(self, level=None, contains=None):
        """stderr lines, filtered by level name (" WARNING ") and substring."""
        res = []
        for l in self.stderr_text().splitlines():
            if level and (" %s " % level) not in l:
                continue
            if contains and contains not in l:
                continue
            res.append(l)
        return res

    def token(self, sub, hh, ttl="1h", dev=None):
        return mint_token(sub, hh, ttl, dev, self.secret)

    def http(self, method, path, token=None, body=None, headers=None, timeout=DEFAULT_TIMEOUT):
        return http(self.port, method, path, token, body, headers, timeout)

    def raw_http(self, request_bytes, timeout=DEFAULT_TIMEOUT):
        return raw_http(self.port, request_bytes, timeout)

    def put(self, tid, token, task, base=0, idem=None):
        h = {"Idempotency-Key": idem} if idem else None
        return self.http("PUT", "%s/%s" % (API, tid), token,
                         {"base_revision": base, "task": task}, h)

    def ws(self, token=None, path=STREAM, query=None, timeout=DEFAULT_TIMEOUT):
        """Open the change stream (raises WSRefused on a refused upgrade)."""
        q = query if query is not None else ("token=" + token if token is not None else None)
        return WS.connect(self.port, path + ("?" + q if q else ""), timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.kill9()
        if exc[0] is not None:
            sys.stderr.write("---- server stderr (tail) ----\n%s\n" % self.stderr_text()[-4000:])
        return False


# ---- WebSocket client ----------------------------------------------------------

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WSRefused(Exception):
    """The upgrade was answered with something other than 101."""

    def __init__(self, status, headers, body):
        Exception.__init__(self, "upgrade refused with HTTP %d: %r" % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class WS:
    """A minimal RFC 6455 client.

    messages: every complete text message received, parsed as JSON when it
    is JSON (else {"_text": str}); each gets "_t" (monotonic arrival time).
    close_code / close_reason: the server's close frame (None until then);
    closed: set when the TCP stream ended.  Pings are answered with pongs.
    """

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = leftover
        self.messages = []
        self.pongs = 0              # PONG frames received (answers to our PINGs)
        self.close_code = None
        self.close_reason = None
        self.closed = False
        self.cond = threading.Condition()
        self.wlock = threading.Lock()
        self._sent_close = False
        self.hb_locks = []          # ids sent in our HEARTBEATs (CF-1 refresh)
        self._hb_stop = None
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    @classmethod
    def connect(cls, port, path, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, headers=None):
        sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": "%s:%d" % (host, port), "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path
        req += "".join("%s: %s\r\n" % (k, v) for k, v in h.items()) + "\r\n"
        sock.sendall(req.encode())
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline:
                sock.close()
                raise AssertionError("no upgrade answer within %.0fs" % timeout)
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status, hdrs, _ = parse_http_response(head + b"\r\n\r\n")
        if status != 101:
            # Read the refusal's body (Content-Length or until EOF).
            want = int(hdrs.get("content-length", "-1") or -1)
            while want < 0 or len(rest) < want:
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    break
                if not chunk:
                    break
                rest += chunk
            sock.close()
            raise WSRefused(status, hdrs, rest[:want] if want >= 0 else rest)
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != accept:
            sock.close()
            raise AssertionError("bad Sec-WebSocket-Accept: %r" % hdrs)
        sock.settimeout(None)
        return cls(sock, rest)

    # -- sending -----------------------------------------------------------------

    @staticmethod
    def frame(opcode, payload, fin=True, mask=True, length_override=None):
        """Encode one frame (client frames are masked)."""
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload) if length_override is None else length_override
        b0 = (0x80 if fin else 0) | opcode
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return hdr + payload
        mk = os.urandom(4)
        masked = bytes(b ^ mk[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
            else _mask_fast(payload, mk)
        return hdr + mk + masked

    def send_raw(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def send_frame(self, opcode, payload, fin=True, mask=True):
        self.send_raw(self.frame(opcode, payload, fin, mask))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_fragmented(self, text, parts=3):
        """One text message split into `parts` frames (TEXT + CONTINUATIONs)."""
        data = text.encode() if isinstance(text, str) else text
        step = max(1, (len(data) + parts - 1) // parts)
        chunks = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
        for i, c in enumerate(chunks):
            self.send_frame(OP_TEXT if i == 0 else OP_CONT, c, fin=(i == len(chunks) - 1))

    def start_heartbeats(self, interval_s):
        """Send {"type":"HEARTBEAT","locks": self.hb_locks} every interval_s
        seconds from a thread (WS-4) until stop_heartbeats() or the end."""
        self.stop_heartbeats()
        stop = threading.Event()
        self._hb_stop = stop

        def loop():
            while not stop.is_set() and not self.closed and not self._sent_close:
                try:
                    self.send_json({"type": "HEARTBEAT", "locks": list(self.hb_locks)})
                except OSError:
                    return
                stop.wait(interval_s)
        threading.Thread(target=loop, daemon=True).start()

    def stop_heartbeats(self):
        if self._hb_stop is not None:
            self._hb_stop.set()
            self._hb_stop = None

    def close(self, code=1000, reason=""):
        """Send a close frame (once) and wait briefly for the stream to end."""
        if not self._sent_close and not self.closed:
            self._sent_close = True
            try:
                self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())
            except OSError:
                pass
        try:
            self.wait_closed(timeout=5)
        except AssertionError:
            pass
        self.abort()

    def abort(self):
        """Drop the TCP connection without a close frame."""
        self.stop_heartbeats()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # -- receiving ---------------------------------------------------------------

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_frame(self):
        b0, b1 = self._need(2)
        fin, op = bool(b0 & 0x80), b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        mk = self._need(4) if b1 & 0x80 else None
        payload = self._need(n)
        if mk:
            payload = _mask_fast(payload, mk)
        return fin, op, payload

    def _read_loop(self):
        partial = None
        try:
            while True:
                fin, op, payload = self._read_frame()
                if op == OP_PING:
                    try:
                        self.send_frame(OP_PONG, payload)
                    except OSError:
                        pass
                    continue
                if op == OP_PONG:
                    with self.cond:
                        self.pongs += 1
                        self.cond.notify_all()
                    continue
                if op == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    with self.cond:
                        self.close_code = code
                        self.close_reason = payload[2:].decode("utf-8", "replace")
                        self.cond.notify_all()
                    if not self._sent_close:
                        self._sent_close = True
                        try:
                            self.send_frame(OP_CLOSE, payload[:2])
                        except OSError:
                            pass
                    continue
                if op in (OP_TEXT, OP_BIN):
                    partial = payload
                elif op == OP_CONT and partial is not None:
                    partial += payload
                if fin and partial is not None:
                    text = partial.decode("utf-8", "replace")
                    partial = None
                    try:
                        msg = json.loads(text)
                        if not isinstance(msg, dict):
                            msg = {"_text": text}
                    except ValueError:
                        msg = {"_text": text}
                    msg["_t"] = time.monotonic()
                    with self.cond:
                        self.messages.append(msg)
                        self.cond.notify_all()
        except (EOFError, OSError, ValueError, struct.error):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.messages)

    def wait(self, pred, timeout=DEFAULT_TIMEOUT, since=0, what=None):
        """The first message at index >= since with pred(msg); raises on
        timeout or when the connection ended before one arrived."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.messages):
                    if pred(self.messages[i]):
                        return self.messages[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(
                        "timed out waiting for %s (closed=%s code=%s); last messages: %s"
                        % (what or "a message", self.closed, self.close_code,
                           json.dumps(self.messages[-10:])[:3000]))
                self.cond.wait(min(left, 0.2))

    def wait_type(self, typ, timeout=DEFAULT_TIMEOUT, since=0):
        return self.wait(lambda m: m.get("type") == typ, timeout, since, what=typ)

    def wait_event(self, event_type, entity_id=None, timeout=DEFAULT_TIMEOUT, since=0, pred=None):
        def ok(m):
            return (m.get("event_type") == event_type
                    and (entity_id is None or m.get("entity_id") == entity_id)
                    and (pred is None or pred(m)))
        return self.wait(ok, timeout, since, what="%s %s" % (event_type, entity_id or ""))

    def wait_close(self, timeout=DEFAULT_TIMEOUT):
        """The close code the server sent (raises if none arrives)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.close_code is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError("no close frame (closed=%s); last messages: %s"
                                         % (self.closed, json.dumps(self.messages[-5:])[:2000]))
                self.cond.wait(min(left, 0.2))
            return self.close_code

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """Wait until the TCP stream ended."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("connection still open")
                self.cond.wait(min(left, 0.2))

    def hello(self, revision=0, timeout=DEFAULT_TIMEOUT):
        """Send HELLO and return (replayed events, READY or RESYNC_REQUIRED)."""
        m = self.mark()
        self.send_json({"type": "HELLO", "revision": revision})
        end = self.wait(lambda x: x.get("type") in ("READY", "RESYNC_REQUIRED"), timeout, m,
                        what="READY")
        with self.cond:
            seg = self.messages[m:]
        events = []
        for x in seg:
            if x is end:
                break
            if "event_type" in x:
                events.append(x)
        return events, end


def _mask_fast(payload, mk):
    """XOR payload with the 4-byte mask using big-int arithmetic (fast
    enough for the 64 KiB+ frames of the 1009 test)."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mk * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


# ---- a test's world -----------------------------------------------------------


class Env:
    """A workdir, servers and sockets, all stopped/removed at exit; on a
    failure every server's stderr tail is printed (and the workdir kept).

        with Env() as env:
            srv = env.server(time_scale=0.1).start()
            ws = env.track(srv.ws(srv.token("alice", "home")))
    """

    def __init__(self):
        self.workdir = Workdir()
        self.servers = []
        self.sockets = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for w in self.sockets:
            w.abort()
        for s in self.servers:
            if s.alive():
                s.kill9()
        if exc[0] is not None:
            for s in self.servers:
                sys.stderr.write("---- server :%d stderr (tail) ----\n%s\n"
                                 % (s.port, s.stderr_text()[-5000:]))
            sys.stderr.write("kept %s\n" % self.workdir.path)
            return False
        self.workdir.cleanup()
        return False

    def server(self, **kw):
        s = Server(self.workdir, **kw)
        self.servers.append(s)
        return s

    def track(self, ws):
        self.sockets.append(ws)
        return ws


def jwt_claims(token):
    """The payload of a JWT (no verification): for checking minted tokens."""
    seg = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def has_secret(text):
    """True when text contains something that looks like a JWT (A-4)."""
    import re
    return re.search(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", text) is not None


# ---- test runner -----------------------------------------------------------------


def need_tools(test, missing, hint):
    """When a tool the test needs is absent: exit 77 (CTest reports the
    test as skipped), or 1 when HP_BB_REQUIRE_ALL is set (scripts/test.sh
    sets it, so CI never skips silently).  missing: names of what lacks."""
    if not missing:
        return
    msg = "%s: missing %s (%s)" % (test, ", ".join(missing), hint)
    if os.environ.get("HP_BB_REQUIRE_ALL"):
        print("FAIL " + msg)
        sys.exit(1)
    print("SKIP " + msg)
    sys.exit(77)


def run_tests(tests):
    """Run test functions in order; print PASS/FAIL per test; exit 1 on any
    failure (CTest reads the exit code).  Skips the lot (exit 0 with a
    message) only when HP_BB_SKIP_MISSING is set and the binary is absent."""
    if not os.path.exists(SERVER_BIN) and os.environ.get("HP_BB_SKIP_MISSING"):
        print("SKIP: %s not built" % SERVER_BIN)
        sys.exit(0)
    failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print("PASS %s (%.1fs)" % (t.__name__, time.monotonic() - start), flush=True)
        except Exception as e:  # noqa: BLE001 - any failure is reported
            failed += 1
            import traceback
            traceback.print_exc()
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
    print("%d passed, %d failed" % (len(tests) - failed, failed), flush=True)
    sys.exit(1 if failed else 0)
