/*
 * srv_session.c - the session registry (srv_session.h).
 */
#define _GNU_SOURCE
#include "srv_session.h"
#include "srv_internal.h"
#include "srv_journal.h"
#include "hp_log.h"
#include "hp_msg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every line of a created session carries session=ID (so two teams'
 * lines can be told apart); the default session's lines stay as they were
 * (no field: scenarios anchor patterns at the end of a line).  WARNING and
 * ERROR lines also go to the session's journal, where the page highlights
 * them. */
static void session_sink(void *ud, const hp_log_record *rec)
{
    srv_session *s = ud;
    char fields[2048];
    if (s->is_default)
        snprintf(fields, sizeof fields, "%s", rec->fields ? rec->fields : "");
    else
        snprintf(fields, sizeof fields, "%s%ssession=%s", rec->fields ? rec->fields : "",
                 rec->fields && *rec->fields ? " " : "", s->id);
    hp_log_record r = *rec;
    r.fields = fields;
    hp_log_stderr_sink(NULL, &r);
    if (rec->level >= HP_LOG_WARNING && s->journal)
        srv_journal_log(s->journal, rec->time_ms, hp_log_level_name(rec->level), rec->msg,
                        rec->fields);
}

int srv_session_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 1 || n > SRV_SESSION_ID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}

static srv_core *make_core(srv_session *s)
{
    srv_core *c = srv_new(&s->env, &s->pol, s->secret, s->st);
    if (c && s->reg->group_commit)
        srv_set_group_commit(c, 1);
    if (c && s->reg->have_lim)
        srv_set_limits(c, &s->reg->lim);
    return c;
}

void srv_sessions_set_limits(srv_sessions *r, const srv_limits *l)
{
    r->lim = *l;
    r->have_lim = 1;
    for (srv_session *s = r->list; s; s = s->next)
        srv_set_limits(s->core, l);
}

static void session_free(srv_sessions *r, srv_session *s)
{
    if (!s)
        return;
    if (s->core) {
        srv_shutdown(s->core);
        if (r->on_retire)
            r->on_retire(r->retire_ud, s);
        srv_free(s->core);
    }
    if (s->own_store)
        srv_store_close(s->st);
    free(s->secret);
    json_decref(s->overrides);
    srv_journal_free(s->journal);
    free(s);
}

/* A session with its logger, journal and core; the store is given. */
static srv_session *session_new(srv_sessions *r, const char *id, const char *secret,
                                const json_t *overrides, double scale, srv_store *st, int own,
                                char *err, size_t errlen)
{
    srv_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    s->reg = r;
    s->st = st;
    s->own_store = own;
    s->secret = strdup(secret);
    s->time_scale = scale;
    s->overrides = overrides ? json_deep_copy(overrides) : json_object();
    s->pol = r->base_pol;
    const char *k;
    json_t *v;
    json_object_foreach(s->overrides, k, v) {
        if (hp_policy_set(&s->pol, k, v, err, errlen) != 0) {
            s->core = NULL;
            session_free(r, s);
            return NULL;
        }
    }
    if (scale != 1.0)
        hp_policy_scale(&s->pol, scale);
    s->logger = (hp_logger){session_sink, s, r->level};
    s->env = r->base_env;
    s->env.log = &s->logger;
    s->journal = srv_journal_new();
    s->created_ms = hp_env_now(&s->env);
    s->core = s->secret && s->journal ? make_core(s) : NULL;
    if (!s->core) {
        snprintf(err, errlen, "out of memory");
        session_free(r, s);
        return NULL;
    }
    return s;
}

srv_sessions *srv_sessions_new(const hp_env *env, hp_log_level level, const hp_policy *base_pol,
                               double time_scale, const char *secret, srv_store *st)
{
    srv_sessions *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base_env = *env;
    r->level = level;
    r->base_pol = *base_pol;
    r->default_scale = time_scale;
    char err[256];
    r->list = session_new(r, "default", secret, NULL, time_scale, st, 0, err, sizeof err);
    if (!r->list) {
        free(r);
        return NULL;
    }
    r->list->is_default = 1;
    r->n = 1;
    return r;
}

