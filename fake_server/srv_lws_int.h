/*
 * srv_lws_int.h - what the libwebsockets adapter's files share (not a
 * contract; srv_lws.h is).
 *
 * Files by role (srv_lws.c is the owner: context, loop, the one protocol
 * callback, the core's outbox and timer; the others are its parts):
 *   srv_lws.c        context, service loop, graceful stop, protocol callback,
 *                    pump() (the core's outbox) and the core's timer.
 *   srv_lws_front.c  the listening socket and the strict reading of each
 *                    connection's first request head before lws takes it.
 *   srv_lws_http.c   HTTP/1.1: reading a request strictly (RFC 9112 framing,
 *                    limits), dispatch to the core, writing the JSON answer.
 *   srv_lws_admin.c  the bridge to the admin API (srv_admin.c): /_hp/... on
 *                    the main address (--admin) or on --admin-listen,
 *                    without CORS headers; session routing (/s/{id}).
 *   srv_lws_proxy.c  /_hp/proxy/...: the fault proxy's control API
 *                    relayed without blocking the loop (--fault-proxy).
 *   srv_lws_ws.c     WebSocket connections: upgrade, reassembly, output
 *                    queues and their limits (per connection, per user, in
 *                    total), replay flow control (WS-2).
 *   srv_lws_rx.c     RFC 6455 checks on the frame headers a peer sends
 *                    (masking, reserved bits, fragmentation) that lws
 *                    4.1.6 does not make: 1002 on a violation.
 */
#ifndef SRV_LWS_INT_H
#define SRV_LWS_INT_H

#include <libwebsockets.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "hp_env.h"
#include "hp_policy.h"
#include "hp_jwt.h"
#include "srv_core.h"
#include "srv_journal.h"
#include "srv_lws.h"
#include "srv_session.h"

/* ---- WebSocket connections (srv_lws_ws.c) ------------------------------- */

/* One outgoing text frame: the core's own buffer, taken over from its
 * outbox item (no copy per queued frame; lws's LWS_PRE headroom is added
 * at write time in one shared buffer). */
typedef struct ws_frame {
    struct ws_frame *next;
    size_t len;
    char *data;                /* owned */
} ws_frame;

/* Output accounting of one user (token sub): shared by their connections. */
typedef struct ws_user {
    struct ws_user *next;
    size_t queued;             /* bytes queued over the user's connections */
    int refs;                  /* connections pointing here */
    char name[];
} ws_user;

/* One WebSocket connection known to the core. */
typedef struct conn {
    struct conn *next, *prev;  /* srvl.conns, open order */
    struct conn *hnext;        /* srvl.by_id bucket */
    uint64_t id;
    struct lws *wsi;
    srv_session *sess;         /* NULL once its session retired the core */
    hp_claims who;             /* from the token, for the journal */
    ws_user *user;             /* NULL until the core accepted the upgrade */
    int established;           /* ESTABLISHED seen: safe to ask for WRITEABLE */
    int want_pull;             /* WS-2: the core has more replay for us */
    ws_frame *head, *tail;     /* frames waiting for WRITEABLE */
    size_t queued;             /* bytes in head..tail */
    int close_code;            /* 0: none; else close after the queue drains */
    char close_reason[124];    /* RFC 6455: at most 123 bytes */
    unsigned char *rx;         /* message being reassembled (<= max_frame + 1);
                                  freed between messages: idle connections
                                  hold no buffer */
    size_t rx_len, rx_cap;
    size_t rx_total;           /* real size so far, may exceed the buffer */
    int rx_skip;               /* oversized message reported: drop the rest */
    int rx_fd;                 /* its socket while srv_lws_rx.c checks it, or -1 */
} conn;

struct srvl_relay;

/* Per-session data; lws zeroes it and may reset it between keep-alive
 * transactions (lws_http_transaction_completed), so every pointer here is
 * freed before that call. */
