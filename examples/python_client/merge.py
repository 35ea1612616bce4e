"""merge - the task model and the three-way merge (CF-2, CF-3, C-4).

A task is a plain dict, exactly as the server sends it (JSON).  Times
(`due_at`, `remind_at`) are strings kept verbatim: they are checked for the
shape "RFC 3339 with an offset" and never parsed into an instant, converted
or reformatted (C-4).
"""

import copy
import re

from policy import FIELDS

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# RFC 3339 date-time WITH its offset ("Z" or +hh:mm); a naked local time is
# ambiguous across zones and DST, so it is refused (the server would 400).
TIME_RE = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
LIMITS = {"title": 1024, "notes": 65536, "assignee": 128}


def id_valid(task_id):
    return isinstance(task_id, str) and ID_RE.fullmatch(task_id) is not None


def new_task(task_id):
    """A fresh task's defaults (also the merge base of a task created offline)."""
    return {"id": task_id, "title": "", "notes": "", "done": False, "assignee": None,
            "due_at": None, "remind_at": None, "revision": 0, "updated_by": "",
            "deleted": False}


def check_fields(fields):
    """The error message for the first bad editable field, or None."""
    for name in FIELDS:
        if name not in fields:
            continue
        v = fields[name]
        if name in ("title", "notes"):
            if not isinstance(v, str):
                return "%s must be a string" % name
            if "\0" in v:
                return "%s must not contain NUL characters" % name
            if len(v.encode()) > LIMITS[name]:
                return "%s is longer than %d bytes" % (name, LIMITS[name])
        elif name == "done":
            if not isinstance(v, bool):
                return "done must be a boolean"
        elif name == "assignee":
            if v is not None and not isinstance(v, str):
                return "assignee must be a string or null"
            if v is not None and len(v.encode()) > LIMITS[name]:
                return "assignee is longer than %d bytes" % LIMITS[name]
        else:  # due_at, remind_at: C-4, verbatim, with an offset
            if v is not None and (not isinstance(v, str) or not TIME_RE.fullmatch(v)):
                return "%s must be an RFC 3339 time with offset or null" % name
    return None


def apply_fields(task, fields):
    """A copy of task with the editable fields of `fields` set (others ignored)."""
    out = copy.deepcopy(task)
    for name in FIELDS:
        if name in fields:
            out[name] = copy.deepcopy(fields[name])
    return out


def _same(a, b, name):
    # JSON equality; bool is not int here (True == 1 in Python).
    va, vb = a.get(name), b.get(name)
    return type(va) is type(vb) and va == vb


def unchanged_since_base(base, current):
    """True when no editable field of current differs from base."""
    return all(_same(base, current, f) for f in FIELDS)


def merge3(base, local, current, mergeable):
    """CF-2: field-by-field three-way merge over the mergeable fields.

    Changed only locally -> ours; only remotely (or nowhere) -> theirs; both
    to the same value -> that value; both to different values -> a conflict
    (CF-3), and the result keeps THEIR value there, so choosing "merge"
    loses nothing of theirs.  Fields outside `mergeable` take current's
    value.  base None (created offline, met an existing task) = a fresh
    task's defaults.  Returns (merged task, [conflicting field names]).
    """
    if base is None:
        base = new_task(current.get("id", "x"))
    out = copy.deepcopy(current)
    conflicts = []
    for name in FIELDS:
        if name not in mergeable:
            continue
        l_changed = not _same(base, local, name)
        r_changed = not _same(base, current, name)
        if l_changed and not r_changed:
            out[name] = copy.deepcopy(local.get(name))
        elif l_changed and r_changed and not _same(local, current, name):
            conflicts.append(name)
    return out, conflicts
