/*
 * srv_lws_front.c - the front door of the libwebsockets adapter (part of
 * srv_lws.c, see srv_lws_int.h): our own listening socket, and a strict
 * reading of each connection's first request head before libwebsockets
 * sees the connection.
 *
 * Why: lws 4.1.6 answers some bad requests itself, in ways a client team
 * cannot learn from: an unknown method gets a 403 HTML page, and "%00" in
 * the path, a head over its header buffer or a 100 KB URL drop the
 * connection without an answer.  Here the head is read and checked first
 * (RFC 9112) by peeking at the socket; a bad one gets a JSON answer with a
 * reason and the connection is closed; a good one is handed to lws
 * untouched (nothing was consumed: lws 4.1.6's readbuf adoption serves a
 * body wrongly) and lws serves it as if it had accepted it; when it asks
 * for a WebSocket upgrade, srv_lws_rx.c checks the frames that follow.
 * Later requests on a keep-alive connection are lws's (the checks that
 * can be made in its callbacks are in srv_lws_http.c).
 *
 * The listener and each connection in its head are raw file descriptors in
 * lws's event loop (LWS_ADOPT_RAW_FILE_DESC: lws polls, we read).  A head
 * not complete within --http-timeout is dropped (reaping).
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hp_log.h"
#include "hp_msg.h"

#define ALLOW "GET, HEAD, PUT, POST, DELETE, OPTIONS"

static int front_fd = -1;
static int front_adopted; /* lws owns front_fd */

/* ---- refusals ----------------------------------------------------------- */

static const char *reason_phrase(int st)
{
    switch (st) {
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Answer st with a JSON reason and half-close; the connection is then
 * drained until the peer closes (closing at once with unread input would
 * send a RST that can destroy the answer in flight). */
static void refuse(struct lws *wsi, front *f, int st, const char *msg)
{
    char *body = hp_error_body(hp_error_code_for_status(st), msg);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n%s"
                     "Connection: close\r\n\r\n",
                     st, reason_phrase(st), body ? strlen(body) : 0,
                     st == 405 ? "Allow: " ALLOW "\r\n" : "");
    /* Small: fits in a fresh socket's send buffer. */
    if (send(f->fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && body)
        (void)send(f->fd, body, strlen(body), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(f->fd, SHUT_WR);
    /* Refused before the head is read: no session, nobody known. */
    hp_log(srvl.env, HP_LOG_INFO, "http_refused",
           "method=- status=%d reason=\"%s\" user=- hh=- dev=-", st, msg);
    free(body);
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
    f->closing = 1;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 2);
}

/* ---- the head ------------------------------------------------------------- */

static int is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/*
 * Check a complete head (len bytes up to and including the blank line).
 * Returns 0, or the status to refuse with and *msg.
 */
static int check_head(const char *h, size_t len, const char **msg)
{
    const srv_lws_limits *l = &srvl.opts.lim;
    const char *end = h + len;
    const char *eol = memmem(h, len, "\r\n", 2);
    /* request-line = method SP request-target SP HTTP-version */
    const char *sp1 = memchr(h, ' ', (size_t)(eol - h));
    if (!sp1 || sp1 == h) {
        *msg = "malformed request line (RFC 9112 3: method SP target SP version)";
        return 400;
    }
    for (const char *p = h; p < sp1; p++) {
        if (!is_tchar(*p)) {
            *msg = "malformed method (RFC 9110 9.1: a token)";
            return 400;
        }
    }
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1) {
        *msg = "malformed request line (RFC 9112 3: method SP target SP version)";
        return 400;
    }
    if ((size_t)(sp2 - sp1 - 1) > l->max_uri) {
        *msg = "request target too long (docs/LIMITS.md: max 4096 bytes)";
        return 414;
    }
    size_t vlen = (size_t)(eol - sp2 - 1);
    if (!(vlen == 8 && (!memcmp(sp2 + 1, "HTTP/1.1", 8) || !memcmp(sp2 + 1, "HTTP/1.0", 8)))) {
        *msg = vlen >= 5 && !memcmp(sp2 + 1, "HTTP/", 5) ? "only HTTP/1.0 and HTTP/1.1"
                                                          : "malformed HTTP version";
        return vlen >= 5 && !memcmp(sp2 + 1, "HTTP/", 5) ? 505 : 400;
    }
    for (const char *p = sp1 + 1; p < sp2; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch == 0x7f) {
            *msg = "control character in the request target";
            return 400;
        }
        if (ch == '%' && p + 2 < sp2 && p[1] == '0' && p[2] == '0') {
            *msg = "NUL (%00) in the request target";
            return 400;
        }
    }
    /* Header fields: name ":" value, no obs-fold (RFC 9112 5.2). */
    int has_host = 0, has_cl = 0, has_te = 0;
    const char *line = eol + 2;
    while (line < end) {
        const char *le = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!le || le == line)
            break; /* the blank line */
        if (*line == ' ' || *line == '\t') {
            *msg = "obsolete line folding in a header (RFC 9112 5.2)";
            return 400;
        }
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line) {
            *msg = "malformed header line (name \":\" value)";
            return 400;
        }
        for (const char *p = line; p < colon; p++) {
            if (!is_tchar(*p)) {
                *msg = "malformed header name (RFC 9110 5.1: a token; no space before ':')";
                return 400;
            }
        }
        for (const char *p = colon + 1; p < le; p++) {
            unsigned char ch = (unsigned char)*p;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                *msg = "control character in a header value";
                return 400;
            }
        }
        size_t nl = (size_t)(colon - line);
        if (nl == 4 && !strncasecmp(line, "host", 4))
            has_host++;
        else if (nl == 14 && !strncasecmp(line, "content-length", 14))
            has_cl++;
        else if (nl == 17 && !strncasecmp(line, "transfer-encoding", 17))
            has_te++;
        line = le + 2;
    }
    if (has_cl > 1) {
        *msg = "more than one Content-Length (RFC 9112 6.3)";
        return 400;
    }
    if (has_cl && has_te) {
        *msg = "Content-Length together with Transfer-Encoding (RFC 9112 6.1): send "
               "Content-Length only";
        return 400;
    }
    if (!memcmp(sp2 + 1, "HTTP/1.1", 8) && has_host != 1) {
        *msg = has_host ? "more than one Host header (RFC 9112 3.2)"
                        : "Host header missing (RFC 9112 3.2)";
        return 400;
    }
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", NULL};
    size_t ml = (size_t)(sp1 - h);
    for (int i = 0; methods[i]; i++)
        if (strlen(methods[i]) == ml && !memcmp(h, methods[i], ml))
            return 0;
    *msg = "method not allowed (allowed: " ALLOW ")";
    return 405;
}