typedef struct pss {
    conn *c;                   /* WebSocket: the connection, NULL for HTTP */
    srv_session *sess;         /* HTTP: the session answering (while pending) */
    char *jpath;               /* the path without the session prefix */
    uint64_t jseq;             /* journal seq reserved at dispatch */
    char hint[SRV_SESSION_ID_MAX + 1]; /* the /s/{id} of the path, "" */
    int admin;                 /* an admin path: no CORS headers */
    int admin_vhost;           /* came in on the --admin-listen address */
    char *origin, *host;
    const char *ctype;         /* static; NULL: application/json */
    int retry_after_date;      /* the session writes Retry-After as a date */
    int64_t hold_ms;           /* hold_response fault: wait before writing */
    int holding;
    lws_sorted_usec_list_t hold_sul;
    /* HTTP request */
    int have_req;
    int dispatched;            /* handed to the core (or answered) once */
    uint64_t req_id;
    char method[12];
    char *path, *query, *auth, *idem;
    int64_t content_length;    /* -1: header absent */
    char *body;
    size_t body_len, body_cap;
    struct lws *wsi;           /* set while waiting for the core's answer */
    struct pss *pend_next;     /* srvl.pending: requests awaiting their answer */
    int pending;
    /* HTTP response */
    int resp_ready;
    int status;
    int retry_after;           /* -1: none */
    int close_after;           /* RFC 9112: the framing is unsafe, close after */
    const char *allow;         /* 405: the Allow header, NULL when none */
    char *allow_own;           /* a relayed Allow header (p->allow points here) */
    struct srvl_relay *relay;  /* /_hp/proxy: the relay answering p, or NULL */
    unsigned char *resp;       /* LWS_PRE + resp_len bytes */
    size_t resp_len;
} pss;

#define CONN_BUCKETS 16384 /* power of two; ids are sequential */
#define USER_BUCKETS 4096  /* power of two; users hashed by name */

typedef struct srv_lws_state {
    struct lws_context *ctx;
    srv_sessions *reg;                /* every session's core (srv_session.h) */
    const hp_env *env;
    srv_lws_opts opts;                /* limits included (copied) */
    int admin_main;                   /* admin API on the main address */
    const char *admin_token;          /* NULL: none (loopback only) */
    struct lws_vhost *admin_vh;       /* --admin-listen, or NULL */
    volatile sig_atomic_t *stop;
    lws_sorted_usec_list_t sul;       /* the core's next deadline */
    lws_sorted_usec_list_t stop_sul;  /* wakes the loop at the stop deadline */
    conn *conns;
    conn *by_id[CONN_BUCKETS];        /* id -> conn: the outbox names
                                         connections by id, and a scan per
                                         frame made a broadcast O(n^2) */
    size_t n_conns;
    ws_user *users[USER_BUCKETS];     /* name -> ws_user: one list scanned per
                                         upgrade and close was O(users) */
    size_t queued_total;              /* bytes queued over every connection */
    unsigned char *wbuf;              /* LWS_PRE + wbuf_cap: the frame being written */
    size_t wbuf_cap;
    uint64_t next_id;
    pss *pending;                     /* requests handed to the core, unanswered */
    int group;                        /* group commit on */
    int stopping;
    int destroying;                   /* lws_context_destroy() running */
    int64_t stop_deadline_ms;         /* monotonic */
} srv_lws_state;

extern srv_lws_state srvl;

/* srv_lws.c */
void srvl_pump(void);
void srvl_pump_one(srv_session *s);

/* srv_lws_ws.c */
conn *srvl_conn_find(uint64_t id);
void srvl_conn_unlink_free(conn *c);
void srvl_conn_want_write(conn *c);
/* Queue one frame on c (takes body, malloc'd, whatever happens) and
 * enforce the output limits. */
void srvl_conn_queue(conn *c, char *body, size_t len);
void srvl_conn_close(conn *c, int code, const char *reason);
/* The peer broke the protocol: drop c's queue, close with code at once
 * (WARNING ws_protocol_error). */
