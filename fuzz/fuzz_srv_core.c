/*
 * fuzz_srv_core.c - the server core (srv_core.h) fed HTTP requests,
 * WebSocket upgrades, frames, closes, clock ticks, restarts and faults.
 *
 * Input: records (fz_util.h), one call each:
 *   @http METHOD PATH[?QUERY] [auth=A|B|C|X|none|<raw>] [idem=KEY] [cl=N]
 *         body = request body (auth A..X = "Bearer " + that token; default A)
 *   @open CONN PATH[?QUERY]      srv_ws_open (use token=$A in the query)
 *   @ws CONN                     body = one text message
 *   @close CONN                  srv_ws_closed
 *   @tick MS                     advance the clock (0..7 days), ticking every
 *                                deadline on the way
 *   @restart                     a new core over the same store
 *   @shutdown                    srv_shutdown
 *   @fault drop USER N | fail METHOD PREFIX N STATUS RA | conflict ID
 *   @limits REPLAY_MAX CHUNK CONNS_USER CONNS_TOTAL LOCKS HB_LOCKS
 *                                srv_set_limits (0 = default; small values
 *                                reach the bounds with small inputs)
 * The driver answers HP_OUT_WS_WANT_WRITABLE at once with srv_ws_writable
 * (as the simulator does: no socket buffers).
 *
 * Oracles (abort = a finding): every request gets exactly one response
 * with a status in 100..599 and, when it has a body, a JSON object with
 * "error" for every status >= 400; every frame the server sends is a JSON
 * object; a 2xx answer to a write on /tasks/{id} is about task {id}, and
 * to a DELETE a tombstone (the Idempotency-Key binding, issue 11); one
 * HEARTBEAT makes at most (distinct ids read + 1) frames per open
 * connection (issue 11: 3,000 ids made 3,000 LOCK_REFRESHED to each); no
 * single call pushes more than a replay chunk plus one frame (the
 * replay is streamed, issue 11); a refused upgrade names a 4xx status and
 * a JSON body.  Sanitizers catch the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fz_util.h"
#include "hp_msg.h"
#include "hp_outbox.h"
#include "hp_policy.h"
#include "srv_core.h"

#define FZ_MAX_OPS 200
#define FZ_CONNS 16

typedef struct world {
    fz_env e;
    hp_policy pol;
    srv_store *st;
    srv_core *c;
    uint64_t next_req;
    /* the request awaiting its answer */
    uint64_t want_id;
    int want_count;
    const char *want_method;
    char want_task[80];          /* {id} of /api/v0.2/tasks/{id}, "" otherwise */
    /* Connections as the adapter sees them: ids 1..FZ_CONNS, open or not.
     * The adapter never reports a message or a close on a connection it
     * does not have, nor opens one twice: neither does this driver. */
    unsigned char open[FZ_CONNS + 1];
    unsigned char closing[FZ_CONNS + 1];
    unsigned char writable[FZ_CONNS + 1];
    srv_limits lim;
    size_t frames, bytes;        /* WS_SEND items and bytes since the last count reset */
    size_t maxf;                 /* the largest of those frames */
} world;

#define CONN_OK(k) ((k) >= 1 && (k) <= FZ_CONNS)

