/*
 * cli_fx.h - test fixture for the client core: a fake clock, a seeded PRNG,
 * a log capture, the outbox drained into an array, and helpers that play
 * the server's part (answer requests, open the stream, send messages).
 */
#ifndef CLI_FX_H
#define CLI_FX_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "cli_core.h"
#include "cli_store.h"
#include "hp_msg.h"
#include "hp_task.h"

/* {"alg":"HS256"}.{"sub":"alice"}.sig - the client never verifies it. */
#define TOK_ALICE "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
#define TOK_ALICE2 "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnMg"

#define FX_MAX_OUT 8192
#define FX_MAX_LOG 4096

typedef struct fx {
    int64_t t;
    hp_rng rng;
    hp_logger lg;
    hp_env env;
    hp_policy pol;
    uint8_t key[32];
    char path[256];
    cli_store *st;
    cli_core *c;
    hp_out out[FX_MAX_OUT];
    int64_t out_t[FX_MAX_OUT];
    int used[FX_MAX_OUT];
    int nout;
    int loglevel[FX_MAX_LOG];
    char logs[FX_MAX_LOG][320];
    int nlog;
} fx;

static __attribute__((unused)) int64_t fx_clock(void *ud)
{
    return ((fx *)ud)->t;
}

static __attribute__((unused)) void fx_sink(void *ud, const hp_log_record *r)
{
    fx *f = ud;
    if (f->nlog >= FX_MAX_LOG)
        return;
    f->loglevel[f->nlog] = r->level;
    snprintf(f->logs[f->nlog], sizeof f->logs[0], "%s %s", r->msg, r->fields);
    f->nlog++;
}

static __attribute__((unused)) void fx_drain(fx *f)
{
    hp_out o;
    while (hp_outbox_pop(cli_outbox(f->c), &o)) {
        if (f->nout < FX_MAX_OUT) {
            f->out_t[f->nout] = f->t;
            f->out[f->nout++] = o;
        } else {
            hp_out_clear(&o);
        }
    }
}

/* A fixture's clock, PRNG (seed 42), log, policy (pol, or the defaults)
 * and key (32 x keybyte), with no store and no core. */
static __attribute__((unused)) fx *fx_env_new(const hp_policy *pol, uint8_t keybyte)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->t = 1800000000000LL;
    hp_rng_seed(&f->rng, 42);
    f->lg.sink = fx_sink;
    f->lg.ud = f;
    f->lg.min_level = HP_LOG_DEBUG;
    f->env.now = fx_clock;
    f->env.clock_ud = f;
    f->env.rng = &f->rng;
    f->env.log = &f->lg;
    f->env.actor = "alice";
    if (pol)
        f->pol = *pol;
    else
        hp_policy_defaults(&f->pol);
    memset(f->key, keybyte, 32);
    return f;
}

/* A new fixture; path NULL = ":memory:". Not started. */
static __attribute__((unused)) fx *fx_new_at(const char *path, const hp_policy *pol, uint8_t keybyte)
{
    fx *f = fx_env_new(pol, keybyte);
    snprintf(f->path, sizeof f->path, "%s", path ? path : ":memory:");
    char err[200];
    f->st = cli_store_open(f->path, f->key, &f->env, NULL, err, sizeof err);
    assert_non_null(f->st);
    f->c = cli_new(&f->env, &f->pol, f->st, TOK_ALICE);
    assert_non_null(f->c);
    return f;
}

static __attribute__((unused)) fx *fx_new(void)
{
    return fx_new_at(NULL, NULL, 7);
}

static __attribute__((unused)) void fx_free_outs(fx *f)
{
    for (int i = 0; i < f->nout; i++)
        hp_out_clear(&f->out[i]);
    f->nout = 0;
}

/* Free core and store (a "restart" re-opens with fx_reopen). */
static __attribute__((unused)) void fx_free(fx *f)
{
    if (!f)
        return;
    cli_free(f->c);
    cli_store_close(f->st);
    fx_free_outs(f);
    free(f);
}

static __attribute__((unused)) void fx_tick(fx *f)
{
    cli_tick(f->c);
    fx_drain(f);
}

/* Run the clock to T, ticking at every deadline on the way. */
static __attribute__((unused)) void fx_advance_to(fx *f, int64_t T)
{
    for (int guard = 0; guard < 100000; guard++) {
        int64_t d = cli_next_deadline(f->c);
        if (d == INT64_MAX || d > T)
            break;
        if (d > f->t)
            f->t = d;
        fx_tick(f);
    }
    if (T > f->t)
        f->t = T;
    fx_tick(f);
}

static __attribute__((unused)) void fx_advance(fx *f, int64_t ms)
{
    fx_advance_to(f, f->t + ms);
}

/* The oldest not yet handled output of a kind (HTTP requests: optional
 * method filter); marks it handled. */
static __attribute__((unused)) hp_out *fx_take(fx *f, hp_out_kind kind, const char *method)
{
    for (int i = 0; i < f->nout; i++) {
        if (f->used[i] || f->out[i].kind != kind)
            continue;
        if (method && (!f->out[i].method || strcmp(f->out[i].method, method) != 0))
            continue;
        f->used[i] = 1;
        return &f->out[i];
    }
    return NULL;
}

static __attribute__((unused)) int fx_index(fx *f, const hp_out *o)
{
    return (int)(o - f->out);
}

static __attribute__((unused)) int fx_pending(fx *f, hp_out_kind kind)
{
    int n = 0;
    for (int i = 0; i < f->nout; i++)
        if (!f->used[i] && f->out[i].kind == kind)
            n++;
    return n;
}

