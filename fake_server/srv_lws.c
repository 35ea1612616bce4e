/*
 * srv_lws.c - libwebsockets adapter of the reference server.
 *
 * One lws context, one service thread, ONE protocol serving both HTTP and
 * the WebSocket stream: lws binds every upgrade without
 * Sec-WebSocket-Protocol to protocols[0] whatever its path (LWS_NOTES), so
 * the stream protocol must be first, and plain HTTP also lands there.
 *
 * The adapter owns no policy.  Its jobs:
 *   - HTTP: collect the request (method, path, query, Authorization,
 *     Idempotency-Key, Content-Length and body capped at max_body + 1),
 *     hand it to srv_http(), write the core's answer with JSON, CORS and
 *     Retry-After headers; answer CORS preflight (OPTIONS) itself;
 *   - the optional admin endpoints (/_hp/faults, /_hp/state, --admin);
 *   - WebSocket: srv_ws_open() at the upgrade (a refusal is a real HTTP
 *     response with the core's JSON body), reassembly of fragmented
 *     messages capped at max_frame + 1, per-connection send queues written
 *     only from SERVER_WRITEABLE, closes with the core's code;
 *   - time: after every core input the outbox is drained and one lws timer
 *     is re-armed at srv_next_deadline(); when it fires, srv_tick();
 *   - group commit (srv_group.c): after each lws_service() round, i.e.
 *     after every input that arrived together, srv_flush() commits the
 *     round's writes at once; an HTTP request waits (pending list) until
 *     its response comes out of the outbox;
 *   - graceful stop: srv_shutdown() (1001 to every socket), bounded wait for
 *     the closes to go out, then the context is destroyed.
 *
 * State lives in one static struct: the program runs one server.
 */
#define _GNU_SOURCE
#include "srv_lws.h"

#include <libwebsockets.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hp_log.h"
#include "hp_time.h"
#include "hp_msg.h"

/* ---- types --------------------------------------------------------------- */

/* One outgoing text frame, LWS_PRE bytes of headroom before the payload. */
typedef struct ws_frame {
    struct ws_frame *next;
    size_t len;
    unsigned char data[];      /* LWS_PRE + len */
} ws_frame;

/* One WebSocket connection known to the core. */
typedef struct conn {
    struct conn *next, *prev;  /* G.conns, open order */
    struct conn *hnext;        /* G.by_id bucket */
    uint64_t id;
    struct lws *wsi;
    int established;           /* ESTABLISHED seen: safe to ask for WRITEABLE */
    ws_frame *head, *tail;     /* frames waiting for WRITEABLE */
    size_t queued;             /* bytes in head..tail */
    int close_code;            /* 0: none; else close after the queue drains */
    char close_reason[124];    /* RFC 6455: at most 123 bytes */
    unsigned char *rx;         /* message being reassembled (<= max_frame + 1) */
    size_t rx_len, rx_cap;
    size_t rx_total;           /* real size so far, may exceed the buffer */
    int rx_skip;               /* oversized message reported: drop the rest */
} conn;

/* Per-session data; lws zeroes it and may reset it between keep-alive
 * transactions (lws_http_transaction_completed), so every pointer here is
 * freed before that call. */
typedef struct pss {
    conn *c;                   /* WebSocket: the connection, NULL for HTTP */
    /* HTTP request */
    int have_req;
    uint64_t req_id;
    char method[12];
    char *path, *query, *auth, *idem;
    int64_t content_length;    /* -1: header absent */
    char *body;
    size_t body_len, body_cap;
    struct lws *wsi;           /* set while waiting for the core's answer */
    struct pss *pend_next;     /* G.pending: requests awaiting their answer */
    int pending;
    /* HTTP response */
    int resp_ready;
    int status;
    int retry_after;           /* -1: none */
    unsigned char *resp;       /* LWS_PRE + resp_len bytes */
    size_t resp_len;
} pss;

#define CONN_BUCKETS 16384 /* power of two; ids are sequential */

