/*
 * chk_history.c - the one matcher of history and log expectations
 * (chk_history.h says the record shape, the language and what real mode
 * passes as data).  Used by the simulator's evaluator (scn_expect*.c) and
 * by real mode (real_expect.c).
 *
 * Inputs: records in the documented shape, expectation nodes, a window.
 * Outputs: a scn_outcome; its strings are malloc'd and owned by it.
 * Strings from chk_jtxt() live in a per-thread ring (scn_expect_cleanup).
 */
#define _GNU_SOURCE
#include "chk_history.h"
#include "scn_expect_int.h"

#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_log.h"

static void fail_at(scn_outcome *o, char *expected, char *actual)
{
    o->ok = 0;
    o->expected = expected;
    o->actual = actual;
}

/* ---- failure texts -------------------------------------------------------- */

char *chk_dump(const json_t *j)
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

const char *chk_jtxt(const json_t *j)
{
    unsigned i = ring_i++ % 8;
    free(ring[i]);
    ring[i] = chk_dump(j);
    return ring[i];
}

void scn_expect_cleanup(void)
{
    scn__memo_free(); /* the run's world ends: so do the memos of its polls */
    for (unsigned i = 0; i < 8; i++) {
        free(ring[i]);
        ring[i] = NULL;
    }
}

/* The one window test of both record forms: num reads rec's number
 * under a key (a missing key reads 0). */
static int win_holds(const void *rec, double (*num)(const void *, const char *),
                     const chk_window *win)
{
    for (int i = 0; win && i < 2; i++)
        if (win->key[i] && num(rec, win->key[i]) < win->min[i])
            return 0;
    return 1;
}

static double json_num(const void *rec, const char *key)
{
    return json_number_value(json_object_get((const json_t *)rec, key));
}

int chk_in_window(const json_t *rec, const chk_window *win)
{
    return win_holds(rec, json_num, win);
}

/* The records of recs in win: a new reference (recs itself when the
 * window sets no key: a wait_until's, polled at every instant). */
static json_t *in_window(const json_t *recs, const chk_window *win)
{
    if (!win || (!win->key[0] && !win->key[1]))
        return json_incref((json_t *)recs);
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (chk_in_window(r, win))
            json_array_append(out, r);
    }
    return out;
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

static int frame_lost(const json_t *r)
{
    json_t *tr = json_object_get(r, "_trace");
    return tr ? json_object_get(tr, "lost") != NULL : json_is_true(json_object_get(r, "lost"));
}

/* ---- what a failure shows of the records ---------------------------------- */

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

/* ---- one record against one expectation item ------------------------------ */

/* The matcher of a word form: "TASK_UPDATED t1", "CONFLICT t1",
 * "PUT /path 409", "4008", "HEARTBEAT". */
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

/* A matcher: the expectation's JSON (m, what failure texts show) and its
 * keys, each with how it is compared, read once per expectation: a
 * record is matched at every poll (a wait_until's), and reading the keys
 * back from m and naming their comparison for each record cost more than
 * the comparisons. */
enum { BY_SUBSET, BY_PATH, BY_IDEM, BY_FIELDS, BY_LOST, BY_STR, BY_NUM };
typedef struct chk_matcher {
    hist_kind k; /* the history it was made for */
    json_t *m;
    size_t n;
    struct mkey {
        const char *key;
        size_t klen; /* strlen(key): json_object_getn spares the strlen per record */
        json_t *v;
        int by; /* BY_* */
        /* BY_STR: v's string; BY_NUM: v's number.  scn_json_subset of a
         * scalar, decided here once instead of per record: a string
         * equals only a string of the same bytes (json_equal), a number
         * only a number of the same value (both read as doubles). */
        const char *s;
        size_t slen;
        double num;
    } *keys;
} matcher;

