/*
 * srv_test_util.h - a tiny in-process driver for the server core tests.
 *
 * A fake clock advanced by hand, a log sink that keeps every record, and
 * helpers that feed requests / WebSocket messages and collect what the core
 * pushed into its outbox.  Like a real driver, a pushed close is followed
 * by srv_ws_closed().  Header-only so each test program stays one file.
 */
#ifndef SRV_TEST_UTIL_H
#define SRV_TEST_UTIL_H

#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_log.h"
#include "hp_msg.h"
#include "hp_outbox.h"
#include "hp_policy.h"
#include "srv_core.h"

#define FX_SECRET "test-secret-0123456789"
/* 2026-11-25T10:00:00Z */
#define FX_T0 1795600800000LL
#define FX_MAX_LOGS 8192
#define FX_MAX_ITEMS 8192

typedef struct fx_log {
    int level;
    char msg[64];
    char fields[600];
} fx_log;

typedef struct fx {
    int64_t now;
    hp_rng rng;
    hp_logger logger;
    hp_env env;
    hp_policy pol;
    char dbpath[256];
    int is_file;
    srv_store *st;
    srv_core *c;
    fx_log *logs;
    int nlogs;
    hp_out *items;
    int nitems;
    uint64_t next_req;
    int manual_pull;   /* 1: WANT_WRITABLE items are kept, not answered */
} fx;

static int64_t fx_clock(void *ud)
{
    return ((fx *)ud)->now;
}

