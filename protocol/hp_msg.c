/*
 * hp_msg.c - WebSocket message codec and the one JSON error body maker.
 *
 * Builders emit compact JSON with sorted keys, so two runs with the same
 * seed produce byte-identical frames and traces.
 */
#define _GNU_SOURCE
#include "hp_msg.h"
#include "hp_jdump.h"
#include "hp_jload.h"
#include "hp_policy.h"
#include "hp_task.h"
#include "hp_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads an optional revision: 0 when absent (out untouched) or valid,
 * -1 when present with another type or outside 0..HP_REVISION_MAX. */
static int opt_nonneg(const json_t *root, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(root, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > HP_REVISION_MAX)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

/*
 * Known "type"s: HELLO (revision required, non-negative integer), READY
 * and RESYNC_REQUIRED (revision optional but typed; READY's
 * heartbeat_interval_ms optional, positive), HEARTBEAT (locks optional,
 * array of strings).  An object without "type" but with "event_type" is
 * an event (event_type string, entity_id string when present, revision
 * non-negative when present, payload any).  An object with an unknown
 * "type" string, or with neither key, is HP_MSG_UNKNOWN and returns 0;
 * the caller decides (the server closes 4002, clients ignore).
 */
/* The two heartbeats our peers send most, exactly as hp_msg_heartbeat()
 * writes them: a server's and a client's holding no lock.  Each is more
 * than half of all frames; recognising its bytes gives the message the
 * full parse would give, without the general parser. */
static const char hb_plain[] = "{\"type\":\"HEARTBEAT\"}";
static const char hb_nolocks[] = "{\"locks\":[],\"type\":\"HEARTBEAT\"}";

/* The two trees, made once per process and shared by reference: a
 * heartbeat needs no tree of its own (one object, its key, a string and
 * an array, then their frees, ~1,000 instructions per frame, were a
 * fifth of all parsing).  jansson's reference counts are atomic, so
 * threads may share them; hp_msg.h says the trees are read-only.  The
 * static references keep them alive (reachable, not leaked) to the end. */
static json_t *hb_tree[2], *hb_locks[2];
static pthread_once_t hb_once = PTHREAD_ONCE_INIT;

static void hb_make(void)
{
    for (int i = 0; i < 2; i++) {
        json_t *root = json_object();
        json_t *locks = i ? json_array() : NULL;
        /* The nocheck setters and known lengths: literals, UTF-8. */
        if (!root || (i && !locks) ||
            json_object_setn_new_nocheck(root, "type", 4, json_stringn_nocheck("HEARTBEAT", 9)) !=
                0 ||
            (locks && json_object_setn_new_nocheck(root, "locks", 5, locks) != 0)) {
            json_decref(root);
            root = NULL; /* out of memory: the full parse decides */
        }
        hb_tree[i] = root;
        hb_locks[i] = root ? locks : NULL;
    }
}

static int heartbeat_fast(const char *data, size_t len, hp_msg *out)
{
    int plain = len == sizeof hb_plain - 1 && !memcmp(data, hb_plain, len);
    int nolocks = !plain && len == sizeof hb_nolocks - 1 && !memcmp(data, hb_nolocks, len);
    if (!plain && !nolocks)
        return -1;
    pthread_once(&hb_once, hb_make);
    json_t *root = hb_tree[nolocks];
    if (!root)
        return -1;
    out->root = json_incref(root);
    out->type = HP_MSG_HEARTBEAT;
    out->locks = hb_locks[nolocks];
    return 0;
}

int hp_msg_parse(const char *data, size_t len, hp_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->revision = -1;
    if (!data)
        return hp_errf(err, errlen, "no data");
    if (heartbeat_fast(data, len, out) == 0)
        return 0;
    json_error_t je;
    json_t *root = hp_json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return hp_errf(err, errlen, "invalid JSON: %s", je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return hp_errf(err, errlen, "message must be a JSON object");
    }
    out->root = root;
    const json_t *type = json_object_get(root, "type");
    const json_t *etype = json_object_get(root, "event_type");
    if (type) {
        if (!json_is_string(type)) {
            hp_msg_clear(out);
            return hp_errf(err, errlen, "type must be a string");
        }
        const char *t = json_string_value(type);
        if (strcmp(t, "HELLO") == 0) {
            const json_t *rev = json_object_get(root, "revision");
            /* Issue 11: every number from a peer has a range. */
            if (!json_is_integer(rev) || json_integer_value(rev) < 0 ||
                json_integer_value(rev) > HP_REVISION_MAX) {
                hp_msg_clear(out);
                return hp_errf(err, errlen, "HELLO needs revision, an integer from 0 to %lld",
                               HP_REVISION_MAX);
            }
            out->type = HP_MSG_HELLO;
            out->revision = json_integer_value(rev);
        } else if (strcmp(t, "READY") == 0 || strcmp(t, "RESYNC_REQUIRED") == 0) {
            int ready = strcmp(t, "READY") == 0;
            /* t dies with root: name the type from a literal for the error. */
            const char *tname = ready ? "READY" : "RESYNC_REQUIRED";
            out->type = ready ? HP_MSG_READY : HP_MSG_RESYNC;
            if (opt_nonneg(root, "revision", &out->revision) != 0) {
                hp_msg_clear(out);
                return hp_errf(err, errlen, "%s: revision must be an integer from 0 to %lld",
                               tname, HP_REVISION_MAX);
            }
            if (ready) {
                const json_t *hb = json_object_get(root, "heartbeat_interval_ms");
                /* Issue 11: an unbounded interval overflowed the
                 * client's now + interval (UBSan abort; the release build
                 * stopped heartbeating). */
                if (hb && (!json_is_integer(hb) || json_integer_value(hb) <= 0 ||
                           json_integer_value(hb) > HP_DURATION_MAX_MS)) {
                    hp_msg_clear(out);
                    return hp_errf(err, errlen,
                                   "READY: heartbeat_interval_ms must be an integer from 1 to "
                                   "%lld (366 days)",
                                   HP_DURATION_MAX_MS);
                }
                out->heartbeat_ms = hb ? json_integer_value(hb) : 0;
            }
        } else if (strcmp(t, "HEARTBEAT") == 0) {
            json_t *locks = json_object_get(root, "locks");
            if (locks) {
                if (!json_is_array(locks)) {
                    hp_msg_clear(out);
                    return hp_errf(err, errlen, "HEARTBEAT: locks must be an array of strings");
                }
                for (size_t i = 0; i < json_array_size(locks); i++) {
                    if (!json_is_string(json_array_get(locks, i))) {
                        hp_msg_clear(out);
                        return hp_errf(err, errlen, "HEARTBEAT: locks[%zu] must be a string", i);
                    }
                }
            }
            out->type = HP_MSG_HEARTBEAT;
            out->locks = locks;
        } else {
            out->type = HP_MSG_UNKNOWN;
        }
        return 0;
    }
    if (etype) {
        if (!json_is_string(etype)) {
            hp_msg_clear(out);
            return hp_errf(err, errlen, "event_type must be a string");
        }
        const json_t *eid = json_object_get(root, "entity_id");
        if (eid && !json_is_string(eid)) {
            hp_msg_clear(out);
            return hp_errf(err, errlen, "event: entity_id must be a string");
        }
        int64_t rev = -1;
        if (opt_nonneg(root, "revision", &rev) != 0) {
            hp_msg_clear(out);
            return hp_errf(err, errlen, "event: revision must be an integer from 0 to %lld",
                           HP_REVISION_MAX);
        }
        out->type = HP_MSG_EVENT;
        out->event_type = json_string_value(etype);
        out->entity_id = eid ? json_string_value(eid) : NULL;
        out->revision = rev;
        out->payload = json_object_get(root, "payload");
        return 0;
    }
    out->type = HP_MSG_UNKNOWN;
    return 0;
}

void hp_msg_clear(hp_msg *m)
{
    if (!m)
        return;
    json_decref(m->root);
    memset(m, 0, sizeof *m);
    m->revision = -1;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF), 0 when there is none; n = bytes left. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/*
 * A JSON string for s that always exists.  Text cut inside a character
 * (a message truncated by snprintf) loses only the partial character
 * (issue 11: driver `error` lines lost their whole message); any other
 * byte that is not valid UTF-8 becomes '?', so a builder never returns
 * NULL because of a bad message or id.
 */
json_t *hp_json_text(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s), o = 0;
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(u + i, n - i);
        if (l) {
            memcpy(copy + o, s + i, l);
            o += l;
            i += l;
            continue;
        }
        /* A lead byte whose sequence runs off the end: a cut, drop it. */
        size_t want = u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC2 ? 2 : 0;
        int cut = want && n - i < want;
        for (size_t k = i + 1; cut && k < n; k++)
            if (u[k] < 0x80 || u[k] > 0xBF)
                cut = 0;
        if (cut)
            break;
        copy[o++] = '?';
        i++;
    }
    copy[o] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

