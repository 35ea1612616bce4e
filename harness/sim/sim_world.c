/*
 * sim_world.c - a simulated world's life: creating it (server core and
 * store, client cores and their stores, keys, tokens), freeing it, and the
 * records everything else writes (trace entries, history records, the log
 * sink).
 *
 * Inputs: the validated scenario (borrowed, must outlive the world), a
 * seed, the result's trace array (borrowed).  Outputs: a sim_world the
 * caller frees with sim_free(); the world owns its cores, stores,
 * histories and pending events.
 */
#define _GNU_SOURCE
#include "sim_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hp_jwt.h"

/* ---- records ---------------------------------------------------------- */

const char *sim_actor_of(sim_world *w, int ci)
{
    return ci < 0 ? "server" : w->cl[ci].spec->name;
}

json_t *sim_str(sim_world *w, const char *s)
{
    enum { N = sizeof w->strs / sizeof *w->strs, M = sizeof w->str_memo / sizeof *w->str_memo };
    /* A text mostly comes from the same address (a literal, a spec's
     * name): a memo by address saves the hash and the probe.  Checked by
     * content, as a stack buffer (a frame's kind) holds other texts at the
     * same address. */
    size_t m = ((uintptr_t)s >> 3) % M;
    if (w->str_memo[m].p == s && !strcmp(w->str_memo[m].text, s))
        return json_incref(w->str_memo[m].v);
    size_t h = 2166136261u, n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < 64; p++, n++)
        h = (h ^ *p) * 16777619u;
    if (n >= 64)
        return sim_text(s); /* long: not one of the repeating texts */
    for (size_t i = 0; i < N; i++) {
        json_t **slot = &w->strs[(h + i) % N];
        if (!*slot) {
            if (i > N / 2)
                break; /* crowded: fall back rather than probe on */
            *slot = sim_text(s);
            if (!*slot)
                return NULL;
        } else if (strcmp(json_string_value(*slot), s)) {
            continue;
        }
        w->str_memo[m].p = s;
        w->str_memo[m].text = json_string_value(*slot);
        w->str_memo[m].v = *slot;
        return json_incref(*slot);
    }
    return sim_text(s);
}

/* 1 when the n bytes at s are all ASCII (8 at a time: frames run to
 * 64 KiB). */
static int all_ascii(const char *s, size_t n)
{
    uint64_t acc = 0, x;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, s + i, 8);
        acc |= x;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return !(acc & 0x8080808080808080ULL);
}

json_t *sim_text(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    /* ASCII is UTF-8: the same value without json_string()'s check. */
    return all_ascii(s, n) ? json_stringn_nocheck(s, n) : json_string(s);
}

/* A new reference to the integer v, kept in *slot while the instant lasts:
 * many records share one instant (integer values are never changed in
 * place either). */
static json_t *same_int(json_t **slot, json_int_t v)
{
    if (!*slot || json_integer_value(*slot) != v) {
        json_decref(*slot);
        *slot = json_integer(v);
    }
    return json_incref(*slot);
}

/* The texts of sim_k, in its order. */
static const char *const sim_k_text[] = {
    "ws", "http", "log", "notify", "event", "observe", "step",
    "assert", "server", "harness", "DEBUG", "INFO", "WARNING", "ERROR",
};
_Static_assert(sizeof sim_k_text / sizeof *sim_k_text == SIM_K_N, "sim_k_text follows sim_k");
_Static_assert(sizeof ((sim_world *)0)->jk / sizeof(json_t *) == SIM_K_N, "w->jk holds sim_k");

/* A trace entry with the actor's and the type's string values given (new
 * references taken over; NULL leaves the key out, as json_string() of bad
 * UTF-8 did). */
static json_t *trace_j(sim_world *w, json_t *actor, json_t *type)
{
    json_t *e = json_object();
    SIM_SET(e, "t", same_int(&w->t_trace, w->now - w->s->start_ms));
    SIM_SET(e, "actor", actor);
    SIM_SET(e, "type", type);
    json_array_append_new(w->trace, e);
    return e;
}

