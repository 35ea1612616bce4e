#!/usr/bin/env python3
"""Edge checks of hp-fake-server's change stream on real sockets (found by
the blind mutation catalogue, tests/mutation/catalogue/blind.txt):

- WS-2.10 both sides of the frame limit, each on its own connection: a
  message of exactly 64 KiB is processed and the connection stays open (a
  live event still reaches it, nothing is closed 1009); one byte more is
  closed 1009, also when its first fragment is exactly 64 KiB (the adapter
  must not hand those 64 KiB over as a whole message: that is a 4002).  (A test that sends 64 KiB then 64 KiB + 1 on one connection
  and looks only at the final close code cannot tell which of the two
  closed it.)
- WS-5: a connection the client closed cleanly is forgotten by the core:
  it leaves the server's state at once, and no heartbeat_timeout WARNING
  (4008) is logged for it two heartbeat intervals later."""

import json
import time

from hpbb import OP_CONT, OP_TEXT, Env, run_tests, wait_until


def padded_heartbeat(size):
    pad = {"type": "HEARTBEAT", "locks": [], "pad": ""}
    pad["pad"] = "x" * (size - len(json.dumps(pad)))
    text = json.dumps(pad)
    assert len(text) == size
    return text


def test_exactly_64k_is_accepted_one_more_is_1009():
    # checks: WS-2.10
    with Env() as env:
        srv = env.server(time_scale=0.1).start()
        tok = srv.token("alice", "home")
        w = env.track(srv.ws(tok))
        w.hello(0)
        w.start_heartbeats(0.5)
        w.send_text(padded_heartbeat(65536))
        # Still served: a write's event reaches this very connection.
        m = w.mark()
        st, body, _ = srv.put("t1", srv.token("bob", "home"), {"title": "after 64 KiB"})
        assert st == 200, (st, body)
        w.wait_event("TASK_UPDATED", "t1", since=m)
        time.sleep(0.5)
        assert w.close_code is None and not w.closed, (w.close_code, w.closed)
        assert srv.log_lines(contains=" code=1009 ") == [], srv.log_lines(contains="ws_close")
        # One byte more, on a fresh connection: 1009.
        w2 = env.track(srv.ws(tok))
        w2.hello(0)
        w2.send_text(padded_heartbeat(65537))
        assert w2.wait_close() == 1009
        assert len(srv.log_lines(contains=" code=1009 ")) == 1, srv.log_lines(contains="ws_close")
        assert w.close_code is None and not w.closed
        # 64 KiB + 1 whose first fragment is exactly 64 KiB: the limit is
        # about the whole message, so it is 1009 too, not a 4002 for the
        # first 64 KiB handed over as if they were the message.
        w3 = env.track(srv.ws(tok))
        w3.hello(0)
        data = padded_heartbeat(65537).encode()
        w3.send_frame(OP_TEXT, data[:65536], fin=False)
        w3.send_frame(OP_CONT, data[65536:], fin=True)
        assert w3.wait_close() == 1009
        assert srv.log_lines(contains=" code=4002 ") == [], srv.log_lines(contains="ws_close")
        assert srv.stop() == 0


def test_clean_close_is_forgotten():
    # checks: WS-5.5 CF-4.4
    scale = 0.05   # heartbeat 1.5 s: silence limit 3 s
    with Env() as env:
        srv = env.server(time_scale=scale, admin=True).start()
        tok = srv.token("alice", "home")
        w = env.track(srv.ws(tok))
        w.hello(0)

        def conns():
            st, body, _ = srv.http("GET", "/_hp/state")
            assert st == 200, (st, body)
            return body["connections"]

        assert [c["user"] for c in conns()] == ["alice"], conns()
        w.close(1000)
        wait_until(lambda: conns() == [], what="the closed connection gone from the state")
        time.sleep(2 * 30 * scale + 1.5)      # past 2 heartbeat intervals of "silence"
        assert conns() == [], conns()
        assert srv.log_lines(level="WARNING") == [], srv.log_lines(level="WARNING")
        assert srv.log_lines(contains="heartbeat_timeout") == []
        assert srv.stop() == 0


if __name__ == "__main__":
    run_tests([test_exactly_64k_is_accepted_one_more_is_1009, test_clean_close_is_forgotten])
