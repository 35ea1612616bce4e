/*
 * sim_drain.c - the cores' outboxes, carried out: HTTP requests and
 * responses, WebSocket connects, frames and closes become events on the
 * links (sim_net.c); notifications and observations become history
 * records; everything gets its trace entry.
 *
 * Inputs: the items the cores queued (hp_outbox.h; their bodies are taken
 * over by the events).  Outputs: events in the heap, trace entries,
 * records in the clients' histories.
 */
#define _GNU_SOURCE
#include "sim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_outbox.h"

/* ---- outboxes --------------------------------------------------------- */

void sim_drain_server(sim_world *w)
{
    if (!w->srv)
        return;
    hp_out o;
    while (hp_outbox_pop(srv_outbox(w->srv), &o)) {
        switch (o.kind) {
        case HP_OUT_HTTP_RESPONSE: {
            if (o.id >= w->npend)
                break;
            sim_pending *p = &w->pend[o.id];
            p->answered = 1;
            json_t *resp = sim_body_json(o.body, o.body_len);
            if (p->journal) {
                SIM_SET(p->journal, "status", json_integer(o.status));
                SIM_SET_REF(p->journal, "response", resp);
            }
            SIM_SET(p->trace, "status", json_integer(o.status));
            SIM_SET_REF(p->trace, "response", resp);
            json_decref(resp);
            sim_ev e = {0};
            e.kind = EV_CLI_HTTP_RESP;
            e.gen = p->gen;
            e.id = o.id;
            e.status = o.status;
            e.retry_after = o.retry_after_s;
            e.data = o.body;
            e.len = o.body_len;
            o.body = NULL;
            e.tr = json_incref(p->trace);
            e.reply = 1;
            sim_send_link(w, p->ci, 0, &e, "response");
            break;
        }
        case HP_OUT_WS_SEND: {
            if (o.id >= w->nconns)
                break;
            sim_conn *k = &w->conns[o.id];
            char kind[32], entity[80];
            if (!o.body || sim_frame_scan(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity))
                sim_frame_kind(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity);
            json_t *tr = sim_trace_k(w, sim_name(w, -1), SIM_K_WS);
            SIM_SET(tr, "from", sim_name(w, -1));
            SIM_SET(tr, "to", sim_name(w, k->ci));
            json_t *data = sim_text(o.body ? o.body : "");
            SIM_SET(tr, "data", data);
            sim_ev e = {0};
            e.kind = EV_CLI_WS_MSG;
            e.gen = k->cli_gen;
            e.id = o.id;
            e.data = o.body;
            e.len = o.body_len;
            o.body = NULL;
            e.tr = json_incref(tr);
            int lost = sim_send_link(w, k->ci, 0, &e, kind) != 0;
            /* data: held by tr (e.data may be freed by now) */
            sim_frame_record(w, k->ci, 1, kind, entity, tr, lost, json_string_value(data));
            break;
        }
        case HP_OUT_WS_CLOSE: {
            if (o.id >= w->nconns)
                break;
            sim_conn *k = &w->conns[o.id];
            json_t *tr = sim_trace_k(w, sim_name(w, -1), SIM_K_WS);
            SIM_SET(tr, "from", sim_name(w, -1));
            SIM_SET(tr, "to", sim_name(w, k->ci));
            SIM_SET(tr, "close", json_integer(o.code));
            /* The server's side ends now (the close handshake is not
             * modelled); the client hears the code one hop later. */
            sim_ev s = {0};
            s.kind = EV_SRV_WS_CLOSED;
            s.gen = k->srv_gen;
            s.id = o.id;
            sim_schedule_local(w, w->now, &s);
            sim_ev e = {0};
            e.kind = EV_CLI_WS_CLOSED;
            e.gen = k->cli_gen;
            e.id = o.id;
            e.code = o.code;
            e.status = 1; /* by server */
            e.tr = json_incref(tr);
            sim_send_link(w, k->ci, 0, &e, "close");
            break;
        }
        case HP_OUT_WS_WANT_WRITABLE:
            /* WS-2 replay under flow control: the simulated link has no
             * send buffer to fill, so the next chunk is pulled at once
             * (same order, same instant as a replay pushed whole). */
            if (o.id < w->nconns && w->conns[o.id].srv_open)
                srv_ws_writable(w->srv, o.id);
            break;
        default:
            break;
        }
        hp_out_clear(&o);
    }
}