json_t *sim_trace(sim_world *w, const char *actor, const char *type)
{
    return trace_j(w, sim_str(w, actor), sim_str(w, type));
}

json_t *sim_trace_k(sim_world *w, json_t *actor, sim_k type)
{
    return trace_j(w, actor, sim_k_j(w, type));
}

json_t *sim_record(sim_world *w, json_t *arr)
{
    json_t *r = json_object();
    SIM_SET(r, "t", same_int(&w->t_rec, w->now));
    SIM_SET(r, "n", json_integer((json_int_t)w->nrec++));
    json_array_append_new(arr, r);
    return r;
}

void sim_set_error(sim_world *w, const char *fmt, const char *a)
{
    if (w->error)
        return;
    if (asprintf(&w->error, fmt, a) < 0)
        abort();
}

/* The log records' strings: copied into blocks that never move (records
 * point into them), freed with the world (sim_free). */
struct sim_arena {
    struct sim_arena *next;
    size_t used, cap;
    char data[];
};

static const char *arena_dup(sim_world *w, const char *s)
{
    size_t n = strlen(s) + 1;
    struct sim_arena *a = w->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        a = malloc(sizeof *a + cap);
        if (!a)
            abort();
        a->next = w->arena;
        a->used = 0;
        a->cap = cap;
        w->arena = a;
    }
    char *p = a->data + a->used;
    memcpy(p, s, n);
    a->used += n;
    return p;
}

/* A log record's text: "" for text that is not UTF-8, which a JSON
 * record could not hold (json_string() refused it: the key was absent
 * and read ""). */
static const char *log_text(sim_world *w, const char *s)
{
    if (!all_ascii(s, strlen(s))) {
        json_t *j = json_string(s);
        if (!j)
            return "";
        json_decref(j);
    }
    return arena_dup(w, s);
}

/* The log sink: every record of every actor, formatted, into the trace and
 * the log history.  Records are already redacted by hp_log; the
 * no_token_in_logs invariant checks that anyway.
 *
 * The history record's actor and line are the trace entry's own string
 * values (the entry holds them, and the trace outlives the world and so
 * its log history), and its fields the line's tail when the line was not
 * cut: the same bytes as separate copies, without copying and checking
 * them again (a simulated suite run logs some 4,000 records). */
static void sink(void *ud, const hp_log_record *rec)
{
    sim_world *w = ud;
    char line[2048];
    size_t ll = hp_log_format(rec, line, sizeof line);
    const char *actor = rec->actor ? rec->actor : "?";
    json_t *jactor = NULL;
    /* The actor is its env's own text when hp_log found nothing to redact
     * in it (always, for the names a scenario may give): then the name
     * made once. */
    if (actor == w->senv.actor) {
        jactor = sim_k_j(w, SIM_K_SERVER);
    } else {
        for (size_t i = 0; i < w->ncl && !jactor; i++)
            if (actor == w->cl[i].env.actor)
                jactor = json_incref(w->cl[i].jname);
    }
    if (!jactor) {
        if (!strcmp(actor, "fake_server"))
            actor = "server";
        jactor = sim_str(w, actor);
    }
    json_t *jline = all_ascii(line, ll) ? json_stringn_nocheck(line, ll) : json_string(line);
    json_t *t = trace_j(w, json_incref(jactor), sim_k_j(w, SIM_K_LOG));
    SIM_SET(t, "level", (unsigned)rec->level <= HP_LOG_ERROR
                            ? sim_k_j(w, (sim_k)(SIM_K_DEBUG + (int)rec->level))
                            : sim_str(w, hp_log_level_name(rec->level)));
    SIM_SET(t, "line", jline);
    const char *fields = rec->fields ? rec->fields : "";
    const char *lv = jline ? json_string_value(jline) : NULL;
    size_t fl = strlen(fields);
    /* A valid line's tail after a space is valid UTF-8 too (what
     * log_text() would check); a cut line does not end with the fields. */
    if (lv && ll + 1 < sizeof line && fl <= ll)
        fields = fl ? lv + (ll - fl) : "";
    else
        fields = log_text(w, fields);
    chk_logrec r = {
        .t = (double)w->now,
        .n = w->nrec++,
        .level = (int)rec->level,
        .actor = jactor ? json_string_value(jactor) : "",
        .msg = log_text(w, rec->msg ? rec->msg : ""),
        .fields = fields,
        .line = lv ? lv : "",
    };
    chk_logs_add(&w->logs, &r);
    json_decref(jactor);
}

