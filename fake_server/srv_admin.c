/*
 * srv_admin.c - the admin API router (srv_admin.h).
 *
 * Every handler checks everything before it changes anything: a refused
 * request (400, 404, 405, 409) leaves sessions, faults and journals as
 * they were.
 */
#define _GNU_SOURCE
#include "srv_admin.h"
#include "srv_internal.h"
#include "srv_journal.h"
#include "hp_jwt.h"
#include "hp_msg.h"
#include "hp_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void answer_json(srv_admin_resp *o, int status, json_t *v)
{
    o->status = status;
    o->body = v ? json_dumps(v, JSON_COMPACT) : NULL;
    o->content_type = "application/json";
    json_decref(v);
    if (!o->body) {
        o->status = 500;
        o->body = hp_error_body("internal", "out of memory");
    }
}

static void answer_err(srv_admin_resp *o, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_err(srv_admin_resp *o, int status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->status = status;
    o->body = hp_error_body(code ? code : hp_error_code_for_status(status), msg);
    o->content_type = "application/json";
}

static int method_not_allowed(srv_admin_resp *o, const char *allow)
{
    o->allow = allow;
    answer_err(o, 405, "method_not_allowed", "use %s here", allow);
    return 0;
}

/* ---- query strings ---------------------------------------------------- */

/* Refuses a query with a parameter not in allowed (did-you-mean). */
static int check_query(const char *query, const char *const *allowed, size_t n,
                       srv_admin_resp *o)
{
    if (!query || !*query)
        return 0;
    const char *p = query;
    while (*p) {
        size_t l = strcspn(p, "=&");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(l < 63 ? l : 63), p);
        size_t i = 0;
        while (i < n && strcmp(allowed[i], name))
            i++;
        if (i == n) {
            const char *dym = srv_did_you_mean(name, allowed, n);
            char list[200] = "";
            for (size_t k = 0; k < n; k++) {
                size_t ol = strlen(list);
                snprintf(list + ol, sizeof list - ol, "%s%s", k ? ", " : "", allowed[k]);
            }
            answer_err(o, 400, NULL, "unknown query parameter \"%s\"%s%s%s; parameters: %s",
                       name, dym ? " (did you mean \"" : "", dym ? dym : "",
                       dym ? "\"?)" : "", n ? list : "none");
            return -1;
        }
        p += strcspn(p, "&");
        if (*p == '&')
            p++;
    }
    return 0;
}

/* The session a request is about: ?session=, else the /s/{id} prefix,
 * else the default one.  NULL after answering 404. */
static srv_session *pick(srv_sessions *reg, const srv_admin_req *q, srv_admin_resp *o)
{
    char *id = srv_query_get(q->query, "session");
    const char *want = id && *id ? id : q->session_hint ? q->session_hint : "default";
    srv_session *s = srv_session_find(reg, want);
    if (!s)
        answer_err(o, 404, "not_found", "no session \"%.40s\" (GET /_hp/sessions lists them)",
                   want);
    free(id);
    return s;
}