static void fx_sink(void *ud, const hp_log_record *r)
{
    fx *f = ud;
    if (f->nlogs >= FX_MAX_LOGS)
        return;
    fx_log *l = &f->logs[f->nlogs++];
    l->level = r->level;
    snprintf(l->msg, sizeof l->msg, "%s", r->msg);
    snprintf(l->fields, sizeof l->fields, "%s", r->fields);
    if (getenv("FX_VERBOSE")) {
        char line[1024];
        hp_log_format(r, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
}

/* Opens the store; the core is built by fx_start() so tests can tweak the
 * policy first.  file=1 uses a fresh temp file (WAL), else ":memory:". */
static inline fx *fx_new_store(int file)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->logs = calloc(FX_MAX_LOGS, sizeof *f->logs);
    f->items = calloc(FX_MAX_ITEMS, sizeof *f->items);
    f->now = FX_T0;
    hp_rng_seed(&f->rng, 42);
    f->logger.sink = fx_sink;
    f->logger.ud = f;
    f->logger.min_level = HP_LOG_DEBUG;
    f->env.now = fx_clock;
    f->env.clock_ud = f;
    f->env.rng = &f->rng;
    f->env.log = &f->logger;
    f->env.actor = "server";
    hp_policy_defaults(&f->pol);
    f->is_file = file;
    if (file) {
        snprintf(f->dbpath, sizeof f->dbpath, "/tmp/srv_test_XXXXXX");
        int fd = mkstemp(f->dbpath);
        assert_true(fd >= 0);
        close(fd);
        unlink(f->dbpath);
    } else {
        snprintf(f->dbpath, sizeof f->dbpath, ":memory:");
    }
    char err[256] = "";
    f->st = srv_store_open(f->dbpath, err, sizeof err);
    if (!f->st)
        fail_msg("store: %s", err);
    f->next_req = 1;
    return f;
}

static inline void fx_start(fx *f)
{
    f->c = srv_new(&f->env, &f->pol, FX_SECRET, f->st);
    assert_non_null(f->c);
}

static inline fx *fx_new(void)
{
    fx *f = fx_new_store(0);
    fx_start(f);
    return f;
}

static inline void fx_reset(fx *f)
{
    for (int i = 0; i < f->nitems; i++)
        hp_out_clear(&f->items[i]);
    f->nitems = 0;
}

/* Moves everything from the outbox into f->items; a close is acted on
 * like a real driver would (srv_ws_closed), and so is a WANT_WRITABLE: the
 * next replay chunk is pulled at once (no socket fills up here) unless
 * manual_pull is set. */
static inline void fx_pump(fx *f)
{
    hp_out o;
    while (hp_outbox_pop(srv_outbox(f->c), &o)) {
        if (o.kind == HP_OUT_WS_WANT_WRITABLE && !f->manual_pull) {
            srv_ws_writable(f->c, o.id);
            hp_out_clear(&o);
            continue;
        }
        assert_true(f->nitems < FX_MAX_ITEMS);
        f->items[f->nitems++] = o;
        if (o.kind == HP_OUT_WS_CLOSE)
            srv_ws_closed(f->c, o.id);
    }
}

/* Restart: a new core over the same store (srv_free + srv_new). */
static inline void fx_restart(fx *f)
{
    fx_pump(f);
    fx_reset(f);
    srv_free(f->c);
    fx_start(f);
}

/* Restart including the store (closes and reopens the file). */
static inline void fx_reopen(fx *f)
{
    assert_true(f->is_file);
    fx_pump(f);
    fx_reset(f);
    srv_free(f->c);
    srv_store_close(f->st);
    char err[256] = "";
    f->st = srv_store_open(f->dbpath, err, sizeof err);
    if (!f->st)
        fail_msg("reopen: %s", err);
    fx_start(f);
}

static inline void fx_free(fx *f)
{
    fx_reset(f);
    srv_free(f->c);
    srv_store_close(f->st);
    if (f->is_file) {
        char p[300];
        unlink(f->dbpath);
        snprintf(p, sizeof p, "%s-wal", f->dbpath);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", f->dbpath);
        unlink(p);
    }
    free(f->logs);
    free(f->items);
    free(f);
}

/* Runs every deadline up to now+ms, in order, then sets the clock. */
static inline void fx_advance(fx *f, int64_t ms)
{
    int64_t end = f->now + ms;
    for (int guard = 0;; guard++) {
        assert_true(guard < 100000);
        int64_t d = srv_next_deadline(f->c);
        if (d > end)
            break;
        if (d > f->now)
            f->now = d;
        srv_tick(f->c);
        fx_pump(f);
    }
    f->now = end;
}

static inline char *fx_token_at(fx *f, const char *user, const char *hh, int64_t ttl_s)
{
    char *t = hp_jwt_mint(FX_SECRET, user, hh, "dev1", f->now / 1000, f->now / 1000 + ttl_s);
    assert_non_null(t);
    return t;
}

typedef struct fx_resp {
    int status;
    int retry_after;
    json_t *body;   /* NULL when no body or not JSON */
    char *raw;
} fx_resp;

static inline void fx_resp_free(fx_resp *r)
{
    json_decref(r->body);
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* One request with full control; asserts exactly one response came. */
static inline fx_resp fx_http_raw(fx *f, const char *method, const char *path, const char *query,
                           const char *auth, const char *idem, const char *body,
                           int64_t content_length)
{
    srv_http_req q;
    memset(&q, 0, sizeof q);
    q.id = f->next_req++;
    q.method = method;
    q.path = path;
    q.query = query;
    q.authorization = auth;
    q.idem_key = idem;
    q.body = body;
    q.body_len = body ? strlen(body) : 0;
    q.content_length = content_length;
    int before = f->nitems;
    srv_http(f->c, &q);
    fx_pump(f);
    fx_resp r;
    memset(&r, 0, sizeof r);
    int found = 0;
    for (int i = before; i < f->nitems; i++) {
        if (f->items[i].kind == HP_OUT_HTTP_RESPONSE) {
            assert_int_equal(f->items[i].id, q.id);
            found++;
            r.status = f->items[i].status;
            r.retry_after = f->items[i].retry_after_s;
            r.raw = f->items[i].body ? strdup(f->items[i].body) : NULL;
            r.body = r.raw ? json_loads(r.raw, JSON_DECODE_ANY, NULL) : NULL;
        }
    }
    assert_int_equal(found, 1);
    /* Every error body is JSON {"error","message"}. */
    if (r.status >= 400) {
        assert_non_null(r.body);
        assert_true(json_is_string(json_object_get(r.body, "error")));
        assert_true(json_is_string(json_object_get(r.body, "message")));
    }
    return r;
}

/* A request as user@hh (a fresh 1 h token). */
static inline fx_resp fx_http(fx *f, const char *user, const char *hh, const char *method,
                       const char *path, const char *query, const char *idem, const char *body)
{
    char *tok = fx_token_at(f, user, hh, 3600);
    char auth[2048];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    free(tok);
    return fx_http_raw(f, method, path, query, auth, idem, body, body ? (int64_t)strlen(body) : -1);
}

/* PUT a task: body {"base_revision": base, "task": task_json}. */
static inline fx_resp fx_put(fx *f, const char *user, const char *hh, const char *id, int64_t base,
                      const char *task_json, const char *idem)
{
    char path[256], body[8192];
    snprintf(path, sizeof path, "/api/v0.2/tasks/%s", id);
    snprintf(body, sizeof body, "{\"base_revision\": %lld, \"task\": %s}", (long long)base,
             task_json);
    return fx_http(f, user, hh, "PUT", path, NULL, idem, body);
}

static inline int fx_put_status(fx *f, const char *user, const char *hh, const char *id, int64_t base,
                         const char *task_json)
{
    fx_resp r = fx_put(f, user, hh, id, base, task_json, NULL);
    int s = r.status;
    fx_resp_free(&r);
    return s;
}

/* Opens a stream connection with a token for user@hh (ttl seconds). */
static inline int fx_ws_open_ttl(fx *f, uint64_t conn, const char *user, const char *hh, int64_t ttl)
{
    char *tok = fx_token_at(f, user, hh, ttl);
    char q[2048];
    snprintf(q, sizeof q, "token=%s", tok);
    free(tok);
    char *body = NULL;
    int rc = srv_ws_open(f->c, conn, HP_STREAM_PATH, q, &body);
    free(body);
    fx_pump(f);
    return rc;
}

static inline int fx_ws_open(fx *f, uint64_t conn, const char *user, const char *hh)
{
    return fx_ws_open_ttl(f, conn, user, hh, 3600);
}

static inline void fx_ws_send(fx *f, uint64_t conn, const char *text)
{
    srv_ws_message(f->c, conn, text, strlen(text));
    fx_pump(f);
}

static inline void fx_hello(fx *f, uint64_t conn, int64_t rev)
{
    char m[64];
    snprintf(m, sizeof m, "{\"type\":\"HELLO\",\"revision\":%lld}", (long long)rev);
    fx_ws_send(f, conn, m);
}

/* Frames sent to conn (in order) since the last fx_reset, parsed. */
static inline json_t *fx_frames(fx *f, uint64_t conn)
{
    json_t *a = json_array();
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == HP_OUT_WS_SEND && f->items[i].id == conn)
            json_array_append_new(a, json_loads(f->items[i].body, 0, NULL));
    return a;
}

/* Frames to conn whose "type" or "event_type" is t. */
static inline int fx_count_type(fx *f, uint64_t conn, const char *t)
{
    json_t *a = fx_frames(f, conn);
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *ty = json_string_value(json_object_get(v, "type"));
        const char *et = json_string_value(json_object_get(v, "event_type"));
        if ((ty && strcmp(ty, t) == 0) || (et && strcmp(et, t) == 0))
            n++;
    }
    json_decref(a);
    return n;
}

