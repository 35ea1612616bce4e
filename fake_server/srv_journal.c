/*
 * srv_journal.c - a session's journal and verification (srv_journal.h).
 *
 * A ring of JSON entries.  Tokens never get in: the Authorization header
 * is not recorded, the query string and every body go through
 * hp_log_redact(), the same redaction the log lines get.
 */
#define _GNU_SOURCE
#include "srv_journal.h"
#include "hp_jload.h"
#include "hp_log.h"
#include "hp_msg.h"
#include "srv_core.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srv_journal {
    json_t **ring;            /* SRV_JOURNAL_MAX slots */
    size_t head, len;
    uint64_t next_seq;
    uint64_t dropped;
    /* The last frame's bytes and what was derived from them (its type,
     * event, revision, redacted body): a broadcast journals the same bytes
     * once per listener, and parsing and redacting them 1,000 times was
     * most of the server's CPU in a fan-out (bench/README.md). */
    char *memo_raw;
    size_t memo_len;
    json_t *memo_meta;
};

srv_journal *srv_journal_new(void)
{
    srv_journal *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->ring = calloc(SRV_JOURNAL_MAX, sizeof *j->ring);
    if (!j->ring) {
        free(j);
        return NULL;
    }
    j->next_seq = 1;
    return j;
}

void srv_journal_clear(srv_journal *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->len; i++)
        json_decref(j->ring[(j->head + i) % SRV_JOURNAL_MAX]);
    j->head = j->len = 0;
    j->dropped = 0;
    /* seq keeps growing: a reader's "since" stays meaningful */
}

void srv_journal_free(srv_journal *j)
{
    if (!j)
        return;
    srv_journal_clear(j);
    free(j->memo_raw);
    json_decref(j->memo_meta);
    free(j->ring);
    free(j);
}

size_t srv_journal_count(const srv_journal *j)
{
    return j ? j->len : 0;
}

uint64_t srv_journal_reserve(srv_journal *j)
{
    return j ? j->next_seq++ : 0;
}

static uint64_t seq_of(const json_t *e)
{
    return (uint64_t)json_integer_value(json_object_get(e, "seq"));
}

/* Append e with seq (0: the next one).  A reserved, older seq is put in
 * its place: the few entries recorded meanwhile move one slot on. */
static void add_seq(srv_journal *j, json_t *e, int64_t t, uint64_t seq)
{
    if (!j || !e) {
        json_decref(e);
        return;
    }
    json_object_set_new(e, "seq", json_integer((json_int_t)(seq ? seq : j->next_seq++)));
    json_object_set_new(e, "t", json_integer(t));
    if (j->len == SRV_JOURNAL_MAX) {
        json_decref(j->ring[j->head]);
        j->head = (j->head + 1) % SRV_JOURNAL_MAX;
        j->len--;
        j->dropped++;
    }
    size_t at = j->len;
    while (seq && at > 0 && seq_of(j->ring[(j->head + at - 1) % SRV_JOURNAL_MAX]) > seq) {
        j->ring[(j->head + at) % SRV_JOURNAL_MAX] = j->ring[(j->head + at - 1) % SRV_JOURNAL_MAX];
        at--;
    }
    j->ring[(j->head + at) % SRV_JOURNAL_MAX] = e;
    j->len++;
}

static void add(srv_journal *j, json_t *e, int64_t t)
{
    add_seq(j, e, t, 0);
}

static void set_who(json_t *e, const srv_jwho *w)
{
    if (!w)
        return;
    if (w->hh && *w->hh)
        json_object_set_new(e, "household", json_string(w->hh));
    if (w->user && *w->user)
        json_object_set_new(e, "user", json_string(w->user));
    if (w->dev && *w->dev)
        json_object_set_new(e, "device", json_string(w->dev));
}

/* A redacted, bounded copy of a body as a JSON string (NUL bytes and
 * invalid UTF-8 become '?': jansson only takes valid UTF-8). */