/* Drain the outbox, checking what the core asked for. */
static void drain_items(world *w)
{
    hp_out o;
    while (hp_outbox_pop(srv_outbox(w->c), &o)) {
        switch (o.kind) {
        case HP_OUT_HTTP_RESPONSE: {
            FZ_CHECK(o.id == w->want_id, "response to request %llu, expected %llu",
                     (unsigned long long)o.id, (unsigned long long)w->want_id);
            w->want_count++;
            FZ_CHECK(o.status >= 100 && o.status <= 599, "status %d", o.status);
            json_t *b = NULL;
            if (o.body && o.body_len) {
                b = json_loadb(o.body, o.body_len, 0, NULL);
                FZ_CHECK(b != NULL, "response body is not JSON: %.200s", o.body);
            }
            if (o.status >= 400 && b)
                FZ_CHECK(json_is_string(json_object_get(b, "error")),
                         "error answer %d without \"error\": %.200s", o.status, o.body);
            /* Idempotency-Key bound to its request: a successful PUT/DELETE of
             * task X answers with task X, never another task's stored result. */
            if (b && w->want_task[0] && o.status >= 200 && o.status < 300 &&
                (strcmp(w->want_method, "PUT") == 0 || strcmp(w->want_method, "DELETE") == 0)) {
                const char *id = json_string_value(json_object_get(b, "id"));
                if (id)
                    FZ_CHECK(strcmp(id, w->want_task) == 0,
                             "%s of task %s answered %d with task %s", w->want_method,
                             w->want_task, o.status, id);
                /* ... and a successful DELETE answers with the tombstone,
                 * never a PUT's stored result under the same key. */
                if (id && strcmp(w->want_method, "DELETE") == 0)
                    FZ_CHECK(json_is_true(json_object_get(b, "deleted")),
                             "DELETE of task %s answered %d without deleted: true", id,
                             o.status);
            }
            json_decref(b);
            break;
        }
        case HP_OUT_WS_WANT_WRITABLE:
            if (CONN_OK(o.id))
                w->writable[o.id] = 1;
            break;
        case HP_OUT_WS_SEND: {
            w->frames++;
            w->bytes += o.body_len;
            if (o.body_len > w->maxf)
                w->maxf = o.body_len;
            json_t *m = o.body ? json_loadb(o.body, o.body_len, 0, NULL) : NULL;
            FZ_CHECK(json_is_object(m), "server frame is not a JSON object: %.200s",
                     o.body ? o.body : "(null)");
            json_decref(m);
            break;
        }
        case HP_OUT_WS_CLOSE:
            FZ_CHECK(o.code >= 1000 && o.code <= 4999, "close code %d", o.code);
            /* The adapter closes the socket and then reports it closed. */
            if (CONN_OK(o.id))
                w->closing[o.id] = 1;
            break;
        default:
            break;
        }
        hp_out_clear(&o);
    }
}

/* drain_items, then what the adapter does next: pulls for WANT_WRITABLE,
 * closed reports for the closes carried out. */
static void drain(world *w)
{
    drain_items(w);
    for (int k = 1; k <= FZ_CONNS; k++) {
        if (w->writable[k]) {
            w->writable[k] = 0;
            if (w->open[k]) {
                /* One pull pushes at most a chunk plus the frame crossing
                 * it (and READY). */
                w->frames = w->bytes = w->maxf = 0;
                srv_ws_writable(w->c, (uint64_t)k);
                drain_items(w);
                FZ_CHECK(w->bytes - w->maxf <= w->lim.replay_chunk_bytes + 4096,
                         "one pull pushed %zu bytes (chunk %zu)", w->bytes,
                         w->lim.replay_chunk_bytes);
                drain(w);
            }
        }
        if (w->closing[k]) {
            w->closing[k] = 0;
            if (w->open[k]) {
                w->open[k] = 0;
                srv_ws_closed(w->c, (uint64_t)k);
                drain(w);
            }
        }
    }
}

static void tick_to(world *w, int64_t until)
{
    for (int guard = 0; guard < 10000; guard++) {
        int64_t d = srv_next_deadline(w->c);
        if (d == INT64_MAX || d > until)
            break;
        if (d > w->e.now)
            w->e.now = d;
        srv_tick(w->c);
        drain(w);
    }
    if (until > w->e.now)
        w->e.now = until;
    srv_tick(w->c);
    drain(w);
}

static void do_http(world *w, const fz_rec *r)
{
    char method[32], target[2048], opt[512];
    fz_word(r, 0, method, sizeof method);
    fz_word(r, 1, target, sizeof target);
    char *full = fz_subst(target, strlen(target), NULL);
    char *q = strchr(full, '?');
    if (q)
        *q++ = '\0';
    char *auth = NULL;
    const char *a = fz_opt(r, "auth", opt, sizeof opt);
    if (!a || (strlen(a) == 1 && strchr("ABCX", a[0]))) {
        char ph[3] = {'$', a ? a[0] : 'A', 0};
        char *tok = fz_subst(ph, 2, NULL);
        size_t n = strlen(tok) + 8;
        auth = malloc(n);
        snprintf(auth, n, "Bearer %s", tok);
        free(tok);
    } else if (strcmp(a, "none") != 0) {
        auth = fz_subst(a, strlen(a), NULL);
    }
    char idem[256];
    const char *k = fz_opt(r, "idem", idem, sizeof idem);
    char clbuf[32];
    const char *cl = fz_opt(r, "cl", clbuf, sizeof clbuf);
    size_t blen = 0;
    char *body = fz_subst(r->body, r->body_len, &blen);

    srv_http_req req = {0};
    req.id = ++w->next_req;
    req.method = method;
    req.path = full;
    req.query = q;
    req.authorization = auth;
    req.idem_key = k;
    req.body = body;
    req.body_len = blen;
    req.content_length = cl ? strtoll(cl, NULL, 10) : (int64_t)blen;
    /* The adapter never hands more than max_body (srv_core.h). */
    if (req.body_len > w->pol.max_body)
        req.body_len = w->pol.max_body;

    w->want_id = req.id;
    w->want_count = 0;
    w->want_method = method;
    w->want_task[0] = '\0';
    const char *pre = HP_API_PREFIX "/";
    if (strncmp(full, pre, strlen(pre)) == 0) {
        const char *id = full + strlen(pre);
        if (!strchr(id, '/') && strlen(id) < sizeof w->want_task)
            snprintf(w->want_task, sizeof w->want_task, "%s", id);
    }
    srv_http(w->c, &req);
    drain(w);
    FZ_CHECK(w->want_count == 1, "%d responses to one request", w->want_count);
    free(full);
    free(auth);
    free(body);
}

