/*
 * scn_expect.c - evaluating expectations against the world.
 *
 * History expectations (received, notified, requests, closed, frames, log)
 * share one language (docs/SCENARIOS.md §7.1): a word or a mapping means
 * "count matching entries" (default: at least one), a list means "these,
 * in order, others may come between", {exactly: [...]} means "the whole
 * history of the window, in order".  State expectations read the cores'
 * status objects (cli_status, srv_state) at the current instant.
 *
 * Every failure says what was expected and what was there, compactly, so
 * that the terminal line and the JUnit text are enough to understand it.
 */
#define _GNU_SOURCE
#include "scn_run.h"

#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_time.h"

#define SUMMARY_MAX 15

void scn_outcome_clear(scn_outcome *o)
{
    free(o->text);
    free(o->expected);
    free(o->actual);
    memset(o, 0, sizeof *o);
}

static char *dump(const json_t *j)
{
    if (!j)
        return strdup("(nothing)");
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    return s ? s : strdup("?");
}

/* Compact JSON for use inside a format: a per-thread ring of strings,
 * valid until 8 more calls (freed by scn_expect_cleanup()). */
static __thread char *ring[8];
static __thread unsigned ring_i;

static const char *jtxt(const json_t *j)
{
    unsigned i = ring_i++ % 8;
    free(ring[i]);
    ring[i] = dump(j);
    return ring[i];
}

void scn_expect_cleanup(void)
{
    for (unsigned i = 0; i < 8; i++) {
        free(ring[i]);
        ring[i] = NULL;
    }
}

/* ---- JSON subset --------------------------------------------------------- */

int scn_json_subset(const json_t *exp, const json_t *act)
{
    if (json_is_null(exp))
        return !act || json_is_null(act);
    if (!act)
        return 0;
    if (json_is_object(exp)) {
        if (!json_is_object(act))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)exp, k, v)
        {
            if (!scn_json_subset(v, json_object_get(act, k)))
                return 0;
        }
        return 1;
    }
    if (json_is_array(exp)) {
        if (!json_is_array(act) || json_array_size(exp) != json_array_size(act))
            return 0;
        for (size_t i = 0; i < json_array_size(exp); i++)
            if (!scn_json_subset(json_array_get(exp, i), json_array_get(act, i)))
                return 0;
        return 1;
    }
    if (json_is_number(exp) && json_is_number(act))
        return json_number_value(exp) == json_number_value(act);
    return json_equal((json_t *)exp, (json_t *)act);
}

/* Arrays of strings equal as sets (CONFLICT "fields" order is not part of
 * the contract). */
static int same_set(const json_t *a, const json_t *b)
{
    if (!json_is_array(a) || !json_is_array(b) || json_array_size(a) != json_array_size(b))
        return 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        int found = 0;
        for (size_t j = 0; j < json_array_size(b) && !found; j++)
            found = json_equal(json_array_get(a, i), json_array_get(b, j));
        if (!found)
            return 0;
    }
    return 1;
}

/* ---- histories ------------------------------------------------------------ */

typedef enum hist_kind { H_RECEIVED, H_NOTIFIED, H_REQUESTS, H_CLOSED, H_FRAMES } hist_kind;

static int in_window(const json_t *rec, const scn_window *win)
{
    return (uint64_t)json_integer_value(json_object_get(rec, "n")) >= win->n_min &&
           json_integer_value(json_object_get(rec, "t")) >= win->t_min;
}

