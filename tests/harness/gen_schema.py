#!/usr/bin/env python3
# Regenerates docs/scenario.schema.json (JSON Schema 2020-12) from the language tables
# mirrored here from harness/lang/scn_load.c.  test_scn_load checks that every keyword of the
# validator appears in the schema, so a new keyword fails the test until it is added here.
# Usage: python3 tests/harness/gen_schema.py > docs/scenario.schema.json
import json
dur = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d))+$", "description": "a duration with units: 250ms, 30s, 31m, 2h, 7d, 1m30s"}
taskid = {"type": "string", "pattern": "^([A-Za-z0-9_-]|\\{i\\}){1,64}$"}
taskids = {"type": "array", "items": taskid}
time_ = {"type": ["string", "null"], "description": "RFC 3339 time with offset, e.g. 2026-11-25T10:00:00+03:00"}
rules = ["WS-1","WS-2","WS-3","WS-4","WS-5","WS-6","Q-1","Q-2","Q-3","Q-4","Q-5","Q-6","Q-7","C-1","C-2","C-3","C-4","CF-1","CF-2","CF-3","CF-4","N-1","R-1","A-1","A-2","A-3","A-4"]
nonneg = {"type": "integer", "minimum": 0}
quant = {"count": nonneg, "at_least": nonneg, "at_most": nonneg}
event_types = ["TASK_UPDATED","REMINDER_DUE","LOCK_REFRESHED"]
notify_types = ["SYNC_FAILED","QUEUE_FULL","OFFLINE_LONG","CONFLICT","REJECTED","AUTH_REQUIRED","KEY_MISMATCH"]
frame_types = ["HELLO","READY","HEARTBEAT","RESYNC_REQUIRED"] + event_types
methods = ["GET","PUT","DELETE","POST","PATCH","HEAD"]
levels = ["DEBUG","INFO","WARNING","ERROR"]
# Log record names and task fields: read from harness/lang/scn_load.c, where the validator keeps them
# (docs/LOG_RECORDS.md documents each record).
import os, re
_src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "harness", "lang", "scn_load.c")).read()
def _c_table(name):
    body = re.search(r"const char \*const " + name + r"\[\] = \{(.*?)NULL\s*\}", _src, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r'"([^"]+)"', body)
log_messages = _c_table("scn_log_messages")
task_fields = _c_table("scn_task_fields")

def obj(props, required=None, desc=None, addl=False):
    o = {"type": "object", "properties": props, "additionalProperties": addl}
    if required: o["required"] = required
    if desc: o["description"] = desc
    return o

def history(name, matcher_props, word, extra=None, desc=""):
    m = obj(matcher_props)
    mq = obj({**matcher_props, **quant, **(extra or {})})
    item = {"anyOf": [word, m]}
    return {"description": desc, "anyOf": [
        word,
        mq,
        {"type": "array", "items": item},
        obj({"exactly": {"type": "array", "items": item}}, ["exactly"]),
    ]}

received_m = {"event_type": {"enum": event_types}, "entity_id": {"type": "string"}, "revision": nonneg, "payload": {}}
notified_m = {"type": {"enum": notify_types}, "entity_id": {"type": "string"}, "fields": {"type": "array", "items": {"type": "string"}}, "edit_vs_delete": {"type": "boolean"}, "choices": {"type": "array", "items": {"type": "string"}}}
requests_m = {"method": {"enum": methods}, "path": {"type": "string", "pattern": "^/"}, "status": nonneg, "from": {"type": "string"}, "idem_key": {"type": ["boolean", "string"]}, "body": {}, "response": {}}
closed_m = {"code": nonneg, "by": {"enum": ["server", "client", "network"]}}
frames_m = {"from": {"enum": ["server", "client"]}, "type": {"enum": frame_types}, "entity_id": {"type": "string"}, "revision": {"type": "integer", "minimum": 0}, "lost": {"type": "boolean"}}

