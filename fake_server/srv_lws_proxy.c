/*
 * srv_lws_proxy.c - /_hp/proxy/...: the fault proxy's control API relayed
 * through the admin API (part of srv_lws.c, see srv_lws_int.h).
 *
 * Why here: a team that uses hp-fake-server as a shared service reaches
 * one address with one admin token; network faults (partition, latency,
 * RST) live in hp-fault-proxy (docs/FAULT_PROXY.md), whose control API is
 * loopback-only and has no authentication.  With --fault-proxy HOST:PORT
 * an admin request to /_hp/proxy/REST is sent to that control API as
 * METHOD /REST?QUERY with its JSON body, and the proxy's status, Allow
 * header and JSON body come back unchanged.
 *
 * Never blocking the loop: each relay is a non-blocking socket adopted
 * into lws's loop as a raw descriptor (as the front door's connections,
 * srv_lws_front.c): connect completes on POLLOUT, the request is written
 * from RAW_WRITEABLE_FILE, the answer read from RAW_RX_FILE until the
 * proxy closes (its control API closes after every answer) or its
 * Content-Length is in.  The admin request waits meanwhile like a held
 * answer (pss: resp_ready stays 0).
 *
 * Errors are the server's own JSON: 502 proxy_unreachable (connect
 * failed, the proxy closed without an answer), 502 proxy_bad_answer (not
 * HTTP, no JSON body, over SRVL_PROXY_ANSWER_MAX), 504 proxy_timeout (no
 * whole answer within SRVL_PROXY_TIMEOUT_MS).
 *
 * Ownership: the relay state is the raw wsi's per-session data (lws frees
 * it after RAW_CLOSE_FILE); pss->relay and relay->p point at each other
 * until one side ends (srvl_proxy_detach when the admin client goes
 * first).
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hp_log.h"
#include "hp_msg.h"

/* A request-target byte the proxy reads literally (it does not decode
 * percent-escapes): lws has decoded ours, so only what can be sent as is
 * passes.  Printable ASCII without space, '#' and '?' (in the path). */
static int target_ok(const char *s, int query)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || ch == '#' || (!query && ch == '?'))
            return 0;
    }
    return 1;
}

/* Answer p (when still there) with the proxy's answer or our error. */
static void finish(srvl_relay *r, int status, const char *code, const char *msg,
                   const char *body, size_t blen, const char *allow)
{
    if (r->answered)
        return;
    r->answered = 1;
    lws_sul_cancel(&r->sul);
    hp_log(srvl.env, status >= 500 && code ? HP_LOG_WARNING : HP_LOG_INFO, "proxy_relay",
           "method=%s path=%.200s status=%d%s%s ms=%lld", r->method, r->path ? r->path : "-",
           status, code ? " error=" : "", code ? code : "",
           (long long)(hp_env_now(srvl.env) - r->t0_ms));
    pss *p = r->p;
    r->p = NULL;
    if (!p)
        return;
    p->relay = NULL;
    if (code) {
        char *b = hp_error_body(code, msg);
        srvl_set_response(p, status, b, b ? strlen(b) : 0, -1);
        free(b);
    } else {
        srvl_set_response(p, status, body, blen, -1);
        if (allow) {
            free(p->allow_own);
            p->allow_own = strdup(allow);
            p->allow = p->allow_own;
        }
    }
    if (p->wsi && !srvl.destroying)
        lws_callback_on_writable(p->wsi);
}

static void fail(srvl_relay *r, int status, const char *code, const char *fmt, const char *arg)
{
    char m[300];
    snprintf(m, sizeof m, fmt, arg ? arg : "");
    finish(r, status, code, m, NULL, 0, NULL);
}