/* The history records of an actor in the window: a new array. */
static json_t *history(sim_world *w, const char *actor, hist_kind k, const scn_window *win)
{
    json_t *src = NULL;
    int ci = strcmp(actor, "server") ? scn_client_index(w->s, actor) : -1;
    switch (k) {
    case H_RECEIVED:
        src = ci >= 0 ? w->cl[ci].events : NULL;
        break;
    case H_NOTIFIED:
        src = ci >= 0 ? w->cl[ci].notes : NULL;
        break;
    case H_REQUESTS:
        src = w->journal;
        break;
    case H_CLOSED:
        src = ci >= 0 ? w->cl[ci].closes : NULL;
        break;
    case H_FRAMES:
        src = ci >= 0 ? w->cl[ci].frames : NULL;
        break;
    }
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(src, i, r)
    {
        if (!in_window(r, win))
            continue;
        if (k == H_REQUESTS && ci >= 0 &&
            strcmp(json_string_value(json_object_get(r, "from")), actor))
            continue;
        json_array_append(out, r);
    }
    return out;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int frame_lost(const json_t *r)
{
    json_t *tr = json_object_get(r, "_trace");
    return tr ? json_object_get(tr, "lost") != NULL : json_is_true(json_object_get(r, "lost"));
}

static char *summarize_one(hist_kind k, const json_t *r)
{
    switch (k) {
    case H_RECEIVED:
        return scn_asprintf("%s %s r%lld", jstr(r, "event_type"), jstr(r, "entity_id"),
                         (long long)json_integer_value(json_object_get(r, "revision")));
    case H_NOTIFIED:
        return scn_asprintf("%s%s%s", jstr(r, "type"), *jstr(r, "entity_id") ? " " : "",
                         jstr(r, "entity_id"));
    case H_REQUESTS: {
        json_t *st = json_object_get(r, "status");
        const char *q = jstr(r, "query");
        char status[24] = "";
        if (json_is_integer(st))
            snprintf(status, sizeof status, " %lld", (long long)json_integer_value(st));
        return scn_asprintf("%s %s%s%s%s (%s)", jstr(r, "method"), jstr(r, "path"), *q ? "?" : "",
                         q, status, jstr(r, "from"));
    }
    case H_CLOSED:
        return scn_asprintf("%lld by %s", (long long)json_integer_value(json_object_get(r, "code")),
                         jstr(r, "by"));
    case H_FRAMES:
        return scn_asprintf("%s %s%s", jstr(r, "from"), jstr(r, "type"),
                         frame_lost(r) ? " (lost)" : "");
    }
    return strdup("?");
}

static char *summarize(hist_kind k, const json_t *recs)
{
    size_t n = json_array_size(recs);
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    out[len++] = '[';
    for (size_t i = 0; i < n && i < SUMMARY_MAX; i++) {
        char *one = summarize_one(k, json_array_get(recs, i));
        size_t l = strlen(one);
        while (len + l + 8 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            if (!out)
                abort();
        }
        if (i)
            out[len++] = ',', out[len++] = ' ';
        memcpy(out + len, one, l);
        len += l;
        free(one);
    }
    out[len] = '\0';
    char *res;
    if (n > SUMMARY_MAX)
        res = scn_asprintf("%s, ... %zu more]", out, n - SUMMARY_MAX);
    else
        res = scn_asprintf("%s]", out);
    free(out);
    return res;
}

/* The matcher of a word form. */
static json_t *word_matcher(hist_kind k, const scn_node *n)
{
    json_t *m = json_object();
    const char *s = scn_str(n) ? scn_str(n) : "";
    char a[128] = "", b[512] = "", c[32] = "";
    int parts = sscanf(s, "%127s %511s %31s", a, b, c);
    switch (k) {
    case H_RECEIVED:
        json_object_set_new(m, "event_type", json_string(a));
        if (parts >= 2)
            json_object_set_new(m, "entity_id", json_string(b));
        break;
    case H_NOTIFIED:
        json_object_set_new(m, "type", json_string(a));
        if (parts >= 2)
            json_object_set_new(m, "entity_id", json_string(b));
        break;
    case H_REQUESTS:
        json_object_set_new(m, "method", json_string(a));
        if (parts >= 2)
            json_object_set_new(m, "path", json_string(b));
        if (parts >= 3)
            json_object_set_new(m, "status", json_integer(atoi(c)));
        break;
    case H_CLOSED:
        json_object_set_new(m, "code", json_integer(atoi(a)));
        break;
    case H_FRAMES:
        json_object_set_new(m, "type", json_string(a));
        break;
    }
    return m;
}

static json_t *node_matcher(hist_kind k, const scn_node *n)
{
    if (n->kind == SCN_SCALAR)
        return word_matcher(k, n);
    json_t *m = scn_node_json(n);
    static const char *const q[] = {"count", "at_least", "at_most", "same_idem_key"};
    for (size_t i = 0; i < 4; i++)
        json_object_del(m, q[i]);
    return m;
}

static int rec_match(hist_kind k, const json_t *m, const json_t *r)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v)
    {
        if (k == H_REQUESTS && !strcmp(key, "path")) {
            const char *pat = json_string_value(v);
            char subj[2048];
            const char *q = jstr(r, "query");
            if (pat && strchr(pat, '?') && *q)
                snprintf(subj, sizeof subj, "%s?%s", jstr(r, "path"), q);
            else
                snprintf(subj, sizeof subj, "%s", jstr(r, "path"));
            if (!pat || fnmatch(pat, subj, 0) != 0)
                return 0;
        } else if (k == H_REQUESTS && !strcmp(key, "idem_key")) {
            json_t *have = json_object_get(r, "idem_key");
            int present = json_is_string(have);
            if (json_is_boolean(v)) {
                if (json_is_true(v) != present)
                    return 0;
            } else if (!json_equal(v, have)) {
                return 0;
            }
        } else if (k == H_NOTIFIED && !strcmp(key, "fields")) {
            if (!same_set(v, json_object_get(r, "fields")))
                return 0;
        } else if (k == H_FRAMES && !strcmp(key, "lost")) {
            if (json_is_true(v) != frame_lost(r))
                return 0;
        } else if (!scn_json_subset(v, json_object_get(r, key))) {
            return 0;
        }
    }
    return 1;
}

