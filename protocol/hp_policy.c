/*
 * hp_policy.c - policy defaults, scaling, overrides, report form.
 */
#define _GNU_SOURCE
#include "hp_policy.h"
#include "hp_task.h"
#include "hp_time.h"
#include "hp_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hp_policy_defaults(hp_policy *p)
{
    memset(p, 0, sizeof *p);
    p->heartbeat_ms = 30000;         /* WS-4 */
    p->heartbeat_misses = 2;         /* WS-5 */
    p->hello_timeout_ms = 10000;     /* WS-2 */
    p->lock_ttl_ms = 120000;         /* CF-1 */
    p->queue_max = 100;              /* */
    static const int64_t retry[] = {1000, 3000, 9000, 27000, 120000}; /* */
    p->n_retry = (int)(sizeof retry / sizeof retry[0]);
    for (int i = 0; i < p->n_retry; i++)
        p->retry_ms[i] = retry[i];
    p->retry_jitter = 0.0;           /* */
    p->sync_failed_after = 5;        /* */
    p->offline_long_ms = 30LL * 60 * 1000;        /* N-1 */
    p->cache_window_ms = 7LL * 24 * 3600 * 1000;  /* C-1 */
    p->cache_cap_bytes = 20LL * 1024 * 1024;      /* C-2 */
    p->request_timeout_ms = 10000;
    p->max_frame = 64 * 1024;
    p->max_body = 1024 * 1024;
    p->mergeable = HP_F_ALL;         /* CF-2 */
    p->event_retain = 10000;
    p->idempotency_window_ms = 24LL * 3600 * 1000; /* Q-3, the IETF draft's usual day */
    p->time_scale = 1.0;
}

int hp_time_scale_check(double f, char *err, size_t errlen)
{
    if (f >= HP_TIME_SCALE_MIN && f <= HP_TIME_SCALE_MAX) /* NaN fails both */
        return 0;
    return hp_errf(err, errlen, "time scale %g out of range: expected a number from %g to %g", f,
                   HP_TIME_SCALE_MIN, HP_TIME_SCALE_MAX);
}

/* Scales one duration, rounding to the nearest ms and never below 1 ms
 * (a 0 ms heartbeat or timeout would spin the event loop), never above
 * HP_DURATION_MAX_MS (issue 11: deadlines now + d must not overflow). */
static int64_t scale_ms(int64_t ms, double f)
{
    double v = (double)ms * f;
    if (v >= (double)HP_DURATION_MAX_MS)
        return HP_DURATION_MAX_MS;
    int64_t r = (int64_t)(v + 0.5); /* v >= 0: round half up, no libm */
    return r < 1 ? 1 : r;
}

/* Multiplies every duration; time_scale accumulates the product, so a
 * policy scaled twice reports the overall factor.  f <= 0, NaN and
 * absurdly large factors (>= 1e12) are ignored. */
void hp_policy_scale(hp_policy *p, double f)
{
    if (!p || !(f > 0) || !(f < 1e12))
        return;
    p->heartbeat_ms = scale_ms(p->heartbeat_ms, f);
    p->hello_timeout_ms = scale_ms(p->hello_timeout_ms, f);
    p->lock_ttl_ms = scale_ms(p->lock_ttl_ms, f);
    for (int i = 0; i < p->n_retry && i < HP_POLICY_MAX_RETRY; i++)
        p->retry_ms[i] = scale_ms(p->retry_ms[i], f);
    p->offline_long_ms = scale_ms(p->offline_long_ms, f);
    p->cache_window_ms = scale_ms(p->cache_window_ms, f);
    p->idempotency_window_ms = scale_ms(p->idempotency_window_ms, f);
    p->request_timeout_ms = scale_ms(p->request_timeout_ms, f);
    p->time_scale *= f;
}

/* attempt 1 waits retry_ms[0]; past the list the last delay repeats.
 * attempt < 1 is treated as 1; an empty list means no wait. */
int64_t hp_policy_retry_delay(const hp_policy *p, int attempt)
{
    if (!p || p->n_retry <= 0)
        return 0;
    int n = p->n_retry > HP_POLICY_MAX_RETRY ? HP_POLICY_MAX_RETRY : p->n_retry;
    int i = attempt < 1 ? 0 : attempt - 1;
    if (i >= n)
        i = n - 1;
    return p->retry_ms[i];
}

const char *const hp_policy_keys[] = {
    "heartbeat_interval", "heartbeat_misses", "hello_timeout",  "lock_ttl",
    "queue_max",          "retry_delays",     "retry_jitter",   "sync_failed_after",
    "offline_long",       "cache_window",     "cache_cap",      "request_timeout",
    "max_frame",          "max_body",         "mergeable_fields", "event_retain",
    "idempotency_window", NULL,
};

/* A duration: a string for hp_duration_parse() or an integer of ms, in
 * min .. HP_DURATION_MAX_MS. */