void sim_log_record(sim_world *w, const char *actor, int level, const char *msg,
                    const char *fields, const char *line)
{
    chk_logrec r = {
        .t = (double)w->now,
        .n = w->nrec++,
        .level = level,
        .actor = log_text(w, actor),
        .msg = log_text(w, msg),
        .fields = log_text(w, fields),
        .line = log_text(w, line),
    };
    chk_logs_add(&w->logs, &r);
}

static int64_t clock_fn(void *ud)
{
    return ((sim_world *)ud)->now;
}

/* Room for one more record in a C history (v, n, cap), sized el. */
static void *grow(void *v, size_t n, size_t *cap, size_t el)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 16;
    v = realloc(v, *cap * el);
    if (!v)
        abort();
    return v;
}

void sim_conn_record(sim_world *w, int ci, const char *kind, int code, const char *by)
{
    sim_client *c = &w->cl[ci];
    c->conn = grow(c->conn, c->nconn, &c->capconn, sizeof *c->conn);
    c->conn[c->nconn++] = (sim_conn_rec){w->now, w->nrec++, kind, by, by ? code : 0};
    if (by) {
        json_t *r = sim_record(w, c->closes);
        SIM_SET(r, "code", json_integer(code));
        SIM_SET(r, "by", sim_str(w, by));
    }
}

void sim_frame_record(sim_world *w, int ci, int from_server, const char *kind,
                      const char *entity, json_t *tr, int lost, const char *data)
{
    sim_client *c = &w->cl[ci];
    c->frames = grow(c->frames, c->nframes, &c->capframes, sizeof *c->frames);
    sim_frame_rec *f = &c->frames[c->nframes++];
    *f = (sim_frame_rec){.t = w->now, .n = w->nrec++, .kind = arena_dup(w, kind),
                         .entity = entity && *entity ? arena_dup(w, entity) : NULL,
                         .tr = json_incref(tr), .from_server = from_server != 0,
                         .lost = lost != 0};
    /* The message's revision (HELLO, READY, events): what a wire record can
     * show too (the fault proxy's journal), so `frames` can name it. */
    const char *rv = data ? strstr(data, "\"revision\":") : NULL;
    if (rv) {
        char *end = NULL;
        long long v = strtoll(rv + 11, &end, 10);
        if (end != rv + 11) {
            f->revision = v;
            f->has_revision = 1;
        }
    }
}

json_t *sim_frames_json(sim_world *w, int ci)
{
    sim_client *c = &w->cl[ci];
    if (!c->frames_j)
        c->frames_j = json_array();
    for (size_t i = json_array_size(c->frames_j); i < c->nframes; i++) {
        const sim_frame_rec *f = &c->frames[i];
        json_t *r = json_object();
        SIM_SET(r, "t", json_integer(f->t));
        SIM_SET(r, "n", json_integer((json_int_t)f->n));
        SIM_SET(r, "from", sim_str(w, f->from_server ? "server" : "client"));
        SIM_SET(r, "type", sim_str(w, f->kind));
        if (f->entity)
            SIM_SET(r, "entity_id", sim_str(w, f->entity));
        SIM_SET(r, "lost", json_boolean(f->lost));
        if (f->has_revision)
            SIM_SET(r, "revision", json_integer(f->revision));
        /* "lost" may still be set at delivery: keep the trace entry to re-check. */
        SIM_SET_REF(r, "_trace", f->tr);
        if (f->raw)
            SIM_SET(r, "raw", json_true());
        json_array_append_new(c->frames_j, r);
    }
    return c->frames_j;
}

