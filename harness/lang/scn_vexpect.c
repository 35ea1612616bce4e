/*
 * scn_vexpect.c - validation of expectations (expect, wait_until,
 * expect_log): history matchers, client and server assertions, log
 * records.  Split out of scn_load.c.
 */
#define _GNU_SOURCE
#include "scn_valid.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_task.h"
#include "hp_time.h"

/* ---- expectations --------------------------------------------------- */

static int v_quantifier(vctx *v, const scn_node *m)
{
    int n = 0;
    for (size_t i = 0; sv_quant_keys[i]; i++) {
        const scn_node *q = scn_map_get(m, sv_quant_keys[i]);
        if (q) {
            n++;
            sv_need_int(v, q, sv_quant_keys[i], 0, INT64_MAX, NULL);
        }
    }
    if (scn_map_get(m, "count") && n > 1)
        sv_verr(v, scn_map_key(m, "count"), "use 'count' alone or 'at_least'/'at_most'");
    return n;
}

/* A word form of a history entry ("TASK_UPDATED t1", "PUT /path 409"). */
static void v_history_word(vctx *v, const char *key, const scn_node *n)
{
    if (sv_need_str(v, n, key))
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", n->str);
    char *sp = strchr(buf, ' ');
    if (sp)
        *sp = '\0';
    const char *rest = sp ? sp + 1 : NULL;
    if (!strcmp(key, "received")) {
        if (!sv_in_list(buf, sv_event_types))
            sv_unknown(v, n, "event type", buf, sv_event_types);
    } else if (!strcmp(key, "notified")) {
        if (!sv_in_list(buf, sv_notify_types))
            sv_unknown(v, n, "notification", buf, sv_notify_types);
    } else if (!strcmp(key, "frames")) {
        if (!sv_in_list(buf, sv_frame_types))
            sv_unknown(v, n, "message type", buf, sv_frame_types);
    } else if (!strcmp(key, "requests")) {
        if (!sv_in_list(buf, sv_http_methods))
            sv_unknown(v, n, "HTTP method", buf, sv_http_methods);
        else if (!rest || rest[0] != '/')
            sv_verr(v, n, "a request is written 'METHOD /path' or 'METHOD /path STATUS', "
                       "e.g. 'PUT /api/v0.2/tasks/t1 200'");
    } else if (!strcmp(key, "closed")) {
        int64_t x;
        if (scn_get_int(n, &x))
            sv_type_err(v, n, "closed", "a close code (e.g. 4008) or a mapping {code, by}");
    }
}

static void v_matcher(vctx *v, const char *key, const scn_node *m, const char *const *mkeys,
                      int allow_quant)
{
    const char *extra_req[] = {"count", "at_least", "at_most", "same_idem_key", NULL};
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i]->str;
        const scn_node *val = m->items[i];
        if (sv_in_list(k, mkeys)) {
            if (!strcmp(k, "from") && !strcmp(key, "requests"))
                sv_need_client(v, val, "from");
            else if (!strcmp(k, "from") && !strcmp(key, "frames")) {
                static const char *const f[] = {"server", "client", NULL};
                sv_need_word(v, val, "from", f);
            } else if (!strcmp(k, "by")) {
                static const char *const f[] = {"server", "client", "network", NULL};
                sv_need_word(v, val, "by", f);
            } else if (!strcmp(k, "event_type")) {
                sv_need_word(v, val, "event_type", sv_event_types);
            } else if (!strcmp(k, "type") && !strcmp(key, "notified")) {
                sv_need_word(v, val, "type", sv_notify_types);
            } else if (!strcmp(k, "type") && !strcmp(key, "frames")) {
                sv_need_word(v, val, "type", sv_frame_types);
            } else if (!strcmp(k, "method")) {
                sv_need_word(v, val, "method", sv_http_methods);
            } else if (!strcmp(k, "status") || !strcmp(k, "code") || !strcmp(k, "revision")) {
                sv_need_int(v, val, k, 0, INT64_MAX, NULL);
            } else if (!strcmp(k, "lost") || !strcmp(k, "edit_vs_delete")) {
                sv_need_bool(v, val, k, NULL);
            } else if (!strcmp(k, "payload") || !strcmp(k, "body") || !strcmp(k, "response")) {
                if (val->kind == SCN_SEQ)
                    sv_type_err(v, val, k, "a mapping or a value");
            } else if (!strcmp(k, "fields") || !strcmp(k, "choices")) {
                sv_need_str_list(v, val, k);
            } else if (!strcmp(k, "path")) {
                if (!sv_need_str(v, val, k) && val->str[0] != '/')
                    sv_verr(v, val, "path must start with '/', e.g. /api/v0.2/tasks/t1");
            } else if (!strcmp(k, "idem_key")) {
                if (val->kind != SCN_SCALAR)
                    sv_type_err(v, val, k, "true, false or a key");
            } else if (!strcmp(k, "entity_id")) {
                sv_need_str(v, val, k);
            }
            continue;
        }
        if (allow_quant && sv_in_list(k, extra_req)) {
            if (!strcmp(k, "same_idem_key")) {
                if (strcmp(key, "requests"))
                    sv_unknown(v, m->keys[i], "key", k, mkeys);
                else
                    sv_need_bool(v, val, k, NULL);
            }
            continue; /* quantifiers checked by v_quantifier */
        }
        const char **all = calloc(16, sizeof *all);
        if (!all)
            abort();
        size_t n = 0;
        for (size_t j = 0; mkeys[j] && n < 10; j++)
            all[n++] = mkeys[j];
        if (allow_quant) {
            all[n++] = "count";
            all[n++] = "at_least";
            all[n++] = "at_most";
            if (!strcmp(key, "requests"))
                all[n++] = "same_idem_key";
        }
        char what[64];
        snprintf(what, sizeof what, "key in '%s'", key);
        sv_unknown(v, m->keys[i], what, k, all);
        free(all);
    }
    if (allow_quant)
        v_quantifier(v, m);
}