/* Close code pushed for conn since the last reset, 0 when none. */
static inline int fx_close_code(fx *f, uint64_t conn)
{
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == HP_OUT_WS_CLOSE && f->items[i].id == conn)
            return f->items[i].code;
    return 0;
}

/* Number of log records at level with msg (and fields containing sub). */
static inline int fx_log_count(fx *f, int level, const char *msg, const char *sub)
{
    int n = 0;
    for (int i = 0; i < f->nlogs; i++) {
        if (level >= 0 && f->logs[i].level != level)
            continue;
        if (msg && strcmp(f->logs[i].msg, msg) != 0)
            continue;
        if (sub && !strstr(f->logs[i].fields, sub))
            continue;
        n++;
    }
    return n;
}

/* no record may hold anything that looks like a token. */
static inline void fx_assert_no_token_logged(fx *f)
{
    for (int i = 0; i < f->nlogs; i++) {
        /* hp_log would redact a token; the core must not even try. */
        if (strstr(f->logs[i].fields, "eyJ") || strstr(f->logs[i].msg, "eyJ") ||
            strstr(f->logs[i].fields, "REDACTED"))
            fail_msg("token in log: %s %s", f->logs[i].msg, f->logs[i].fields);
    }
}

/* A READY connection of user@hh at HELLO 0 (frames reset). */
static inline void fx_ready(fx *f, uint64_t conn, const char *user, const char *hh)
{
    assert_int_equal(fx_ws_open(f, conn, user, hh), 0);
    fx_hello(f, conn, 0);
    assert_int_equal(fx_count_type(f, conn, "READY"), 1);
}

#endif