static struct {
    struct lws_context *ctx;
    srv_core *core;
    const hp_env *env;
    const hp_policy *pol;
    int admin;
    int retry_after_date;             /* write Retry-After as an HTTP-date */
    volatile sig_atomic_t *stop;
    lws_sorted_usec_list_t sul;       /* the core's next deadline */
    lws_sorted_usec_list_t stop_sul;  /* wakes the loop at the stop deadline */
    conn *conns;
    conn *by_id[CONN_BUCKETS];        /* id -> conn: the outbox names
                                         connections by id, and a scan per
                                         frame made a broadcast O(n^2) */
    size_t n_conns;
    uint64_t next_id;
    pss *pending;                     /* requests handed to the core, unanswered */
    int group;                        /* group commit on */
    int stopping;
    int destroying;                   /* lws_context_destroy() running */
    int64_t stop_deadline_ms;         /* monotonic */
} G;

/* A peer that stops reading must not grow our memory without bound: past
 * this many queued bytes its connection is closed (1008). */
#define SEND_QUEUE_CAP ((size_t)16 << 20)

/* ---- small helpers ------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static conn *conn_find(uint64_t id)
{
    for (conn *c = G.by_id[id & (CONN_BUCKETS - 1)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void conn_link(conn *c)
{
    c->prev = NULL;
    c->next = G.conns;
    if (G.conns)
        G.conns->prev = c;
    G.conns = c;
    conn **b = &G.by_id[c->id & (CONN_BUCKETS - 1)];
    c->hnext = *b;
    *b = c;
    G.n_conns++;
}

static void conn_unlink_free(conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        G.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    for (conn **pp = &G.by_id[c->id & (CONN_BUCKETS - 1)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    G.n_conns--;
    ws_frame *f = c->head;
    while (f) {
        ws_frame *n = f->next;
        free(f);
        f = n;
    }
    free(c->rx);
    free(c);
}

static void pend_unlink(pss *p)
{
    if (!p->pending)
        return;
    for (pss **pp = &G.pending; *pp; pp = &(*pp)->pend_next) {
        if (*pp == p) {
            *pp = p->pend_next;
            break;
        }
    }
    p->pending = 0;
    p->pend_next = NULL;
}

static pss *pend_find(uint64_t req_id)
{
    for (pss *p = G.pending; p; p = p->pend_next)
        if (p->req_id == req_id)
            return p;
    return NULL;
}

static void http_free(pss *p)
{
    if (!p)
        return;
    pend_unlink(p); /* a client gone before its answer: the answer is dropped */
    free(p->path);
    free(p->query);
    free(p->auth);
    free(p->idem);
    free(p->body);
    free(p->resp);
    p->path = p->query = p->auth = p->idem = p->body = NULL;
    p->resp = NULL;
    p->have_req = 0;
    p->resp_ready = 0;
    p->body_len = p->body_cap = p->resp_len = 0;
}

/* Store a response body (copied, with LWS_PRE headroom) on p. */
static void set_response(pss *p, int status, const char *body, size_t len, int retry_after)
{
    free(p->resp);
    p->resp = malloc(LWS_PRE + len + 1);
    if (!p->resp) {
        p->resp_len = 0;
    } else {
        if (len)
            memcpy(p->resp + LWS_PRE, body, len);
        p->resp[LWS_PRE + len] = '\0';
        p->resp_len = len;
    }
    p->status = status;
    p->retry_after = retry_after;
    p->resp_ready = 1;
}

/* An error response made by the adapter itself (hp_error_body: the one
 * place error bodies are made). */
static void set_error(pss *p, int status, const char *message)
{
    char *b = hp_error_body(hp_error_code_for_status(status), message);
    set_response(p, status, b, b ? strlen(b) : 0, -1);
    free(b);
}

/* The query string as "a=1&b=2" from lws's argument fragments (lws has
 * already split and url-decoded them).  NULL when there is none. */
static char *copy_query(struct lws *wsi)
{
    size_t total = 0;
    int n = 0;
    for (;; n++) {
        int l = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, n);
        if (l <= 0)
            break;
        total += (size_t)l + 1;
    }
    if (n == 0)
        return NULL;
    char *q = malloc(total + 1);
    if (!q)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            q[o++] = '&';
        int l = lws_hdr_copy_fragment(wsi, q + o, (int)(total + 1 - o), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (l > 0)
            o += (size_t)l;
    }
    q[o] = '\0';
    return q;
}

