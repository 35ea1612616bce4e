#!/usr/bin/env python3
"""Two sessions driven at once on one hp-fake-server (issue 10, "done
when"): a browser app in headless Chromium (playwright-core driving
/usr/bin/chromium, tests/blackbox/node/sessions_browser.mjs) in session
"web", hp-fake-client in session "cli", faults armed in each.  Nothing
crosses: no data, no fault, no journal entry, no log line of one session
names the other's user, device or tasks.  The same run shows the admin
page (GET /_hp/) in Chromium: sessions, live connections, the journal
timeline with its HTTP and WebSocket lanes and the 409 highlighted, a
fault armed from a button, and no request to anywhere but the server.

Needs chromium and tests/blackbox/node/node_modules (scripts/setup.sh
--with-browser --with-node): otherwise exit 77 (skipped) unless
HP_BB_REQUIRE_ALL is set (CI), then it fails."""

import json
import os
import shutil
import subprocess

from hpbb import Env as BBEnv  # noqa: F401  (the server side comes through hpcli)
from hpcli import Client, Env, free_port, run_tests, wait_until
from hpbb import need_tools, start_origin_server

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NODE = shutil.which("node")


def admin(srv, method, path, body=None, expect=200):
    st, resp, _ = srv.http(method, path, None, body)
    assert st == expect, (method, path, body, st, resp)
    return resp