/* Does the head ask for a WebSocket upgrade (an Upgrade header naming
 * websocket)?  Then srv_lws_rx.c checks the frames that follow. */
static int wants_upgrade(const char *h, size_t len)
{
    const char *end = h + len, *line = memmem(h, len, "\r\n", 2);
    for (line = line ? line + 2 : end; line < end;) {
        const char *le = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!le || le == line)
            break;
        if ((size_t)(le - line) > 8 && !strncasecmp(line, "upgrade:", 8) &&
            memmem(line, (size_t)(le - line), "ebsocket", 8)) /* [Ww]ebsocket */
            return 1;
        line = le + 2;
    }
    return 0;
}

/* The head is good: lws takes the connection and reads it from the start
 * (nothing was consumed: only peeked). */
static int hand_over(front *f, size_t hlen)
{
    struct lws_vhost *vh = lws_get_vhost_by_name(srvl.ctx, "hp-fake-server");
    int nfd = dup(f->fd); /* the raw wsi closes f->fd; the socket lives on */
    if (!vh || nfd < 0) {
        if (nfd >= 0)
            close(nfd);
        return -1;
    }
    srvl_rx_watch(nfd, hlen, wants_upgrade(f->buf, hlen));
    lws_sock_file_fd_type u;
    u.sockfd = nfd;
    if (!lws_adopt_descriptor_vhost(vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, u, NULL, NULL))
        hp_log(srvl.env, HP_LOG_INFO, "lws", "text=\"adopting a connection failed\"");
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
    return -1; /* close the raw wsi (and f->fd) */
}

/* A head still incomplete: its bytes stay in the socket (peeked, not
 * read), so the socket stays readable; stop polling it for a moment
 * instead of spinning, then look again. */
static void repeek(lws_sorted_usec_list_t *sul)
{
    front *f = lws_container_of(sul, front, sul);
    if (f->wsi)
        lws_rx_flow_control(f->wsi, 1);
}

/* Look at what is there without taking it; decide when the head is
 * complete or too long.  Returns -1 to close the raw wsi. */
