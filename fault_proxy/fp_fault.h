/*
 * fp_fault.h - the faults hp-fault-proxy can play: their model, the
 * validation of a control request that arms one, and scope matching.
 *
 * A fault is always scoped (fpf_scope): one per-client port, one token
 * subject (optionally one device), or one connection id.  Nothing here
 * touches a socket: the forwarding engine (fp_pair.c) asks which faults
 * match a connection and applies them; the control API (fp_control.c)
 * parses, lists and removes them.
 */
#ifndef FP_FAULT_H
#define FP_FAULT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Ranges of every number a control request may carry (documented in
 * docs/FAULT_PROXY.md; a value outside is a 400). */
#define FPF_MS_MAX 3600000          /* latency, jitter, hold: up to 1 hour */
#define FPF_BPS_MIN 1
#define FPF_BPS_MAX 1000000000      /* bandwidth: 1 B/s .. 1 GB/s */
#define FPF_COUNT_MAX 1000000       /* counted faults */
#define FPF_AFTER_BYTES_MAX 1048576 /* cut: bytes of the frame let through */
#define FPF_NAME_MAX 64             /* client names, message types */
#define FPF_CLAIM_MAX 256           /* sub, dev */
#define FPF_PATH_MAX 512            /* path patterns */

typedef enum fpf_kind {
    FPF_PARTITION = 0,
    FPF_LATENCY,
    FPF_BANDWIDTH,
    FPF_RESET,                 /* immediate: never stays armed */
    FPF_CUT,
    FPF_HOLD_RESPONSE,
    FPF_DROP_RESPONSE,
    FPF_DROP_MESSAGE,
    FPF_DROP_REQUEST,
    FPF_KIND_COUNT
} fpf_kind;

/* Directions, as a bit set: "c2s" (client to server), "s2c", "both". */
#define FPF_C2S 1
#define FPF_S2C 2

/* What a cut may take: WebSocket data frames, HTTP messages. */
#define FPF_UNIT_FRAME 1
#define FPF_UNIT_HTTP 2

typedef enum fpf_scope_kind { FPF_SCOPE_CLIENT, FPF_SCOPE_TOKEN, FPF_SCOPE_CONN } fpf_scope_kind;

typedef struct fpf_scope {
    fpf_scope_kind kind;
    char client[FPF_NAME_MAX + 1];   /* FPF_SCOPE_CLIENT */
    char sub[FPF_CLAIM_MAX + 1];     /* FPF_SCOPE_TOKEN */
    char dev[FPF_CLAIM_MAX + 1];     /* FPF_SCOPE_TOKEN; "" = any device */
    uint64_t conn;                   /* FPF_SCOPE_CONN */
} fpf_scope;

typedef struct fp_fault {
    uint64_t id;               /* public, read-only: set by the registry */
    fpf_kind kind;
    fpf_scope scope;
    int dir;                   /* FPF_C2S | FPF_S2C bits (latency, bandwidth, cut, drop_message) */
    int64_t ms;                /* latency, hold_response */
    int64_t jitter_ms;         /* latency */
    int64_t bytes_per_s;       /* bandwidth */
    int64_t after_bytes;       /* cut */
    int how_rst;               /* cut: close with RST instead of FIN */
    int cut_units;             /* cut: FPF_UNIT_FRAME and/or FPF_UNIT_HTTP bits */
    int64_t count;             /* counted kinds: what is left; -1 = not counted */
    int64_t applied;           /* times applied so far */
    char method[16];           /* hold/drop_response, drop_request: "PUT", or "*" */
    char path[FPF_PATH_MAX + 1];/* the same kinds: an fnmatch(3) pattern */
    char message[FPF_NAME_MAX + 1]; /* drop_message: a type / event_type, or "any" */
    int64_t created_ms;
    struct fp_fault *next;     /* private: the registry's list */
} fp_fault;

/*
 * Validate a control request body and fill *out (id and next untouched).
 * forced_kind >= 0 and forced_client != NULL come from the URL of the
 * per-client shorthands (POST /clients/{name}/partition ...): the body may
 * then omit "kind" and "scope".  On error returns -1, writes a message for
 * humans to err and the offending key (or "" for the body as a whole) to
 * key; nothing else changes.
 */
int fpf_parse(const json_t *body, int forced_kind, const char *forced_client, fp_fault *out,
              char *err, size_t errlen, char *key, size_t keylen);

/* 1 when name is a valid client name: 1..64 of [A-Za-z0-9_.-]. */
int fpf_valid_name(const char *name);

/* The fault as the API shows it (new reference). */
json_t *fpf_to_json(const fp_fault *f);
json_t *fpf_scope_json(const fpf_scope *s);

/* Does scope s cover a connection of per-client port `client` ("" = main
 * port) with token claims sub/dev (NULL when unknown) and id conn? */
int fpf_scope_match(const fpf_scope *s, const char *client, const char *sub, const char *dev,
                    uint64_t conn);

const char *fpf_kind_name(fpf_kind k);
const char *fpf_dir_name(int dir);

#endif
