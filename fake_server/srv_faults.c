/*
 * srv_faults.c - scoped, inspectable faults armed through the admin API.
 *
 * Inputs: a JSON body {"kind": {...}, ...} (srv_faults_arm), list / clear
 * calls, and the match calls the REST and stream code make.  Outputs:
 * armed faults in the core's list (c->afaults), frames and closes pushed
 * to the outbox for the immediate kinds (inject, close_stream), log lines.
 *
 * Every armed fault has an id, a scope (household, user, device: NULL is
 * any), a count of uses left and an optional expiry instant.  A body is
 * checked completely before anything is armed (strict: an unknown key or a
 * wrong type is refused with the key's name and a "did you mean"), so a
 * refused body changes nothing.
 *
 * The harness' scripted faults (srv_fault_drop_heartbeats() and friends in
 * srv_core.c) are separate and keep their semantics; these are for people
 * and CI jobs driving a real app.  Ranges (docs/ADMIN_API.md):
 *   count 1..1000000 (default 1), expires_in 1..86400 s, status 100..599
 *   (refuse_upgrade 400..599), retry_after 0..86400 s, seconds 1..600,
 *   close code 1000..4999 minus 1004-1006 and 1015, reason <= 123 bytes,
 *   names (household, user, device, task id) <= 127 bytes.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAULT_COUNT_MAX 1000000
#define FAULT_EXPIRES_MAX 86400
#define FAULT_HOLD_MAX 600

/* ---- the schema of each kind ------------------------------------------- */

typedef enum { T_STR, T_INT } ftype;

typedef struct fkey {
    const char *name;
    ftype type;
    long lo, hi;              /* T_INT range; T_STR: max length in hi */
} fkey;

typedef struct fkind {
    const char *name;
    int kind;                 /* SRV_AF_* or 0 for the immediate ones */
    const fkey *keys;         /* NULL-terminated */
    const char *required;     /* a key that must be present, or NULL */
} fkind;

#define SCOPE_KEYS                                                                   \
    {"household", T_STR, 0, SRV_NAME_MAX - 1}, {"user", T_STR, 0, SRV_NAME_MAX - 1}, \
        {"device", T_STR, 0, SRV_NAME_MAX - 1}
#define ARMED_KEYS                                                                   \
    SCOPE_KEYS, {"count", T_INT, 1, FAULT_COUNT_MAX}, {"expires_in", T_INT, 1, FAULT_EXPIRES_MAX}

static const fkey K_FAIL[] = {ARMED_KEYS,
                              {"method", T_STR, 0, 16},
                              {"path_prefix", T_STR, 0, 512},
                              {"status", T_INT, 100, 599},
                              {"retry_after", T_INT, 0, 86400},
                              {"retry_after_form", T_STR, 0, 16},
                              {NULL, T_STR, 0, 0}};
static const fkey K_CONFLICT[] = {ARMED_KEYS, {"id", T_STR, 1, HP_TASK_ID_MAX},
                                  {NULL, T_STR, 0, 0}};
static const fkey K_DROP[] = {ARMED_KEYS, {NULL, T_STR, 0, 0}};
static const fkey K_REFUSE[] = {ARMED_KEYS,
                                {"status", T_INT, 400, 599},
                                {NULL, T_STR, 0, 0}};
static const fkey K_HOLD[] = {ARMED_KEYS,
                              {"method", T_STR, 0, 16},
                              {"path_prefix", T_STR, 0, 512},
                              {"seconds", T_INT, 1, FAULT_HOLD_MAX},
                              {NULL, T_STR, 0, 0}};
static const fkey K_INJECT[] = {SCOPE_KEYS, {"type", T_STR, 1, 40}, {NULL, T_STR, 0, 0}};
static const fkey K_CLOSE[] = {SCOPE_KEYS,
                               {"code", T_INT, 1000, 4999},
                               {"reason", T_STR, 0, 123},
                               {NULL, T_STR, 0, 0}};

static const fkind KINDS[] = {
    {"fail_requests", SRV_AF_FAIL, K_FAIL, "status"},
    {"force_conflict", SRV_AF_CONFLICT, K_CONFLICT, "id"},
    {"drop_heartbeats", SRV_AF_DROP_HB, K_DROP, NULL},
    {"refuse_upgrade", SRV_AF_REFUSE, K_REFUSE, NULL},
    {"hold_response", SRV_AF_HOLD, K_HOLD, "seconds"},
    {"inject", 0, K_INJECT, "type"},
    {"close_stream", 0, K_CLOSE, "code"},
    {NULL, 0, NULL, NULL}};