static matcher *node_matcher(hist_kind k, const scn_node *n, const chk_opts *opts)
{
    json_t *m;
    if (n->kind == SCN_SCALAR) {
        m = word_matcher(k, n);
    } else if (n->kind == SCN_MAP) {
        /* scn_node_json(n) without the quantity keys: the same object, the
         * others in the same order, without making and deleting them. */
        static const char *const q[] = {"count", "at_least", "at_most", "same_idem_key"};
        m = json_object();
        for (size_t i = 0; i < n->n; i++) {
            const char *key = n->keys[i]->str;
            int quantity = 0;
            for (size_t j = 0; j < 4 && !quantity; j++)
                quantity = !strcmp(key, q[j]);
            if (!quantity)
                json_object_set_new(m, key, scn_node_json(n->items[i]));
        }
    } else {
        m = scn_node_json(n); /* a list: no key matches it */
    }
    if (opts && opts->xlate)
        opts->xlate(opts->ud, m);
    matcher *mt = calloc(1, sizeof *mt);
    size_t cap = json_object_size(m);
    if (!mt || !(mt->keys = calloc(cap ? cap : 1, sizeof *mt->keys)))
        abort();
    mt->m = m;
    mt->k = k;
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        int by = BY_SUBSET;
        if (k == H_REQUESTS && !strcmp(key, "path"))
            by = BY_PATH;
        else if (k == H_REQUESTS && !strcmp(key, "idem_key"))
            by = BY_IDEM;
        else if (k == H_NOTIFIED && !strcmp(key, "fields"))
            by = BY_FIELDS;
        else if (k == H_FRAMES && !strcmp(key, "lost"))
            by = BY_LOST;
        struct mkey *mk = &mt->keys[mt->n++];
        *mk = (struct mkey){.key = key, .klen = strlen(key), .v = v, .by = by};
        if (by == BY_SUBSET && json_is_string(v)) {
            mk->by = BY_STR;
            mk->s = json_string_value(v);
            mk->slen = json_string_length(v);
        } else if (by == BY_SUBSET && json_is_number(v)) {
            mk->by = BY_NUM;
            mk->num = json_number_value(v);
        }
    }
    return mt;
}

static void matcher_free(matcher *mt)
{
    json_decref(mt->m);
    free(mt->keys);
    free(mt);
}

chk_matcher *chk_matcher_new(hist_kind k, const scn_node *item, const chk_opts *opts)
{
    return node_matcher(k, item, opts);
}

void chk_matcher_free(chk_matcher *m)
{
    matcher_free(m);
}

/* A path pattern against a request record: with a "?", against
 * path?query when the record has a query; without, against the path. */
static int path_match(const char *pat, const json_t *r, unsigned flags)
{
    char subj[2048], pbuf[2048];
    const char *q = scn__jstr(r, "query"), *s = subj;
    if (pat && strchr(pat, '?') && *q) {
        snprintf(subj, sizeof subj, "%s?%s", scn__jstr(r, "path"), q);
    } else {
        /* The path itself: what snprintf(subj, "%s", path) copied, read
         * in place unless it would have been cut (every record's path is
         * matched at every evaluation). */
        s = scn__jstr(r, "path");
        size_t l = strlen(s);
        if (l >= sizeof subj) {
            memcpy(subj, s, sizeof subj - 1);
            subj[sizeof subj - 1] = '\0';
            s = subj;
        }
        if (pat && (flags & CHK_NO_QUERY) && strchr(pat, '?')) {
            /* the source omits every query; only the path part of the
             * pattern can be checked. */
            snprintf(pbuf, sizeof pbuf, "%.*s", (int)strcspn(pat, "?"), pat);
            pat = pbuf;
        }
    }
    return pat && fnmatch(pat, s, 0) == 0;
}

/* 1 when record r matches every key of the matcher (k: the history's
 * kind, which named each key's comparison in node_matcher). */
