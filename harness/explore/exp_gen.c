/*
 * exp_gen.c - random schedules and their scenario text (explore.h).
 *
 * Generation draws from a private xorshift generator seeded by (seed,
 * index), so schedule k of seed s is the same on every machine and does not
 * depend on how many threads explored before it.  A state tracker (the
 * same for generation, validity and the epilogue) mirrors what the engine
 * refuses as a scenario error: connect twice, app actions while the app is
 * crashed, server faults while the server is down.
 */
#define _GNU_SOURCE
#include "explore.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const exp_names[EXP_MAX_CLIENTS] = {"alice", "bob",  "carol", "dave",
                                                       "erin",  "fred", "gina",  "hugo"};

/* Waits across every policy timer of the seed policy (docs/SCENARIOS.md
 * §2): a network hop, retry delays (1, 3, 9, 27, 120 s) and their edges,
 * request and hello timeouts (10 s), heartbeats (30 s) and the 4008 limit
 * (2 misses: 60 s), lock_ttl (2 m), offline_long (30 m).  The cache window
 * (7 d) is left out on purpose: past it the cache legitimately forgets
 * tasks and convergence would not hold. */
static const int64_t exp_waits[] = {20,    40,    100,   500,    1000,   2000,   3000,
                                    5000,  9000,  10000, 11000,  27000,  30000,  31000,
                                    60000, 61000, 90000, 120000, 121000, 300000, 1860000};
#define NWAITS (sizeof exp_waits / sizeof exp_waits[0])
static const int64_t exp_latencies[] = {5, 100, 500, 2000};
static const int64_t exp_ttls[] = {10000, 30000, 60000, 300000};
static const char *const exp_drop_server[] = {"any", "HEARTBEAT", "TASK_UPDATED", "READY",
                                              "response"};
static const char *const exp_drop_client[] = {"any", "HEARTBEAT", "HELLO", "request"};
static const int exp_fail_status[] = {503, 500, 429};

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    /* splitmix64: good enough, tiny, and the same everywhere */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int pick(rng *r, int n)
{
    return (int)(next(r) % (uint64_t)n);
}

const char *exp_client_name(int ci)
{
    return ci >= 0 && ci < EXP_MAX_CLIENTS ? exp_names[ci] : "?";
}

/* ---- state tracking ----------------------------------------------------- */

typedef struct track {
    int started[EXP_MAX_CLIENTS], crashed[EXP_MAX_CLIENTS], offline[EXP_MAX_CLIENTS];
    int link_down[EXP_MAX_CLIENTS], latency[EXP_MAX_CLIENTS], short_token[EXP_MAX_CLIENTS];
    int lossy[EXP_MAX_CLIENTS];     /* a link fault or drop may have lost frames */
    int srv_down;
} track;

/* 1 when st is possible now (and applies it), 0 when the engine would stop
 * the scenario with an error. */
static int track_step(track *t, const exp_step *st)
{
    int c = st->ci;
    switch (st->op) {
    case EXP_WAIT:
        return 1;
    case EXP_CONNECT:
        if (t->crashed[c] || t->started[c])
            return 0;
        t->started[c] = 1;
        return 1;
    case EXP_EDIT:
    case EXP_DELETE:
    case EXP_LOCK:
    case EXP_UNLOCK:
    case EXP_SYNC_NOW:
        return !t->crashed[c];
    case EXP_OFFLINE:
        t->offline[c] = 1;
        return 1;
    case EXP_ONLINE:
        t->offline[c] = 0;
        return 1;
    case EXP_LINK_DOWN:
        t->link_down[c] = t->lossy[c] = 1;
        return 1;
    case EXP_LINK_UP:
        t->link_down[c] = 0;
        return 1;
    case EXP_LATENCY:
        t->latency[c] = 1;
        return 1;
    case EXP_DROP:
        t->lossy[c] = 1;
        return 1;
    case EXP_CRASH:
        t->crashed[c] = 1;
        return 1;
    case EXP_RESTART:
        t->crashed[c] = 0;
        return 1;
    case EXP_NEW_TOKEN:
        t->short_token[c] = 1;
        return 1;
    case EXP_SRV_CRASH:
        t->srv_down = 1;
        return 1;
    case EXP_SRV_START:
    case EXP_SRV_RESTART:
        t->srv_down = 0;
        return 1;
    case EXP_SRV_FORCE_CONFLICT:
    case EXP_SRV_FAIL:
        return !t->srv_down;
    }
    return 0;
}