static const char *kind_name(int kind)
{
    for (const fkind *k = KINDS; k->name; k++)
        if (k->kind == kind)
            return k->name;
    return "?";
}

/* Levenshtein distance, capped (names are short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* The closest candidate to word (a prefix/substring counts as close), or
 * NULL when nothing is near. */
const char *srv_did_you_mean(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bd = 99;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        if (strlen(word) >= 3 && strstr(cands[i], word))
            d = 1;
        if (d < bd) {
            bd = d;
            best = cands[i];
        }
    }
    return bd <= 2 || (best && bd * 3 <= strlen(best)) ? best : NULL;
}

/* "unknown key" message for kind k with a suggestion and the key list. */
static void unknown_key(const fkind *k, const char *key, char *err, size_t errlen)
{
    const char *names[32];
    size_t n = 0;
    char list[400] = "";
    for (const fkey *f = k->keys; f->name && n < 32; f++) {
        names[n++] = f->name;
        size_t o = strlen(list);
        snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", f->name);
    }
    const char *dym = srv_did_you_mean(key, names, n);
    char hint[120] = "";
    if (dym)
        snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", dym);
    snprintf(err, errlen, "%s: unknown key \"%.60s\"%s; keys: %s", k->name, key, hint, list);
}

static const fkey *find_key(const fkind *k, const char *key)
{
    for (const fkey *f = k->keys; f->name; f++)
        if (!strcmp(f->name, key))
            return f;
    return NULL;
}

/* Type and range of every key of one fault object.  0 or -1 (err set). */
static int check_object(const fkind *k, json_t *v, char *err, size_t errlen)
{
    if (!json_is_object(v)) {
        snprintf(err, errlen, "%s: expected a JSON object", k->name);
        return -1;
    }
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        const fkey *f = find_key(k, key);
        if (!f) {
            unknown_key(k, key, err, errlen);
            return -1;
        }
        if (json_is_null(x))
            continue; /* null = "any" / the default */
        if (f->type == T_STR) {
            if (!json_is_string(x)) {
                snprintf(err, errlen, "%s: \"%s\" must be a string", k->name, key);
                return -1;
            }
            size_t l = strlen(json_string_value(x));
            if ((long)l < f->lo || (long)l > f->hi) {
                snprintf(err, errlen, "%s: \"%s\" must be %ld-%ld characters", k->name, key,
                         f->lo, f->hi);
                return -1;
            }
        } else {
            if (!json_is_integer(x)) {
                snprintf(err, errlen, "%s: \"%s\" must be an integer", k->name, key);
                return -1;
            }
            json_int_t i = json_integer_value(x);
            if (i < f->lo || i > f->hi) {
                snprintf(err, errlen, "%s: \"%s\" must be %ld..%ld (got %lld)", k->name, key,
                         f->lo, f->hi, (long long)i);
                return -1;
            }
        }
    }
    if (k->required && !json_is_string(json_object_get(v, k->required)) &&
        !json_is_integer(json_object_get(v, k->required))) {
        snprintf(err, errlen, "%s: \"%s\" is required", k->name, k->required);
        return -1;
    }
    /* Checks that the table cannot say. */
    const char *s;
    if ((s = json_string_value(json_object_get(v, "retry_after_form"))) &&
        strcmp(s, "seconds") && strcmp(s, "http-date")) {
        snprintf(err, errlen, "%s: \"retry_after_form\" must be \"seconds\" or \"http-date\"",
                 k->name);
        return -1;
    }
    if ((s = json_string_value(json_object_get(v, "method"))) && strcasecmp(s, "GET") &&
        strcasecmp(s, "PUT") && strcasecmp(s, "DELETE") && strcasecmp(s, "POST")) {
        snprintf(err, errlen, "%s: \"method\" must be GET, PUT, DELETE or POST", k->name);
        return -1;
    }
    if (k->kind == SRV_AF_CONFLICT && !hp_task_id_valid(json_string_value(json_object_get(v, "id")))) {
        snprintf(err, errlen, "%s: \"id\" must be a task id (1-64 of [A-Za-z0-9_-])", k->name);
        return -1;
    }
    if (!strcmp(k->name, "inject")) {
        s = json_string_value(json_object_get(v, "type"));
        for (const char *p = s; p && *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) {
                snprintf(err, errlen, "inject: \"type\" must be of [A-Z0-9_] (RESYNC_REQUIRED, "
                                      "or any unknown type such as FUTURE_EVENT)");
                return -1;
            }
    }
    if (!strcmp(k->name, "close_stream")) {
        json_int_t code = json_integer_value(json_object_get(v, "code"));
        if ((code >= 1004 && code <= 1006) || code == 1015 || (code > 1015 && code < 3000)) {
            snprintf(err, errlen, "close_stream: \"code\" %lld cannot be sent in a close frame "
                                  "(use 1000-1003, 1007-1014 or 3000-4999)", (long long)code);
            return -1;
        }
    }
    return 0;
}