static char *copy_header(struct lws *wsi, enum lws_token_indexes h)
{
    int l = lws_hdr_total_length(wsi, h);
    if (l <= 0)
        return NULL;
    char *s = malloc((size_t)l + 1);
    if (!s)
        return NULL;
    if (lws_hdr_copy(wsi, s, l + 1, h) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* A header lws has no token for (Idempotency-Key).  lws keeps custom header
 * names as sent, so both spellings a client may use are tried. */
static char *copy_custom(struct lws *wsi, const char *const *names)
{
    for (; *names; names++) {
        int nl = (int)strlen(*names);
        int l = lws_hdr_custom_length(wsi, *names, nl);
        if (l <= 0)
            continue;
        char *s = malloc((size_t)l + 1);
        if (!s)
            return NULL;
        if (lws_hdr_custom_copy(wsi, s, l + 1, *names, nl) < 0) {
            free(s);
            return NULL;
        }
        return s;
    }
    return NULL;
}

/* ---- the core's outbox and timer ---------------------------------------- */

static void arm_timer(void);

static void conn_want_write(conn *c)
{
    if (c->established && c->wsi && !G.destroying)
        lws_callback_on_writable(c->wsi);
}

/*
 * Carry out everything the core asked for, then re-arm the timer.  Called
 * after every core input.  HTTP responses go to their pending request
 * (at once, or after the group's COMMIT with group commit); frames and
 * closes to their connection's queue (a connection already closing takes
 * nothing more).
 */
static void pump(void)
{
    hp_out it;
    while (hp_outbox_pop(srv_outbox(G.core), &it)) {
        switch (it.kind) {
        case HP_OUT_HTTP_RESPONSE: {
            pss *p = pend_find(it.id);
            if (p) {
                pend_unlink(p);
                set_response(p, it.status, it.body ? it.body : "",
                             it.body ? (it.body_len ? it.body_len : strlen(it.body)) : 0,
                             it.retry_after_s);
                if (p->wsi && !G.destroying)
                    lws_callback_on_writable(p->wsi);
            } else {
                hp_log(G.env, HP_LOG_DEBUG, "lws_orphan_response", "id=%llu",
                       (unsigned long long)it.id);
            }
            break;
        }
        case HP_OUT_WS_SEND: {
            conn *c = conn_find(it.id);
            if (!c || c->close_code || !it.body)
                break;
            size_t len = it.body_len ? it.body_len : strlen(it.body);
            ws_frame *f = malloc(sizeof *f + LWS_PRE + len);
            if (!f)
                break;
            f->next = NULL;
            f->len = len;
            memcpy(f->data + LWS_PRE, it.body, len);
            if (c->tail)
                c->tail->next = f;
            else
                c->head = f;
            c->tail = f;
            c->queued += len;
            if (c->queued > SEND_QUEUE_CAP) {
                /* Not policy: memory safety of the adapter.  The core
                 * hears of it as an ordinary close (srv_ws_closed). */
                hp_log(G.env, HP_LOG_WARNING, "ws_send_queue_full", "conn=%llu bytes=%zu",
                       (unsigned long long)c->id, c->queued);
                c->close_code = 1008;
                snprintf(c->close_reason, sizeof c->close_reason, "send queue full");
                while (c->head) {
                    ws_frame *n = c->head->next;
                    free(c->head);
                    c->head = n;
                }
                c->tail = NULL;
                c->queued = 0;
            }
            conn_want_write(c);
            break;
        }
        case HP_OUT_WS_CLOSE: {
            conn *c = conn_find(it.id);
            if (!c || c->close_code)
                break;
            c->close_code = it.code ? it.code : 1000;
            snprintf(c->close_reason, sizeof c->close_reason, "%s", it.body ? it.body : "");
            conn_want_write(c);
            break;
        }
        default:
            break; /* client-only kinds never come from the server core */
        }
        hp_out_clear(&it);
    }
    arm_timer();
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    srv_tick(G.core);
    pump();
}

static void on_stop_timer(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only wakes the service loop, which checks the deadline */
}

/* One timer at the core's next deadline (none when it wants none).  At
 * least 1 ms ahead so a core that keeps a past deadline cannot spin us. */
static void arm_timer(void)
{
    if (!G.ctx)
        return;
    int64_t dl = srv_next_deadline(G.core);
    if (dl == INT64_MAX) {
        lws_sul_cancel(&G.sul);
        return;
    }
    int64_t d = dl - hp_env_now(G.env);
    if (d < 1)
        d = 1;
    if (d > 3600 * 1000)
        d = 3600 * 1000; /* re-armed after every tick anyway */
    lws_sul_schedule(G.ctx, 0, &G.sul, on_timer, (lws_usec_t)d * 1000);
}

/* ---- HTTP --------------------------------------------------------------- */

static const char *const METHODS[] = {"GET",    "POST",    "OPTIONS", "PUT",  "PATCH",
                                      "DELETE", "CONNECT", "HEAD",    ":path"};

static void admin_handle(pss *p);

/*
 * The request is complete (headers, and the body when there is one): get
 * the answer from the core (or the admin handler / preflight) and ask for
 * HTTP_WRITEABLE to send it.
 */
static void http_dispatch(struct lws *wsi, pss *p)
{
    if (!strcmp(p->method, "OPTIONS")) {
        set_response(p, 204, "", 0, -1); /* CORS preflight: headers do the work */
    } else if (G.admin && p->path && !strncmp(p->path, "/_hp/", 5)) {
        admin_handle(p);
    } else {
        srv_http_req r;
        memset(&r, 0, sizeof r);
        r.id = p->req_id = ++G.next_id;
        r.method = p->method;
        r.path = p->path ? p->path : "/";
        r.query = p->query;
        r.authorization = p->auth;
        r.idem_key = p->idem;
        r.body = p->body;
        r.body_len = p->body_len;
        r.content_length = p->content_length;
        p->wsi = wsi;
        p->pending = 1;
        p->pend_next = G.pending;
        G.pending = p;
        srv_http(G.core, &r);
        pump();
        if (!p->resp_ready) {
            if (G.group)
                return; /* held until the group's COMMIT (srv_flush) */
            pend_unlink(p);
            set_error(p, 500, "the server core gave no answer");
        }
    }
    lws_callback_on_writable(wsi);
}

/* LWS_CALLBACK_HTTP: read the request line and headers.  Returns the
 * callback's return value. */
static int http_begin(struct lws *wsi, pss *p, const char *uri)
{
    http_free(p);
    p->have_req = 1;
    p->retry_after = -1;
    char *up = NULL;
    int ulen = 0;
    int m = lws_http_get_uri_and_method(wsi, &up, &ulen);
    snprintf(p->method, sizeof p->method, "%s",
             m >= 0 && m < (int)(sizeof METHODS / sizeof *METHODS) ? METHODS[m] : "UNKNOWN");
    p->path = strdup(uri && *uri ? uri : "/");
    p->query = copy_query(wsi);
    p->auth = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    static const char *const idem_names[] = {"idempotency-key:", "Idempotency-Key:", NULL};
    p->idem = copy_custom(wsi, idem_names);
    p->content_length = -1;
    char *cl = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(cl, &end, 10);
        if (errno == 0 && end != cl && *end == '\0' && v >= 0)
            p->content_length = v;
        else
            p->content_length = 0; /* lws itself rejects most bad values first */
        free(cl);
    }
    if (!p->path) {
        set_error(p, 500, "out of memory");
        lws_callback_on_writable(wsi);
        return 0;
    }
    /* A body comes only with a Content-Length: chunked request bodies
     * never reach HTTP_BODY in lws 4.1 (LWS_NOTES), so the core sees
     * content_length -1 and answers 411 where a body is needed. */
    int bodyless = !strcmp(p->method, "GET") || !strcmp(p->method, "HEAD") ||
                   !strcmp(p->method, "OPTIONS");
    if (p->content_length > 0 && !bodyless) {
        size_t cap = G.pol->max_body + 1;
        p->body_cap = (size_t)p->content_length < cap ? (size_t)p->content_length : cap;
        p->body = malloc(p->body_cap + 1);
        if (!p->body) {
            set_error(p, 500, "out of memory");
            lws_callback_on_writable(wsi);
            return 0;
        }
        return 0; /* wait for HTTP_BODY ... HTTP_BODY_COMPLETION */
    }
    http_dispatch(wsi, p);
    return 0;
}

/* LWS_CALLBACK_HTTP_BODY: keep at most max_body + 1 bytes (enough for the
 * core to answer 413 from content_length); the rest is read and dropped so
 * the connection stays in sync. */
static void http_body(pss *p, const char *in, size_t len)
{
    if (!p->body || p->resp_ready)
        return;
    size_t room = p->body_cap - p->body_len;
    size_t n = len < room ? len : room;
    memcpy(p->body + p->body_len, in, n);
    p->body_len += n;
    p->body[p->body_len] = '\0';
}

/* LWS_CALLBACK_HTTP_WRITEABLE: headers and body in one go, then finish the
 * transaction.  pss is cleared BEFORE lws_http_transaction_completed(),
 * which may free or reset it (LWS_NOTES: ASan caught a use-after-free). */
static int http_write(struct lws *wsi, pss *p)
{
    if (!p->resp_ready)
        return 0;
    unsigned char hdr[LWS_PRE + 1536];
    unsigned char *start = hdr + LWS_PRE, *pp = start, *end = hdr + sizeof hdr - 1;
    size_t blen = p->resp_len;
    int status = p->status;
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", blen, &pp, end))
        return -1;
#define ADD_HDR(n, v)                                                                          \
    do {                                                                                       \
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)(n),                      \
                                        (const unsigned char *)(v), (int)strlen(v), &pp, end)) \
            return -1;                                                                         \
    } while (0)
    /* CORS: a page on another origin (a client team's dev server) may call
     * us; Authorization makes every real request preflighted. */
    ADD_HDR("access-control-allow-origin:", "*");
    ADD_HDR("access-control-allow-methods:", "GET, PUT, POST, DELETE, OPTIONS");
    ADD_HDR("access-control-allow-headers:", "Authorization, Content-Type, Idempotency-Key");
    ADD_HDR("access-control-expose-headers:", "Retry-After");
    ADD_HDR("access-control-max-age:", "600");
    ADD_HDR("cache-control:", "no-store");
    if (p->retry_after >= 0) {
        /* both forms of RFC 9110 exist in the wild; a client team can
         * ask for the date form to test their parser (admin fail_requests). */
        char ra[40];
        if (G.retry_after_date)
            hp_http_date_format(hp_env_now(G.env) + (int64_t)p->retry_after * 1000, ra, sizeof ra);
        else
            snprintf(ra, sizeof ra, "%d", p->retry_after);
        ADD_HDR("retry-after:", ra);
    }