static int get_duration(const json_t *v, int64_t min, int64_t *out)
{
    int64_t ms;
    if (json_is_integer(v))
        ms = json_integer_value(v);
    else if (json_is_string(v) && hp_duration_parse(json_string_value(v), &ms) == 0)
        ;
    else
        return -1;
    if (ms < min || ms > HP_DURATION_MAX_MS)
        return -1;
    *out = ms;
    return 0;
}

/*
 * A size in bytes: a non-negative integer, or a string "<n>", "<n>B",
 * "<n>KiB", "<n>MiB", "<n>GiB" (binary units; decimal "KB"/"MB" are
 * refused as ambiguous).
 */
static int get_size(const json_t *v, int64_t min, int64_t *out)
{
    int64_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (*s < '0' || *s > '9')
            return -1;
        n = 0;
        while (*s >= '0' && *s <= '9') {
            int dg = *s++ - '0';
            if (n > (INT64_MAX - dg) / 10)
                return -1;
            n = n * 10 + dg;
        }
        int64_t unit;
        if (strcmp(s, "") == 0 || strcmp(s, "B") == 0)
            unit = 1;
        else if (strcmp(s, "KiB") == 0)
            unit = 1024;
        else if (strcmp(s, "MiB") == 0)
            unit = 1024 * 1024;
        else if (strcmp(s, "GiB") == 0)
            unit = 1024LL * 1024 * 1024;
        else
            return -1;
        if (n > INT64_MAX / unit)
            return -1;
        n *= unit;
    } else {
        return -1;
    }
    if (n < min)
        return -1;
    *out = n;
    return 0;
}

static int get_int(const json_t *v, int64_t min, int64_t max, int64_t *out)
{
    if (!json_is_integer(v))
        return -1;
    int64_t n = json_integer_value(v);
    if (n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

#define DUR_EXPECT "a duration (\"30s\", \"1m30s\" or integer milliseconds)"
#define DUR_RANGE "from 1ms to " HP_DURATION_MAX_TEXT

/*
 * One override.  The policy is changed only on success.  Ranges (issue 11,
 * docs/LIMITS.md): durations 1 ms .. 366 d (retry delays from 0);
 * heartbeat_misses 1..100, queue_max 1..100000, other counts up to 1e9
 * (event_retain from 0); jitter in [0, 1); max_frame up to 16 MiB,
 * max_body up to 64 MiB, cache_cap up to 1 TiB.  Every refusal names the
 * key and the range.
 */
int hp_policy_set(hp_policy *p, const char *key, const json_t *val, char *err, size_t errlen)
{
    int64_t n;
    if (!p || !key)
        return hp_errf(err, errlen, "policy key missing");
    if (!val)
        return hp_errf(err, errlen, "%s: value missing", key);

    struct {
        const char *key;
        int64_t *field;
    } durations[] = {
        {"heartbeat_interval", &p->heartbeat_ms}, {"hello_timeout", &p->hello_timeout_ms},
        {"lock_ttl", &p->lock_ttl_ms},             {"offline_long", &p->offline_long_ms},
        {"cache_window", &p->cache_window_ms},     {"request_timeout", &p->request_timeout_ms},
        {"idempotency_window", &p->idempotency_window_ms},
    };
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        if (strcmp(key, durations[i].key) == 0) {
            if (get_duration(val, 1, &n) != 0)
                return hp_errf(err, errlen, "%s: expected %s %s", key, DUR_EXPECT, DUR_RANGE);
            *durations[i].field = n;
            return 0;
        }
    }

    struct {
        const char *key;
        int *field;
        int64_t min, max;
    } ints[] = {
        {"heartbeat_misses", &p->heartbeat_misses, 1, HP_HEARTBEAT_MISSES_MAX},
        {"queue_max", &p->queue_max, 1, HP_QUEUE_MAX_MAX},
        {"sync_failed_after", &p->sync_failed_after, 1, HP_COUNT_MAX},
        {"event_retain", &p->event_retain, 0, HP_COUNT_MAX},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(key, ints[i].key) == 0) {
            if (get_int(val, ints[i].min, ints[i].max, &n) != 0)
                return hp_errf(err, errlen, "%s: expected an integer from %lld to %lld", key,
                               (long long)ints[i].min, (long long)ints[i].max);
            *ints[i].field = (int)n;
            return 0;
        }
    }

    if (strcmp(key, "retry_delays") == 0) {
        /* the schedule; the last entry repeats. */
        size_t cnt = json_is_array(val) ? json_array_size(val) : 0;
        if (!json_is_array(val) || cnt < 1 || cnt > HP_POLICY_MAX_RETRY)
            return hp_errf(err, errlen, "retry_delays: expected an array of 1 to %d durations",
                        HP_POLICY_MAX_RETRY);
        int64_t tmp[HP_POLICY_MAX_RETRY];
        for (size_t i = 0; i < cnt; i++) {
            if (get_duration(json_array_get(val, i), 0, &tmp[i]) != 0)
                return hp_errf(err, errlen, "retry_delays[%zu]: expected %s from 0 to %s", i,
                               DUR_EXPECT, HP_DURATION_MAX_TEXT);
        }
        memcpy(p->retry_ms, tmp, cnt * sizeof tmp[0]);
        p->n_retry = (int)cnt;
        return 0;
    }
    if (strcmp(key, "retry_jitter") == 0) {
        /* 0.1 means +/-10%. */
        if (!json_is_number(val) || json_number_value(val) < 0 || json_number_value(val) >= 1)
            return hp_errf(err, errlen, "retry_jitter: expected a number in [0, 1)");
        p->retry_jitter = json_number_value(val);
        return 0;
    }
    if (strcmp(key, "cache_cap") == 0) {
        /* C-2 */
        if (get_size(val, 1, &n) != 0 || n > HP_CACHE_CAP_MAX)
            return hp_errf(err, errlen,
                           "cache_cap: expected a size (integer bytes or \"20MiB\") from 1 "
                           "byte to 1TiB");
        p->cache_cap_bytes = n;
        return 0;
    }
    if (strcmp(key, "max_frame") == 0 || strcmp(key, "max_body") == 0) {
        int frame = key[4] == 'f';
        if (get_size(val, 1, &n) != 0 || n > (frame ? HP_MAX_FRAME_MAX : HP_MAX_BODY_MAX))
            return hp_errf(err, errlen,
                           "%s: expected a size (integer bytes or \"64KiB\") from 1 byte to %s",
                           key, frame ? "16MiB" : "64MiB");
        if (frame)
            p->max_frame = (size_t)n;
        else
            p->max_body = (size_t)n;
        return 0;
    }
    if (strcmp(key, "mergeable_fields") == 0) {
        /* CF-2: which fields the automatic merge may take. */
        if (!json_is_array(val))
            return hp_errf(err, errlen, "mergeable_fields: expected an array of field names");
        unsigned mask = 0;
        for (size_t i = 0; i < json_array_size(val); i++) {
            const json_t *e = json_array_get(val, i);
            unsigned f = json_is_string(e) ? hp_field_by_name(json_string_value(e)) : 0;
            if (!f)
                return hp_errf(err, errlen,
                            "mergeable_fields[%zu]: expected one of title, notes, done, "
                            "assignee, due_at, remind_at",
                            i);
            mask |= f;
        }
        p->mergeable = mask;
        return 0;
    }
    return hp_errf(err, errlen, "unknown policy key \"%s\"", key);
}

