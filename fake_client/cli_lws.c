/*
 * cli_lws.c - the libwebsockets adapter of hp-fake-client.
 *
 * One lws context, one service thread.  The adapter carries out the core's
 * outbox and turns network happenings back into core calls; it decides no
 * policy (the request timeout, retries, the watchdog, backoff are core
 * timers).  Translation table:
 *
 *   HP_OUT_HTTP_REQUEST  -> an HTTP client connection (one per request)
 *   HP_OUT_HTTP_ABORT    -> that connection is killed, nothing is delivered
 *   HP_OUT_WS_CONNECT    -> a WebSocket client connection
 *   HP_OUT_WS_SEND       -> queued, written from CLIENT_WRITEABLE, one
 *                           lws_write each
 *   HP_OUT_WS_CLOSE      -> close frame with the code from CLIENT_WRITEABLE
 *   HP_OUT_NOTIFY/OBSERVE-> stdout lines (cli_main.c)
 *   cli_next_deadline()  -> one lws_sul timer that calls cli_tick()
 *
 * Every request and connection hears back exactly once: the first terminal
 * callback (COMPLETED, CONNECTION_ERROR, CLOSED, WSI_DESTROY) delivers the
 * result and detaches the record from its wsi (opaque user data = NULL), so
 * later callbacks of that wsi are ignored.  Records are only freed from
 * reap(), outside any callback that could still use them.
 *
 * stdin is adopted as a RAW file descriptor, so command lines are read by
 * the same loop without blocking it; end of stdin means quit.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cli_core.h"
#include "hp_env.h"
#include "hp_log.h"
#include "hp_outbox.h"
#include "hp_time.h"
#include "hp_util.h"

/* ---- the interface between the program's two files ---------------------
 * (Repeated, identically, at the top of cli_main.c.) */
int cli_lws_run(cli_core *core, const hp_env *env, const char *server_url, char *err,
                size_t errlen);
void cli_lws_quit(void);
int cli_lws_check_url(const char *url, char *err, size_t errlen);
int cli_drv_line(cli_core *core, const char *line, size_t len);
void cli_drv_emit(json_t *obj);
void cli_drv_observable(const hp_out *it);
void cli_drv_http(const char *method, const char *path, const char *idem_key, int status,
                  const char *error, const char *body, size_t body_len, const char *resp,
                  size_t resp_len, double elapsed_ms);
int cli_lws_send_frame(const char *text, size_t len, char *err, size_t errlen);
void cli_lws_set_ca_file(const char *path);
void cli_lws_set_frames(int on);
int cli_lws_add_drop(const char *from, const char *message, int count, char *err, size_t errlen);

/* ---- records ------------------------------------------------------------- */

enum { REC_REQ = 1, REC_CONN = 2 };

/* Response bodies beyond this are not REST answers of this protocol: the
 * exchange fails as a network error rather than eating memory. */
#define MAX_RESPONSE_BODY (8u * 1024 * 1024)
/* A WebSocket message beyond this closes the connection with 1009. */
#define MAX_WS_MESSAGE (4u * 1024 * 1024)
/* Longest stdin command line. */
#define MAX_LINE (1024u * 1024)

typedef struct rec_head {
    int type;                /* REC_REQ or REC_CONN */
} rec_head;

/* One HTTP exchange the core asked for. */
typedef struct req {
    rec_head h;
    struct req *next;
    uint64_t id;
    char *method, *path, *auth, *idem_key, *body;
    size_t body_len;
    struct lws *wsi;         /* NULL once detached */
    int done;                /* the core heard the result (or aborted it) */
    int body_sent;
    int status;              /* 0 until the status line arrived */
    int retry_after_s;       /* -1 when absent */
    int64_t content_length;  /* -1 when absent */
    char *rx;
    size_t rx_len, rx_cap;
    int rx_overflow;
    lws_usec_t t0;           /* sent: the http line's elapsed_ms (latency checks) */
} req;

typedef struct wsmsg {
    struct wsmsg *next;
    size_t len;
    unsigned char buf[];     /* LWS_PRE + len */
} wsmsg;

/* One WebSocket connection the core asked for. */
typedef struct conn {
    rec_head h;
    struct conn *next;
    uint64_t id;
    struct lws *wsi;         /* NULL once detached */
    int established;
    int done;                /* the core needs to hear nothing more */
    int closing;             /* the core asked to close: send close frame */
    int close_code;
    char close_reason[120];
    int peer_code;           /* close code the server sent, 0 if none */
    wsmsg *q_head, *q_tail;
    char *rx;
    size_t rx_len, rx_cap;
} conn;

