/*
 * srv_lws_rx.c - RFC 6455 checks on the bytes a WebSocket peer sends, the
 * ones libwebsockets 4.1.6 does not make (part of srv_lws.c, see
 * srv_lws_int.h).
 *
 * Why here: lws 4.1.6's server parser reads the MASK bit of each client
 * frame and then unmasks or not, silently; it accepts unmasked client
 * frames (RFC 6455 5.1: the server MUST fail the connection), nonzero RSV
 * bits without an extension (5.2), and it never tells its user whether a
 * frame was masked.  A server that client teams test their apps against
 * must be stricter than production, so the frame headers are read here,
 * from the same bytes lws reads.
 *
 * How: lws reads a plain socket with recv(2) (libwebsockets.so imports
 * recv from libc).  This file defines recv() in the program; the dynamic
 * linker binds lws's calls to it, and it forwards to the next definition
 * (libc's, or a sanitizer's).  For a descriptor nobody watches it is a
 * plain pass-through; the front door (srv_lws_front.c) watches a socket
 * whose first request asks for a WebSocket upgrade, and the stream adapter
 * (srv_lws_ws.c) arms the check at ESTABLISHED.  From then on every byte
 * lws receives on that socket goes through the frame-header state machine
 * below, in the order lws parses it, so both see the same frames.
 *
 * On a violation: what precedes the bad frame is handed to lws, the bad
 * frame never is (lws must not act on it: an unmasked CLOSE would
 * otherwise be answered by lws itself), the connection is closed 1002 with
 * the reason and a WARNING, and later input is read and dropped (so the
 * socket does not stay readable while lws waits for the peer's close).
 *
 * Inputs: srvl_rx_watch() (front door: a socket handed to lws and the size
 * of its request head), srvl_rx_bind() (the upgrade was accepted: the
 * connection), srvl_rx_arm() (ESTABLISHED), srvl_rx_forget() (the
 * connection is freed).  Outputs: srvl_conn_fail() on the connection.
 * Ownership: one rx_state per descriptor in a table indexed by descriptor,
 * owned here; it points at its conn (owned by srv_lws_ws.c) while armed.
 * One thread (the lws service loop), like the rest of the adapter.
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum { RX_NONE = 0, RX_HEAD, RX_FRAMES, RX_FAILED };

typedef struct rx_state {
    conn *c;              /* while armed */
    uint64_t payload_left;/* bytes of the current frame's payload to skip */
    size_t head_left;     /* RX_HEAD: request-head bytes lws has still to read */
    size_t early;         /* RX_HEAD: bytes read past the head before the 101 */
    unsigned char state;
    unsigned char hdr[14];/* the frame header collected so far */
    unsigned char hdr_len;
    unsigned char in_msg; /* a fragmented data message is open (5.4) */
} rx_state;

static rx_state *tab;
static size_t tab_n;

static rx_state *slot(int fd, int grow)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= tab_n) {
        if (!grow)
            return NULL;
        size_t n = tab_n ? tab_n : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        rx_state *t = realloc(tab, n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + tab_n, 0, (n - tab_n) * sizeof *t);
        tab = t;
        tab_n = n;
    }
    return &tab[fd];
}

void srvl_rx_watch(int fd, size_t head_len, int upgrade)
{
    /* Always reset: the descriptor number may have served another socket. */
    rx_state *s = slot(fd, upgrade);
    if (!s)
        return;
    memset(s, 0, sizeof *s);
    if (upgrade) {
        s->state = RX_HEAD;
        s->head_left = head_len;
    }
}

void srvl_rx_bind(int fd, conn *c)
{
    rx_state *s = slot(fd, 0);
    c->rx_fd = -1;
    if (!s || s->state != RX_HEAD)
        return; /* not a first request through the front door: unchecked */
    s->c = c;
    c->rx_fd = fd;
}

void srvl_rx_arm(conn *c)
{
    rx_state *s = slot(c->rx_fd, 0);
    if (!s || s->c != c || s->state != RX_HEAD)
        return;
    if (s->early) {
        /* RFC 6455 4.1: the client MUST wait for the server's handshake
         * response before sending anything further. */
        s->state = RX_FAILED;
        srvl_conn_fail(c, 1002, "data sent before the handshake response (RFC 6455 4.1)");
        return;
    }
    s->state = RX_FRAMES;
}