/* The JSON string hp_json_text(s) makes (NULL as "", bytes that are not
 * UTF-8 repaired), written without making it when s is valid already. */
static void put_text(hp_jw *w, const char *s)
{
    if (!s)
        s = "";
    if (hp_jw_str(w, s, strlen(s)) != 1)
        return;
    json_t *j = hp_json_text(s);
    hp_jw_value(w, j); /* NULL (out of memory) fails the text */
    json_decref(j);
}

/*
 * The builders write what hp_json_dump() of the message's object writes
 * (compact, keys in sorted order, hence the order of the pieces below)
 * without building the object: frames are most of what the cores write.
 * tests/protocol/test_hp_jdump.c compares each with the dump of the object.
 * RAW writes a string literal as it is.
 */
#define RAW(w, lit) hp_jw_raw((w), (lit), sizeof(lit) - 1)

static char *type_revision(const char *type_tail, int64_t revision)
{
    hp_jw w;
    hp_jw_init(&w);
    RAW(&w, "{\"revision\":");
    hp_jw_int(&w, (json_int_t)revision);
    hp_jw_raw(&w, type_tail, strlen(type_tail));
    return hp_jw_take(&w, NULL);
}

char *hp_msg_hello(int64_t revision)
{
    return type_revision(",\"type\":\"HELLO\"}", revision);
}

