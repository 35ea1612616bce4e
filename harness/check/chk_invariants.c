/*
 * chk_invariants.c - what must hold after every scenario, whatever it
 * scripted (SPEC §5, docs/SCENARIOS.md §8):
 *
 *   edits_kept        Q-1: every edit the app accepted reached the server
 *                     (with its values, unless a conflict was resolved), or
 *                     sits in the dead-letter list with REJECTED, or waits
 *                     for a conflict choice with CONFLICT.
 *   entity_order      every app applied an entity's events in increasing
 *                     revision order, and sent an entity's writes in the
 *                     order they were queued.
 *   conflicts_logged  CF-4: each 409 the server sent has a server WARNING
 *                     "conflict"; each 409 an app received a client one.
 *   queue_bounded     Q-2: no queue beyond queue_max.
 *   cache_bounded     C-2: no cache beyond cache_cap (sampled per step).
 *   no_token_in_logs  A-4: no minted token in any log record.
 *
 * Each adds one entry to result->checks ("invariant:<name>"); a failure's
 * detail names the evidence and the step it points at ("[step 7,
 * file:line]"), also as "line"/"step" in the entry (chk_failed_line).
 */
#define _GNU_SOURCE
#include "scn_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The entity a request path names: ".../tasks/<id>" (not lock/stream). */
static const char *path_entity(const char *path, char *buf, size_t len)
{
    const char *prefix = "/api/v0.2/tasks/";
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl))
        return NULL;
    const char *id = path + pl;
    if (strchr(id, '/') || !*id)
        return NULL;
    /* snprintf(buf, len, "%s", id) without its format parsing (called for
     * every journal record by each invariant): the same bytes, cut at
     * len - 1 the same way. */
    size_t l = strlen(id);
    if (l >= len)
        l = len - 1;
    memcpy(buf, id, l);
    buf[l] = '\0';
    return buf;
}

static int notified(sim_client *c, const char *type, const char *entity)
{
    size_t i;
    json_t *n;
    json_array_foreach(c->notes, i, n)
    {
        if (!strcmp(jstr(n, "type"), type) && (!entity || !strcmp(jstr(n, "entity_id"), entity)))
            return 1;
    }
    return 0;
}

static int in_items(const json_t *items, const char *entity)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (!strcmp(jstr(it, "entity_id"), entity))
            return 1;
    }
    return 0;
}

/* ---- where: the step behind a failure ------------------------------------ */

/* Where an invariant's evidence lies: the step's line when the record
 * names it (edits), otherwise the instant (epoch ms) of the evidence,
 * mapped to the step running then (chk_invariants). */
typedef struct chk_where {
    int line, step;  /* 0 / -1 when not known */
    int64_t t;       /* -1 when not known */
} chk_where;

/* The step in progress at epoch ms t: the last "step" trace entry at or
 * before it (actions take no time, so several steps share an instant: the
 * last of them is the one that was running when time moved on). */
static void step_at(sim_world *w, int64_t t, int *line, int *step)
{
    size_t i;
    json_t *e;
    *line = 0;
    *step = -1;
    json_array_foreach(w->trace, i, e)
    {
        if (strcmp(jstr(e, "type"), "step") || strcmp(jstr(e, "actor"), "harness"))
            continue;
        if (jint(e, "t") + w->s->start_ms > t)
            break;
        if (json_object_get(e, "line")) {
            *line = (int)jint(e, "line");
            *step = (int)jint(e, "index");
        }
    }
}

static void where_record(chk_where *at, const json_t *rec)
{
    if (json_object_get(rec, "line")) {
        at->line = (int)jint(rec, "line");
        at->step = json_object_get(rec, "step") ? (int)jint(rec, "step") : -1;
    }
    at->t = jint(rec, "t");
}

/* ---- edits_kept --------------------------------------------------------- */

static int is_write_of(const json_t *r, const char *cname, const char *id, int64_t t)
{
    char buf[128];
    const char *pe = path_entity(jstr(r, "path"), buf, sizeof buf);
    return pe && !strcmp(pe, id) && !strcmp(jstr(r, "from"), cname) && jint(r, "t") >= t &&
           (!strcmp(jstr(r, "method"), "PUT") || !strcmp(jstr(r, "method"), "DELETE"));
}