/* ---- scope ----------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int name_ok(const char *want, const char *have)
{
    return !want || (have && !strcmp(want, have));
}

static int conn_in_scope(json_t *v, const srv_conn *k)
{
    return name_ok(jstr(v, "household"), k->hh) && name_ok(jstr(v, "user"), k->user) &&
           name_ok(jstr(v, "device"), k->dev);
}

static int live(const srv_conn *k)
{
    return k->state == SRV_CONN_READY || k->state == SRV_CONN_RESYNC ||
           k->state == SRV_CONN_AWAIT_HELLO;
}

/* ---- arm --------------------------------------------------------------- */

static char *dupn(json_t *o, const char *k)
{
    const char *s = jstr(o, k);
    return s ? strdup(s) : NULL;
}

static void afault_free(srv_afault *f)
{
    free(f->hh);
    free(f->user);
    free(f->dev);
    free(f->method);
    free(f->prefix);
    free(f->task);
    free(f);
}

json_t *srv_afault_json(const srv_core *c, const srv_afault *f)
{
    json_t *o = json_pack("{s:I, s:s, s:i, s:I}", "id", (json_int_t)f->id, "kind",
                          kind_name(f->kind), "left", f->left, "armed_at",
                          (json_int_t)f->armed_ms);
    json_t *scope = json_object();
    if (f->hh)
        json_object_set_new(scope, "household", json_string(f->hh));
    if (f->user)
        json_object_set_new(scope, "user", json_string(f->user));
    if (f->dev)
        json_object_set_new(scope, "device", json_string(f->dev));
    json_object_set_new(o, "scope", scope);
    if (f->expires_ms != INT64_MAX) {
        json_object_set_new(o, "expires_at", json_integer(f->expires_ms));
        int64_t left = f->expires_ms - srv_now(c);
        json_object_set_new(o, "expires_in_ms", json_integer(left > 0 ? left : 0));
    }
    if (f->method)
        json_object_set_new(o, "method", json_string(f->method));
    if (f->prefix)
        json_object_set_new(o, "path_prefix", json_string(f->prefix));
    if (f->task) /* the body's "id"; here "id" is the fault's own (DELETE /_hp/faults/ID) */
        json_object_set_new(o, "task", json_string(f->task));
    if (f->kind == SRV_AF_FAIL || f->kind == SRV_AF_REFUSE)
        json_object_set_new(o, "status", json_integer(f->status));
    if (f->retry_after_s >= 0 && f->kind == SRV_AF_FAIL)
        json_object_set_new(o, "retry_after", json_integer(f->retry_after_s));
    if (f->kind == SRV_AF_HOLD)
        json_object_set_new(o, "seconds", json_integer(f->hold_ms / 1000));
    return o;
}