#undef ADD_HDR
    if (lws_finalize_write_http_header(wsi, start, &pp, end))
        return -1;
    int rc = 0;
    /* HEAD: the headers of the GET answer, never a body (keep-alive sync). */
    if (blen && p->resp && strcmp(p->method, "HEAD") != 0) {
        if (lws_write(wsi, p->resp + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL) < 0)
            rc = -1;
    }
    http_free(p);
    if (rc)
        return -1;
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* ---- admin endpoints (--admin) ------------------------------------------ */

static int json_int(json_t *o, const char *k, int dflt, int *out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < -1 || x > 1000000)
        return -1;
    *out = (int)x;
    return 0;
}

static int json_str(json_t *o, const char *k, const char **out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/*
 * POST /_hp/faults: {"drop_heartbeats": {"user", "count"}}
 *                 | {"fail_requests": {"method", "path_prefix", "count",
 *                                      "status", "retry_after"}}
 *                 | {"force_conflict": {"id"}}     (several keys allowed)
 * GET /_hp/state: srv_state().  Everything is validated before anything is
 * applied, so a bad request changes nothing.
 */
static void admin_handle(pss *p)
{
    if (!strcmp(p->path, "/_hp/state")) {
        if (strcmp(p->method, "GET")) {
            set_error(p, 405, "use GET");
            return;
        }
        json_t *st = srv_state(G.core);
        char *s = st ? json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(st);
        if (!s) {
            set_error(p, 500, "state unavailable");
            return;
        }
        set_response(p, 200, s, strlen(s), -1);
        free(s);
        return;
    }
    if (strcmp(p->path, "/_hp/faults")) {
        set_error(p, 404, "admin endpoints: POST /_hp/faults, GET /_hp/state");
        return;
    }
    if (strcmp(p->method, "POST")) {
        set_error(p, 405, "use POST");
        return;
    }
    if (p->content_length < 0) {
        set_error(p, 411, "Content-Length required");
        return;
    }
    if ((size_t)p->content_length > G.pol->max_body) {
        set_error(p, 413, "body too large");
        return;
    }
    json_error_t je;
    json_t *root = json_loadb(p->body ? p->body : "", p->body_len, 0, &je);
    if (!root || !json_is_object(root) || json_object_size(root) == 0) {
        json_decref(root);
        set_error(p, 400, "expected a JSON object with drop_heartbeats, fail_requests "
                          "or force_conflict");
        return;
    }
    const char *k;
    json_t *v;
    /* pass 0 validates, pass 1 applies */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach(root, k, v) {
            if (!json_is_object(v)) {
                set_error(p, 400, "each fault is a JSON object");
                goto out;
            }
            if (!strcmp(k, "drop_heartbeats")) {
                const char *user;
                int count;
                if (json_str(v, "user", &user) || json_int(v, "count", 1, &count) || count < 0) {
                    set_error(p, 400, "drop_heartbeats: {\"user\": string|null, \"count\": n}");
                    goto out;
                }
                if (pass)
                    srv_fault_drop_heartbeats(G.core, user, count); /* logs fault_armed */
            } else if (!strcmp(k, "fail_requests")) {
                const char *method, *prefix, *form;
                int count, status, ra;
                if (json_str(v, "method", &method) || json_str(v, "path_prefix", &prefix) ||
                    json_int(v, "count", 1, &count) || json_int(v, "status", -2, &status) ||
                    json_int(v, "retry_after", -1, &ra) ||
                    json_str(v, "retry_after_form", &form) || count < 0 || status < 100 ||
                    status > 599 ||
                    (form && strcmp(form, "seconds") && strcmp(form, "http-date"))) {
                    set_error(p, 400, "fail_requests: {\"method\", \"path_prefix\", \"count\", "
                                      "\"status\" (100-599, required), \"retry_after\", "
                                      "\"retry_after_form\": \"seconds\"|\"http-date\"}");
                    goto out;
                }
                if (pass) {
                    /* The form is a property of how this adapter writes the
                     * header, so it is server-wide until changed again. */
                    if (form)
                        G.retry_after_date = !strcmp(form, "http-date");
                    srv_fault_fail_requests(G.core, method, prefix, count, status, ra); /* logs fault_armed */
                }
            } else if (!strcmp(k, "force_conflict")) {
                const char *id;
                if (json_str(v, "id", &id) || !id || !*id) {
                    set_error(p, 400, "force_conflict: {\"id\": task id}");
                    goto out;
                }
                if (pass)
                    srv_fault_force_conflict(G.core, id); /* logs fault_armed */
            } else {
                set_error(p, 400, "unknown fault (drop_heartbeats, fail_requests, force_conflict)");
                goto out;
            }
        }
    }
    {
        const char *okb = "{\"ok\":true}";
        set_response(p, 200, okb, strlen(okb), -1);
    }
out:
    json_decref(root);
    pump(); /* fault calls may have queued nothing, but keep the rule */
}

