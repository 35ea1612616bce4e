"""hpcli - python helpers for the hp-fake-client black-box tests.

Standard library only.  A Client runs one hp-fake-client process: commands go
to its stdin as JSON lines, every stdout line is parsed and kept (a reader
thread), stderr goes to a file the test can grep.  Waiting is always a poll
for a condition with a generous deadline, never a fixed sleep, so the tests
hold on a loaded 2-core machine and under ASan.

The server side (starting hp-fake-server, minting tokens, raw HTTP) comes from
hpbb.py, the shared helpers; Env ties a test's server(s) and clients together
and stops them all at the end.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The server side, paths, polling and the runner come from the shared helpers.
from hpbb import (BIN_DIR, CLIENT_BIN, DEFAULT_TIMEOUT, SERVER_BIN,  # noqa: E402,F401
                  Server, Workdir, free_port, mint_token, run_tests, wait_until)

# Every policy duration x0.1: 30 s heartbeats become 3 s, the 1 s first
# retry 100 ms, the 10 s request timeout 1 s (roomy enough under ASan).
TIME_SCALE = float(os.environ.get("HP_CLI_TIME_SCALE", "0.1"))


def api_get(server, path, token):
    """GET on the server with a bearer token: (status, parsed JSON body)."""
    status, body, _ = server.http("GET", path, token)
    return status, body


# ---- client ---------------------------------------------------------------


class Client:
    """One hp-fake-client process (restartable over the same --db).

    lines: every stdout object of every run, in order; each gets "_run" (the
    run number).  A stdout line that is not a JSON object is kept as
    {"kind": "_not_json", "text": ...} so a test can assert there is none.
    """

    def __init__(self, workdir, name, server_url, token, time_scale=TIME_SCALE,
                 key_hex=None, db_name=None, extra_args=None):
        self.workdir = workdir
        self.name = name
        self.server_url = server_url
        self.token = token
        self.time_scale = time_scale
        self.db = workdir.file(db_name or (name + ".db"))
        self.key_file = workdir.file(name + ".key")
        if not os.path.exists(self.key_file):
            with open(self.key_file, "w") as f:
                f.write(key_hex or os.urandom(32).hex())
        self.extra_args = extra_args or []
        self.proc = None
        self.runs = 0
        self.lines = []
        self.cond = threading.Condition()
        self.reader = None

    # -- process ------------------------------------------------------------

    def start(self, token=None):
        if token is not None:
            self.token = token
        self.runs += 1
        err = open(self.stderr_path(self.runs), "wb")
        args = [CLIENT_BIN, "--server", self.server_url, "--db", self.db,
                "--key-file", self.key_file, "--time-scale", str(self.time_scale),
                "--name", self.name, "--log-level", "info"]
        if self.token:
            args += ["--token", self.token]
        self.proc = subprocess.Popen(args + self.extra_args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err)
        err.close()
        run = self.runs
        proc = self.proc
        self.reader = threading.Thread(target=self._read, args=(proc, run), daemon=True)
        self.reader.start()
        return self

    def _read(self, proc, run):
        for raw in proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                obj = {"kind": "_not_json", "text": text}
            obj["_run"] = run
            with self.cond:
                self.lines.append(obj)
                self.cond.notify_all()

    def stderr_path(self, run):
        return self.workdir.file("%s.%d.stderr" % (self.name, run))

    def stderr_text(self):
        out = []
        for i in range(1, self.runs + 1):
            p = self.stderr_path(i)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, obj):
        """Write one command line (a dict is dumped, a str is sent as is)."""
        line = obj if isinstance(obj, str) else json.dumps(obj)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait(self, pred, timeout=DEFAULT_TIMEOUT, since=0, what=None):
        """The first line at index >= since for which pred(line) holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc and self.proc.poll() is not None
                                 and not self.reader.is_alive()):
                    tail = "\n".join(json.dumps(x) for x in self.lines[-25:])
                    raise AssertionError(
                        "%s: timed out waiting for %s\nlast stdout lines:\n%s\nstderr tail:\n%s"
                        % (self.name, what or "a line", tail, self.stderr_text()[-3000:]))
                self.cond.wait(min(left, 0.2))

    def count(self, pred, since=0):
        with self.cond:
            return sum(1 for x in self.lines[since:] if pred(x))

    def cmd(self, obj, timeout=DEFAULT_TIMEOUT):
        """Send a command and return its ok / error line."""
        name = obj.get("cmd") if isinstance(obj, dict) else None
        m = self.mark()
        self.send(obj)
        return self.wait(lambda x: x.get("kind") in ("ok", "error") and x.get("cmd") == name,
                         timeout, since=m, what="the answer to %s" % obj)

    def ok(self, obj, timeout=DEFAULT_TIMEOUT):
        r = self.cmd(obj, timeout)
        if r.get("kind") != "ok":
            raise AssertionError("%s: %s refused: %s" % (self.name, obj, r))
        return r

    def status(self, timeout=DEFAULT_TIMEOUT):
        m = self.mark()
        self.send({"cmd": "status"})
        return self.wait(lambda x: x.get("kind") == "status", timeout, since=m, what="status")

    def wait_status(self, pred, timeout=DEFAULT_TIMEOUT, what="a status"):
        """Ask for status until pred(status) holds."""
        last = [None]

        def check():
            last[0] = self.status()
            return pred(last[0])
        try:
            wait_until(check, timeout, interval=0.1, what=what)
        except AssertionError:
            raise AssertionError("%s: %s; last status: %s\nstderr tail:\n%s"
                                 % (self.name, what, json.dumps(last[0]),
                                    self.stderr_text()[-3000:]))
        return last[0]

    def wait_ready(self, timeout=DEFAULT_TIMEOUT, since=0):
        return self.wait(lambda x: x.get("kind") == "connection" and x.get("state") == "ready",
                         timeout, since=since, what="connection ready")

    def quit(self, timeout=DEFAULT_TIMEOUT):
        """quit command, then the exit code (a leak under ASan fails it)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        try:
            self.send({"cmd": "quit"})
        except (BrokenPipeError, OSError):
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("%s did not exit after quit" % self.name)
        self.reader.join(timeout=5)
        self._close_pipes()
        return rc

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=5)
        self._close_pipes()

    def _close_pipes(self):
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass


class Env:
    """A test's world: a workdir, servers and clients, all stopped at exit.

        with Env() as env:
            srv = env.server().start()
            alice = env.client("alice", srv, "alice", "home").start()
    """

    def __init__(self):
        self.workdir = Workdir()
        self.servers = []
        self.clients = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for c in self.clients:
            if c.alive():
                c.kill9()
        for s in self.servers:
            if s.alive():
                s.kill9()
        if exc[0] is not None:
            for c in self.clients:
                sys.stderr.write("---- %s stderr (tail) ----\n%s\n"
                                 % (c.name, c.stderr_text()[-4000:]))
            for s in self.servers:
                sys.stderr.write("---- server stderr (tail) ----\n%s\n"
                                 % s.stderr_text()[-4000:])
        self.workdir.cleanup()
        return False

    def server(self, **kw):
        kw.setdefault("time_scale", TIME_SCALE)
        s = Server(self.workdir, **kw)
        self.servers.append(s)
        return s

    def client(self, name, server, sub, hh, **kw):
        c = Client(self.workdir, name, server.url, server.token(sub, hh), **kw)
        self.clients.append(c)
        return c


def warnings(text, pattern):
    """WARNING log lines containing pattern."""
    return [l for l in text.splitlines() if " WARNING " in l and pattern in l]