static int quantity_ok(const scn_node *m, long n, char *desc, size_t dlen)
{
    int64_t x;
    const scn_node *q;
    if ((q = scn_map_get(m, "count")) && !scn_get_int(q, &x)) {
        snprintf(desc, dlen, "exactly %lld", (long long)x);
        return n == x;
    }
    int ok = 1;
    desc[0] = '\0';
    if ((q = scn_map_get(m, "at_least")) && !scn_get_int(q, &x)) {
        snprintf(desc, dlen, "at least %lld", (long long)x);
        ok &= n >= x;
    }
    if ((q = scn_map_get(m, "at_most")) && !scn_get_int(q, &x)) {
        size_t l = strlen(desc);
        snprintf(desc + l, dlen - l, "%sat most %lld", l ? " and " : "", (long long)x);
        ok &= n <= x;
    }
    if (!desc[0]) {
        snprintf(desc, dlen, "at least 1");
        ok = n >= 1;
    }
    return ok;
}

static void eval_history(sim_world *w, const char *actor, hist_kind k, const scn_node *val,
                         const scn_window *win, scn_outcome *o)
{
    json_t *recs = history(w, actor, k, win);
    size_t n = json_array_size(recs);
    o->ok = 1;
    if (val->kind == SCN_SEQ || (val->kind == SCN_MAP && scn_map_get(val, "exactly"))) {
        int exact = val->kind == SCN_MAP;
        const scn_node *list = exact ? scn_map_get(val, "exactly") : val;
        size_t pos = 0, matched = 0;
        for (size_t i = 0; i < list->n; i++) {
            json_t *m = node_matcher(k, list->items[i]);
            int found = 0;
            if (exact) {
                if (pos < n && rec_match(k, m, json_array_get(recs, pos))) {
                    found = 1;
                    pos++;
                }
            } else {
                while (pos < n && !found) {
                    if (rec_match(k, m, json_array_get(recs, pos)))
                        found = 1;
                    pos++;
                }
            }
            json_decref(m);
            if (!found)
                break;
            matched++;
        }
        if (matched < list->n || (exact && pos != n)) {
            o->ok = 0;
            char *want = scn_node_text(list);
            o->expected = scn_asprintf("%s %s", exact ? "exactly" : "in order", want);
            free(want);
            char *have = summarize(k, recs);
            if (matched < list->n) {
                char *miss = scn_node_text(list->items[matched]);
                o->actual = scn_asprintf("%s (no match for item %zu: %s)", have, matched + 1, miss);
                free(miss);
            } else {
                o->actual = scn_asprintf("%s (%zu more than expected)", have, n - pos);
            }
            free(have);
        }
        json_decref(recs);
        return;
    }
    json_t *m = node_matcher(k, val);
    json_t *hits = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (rec_match(k, m, r))
            json_array_append(hits, r);
    }
    char desc[96];
    long nh = (long)json_array_size(hits);
    int ok = val->kind == SCN_MAP ? quantity_ok(val, nh, desc, sizeof desc)
                                  : (snprintf(desc, sizeof desc, "at least 1"), nh >= 1);
    const scn_node *same = val->kind == SCN_MAP ? scn_map_get(val, "same_idem_key") : NULL;
    int want_same = 0;
    const char *why = NULL;
    if (ok && same && !scn_get_bool(same, &want_same) && want_same) {
        const char *first = NULL;
        json_array_foreach(hits, i, r)
        {
            const char *key = json_string_value(json_object_get(r, "idem_key"));
            if (!key) {
                ok = 0;
                why = "a request without Idempotency-Key";
                break;
            }
            if (!first)
                first = key;
            else if (strcmp(first, key)) {
                ok = 0;
                why = "different Idempotency-Keys";
                break;
            }
        }
    }
    if (!ok) {
        o->ok = 0;
        char *mt = dump(m);
        o->expected = scn_asprintf("%s matching %s%s", desc, mt,
                                same && want_same ? " sharing one Idempotency-Key" : "");
        free(mt);
        char *hs = summarize(k, hits), *all = summarize(k, recs);
        if (why)
            o->actual = scn_asprintf("%s: %s", why, hs);
        else
            o->actual = scn_asprintf("%ld matching %s among %s", nh, hs, all);
        free(hs);
        free(all);
    }
    json_decref(hits);
    json_decref(m);
    json_decref(recs);
}