static struct {
    struct lws_context *ctx;
    cli_core *core;
    const hp_env *env;
    char host[256];
    char hosthdr[300];
    int port;
    int tls;
    char prefix[512];
    req *reqs;
    conn *conns;
    lws_sorted_usec_list_t tick_sul;
    volatile sig_atomic_t quit;
    int shutting_down;
    int draining;
    char *line;              /* stdin bytes not yet ending in '\n' */
    size_t line_len, line_cap;
    int line_overflow;
} A;

static void drain(void);

/* ---- small helpers -------------------------------------------------------- */

/* Append n bytes to a growable buffer (kept NUL-terminated).  -1 when it
 * would pass max or memory ran out. */
static int buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n,
                      size_t max)
{
    if (*len + n > max)
        return -1;
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 1024;
        while (nc < *len + n + 1)
            nc *= 2;
        char *p = realloc(*buf, nc);
        if (!p)
            return -1;
        *buf = p;
        *cap = nc;
    }
    if (n)
        memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* lws' own log lines are routed through hp_log at DEBUG: stderr keeps the
 * project's one format, and lws' warnings (for example a refused upgrade)
 * never count as the client's WARNING lines. */
static void lws_log_emit(int level, const char *line)
{
    if (!A.env)
        return;
    char text[512];
    size_t k = 0;
    for (const char *p = line; *p && k + 1 < sizeof text; p++) {
        if (*p == '\n' || *p == '\r')
            continue;
        text[k++] = *p == '"' ? '\'' : *p;
    }
    text[k] = '\0';
    hp_log(A.env, HP_LOG_DEBUG, "lws", "lws_level=%d text=\"%s\"", level, text);
}

/* ---- URL ------------------------------------------------------------------ */

/*
 * http://HOST[:PORT][/prefix] or https://...; HOST may be [IPv6].  The
 * prefix (no trailing '/') is put before every request path, so a server
 * mounted below a path works.  Query and fragment are refused.
 */
static int parse_url(const char *url, char *host, size_t hostlen, int *port, int *tls,
                     char *prefix, size_t prefixlen, char *err, size_t errlen)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        *tls = 0;
        *port = 80;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        *tls = 1;
        *port = 443;
        p = url + 8;
    } else {
        snprintf(err, errlen, "\"%s\" is not an http:// or https:// URL", url);
        return -1;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he) {
            snprintf(err, errlen, "unclosed '[' in \"%s\"", url);
            return -1;
        }
        hs = p + 1;
        p = he + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#')
            p++;
        he = p;
    }
    if (he == hs || (size_t)(he - hs) >= hostlen) {
        snprintf(err, errlen, "no usable host in \"%s\"", url);
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535) {
            snprintf(err, errlen, "bad port in \"%s\"", url);
            return -1;
        }
        *port = (int)v;
        p = end;
    }
    if (*p == '?' || *p == '#' || (*p && *p != '/')) {
        snprintf(err, errlen, "unexpected \"%s\" in the URL (no query or fragment)", p);
        return -1;
    }
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    if (strpbrk(p, "?#") || n >= prefixlen) {
        snprintf(err, errlen, "bad path in \"%s\"", url);
        return -1;
    }
    memcpy(prefix, p, n);
    prefix[n] = '\0';
    return 0;
}

/* Set before cli_lws_run(), which clears A: kept outside it. */
static const char *ca_file_path; /* --ca-file, NULL: the system's CAs */

void cli_lws_set_ca_file(const char *path)
{
    ca_file_path = path;
}

static int frames_on; /* --frames */

void cli_lws_set_frames(int on)
{
    frames_on = on;
}

static int ndrops; /* drop rules ever added (see cli_lws_add_drop) */

/* A message's "type", else its "event_type", else "" (not JSON, neither).
 * Parsed only when --frames or a drop rule needs it. */
static void frame_type(const char *data, size_t len, char *out, size_t n)
{
    out[0] = '\0';
    if (!frames_on && ndrops == 0)
        return;
    json_t *m = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type)
        type = json_string_value(json_object_get(m, "event_type"));
    snprintf(out, n, "%s", type ? type : "");
    json_decref(m);
}

/*
 * --frames: every whole WebSocket message this program read or wrote, as
 * {"kind":"frame","from":"server"|"client","type":T,"bytes":N}: what was on
 * the wire, so a harness can check the stream's shape (WS-2 replay order,
 * WS-4 heartbeats) against any server.  T is the message's "type", else
 * its "event_type", else null (not JSON, or neither key).  lost: the
 * message was taken by a drop rule (see cli_lws_add_drop).
 */
