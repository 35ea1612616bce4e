#!/usr/bin/env python3
"""CF-1 lock lifecycle and R-1 reminders on real sockets.

Locks: POST .../lock -> 200 {holder, expires_at} and LOCK_REFRESHED held;
another user -> 423; the holder's HEARTBEAT "locks" refreshes it; DELETE ->
204 and released; a lock nobody refreshes expires (TTL 2 min x scale).
Reminders: REMINDER_DUE {remind_at verbatim, title} when the instant comes,
once per value, logged (replayed to a late HELLO), a past remind_at fires at
once, a tombstone never fires, one that fell due while the server was down
fires at start."""

import datetime
import time

from hpbb import API, Env, run_tests, wait_until

SCALE = 0.1             # lock TTL 12 s, heartbeat 3 s, HELLO timeout 1 s
TTL = 120 * SCALE


def local_time(delta_s, offset_h=3):
    """An RFC 3339 time delta_s from now, written in a +03:00 zone."""
    tz = datetime.timezone(datetime.timedelta(hours=offset_h))
    t = datetime.datetime.now(tz) + datetime.timedelta(seconds=delta_s)
    return t.replace(microsecond=0).isoformat()


def lock_events(w, tid, state=None):
    return [m for m in w.messages if m.get("event_type") == "LOCK_REFRESHED"
            and m.get("entity_id") == tid and (state is None or m["payload"]["state"] == state)]


def test_lock_lifecycle():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        alice = srv.token("alice", "home")
        bob = srv.token("bob", "home")
        wa = env.track(srv.ws(alice))
        wa.hello(0)
        wb = env.track(srv.ws(bob))
        wb.hello(0)
        for w in (wa, wb):
            w.start_heartbeats(0.3)
        st, t, _ = srv.put("t1", alice, {"title": "x"})
        rev = t["revision"]

        st, lk, _ = srv.http("POST", API + "/t1/lock", alice)
        assert st == 200 and lk["holder"] == "alice" and lk["expires_at"].endswith("Z"), lk
        e = wb.wait_event("LOCK_REFRESHED", "t1", pred=lambda m: m["payload"]["state"] == "held")
        assert e["payload"]["holder"] == "alice" and e["revision"] == rev, e
        # Another user: 423 with the holder; a lock never blocks a write.
        st, body, _ = srv.http("POST", API + "/t1/lock", bob)
        assert st == 423 and body["error"] == "locked", body
        st, body, _ = srv.http("DELETE", API + "/t1/lock", bob)
        assert st in (403, 409, 423), body              # bob cannot release alice's lock
        st, t2, _ = srv.put("t1", bob, {"title": "bob wins"}, base=rev)
        assert st == 200, t2

        # The holder's heartbeats keep it alive past the TTL.
        wa.hb_locks.append("t1")
        t0 = time.monotonic()
        wait_until(lambda: len(lock_events(wb, "t1", "held")) >= 3, timeout=30,
                   what="refreshes from alice's heartbeats")
        time.sleep(max(0, TTL + 1.0 - (time.monotonic() - t0)))
        assert not lock_events(wb, "t1", "expired"), lock_events(wb, "t1")
        st, body, _ = srv.http("POST", API + "/t1/lock", bob)
        assert st == 423, body

        # Release: 204 and "released" for everyone.
        wa.hb_locks.remove("t1")
        st, body, _ = srv.http("DELETE", API + "/t1/lock", alice)
        assert st == 204, (st, body)
        e = wb.wait_event("LOCK_REFRESHED", "t1", pred=lambda m: m["payload"]["state"] == "released")
        assert e["payload"]["holder"] == "alice", e
        # Now bob may take it; nobody refreshes it: it expires after the TTL.
        st, lk, _ = srv.http("POST", API + "/t1/lock", bob)
        assert st == 200 and lk["holder"] == "bob", lk
        t0 = time.monotonic()
        e = wa.wait_event("LOCK_REFRESHED", "t1", timeout=TTL + 40,
                          pred=lambda m: m["payload"]["state"] == "expired")
        waited = time.monotonic() - t0
        assert e["payload"]["holder"] == "bob", e
        assert TTL - 2.0 <= waited <= TTL + 30, waited  # ~TTL; not at once
        # A lock on any valid id (even without a task) works; bad ids are 400.
        st, lk, _ = srv.http("POST", API + "/no-task-yet/lock", alice)
        assert st == 200, lk
        st, body, _ = srv.http("POST", API + "/bad%20id/lock", alice)
        assert st == 400, body
        assert srv.stop() == 0


