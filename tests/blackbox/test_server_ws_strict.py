#!/usr/bin/env python3
"""RFC 6455 strictness of hp-fake-server's change stream on real sockets
(issue 11, "Strict HTTP/1.1 and RFC 6455": 1002 on unmasked client frames).

libwebsockets 4.1.6 accepts unmasked client frames and never says whether a
frame was masked; fake_server/srv_lws_rx.c reads the frame headers itself.
Each case below sends one frame that breaks RFC 6455 after a normal
HELLO/READY, on its own connection, and expects:
- a close frame with code 1002 and a reason naming the rule,
- a WARNING `ws_protocol_error` line for that connection,
- nothing of the bad frame acted on (an unmasked CLOSE is not answered
  1000 by lws, an unmasked PING gets no PONG, an unmasked HEARTBEAT does
  not refresh anything: the connection is closed before),
- another connection of the same household untouched (it still gets the
  next event, it is not closed).
And the negative controls: masked traffic that exercises the parser's edge
(16- and 64-bit lengths, fragments with a PING between them, a header split
over several TCP segments) is served normally."""

import json
import socket
import struct
import time

from hpbb import OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, STREAM, WS, Env, run_tests, wait_until



def hb():
    return json.dumps({"type": "HEARTBEAT", "locks": []})


def setup(env):
    srv = env.server(time_scale=0.2).start()
    tok = srv.token("alice", "home", dev="web")
    other = env.track(srv.ws(srv.token("bob", "home", dev="phone")))
    other.hello(0)
    other.start_heartbeats(0.5)
    return srv, tok, other


def expect_1002(srv, w, other, words, what):
    code = w.wait_close(timeout=10)
    assert code == 1002, "%s: close code %s (reason %r), want 1002" % (what, code, w.close_reason)
    reason = w.close_reason or ""
    for word in words:
        assert word in reason, "%s: close reason %r lacks %r" % (what, reason, word)
    lines = srv.log_lines(level="WARNING", contains="ws_protocol_error")
    assert any("code=1002" in ln and words[0] in ln for ln in lines), \
        "%s: no WARNING ws_protocol_error: %s" % (what, lines)
    # The household's other device is untouched: it gets the next event.
    m = other.mark()
    st, _, _ = srv.put("t-%d" % int(time.monotonic() * 1e6), srv.token("bob", "home"),
                    {"title": "after %s" % what})
    assert st in (200, 201), st
    other.wait(lambda x: "event_type" in x, timeout=10, since=m, what="event after " + what)
    assert other.close_code is None and not other.closed, "%s: the other device was closed" % what


def one_case(raw, words, what, before=None):
    with Env() as env:
        srv, tok, other = setup(env)
        w = env.track(srv.ws(tok))
        w.hello(0)
        if before:
            before(w)
        n = len(w.messages)
        w.send_raw(raw)
        expect_1002(srv, w, other, words, what)
        if what == "unmasked ping":
            # lws did not answer the PING (a masked one is answered:
            # test_masked_edges_are_served): only the close came back.
            assert w.pongs == 0, w.pongs
            assert len(w.messages) == n, w.messages[n:]


def test_unmasked_text_frame_is_1002():
    # checks: RFC 6455 5.1 (a server MUST fail the connection on an unmasked frame)
    one_case(WS.frame(OP_TEXT, hb(), mask=False), ["unmasked", "5.1"], "unmasked text")


def test_unmasked_close_is_1002_not_echoed():
    one_case(WS.frame(OP_CLOSE, struct.pack("!H", 1000), mask=False), ["unmasked"],
             "unmasked close")


def test_unmasked_ping_is_1002_no_pong():
    one_case(WS.frame(OP_PING, b"p", mask=False), ["unmasked"], "unmasked ping")


def test_unmasked_header_split_over_segments_is_1002():
    raw = WS.frame(OP_TEXT, hb(), mask=False)
    with Env() as env:
        srv, tok, other = setup(env)
        w = env.track(srv.ws(tok))
        w.hello(0)
        w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        w.send_raw(raw[:1])
        time.sleep(0.05)  # two segments: the mask bit arrives in a later read
        w.send_raw(raw[1:])
        expect_1002(srv, w, other, ["unmasked"], "split unmasked header")