void srv_sessions_free(srv_sessions *r)
{
    if (!r)
        return;
    while (r->list) {
        srv_session *s = r->list;
        r->list = s->next;
        session_free(r, s);
    }
    free(r);
}

srv_session *srv_session_find(srv_sessions *r, const char *id)
{
    for (srv_session *s = r ? r->list : NULL; s; s = s->next)
        if (!strcmp(s->id, id))
            return s;
    return NULL;
}

srv_session *srv_session_default(srv_sessions *r)
{
    return r ? r->list : NULL;
}

srv_session *srv_session_create(srv_sessions *r, const json_t *body, int *status, char *err,
                                size_t errlen)
{
    *status = 400;
    static const char *const KEYS[] = {"id", "jwt_secret", "time_scale", "policy"};
    if (body && !json_is_object(body)) {
        snprintf(err, errlen, "expected a JSON object {\"id\"?, \"jwt_secret\"?, "
                              "\"time_scale\"?, \"policy\"?}");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        size_t i = 0;
        while (i < 4 && strcmp(KEYS[i], k))
            i++;
        if (i == 4) {
            const char *dym = srv_did_you_mean(k, KEYS, 4);
            snprintf(err, errlen, "unknown key \"%.60s\"%s%s%s; keys: id, jwt_secret, "
                                  "time_scale, policy", k, dym ? " (did you mean \"" : "",
                     dym ? dym : "", dym ? "\"?)" : "");
            return NULL;
        }
    }
    char id[SRV_SESSION_ID_MAX + 1];
    json_t *jid = json_object_get(body, "id");
    if (jid) {
        if (!json_is_string(jid) || !srv_session_id_valid(json_string_value(jid))) {
            snprintf(err, errlen, "\"id\" must be 1-%d characters of [a-z0-9-]",
                     SRV_SESSION_ID_MAX);
            return NULL;
        }
        snprintf(id, sizeof id, "%s", json_string_value(jid));
    } else {
        do
            snprintf(id, sizeof id, "s%llu", (unsigned long long)++r->next_auto);
        while (srv_session_find(r, id));
    }
    json_t *js = json_object_get(body, "jwt_secret");
    if (js && (!json_is_string(js) || !*json_string_value(js) ||
               strlen(json_string_value(js)) > 512)) {
        snprintf(err, errlen, "\"jwt_secret\" must be a string of 1-512 bytes");
        return NULL;
    }
    double scale = r->default_scale;
    json_t *jt = json_object_get(body, "time_scale");
    if (jt) {
        scale = json_is_number(jt) ? json_number_value(jt) : -1;
        if (!isfinite(scale) || scale <= 0 || scale > 1e6) {
            snprintf(err, errlen, "\"time_scale\" must be a number in (0, 1000000]");
            return NULL;
        }
    }
    json_t *jp = json_object_get(body, "policy");
    if (jp && !json_is_object(jp)) {
        snprintf(err, errlen, "\"policy\" must be an object of overrides, e.g. "
                              "{\"lock_ttl\": \"10s\"}");
        return NULL;
    }
    if (srv_session_find(r, id)) {
        *status = 409;
        snprintf(err, errlen, "session \"%s\" exists", id);
        return NULL;
    }
    if (r->n >= SRV_SESSIONS_MAX) {
        *status = 429;
        snprintf(err, errlen, "at most %d sessions: delete one first", SRV_SESSIONS_MAX);
        return NULL;
    }
    char secret[80];
    if (js) {
        snprintf(secret, sizeof secret, "%s", ""); /* given below */
    } else {
        uint64_t a = hp_rng_next(r->base_env.rng), b = hp_rng_next(r->base_env.rng);
        snprintf(secret, sizeof secret, "%016llx%016llx", (unsigned long long)a,
                 (unsigned long long)b);
    }
    srv_store *st = srv_store_open(":memory:", err, errlen);
    if (!st) {
        *status = 500;
        return NULL;
    }
    char perr[256] = "";
    srv_session *s = session_new(r, id, js ? json_string_value(js) : secret, jp, scale, st, 1,
                                 perr, sizeof perr);
    if (!s) {
        snprintf(err, errlen, "policy: %s", perr);
        return NULL; /* the store went with it */
    }
    srv_session **pp = &r->list;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    r->n++;
    hp_log(&s->env, HP_LOG_INFO, "session_created", "time_scale=%g", scale);
    *status = 201;
    return s;
}