static json_t *frame_line(const char *from, const char *data, size_t len, int lost)
{
    if (!frames_on)
        return NULL;
    char type[64];
    frame_type(data, len, type, sizeof type);
    json_t *line = json_pack("{s:s, s:s, s:s?, s:I}", "kind", "frame", "from", from, "type",
                             type[0] ? type : NULL, "bytes", (json_int_t)len);
    if (lost)
        json_object_set_new(line, "lost", json_true());
    return line;
}

/*
 * Driver command drop: the next `count` messages of a kind in one direction
 * are lost on the way, as a scenario's `drop` fault does on the simulated
 * link - the same rules, checked in order, the first one with messages left
 * taking the message.  Kinds: a WebSocket type or event type, "request" (a
 * REST request, never sent), "response" (a REST answer that arrived and is
 * thrown away), "any".  A lost request or response leaves the core waiting
 * for its request timeout (Q-7) and a retry with the same Idempotency-Key,
 * which is how a real network loses one; a lost server message does not
 * reset the watchdog (WS-5).  This is a test fault for `hp-harness --mode
 * real`, in the adapter because it stands for the network, not the policy.
 */
#define MAX_DROPS 16
static struct drop_rule {
    int from_server;
    char message[32];
    int remaining;
} drops[MAX_DROPS];

int cli_lws_add_drop(const char *from, const char *message, int count, char *err, size_t errlen)
{
    static const char *const kinds[] = {"HELLO", "READY", "HEARTBEAT", "RESYNC_REQUIRED",
                                        "TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED",
                                        "request", "response", "any", NULL};
    int from_server;
    if (from && !strcmp(from, "server"))
        from_server = 1;
    else if (from && !strcmp(from, "client"))
        from_server = 0;
    else
        return hp_errf(err, errlen, "\"from\" must be \"server\" or \"client\"");
    const char *const *k = kinds;
    while (*k && (!message || strcmp(*k, message)))
        k++;
    if (!*k)
        return hp_errf(err, errlen, "\"message\" must be a message type, request, response "
                                    "or any");
    if ((from_server && !strcmp(message, "request")) || (!from_server && !strcmp(message, "response")))
        return hp_errf(err, errlen, "a %s comes from the %s", message,
                       from_server ? "client" : "server");
    if (count < 1)
        return hp_errf(err, errlen, "\"count\" must be 1 or more");
    int i = 0;
    while (i < ndrops && drops[i].remaining > 0)
        i++;
    if (i == MAX_DROPS)
        return hp_errf(err, errlen, "too many drop rules in force (%d)", MAX_DROPS);
    if (i == ndrops)
        ndrops++;
    drops[i].from_server = from_server;
    snprintf(drops[i].message, sizeof drops[i].message, "%s", message);
    drops[i].remaining = count;
    return 0;
}

/* 1 when a drop rule takes this message (and counts it). */
static int take_drop(int from_server, const char *kind)
{
    for (int i = 0; i < ndrops; i++) {
        struct drop_rule *d = &drops[i];
        if (d->remaining <= 0 || d->from_server != from_server)
            continue;
        if (!strcmp(d->message, "any") || !strcmp(d->message, kind)) {
            d->remaining--;
            hp_log(A.env, HP_LOG_INFO, "fault_drop", "from=%s message=%s left=%d",
                   from_server ? "server" : "client", kind[0] ? kind : "-", d->remaining);
            return 1;
        }
    }
    return 0;
}

int cli_lws_check_url(const char *url, char *err, size_t errlen)
{
    char host[256], prefix[512];
    int port, tls;
    return parse_url(url, host, sizeof host, &port, &tls, prefix, sizeof prefix, err, errlen);
}

/* ---- connections ------------------------------------------------------------ */

/* Start a client connection: method NULL = WebSocket upgrade.  Returns the
 * wsi or NULL; callbacks may already have run for it (opaque is set). */
static struct lws *start_connect(const char *path, const char *method, void *opaque)
{
    char full[4096];
    snprintf(full, sizeof full, "%s%s", A.prefix, path);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = A.ctx;
    i.address = A.host;
    i.port = A.port;
    i.ssl_connection = A.tls ? LCCSCF_USE_SSL : 0;
    i.path = full;
    i.host = A.hosthdr;
    i.origin = A.hosthdr;
    i.method = method;
    i.protocol = NULL;             /* no Sec-WebSocket-Protocol */
    i.local_protocol_name = "hp-client";
    i.opaque_user_data = opaque;
    return lws_client_connect_via_info(&i);
}

