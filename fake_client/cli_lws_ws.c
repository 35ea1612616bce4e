/*
 * cli_lws_ws.c - the stream side of hp-fake-client's adapter
 * (cli_lws_int.h).
 *
 * Inputs: HP_OUT_WS_CONNECT / _SEND / _CLOSE items, driver command
 * send_frame (cli_lws_send_frame) and the lws callbacks of the WebSocket
 * connection (clw_ws_client_cb).  Outputs: cli_ws_opened / _message /
 * _refused / _closed to the core (exactly one end per connection), frames
 * on the wire, "frame" stdout lines (--frames).  Ownership: the conn record
 * (on A.conns) owns its output queue (wsmsg, LWS_PRE headroom each) and its
 * reassembly buffer; it is freed by the owner's reap().
 */
#define _GNU_SOURCE
#include "cli_lws_int.h"

/* ---- WebSocket results ----------------------------------------------------------- */

/* The upgrade never got through: status 401 for a refused token, another
 * HTTP status when lws could tell it, else 0. */
/* c's socket is over: detach it.  0 when nobody is to hear of it (already
 * over, or the program is stopping). */
static int conn_end(conn *c)
{
    int was_done = c->done;
    c->done = 1;
    clw_detach(c->wsi);
    c->wsi = NULL;
    return !(was_done || A.shutting_down);
}

static void conn_refused(conn *c, int status)
{
    if (!conn_end(c))
        return;
    hp_log(A.env, HP_LOG_DEBUG, "ws_refused", "conn=%llu status=%d", (unsigned long long)c->id,
           status);
    cli_ws_refused(A.core, c->id, status);
    clw_drain();
}

static void conn_closed(conn *c)
{
    if (!conn_end(c))
        return;
    hp_log(A.env, HP_LOG_DEBUG, "ws_closed", "conn=%llu code=%d", (unsigned long long)c->id,
           c->peer_code);
    cli_ws_closed(A.core, c->id, c->peer_code);
    clw_drain();
}

void clw_start_ws(const hp_out *it)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        cli_ws_refused(A.core, it->id, 0);
        return;
    }
    c->h.type = REC_CONN;
    c->id = it->id;
    c->next = A.conns;
    A.conns = c;
    struct lws *w = clw_start_connect(it->path ? it->path : "/", NULL, c);
    if (c->done)
        return;
    if (!w)
        conn_refused(c, 0);
    else
        c->wsi = w;
}

/* Queue one text frame on an established connection. 0 or -1 (memory). */
static int conn_queue(conn *c, const char *text, size_t n)
{
    wsmsg *m = malloc(sizeof *m + LWS_PRE + n);
    if (!m)
        return -1;
    m->next = NULL;
    m->len = n;
    memcpy(m->buf + LWS_PRE, text, n);
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
    lws_callback_on_writable(c->wsi);
    return 0;
}

void clw_ws_send(const hp_out *it)
{
    conn *c = clw_find_conn(it->id);
    if (!c || !c->established || c->closing || !it->body) {
        hp_log(A.env, HP_LOG_DEBUG, "ws_send_dropped", "conn=%llu", (unsigned long long)it->id);
        return;
    }
    size_t n = it->body_len ? it->body_len : strlen(it->body);
    char type[64];
    clw_frame_type(it->body, n, type, sizeof type);
    if (clw_take_drop(0, type)) { /* a drop fault: lost on the way out */
        json_t *fl = clw_frame_line("client", it->body, n, 1);
        if (fl)
            cli_drv_emit(fl);
        return;
    }
    conn_queue(c, it->body, n);
}

/* Driver command send_frame: a raw text frame on the open stream, behind
 * the core's back, so a scenario can probe the server's protocol checks
 * (4002, 1009).  The core hears about the consequences (the close) as for
 * any other close. */