char *hp_msg_ready(int64_t revision, int64_t heartbeat_ms)
{
    hp_jw w;
    hp_jw_init(&w);
    RAW(&w, "{\"heartbeat_interval_ms\":");
    hp_jw_int(&w, (json_int_t)heartbeat_ms);
    RAW(&w, ",\"revision\":");
    hp_jw_int(&w, (json_int_t)revision);
    RAW(&w, ",\"type\":\"READY\"}");
    return hp_jw_take(&w, NULL);
}

char *hp_msg_resync(int64_t revision)
{
    return type_revision(",\"type\":\"RESYNC_REQUIRED\"}", revision);
}

char *hp_msg_heartbeat(const json_t *locks)
{
    if (!locks)
        return strdup(hb_plain);
    return hp_jdump_wrap("{\"locks\":", locks, ",\"type\":\"HEARTBEAT\"}", NULL);
}

/* payload is written as it is.  (The object this replaces held a
 * json_deep_copy() of it, which in jansson 2.14 cuts keys at a NUL; no
 * payload has such a key: every tree the server holds was parsed, and the
 * parser refuses them.) */
char *hp_msg_event(const char *event_type, const char *entity_id, int64_t revision,
                   const json_t *payload)
{
    hp_jw w;
    hp_jw_init(&w);
    RAW(&w, "{\"entity_id\":");
    put_text(&w, entity_id);
    RAW(&w, ",\"event_type\":");
    put_text(&w, event_type);
    RAW(&w, ",\"payload\":");
    if (payload)
        hp_jw_value(&w, payload);
    else
        RAW(&w, "null");
    RAW(&w, ",\"revision\":");
    hp_jw_int(&w, (json_int_t)revision);
    RAW(&w, "}");
    return hp_jw_take(&w, NULL);
}

char *hp_error_body(const char *code, const char *message)
{
    hp_jw w;
    hp_jw_init(&w);
    RAW(&w, "{\"error\":");
    put_text(&w, code ? code : "error");
    RAW(&w, ",\"message\":");
    put_text(&w, message);
    RAW(&w, "}");
    return hp_jw_take(&w, NULL);
}

const char *hp_error_code_for_status(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 411: return "length_required";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 422: return "idempotency_key_reused"; /* the only 422 */
    case 423: return "locked";
    case 429: return "too_many_requests";
    case 431: return "header_too_large";
    default: break;
    }
    if (status >= 500 && status <= 599)
        return "internal";
    return "error";
}