void srvl_rx_forget(conn *c)
{
    rx_state *s = slot(c->rx_fd, 0);
    if (s && s->c == c)
        memset(s, 0, sizeof *s);
    c->rx_fd = -1;
}

/* Check the header in s->hdr (hdr_len bytes so far).  Returns NULL while
 * fine (and sets *need to the full header size once known), or why the
 * frame breaks RFC 6455. */
static const char *check_hdr(rx_state *s, size_t *need)
{
    unsigned char b0 = s->hdr[0];
    unsigned op = b0 & 0x0f, fin = b0 >> 7;
    if (b0 & 0x70)
        return "reserved bits set without an extension (RFC 6455 5.2)";
    if ((op >= 3 && op <= 7) || op >= 0xb)
        return "reserved opcode (RFC 6455 5.2)";
    if (op >= 8 && !fin)
        return "fragmented control frame (RFC 6455 5.5)";
    if (op == 0 && !s->in_msg)
        return "continuation frame without a message to continue (RFC 6455 5.4)";
    if ((op == 1 || op == 2) && s->in_msg)
        return "new data frame inside a fragmented message (RFC 6455 5.4)";
    if (s->hdr_len < 2)
        return NULL;
    unsigned char b1 = s->hdr[1];
    if (!(b1 & 0x80))
        return "unmasked client frame (RFC 6455 5.1)";
    unsigned l7 = b1 & 0x7f;
    if (op >= 8 && l7 > 125)
        return "control frame payload over 125 bytes (RFC 6455 5.5)";
    *need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
    if (l7 == 127 && s->hdr_len >= 3 && (s->hdr[2] & 0x80))
        return "payload length with its most significant bit set (RFC 6455 5.2)";
    return NULL;
}

/* The header is complete: start skipping its payload. */
static void hdr_done(rx_state *s)
{
    unsigned op = s->hdr[0] & 0x0f, fin = s->hdr[0] >> 7;
    unsigned l7 = s->hdr[1] & 0x7f;
    uint64_t len = l7;
    if (l7 == 126)
        len = (uint64_t)s->hdr[2] << 8 | s->hdr[3];
    else if (l7 == 127) {
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | s->hdr[i];
    }
    if (op < 8)
        s->in_msg = !fin;
    s->payload_left = len;
    s->hdr_len = 0;
}

/* Walk n received bytes.  Returns how many of them lws may have: n, or the
 * offset where a bad frame's header starts (*why set). */
static size_t walk(rx_state *s, const unsigned char *b, size_t n, const char **why)
{
    size_t i = 0, hdr_start = 0;
    while (i < n) {
        if (s->payload_left) {
            uint64_t k = n - i < s->payload_left ? n - i : s->payload_left;
            s->payload_left -= k;
            i += (size_t)k;
            continue;
        }
        if (s->hdr_len == 0)
            hdr_start = i;
        s->hdr[s->hdr_len++] = b[i++];
        size_t need = 14;
        if ((*why = check_hdr(s, &need)) != NULL)
            return hdr_start; /* 0 when the header began in an earlier read */
        if (s->hdr_len >= 2 && s->hdr_len == need)
            hdr_done(s);
    }
    return n;
}

typedef ssize_t (*recv_fn)(int, void *, size_t, int);

static ssize_t next_recv(int fd, void *buf, size_t len, int flags)
{
    static recv_fn real;
    if (!real)
        real = (recv_fn)dlsym(RTLD_NEXT, "recv");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd, buf, len, flags);
}

/* The program's recv(): see the top of this file. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    rx_state *s = (flags & MSG_PEEK) ? NULL : slot(fd, 0);
    if (!s || s->state == RX_NONE)
        return next_recv(fd, buf, len, flags);
    ssize_t n = next_recv(fd, buf, len, flags);
    if (n <= 0)
        return n;
    switch (s->state) {
    case RX_HEAD: {
        size_t h = (size_t)n < s->head_left ? (size_t)n : s->head_left;
        s->head_left -= h;
        s->early += (size_t)n - h;
        return n;
    }
    case RX_FAILED:
        errno = EAGAIN; /* dropped: lws has nothing more to act on */
        return -1;
    default:
        break;
    }
    const char *why = NULL;
    size_t ok = walk(s, buf, (size_t)n, &why);
    if (!why)
        return n;
    s->state = RX_FAILED;
    if (s->c)
        srvl_conn_fail(s->c, 1002, why);
    if (ok)
        return (ssize_t)ok;
    errno = EAGAIN;
    return -1;
}