static int rec_match(hist_kind k, const matcher *m, const json_t *r, unsigned flags)
{
    (void)k;
    for (size_t i = 0; i < m->n; i++) {
        const char *key = m->keys[i].key;
        json_t *v = m->keys[i].v;
        switch (m->keys[i].by) {
        case BY_PATH:
            if (!path_match(json_string_value(v), r, flags))
                return 0;
            break;
        case BY_IDEM: {
            json_t *have = json_object_get(r, "idem_key");
            int present = json_is_string(have);
            if (json_is_boolean(v)) {
                if (json_is_true(v) != present)
                    return 0;
            } else if (!json_equal(v, have)) {
                return 0;
            }
            break;
        }
        case BY_FIELDS:
            if (!same_set(v, json_object_get(r, "fields")))
                return 0;
            break;
        case BY_LOST:
            if (json_is_true(v) != frame_lost(r))
                return 0;
            break;
        case BY_STR: {
            json_t *have = json_object_getn(r, key, m->keys[i].klen);
            if (!json_is_string(have) || json_string_length(have) != m->keys[i].slen ||
                memcmp(json_string_value(have), m->keys[i].s, m->keys[i].slen))
                return 0;
            break;
        }
        case BY_NUM: {
            json_t *have = json_object_getn(r, key, m->keys[i].klen);
            if (!json_is_number(have) || json_number_value(have) != m->keys[i].num)
                return 0;
            break;
        }
        default:
            if (!scn_json_subset(v, json_object_getn(r, key, m->keys[i].klen)))
                return 0;
        }
    }
    return 1;
}

int chk_matcher_match(const chk_matcher *m, const json_t *rec, unsigned flags)
{
    return rec_match(m->k, m, rec, flags);
}

/* ---- quantities ------------------------------------------------------------ */

int chk_quantity_ok(const scn_node *m, long n, char *desc, size_t dlen)
{
    /* desc NULL: the verdict alone (a poll's), without formatting words
     * no one reads. */
    int64_t x;
    const scn_node *q;
    if ((q = scn_map_get(m, "count")) && !scn_get_int(q, &x)) {
        if (desc)
            snprintf(desc, dlen, "exactly %lld", (long long)x);
        return n == x;
    }
    int ok = 1, bounded = 0;
    if (desc)
        desc[0] = '\0';
    if ((q = scn_map_get(m, "at_least")) && !scn_get_int(q, &x)) {
        if (desc)
            snprintf(desc, dlen, "at least %lld", (long long)x);
        bounded = 1;
        ok &= n >= x;
    }
    if ((q = scn_map_get(m, "at_most")) && !scn_get_int(q, &x)) {
        if (desc) {
            size_t l = strlen(desc);
            snprintf(desc + l, dlen - l, "%sat most %lld", l ? " and " : "", (long long)x);
        }
        bounded = 1;
        ok &= n <= x;
    }
    if (!bounded) {
        if (desc)
            snprintf(desc, dlen, "at least 1");
        ok = n >= 1;
    }
    return ok;
}

void chk_count(const scn_node *val, long n, const char *what, scn_outcome *o)
{
    char desc[96];
    int64_t x = 0;
    int ok;
    o->ok = 1;
    if (val->kind == SCN_MAP)
        ok = chk_quantity_ok(val, n, desc, sizeof desc);
    else {
        scn_get_int(val, &x);
        snprintf(desc, sizeof desc, "exactly %lld", (long long)x);
        ok = n == x;
    }
    if (!ok)
        fail_at(o, scn_asprintf("%s %s", desc, what), scn_asprintf("%ld", n));
}

/* ---- histories ------------------------------------------------------------- */

