/*
 * sim_loop.c - the discrete-event world: virtual clock, links, cores.
 *
 * The simulator is the "platform" the sans-I/O cores run on in the harness.
 * It decides nothing about policy; it only carries what the cores put in
 * their outboxes, with the network's delays and losses, and ticks them at
 * the deadlines they ask for.
 *
 * Network model (SPEC §3 "going offline closes the socket and aborts
 * requests"):
 *  - every client has one link; a message sent on it arrives `latency` ms
 *    later, in order per direction (a latency change never reorders);
 *  - `offline` (the device knows): the link becomes unusable, messages in
 *    flight are lost, the app is told (cli_set_online(0)); its socket is
 *    gone for it at once, but the server is not told: it notices through
 *    missing heartbeats (WS-5);
 *  - `link: down` (nobody knows): as offline, but the app is not told;
 *  - drop rules lose the next N matching messages of one direction;
 *  - a WebSocket connect takes a round trip; a connect that gets no answer
 *    fails after SIM_CONNECT_TIMEOUT_MS (a TCP connect timeout);
 *  - a crashed client's sockets are reset by its OS (the server sees a
 *    close one hop later, if the link works); a crashed server's likewise
 *    (clients see a close without code).
 */
#define _GNU_SOURCE
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hp_jwt.h"
#include "hp_msg.h"
#include "hp_outbox.h"
#include "hp_time.h"

enum ev_kind {
    EV_SRV_HTTP = 1,
    EV_CLI_HTTP_RESP,
    EV_CLI_HTTP_FAIL,
    EV_SRV_WS_OPEN,
    EV_CLI_WS_OPENED,
    EV_CLI_WS_REFUSED,
    EV_CLI_CONNECT_TIMEOUT,
    EV_SRV_WS_MSG,
    EV_CLI_WS_MSG,
    EV_SRV_WS_CLOSED,
    EV_CLI_WS_CLOSED
};

struct sim_ev {
    int64_t t;
    uint64_t seq;
    int kind;
    int ci;
    unsigned gen;       /* client generation (client-bound) or server generation */
    unsigned epoch;     /* link epoch at send; UINT32_MAX = not over the link */
    uint64_t id;        /* pending index / conn index */
    int status, code, retry_after;
    char *data;
    size_t len;
    json_t *tr;         /* trace entry to mark lost (own reference) */
    int reply;          /* the answer to tr's request: "reply_*" keys */
};

#define LOCAL_EPOCH 0xFFFFFFFFu

/* ---- heap ordered by (t, seq) ---------------------------------------- */

static int ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(sim_world *w, sim_ev *e)
{
    if (w->nheap == w->capheap) {
        w->capheap = w->capheap ? w->capheap * 2 : 64;
        w->heap = realloc(w->heap, w->capheap * sizeof *w->heap);
        if (!w->heap)
            abort();
    }
    e->seq = w->seq++;
    size_t i = w->nheap++;
    w->heap[i] = *e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&w->heap[i], &w->heap[p]))
            break;
        sim_ev tmp = w->heap[i];
        w->heap[i] = w->heap[p];
        w->heap[p] = tmp;
        i = p;
    }
}

static void heap_pop(sim_world *w, sim_ev *out)
{
    *out = w->heap[0];
    w->heap[0] = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && ev_less(&w->heap[l], &w->heap[m]))
            m = l;
        if (r < w->nheap && ev_less(&w->heap[r], &w->heap[m]))
            m = r;
        if (m == i)
            break;
        sim_ev tmp = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = tmp;
        i = m;
    }
}

static void ev_clear(sim_ev *e)
{
    free(e->data);
    json_decref(e->tr);
    e->data = NULL;
    e->tr = NULL;
}

/* ---- records ---------------------------------------------------------- */

static const char *actor_of(sim_world *w, int ci)
{
    return ci < 0 ? "server" : w->cl[ci].spec->name;
}

json_t *sim_trace(sim_world *w, const char *actor, const char *type)
{
    json_t *e = json_object();
    json_object_set_new(e, "t", json_integer(w->now - w->s->start_ms));
    json_object_set_new(e, "actor", json_string(actor));
    json_object_set_new(e, "type", json_string(type));
    json_array_append_new(w->trace, e);
    return e;
}

json_t *sim_record(sim_world *w, json_t *arr)
{
    json_t *r = json_object();
    json_object_set_new(r, "t", json_integer(w->now));
    json_object_set_new(r, "n", json_integer((json_int_t)w->nrec++));
    json_array_append_new(arr, r);
    return r;
}

static void set_error(sim_world *w, const char *fmt, const char *a)
{
    if (w->error)
        return;
    if (asprintf(&w->error, fmt, a) < 0)
        abort();
}

/* The log sink: every record of every actor, formatted, into the trace and
 * the log history.  Records are already redacted by hp_log; the
 * no_token_in_logs invariant checks that anyway. */
static void sink(void *ud, const hp_log_record *rec)
{
    sim_world *w = ud;
    char line[2048];
    hp_log_format(rec, line, sizeof line);
    const char *actor = rec->actor ? rec->actor : "?";
    if (!strcmp(actor, "fake_server"))
        actor = "server";
    json_t *t = sim_trace(w, actor, "log");
    json_object_set_new(t, "level", json_string(hp_log_level_name(rec->level)));
    json_object_set_new(t, "line", json_string(line));
    json_t *r = sim_record(w, w->logs);
    json_object_set_new(r, "actor", json_string(actor));
    json_object_set_new(r, "level", json_integer(rec->level));
    json_object_set_new(r, "msg", json_string(rec->msg ? rec->msg : ""));
    json_object_set_new(r, "fields", json_string(rec->fields ? rec->fields : ""));
    json_object_set_new(r, "line", json_string(line));
}

