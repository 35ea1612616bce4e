/*
 * sim_loop.c - the discrete-event loop: the next thing to happen (an event
 * on a link or a core's deadline), the virtual clock moved to it, and the
 * event delivered to its receiver.
 *
 * The simulator is the "platform" the sans-I/O cores run on in the harness.
 * It decides nothing about policy; it only carries what the cores put in
 * their outboxes, with the network's delays and losses (sim_net.c), and
 * ticks them at the deadlines they ask for.
 *
 * Inputs: the world's heap and cores.  Outputs: calls into the cores, then
 * their outboxes drained (sim_drain.c).  Events popped here are cleared
 * here.
 */
#define _GNU_SOURCE
#include "sim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- delivering events ------------------------------------------------ */

/* Is an event still deliverable?  Link events die with the link epoch;
 * client-bound ones with the client's core generation. */
static int link_alive(sim_world *w, const sim_ev *e)
{
    if (e->epoch == LOCAL_EPOCH)
        return 1;
    const sim_client *c = &w->cl[e->ci];
    return e->epoch == c->epoch && sim_link_usable(c);
}

static void mark_lost(sim_ev *e, const char *why)
{
    const char *key = e->reply ? "reply_lost" : "lost";
    if (e->tr && !json_object_get(e->tr, key))
        json_object_set_new(e->tr, key, json_string(why));
}

void sim_deliver(sim_world *w, sim_ev *e)
{
    sim_client *c = e->ci >= 0 && (size_t)e->ci < w->ncl ? &w->cl[e->ci] : NULL;
    int server_bound = e->kind == EV_SRV_HTTP || e->kind == EV_SRV_WS_OPEN ||
                       e->kind == EV_SRV_WS_MSG || e->kind == EV_SRV_WS_CLOSED;
    if (!link_alive(w, e)) {
        mark_lost(e, "link lost in flight");
        return;
    }
    if (!server_bound && (!c || !c->core || e->gen != c->gen)) {
        mark_lost(e, "app not running");
        return;
    }
    w->messages++;
    switch (e->kind) {
    case EV_SRV_HTTP: {
        sim_pending *p = &w->pend[e->id];
        if (!w->srv_up) {
            /* Connection refused: the app hears it one hop later. */
            SIM_SET(p->trace, "status", json_integer(0));
            sim_ev f = {0};
            f.kind = EV_CLI_HTTP_FAIL;
            f.gen = p->gen;
            f.id = e->id;
            f.tr = json_incref(p->trace);
            f.reply = 1;
            sim_send_link(w, p->ci, 0, &f, "response");
            return;
        }
        json_t *j = sim_record(w, w->journal);
        SIM_SET(j, "from", sim_name(w, p->ci));
        SIM_SET(j, "method", sim_str(w, p->method));
        SIM_SET(j, "path", sim_text(p->path));
        SIM_SET(j, "query", p->query ? sim_text(p->query) : json_null());
        SIM_SET(j, "idem_key", p->idem_key ? sim_text(p->idem_key) : json_null());
        /* the body parsed once, when the request was sent (shared, read only) */
        json_t *rb = json_object_get(p->trace, "request");
        SIM_SET(j, "body", rb ? json_incref(rb) : sim_body_json(p->body, p->body_len));
        SIM_SET(j, "status", json_null());
        SIM_SET(j, "response", json_null());
        p->journal = j;
        srv_http_req rq = {0};
        rq.id = e->id;
        rq.method = p->method;
        rq.path = p->path;
        rq.query = p->query;
        rq.authorization = p->auth;
        rq.idem_key = p->idem_key;
        rq.body = p->body;
        rq.body_len = p->body_len;
        rq.content_length = p->body ? (int64_t)p->body_len : -1;
        srv_http(w->srv, &rq);
        break;
    }
    case EV_CLI_HTTP_RESP: {
        sim_pending *p = &w->pend[e->id];
        if (p->aborted) {
            mark_lost(e, "aborted");
            return;
        }
        if (p->raw) /* send_request: the scenario's probe, not the app's */
            break;
        if (e->status == 409)
            c->conflicts_received++;
        cli_http_response(c->core, p->cli_id, e->status, e->retry_after, e->data, e->len);
        break;
    }
    case EV_CLI_HTTP_FAIL: {
        sim_pending *p = &w->pend[e->id];
        if (p->aborted || p->raw)
            return;
        cli_http_failed(c->core, p->cli_id, "network");
        break;
    }
    case EV_SRV_WS_OPEN: {
        sim_conn *k = &w->conns[e->id];
        sim_ev r = {0};
        r.gen = k->cli_gen;
        r.id = e->id;
        r.tr = e->tr ? json_incref(e->tr) : NULL;
        r.reply = 1;
        if (!w->srv_up) {
            r.kind = EV_CLI_WS_REFUSED;
            r.status = 0;
            SIM_SET(e->tr, "status", json_integer(0));
            sim_send_link(w, k->ci, 0, &r, "response");
            return;
        }
        const char *path = e->data ? e->data : "";
        const char *q = strchr(path, '?');
        char *p = q ? strndup(path, (size_t)(q - path)) : strdup(path);
        char *body = NULL;
        k->srv_gen = w->srv_gen;
        int st = srv_ws_open(w->srv, e->id, p, q ? q + 1 : NULL, &body);
        free(p);
        free(body);
        if (st == 0) {
            k->srv_open = 1;
            r.kind = EV_CLI_WS_OPENED;
            SIM_SET(e->tr, "status", json_integer(101));
        } else {
            r.kind = EV_CLI_WS_REFUSED;
            r.status = st;
            SIM_SET(e->tr, "status", json_integer(st));
        }
        sim_send_link(w, k->ci, 0, &r, "response");
        break;
    }
    case EV_CLI_WS_OPENED: {
        sim_conn *k = &w->conns[e->id];
        if (k->cli_state != 0)
            return; /* timed out meanwhile */
        k->cli_state = 1;
        cli_ws_opened(c->core, k->cli_id);
        break;
    }
    case EV_CLI_WS_REFUSED:
    case EV_CLI_CONNECT_TIMEOUT: {
        sim_conn *k = &w->conns[e->id];
        if (k->cli_state != 0)
            return;
        k->cli_state = 2;
        sim_conn_record(w, e->ci, "loss", e->status, e->kind == EV_CLI_WS_REFUSED && e->status
                                                     ? "server" : "network");
        if (e->kind == EV_CLI_CONNECT_TIMEOUT) {
            json_t *tr = sim_trace_k(w, sim_k_j(w, SIM_K_HARNESS), SIM_K_WS);
            SIM_SET(tr, "from", sim_name(w, -1));
            SIM_SET(tr, "to", sim_name(w, e->ci));
            SIM_SET(tr, "refused", json_integer(0));
        }
        cli_ws_refused(c->core, k->cli_id, e->status);
        break;
    }
    case EV_SRV_WS_MSG: {
        sim_conn *k = &w->conns[e->id];
        if (!w->srv_up || !k->srv_open || k->srv_gen != w->srv_gen) {
            mark_lost(e, "connection closed");
            return;
        }
        srv_ws_message(w->srv, e->id, e->data ? e->data : "", e->len);
        break;
    }
    case EV_CLI_WS_MSG: {
        sim_conn *k = &w->conns[e->id];
        if (k->cli_state != 1) {
            mark_lost(e, "connection closed");
            return;
        }
        cli_ws_message(c->core, k->cli_id, e->data ? e->data : "", e->len);
        break;
    }
    case EV_SRV_WS_CLOSED: {
        sim_conn *k = &w->conns[e->id];
        if (!w->srv_up || !k->srv_open || k->srv_gen != w->srv_gen || e->gen != w->srv_gen)
            return;
        k->srv_open = 0;
        srv_ws_closed(w->srv, e->id);
        break;
    }
    case EV_CLI_WS_CLOSED: {
        sim_conn *k = &w->conns[e->id];
        if (k->cli_state == 2)
            return;
        k->cli_state = 2;
        sim_conn_record(w, e->ci, "loss", e->code, e->status == 1 ? "server" : "network");
        cli_ws_closed(c->core, k->cli_id, e->code);
        break;
    }
    }
}

