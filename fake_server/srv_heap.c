/*
 * srv_heap.c - binary min-heap of embedded timer nodes (srv_heap.h).
 *
 * Slot i (0-based) has its children at 2i+1 and 2i+2; every node records
 * pos = i + 1 so that set/remove find it without a search.
 */
#include "srv_heap.h"

#include <stdlib.h>

void srv_heap_init(srv_heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void srv_heap_free(srv_heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->pos = 0;
    free(h->v);
    srv_heap_init(h);
}

int srv_heap_reserve(srv_heap *h, size_t n)
{
    if (n <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < n) {
        if (cap > SIZE_MAX / 2 / sizeof *h->v)
            return -1;
        cap *= 2;
    }
    srv_heap_node **v = realloc(h->v, cap * sizeof *v);
    if (!v)
        return -1;
    h->v = v;
    h->cap = cap;
    return 0;
}

static void place(srv_heap *h, size_t i, srv_heap_node *x)
{
    h->v[i] = x;
    x->pos = i + 1;
}

/* Moves x (which belongs at slot i) up while it is smaller than its parent. */
static void sift_up(srv_heap *h, size_t i, srv_heap_node *x)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->key <= x->key)
            break;
        place(h, i, h->v[p]);
        i = p;
    }
    place(h, i, x);
}

/* Moves x (which belongs at slot i) down while a child is smaller. */
static void sift_down(srv_heap *h, size_t i, srv_heap_node *x)
{
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n)
            break;
        size_t m = l + 1 < h->n && h->v[l + 1]->key < h->v[l]->key ? l + 1 : l;
        if (x->key <= h->v[m]->key)
            break;
        place(h, i, h->v[m]);
        i = m;
    }
    place(h, i, x);
}

int srv_heap_set(srv_heap *h, srv_heap_node *x, int64_t key)
{
    if (x->pos) {
        int64_t old = x->key;
        x->key = key;
        if (key < old)
            sift_up(h, x->pos - 1, x);
        else if (key > old)
            sift_down(h, x->pos - 1, x);
        return 0;
    }
    if (srv_heap_reserve(h, h->n + 1) != 0)
        return -1;
    x->key = key;
    sift_up(h, h->n++, x);
    return 0;
}

void srv_heap_remove(srv_heap *h, srv_heap_node *x)
{
    if (!x->pos)
        return;
    size_t i = x->pos - 1;
    x->pos = 0;
    srv_heap_node *last = h->v[--h->n];
    if (last == x)
        return;
    /* The last node fills the hole, then goes whichever way its key says. */
    if (i > 0 && last->key < h->v[(i - 1) / 2]->key)
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

srv_heap_node *srv_heap_top(const srv_heap *h)
{
    return h->n ? h->v[0] : NULL;
}

int64_t srv_heap_min(const srv_heap *h)
{
    return h->n ? h->v[0]->key : INT64_MAX;
}

srv_heap_node *srv_heap_pop(srv_heap *h)
{
    srv_heap_node *x = srv_heap_top(h);
    if (x)
        srv_heap_remove(h, x);
    return x;
}