log_inner = {"level": {"enum": levels}, "message": {"enum": log_messages, "description": "a record name, see docs/LOG_RECORDS.md"}, "pattern": {"type": "string", "description": "POSIX extended regex searched in '<message> <fields>'"}, **quant}
log_one = obj(log_inner)
log_top_one = obj({"actor": {"type": "string"}, **log_inner, "since": {"type": "string"}, "within": dur})
listform_item = obj({k: {} for k in ["entity_id","op","base_revision","attempts","snapshot","mutation_id","status","reason"]})
listform = {"anyOf": [nonneg, taskids, obj({"length": nonneg, "entities": taskids, "items": {"type": "array", "items": listform_item}})]}
count_or_quant = {"anyOf": [nonneg, obj(quant)]}

task_props = {k: {} for k in task_fields}
task_props["id"] = taskid
cached_one = obj(dict(task_props), ["id"])
client_asserts = obj({
    "received": history("received", received_m, {"type": "string", "description": "TASK_UPDATED or 'TASK_UPDATED t1'"}, desc="events the app applied"),
    "notified": history("notified", notified_m, {"type": "string", "description": "OFFLINE_LONG or 'CONFLICT t1'"}, desc="notifications shown to the user"),
    "requests": history("requests", requests_m, {"type": "string", "pattern": "^[A-Z]+ /"}, {"same_idem_key": {"type": "boolean"}}, desc="HTTP requests this client sent that reached the server"),
    "closed": history("closed", closed_m, {"type": "integer"}, desc="lost connections"),
    "frames": history("frames", frames_m, {"enum": frame_types}, desc="WebSocket messages on this client's link"),
    "log": {"anyOf": [log_one, {"type": "array", "items": log_one}]},
    "reconnect_delays": {"anyOf": [{"type": "array", "items": dur}, obj({"delays": {"type": "array", "items": dur}, "tolerance": dur}, ["delays"])]},
    "connect_attempts": count_or_quant,
    "connection": {"enum": ["idle","connecting","open","ready","auth_required"]},
    "online": {"type": "boolean"},
    "applied_revision": nonneg,
    "queue": listform,
    "dead_letter": listform,
    "conflicts": {"anyOf": [nonneg, taskids]},
    "cache": obj({"entries": nonneg, "ids": taskids, "contains": taskids, "missing": taskids, "bytes": nonneg, "max_bytes": nonneg, "min_bytes": nonneg}),
    "cached": {"anyOf": [cached_one, {"type": "array", "items": cached_one}]},
    "locks": taskids,
    "status": {"type": "object"},
}, desc="expectations on a client")
task_one = obj({**task_props, "household": {"type": "string"}}, ["id"])
server_asserts = obj({
    "requests": client_asserts["properties"]["requests"],
    "log": client_asserts["properties"]["log"],
    "task": {"anyOf": [task_one, {"type": "array", "items": task_one}]},
    "no_task": {"anyOf": [taskid, taskids]},
    "revision": {"anyOf": [nonneg, {"type": "object", "additionalProperties": nonneg}]},
    "lock": obj({"id": taskid, "holder": {"type": "string"}, "household": {"type": "string"}, "held": {"type": "boolean"}}, ["id"]),
    "connections": {"anyOf": [nonneg, obj({"user": {"type": "string"}, "count": nonneg})]},
    "state": {"type": "object"},
}, desc="expectations on the server")

