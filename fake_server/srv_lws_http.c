/*
 * srv_lws_http.c - HTTP/1.1 requests of the libwebsockets adapter (part of
 * srv_lws.c, see srv_lws_int.h): collect a request (method, path, query,
 * Authorization, Idempotency-Key, Content-Length and a body capped at
 * max_body + 1), refuse what cannot be framed or served safely, hand the
 * rest to srv_http() and write the core's JSON answer with CORS and
 * Retry-After headers.  OPTIONS (CORS preflight) is answered here.
 *
 * Strictness (client teams test their apps against this server, so it is
 * stricter than production, never laxer; docs/LIMITS.md).  A connection's
 * first head was already checked by the front door (srv_lws_front.c); these
 * checks hold for every request lws parses:
 *   - a method the API does not have: 405 with Allow (RFC 9110 15.5.6);
 *   - Transfer-Encoding: request bodies are read by Content-Length only, so
 *     TE with CL is answered 400 (RFC 9112 6.1) and TE alone 411 (6.3), and
 *     the connection is closed: the bytes that follow cannot be framed;
 *   - POST/PUT without Content-Length on a connection that stays open: 411
 *     and close, so a body sent without a length is never read as the next
 *     request;
 *   (%00 in the path, 414 and 431 are the front door's: lws keeps them from
 *   us on later keep-alive requests; its own header buffer drops them.)
 */
#define _GNU_SOURCE
#include "srv_lws_int.h"
#include "srv_admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hp_log.h"
#include "hp_msg.h"
#include "hp_time.h"

/* The methods the API answers; anything else is 405 with this Allow. */
#define SRVL_ALLOW "GET, HEAD, PUT, POST, DELETE, OPTIONS"

void srvl_pend_unlink(pss *p)
{
    if (!p->pending)
        return;
    for (pss **pp = &srvl.pending; *pp; pp = &(*pp)->pend_next) {
        if (*pp == p) {
            *pp = p->pend_next;
            break;
        }
    }
    p->pending = 0;
    p->pend_next = NULL;
}

pss *srvl_pend_find(uint64_t req_id)
{
    for (pss *p = srvl.pending; p; p = p->pend_next)
        if (p->req_id == req_id)
            return p;
    return NULL;
}

void srvl_http_free(pss *p)
{
    if (!p)
        return;
    srvl_pend_unlink(p); /* a client gone before its answer: the answer is dropped */
    srvl_proxy_detach(p); /* ... and so is a relayed one */
    if (p->holding) {
        lws_sul_cancel(&p->hold_sul);
        p->holding = 0;
    }
    p->hold_ms = 0;
    free(p->origin);
    free(p->host);
    free(p->jpath);
    p->origin = p->host = p->jpath = NULL;
    p->sess = NULL;
    p->admin = 0;
    p->ctype = NULL;
    free(p->path);
    free(p->query);
    free(p->auth);
    free(p->idem);
    free(p->body);
    free(p->resp);
    p->path = p->query = p->auth = p->idem = p->body = NULL;
    p->resp = NULL;
    p->allow = NULL;
    p->close_after = 0;
    p->have_req = 0;
    p->dispatched = 0;
    p->resp_ready = 0;
    p->body_len = p->body_cap = p->resp_len = 0;
}

/* Store a response body (copied, with LWS_PRE headroom) on p. */
void srvl_set_response(pss *p, int status, const char *body, size_t len, int retry_after)
{
    free(p->resp);
    p->resp = malloc(LWS_PRE + len + 1);
    if (!p->resp) {
        p->resp_len = 0;
    } else {
        if (len)
            memcpy(p->resp + LWS_PRE, body, len);
        p->resp[LWS_PRE + len] = '\0';
        p->resp_len = len;
    }
    p->status = status;
    p->retry_after = retry_after;
    p->resp_ready = 1;
}

/* An error response made by the adapter itself (hp_error_body: the one
 * place error bodies are made). */
void srvl_set_error(pss *p, int status, const char *message)
{
    char *b = hp_error_body(hp_error_code_for_status(status), message);
    srvl_set_response(p, status, b, b ? strlen(b) : 0, -1);
    free(b);
}

/* The query string as "a=1&b=2" from lws's argument fragments (lws has
 * already split and url-decoded them).  NULL when there is none. */
char *srvl_copy_query(struct lws *wsi)
{
    size_t total = 0;
    int n = 0;
    for (;; n++) {
        int l = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, n);
        if (l <= 0)
            break;
        total += (size_t)l + 1;
    }
    if (n == 0)
        return NULL;
    char *q = malloc(total + 1);
    if (!q)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            q[o++] = '&';
        int l = lws_hdr_copy_fragment(wsi, q + o, (int)(total + 1 - o), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (l > 0)
            o += (size_t)l;
    }
    q[o] = '\0';
    return q;
}