/* Up to three requests of cname for id since t, "PUT 409 at +3.020s, ...",
 * as evidence; "none" when there are none. */
static char *requests_since(sim_world *w, const char *cname, const char *id, int64_t t)
{
    char *out = strdup("");
    size_t j, shown = 0, total = 0;
    json_t *r;
    json_array_foreach(w->journal, j, r)
    {
        if (!is_write_of(r, cname, id, t))
            continue;
        if (shown < 3) {
            char *o2 = scn_asprintf("%s%s%s %lld at %+.3fs", out, shown ? ", " : "",
                                    jstr(r, "method"), (long long)jint(r, "status"),
                                    (double)(jint(r, "t") - w->s->start_ms) / 1000.0);
            free(out);
            out = o2;
            shown++;
        }
        total++;
    }
    if (!total) {
        free(out);
        return strdup("none");
    }
    if (total > shown) {
        char *o2 = scn_asprintf("%s and %zu more", out, total - shown);
        free(out);
        out = o2;
    }
    return out;
}

/* The fields of edit i that no later accepted edit of the same client and
 * task sets again: those its writes must still carry (the later ones are
 * checked for their own edit).  NULL when a later delete supersedes it.
 * same: the indices in w->edits of that client's accepted edits of that
 * task, in order (kept_index). */
static json_t *fields_still_ours(sim_world *w, size_t i, const json_t *e, const json_t *same)
{
    /* No later edit to subtract (the last of same is i or before): the
     * edit's own fields, read only by the caller, need no copy. */
    size_t ns = json_array_size(same);
    json_t *own = json_object_get(e, "fields");
    if (json_is_object(own) && !(ns && (size_t)json_integer_value(json_array_get(same, ns - 1)) > i))
        return json_incref(own);
    json_t *f = json_deep_copy(own);
    if (!json_is_object(f)) {
        json_decref(f);
        f = json_object();
    }
    size_t j;
    json_t *kj;
    json_array_foreach(same, j, kj)
    {
        size_t k = (size_t)json_integer_value(kj);
        if (k <= i)
            continue;
        json_t *e2 = json_array_get(w->edits, k);
        if (!strcmp(jstr(e2, "op"), "delete")) {
            json_decref(f);
            return NULL;
        }
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(json_object_get(e2, "fields"), tmp, key, v) json_object_del(f, key);
    }
    return f;
}

/* A later accepted edit of the same client and task (any op); same as in
 * fields_still_ours (ascending). */
static int superseded(size_t i, const json_t *same)
{
    size_t n = json_array_size(same);
    return n && (size_t)json_integer_value(json_array_get(same, n - 1)) > i;
}

/* "a" NUL "b" into *key (malloc'd); its length. */
static size_t key2(const char *a, const char *b, char **key)
{
    size_t la = strlen(a), lb = strlen(b);
    *key = malloc(la + 1 + lb + 1);
    if (!*key)
        abort();
    memcpy(*key, a, la + 1);
    memcpy(*key + la + 1, b, lb + 1);
    return la + 1 + lb;
}

/* The journal's PUT and DELETE records of one client and task, in journal
 * order, keyed by client name, NUL, entity id (names and ids may hold any
 * other byte).  edits_kept looks at these instead of scanning the whole
 * journal for every edit. */
static json_t *writes_index(sim_world *w)
{
    json_t *idx = json_object();
    size_t j;
    json_t *r;
    json_array_foreach(w->journal, j, r)
    {
        char buf[128];
        const char *pe = path_entity(jstr(r, "path"), buf, sizeof buf);
        const char *m = jstr(r, "method");
        if (!pe || (strcmp(m, "PUT") && strcmp(m, "DELETE")))
            continue;
        char *key = NULL;
        size_t kl = key2(jstr(r, "from"), pe, &key);
        json_t *list = json_object_getn(idx, key, kl);
        if (!list) {
            list = json_array();
            json_object_setn_new(idx, key, kl, list);
        }
        json_array_append(list, r);
        free(key);
    }
    return idx;
}

/* "a" NUL "b" NUL "c" into *key (malloc'd); its length. */
static size_t key3(const char *a, const char *b, const char *c, char **key)
{
    char *ab = NULL;
    size_t lab = key2(a, b, &ab), lc = strlen(c);
    *key = realloc(ab, lab + 1 + lc + 1);
    if (!*key)
        abort();
    memcpy(*key + lab + 1, c, lc + 1);
    return lab + 1 + lc;
}

