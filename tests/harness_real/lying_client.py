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


def _emit_closed_later(self, code):
    self._lie_code = code  # written by schedule_reconnect, one delay late


def _schedule_reconnect(self):
    if self.core.paused():
        return
    self.backoff += 1
    delay = self.core.policy.retry_delay(self.backoff, self.core.rng)
    loop = asyncio.get_running_loop()
    self._cancel_reconnect()
    self.reconnect_at = loop.time() + 2 * delay
    self.reconnect_handle = loop.call_later(2 * delay, self.connect_now)
    code = getattr(self, "_lie_code", None)
    self._lie_code = None
    if code is not None:
        loop.call_later(delay, self.core.emit,
                        {"kind": "connection", "state": "closed", "code": code})


stream.Stream._emit_closed = _emit_closed_later
stream.Stream.schedule_reconnect = _schedule_reconnect

if __name__ == "__main__":
    rc = hp_client.main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