int exp_valid(const exp_sched *s)
{
    track t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].ci >= s->nclients)
            return 0;
        if (!track_step(&t, &s->v[i]))
            return 0;
    }
    return 1;
}

/* ---- generation ----------------------------------------------------------- */

static void push(exp_sched *s, const exp_step *st, size_t *cap)
{
    if (s->n == *cap) {
        *cap = *cap ? *cap * 2 : 128;
        s->v = realloc(s->v, *cap * sizeof *s->v);
        if (!s->v)
            abort();
    }
    s->v[s->n++] = *st;
}

void exp_generate(exp_sched *s, uint64_t seed, uint64_t index, int nclients, int nsteps)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->index = index;
    s->nclients = nclients;
    rng r = {seed * 0x2545F4914F6CDD1DULL ^ (index + 1) * 0x9e3779b97f4a7c15ULL};
    next(&r);
    track t;
    memset(&t, 0, sizeof t);
    size_t cap = 0;
    int val = 0;
    /* Most schedules start with every app connected; a few leave one out
     * until later (or until the epilogue). */
    for (int c = 0; c < nclients && (int)s->n < nsteps; c++) {
        if (pick(&r, 8) == 0)
            continue;
        exp_step st = {.op = EXP_CONNECT, .ci = c};
        track_step(&t, &st);
        push(s, &st, &cap);
    }
    while ((int)s->n < nsteps) {
        exp_step st;
        memset(&st, 0, sizeof st);
        st.ci = -1;
        int k = pick(&r, 100);
        if (k < 28) {
            /* short waits are common, long ones rare */
            int w = pick(&r, 4) ? pick(&r, 12) : pick(&r, (int)NWAITS);
            st.op = EXP_WAIT;
            st.ms = exp_waits[w];
        } else if (k < 36) {
            int sk = pick(&r, 10);
            if (t.srv_down)
                st.op = sk < 7 ? EXP_SRV_START : EXP_SRV_RESTART;
            else if (sk < 5)
                st.op = EXP_SRV_FORCE_CONFLICT;
            else if (sk < 7)
                st.op = EXP_SRV_FAIL;
            else if (sk < 9)
                st.op = EXP_SRV_CRASH;
            else
                st.op = EXP_SRV_RESTART;
            st.id = 1 + pick(&r, EXP_IDS);
            st.msg = pick(&r, (int)(sizeof exp_fail_status / sizeof exp_fail_status[0]));
            st.count = 1 + pick(&r, 3);
        } else {
            st.ci = pick(&r, nclients);
            int c = st.ci;
            if (t.crashed[c]) {
                st.op = pick(&r, 3) ? EXP_RESTART : EXP_OFFLINE + pick(&r, 2);
            } else if (!t.started[c] && pick(&r, 3) == 0) {
                st.op = EXP_CONNECT;
            } else {
                int a = pick(&r, 100);
                if (a < 34) st.op = EXP_EDIT;
                else if (a < 41) st.op = EXP_DELETE;
                else if (a < 47) st.op = EXP_LOCK;
                else if (a < 51) st.op = EXP_UNLOCK;
                else if (a < 54) st.op = EXP_SYNC_NOW;
                else if (a < 61) st.op = t.offline[c] ? EXP_ONLINE : EXP_OFFLINE;
                else if (a < 66) st.op = t.offline[c] ? EXP_ONLINE : EXP_EDIT;
                else if (a < 71) st.op = t.link_down[c] ? EXP_LINK_UP : EXP_LINK_DOWN;
                else if (a < 74) st.op = EXP_LATENCY;
                else if (a < 81) st.op = EXP_DROP;
                else if (a < 85) st.op = EXP_CRASH;
                else if (a < 89) st.op = EXP_RESTART;
                else if (a < 93) st.op = EXP_NEW_TOKEN;
                else st.op = t.link_down[c] ? EXP_LINK_UP : EXP_EDIT;
            }
            st.id = 1 + pick(&r, EXP_IDS);
            if (st.op == EXP_EDIT) {
                /* one to three fields; the title most often */
                unsigned f = 0;
                int nf = 1 + (pick(&r, 3) == 0) + (pick(&r, 5) == 0);
                for (int i = 0; i < nf; i++)
                    f |= pick(&r, 2) ? EXP_F_TITLE : 1u << pick(&r, 6);
                st.fields = f;
                st.val = ++val;
            } else if (st.op == EXP_LATENCY) {
                st.ms = exp_latencies[pick(&r, 4)];
            } else if (st.op == EXP_NEW_TOKEN) {
                st.ms = exp_ttls[pick(&r, 4)];
            } else if (st.op == EXP_DROP) {
                st.from_server = pick(&r, 2);
                st.msg = st.from_server ? pick(&r, 5) : pick(&r, 4);
                st.count = 1 + pick(&r, 2);
            }
        }
        if (!track_step(&t, &st))
            continue;
        push(s, &st, &cap);
    }
    s->orig_n = s->n;
}

