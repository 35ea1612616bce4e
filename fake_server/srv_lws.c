/*
 * srv_lws.c - libwebsockets adapter of the reference server.
 *
 * One lws context, one service thread, ONE protocol serving both HTTP and
 * the WebSocket stream: lws binds every upgrade without
 * Sec-WebSocket-Protocol to protocols[0] whatever its path (LWS_NOTES), so
 * the stream protocol must be first, and plain HTTP also lands there.
 *
 * The adapter owns no policy.  Its jobs (this file owns the loop; its parts
 * are listed in srv_lws_int.h):
 *   - HTTP (srv_lws_http.c): collect the request strictly, hand it to
 *     srv_http(), write the core's answer with JSON, CORS and Retry-After
 *     headers; answer CORS preflight (OPTIONS) itself;
 *   - sessions and the admin API (srv_lws_admin.c): a /s/{id} prefix picks
 *     the session (srv_session.h) whose core answers; /_hp/... goes to
 *     srv_admin.c on the main address (--admin) or its own vhost
 *     (--admin-listen), without CORS headers; every exchange, frame and
 *     close goes to its session's journal (srv_journal.h);
 *   - WebSocket (srv_lws_ws.c): srv_ws_open() at the upgrade (a refusal is
 *     a real HTTP response with the core's JSON body), reassembly of
 *     fragmented messages capped at max_frame + 1, bounded send queues
 *     written only from SERVER_WRITEABLE, replay pulled as the socket
 *     drains (WS-2), closes with the core's code;
 *   - time: after every core input the outbox is drained and one lws timer
 *     is re-armed at srv_next_deadline(); when it fires, srv_tick();
 *   - group commit (srv_group.c): after each lws_service() round, i.e.
 *     after every input that arrived together, srv_flush() commits the
 *     round's writes at once; an HTTP request waits (pending list) until
 *     its response comes out of the outbox;
 *   - graceful stop: srv_shutdown() (1001 to every socket), bounded wait for
 *     the closes to go out, then the context is destroyed.
 *
 * State lives in one struct (srvl): the program runs one server.
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

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

srv_lws_state srvl;

void srv_lws_limits_defaults(srv_lws_limits *l)
{
    memset(l, 0, sizeof *l);
    l->out_conn = (size_t)8 << 20;
    l->out_user = (size_t)32 << 20;
    l->out_total = (size_t)256 << 20;
    l->http_timeout_s = 10;
    l->max_uri = 4096;
    l->max_header = 8192;
    l->ws_sndbuf = (size_t)256 << 10;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the core's outbox and timer ---------------------------------------- */

static void arm_timer(void);

/*
 * Carry out everything the core asked for, then re-arm the timer.  Called
 * after every core input.  HTTP responses go to their pending request
 * (at once, or after the group's COMMIT with group commit); frames and
 * closes to their connection's queue (a connection already closing takes
 * nothing more).
 */
void srvl_pump_one(srv_session *s)
{
    hp_out it;
    while (hp_outbox_pop(srv_outbox(s->core), &it)) {
        switch (it.kind) {
        case HP_OUT_HTTP_RESPONSE: {
            pss *p = srvl_pend_find(it.id);
            if (p) {
                srvl_pend_unlink(p);
                srvl_set_response(p, it.status, it.body ? it.body : "",
                                  it.body ? (it.body_len ? it.body_len : strlen(it.body)) : 0,
                                  it.retry_after_s);
                p->hold_ms = it.hold_ms;
                p->retry_after_date = s->retry_after_date;
                srvl_journal_http(p);
                if (p->wsi && !srvl.destroying)
                    lws_callback_on_writable(p->wsi);
            } else {
                hp_log(srvl.env, HP_LOG_DEBUG, "lws_orphan_response", "id=%llu",
                       (unsigned long long)it.id);
            }
            break;
        }
        case HP_OUT_WS_SEND: {
            conn *c = srvl_conn_find(it.id);
            if (c && it.body) {
                size_t len = it.body_len ? it.body_len : strlen(it.body);
                srv_jwho w = srvl_conn_who(c);
                if (!c->close_code)
                    srv_journal_frame(s->journal, hp_env_now(&s->env), "ws_out", c->id, it.body,
                                      len, &w);
                srvl_conn_queue(c, it.body, len); /* takes the buffer */
                it.body = NULL;
            }
            break;
        }
        case HP_OUT_WS_CLOSE: {
            conn *c = srvl_conn_find(it.id);
            if (c) {
                srv_jwho w = srvl_conn_who(c);
                if (!c->close_code)
                    srv_journal_conn(s->journal, hp_env_now(&s->env), "ws_close", c->id,
                                     it.code ? it.code : 1000, it.body, &w);
                srvl_conn_close(c, it.code, it.body);
            }
            break;
        }
        case HP_OUT_WS_WANT_WRITABLE: {
            conn *c = srvl_conn_find(it.id);
            if (c)
                srvl_conn_want_pull(c);
            break;
        }
        default:
            break; /* client-only kinds never come from the server core */
        }
        hp_out_clear(&it);
    }
}

