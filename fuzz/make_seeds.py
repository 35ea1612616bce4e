#!/usr/bin/env python3
"""make_seeds.py: (re)write the seed corpora under fuzz/corpus/ from the
repository: the policy: blocks and send_frame texts of scenarios/, the
messages of the wire protocol (docs/SYNC_POLICY.md, SPEC §3), times and
durations as the tests use them, driver command lines
(docs/CLIENT_DRIVER.md), and hand-written scripts for the two cores.
The scenario targets read scenarios/ and tests/harness/data/ directly
(fuzz/CMakeLists.txt), so those files are not copied.

Run from anywhere: python3 fuzz/make_seeds.py.  Deterministic: the same
repository gives the same files (named by content hash)."""
import hashlib, json, os, pathlib, sys
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def scenarios():
    for p in sorted((ROOT / "scenarios").rglob("*.yaml")):
        try:
            yield p, yaml.safe_load(p.read_text())
        except Exception:
            continue


def walk(x):
    if isinstance(x, dict):
        yield x
        for v in x.values():
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)


MSGS = [
    '{"type":"HELLO","revision":0}',
    '{"type":"HELLO","revision":42}',
    '{"type":"READY","revision":7,"heartbeat_interval_ms":30000}',
    '{"type":"RESYNC_REQUIRED","revision":12}',
    '{"type":"HEARTBEAT"}',
    '{"type":"HEARTBEAT","locks":["t1","t2"]}',
    '{"event_type":"TASK_UPDATED","entity_id":"t1","revision":9,"payload":{"id":"t1","title":"Buy milk","notes":"","done":false,"assignee":"alice","due_at":"2026-11-25T09:00:00+03:00","remind_at":null,"revision":9,"updated_by":"alice","deleted":false}}',
    '{"event_type":"REMINDER_DUE","entity_id":"t1","revision":9,"payload":{"remind_at":"2026-11-25T09:00:00+03:00","title":"Buy milk"}}',
    '{"event_type":"LOCK_REFRESHED","entity_id":"t1","revision":9,"payload":{"holder":"bob","expires_at":"2026-11-25T09:02:00.000Z","state":"held"}}',
    '{"event_type":"SOMETHING_NEW","entity_id":"t1","revision":10,"payload":{}}',
]


