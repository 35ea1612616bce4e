/*
 * srv_conns.c - the server core's connection table (issue 13: 10,000+
 * streams on one process without a scan of every connection per input).
 *
 * Every srv_conn is in four indexes, kept in step by srv_conn_add() and
 * srv_conn_remove() only:
 *   c->conns      open order, doubly linked with a tail (O(1) append and
 *                 unlink); srv_state(), shutdown and the admin faults walk it;
 *   c->by_id      hash of the driver's ids (srv_conn_find: every message);
 *   c->hhs        per household, its connections in open order (WS-3 / A-3
 *                 broadcast walks only the writer's household);
 *   c->users      per user, the connections not CLOSING (the conns_per_user
 *                 limit of docs/LIMITS.md counted in O(1)).
 * The deadline heap (c->timers) is kept by srv_stream.c; this file only
 * takes a connection out of it when it is CLOSING or removed, and sizes it.
 *
 * Ownership: the table owns the index arrays and the srv_named entries
 * (freed when the last connection naming them goes); the srv_conn records
 * are allocated and freed by srv_stream.c.
 */
#define _GNU_SOURCE
#include "srv_internal.h"

#include <stdlib.h>
#include <string.h>

#define TAB_MIN 64

static size_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static size_t id_hash(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 17);
}

/* Doubles b (power of two sized) when it holds more entries than buckets;
 * a failed allocation only keeps the chains longer. */