json_t *hp_policy_to_json(const hp_policy *p)
{
    json_t *retry = json_array();
    for (int i = 0; i < p->n_retry && i < HP_POLICY_MAX_RETRY; i++)
        json_array_append_new(retry, json_integer(p->retry_ms[i]));
    json_t *fields = json_array();
    for (int i = 0; i < HP_F_COUNT; i++)
        if (p->mergeable & (1u << i))
            json_array_append_new(fields, json_string(hp_field_name(i)));
    return json_pack("{s:I, s:i, s:I, s:I, s:i, s:o, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:o, s:i, s:I, s:f}",
                     "heartbeat_interval", (json_int_t)p->heartbeat_ms, "heartbeat_misses",
                     p->heartbeat_misses, "hello_timeout", (json_int_t)p->hello_timeout_ms,
                     "lock_ttl", (json_int_t)p->lock_ttl_ms, "queue_max", p->queue_max,
                     "retry_delays", retry, "retry_jitter", p->retry_jitter, "sync_failed_after",
                     p->sync_failed_after, "offline_long", (json_int_t)p->offline_long_ms,
                     "cache_window", (json_int_t)p->cache_window_ms, "cache_cap",
                     (json_int_t)p->cache_cap_bytes, "request_timeout",
                     (json_int_t)p->request_timeout_ms, "max_frame", (json_int_t)p->max_frame,
                     "max_body", (json_int_t)p->max_body, "mergeable_fields", fields,
                     "event_retain", p->event_retain, "idempotency_window",
                     (json_int_t)p->idempotency_window_ms, "time_scale", p->time_scale);
}

int hp_policy_apply_json(hp_policy *p, const char *text, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = text ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!o)
        return hp_errf(err, errlen, "not JSON: %s", text ? je.text : "no text");
    if (!json_is_object(o)) {
        json_decref(o);
        return hp_errf(err, errlen, "expected a JSON object of policy keys");
    }
    hp_policy tmp = *p;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int known = 0;
        for (const char *const *q = hp_policy_keys; *q && !known; q++)
            known = !strcmp(*q, k);
        if (!known) {
            hp_errf(err, errlen, "unknown policy key \"%s\"", k);
            json_decref(o);
            return -1;
        }
        if (hp_policy_set(&tmp, k, v, err, errlen) != 0) {
            json_decref(o);
            return -1;
        }
    }
    json_decref(o);
    *p = tmp;
    return 0;
}
