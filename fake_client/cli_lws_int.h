/*
 * cli_lws_int.h - what the files of hp-fake-client's libwebsockets adapter
 * share (not a contract: the program's interface is the block below, which
 * cli_main.c repeats).
 *
 * The adapter carries out the core's outbox and turns network happenings
 * back into core calls; it decides no policy.  Files by role (cli_lws.c is
 * the owner: context, loop, outbox, timer, the one client callback):
 *   cli_lws.c        the context and the service loop, the URL, the outbox
 *                    (clw_drain) and the core's timer, the records of
 *                    requests and connections and their reaping, the test
 *                    faults of the wire (--frames lines, drop rules), the
 *                    client callback that hands each wsi to its side.
 *   cli_lws_http.c   the HTTP client side: one connection per request,
 *                    headers out, status / Retry-After / body in, exactly
 *                    one result (answer or failure) to the core.
 *   cli_lws_ws.c     the stream side: the WebSocket connection, its output
 *                    queue, whole messages in, refusals and close codes.
 *   cli_lws_stdin.c  the stdin driver: stdin adopted as a RAW descriptor,
 *                    split into command lines for cli_drv_line().
 *
 * Ownership: every req / conn record is on A.reqs / A.conns and freed only
 * by the owner (reap(), or at the end of cli_lws_run()); a wsi points to its
 * record through lws' opaque user data until clw_detach().  hp_out items
 * given to clw_start_request / clw_start_ws / clw_ws_send / clw_ws_close
 * are borrowed (the owner clears them).
 */
#ifndef CLI_LWS_INT_H
#define CLI_LWS_INT_H

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

/* ---- the interface between the driver (cli_main.c) and the adapter -------
 * (Repeated at the top of cli_main.c.) */
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

/* The adapter's state: one per process (one context, one core).  Cleared
 * by cli_lws_run(); defined in cli_lws.c. */
typedef struct cli_lws_state {
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
} cli_lws_state;

extern cli_lws_state A;

/* ---- cli_lws.c ------------------------------------------------------------- */

/* Append n bytes to a growable buffer (kept NUL-terminated).  -1 when it
 * would pass max or memory ran out. */
int clw_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n,
                   size_t max);
/* Carry out everything in the core's outbox, then reap and re-arm the timer. */
void clw_drain(void);
/* Start a client connection: method NULL = WebSocket upgrade.  Returns the
 * wsi or NULL; callbacks may already have run for it (opaque is set). */
struct lws *clw_start_connect(const char *path, const char *method, void *opaque);
/* Forget the record behind wsi (later callbacks are ignored). */
void clw_detach(struct lws *wsi);
/* Closes a wsi on the next service turn (safe inside any callback). */
void clw_kill_wsi(struct lws *wsi);
/* The connection with that id the core still hears about, or NULL. */
conn *clw_find_conn(uint64_t id);
/* A message's "type", else its "event_type", else "" (parsed only when
 * --frames or a drop rule needs it). */
void clw_frame_type(const char *data, size_t len, char *out, size_t n);
/* --frames: the "frame" line of a message (new reference), or NULL when off. */
json_t *clw_frame_line(const char *from, const char *data, size_t len, int lost);
/* 1 when a drop rule takes this message (and counts it). */
int clw_take_drop(int from_server, const char *kind);

/* ---- cli_lws_http.c -------------------------------------------------------- */

/* HP_OUT_HTTP_REQUEST: one HTTP client connection for the request. */
void clw_start_request(const hp_out *it);
int clw_http_client_cb(struct lws *wsi, enum lws_callback_reasons reason, req *r, void *in,
                       size_t len);

/* ---- cli_lws_ws.c ---------------------------------------------------------- */

/* HP_OUT_WS_CONNECT / HP_OUT_WS_SEND / HP_OUT_WS_CLOSE. */
void clw_start_ws(const hp_out *it);
void clw_ws_send(const hp_out *it);
void clw_ws_close(const hp_out *it);
int clw_ws_client_cb(struct lws *wsi, enum lws_callback_reasons reason, conn *c, void *in,
                     size_t len);

/* ---- cli_lws_stdin.c ------------------------------------------------------- */

int clw_stdin_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len);

#endif