static json_t *writes_of(json_t *idx, const char *cname, const char *id)
{
    char *key = NULL;
    size_t kl = key2(cname, id, &key);
    json_t *list = json_object_getn(idx, key, kl);
    free(key);
    return list; /* NULL: none (json_array_foreach of NULL runs no round) */
}

/* What edits_kept asks about each edit, indexed once: scanning the
 * histories for every edit made a scenario of n edits cost n^2.  Keys are
 * key2(client, task) unless said. */
typedef struct kept_idx {
    json_t *writes;   /* its journal PUT and DELETE records (writes_index) */
    json_t *same;     /* indices in w->edits of its accepted edits, ascending */
    json_t *resolved; /* the latest t of its queue op "resolved" (CF-3) */
    json_t *noted;    /* key3(client, type, task): a notification of it */
} kept_idx;

static void kept_index(sim_world *w, kept_idx *x)
{
    x->writes = writes_index(w);
    x->same = json_object();
    x->resolved = json_object();
    x->noted = json_object();
    size_t i;
    json_t *r;
    char *key = NULL;
    size_t kl;
    json_array_foreach(w->edits, i, r)
    {
        if (!json_is_true(json_object_get(r, "accepted")))
            continue;
        kl = key2(jstr(r, "client"), jstr(r, "entity_id"), &key);
        json_t *list = json_object_getn(x->same, key, kl);
        if (!list) {
            list = json_array();
            json_object_setn_new_nocheck(x->same, key, kl, list);
        }
        json_array_append_new(list, json_integer((json_int_t)i));
        free(key);
    }
    for (size_t ci = 0; ci < w->ncl; ci++) {
        sim_client *c = &w->cl[ci];
        const char *cname = c->spec->name;
        json_array_foreach(c->queue_obs, i, r)
        {
            if (strcmp(jstr(r, "op"), "resolved"))
                continue;
            kl = key2(cname, jstr(r, "entity_id"), &key);
            json_t *t = json_object_getn(x->resolved, key, kl);
            if (!t || json_integer_value(t) < jint(r, "t"))
                json_object_setn_new_nocheck(x->resolved, key, kl, json_integer(jint(r, "t")));
            free(key);
        }
        json_array_foreach(c->notes, i, r)
        {
            kl = key3(cname, jstr(r, "type"), jstr(r, "entity_id"), &key);
            json_object_setn_new_nocheck(x->noted, key, kl, json_true());
            free(key);
        }
    }
}

static void kept_index_free(kept_idx *x)
{
    json_decref(x->writes);
    json_decref(x->same);
    json_decref(x->resolved);
    json_decref(x->noted);
}

/* c (named cname) was notified `type` for task id. */
static int noted(const kept_idx *x, const char *cname, const char *type, const char *id)
{
    char *key = NULL;
    size_t kl = key3(cname, type, id, &key);
    int yes = json_object_getn(x->noted, key, kl) != NULL;
    free(key);
    return yes;
}

/* The app settled its item of task id without a request at or after t
 * (CF-3: their delete or both deletes; queue observable op "resolved"). */
static int settled(const kept_idx *x, const char *cname, const char *id, int64_t t)
{
    json_t *last = writes_of(x->resolved, cname, id);
    return last && json_integer_value(last) >= t;
}

/*
 * every accepted edit is accounted for, each on its own evidence:
 * a later write of the same client and task does not stand in for an
 * edit that was never sent (issue 12: it used to hide the loss).
 *   - dead-letter with REJECTED, or a conflict choice waiting with CONFLICT;
 *   - settled without a request (CF-3, queue op "resolved") after it;
 *   - a CONFLICT for the task (the user chose; values may be theirs);
 *   - a put: a successful write at or after it whose body carries every
 *     field of it that no later edit of the app set again;
 *   - a delete: a successful DELETE at or after it, or a later edit of the
 *     same task by the same app (queued after it, so it supersedes it).
 */