def test_reminders():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        w = env.track(srv.ws(tok))
        w.hello(0)
        w.start_heartbeats(0.3)
        soon = local_time(3)
        past = local_time(-60)
        st, t1, _ = srv.put("r1", tok, {"title": "Call mum", "remind_at": soon})
        assert st == 200, t1
        st, t2, _ = srv.put("r2", tok, {"title": "Late", "remind_at": past})
        assert st == 200, t2
        st, t3, _ = srv.put("r3", tok, {"title": "Gone", "remind_at": local_time(2)})
        st, t3d, _ = srv.http("DELETE", API + "/r3?base_revision=%d" % t3["revision"], tok)
        assert st == 200 and t3d["deleted"], t3d

        # The past one fires at once; the future one not before its instant.
        e2 = w.wait_event("REMINDER_DUE", "r2", timeout=10)
        assert e2["payload"] == {"remind_at": past, "title": "Late"}, e2
        assert not [m for m in w.messages if m.get("event_type") == "REMINDER_DUE"
                    and m["entity_id"] == "r1"], "r1 fired early"
        e1 = w.wait_event("REMINDER_DUE", "r1", timeout=20)
        assert e1["payload"] == {"remind_at": soon, "title": "Call mum"}, e1   # verbatim
        fired_at = datetime.datetime.fromisoformat(soon).timestamp()
        assert e1["_t"] - time.monotonic() + time.time() >= fired_at - 1.0, "fired too early"
        time.sleep(3.0)    # r3 (tombstone) was due 2 s in: it must not fire
        assert not [m for m in w.messages if m.get("event_type") == "REMINDER_DUE"
                    and m["entity_id"] == "r3"], "a tombstone fired"
        # Once per value: no second REMINDER_DUE for r1; a new value fires again.
        assert len([m for m in w.messages if m.get("event_type") == "REMINDER_DUE"
                    and m["entity_id"] == "r1"]) == 1
        again = local_time(1)
        st, cur, _ = srv.http("GET", API + "/r1", tok)
        st, t1b, _ = srv.put("r1", tok, {"title": "Call mum", "remind_at": again},
                             base=cur["revision"])
        assert st == 200, t1b
        e1b = w.wait_event("REMINDER_DUE", "r1", timeout=20,
                           pred=lambda m: m["payload"]["remind_at"] == again)
        assert e1b["revision"] > e1["revision"]
        # logged, so a client that was offline gets it on replay.
        late = env.track(srv.ws(tok))
        events, ready = late.hello(0)
        kinds = [(e["event_type"], e["entity_id"]) for e in events]
        assert ("REMINDER_DUE", "r1") in kinds and ("REMINDER_DUE", "r2") in kinds, kinds
        assert [e["revision"] for e in events] == sorted(e["revision"] for e in events)
        assert srv.stop() == 0


def test_reminder_due_while_down_fires_at_start():
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        tok = srv.token("alice", "home")
        st, t, _ = srv.put("d1", tok, {"title": "while down", "remind_at": local_time(2)})
        assert st == 200, t
        assert srv.stop() == 0
        time.sleep(3.0)   # the instant passes while no server runs
        srv.start()
        w = env.track(srv.ws(tok))
        events, ready = w.hello(t["revision"])
        if not any(e["event_type"] == "REMINDER_DUE" for e in events):
            w.start_heartbeats(0.3)
            w.wait_event("REMINDER_DUE", "d1", timeout=10)
        assert srv.stop() == 0


run_tests([test_lock_lifecycle, test_reminders, test_reminder_due_while_down_fires_at_start])
