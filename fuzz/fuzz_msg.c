/*
 * fuzz_msg.c - the WebSocket message codec (protocol/hp_msg.c) and the
 * error-body builder.
 *
 * Input: any bytes, parsed as one message.  Oracles: a parsed message
 * rebuilt with the builders parses again to the same type and revision;
 * hp_error_body() of any bytes is a JSON object with "error" and
 * "message" (never NULL, whatever the UTF-8).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fz_util.h"
#include "hp_msg.h"

static void reparse(char *text, hp_msg_type type, int64_t revision)
{
    FZ_CHECK(text != NULL, "builder returned NULL");
    hp_msg m2;
    char err[256];
    FZ_CHECK(hp_msg_parse(text, strlen(text), &m2, err, sizeof err) == 0, "rebuilt %s: %s",
             text, err);
    FZ_CHECK(m2.type == type, "type %d became %d: %s", type, m2.type, text);
    if (revision >= 0)
        FZ_CHECK(m2.revision == revision, "revision %lld became %lld", (long long)revision,
                 (long long)m2.revision);
    hp_msg_clear(&m2);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 128 * 1024)
        return -1;
    hp_msg m;
    char err[256];
    if (hp_msg_parse((const char *)data, size, &m, err, sizeof err) == 0) {
        switch (m.type) {
        case HP_MSG_HELLO:
            if (m.revision >= 0)
                reparse(hp_msg_hello(m.revision), HP_MSG_HELLO, m.revision);
            break;
        case HP_MSG_READY: /* heartbeat_interval_ms absent reads as 0 */
            if (m.revision >= 0 && m.heartbeat_ms > 0)
                reparse(hp_msg_ready(m.revision, m.heartbeat_ms), HP_MSG_READY, m.revision);
            break;
        case HP_MSG_RESYNC:
            if (m.revision >= 0)
                reparse(hp_msg_resync(m.revision), HP_MSG_RESYNC, m.revision);
            break;
        case HP_MSG_HEARTBEAT:
            reparse(hp_msg_heartbeat(m.locks), HP_MSG_HEARTBEAT, -1);
            break;
        case HP_MSG_EVENT:
            if (m.event_type && m.entity_id && m.revision >= 0)
                reparse(hp_msg_event(m.event_type, m.entity_id, m.revision, m.payload),
                        HP_MSG_EVENT, m.revision);
            break;
        default:
            break;
        }
        hp_msg_clear(&m);
    }

    /* Any bytes as an error's code and message. */
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t half = strlen(s) / 2;
    char *code = strndup(s, half);
    char *body = hp_error_body(code, s + half);
    FZ_CHECK(body != NULL, "hp_error_body returned NULL");
    json_t *j = json_loads(body, 0, NULL);
    FZ_CHECK(json_is_string(json_object_get(j, "error")) &&
                 json_is_string(json_object_get(j, "message")),
             "error body %s", body);
    json_decref(j);
    free(body);
    free(code);
    free(s);
    return 0;
}