/* The request w->pend[pi] of client ci leaves: its trace entry (kept by
 * the pending request, the path redacted: A-4) and the delivery on the
 * client's link.  path is the target as the client wrote it, query
 * included.  Used for the core's requests and a scenario's raw ones. */
void sim_http_out(sim_world *w, int ci, uint64_t pi, const char *path)
{
    sim_pending *p = &w->pend[pi];
    json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_HTTP);
    SIM_SET(tr, "from", sim_name(w, ci));
    SIM_SET(tr, "to", sim_name(w, -1));
    SIM_SET(tr, "method", sim_str(w, p->method));
    char redacted[1024];
    hp_log_redact(path, redacted, sizeof redacted);
    SIM_SET(tr, "path", sim_text(redacted));
    SIM_SET(tr, "status", json_null());
    SIM_SET(tr, "idem_key", p->idem_key ? sim_text(p->idem_key) : json_null());
    SIM_SET(tr, "request", sim_body_json(p->body, p->body_len));
    SIM_SET(tr, "response", json_null());
    if (p->raw)
        SIM_SET(tr, "raw", json_true());
    p->trace = tr;
    sim_ev e = {0};
    e.kind = EV_SRV_HTTP;
    e.id = pi;
    e.gen = w->srv_gen;
    e.tr = json_incref(tr);
    sim_send_link(w, ci, 1, &e, "request");
}

/* "Bearer <token>", malloc'd (asprintf of it cost ~1,500 instructions
 * of every request). */
static char *bearer(const char *token)
{
    size_t n = strlen(token);
    char *s = malloc(n + 8);
    if (!s)
        return NULL;
    memcpy(s, "Bearer ", 7);
    memcpy(s + 7, token, n + 1);
    return s;
}