static char *copy_header(struct lws *wsi, enum lws_token_indexes h)
{
    int l = lws_hdr_total_length(wsi, h);
    if (l <= 0)
        return NULL;
    char *s = malloc((size_t)l + 1);
    if (!s)
        return NULL;
    if (lws_hdr_copy(wsi, s, l + 1, h) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* A header lws has no token for (Idempotency-Key).  lws keeps custom header
 * names as sent, so both spellings a client may use are tried. */
static char *copy_custom(struct lws *wsi, const char *const *names)
{
    for (; *names; names++) {
        int nl = (int)strlen(*names);
        int l = lws_hdr_custom_length(wsi, *names, nl);
        if (l <= 0)
            continue;
        char *s = malloc((size_t)l + 1);
        if (!s)
            return NULL;
        if (lws_hdr_custom_copy(wsi, s, l + 1, *names, nl) < 0) {
            free(s);
            return NULL;
        }
        return s;
    }
    return NULL;
}

/* ---- HTTP --------------------------------------------------------------- */

static const char *const METHODS[] = {"GET",    "POST",    "OPTIONS", "PUT",  "PATCH",
                                      "DELETE", "CONNECT", "HEAD",    ":path"};


/*
 * The request is complete (headers, and the body when there is one): get
 * the answer from the core (or the admin handler / preflight) and ask for
 * HTTP_WRITEABLE to send it.
 */
static void http_dispatch(struct lws *wsi, pss *p)
{
    /* Once per request: lws 4.1.6 may also send HTTP_BODY_COMPLETION for a
     * POST with Content-Length: 0, which was dispatched at once; a second
     * dispatch while the first waits for its group's COMMIT pushed p on
     * the pending list again (a cycle: the server spun in srvl_pend_find). */
    if (p->dispatched)
        return;
    p->dispatched = 1;
    const char *path = p->path ? p->path : "/";
    const char *rest = path;
    srv_session *s = srvl_route(path, &rest, p->hint, sizeof p->hint);
    p->admin = srvl_is_admin_path(rest) || p->admin_vhost;
    if (p->admin) {
        srvl_admin_handle(p, rest);
    } else if (!s) {
        srvl_set_error(p, 404, "no such session (POST /_hp/sessions creates one)");
    } else if (!strcmp(p->method, "OPTIONS")) {
        srvl_set_response(p, 204, "", 0, -1); /* CORS preflight: headers do the work */
    } else {
        srv_http_req r;
        memset(&r, 0, sizeof r);
        r.id = p->req_id = ++srvl.next_id;
        r.method = p->method;
        r.path = rest;
        r.query = p->query;
        r.authorization = p->auth;
        r.idem_key = p->idem;
        r.body = p->body;
        r.body_len = p->body_len;
        r.content_length = p->content_length;
        p->wsi = wsi;
        p->pending = 1;
        p->pend_next = srvl.pending;
        srvl.pending = p;
        p->sess = s;
        p->jpath = strdup(rest);
        p->jseq = srv_journal_reserve(s->journal);
        srv_http(s->core, &r);
        srvl_pump();
        if (!p->resp_ready) {
            if (srvl.group)
                return; /* held until the group's COMMIT (srv_flush) */
            srvl_pend_unlink(p);
            srvl_set_error(p, 500, "the server core gave no answer");
        }
    }
    lws_callback_on_writable(wsi);
}

/* Does the Connection header say "close" (the peer sends no next request)? */
static int conn_close_requested(struct lws *wsi)
{
    char *v = copy_header(wsi, WSI_TOKEN_CONNECTION);
    int yes = v && strcasestr(v, "close") != NULL;
    free(v);
    return yes;
}

/*
 * The strictness rules of this file's opening comment that lws leaves to
 * us.  Returns NULL when the request may go on, else the reason (the
 * response is set on p, with close_after when the framing is unsafe).
 */
static const char *strict_refusal(struct lws *wsi, pss *p)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", NULL};
    int known = 0;
    for (int i = 0; ok[i]; i++)
        known |= !strcmp(p->method, ok[i]);
    if (!known) {
        /* RFC 9110 15.5.6: 405 lists what is allowed.  Close: a body it
         * may carry is not read. */
        srvl_set_error(p, 405, "method not allowed (allowed: " SRVL_ALLOW ")");
        p->allow = SRVL_ALLOW;
        p->close_after = 1;
        return "method";
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* RFC 9112 6.1: CL with TE "ought to be handled as an error" and
         * the connection closed; TE alone (chunked) is not read by this
         * server, so its bytes could not be framed either. */
        if (p->content_length >= 0)
            srvl_set_error(p, 400, "Content-Length together with Transfer-Encoding (RFC 9112 "
                                   "6.1): send Content-Length only");
        else
            srvl_set_error(p, 411, "Transfer-Encoding is not supported: send Content-Length");
        p->close_after = 1;
        return "transfer-encoding";
    }
    if (p->content_length < 0 && (!strcmp(p->method, "POST") || !strcmp(p->method, "PUT")) &&
        !conn_close_requested(wsi)) {
        /* RFC 9112 6.3: without a length the body is empty, so bytes a
         * client sent anyway would be read as the next request.  Refuse and
         * close instead (an empty body says Content-Length: 0). */
        srvl_set_error(p, 411, "Content-Length is required on POST and PUT "
                               "(Content-Length: 0 for an empty body)");
        p->close_after = 1;
        return "length";
    }
    return NULL;
}

/* LWS_CALLBACK_HTTP: read the request line and headers.  Returns the
 * callback's return value. */
int srvl_http_begin(struct lws *wsi, pss *p, const char *uri)
{
    srvl_http_free(p);
    p->have_req = 1;
    p->retry_after = -1;
    char *up = NULL;
    int ulen = 0;
    int m = lws_http_get_uri_and_method(wsi, &up, &ulen);
    snprintf(p->method, sizeof p->method, "%s",
             m >= 0 && m < (int)(sizeof METHODS / sizeof *METHODS) ? METHODS[m] : "UNKNOWN");
    p->path = strdup(uri && *uri ? uri : "/");
    p->query = srvl_copy_query(wsi);
    p->auth = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    static const char *const idem_names[] = {"idempotency-key:", "Idempotency-Key:", NULL};
    p->idem = copy_custom(wsi, idem_names);
    p->origin = copy_header(wsi, WSI_TOKEN_ORIGIN);
    p->host = copy_header(wsi, WSI_TOKEN_HOST);
    p->wsi = wsi;
    p->admin_vhost = srvl.admin_vh && lws_get_vhost(wsi) == srvl.admin_vh;
    /* Without --keep-alive every answer closes: the next request comes on
     * a new connection, through the front door, which reads each head
     * strictly (RFC 9112); lws 4.1.6 is laxer on a later keep-alive request
     * (docs/LIMITS.md).  The admin address is lws's own listener. */
    p->close_after = !srvl.opts.keep_alive && !p->admin_vhost;
    if (p->path) { /* known now: even a refusal below is sent without CORS */
        const char *rest;
        char hint[SRV_SESSION_ID_MAX + 1];
        srvl_route(p->path, &rest, hint, sizeof hint);
        p->admin = srvl_is_admin_path(rest) || p->admin_vhost;
    }
    p->content_length = -1;
    char *cl = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(cl, &end, 10);
        if (errno == 0 && end != cl && *end == '\0' && v >= 0)
            p->content_length = v;
        else
            p->content_length = 0; /* lws itself rejects most bad values first */
        free(cl);
    }
    if (!p->path) {
        srvl_set_error(p, 500, "out of memory");
        lws_callback_on_writable(wsi);
        return 0;
    }
    const char *refusal = strict_refusal(wsi, p);
    if (refusal) {
        /* The line goes to the session the path names, with who the token
         * says (when it verifies there). */
        const char *rest;
        char hint[SRV_SESSION_ID_MAX + 1];
        srv_session *s = srvl_route(p->path, &rest, hint, sizeof hint);
        hp_claims cl;
        int known = s && p->auth && srv_identify(s->core, p->auth, 0, &cl) == 0;
        hp_log(s ? &s->env : srvl.env, HP_LOG_INFO, "http_refused",
               "method=%s status=%d reason=\"%s\" user=%s hh=%s dev=%s", p->method, p->status,
               refusal, known ? cl.sub : "-", known ? cl.hh : "-",
               known && cl.dev[0] ? cl.dev : "-");
        lws_callback_on_writable(wsi);
        return 0;
    }
    /* A body comes only with a Content-Length: chunked request bodies
     * never reach HTTP_BODY in lws 4.1 (LWS_NOTES), so the core sees
     * content_length -1 and answers 411 where a body is needed. */
    int bodyless = !strcmp(p->method, "GET") || !strcmp(p->method, "HEAD") ||
                   !strcmp(p->method, "OPTIONS");
    if (p->content_length > 0 && !bodyless) {
        /* The cap of the session the path names (its policy may differ). */
        const char *rest;
        char hint[SRV_SESSION_ID_MAX + 1];
        srv_session *s = srvl_route(p->path, &rest, hint, sizeof hint);
        size_t cap = (srvl_is_admin_path(rest) || p->admin_vhost || !s ? SRV_ADMIN_BODY_MAX
                                                                        : s->pol.max_body) + 1;
        p->body_cap = (size_t)p->content_length < cap ? (size_t)p->content_length : cap;
        p->body = malloc(p->body_cap + 1);
        if (!p->body) {
            srvl_set_error(p, 500, "out of memory");
            lws_callback_on_writable(wsi);
            return 0;
        }
        return 0; /* wait for HTTP_BODY ... HTTP_BODY_COMPLETION */
    }
    http_dispatch(wsi, p);
    return 0;
}