static void on_timeout(lws_sorted_usec_list_t *sul)
{
    srvl_relay *r = lws_container_of(sul, srvl_relay, sul);
    char m[200];
    snprintf(m, sizeof m, "the fault proxy at %s did not answer within %d ms",
             srvl.opts.fault_proxy_text, SRVL_PROXY_TIMEOUT_MS);
    finish(r, 504, "proxy_timeout", m, NULL, 0, NULL);
    if (r->wsi) /* close it from lws's side: we are not in its callback */
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Parse a whole answer: 1 done (answered), 0 need more, with eof: garbage
 * is answered 502. */
static int try_answer(srvl_relay *r, int eof)
{
    const char *h = r->in;
    const char *hend = r->in_len ? memmem(h, r->in_len, "\r\n\r\n", 4) : NULL;
    if (!hend) {
        if (eof) {
            if (r->in_len == 0)
                fail(r, 502, "proxy_unreachable", "the fault proxy at %s closed the connection "
                     "without an answer", srvl.opts.fault_proxy_text);
            else
                fail(r, 502, "proxy_bad_answer", "the fault proxy at %s sent no whole HTTP "
                     "head", srvl.opts.fault_proxy_text);
            return 1;
        }
        return 0;
    }
    size_t hl = (size_t)(hend - h) + 4;
    int status = 0;
    if (r->in_len < 12 || strncmp(h, "HTTP/1.", 7) != 0 || sscanf(h + 9, "%3d", &status) != 1 ||
        status < 100 || status > 599) {
        fail(r, 502, "proxy_bad_answer", "the fault proxy at %s answered something that is not "
             "an HTTP/1.x status line", srvl.opts.fault_proxy_text);
        return 1;
    }
    long long cl = -1;
    char allow[128] = "";
    for (const char *line = memchr(h, '\n', hl); line && line + 1 < h + hl;
         line = memchr(line + 1, '\n', (size_t)(h + hl - line - 1))) {
        const char *l = line + 1;
        if (!strncasecmp(l, "content-length:", 15)) {
            char *end = NULL;
            cl = strtoll(l + 15, &end, 10);
            if (!end || (*end != '\r' && *end != ' ') || cl < 0)
                cl = -2;
        } else if (!strncasecmp(l, "allow:", 6)) {
            const char *v = l + 6, *e = memchr(v, '\r', (size_t)(h + hl - v));
            while (*v == ' ')
                v++;
            if (e && e > v && (size_t)(e - v) < sizeof allow)
                snprintf(allow, sizeof allow, "%.*s", (int)(e - v), v);
        }
    }
    if (cl == -2 || cl > SRVL_PROXY_ANSWER_MAX) {
        fail(r, 502, "proxy_bad_answer", "the fault proxy at %s sent a bad or too large "
             "Content-Length (answers are relayed up to 8 MiB: page the journal with limit=)",
             srvl.opts.fault_proxy_text);
        return 1;
    }
    size_t have = r->in_len - hl;
    if (cl >= 0 ? have < (size_t)cl : !eof) {
        if (eof) {
            fail(r, 502, "proxy_bad_answer", "the fault proxy at %s closed before the whole "
                 "body", srvl.opts.fault_proxy_text);
            return 1;
        }
        return 0;
    }
    size_t bl = cl >= 0 ? (size_t)cl : have;
    json_error_t je;
    json_t *v = json_loadb(h + hl, bl, 0, &je);
    int ok = v && (json_is_object(v) || json_is_array(v));
    json_decref(v);
    if (!ok) {
        fail(r, 502, "proxy_bad_answer", "the fault proxy at %s answered without a JSON body",
             srvl.opts.fault_proxy_text);
        return 1;
    }
    for (size_t i = 0; allow[i]; i++) /* only a method list goes into our header */
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ, ", allow[i]))
            allow[0] = '\0';
    finish(r, status, NULL, NULL, h + hl, bl, allow[0] ? allow : NULL);
    return 1;
}

/* RAW_WRITEABLE_FILE: the connect finished (or failed); write the request. */
static int on_writeable(srvl_relay *r)
{
    if (!r->connected) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err) {
            fail(r, 502, "proxy_unreachable", "cannot reach the fault proxy at %s",
                 srvl.opts.fault_proxy_text);
            return -1;
        }
        r->connected = 1;
    }
    while (r->out_off < r->out_len) {
        ssize_t n = send(r->fd, r->out + r->out_off, r->out_len - r->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            lws_callback_on_writable(r->wsi);
            return 0;
        }
        if (n <= 0) {
            fail(r, 502, "proxy_unreachable", "the fault proxy at %s closed the connection",
                 srvl.opts.fault_proxy_text);
            return -1;
        }
        r->out_off += (size_t)n;
    }
    /* No half-close: the proxy drops a request whose peer closed early. */
    return 0;
}

/* RAW_RX_FILE: read what is there; -1 closes the relay. */
static int on_readable(srvl_relay *r)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(r->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            if (r->in_len + (size_t)n > SRVL_PROXY_ANSWER_MAX + 65536) {
                fail(r, 502, "proxy_bad_answer", "the fault proxy at %s sent more than 8 MiB "
                     "(page the journal with limit=)", srvl.opts.fault_proxy_text);
                return -1;
            }
            if (r->in_len + (size_t)n + 1 > r->in_cap) {
                size_t cap = (r->in_len + (size_t)n + 1) * 2;
                char *q = realloc(r->in, cap);
                if (!q) {
                    fail(r, 502, "proxy_bad_answer", "out of memory reading the fault proxy's "
                         "answer%s", "");
                    return -1;
                }
                r->in = q;
                r->in_cap = cap;
            }
            memcpy(r->in + r->in_len, buf, (size_t)n);
            r->in_len += (size_t)n;
            r->in[r->in_len] = '\0';
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return try_answer(r, 0) ? -1 : 0;
        if (n < 0 && !r->connected) {
            fail(r, 502, "proxy_unreachable", "cannot reach the fault proxy at %s",
                 srvl.opts.fault_proxy_text);
            return -1;
        }
        try_answer(r, 1); /* EOF (or a reset): whatever came is the answer */
        return -1;
    }
}