int srv_session_delete(srv_sessions *r, const char *id)
{
    for (srv_session **pp = &r->list; *pp; pp = &(*pp)->next) {
        srv_session *s = *pp;
        if (strcmp(s->id, id) != 0)
            continue;
        if (s->is_default)
            return -1;
        hp_log(&s->env, HP_LOG_INFO, "session_deleted", NULL);
        *pp = s->next;
        r->n--;
        session_free(r, s);
        return 0;
    }
    return -1;
}

/* Retire the core (1001 to every socket, driver drains) and build a new
 * one over s->st; faults move over when keep_faults. */
static int new_core(srv_session *s, int keep_faults)
{
    srv_core *old = s->core;
    srv_shutdown(old);
    if (s->reg->on_retire)
        s->reg->on_retire(s->reg->retire_ud, s);
    srv_core *c = make_core(s);
    if (!c)
        return -1;
    if (keep_faults)
        srv_faults_move(old, c);
    s->core = c;
    srv_free(old);
    return 0;
}

int srv_session_reset(srv_session *s)
{
    if (!s)
        return -1;
    if (s->own_store) {
        char err[256];
        srv_store *st = srv_store_open(":memory:", err, sizeof err);
        if (!st)
            return -1;
        srv_shutdown(s->core);
        if (s->reg->on_retire)
            s->reg->on_retire(s->reg->retire_ud, s);
        srv_free(s->core);
        srv_store_close(s->st);
        s->st = st;
        s->core = make_core(s);
        if (!s->core)
            return -1;
    } else {
        if (new_core(s, 0) != 0 || srv_store_wipe(s->st) != 0)
            return -1;
    }
    srv_journal_clear(s->journal);
    s->retry_after_date = 0;
    hp_log(&s->env, HP_LOG_INFO, "session_reset", NULL);
    return 0;
}

int srv_session_restart(srv_session *s)
{
    if (!s || new_core(s, 1) != 0)
        return -1;
    s->restarts++;
    hp_log(&s->env, HP_LOG_INFO, "session_restarted", "restarts=%llu",
           (unsigned long long)s->restarts);
    return 0;
}

json_t *srv_session_json(srv_session *s)
{
    char base[80], stream[100];
    if (s->is_default) {
        snprintf(base, sizeof base, "/api/v0.2");
    } else {
        snprintf(base, sizeof base, "/s/%s/api/v0.2", s->id);
    }
    snprintf(stream, sizeof stream, "%s/tasks/stream", base);
    json_t *st = srv_state(s->core);
    json_t *conns = json_object_get(st, "connections");
    if (!conns) {
        json_object_set_new(st, "connections", json_array());
        conns = json_object_get(st, "connections");
    }
    json_t *hhs = json_object_get(st, "households");
    json_t *hlist = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(hhs, k, v) json_array_append_new(hlist, json_string(k));
    json_t *faults = srv_faults_list(s->core);
    json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:f, s:O, s:I, s:O, s:o, s:I, s:I, s:I}", "id",
                          s->id, "default", s->is_default, "base_url", base, "stream_url", stream,
                          "time_scale", s->time_scale, "policy", s->overrides, "created_at",
                          (json_int_t)s->created_ms, "connections",
                          conns, "households", hlist, "journal_entries",
                          (json_int_t)srv_journal_count(s->journal), "faults",
                          (json_int_t)json_array_size(faults), "restarts",
                          (json_int_t)s->restarts);
    json_decref(faults);
    json_decref(st);
    return o;
}