static void set_body(json_t *e, const char *key, const char *b, size_t len)
{
    if (!b || !len)
        return;
    int trunc = len > SRV_JOURNAL_BODY_MAX;
    size_t n = trunc ? SRV_JOURNAL_BODY_MAX : len;
    char *raw = malloc(n + 1), *red = malloc(n + 32);
    if (!raw || !red) {
        free(raw);
        free(red);
        return;
    }
    for (size_t i = 0; i < n; i++)
        raw[i] = b[i] ? b[i] : '?';
    raw[n] = '\0';
    hp_log_redact(raw, red, n + 32);
    json_t *s = json_string(red);
    if (!s) {
        for (char *p = red; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        s = json_string(red);
    }
    json_object_set_new(e, key, s);
    if (trunc) {
        char k2[40];
        snprintf(k2, sizeof k2, "%s_truncated", key);
        json_object_set_new(e, k2, json_true());
    }
    free(raw);
    free(red);
}

void srv_journal_http(srv_journal *j, int64_t t, const char *method, const char *path,
                      const char *query, json_t *headers, const char *body, size_t body_len,
                      int status, const char *resp, size_t resp_len, int64_t hold_ms,
                      const srv_jwho *who, uint64_t seq)
{
    if (!j) {
        json_decref(headers);
        return;
    }
    json_t *e = json_pack("{s:s, s:s, s:s, s:i}", "kind", "http", "method", method ? method : "",
                          "path", path ? path : "", "status", status);
    if (!e) {
        json_decref(headers);
        return;
    }
    if (query && *query)
        set_body(e, "query", query, strlen(query));
    if (headers)
        json_object_set_new(e, "headers", headers);
    set_body(e, "body", body, body_len);
    set_body(e, "response", resp, resp_len);
    if (hold_ms > 0)
        json_object_set_new(e, "held_ms", json_integer(hold_ms));
    set_who(e, who);
    add_seq(j, e, t, seq);
}

/* The fields a frame's bytes give an entry (shared, never modified). */
static json_t *frame_meta(const char *data, size_t len)
{
    json_t *meta = json_object();
    if (!meta)
        return NULL;
    json_t *m = data && len <= SRV_JOURNAL_BODY_MAX ? hp_json_loadb(data, len, 0, NULL) : NULL;
    if (json_is_object(m)) {
        json_t *x = json_object_get(m, "type");
        if (json_is_string(x))
            json_object_set(meta, "type", x);
        if ((x = json_object_get(m, "event_type")) && json_is_string(x))
            json_object_set(meta, "event_type", x);
        if ((x = json_object_get(m, "entity_id")) && json_is_string(x))
            json_object_set(meta, "entity_id", x);
        if ((x = json_object_get(m, "revision")) && json_is_integer(x))
            json_object_set(meta, "revision", x);
    }
    json_decref(m);
    set_body(meta, "body", data, len);
    return meta;
}

void srv_journal_frame(srv_journal *j, int64_t t, const char *dir, uint64_t conn,
                       const char *data, size_t len, const srv_jwho *who)
{
    if (!j)
        return;
    json_t *e = json_pack("{s:s, s:I}", "kind", dir, "conn", (json_int_t)conn);
    if (!e)
        return;
    if (!(j->memo_meta && data && len == j->memo_len && !memcmp(data, j->memo_raw, len))) {
        json_t *meta = frame_meta(data, len);
        char *raw = data && len ? malloc(len) : NULL;
        free(j->memo_raw);
        json_decref(j->memo_meta);
        j->memo_raw = NULL;
        j->memo_len = 0;
        j->memo_meta = NULL;
        if (meta && raw) {
            memcpy(raw, data, len);
            j->memo_raw = raw;
            j->memo_len = len;
            j->memo_meta = meta;
        } else {
            free(raw);
            json_object_update(e, meta);
            json_decref(meta);
            meta = NULL;
        }
    }
    if (j->memo_meta && data && len == j->memo_len)
        json_object_update(e, j->memo_meta); /* shared values, same key order */
    set_who(e, who);
    add(j, e, t);
}

void srv_journal_conn(srv_journal *j, int64_t t, const char *kind, uint64_t conn, int code,
                      const char *reason, const srv_jwho *who)
{
    if (!j)
        return;
    json_t *e = json_pack("{s:s, s:I, s:i}", "kind", kind, "conn", (json_int_t)conn,
                          !strcmp(kind, "ws_refused") ? "status" : "code", code);
    if (!e)
        return;
    if (reason && *reason)
        set_body(e, "reason", reason, strlen(reason));
    set_who(e, who);
    add(j, e, t);
}

void srv_journal_log(srv_journal *j, int64_t t, const char *level, const char *msg,
                     const char *fields)
{
    if (!j)
        return;
    json_t *e = json_pack("{s:s, s:s, s:s}", "kind", "log", "level", level, "message", msg);
    if (!e)
        return;
    set_body(e, "fields", fields, fields ? strlen(fields) : 0);
    add(j, e, t);
}

static json_t *entry_at(const srv_journal *j, size_t i)
{
    return j->ring[(j->head + i) % SRV_JOURNAL_MAX];
}

json_t *srv_journal_query(srv_journal *j, uint64_t since, const char *device, const char *kind,
                          size_t limit)
{
    json_t *arr = json_array();
    uint64_t next = since;
    for (size_t i = 0; j && i < j->len && json_array_size(arr) < limit; i++) {
        json_t *e = entry_at(j, i);
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
        if (seq <= since)
            continue;
        next = seq;
        if (device && strcmp(device, json_string_value(json_object_get(e, "device")) ?: "") != 0)
            continue;
        if (kind) {
            const char *k = json_string_value(json_object_get(e, "kind"));
            /* "ws" selects every WebSocket kind */
            if (strcmp(kind, k) != 0 && !(!strcmp(kind, "ws") && !strncmp(k, "ws_", 3)))
                continue;
        }
        json_array_append(arr, e);
    }
    return json_pack("{s:o, s:I, s:I}", "entries", arr, "next", (json_int_t)next, "dropped",
                     (json_int_t)(j ? j->dropped : 0));
}

/* ---- verify ------------------------------------------------------------- */

/* Pattern keys an entry may not have: checked rather than compared. */
static int match(const json_t *pat, const json_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pat, k, v) {
        if (!strcmp(k, "body_contains")) {
            const char *b = json_string_value(json_object_get(e, "body"));
            const char *r = json_string_value(json_object_get(e, "response"));
            const char *want = json_string_value(v);
            if (!want || (!(b && strstr(b, want)) && !(r && strstr(r, want))))
                return 0;
            continue;
        }
        json_t *a = json_object_get(e, k);
        if (!a)
            return 0;
        if (json_is_string(v) && json_is_string(a)) {
            if (fnmatch(json_string_value(v), json_string_value(a), 0) != 0)
                return 0;
        } else if (!json_equal(v, a)) {
            return 0;
        }
    }
    return 1;
}

