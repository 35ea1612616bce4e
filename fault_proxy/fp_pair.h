/*
 * fp_pair.h - the forwarding engine's private types, shared by its two
 * files: fp_pair.c (sockets, delivery, partition, the pairs' life) and
 * fp_unit.c (cutting each direction into units, journaling them, the
 * per-unit faults).  Nothing outside these two files includes it.
 *
 * A pair is one downstream connection and its upstream twin; a direction
 * (fp_dir) carries bytes from one side (src) to the other (dst) as a queue
 * of units, each the ORIGINAL bytes of an HTTP message or a WebSocket
 * frame with the instant it is due.  The pair owns everything it points at.
 */
#ifndef FP_PAIR_H
#define FP_PAIR_H

#include "fp_proxy.h"

enum { MODE_HTTP, MODE_WAIT_UPGRADE, MODE_WS, MODE_OPAQUE };
enum { UP_NONE, UP_CONNECTING, UP_OPEN };
enum { CLOSE_NONE, CLOSE_FIN, CLOSE_RST };

typedef struct fp_unit {
    uint8_t *data;
    size_t len, off;
    int64_t due;               /* monotonic ms */
    int close_after;           /* cut: close both sides once written */
    struct fp_unit *next;
} fp_unit;

typedef struct fp_side {
    fp_ev ev;
    struct fp_pair *pair;
    int fd;                    /* -1 once closed */
    int is_up;
    int eof;                   /* read returned 0 (or the side is gone) */
    int want_out;              /* a write met EAGAIN: wait for EPOLLOUT */
    uint32_t mask;             /* events currently registered */
} fp_side;

typedef struct fp_dir {
    int which;                 /* FPF_C2S or FPF_S2C */
    fp_side *src, *dst;
    uint8_t *in;               /* read, not yet cut into units */
    size_t in_len, in_cap;
    int mode;
    fp_unit *head, *tail;
    size_t queued;             /* bytes in units not yet written */
    int64_t last_due;          /* units never overtake each other (TCP) */
    double bw_credit;          /* bandwidth token bucket, bytes */
    int64_t bw_t;
    int silent;                /* after a dropped response (s2c) or request (c2s):
                                  deliver nothing more */
    int cutting;               /* a cut unit is queued: ignore further input */
    int shut;                  /* shutdown(dst, SHUT_WR) done */
    uint8_t *msg;              /* unmasked copy of a fragmented message */
    size_t msg_len;
    int msg_op;
    int msg_big;               /* reassembly gave up (over the journal cap) */
} fp_dir;

typedef struct fp_req {
    char method[16];
    char *path;
    struct fp_req *next;
} fp_req;

typedef struct fp_pair {
    uint64_t id;
    char client[FPF_NAME_MAX + 1]; /* "" for the main port */
    char *sub, *dev;           /* latest token claims, NULL until known */
    char peer[64];
    fp_side down, up;
    fp_dir c2s, s2c;
    int up_state;
    int started;               /* a first request head was seen */
    int partitioned;           /* as of the last pump */
    fp_req *reqs, *reqs_tail;  /* requests awaiting their response (FIFO) */
    int64_t opened_ms;
    int ws;
    int ws_close_code;         /* last close frame seen, 0 when none */
    const char *ws_close_from;
    int dead;                  /* both sockets closed: freed by the next pump */
    struct fp_pair *next;
} fp_pair;

/* ---- fp_pair.c ---------------------------------------------------------- */

/* "client" or "server". */
const char *fpp_side_name(const fp_side *s);
/* Drop the first n bytes of d's input. */
void fpp_buf_consume(fp_dir *d, size_t n);
/* Journal e (stolen) for pr. */
void fpp_journal(fp_proxy *p, fp_pair *pr, json_t *e);
/* Does scope s cover pr?  Is pr covered by a partition now? */
int fpp_covered(const fp_pair *pr, const fpf_scope *s);
int fpp_partitioned(fp_proxy *p, const fp_pair *pr);
/* The oldest armed fault of kind covering pr in direction dir (0 = any)
 * that pred (may be NULL) accepts. */
fp_fault *fpp_find_fault(fp_proxy *p, fp_pair *pr, fpf_kind kind, int dir,
                         int (*pred)(const fp_fault *, const void *), const void *arg);
/* Count one application of f; a counted fault that reaches 0 is removed
 * (f is freed). */
void fpp_fault_used(fp_proxy *p, fp_fault *f);
/* Connect upstream (non-blocking) unless already done. */
void fpp_start_upstream(fp_proxy *p, fp_pair *pr);

/* ---- fp_unit.c ---------------------------------------------------------- */

/* Queue len bytes of data (copied) for d's destination, after the latency
 * faults covering pr in d's direction plus extra_delay ms (a held
 * response); units keep their order.  close_after: CLOSE_FIN / CLOSE_RST
 * closes both sides once this unit is written (a cut).  Returns the delay
 * applied. */
int64_t fpp_enqueue(fp_proxy *p, fp_pair *pr, fp_dir *d, const uint8_t *data, size_t len,
                    int64_t extra_delay, int close_after, int64_t now);
/* Cut d's input into whole units: journal each, apply the per-unit faults
 * (drops, holds, cuts), queue what passes.  Partial units stay in d->in. */
void fpp_parse(fp_proxy *p, fp_pair *pr, fp_dir *d, int64_t now);

#endif