int cli_lws_send_frame(const char *text, size_t len, char *err, size_t errlen)
{
    for (conn *c = A.conns; c; c = c->next) /* newest first */
        if (c->wsi && c->established && !c->closing && !c->done) {
            if (conn_queue(c, text, len) != 0)
                return hp_errf(err, errlen, "out of memory");
            hp_log(A.env, HP_LOG_INFO, "send_frame", "conn=%llu bytes=%zu",
                   (unsigned long long)c->id, len);
            return 0;
        }
    return hp_errf(err, errlen, "no open stream (wait until connected)");
}

/* The core closes: it expects no report of this connection any more (the
 * core forgets the id when it asks to close it). */
void clw_ws_close(const hp_out *it)
{
    conn *c = clw_find_conn(it->id);
    if (!c)
        return;
    c->done = 1;
    c->closing = 1;
    c->close_code = it->code > 0 ? it->code : LWS_CLOSE_STATUS_NORMAL;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", it->body ? it->body : "");
    if (c->wsi && c->established) {
        lws_callback_on_writable(c->wsi);
    } else if (c->wsi) {
        struct lws *w = c->wsi;
        clw_detach(w);
        c->wsi = NULL;
        clw_kill_wsi(w);
    }
}

/* The HTTP status of a refused upgrade, from lws' error text (4.1.6 names
 * 401 itself; for other statuses the response code may still be readable). */
static int refused_status(struct lws *wsi, const char *why)
{
    if (why && strstr(why, "unauthorized"))
        return 401;
    if (why && strstr(why, "not 101") && wsi) {
        unsigned int s = lws_http_client_http_response(wsi);
        return s >= 100 && s < 600 ? (int)s : 0;
    }
    return 0;
}

int clw_ws_client_cb(struct lws *wsi, enum lws_callback_reasons reason, conn *c, void *in,
                     size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c || c->done)
            return -1;  /* the core gave this connection up meanwhile */
        c->established = 1;
        if (!A.shutting_down) {
            cli_ws_opened(A.core, c->id);
            clw_drain();
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c || c->done)
            return 0;
        if (clw_buf_append(&c->rx, &c->rx_len, &c->rx_cap, in, len, MAX_WS_MESSAGE) != 0) {
            static const char why[] = "message too big";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                             sizeof why - 1);
            c->rx_len = 0;
            return -1;
        }
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            size_t n = c->rx_len;
            c->rx_len = 0;
            char type[64];
            clw_frame_type(c->rx, n, type, sizeof type);
            int lost = clw_take_drop(1, type);
            json_t *fl = clw_frame_line("server", c->rx, n, lost);
            if (fl)
                cli_drv_emit(fl);
            if (lost)
                return 0; /* never reached the core */
            if (!A.shutting_down) {
                cli_ws_message(A.core, c->id, c->rx, n);
                clw_drain();
            }
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!c)
            return 0;
        if (c->q_head) {
            wsmsg *m = c->q_head;
            c->q_head = m->next;
            if (!c->q_head)
                c->q_tail = NULL;
            /* Read before lws_write: it masks a client's payload in place. */
            json_t *fl = clw_frame_line("client", (const char *)m->buf + LWS_PRE, m->len, 0);
            int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
            free(m);
            if (fl && n >= 0)
                cli_drv_emit(fl);
            else
                json_decref(fl);
            if (n < 0)
                return -1;
            if (c->q_head || c->closing)
                lws_callback_on_writable(wsi);
            return 0;
        }
        if (c->closing) {
            lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                             (unsigned char *)c->close_reason, strlen(c->close_reason));
            clw_detach(wsi);
            c->wsi = NULL;
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && in && len >= 2) {
            const unsigned char *b = in;
            c->peer_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            const char *why = in ? (const char *)in : "";
            hp_log(A.env, HP_LOG_DEBUG, "ws_connect_error", "conn=%llu error=\"%s\"",
                   (unsigned long long)c->id, why);
            conn_refused(c, refused_status(wsi, why));
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            if (c->established)
                conn_closed(c);
            else
                conn_refused(c, 0);
        }
        return 0;
    default:
        return 0;
    }
}