edit = obj({"id": taskid, "title": {"type": "string"}, "notes": {"type": "string"}, "done": {"type": "boolean"}, "assignee": {"type": ["string", "null"]}, "due_at": time_, "remind_at": time_}, ["id"])
def one(k, v): return obj({k: v}, [k])
client_action = {"anyOf": [
    {"enum": ["connect","offline","online","sync_now","crash","restart","new_token"]},
    one("edit", edit),
    one("delete", taskid), one("lock", taskid), one("unlock", taskid),
    one("choose", obj({"id": taskid, "choice": {"enum": ["merge","overwrite"]}}, ["id","choice"])),
    one("new_token", obj({"ttl": dur})),
    one("restart", obj({"key": {"enum": ["other","original"]}})),
    one("latency", dur),
    one("drop", obj({"from": {"enum": ["server","client"]}, "message": {"enum": ["HELLO","READY","HEARTBEAT","RESYNC_REQUIRED","TASK_UPDATED","REMINDER_DUE","LOCK_REFRESHED","request","response","any"]}, "count": {"type": "integer", "minimum": 1}}, ["from"])),
    one("link", {"enum": ["up","down"]}),
    one("send_request", obj({"method": {"enum": ["GET","PUT","DELETE","POST"]}, "path": {"type": "string", "pattern": "^/"},
                             "idem_key": {"type": "string"}, "body": {"description": "a JSON value, or a string sent as is"}}, ["method","path"])),
    one("send_frame", {"anyOf": [{"type": "string", "description": "the raw text frame"},
                                 obj({"text": {"type": "string"}}, ["text"]),
                                 obj({"size": {"type": "integer", "minimum": 48, "maximum": 1000000,
                                               "description": "bytes of a HEARTBEAT padded to this size"}}, ["size"])]}),
]}
server_action = {"anyOf": [
    {"enum": ["restart","crash","start"]},
    one("fail_requests", obj({"count": {"type": "integer", "minimum": 1}, "status": {"type": "integer", "minimum": 100, "maximum": 599}, "method": {"enum": methods}, "path": {"type": "string", "pattern": "^/"}, "retry_after": dur}, ["count","status"])),
    one("force_conflict", taskid),
]}
expect = {"type": "object", "properties": {"since": {"type": "string"}, "within": dur, "server": server_asserts}, "additionalProperties": client_asserts}
wait_until = {"type": "object", "properties": {"timeout": dur, "server": server_asserts}, "additionalProperties": client_asserts}
step = {"type": "object", "minProperties": 1,
  "properties": {
    "wait": dur, "wait_until": wait_until, "expect": expect,
    "expect_log": {"anyOf": [log_top_one, {"type": "array", "items": log_top_one}]},
    "mark": {"type": "string"}, "repeat": {"type": "integer", "minimum": 1}, "note": {"type": "string"},
    "server": {"anyOf": [server_action, {"type": "array", "items": server_action}]},
  },
  "additionalProperties": {"anyOf": [client_action, {"type": "array", "items": client_action}], "description": "a client's actions"}}
policy = obj({
  "heartbeat_interval": dur, "heartbeat_misses": {"type": "integer", "minimum": 1}, "hello_timeout": dur, "lock_ttl": dur,
  "queue_max": {"type": "integer", "minimum": 1}, "retry_delays": {"type": "array", "items": dur}, "retry_jitter": {"type": "number", "minimum": 0},
  "sync_failed_after": {"type": "integer", "minimum": 1}, "offline_long": dur, "cache_window": dur,
  "cache_cap": {"type": ["string", "integer"], "description": "bytes, or e.g. 20MiB, 4KiB"}, "request_timeout": dur,
  "max_frame": {"type": "integer"}, "max_body": {"type": "integer"},
  "mergeable_fields": {"type": "array", "items": {"enum": ["title","notes","done","assignee","due_at","remind_at"]}},
  "event_retain": {"type": "integer", "minimum": 1}, "idempotency_window": dur}, desc="overrides of the seed policy")
client = {"type": ["object", "null"], "properties": {
  "user": {"type": "string"}, "household": {"type": "string"}, "device": {"type": "string"},
  "token": {"enum": ["valid","none","expired","bad_signature"]}, "token_ttl": dur, "latency": dur}, "additionalProperties": False}