static void detach(struct lws *wsi)
{
    if (wsi)
        lws_set_opaque_user_data(wsi, NULL);
}

/* Closes a wsi on the next service turn (safe inside any callback). */
static void kill_wsi(struct lws *wsi)
{
    if (wsi)
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static req *find_req(uint64_t id)
{
    for (req *r = A.reqs; r; r = r->next)
        if (r->id == id && !r->done)
            return r;
    return NULL;
}

static conn *find_conn(uint64_t id)
{
    for (conn *c = A.conns; c; c = c->next)
        if (c->id == id && !c->done)
            return c;
    return NULL;
}

static void req_free(req *r)
{
    free(r->method);
    free(r->path);
    free(r->auth);
    free(r->idem_key);
    free(r->body);
    free(r->rx);
    free(r);
}

static void conn_free(conn *c)
{
    while (c->q_head) {
        wsmsg *m = c->q_head;
        c->q_head = m->next;
        free(m);
    }
    free(c->rx);
    free(c);
}

/* Free the records that are finished and no longer tied to a wsi. */
static void reap(void)
{
    for (req **pp = &A.reqs; *pp;) {
        req *r = *pp;
        if (r->done && !r->wsi) {
            *pp = r->next;
            req_free(r);
        } else {
            pp = &r->next;
        }
    }
    for (conn **pp = &A.conns; *pp;) {
        conn *c = *pp;
        if (c->done && !c->wsi) {
            *pp = c->next;
            conn_free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* ---- HTTP results ------------------------------------------------------------ */

/* The exchange ended without a usable answer. */
static void req_fail(req *r, const char *why)
{
    if (r->done)
        return;
    r->done = 1;
    detach(r->wsi);
    r->wsi = NULL;
    if (A.shutting_down)
        return;
    hp_log(A.env, HP_LOG_DEBUG, "http_failed", "method=%s path=%s reason=\"%s\"", r->method,
           r->path, why ? why : "");
    cli_drv_http(r->method, r->path, r->idem_key, 0, "network", r->body, r->body_len, NULL, 0,
                 (double)(lws_now_usecs() - r->t0) / 1000.0);
    cli_http_failed(A.core, r->id, "network");
    drain();
}

static void req_deliver(req *r)
{
    if (r->done)
        return;
    r->done = 1;
    detach(r->wsi);
    r->wsi = NULL;
    if (A.shutting_down)
        return;
    if (take_drop(1, "response"))
        return; /* a drop fault: the core times out and retries (Q-7) */
    cli_drv_http(r->method, r->path, r->idem_key, r->status, NULL, r->body, r->body_len, r->rx,
                 r->rx_len, (double)(lws_now_usecs() - r->t0) / 1000.0);
    cli_http_response(A.core, r->id, r->status, r->retry_after_s, r->rx ? r->rx : "",
                      r->rx_len);
    drain();
}

/* The connection ended (CLOSED or destroyed) before COMPLETED: an answer
 * whose status arrived and whose body is complete (no Content-Length, or
 * all of it) still counts; anything else failed. */
static void req_ended(req *r)
{
    if (r->status > 0 && !r->rx_overflow &&
        (r->content_length < 0 || (int64_t)r->rx_len >= r->content_length))
        req_deliver(r);
    else
        req_fail(r, "connection closed");
}

static void start_request(const hp_out *it)
{
    if (take_drop(0, "request"))
        return; /* a drop fault: never sent; the core times out and retries (Q-7) */
    req *r = calloc(1, sizeof *r);
    if (!r) {
        cli_http_failed(A.core, it->id, "network");
        return;
    }
    r->h.type = REC_REQ;
    r->id = it->id;
    r->t0 = lws_now_usecs();
    r->method = hp_strdup(it->method ? it->method : "GET");
    r->path = hp_strdup(it->path ? it->path : "/");
    r->auth = hp_strdup(it->auth);
    r->idem_key = hp_strdup(it->idem_key);
    if (it->body) {
        r->body_len = it->body_len ? it->body_len : strlen(it->body);
        r->body = malloc(r->body_len + 1);
        if (r->body) {
            memcpy(r->body, it->body, r->body_len);
            r->body[r->body_len] = '\0';
        } else {
            r->body_len = 0;
        }
    }
    r->retry_after_s = -1;
    r->content_length = -1;
    r->next = A.reqs;
    A.reqs = r;
    struct lws *w = start_connect(r->path, r->method, r);
    if (r->done)
        return;  /* a callback already settled it */
    if (!w)
        req_fail(r, "connect failed");
    else
        r->wsi = w;
}

/* ---- WebSocket results ----------------------------------------------------------- */

/* The upgrade never got through: status 401 for a refused token, another
 * HTTP status when lws could tell it, else 0. */
static void conn_refused(conn *c, int status)
{
    int was_done = c->done;
    c->done = 1;
    detach(c->wsi);
    c->wsi = NULL;
    if (was_done || A.shutting_down)
        return;
    hp_log(A.env, HP_LOG_DEBUG, "ws_refused", "conn=%llu status=%d", (unsigned long long)c->id,
           status);
    cli_ws_refused(A.core, c->id, status);
    drain();
}

static void conn_closed(conn *c)
{
    int was_done = c->done;
    c->done = 1;
    detach(c->wsi);
    c->wsi = NULL;
    if (was_done || A.shutting_down)
        return;
    hp_log(A.env, HP_LOG_DEBUG, "ws_closed", "conn=%llu code=%d", (unsigned long long)c->id,
           c->peer_code);
    cli_ws_closed(A.core, c->id, c->peer_code);
    drain();
}

static void start_ws(const hp_out *it)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        cli_ws_refused(A.core, it->id, 0);
        return;
    }
    c->h.type = REC_CONN;
    c->id = it->id;
    c->next = A.conns;
    A.conns = c;
    struct lws *w = start_connect(it->path ? it->path : "/", NULL, c);
    if (c->done)
        return;
    if (!w)
        conn_refused(c, 0);
    else
        c->wsi = w;
}

/* Queue one text frame on an established connection. 0 or -1 (memory). */
static int conn_queue(conn *c, const char *text, size_t n)
{
    wsmsg *m = malloc(sizeof *m + LWS_PRE + n);
    if (!m)
        return -1;
    m->next = NULL;
    m->len = n;
    memcpy(m->buf + LWS_PRE, text, n);
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static void ws_send(const hp_out *it)
{
    conn *c = find_conn(it->id);
    if (!c || !c->established || c->closing || !it->body) {
        hp_log(A.env, HP_LOG_DEBUG, "ws_send_dropped", "conn=%llu", (unsigned long long)it->id);
        return;
    }
    size_t n = it->body_len ? it->body_len : strlen(it->body);
    char type[64];
    frame_type(it->body, n, type, sizeof type);
    if (take_drop(0, type)) { /* a drop fault: lost on the way out */
        json_t *fl = frame_line("client", it->body, n, 1);
        if (fl)
            cli_drv_emit(fl);
        return;
    }
    conn_queue(c, it->body, n);
}

/* Driver command send_frame: a raw text frame on the open stream, behind
 * the core's back, so a scenario can probe the server's protocol checks
 * (4002, 1009).  The core hears about the consequences (the close) as for
 * any other close. */
int cli_lws_send_frame(const char *text, size_t len, char *err, size_t errlen)
{
    for (conn *c = A.conns; c; c = c->next) /* newest first */
        if (c->wsi && c->established && !c->closing && !c->done) {
            if (conn_queue(c, text, len) != 0)
                return hp_errf(err, errlen, "out of memory");
            hp_log(A.env, HP_LOG_INFO, "send_frame", "conn=%llu bytes=%zu",
                   (unsigned long long)c->id, len);
            return 0;
        }
    return hp_errf(err, errlen, "no open stream (wait until connected)");
}

/* The core closes: it expects no report of this connection any more (the
 * core forgets the id when it asks to close it). */
static void ws_close(const hp_out *it)
{
    conn *c = find_conn(it->id);
    if (!c)
        return;
    c->done = 1;
    c->closing = 1;
    c->close_code = it->code > 0 ? it->code : LWS_CLOSE_STATUS_NORMAL;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", it->body ? it->body : "");
    if (c->wsi && c->established) {
        lws_callback_on_writable(c->wsi);
    } else if (c->wsi) {
        struct lws *w = c->wsi;
        detach(w);
        c->wsi = NULL;
        kill_wsi(w);
    }
}

/* ---- the outbox and the timer ------------------------------------------------------ */

static void on_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    if (A.shutting_down)
        return;
    cli_tick(A.core);
    drain();
}

/* One timer at the core's next deadline.  Deadlines <= 0 or INT64_MAX mean
 * none.  The wait is capped so a clock step can never park the core. */
static void schedule_tick(void)
{
    int64_t dl = cli_next_deadline(A.core);
    if (dl <= 0 || dl == INT64_MAX) {
        lws_sul_cancel(&A.tick_sul);
        return;
    }
    int64_t delta = dl - hp_env_now(A.env);
    if (delta < 0)
        delta = 0;
    if (delta > 60000)
        delta = 60000;
    lws_sul_schedule(A.ctx, 0, &A.tick_sul, on_tick, (lws_usec_t)delta * LWS_US_PER_MS);
}

/*
 * Carry out everything in the core's outbox.  Results that arrive while
 * draining (a connect failing at once) call the core, which appends to the
 * same outbox: the outer loop picks those items up, so drain() is not
 * re-entered.
 */
static void drain(void)
{
    if (A.draining || A.shutting_down)
        return;
    A.draining = 1;
    hp_out it;
    while (hp_outbox_pop(cli_outbox(A.core), &it)) {
        switch (it.kind) {
        case HP_OUT_HTTP_REQUEST: start_request(&it); break;
        case HP_OUT_HTTP_ABORT: {
            req *r = find_req(it.id);
            if (r) {
                /* Aborted requests are not failures: nothing is delivered. */
                r->done = 1;
                struct lws *w = r->wsi;
                detach(w);
                r->wsi = NULL;
                kill_wsi(w);
            }
            break;
        }
        case HP_OUT_WS_CONNECT: start_ws(&it); break;
        case HP_OUT_WS_SEND: ws_send(&it); break;
        case HP_OUT_WS_CLOSE: ws_close(&it); break;
        case HP_OUT_NOTIFY:
        case HP_OUT_OBSERVE: cli_drv_observable(&it); break;
        case HP_OUT_HTTP_RESPONSE:
        case HP_OUT_WS_WANT_WRITABLE: break; /* server-only items */
        }
        hp_out_clear(&it);
    }
    A.draining = 0;
    reap();
    schedule_tick();
}

/* ---- the protocol callback ------------------------------------------------------------ */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Retry-After (Q-7: 429 honours it) in seconds from now: delta-seconds, or
 * an HTTP-date turned into seconds against the wall clock (rounded up; a
 * date already past is 0).  -1 when absent or unreadable: the core then
 * keeps its own schedule.  Capped at 7 days. */
static int read_retry_after(struct lws *wsi)
{
    char v[64];
    int n = lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_RETRY_AFTER);
    if (n <= 0)
        return -1;
    char *end;
    long s = strtol(v, &end, 10);
    while (*end == ' ')
        end++;
    if (end != v && !*end)
        return s < 0 || s > 86400 * 7 ? -1 : (int)s;
    int64_t at;
    if (hp_http_date_parse(v, &at) != 0)
        return -1;
    int64_t left = at - hp_env_now(A.env);
    if (left <= 0)
        return 0;
    left = (left + 999) / 1000;
    return left > 86400 * 7 ? 86400 * 7 : (int)left;
}

static int64_t read_content_length(struct lws *wsi)
{
    char v[32];
    int n = lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0)
        return -1;
    char *end;
    long long s = strtoll(v, &end, 10);
    return end == v || s < 0 ? -1 : (int64_t)s;
}