static srv_afault *arm_one(srv_core *c, const fkind *k, json_t *v)
{
    srv_afault *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->id = ++c->next_fault_id;
    f->kind = k->kind;
    f->hh = dupn(v, "household");
    f->user = dupn(v, "user");
    f->dev = dupn(v, "device");
    f->method = dupn(v, "method");
    f->prefix = dupn(v, "path_prefix");
    f->task = dupn(v, "id");
    json_t *x = json_object_get(v, "count");
    f->left = json_is_integer(x) ? (int)json_integer_value(x) : 1;
    x = json_object_get(v, "status");
    f->status = json_is_integer(x) ? (int)json_integer_value(x) : 503;
    x = json_object_get(v, "retry_after");
    f->retry_after_s = json_is_integer(x) ? (int)json_integer_value(x) : -1;
    x = json_object_get(v, "seconds");
    f->hold_ms = json_is_integer(x) ? json_integer_value(x) * 1000 : 0;
    f->armed_ms = srv_now(c);
    x = json_object_get(v, "expires_in");
    f->expires_ms = json_is_integer(x) ? f->armed_ms + json_integer_value(x) * 1000 : INT64_MAX;
    srv_afault **pp = &c->afaults;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    hp_log(&c->env, HP_LOG_INFO, "fault_armed", "kind=%s id=%llu hh=%s user=%s dev=%s n=%d",
           k->name, (unsigned long long)f->id, f->hh ? f->hh : "*", f->user ? f->user : "*",
           f->dev ? f->dev : "*", f->left);
    return f;
}

/* inject / close_stream: act on the matching live connections now. */
static int act_now(srv_core *c, const fkind *k, json_t *v, int apply)
{
    int n = 0;
    for (srv_conn *conn = c->conns; conn; conn = conn->next) {
        if (!live(conn) || !conn_in_scope(v, conn))
            continue;
        n++;
        if (!apply)
            continue;
        if (!strcmp(k->name, "close_stream")) {
            const char *reason = jstr(v, "reason");
            hp_log(&c->env, HP_LOG_INFO, "fault_applied",
                   "kind=close_stream conn=%llu code=%d user=%s hh=%s dev=%s",
                   (unsigned long long)conn->id, (int)json_integer_value(json_object_get(v, "code")),
                   conn->user, conn->hh, srv_dash(conn->dev));
            srv_push_close(c, conn, (int)json_integer_value(json_object_get(v, "code")),
                           reason ? reason : "injected close");
            continue;
        }
        const char *type = jstr(v, "type");
        int64_t rev = srv_store_revision(c->st, conn->hh);
        char *frame;
        if (!strcmp(type, "RESYNC_REQUIRED")) {
            /* The client must send HELLO again (WS-6), as after a trimmed log. */
            frame = hp_msg_resync(rev);
            conn->state = SRV_CONN_RESYNC;
            srv_conn_rearm(c, conn); /* no WS-2 HELLO timer in RESYNC */
        } else {
            /* An event of a type this protocol version does not define
             * (same shape as every event, WS-3): a client must ignore it
             * and keep going.  Not stored: a replay never repeats it. */
            json_t *pl = json_pack("{s:b}", "injected", 1);
            frame = hp_msg_event(type, "injected", rev, pl);
            json_decref(pl);
        }
        hp_log(&c->env, HP_LOG_INFO, "fault_applied", "kind=inject type=%s conn=%llu user=%s hh=%s dev=%s",
               type, (unsigned long long)conn->id, conn->user, conn->hh, srv_dash(conn->dev));
        srv_push_send(c, conn->id, frame);
    }
    return n;
}

int srv_faults_arm(srv_core *c, const json_t *body, json_t **result, char *err, size_t errlen)
{
    *result = NULL;
    if (!c || !json_is_object(body) || json_object_size(body) == 0) {
        snprintf(err, errlen, "expected a JSON object of faults, e.g. {\"fail_requests\": "
                              "{\"status\": 503, \"count\": 2}}");
        return -1;
    }
    const char *key;
    json_t *v;
    const char *names[16];
    size_t nn = 0;
    for (const fkind *k = KINDS; k->name; k++)
        names[nn++] = k->name;
    /* pass 0 checks everything, pass 1 arms */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach((json_t *)body, key, v) {
            const fkind *k = KINDS;
            while (k->name && strcmp(k->name, key))
                k++;
            if (!k->name) {
                const char *dym = srv_did_you_mean(key, names, nn);
                snprintf(err, errlen, "unknown fault \"%.60s\"%s%s%s (faults: fail_requests, "
                                      "force_conflict, drop_heartbeats, refuse_upgrade, "
                                      "hold_response, inject, close_stream, restart)",
                         key, dym ? " (did you mean \"" : "", dym ? dym : "", dym ? "\"?)" : "");
                return -1;
            }
            if (pass == 0) {
                if (check_object(k, v, err, errlen) != 0)
                    return -1;
                if (!k->kind && act_now(c, k, v, 0) == 0) {
                    snprintf(err, errlen, "%s: no live connection matches the scope", k->name);
                    return -2;
                }
                continue;
            }
            if (!*result)
                *result = json_array();
            if (k->kind) {
                srv_afault *f = arm_one(c, k, v);
                if (f)
                    json_array_append_new(*result, srv_afault_json(c, f));
            } else {
                int n = act_now(c, k, v, 1);
                json_array_append_new(*result, json_pack("{s:s, s:i}", "kind", k->name,
                                                         "applied", n));
            }
        }
    }
    return 0;
}

