#!/usr/bin/env python3
"""A foreign client that breaks WS-6 and lies about it (harness_real_lying_client).

The Python example client (examples/python_client), changed in two ways:
- the bug: after a lost stream it waits twice the WS-6 delay (2, 6, 18 s...)
  before it reconnects;
- the lie: its level-1 `closed` line is written one WS-6 delay after the
  loss, so its own lines show the right schedule (1, 3, 9 s from `closed`
  to `connecting`).
A harness that took the delays from the client's lines would pass it; the
wire (the fault proxy's journal) shows the doubled delays.  Only the paths a
server outage takes are changed: a loss followed by a scheduled reconnect.
"""
import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python_client"))

import hp_client  # noqa: E402
import stream  # noqa: E402


_schedule_reconnect_honest = stream.Stream.schedule_reconnect


def _emit_closed_later(self, code):
    self._lie_code = code  # written by schedule_reconnect, one delay late


def _schedule_reconnect(self):
    """The example's own schedule_reconnect, with each delay doubled, and the
    `closed` line held back by the delay the policy asked for."""
    policy = self.core.policy
    honest = policy.retry_delay
    asked = []

    def doubled(n, rng=None):
        asked.append(honest(n, rng))
        return 2 * asked[-1]

    policy.retry_delay = doubled
    try:
        _schedule_reconnect_honest(self)
    finally:
        del policy.retry_delay  # the class's method again
    code = getattr(self, "_lie_code", None)
    self._lie_code = None
    if code is not None and asked:
        asyncio.get_running_loop().call_later(
            asked[-1], self.core.emit, {"kind": "connection", "state": "closed", "code": code})


stream.Stream._emit_closed = _emit_closed_later
stream.Stream.schedule_reconnect = _schedule_reconnect

if __name__ == "__main__":
    rc = hp_client.main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