/* ---- WebSocket ------------------------------------------------------------ */

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
 * WS-1, A-1).  Returns 0 to accept, 1 to refuse. */
static int ws_filter(struct lws *wsi, pss *p)
{
    char path[1024];
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0)
        path[0] = '\0';
    if (G.stopping) {
        char *b = hp_error_body(hp_error_code_for_status(503), "the server is shutting down");
        ws_refuse(wsi, 503, b);
        free(b);
        return 1;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        lws_return_http_status(wsi, 500, NULL);
        return 1;
    }
    c->id = ++G.next_id;
    c->wsi = wsi;
    conn_link(c);
    char *query = copy_query(wsi);
    char *refusal = NULL;
    int st = srv_ws_open(G.core, c->id, path, query, &refusal);
    free(query);
    if (st != 0) {
        conn_unlink_free(c);
        pump();
        if (!refusal)
            refusal = hp_error_body(hp_error_code_for_status(st), "upgrade refused");
        ws_refuse(wsi, st, refusal);
        free(refusal);
        return 1;
    }
    free(refusal);
    if (p)
        p->c = c;
    pump();
    return 0;
}

/* LWS_CALLBACK_RECEIVE: reassemble one message from its fragments (and
 * lws's partial deliveries), capped at max_frame + 1 bytes.  As soon as a
 * message is known to be too big the core gets max_frame + 1 bytes (it
 * closes with 1009) and the rest of that message is dropped. */
