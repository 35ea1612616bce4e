"""rest - one HTTP/1.1 request over asyncio streams (standard library only).

Why not urllib: a request must be abortable at any moment (going offline
aborts requests in flight, Q-7) and time out on the policy's clock, which an
asyncio task gives for free: cancel it and the socket is closed.  One
connection per request (Connection: close), so an abort never leaves a
half-read keep-alive connection behind.

request() returns (status, headers with lower-case names, body bytes) or
raises OSError / HttpError when no answer came (a network failure).  The
token travels only in the Authorization header, never in a path or a log.
"""

import asyncio
import ssl
from urllib.parse import urlsplit


class HttpError(OSError):
    """The peer answered something that is not an HTTP response."""


class Endpoint:
    """--server http[s]://HOST:PORT[/prefix]: where requests and the stream go."""

    def __init__(self, url):
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment:
            raise ValueError("--server must be http://HOST:PORT or https://HOST:PORT "
                             "(a path prefix is allowed, no query)")
        self.tls = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.tls else 80)
        self.prefix = u.path.rstrip("/")
        self.netloc = u.netloc

    def ws_url(self, path):
        return "%s://%s%s%s" % ("wss" if self.tls else "ws", self.netloc, self.prefix, path)


async def request(ep, method, path, token, body=None, idem_key=None):
    """One request to ep; path starts with /api/...; body: bytes or None."""
    ctx = ssl.create_default_context() if ep.tls else None
    reader, writer = await asyncio.open_connection(ep.host, ep.port, ssl=ctx)
    try:
        head = ["%s %s%s HTTP/1.1" % (method, ep.prefix, path), "Host: %s" % ep.netloc,
                "Connection: close", "Accept: application/json"]
        if token:
            head.append("Authorization: Bearer %s" % token)
        if idem_key:
            head.append("Idempotency-Key: %s" % idem_key)
        if body is not None:
            head += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        await writer.drain()
        return await _read_response(reader, method)
    finally:
        writer.close()


async def _read_response(reader, method):
    line = await reader.readline()
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError("not an HTTP response")
    status = int(parts[1])
    headers = {}
    while True:
        h = await reader.readline()
        if not h:
            raise HttpError("connection closed in the headers")
        h = h.decode("latin-1").rstrip("\r\n")
        if not h:
            break
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return status, headers, body
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    return status, headers, await reader.read()
