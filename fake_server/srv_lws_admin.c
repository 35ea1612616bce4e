/*
 * srv_lws_admin.c - sessions and the admin API in the libwebsockets adapter
 * (part of srv_lws.c, see srv_lws_int.h).
 *
 * Routing: a /s/{id} path prefix names the session whose core answers
 * (srv_session.h); /_hp/... goes to the admin router (srv_admin.c, sans
 * I/O), which is answered WITHOUT CORS headers (srv_lws_http.c).  The
 * journal entry of a REST exchange is written here when its answer comes
 * out of the core (with group commit, after the COMMIT), at the seq
 * reserved when the request went in: before the frames it caused.
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_admin.h"

srv_session *srvl_route(const char *path, const char **rest, char *hint, size_t hl)
{
    hint[0] = '\0';
    *rest = path;
    if (strncmp(path, "/s/", 3) != 0)
        return srv_session_default(srvl.reg);
    const char *id = path + 3;
    size_t l = strcspn(id, "/");
    snprintf(hint, hl, "%.*s", (int)(l < hl - 1 ? l : hl - 1), id);
    *rest = id[l] ? id + l : "/";
    if (l == 0 || l >= hl)
        return NULL;
    return srv_session_find(srvl.reg, hint);
}

int srvl_is_admin_path(const char *path)
{
    return !strcmp(path, "/_hp") || !strncmp(path, "/_hp/", 5);
}

srv_jwho srvl_conn_who(const conn *c)
{
    srv_jwho w = {c->who.hh, c->who.sub, c->who.dev};
    return w;
}

void srvl_journal_http(pss *p)
{
    srv_session *s = p->sess;
    if (!s)
        return;
    hp_claims cl;
    int known = p->auth && srv_identify(s->core, p->auth, 0, &cl) == 0;
    srv_jwho w = {known ? cl.hh : NULL, known ? cl.sub : NULL, known ? cl.dev : NULL};
    json_t *h = json_object();
    if (p->idem)
        json_object_set_new(h, "idempotency-key", json_string(p->idem));
    if (p->origin)
        json_object_set_new(h, "origin", json_string(p->origin));
    if (p->content_length >= 0)
        json_object_set_new(h, "content-length", json_integer(p->content_length));
    json_object_set_new(h, "authorization", json_string(p->auth ? "[REDACTED]" : "(none)"));
    srv_journal_http(s->journal, hp_env_now(&s->env), p->method, p->jpath ? p->jpath : p->path,
                     p->query, h, p->body, p->body_len, p->status,
                     p->resp ? (const char *)p->resp + LWS_PRE : NULL, p->resp_len, p->hold_ms,
                     &w, p->jseq);
    p->sess = NULL;
}

void srvl_admin_handle(pss *p, const char *path)
{
    const char *rest;
    char hint[SRV_SESSION_ID_MAX + 1];
    srv_session *s = srvl_route(p->path, &rest, hint, sizeof hint);
    if (!p->admin_vhost && !srvl.admin_main) {
        srvl_set_error(p, 404, srvl.admin_vh ? "the admin API is served on the --admin-listen "
                                               "address"
                                             : "no such endpoint (the admin API is off: start "
                                               "with --admin)");
        return;
    }
    if (!srvl_is_admin_path(path)) {
        srvl_set_error(p, 404, "the admin address serves only /_hp/ (the API is on --listen)");
        return;
    }
    if (!strcmp(p->method, "OPTIONS")) {
        p->allow = "GET, POST, DELETE";
        srvl_set_error(p, 405, "no CORS on the admin API"); /* the preflight fails */
        return;
    }
    if (hint[0] && !s) {
        srvl_set_error(p, 404, "no such session");
        return;
    }
    srv_admin_req q = {p->method, path, hint[0] ? hint : NULL, p->query, p->auth,
                       p->origin, p->host, p->body, p->body_len, p->content_length,
                       srvl.opts.fault_proxy_host != NULL};
    srv_admin_resp o;
    /* An admin call may read what a pending group has not committed, and
     * may retire cores: every session is flushed first. */
    for (srv_session *x = srvl.reg->list; x; x = x->next)
        srv_flush(x->core);
    srvl_pump();
    srv_admin_http(srvl.reg, srvl.admin_token, &q, &o);
    if (o.proxy_path) { /* answered later, by the relay */
        free(o.body);
        srvl_proxy_start(p, o.proxy_path);
        return;
    }
    srvl_set_response(p, o.status, o.body ? o.body : "", o.body ? strlen(o.body) : 0, -1);
    p->ctype = o.content_type;
    if (o.allow)
        p->allow = o.allow;
    free(o.body);
    srvl_pump(); /* faults may have pushed frames and closes */
}