/* ---- logs ------------------------------------------------------------------ */

int scn_expect_log(sim_world *w, const char *actor, const scn_node *m, const scn_window *win,
                   scn_outcome *o)
{
    o->ok = 1;
    const scn_node *a = scn_map_get(m, "actor");
    if (a && scn_str(a))
        actor = scn_str(a);
    int minlvl = 0;
    const scn_node *lv = scn_map_get(m, "level");
    if (lv && scn_str(lv)) {
        hp_log_level l;
        if (!hp_log_level_parse(scn_str(lv), &l))
            minlvl = (int)l;
    }
    const char *msg = scn_str(scn_map_get(m, "message"));
    const char *pat = scn_str(scn_map_get(m, "pattern"));
    regex_t re;
    int have_re = 0;
    if (pat) {
        if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB)) {
            o->ok = 0;
            o->at = scn_map_get(m, "pattern");
            o->expected = scn_asprintf("a valid regular expression");
            o->actual = scn_asprintf("'%s' does not compile", pat);
            return 0;
        }
        have_re = 1;
    }
    long hits = 0;
    size_t i;
    json_t *r;
    char *examples = strdup("");
    json_array_foreach(w->logs, i, r)
    {
        if (!in_window(r, win))
            continue;
        if (actor && strcmp(jstr(r, "actor"), actor))
            continue;
        if (json_integer_value(json_object_get(r, "level")) < minlvl)
            continue;
        if (msg && strcmp(jstr(r, "msg"), msg))
            continue;
        if (have_re) {
            char *subj = scn_asprintf("%s %s", jstr(r, "msg"), jstr(r, "fields"));
            int rc = regexec(&re, subj, 0, NULL, 0);
            free(subj);
            if (rc)
                continue;
        }
        hits++;
        if (hits <= 5) {
            char *e = scn_asprintf("%s%s\"%s\"", examples, hits > 1 ? ", " : "", jstr(r, "line"));
            free(examples);
            examples = e;
        }
    }
    if (have_re)
        regfree(&re);
    char desc[96];
    if (!quantity_ok(m, hits, desc, sizeof desc)) {
        o->ok = 0;
        json_t *j = scn_node_json(m);
        json_object_del(j, "count");
        json_object_del(j, "at_least");
        json_object_del(j, "at_most");
        json_object_del(j, "since");
        json_object_del(j, "within");
        if (actor && !json_object_get(j, "actor"))
            json_object_set_new(j, "actor", json_string(actor));
        char *mt = dump(j);
        json_decref(j);
        o->expected = scn_asprintf("%s log records matching %s", desc, mt);
        free(mt);
        o->actual = scn_asprintf("%ld%s%s%s", hits, hits ? ": " : "", examples,
                              hits > 5 ? ", ..." : "");
    }
    free(examples);
    return o->ok;
}

/* ---- client state ---------------------------------------------------------- */

static void fail_at(scn_outcome *o, char *expected, char *actual)
{
    o->ok = 0;
    o->expected = expected;
    o->actual = actual;
}

static json_t *ids_of(const json_t *items, const char *key)
{
    json_t *a = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *v = json_is_object(it) ? json_object_get(it, key) : it;
        json_array_append(a, v ? v : json_null());
    }
    return a;
}

