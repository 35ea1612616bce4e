#!/usr/bin/env python3
"""Edge checks of hp-fake-client on real sockets for a refused upgrade
(found by the blind mutation catalogue, tests/mutation/catalogue/blind.txt):

- WS-1 / A-2: an upgrade refused with 401 (a token signed with another
  secret) is recognised as a 401 by the client's libwebsockets adapter: the
  client raises AUTH_REQUIRED (reason upgrade_401), goes to auth_required and
  makes no further connect attempt; a good token then connects at once.
  A client that mistook the refusal for a network failure would retry on
  the backoff schedule instead (1 s, 3 s ... x the time scale)."""

import time

from hpcli import Env, mint_token, run_tests

SCALE = 0.1   # reconnect backoff 1 s -> 100 ms, 3 s -> 300 ms ...


def refused_upgrades(srv):
    return srv.log_lines(level="WARNING", contains="token_refused where=stream")


def test_refused_upgrade_asks_for_a_token():
    # checks: WS-1.5 WS-6.8
    with Env() as env:
        srv = env.server(time_scale=SCALE).start()
        bad = mint_token("alice", "home", "1h", None, "another-secret")
        alice = env.client("alice", srv, "alice", "home", time_scale=SCALE)
        alice.token = bad
        alice.start()
        alice.wait(lambda x: x.get("kind") == "notification" and x.get("type") == "AUTH_REQUIRED",
                   what="AUTH_REQUIRED after the 401 upgrade")
        n = [x for x in alice.lines if x.get("kind") == "notification"
             and x.get("type") == "AUTH_REQUIRED"]
        assert len(n) == 1 and n[0].get("reason") == "upgrade_401", n
        st = alice.status()
        assert st["connection"] == "auth_required", st
        assert st["next_reconnect_at"] is None, st
        # The backoff would have tried 4 more times in 2 s (0.1 + 0.3 + 0.9 + 2.7 s).
        time.sleep(2.0)
        assert len(refused_upgrades(srv)) == 1, refused_upgrades(srv)
        assert sum(1 for x in alice.lines if x.get("kind") == "connection"
                   and x.get("state") == "connecting") == 1, alice.lines
        # A good token connects at once.
        m = alice.mark()
        alice.ok({"cmd": "token", "token": srv.token("alice", "home", ttl="1h")})
        alice.wait_ready(since=m)
        assert len(refused_upgrades(srv)) == 1
        assert alice.quit() == 0
        assert srv.stop() == 0


if __name__ == "__main__":
    run_tests([test_refused_upgrade_asks_for_a_token])
