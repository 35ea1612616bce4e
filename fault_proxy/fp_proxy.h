/*
 * fp_proxy.h - the inside of hp-fault-proxy: one epoll loop, its listeners,
 * the per-client registry, the fault registry, the journal, and the
 * connection pairs it forwards.
 *
 * Owner and parts: fp_proxy.c owns struct fp_proxy (the loop, listeners,
 * clients, faults); fp_pair.c and fp_unit.c are the forwarding engine (one
 * fp_pair per downstream connection and its upstream twin; their private
 * types are in fp_pair.h); fp_control.c is the control API.  They share
 * this one header; nothing outside fault_proxy/ includes it.
 *
 * Single-threaded: every function runs on the loop's thread.  Times are
 * CLOCK_MONOTONIC milliseconds for scheduling (fp_mono_ms) and epoch
 * milliseconds for the journal and logs (fp_wall_ms).
 */
#ifndef FP_PROXY_H
#define FP_PROXY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>

#include "fp_fault.h"
#include "fp_journal.h"
#include "hp_env.h"

#ifdef HP_VERSION
#define FP_VERSION HP_VERSION /* CMake's project() version */
#else
#define FP_VERSION "unknown"
#endif

/* Limits (docs/FAULT_PROXY.md). */
#define FP_JOURNAL_ENTRIES_DEFAULT 100000
#define FP_JOURNAL_BYTES_DEFAULT (64u * 1024 * 1024)
#define FP_JOURNAL_BODY_MAX (64 * 1024)     /* bodies / messages journaled in full up to this */
#define FP_UNIT_MAX (16u * 1024 * 1024)     /* a frame or body bigger is forwarded opaquely */
#define FP_HELD_MAX (16u * 1024 * 1024)     /* per direction: reading pauses above this */
#define FP_MAX_CLIENTS 256
#define FP_MAX_FAULTS 1024
#define FP_MAX_CONNS 1024
#define FP_CONTROL_BODY_MAX (64 * 1024)

/* What an epoll event points at. */
typedef enum fp_ev_kind {
    FP_EV_LISTEN,              /* main or per-client listener (obj: fp_listener) */
    FP_EV_SIDE,                /* one socket of a pair (obj: fp_side) */
    FP_EV_CONTROL_LISTEN,
    FP_EV_CONTROL_CONN,        /* obj: fp_ctl_conn */
    FP_EV_SIGNAL
} fp_ev_kind;

typedef struct fp_ev {
    fp_ev_kind kind;
    void *obj;
} fp_ev;

typedef struct fp_client {
    char name[FPF_NAME_MAX + 1];
    int fd;                    /* its listening socket */
    int port;
    fp_ev ev;
    int64_t created_ms;
    struct fp_client *next;
} fp_client;

struct fp_pair;
struct fp_ctl_conn;

typedef struct fp_proxy {
    int ep;                    /* epoll fd */
    int stop;                  /* set by SIGTERM/SIGINT */
    int sig_fd;
    fp_ev sig_ev;
    /* main listener (anonymous scope) */
    int listen_fd;
    fp_ev listen_ev;
    struct sockaddr_in listen_addr;
    /* control */
    int control_fd;
    fp_ev control_ev;
    struct sockaddr_in control_addr;
    struct fp_ctl_conn *ctl_conns;
    /* upstream */
    struct sockaddr_storage up_addr;
    socklen_t up_addrlen;
    char up_url[300];
    /* registries */
    fp_client *clients;
    int n_clients;
    fp_fault *faults;          /* oldest first */
    int n_faults;
    uint64_t next_fault_id;
    struct fp_pair *pairs;
    int n_pairs;
    uint64_t next_conn_id;
    fp_journal *journal;
    /* logging, jitter */
    hp_logger logger;
    hp_rng rng;
    hp_env env;
} fp_proxy;

int64_t fp_mono_ms(void);
int64_t fp_wall_ms(void);

/* ---- fp_proxy.c: loop, listeners, registries ---------------------------- */

/* Register / change / remove fd in the epoll set (events: EPOLLIN...). */
void fp_watch(fp_proxy *p, int fd, fp_ev *ev, uint32_t events);
void fp_unwatch(fp_proxy *p, int fd);