int srvl_proxy_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    (void)wsi;
    (void)in;
    (void)len;
    srvl_relay *r = user;
    if (!r || !r->out) /* not yet set up (RAW_ADOPT_FILE comes first) */
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        return on_writeable(r);
    case LWS_CALLBACK_RAW_RX_FILE:
        return on_readable(r);
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (!r->answered)
            try_answer(r, 1);
        lws_sul_cancel(&r->sul);
        if (r->p)
            r->p->relay = NULL;
        r->p = NULL;
        r->wsi = NULL;
        free(r->out);
        free(r->in);
        free(r->path);
        r->out = r->in = r->path = NULL;
        return 0;
    default:
        return 0;
    }
}

void srvl_proxy_detach(pss *p)
{
    if (p->relay) {
        p->relay->p = NULL;
        p->relay->answered = 1; /* nobody to answer: the relay ends on its own */
        p->relay = NULL;
    }
    free(p->allow_own);
    p->allow_own = NULL;
}

void srvl_proxy_start(pss *p, const char *rest)
{
    const char *target = *rest ? rest : "/";
    if (*target != '/' || !target_ok(target, 0) || !target_ok(p->query, 1)) {
        srvl_set_error(p, 400, "the path and query after /_hp/proxy are sent to the fault proxy "
                               "as they are: printable ASCII only, without space or '#' (the "
                               "proxy does not decode %-escapes)");
        return;
    }
    size_t blen = p->body ? p->body_len : 0;
    size_t qlen = p->query && *p->query ? strlen(p->query) + 1 : 0;
    size_t cap = strlen(target) + qlen + blen + 256;
    char *out = malloc(cap);
    char *path = malloc(strlen(target) + qlen + 1);
    if (!out || !path) {
        free(out);
        free(path);
        srvl_set_error(p, 500, "out of memory");
        return;
    }
    sprintf(path, "%s%s%s", target, qlen ? "?" : "", qlen ? p->query : "");
    /* The admin token stays here: the proxy's control API has none. */
    int hl = snprintf(out, cap,
                      "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      p->method, path, srvl.opts.fault_proxy_text, blen);
    if (blen)
        memcpy(out + hl, p->body, blen);

    int v6 = strchr(srvl.opts.fault_proxy_host, ':') != NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)srvl.opts.fault_proxy_port);
        inet_pton(AF_INET6, srvl.opts.fault_proxy_host, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)srvl.opts.fault_proxy_port);
        inet_pton(AF_INET, srvl.opts.fault_proxy_host, &a->sin_addr);
        sl = sizeof *a;
    }
    srvl_relay tmp; /* answers an early failure the same way as a late one */
    memset(&tmp, 0, sizeof tmp);
    tmp.p = p;
    tmp.path = path;
    tmp.t0_ms = hp_env_now(srvl.env);
    snprintf(tmp.method, sizeof tmp.method, "%s", p->method);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS)) {
        if (fd >= 0)
            close(fd);
        fail(&tmp, 502, "proxy_unreachable", "cannot reach the fault proxy at %s",
             srvl.opts.fault_proxy_text);
        free(out);
        free(path);
        return;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(srvl.ctx, "hp-fake-server");
    lws_sock_file_fd_type u;
    u.filefd = fd;
    struct lws *w = vh ? lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u, "hp-proxy",
                                                   NULL)
                       : NULL;
    srvl_relay *r = w ? lws_wsi_user(w) : NULL;
    if (!r) {
        if (w)
            lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        else
            close(fd);
        fail(&tmp, 502, "proxy_unreachable", "cannot watch a connection to the fault proxy "
             "at %s", srvl.opts.fault_proxy_text);
        free(out);
        free(path);
        return;
    }
    *r = tmp;
    r->wsi = w;
    r->fd = fd;
    r->out = out;
    r->out_len = (size_t)hl + blen;
    p->relay = r;
    lws_sul_schedule(srvl.ctx, 0, &r->sul, on_timeout,
                     (lws_usec_t)SRVL_PROXY_TIMEOUT_MS * LWS_US_PER_MS);
    lws_callback_on_writable(w); /* POLLOUT: the connect is done */
}