static const char *const PATTERN_KEYS[] = {
    "kind",  "method", "path",       "status",    "household", "user",          "device",
    "conn",  "type",   "event_type", "entity_id", "revision",  "body_contains", "code",
    "level", "message"};

static int check_pattern(const json_t *p, char *err, size_t errlen)
{
    if (!json_is_object(p) || json_object_size(p) == 0) {
        snprintf(err, errlen, "a pattern is a non-empty JSON object, e.g. {\"kind\": \"http\", "
                              "\"method\": \"PUT\", \"status\": 409}");
        return -1;
    }
    const char *k;
    json_t *v;
    size_t n = sizeof PATTERN_KEYS / sizeof *PATTERN_KEYS;
    json_object_foreach((json_t *)p, k, v) {
        size_t i = 0;
        while (i < n && strcmp(PATTERN_KEYS[i], k))
            i++;
        if (i == n) {
            /* same did-you-mean as the fault bodies */
            const char *dym = srv_did_you_mean(k, PATTERN_KEYS, n);
            snprintf(err, errlen, "pattern: unknown key \"%.60s\"%s%s%s", k,
                     dym ? " (did you mean \"" : "", dym ? dym : "", dym ? "\"?)" : "");
            return -1;
        }
        if (!json_is_string(v) && !json_is_integer(v)) {
            snprintf(err, errlen, "pattern: \"%s\" must be a string or an integer", k);
            return -1;
        }
    }
    return 0;
}