/* A non-blocking listening socket on addr (port 0 = any free); the bound
 * address is written back.  Returns the fd or -1 (errno kept). */
int fp_listen_on(struct sockaddr_in *addr);

fp_client *fp_client_find(fp_proxy *p, const char *name);
/* Open a listener for a new client name (validated by the caller) on the
 * main listener's host (port 0 = any).  Returns the client (owned by the
 * registry) or NULL with err and an HTTP status in *status: 409 the name
 * exists or the port is taken, 503 too many clients / cannot bind. */
fp_client *fp_client_add(fp_proxy *p, const char *name, int port, int *status, char *err,
                         size_t errlen);
/* Remove its faults, reset its live connections, close its listener and
 * free c. */
void fp_client_remove(fp_proxy *p, fp_client *c);

/* Add an armed fault (copied; id and created_ms set) and log/journal it;
 * returns the registry's copy (owned by the registry).  Immediate kinds
 * (reset) are applied here and not kept: the copy returned is then the
 * caller's to free, and *applied gets the number of connections touched.
 * NULL when out of memory. */
fp_fault *fp_fault_arm(fp_proxy *p, const fp_fault *f, int *applied);
fp_fault *fp_fault_find(fp_proxy *p, uint64_t id);
/* Remove (and free) one fault; a partition removed heals its pairs at the
 * next fp_pairs_pump(). */
void fp_fault_remove(fp_proxy *p, fp_fault *f);

/* Set up listeners, control, journal; 0 or -1 with err. */
int fp_proxy_init(fp_proxy *p, const struct sockaddr_in *listen_addr,
                  const struct sockaddr_in *control_addr, const char *upstream_url,
                  size_t journal_entries, size_t journal_bytes, hp_log_level level, char *err,
                  size_t errlen);
/* Run until stop; returns 0. */
int fp_proxy_run(fp_proxy *p);
/* Close every socket and free everything p owns (p itself is the
 * caller's).  Safe after a failed fp_proxy_init(). */
void fp_proxy_free(fp_proxy *p);

/* ---- fp_pair.c: forwarding engine --------------------------------------- */

/* Journal an entry (stolen) for pair pr: its conn id, client, sub and dev
 * are added.  pr NULL: a registry entry (fault, client), filed under the
 * entry's own "client" / "sub" keys when it has them. */
void fp_journal_pair(fp_proxy *p, const struct fp_pair *pr, json_t *entry);

/* A downstream connection accepted on client c's port (NULL = main port). */
void fp_pair_accept(fp_proxy *p, int fd, fp_client *c, const struct sockaddr_in *peer);
/* An epoll event on one of a pair's sockets. */
void fp_pair_event(fp_proxy *p, void *side, uint32_t events);
/* Deliver what is due, start held upstream connects, heal, free finished
 * pairs; returns the next instant (monotonic ms) some pair needs a visit,
 * or -1 for none. */
int64_t fp_pairs_pump(fp_proxy *p, int64_t now);
/* Reset (RST both sockets) every pair the scope covers; returns how many.
 * why is journaled ("reset", "client_removed"). */
int fp_pairs_reset(fp_proxy *p, const fpf_scope *scope, uint64_t fault_id, const char *why);
/* The live connections of per-client port `client` ("" = the main port,
 * NULL = all), as a new JSON array (fields: docs/FAULT_PROXY.md). */
json_t *fp_pairs_json(fp_proxy *p, const char *client);
/* 1 when connection id is live (not yet closed on both sides). */
int fp_pair_live(fp_proxy *p, uint64_t id);
void fp_pairs_free_all(fp_proxy *p);

/* ---- fp_control.c: control API ----------------------------------------- */

/* Accept control connections (one request each, see docs/FAULT_PROXY.md). */
void fp_control_accept(fp_proxy *p);
/* An epoll event on a control connection; c may be freed by the call. */
void fp_control_event(fp_proxy *p, struct fp_ctl_conn *c, uint32_t events);
void fp_control_free_all(fp_proxy *p);

#endif