void exp_sched_free(exp_sched *s)
{
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int exp_sched_copy(exp_sched *dst, const exp_sched *src)
{
    *dst = *src;
    dst->v = malloc((src->n ? src->n : 1) * sizeof *dst->v);
    if (!dst->v)
        return -1;
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof *dst->v);
    return 0;
}

/* ---- rendering ------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            abort();
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
}

/* A duration in the language's units: 250ms, 30s, 31m, 2m1s. */
void exp_duration(int64_t ms, char *out, size_t len)
{
    if (ms % 1000)
        snprintf(out, len, "%lldms", (long long)ms);
    else if (ms >= 60000 && ms % 60000 == 0)
        snprintf(out, len, "%lldm", (long long)(ms / 60000));
    else if (ms >= 60000)
        snprintf(out, len, "%lldm%llds", (long long)(ms / 60000), (long long)(ms % 60000 / 1000));
    else
        snprintf(out, len, "%llds", (long long)(ms / 1000));
}

/* The edit's values: unique per edit (title v7, notes n7, assignee a7,
 * due_at and remind_at distinct instants), so a value seen on the server
 * names the edit that wrote it, and no edit ever sets a field to the value
 * it already had: for the three-way merge (CF-2) such an edit changes
 * nothing and the other side's value wins, while edits_kept expects the
 * edited value.  For the same reason done is only ever set to true. */
static void edit_fields(buf *b, const exp_step *st)
{
    int v = st->val;
    if (st->fields & EXP_F_TITLE)
        put(b, ", title: v%d", v);
    if (st->fields & EXP_F_NOTES)
        put(b, ", notes: n%d", v);
    if (st->fields & EXP_F_DONE)
        put(b, ", done: true");
    if (st->fields & EXP_F_ASSIGNEE)
        put(b, ", assignee: a%d", v);
    if (st->fields & EXP_F_DUE)
        put(b, ", due_at: \"2026-11-%02dT%02d:%02d:00+03:00\"", 26 + v / 1440 % 3, v / 60 % 24,
            v % 60);
    if (st->fields & EXP_F_REMIND) {
        /* 7 s apart from 09:00:07: reminders fire during the run */
        int sec = 7 * v;
        put(b, ", remind_at: \"2026-11-25T%02d:%02d:%02d%s\"", 9 + sec / 3600 % 14,
            sec / 60 % 60, sec % 60, v % 2 ? "Z" : "+00:00");
    }
}

static void render_action(buf *b, const exp_step *st)
{
    char d[32];
    switch (st->op) {
    case EXP_CONNECT: put(b, "connect"); break;
    case EXP_EDIT:
        put(b, "{edit: {id: t%d", st->id);
        edit_fields(b, st);
        put(b, "}}");
        break;
    case EXP_DELETE: put(b, "{delete: t%d}", st->id); break;
    case EXP_LOCK: put(b, "{lock: t%d}", st->id); break;
    case EXP_UNLOCK: put(b, "{unlock: t%d}", st->id); break;
    case EXP_SYNC_NOW: put(b, "sync_now"); break;
    case EXP_OFFLINE: put(b, "offline"); break;
    case EXP_ONLINE: put(b, "online"); break;
    case EXP_LINK_DOWN: put(b, "{link: down}"); break;
    case EXP_LINK_UP: put(b, "{link: up}"); break;
    case EXP_LATENCY:
        exp_duration(st->ms, d, sizeof d);
        put(b, "{latency: %s}", d);
        break;
    case EXP_DROP:
        put(b, "{drop: {from: %s, message: %s, count: %d}}", st->from_server ? "server" : "client",
            st->from_server ? exp_drop_server[st->msg % 5] : exp_drop_client[st->msg % 4],
            st->count);
        break;
    case EXP_CRASH: put(b, "crash"); break;
    case EXP_RESTART: put(b, "restart"); break;
    case EXP_NEW_TOKEN:
        exp_duration(st->ms, d, sizeof d);
        put(b, "{new_token: {ttl: %s}}", d);
        break;
    case EXP_SRV_CRASH: put(b, "crash"); break;
    case EXP_SRV_START: put(b, "start"); break;
    case EXP_SRV_RESTART: put(b, "restart"); break;
    case EXP_SRV_FORCE_CONFLICT: put(b, "{force_conflict: t%d}", st->id); break;
    case EXP_SRV_FAIL:
        put(b, "{fail_requests: {count: %d, status: %d}}", st->count, exp_fail_status[st->msg % 3]);
        break;
    case EXP_WAIT: break;
    }
}