static int http_client_cb(struct lws *wsi, enum lws_callback_reasons reason, req *r, void *in,
                          size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!r)
            return 0;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        char v[4096];
        if (r->auth) {
            snprintf(v, sizeof v, "Bearer %s", r->auth);
            if (add_header(wsi, "authorization:", v, p, end))
                return -1;
        }
        if (r->idem_key && add_header(wsi, "idempotency-key:", r->idem_key, p, end))
            return -1;
        int has_body = r->body_len > 0;
        int wants_length = has_body || strcmp(r->method, "PUT") == 0 ||
                           strcmp(r->method, "POST") == 0;
        if (has_body && add_header(wsi, "content-type:", "application/json", p, end))
            return -1;
        if (wants_length) {
            /* The server requires Content-Length on bodies (no chunked
             * uploads), also an empty one on POST .../lock. */
            snprintf(v, sizeof v, "%zu", r->body_len);
            if (add_header(wsi, "content-length:", v, p, end))
                return -1;
        }
        if (has_body) {
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r || r->body_sent || !r->body_len)
            return 0;
        unsigned char *b = malloc(LWS_PRE + r->body_len);
        if (!b)
            return -1;
        memcpy(b + LWS_PRE, r->body, r->body_len);
        int n = lws_write(wsi, b + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL);
        free(b);
        r->body_sent = 1;
        lws_client_http_body_pending(wsi, 0);
        return n < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (!r)
            return -1;
        r->status = (int)lws_http_client_http_response(wsi);
        r->retry_after_s = read_retry_after(wsi);
        r->content_length = read_content_length(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        if (!r)
            return -1;
        char buffer[4096 + LWS_PRE];
        char *px = buffer + LWS_PRE;
        int lenx = (int)sizeof buffer - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (!r)
            return -1;
        if (buf_append(&r->rx, &r->rx_len, &r->rx_cap, in, len, MAX_RESPONSE_BODY) != 0) {
            r->rx_overflow = 1;
            req_fail(r, "response too big");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r && !r->rx_overflow)
            req_deliver(r);
        /* One request per connection: close it rather than keep it warm. */
        kill_wsi(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r)
            req_fail(r, in ? (const char *)in : "connection error");
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (r)
            req_ended(r);
        return 0;
    default:
        return 0;
    }
}

