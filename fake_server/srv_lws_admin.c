/*
 * srv_lws_admin.c - the optional admin endpoints of the libwebsockets
 * adapter (--admin; part of srv_lws.c, see srv_lws_int.h).
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hp_log.h"
#include "hp_msg.h"

static int json_int(json_t *o, const char *k, int dflt, int *out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < -1 || x > 1000000)
        return -1;
    *out = (int)x;
    return 0;
}

static int json_str(json_t *o, const char *k, const char **out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/*
 * POST /_hp/faults: {"drop_heartbeats": {"user", "count"}}
 *                 | {"fail_requests": {"method", "path_prefix", "count",
 *                                      "status", "retry_after"}}
 *                 | {"force_conflict": {"id"}}     (several keys allowed)
 * GET /_hp/state: srv_state().  Everything is validated before anything is
 * applied, so a bad request changes nothing.
 */
void srvl_admin_handle(pss *p)
{
    if (!strcmp(p->path, "/_hp/state")) {
        if (strcmp(p->method, "GET")) {
            srvl_set_error(p, 405, "use GET");
            return;
        }
        json_t *st = srv_state(srvl.core);
        char *s = st ? json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(st);
        if (!s) {
            srvl_set_error(p, 500, "state unavailable");
            return;
        }
        srvl_set_response(p, 200, s, strlen(s), -1);
        free(s);
        return;
    }
    if (strcmp(p->path, "/_hp/faults")) {
        srvl_set_error(p, 404, "admin endpoints: POST /_hp/faults, GET /_hp/state");
        return;
    }
    if (strcmp(p->method, "POST")) {
        srvl_set_error(p, 405, "use POST");
        return;
    }
    if (p->content_length < 0) {
        srvl_set_error(p, 411, "Content-Length required");
        return;
    }
    if ((size_t)p->content_length > srvl.pol->max_body) {
        srvl_set_error(p, 413, "body too large");
        return;
    }
    json_error_t je;
    json_t *root = json_loadb(p->body ? p->body : "", p->body_len, 0, &je);
    if (!root || !json_is_object(root) || json_object_size(root) == 0) {
        json_decref(root);
        srvl_set_error(p, 400, "expected a JSON object with drop_heartbeats, fail_requests "
                          "or force_conflict");
        return;
    }
    const char *k;
    json_t *v;
    /* pass 0 validates, pass 1 applies */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach(root, k, v) {
            if (!json_is_object(v)) {
                srvl_set_error(p, 400, "each fault is a JSON object");
                goto out;
            }
            if (!strcmp(k, "drop_heartbeats")) {
                const char *user;
                int count;
                if (json_str(v, "user", &user) || json_int(v, "count", 1, &count) || count < 0) {
                    srvl_set_error(p, 400, "drop_heartbeats: {\"user\": string|null, \"count\": n}");
                    goto out;
                }
                if (pass)
                    srv_fault_drop_heartbeats(srvl.core, user, count); /* logs fault_armed */
            } else if (!strcmp(k, "fail_requests")) {
                const char *method, *prefix, *form;
                int count, status, ra;
                if (json_str(v, "method", &method) || json_str(v, "path_prefix", &prefix) ||
                    json_int(v, "count", 1, &count) || json_int(v, "status", -2, &status) ||
                    json_int(v, "retry_after", -1, &ra) ||
                    json_str(v, "retry_after_form", &form) || count < 0 || status < 100 ||
                    status > 599 ||
                    (form && strcmp(form, "seconds") && strcmp(form, "http-date"))) {
                    srvl_set_error(p, 400, "fail_requests: {\"method\", \"path_prefix\", \"count\", "
                                      "\"status\" (100-599, required), \"retry_after\", "
                                      "\"retry_after_form\": \"seconds\"|\"http-date\"}");
                    goto out;
                }
                if (pass) {
                    /* The form is a property of how this adapter writes the
                     * header, so it is server-wide until changed again. */
                    if (form)
                        srvl.retry_after_date = !strcmp(form, "http-date");
                    srv_fault_fail_requests(srvl.core, method, prefix, count, status, ra); /* logs fault_armed */
                }
            } else if (!strcmp(k, "force_conflict")) {
                const char *id;
                if (json_str(v, "id", &id) || !id || !*id) {
                    srvl_set_error(p, 400, "force_conflict: {\"id\": task id}");
                    goto out;
                }
                if (pass)
                    srv_fault_force_conflict(srvl.core, id); /* logs fault_armed */
            } else {
                srvl_set_error(p, 400, "unknown fault (drop_heartbeats, fail_requests, force_conflict)");
                goto out;
            }
        }
    }
    {
        const char *okb = "{\"ok\":true}";
        srvl_set_response(p, 200, okb, strlen(okb), -1);
    }
out:
    json_decref(root);
    srvl_pump(); /* fault calls may have queued nothing, but keep the rule */
}