static int on_readable(struct lws *wsi, front *f)
{
    const srv_lws_limits *l = &srvl.opts.lim;
    char tmp[4096];
    if (f->closing) {
        for (;;) { /* draining after a refusal */
            ssize_t n = recv(f->fd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (n == 0)
                return -1;
            if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        }
    }
    size_t want = l->max_header + l->max_uri + 64;
    if (f->cap < want) {
        char *nb = realloc(f->buf, want);
        if (!nb)
            return -1;
        f->buf = nb;
        f->cap = want;
    }
    ssize_t n = recv(f->fd, f->buf, f->cap, MSG_DONTWAIT | MSG_PEEK);
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    f->len = (size_t)n;
    const char *hend = memmem(f->buf, f->len, "\r\n\r\n", 4);
    if (hend) {
        size_t hlen = (size_t)(hend - f->buf) + 4;
        const char *msg = NULL;
        int st = check_head(f->buf, hlen, &msg);
        if (st == 0) {
            const char *eol = memmem(f->buf, hlen, "\r\n", 2);
            if (hlen - (size_t)(eol - f->buf) > l->max_header) {
                st = 431;
                msg = "request header fields too large (docs/LIMITS.md: max 8192 bytes)";
            }
        }
        if (st) {
            refuse(wsi, f, st, msg);
            return on_readable(wsi, f); /* start draining */
        }
        return hand_over(f, hlen);
    }
    const char *eol = memmem(f->buf, f->len, "\r\n", 2);
    if (!eol && f->len > l->max_uri + 32) {
        refuse(wsi, f, 414, "request target too long (docs/LIMITS.md: max 4096 bytes)");
        return on_readable(wsi, f);
    }
    if (f->len >= f->cap) {
        refuse(wsi, f, 431, "request header fields too large (docs/LIMITS.md: max 8192 bytes)");
        return on_readable(wsi, f);
    }
    f->wsi = wsi;
    lws_rx_flow_control(wsi, 0);
    lws_sul_schedule(srvl.ctx, 0, &f->sul, repeek, 5 * LWS_US_PER_MS);
    return 0;
}

static void on_accept(void)
{
    struct lws_vhost *vh = lws_get_vhost_by_name(srvl.ctx, "hp-fake-server");
    for (;;) {
        int fd = accept4(front_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or EMFILE: the kernel keeps it queued */
        /* lws sets TCP_NODELAY on the sockets it accepts itself; an adopted one
         * keeps the kernel's Nagle, and an answer written in two pieces (head,
         * then body) waits for the peer's delayed ACK: 40 ms per request. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        lws_sock_file_fd_type u;
        u.filefd = fd;
        struct lws *w = vh ? lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
                                                       "hp-front", NULL)
                           : NULL;
        if (!w) {
            close(fd);
            continue;
        }
        front *f = lws_wsi_user(w);
        if (f)
            f->fd = fd;
        /* Reaping: the head must be complete within --http-timeout. */
        lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, srvl.opts.lim.http_timeout_s);
    }
}

int srvl_front_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    (void)in;
    (void)len;
    front *f = user;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!f)
            return -1;
        if (f->listener) {
            on_accept();
            return 0;
        }
        return on_readable(wsi, f);
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (f) {
            lws_sul_cancel(&f->sul);
            f->wsi = NULL;
            free(f->buf);
            f->buf = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- the listener ---------------------------------------------------------------- */

int srvl_front_listen(const char *iface, int port, int *bound_port)
{
    int v6 = iface && strchr(iface, ':');
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, iface, &a.sin6_addr) != 1) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        if (iface && inet_pton(AF_INET, iface, &a.sin_addr) != 1) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    front_fd = fd;
    return 0;
}

/* Put the listener into the loop (after the context exists). */
int srvl_front_start(void)
{
    struct lws_vhost *vh = lws_get_vhost_by_name(srvl.ctx, "hp-fake-server");
    lws_sock_file_fd_type u;
    u.filefd = front_fd;
    struct lws *w = vh ? lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u, "hp-front",
                                                    NULL)
                       : NULL;
    if (!w)
        return -1;
    front *f = lws_wsi_user(w);
    if (!f)
        return -1;
    front_adopted = 1;
    f->fd = front_fd;
    f->listener = 1;
    return 0;
}

void srvl_front_close(void)
{
    /* Once adopted the descriptor belongs to its lws wsi. */
    if (front_fd >= 0 && !front_adopted)
        close(front_fd);
    front_fd = -1;
    front_adopted = 0;
}