static void names_grow(srv_names *t)
{
    if (t->n < t->nb)
        return;
    size_t nb = t->nb ? t->nb * 2 : TAB_MIN;
    srv_named **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->nb; i++)
        for (srv_named *e = t->b[i], *nx; e; e = nx) {
            nx = e->next;
            size_t j = str_hash(e->name) & (nb - 1);
            e->next = b[j];
            b[j] = e;
        }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static srv_named *names_get(const srv_names *t, const char *name)
{
    if (!t->nb)
        return NULL;
    for (srv_named *e = t->b[str_hash(name) & (t->nb - 1)]; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* The entry for name, created (refs 0) when absent; NULL: out of memory. */
static srv_named *names_take(srv_names *t, const char *name)
{
    srv_named *e = names_get(t, name);
    if (e)
        return e;
    names_grow(t);
    if (!t->nb)
        return NULL;
    size_t len = strlen(name);
    e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, len + 1);
    size_t j = str_hash(name) & (t->nb - 1);
    e->next = t->b[j];
    t->b[j] = e;
    t->n++;
    return e;
}

/* Frees e when no connection refers to it any more. */
static void names_drop(srv_names *t, srv_named *e)
{
    if (!e || e->refs > 0)
        return;
    for (srv_named **pp = &t->b[str_hash(e->name) & (t->nb - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            t->n--;
            free(e);
            return;
        }
}

static void names_free(srv_names *t)
{
    for (size_t i = 0; i < t->nb; i++)
        for (srv_named *e = t->b[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(t->b);
    memset(t, 0, sizeof *t);
}

static void ids_grow(srv_core *c)
{
    if ((size_t)c->n_conns < c->by_id_n)
        return;
    size_t nb = c->by_id_n ? c->by_id_n * 2 : TAB_MIN;
    srv_conn **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->by_id_n; i++)
        for (srv_conn *k = c->by_id[i], *nx; k; k = nx) {
            nx = k->id_next;
            size_t j = id_hash(k->id) & (nb - 1);
            k->id_next = b[j];
            b[j] = k;
        }
    free(c->by_id);
    c->by_id = b;
    c->by_id_n = nb;
}

srv_conn *srv_conn_find(const srv_core *c, uint64_t id)
{
    if (!c->by_id_n)
        return NULL;
    for (srv_conn *k = c->by_id[id_hash(id) & (c->by_id_n - 1)]; k; k = k->id_next)
        if (k->id == id)
            return k;
    return NULL;
}

int srv_conn_user_live(const srv_core *c, const char *user)
{
    srv_named *u = names_get(&c->users, user);
    return u ? u->live : 0;
}

srv_conn *srv_conn_hh_first(const srv_core *c, const char *hh)
{
    srv_named *e = names_get(&c->hhs, hh);
    return e ? e->head : NULL;
}

int srv_conn_add(srv_core *c, srv_conn *k, const char *user, const char *hh)
{
    size_t want = (size_t)c->n_conns + 1;
    if (srv_heap_reserve(&c->timers, want) != 0)
        return -1;
    if (c->due_cap < want) {
        /* srv_stream_tick's batch of due connections never exceeds the heap. */
        size_t cap = c->timers.cap;
        srv_conn **d = realloc(c->due, cap * sizeof *d);
        if (!d)
            return -1;
        c->due = d;
        c->due_cap = cap;
    }
    srv_named *u = names_take(&c->users, user);
    if (!u)
        return -1;
    srv_named *h = names_take(&c->hhs, hh);
    if (!h) {
        names_drop(&c->users, u);
        return -1;
    }
    k->seq = c->next_seq++;
    k->user = u->name;
    k->hh = h->name;
    k->user_ent = u;
    u->refs++;
    k->counted = 1; /* a new connection is never CLOSING */
    u->live++;
    c->n_live++;
    k->hh_ent = h;
    h->refs++;
    k->hh_prev = h->tail;
    k->hh_next = NULL;
    if (h->tail)
        h->tail->hh_next = k;
    else
        h->head = k;
    h->tail = k;
    k->prev = c->conns_tail;
    k->next = NULL;
    if (c->conns_tail)
        c->conns_tail->next = k;
    else
        c->conns = k;
    c->conns_tail = k;
    c->n_conns++;
    ids_grow(c);
    size_t j = id_hash(k->id) & (c->by_id_n - 1);
    k->id_next = c->by_id[j];
    c->by_id[j] = k;
    return 0;
}

void srv_conn_closing(srv_core *c, srv_conn *k)
{
    srv_heap_remove(&c->timers, &k->timer);
    if (k->counted) {
        k->counted = 0;
        k->user_ent->live--;
        c->n_live--;
    }
}

void srv_conn_remove(srv_core *c, srv_conn *k)
{
    srv_conn_closing(c, k);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        c->conns_tail = k->prev;
    srv_named *h = k->hh_ent;
    if (k->hh_prev)
        k->hh_prev->hh_next = k->hh_next;
    else
        h->head = k->hh_next;
    if (k->hh_next)
        k->hh_next->hh_prev = k->hh_prev;
    else
        h->tail = k->hh_prev;
    h->refs--;
    names_drop(&c->hhs, h);
    k->user_ent->refs--;
    names_drop(&c->users, k->user_ent);
    for (srv_conn **pp = &c->by_id[id_hash(k->id) & (c->by_id_n - 1)]; *pp;
         pp = &(*pp)->id_next)
        if (*pp == k) {
            *pp = k->id_next;
            break;
        }
    c->n_conns--;
    k->prev = k->next = k->hh_prev = k->hh_next = k->id_next = NULL;
    k->hh_ent = k->user_ent = NULL;
    k->user = k->hh = ""; /* the names may be gone with their entries */
}

void srv_conn_table_free(srv_core *c)
{
    for (srv_conn *k = c->conns, *n; k; k = n) {
        n = k->next;
        free(k);
    }
    c->conns = c->conns_tail = NULL;
    c->n_conns = 0;
    c->n_live = 0;
    free(c->by_id);
    c->by_id = NULL;
    c->by_id_n = 0;
    names_free(&c->users);
    names_free(&c->hhs);
    /* The records are gone: forget their slots without touching them. */
    c->timers.n = 0;
    srv_heap_free(&c->timers);
    free(c->due);
    c->due = NULL;
    c->due_cap = 0;
}