char *exp_render(const exp_sched *s, const char *header, const char *extra)
{
    buf b = {0};
    if (header)
        put(&b, "%s", header);
    put(&b, "id: explore/seed-%llu-%llu\n", (unsigned long long)s->seed,
        (unsigned long long)s->index);
    put(&b, "name: explore schedule %llu of seed %llu (%zu steps)\n",
        (unsigned long long)s->index, (unsigned long long)s->seed, s->n);
    put(&b, "rules: [Q-1]\ntags: [explore]\nclients:\n");
    for (int c = 0; c < s->nclients; c++)
        put(&b, "  %s: {}\n", exp_names[c]);
    put(&b, "steps:\n");
    track t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < s->n; i++) {
        const exp_step *st = &s->v[i];
        track_step(&t, st);
        if (st->op == EXP_WAIT) {
            char d[32];
            exp_duration(st->ms, d, sizeof d);
            put(&b, "  - wait: %s\n", d);
            continue;
        }
        put(&b, "  - %s: ", st->ci < 0 ? "server" : exp_names[st->ci]);
        render_action(&b, st);
        put(&b, "\n");
    }
    /* The epilogue: heal what the schedule broke, as steps, so that what
     * the convergence check sees is in the file (the engine's own healing
     * comes after the steps). */
    put(&b, "  # epilogue: everything back up, then 10 minutes to settle\n");
    int any = 0;
    buf e = {0};
    put(&e, "  - {");
    if (t.srv_down) {
        put(&e, "server: start");
        any = 1;
    }
    for (int c = 0; c < s->nclients; c++) {
        buf a = {0};
        int na = 0;
        if (t.link_down[c])
            put(&a, "%s{link: up}", na++ ? ", " : "");
        if (t.latency[c])
            put(&a, "%s{latency: 20ms}", na++ ? ", " : "");
        if (t.crashed[c])
            put(&a, "%srestart", na++ ? ", " : "");
        /* A frame lost on a connection that lives on (a silent path
         * failure, a drop rule) is not sent again: the simulator models
         * no TCP retransmission, and the policy's repair is the replay on
         * reconnect (WS-2).  So such a client reconnects once. */
        if (t.offline[c])
            put(&a, "%sonline", na++ ? ", " : "");
        else if (t.lossy[c] && !t.crashed[c] && t.started[c])
        {
            put(&a, "%soffline, online", na ? ", " : "");
            na += 2;
        }
        if (t.short_token[c])
            put(&a, "%snew_token", na++ ? ", " : "");
        if (!t.started[c])
            put(&a, "%sconnect", na++ ? ", " : "");
        if (na) {
            put(&e, "%s%s: %s%s%s", any ? ", " : "", exp_names[c], na > 1 ? "[" : "", a.p,
                na > 1 ? "]" : "");
            any = 1;
        }
        free(a.p);
    }
    put(&e, "}\n");
    if (any)
        put(&b, "%s", e.p);
    free(e.p);
    put(&b, "  - wait: 10m\n");
    /* Drop rules outlive the schedule (the engine's healing clears them,
     * a step cannot): a client whose HELLOs were dropped may still wait in
     * its reconnect backoff (120 s apart) after 10 minutes.  "sync now"
     * tries at once. */
    buf z = {0};
    int nz = 0;
    for (int c = 0; c < s->nclients; c++)
        if (t.lossy[c])
            put(&z, "%s%s: sync_now", nz++ ? ", " : "", exp_names[c]);
    if (nz)
        put(&b, "  - {%s}\n  - wait: 1m\n", z.p);
    free(z.p);
    if (extra)
        put(&b, "%s", extra);
    return b.p;
}