schema = {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://homeplanner.example/hpsync/scenario.schema.json",
  "title": "hpsync-harness scenario",
  "description": "A YAML scenario for hp-harness; see docs/SCENARIOS.md",
  "type": "object",
  "required": ["id", "name", "rules", "clients", "steps"],
  "additionalProperties": False,
  "properties": {
    "id": {"type": "string", "pattern": "^[a-z0-9_-]+/[a-z0-9_-]+$"},
    "name": {"type": "string"},
    "description": {"type": "string"},
    "rules": {"type": "array", "minItems": 1, "items": {"enum": rules}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "policy": policy,
    "start": {"type": "string"},
    "network": obj({"latency": dur}),
    "clients": {"type": "object", "minProperties": 1, "additionalProperties": client, "propertyNames": {"pattern": "^[A-Za-z0-9_-]{1,32}$"}},
    "heal": {"type": "boolean"},
    "invariants": obj({k: {"type": "boolean"} for k in ["edits_kept","entity_order","conflicts_logged","queue_bounded","cache_bounded","no_token_in_logs"]}),
    "vars": {"type": "object", "description": "variables: {name} in any string or key is replaced (docs/SCENARIOS.md §3.2)",
             "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$", "not": {"const": "i"}}},
    "steps": {"type": "array", "minItems": 1, "items": step},
  },
}

defs = {"duration": dur, "task_id": taskid, "client_expectations": client_asserts, "server_expectations": server_asserts,
        "client_action": client_action, "server_action": server_action, "log_expectation": log_one, "step": step}
def ref(name): return {"$ref": "#/$defs/" + name}
s = json.dumps(schema)
import copy
def replace(o, skip=None):
    if isinstance(o, dict):
        for name, d in defs.items():
            if o is not skip and o == d and name != skip:
                return ref(name)
        return {k: replace(v) for k, v in o.items()}
    if isinstance(o, list):
        return [replace(v) for v in o]
    return o
out_defs = {}
for name, d in defs.items():
    # replace nested defs inside each def, but not itself
    out_defs[name] = {k: replace(v) for k, v in d.items()} if isinstance(d, dict) else d
schema = replace(schema)
schema["$defs"] = out_defs

# vars, for_each, include (harness/lang/scn_expand.c): a typed value may be a "{name}"
# reference, and an item of any list may be a for_each or an include item.
out_defs["var_ref"] = {"type": "string", "pattern": "\\{[A-Za-z_][A-Za-z0-9_]*\\}",
                       "description": "a variable: \"{name}\" (vars:, for_each)"}
out_defs["for_each_vars"] = {"type": "object", "minProperties": 1,
    "description": "variable -> values: a range \"1..100\" or a list; several nest (first outermost)",
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
    "additionalProperties": {"anyOf": [{"type": "string", "pattern": "^([^.]+\\.\\.[^.]+|\\{[A-Za-z_][A-Za-z0-9_]*\\})$"}, {"type": "array"}]}}
out_defs["include"] = obj({"include": {"anyOf": [{"type": "string"},
    obj({"file": {"type": "string"}, "vars": {"type": "object"}}, ["file"])],
    "description": "a YAML file of steps (a list, or a mapping with steps: and default vars:), relative to this file"}}, ["include"])
def loosen(o):
    # o is a schema: walk its subschemas only (a property may be named "pattern").
    if not isinstance(o, dict):
        return o
    o = dict(o)
    if "properties" in o:
        o["properties"] = {k: loosen(v) for k, v in o["properties"].items()}
    for k in ("additionalProperties", "items"):
        if isinstance(o.get(k), dict):
            o[k] = loosen(o[k])
    for k in ("anyOf", "oneOf", "allOf"):
        if k in o:
            o[k] = [loosen(v) for v in o[k]]
    t = o.get("type")
    ts = t if isinstance(t, list) else [t]
    if t == "array" and "items" in o:
        it = o["items"]
        o["items"] = {"anyOf": [it, {"$ref": "#/$defs/include"},
                                obj({"for_each": {"$ref": "#/$defs/for_each_vars"},
                                     "do": {"anyOf": [it, {"type": "array", "items": it}]}}, ["for_each", "do"])]}
    elif "enum" in o or "pattern" in o or any(x in ("integer", "number", "boolean") for x in ts):
        return {"anyOf": [o, {"$ref": "#/$defs/var_ref"}]}
    return o
keep = {k: out_defs[k] for k in ("var_ref", "for_each_vars", "include")}
schema = loosen({k: v for k, v in schema.items() if k != "$defs"})
schema["$defs"] = {**{k: loosen(v) for k, v in out_defs.items() if k not in keep}, **keep}
print(json.dumps(schema, indent=2))