/* ---- setup ------------------------------------------------------------ */

static uint64_t fnv(const char *s, uint64_t salt)
{
    uint64_t h = 1469598103934665603ULL ^ salt;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Tokens minted, kept for the life of the process: a scenario's clients
 * get the same tokens in every run (same names, same virtual start), and
 * an HS256 token through libjwt cost ~60,000 instructions (1.3 % of a
 * suite bench).  hp_jwt_mint() is a pure function of its arguments, so a
 * kept token is byte for byte the one it would mint.  Direct-mapped by a
 * hash of the arguments; a lock, as hp-harness runs worlds in threads. */
enum { MINT_MEMO = 256 };
static struct {
    char *key, *tok;
} mint_memo[MINT_MEMO];
static pthread_mutex_t mint_lock = PTHREAD_MUTEX_INITIALIZER;

/* Appends the decimal form of v and then the byte sep at *o of key (cap
 * bytes); -1 when it does not fit. */
static int key_num(char *key, size_t cap, size_t *o, long long v, char sep)
{
    char tmp[24], *e = tmp + sizeof tmp, *q = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    *--q = sep;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    size_t n = (size_t)(e - q);
    if (cap - *o <= n)
        return -1;
    memcpy(key + *o, q, n);
    *o += n;
    return 0;
}

/* Appends "<length>:<s> " at *o of key; -1 when it does not fit. */
static int key_str(char *key, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (key_num(key, cap, o, (long long)n, ':') || cap - *o <= n + 1)
        return -1;
    memcpy(key + *o, s, n);
    *o += n;
    key[(*o)++] = ' ';
    return 0;
}

static char *mint(const char *secret, const char *sub, const char *hh, const char *dev,
                  int64_t iat_s, int64_t exp_s)
{
    char key[1024];
    if (!secret || !sub || !hh)
        return hp_jwt_mint(secret, sub, hh, dev, iat_s, exp_s);
    /* Lengths first: no two argument lists give one key.  Built by copies
     * (snprintf of it was ~4,000 instructions of every client of every
     * world). */
    size_t o = 0;
    if (key_str(key, sizeof key, &o, secret) || key_str(key, sizeof key, &o, sub) ||
        key_str(key, sizeof key, &o, hh) || (key[o++] = dev ? 'D' : 'N', 0) ||
        key_str(key, sizeof key, &o, dev ? dev : "") ||
        key_num(key, sizeof key, &o, (long long)iat_s, ' ') ||
        key_num(key, sizeof key, &o, (long long)exp_s, '\0'))
        return hp_jwt_mint(secret, sub, hh, dev, iat_s, exp_s);
    size_t i = (size_t)(fnv(key, 0) % MINT_MEMO);
    char *tok = NULL;
    pthread_mutex_lock(&mint_lock);
    if (mint_memo[i].key && !strcmp(mint_memo[i].key, key))
        tok = strdup(mint_memo[i].tok);
    pthread_mutex_unlock(&mint_lock);
    if (tok)
        return tok;
    tok = hp_jwt_mint(secret, sub, hh, dev, iat_s, exp_s);
    char *k = tok ? strdup(key) : NULL, *t = k ? strdup(tok) : NULL;
    if (!t) {
        free(k);
        return tok;
    }
    pthread_mutex_lock(&mint_lock);
    free(mint_memo[i].key);
    free(mint_memo[i].tok);
    mint_memo[i].key = k;
    mint_memo[i].tok = t;
    pthread_mutex_unlock(&mint_lock);
    return tok;
}

char *sim_mint(sim_world *w, int ci, scn_token_kind kind, int64_t ttl_ms)
{
    const scn_client_spec *sp = w->cl[ci].spec;
    int64_t now_s = w->now / 1000;
    char *tok = NULL;
    switch (kind) {
    case SCN_TOKEN_NONE:
        return NULL;
    case SCN_TOKEN_VALID:
        tok = mint(SIM_SECRET, sp->user, sp->household, sp->device, now_s,
                          (w->now + ttl_ms) / 1000);
        break;
    case SCN_TOKEN_EXPIRED:
        tok = mint(SIM_SECRET, sp->user, sp->household, sp->device, now_s - 3600,
                          now_s - 1);
        break;
    case SCN_TOKEN_BAD_SIGNATURE:
        tok = mint("not-the-server-secret", sp->user, sp->household, sp->device, now_s,
                          (w->now + ttl_ms) / 1000);
        break;
    }
    if (tok)
        json_array_append_new(w->tokens, sim_text(tok));
    return tok;
}

/* Where a simulated device's store file lives.  The simulator's crash is a
 * process crash: the OS (page cache) survives it, so an fsync adds nothing
 * to what a scenario can observe, only wall time (a commit's fsync on a
 * disk-backed /tmp made the two wrong-key scenarios 14 % of a suite run).
 * So: $HP_SIM_TMPDIR if set, else /dev/shm (tmpfs) when it is a writable
 * directory, else $TMPDIR, else /tmp. */
static const char *store_dir(void)
{
    const char *d = getenv("HP_SIM_TMPDIR");
    if (d && *d)
        return d;
    if (access("/dev/shm", W_OK | X_OK) == 0)
        return "/dev/shm";
    d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

int sim_open_store(sim_world *w, sim_client *c, char *err, size_t errlen)
{
    cli_store_open_info info = {0};
    c->store = cli_store_open(c->store_path ? c->store_path : ":memory:",
                              c->key_other ? c->other_key : c->key, &c->env, &info, err,
                              errlen);
    (void)w;
    return c->store ? 0 : -1;
}

sim_world *sim_new(const scn_scenario *s, uint64_t seed, json_t *trace, char *err, size_t errlen)
{
    sim_world *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->s = s;
    w->policy = s->policy;
    w->now = s->start_ms;
    w->trace = trace;
    w->journal = json_array();
    w->edits = json_array();
    w->tokens = json_array();
    for (int k = 0; k < SIM_K_N; k++)
        w->jk[k] = sim_str(w, sim_k_text[k]);
    w->logger.sink = sink;
    w->logger.ud = w;
    w->logger.min_level = HP_LOG_DEBUG;
    hp_rng_seed(&w->srng, seed ^ 0x5eed5eed5eedULL);
    w->senv.now = clock_fn;
    w->senv.clock_ud = w;
    w->senv.rng = &w->srng;
    w->senv.log = &w->logger;
    w->senv.actor = "fake_server";
    w->sstore = srv_store_open(":memory:", err, errlen);
    if (!w->sstore) {
        sim_free(w);
        return NULL;
    }
    w->srv = srv_new(&w->senv, &w->policy, SIM_SECRET, w->sstore);
    w->jwt_memo = hp_jwt_memo_process(); /* shared by every world; free ignores it */
    if (!w->srv || !w->jwt_memo) {
        snprintf(err, errlen, "srv_new failed");
        sim_free(w);
        return NULL;
    }
    /* Sim only (no attacker, a virtual clock): a token verified once, in
     * any world of the process, is not verified again; its expiry still
     * is, every time (hp_jwt.h). */
    srv_set_jwt_memo(w->srv, w->jwt_memo);
    w->srv_up = 1;
    w->ncl = s->nclients;
    w->cl = calloc(w->ncl ? w->ncl : 1, sizeof *w->cl);
    if (!w->cl)
        abort();
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        c->spec = &s->clients[i];
        c->idx = (int)i;
        c->jname = sim_str(w, c->spec->name);
        hp_rng_seed(&c->rng, seed ^ fnv(c->spec->name, 0x9e3779b97f4a7c15ULL));
        c->env.now = clock_fn;
        c->env.clock_ud = w;
        c->env.rng = &c->rng;
        c->env.log = &w->logger;
        c->env.actor = c->spec->name;
        hp_rng kr;
        hp_rng_seed(&kr, fnv(c->spec->name, 1));
        for (int b = 0; b < 32; b++) {
            c->key[b] = (uint8_t)hp_rng_next(&kr);
            c->other_key[b] = (uint8_t)(c->key[b] ^ 0xA5);
        }
        c->online = c->link_up = 1;
        c->latency_ms = c->spec->latency_ms >= 0 ? c->spec->latency_ms : s->latency_ms;
        c->events = json_array();
        c->notes = json_array();
        c->closes = json_array();
        c->queue_obs = json_array();
        if (c->spec->needs_file_store) {
            char tmpl[4096];
            const char *dir = store_dir();
            snprintf(tmpl, sizeof tmpl, "%s/hx-store-XXXXXX", dir);
            int fd = mkstemp(tmpl);
            if (fd < 0) {
                snprintf(err, errlen, "cannot create a temporary store file in %s: %s", dir,
                         strerror(errno));
                sim_free(w);
                return NULL;
            }
            close(fd);
            c->store_path = strdup(tmpl);
        }
        if (sim_open_store(w, c, err, errlen)) {
            sim_free(w);
            return NULL;
        }
        c->token = sim_mint(w, (int)i, c->spec->token, c->spec->token_ttl_ms);
        c->core = cli_new(&c->env, &w->policy, c->store, c->token);
        if (!c->core) {
            snprintf(err, errlen, "cli_new failed for %s", c->spec->name);
            sim_free(w);
            return NULL;
        }
        c->running = 1;
    }
    sim_drain(w);
    return w;
}

void sim_free(sim_world *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < sizeof w->strs / sizeof *w->strs; i++)
        json_decref(w->strs[i]);
    json_decref(w->t_trace);
    json_decref(w->t_rec);
    for (int k = 0; k < SIM_K_N; k++)
        json_decref(w->jk[k]);
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        if (c->core)
            cli_free(c->core);
        if (c->store)
            cli_store_close(c->store);
        if (c->store_path) {
            unlink(c->store_path);
            char side[4200];
            snprintf(side, sizeof side, "%s-journal", c->store_path);
            unlink(side);
            snprintf(side, sizeof side, "%s-wal", c->store_path);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", c->store_path);
            unlink(side);
            free(c->store_path);
        }
        free(c->token);
        json_decref(c->jname);
        json_decref(c->events);
        json_decref(c->notes);
        json_decref(c->closes);
        for (size_t f = 0; f < c->nframes; f++)
            json_decref(c->frames[f].tr);
        free(c->frames);
        json_decref(c->frames_j);
        free(c->conn);
        json_decref(c->queue_obs);
    }
    free(w->cl);
    if (w->srv)
        srv_free(w->srv);
    if (w->sstore)
        srv_store_close(w->sstore);
    hp_jwt_memo_free(w->jwt_memo);
    for (size_t i = 0; i < w->nheap; i++)
        sim_ev_clear(&w->heap[i]);
    free(w->heap);
    free(w->conns);
    for (size_t i = 0; i < w->npend; i++) {
        sim_pending *p = &w->pend[i];
        free(p->method);
        free(p->path);
        free(p->query);
        free(p->auth);
        free(p->idem_key);
        free(p->body);
    }
    free(w->pend);
    json_decref(w->journal);
    chk_logs_free(&w->logs);
    while (w->arena) {
        struct sim_arena *a = w->arena;
        w->arena = a->next;
        free(a);
    }
    json_decref(w->edits);
    json_decref(w->tokens);
    free(w->error);
    free(w);
}

