/*
 * hp_msg.h - the JSON codec for WebSocket messages and REST bodies.
 *
 * Builders return malloc'd compact JSON strings (sorted keys, so traces are
 * byte-identical across runs); the caller frees them with free().
 * hp_error_body() is the one place every JSON error body is made.
 */
#ifndef HP_MSG_H
#define HP_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* WebSocket close codes (§3). */
#define HP_CLOSE_GOING_AWAY 1001     /* server shutdown */
#define HP_CLOSE_TOO_BIG 1009        /* frame over max_frame */
#define HP_CLOSE_AUTH 4001           /* token expired / invalid */
#define HP_CLOSE_PROTOCOL 4002       /* bad JSON, unknown type, no HELLO */
#define HP_CLOSE_HEARTBEAT 4008      /* heartbeat timeout (WS-5) */

#define HP_API_PREFIX "/api/v0.2/tasks"
#define HP_STREAM_PATH "/api/v0.2/tasks/stream"

typedef enum hp_msg_type {
    HP_MSG_UNKNOWN = 0,   /* valid JSON object, type not known */
    HP_MSG_HELLO,
    HP_MSG_READY,
    HP_MSG_RESYNC,        /* RESYNC_REQUIRED */
    HP_MSG_HEARTBEAT,
    HP_MSG_EVENT          /* has "event_type" */
} hp_msg_type;

typedef struct hp_msg {
    hp_msg_type type;
    int64_t revision;          /* HELLO, READY, RESYNC, EVENT; -1 if absent */
    int64_t heartbeat_ms;      /* READY; 0 if absent */
    const char *event_type;    /* EVENT: borrowed from root */
    const char *entity_id;     /* EVENT: borrowed */
    json_t *payload;           /* EVENT: borrowed */
    json_t *locks;             /* HEARTBEAT: borrowed array or NULL */
    json_t *root;              /* owned; free with hp_msg_clear() */
} hp_msg;

/*
 * The trees a message points into are read-only: the two commonest
 * heartbeats share one process-wide tree (a reference each), so a change
 * to one message's tree would show in others'.
 *
 * Parse one message.  Returns 0 on success (type may be HP_MSG_UNKNOWN for
 * an object with an unknown "type"), -1 when the text is not JSON, not an
 * object, or a known type has fields of the wrong type (err says which).
 */
int hp_msg_parse(const char *data, size_t len, hp_msg *out, char *err, size_t errlen);
void hp_msg_clear(hp_msg *m);

char *hp_msg_hello(int64_t revision);
char *hp_msg_ready(int64_t revision, int64_t heartbeat_ms);
char *hp_msg_resync(int64_t revision);
/* locks: array of ids (client heartbeat) or NULL (server heartbeat, no
 * "locks" key).  Borrowed. */
char *hp_msg_heartbeat(const json_t *locks);
/* {"event_type","entity_id","revision","payload"}; payload borrowed. */
char *hp_msg_event(const char *event_type, const char *entity_id, int64_t revision,
                   const json_t *payload);

/* {"error": code, "message": message} - every error body.  NULL code reads
 * as "error", NULL message as ""; bytes that are not valid UTF-8 become '?'
 * (also in hp_msg_event's strings), so the result is never NULL for bad text. */
char *hp_error_body(const char *code, const char *message);
/* A new JSON string for text from anywhere (never NULL but on OOM): valid
 * UTF-8 as is; a character cut at the end (truncation) is dropped; any
 * other invalid byte becomes '?'. */
json_t *hp_json_text(const char *s);

/* The error code for an HTTP status: 400 bad_request, 401 unauthorized,
 * 404 not_found, 405 method_not_allowed, 409 conflict, 411 length_required,
 * 413 payload_too_large, 423 locked, 5xx internal, else "error". */
const char *hp_error_code_for_status(int status);

#endif