/* LWS_CALLBACK_HTTP_BODY_COMPLETION: the body is in; answer. */
void srvl_http_body_complete(struct lws *wsi, pss *p)
{
    if (p->have_req && !p->resp_ready)
        http_dispatch(wsi, p);
}

/* LWS_CALLBACK_HTTP_BODY: keep at most max_body + 1 bytes (enough for the
 * core to answer 413 from content_length); the rest is read and dropped so
 * the connection stays in sync. */
void srvl_http_body(pss *p, const char *in, size_t len)
{
    if (!p->body || p->resp_ready)
        return;
    size_t room = p->body_cap - p->body_len;
    size_t n = len < room ? len : room;
    memcpy(p->body + p->body_len, in, n);
    p->body_len += n;
    p->body[p->body_len] = '\0';
}

/* LWS_CALLBACK_HTTP_WRITEABLE: headers and body in one go, then finish the
 * transaction.  pss is cleared BEFORE lws_http_transaction_completed(),
 * which may free or reset it (LWS_NOTES: ASan caught a use-after-free). */
static void on_hold_done(lws_sorted_usec_list_t *sul)
{
    pss *p = lws_container_of(sul, pss, hold_sul);
    p->holding = 0;
    p->hold_ms = 0;
    lws_callback_on_writable(p->wsi);
}

