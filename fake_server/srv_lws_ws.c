/*
 * srv_lws_ws.c - WebSocket connections of the libwebsockets adapter (part
 * of srv_lws.c; see srv_lws_int.h).
 *
 * Output is bounded three ways (docs/LIMITS.md): per connection, per user
 * and in total.  A peer that stops reading is closed 1008 with a WARNING
 * once its queue passes its bound; when a user's or the server's total is
 * passed, the connection with the LARGEST queue in that set is closed (the
 * slowest reader), so peers that keep up are not touched.  A replay (WS-2)
 * is pulled from the core only when the connection's queue has drained,
 * so a replay of any size holds at most one chunk in memory.
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

char *srv_query_get(const char *query, const char *name); /* srv_stream.c */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hp_log.h"
#include "hp_msg.h"

conn *srvl_conn_find(uint64_t id)
{
    for (conn *c = srvl.by_id[id & (CONN_BUCKETS - 1)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void conn_link(conn *c)
{
    c->prev = NULL;
    c->next = srvl.conns;
    if (srvl.conns)
        srvl.conns->prev = c;
    srvl.conns = c;
    conn **b = &srvl.by_id[c->id & (CONN_BUCKETS - 1)];
    c->hnext = *b;
    *b = c;
    srvl.n_conns++;
}

static ws_user **user_bucket(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &srvl.users[h & (USER_BUCKETS - 1)];
}

static void user_unref(ws_user *u)
{
    if (!u || --u->refs > 0)
        return;
    for (ws_user **pp = user_bucket(u->name); *pp; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    }
    free(u);
}

static ws_user *user_ref(const char *name)
{
    ws_user **b = user_bucket(name);
    for (ws_user *u = *b; u; u = u->next) {
        if (strcmp(u->name, name) == 0) {
            u->refs++;
            return u;
        }
    }
    size_t n = strlen(name);
    ws_user *u = calloc(1, sizeof *u + n + 1);
    if (!u)
        return NULL;
    memcpy(u->name, name, n + 1);
    u->refs = 1;
    u->next = *b;
    *b = u;
    return u;
}

/* Forget every queued frame of c (accounting included). */
static void drop_queue(conn *c)
{
    while (c->head) {
        ws_frame *n = c->head->next;
        free(c->head->data);
        free(c->head);
        c->head = n;
    }
    c->tail = NULL;
    srvl.queued_total -= c->queued;
    if (c->user)
        c->user->queued -= c->queued;
    c->queued = 0;
}

void srvl_conn_unlink_free(conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srvl.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    for (conn **pp = &srvl.by_id[c->id & (CONN_BUCKETS - 1)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    srvl.n_conns--;
    srvl_rx_forget(c);
    drop_queue(c);
    user_unref(c->user);
    free(c->rx);
    free(c);
}

void srvl_conn_want_write(conn *c)
{
    if (c->established && c->wsi && !srvl.destroying)
        lws_callback_on_writable(c->wsi);
}

/* Close after what is queued (the core's own closes). */
void srvl_conn_close(conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code ? code : 1000;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
    srvl_conn_want_write(c);
}

/* Drop c's queue and close it with code at once (nothing queued goes out
 * first).  The core hears of it as an ordinary close (srv_ws_closed). */
static void close_now(conn *c, int code, const char *reason)
{
    drop_queue(c);
    c->want_pull = 0;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    srvl_conn_want_write(c);
}

/* A limit was passed: close 1008 (RFC 6455 policy violation: it does not
 * read). */
static void close_slow(conn *c, const char *limit, size_t value)
{
    hp_log(c->sess ? &c->sess->env : srvl.env, HP_LOG_WARNING, "limit_reached",
           "limit=%s conn=%llu user=%s queued=%zu value=%zu hh=%s dev=%s", limit,
           (unsigned long long)c->id, c->user ? c->user->name : "-", c->queued, value,
           c->who.hh[0] ? c->who.hh : "-", c->who.dev[0] ? c->who.dev : "-");
    char why[64];
    snprintf(why, sizeof why, "output buffer full (%s)", limit);
    close_now(c, 1008, why);
}

void srvl_conn_fail(conn *c, int code, const char *reason)
{
    if (c->close_code == code)
        return;
    hp_log(c->sess ? &c->sess->env : srvl.env, HP_LOG_WARNING, "ws_protocol_error",
           "conn=%llu user=%s code=%d reason=\"%s\" hh=%s dev=%s", (unsigned long long)c->id,
           c->user ? c->user->name : "-", code, reason, c->who.hh[0] ? c->who.hh : "-",
           c->who.dev[0] ? c->who.dev : "-");
    close_now(c, code, reason);
}

/* The open connection with the largest queue, among user u's (NULL: all). */
static conn *largest(const ws_user *u)
{
    conn *best = NULL;
    for (conn *k = srvl.conns; k; k = k->next) {
        if (k->close_code || (u && k->user != u))
            continue;
        if (!best || k->queued > best->queued)
            best = k;
    }
    return best;
}

static void enforce_limits(conn *c)
{
    const srv_lws_limits *l = &srvl.opts.lim;
    if (c->queued > l->out_conn) {
        close_slow(c, "output_per_conn", l->out_conn);
        return;
    }
    while (c->user && c->user->queued > l->out_user) {
        conn *k = largest(c->user);
        if (!k || k->queued == 0)
            break;
        close_slow(k, "output_per_user", l->out_user);
    }
    while (srvl.queued_total > l->out_total) {
        conn *k = largest(NULL);
        if (!k || k->queued == 0)
            break;
        close_slow(k, "output_total", l->out_total);
    }
}

void srvl_conn_queue(conn *c, char *body, size_t len)
{
    if (c->close_code) {
        free(body); /* closing: nothing more goes out */
        return;
    }
    ws_frame *f = malloc(sizeof *f);
    if (!f) {
        free(body);
        close_slow(c, "out_of_memory", 0);
        return;
    }
    f->next = NULL;
    f->len = len;
    f->data = body;
    if (c->tail)
        c->tail->next = f;
    else
        c->head = f;
    c->tail = f;
    c->queued += len;
    srvl.queued_total += len;
    if (c->user)
        c->user->queued += len;
    enforce_limits(c);
    srvl_conn_want_write(c);
}

/* WS-2: the core has more replay; ask for it once the queue has drained. */
void srvl_conn_want_pull(conn *c)
{
    if (c->close_code)
        return;
    c->want_pull = 1;
    if (!c->head)
        srvl_conn_want_write(c);
}

/*
 * Refuse an upgrade with a real HTTP response carrying the core's JSON body
 * (a bare "return 1" would just drop the socket).  The caller returns 1.
 */
static void ws_refuse(struct lws *wsi, int status, const char *body)
{
    unsigned char buf[LWS_PRE + 4096];
    unsigned char *start = buf + LWS_PRE, *pp = start, *end = buf + sizeof buf - 1;
    size_t blen = body ? strlen(body) : 0;
    char cl[24];
    snprintf(cl, sizeof cl, "%zu", blen);
    if (blen > 2048 ||
        lws_add_http_header_status(wsi, (unsigned)status, &pp, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"content-type:",
                                    (const unsigned char *)"application/json", 16, &pp, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"content-length:",
                                    (const unsigned char *)cl, (int)strlen(cl), &pp, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                    (const unsigned char *)"*", 1, &pp, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                    (const unsigned char *)"close", 5, &pp, end) ||
        (status == 401 &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                     (const unsigned char *)"Bearer", 6, &pp, end)) ||
        lws_finalize_http_header(wsi, &pp, end) || (size_t)(end - pp) < blen) {
        lws_return_http_status(wsi, (unsigned)status, NULL);
        return;
    }
    if (blen) {
        memcpy(pp, body, blen);
        pp += blen;
    }
    lws_write(wsi, start, (size_t)(pp - start), LWS_WRITE_HTTP_HEADERS);
}

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: the core decides (path, token:
 * WS-1, A-1; connection limits).  Returns 0 to accept, 1 to refuse. */
int srvl_ws_filter(struct lws *wsi, pss *p)
{
    char path[1024];
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0)
        path[0] = '\0';
    if (srvl.stopping) {
        char *b = hp_error_body(hp_error_code_for_status(503), "the server is shutting down");
        ws_refuse(wsi, 503, b);
        free(b);
        return 1;
    }
    /* The session the path names (srv_lws_admin.c); the admin address
     * has no stream. */
    const char *rest;
    char hint[SRV_SESSION_ID_MAX + 1];
    srv_session *s = srvl_route(path, &rest, hint, sizeof hint);
    if (!s || (srvl.admin_vh && lws_get_vhost(wsi) == srvl.admin_vh)) {
        char *b = hp_error_body("not_found", s ? "the admin address has no change stream"
                                               : "no such session");
        ws_refuse(wsi, 404, b);
        free(b);
        return 1;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        lws_return_http_status(wsi, 500, NULL);
        return 1;
    }
    c->id = ++srvl.next_id;
    c->wsi = wsi;
    c->sess = s;
    srvl_rx_bind((int)lws_get_socket_fd(wsi), c);
    conn_link(c);
    char *query = srvl_copy_query(wsi);
    char *refusal = NULL;
    int st = srv_ws_open(s->core, c->id, rest, query, &refusal);
    char *tok = srv_query_get(query, "token");
    if (!tok || srv_identify(s->core, tok, 1, &c->who) != 0)
        memset(&c->who, 0, sizeof c->who);
    free(tok);
    free(query);
    srv_jwho w = srvl_conn_who(c);
    srv_journal_conn(s->journal, hp_env_now(&s->env), st ? "ws_refused" : "ws_open", c->id,
                     st ? st : 101, NULL, &w);
    if (st != 0) {
        srvl_conn_unlink_free(c);
        srvl_pump();
        if (!refusal)
            refusal = hp_error_body(hp_error_code_for_status(st), "upgrade refused");
        ws_refuse(wsi, st, refusal);
        free(refusal);
        return 1;
    }
    free(refusal);
    const char *user = srv_ws_user(s->core, c->id);
    c->user = user ? user_ref(user) : NULL;
    if (p)
        p->c = c;
    srvl_pump();
    return 0;
}

void srvl_ws_established(struct lws *wsi, conn *c)
{
    c->established = 1;
    srvl_rx_arm(c); /* RFC 6455 5.1, 5.2, 5.4, 5.5: from here on */
    /* The kernel's own buffer for a reader that does not read: bounded too
     * (Linux autotunes it up to tcp_wmem's maximum, 4 MiB by default,
     * per connection). */
    int fd = (int)lws_get_socket_fd(wsi);
    int sb = srvl.opts.lim.ws_sndbuf > (size_t)INT32_MAX / 2 ? INT32_MAX / 2
                                                             : (int)srvl.opts.lim.ws_sndbuf;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    if (c->head || c->close_code || c->want_pull)
        lws_callback_on_writable(wsi);
}

/* LWS_CALLBACK_RECEIVE: reassemble one message from its fragments (and
 * lws's partial deliveries), capped at max_frame + 1 bytes.  As soon as a
 * message is known to be too big the core gets max_frame + 1 bytes (it
 * closes with 1009) and the rest of that message is dropped. */
void srvl_ws_receive(struct lws *wsi, conn *c, const unsigned char *in, size_t len)
{
    int final = lws_is_final_fragment(wsi);
    if (c->close_code)
        return;
    if (c->rx_skip) {
        if (final)
            c->rx_skip = 0;
        return;
    }
    if (!c->sess)
        return; /* its session retired the core: the close is on its way */
    const hp_policy *pol = &c->sess->pol;
    size_t cap = pol->max_frame + 1;
    size_t want = c->rx_len + len < cap ? c->rx_len + len : cap;
    if (want > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 1024;
        while (ncap < want)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        unsigned char *n = realloc(c->rx, ncap + 1);
        if (!n)
            return;
        c->rx = n;
        c->rx_cap = ncap;
    }
    size_t take = want - c->rx_len;
    memcpy(c->rx + c->rx_len, in, take);
    c->rx_len += take;
    c->rx_total += len;
    int over = c->rx_total > pol->max_frame;
    if (!final && !over)
        return;
    c->rx[c->rx_len] = '\0';
    uint64_t id = c->id;
    size_t n = c->rx_len;
    unsigned char *msg = c->rx;
    /* The buffer leaves the connection: an idle connection holds none
     * (issue 13: small per-connection memory at 10k connections). */
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    c->rx_total = 0;
    c->rx_skip = over && !final;
    srv_session *s = c->sess;
    srv_jwho w = srvl_conn_who(c);
    srv_journal_frame(s->journal, hp_env_now(&s->env), "ws_in", id, (const char *)msg, n, &w);
    srv_ws_message(s->core, id, (const char *)msg, n);
    free(msg);
    srvl_pump();
}

/* LWS_CALLBACK_SERVER_WRITEABLE: one lws_write per call; the close goes
 * after the queue is empty; a replay is pulled when the queue is empty. */
int srvl_ws_writeable(struct lws *wsi, conn *c)
{
    if (c->head) {
        ws_frame *f = c->head;
        size_t f_len = f->len;
        c->head = f->next;
        if (!c->head)
            c->tail = NULL;
        c->queued -= f->len;
        srvl.queued_total -= f->len;
        if (c->user)
            c->user->queued -= f->len;
        if (f->len > srvl.wbuf_cap) {
            unsigned char *nb = realloc(srvl.wbuf, LWS_PRE + f->len);
            if (!nb) {
                free(f->data);
                free(f);
                return -1;
            }
            srvl.wbuf = nb;
            srvl.wbuf_cap = f->len;
        }
        memcpy(srvl.wbuf + LWS_PRE, f->data, f->len);
        free(f->data);
        free(f);
        int n = lws_write(wsi, srvl.wbuf + LWS_PRE, f_len, LWS_WRITE_TEXT);
        if (n < 0)
            return -1;
        if (c->head || c->close_code || c->want_pull)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->close_code) {
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    if (c->want_pull) {
        /* WS-2: the last chunk has left; the core pushes the next one (and
         * asks again through WANT_WRITABLE while more remains). */
        c->want_pull = 0;
        if (c->sess) {
            srv_ws_writable(c->sess->core, c->id);
            srvl_pump();
        }
    }
    return 0;
}