/* queue / dead_letter forms on the item array `items`. */
static void eval_list_form(const scn_node *val, json_t *items, const char *idkey, scn_outcome *o)
{
    o->ok = 1;
    json_t *ids = ids_of(items, idkey);
    int64_t x;
    if (val->kind == SCN_SCALAR && !scn_get_int(val, &x)) {
        if ((int64_t)json_array_size(items) != x)
            fail_at(o, scn_asprintf("length %lld", (long long)x),
                    scn_asprintf("length %zu: %s", json_array_size(items), jtxt(ids)));
    } else if (val->kind == SCN_SEQ) {
        json_t *want = scn_node_json(val);
        if (!json_equal(want, ids))
            fail_at(o, dump(want), dump(ids));
        json_decref(want);
    } else if (val->kind == SCN_MAP) {
        const scn_node *n;
        if ((n = scn_map_get(val, "length")) && !scn_get_int(n, &x) &&
            (int64_t)json_array_size(items) != x)
            fail_at(o, scn_asprintf("length %lld", (long long)x),
                    scn_asprintf("length %zu: %s", json_array_size(items), jtxt(ids)));
        if (o->ok && (n = scn_map_get(val, "entities"))) {
            json_t *want = scn_node_json(n);
            if (!json_equal(want, ids))
                fail_at(o, scn_asprintf("entities %s", jtxt(want)), dump(ids));
            json_decref(want);
        }
        if (o->ok && (n = scn_map_get(val, "items"))) {
            json_t *want = scn_node_json(n);
            if (!scn_json_subset(want, items))
                fail_at(o, scn_asprintf("items %s", jtxt(want)), dump(items));
            json_decref(want);
        }
    }
    json_decref(ids);
}

static json_t *sorted_copy(const json_t *a)
{
    /* Insertion sort of strings: small lists. */
    size_t n = json_array_size(a);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s)
            continue;
        size_t j = 0;
        while (j < json_array_size(out) && strcmp(json_string_value(json_array_get(out, j)), s) < 0)
            j++;
        json_array_insert_new(out, j, json_string(s));
    }
    return out;
}

static int contains_str(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return 1;
    }
    return 0;
}

/* Reconnect delays: attempt time minus the loss before it, for each
 * attempt that directly follows a loss (an `online`, a new token or the
 * first connect reset the chain: those connects are immediate). */
static json_t *reconnect_delays(sim_world *w, int ci, const scn_window *win)
{
    json_t *out = json_array();
    int64_t loss_t = -1;
    size_t i;
    json_t *r;
    json_array_foreach(w->cl[ci].conn, i, r)
    {
        if (!in_window(r, win))
            continue;
        const char *k = jstr(r, "kind");
        int64_t t = json_integer_value(json_object_get(r, "t"));
        if (!strcmp(k, "loss"))
            loss_t = t;
        else if (!strcmp(k, "reset"))
            loss_t = -1;
        else if (!strcmp(k, "attempt")) {
            if (loss_t >= 0)
                json_array_append_new(out, json_integer(t - loss_t));
            loss_t = -1;
        }
    }
    return out;
}

static char *durations_text(const json_t *a)
{
    char buf[2048];
    size_t len = 0;
    buf[len++] = '[';
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        char d[32];
        hp_duration_format(json_integer_value(v), d, sizeof d);
        if (i == SUMMARY_MAX) {
            len += (size_t)snprintf(buf + len, sizeof buf - len - 2, ", ... %zu more",
                                    json_array_size(a) - i);
            break;
        }
        len += (size_t)snprintf(buf + len, sizeof buf - len - 2, "%s%s", i ? ", " : "", d);
    }
    snprintf(buf + len, sizeof buf - len, "]");
    return strdup(buf);
}