static __attribute__((unused)) int fx_count_notify(fx *f, const char *type)
{
    int n = 0;
    for (int i = 0; i < f->nout; i++)
        if (f->out[i].kind == HP_OUT_NOTIFY &&
            strcmp(json_string_value(json_object_get(f->out[i].info, "type")), type) == 0)
            n++;
    return n;
}

static __attribute__((unused)) json_t *fx_last_notify(fx *f, const char *type)
{
    for (int i = f->nout - 1; i >= 0; i--)
        if (f->out[i].kind == HP_OUT_NOTIFY &&
            strcmp(json_string_value(json_object_get(f->out[i].info, "type")), type) == 0)
            return f->out[i].info;
    return NULL;
}

static __attribute__((unused)) int fx_count_observe(fx *f, const char *kind, const char *key, const char *val)
{
    int n = 0;
    for (int i = 0; i < f->nout; i++) {
        if (f->out[i].kind != HP_OUT_OBSERVE)
            continue;
        json_t *in = f->out[i].info;
        if (strcmp(json_string_value(json_object_get(in, "kind")), kind) != 0)
            continue;
        if (key && (!json_is_string(json_object_get(in, key)) ||
                    strcmp(json_string_value(json_object_get(in, key)), val) != 0))
            continue;
        n++;
    }
    return n;
}

static __attribute__((unused)) int fx_count_log(fx *f, int level, const char *needle)
{
    int n = 0;
    for (int i = 0; i < f->nlog; i++)
        if (f->loglevel[i] == level && strstr(f->logs[i], needle))
            n++;
    return n;
}

static __attribute__((unused)) void fx_respond(fx *f, hp_out *req, int status, int retry_after, const char *body)
{
    cli_http_response(f->c, req->id, status, retry_after, body, body ? strlen(body) : 0);
    fx_drain(f);
}

static __attribute__((unused)) void fx_fail(fx *f, hp_out *req)
{
    cli_http_failed(f->c, req->id, "network");
    fx_drain(f);
}

/* A full server task as JSON text (malloc'd). */
static __attribute__((unused)) char *fx_task(const char *id, const char *title, const char *notes, int64_t rev, int deleted)
{
    json_t *t = hp_task_new(id);
    json_object_set_new(t, "title", json_string(title));
    json_object_set_new(t, "notes", json_string(notes));
    json_object_set_new(t, "revision", json_integer(rev));
    json_object_set_new(t, "updated_by", json_string("bob"));
    json_object_set_new(t, "deleted", json_boolean(deleted));
    char *s = hp_json_dump(t);
    json_decref(t);
    return s;
}

/* A task as the server sends it (fx_task), parsed; new reference. */
static __attribute__((unused)) json_t *fx_task_json(const char *id, const char *title, int64_t rev)
{
    char *s = fx_task(id, title, "", rev, 0);
    json_error_t je;
    json_t *t = json_loads(s, 0, &je);
    free(s);
    return t;
}

static __attribute__((unused)) void fx_edit(fx *f, const char *id, const char *field, const char *value)
{
    json_t *o = json_object();
    json_object_set_new(o, field, json_string(value));
    char err[200];
    assert_int_equal(cli_edit(f->c, id, o, err, sizeof err), 0);
    json_decref(o);
    fx_drain(f);
}

static __attribute__((unused)) int fx_edit_rc(fx *f, const char *id, const char *title)
{
    json_t *o = json_pack("{s:s}", "title", title);
    char err[200];
    int rc = cli_edit(f->c, id, o, err, sizeof err);
    json_decref(o);
    fx_drain(f);
    return rc;
}

/* The current WS connection id: last WS_CONNECT. */
static __attribute__((unused)) uint64_t fx_conn(fx *f)
{
    for (int i = f->nout - 1; i >= 0; i--)
        if (f->out[i].kind == HP_OUT_WS_CONNECT)
            return f->out[i].id;
    return 0;
}

static __attribute__((unused)) void fx_ws_msg(fx *f, const char *text)
{
    cli_ws_message(f->c, fx_conn(f), text, strlen(text));
    fx_drain(f);
}

/* Open the pending connection and answer HELLO with READY rev. */
static __attribute__((unused)) void fx_ws_ready(fx *f, int64_t rev)
{
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    char *r = hp_msg_ready(rev, f->pol.heartbeat_ms);
    fx_ws_msg(f, r);
    free(r);
}

static __attribute__((unused)) void fx_event(fx *f, const char *id, const char *title, int64_t rev)
{
    char *t = fx_task(id, title, "", rev, 0);
    json_error_t je;
    json_t *p = json_loads(t, 0, &je);
    char *m = hp_msg_event("TASK_UPDATED", id, rev, p);
    fx_ws_msg(f, m);
    free(m);
    free(t);
    json_decref(p);
}

/* Body of a request as JSON (new ref). */
static __attribute__((unused)) json_t *fx_body(const hp_out *r)
{
    json_error_t je;
    return r->body ? json_loads(r->body, 0, &je) : NULL;
}

static __attribute__((unused)) const char *fx_title_in(json_t *body)
{
    return json_string_value(json_object_get(json_object_get(body, "task"), "title"));
}

/* Last WS_SEND text, or NULL. */
static __attribute__((unused)) const char *fx_last_sent(fx *f)
{
    for (int i = f->nout - 1; i >= 0; i--)
        if (f->out[i].kind == HP_OUT_WS_SEND)
            return f->out[i].body;
    return NULL;
}

#endif
