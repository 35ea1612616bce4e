#!/usr/bin/env python3
"""hp_client - a HomePlanner sync v0.2 client in Python, driven by JSON lines.

The example "foreign client" of docs/CLIENT_DRIVER.md ("The minimal contract
for a foreign client"): level 1 (edit, delete, choose, sync_now, token,
lock, unlock, online, offline, quit; notification, connection and event
lines) and, from level 2, status, cached, queue, http, request_result and
lock lines.  It implements the client rules of docs/SYNC_POLICY.md itself,
in plain Python: standard library plus the `websockets` package
(Debian 12: python3-websockets).

    python3 examples/python_client/hp_client.py --server http://127.0.0.1:8080 \\
        --token "$TOKEN" --db alice.db --key-file alice.key --name alice

This file is the command line and the driver: stdin commands in, stdout
lines out.  Each command is answered by one ok/error line first, then the
lines of what it caused at once; network results come later.

Files: policy.py (numbers), store.py (SQLite), merge.py (task model,
three-way merge), rest.py (HTTP), stream.py (WebSocket), sendqueue.py (the
offline queue), core.py (shared state, commands).
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree

try:
    import websockets  # noqa: F401  (used by stream.py)
except ImportError:
    sys.stderr.write("hp_client: the python3 `websockets` package is missing "
                     "(Debian: apt-get install python3-websockets; run it with /usr/bin/python3)\n")
    sys.exit(3)

import rest  # noqa: E402
from core import Core  # noqa: E402
from policy import Policy, PolicyError  # noqa: E402
from store import Store  # noqa: E402

MAX_LINE = 1 << 20


class Output:
    """stdout: one compact JSON object per line, flushed at once.  While a
    command runs, its lines are held so the ok/error answer comes first."""

    def __init__(self):
        self.held = None

    def __call__(self, obj):
        if self.held is not None:
            self.held.append(obj)
        else:
            self.write(obj)

    @staticmethod
    def write(obj):
        try:
            line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"
            sys.stdout.buffer.write(line.encode("utf-8"))   # UTF-8 whatever the locale
            sys.stdout.buffer.flush()
        except (BrokenPipeError, OSError):
            pass

    def answer(self, run):
        """Run one command: its answer line first, then what it caused."""
        self.held = []
        try:
            answer = run()
        finally:
            held, self.held = self.held, None
        self.write(answer)
        for obj in held:
            self.write(obj)


def ok(cmd, entity_id=None):
    o = {"kind": "ok", "cmd": cmd}
    if entity_id is not None:
        o["id"] = entity_id
    return o


def error(cmd, message, entity_id=None):
    o = {"kind": "error", "cmd": cmd}
    if entity_id is not None:
        o["id"] = entity_id
    o["message"] = message
    return o


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def handle(core, line):
    """One command line -> (answer object, quit?)."""
    try:
        cmdobj = json.loads(line, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        return error(None, "not JSON: %s" % e), False
    if not isinstance(cmdobj, dict):
        return error(None, 'a command is a JSON object with a "cmd"'), False
    cmd = cmdobj.get("cmd")
    if not isinstance(cmd, str):
        return error(None, 'missing string "cmd"'), False

    def need(key):
        v = cmdobj.get(key)
        return v if isinstance(v, str) else None

    if cmd in ("edit", "delete", "lock", "unlock", "choose", "cached"):
        eid = need("id")
        if eid is None:
            return error(cmd, '"%s" needs a string "id"' % cmd), False
        if cmd == "edit":
            fields = cmdobj.get("fields")
            if not isinstance(fields, dict):
                return error(cmd, '"edit" needs an object "fields"', eid), False
            err = core.edit(eid, fields)
        elif cmd == "choose":
            choice = need("choice")
            if choice is None:
                return error(cmd, '"choose" needs a string "choice"'), False
            err = core.choose(eid, choice)
        elif cmd == "cached":
            return {"kind": "cached", "id": eid, "task": core.cached(eid)}, False
        else:
            err = getattr(core, cmd)(eid)
        return (error(cmd, err, eid) if err else ok(cmd, eid)), False
    if cmd in ("online", "offline"):
        core.set_online(cmd == "online")
        return ok(cmd), False
    if cmd == "sync_now":
        core.sync_now()
        return ok(cmd), False
    if cmd == "token":
        tok = need("token")
        if tok is None:
            return error(cmd, '"token" needs a string "token"'), False
        if not tok:
            return error(cmd, '"token" must not be empty'), False
        core.set_token(tok)
        return ok(cmd), False
    if cmd == "send_frame":
        text = cmdobj.get("text")
        if not isinstance(text, str):
            return error(cmd, '"send_frame" needs a string "text"'), False
        err = core.send_frame(text)
        return (error(cmd, err) if err else ok(cmd)), False
    if cmd == "status":
        st = {"kind": "status"}
        st.update(core.status())
        return st, False
    if cmd == "quit":
        return ok(cmd), True
    return error(cmd, 'unknown command "%s"' % cmd[:64]), False


def read_stdin(loop, queue):
    """A thread: stdin lines into the loop (works for pipes, files, ttys).
    No stdin at all (started with fd 0 closed) or a read error counts as
    the end of stdin, which means quit: the client never outlives its driver."""
    try:
        if sys.stdin is not None:
            for raw in sys.stdin.buffer:
                loop.call_soon_threadsafe(queue.put_nowait, raw)
    except (OSError, ValueError):
        pass
    finally:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:
            pass                             # the loop is already closed


async def main_async(args, policy):
    out = Output()
    try:
        store = Store(args.db)
    except Exception as e:  # noqa: BLE001 - any store failure is a runtime error
        sys.stderr.write("hp_client: cannot open the store %s: %s\n" % (args.db, e))
        return 3
    core = Core(rest.Endpoint(args.server), args.token, store, policy, args.name, out,
                args.log_level, online=args.online != "no")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lines = asyncio.Queue()
    threading.Thread(target=read_stdin, args=(loop, lines), daemon=True).start()
    core.log("INFO", "start", server=args.server, db=args.db, applied=core.applied,
             queued=len(core.queue.items))
    core.start()

    async def commands():
        while True:
            raw = await lines.get()
            if raw is None:
                return                       # end of stdin = quit
            if len(raw) > MAX_LINE:
                out.write(error(None, "line longer than 1 MiB"))
                continue
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            quit_now = []
            out.answer(lambda: _run(core, line, quit_now))
            if quit_now:
                return

    cmd_task = asyncio.ensure_future(commands())
    stop_task = asyncio.ensure_future(stop.wait())
    await asyncio.wait([cmd_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
    core.log("INFO", "stop")
    store.close()
    return 0


def _run(core, line, quit_now):
    answer, q = handle(core, line)
    if q:
        quit_now.append(True)
    return answer


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="hp_client.py",
        description="HomePlanner sync v0.2 example client (JSON lines on stdin/stdout).")
    p.add_argument("--server", required=True, help="http://HOST:PORT[/prefix]")
    p.add_argument("--token", default="", help="JWT; empty = start with AUTH_REQUIRED")
    p.add_argument("--db", required=True, help="SQLite store (kept across restarts)")
    p.add_argument("--key-file", default=None, help="accepted; this example does not encrypt")
    p.add_argument("--name", default=None, help="actor in log lines (default: token sub)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply policy durations")
    p.add_argument("--policy", default="", help="JSON object of policy overrides")
    p.add_argument("--online", default="yes", choices=["yes", "no", ""],
                   help="whether the device has a network when the app starts (contract "
                        "placeholder {online}; no: no connect, no request until `online`)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p.parse_args(argv)


def fill_empty_values(argv):
    """A template filled with an empty {token}, {policy} or {online} may give
    "--token --db F": read that as an empty value, not a usage error."""
    out = []
    for i, a in enumerate(argv):
        out.append(a)
        if a in ("--token", "--policy", "--online") and (i + 1 == len(argv) or
                                             argv[i + 1].startswith("--")):
            out.append("")
    return out


def main(argv=None):
    args = parse_args(fill_empty_values(sys.argv[1:] if argv is None else argv))  # usage: exit 2
    try:
        policy = Policy.from_json(args.policy, args.time_scale)
        rest.Endpoint(args.server)
    except (PolicyError, ValueError) as e:
        sys.stderr.write("hp_client: %s\n" % e)
        return 2
    if not args.name:
        from core import token_sub
        args.name = token_sub(args.token) or "python_client"
    try:
        return asyncio.run(main_async(args, policy))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    rc = main()
    # The stdin reader thread may be blocked in read(): leave without
    # waiting for it (everything is committed and flushed by now).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