static void eval_client(sim_world *w, int ci, const char *key, const scn_node *val,
                        const scn_window *win, scn_outcome *o)
{
    sim_client *c = &w->cl[ci];
    const char *name = c->spec->name;
    o->ok = 1;
    if (!strcmp(key, "received"))
        return eval_history(w, name, H_RECEIVED, val, win, o);
    if (!strcmp(key, "notified"))
        return eval_history(w, name, H_NOTIFIED, val, win, o);
    if (!strcmp(key, "requests"))
        return eval_history(w, name, H_REQUESTS, val, win, o);
    if (!strcmp(key, "closed"))
        return eval_history(w, name, H_CLOSED, val, win, o);
    if (!strcmp(key, "frames"))
        return eval_history(w, name, H_FRAMES, val, win, o);
    if (!strcmp(key, "log")) {
        if (val->kind == SCN_SEQ) {
            for (size_t i = 0; i < val->n && o->ok; i++)
                scn_expect_log(w, name, val->items[i], win, o);
            return;
        }
        scn_expect_log(w, name, val, win, o);
        return;
    }
    if (!strcmp(key, "reconnect_delays")) {
        const scn_node *list = val->kind == SCN_MAP ? scn_map_get(val, "delays") : val;
        int64_t tol = 100;
        if (val->kind == SCN_MAP && scn_map_get(val, "tolerance"))
            scn_duration(scn_map_get(val, "tolerance"), &tol);
        json_t *have = reconnect_delays(w, ci, win);
        int ok = json_array_size(have) >= list->n;
        for (size_t i = 0; ok && i < list->n; i++) {
            int64_t want = 0;
            scn_duration(list->items[i], &want);
            int64_t got = json_integer_value(json_array_get(have, i));
            if (got < want - tol || got > want + tol)
                ok = 0;
        }
        if (!ok) {
            char td[32];
            hp_duration_format(tol, td, sizeof td);
            char *want = scn_node_text(list);
            fail_at(o, scn_asprintf("%s (tolerance %s)", want, td), durations_text(have));
            free(want);
        }
        json_decref(have);
        return;
    }
    if (!strcmp(key, "connect_attempts")) {
        long n = 0;
        size_t i;
        json_t *r;
        json_array_foreach(c->conn, i, r)
        {
            if (in_window(r, win) && !strcmp(jstr(r, "kind"), "attempt"))
                n++;
        }
        char desc[96];
        int64_t x;
        int ok;
        if (val->kind == SCN_MAP)
            ok = quantity_ok(val, n, desc, sizeof desc);
        else {
            scn_get_int(val, &x);
            snprintf(desc, sizeof desc, "exactly %lld", (long long)x);
            ok = n == x;
        }
        if (!ok)
            fail_at(o, scn_asprintf("%s connect attempts", desc), scn_asprintf("%ld", n));
        return;
    }
    /* State expectations need a running app. */
    if (!c->core) {
        fail_at(o, scn_asprintf("%s's app running", name),
                scn_asprintf("%s has crashed (use '%s: restart')", name, name));
        return;
    }
    json_t *st = cli_status(c->core);
    if (!strcmp(key, "connection") || !strcmp(key, "online") ||
        !strcmp(key, "applied_revision")) {
        json_t *want = scn_node_json(val);
        json_t *have = json_object_get(st, key);
        if (!scn_json_subset(want, have))
            fail_at(o, dump(want), dump(have));
        json_decref(want);
    } else if (!strcmp(key, "queue")) {
        eval_list_form(val, json_object_get(st, "queue"), "entity_id", o);
    } else if (!strcmp(key, "dead_letter")) {
        eval_list_form(val, json_object_get(st, "dead_letter"), "entity_id", o);
    } else if (!strcmp(key, "conflicts")) {
        eval_list_form(val, json_object_get(st, "conflicts"), "entity_id", o);
    } else if (!strcmp(key, "locks")) {
        json_t *want = scn_node_json(val);
        json_t *have = json_object_get(st, "locks");
        json_t *hs = sorted_copy(have), *ws = sorted_copy(want);
        if (!json_equal(hs, ws))
            fail_at(o, dump(want), dump(have));
        json_decref(hs);
        json_decref(ws);
        json_decref(want);
    } else if (!strcmp(key, "cache")) {
        json_t *cache = json_object_get(st, "cache");
        json_t *ids = json_object_get(cache, "ids");
        for (size_t i = 0; i < val->n && o->ok; i++) {
            const char *ck = val->keys[i]->str;
            const scn_node *x = val->items[i];
            int64_t v = 0;
            scn_get_int(x, &v);
            json_int_t entries = json_integer_value(json_object_get(cache, "entries"));
            json_int_t bytes = json_integer_value(json_object_get(cache, "bytes"));
            o->at = val->keys[i];
            if (!strcmp(ck, "entries") && entries != v)
                fail_at(o, scn_asprintf("%lld entries", (long long)v),
                        scn_asprintf("%lld entries %s", (long long)entries, jtxt(ids)));
            else if (!strcmp(ck, "bytes") && bytes != v)
                fail_at(o, scn_asprintf("%lld bytes", (long long)v),
                        scn_asprintf("%lld bytes", (long long)bytes));
            else if (!strcmp(ck, "max_bytes") && bytes > v)
                fail_at(o, scn_asprintf("at most %lld bytes", (long long)v),
                        scn_asprintf("%lld bytes", (long long)bytes));
            else if (!strcmp(ck, "min_bytes") && bytes < v)
                fail_at(o, scn_asprintf("at least %lld bytes", (long long)v),
                        scn_asprintf("%lld bytes", (long long)bytes));
            else if (!strcmp(ck, "ids")) {
                json_t *want = scn_node_json(x), *ws = sorted_copy(want), *hs = sorted_copy(ids);
                if (!json_equal(ws, hs))
                    fail_at(o, scn_asprintf("ids %s", jtxt(ws)), dump(hs));
                json_decref(want);
                json_decref(ws);
                json_decref(hs);
            } else if (!strcmp(ck, "contains") || !strcmp(ck, "missing")) {
                int want_in = !strcmp(ck, "contains");
                for (size_t j = 0; j < x->n && o->ok; j++) {
                    const char *id = scn_str(x->items[j]);
                    if (id && contains_str(ids, id) != want_in)
                        fail_at(o, scn_asprintf("%s %s in the cache", id,
                                             want_in ? "present" : "absent"),
                                scn_asprintf("cache ids %s", jtxt(ids)));
                }
            }
        }
        if (o->ok)
            o->at = NULL;
    } else if (!strcmp(key, "cached")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1) && o->ok; i++) {
            const scn_node *one = val->kind == SCN_SEQ ? val->items[i] : val;
            const char *id = scn_str(scn_map_get(one, "id"));
            json_t *want = scn_node_json(one);
            json_t *have = id ? cli_cached(c->core, id) : NULL;
            if (!have || !scn_json_subset(want, have))
                fail_at(o, dump(want), have ? dump(have) : scn_asprintf("%s not cached", id));
            json_decref(want);
            json_decref(have);
        }
    } else if (!strcmp(key, "status")) {
        json_t *want = scn_node_json(val);
        /* The whole status object on failure (as the server's `state`):
         * the key the writer guessed may sit elsewhere in it. */
        if (!scn_json_subset(want, st))
            fail_at(o, dump(want), dump(st));
        json_decref(want);
    }
    json_decref(st);
}

