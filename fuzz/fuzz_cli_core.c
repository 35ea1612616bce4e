/*
 * fuzz_cli_core.c - the client core (cli_core.h) fed what a hostile or
 * buggy server can send: frames, HTTP answers, refused upgrades, closes;
 * mixed with user actions and clock ticks.
 *
 * Input: records (fz_util.h), one call each:
 *   @open                  the pending connect succeeds (cli_ws_opened)
 *   @refuse STATUS         the pending connect is refused (cli_ws_refused)
 *   @ws                    body = one text frame from the server
 *   @closed CODE           the server closed the stream (cli_ws_closed)
 *   @http STATUS [ra=N]    body = the answer to the oldest request in flight
 *   @fail                  the oldest request in flight gets no answer
 *   @tick MS               advance the clock (0..7 days), ticking deadlines
 *   @edit ID               body = the fields (a JSON object)
 *   @delete ID | @lock ID | @unlock ID | @choose ID CHOICE
 *   @offline | @online | @sync | @token A|B|X|<raw> | @restart | @status
 *
 * The driver behaves as the adapter (cli_lws*.c) does: every request and
 * connection hears back at most once, aborted requests never, a close the
 * client asked for is reported closed.  Oracles: requests have a method
 * and a path; frames the client sends are JSON objects; notifications and
 * observables are objects with a "type" / "kind"; the status is an object;
 * a cached task has the id it is cached under.
 * UBSan catches the overflows (READY's heartbeat_interval_ms, issue 11).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_core.h"
#include "cli_store.h"
#include "fz_util.h"
#include "hp_outbox.h"
#include "hp_policy.h"

#define FZ_MAX_OPS 200
#define FZ_MAX_REQS 256

typedef struct world {
    fz_env e;
    hp_policy pol;
    cli_store *st;
    cli_core *c;
    uint64_t connect_id;   /* a connect asked for, not yet answered (0: none) */
    uint64_t open_id;      /* the open stream (0: none) */
    uint64_t reqs[FZ_MAX_REQS];
    int nreq;
} world;

static void drop_req(world *w, int i)
{
    memmove(w->reqs + i, w->reqs + i + 1, (size_t)(w->nreq - i - 1) * sizeof w->reqs[0]);
    w->nreq--;
}

static void drain(world *w)
{
    for (int round = 0; round < 64; round++) {
        uint64_t closed = 0;
        int closed_code = 0;
        hp_out o;
        while (hp_outbox_pop(cli_outbox(w->c), &o)) {
            switch (o.kind) {
            case HP_OUT_HTTP_REQUEST:
                FZ_CHECK(o.method && o.path && o.path[0] == '/', "request without method/path");
                if (w->nreq < FZ_MAX_REQS)
                    w->reqs[w->nreq++] = o.id;
                else
                    cli_http_failed(w->c, o.id, "network"); /* too many in flight */
                break;
            case HP_OUT_HTTP_ABORT:
                for (int i = 0; i < w->nreq; i++)
                    if (w->reqs[i] == o.id) {
                        drop_req(w, i);
                        break;
                    }
                break;
            case HP_OUT_WS_CONNECT:
                FZ_CHECK(o.path != NULL, "connect without a path");
                w->connect_id = o.id;
                break;
            case HP_OUT_WS_SEND: {
                json_t *m = o.body ? json_loadb(o.body, o.body_len, 0, NULL) : NULL;
                FZ_CHECK(json_is_object(m), "client frame is not a JSON object: %.200s",
                         o.body ? o.body : "(null)");
                json_decref(m);
                break;
            }
            case HP_OUT_WS_CLOSE:
                if (o.id == w->open_id || o.id == w->connect_id) {
                    closed = o.id;
                    closed_code = o.code;
                }
                break;
            case HP_OUT_NOTIFY:
                FZ_CHECK(json_is_string(json_object_get(o.info, "type")), "notify without type");
                break;
            case HP_OUT_OBSERVE:
                FZ_CHECK(json_is_object(o.info), "observe without info");
                break;
            default:
                break;
            }
            hp_out_clear(&o);
        }
        if (!closed)
            return;
        /* The adapter reports the close it carried out. */
        if (closed == w->open_id)
            w->open_id = 0;
        if (closed == w->connect_id)
            w->connect_id = 0;
        cli_ws_closed(w->c, closed, closed_code);
    }
}

static void tick_to(world *w, int64_t until)
{
    for (int guard = 0; guard < 10000; guard++) {
        int64_t d = cli_next_deadline(w->c);
        if (d == INT64_MAX || d > until)
            break;
        if (d > w->e.now)
            w->e.now = d;
        cli_tick(w->c);
        drain(w);
    }
    if (until > w->e.now)
        w->e.now = until;
    cli_tick(w->c);
    drain(w);
}

