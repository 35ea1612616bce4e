/*
 * hp_outbox.h - what a sans-I/O core asks its driver to do.
 *
 * Both cores push items here; the driver (simulator or libwebsockets
 * adapter) pops them in order and carries them out.  Items own their
 * strings; hp_out_clear() frees them.
 */
#ifndef HP_OUTBOX_H
#define HP_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef enum hp_out_kind {
    HP_OUT_HTTP_RESPONSE = 1, /* server: id=request id, status, body, retry_after_s */
    HP_OUT_HTTP_REQUEST,      /* client: id=request id, method, path (with query),
                                 auth, idem_key, body */
    HP_OUT_HTTP_ABORT,        /* client: id=request id to abandon (going offline) */
    HP_OUT_WS_CONNECT,        /* client: id=connection id, path (with ?token=) */
    HP_OUT_WS_SEND,           /* both: id=connection id, body = text frame */
    HP_OUT_WS_CLOSE,          /* both: id=connection id, code, body = reason */
    HP_OUT_NOTIFY,            /* client: info = {"type": "SYNC_FAILED"|..., ...} */
    HP_OUT_OBSERVE,           /* client: info = {"kind": "event_applied"|"queue"|...} */
    HP_OUT_WS_WANT_WRITABLE   /* server: id=connection id; call srv_ws_writable()
                                 once its output has drained (WS-2 replay) */
} hp_out_kind;

typedef struct hp_out {
    hp_out_kind kind;
    uint64_t id;
    int status;          /* HTTP status (response) */
    int code;            /* WS close code */
    int retry_after_s;   /* response: Retry-After seconds, -1 when none */
    char *method;        /* request */
    char *path;          /* request / connect: path plus query */
    char *auth;          /* request: bearer token (without "Bearer "), or NULL */
    char *idem_key;      /* request: Idempotency-Key or NULL */
    char *body;          /* NUL-terminated; may be NULL */
    size_t body_len;
    json_t *info;        /* NOTIFY / OBSERVE: owned reference */
    int64_t hold_ms;     /* response: the driver holds it this long before
                            writing (server admin fault hold_response); 0 */
} hp_out;

typedef struct hp_outbox {
    hp_out *items;       /* private */
    size_t head, len, cap;
} hp_outbox;

void hp_outbox_init(hp_outbox *ob);
void hp_outbox_free(hp_outbox *ob);
/* Appends a copy of *item (shallow: ownership of its pointers moves in). */
void hp_outbox_push(hp_outbox *ob, const hp_out *item);
/* Pops the oldest item into *out (ownership moves to caller).  1 or 0. */
int hp_outbox_pop(hp_outbox *ob, hp_out *out);
size_t hp_outbox_count(const hp_outbox *ob);
/* Frees the strings and info of an item and zeroes it. */
void hp_out_clear(hp_out *item);
/* Zeroed item of a kind with retry_after_s = -1. */
hp_out hp_out_make(hp_out_kind kind, uint64_t id);

/* strdup that accepts NULL. */
char *hp_strdup(const char *s);

#endif
