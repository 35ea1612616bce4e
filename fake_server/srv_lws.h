/*
 * srv_lws.h - the libwebsockets "platform" of the reference server.
 *
 * Carries the sans-I/O core (srv_core.h) onto real sockets: one lws
 * context, one service thread, one protocol that serves both HTTP (REST,
 * CORS preflight, the optional admin endpoints) and the WebSocket change
 * stream.  The adapter decides no policy: every request, message, close
 * and timer goes to the core, and the core's outbox is carried out.
 */
#ifndef SRV_LWS_H
#define SRV_LWS_H

#include <signal.h>
#include "hp_env.h"
#include "hp_policy.h"
#include "srv_core.h"
#include "srv_session.h"

/* Transport limits (docs/LIMITS.md, "Server transport"); 0 = default. */
typedef struct srv_lws_limits {
    size_t out_conn;            /* bytes queued for one WebSocket, default
                                   8 MiB (--max-output-per-conn) */
    size_t out_user;            /* over one user's WebSockets, default 32 MiB
                                   (--max-output-per-user) */
    size_t out_total;           /* over every WebSocket, default 256 MiB
                                   (--max-output) */
    int http_timeout_s;         /* a socket that has not sent a complete
                                   request head (or is idle on keep-alive)
                                   this long is closed; default 10
                                   (--http-timeout) */
    size_t max_uri;             /* request target bytes, default 4096 (414) */
    size_t max_header;          /* request head bytes, default 8192 (431) */
    size_t ws_sndbuf;           /* kernel send buffer of a WebSocket (SO_SNDBUF),
                                   default 256 KiB (--ws-sndbuf): what a slow
                                   reader holds in the kernel, outside the
                                   output limits */
} srv_lws_limits;

void srv_lws_limits_defaults(srv_lws_limits *l);

typedef struct srv_lws_opts {
    const char *iface;          /* numeric address to bind, NULL = all */
    int port;                   /* TCP port; 0 = any free port */
    int admin;                  /* 1: serve the admin API (/_hp/...) */
    const char *listen_text;    /* "127.0.0.1:8080", for the INFO line */
    int group_commit;           /* 1: srv_set_group_commit (one COMMIT per
                                   service round), 0: one COMMIT per write */
    srv_lws_limits lim;
    const char *admin_iface;    /* --admin-listen address (NULL = all) */
    int admin_port;
    const char *admin_listen_text; /* NULL: admin API on the main address */
    const char *admin_token;    /* NULL: no token (loopback only) */
    const char *fault_proxy_text; /* --fault-proxy as given, NULL: none */
    const char *fault_proxy_host; /* its numeric address (resolved at start) */
    int fault_proxy_port;
    int keep_alive;             /* 1: lws keeps HTTP connections open between
                                   requests (--keep-alive); 0: every answer
                                   closes, so every request passes the front
                                   door's strict checks (srv_lws_front.c) */
} srv_lws_opts;

/*
 * Serve until *stop becomes non-zero (set it from a signal handler and call
 * srv_lws_wake()).  Then srv_shutdown() closes every WebSocket with 1001,
 * the closes are flushed (bounded wait), and the context is destroyed.
 * reg (the sessions, each with its core and policy caps) and env are
 * borrowed; reg->on_retire and reg->group_commit are set for the run.
 * Returns 0 after a clean stop, -1 when the listener could not be created
 * (logged at ERROR).
 */
int srv_lws_run(srv_sessions *reg, const hp_env *env, const srv_lws_opts *opts,
                volatile sig_atomic_t *stop);

/* Async-signal-safe enough: wakes the service loop (lws_cancel_service) if
 * it runs.  For signal handlers. */
void srv_lws_wake(void);

#endif