/* A list (in order) or {exactly: list} on the windowed records. */
static void eval_sequence(hist_kind k, const json_t *recs, const scn_node *val,
                          const chk_opts *opts, unsigned flags, scn_outcome *o)
{
    size_t n = json_array_size(recs);
    int exact = val->kind == SCN_MAP;
    const scn_node *list = exact ? scn_map_get(val, "exactly") : val;
    size_t pos = 0, matched = 0;
    for (size_t i = 0; i < list->n; i++) {
        matcher *m = node_matcher(k, list->items[i], opts);
        int found = 0;
        if (exact) {
            if (pos < n && rec_match(k, m, json_array_get(recs, pos), flags)) {
                found = 1;
                pos++;
            }
        } else {
            while (pos < n && !found) {
                if (rec_match(k, m, json_array_get(recs, pos), flags))
                    found = 1;
                pos++;
            }
        }
        matcher_free(m);
        if (!found)
            break;
        matched++;
    }
    if (matched < list->n || (exact && pos != n)) {
        o->ok = 0;
        if (flags & CHK_QUIET)
            return;
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
}

void chk_history(hist_kind k, const json_t *all, const scn_node *val, const chk_window *win,
                 const chk_opts *opts, scn_outcome *o)
{
    unsigned flags = opts ? opts->flags : 0;
    json_t *recs = in_window(all, win);
    o->ok = 1;
    if (val->kind == SCN_SEQ || (val->kind == SCN_MAP && scn_map_get(val, "exactly"))) {
        eval_sequence(k, recs, val, opts, flags, o);
        json_decref(recs);
        return;
    }
    matcher *m = node_matcher(k, val, opts);
    json_t *hits = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (rec_match(k, m, r, flags))
            json_array_append(hits, r);
    }
    char desc[96];
    long nh = (long)json_array_size(hits);
    /* The verdict alone: the words (desc) only for a failure's text. */
    int ok = val->kind == SCN_MAP ? chk_quantity_ok(val, nh, NULL, 0) : nh >= 1;
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
    if (!ok && (flags & CHK_QUIET)) {
        o->ok = 0;
    } else if (!ok) {
        o->ok = 0;
        if (val->kind == SCN_MAP)
            chk_quantity_ok(val, nh, desc, sizeof desc);
        else
            snprintf(desc, sizeof desc, "at least 1");
        char *mt = chk_dump(m->m);
        o->expected = scn_asprintf("%s matching %s%s", desc, mt,
                                same && want_same ? " sharing one Idempotency-Key" : "");
        free(mt);
        char *hs = summarize(k, hits), *rs = summarize(k, recs);
        if (why)
            o->actual = scn_asprintf("%s: %s", why, hs);
        else
            o->actual = scn_asprintf("%ld matching %s among %s", nh, hs, rs);
        free(hs);
        free(rs);
    }
    json_decref(hits);
    matcher_free(m);
    json_decref(recs);
}

/* ---- logs ------------------------------------------------------------------ */

void chk_logs_add(chk_logs *l, const chk_logrec *r)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        chk_logrec *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            abort();
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *r;
}

