// sessions_browser.mjs - headless Chromium (playwright-core driving the
// installed /usr/bin/chromium) for tests/blackbox/test_server_sessions_browser.py.
//
// Input: one JSON argument {chromium, profile, server, session, token,
// origin, admin}.  Two tabs:
//   1. a client team's app on another origin (`origin`) uses the session's
//      base URL: stream (HELLO -> READY), PUT with Authorization and
//      Idempotency-Key (CORS preflight), a PUT that the session's armed
//      force_conflict answers 409, and the TASK_UPDATED event;
//   2. the admin page (`admin` + "/_hp/"): picks the session, waits for the
//      journal timeline (HTTP and WebSocket lanes, the 409 highlighted),
//      the armed faults and live connections, then clicks a fault button.
// Output: one JSON line on stdout with what was seen; the Python test
// judges it.  Every request either tab makes is recorded, so the test can
// show that the page loads nothing from elsewhere (no CDN).
import { chromium } from 'playwright-core';

const a = JSON.parse(process.argv[2]);
const out = { requests: [] };
const browser = await chromium.launchPersistentContext(a.profile, {
  executablePath: a.chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  browser.on('request', (r) => out.requests.push(r.url()));
  const app = await browser.newPage();
  await app.goto(a.origin);
  out.app = await app.evaluate(async ({ server, session, token }) => {
    const base = server + '/s/' + session + '/api/v0.2/tasks';
    const r = {};
    const ws = new WebSocket(base.replace('http', 'ws') + '/stream?token=' + token);
    const frames = [];
    ws.onmessage = (m) => frames.push(JSON.parse(m.data));
    const waitFor = (pred, ms) => new Promise((ok, bad) => {
      const t0 = Date.now();
      const poll = () => {
        const f = frames.find(pred);
        if (f) return ok(f);
        if (Date.now() - t0 > ms) return bad(new Error('timed out; frames ' + JSON.stringify(frames)));
        setTimeout(poll, 20);
      };
      poll();
    });
    await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = bad; });
    ws.send(JSON.stringify({ type: 'HELLO', revision: 0 }));
    r.ready = await waitFor((f) => f.type === 'READY', 20000);
    const put = async (id, body, key) => {
      const res = await fetch(base + '/' + id, {
        method: 'PUT',
        headers: { 'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json',
                   'Idempotency-Key': key },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    r.put1 = await put('t1', { base_revision: 0, task: { title: 'from the browser' } }, 'k-1');
    r.put2 = await put('t1', { base_revision: 1, task: { title: 'second write' } }, 'k-2');
    r.event = await waitFor((f) => f.event_type === 'TASK_UPDATED' && f.entity_id === 't1', 20000);
    // Keep the stream alive while the admin tab looks at it.
    r.hb = setInterval(() => ws.send(JSON.stringify({ type: 'HEARTBEAT' })), 500) && true;
    return r;
  }, { server: a.server, session: a.session, token: a.token });

  const page = await browser.newPage();
  await page.goto(a.admin + '/_hp/');
  await page.waitForSelector(`#sessions tr[data-id="${a.session}"] a.pick`);
  await page.click(`#sessions tr[data-id="${a.session}"] a.pick`);
  await page.waitForFunction((s) => document.querySelector('#cur').textContent === s, a.session);
  // The 409 is highlighted in the HTTP lane; frames are in the WebSocket lane.
  await page.waitForSelector('#timeline tr.hl td.http');
  await page.waitForSelector('#timeline tr[data-kind="ws_out"] td.ws');
  await page.waitForSelector('#timeline tr.warn');
  await page.waitForSelector('#conns tbody tr');
  out.page = await page.evaluate(() => ({
    highlighted: [...document.querySelectorAll('#timeline tr.hl td.http')].map((e) => e.textContent),
    warnings: [...document.querySelectorAll('#timeline tr.warn')].map((e) => e.textContent),
    ws: [...document.querySelectorAll('#timeline tr td.ws')].map((e) => e.textContent).filter(Boolean),
    http: [...document.querySelectorAll('#timeline tr td.http')].map((e) => e.textContent).filter(Boolean),
    conns: [...document.querySelectorAll('#conns tbody tr')].map((e) => e.textContent),
    sessions: [...document.querySelectorAll('#sessions tbody tr')].map((e) => e.dataset.id),
    externalScripts: document.querySelectorAll('script[src], link[href], img[src]').length,
  }));
  // Arm a fault from the page: "next PUT: 503" in the selected session.
  await page.fill('#s_dev', 'web');
  await page.click('button[data-fault="fail503"]');
  await page.waitForSelector('#faults tbody tr');
  out.page.faults = await page.evaluate(
    () => [...document.querySelectorAll('#faults tbody tr')].map((e) => e.textContent));
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