static int64_t clock_fn(void *ud)
{
    return ((sim_world *)ud)->now;
}

/* ---- links ------------------------------------------------------------ */

static int link_usable(const sim_client *c)
{
    return c->online && c->link_up;
}

/* The kind of a frame for drop rules and histories: its "type", or its
 * "event_type" for events. */
static void frame_kind(const char *data, size_t len, char *kind, size_t klen, char *entity,
                       size_t elen)
{
    snprintf(kind, klen, "?");
    if (entity)
        entity[0] = '\0';
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j)
        return;
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *et = json_string_value(json_object_get(j, "event_type"));
    if (t)
        snprintf(kind, klen, "%s", t);
    else if (et)
        snprintf(kind, klen, "%s", et);
    const char *id = json_string_value(json_object_get(j, "entity_id"));
    if (entity && id)
        snprintf(entity, elen, "%s", id);
    json_decref(j);
}

/* The fast path of frame_kind() for frames the cores wrote (json_dumps
 * output: valid JSON, one object): the top-level string values of "type",
 * "event_type" and "entity_id" by a scan that skips nested values, without
 * building the tree (a frame can carry a task of a megabyte).  -1 when the
 * frame is not a plain object or a wanted value has an escape: the caller
 * then parses it. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end, int *escaped)
{
    /* p at the opening quote; returns past the closing one or NULL */
    for (p++; p < end; p++) {
        if (*p == '\\') {
            *escaped = 1;
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

static int frame_scan(const char *data, size_t len, char *kind, size_t klen, char *entity,
                      size_t elen)
{
    const char *p = data, *end = data + len;
    char type[64] = "", etype[64] = "";
    int have_type = 0, have_etype = 0;
    if (entity)
        entity[0] = '\0';
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        goto done;
    for (;;) {
        if (p >= end || *p != '"')
            return -1;
        int esc = 0;
        const char *k0 = p + 1, *k1 = skip_string(p, end, &esc);
        if (!k1 || esc)
            return -1;
        size_t kl = (size_t)(k1 - 1 - k0);
        p = skip_ws(k1, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        if (p >= end)
            return -1;
        if (*p == '"') {
            const char *v0 = p + 1, *v1 = skip_string(p, end, &esc);
            if (!v1)
                return -1;
            size_t vl = (size_t)(v1 - 1 - v0);
            char *dst = NULL;
            size_t dl = 0;
            if (kl == 4 && !memcmp(k0, "type", 4)) {
                dst = type;
                dl = sizeof type;
                have_type = 1;
            } else if (kl == 10 && !memcmp(k0, "event_type", 10)) {
                dst = etype;
                dl = sizeof etype;
                have_etype = 1;
            } else if (kl == 9 && !memcmp(k0, "entity_id", 9) && entity) {
                dst = entity;
                dl = elen;
            }
            if (dst) {
                if (esc)
                    return -1;
                snprintf(dst, dl, "%.*s", (int)vl, v0);
            }
            p = v1;
        } else {
            /* a number, literal, object or array: skip it */
            int depth = 0;
            while (p < end) {
                if (*p == '"') {
                    int e2 = 0;
                    p = skip_string(p, end, &e2);
                    if (!p)
                        return -1;
                    continue;
                }
                if (*p == '{' || *p == '[')
                    depth++;
                else if (*p == '}' || *p == ']') {
                    if (depth == 0)
                        break;
                    depth--;
                } else if (*p == ',' && depth == 0)
                    break;
                p++;
            }
            /* a non-string "type" would have made the old path say "?" */
            if ((kl == 4 && !memcmp(k0, "type", 4)) || (kl == 10 && !memcmp(k0, "event_type", 10)))
                return -1;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        return -1;
    }
done:
    snprintf(kind, klen, "?");
    if (have_type)
        snprintf(kind, klen, "%s", type);
    else if (have_etype)
        snprintf(kind, klen, "%s", etype);
    return 0;
}

/* 1 when a drop rule of client c takes this message (and uses it up). */
static int dropped(sim_client *c, int from_server, const char *kind)
{
    for (int i = 0; i < c->ndrops; i++) {
        sim_drop *d = &c->drops[i];
        if (d->remaining <= 0 || d->from_server != from_server)
            continue;
        if (!strcmp(d->message, "any") || !strcmp(d->message, kind)) {
            d->remaining--;
            return 1;
        }
    }
    return 0;
}

/* Schedule e over client ci's link in direction up (client->server) or
 * down.  Returns 0 when scheduled, -1 when lost now (e is cleared). */
static int send_link(sim_world *w, int ci, int up, sim_ev *e, const char *kind)
{
    sim_client *c = &w->cl[ci];
    const char *lost = NULL;
    if (!link_usable(c))
        lost = c->online ? "link down" : "offline";
    else if (dropped(c, !up, kind))
        lost = "dropped";
    if (lost) {
        if (e->tr)
            json_object_set_new(e->tr, e->reply ? "reply_lost" : "lost", json_string(lost));
        ev_clear(e);
        return -1;
    }
    int64_t t = w->now + c->latency_ms;
    int64_t *last = up ? &c->last_up_t : &c->last_down_t;
    if (t < *last)
        t = *last;
    *last = t;
    e->t = t;
    e->epoch = c->epoch;
    e->ci = ci;
    if (e->tr)
        json_object_set_new(e->tr, e->reply ? "reply_arrive" : "arrive",
                            json_integer(t - w->s->start_ms));
    heap_push(w, e);
    return 0;
}

static void schedule_local(sim_world *w, int64_t t, sim_ev *e)
{
    e->t = t;
    e->epoch = LOCAL_EPOCH;
    heap_push(w, e);
}

/* ---- connections and requests ---------------------------------------- */

static sim_conn *conn_new(sim_world *w, int ci, uint64_t cli_id)
{
    if (w->nconns == w->capconns) {
        w->capconns = w->capconns ? w->capconns * 2 : 16;
        w->conns = realloc(w->conns, w->capconns * sizeof *w->conns);
        if (!w->conns)
            abort();
    }
    sim_conn *k = &w->conns[w->nconns++];
    memset(k, 0, sizeof *k);
    k->ci = ci;
    k->cli_id = cli_id;
    k->cli_gen = w->cl[ci].gen;
    k->srv_gen = w->srv_gen;
    return k;
}

static sim_conn *conn_by_cli(sim_world *w, int ci, uint64_t cli_id)
{
    /* Newest first: client ids may be reused by a restarted core. */
    for (size_t i = w->nconns; i-- > 0;)
        if (w->conns[i].ci == ci && w->conns[i].cli_id == cli_id &&
            w->conns[i].cli_gen == w->cl[ci].gen)
            return &w->conns[i];
    return NULL;
}

static uint64_t conn_index(sim_world *w, sim_conn *k)
{
    return (uint64_t)(k - w->conns);
}

static void conn_record(sim_world *w, int ci, const char *kind, int code, const char *by)
{
    json_t *r = sim_record(w, w->cl[ci].conn);
    json_object_set_new(r, "kind", json_string(kind));
    if (by) {
        json_object_set_new(r, "code", json_integer(code));
        json_object_set_new(r, "by", json_string(by));
        json_t *c = sim_record(w, w->cl[ci].closes);
        json_object_set_new(c, "code", json_integer(code));
        json_object_set_new(c, "by", json_string(by));
    }
}

static void frame_record(sim_world *w, int ci, int from_server, const char *kind,
                         const char *entity, json_t *tr)
{
    json_t *r = sim_record(w, w->cl[ci].frames);
    json_object_set_new(r, "from", json_string(from_server ? "server" : "client"));
    json_object_set_new(r, "type", json_string(kind));
    if (entity && *entity)
        json_object_set_new(r, "entity_id", json_string(entity));
    json_object_set_new(r, "lost", json_boolean(json_object_get(tr, "lost") != NULL));
    /* The message's revision (HELLO, READY, events): what a wire record can
     * show too (the fault proxy's journal), so `frames` can name it. */
    const char *data = json_string_value(json_object_get(tr, "data"));
    const char *rv = data ? strstr(data, "\"revision\":") : NULL;
    if (rv) {
        char *end = NULL;
        long long v = strtoll(rv + 11, &end, 10);
        if (end != rv + 11)
            json_object_set_new(r, "revision", json_integer(v));
    }
    /* "lost" may still be set at delivery: keep the trace entry to re-check. */
    json_object_set(r, "_trace", tr);
}

static sim_pending *pend_new(sim_world *w)
{
    if (w->npend == w->cappend) {
        w->cappend = w->cappend ? w->cappend * 2 : 16;
        w->pend = realloc(w->pend, w->cappend * sizeof *w->pend);
        if (!w->pend)
            abort();
    }
    sim_pending *p = &w->pend[w->npend++];
    memset(p, 0, sizeof *p);
    return p;
}

static json_t *body_json(const char *body, size_t len)
{
    if (!body || !len)
        return json_null();
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (j)
        return j;
    return json_stringn_nocheck(body, len);
}

/* ---- outboxes --------------------------------------------------------- */

static void drain_server(sim_world *w)
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
            json_t *resp = body_json(o.body, o.body_len);
            if (p->journal) {
                json_object_set_new(p->journal, "status", json_integer(o.status));
                json_object_set(p->journal, "response", resp);
            }
            json_object_set_new(p->trace, "status", json_integer(o.status));
            json_object_set(p->trace, "response", resp);
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
            send_link(w, p->ci, 0, &e, "response");
            break;
        }
        case HP_OUT_WS_SEND: {
            if (o.id >= w->nconns)
                break;
            sim_conn *k = &w->conns[o.id];
            char kind[32], entity[80];
            if (!o.body || frame_scan(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity))
                frame_kind(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity);
            json_t *tr = sim_trace(w, "server", "ws");
            json_object_set_new(tr, "from", json_string("server"));
            json_object_set_new(tr, "to", json_string(actor_of(w, k->ci)));
            json_object_set_new(tr, "data", json_string(o.body ? o.body : ""));
            sim_ev e = {0};
            e.kind = EV_CLI_WS_MSG;
            e.gen = k->cli_gen;
            e.id = o.id;
            e.data = o.body;
            e.len = o.body_len;
            o.body = NULL;
            e.tr = json_incref(tr);
            send_link(w, k->ci, 0, &e, kind);
            frame_record(w, k->ci, 1, kind, entity, tr);
            break;
        }
        case HP_OUT_WS_CLOSE: {
            if (o.id >= w->nconns)
                break;
            sim_conn *k = &w->conns[o.id];
            json_t *tr = sim_trace(w, "server", "ws");
            json_object_set_new(tr, "from", json_string("server"));
            json_object_set_new(tr, "to", json_string(actor_of(w, k->ci)));
            json_object_set_new(tr, "close", json_integer(o.code));
            /* The server's side ends now (the close handshake is not
             * modelled); the client hears the code one hop later. */
            sim_ev s = {0};
            s.kind = EV_SRV_WS_CLOSED;
            s.gen = k->srv_gen;
            s.id = o.id;
            schedule_local(w, w->now, &s);
            sim_ev e = {0};
            e.kind = EV_CLI_WS_CLOSED;
            e.gen = k->cli_gen;
            e.id = o.id;
            e.code = o.code;
            e.status = 1; /* by server */
            e.tr = json_incref(tr);
            send_link(w, k->ci, 0, &e, "close");
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

static void drain_client(sim_world *w, int ci)
{
    sim_client *c = &w->cl[ci];
    if (!c->core)
        return;
    hp_out o;
    while (hp_outbox_pop(cli_outbox(c->core), &o)) {
        switch (o.kind) {
        case HP_OUT_HTTP_REQUEST: {
            sim_pending *p = pend_new(w);
            uint64_t pi = (uint64_t)(p - w->pend);
            p->ci = ci;
            p->cli_id = o.id;
            p->gen = c->gen;
            p->method = hp_strdup(o.method ? o.method : "GET");
            const char *path = o.path ? o.path : "/";
            const char *q = strchr(path, '?');
            p->path = q ? strndup(path, (size_t)(q - path)) : strdup(path);
            p->query = q ? strdup(q + 1) : NULL;
            p->auth = o.auth ? (asprintf(&p->auth, "Bearer %s", o.auth) < 0 ? NULL : p->auth)
                             : NULL;
            p->idem_key = hp_strdup(o.idem_key);
            p->body = o.body;
            p->body_len = o.body_len;
            o.body = NULL;
            json_t *tr = sim_trace(w, c->spec->name, "http");
            json_object_set_new(tr, "from", json_string(c->spec->name));
            json_object_set_new(tr, "to", json_string("server"));
            json_object_set_new(tr, "method", json_string(p->method));
            char redacted[1024];
            hp_log_redact(path, redacted, sizeof redacted);
            json_object_set_new(tr, "path", json_string(redacted));
            json_object_set_new(tr, "status", json_null());
            json_object_set_new(tr, "idem_key", p->idem_key ? json_string(p->idem_key)
                                                            : json_null());
            json_object_set_new(tr, "request", body_json(p->body, p->body_len));
            json_object_set_new(tr, "response", json_null());
            p->trace = tr;
            sim_ev e = {0};
            e.kind = EV_SRV_HTTP;
            e.id = pi;
            e.gen = w->srv_gen;
            e.tr = json_incref(tr);
            send_link(w, ci, 1, &e, "request");
            break;
        }
        case HP_OUT_HTTP_ABORT:
            for (size_t i = w->npend; i-- > 0;)
                if (w->pend[i].ci == ci && w->pend[i].cli_id == o.id &&
                    w->pend[i].gen == c->gen) {
                    w->pend[i].aborted = 1;
                    json_object_set_new(w->pend[i].trace, "aborted", json_true());
                    break;
                }
            break;
        case HP_OUT_WS_CONNECT: {
            sim_conn *k = conn_new(w, ci, o.id);
            uint64_t ki = conn_index(w, k);
            conn_record(w, ci, "attempt", 0, NULL);
            json_t *tr = sim_trace(w, c->spec->name, "ws");
            json_object_set_new(tr, "from", json_string(c->spec->name));
            json_object_set_new(tr, "to", json_string("server"));
            char redacted[1024];
            hp_log_redact(o.path ? o.path : "", redacted, sizeof redacted);
            json_object_set_new(tr, "connect", json_string(redacted));
            sim_ev t = {0};
            t.kind = EV_CLI_CONNECT_TIMEOUT;
            t.gen = c->gen;
            t.id = ki;
            t.ci = ci;
            if (!c->online) {
                /* The device knows it has no network: fails at once. */
                json_object_set_new(tr, "lost", json_string("offline"));
                schedule_local(w, w->now, &t);
                break;
            }
            schedule_local(w, w->now + SIM_CONNECT_TIMEOUT_MS, &t);
            sim_ev e = {0};
            e.kind = EV_SRV_WS_OPEN;
            e.id = ki;
            e.gen = w->srv_gen;
            e.data = hp_strdup(o.path ? o.path : "");
            e.len = e.data ? strlen(e.data) : 0;
            e.tr = json_incref(tr);
            send_link(w, ci, 1, &e, "connect");
            break;
        }
        case HP_OUT_WS_SEND: {
            sim_conn *k = conn_by_cli(w, ci, o.id);
            char kind[32], entity[80];
            if (!o.body || frame_scan(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity))
                frame_kind(o.body, o.body_len, kind, sizeof kind, entity, sizeof entity);
            json_t *tr = sim_trace(w, c->spec->name, "ws");
            json_object_set_new(tr, "from", json_string(c->spec->name));
            json_object_set_new(tr, "to", json_string("server"));
            json_object_set_new(tr, "data", json_string(o.body ? o.body : ""));
            if (!k || k->cli_state != 1) {
                json_object_set_new(tr, "lost", json_string("not connected"));
                frame_record(w, ci, 0, kind, entity, tr);
                break;
            }
            sim_ev e = {0};
            e.kind = EV_SRV_WS_MSG;
            e.id = conn_index(w, k);
            e.gen = k->srv_gen;
            e.data = o.body;
            e.len = o.body_len;
            o.body = NULL;
            e.tr = json_incref(tr);
            send_link(w, ci, 1, &e, kind);
            frame_record(w, ci, 0, kind, entity, tr);
            break;
        }
        case HP_OUT_WS_CLOSE: {
            sim_conn *k = conn_by_cli(w, ci, o.id);
            json_t *tr = sim_trace(w, c->spec->name, "ws");
            json_object_set_new(tr, "from", json_string(c->spec->name));
            json_object_set_new(tr, "to", json_string("server"));
            json_object_set_new(tr, "close", json_integer(o.code));
            if (!k || k->cli_state == 2)
                break;
            /* The app closed it: for the app the connection is over now. */
            k->cli_state = 2;
            conn_record(w, ci, "loss", o.code, "client");
            sim_ev e = {0};
            e.kind = EV_SRV_WS_CLOSED;
            e.id = conn_index(w, k);
            e.gen = k->srv_gen;
            e.tr = json_incref(tr);
            send_link(w, ci, 1, &e, "close");
            break;
        }
        case HP_OUT_NOTIFY: {
            json_t *tr = sim_trace(w, c->spec->name, "notify");
            json_object_set(tr, "info", o.info ? o.info : json_null());
            json_t *r = sim_record(w, c->notes);
            json_object_update(r, o.info);
            json_object_set_new(r, "t", json_integer(w->now));
            break;
        }
        case HP_OUT_OBSERVE: {
            const char *kind = json_string_value(json_object_get(o.info, "kind"));
            if (kind && !strcmp(kind, "event")) {
                json_t *tr = sim_trace(w, c->spec->name, "event");
                json_object_set(tr, "info", o.info);
                json_t *r = sim_record(w, c->events);
                const char *keys[] = {"event_type", "entity_id", "revision", "payload"};
                for (int i = 0; i < 4; i++) {
                    json_t *v = json_object_get(o.info, keys[i]);
                    if (v)
                        json_object_set(r, keys[i], v);
                }
            } else {
                json_t *tr = sim_trace(w, c->spec->name, "observe");
                json_object_set(tr, "info", o.info ? o.info : json_null());
                if (kind && !strcmp(kind, "queue")) {
                    json_t *r = sim_record(w, c->queue_obs);
                    json_object_update(r, o.info);
                    json_object_set_new(r, "t", json_integer(w->now));
                    json_int_t len = json_integer_value(json_object_get(o.info, "length"));
                    if (len > c->max_queue)
                        c->max_queue = (int)len;
                } else if (kind && !strcmp(kind, "connection")) {
                    const char *st = json_string_value(json_object_get(o.info, "state"));
                    if (st && !strcmp(st, "ready"))
                        conn_record(w, ci, "ready", 0, NULL);
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
    drain_server(w);
    for (size_t i = 0; i < w->ncl; i++)
        drain_client(w, (int)i);
}

/* ---- delivering events ------------------------------------------------ */

/* Is an event still deliverable?  Link events die with the link epoch;
 * client-bound ones with the client's core generation. */
static int link_alive(sim_world *w, const sim_ev *e)
{
    if (e->epoch == LOCAL_EPOCH)
        return 1;
    const sim_client *c = &w->cl[e->ci];
    return e->epoch == c->epoch && link_usable(c);
}

static void mark_lost(sim_ev *e, const char *why)
{
    const char *key = e->reply ? "reply_lost" : "lost";
    if (e->tr && !json_object_get(e->tr, key))
        json_object_set_new(e->tr, key, json_string(why));
}

static void deliver(sim_world *w, sim_ev *e)
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
            json_object_set_new(p->trace, "status", json_integer(0));
            sim_ev f = {0};
            f.kind = EV_CLI_HTTP_FAIL;
            f.gen = p->gen;
            f.id = e->id;
            f.tr = json_incref(p->trace);
            f.reply = 1;
            send_link(w, p->ci, 0, &f, "response");
            return;
        }
        json_t *j = sim_record(w, w->journal);
        json_object_set_new(j, "from", json_string(actor_of(w, p->ci)));
        json_object_set_new(j, "method", json_string(p->method));
        json_object_set_new(j, "path", json_string(p->path));
        json_object_set_new(j, "query", p->query ? json_string(p->query) : json_null());
        json_object_set_new(j, "idem_key", p->idem_key ? json_string(p->idem_key) : json_null());
        /* the body parsed once, when the request was sent (shared, read only) */
        json_t *rb = json_object_get(p->trace, "request");
        json_object_set_new(j, "body", rb ? json_incref(rb) : body_json(p->body, p->body_len));
        json_object_set_new(j, "status", json_null());
        json_object_set_new(j, "response", json_null());
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
            json_object_set_new(e->tr, "status", json_integer(0));
            send_link(w, k->ci, 0, &r, "response");
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
            json_object_set_new(e->tr, "status", json_integer(101));
        } else {
            r.kind = EV_CLI_WS_REFUSED;
            r.status = st;
            json_object_set_new(e->tr, "status", json_integer(st));
        }
        send_link(w, k->ci, 0, &r, "response");
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
        conn_record(w, e->ci, "loss", e->status, e->kind == EV_CLI_WS_REFUSED && e->status
                                                     ? "server" : "network");
        if (e->kind == EV_CLI_CONNECT_TIMEOUT) {
            json_t *tr = sim_trace(w, "harness", "ws");
            json_object_set_new(tr, "from", json_string("server"));
            json_object_set_new(tr, "to", json_string(c->spec->name));
            json_object_set_new(tr, "refused", json_integer(0));
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
        conn_record(w, e->ci, "loss", e->code, e->status == 1 ? "server" : "network");
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
            set_error(w, "the simulation is stuck at one instant (%s keeps asking for a tick)",
                      which <= 0 ? "the server" : w->cl[which - 1].spec->name);
            return -1;
        }
        if (which == -1) {
            sim_ev e;
            heap_pop(w, &e);
            deliver(w, &e);
            ev_clear(&e);
        } else if (which == 0) {
            srv_tick(w->srv);
        } else {
            cli_tick(w->cl[which - 1].core);
        }
        sim_drain(w);
    }
}

/* ---- setup ------------------------------------------------------------ */

static uint64_t fnv(const char *s, uint64_t salt)
{
    uint64_t h = 1469598103934665603ULL ^ salt;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

char *sim_mint(sim_world *w, int ci, scn_token_kind kind, int64_t ttl_ms)
{
    const scn_client_spec *sp = w->cl[ci].spec;
    int64_t now_s = w->now / 1000;
    char *tok = NULL;
    switch (kind) {
    case SCN_TOKEN_NONE:
        return NULL;
    case SCN_TOKEN_VALID:
        tok = hp_jwt_mint(SIM_SECRET, sp->user, sp->household, sp->device, now_s,
                          (w->now + ttl_ms) / 1000);
        break;
    case SCN_TOKEN_EXPIRED:
        tok = hp_jwt_mint(SIM_SECRET, sp->user, sp->household, sp->device, now_s - 3600,
                          now_s - 1);
        break;
    case SCN_TOKEN_BAD_SIGNATURE:
        tok = hp_jwt_mint("not-the-server-secret", sp->user, sp->household, sp->device, now_s,
                          (w->now + ttl_ms) / 1000);
        break;
    }
    if (tok)
        json_array_append_new(w->tokens, json_string(tok));
    return tok;
}

static int open_store(sim_world *w, sim_client *c, char *err, size_t errlen)
{
    cli_store_open_info info = {0};
    c->store = cli_store_open(c->store_path ? c->store_path : ":memory:",
                              c->key_other ? c->other_key : c->key, &c->env, &info, err,
                              errlen);
    (void)w;
    return c->store ? 0 : -1;
}

sim_world *sim_new(const scn_scenario *s, uint64_t seed, json_t *trace, char *err, size_t errlen)
{
    sim_world *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->s = s;
    w->policy = s->policy;
    w->now = s->start_ms;
    w->trace = trace;
    w->journal = json_array();
    w->logs = json_array();
    w->edits = json_array();
    w->tokens = json_array();
    w->logger.sink = sink;
    w->logger.ud = w;
    w->logger.min_level = HP_LOG_DEBUG;
    hp_rng_seed(&w->srng, seed ^ 0x5eed5eed5eedULL);
    w->senv.now = clock_fn;
    w->senv.clock_ud = w;
    w->senv.rng = &w->srng;
    w->senv.log = &w->logger;
    w->senv.actor = "fake_server";
    w->sstore = srv_store_open(":memory:", err, errlen);
    if (!w->sstore) {
        sim_free(w);
        return NULL;
    }
    w->srv = srv_new(&w->senv, &w->policy, SIM_SECRET, w->sstore);
    if (!w->srv) {
        snprintf(err, errlen, "srv_new failed");
        sim_free(w);
        return NULL;
    }
    w->srv_up = 1;
    w->ncl = s->nclients;
    w->cl = calloc(w->ncl ? w->ncl : 1, sizeof *w->cl);
    if (!w->cl)
        abort();
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        c->spec = &s->clients[i];
        c->idx = (int)i;
        hp_rng_seed(&c->rng, seed ^ fnv(c->spec->name, 0x9e3779b97f4a7c15ULL));
        c->env.now = clock_fn;
        c->env.clock_ud = w;
        c->env.rng = &c->rng;
        c->env.log = &w->logger;
        c->env.actor = c->spec->name;
        hp_rng kr;
        hp_rng_seed(&kr, fnv(c->spec->name, 1));
        for (int b = 0; b < 32; b++) {
            c->key[b] = (uint8_t)hp_rng_next(&kr);
            c->other_key[b] = (uint8_t)(c->key[b] ^ 0xA5);
        }
        c->online = c->link_up = 1;
        c->latency_ms = c->spec->latency_ms >= 0 ? c->spec->latency_ms : s->latency_ms;
        c->events = json_array();
        c->notes = json_array();
        c->closes = json_array();
        c->frames = json_array();
        c->conn = json_array();
        c->queue_obs = json_array();
        if (c->spec->needs_file_store) {
            char tmpl[] = "/tmp/hx-store-XXXXXX";
            int fd = mkstemp(tmpl);
            if (fd < 0) {
                snprintf(err, errlen, "cannot create a temporary store file");
                sim_free(w);
                return NULL;
            }
            close(fd);
            c->store_path = strdup(tmpl);
        }
        if (open_store(w, c, err, errlen)) {
            sim_free(w);
            return NULL;
        }
        c->token = sim_mint(w, (int)i, c->spec->token, c->spec->token_ttl_ms);
        c->core = cli_new(&c->env, &w->policy, c->store, c->token);
        if (!c->core) {
            snprintf(err, errlen, "cli_new failed for %s", c->spec->name);
            sim_free(w);
            return NULL;
        }
        c->running = 1;
    }
    sim_drain(w);
    return w;
}

void sim_free(sim_world *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        if (c->core)
            cli_free(c->core);
        if (c->store)
            cli_store_close(c->store);
        if (c->store_path) {
            unlink(c->store_path);
            char side[600];
            snprintf(side, sizeof side, "%s-journal", c->store_path);
            unlink(side);
            snprintf(side, sizeof side, "%s-wal", c->store_path);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", c->store_path);
            unlink(side);
            free(c->store_path);
        }
        free(c->token);
        json_decref(c->events);
        json_decref(c->notes);
        json_decref(c->closes);
        json_decref(c->frames);
        json_decref(c->conn);
        json_decref(c->queue_obs);
    }
    free(w->cl);
    if (w->srv)
        srv_free(w->srv);
    if (w->sstore)
        srv_store_close(w->sstore);
    for (size_t i = 0; i < w->nheap; i++)
        ev_clear(&w->heap[i]);
    free(w->heap);
    free(w->conns);
    for (size_t i = 0; i < w->npend; i++) {
        sim_pending *p = &w->pend[i];
        free(p->method);
        free(p->path);
        free(p->query);
        free(p->auth);
        free(p->idem_key);
        free(p->body);
    }
    free(w->pend);
    json_decref(w->journal);
    json_decref(w->logs);
    json_decref(w->edits);
    json_decref(w->tokens);
    free(w->error);
    free(w);
}

/* ---- actions ------------------------------------------------------------ */

int sim_client_connect(sim_world *w, int ci, char *err, size_t errlen)
{
    sim_client *c = &w->cl[ci];
    if (!c->running) {
        snprintf(err, errlen, "%s has crashed: use '%s: restart'", c->spec->name, c->spec->name);
        return -1;
    }
    if (c->started) {
        snprintf(err, errlen, "%s is already connected (connect once; the app reconnects by "
                              "itself)", c->spec->name);
        return -1;
    }
    c->started = 1;
    conn_record(w, ci, "reset", 0, NULL);
    cli_start(c->core);
    sim_drain(w);
    return 0;
}

/* The app's open sockets end for the app itself (offline / crash). */
static void client_sockets_gone(sim_world *w, int ci, int tell_app)
{
    sim_client *c = &w->cl[ci];
    for (size_t i = 0; i < w->nconns; i++) {
        sim_conn *k = &w->conns[i];
        if (k->ci != ci || k->cli_gen != c->gen || k->cli_state == 2)
            continue;
        int was_open = k->cli_state == 1;
        k->cli_state = 2;
        if (was_open)
            conn_record(w, ci, "loss", 0, "network");
        if (tell_app && c->core) {
            if (was_open)
                cli_ws_closed(c->core, k->cli_id, 0);
            else
                cli_ws_refused(c->core, k->cli_id, 0);
        }
    }
}

void sim_client_set_online(sim_world *w, int ci, int online)
{
    sim_client *c = &w->cl[ci];
    if (c->online == online)
        return;
    if (!online) {
        c->online = 0;
        c->epoch++;
        if (c->core) {
            cli_set_online(c->core, 0);
            sim_drain(w);
            /* SPEC §3: going offline closes the socket (for the app). */
            client_sockets_gone(w, ci, 1);
            sim_drain(w);
        }
        conn_record(w, ci, "reset", 0, NULL);
    } else {
        c->online = 1;
        conn_record(w, ci, "reset", 0, NULL);
        if (c->core) {
            cli_set_online(c->core, 1);
            sim_drain(w);
        }
    }
}

void sim_client_set_link(sim_world *w, int ci, int up)
{
    sim_client *c = &w->cl[ci];
    if (c->link_up == up)
        return;
    c->link_up = up;
    if (!up)
        c->epoch++;
}

void sim_client_crash(sim_world *w, int ci)
{
    sim_client *c = &w->cl[ci];
    if (!c->running)
        return;
    /* The OS resets the app's sockets: the server hears of it one hop
     * later if the link works. */
    for (size_t i = 0; i < w->nconns; i++) {
        sim_conn *k = &w->conns[i];
        if (k->ci != ci || k->cli_gen != c->gen || k->cli_state == 2)
            continue;
        k->cli_state = 2;
        if (k->srv_open) {
            sim_ev e = {0};
            e.kind = EV_SRV_WS_CLOSED;
            e.id = i;
            e.gen = k->srv_gen;
            send_link(w, ci, 1, &e, "close");
        }
    }
    cli_free(c->core);
    c->core = NULL;
    c->running = 0;
    c->gen++;
    conn_record(w, ci, "reset", 0, NULL);
}

int sim_client_restart(sim_world *w, int ci, int key_other, char *err, size_t errlen)
{
    sim_client *c = &w->cl[ci];
    sim_client_crash(w, ci);
    if (key_other >= 0 && key_other != c->key_other) {
        cli_store_close(c->store);
        c->store = NULL;
        c->key_other = key_other;
        if (open_store(w, c, err, errlen))
            return -1;
    }
    c->core = cli_new(&c->env, &w->policy, c->store, c->token);
    if (!c->core) {
        snprintf(err, errlen, "cli_new failed for %s", c->spec->name);
        return -1;
    }
    c->running = 1;
    if (!c->online)
        cli_set_online(c->core, 0);
    if (c->started)
        cli_start(c->core);
    sim_drain(w);
    return 0;
}

void sim_client_new_token(sim_world *w, int ci, int64_t ttl_ms)
{
    sim_client *c = &w->cl[ci];
    free(c->token);
    c->token = sim_mint(w, ci, SCN_TOKEN_VALID, ttl_ms);
    conn_record(w, ci, "reset", 0, NULL);
    if (c->core) {
        cli_set_token(c->core, c->token);
        sim_drain(w);
    }
}

int sim_client_send_frame(sim_world *w, int ci, char *text, size_t len, char *err, size_t errlen)
{
    sim_client *c = &w->cl[ci];
    sim_conn *k = NULL;
    for (size_t i = w->nconns; i-- > 0;)
        if (w->conns[i].ci == ci && w->conns[i].cli_gen == c->gen && w->conns[i].cli_state == 1) {
            k = &w->conns[i];
            break;
        }
    if (!k) {
        free(text);
        snprintf(err, errlen, "%s has no open stream (wait until it is connected)",
                 c->spec->name);
        return -1;
    }
    char kind[32], entity[80];
    frame_kind(text, len, kind, sizeof kind, entity, sizeof entity);
    json_t *tr = sim_trace(w, c->spec->name, "ws");
    json_object_set_new(tr, "from", json_string(c->spec->name));
    json_object_set_new(tr, "to", json_string("server"));
    /* A 1009 test frame is 64 KiB+: the trace keeps its head and size. */
    json_t *d = NULL;
    if (len > 200) {
        char *head = scn_asprintf("%.160s... (%zu bytes)", text, len);
        d = json_string(head);
        free(head);
    } else {
        d = json_stringn(text, len);
    }
    /* NULL for bytes that are not UTF-8 (or a cut inside a character). */
    json_object_set_new(tr, "data", d ? d : json_sprintf("(%zu bytes)", len));
    json_object_set_new(tr, "raw", json_true());
    sim_ev e = {0};
    e.kind = EV_SRV_WS_MSG;
    e.id = conn_index(w, k);
    e.gen = k->srv_gen;
    e.data = text;
    e.len = len;
    e.tr = json_incref(tr);
    send_link(w, ci, 1, &e, kind);
    frame_record(w, ci, 0, kind, entity, tr);
    json_object_set_new(json_array_get(c->frames, json_array_size(c->frames) - 1), "raw",
                        json_true());
    sim_drain(w);
    return 0;
}

int sim_client_send_request(sim_world *w, int ci, const json_t *req, char *err, size_t errlen)
{
    sim_client *c = &w->cl[ci];
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *path = json_string_value(json_object_get(req, "path"));
    const char *idem = json_string_value(json_object_get(req, "idem_key"));
    const json_t *jb = json_object_get(req, "body");
    if (!method || !path) {
        snprintf(err, errlen, "needs 'method' and 'path'");
        return -1;
    }
    sim_pending *p = pend_new(w);
    uint64_t pi = (uint64_t)(p - w->pend);
    p->ci = ci;
    p->cli_id = UINT64_MAX; /* no request of the app's core has this id */
    p->gen = c->gen;
    p->raw = 1;
    p->method = hp_strdup(method);
    const char *q = strchr(path, '?');
    p->path = q ? strndup(path, (size_t)(q - path)) : strdup(path);
    p->query = q ? strdup(q + 1) : NULL;
    p->auth = c->token ? (asprintf(&p->auth, "Bearer %s", c->token) < 0 ? NULL : p->auth) : NULL;
    p->idem_key = hp_strdup(idem);
    if (jb) {
        /* A string is sent as is (bad JSON on purpose), anything else as JSON. */
        p->body = json_is_string(jb) ? strdup(json_string_value(jb))
                                     : json_dumps(jb, JSON_COMPACT | JSON_ENCODE_ANY);
        p->body_len = p->body ? strlen(p->body) : 0;
    }
    json_t *tr = sim_trace(w, c->spec->name, "http");
    json_object_set_new(tr, "from", json_string(c->spec->name));
    json_object_set_new(tr, "to", json_string("server"));
    json_object_set_new(tr, "method", json_string(p->method));
    char redacted[1024];
    hp_log_redact(path, redacted, sizeof redacted);
    json_object_set_new(tr, "path", json_string(redacted));
    json_object_set_new(tr, "status", json_null());
    json_object_set_new(tr, "idem_key", p->idem_key ? json_string(p->idem_key) : json_null());
    json_object_set_new(tr, "request", body_json(p->body, p->body_len));
    json_object_set_new(tr, "response", json_null());
    json_object_set_new(tr, "raw", json_true());
    p->trace = tr;
    sim_ev e = {0};
    e.kind = EV_SRV_HTTP;
    e.id = pi;
    e.gen = w->srv_gen;
    e.tr = json_incref(tr);
    send_link(w, ci, 1, &e, "request");
    sim_drain(w);
    return 0;
}

void sim_server_crash(sim_world *w)
{
    if (!w->srv_up)
        return;
    for (size_t i = 0; i < w->nconns; i++) {
        sim_conn *k = &w->conns[i];
        if (!k->srv_open || k->srv_gen != w->srv_gen)
            continue;
        k->srv_open = 0;
        if (k->cli_state != 2) {
            sim_ev e = {0};
            e.kind = EV_CLI_WS_CLOSED;
            e.gen = k->cli_gen;
            e.id = i;
            e.code = 0;
            send_link(w, k->ci, 0, &e, "close");
        }
    }
    srv_free(w->srv);
    w->srv = NULL;
    w->srv_up = 0;
    w->srv_gen++;
}

void sim_server_start(sim_world *w)
{
    if (w->srv_up)
        return;
    w->srv = srv_new(&w->senv, &w->policy, SIM_SECRET, w->sstore);
    if (!w->srv) {
        set_error(w, "%s", "srv_new failed on restart");
        return;
    }
    w->srv_up = 1;
    sim_drain(w);
}

void sim_server_restart(sim_world *w)
{
    if (!w->srv_up) {
        sim_server_start(w);
        return;
    }
    /* Graceful: every socket gets 1001 first. */
    srv_shutdown(w->srv);
    drain_server(w);
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns[i].srv_gen == w->srv_gen)
            w->conns[i].srv_open = 0;
    srv_free(w->srv);
    w->srv = NULL;
    w->srv_up = 0;
    w->srv_gen++;
    sim_server_start(w);
}

void sim_sample(sim_world *w)
{
    /* Two numbers, not cli_status(): building the whole status object (the
     * cache's ids, the dead letters) after every step was the largest single
     * cost of a run (bench/README.md). */
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        if (!c->core)
            continue;
        int q = cli_queue_length(c->core);
        if (q > c->max_queue)
            c->max_queue = q;
        int64_t b = cli_store_cache_bytes(c->store);
        if (b > c->max_cache_bytes)
            c->max_cache_bytes = b;
    }
}