def main():
    # messages: the protocol's frames and every send_frame of the scenarios
    frames = list(MSGS)
    policies = []
    for p, doc in scenarios():
        for m in walk(doc):
            f = m.get("send_frame")
            if isinstance(f, str):
                frames.append(f)
            elif isinstance(f, dict) and isinstance(f.get("text"), str):
                frames.append(f["text"])
        if isinstance(doc, dict) and isinstance(doc.get("policy"), dict):
            policies.append(json.dumps(doc["policy"], sort_keys=True))
    for f in frames:
        put("msg", f)

    # policy: the scenarios' overrides, and the documented keys one by one
    policies += [
        '{"queue_max": 3, "lock_ttl": "10s"}',
        '{"heartbeat_interval": "30s", "heartbeat_misses": 2, "hello_timeout": "10s"}',
        '{"retry_delays": ["1s", "3s", "9s"], "retry_jitter": 0.1}',
        '{"cache_cap": "20MiB", "cache_window": "7d", "offline_long": "30m"}',
        '{"max_frame": 65536, "max_body": 1048576, "event_retain": 1000}',
        '{"mergeable_fields": ["title", "notes"], "request_timeout": 10000}',
        '{"sync_failed_after": 5}',
    ]
    for p in policies:
        put("policy", p)

    # times, HTTP-dates, durations
    for t in ["2026-11-25T09:00:00+03:00", "2026-11-25T09:00:00.250Z", "1970-01-01T00:00:00Z",
              "2026-02-29T00:00:00+00:00", "9999-12-31T23:59:59.999-23:59",
              "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
              "Sun Nov  6 08:49:37 1994", "250ms", "30s", "1m30s", "2h", "7d", "31m", "1500",
              "0s"]:
        put("time", t)

    # JWT: tokens are the fuzz secret's, minted by the target itself from
    # sub\nhh\ndev inputs; the verify path gets structurally valid tokens.
    for t in ["alice\nhome\nphone", "bob\nhome", "carol\nother\n",
              "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
              "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiaGgiOiJoIiwiZXhwIjo5OTk5OTk5OTk5fQ.",
              "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImhoIjoiaG9tZSIsImV4cCI6MTh9.AAAA"]:
        put("jwt", t)

    # the JSON writer: texts jansson parses (sorting, escapes, numbers);
    # fuzz_jdump also reads any input as its tree generator's choices
    for t in ['{"type":"HELLO","revision":0}', '{"b":1,"a":{"d":[1,2],"c":"\\u00e9"},"":null}',
              '["\\u0000\\u001f\\"\\\\/\\b\\f\\n\\r\\t\\ud83d\\ude00",[],{}]',
              '[0.1,-0.0,1e300,1e-7,100.0,1e17,5e-324,-9223372036854775808,true,false]',
              '{"ab":1,"a":2,"abc":3,"\\u00e9":4,"e":5,"\\u0001":6}', '"x"', '12']:
        put("jdump", t)

    # the client's stdin driver (docs/CLIENT_DRIVER.md)
    put("cli_driver", "\n".join([
        '{"cmd":"edit","id":"t1","fields":{"title":"Buy milk","due_at":"2026-11-25T09:00:00+03:00"}}',
        '{"cmd":"status"}', '{"cmd":"cached","id":"t1"}', '{"cmd":"lock","id":"t1"}',
        '{"cmd":"unlock","id":"t1"}', '{"cmd":"delete","id":"t1"}', '{"cmd":"offline"}',
        '{"cmd":"online"}', '{"cmd":"sync_now"}', '{"cmd":"choose","id":"t1","choice":"merge"}',
        '{"cmd":"token","token":"$B"}', '{"cmd":"send_frame","text":"{}"}',
        '{"cmd":"drop","from":"server","message":"HEARTBEAT","count":2}', '{"cmd":"start"}',
        '{"cmd":"quit"}']) + "\n")
    put("cli_driver", '{"cmd":"nosuch"}\nnot json\n[1]\n{"cmd":1}\n{"cmd":"edit","id":"t1"}\n')

    # server core scripts (fuzz_srv_core.c)
    put("srv_core", "@http PUT /api/v0.2/tasks/t1 idem=k1\n"
        '{"base_revision":0,"task":{"title":"Buy milk","due_at":"2026-11-25T09:00:00+03:00"}}\n'
        "@http GET /api/v0.2/tasks?since=0\n"
        "@http GET /api/v0.2/tasks/t1\n"
        "@http DELETE /api/v0.2/tasks/t1?base_revision=1 idem=k2\n"
        "@http PUT /api/v0.2/tasks/t1 idem=k1\n"
        '{"base_revision":0,"task":{"title":"Buy milk","due_at":"2026-11-25T09:00:00+03:00"}}\n')
    put("srv_core", "@open 1 /api/v0.2/tasks/stream?token=$A\n"
        '@ws 1\n{"type":"HELLO","revision":0}\n'
        "@http PUT /api/v0.2/tasks/t2 idem=k9 auth=B\n"
        '{"base_revision":0,"task":{"title":"x","remind_at":"2027-01-15T08:01:00Z"}}\n'
        "@http POST /api/v0.2/tasks/t2/lock\n"
        '@ws 1\n{"type":"HEARTBEAT","locks":["t2"]}\n'
        "@tick 60000\n@tick 120000\n@http DELETE /api/v0.2/tasks/t2/lock\n@close 1\n")
    put("srv_core", "@open 1 /api/v0.2/tasks/stream?token=$X\n@open 2 /api/v0.2/tasks/stream\n"
        "@open 3 /api/v0.2/tasks/stream?token=$C\n@ws 3\nnot json\n@open 4 /api/v0.2/tasks/stream?token=$A\n"
        '@ws 4\n{"type":"HELLO","revision":99}\n@tick 70000\n@restart\n@shutdown\n')
    put("srv_core", "@http PUT /api/v0.2/tasks/a idem=ka\n"
        '{"base_revision":0,"task":{"title":"A"}}\n'
        "@http DELETE /api/v0.2/tasks/a?base_revision=1 idem=kd\n"
        "@http POST /api/v0.2/tasks/a cl=5 auth=none\nabcde\n"
        "@http PATCH /api/v0.2/tasks/a auth=X\n@fault fail PUT /api 2 503 5\n@fault conflict a\n"
        "@fault drop alice 3\n@state\n")

    # client core scripts (fuzz_cli_core.c)
    put("cli_core", "@open\n"
        '@ws\n{"type":"READY","revision":0,"heartbeat_interval_ms":30000}\n'
        '@edit t1\n{"title":"Buy milk"}\n'
        '@http 200\n{"id":"t1","title":"Buy milk","revision":1,"updated_by":"alice","deleted":false}\n'
        '@ws\n{"event_type":"TASK_UPDATED","entity_id":"t1","revision":1,"payload":{"id":"t1","title":"Buy milk","revision":1}}\n'
        "@tick 30000\n@tick 60000\n@status t1\n")
    put("cli_core", '@edit t1\n{"title":"a","notes":"n"}\n@open\n'
        '@ws\n{"type":"READY","revision":3,"heartbeat_interval_ms":1000}\n'
        '@http 409\n{"error":"conflict","current":{"id":"t1","title":"b","notes":"m","revision":3}}\n'
        "@choose t1 merge\n@http 503 ra=2\n@tick 3000\n@fail\n@lock t1\n@http 423\n"
        '{"error":"locked","holder":"bob"}\n@offline\n@online\n@sync\n@closed 4001\n@token B\n@restart\n')
    put("cli_core", "@refuse 401\n@token A\n@open\n"
        '@ws\n{"type":"RESYNC_REQUIRED","revision":5}\n'
        '@http 200\n{"revision":5,"tasks":[{"id":"t9","title":"z","revision":5}]}\n'
        '@ws\n{"type":"HEARTBEAT"}\n@closed 4008\n@tick 1000\n@delete t9\n@unlock t9\n')
    print("seeds written under", OUT)


if __name__ == "__main__":
    sys.exit(main())