static void v_history(vctx *v, const char *key, const scn_node *val, const char *const *mkeys)
{
    if (val->kind == SCN_SCALAR) {
        v_history_word(v, key, val);
        return;
    }
    if (val->kind == SCN_SEQ) {
        for (size_t i = 0; i < val->n; i++) {
            const scn_node *it = val->items[i];
            if (it->kind == SCN_MAP)
                v_matcher(v, key, it, mkeys, 0);
            else if (it->kind == SCN_SCALAR)
                v_history_word(v, key, it);
            else
                sv_type_err(v, it, key, "a word or a mapping");
        }
        return;
    }
    const scn_node *ex = scn_map_get(val, "exactly");
    if (ex) {
        if (val->n != 1)
            sv_verr(v, val, "'exactly' stands alone in its mapping");
        if (ex->kind != SCN_SEQ) {
            sv_type_err(v, ex, "exactly", "a list");
            return;
        }
        for (size_t i = 0; i < ex->n; i++) {
            if (ex->items[i]->kind == SCN_MAP)
                v_matcher(v, key, ex->items[i], mkeys, 0);
            else if (ex->items[i]->kind == SCN_SCALAR)
                v_history_word(v, key, ex->items[i]);
            else
                sv_type_err(v, ex->items[i], key, "a word or a mapping");
        }
        return;
    }
    v_matcher(v, key, val, mkeys, 1);
}

/* `since:`/`within:` written inside an actor's block (or a log mapping
 * under it): the window is one per expect step, beside the actors. */
static void misplaced_window(vctx *v, const scn_node *k)
{
    if (!strcmp(k->str, "timeout"))
        sv_verr(v, k, "'timeout' belongs at the wait_until level, next to the actors: "
                   "'- wait_until: {timeout: 2m, alice: {...}}'");
    else
        sv_verr(v, k, "'%s' belongs at the expect level, next to the actors: "
                   "'- expect: {%s: ..., alice: {...}}'", k->str, k->str);
}

/* task: / cached: - a subset of a task: known field names only, so that a
 * typo fails lint instead of an expectation at run time. */
static void v_task_subset(vctx *v, const scn_node *one, const char *what, int server)
{
    for (size_t i = 0; i < one->n; i++) {
        const char *k = one->keys[i]->str;
        if (sv_in_list(k, scn_task_fields) || (server && !strcmp(k, "household")))
            continue;
        if (!server && !strcmp(k, "household"))
            sv_verr(v, one->keys[i], "'household' is only for the server's 'task:' (an app "
                                  "caches its own household only)");
        else
            sv_unknown(v, one->keys[i], what, k, scn_task_fields);
    }
    const scn_node *id = scn_map_get(one, "id");
    if (!id)
        sv_verr(v, one, "%s needs the task 'id'", server ? "task" : "cached");
    else
        sv_need_task_id(v, id, "id");
}

