/*
 * sim_net.c - the simulated network: the event heap, links, and the tables
 * of connections and pending requests.
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
 *
 * Inputs: events to schedule (owned by the heap once pushed).  Outputs:
 * events in (t, seq) order; a lost message marks its trace entry.
 */
#define _GNU_SOURCE
#include "sim_int.h"
#include "hp_jload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- heap ordered by (t, seq) ---------------------------------------- */

static int ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void sim_heap_push(sim_world *w, sim_ev *e)
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

void sim_heap_pop(sim_world *w, sim_ev *out)
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

void sim_ev_clear(sim_ev *e)
{
    free(e->data);
    json_decref(e->tr);
    e->data = NULL;
    e->tr = NULL;
}
/* ---- links ------------------------------------------------------------ */

int sim_link_usable(const sim_client *c)
{
    return c->online && c->link_up;
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
int sim_send_link(sim_world *w, int ci, int up, sim_ev *e, const char *kind)
{
    sim_client *c = &w->cl[ci];
    const char *lost = NULL;
    if (!sim_link_usable(c))
        lost = c->online ? "link down" : "offline";
    else if (dropped(c, !up, kind))
        lost = "dropped";
    if (lost) {
        if (e->tr) {
            if (e->reply)
                SIM_SET(e->tr, "reply_lost", sim_str(w, lost));
            else
                SIM_SET(e->tr, "lost", sim_str(w, lost));
        }
        sim_ev_clear(e);
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
    if (e->tr) {
        json_t *at = json_integer(t - w->s->start_ms);
        if (e->reply)
            SIM_SET(e->tr, "reply_arrive", at);
        else
            SIM_SET(e->tr, "arrive", at);
    }
    sim_heap_push(w, e);
    return 0;
}

void sim_schedule_local(sim_world *w, int64_t t, sim_ev *e)
{
    e->t = t;
    e->epoch = LOCAL_EPOCH;
    sim_heap_push(w, e);
}

/* ---- connections and requests ---------------------------------------- */

sim_conn *sim_conn_new(sim_world *w, int ci, uint64_t cli_id)
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

sim_conn *sim_conn_by_cli(sim_world *w, int ci, uint64_t cli_id)
{
    /* Newest first: client ids may be reused by a restarted core. */
    for (size_t i = w->nconns; i-- > 0;)
        if (w->conns[i].ci == ci && w->conns[i].cli_id == cli_id &&
            w->conns[i].cli_gen == w->cl[ci].gen)
            return &w->conns[i];
    return NULL;
}

uint64_t sim_conn_index(sim_world *w, sim_conn *k)
{
    return (uint64_t)(k - w->conns);
}

sim_pending *sim_pend_new(sim_world *w)
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

json_t *sim_body_json(const char *body, size_t len)
{
    if (!body || !len)
        return json_null();
    json_t *j = hp_json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (j)
        return j;
    return json_stringn_nocheck(body, len);
}