/* The HTTP status of a refused upgrade, from lws' error text (4.1.6 names
 * 401 itself; for other statuses the response code may still be readable). */
static int refused_status(struct lws *wsi, const char *why)
{
    if (why && strstr(why, "unauthorized"))
        return 401;
    if (why && strstr(why, "not 101") && wsi) {
        unsigned int s = lws_http_client_http_response(wsi);
        return s >= 100 && s < 600 ? (int)s : 0;
    }
    return 0;
}

static int ws_client_cb(struct lws *wsi, enum lws_callback_reasons reason, conn *c, void *in,
                        size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c || c->done)
            return -1;  /* the core gave this connection up meanwhile */
        c->established = 1;
        if (!A.shutting_down) {
            cli_ws_opened(A.core, c->id);
            drain();
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c || c->done)
            return 0;
        if (buf_append(&c->rx, &c->rx_len, &c->rx_cap, in, len, MAX_WS_MESSAGE) != 0) {
            static const char why[] = "message too big";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                             sizeof why - 1);
            c->rx_len = 0;
            return -1;
        }
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            size_t n = c->rx_len;
            c->rx_len = 0;
            char type[64];
            frame_type(c->rx, n, type, sizeof type);
            int lost = take_drop(1, type);
            json_t *fl = frame_line("server", c->rx, n, lost);
            if (fl)
                cli_drv_emit(fl);
            if (lost)
                return 0; /* never reached the core */
            if (!A.shutting_down) {
                cli_ws_message(A.core, c->id, c->rx, n);
                drain();
            }
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!c)
            return 0;
        if (c->q_head) {
            wsmsg *m = c->q_head;
            c->q_head = m->next;
            if (!c->q_head)
                c->q_tail = NULL;
            /* Read before lws_write: it masks a client's payload in place. */
            json_t *fl = frame_line("client", (const char *)m->buf + LWS_PRE, m->len, 0);
            int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
            free(m);
            if (fl && n >= 0)
                cli_drv_emit(fl);
            else
                json_decref(fl);
            if (n < 0)
                return -1;
            if (c->q_head || c->closing)
                lws_callback_on_writable(wsi);
            return 0;
        }
        if (c->closing) {
            lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                             (unsigned char *)c->close_reason, strlen(c->close_reason));
            detach(wsi);
            c->wsi = NULL;
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && in && len >= 2) {
            const unsigned char *b = in;
            c->peer_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            const char *why = in ? (const char *)in : "";
            hp_log(A.env, HP_LOG_DEBUG, "ws_connect_error", "conn=%llu error=\"%s\"",
                   (unsigned long long)c->id, why);
            conn_refused(c, refused_status(wsi, why));
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            if (c->established)
                conn_closed(c);
            else
                conn_refused(c, 0);
        }
        return 0;
    default:
        return 0;
    }
}