def test_reserved_bits_are_1002():
    f = bytearray(WS.frame(OP_TEXT, hb()))
    f[0] |= 0x40  # RSV1 without a negotiated extension
    one_case(bytes(f), ["reserved bits", "5.2"], "rsv1")


def test_reserved_opcode_is_1002():
    one_case(WS.frame(0x3, b"x"), ["reserved opcode"], "opcode 3")


def test_fragmented_control_frame_is_1002():
    one_case(WS.frame(OP_PING, b"p", fin=False), ["fragmented control"], "ping fin=0")


def test_continuation_without_message_is_1002():
    one_case(WS.frame(OP_CONT, b"x"), ["continuation"], "lone continuation")


def test_new_message_inside_fragmented_one_is_1002():
    one_case(WS.frame(OP_TEXT, "{}"), ["inside a fragmented"], "text inside fragments",
             before=lambda w: w.send_frame(OP_TEXT, '{"type":', fin=False))


def test_data_before_the_101_is_1002():
    # RFC 6455 4.1: the client waits for the handshake response before sending.
    with Env() as env:
        srv, tok, other = setup(env)
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        req = ("GET %s?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (STREAM, tok, srv.port)).encode()
        s.sendall(req + WS.frame(OP_TEXT, json.dumps({"type": "HELLO", "revision": 0})))
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            if len(rest) >= 4 and rest[0] == 0x88:
                break
        s.close()
        assert data.startswith(b"HTTP/1.1 101"), data[:200]
        rest = data.partition(b"\r\n\r\n")[2]
        assert rest[:1] == b"\x88", "no close frame after the 101: %r" % rest[:80]
        code = struct.unpack("!H", rest[2:4])[0]
        assert code == 1002, code
        assert b"4.1" in rest, rest


def test_masked_edges_are_served():
    # Negative control: the checker must not fail good traffic.
    with Env() as env:
        srv, tok, other = setup(env)
        w = env.track(srv.ws(tok))
        w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        w.hello(0)
        # No heartbeat thread here: its frames would land inside the pieces
        # of a frame sent below (at time scale 0.2 the server waits 12 s).
        # 16-bit length: a 60,000-byte HEARTBEAT (padded), sent in pieces.
        pad = {"type": "HEARTBEAT", "locks": [], "pad": "x" * 60000}
        raw = WS.frame(OP_TEXT, json.dumps(pad))
        for i in range(0, len(raw), 7001):
            w.send_raw(raw[i:i + 7001])
            time.sleep(0.01)
        # Fragments with a PING between them, then one split header.
        w.send_frame(OP_TEXT, '{"type":"HEART', fin=False)
        w.send_frame(OP_PING, b"between")
        w.send_frame(OP_CONT, 'BEAT","locks":[]}', fin=True)
        wait_until(lambda: w.pongs == 1, timeout=10, what="the PONG to the masked PING")
        raw = WS.frame(OP_TEXT, hb())
        w.send_raw(raw[:1])
        time.sleep(0.05)
        w.send_raw(raw[1:3])
        time.sleep(0.05)
        w.send_raw(raw[3:])
        # Still served: the next event arrives, nothing closed.
        m = w.mark()
        st, _, _ = srv.put("t-edge", srv.token("bob", "home"), {"title": "edge"})
        assert st in (200, 201), st
        w.wait(lambda x: x.get("entity_id") == "t-edge", timeout=10, since=m, what="event")
        assert w.close_code is None, (w.close_code, w.close_reason)
        assert not srv.log_lines(contains="ws_protocol_error")
        # 64-bit length over the frame limit: the policy's 1009, not a 1002.
        big = WS.frame(OP_TEXT, "x" * 70000)
        assert big[1] & 0x7f == 127
        w.send_raw(big)
        assert w.wait_close(timeout=10) == 1009, (w.close_code, w.close_reason)
        assert not srv.log_lines(contains="ws_protocol_error")


if __name__ == "__main__":
    run_tests([
        test_unmasked_text_frame_is_1002,
        test_unmasked_close_is_1002_not_echoed,
        test_unmasked_ping_is_1002_no_pong,
        test_unmasked_header_split_over_segments_is_1002,
        test_reserved_bits_are_1002,
        test_reserved_opcode_is_1002,
        test_fragmented_control_frame_is_1002,
        test_continuation_without_message_is_1002,
        test_new_message_inside_fragmented_one_is_1002,
        test_data_before_the_101_is_1002,
        test_masked_edges_are_served,
    ])