static char *token_arg(const fz_rec *r)
{
    char a[512];
    fz_word(r, 0, a, sizeof a);
    if (strlen(a) == 1 && strchr("ABCX", a[0])) {
        char ph[3] = {'$', a[0], 0};
        return fz_subst(ph, 2, NULL);
    }
    return fz_subst(a, strlen(a), NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_tokens_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return -1;
    world w;
    memset(&w, 0, sizeof w);
    fz_env_init(&w.e, "alice");
    hp_policy_defaults(&w.pol);
    uint8_t key[32];
    memset(key, 7, sizeof key);
    char err[256];
    w.st = cli_store_open(":memory:", key, &w.e.env, NULL, err, sizeof err);
    FZ_CHECK(w.st != NULL, "store: %s", err);
    w.c = cli_new(&w.e.env, &w.pol, w.st, fz_tokens[0]);
    FZ_CHECK(w.c != NULL, "cli_new");
    cli_start(w.c);
    drain(&w);

    size_t pos = 0;
    fz_rec r;
    char id[128], a2[64];
    for (int ops = 0; ops < FZ_MAX_OPS && fz_next(data, size, &pos, &r); ops++) {
        if (fz_is(&r, "open")) {
            if (w.connect_id) {
                w.open_id = w.connect_id;
                w.connect_id = 0;
                cli_ws_opened(w.c, w.open_id);
            }
        } else if (fz_is(&r, "refuse")) {
            if (w.connect_id) {
                uint64_t k = w.connect_id;
                w.connect_id = 0;
                cli_ws_refused(w.c, k, (int)(fz_num(&r, 0, 401) % 1000));
            }
        } else if (fz_is(&r, "ws")) {
            if (w.open_id) {
                size_t n = 0;
                char *m = fz_subst(r.body, r.body_len, &n);
                /* The adapter hands at most max_frame + 1 bytes. */
                cli_ws_message(w.c, w.open_id, m, n > w.pol.max_frame + 1 ? w.pol.max_frame + 1 : n);
                free(m);
            }
        } else if (fz_is(&r, "closed")) {
            uint64_t k = w.open_id ? w.open_id : w.connect_id;
            if (k) {
                w.open_id = w.connect_id = 0;
                cli_ws_closed(w.c, k, (int)(fz_num(&r, 0, 1006) % 5000));
            }
        } else if (fz_is(&r, "http")) {
            if (w.nreq) {
                uint64_t k = w.reqs[0];
                drop_req(&w, 0);
                char ra[32];
                const char *ras = fz_opt(&r, "ra", ra, sizeof ra);
                size_t n = 0;
                char *b = fz_subst(r.body, r.body_len, &n);
                cli_http_response(w.c, k, (int)(fz_num(&r, 0, 200) % 1000),
                                  ras ? (int)(strtol(ras, NULL, 10) % 100000) : -1, b, n);
                free(b);
            }
        } else if (fz_is(&r, "fail")) {
            if (w.nreq) {
                uint64_t k = w.reqs[0];
                drop_req(&w, 0);
                cli_http_failed(w.c, k, "network");
            }
        } else if (fz_is(&r, "tick")) {
            long long ms = fz_num(&r, 0, 1000);
            if (ms < 0 || ms > 7LL * 86400 * 1000)
                ms = 1000;
            tick_to(&w, w.e.now + ms);
        } else if (fz_is(&r, "edit")) {
            json_t *f = json_loadb(r.body, r.body_len, 0, NULL);
            if (json_is_object(f))
                cli_edit(w.c, fz_word(&r, 0, id, sizeof id), f, err, sizeof err);
            json_decref(f);
        } else if (fz_is(&r, "delete")) {
            cli_delete(w.c, fz_word(&r, 0, id, sizeof id), err, sizeof err);
        } else if (fz_is(&r, "lock")) {
            cli_lock(w.c, fz_word(&r, 0, id, sizeof id), err, sizeof err);
        } else if (fz_is(&r, "unlock")) {
            cli_unlock(w.c, fz_word(&r, 0, id, sizeof id), err, sizeof err);
        } else if (fz_is(&r, "choose")) {
            cli_choose(w.c, fz_word(&r, 0, id, sizeof id), fz_word(&r, 1, a2, sizeof a2), err,
                       sizeof err);
        } else if (fz_is(&r, "offline") || fz_is(&r, "online")) {
            cli_set_online(w.c, fz_is(&r, "online"));
        } else if (fz_is(&r, "sync")) {
            cli_sync_now(w.c);
        } else if (fz_is(&r, "token")) {
            char *t = token_arg(&r);
            cli_set_token(w.c, t);
            free(t);
        } else if (fz_is(&r, "restart")) {
            cli_free(w.c);
            w.connect_id = w.open_id = 0;
            w.nreq = 0;
            w.c = cli_new(&w.e.env, &w.pol, w.st, fz_tokens[0]);
            FZ_CHECK(w.c != NULL, "cli_new after restart");
            cli_start(w.c);
        } else if (fz_is(&r, "status")) {
            json_t *s = cli_status(w.c);
            FZ_CHECK(json_is_object(s), "cli_status");
            json_decref(s);
            /* A cached task is the task of that id (issue 11: a 2xx naming
             * another task was cached under the id asked for). */
            json_t *t = cli_cached(w.c, fz_word(&r, 0, id, sizeof id));
            const char *tid = json_string_value(json_object_get(t, "id"));
            if (tid)
                FZ_CHECK(strcmp(tid, id) == 0, "task %s cached under id %s", tid, id);
            json_decref(t);
        }
        drain(&w);
    }
    cli_free(w.c);
    cli_store_close(w.st);
    return 0;
}