def test_two_sessions_browser_and_client():
    missing = [n for n, ok in (("chromium", CHROMIUM), ("node", NODE), (
        "tests/blackbox/node/node_modules/playwright-core",
        os.path.exists(os.path.join(NODE_DIR, "node_modules", "playwright-core")))) if not ok]
    need_tools("test_server_sessions_browser", missing,
               "bash scripts/setup.sh --with-browser --with-node")
    with Env() as env:
        srv = env.server(admin=True).start()
        admin(srv, "POST", "/_hp/sessions", {"id": "web"}, 201)
        admin(srv, "POST", "/_hp/sessions", {"id": "cli"}, 201)
        tweb = admin(srv, "POST", "/_hp/sessions/web/tokens",
                     {"user": "wendy", "household": "home", "device": "web"})["token"]
        tcli = admin(srv, "POST", "/_hp/sessions/cli/tokens",
                     {"user": "carl", "household": "home", "device": "cli"})["token"]
        # Faults in each session, same household name, same task id.
        admin(srv, "POST", "/_hp/faults?session=web",
              {"force_conflict": {"id": "t1", "household": "home", "device": "web"}})
        admin(srv, "POST", "/_hp/faults?session=cli",
              {"fail_requests": {"status": 503, "method": "PUT", "device": "cli"},
               "force_conflict": {"id": "c9", "user": "carl"}})
        fw = admin(srv, "GET", "/_hp/faults?session=web")["faults"]
        fc = admin(srv, "GET", "/_hp/faults?session=cli")["faults"]
        assert [f["kind"] for f in fw] == ["force_conflict"], fw
        assert sorted(f["kind"] for f in fc) == ["fail_requests", "force_conflict"], fc

        # The scripted device in session "cli" (its base URL has the prefix).
        carl = Client(env.workdir, "carl", srv.url + "/s/cli", tcli)
        env.clients.append(carl)
        carl.start()
        carl.wait_ready()
        carl.ok({"cmd": "edit", "id": "t1", "fields": {"title": "from the client"}})

        # The browser app in session "web", at the same time.
        page_port = free_port()
        httpd = start_origin_server(page_port, "team web app")
        args = {"chromium": CHROMIUM, "profile": env.workdir.file("chromium-profile"),
                "server": srv.url, "session": "web", "token": tweb,
                "origin": "http://127.0.0.1:%d/" % page_port, "admin": srv.url}
        try:
            p = subprocess.run([NODE, os.path.join(NODE_DIR, "sessions_browser.mjs"),
                                json.dumps(args)], cwd=NODE_DIR, capture_output=True,
                               timeout=240, stdin=subprocess.DEVNULL)
        finally:
            httpd.shutdown()
        lines = p.stdout.decode().strip().splitlines()
        assert lines, "no output from node: %s" % p.stderr.decode()[-3000:]
        out = json.loads(lines[-1])
        assert out["ok"], out.get("error")
        app = out["app"]
        assert app["ready"]["type"] == "READY", app
        assert app["put1"]["status"] == 200, app
        assert app["put2"]["status"] == 409 and \
            app["put2"]["body"]["current"]["title"] == "from the browser", app
        assert app["event"]["payload"]["title"] == "from the browser", app

        # The client got its 503, retried, and its write landed in "cli" only.
        carl.wait(lambda x: x.get("kind") == "http" and x.get("status") == 503,
                  what="carl's injected 503")
        carl.wait_status(lambda s: len(s["queue"]) == 0, what="carl's queue empty")

        # The page: sessions, connections, lanes, the 409 highlighted, no CDN.
        pg = out["page"]
        assert pg["sessions"] == ["default", "web", "cli"], pg
        assert any("409" in h and "/api/v0.2/tasks/t1" in h for h in pg["highlighted"]), pg
        assert any("conflict" in w for w in pg["warnings"]), pg
        assert any("TASK_UPDATED" in w for w in pg["ws"]), pg
        assert any("wendy" in c for c in pg["conns"]), pg
        assert pg["externalScripts"] == 0, pg
        origins = {srv.url, "http://127.0.0.1:%d" % page_port}
        stray = [u for u in out["requests"]
                 if not any(u.startswith(o) for o in origins)
                 and not u.startswith("ws://127.0.0.1:%d/" % srv.port)]
        assert not stray, stray
        assert any("fail_requests" in f for f in pg["faults"]), pg
        fw = admin(srv, "GET", "/_hp/faults?session=web")["faults"]
        assert [(f["kind"], f["scope"]) for f in fw] == [("fail_requests", {"device": "web"})], fw
        fc = admin(srv, "GET", "/_hp/faults?session=cli")["faults"]
        assert [f["kind"] for f in fc] == ["force_conflict"], fc   # only its own, untouched

        # Data: each world holds only its own writes.
        sw = admin(srv, "GET", "/_hp/state?session=web")["households"]["home"]["tasks"]
        sc = admin(srv, "GET", "/_hp/state?session=cli")["households"]["home"]["tasks"]
        assert sw["t1"]["title"] == "from the browser" and sw["t1"]["updated_by"] == "wendy", sw
        assert sc["t1"]["title"] == "from the client" and sc["t1"]["updated_by"] == "carl", sc
        assert admin(srv, "GET", "/_hp/state?session=default")["households"] == {}

        # Journals: nothing of the other session.
        jw = json.dumps(admin(srv, "GET", "/_hp/journal?session=web&limit=5000"))
        jc = json.dumps(admin(srv, "GET", "/_hp/journal?session=cli&limit=5000"))
        assert "carl" not in jw and "from the client" not in jw and '"cli"' not in jw, jw[:2000]
        assert "wendy" not in jc and "from the browser" not in jc and '"web"' not in jc, jc[:2000]
        assert tweb not in jw and tcli not in jc, "token in a journal"
        v = admin(srv, "POST", "/_hp/verify?session=cli",
                  {"pattern": {"kind": "http", "status": 409}, "count": 0})
        assert v["ok"], v                              # the browser's 409 is not in "cli"
        v = admin(srv, "POST", "/_hp/verify?session=web", {"sequence": [
            {"kind": "ws_in", "type": "HELLO"},
            {"kind": "http", "method": "PUT", "status": 200, "device": "web"},
            {"kind": "http", "method": "PUT", "status": 409, "device": "web"}]})
        assert v["ok"], v

        # Log lines: each session's lines name only its own people.
        assert carl.quit() == 0
        assert srv.stop() == 0
        lines = srv.stderr_text().splitlines()
        lw = [l for l in lines if l.endswith("session=web")]
        lc = [l for l in lines if l.endswith("session=cli")]
        assert any("user=wendy" in l for l in lw) and any("user=carl" in l for l in lc), lines
        assert not any("carl" in l or "dev=cli" in l for l in lw), lw
        assert not any("wendy" in l or "dev=web" in l for l in lc), lc


run_tests([test_two_sessions_browser_and_client])