/* One callback for the client connections: the record behind the opaque
 * pointer says whether it is an HTTP exchange or a WebSocket. */
static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    (void)user;
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED)
        return 0;  /* cli_lws_quit() woke the loop; the loop checks the flag */
    rec_head *h = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (h && h->type == REC_CONN)
        return ws_client_cb(wsi, reason, (conn *)h, in, len);
    if (h && h->type == REC_REQ)
        return http_client_cb(wsi, reason, (req *)h, in, len);
    /* Detached: the record is settled; only answer what lws needs. */
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        /* Aborted (offline) while connecting, before the async kill ran:
         * refuse to send, or lws would put a bare request - no token, no
         * body - on the wire (the server saw a 401 "missing" for it). */
        return -1;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        return -1;
    default:
        return 0;
    }
}

/* ---- stdin -------------------------------------------------------------------- */

/* One complete command line (without its '\n'). */
static void run_line(const char *line, size_t len)
{
    if (A.quit)
        return;
    if (cli_drv_line(A.core, line, len))
        A.quit = 1;
    drain();
}

/*
 * Feed stdin bytes: every '\n' ends a command.  A line longer than MAX_LINE
 * is answered with one error line and skipped up to its newline.
 */
static void feed_stdin(const char *buf, size_t n)
{
    for (size_t i = 0; i < n && !A.quit; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (A.line_overflow) {
                A.line_overflow = 0;
                cli_drv_emit(json_pack("{s:s, s:n, s:s}", "kind", "error", "cmd", "message",
                                       "command line too long"));
            } else {
                run_line(A.line ? A.line : "", A.line_len);
            }
            A.line_len = 0;
            continue;
        }
        if (A.line_overflow)
            continue;
        if (buf_append(&A.line, &A.line_len, &A.line_cap, &ch, 1, MAX_LINE) != 0) {
            A.line_overflow = 1;
            A.line_len = 0;
        }
    }
}