/* ---- list, clear, match ------------------------------------------------- */

static void prune(srv_core *c)
{
    int64_t now = srv_now(c);
    for (srv_afault **pp = &c->afaults; *pp;) {
        srv_afault *f = *pp;
        if (f->left <= 0 || now >= f->expires_ms) {
            if (f->left > 0)
                hp_log(&c->env, HP_LOG_INFO, "fault_expired", "kind=%s id=%llu left=%d",
                       kind_name(f->kind), (unsigned long long)f->id, f->left);
            *pp = f->next;
            afault_free(f);
        } else {
            pp = &f->next;
        }
    }
}

json_t *srv_faults_list(srv_core *c)
{
    json_t *a = json_array();
    if (!c)
        return a;
    prune(c);
    for (srv_afault *f = c->afaults; f; f = f->next)
        json_array_append_new(a, srv_afault_json(c, f));
    return a;
}

int srv_faults_clear(srv_core *c, uint64_t id)
{
    int n = 0;
    if (!c)
        return 0;
    for (srv_afault **pp = &c->afaults; *pp;) {
        srv_afault *f = *pp;
        if (id == 0 || f->id == id) {
            *pp = f->next;
            afault_free(f);
            n++;
        } else {
            pp = &f->next;
        }
    }
    if (n)
        hp_log(&c->env, HP_LOG_INFO, "fault_cleared", "id=%s n=%d", id ? "one" : "all", n);
    return n;
}

void srv_faults_move(srv_core *from, srv_core *to)
{
    if (!from || !to)
        return;
    srv_afault **pp = &to->afaults;
    while (*pp)
        pp = &(*pp)->next;
    *pp = from->afaults;
    from->afaults = NULL;
    if (from->next_fault_id > to->next_fault_id)
        to->next_fault_id = from->next_fault_id;
}

void srv_faults_free(srv_core *c)
{
    for (srv_afault *f = c->afaults, *n; f; f = n) {
        n = f->next;
        afault_free(f);
    }
    c->afaults = NULL;
}

/*
 * The first live fault of kind whose scope and filters match, or NULL.
 * who == NULL (before authentication) matches only unscoped faults; a
 * scoped fault waits for a request whose token names its scope;
 * scoped_only skips unscoped faults (already tried before authentication).  The
 * caller consumes the fault with srv_fault_use().
 */
srv_afault *srv_fault_match(srv_core *c, int kind, const srv_who *who, int scoped_only,
                            const char *method, const char *path, const char *task)
{
    if (!c || !c->afaults)
        return NULL;
    prune(c);
    for (srv_afault *f = c->afaults; f; f = f->next) {
        if (f->kind != kind)
            continue;
        int scoped = f->hh || f->user || f->dev;
        if ((!who && scoped) || (scoped_only && !scoped))
            continue;
        if (who && (!name_ok(f->hh, who->hh) || !name_ok(f->user, who->user) ||
                    !name_ok(f->dev, who->dev)))
            continue;
        if (f->method && (!method || strcasecmp(f->method, method)))
            continue;
        if (f->prefix && (!path || strncmp(path, f->prefix, strlen(f->prefix))))
            continue;
        if (f->task && (!task || strcmp(f->task, task)))
            continue;
        return f;
    }
    return NULL;
}

void srv_fault_use(srv_core *c, srv_afault *f, const char *what, const srv_who *who)
{
    f->left--;
    hp_log(&c->env, HP_LOG_INFO, "fault_applied", "kind=%s id=%llu left=%d%s%s user=%s hh=%s dev=%s",
           kind_name(f->kind), (unsigned long long)f->id, f->left, what && *what ? " " : "",
           what ? what : "", srv_dash(who ? who->user : NULL), srv_dash(who ? who->hh : NULL),
           srv_dash(who ? who->dev : NULL));
    prune(c);
}
