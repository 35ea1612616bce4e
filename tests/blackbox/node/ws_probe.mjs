// ws_probe.mjs URL [REVISION]: Node's `ws` package as a client nobody here
// wrote (issue: "It must work with ... Node's ws").  It behaves like the
// few lines a client team would type: open the change stream, send HELLO,
// answer with HEARTBEATs at the interval READY announced.
//
// stdout: one JSON object per line, each with a "kind":
//   {"kind":"open"} · {"kind":"message","data":{...}} ·
//   {"kind":"refused","status":401,"body":"..."} (upgrade refused) ·
//   {"kind":"close","code":1001} · {"kind":"error","message":"..."}
// stdin: one JSON object per line, sent as a text frame as-is; the line
// "close" closes with 1000.  The process exits after the socket closed.
import WebSocket from "ws";
import readline from "node:readline";

const url = process.argv[2];
const revision = Number(process.argv[3] || 0);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const ws = new WebSocket(url);
let beat = null;

ws.on("unexpected-response", (req, res) => {
  let body = "";
  res.on("data", (d) => (body += d));
  res.on("end", () => {
    out({ kind: "refused", status: res.statusCode, body });
    process.exit(0);
  });
});
ws.on("open", () => {
  out({ kind: "open" });
  ws.send(JSON.stringify({ type: "HELLO", revision }));
});
ws.on("message", (data) => {
  let m;
  try {
    m = JSON.parse(data.toString());
  } catch (e) {
    out({ kind: "error", message: "not JSON: " + data.toString().slice(0, 200) });
    return;
  }
  out({ kind: "message", data: m });
  // The server closes a socket silent for 2 intervals (WS-5): beat at half.
  if (m.type === "READY" && !beat)
    beat = setInterval(() => ws.send(JSON.stringify({ type: "HEARTBEAT", locks: [] })),
                       Math.max(50, m.heartbeat_interval_ms / 2));
});
ws.on("close", (code) => {
  if (beat) clearInterval(beat);
  out({ kind: "close", code });
  process.exit(0);
});
ws.on("error", (e) => out({ kind: "error", message: String(e && e.message) }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "close") ws.close(1000);
  else if (line.trim()) ws.send(line);
});
