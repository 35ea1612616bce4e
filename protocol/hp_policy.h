/*
 * hp_policy.h - the policy knobs with the seed's defaults.
 *
 * Every duration is in milliseconds and already scaled: hp_policy_scale()
 * multiplies them by the --time-scale factor so cores never see the factor.
 */
#ifndef HP_POLICY_H
#define HP_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HP_POLICY_MAX_RETRY 16

/*
 * Ranges of the numbers that come from outside (a peer, a flag, a
 * scenario), docs/LIMITS.md "Numbers from outside".  Each is chosen so that
 * the arithmetic done with it (now + duration, duration x misses) cannot
 * overflow int64 milliseconds, and wide enough for any real use.
 */
#define HP_REVISION_MAX 9007199254740991LL      /* 2^53 - 1: exact in every JSON reader */
#define HP_DURATION_MAX_MS (366LL * 86400000)    /* a policy duration, scaled or not: 366 d */
#define HP_DURATION_MAX_TEXT "366d"
#define HP_HEARTBEAT_MISSES_MAX 100
#define HP_QUEUE_MAX_MAX 100000
#define HP_COUNT_MAX 1000000000                  /* sync_failed_after, event_retain */
#define HP_MAX_FRAME_MAX (16LL * 1024 * 1024)   /* max_frame: 16 MiB */
#define HP_MAX_BODY_MAX (64LL * 1024 * 1024)    /* max_body: 64 MiB */
#define HP_CACHE_CAP_MAX (1024LL * 1024 * 1024 * 1024) /* cache_cap: 1 TiB */
#define HP_TIME_SCALE_MIN 0.001                  /* --time-scale */
#define HP_TIME_SCALE_MAX 1000.0

typedef struct hp_policy {
    int64_t heartbeat_ms;        /* WS-4: 30 s, both directions */
    int heartbeat_misses;        /* WS-5: 2 missed intervals => dead */
    int64_t hello_timeout_ms;    /* WS-2: 10 s to send HELLO, else 4002 */
    int64_t lock_ttl_ms;         /* CF-1: 2 min soft-lock */
    int queue_max;               /* 100 items */
    int64_t retry_ms[HP_POLICY_MAX_RETRY]; /* 1,3,9,27,120 s; last repeats */
    int n_retry;                 /* 5 */
    double retry_jitter;         /* 0 = none; 0.1 = +/-10% */
    int sync_failed_after;       /* 5 consecutive failures */
    int64_t offline_long_ms;     /* N-1: 30 min */
    int64_t cache_window_ms;     /* C-1: 7 days */
    int64_t cache_cap_bytes;     /* C-2: 20 MiB */
    int64_t request_timeout_ms;  /* client: no answer in 10 s => timeout */
    size_t max_frame;            /* 64 KiB, else close 1009 */
    size_t max_body;             /* 1 MiB, else 413 */
    unsigned mergeable;          /* CF-2: HP_F_* mask, default all six */
    int event_retain;            /* server: events kept for replay (WS-2) */
    int64_t idempotency_window_ms; /* server, Q-3: Idempotency-Key records kept 24 h */
    double time_scale;           /* informative: the factor applied */
} hp_policy;

void hp_policy_defaults(hp_policy *p);

/* 0 when f is a usable --time-scale (HP_TIME_SCALE_MIN..MAX), else -1
 * with err giving the range. */
int hp_time_scale_check(double f, char *err, size_t errlen);

/* Multiply every duration by f (> 0); records f in time_scale.  A scaled
 * duration is kept within 1 ms .. HP_DURATION_MAX_MS. */
void hp_policy_scale(hp_policy *p, double f);

/* Delay before retry attempt number `attempt` (1 = first retry): Q-4. The
 * last listed delay repeats.  Jitter is applied by the caller. */
int64_t hp_policy_retry_delay(const hp_policy *p, int attempt);

/*
 * Apply one override from a scenario or a flag.  Keys: heartbeat_interval,
 * heartbeat_misses, hello_timeout, lock_ttl, queue_max, retry_delays (array
 * of durations), retry_jitter, sync_failed_after, offline_long,
 * cache_window, cache_cap (bytes or "20MiB"), request_timeout, max_frame,
 * max_body, mergeable_fields (array of field names), event_retain,
 * idempotency_window.
 * Durations are strings ("30s") or integers (ms).  Returns 0, or -1 with err
 * naming the key and what was expected.
 */
int hp_policy_set(hp_policy *p, const char *key, const json_t *val, char *err, size_t errlen);

/* Apply a JSON object of overrides given as text (the programs' --policy
 * flag, e.g. {"queue_max": 3, "lock_ttl": "10s"}): every key through
 * hp_policy_set().  All or nothing: on any error p is unchanged and err
 * names the key.  0 or -1. */
int hp_policy_apply_json(hp_policy *p, const char *text, char *err, size_t errlen);

/* NULL-terminated list of the keys hp_policy_set() knows (for validation
 * suggestions and the JSON schema). */
extern const char *const hp_policy_keys[];

/* The policy as a JSON object (for reports). New reference. */
json_t *hp_policy_to_json(const hp_policy *p);

#endif