static void ws_receive(struct lws *wsi, conn *c, const unsigned char *in, size_t len)
{
    int final = lws_is_final_fragment(wsi);
    if (c->close_code)
        return;
    if (c->rx_skip) {
        if (final)
            c->rx_skip = 0;
        return;
    }
    size_t cap = G.pol->max_frame + 1;
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
    int over = c->rx_total > G.pol->max_frame;
    if (!final && !over)
        return;
    c->rx[c->rx_len] = '\0';
    uint64_t id = c->id;
    size_t n = c->rx_len;
    c->rx_len = 0;
    c->rx_total = 0;
    c->rx_skip = over && !final;
    srv_ws_message(G.core, id, (const char *)c->rx, n);
    pump();
}

/* LWS_CALLBACK_SERVER_WRITEABLE: one lws_write per call; the close goes
 * after the queue is empty. */
static int ws_writeable(struct lws *wsi, conn *c)
{
    if (c->head) {
        ws_frame *f = c->head;
        c->head = f->next;
        if (!c->head)
            c->tail = NULL;
        c->queued -= f->len;
        int n = lws_write(wsi, f->data + LWS_PRE, f->len, LWS_WRITE_TEXT);
        free(f);
        if (n < 0)
            return -1;
        if (c->head || c->close_code)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->close_code) {
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}

/* ---- the protocol callback ----------------------------------------------- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!p)
            return -1;
        return http_begin(wsi, p, (const char *)in);
    case LWS_CALLBACK_HTTP_BODY:
        if (p)
            http_body(p, (const char *)in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p && p->have_req && !p->resp_ready)
            http_dispatch(wsi, p);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!p)
            return 0;
        return http_write(wsi, p);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (p && !p->c)
            http_free(p);
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(wsi, p);
    case LWS_CALLBACK_ESTABLISHED:
        if (p && p->c) {
            p->c->established = 1;
            if (p->c->head || p->c->close_code)
                lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (p && p->c)
            ws_receive(wsi, p->c, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!p || !p->c)
            return 0;
        return ws_writeable(wsi, p->c);
    case LWS_CALLBACK_CLOSED:
        /* Also fires for refused upgrades that never reached ESTABLISHED
         * (LWS_NOTES): only connections the core accepted are reported. */
        if (p && p->c) {
            conn *c = p->c;
            p->c = NULL;
            uint64_t id = c->id;
            conn_unlink_free(c);
            srv_ws_closed(G.core, id);
            pump();
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    /* First: upgrades without a subprotocol and plain HTTP land here. */
    {"hp-stream", callback, sizeof(pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0} /* 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

/* ---- lws's own log lines -> hp_log ---------------------------------------- */

/* lws errors are logged at INFO (they are mostly peers going away, not
 * conflicts a scenario counts as WARNING); lws warnings at DEBUG. */
static void lws_emit(int level, const char *line)
{
    if (!G.env)
        return;
    char buf[512];
    size_t o = 0;
    for (const char *s = line; *s && o + 1 < sizeof buf; s++) {
        if (*s == '\n' || *s == '\r')
            continue;
        buf[o++] = *s == '"' ? '\'' : *s;
    }
    buf[o] = '\0';
    hp_log(G.env, level & LLL_ERR ? HP_LOG_INFO : HP_LOG_DEBUG, "lws", "text=\"%s\"", buf);
}

/* ---- run ------------------------------------------------------------------ */

void srv_lws_wake(void)
{
    if (G.ctx)
        lws_cancel_service(G.ctx);
}

static void begin_stop(void)
{
    G.stopping = 1;
    hp_log(G.env, HP_LOG_INFO, "stopping", "connections=%zu", G.n_conns);
    srv_shutdown(G.core); /* 1001 to every WebSocket */
    pump();
    G.stop_deadline_ms = mono_ms() + 3000;
    lws_sul_schedule(G.ctx, 0, &G.stop_sul, on_stop_timer, 3000 * LWS_US_PER_MS);
}

/*
 * Can we bind iface:port?  Checked before lws_create_context() because lws
 * 4.1.6 leaks a little when its vhost cannot listen (ASan's leak check
 * would fail every "port taken" run).  Same SO_REUSEADDR as lws, so a port
 * in TIME_WAIT is not a false alarm.  Returns 0 or an errno value.
 */
static int probe_bind(const char *iface, int port)
{
    if (port <= 0)
        return 0;
    int fam = iface && strchr(iface, ':') ? AF_INET6 : AF_INET;
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* let lws report it */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = 0;
    if (fam == AF_INET6) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, iface, &a.sin6_addr) == 1 &&
            bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
            rc = errno;
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        if ((!iface || inet_pton(AF_INET, iface, &a.sin_addr) == 1) &&
            bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
            rc = errno;
    }
    close(fd);
    return rc;
}

int srv_lws_run(srv_core *core, const hp_env *env, const hp_policy *policy,
                const srv_lws_opts *opts, volatile sig_atomic_t *stop)
{
    memset(&G, 0, sizeof G);
    G.core = core;
    G.env = env;
    G.pol = policy;
    G.admin = opts->admin;
    G.group = opts->group_commit;
    srv_set_group_commit(core, opts->group_commit);
    G.stop = stop;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
    int berr = probe_bind(opts->iface, opts->port);
    if (berr) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s error=\"%s\"", opts->listen_text,
               strerror(berr));
        return -1;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = opts->port;
    info.iface = opts->iface;
    info.protocols = protocols;
    info.vhost_name = "hp-fake-server";
    info.server_string = "hp-fake-server";
    info.gid = -1;
    info.uid = -1;
    info.max_http_header_data = 8192;
    info.options = 0;
    if (opts->iface && strchr(opts->iface, '.') && !strchr(opts->iface, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    G.ctx = lws_create_context(&info);
    if (!G.ctx) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s", opts->listen_text);
        return -1;
    }
    int port = opts->port;
    struct lws_vhost *vh = lws_get_vhost_by_name(G.ctx, "hp-fake-server");
    if (vh && lws_get_vhost_listen_port(vh) > 0)
        port = lws_get_vhost_listen_port(vh);
    if (port <= 0) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s", opts->listen_text);
        lws_context_destroy(G.ctx);
        G.ctx = NULL;
        return -1;
    }
    /* URLs to paste: all-interfaces shows as 127.0.0.1, IPv6 in brackets. */
    const char *host = opts->iface ? opts->iface : "127.0.0.1";
    int v6 = strchr(host, ':') != NULL;
    hp_log(env, HP_LOG_INFO, "listening",
           "listen=%s%s%s:%d url=http://%s%s%s:%d stream=ws://%s%s%s:%d%s time_scale=%g admin=%s",
           v6 ? "[" : "", opts->iface ? opts->iface : "0.0.0.0", v6 ? "]" : "", port,
           v6 ? "[" : "", host, v6 ? "]" : "", port, v6 ? "[" : "", host, v6 ? "]" : "", port,
           HP_STREAM_PATH, policy->time_scale, opts->admin ? "on" : "off");

    /* Reminders that fell due while no server ran fire at the first tick
     * tick once right away. */
    srv_tick(core);
    pump();

    for (;;) {
        if (lws_service(G.ctx, 0) < 0)
            break;
        /* Everything that arrived in this round has been handed over:
         * commit it as one group, then send what it held. */
        srv_flush(core);
        if (hp_outbox_count(srv_outbox(core)))
            pump();
        if (*stop && !G.stopping)
            begin_stop();
        if (G.stopping && (G.n_conns == 0 || mono_ms() >= G.stop_deadline_ms))
            break;
    }
    lws_sul_cancel(&G.sul);
    lws_sul_cancel(&G.stop_sul);
    /* CLOSED fires for any socket still open; the core hears of each, but
     * nothing is scheduled or written any more. */
    struct lws_context *ctx = G.ctx;
    G.ctx = NULL;
    G.destroying = 1;
    lws_context_destroy(ctx);
    while (G.conns)
        conn_unlink_free(G.conns);
    uint64_t commits = 0, writes = 0, gmax = 0;
    srv_group_stats(core, &commits, &writes, &gmax);
    hp_log(env, HP_LOG_INFO, "commit_stats", "group_commit=%s commits=%llu writes=%llu max_group=%llu",
           G.group ? "on" : "off", (unsigned long long)commits, (unsigned long long)writes,
           (unsigned long long)gmax);
    hp_log(env, HP_LOG_INFO, "stopped", NULL);
    return 0;
}