/* ---- server state ---------------------------------------------------------- */

static json_t *find_task(json_t *state, const char *hh, const char *id, const char **hh_out)
{
    json_t *hhs = json_object_get(state, "households");
    const char *k;
    json_t *v;
    json_object_foreach(hhs, k, v)
    {
        if (hh && strcmp(hh, k))
            continue;
        json_t *t = json_object_get(json_object_get(v, "tasks"), id);
        if (t) {
            if (hh_out)
                *hh_out = k;
            return t;
        }
    }
    return NULL;
}

static void eval_server(sim_world *w, const char *key, const scn_node *val,
                        const scn_window *win, scn_outcome *o)
{
    o->ok = 1;
    if (!strcmp(key, "requests"))
        return eval_history(w, "server", H_REQUESTS, val, win, o);
    if (!strcmp(key, "log")) {
        if (val->kind == SCN_SEQ) {
            for (size_t i = 0; i < val->n && o->ok; i++)
                scn_expect_log(w, "server", val->items[i], win, o);
            return;
        }
        scn_expect_log(w, "server", val, win, o);
        return;
    }
    if (!w->srv) {
        fail_at(o, strdup("the server running"), strdup("the server has crashed ('server: start')"));
        return;
    }
    json_t *st = srv_state(w->srv);
    if (!strcmp(key, "task")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1) && o->ok; i++) {
            const scn_node *one = val->kind == SCN_SEQ ? val->items[i] : val;
            json_t *want = scn_node_json(one);
            const char *hh = json_string_value(json_object_get(want, "household"));
            char *hhc = hh ? strdup(hh) : NULL;
            json_object_del(want, "household");
            const char *id = json_string_value(json_object_get(want, "id"));
            json_t *have = id ? find_task(st, hhc, id, NULL) : NULL;
            if (!have || !scn_json_subset(want, have))
                fail_at(o, dump(want), have ? dump(have) : scn_asprintf("no task %s", id ? id : "?"));
            free(hhc);
            json_decref(want);
        }
    } else if (!strcmp(key, "no_task")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1) && o->ok; i++) {
            const char *id = scn_str(val->kind == SCN_SEQ ? val->items[i] : val);
            json_t *have = id ? find_task(st, NULL, id, NULL) : NULL;
            if (have)
                fail_at(o, scn_asprintf("no task %s", id), dump(have));
        }
    } else if (!strcmp(key, "revision")) {
        json_t *hhs = json_object_get(st, "households");
        json_t *have = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(hhs, k, v)
        {
            json_object_set(have, k, json_object_get(v, "revision"));
        }
        int64_t x;
        if (val->kind == SCN_SCALAR && !scn_get_int(val, &x)) {
            if (json_object_size(have) != 1) {
                fail_at(o, scn_asprintf("revision %lld of the only household", (long long)x),
                        scn_asprintf("%zu households %s: write revision: {household: n}",
                                  json_object_size(have), dump(have)));
            } else {
                json_object_foreach(have, k, v)
                {
                    if (json_integer_value(v) != x)
                        fail_at(o, scn_asprintf("revision %lld", (long long)x),
                                scn_asprintf("revision %lld", (long long)json_integer_value(v)));
                }
            }
        } else {
            json_t *want = scn_node_json(val);
            if (!scn_json_subset(want, have))
                fail_at(o, dump(want), dump(have));
            json_decref(want);
        }
        json_decref(have);
    } else if (!strcmp(key, "lock")) {
        const char *id = scn_str(scn_map_get(val, "id"));
        const char *hh = scn_str(scn_map_get(val, "household"));
        int held = 1;
        if (scn_map_get(val, "held"))
            scn_get_bool(scn_map_get(val, "held"), &held);
        json_t *lock = NULL;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(st, "households"), k, v)
        {
            if (hh && strcmp(hh, k))
                continue;
            json_t *l = json_object_get(json_object_get(v, "locks"), id ? id : "");
            if (l && !lock)
                lock = l;
        }
        const char *holder = scn_str(scn_map_get(val, "holder"));
        if (!held && lock)
            fail_at(o, scn_asprintf("no lock on %s", id), dump(lock));
        else if (held && !lock)
            fail_at(o, scn_asprintf("a lock on %s%s%s", id, holder ? " held by " : "",
                                 holder ? holder : ""),
                    scn_asprintf("no lock on %s", id));
        else if (held && holder && strcmp(jstr(lock, "holder"), holder))
            fail_at(o, scn_asprintf("lock on %s held by %s", id, holder), dump(lock));
    } else if (!strcmp(key, "connections")) {
        json_t *conns = json_object_get(st, "connections");
        const char *user = val->kind == SCN_MAP ? scn_str(scn_map_get(val, "user")) : NULL;
        int64_t want = 0;
        scn_get_int(val->kind == SCN_MAP ? scn_map_get(val, "count") : val, &want);
        long n = 0;
        size_t i;
        json_t *v;
        json_array_foreach(conns, i, v)
        {
            if (!user || !strcmp(jstr(v, "user"), user))
                n++;
        }
        if (n != want)
            fail_at(o, scn_asprintf("%lld connections%s%s", (long long)want, user ? " of " : "",
                                 user ? user : ""),
                    scn_asprintf("%ld: %s", n, jtxt(conns)));
    } else if (!strcmp(key, "state")) {
        json_t *want = scn_node_json(val);
        if (!scn_json_subset(want, st))
            fail_at(o, dump(want), dump(st));
        json_decref(want);
    }
    json_decref(st);
}

int scn_expect_actor(sim_world *w, const char *actor, const scn_node *asserts,
                     const scn_window *win, scn_each_fn each, void *ud, scn_outcome *fail)
{
    int ci = strcmp(actor, "server") ? scn_client_index(w->s, actor) : -1;
    int failed = 0;
    for (size_t i = 0; i < asserts->n; i++) {
        scn_outcome o = {0};
        const char *key = asserts->keys[i]->str;
        if (ci >= 0)
            eval_client(w, ci, key, asserts->items[i], win, &o);
        else
            eval_server(w, key, asserts->items[i], win, &o);
        if (!o.at)
            o.at = asserts->keys[i];
        o.text = scn_asprintf("%s.%s", actor, key);
        if (o.ok && !o.expected)
            o.expected = scn_node_text(asserts->items[i]);
        if (each)
            each(ud, &o);
        if (!o.ok && !failed) {
            *fail = o;
            failed = 1;
            /* With a callback every assertion is reported (each failure a
             * check); without one (wait_until polling) the first decides. */
            if (!each)
                return 0;
            continue;
        }
        scn_outcome_clear(&o);
    }
    return !failed;
}
