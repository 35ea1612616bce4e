/*
 * cli_lws.c - the libwebsockets adapter of hp-fake-client (the owner; its
 * parts are cli_lws_http.c, cli_lws_ws.c and cli_lws_stdin.c, sharing
 * cli_lws_int.h).
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
 * stdin is adopted as a RAW file descriptor (cli_lws_stdin.c), so command
 * lines are read by the same loop without blocking it; end of stdin means
 * quit.
 *
 * Inputs: cli_lws_run() with the core and the server URL; lws callbacks.
 * Outputs: core calls (results), stdout lines through cli_drv_*.
 * Ownership: as cli_lws_int.h; A is cleared by cli_lws_run().
 */
#define _GNU_SOURCE
#include "cli_lws_int.h"
#include "hp_jload.h"

cli_lws_state A;

/* ---- small helpers -------------------------------------------------------- */

/* Append n bytes to a growable buffer (kept NUL-terminated).  -1 when it
 * would pass max or memory ran out. */
int clw_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n,
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
void clw_frame_type(const char *data, size_t len, char *out, size_t n)
{
    out[0] = '\0';
    if (!frames_on && ndrops == 0)
        return;
    json_t *m = hp_json_loadb(data, len, 0, NULL);
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
json_t *clw_frame_line(const char *from, const char *data, size_t len, int lost)
{
    if (!frames_on)
        return NULL;
    char type[64];
    clw_frame_type(data, len, type, sizeof type);
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
int clw_take_drop(int from_server, const char *kind)
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
struct lws *clw_start_connect(const char *path, const char *method, void *opaque)
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

void clw_detach(struct lws *wsi)
{
    if (wsi)
        lws_set_opaque_user_data(wsi, NULL);
}

/* Closes a wsi on the next service turn (safe inside any callback). */
void clw_kill_wsi(struct lws *wsi)
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

conn *clw_find_conn(uint64_t id)
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

/* ---- the outbox and the timer ------------------------------------------------------ */

static void on_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    if (A.shutting_down)
        return;
    cli_tick(A.core);
    clw_drain();
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
 * same outbox: the outer loop picks those items up, so clw_drain() is not
 * re-entered.
 */
void clw_drain(void)
{
    if (A.draining || A.shutting_down)
        return;
    A.draining = 1;
    hp_out it;
    while (hp_outbox_pop(cli_outbox(A.core), &it)) {
        switch (it.kind) {
        case HP_OUT_HTTP_REQUEST: clw_start_request(&it); break;
        case HP_OUT_HTTP_ABORT: {
            req *r = find_req(it.id);
            if (r) {
                /* Aborted requests are not failures: nothing is delivered. */
                r->done = 1;
                struct lws *w = r->wsi;
                clw_detach(w);
                r->wsi = NULL;
                clw_kill_wsi(w);
            }
            break;
        }
        case HP_OUT_WS_CONNECT: clw_start_ws(&it); break;
        case HP_OUT_WS_SEND: clw_ws_send(&it); break;
        case HP_OUT_WS_CLOSE: clw_ws_close(&it); break;
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
        return clw_ws_client_cb(wsi, reason, (conn *)h, in, len);
    if (h && h->type == REC_REQ)
        return clw_http_client_cb(wsi, reason, (req *)h, in, len);
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

/* ---- the loop ---------------------------------------------------------------------- */

static const struct lws_protocols protocols[] = {
    {"hp-client", client_cb, 0, 0, 0, NULL, 0},
    {"hp-stdin", clw_stdin_cb, 0, 0, 0, NULL, 0},
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

    clw_drain();
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
