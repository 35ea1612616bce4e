/*
 * sim_action.c - the scenario's actions on the world (scn_run.c calls
 * these): connect, offline/online, link down, crash and restart of a client
 * or the server, a new token, raw frames and requests, queue/cache samples.
 *
 * Inputs: the world and a client index (checked by the caller).  Outputs:
 * calls into the cores, events on the links, records; -1 with err when an
 * action cannot be done in the world's state.
 */
#define _GNU_SOURCE
#include "sim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    sim_conn_record(w, ci, "reset", 0, NULL);
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
            sim_conn_record(w, ci, "loss", 0, "network");
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
        sim_conn_record(w, ci, "reset", 0, NULL);
    } else {
        c->online = 1;
        sim_conn_record(w, ci, "reset", 0, NULL);
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
            sim_send_link(w, ci, 1, &e, "close");
        }
    }
    cli_free(c->core);
    c->core = NULL;
    c->running = 0;
    c->gen++;
    sim_conn_record(w, ci, "reset", 0, NULL);
}

int sim_client_restart(sim_world *w, int ci, int key_other, char *err, size_t errlen)
{
    sim_client *c = &w->cl[ci];
    sim_client_crash(w, ci);
    if (key_other >= 0 && key_other != c->key_other) {
        cli_store_close(c->store);
        c->store = NULL;
        c->key_other = key_other;
        if (sim_open_store(w, c, err, errlen))
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
    sim_conn_record(w, ci, "reset", 0, NULL);
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
    /* Any text: the scan only for what is certainly valid JSON. */
    if (!sim_frame_plain(text, len) ||
        sim_frame_scan(text, len, kind, sizeof kind, entity, sizeof entity))
        sim_frame_kind(text, len, kind, sizeof kind, entity, sizeof entity);
    json_t *tr = sim_trace(w, c->spec->name, "ws");
    SIM_SET(tr, "from", json_string(c->spec->name));
    SIM_SET(tr, "to", json_string("server"));
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
    SIM_SET(tr, "data", d ? d : json_sprintf("(%zu bytes)", len));
    SIM_SET(tr, "raw", json_true());
    sim_ev e = {0};
    e.kind = EV_SRV_WS_MSG;
    e.id = sim_conn_index(w, k);
    e.gen = k->srv_gen;
    e.data = text;
    e.len = len;
    e.tr = json_incref(tr);
    int lost = sim_send_link(w, ci, 1, &e, kind) != 0;
    sim_frame_record(w, ci, 0, kind, entity, tr, lost,
                     json_string_value(json_object_get(tr, "data")));
    c->frames[c->nframes - 1].raw = 1;
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
    sim_pending *p = sim_pend_new(w);
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
    sim_http_out(w, ci, pi, path);
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
            sim_send_link(w, k->ci, 0, &e, "close");
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
        sim_set_error(w, "%s", "srv_new failed on restart");
        return;
    }
    srv_set_jwt_memo(w->srv, w->jwt_memo); /* as sim_new() */
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
    sim_drain_server(w);
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