void v_log(vctx *v, const scn_node *val, int top)
{
    if (val->kind == SCN_SEQ) {
        for (size_t i = 0; i < val->n; i++)
            v_log(v, val->items[i], top);
        return;
    }
    if (sv_need_map(v, val, "a log expectation"))
        return;
    static const char *const inner[] = {"level", "message", "pattern", "count", "at_least",
                                        "at_most", NULL};
    if (top) {
        sv_check_keys(v, val, "log key", scn_log_keys);
    } else {
        for (size_t i = 0; i < val->n; i++) {
            const scn_node *k = val->keys[i];
            if (sv_in_list(k->str, inner))
                continue;
            if (!strcmp(k->str, "since") || !strcmp(k->str, "within"))
                misplaced_window(v, k);
            else if (!strcmp(k->str, "actor"))
                sv_verr(v, k, "'actor' is only for expect_log: under an actor's name the "
                           "records are already that actor's");
            else
                sv_unknown(v, k, "log key", k->str, inner);
        }
    }
    for (size_t i = 0; i < val->n; i++) {
        const char *k = val->keys[i]->str;
        const scn_node *x = val->items[i];
        if (!strcmp(k, "actor")) {
            if (!sv_need_str(v, x, "actor") && strcmp(x->str, "server") &&
                scn_client_index(v->s, x->str) < 0)
                sv_need_client(v, x, "actor");
        } else if (!strcmp(k, "level")) {
            sv_need_word(v, x, "level", sv_levels);
        } else if (!strcmp(k, "message")) {
            /* A record name that no actor emits can never match: say so
             * now rather than as a count mismatch at run time. */
            if (!sv_need_str(v, x, k) && !sv_in_list(x->str, scn_log_messages)) {
                const char *sug = scn_suggest(x->str, scn_log_messages);
                if (sug)
                    sv_verr(v, x, "unknown log record '%s' (did you mean '%s'?)", x->str, sug);
                else
                    sv_verr(v, x, "unknown log record '%s' (see docs/LOG_RECORDS.md for the "
                               "names; use 'pattern' to search the fields)", x->str);
            }
        } else if (!strcmp(k, "pattern")) {
            sv_need_str(v, x, k);
        } else if (!strcmp(k, "within")) {
            sv_need_duration(v, x, "within", NULL);
        } else if (!strcmp(k, "since")) {
            if (!sv_need_str(v, x, "since") && !sv_in_list(x->str, v->marks))
                sv_unknown_mark(v, x);
        }
    }
    v_quantifier(v, val);
}

static void v_count_or_quant(vctx *v, const scn_node *val, const char *what)
{
    if (val->kind == SCN_MAP) {
        sv_check_keys(v, val, "key", sv_quant_keys);
        if (v_quantifier(v, val) == 0)
            sv_verr(v, val, "%s needs count, at_least or at_most", what);
        return;
    }
    sv_need_int(v, val, what, 0, INT64_MAX, NULL);
}

static void v_list_form(vctx *v, const char *what, const scn_node *val)
{
    /* queue / dead_letter: a length, a list of ids, or a mapping. */
    if (val->kind == SCN_SEQ) {
        sv_need_task_ids(v, val, what);
        return;
    }
    if (val->kind == SCN_SCALAR) {
        sv_need_int(v, val, what, 0, INT64_MAX, NULL);
        return;
    }
    sv_check_keys(v, val, "key", sv_queue_keys);
    if (scn_map_get(val, "length"))
        sv_need_int(v, scn_map_get(val, "length"), "length", 0, INT64_MAX, NULL);
    if (scn_map_get(val, "entities")) {
        const scn_node *e = scn_map_get(val, "entities");
        if (e->kind != SCN_SEQ)
            sv_type_err(v, e, "entities", "a list of task ids");
        else
            sv_need_task_ids(v, e, "entities");
    }
    const scn_node *items = scn_map_get(val, "items");
    if (items) {
        if (items->kind != SCN_SEQ) {
            sv_type_err(v, items, "items", "a list of mappings");
            return;
        }
        for (size_t i = 0; i < items->n; i++)
            if (!sv_need_map(v, items->items[i], "an item"))
                sv_check_keys(v, items->items[i], "item key", sv_queue_item_keys);
    }
}

