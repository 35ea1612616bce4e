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
 * Each adds one entry to result->checks ("invariant:<name>").
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
    snprintf(buf, len, "%s", id);
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

/* The app settled its item of `entity` without a request after t (CF-3:
 * their delete or both deletes; queue observable op "resolved"). */
static int settled(sim_client *c, const char *entity, int64_t t)
{
    size_t i;
    json_t *q;
    json_array_foreach(c->queue_obs, i, q)
    {
        if (!strcmp(jstr(q, "op"), "resolved") && !strcmp(jstr(q, "entity_id"), entity) &&
            jint(q, "t") >= t)
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

/* ---- edits_kept --------------------------------------------------------- */

static char *edits_kept(sim_world *w)
{
    size_t i;
    json_t *e;
    json_array_foreach(w->edits, i, e)
    {
        if (!json_is_true(json_object_get(e, "accepted")))
            continue; /* refused: the user was told, nothing to keep */
        const char *cname = jstr(e, "client"), *id = jstr(e, "entity_id");
        int ci = scn_client_index(w->s, cname);
        sim_client *c = &w->cl[ci];
        json_t *st = c->core ? cli_status(c->core) : NULL;
        json_t *dead = json_object_get(st, "dead_letter");
        json_t *conf = json_object_get(st, "conflicts");
        json_t *queue = json_object_get(st, "queue");
        char *why = NULL;
        if (in_items(dead, id)) {
            if (!notified(c, "REJECTED", id))
                why = scn_asprintf("%s's edit of %s is in the dead-letter list without a REJECTED "
                                "notification", cname, id);
        } else if (in_items(conf, id)) {
            if (!notified(c, "CONFLICT", id))
                why = scn_asprintf("%s's edit of %s waits for a conflict choice without a CONFLICT "
                                "notification", cname, id);
        } else if (in_items(queue, id)) {
            /* CF-3: while a CONFLICT banner waits for the user's choice the
             * queue waits behind it (FIFO), so a later item of another task
             * is kept, not lost.  Found by hp-harness explore. */
            if (!(json_array_size(conf) > 0 && notified(c, "CONFLICT", NULL)))
                why = scn_asprintf("%s's edit of %s is still queued after healing", cname, id);
        } else {
            /* A successful write by this client of this entity, received by
             * the server after the edit was made. */
            json_t *last = NULL;
            size_t j;
            json_t *r;
            json_array_foreach(w->journal, j, r)
            {
                char buf[128];
                const char *pe = path_entity(jstr(r, "path"), buf, sizeof buf);
                int64_t status = jint(r, "status");
                if (!pe || strcmp(pe, id) || strcmp(jstr(r, "from"), cname) || status < 200 ||
                    status > 299 || jint(r, "t") < jint(e, "t"))
                    continue;
                if (strcmp(jstr(r, "method"), "PUT") && strcmp(jstr(r, "method"), "DELETE"))
                    continue;
                last = r;
            }
            if (!last && settled(c, id, jint(e, "t"))) {
                /* CF-3: settled without a request (edit meets delete answered
                 * "merge", or both sides deleted): their version stands and
                 * the app said so (queue op "resolved"); nothing was lost. */
            } else if (!last) {
                /* Name the request that did reach the server, if any. */
                const char *seen = NULL;
                int64_t seen_status = 0;
                json_array_foreach(w->journal, j, r)
                {
                    char buf[128];
                    const char *pe = path_entity(jstr(r, "path"), buf, sizeof buf);
                    if (pe && !strcmp(pe, id) && !strcmp(jstr(r, "from"), cname) &&
                        jint(r, "t") >= jint(e, "t")) {
                        seen = jstr(r, "method");
                        seen_status = jint(r, "status");
                    }
                }
                if (seen)
                    why = scn_asprintf("%s's %s of %s (t=%+lldms) was never applied: its last "
                                       "request (%s) was answered %lld and nothing settled it",
                                       cname, jstr(e, "op"), id,
                                       (long long)(jint(e, "t") - w->s->start_ms), seen,
                                       (long long)seen_status);
                else
                    why = scn_asprintf("%s's %s of %s (t=%+lldms) never reached the server", cname,
                                       jstr(e, "op"), id, (long long)(jint(e, "t") - w->s->start_ms));
            } else if (!notified(c, "CONFLICT", id)) {
                /* Without a resolved conflict, the latest edit's values are
                 * what the last write carried (auto-merge keeps ours). */
                int latest = 1;
                size_t k;
                json_t *e2;
                json_array_foreach(w->edits, k, e2)
                {
                    if (k > i && json_is_true(json_object_get(e2, "accepted")) &&
                        !strcmp(jstr(e2, "client"), cname) && !strcmp(jstr(e2, "entity_id"), id))
                        latest = 0;
                }
                /* CF-3: the edit was settled without a request after its
                 * last write (both deleted; edit meets delete answered
                 * merge): their version stands.  Found by hp-harness
                 * explore (a create acknowledged late, then a delete that
                 * met bob's). */
                if (latest && settled(c, id, jint(last, "t")))
                    latest = 0;
                if (latest) {
                    json_t *f = json_object_get(e, "fields");
                    json_t *task = json_object_get(json_object_get(last, "body"), "task");
                    if (!strcmp(jstr(e, "op"), "delete")) {
                        if (strcmp(jstr(last, "method"), "DELETE"))
                            why = scn_asprintf("%s deleted %s but its last write was a PUT", cname,
                                            id);
                    } else if (json_is_object(f) && !scn_json_subset(f, task)) {
                        char *fs = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
                        char *ts = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
                        why = scn_asprintf("%s's last edit of %s %s is not what it wrote: %s", cname,
                                        id, fs ? fs : "?", ts ? ts : "nothing");
                        free(fs);
                        free(ts);
                    }
                }
            }
        }
        json_decref(st);
        if (why)
            return why;
    }
    return NULL;
}

/* ---- entity_order -------------------------------------------------------- */

static char *entity_order(sim_world *w)
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
                why = scn_asprintf("%s applied %s revision %lld after revision %lld",
                                c->spec->name, id, (long long)rev,
                                (long long)json_integer_value(prev));
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
        json_t *seen = json_object(), *lastpos = json_object();
        json_t *r;
        json_array_foreach(w->journal, i, r)
        {
            const char *key = jstr(r, "idem_key");
            char buf[128];
            const char *pe = path_entity(jstr(r, "path"), buf, sizeof buf);
            if (!*key || !pe || strcmp(jstr(r, "from"), c->spec->name) ||
                json_object_get(seen, key))
                continue;
            json_object_set_new(seen, key, json_true());
            json_t *p = json_object_get(order, key);
            if (!p)
                continue;
            json_t *lp = json_object_get(lastpos, pe);
            if (lp && json_integer_value(lp) > json_integer_value(p)) {
                why = scn_asprintf("%s sent a write of %s queued before one it had already sent",
                                c->spec->name, pe);
                break;
            }
            json_object_set(lastpos, pe, p);
        }
        json_decref(order);
        json_decref(seen);
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
    size_t i;
    json_t *r;
    json_array_foreach(w->logs, i, r)
    {
        if (jint(r, "level") == HP_LOG_WARNING && !strcmp(jstr(r, "actor"), actor) &&
            !strncmp(jstr(r, "msg"), msg_prefix, strlen(msg_prefix)))
            n++;
    }
    return n;
}

static char *conflicts_logged(sim_world *w)
{
    long sent = 0;
    size_t i;
    json_t *r;
    json_array_foreach(w->journal, i, r)
    {
        if (jint(r, "status") == 409)
            sent++;
    }
    long swarn = count_logs(w, "server", "conflict");
    if (swarn < sent)
        return scn_asprintf("the server sent %ld 409s but logged %ld WARNING conflict records", sent,
                         swarn);
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

static char *queue_bounded(sim_world *w)
{
    for (size_t ci = 0; ci < w->ncl; ci++)
        if (w->cl[ci].max_queue > w->policy.queue_max)
            return scn_asprintf("%s's queue reached %d items (queue_max %d)", w->cl[ci].spec->name,
                             w->cl[ci].max_queue, w->policy.queue_max);
    return NULL;
}

static char *cache_bounded(sim_world *w)
{
    for (size_t ci = 0; ci < w->ncl; ci++)
        if (w->cl[ci].max_cache_bytes > w->policy.cache_cap_bytes)
            return scn_asprintf("%s's cache reached %lld bytes (cache_cap %lld)",
                             w->cl[ci].spec->name, (long long)w->cl[ci].max_cache_bytes,
                             (long long)w->policy.cache_cap_bytes);
    return NULL;
}

static char *no_token_in_logs(sim_world *w)
{
    size_t i, j;
    json_t *r, *t;
    json_array_foreach(w->logs, i, r)
    {
        const char *line = jstr(r, "line");
        json_array_foreach(w->tokens, j, t)
        {
            const char *tok = json_string_value(t);
            const char *sig = tok ? strrchr(tok, '.') : NULL;
            if ((tok && strstr(line, tok)) || (sig && strlen(sig) > 8 && strstr(line, sig + 1)))
                return scn_asprintf("a token appears in a %s log record: \"%.80s...\"",
                                 jstr(r, "actor"), line);
        }
    }
    return NULL;
}

char *chk_invariants(sim_world *w, scn_result *r, int healed)
{
    typedef char *(*chk_fn)(sim_world *);
    static const chk_fn fns[] = {edits_kept, entity_order, conflicts_logged,
                                 queue_bounded, cache_bounded, no_token_in_logs};
    char *first = NULL;
    for (int b = 0; scn_invariant_names[b]; b++) {
        char name[64];
        snprintf(name, sizeof name, "invariant:%s", scn_invariant_names[b]);
        json_t *c = json_object();
        json_object_set_new(c, "name", json_string(name));
        if (w->s->invariants_off & (1u << b)) {
            json_object_set_new(c, "passed", json_true());
            json_object_set_new(c, "detail", json_string("skipped (invariants: off)"));
        } else if (b == 0 && !healed) {
            json_object_set_new(c, "passed", json_true());
            json_object_set_new(c, "detail", json_string("skipped (heal: false)"));
        } else {
            char *why = fns[b](w);
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
