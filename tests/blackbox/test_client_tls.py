#!/usr/bin/env python3
"""hp-fake-client over TLS (https:// and wss://), as the backend team uses
it against a dev server behind TLS.  A throwaway CA and a server
certificate for 127.0.0.1 are made with the openssl command; a small TLS
front (python's ssl module) forwards to a plain hp-fake-server.

- with --ca-file: REST and the stream work through TLS, both ways;
- without it (the system's CAs do not know the test CA) and with a
  certificate for another host: no connection, nothing sent, nothing lost,
  no crash; the edit is delivered once the client trusts the server."""

import shutil
import socket
import ssl
import subprocess
import threading

from hpbb import need_tools
from hpcli import Client, Env, run_tests

OPENSSL = shutil.which("openssl")


def make_certs(wd, san):
    """ca.pem + server.pem/server.key signed by it, for subjectAltName san."""
    def run(*args):
        r = subprocess.run([OPENSSL] + list(args), capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr.decode()
    ca_key, ca = wd.file("ca.key"), wd.file("ca.pem")
    key, csr, crt = wd.file("server.key"), wd.file("server.csr"), wd.file("server.pem")
    ext = wd.file("ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % san)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=hpsync test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=hpsync test server")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


class TLSFront:
    """Accepts TLS on a loopback port and pipes each connection to the
    plain server (one thread per direction)."""

    def __init__(self, cert, key, backend_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.backend = backend_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handshakes_failed = 0
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            raw.settimeout(30)
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            raw.close()
            return
        self.connections += 1
        tls.settimeout(None)
        back = socket.create_connection(("127.0.0.1", self.backend))

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(back, tls), daemon=True).start()
        pump(tls, back)

    def close(self):
        self.sock.close()


def tls_client(env, srv, front, name, sub, extra):
    c = Client(env.workdir, name, "https://127.0.0.1:%d" % front.port, srv.token(sub, "home"),
               extra_args=extra)
    env.clients.append(c)
    return c


def test_rest_and_stream_over_tls():
    with Env() as env:
        ca, crt, key = make_certs(env.workdir, "IP:127.0.0.1,DNS:localhost")
        srv = env.server().start()
        front = TLSFront(crt, key, srv.port)
        try:
            alice = tls_client(env, srv, front, "alice", "alice", ["--ca-file", ca]).start()
            bob = env.client("bob", srv, "bob", "home").start()      # plain, for contrast
            alice.wait_ready()
            bob.wait_ready()
            alice.ok({"cmd": "edit", "id": "t1", "fields": {"title": "over TLS"}})
            bob.wait(lambda x: x.get("kind") == "event" and x.get("entity_id") == "t1",
                     what="alice's TLS write reaching bob")
            bob.ok({"cmd": "edit", "id": "t2", "fields": {"title": "to the TLS side"}})
            alice.wait(lambda x: x.get("kind") == "event" and x.get("entity_id") == "t2",
                       what="bob's write on alice's wss:// stream")
            st, body, _ = srv.http("GET", "/api/v0.2/tasks/t1", bob.token)
            assert st == 200 and body["title"] == "over TLS", (st, body)
            assert front.connections >= 2 and front.handshakes_failed == 0, \
                (front.connections, front.handshakes_failed)
            assert alice.quit() == 0 and bob.quit() == 0
        finally:
            front.close()


def test_untrusted_certificate_refused_nothing_lost():
    with Env() as env:
        ca, crt, key = make_certs(env.workdir, "DNS:elsewhere.example")
        srv = env.server().start()
        front = TLSFront(crt, key, srv.port)
        try:
            # The system's CAs do not know the test CA; with it, the name does
            # not match 127.0.0.1.  Either way: refused, queued, no crash.
            for run, extra in enumerate(([], ["--ca-file", ca])):
                failed0 = front.handshakes_failed
                c = tls_client(env, srv, front, "alice%d" % run, "alice", extra).start()
                c.wait(lambda x: x.get("kind") == "connection" and x.get("state") == "closed",
                       what="the refused TLS connect")
                c.ok({"cmd": "edit", "id": "u%d" % run, "fields": {"title": "waits"}})
                st = c.status()
                assert st["connection"] != "ready", st
                c.wait_status(lambda s: len(s["queue"]) == 1, what="the edit still queued")
                assert c.quit() == 0
                assert front.handshakes_failed > failed0, (run, front.handshakes_failed)
                # Not one handshake completed: the client checked the chain
                # (run 0) and the host name (run 1), it did not just fail later.
                assert front.connections == 0, (run, front.connections)
            st, lst, _ = srv.http("GET", "/api/v0.2/tasks?since=0", srv.token("alice", "home"))
            assert st == 200 and lst["revision"] == 0, lst     # nothing got through
        finally:
            front.close()
        # The same store, now pointed at a front with a valid certificate:
        # the queued edit is delivered once.
        ca2, crt2, key2 = make_certs(env.workdir, "IP:127.0.0.1")
        front2 = TLSFront(crt2, key2, srv.port)
        try:
            c = env.clients[-1]
            c.server_url = "https://127.0.0.1:%d" % front2.port
            c.extra_args = ["--ca-file", ca2]
            c.start()
            c.wait_status(lambda s: not s["queue"], what="the queued edit delivered")
            st, t, _ = srv.http("GET", "/api/v0.2/tasks/u1", c.token)
            assert st == 200 and t["revision"] == 1, (st, t)
            assert c.quit() == 0
        finally:
            front2.close()


if __name__ == "__main__":
    need_tools("test_client_tls", [] if OPENSSL else ["the openssl command"], "scripts/setup.sh")
    run_tests([test_rest_and_stream_over_tls, test_untrusted_certificate_refused_nothing_lost])
