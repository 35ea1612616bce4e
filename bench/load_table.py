#!/usr/bin/env python3
"""bench/load_table.py RUNS.jsonl: the markdown tables of bench/README.md
"Server under load" from bench/load_matrix.sh's JSON lines (server, floor,
and the ratio server/floor of each figure)."""
import json, sys

runs = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        runs[(r["run"], r["label"])] = r


def get(run, label, path):
    d = runs.get((run, label))
    for k in path.split("."):
        if isinstance(d, dict) and d.get("n") == 0:
            return None  # an empty histogram: not measured, not 0
        d = d.get(k) if isinstance(d, dict) else None
    return d


def fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, float) and abs(v) >= 100:
        return "{:,.0f}".format(v)
    return ("{:,.%df}" % nd).format(v) if isinstance(v, float) else "{:,}".format(v)


def ratio(a, b):
    return "%.2f×" % (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "—"


def cpu_pct(run, label, phase, secs_path):
    c, s = get(run, label, "server_cpu_s." + phase), get(run, label, secs_path)
    return 100.0 * c / s if isinstance(c, (int, float)) and s else None


print("| figure | goal | hp-fake-server | met? | floor | server / floor (goal ≤ 2× on fan-out) |")
print("|---|---|---|---|---|---|")
goal_rows = [
    ("fan-out p99, 1,000 listeners (ms)", "≤ 20", 20, -1, "fanout-1000", "fanout.p99_ms"),
    ("fan-out p99, 10,000 listeners (ms)", "≤ 100", 100, -1, "fanout-10000", "fanout.p99_ms"),
    ("durable PUT/s, 64 writers, no listeners", "≥ 10,000", 10000, 1, "w64-0", "puts_per_s"),
    ("durable PUT/s, 1 writer, no listeners", "≥ 1,500", 1500, 1, "w1-0", "puts_per_s"),
    ("RSS per idle stream at 10,000 (KiB)", "≤ 8", 8, -1, "fanout-10000", "rss_per_conn_kib"),
]
for name, goal, gv, sense, run, path in goal_rows:
    a, b = get(run, "server", path), get(run, "floor", path)
    if not isinstance(a, (int, float)):
        met = "not measured"
    elif (a - gv) * sense >= 0:
        met = "yes"
    else:
        met = "no: %.1f× %s" % ((a / gv, "over") if sense < 0 else (gv / a, "under")) if a else "no"
    print("| %s | %s | %s | %s | %s | %s |" % (name, goal, fmt(a), met, fmt(b), ratio(a, b)))
print()
sizes = sorted({int(r.split("-")[1]) for r, _ in runs if r.startswith("fanout-")})
cols = [
    ("RSS / idle conn (KiB)", lambda n, l: get("fanout-%d" % n, l, "rss_per_conn_kib")),
    ("setup rate (conn/s)", lambda n, l: get("fanout-%d" % n, l, "setup_rate")),
    ("fan-out p50 (ms)", lambda n, l: get("fanout-%d" % n, l, "fanout.p50_ms")),
    ("fan-out p99 (ms)", lambda n, l: get("fanout-%d" % n, l, "fanout.p99_ms")),
    ("CPU per fan-out round (ms)", lambda n, l: (
        1000.0 * get("fanout-%d" % n, l, "server_cpu_s.rounds") / get("fanout-%d" % n, l, "rounds"))
        if get("fanout-%d" % n, l, "rounds") else None),
    ("PUT/s, 1 writer", lambda n, l: get("w1-%d" % n, l, "puts_per_s")),
    ("PUT/s, 64 writers", lambda n, l: get("w64-%d" % n, l, "puts_per_s")),
    ("PUT p99, 64 writers (ms)", lambda n, l: get("w64-%d" % n, l, "put.p99_ms")),
    ("server CPU, 64 writers (%)", lambda n, l: cpu_pct("w64-%d" % n, l, "writes", "put_s")),
    ("hp-load CPU share, 64 writers", lambda n, l: get("w64-%d" % n, l, "load_cpu_share")),
]
print("| figure | " + " | ".join("%s conns: server / floor (ratio)" % "{:,}".format(n) for n in sizes) + " |")
print("|---|" + "---|" * len(sizes))
for name, f in cols:
    cells = []
    for n in sizes:
        a, b = f(n, "server"), f(n, "floor")
        cells.append("%s / %s (%s)" % (fmt(a, 2 if isinstance(a, float) and a < 10 else 1), fmt(b, 2 if isinstance(b, float) and b < 10 else 1), ratio(a, b)))
    print("| %s | %s |" % (name, " | ".join(cells)))