static void drain_client(sim_world *w, int ci)
{
    sim_client *c = &w->cl[ci];
    if (!c->core)
        return;
    hp_out o;
    while (hp_outbox_pop(cli_outbox(c->core), &o)) {
        switch (o.kind) {
        case HP_OUT_HTTP_REQUEST: {
            sim_pending *p = sim_pend_new(w);
            uint64_t pi = (uint64_t)(p - w->pend);
            p->ci = ci;
            p->cli_id = o.id;
            p->gen = c->gen;
            p->method = hp_strdup(o.method ? o.method : "GET");
            const char *path = o.path ? o.path : "/";
            const char *q = strchr(path, '?');
            p->path = q ? strndup(path, (size_t)(q - path)) : strdup(path);
            p->query = q ? strdup(q + 1) : NULL;
            p->auth = o.auth ? bearer(o.auth) : NULL;
            p->idem_key = hp_strdup(o.idem_key);
            p->body = o.body;
            p->body_len = o.body_len;
            o.body = NULL;
            sim_http_out(w, ci, pi, path);
            break;
        }
        case HP_OUT_HTTP_ABORT:
            for (size_t i = w->npend; i-- > 0;)
                if (w->pend[i].ci == ci && w->pend[i].cli_id == o.id &&
                    w->pend[i].gen == c->gen) {
                    w->pend[i].aborted = 1;
                    SIM_SET(w->pend[i].trace, "aborted", json_true());
                    break;
                }
            break;
        case HP_OUT_WS_CONNECT: {
            sim_conn *k = sim_conn_new(w, ci, o.id);
            uint64_t ki = sim_conn_index(w, k);
            sim_conn_record(w, ci, "attempt", 0, NULL);
            json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_WS);
            SIM_SET(tr, "from", sim_name(w, ci));
            SIM_SET(tr, "to", sim_name(w, -1));
            char redacted[1024];
            hp_log_redact(o.path ? o.path : "", redacted, sizeof redacted);
            SIM_SET(tr, "connect", sim_text(redacted));
            sim_ev t = {0};
            t.kind = EV_CLI_CONNECT_TIMEOUT;
            t.gen = c->gen;
            t.id = ki;
            t.ci = ci;
            if (!c->online) {
                /* The device knows it has no network: fails at once. */
                SIM_SET(tr, "lost", sim_str(w, "offline"));
                sim_schedule_local(w, w->now, &t);
                break;
            }
            sim_schedule_local(w, w->now + SIM_CONNECT_TIMEOUT_MS, &t);
            sim_ev e = {0};
            e.kind = EV_SRV_WS_OPEN;
            e.id = ki;
            e.gen = w->srv_gen;
            e.data = hp_strdup(o.path ? o.path : "");
            e.len = e.data ? strlen(e.data) : 0;
            e.tr = json_incref(tr);
            sim_send_link(w, ci, 1, &e, "connect");
            break;
        }
        case HP_OUT_WS_SEND: {
            sim_conn *k = sim_conn_by_cli(w, ci, o.id);
            char kind[32], entity[80];
            if (!o.body || sim_frame_scan(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity))
                sim_frame_kind(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity);
            json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_WS);
            SIM_SET(tr, "from", sim_name(w, ci));
            SIM_SET(tr, "to", sim_name(w, -1));
            json_t *data = sim_text(o.body ? o.body : "");
            SIM_SET(tr, "data", data);
            if (!k || k->cli_state != 1) {
                SIM_SET(tr, "lost", sim_str(w, "not connected"));
                sim_frame_record(w, ci, 0, kind, entity, tr, 1, json_string_value(data));
                break;
            }
            sim_ev e = {0};
            e.kind = EV_SRV_WS_MSG;
            e.id = sim_conn_index(w, k);
            e.gen = k->srv_gen;
            e.data = o.body;
            e.len = o.body_len;
            o.body = NULL;
            e.tr = json_incref(tr);
            int lost = sim_send_link(w, ci, 1, &e, kind) != 0;
            sim_frame_record(w, ci, 0, kind, entity, tr, lost, json_string_value(data));
            break;
        }
        case HP_OUT_WS_CLOSE: {
            sim_conn *k = sim_conn_by_cli(w, ci, o.id);
            json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_WS);
            SIM_SET(tr, "from", sim_name(w, ci));
            SIM_SET(tr, "to", sim_name(w, -1));
            SIM_SET(tr, "close", json_integer(o.code));
            if (!k || k->cli_state == 2)
                break;
            /* The app closed it: for the app the connection is over now. */
            k->cli_state = 2;
            sim_conn_record(w, ci, "loss", o.code, "client");
            sim_ev e = {0};
            e.kind = EV_SRV_WS_CLOSED;
            e.id = sim_conn_index(w, k);
            e.gen = k->srv_gen;
            e.tr = json_incref(tr);
            sim_send_link(w, ci, 1, &e, "close");
            break;
        }
        case HP_OUT_NOTIFY: {
            json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_NOTIFY);
            SIM_SET_REF(tr, "info", o.info ? o.info : json_null());
            json_t *r = sim_record(w, c->notes);
            json_object_update(r, o.info);
            SIM_SET(r, "t", json_integer(w->now));
            break;
        }
        case HP_OUT_OBSERVE: {
            const char *kind = json_string_value(json_object_get(o.info, "kind"));
            if (kind && !strcmp(kind, "event")) {
                json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_EVENT);
                SIM_SET_REF(tr, "info", o.info);
                json_t *r = sim_record(w, c->events);
                const char *keys[] = {"event_type", "entity_id", "revision", "payload"};
                for (int i = 0; i < 4; i++) {
                    json_t *v = json_object_get(o.info, keys[i]);
                    if (v)
                        json_object_set(r, keys[i], v);
                }
            } else {
                json_t *tr = sim_trace_k(w, sim_name(w, ci), SIM_K_OBSERVE);
                SIM_SET_REF(tr, "info", o.info ? o.info : json_null());
                if (kind && !strcmp(kind, "queue")) {
                    json_t *r = sim_record(w, c->queue_obs);
                    json_object_update(r, o.info);
                    SIM_SET(r, "t", json_integer(w->now));
                    json_int_t len = json_integer_value(json_object_get(o.info, "length"));
                    if (len > c->max_queue)
                        c->max_queue = (int)len;
                } else if (kind && !strcmp(kind, "connection")) {
                    const char *st = json_string_value(json_object_get(o.info, "state"));
                    if (st && !strcmp(st, "ready"))
                        sim_conn_record(w, ci, "ready", 0, NULL);
                }
            }
            break;
        }
        default:
            break;
        }
        hp_out_clear(&o);
    }
}

void sim_drain(sim_world *w)
{
    sim_drain_server(w);
    for (size_t i = 0; i < w->ncl; i++)
        drain_client(w, (int)i);
}