/* The body as a JSON value; NULL after answering (411, 413, 400). */
static json_t *load_body(const srv_admin_req *q, srv_admin_resp *o, int empty_ok)
{
    if (q->content_length < 0 || q->body_len == 0) {
        if (empty_ok)
            return json_object();
        answer_err(o, q->content_length < 0 ? 411 : 400, NULL,
                   q->content_length < 0 ? "Content-Length required (a JSON body)"
                                         : "a JSON body is required");
        return NULL;
    }
    if (q->content_length > SRV_ADMIN_BODY_MAX || q->body_len > SRV_ADMIN_BODY_MAX) {
        answer_err(o, 413, NULL, "admin bodies are at most %d bytes", SRV_ADMIN_BODY_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(q->body ? q->body : "", q->body_len, 0, &je);
    if (!v || !json_is_object(v)) {
        json_decref(v);
        answer_err(o, 400, NULL, "the body must be a JSON object (%s)",
                   v ? "got another JSON value" : je.text);
        return NULL;
    }
    return v;
}

/* ---- protection ------------------------------------------------------- */

static int loopback_host(const char *h)
{
    if (!h)
        return 1; /* HTTP/1.0 without Host: not a browser */
    char name[256];
    size_t l = strlen(h);
    if (l >= sizeof name)
        return 0;
    memcpy(name, h, l + 1);
    if (name[0] == '[') {
        char *rb = strchr(name, ']');
        if (rb)
            *rb = '\0';
        return !strcmp(name + 1, "::1");
    }
    char *colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    return !strcmp(name, "localhost") || !strncmp(name, "127.", 4);
}

/* Origin "http://HOST" must name this server (the page itself). */
static int same_origin(const char *origin, const char *host)
{
    if (!origin)
        return 1;
    const char *p = strstr(origin, "://");
    if (!p || !host)
        return 0;
    return strcasecmp(p + 3, host) == 0;
}

static int token_ok(const char *token, const char *auth)
{
    if (!token)
        return 1;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t a = strlen(t), b = strlen(token);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < a ? t[i] : 0);
    return diff == 0; /* constant time in the token's length */
}

/* ---- handlers --------------------------------------------------------- */

static json_t *session_full(srv_session *s)
{
    json_t *j = srv_session_json(s);
    if (!s->is_default)
        json_object_set_new(j, "jwt_secret", json_string(s->secret));
    char tk[80];
    snprintf(tk, sizeof tk, "/_hp/sessions/%s/tokens", s->id);
    json_object_set_new(j, "tokens_url", json_string(tk));
    return j;
}

static void h_sessions(srv_sessions *reg, const srv_admin_req *q, srv_admin_resp *o)
{
    if (check_query(q->query, NULL, 0, o))
        return;
    if (!strcmp(q->method, "GET")) {
        json_t *a = json_array();
        for (srv_session *s = reg->list; s; s = s->next)
            json_array_append_new(a, srv_session_json(s));
        answer_json(o, 200, json_pack("{s:o}", "sessions", a));
        return;
    }
    if (strcmp(q->method, "POST")) {
        method_not_allowed(o, "GET, POST");
        return;
    }
    json_t *b = load_body(q, o, 1);
    if (!b)
        return;
    int st = 0;
    char err[400];
    srv_session *s = srv_session_create(reg, b, &st, err, sizeof err);
    json_decref(b);
    if (!s) {
        answer_err(o, st, st == 409 ? "conflict" : NULL, "%s", err);
        return;
    }
    answer_json(o, 201, session_full(s));
}

static void h_tokens(srv_session *s, const srv_admin_req *q, srv_admin_resp *o)
{
    if (strcmp(q->method, "POST")) {
        method_not_allowed(o, "POST");
        return;
    }
    json_t *b = load_body(q, o, 0);
    if (!b)
        return;
    static const char *const KEYS[] = {"user", "household", "device", "ttl_s"};
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        size_t i = 0;
        while (i < 4 && strcmp(KEYS[i], k))
            i++;
        if (i == 4) {
            const char *dym = srv_did_you_mean(k, KEYS, 4);
            answer_err(o, 400, NULL, "unknown key \"%.60s\"%s%s%s; keys: user, household, "
                                     "device, ttl_s", k, dym ? " (did you mean \"" : "",
                       dym ? dym : "", dym ? "\"?)" : "");
            json_decref(b);
            return;
        }
        if (strcmp(k, "ttl_s") ? !json_is_string(v) || !*json_string_value(v) ||
                                     strlen(json_string_value(v)) >= SRV_NAME_MAX
                               : !json_is_integer(v) || json_integer_value(v) < 1 ||
                                     json_integer_value(v) > 30 * 86400) {
            answer_err(o, 400, NULL, "\"%s\" must be %s", k,
                       strcmp(k, "ttl_s") ? "a string of 1-127 bytes"
                                          : "an integer 1..2592000 (seconds)");
            json_decref(b);
            return;
        }
    }
    const char *user = json_string_value(json_object_get(b, "user"));
    const char *hh = json_string_value(json_object_get(b, "household"));
    if (!user || !hh) {
        answer_err(o, 400, NULL, "\"user\" and \"household\" are required");
        json_decref(b);
        return;
    }
    json_t *jt = json_object_get(b, "ttl_s");
    int64_t ttl = jt ? json_integer_value(jt) : 3600;
    int64_t now = hp_env_now(&s->env) / 1000;
    char *tok = hp_jwt_mint(s->secret, user, hh, json_string_value(json_object_get(b, "device")),
                            now, now + ttl);
    json_decref(b);
    if (!tok) {
        answer_err(o, 500, NULL, "minting failed");
        return;
    }
    answer_json(o, 200, json_pack("{s:s, s:s, s:I}", "token", tok, "session", s->id,
                                  "expires_at", (json_int_t)(now + ttl)));
    free(tok);
}

