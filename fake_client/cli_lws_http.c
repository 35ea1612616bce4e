/*
 * cli_lws_http.c - the HTTP client side of hp-fake-client's adapter
 * (cli_lws_int.h).
 *
 * Inputs: HP_OUT_HTTP_REQUEST items (clw_start_request) and the lws
 * callbacks of those connections (clw_http_client_cb).  Outputs: the
 * request on the wire (Authorization, Idempotency-Key, Content-Length), one
 * result per request to the core (cli_http_response with status,
 * Retry-After and body, or cli_http_failed) and its "http" stdout line.
 * Ownership: the req record (on A.reqs) copies what it sends and owns the
 * answer buffer; it is freed by the owner's reap().
 */
#define _GNU_SOURCE
#include "cli_lws_int.h"

/* ---- HTTP results ------------------------------------------------------------ */

/* The exchange ended without a usable answer. */
/* r's exchange is over: detach it (once).  0 when nobody is to hear of it
 * (already over, or the program is stopping). */
static int req_end(req *r)
{
    if (r->done)
        return 0;
    r->done = 1;
    clw_detach(r->wsi);
    r->wsi = NULL;
    return !A.shutting_down;
}

static void req_fail(req *r, const char *why)
{
    if (!req_end(r))
        return;
    hp_log(A.env, HP_LOG_DEBUG, "http_failed", "method=%s path=%s reason=\"%s\"", r->method,
           r->path, why ? why : "");
    cli_drv_http(r->method, r->path, r->idem_key, 0, "network", r->body, r->body_len, NULL, 0,
                 (double)(lws_now_usecs() - r->t0) / 1000.0);
    cli_http_failed(A.core, r->id, "network");
    clw_drain();
}

static void req_deliver(req *r)
{
    if (!req_end(r))
        return;
    if (clw_take_drop(1, "response"))
        return; /* a drop fault: the core times out and retries */
    cli_drv_http(r->method, r->path, r->idem_key, r->status, NULL, r->body, r->body_len, r->rx,
                 r->rx_len, (double)(lws_now_usecs() - r->t0) / 1000.0);
    cli_http_response(A.core, r->id, r->status, r->retry_after_s, r->rx ? r->rx : "",
                      r->rx_len);
    clw_drain();
}

/* The connection ended (CLOSED or destroyed) before COMPLETED: an answer
 * whose status arrived and whose body is complete (no Content-Length, or
 * all of it) still counts; anything else failed. */
static void req_ended(req *r)
{
    if (r->status > 0 && !r->rx_overflow &&
        (r->content_length < 0 || (int64_t)r->rx_len >= r->content_length))
        req_deliver(r);
    else
        req_fail(r, "connection closed");
}

void clw_start_request(const hp_out *it)
{
    if (clw_take_drop(0, "request"))
        return; /* a drop fault: never sent; the core times out and retries */
    req *r = calloc(1, sizeof *r);
    if (!r) {
        cli_http_failed(A.core, it->id, "network");
        return;
    }
    r->h.type = REC_REQ;
    r->id = it->id;
    r->t0 = lws_now_usecs();
    r->method = hp_strdup(it->method ? it->method : "GET");
    r->path = hp_strdup(it->path ? it->path : "/");
    r->auth = hp_strdup(it->auth);
    r->idem_key = hp_strdup(it->idem_key);
    if (it->body) {
        r->body_len = it->body_len ? it->body_len : strlen(it->body);
        r->body = malloc(r->body_len + 1);
        if (r->body) {
            memcpy(r->body, it->body, r->body_len);
            r->body[r->body_len] = '\0';
        } else {
            r->body_len = 0;
        }
    }
    r->retry_after_s = -1;
    r->content_length = -1;
    r->next = A.reqs;
    A.reqs = r;
    struct lws *w = clw_start_connect(r->path, r->method, r);
    if (r->done)
        return;  /* a callback already settled it */
    if (!w)
        req_fail(r, "connect failed");
    else
        r->wsi = w;
}

/* ---- the protocol callback ------------------------------------------------------------ */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Retry-After (Q-7: 429 honours it) in seconds from now: delta-seconds, or
 * an HTTP-date turned into seconds against the wall clock (rounded up; a
 * date already past is 0).  -1 when absent or unreadable: the core then
 * keeps its own schedule.  Capped at 7 days. */
static int read_retry_after(struct lws *wsi)
{
    char v[64];
    int n = lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_RETRY_AFTER);
    if (n <= 0)
        return -1;
    char *end;
    long s = strtol(v, &end, 10);
    while (*end == ' ')
        end++;
    if (end != v && !*end)
        return s < 0 || s > 86400 * 7 ? -1 : (int)s;
    int64_t at;
    if (hp_http_date_parse(v, &at) != 0)
        return -1;
    int64_t left = at - hp_env_now(A.env);
    if (left <= 0)
        return 0;
    left = (left + 999) / 1000;
    return left > 86400 * 7 ? 86400 * 7 : (int)left;
}

static int64_t read_content_length(struct lws *wsi)
{
    char v[32];
    int n = lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0)
        return -1;
    char *end;
    long long s = strtoll(v, &end, 10);
    return end == v || s < 0 ? -1 : (int64_t)s;
}

int clw_http_client_cb(struct lws *wsi, enum lws_callback_reasons reason, req *r, void *in,
                       size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!r)
            return 0;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        char v[4096];
        if (r->auth) {
            snprintf(v, sizeof v, "Bearer %s", r->auth);
            if (add_header(wsi, "authorization:", v, p, end))
                return -1;
        }
        if (r->idem_key && add_header(wsi, "idempotency-key:", r->idem_key, p, end))
            return -1;
        int has_body = r->body_len > 0;
        int wants_length = has_body || strcmp(r->method, "PUT") == 0 ||
                           strcmp(r->method, "POST") == 0;
        if (has_body && add_header(wsi, "content-type:", "application/json", p, end))
            return -1;
        if (wants_length) {
            /* The server requires Content-Length on bodies (no chunked
             * uploads), also an empty one on POST .../lock. */
            snprintf(v, sizeof v, "%zu", r->body_len);
            if (add_header(wsi, "content-length:", v, p, end))
                return -1;
        }
        if (has_body) {
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r || r->body_sent || !r->body_len)
            return 0;
        unsigned char *b = malloc(LWS_PRE + r->body_len);
        if (!b)
            return -1;
        memcpy(b + LWS_PRE, r->body, r->body_len);
        int n = lws_write(wsi, b + LWS_PRE, r->body_len, LWS_WRITE_HTTP_FINAL);
        free(b);
        r->body_sent = 1;
        lws_client_http_body_pending(wsi, 0);
        return n < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (!r)
            return -1;
        r->status = (int)lws_http_client_http_response(wsi);
        r->retry_after_s = read_retry_after(wsi);
        r->content_length = read_content_length(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        if (!r)
            return -1;
        char buffer[4096 + LWS_PRE];
        char *px = buffer + LWS_PRE;
        int lenx = (int)sizeof buffer - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (!r)
            return -1;
        if (clw_buf_append(&r->rx, &r->rx_len, &r->rx_cap, in, len, MAX_RESPONSE_BODY) != 0) {
            r->rx_overflow = 1;
            req_fail(r, "response too big");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r && !r->rx_overflow)
            req_deliver(r);
        /* One request per connection: close it rather than keep it warm. */
        clw_kill_wsi(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r)
            req_fail(r, in ? (const char *)in : "connection error");
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (r)
            req_ended(r);
        return 0;
    default:
        return 0;
    }
}