static void do_open(world *w, const fz_rec *r)
{
    char target[2048];
    long long conn = fz_num(r, 0, 1);
    if (!CONN_OK(conn) || w->open[conn])
        return;
    fz_word(r, 1, target, sizeof target);
    char *full = fz_subst(target, strlen(target), NULL);
    char *q = strchr(full, '?');
    if (q)
        *q++ = '\0';
    char *refusal = NULL;
    int st = srv_ws_open(w->c, (uint64_t)conn, full, q, &refusal);
    if (st == 0)
        w->open[conn] = 1;
    if (st != 0) {
        FZ_CHECK(st >= 400 && st <= 499, "upgrade refused with %d", st);
        json_t *b = refusal ? json_loads(refusal, 0, NULL) : NULL;
        FZ_CHECK(json_is_object(b), "refusal body not JSON: %.200s", refusal ? refusal : "(null)");
        json_decref(b);
    }
    free(refusal);
    free(full);
    drain(w);
}

static void do_fault(world *w, const fz_rec *r)
{
    char kind[32], a1[256], a2[256];
    fz_word(r, 0, kind, sizeof kind);
    fz_word(r, 1, a1, sizeof a1);
    if (strcmp(kind, "drop") == 0) {
        srv_fault_drop_heartbeats(w->c, strcmp(a1, "*") ? a1 : NULL, (int)(fz_num(r, 2, 1) % 100));
    } else if (strcmp(kind, "fail") == 0) {
        fz_word(r, 2, a2, sizeof a2);
        int st = (int)fz_num(r, 4, 503);
        if (st < 400 || st > 599)
            st = 503;
        srv_fault_fail_requests(w->c, strcmp(a1, "*") ? a1 : NULL, strcmp(a2, "*") ? a2 : NULL,
                                (int)(fz_num(r, 3, 1) % 100), st, (int)(fz_num(r, 5, -1) % 3600));
    } else if (strcmp(kind, "conflict") == 0) {
        srv_fault_force_conflict(w->c, a1);
    }
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
    fz_env_init(&w.e, "fake_server");
    hp_policy_defaults(&w.pol);
    char err[256];
    w.st = srv_store_open(":memory:", err, sizeof err);
    FZ_CHECK(w.st != NULL, "store: %s", err);
    w.c = srv_new(&w.e.env, &w.pol, FZ_SECRET, w.st);
    FZ_CHECK(w.c != NULL, "srv_new");
    srv_limits_defaults(&w.lim);

    size_t pos = 0;
    fz_rec r;
    for (int ops = 0; ops < FZ_MAX_OPS && fz_next(data, size, &pos, &r); ops++) {
        if (fz_is(&r, "http")) {
            do_http(&w, &r);
        } else if (fz_is(&r, "open")) {
            do_open(&w, &r);
        } else if (fz_is(&r, "ws")) {
            long long k = fz_num(&r, 0, 1);
            if (!CONN_OK(k) || !w.open[k])
                continue;
            size_t n = 0;
            char *m = fz_subst(r.body, r.body_len, &n);
            if (n > w.pol.max_frame + 1) /* the adapter hands at most max_frame + 1 */
                n = w.pol.max_frame + 1;
            int open_now = 0;
            for (int j = 1; j <= FZ_CONNS; j++)
                open_now += w.open[j];
            hp_msg hm;
            memset(&hm, 0, sizeof hm);
            char perr[64];
            int parsed = hp_msg_parse(m, n, &hm, perr, sizeof perr) == 0;
            int is_hb = parsed && hm.type == HP_MSG_HEARTBEAT;
            /* Distinct lock ids named: each is refreshed (announced) once. */
            size_t distinct = 0;
            if (is_hb && json_is_array(hm.locks)) {
                json_t *seen = json_object();
                size_t j;
                json_t *v;
                json_array_foreach(hm.locks, j, v) {
                    if (json_is_string(v) && !json_object_get(seen, json_string_value(v))) {
                        json_object_set_new(seen, json_string_value(v), json_true());
                        distinct++;
                    }
                }
                json_decref(seen);
                if (distinct > (size_t)w.lim.heartbeat_lock_ids)
                    distinct = (size_t)w.lim.heartbeat_lock_ids;
            }
            if (parsed)
                hp_msg_clear(&hm);
            w.frames = w.bytes = w.maxf = 0;
            srv_ws_message(w.c, (uint64_t)k, m, n);
            drain_items(&w);
            if (is_hb)
                FZ_CHECK(w.frames <= (distinct + 1) * (size_t)open_now,
                         "one HEARTBEAT made %zu frames (%d connections, %zu distinct ids read)",
                         w.frames, open_now, distinct);
            else
                FZ_CHECK(w.bytes - w.maxf <= w.lim.replay_chunk_bytes + 4096,
                         "one message made %zu bytes of frames (chunk %zu)", w.bytes,
                         w.lim.replay_chunk_bytes);
            free(m);
            drain(&w);
        } else if (fz_is(&r, "close")) {
            long long k = fz_num(&r, 0, 1);
            if (!CONN_OK(k) || !w.open[k])
                continue;
            w.open[k] = 0;
            srv_ws_closed(w.c, (uint64_t)k);
            drain(&w);
        } else if (fz_is(&r, "tick")) {
            long long ms = fz_num(&r, 0, 1000);
            if (ms < 0 || ms > 7LL * 86400 * 1000)
                ms = 1000;
            tick_to(&w, w.e.now + ms);
        } else if (fz_is(&r, "restart")) {
            srv_free(w.c);
            memset(w.open, 0, sizeof w.open); /* a restart drops every socket */
            memset(w.writable, 0, sizeof w.writable);
            w.c = srv_new(&w.e.env, &w.pol, FZ_SECRET, w.st);
            FZ_CHECK(w.c != NULL, "srv_new after restart");
            srv_set_limits(w.c, &w.lim);
            srv_tick(w.c);
            drain(&w);
        } else if (fz_is(&r, "shutdown")) {
            srv_shutdown(w.c);
            drain(&w);
        } else if (fz_is(&r, "fault")) {
            do_fault(&w, &r);
        } else if (fz_is(&r, "limits")) {
            srv_limits l;
            memset(&l, 0, sizeof l);
            long long v[6];
            for (int j = 0; j < 6; j++) {
                v[j] = fz_num(&r, j, 0);
                if (v[j] < 0 || v[j] > 100000000)
                    v[j] = 0;
            }
            l.replay_max_bytes = (size_t)v[0];
            l.replay_chunk_bytes = (size_t)v[1];
            l.conns_per_user = (int)v[2];
            l.conns_total = (int)v[3];
            l.locks_per_user = (int)v[4];
            l.heartbeat_lock_ids = (int)v[5];
            srv_set_limits(w.c, &l);
            /* As srv_set_limits: zero takes the default, except replay_max
             * (0 = no bound). */
            srv_limits d;
            srv_limits_defaults(&d);
            w.lim.replay_max_bytes = l.replay_max_bytes;
            w.lim.replay_chunk_bytes = l.replay_chunk_bytes ? l.replay_chunk_bytes : d.replay_chunk_bytes;
            w.lim.heartbeat_lock_ids = l.heartbeat_lock_ids ? l.heartbeat_lock_ids : d.heartbeat_lock_ids;
        } else if (fz_is(&r, "state")) {
            json_t *s = srv_state(w.c);
            FZ_CHECK(json_is_object(s), "srv_state");
            json_decref(s);
        }
    }
    srv_free(w.c);
    srv_store_close(w.st);
    return 0;
}
