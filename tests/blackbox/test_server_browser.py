#!/usr/bin/env python3
"""A real browser against hp-fake-server (the issue's done-criterion):
headless Chromium on a page of ANOTHER origin opens the change stream with
a minted token, sends HELLO, gets READY; a curl-style PUT from outside
arrives as TASK_UPDATED in the page; the page itself PUTs with fetch
(Authorization + Idempotency-Key: CORS preflight) and reads the 409 body;
a bad token's upgrade fails in the browser.

Driven over the Chrome DevTools Protocol with hpbb's WebSocket client, so
no npm package is needed.  Without chromium (scripts/setup.sh
--with-browser) it exits 77, which CTest reports as skipped - unless
HP_BB_REQUIRE_ALL is set (scripts/test.sh, hence CI), then it fails."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

from hpbb import (API, Env, WS, free_port, need_tools, run_tests, start_origin_server,
                  wait_until)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class CDP:
    """Minimal DevTools client: call(method, params) -> result."""

    def __init__(self, ws):
        self.ws = ws
        self.n = 0

    def call(self, method, params=None, timeout=60):
        self.n += 1
        mid = self.n
        self.ws.send_json({"id": mid, "method": method, "params": params or {}})
        r = self.ws.wait(lambda x: x.get("id") == mid, timeout=timeout, since=0,
                         what="CDP reply to " + method)
        if "error" in r:
            raise AssertionError("%s: %s" % (method, r["error"]))
        return r["result"]

    def eval(self, expr, timeout=60):
        r = self.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                           "returnByValue": True}, timeout)
        if "exceptionDetails" in r:
            raise AssertionError("page JS failed: %s" % json.dumps(r["exceptionDetails"])[:1000])
        return r["result"].get("value")


def test_browser_stream_and_fetch():
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        page_port = free_port()
        httpd = start_origin_server(page_port, "client team app")
        dbg = free_port()
        prof = env.workdir.file("chromium-profile")
        chrome = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-quic", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=%d" % dbg, "--user-data-dir=" + prof, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(env.workdir.file("chromium.stderr"), "wb"))
        try:
            def targets():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % dbg,
                                                timeout=2) as r:
                        pages = [t for t in json.load(r) if t.get("type") == "page"]
                        return pages or None
                except OSError:
                    return None
            pages = wait_until(targets, timeout=90, interval=0.2, what="chromium devtools")
            path = pages[0]["webSocketDebuggerUrl"].split("127.0.0.1:%d" % dbg, 1)[1]
            cdp = CDP(env.track(WS.connect(dbg, path)))
            cdp.call("Page.enable")
            cdp.call("Page.navigate", {"url": "http://127.0.0.1:%d/" % page_port})
            wait_until(lambda: cdp.eval("document.readyState") == "complete" and
                       cdp.eval("location.port") == str(page_port), timeout=60,
                       what="the page to load")

            base = "http://127.0.0.1:%d" % srv.port
            stream = "ws://127.0.0.1:%d/api/v0.2/tasks/stream?token=%s" % (srv.port, tok)
            # What a developer types in the console.
            ready = cdp.eval("""
                new Promise((resolve, reject) => {
                  window.msgs = [];
                  const ws = new WebSocket(%s);
                  window.ws = ws;
                  ws.onopen = () => ws.send(JSON.stringify({type: "HELLO", revision: 0}));
                  ws.onmessage = (e) => { const m = JSON.parse(e.data); msgs.push(m);
                                          if (m.type === "READY") resolve(m); };
                  ws.onclose = (e) => { window.wsClosed = e.code; reject("closed " + e.code); };
                  setInterval(() => { if (ws.readyState === 1)
                      ws.send(JSON.stringify({type: "HEARTBEAT", locks: []})); }, 1000);
                })""" % json.dumps(stream))
            assert ready["type"] == "READY" and ready["heartbeat_interval_ms"] == 3000, ready

            # curl PUT from outside -> TASK_UPDATED in the page.
            st, t, _ = srv.put("t1", tok, {"title": "Milk", "due_at": "2026-11-25T18:00:00+03:00"})
            assert st == 200, t
            ev = wait_until(lambda: cdp.eval(
                "msgs.find(m => m.event_type === 'TASK_UPDATED' && m.entity_id === 't1') || null"),
                timeout=30, what="TASK_UPDATED in the browser")
            assert ev["payload"]["title"] == "Milk", ev
            assert ev["payload"]["due_at"] == "2026-11-25T18:00:00+03:00", ev

            # fetch from the page (cross-origin, preflighted): 200, then a 409 body.
            res = cdp.eval("""
                (async () => {
                  const h = {"Authorization": "Bearer " + %s, "Content-Type": "application/json",
                             "Idempotency-Key": "browser-1"};
                  const put = (base, title) => fetch(%s + "/api/v0.2/tasks/t2", {method: "PUT",
                      headers: h, body: JSON.stringify({base_revision: base, task: {title}})});
                  const a = await put(0, "from the browser");
                  const ja = await a.json();
                  h["Idempotency-Key"] = "browser-2";
                  const b = await put(0, "stale");
                  const jb = await b.json();
                  const g = await fetch(%s + "/api/v0.2/tasks?since=0",
                                        {headers: {"Authorization": h.Authorization}});
                  return {a: a.status, ja, b: b.status, jb, g: g.status, jg: await g.json()};
                })()""" % (json.dumps(tok), json.dumps(base), json.dumps(base)))
            assert res["a"] == 200 and res["ja"]["title"] == "from the browser", res
            assert res["b"] == 409 and res["jb"]["error"] == "conflict", res
            assert res["jb"]["current"]["title"] == "from the browser", res
            assert res["g"] == 200 and res["jg"]["revision"] == 2, res
            wait_until(lambda: cdp.eval(
                "msgs.some(m => m.event_type === 'TASK_UPDATED' && m.entity_id === 't2')"),
                timeout=30, what="the browser's own write as TASK_UPDATED")

            # A bad token: the browser's upgrade fails (HTTP 401, no socket).
            code = cdp.eval("""
                new Promise((resolve) => {
                  const ws = new WebSocket(%s);
                  ws.onopen = () => resolve("opened");
                  ws.onclose = (e) => resolve(e.code);
                })""" % json.dumps(stream.replace("token=", "token=x")))
            assert code == 1006, code
            # SIGTERM: the page sees 1001.
            assert srv.stop() == 0
            wait_until(lambda: cdp.eval("window.wsClosed || null"), timeout=30,
                       what="close in the browser")
            assert cdp.eval("window.wsClosed") == 1001
        finally:
            chrome.terminate()
            try:
                chrome.wait(timeout=20)
            except subprocess.TimeoutExpired:
                chrome.kill()
                chrome.wait()
            httpd.shutdown()


if __name__ == "__main__":
    if os.environ.get("HP_BB_NO_BROWSER"):
        print("SKIP test_browser_stream_and_fetch: HP_BB_NO_BROWSER is set")
        sys.exit(77)
    need_tools("test_browser_stream_and_fetch", [] if CHROMIUM else ["chromium"],
               "scripts/setup.sh --with-browser")
    run_tests([test_browser_stream_and_fetch])