/* /_hp/sessions/{id}[/reset|/restart|/tokens] */
static void h_session(srv_sessions *reg, const srv_admin_req *q, const char *rest,
                      srv_admin_resp *o)
{
    char id[SRV_SESSION_ID_MAX + 2];
    size_t l = strcspn(rest, "/");
    if (l > SRV_SESSION_ID_MAX) {
        answer_err(o, 404, "not_found", "no such session");
        return;
    }
    snprintf(id, sizeof id, "%.*s", (int)l, rest);
    const char *sub = rest + l;
    srv_session *s = srv_session_find(reg, id);
    if (!s) {
        answer_err(o, 404, "not_found", "no session \"%s\"", id);
        return;
    }
    if (check_query(q->query, NULL, 0, o))
        return;
    if (!*sub) {
        if (!strcmp(q->method, "GET")) {
            answer_json(o, 200, session_full(s));
        } else if (!strcmp(q->method, "DELETE")) {
            if (s->is_default) {
                answer_err(o, 400, NULL, "the default session cannot be deleted (reset it)");
                return;
            }
            srv_session_delete(reg, id);
            answer_json(o, 200, json_pack("{s:b, s:s}", "deleted", 1, "id", id));
        } else {
            method_not_allowed(o, "GET, DELETE");
        }
        return;
    }
    if (!strcmp(sub, "/tokens")) {
        h_tokens(s, q, o);
        return;
    }
    int reset = !strcmp(sub, "/reset"), restart = !strcmp(sub, "/restart");
    if (!reset && !restart) {
        answer_err(o, 404, "not_found", "no such endpoint (sessions/{id}: reset, restart, "
                                        "tokens)");
        return;
    }
    if (strcmp(q->method, "POST")) {
        method_not_allowed(o, "POST");
        return;
    }
    if (q->body_len) {
        json_t *b = load_body(q, o, 1);
        if (!b)
            return;
        size_t n = json_object_size(b);
        json_decref(b);
        if (n) {
            answer_err(o, 400, NULL, "this endpoint takes no body (or {})");
            return;
        }
    }
    if ((reset ? srv_session_reset(s) : srv_session_restart(s)) != 0) {
        answer_err(o, 500, NULL, "could not %s the session", reset ? "reset" : "restart");
        return;
    }
    answer_json(o, 200, json_pack("{s:b, s:s}", reset ? "reset" : "restarted", 1, "id", s->id));
}

/* The query holds only qp[0..n-1] and the method is `method`; else the
 * refusal is set on o and 1 returned (the handler returns). */
static int refuse_shape(const srv_admin_req *q, const char *const *qp, size_t n,
                        const char *method, srv_admin_resp *o)
{
    if (check_query(q->query, qp, n, o))
        return 1;
    if (strcmp(q->method, method)) {
        method_not_allowed(o, method);
        return 1;
    }
    return 0;
}