/* ---- the loop ---------------------------------------------------------- */

int sim_run(sim_world *w, int64_t until, int (*cond)(void *ud), void *ud)
{
    if (cond && cond(ud))
        return 1;
    for (;;) {
        if (w->error)
            return -1;
        int64_t tnext = INT64_MAX;
        int which = -2; /* -2 none, -1 event, 0 server, 1+i client i */
        if (w->nheap) {
            tnext = w->heap[0].t;
            which = -1;
        }
        if (w->srv_up) {
            int64_t d = srv_next_deadline(w->srv);
            if (d < 0)
                d = INT64_MAX;
            if (d < w->now)
                d = w->now;
            if (d < tnext) {
                tnext = d;
                which = 0;
            }
        }
        for (size_t i = 0; i < w->ncl; i++) {
            if (!w->cl[i].core)
                continue;
            /* "No deadline" is INT64_MAX for both cores. */
            int64_t d = cli_next_deadline(w->cl[i].core);
            if (d == INT64_MAX)
                continue;
            if (d < w->now)
                d = w->now;
            if (d < tnext) {
                tnext = d;
                which = 1 + (int)i;
            }
        }
        if (which == -2 || tnext > until) {
            if (until > w->now)
                w->now = until;
            if (cond && cond(ud))
                return 1;
            return 0;
        }
        if (tnext > w->now) {
            if (cond && cond(ud))
                return 1;
            w->now = tnext;
            w->same_instant = 0;
        }
        if (++w->same_instant > 200000) {
            sim_set_error(w, "the simulation is stuck at one instant (%s keeps asking for a tick)",
                      which <= 0 ? "the server" : w->cl[which - 1].spec->name);
            return -1;
        }
        if (which == -1) {
            sim_ev e;
            sim_heap_pop(w, &e);
            sim_deliver(w, &e);
            sim_ev_clear(&e);
        } else if (which == 0) {
            srv_tick(w->srv);
        } else {
            cli_tick(w->cl[which - 1].core);
        }
        sim_drain(w);
    }
}