static void v_client_assert(vctx *v, const char *client, const scn_node *k, const scn_node *val)
{
    const char *key = k->str;
    (void)client;
    if (!strcmp(key, "since") || !strcmp(key, "within") ||
        !strcmp(key, "timeout")) {
        misplaced_window(v, k);
        return;
    }
    if (!sv_in_list(key, scn_client_asserts)) {
        if (sv_in_list(key, scn_server_asserts))
            sv_verr(v, k, "'%s' is a server expectation: write it under 'server:'", key);
        else
            sv_unknown(v, k, "client expectation", key, scn_client_asserts);
        return;
    }
    if (!strcmp(key, "received"))
        v_history(v, key, val, sv_m_received);
    else if (!strcmp(key, "notified"))
        v_history(v, key, val, sv_m_notified);
    else if (!strcmp(key, "requests"))
        v_history(v, key, val, sv_m_requests);
    else if (!strcmp(key, "closed"))
        v_history(v, key, val, sv_m_closed);
    else if (!strcmp(key, "frames"))
        v_history(v, key, val, sv_m_frames);
    else if (!strcmp(key, "log"))
        v_log(v, val, 0);
    else if (!strcmp(key, "reconnect_delays")) {
        const scn_node *list = val;
        if (val->kind == SCN_MAP) {
            sv_check_keys(v, val, "key of reconnect_delays", sv_reconnect_keys);
            list = scn_map_get(val, "delays");
            if (scn_map_get(val, "tolerance"))
                sv_need_duration(v, scn_map_get(val, "tolerance"), "tolerance", NULL);
            if (!list) {
                sv_verr(v, val, "reconnect_delays needs 'delays'");
                return;
            }
        }
        if (list->kind != SCN_SEQ) {
            sv_type_err(v, list, "reconnect_delays", "a list of durations");
            return;
        }
        for (size_t i = 0; i < list->n; i++)
            sv_need_duration(v, list->items[i], "a reconnect delay", NULL);
    } else if (!strcmp(key, "connect_attempts"))
        v_count_or_quant(v, val, key);
    else if (!strcmp(key, "connection"))
        sv_need_word(v, val, "connection state", scn_conn_states);
    else if (!strcmp(key, "online"))
        sv_need_bool(v, val, key, NULL);
    else if (!strcmp(key, "applied_revision"))
        sv_need_int(v, val, key, 0, INT64_MAX, NULL);
    else if (!strcmp(key, "queue") || !strcmp(key, "dead_letter"))
        v_list_form(v, key, val);
    else if (!strcmp(key, "conflicts")) {
        if (val->kind == SCN_SEQ)
            sv_need_task_ids(v, val, key);
        else
            sv_need_int(v, val, key, 0, INT64_MAX, NULL);
    } else if (!strcmp(key, "locks")) {
        if (val->kind != SCN_SEQ)
            sv_type_err(v, val, key, "a list of task ids");
        else
            sv_need_task_ids(v, val, key);
    } else if (!strcmp(key, "cache")) {
        if (sv_need_map(v, val, key))
            return;
        sv_check_keys(v, val, "key of cache", sv_cache_keys);
        for (size_t i = 0; i < val->n; i++) {
            const char *ck = val->keys[i]->str;
            const scn_node *x = val->items[i];
            if (!strcmp(ck, "ids") || !strcmp(ck, "contains") || !strcmp(ck, "missing")) {
                if (x->kind != SCN_SEQ)
                    sv_type_err(v, x, ck, "a list of task ids");
                else
                    sv_need_task_ids(v, x, ck);
            } else if (sv_in_list(ck, sv_cache_keys)) {
                sv_need_int(v, x, ck, 0, INT64_MAX, NULL);
            }
        }
    } else if (!strcmp(key, "cached")) {
        const scn_node *one = val;
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1); i++) {
            one = val->kind == SCN_SEQ ? val->items[i] : val;
            if (sv_need_map(v, one, "cached"))
                continue;
            v_task_subset(v, one, "task field", 0);
        }
    } else if (!strcmp(key, "status")) {
        sv_need_map(v, val, key);
    }
}