void srvl_pump(void)
{
    for (srv_session *s = srvl.reg->list; s; s = s->next)
        srvl_pump_one(s);
    arm_timer();
}

/* A session's core is about to be freed or replaced (delete, reset,
 * restart): srv_shutdown() has flushed it, so its last items (held
 * answers, the 1001 closes) are carried out now; then its sockets no
 * longer report to it. */
static void on_retire(void *ud, srv_session *s)
{
    (void)ud;
    srvl_pump_one(s);
    for (conn *c = srvl.conns; c; c = c->next)
        if (c->sess == s)
            c->sess = NULL;
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    for (srv_session *s = srvl.reg->list; s; s = s->next)
        srv_tick(s->core);
    srvl_pump();
}

static void on_stop_timer(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only wakes the service loop, which checks the deadline */
}

/* One timer at the core's next deadline (none when it wants none).  At
 * least 1 ms ahead so a core that keeps a past deadline cannot spin us. */
static void arm_timer(void)
{
    if (!srvl.ctx)
        return;
    int64_t dl = INT64_MAX;
    for (srv_session *s = srvl.reg->list; s; s = s->next) {
        int64_t d = srv_next_deadline(s->core);
        if (d < dl)
            dl = d;
    }
    if (dl == INT64_MAX) {
        lws_sul_cancel(&srvl.sul);
        return;
    }
    int64_t d = dl - hp_env_now(srvl.env);
    if (d < 1)
        d = 1;
    if (d > 3600 * 1000)
        d = 3600 * 1000; /* re-armed after every tick anyway */
    lws_sul_schedule(srvl.ctx, 0, &srvl.sul, on_timer, (lws_usec_t)d * 1000);
}

/* ---- the protocol callback ----------------------------------------------- */

/* A WebSocket the core accepted is gone: tell the core (once). */
static void ws_closed(pss *p)
{
    if (!p || !p->c)
        return;
    conn *c = p->c;
    p->c = NULL;
    uint64_t id = c->id;
    srv_session *s = c->sess;
    srvl_conn_unlink_free(c);
    if (s) {
        srv_ws_closed(s->core, id);
        srvl_pump();
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!p)
            return -1;
        return srvl_http_begin(wsi, p, (const char *)in);
    case LWS_CALLBACK_HTTP_BODY:
        if (p)
            srvl_http_body(p, (const char *)in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p)
            srvl_http_body_complete(wsi, p);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!p)
            return 0;
        return srvl_http_write(wsi, p);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (p && !p->c)
            srvl_http_free(p);
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return srvl_ws_filter(wsi, p);
    case LWS_CALLBACK_ESTABLISHED:
        if (p && p->c)
            srvl_ws_established(wsi, p->c);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (p && p->c)
            srvl_ws_receive(wsi, p->c, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!p || !p->c)
            return 0;
        return srvl_ws_writeable(wsi, p->c);
    case LWS_CALLBACK_CLOSED:
        /* Also fires for refused upgrades that never reached ESTABLISHED
         * (LWS_NOTES): only connections the core accepted are reported. */
        ws_closed(p);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY: {
        /* Sent to protocols[0] for every wsi of the vhost, the front door's
         * raw ones included (their user data is a `front`).  The last word
         * on a pss: lws frees it next, so nothing may still point at it
         * (a request waiting for its group's COMMIT sits on srvl.pending;
         * a dangling entry there looped the server once a new pss took the
         * same address). */
        const struct lws_protocols *pr = lws_get_protocol(wsi);
        if (p && pr && pr->callback == callback) {
            ws_closed(p);
            srvl_http_free(p);
        }
        return 0;
    }
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    /* First: upgrades without a subprotocol and plain HTTP land here. */
    {"hp-stream", callback, sizeof(pss), 0, 0, NULL, 0},
    /* The front door's raw descriptors (srv_lws_front.c). */
    {"hp-front", srvl_front_callback, sizeof(front), 0, 0, NULL, 0},
    /* Relays to the fault proxy's control API (srv_lws_proxy.c). */
    {"hp-proxy", srvl_proxy_callback, sizeof(srvl_relay), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0} /* 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

/* ---- lws's own log lines -> hp_log ---------------------------------------- */