void srvl_conn_fail(conn *c, int code, const char *reason);
void srvl_conn_want_pull(conn *c);
int srvl_ws_filter(struct lws *wsi, pss *p);
void srvl_ws_receive(struct lws *wsi, conn *c, const unsigned char *in, size_t len);
int srvl_ws_writeable(struct lws *wsi, conn *c);
void srvl_ws_established(struct lws *wsi, conn *c);

/* srv_lws_http.c */
void srvl_http_free(pss *p);
/* Requests handed to the core and not yet answered (group commit holds an
 * answer until its COMMIT). */
pss *srvl_pend_find(uint64_t req_id);
void srvl_pend_unlink(pss *p);
void srvl_set_response(pss *p, int status, const char *body, size_t len, int retry_after);
void srvl_set_error(pss *p, int status, const char *message);
char *srvl_copy_query(struct lws *wsi);
int srvl_http_begin(struct lws *wsi, pss *p, const char *uri);
void srvl_http_body(pss *p, const char *in, size_t len);
int srvl_http_write(struct lws *wsi, pss *p);
void srvl_http_body_complete(struct lws *wsi, pss *p);

/* srv_lws_rx.c: see its header comment.  upgrade: the request head asks
 * for a WebSocket upgrade (other sockets are only forgotten). */
void srvl_rx_watch(int fd, size_t head_len, int upgrade);
void srvl_rx_bind(int fd, conn *c);
void srvl_rx_arm(conn *c);
void srvl_rx_forget(conn *c);

/* srv_lws_front.c */
/* Per raw descriptor of the front door (lws zeroes it). */
typedef struct front {
    int fd;
    int listener;
    int closing;            /* refusal sent: read and drop until EOF */
    char *buf;              /* the head peeked so far */
    size_t len, cap;
    struct lws *wsi;        /* while a re-peek is scheduled */
    lws_sorted_usec_list_t sul;
} front;
int srvl_front_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
/* Bind and listen (before the context): 0, or -1 with errno. */
int srvl_front_listen(const char *iface, int port, int *bound_port);
/* Hand the listener to the loop (after the context): 0 or -1. */
int srvl_front_start(void);
void srvl_front_close(void);

/* srv_lws_admin.c */
/* The session a path names: "/s/{id}/rest" -> that session, *rest =
 * "/rest"; no prefix -> the default session.  NULL when the prefix names
 * no session (hint gets the id). */
srv_session *srvl_route(const char *path, const char **rest, char *hint, size_t hl);
int srvl_is_admin_path(const char *path);
/* An admin request (p->admin set): answered into p. */
void srvl_admin_handle(pss *p, const char *path);
/* Journal an answered REST request at its reserved seq. */
void srvl_journal_http(pss *p);
srv_jwho srvl_conn_who(const conn *c);

/* srv_lws_proxy.c */
#define SRVL_PROXY_TIMEOUT_MS 5000          /* 504 after this (docs/ADMIN_API.md) */
#define SRVL_PROXY_ANSWER_MAX (8u << 20)    /* a larger answer is a 502 */
/* One relay in flight: the raw wsi's per-session data. */
typedef struct srvl_relay {
    pss *p;                    /* the admin request; NULL once it went away */
    struct lws *wsi;
    int fd;
    int connected;
    int answered;              /* p has its answer (or p is gone) */
    char method[12];
    char *path;                /* "/clients/alice?x=1", for the log line (owned) */
    char *out;                 /* the request bytes (owned) */
    size_t out_len, out_off;
    char *in;                  /* the answer so far (owned) */
    size_t in_len, in_cap;
    int64_t t0_ms;
    lws_sorted_usec_list_t sul; /* the timeout */
} srvl_relay;
int srvl_proxy_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
/* Send p's admin request to the fault proxy as METHOD rest?query with its
 * body; p is answered later (or at once on a local error). */
void srvl_proxy_start(pss *p, const char *rest);
/* p goes away (or is reused): its relay, if any, no longer answers it. */
void srvl_proxy_detach(pss *p);

#endif