static void v_server_assert(vctx *v, const scn_node *k, const scn_node *val)
{
    const char *key = k->str;
    if (!strcmp(key, "since") || !strcmp(key, "within") ||
        !strcmp(key, "timeout")) {
        misplaced_window(v, k);
        return;
    }
    if (!sv_in_list(key, scn_server_asserts)) {
        if (sv_in_list(key, scn_client_asserts))
            sv_verr(v, k, "'%s' is a client expectation: write it under a client's name", key);
        else
            sv_unknown(v, k, "server expectation", key, scn_server_asserts);
        return;
    }
    if (!strcmp(key, "requests"))
        v_history(v, key, val, sv_m_requests);
    else if (!strcmp(key, "log"))
        v_log(v, val, 0);
    else if (!strcmp(key, "task")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1); i++) {
            const scn_node *one = val->kind == SCN_SEQ ? val->items[i] : val;
            if (sv_need_map(v, one, "task"))
                continue;
            v_task_subset(v, one, "task field", 1);
        }
    } else if (!strcmp(key, "no_task"))
        sv_need_task_ids(v, val, key);
    else if (!strcmp(key, "revision")) {
        if (val->kind == SCN_MAP) {
            for (size_t i = 0; i < val->n; i++)
                sv_need_int(v, val->items[i], "revision", 0, INT64_MAX, NULL);
        } else {
            sv_need_int(v, val, key, 0, INT64_MAX, NULL);
        }
    } else if (!strcmp(key, "lock")) {
        if (sv_need_map(v, val, key))
            return;
        sv_check_keys(v, val, "key of lock", sv_lock_keys);
        if (!scn_map_get(val, "id"))
            sv_verr(v, val, "lock needs the task 'id'");
        if (scn_map_get(val, "holder"))
            sv_need_str(v, scn_map_get(val, "holder"), "holder");
        if (scn_map_get(val, "held"))
            sv_need_bool(v, scn_map_get(val, "held"), "held", NULL);
    } else if (!strcmp(key, "connections")) {
        if (val->kind == SCN_MAP) {
            sv_check_keys(v, val, "key of connections", sv_conn_keys);
            if (scn_map_get(val, "count"))
                sv_need_int(v, scn_map_get(val, "count"), "count", 0, INT64_MAX, NULL);
        } else {
            sv_need_int(v, val, key, 0, INT64_MAX, NULL);
        }
    } else if (!strcmp(key, "state")) {
        sv_need_map(v, val, key);
    }
}

/* expect / wait_until body: actor -> expectations, plus extra keys. */
void v_expect(vctx *v, const scn_node *val, const char *what, const char *const *extra)
{
    if (sv_need_map(v, val, what))
        return;
    int actors = 0;
    for (size_t i = 0; i < val->n; i++) {
        const scn_node *k = val->keys[i];
        const scn_node *x = val->items[i];
        if (sv_in_list(k->str, extra)) {
            if (!strcmp(k->str, "within") || !strcmp(k->str, "timeout"))
                sv_need_duration(v, x, k->str, NULL);
            else if (!strcmp(k->str, "since") && !sv_need_str(v, x, "since") &&
                     !sv_in_list(x->str, v->marks))
                sv_unknown_mark(v, x);
            continue;
        }
        actors++;
        if (!strcmp(k->str, "server")) {
            if (sv_need_map(v, x, "server expectations"))
                continue;
            for (size_t j = 0; j < x->n; j++)
                v_server_assert(v, x->keys[j], x->items[j]);
        } else if (scn_client_index(v->s, k->str) >= 0) {
            if (sv_need_map(v, x, "client expectations"))
                continue;
            for (size_t j = 0; j < x->n; j++)
                v_client_assert(v, k->str, x->keys[j], x->items[j]);
        } else {
            const char **c = calloc(v->s->nclients + 8, sizeof *c);
            if (!c)
                abort();
            size_t n = 0;
            c[n++] = "server";
            for (size_t j = 0; j < v->s->nclients; j++)
                c[n++] = v->s->clients[j].name;
            for (size_t j = 0; extra[j]; j++)
                c[n++] = extra[j];
            sv_unknown_client(v, k, "actor", k->str, c);
            free(c);
        }
    }
    if (scn_map_get(val, "since") && scn_map_get(val, "within"))
        sv_verr(v, scn_map_key(val, "within"), "use 'since' or 'within', not both");
    if (actors == 0)
        sv_verr(v, val, "%s names no actor (server or a client)", what);
}