static void h_faults(srv_sessions *reg, const srv_admin_req *q, const char *rest,
                     srv_admin_resp *o)
{
    static const char *const QP[] = {"session"};
    if (check_query(q->query, QP, 1, o))
        return;
    srv_session *s = pick(reg, q, o);
    if (!s)
        return;
    if (*rest) { /* /_hp/faults/{id} */
        int64_t id = hp_parse_decimal(rest + 1, INT64_MAX / 2);
        if (rest[0] != '/' || id <= 0) {
            answer_err(o, 404, "not_found", "no such fault (ids are positive integers)");
            return;
        }
        if (strcmp(q->method, "DELETE")) {
            method_not_allowed(o, "DELETE");
            return;
        }
        if (srv_faults_clear(s->core, (uint64_t)id) == 0) {
            answer_err(o, 404, "not_found", "no armed fault %lld in session %s", (long long)id,
                       s->id);
            return;
        }
        answer_json(o, 200, json_pack("{s:i}", "cleared", 1));
        return;
    }
    if (!strcmp(q->method, "GET")) {
        answer_json(o, 200, json_pack("{s:s, s:o}", "session", s->id, "faults",
                                      srv_faults_list(s->core)));
        return;
    }
    if (!strcmp(q->method, "DELETE")) {
        int n = srv_faults_clear(s->core, 0);
        answer_json(o, 200, json_pack("{s:i}", "cleared", n));
        return;
    }
    if (strcmp(q->method, "POST")) {
        method_not_allowed(o, "GET, POST, DELETE");
        return;
    }
    json_t *b = load_body(q, o, 0);
    if (!b)
        return;
    /* "restart" belongs to the session, not the core: taken out, checked,
     * done last (after the other faults are armed on the current core
     * and moved to the new one). */
    json_t *rs = json_object_get(b, "restart");
    if (rs && (!json_is_object(rs) || json_object_size(rs))) {
        json_decref(b);
        answer_err(o, 400, NULL, "restart: takes an empty object {}");
        return;
    }
    int restart = rs != NULL;
    if (restart)
        json_object_del(b, "restart");
    json_t *res = NULL;
    char err[600];
    if (json_object_size(b) || !restart) {
        int r = srv_faults_arm(s->core, b, &res, err, sizeof err);
        if (r != 0) {
            json_decref(b);
            answer_err(o, r == -2 ? 404 : 400, NULL, "%s", err);
            return;
        }
    }
    const char *form =
        json_string_value(json_object_get(json_object_get(b, "fail_requests"), "retry_after_form"));
    if (form) /* how this session writes Retry-After, until changed */
        s->retry_after_date = !strcmp(form, "http-date");
    json_decref(b);
    if (!res)
        res = json_array();
    if (restart) {
        srv_session_restart(s);
        json_array_append_new(res, json_pack("{s:s}", "kind", "restart"));
    }
    answer_json(o, 200, json_pack("{s:b, s:s, s:o}", "ok", 1, "session", s->id, "armed", res));
}

static void h_journal(srv_sessions *reg, const srv_admin_req *q, srv_admin_resp *o)
{
    static const char *const QP[] = {"session", "since", "device", "kind", "limit"};
    if (refuse_shape(q, QP, 5, "GET", o))
        return;
    srv_session *s = pick(reg, q, o);
    if (!s)
        return;
    char *since = srv_query_get(q->query, "since"), *dev = srv_query_get(q->query, "device"),
         *kind = srv_query_get(q->query, "kind"), *limit = srv_query_get(q->query, "limit");
    int64_t sv = since ? hp_parse_decimal(since, INT64_MAX / 2) : 0;
    int64_t lv = limit ? hp_parse_decimal(limit, SRV_JOURNAL_MAX) : 1000;
    static const char *const KINDS[] = {"http",     "ws",         "ws_open", "ws_in",
                                        "ws_out",   "ws_close",   "ws_refused", "log"};
    int kind_ok = !kind;
    for (size_t i = 0; kind && i < 8; i++)
        kind_ok |= !strcmp(kind, KINDS[i]);
    if (sv < 0)
        answer_err(o, 400, NULL, "\"since\" must be a journal seq (an integer >= 0)");
    else if (lv < 1)
        answer_err(o, 400, NULL, "\"limit\" must be 1..%d", SRV_JOURNAL_MAX);
    else if (!kind_ok)
        answer_err(o, 400, NULL, "\"kind\" must be http, ws, ws_open, ws_in, ws_out, ws_close, "
                                 "ws_refused or log");
    else {
        json_t *r = srv_journal_query(s->journal, (uint64_t)sv, dev, kind, (size_t)lv);
        json_object_set_new(r, "session", json_string(s->id));
        answer_json(o, 200, r);
    }
    free(since);
    free(dev);
    free(kind);
    free(limit);
}