void chk_logs_free(chk_logs *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

double chk_logrec_num(const chk_logrec *r, const char *key)
{
    if (!strcmp(key, "t"))
        return r->t;
    if (!strcmp(key, "n"))
        return (double)r->n;
    return 0;
}

static double log_num(const void *rec, const char *key)
{
    return chk_logrec_num(rec, key);
}

/* The first record that a window on n can hold: n never decreases
 * (chk_rec.h), so every record before it has n < the window's least. */
static size_t log_start(const chk_logs *recs, const chk_window *win)
{
    double min = -1;
    for (int k = 0; win && k < 2; k++)
        if (win->key[k] && !strcmp(win->key[k], "n"))
            min = win->min[k];
    size_t lo = 0, hi = recs->n;
    while (min > 0 && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((double)recs->v[mid].n < min)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* 1 when pattern p is words joined by ".*" (each word holding no
 * character that is special anywhere in an extended regular expression;
 * ".*" alone, leading or trailing is fine).  Such a pattern matches a
 * subject exactly when its words occur in it in order without overlap
 * (".*" spans any bytes: no REG_NEWLINE; no REG_ICASE; the C locale, as
 * no program of ours calls setlocale), which glob_find decides with
 * memmem.  regcomp and regexec cost tens of thousands of instructions
 * each, per expectation and per record; the suite's patterns are mostly
 * "entity=task/t1 base=1" or "method=PUT .*reason=expired". */
static int ere_glob(const char *p)
{
    if (!*p)
        return 0; /* the empty ERE: left to regcomp */
    for (; *p; p++) {
        if (p[0] == '.' && p[1] == '*')
            p++;
        else if (strchr(".[]()*+?{}|^$\\", *p))
            return 0;
    }
    return 1;
}

/* An ere_glob pattern against subj: each word found after the previous
 * one (the leftmost occurrence of each leaves the most room for the
 * rest, so it finds a match whenever there is one). */
static int glob_find(const char *subj, const char *pat)
{
    const char *at = subj, *end = subj + strlen(subj);
    while (1) {
        const char *sep = strstr(pat, ".*");
        size_t wl = sep ? (size_t)(sep - pat) : strlen(pat);
        if (wl) {
            const char *hit = memmem(at, (size_t)(end - at), pat, wl);
            if (!hit)
                return 0;
            at = hit + wl;
        }
        if (!sep)
            return 1;
        pat = sep + 2;
    }
}

int chk_log(const chk_logs *recs, const char *actor, const scn_node *m, const chk_window *win,
            scn_outcome *o)
{
    o->ok = 1;
    const scn_node *a = scn_map_get(m, "actor");
    if (a && scn_str(a))
        actor = scn_str(a);
    int minlvl = 0, by_level = 0;
    const scn_node *lv = scn_map_get(m, "level");
    if (lv && scn_str(lv)) {
        hp_log_level l;
        if (!hp_log_level_parse(scn_str(lv), &l)) {
            minlvl = (int)l;
            by_level = 1;
        }
    }
    const char *msg = scn_str(scn_map_get(m, "message"));
    const char *pat = scn_str(scn_map_get(m, "pattern"));
    regex_t re;
    int have_re = 0, literal = pat && ere_glob(pat);
    if (pat && !literal) {
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
    char *examples = strdup("");
    for (size_t i = log_start(recs, win); i < recs->n; i++) {
        const chk_logrec *r = &recs->v[i];
        if (!win_holds(r, log_num, win))
            continue;
        if (actor && strcmp(r->actor, actor))
            continue;
        if (by_level && r->level < minlvl)
            continue;
        if (msg && strcmp(r->msg, msg))
            continue;
        if (have_re || literal) {
            char *subj = scn_asprintf("%s %s", r->msg, r->fields);
            int rc = literal ? !glob_find(subj, pat) : regexec(&re, subj, 0, NULL, 0);
            free(subj);
            if (rc)
                continue;
        }
        hits++;
        if (hits <= 5) {
            char *e = scn_asprintf("%s%s\"%s\"", examples, hits > 1 ? ", " : "", r->line);
            free(examples);
            examples = e;
        }
    }
    if (have_re)
        regfree(&re);
    char desc[96];
    if (!chk_quantity_ok(m, hits, desc, sizeof desc)) {
        o->ok = 0;
        json_t *j = scn_node_json(m);
        json_object_del(j, "count");
        json_object_del(j, "at_least");
        json_object_del(j, "at_most");
        json_object_del(j, "since");
        json_object_del(j, "within");
        if (actor && !json_object_get(j, "actor"))
            json_object_set_new(j, "actor", json_string(actor));
        char *mt = chk_dump(j);
        json_decref(j);
        o->expected = scn_asprintf("%s log records matching %s", desc, mt);
        free(mt);
        o->actual = scn_asprintf("%ld%s%s%s", hits, hits ? ": " : "", examples,
                              hits > 5 ? ", ..." : "");
    }
    free(examples);
    return o->ok;
}

/* ---- list forms (queue, dead_letter, conflicts) ---------------------------- */

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

void chk_list_form(const json_t *want, const json_t *items, const char *idkey, scn_outcome *o)
{
    o->ok = 1;
    json_t *ids = ids_of(items, idkey);
    json_t *n;
    if (json_is_integer(want)) {
        if ((json_int_t)json_array_size(items) != json_integer_value(want))
            fail_at(o, scn_asprintf("length %lld", (long long)json_integer_value(want)),
                    scn_asprintf("length %zu: %s", json_array_size(items), chk_jtxt(ids)));
    } else if (json_is_array(want)) {
        if (!json_equal((json_t *)want, ids))
            fail_at(o, chk_dump(want), chk_dump(ids));
    } else if (json_is_object(want)) {
        if ((n = json_object_get(want, "length")) && json_is_integer(n) &&
            (json_int_t)json_array_size(items) != json_integer_value(n))
            fail_at(o, scn_asprintf("length %lld", (long long)json_integer_value(n)),
                    scn_asprintf("length %zu: %s", json_array_size(items), chk_jtxt(ids)));
        if (o->ok && (n = json_object_get(want, "entities")) && !json_equal(n, ids))
            fail_at(o, scn_asprintf("entities %s", chk_jtxt(n)), chk_dump(ids));
        if (o->ok && (n = json_object_get(want, "items")) && !scn_json_subset(n, items))
            fail_at(o, scn_asprintf("items %s", chk_jtxt(n)), chk_dump(items));
    }
    json_decref(ids);
}