/* End of stdin: a last line without '\n' still counts; then quit. */
static void stdin_eof(void)
{
    if (!A.quit && A.line_len > 0 && !A.line_overflow)
        run_line(A.line, A.line_len);
    A.line_len = 0;
    A.quit = 1;
}

/*
 * stdin readable: one read() (poll said it will not block), then run the
 * complete lines.  End of file or a read error = quit.  On a hang-up lws
 * may report the close before the last bytes were read: read them then.
 */
static int stdin_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)wsi;
    (void)user;
    (void)in;
    (void)len;
    char buf[8192];
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE: {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return 0;
        if (n <= 0) {
            stdin_eof();
            return -1;
        }
        feed_stdin(buf, (size_t)n);
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (!A.quit) {
            ssize_t n;
            while (!A.quit && (n = read(STDIN_FILENO, buf, sizeof buf)) > 0)
                feed_stdin(buf, (size_t)n);
            stdin_eof();
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- the loop ---------------------------------------------------------------------- */

static const struct lws_protocols protocols[] = {
    {"hp-client", client_cb, 0, 0, 0, NULL, 0},
    {"hp-stdin", stdin_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

void cli_lws_quit(void)
{
    A.quit = 1;
    if (A.ctx)
        lws_cancel_service(A.ctx);
}

/*
 * Build the context, adopt stdin, carry out what cli_start() queued, and
 * serve until quit (command, end of stdin, signal, stdout gone).  Then the
 * context is destroyed with the core deaf to the resulting closes: the
 * store already holds everything (Q-1), so nothing is lost by stopping.
 */
int cli_lws_run(cli_core *core, const hp_env *env, const char *server_url, char *err,
                size_t errlen)
{
    memset(&A, 0, sizeof A);
    A.core = core;
    A.env = env;
    if (parse_url(server_url, A.host, sizeof A.host, &A.port, &A.tls, A.prefix, sizeof A.prefix,
                  err, errlen) != 0)
        return -1;
    if (strchr(A.host, ':'))
        snprintf(A.hosthdr, sizeof A.hosthdr, "[%s]:%d", A.host, A.port);
    else
        snprintf(A.hosthdr, sizeof A.hosthdr, "%s:%d", A.host, A.port);

    int lws_levels = LLL_ERR | LLL_WARN;
    if (env->log && env->log->min_level <= HP_LOG_DEBUG)
        lws_levels |= LLL_NOTICE;
    lws_set_log_level(lws_levels, lws_log_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    /* lws' own timeouts stay far above the core's request timeout, so the
     * core decides what a timeout is. */
    info.timeout_secs = 120;
    if (A.tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = ca_file_path;
    }
    A.ctx = lws_create_context(&info);
    if (!A.ctx) {
        snprintf(err, errlen, "cannot create the libwebsockets context");
        return -1;
    }

    struct lws_vhost *vh = lws_get_vhost_by_name(A.ctx, "default");
    lws_sock_file_fd_type fd;
    fd.filefd = STDIN_FILENO;
    if (!vh || !lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, "hp-stdin", NULL))
        hp_log(env, HP_LOG_WARNING, "stdin_unavailable", "note=\"no commands will be read\"");

    drain();
    while (!A.quit) {
        if (lws_service(A.ctx, 0) < 0)
            break;
    }

    A.shutting_down = 1;
    lws_sul_cancel(&A.tick_sul);
    lws_context_destroy(A.ctx);
    A.ctx = NULL;
    while (A.reqs) {
        req *r = A.reqs;
        A.reqs = r->next;
        req_free(r);
    }
    while (A.conns) {
        conn *c = A.conns;
        A.conns = c->next;
        conn_free(c);
    }
    free(A.line);
    A.line = NULL;
    return 0;
}