static void h_verify(srv_sessions *reg, const srv_admin_req *q, srv_admin_resp *o)
{
    static const char *const QP[] = {"session"};
    if (refuse_shape(q, QP, 1, "POST", o))
        return;
    json_t *b = load_body(q, o, 0);
    if (!b)
        return;
    /* the session may also be named in the body */
    srv_session *s = NULL;
    json_t *js = json_object_get(b, "session");
    if (js) {
        s = json_is_string(js) ? srv_session_find(reg, json_string_value(js)) : NULL;
        if (!s) {
            answer_err(o, json_is_string(js) ? 404 : 400, NULL, "no such session");
            json_decref(b);
            return;
        }
    } else if (!(s = pick(reg, q, o))) {
        json_decref(b);
        return;
    }
    json_t *res = NULL;
    char err[400];
    if (srv_journal_verify(s->journal, b, &res, err, sizeof err) != 0) {
        answer_err(o, 400, NULL, "%s", err);
    } else {
        json_object_set_new(res, "session", json_string(s->id));
        answer_json(o, 200, res);
    }
    json_decref(b);
}

static void h_state(srv_sessions *reg, const srv_admin_req *q, srv_admin_resp *o)
{
    static const char *const QP[] = {"session"};
    if (refuse_shape(q, QP, 1, "GET", o))
        return;
    srv_session *s = pick(reg, q, o);
    if (s)
        answer_json(o, 200, srv_state(s->core));
}

/* /_hp/proxy/REST: after the admin checks, the driver relays it to the
 * fault proxy's control API (srv_lws_proxy.c). */
static void h_proxy(const srv_admin_req *q, const char *rest, srv_admin_resp *o)
{
    if (!q->fault_proxy) {
        answer_err(o, 404, "proxy_not_configured", "no fault proxy: start hp-fake-server with "
                   "--fault-proxy HOST:PORT (the --control address of hp-fault-proxy)");
        return;
    }
    if (q->content_length > SRV_ADMIN_BODY_MAX || q->body_len > SRV_ADMIN_BODY_MAX) {
        answer_err(o, 413, NULL, "admin bodies are at most %d bytes", SRV_ADMIN_BODY_MAX);
        return;
    }
    o->status = 0;
    o->proxy_path = rest;
}

void srv_admin_http(srv_sessions *reg, const char *token, const srv_admin_req *q,
                    srv_admin_resp *o)
{
    memset(o, 0, sizeof *o);
    const char *p = q->path;
    if (!same_origin(q->origin, q->host)) {
        answer_err(o, 403, "forbidden", "cross-origin admin requests are refused");
        return;
    }
    if (!token && !loopback_host(q->host)) {
        answer_err(o, 403, "forbidden", "without --admin-token the admin API answers only "
                                        "loopback host names");
        return;
    }
    if (!strcmp(p, "/_hp/") || !strcmp(p, "/_hp")) {
        if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD")) {
            method_not_allowed(o, "GET");
            return;
        }
        /* The page holds no data (it asks for the token to read any). */
        o->status = 200;
        o->body = strdup(srv_page_html());
        o->content_type = "text/html; charset=utf-8";
        return;
    }
    if (!token_ok(token, q->authorization)) {
        answer_err(o, 401, "unauthorized", "admin API: Authorization: Bearer <admin token> "
                                           "required");
        return;
    }
    if (!strcmp(p, "/_hp/sessions"))
        h_sessions(reg, q, o);
    else if (!strncmp(p, "/_hp/sessions/", 14))
        h_session(reg, q, p + 14, o);
    else if (!strcmp(p, "/_hp/faults") || !strncmp(p, "/_hp/faults/", 12))
        h_faults(reg, q, p + 11, o);
    else if (!strcmp(p, "/_hp/journal"))
        h_journal(reg, q, o);
    else if (!strcmp(p, "/_hp/verify"))
        h_verify(reg, q, o);
    else if (!strcmp(p, "/_hp/state"))
        h_state(reg, q, o);
    else if (!strcmp(p, "/_hp/proxy") || !strncmp(p, "/_hp/proxy/", 11))
        h_proxy(q, p + 10, o);
    else
        answer_err(o, 404, "not_found", "no admin endpoint %.100s (endpoints: /_hp/, "
                                        "/_hp/sessions, /_hp/faults, /_hp/journal, /_hp/verify, "
                                        "/_hp/state, /_hp/proxy/...)", p);
}
