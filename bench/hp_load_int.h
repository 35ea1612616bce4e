/*
 * hp_load_int.h - what hp-load's files share (one program; no contract).
 *
 *   hp_load.c        options, the phases of a run, /proc figures, the table
 *                    and the JSON line (main).
 *   hp_load_loop.c   the sockets: non-blocking I/O, output buffering,
 *                    client frames out, the epoll loop (ld_run_until)
 *                    with heartbeats and the writers' closed loop.
 *   hp_load_proto.c  what the connections say: stream connections
 *                    (upgrade, HELLO, READY, events), fan-out bookkeeping,
 *                    the writers' PUTs and their answers.
 *
 * Ownership: every connection is an entry of L.c (conns + writers, owned
 * by the run); its in / out buffers are its own (malloc'd, freed when it
 * dies or the run ends).  Times are monotonic microseconds (ld_now_us).
 */
#ifndef HP_LOAD_INT_H
#define HP_LOAD_INT_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hp_jwt.h"
#include "load_hist.h"

#define MAX_CONNS 50000
#define MAX_WRITERS 1024
#define STREAM_PATH "/api/v0.2/tasks/stream"
#define API "/api/v0.2/tasks"
#define RING 4096 /* revisions remembered per household for fan-out */

enum { K_STREAM = 1, K_WRITER };
enum { S_CONNECTING = 1, S_UPGRADING, S_HELLO, S_READY, S_IDLE, S_WAIT, S_DEAD };

typedef struct lconn {
    int fd;
    int kind;
    int state;
    int hh;                  /* household index */
    int idx;                 /* listener or writer number */
    int64_t t_start;         /* connect start (stream) / request sent (writer) */
    char *in;                /* unparsed bytes (NULL when none) */
    size_t in_len, in_cap;
    char *out;               /* unsent bytes (NULL when none) */
    size_t out_len, out_off;
    int64_t wseq;            /* writer: PUTs sent */
} lconn;

typedef struct rev_slot {
    int64_t rev;
    int64_t t200;            /* 0: the 200 not read yet */
    int got;                 /* listeners that have the frame */
} rev_slot;

/* The run: options, state, counters, histograms.  One per process, defined
 * in hp_load.c; zero until main() sets the options. */
typedef struct load_run {
    /* options */
    struct sockaddr_in target;
    const char *target_text, *secret, *label, *json_path;
    int conns, households, writers, rounds, parallel;
    double duration_s, settle_s;
    int server_pid;
    /* state */
    int ep;
    lconn *c;                /* conns + writers */
    int n;                   /* entries used in c */
    int *hh_ready;           /* READY listeners per household */
    rev_slot *ring;          /* households * RING */
    int64_t hb_interval_us;
    int *hbq;                /* FIFO of listener indices by next heartbeat */
    int64_t *hb_due;
    int hbq_head, hbq_len;
    char rbuf[1 << 16];
    /* counters */
    int ready, failed, inflight_connects, next_to_connect;
    int64_t frames, frames_before_200, events, closes_seen;
    int64_t puts_ok, puts_409, puts_err, puts_sent;
    int phase;               /* 3: fan-out, 4: writes */
    int64_t round_rev;       /* fan-out: revision of the current round, 0 none */
    int round_hh, round_need;
    int64_t end4;            /* end of the write phase (µs) */
    int round_200;
    char **tokens_w;
    /* histograms (µs) */
    lh_hist setup, fanout, fanout_load, put_lat, after200, after200_load;
} load_run;

extern load_run L;

/* ---- hp_load.c ------------------------------------------------------------- */

int64_t ld_now_us(void);

/* ---- hp_load_loop.c -------------------------------------------------------- */

void ld_set_nonblock(int fd);
/* Change k's epoll interest to ev. */
void ld_ep_mod(lconn *k, uint32_t ev);
/* Write now; what the socket does not take waits for EPOLLOUT. */
void ld_send_bytes(lconn *k, const char *b, size_t n);
/* Close k and count what it was (READY listener, handshake, failure). */
void ld_conn_dead(lconn *k);
/* Write what is buffered on k; wait for EPOLLOUT when the socket is full. */
void ld_flush_out(lconn *k);
/* One masked client text / control frame on k. */
void ld_ws_send_text(lconn *k, const char *s);
void ld_ws_send_ctrl(lconn *k, int opcode, const unsigned char *p, size_t n);
/* The first "key": <integer> in the JSON text s (n bytes); 0, or -1. */
int ld_json_int_field(const char *s, size_t n, const char *key, int64_t *out);
/* 1 when needle occurs in s (n bytes). */
int ld_has(const char *s, size_t n, const char *needle);
/* Service sockets and timers until done() or the deadline (µs). */
void ld_run_until(int (*done)(void), int64_t deadline);

/* ---- hp_load_proto.c ------------------------------------------------------- */

/* The fan-out slot of revision rev in household hh. */
rev_slot *ld_slot(int hh, int64_t rev);
/* Listener i's next heartbeat is due at `due` (FIFO: one interval for all). */
void ld_hb_push(int i, int64_t due);
/* Whole WebSocket frames from buf (len bytes) on stream k; bytes used. */
size_t ld_ws_parse(lconn *k, const char *buf, size_t len, int64_t t);
/* Connect listener i (non-blocking); ld_stream_connected() goes on. */
void ld_stream_start(int i);
void ld_stream_connected(lconn *k);
/* Writer k sends its next PUT; ld_http_response() reads the answer. */
void ld_writer_send(lconn *k);
size_t ld_http_response(lconn *k, const char *buf, size_t len, int64_t t);

#endif
