/*
 * scn_expect.c - evaluating expectations against the world: histories and
 * logs (the client and server state expectations are scn_expect_state.c;
 * what the two share is scn_expect_int.h).
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
 *
 * Inputs: the world's recorded histories (sim_world) and a scenario's
 * expectation nodes.  Outputs: a scn_outcome per check; its strings are
 * malloc'd and owned by the outcome (scn_outcome_clear).  Strings from
 * scn__jtxt() live in a per-thread ring (scn_expect_cleanup frees it).
 */
#define _GNU_SOURCE
#include "scn_run.h"
#include "scn_expect_int.h"

#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_time.h"

void scn_outcome_clear(scn_outcome *o)
{
    free(o->text);
    free(o->expected);
    free(o->actual);
    memset(o, 0, sizeof *o);
}

char *scn__dump(const json_t *j)
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

const char *scn__jtxt(const json_t *j)
{
    unsigned i = ring_i++ % 8;
    free(ring[i]);
    ring[i] = scn__dump(j);
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


int scn__in_window(const json_t *rec, const scn_window *win)
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
        if (!scn__in_window(r, win))
            continue;
        if (k == H_REQUESTS && ci >= 0 &&
            strcmp(json_string_value(json_object_get(r, "from")), actor))
            continue;
        json_array_append(out, r);
    }
    return out;
}

const char *scn__jstr(const json_t *o, const char *k)
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
        return scn_asprintf("%s %s r%lld", scn__jstr(r, "event_type"), scn__jstr(r, "entity_id"),
                         (long long)json_integer_value(json_object_get(r, "revision")));
    case H_NOTIFIED:
        return scn_asprintf("%s%s%s", scn__jstr(r, "type"), *scn__jstr(r, "entity_id") ? " " : "",
                         scn__jstr(r, "entity_id"));
    case H_REQUESTS: {
        json_t *st = json_object_get(r, "status");
        const char *q = scn__jstr(r, "query");
        char status[24] = "";
        if (json_is_integer(st))
            snprintf(status, sizeof status, " %lld", (long long)json_integer_value(st));
        return scn_asprintf("%s %s%s%s%s (%s)", scn__jstr(r, "method"), scn__jstr(r, "path"),
                            *q ? "?" : "", q, status, scn__jstr(r, "from"));
    }
    case H_CLOSED:
        return scn_asprintf("%lld by %s", (long long)json_integer_value(json_object_get(r, "code")),
                         scn__jstr(r, "by"));
    case H_FRAMES:
        return scn_asprintf("%s %s%s", scn__jstr(r, "from"), scn__jstr(r, "type"),
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
            const char *q = scn__jstr(r, "query");
            if (pat && strchr(pat, '?') && *q)
                snprintf(subj, sizeof subj, "%s?%s", scn__jstr(r, "path"), q);
            else
                snprintf(subj, sizeof subj, "%s", scn__jstr(r, "path"));
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

int scn__quantity_ok(const scn_node *m, long n, char *desc, size_t dlen)
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

void scn__eval_history(sim_world *w, const char *actor, hist_kind k, const scn_node *val,
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
    int ok = val->kind == SCN_MAP ? scn__quantity_ok(val, nh, desc, sizeof desc)
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
        char *mt = scn__dump(m);
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
        if (!scn__in_window(r, win))
            continue;
        if (actor && strcmp(scn__jstr(r, "actor"), actor))
            continue;
        if (json_integer_value(json_object_get(r, "level")) < minlvl)
            continue;
        if (msg && strcmp(scn__jstr(r, "msg"), msg))
            continue;
        if (have_re) {
            char *subj = scn_asprintf("%s %s", scn__jstr(r, "msg"), scn__jstr(r, "fields"));
            int rc = regexec(&re, subj, 0, NULL, 0);
            free(subj);
            if (rc)
                continue;
        }
        hits++;
        if (hits <= 5) {
            char *e = scn_asprintf("%s%s\"%s\"", examples, hits > 1 ? ", " : "",
                                   scn__jstr(r, "line"));
            free(examples);
            examples = e;
        }
    }
    if (have_re)
        regfree(&re);
    char desc[96];
    if (!scn__quantity_ok(m, hits, desc, sizeof desc)) {
        o->ok = 0;
        json_t *j = scn_node_json(m);
        json_object_del(j, "count");
        json_object_del(j, "at_least");
        json_object_del(j, "at_most");
        json_object_del(j, "since");
        json_object_del(j, "within");
        if (actor && !json_object_get(j, "actor"))
            json_object_set_new(j, "actor", json_string(actor));
        char *mt = scn__dump(j);
        json_decref(j);
        o->expected = scn_asprintf("%s log records matching %s", desc, mt);
        free(mt);
        o->actual = scn_asprintf("%ld%s%s%s", hits, hits ? ": " : "", examples,
                              hits > 5 ? ", ..." : "");
    }
    free(examples);
    return o->ok;
}