/* lws errors are logged at INFO (they are mostly peers going away, not
 * conflicts a scenario counts as WARNING); lws warnings at DEBUsrvl. */
static void lws_emit(int level, const char *line)
{
    if (!srvl.env)
        return;
    /* lws 4.1.6 reports every readbuf adoption (the front door's hand-over)
     * at error level: it is not one. */
    if (strstr(line, "adopt_socket_readbuf: calling service"))
        return;
    char buf[512];
    size_t o = 0;
    for (const char *s = line; *s && o + 1 < sizeof buf; s++) {
        if (*s == '\n' || *s == '\r')
            continue;
        buf[o++] = *s == '"' ? '\'' : *s;
    }
    buf[o] = '\0';
    hp_log(srvl.env, level & LLL_ERR ? HP_LOG_INFO : HP_LOG_DEBUG, "lws", "text=\"%s\"", buf);
}

/* ---- run ------------------------------------------------------------------ */

void srv_lws_wake(void)
{
    if (srvl.ctx)
        lws_cancel_service(srvl.ctx);
}

static void begin_stop(void)
{
    srvl.stopping = 1;
    hp_log(srvl.env, HP_LOG_INFO, "stopping", "connections=%zu", srvl.n_conns);
    for (srv_session *s = srvl.reg->list; s; s = s->next)
        srv_shutdown(s->core); /* 1001 to every WebSocket */
    srvl_pump();
    srvl.stop_deadline_ms = mono_ms() + 3000;
    lws_sul_schedule(srvl.ctx, 0, &srvl.stop_sul, on_stop_timer, 3000 * LWS_US_PER_MS);
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

int srv_lws_run(srv_sessions *reg, const hp_env *env, const srv_lws_opts *opts,
                volatile sig_atomic_t *stop)
{
    memset(&srvl, 0, sizeof srvl);
    srvl.opts = *opts;
    {
        /* Zero limits take their defaults. */
        srv_lws_limits d, *l = &srvl.opts.lim;
        srv_lws_limits_defaults(&d);
        if (!l->out_conn)
            l->out_conn = d.out_conn;
        if (!l->out_user)
            l->out_user = d.out_user;
        if (!l->out_total)
            l->out_total = d.out_total;
        if (l->http_timeout_s <= 0)
            l->http_timeout_s = d.http_timeout_s;
        if (!l->max_uri)
            l->max_uri = d.max_uri;
        if (!l->max_header)
            l->max_header = d.max_header;
        if (!l->ws_sndbuf)
            l->ws_sndbuf = d.ws_sndbuf;
    }
    srvl.reg = reg;
    srvl.env = env;
    srvl.admin_main = opts->admin && !opts->admin_listen_text;
    srvl.admin_token = opts->admin_token;
    srvl.group = opts->group_commit;
    reg->group_commit = opts->group_commit; /* sessions created later too */
    for (srv_session *s = reg->list; s; s = s->next)
        srv_set_group_commit(s->core, opts->group_commit);
    srvl.stop = stop;
    reg->on_retire = on_retire;
    const hp_policy *policy = &srv_session_default(reg)->pol;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
    /* The admin API's own listener is lws's; probe it first (see
     * probe_bind). */
    int berr = opts->admin_listen_text ? probe_bind(opts->admin_iface, opts->admin_port) : 0;
    if (berr) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s error=\"%s\"",
               opts->admin_listen_text, strerror(berr));
        return -1;
    }
    /* Our own listener for the API (srv_lws_front.c): every connection's
     * first request head is read strictly before lws takes the connection. */
    int port = opts->port;
    if (srvl_front_listen(opts->iface, opts->port, &port) != 0) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s error=\"%s\"", opts->listen_text,
               strerror(errno));
        return -1;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* connections come by adoption */
    info.protocols = protocols;
    info.vhost_name = "hp-fake-server";
    info.server_string = "hp-fake-server";
    info.gid = -1;
    info.uid = -1;
    info.max_http_header_data = 8192;
    /* Reaping (docs/LIMITS.md): a socket that has not completed its
     * request head, or idles between keep-alive requests, this long is
     * closed by lws.  WebSockets are reaped by the core (WS-2 HELLO
     * timeout, WS-5 silence). */
    info.timeout_secs = (unsigned)srvl.opts.lim.http_timeout_s;
    info.keepalive_timeout = srvl.opts.lim.http_timeout_s;
    info.timeout_secs_ah_idle = (unsigned)srvl.opts.lim.http_timeout_s;
    info.options = 0;
    if (opts->iface && strchr(opts->iface, '.') && !strchr(opts->iface, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (opts->admin_listen_text) {
        /* Two listeners: the API and the admin API on its own address. */
        info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
        srvl.ctx = lws_create_context(&info);
        struct lws_context_creation_info ai = info;
        ai.port = opts->admin_port;
        ai.iface = opts->admin_iface;
        ai.vhost_name = "hp-admin";
        ai.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
        if (opts->admin_iface && strchr(opts->admin_iface, '.') && !strchr(opts->admin_iface, ':'))
            ai.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        if (srvl.ctx && (!lws_create_vhost(srvl.ctx, &info) ||
                         !(srvl.admin_vh = lws_create_vhost(srvl.ctx, &ai)))) {
            lws_context_destroy(srvl.ctx);
            srvl.ctx = NULL;
        }
    } else {
        srvl.ctx = lws_create_context(&info);
    }
    if (!srvl.ctx) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s", opts->listen_text);
        srvl_front_close();
        return -1;
    }
    if (srvl_front_start() != 0) {
        hp_log(env, HP_LOG_ERROR, "listen_failed", "listen=%s", opts->listen_text);
        lws_context_destroy(srvl.ctx);
        srvl.ctx = NULL;
        srvl_front_close();
        return -1;
    }
    /* URLs to paste: all-interfaces shows as 127.0.0.1, IPv6 in brackets. */
    const char *host = opts->iface ? opts->iface : "127.0.0.1";
    int v6 = strchr(host, ':') != NULL;
    hp_log(env, HP_LOG_INFO, "listening",
           "listen=%s%s%s:%d url=http://%s%s%s:%d stream=ws://%s%s%s:%d%s time_scale=%g admin=%s",
           v6 ? "[" : "", opts->iface ? opts->iface : "0.0.0.0", v6 ? "]" : "", port,
           v6 ? "[" : "", host, v6 ? "]" : "", port, v6 ? "[" : "", host, v6 ? "]" : "", port,
           HP_STREAM_PATH, policy->time_scale,
           opts->admin_listen_text ? "separate" : opts->admin ? "on" : "off");
    if (srvl.admin_vh) {
        int ap = lws_get_vhost_listen_port(srvl.admin_vh);
        const char *ah = opts->admin_iface ? opts->admin_iface : "127.0.0.1";
        int a6 = strchr(ah, ':') != NULL;
        hp_log(env, HP_LOG_INFO, "admin_listening", "url=http://%s%s%s:%d/_hp/ token=%s",
               a6 ? "[" : "", ah, a6 ? "]" : "", ap, srvl.admin_token ? "required" : "none");
    }

    /* Reminders that fell due while no server ran fire at the first tick
     * tick once right away. */
    for (srv_session *s = reg->list; s; s = s->next)
        srv_tick(s->core);
    srvl_pump();

    for (;;) {
        if (lws_service(srvl.ctx, 0) < 0)
            break;
        /* Everything that arrived in this round has been handed over:
         * commit it as one group per session, then send what it held. */
        int any = 0;
        for (srv_session *s = reg->list; s; s = s->next) {
            srv_flush(s->core);
            any |= hp_outbox_count(srv_outbox(s->core)) > 0;
        }
        if (any)
            srvl_pump();
        if (*stop && !srvl.stopping)
            begin_stop();
        if (srvl.stopping && (srvl.n_conns == 0 || mono_ms() >= srvl.stop_deadline_ms))
            break;
    }
    lws_sul_cancel(&srvl.sul);
    lws_sul_cancel(&srvl.stop_sul);
    /* CLOSED fires for any socket still open; the core hears of each, but
     * nothing is scheduled or written any more. */
    struct lws_context *ctx = srvl.ctx;
    srvl.ctx = NULL;
    srvl.destroying = 1;
    lws_context_destroy(ctx);
    srvl_front_close();
    while (srvl.conns)
        srvl_conn_unlink_free(srvl.conns);
    free(srvl.wbuf);
    srvl.wbuf = NULL;
    srvl.wbuf_cap = 0;
    /* users are freed with their last connection */
    reg->on_retire = NULL;
    uint64_t commits = 0, writes = 0, gmax = 0;
    srv_group_stats(srv_session_default(reg)->core, &commits, &writes, &gmax);
    hp_log(env, HP_LOG_INFO, "commit_stats", "group_commit=%s commits=%llu writes=%llu max_group=%llu",
           srvl.group ? "on" : "off", (unsigned long long)commits, (unsigned long long)writes,
           (unsigned long long)gmax);
    hp_log(env, HP_LOG_INFO, "stopped", NULL);
    return 0;
}