static int get_count(const json_t *body, const char *k, json_int_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(body, k);
    *out = -1;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > SRV_JOURNAL_MAX) {
        snprintf(err, errlen, "\"%s\" must be an integer 0..%d", k, SRV_JOURNAL_MAX);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int srv_journal_verify(srv_journal *j, const json_t *body, json_t **result, char *err,
                       size_t errlen)
{
    *result = NULL;
    static const char *const KEYS[] = {"pattern", "count", "at_least", "at_most", "sequence",
                                       "session"};
    const char *k;
    json_t *v;
    if (!json_is_object(body)) {
        snprintf(err, errlen, "expected {\"pattern\": {...}, \"count\": n} or {\"sequence\": "
                              "[{...}, ...]}");
        return -1;
    }
    json_object_foreach((json_t *)body, k, v) {
        size_t i = 0;
        while (i < 6 && strcmp(KEYS[i], k))
            i++;
        if (i == 6) {
            const char *dym = srv_did_you_mean(k, KEYS, 6);
            snprintf(err, errlen, "unknown key \"%.60s\"%s%s%s; keys: pattern, count, at_least, "
                                  "at_most, sequence", k, dym ? " (did you mean \"" : "",
                     dym ? dym : "", dym ? "\"?)" : "");
            return -1;
        }
    }
    json_t *pat = json_object_get(body, "pattern");
    json_t *seqv = json_object_get(body, "sequence");
    if (!!pat == !!seqv) {
        snprintf(err, errlen, "give exactly one of \"pattern\" and \"sequence\"");
        return -1;
    }
    json_t *seqs = json_array();
    if (pat) {
        json_int_t cnt, lo, hi;
        if (check_pattern(pat, err, errlen) || get_count(body, "count", &cnt, err, errlen) ||
            get_count(body, "at_least", &lo, err, errlen) ||
            get_count(body, "at_most", &hi, err, errlen)) {
            json_decref(seqs);
            return -1;
        }
        for (size_t i = 0; j && i < j->len; i++)
            if (match(pat, entry_at(j, i)))
                json_array_append(seqs, json_object_get(entry_at(j, i), "seq"));
        json_int_t n = (json_int_t)json_array_size(seqs);
        int ok = cnt >= 0 ? n == cnt : (lo < 0 && hi < 0) ? n >= 1 : 1;
        if (lo >= 0 && n < lo)
            ok = 0;
        if (hi >= 0 && n > hi)
            ok = 0;
        *result = json_pack("{s:b, s:I, s:o}", "ok", ok, "matched", n, "seqs", seqs);
        return 0;
    }
    if (!json_is_array(seqv) || json_array_size(seqv) == 0 || json_array_size(seqv) > 100) {
        json_decref(seqs);
        snprintf(err, errlen, "\"sequence\" must be an array of 1-100 patterns");
        return -1;
    }
    if (json_object_get(body, "count") || json_object_get(body, "at_least") ||
        json_object_get(body, "at_most")) {
        json_decref(seqs);
        snprintf(err, errlen, "\"count\", \"at_least\" and \"at_most\" go with \"pattern\"");
        return -1;
    }
    size_t pi;
    json_array_foreach(seqv, pi, v) {
        if (check_pattern(v, err, errlen)) {
            json_decref(seqs);
            return -1;
        }
    }
    /* Greedy: each pattern at the first entry after the previous match. */
    size_t at = 0, matched = 0;
    json_array_foreach(seqv, pi, v) {
        int found = 0;
        for (; j && at < j->len; at++) {
            if (match(v, entry_at(j, at))) {
                json_array_append(seqs, json_object_get(entry_at(j, at), "seq"));
                at++;
                found = 1;
                break;
            }
        }
        if (!found)
            break;
        matched++;
    }
    *result = json_pack("{s:b, s:I, s:o}", "ok", matched == json_array_size(seqv), "matched",
                        (json_int_t)matched, "seqs", seqs);
    return 0;
}