static char *edits_kept(sim_world *w, chk_where *at)
{
    size_t i;
    json_t *e;
    /* Each client's status once (cli_status reads the whole store; nothing
     * changes while the invariants run), the histories indexed once. */
    json_t **status = calloc(w->ncl ? w->ncl : 1, sizeof *status);
    kept_idx idx;
    kept_index(w, &idx);
    char *found = NULL;
    if (!status)
        abort();
    json_array_foreach(w->edits, i, e)
    {
        if (!json_is_true(json_object_get(e, "accepted")))
            continue; /* refused: the user was told, nothing to keep */
        const char *cname = jstr(e, "client"), *id = jstr(e, "entity_id");
        const char *op = jstr(e, "op");
        int del = !strcmp(op, "delete");
        int64_t t0 = jint(e, "t");
        double rel = (double)(t0 - w->s->start_ms) / 1000.0;
        int ci = scn_client_index(w->s, cname);
        sim_client *c = &w->cl[ci];
        if (!status[ci] && c->core)
            status[ci] = cli_status_part(c->core, CLI_STATUS_QUEUE | CLI_STATUS_DEAD_LETTER |
                                                      CLI_STATUS_CONFLICTS);
        json_t *st = status[ci];
        /* cname's PUT and DELETE records of id (writes_index): of what
         * is_write_of() asks, only "at or after t0" is left to ask. */
        json_t *writes = writes_of(idx.writes, cname, id);
        json_t *same = writes_of(idx.same, cname, id);
        json_t *dead = json_object_get(st, "dead_letter");
        json_t *conf = json_object_get(st, "conflicts");
        json_t *queue = json_object_get(st, "queue");
        char *why = NULL;
        if (in_items(dead, id)) {
            if (!noted(&idx, cname, "REJECTED", id))
                why = scn_asprintf("%s's %s of %s (at %+.3fs) is in the dead-letter list without "
                                   "a REJECTED notification", cname, op, id, rel);
        } else if (in_items(conf, id)) {
            if (!noted(&idx, cname, "CONFLICT", id))
                why = scn_asprintf("%s's %s of %s (at %+.3fs) waits for a conflict choice "
                                   "without a CONFLICT notification", cname, op, id, rel);
        } else if (in_items(queue, id)) {
            /* CF-3: while a CONFLICT banner waits for the user's choice the
             * queue waits behind it (FIFO), so a later item of another task
             * is kept, not lost.  Found by hp-harness explore. */
            if (!(json_array_size(conf) > 0 && notified(c, "CONFLICT", NULL)))
                why = scn_asprintf("%s's %s of %s (at %+.3fs) is still queued after healing",
                                   cname, op, id, rel);
        } else if (settled(&idx, cname, id, t0) || noted(&idx, cname, "CONFLICT", id)) {
            /* CF-3: settled without a request (edit meets delete answered
             * "merge", or both sides deleted: queue op "resolved"), also
             * after an earlier write of it went out (explore found a create
             * acknowledged late, then a delete that met bob's), or the user
             * chose in a CONFLICT banner: nothing was lost. */
        } else if (del) {
            int ok = superseded(i, same);
            size_t j;
            json_t *r;
            json_array_foreach(writes, j, r)
            {
                if (jint(r, "t") >= t0 && !strcmp(jstr(r, "method"), "DELETE") &&
                    jint(r, "status") >= 200 && jint(r, "status") <= 299)
                    ok = 1;
            }
            if (!ok) {
                char *ev = requests_since(w, cname, id, t0);
                why = scn_asprintf("%s's delete of %s (at %+.3fs) was never applied: no "
                                   "successful DELETE of it, nothing settled it; %s's writes of "
                                   "%s since: %s", cname, id, rel, cname, id, ev);
                free(ev);
            }
        } else {
            json_t *f = fields_still_ours(w, i, e, same);
            int ok = f == NULL; /* superseded by a later delete */
            json_t *closest = NULL;
            size_t j;
            json_t *r;
            json_array_foreach(writes, j, r)
            {
                if (ok || jint(r, "t") < t0 || jint(r, "status") < 200 ||
                    jint(r, "status") > 299)
                    continue;
                json_t *task = json_object_get(json_object_get(r, "body"), "task");
                if (!strcmp(jstr(r, "method"), "DELETE") && superseded(i, same))
                    ok = 1; /* a later delete of ours went out instead */
                else if (!strcmp(jstr(r, "method"), "PUT") && scn_json_subset(f, task))
                    ok = 1;
                else if (!strcmp(jstr(r, "method"), "PUT"))
                    closest = r;
            }
            if (!ok) {
                char *fs = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
                if (closest) {
                    char *ts = json_dumps(json_object_get(json_object_get(closest, "body"), "task"),
                                          JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
                    why = scn_asprintf("%s's edit of %s (at %+.3fs) %s is in none of its "
                                       "successful writes since; the last PUT (at %+.3fs) "
                                       "carried %s", cname, id, rel, fs ? fs : "?",
                                       (double)(jint(closest, "t") - w->s->start_ms) / 1000.0,
                                       ts ? ts : "nothing");
                    free(ts);
                } else {
                    char *ev = requests_since(w, cname, id, t0);
                    why = scn_asprintf("%s's edit of %s (at %+.3fs) %s was never applied: no "
                                       "successful PUT carried it, nothing settled it; %s's "
                                       "writes of %s since: %s", cname, id, rel, fs ? fs : "?",
                                       cname, id, ev);
                    free(ev);
                }
                free(fs);
            }
            json_decref(f);
        }
        if (why) {
            where_record(at, e);
            found = why;
            break;
        }
    }
    for (size_t k = 0; k < w->ncl; k++)
        json_decref(status[k]);
    free(status);
    kept_index_free(&idx);
    return found;
}

/* ---- entity_order -------------------------------------------------------- */

static char *entity_order(sim_world *w, chk_where *at)
{
    for (size_t ci = 0; ci < w->ncl; ci++) {
        sim_client *c = &w->cl[ci];
        /* (a) applied events: revisions increase per entity. */
        json_t *lastrev = json_object();
        size_t i, ni = 0;
        json_t *ev;
        char *why = NULL;
        json_array_foreach(c->events, i, ev)
        {
            /* C-3: after a wrong key the app rebuilds from revision 0, so
             * the order starts again. */
            for (; ni < json_array_size(c->notes) &&
                   jint(json_array_get(c->notes, ni), "n") < jint(ev, "n");
                 ni++)
                if (!strcmp(jstr(json_array_get(c->notes, ni), "type"), "KEY_MISMATCH"))
                    json_object_clear(lastrev);
            const char *id = jstr(ev, "entity_id");
            const char *type = jstr(ev, "event_type");
            if (strcmp(type, "TASK_UPDATED"))
                continue;
            json_int_t rev = jint(ev, "revision");
            json_t *prev = json_object_get(lastrev, id);
            if (prev && json_integer_value(prev) >= rev) {
                why = scn_asprintf("%s applied %s revision %lld after revision %lld (at %+.3fs)",
                                c->spec->name, id, (long long)rev,
                                (long long)json_integer_value(prev),
                                (double)(jint(ev, "t") - w->s->start_ms) / 1000.0);
                at->t = jint(ev, "t");
                break;
            }
            json_object_set_new(lastrev, id, json_integer(rev));
        }
        json_decref(lastrev);
        if (why)
            return why;
        /* (b) writes go out in queue order per entity: the first sending of
         * each mutation id follows the order the ids were queued. */
        json_t *order = json_object(); /* mutation id -> position */
        json_int_t pos = 0;
        json_t *q;
        json_array_foreach(c->queue_obs, i, q)
        {
            const char *mid = jstr(q, "mutation_id");
            const char *op = jstr(q, "op");
            if (*mid && (!strcmp(op, "enqueued") || !strcmp(op, "coalesced")) &&
                !json_object_get(order, mid))
                json_object_set_new(order, mid, json_integer(pos++));
        }
        unsigned char *seen = calloc((size_t)pos + 1, 1); /* by position in `order` */
        json_t *lastpos = json_object();
        if (!seen)
            abort();
        json_t *r;
        json_array_foreach(w->journal, i, r)
        {
            /* Another client's record first: most are, and the tests are
             * pure, so their order does not change which records pass. */
            if (strcmp(jstr(r, "from"), c->spec->name))
                continue;
            const char *key = jstr(r, "idem_key");
            char buf[128];
            const char *pe = path_entity(jstr(r, "path"), buf, sizeof buf);
            if (!*key || !pe)
                continue;
            /* Only a queued mutation id's first sending counts: a key not
             * in `order` is passed over whether seen or not, so only the
             * queued ones are marked, by position. */
            json_t *p = json_object_get(order, key);
            if (!p || seen[json_integer_value(p)])
                continue;
            seen[json_integer_value(p)] = 1;
            json_t *lp = json_object_get(lastpos, pe);
            if (lp && json_integer_value(lp) > json_integer_value(p)) {
                why = scn_asprintf("%s sent a write of %s (%s %s, at %+.3fs) queued before one "
                                   "it had already sent", c->spec->name, pe, jstr(r, "method"),
                                   key, (double)(jint(r, "t") - w->s->start_ms) / 1000.0);
                at->t = jint(r, "t");
                break;
            }
            json_object_set(lastpos, pe, p);
        }
        json_decref(order);
        free(seen);
        json_decref(lastpos);
        if (why)
            return why;
    }
    return NULL;
}

/* ---- conflicts_logged ---------------------------------------------------- */

static long count_logs(sim_world *w, const char *actor, const char *msg_prefix)
{
    long n = 0;
    for (size_t i = 0; i < w->logs.n; i++) {
        const chk_logrec *r = &w->logs.v[i];
        if (r->level == HP_LOG_WARNING && !strcmp(r->actor, actor) &&
            !strncmp(r->msg, msg_prefix, strlen(msg_prefix)))
            n++;
    }
    return n;
}

static char *conflicts_logged(sim_world *w, chk_where *at)
{
    long sent = 0;
    size_t i;
    json_t *r, *last = NULL;
    json_array_foreach(w->journal, i, r)
    {
        if (jint(r, "status") == 409) {
            sent++;
            last = r;
        }
    }
    long swarn = count_logs(w, "server", "conflict");
    if (swarn < sent) {
        at->t = jint(last, "t");
        return scn_asprintf("the server sent %ld 409s but logged %ld WARNING conflict records "
                            "(last 409: %s %s from %s at %+.3fs)", sent, swarn,
                            jstr(last, "method"), jstr(last, "path"), jstr(last, "from"),
                            (double)(jint(last, "t") - w->s->start_ms) / 1000.0);
    }
    for (size_t ci = 0; ci < w->ncl; ci++) {
        sim_client *c = &w->cl[ci];
        long cw = count_logs(w, c->spec->name, "conflict");
        if (cw < c->conflicts_received)
            return scn_asprintf("%s received %d 409s but logged %ld WARNING conflict records",
                             c->spec->name, c->conflicts_received, cw);
    }
    return NULL;
}

/* ---- bounds and tokens ---------------------------------------------------- */

static char *queue_bounded(sim_world *w, chk_where *at)
{
    for (size_t ci = 0; ci < w->ncl; ci++)
        if (w->cl[ci].max_queue > w->policy.queue_max) {
            /* The first enqueue past the bound, when the app said so. */
            size_t i;
            json_t *q;
            json_array_foreach(w->cl[ci].queue_obs, i, q)
            {
                if (jint(q, "length") > w->policy.queue_max) {
                    at->t = jint(q, "t");
                    return scn_asprintf("%s's queue reached %d items (queue_max %d); item %lld "
                                        "was %s %s at %+.3fs", w->cl[ci].spec->name,
                                        w->cl[ci].max_queue, w->policy.queue_max,
                                        (long long)jint(q, "length"), jstr(q, "op"),
                                        jstr(q, "entity_id"),
                                        (double)(jint(q, "t") - w->s->start_ms) / 1000.0);
                }
            }
            return scn_asprintf("%s's queue reached %d items (queue_max %d)", w->cl[ci].spec->name,
                             w->cl[ci].max_queue, w->policy.queue_max);
        }
    return NULL;
}

static char *cache_bounded(sim_world *w, chk_where *at)
{
    (void)at; /* sampled after each step: no instant to name (chk_invariants says so) */
    for (size_t ci = 0; ci < w->ncl; ci++)
        if (w->cl[ci].max_cache_bytes > w->policy.cache_cap_bytes)
            return scn_asprintf("%s's cache reached %lld bytes (cache_cap %lld)",
                             w->cl[ci].spec->name, (long long)w->cl[ci].max_cache_bytes,
                             (long long)w->policy.cache_cap_bytes);
    return NULL;
}

static char *no_token_in_logs(sim_world *w, chk_where *at)
{
    /* A line shows token tok when it holds tok, or its signature (after
     * the last '.') when that is over 7 bytes.  Such a signature is a
     * suffix of tok: a line holding tok holds it too, so that one search
     * decides alone.  What each token is searched for is found once here,
     * not for every log record. */
    size_t nt = json_array_size(w->tokens), k = 0;
    const char **needle = malloc((nt ? nt : 1) * sizeof *needle);
    if (!needle)
        abort();
    for (size_t j = 0; j < nt; j++) {
        const char *tok = json_string_value(json_array_get(w->tokens, j));
        const char *sig = tok ? strrchr(tok, '.') : NULL;
        if (tok)
            needle[k++] = sig && strlen(sig) > 8 ? sig + 1 : tok;
    }
    char *why = NULL;
    for (size_t i = 0; i < w->logs.n && !why; i++) {
        const chk_logrec *r = &w->logs.v[i];
        const char *line = r->line;
        for (size_t j = 0; j < k; j++) {
            if (strstr(line, needle[j])) {
                at->t = (int64_t)r->t;
                why = scn_asprintf("a token appears in a %s log record: \"%.80s...\"", r->actor,
                                   line);
                break;
            }
        }
    }
    free(needle);
    return why;
}

char *chk_invariants(sim_world *w, scn_result *r, int healed)
{
    typedef char *(*chk_fn)(sim_world *, chk_where *);
    static const chk_fn fns[] = {edits_kept, entity_order, conflicts_logged,
                                 queue_bounded, cache_bounded, no_token_in_logs};
    char *first = NULL;
    for (int b = 0; scn_invariant_names[b]; b++) {
        /* "invariant:<name>" (snprintf's bytes, without its format
         * parsing: the names are short and fixed). */
        char name[64];
        size_t nl = strlen(scn_invariant_names[b]);
        if (nl > sizeof name - 11)
            nl = sizeof name - 11;
        memcpy(name, "invariant:", 10);
        memcpy(name + 10, scn_invariant_names[b], nl);
        name[10 + nl] = '\0';
        json_t *c = json_object();
        json_object_set_new(c, "name", json_string(name));
        if (w->s->invariants_off & (1u << b)) {
            json_object_set_new(c, "passed", json_true());
            json_object_set_new(c, "detail", json_string("skipped (invariants: off)"));
        } else if (b == 0 && !healed) {
            json_object_set_new(c, "passed", json_true());
            json_object_set_new(c, "detail", json_string("skipped (heal: false)"));
        } else {
            chk_where at = {0, -1, -1};
            char *why = fns[b](w, &at);
            if (why) {
                /* Name the step: the one the evidence points at, or the
                 * one running when it happened. */
                if (!at.line && at.t >= 0)
                    step_at(w, at.t, &at.line, &at.step);
                char *loc = at.line ? scn_asprintf("%s:%d", w->s->file, at.line)
                                    : scn_asprintf("%s (no single step: sampled after each step)",
                                                   w->s->file);
                char *full = at.step >= 0
                                 ? scn_asprintf("%s [step %d, %s]", why, at.step + 1, loc)
                                 : scn_asprintf("%s [%s]", why, loc);
                free(loc);
                free(why);
                why = full;
                if (at.line)
                    json_object_set_new(c, "line", json_integer(at.line));
                if (at.step >= 0)
                    json_object_set_new(c, "step", json_integer(at.step));
            }
            json_object_set_new(c, "passed", json_boolean(why == NULL));
            json_object_set_new(c, "detail", json_string(why ? why : ""));
            if (why && !first)
                first = scn_asprintf("invariant %s: %s", scn_invariant_names[b], why);
            free(why);
        }
        json_array_append_new(r->checks, c);
    }
    return first;
}

int chk_failed_line(const scn_result *r, int *step)
{
    size_t i;
    json_t *c;
    json_array_foreach(r->checks, i, c)
    {
        if (strncmp(jstr(c, "name"), "invariant:", 10) || json_is_true(json_object_get(c, "passed")))
            continue;
        if (step)
            *step = json_object_get(c, "step") ? (int)jint(c, "step") : -1;
        return (int)jint(c, "line");
    }
    if (step)
        *step = -1;
    return 0;
}