int srvl_http_write(struct lws *wsi, pss *p)
{
    if (!p->resp_ready || p->holding)
        return 0;
    if (p->hold_ms > 0) {
        /* hold_response: the request is applied, its answer waits (a
         * client's timeout fires first when the hold is longer). */
        p->holding = 1;
        lws_sul_schedule(lws_get_context(wsi), 0, &p->hold_sul, on_hold_done,
                         (lws_usec_t)p->hold_ms * LWS_US_PER_MS);
        return 0;
    }
    unsigned char hdr[LWS_PRE + 1536];
    unsigned char *start = hdr + LWS_PRE, *pp = start, *end = hdr + sizeof hdr - 1;
    size_t blen = p->resp_len;
    int status = p->status;
    if (lws_add_http_common_headers(wsi, (unsigned)status,
                                    p->ctype ? p->ctype : "application/json", blen, &pp, end))
        return -1;
#define ADD_HDR(n, v)                                                                          \
    do {                                                                                       \
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)(n),                      \
                                        (const unsigned char *)(v), (int)strlen(v), &pp, end)) \
            return -1;                                                                         \
    } while (0)
    /* CORS: a page on another origin (a client team's dev server) may call
     * the API; Authorization makes every real request preflighted.  Never
     * on an admin path: a page of any origin must not arm faults or read
     * households. */
    if (!p->admin) {
        ADD_HDR("access-control-allow-origin:", "*");
        ADD_HDR("access-control-allow-methods:", "GET, PUT, POST, DELETE, OPTIONS");
        ADD_HDR("access-control-allow-headers:", "Authorization, Content-Type, Idempotency-Key");
        ADD_HDR("access-control-expose-headers:", "Retry-After, WWW-Authenticate");
        ADD_HDR("access-control-max-age:", "600");
    }
    ADD_HDR("cache-control:", "no-store");
    if (status == 401) /* RFC 9110 11.6.1: a 401 names its scheme */
        ADD_HDR("www-authenticate:", p->admin ? "Bearer realm=\"hp-admin\"" : "Bearer");
    if (p->allow)
        ADD_HDR("allow:", p->allow);
    if (p->close_after)
        ADD_HDR("connection:", "close");
    if (p->retry_after >= 0) {
        /* both forms of RFC 9110 exist in the wild; a client team can
         * ask for the date form to test their parser (admin fail_requests). */
        char ra[40];
        if (p->retry_after_date)
            hp_http_date_format(hp_env_now(srvl.env) + (int64_t)p->retry_after * 1000, ra, sizeof ra);
        else
            snprintf(ra, sizeof ra, "%d", p->retry_after);
        ADD_HDR("retry-after:", ra);
    }
#undef ADD_HDR
    if (lws_finalize_write_http_header(wsi, start, &pp, end))
        return -1;
    int rc = 0;
    /* HEAD: the headers of the GET answer, never a body (keep-alive sync). */
    if (blen && p->resp && strcmp(p->method, "HEAD") != 0) {
        if (lws_write(wsi, p->resp + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL) < 0)
            rc = -1;
    }
    int close_after = p->close_after;
    srvl_http_free(p);
    if (rc || close_after)
        return -1;
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}