/*
 * srv_admin.h - the admin API under /_hp/ (sans-I/O).
 *
 * Input: one HTTP request (method, path, query, the headers that matter,
 * body).  Output: status, a malloc'd body and its content type.  The
 * driver (srv_lws.c) writes it WITHOUT any CORS header (a page of another
 * origin must not arm faults or read households), adds
 * "WWW-Authenticate: Bearer" to a 401, and drains every session's outbox
 * afterwards (faults may push frames and closes).
 *
 * Endpoints, bodies and limits: docs/ADMIN_API.md.  Every answer is JSON
 * except the page (GET /_hp/, text/html).  Unknown endpoint: 404, wrong
 * method: 405 with "allow", bad body or query: 400 naming the key.
 *
 * Protection: with a token every endpoint but the page needs "Bearer
 * TOKEN"; a request whose Origin is not the server itself is refused (403),
 * and without a token so is a Host that is not a loopback name (DNS
 * rebinding).
 */
#ifndef SRV_ADMIN_H
#define SRV_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include "srv_session.h"

#define SRV_ADMIN_BODY_MAX 65536

typedef struct srv_admin_req {
    const char *method;
    const char *path;           /* "/_hp/..." (a /s/{id} prefix removed) */
    const char *session_hint;   /* the {id} of that prefix, or NULL */
    const char *query;          /* raw, without '?', or NULL */
    const char *authorization;  /* NULL when absent */
    const char *origin;         /* NULL when absent */
    const char *host;           /* NULL when absent */
    const char *body;
    size_t body_len;
    int64_t content_length;     /* -1: absent */
    int fault_proxy;            /* --fault-proxy given: /_hp/proxy/... is relayed */
} srv_admin_req;

typedef struct srv_admin_resp {
    int status;
    char *body;                 /* malloc'd, caller frees */
    const char *content_type;   /* static */
    const char *allow;          /* 405: the allowed methods (static), else NULL */
    const char *proxy_path;     /* non-NULL (status 0, no body): the request passed the
                                   admin checks and goes to the fault proxy as this path
                                   (points into q->path; "" for /_hp/proxy) */
} srv_admin_resp;

/* token: NULL for none (then the API must be on loopback: srv_main.c). */
void srv_admin_http(srv_sessions *reg, const char *token, const srv_admin_req *q,
                    srv_admin_resp *out);

/* The page (srv_page.c): one self-contained HTML document. */
const char *srv_page_html(void);

#endif
