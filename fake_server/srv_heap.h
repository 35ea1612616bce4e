/*
 * srv_heap.h - a binary min-heap of timer nodes (the server core's
 * per-connection deadlines, issue 13: no scan of every connection per
 * tick).
 *
 * The nodes are embedded in their owner (srv_conn): the heap holds
 * pointers only, never allocates or frees a node, and records each node's
 * slot in the node itself, so a key can be changed or a node removed from
 * the middle in O(log n).
 *
 * Ownership: the heap owns its pointer array (srv_heap_free releases it);
 * the nodes are borrowed and must outlive their membership (remove a node
 * before freeing its owner).
 *
 * Inputs: keys are int64_t milliseconds (any value; INT64_MAX is an
 * ordinary key).  Ties are broken by nothing: callers that need a fixed
 * order among equal keys impose it themselves (srv_stream_tick sorts what
 * fell due by open order).
 */
#ifndef SRV_HEAP_H
#define SRV_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_heap_node {
    int64_t key;
    size_t pos;               /* 1 + its slot in the heap; 0: not in a heap */
} srv_heap_node;

typedef struct srv_heap {
    srv_heap_node **v;
    size_t n, cap;
} srv_heap;

void srv_heap_init(srv_heap *h);
/* Releases the array; the nodes are left as they are (borrowed). */
void srv_heap_free(srv_heap *h);
/* Room for at least n nodes: 0, or -1 when out of memory (the heap is
 * unchanged).  After it, srv_heap_set() of up to n nodes cannot fail. */
int srv_heap_reserve(srv_heap *h, size_t n);
/* Inserts x with key, or moves it to key when already in (up or down).
 * 0, or -1 when the array could not grow (x is then not in the heap). */
int srv_heap_set(srv_heap *h, srv_heap_node *x, int64_t key);
/* Takes x out (anywhere in the heap); a no-op when x is not in it. */
void srv_heap_remove(srv_heap *h, srv_heap_node *x);
/* The node with the smallest key (NULL when empty), left in place. */
srv_heap_node *srv_heap_top(const srv_heap *h);
/* The smallest key, INT64_MAX when empty. */
int64_t srv_heap_min(const srv_heap *h);
/* Takes out and returns the node with the smallest key (NULL when empty). */
srv_heap_node *srv_heap_pop(srv_heap *h);
/* 1 when x is in a heap. */
static inline int srv_heap_has(const srv_heap_node *x)
{
    return x->pos != 0;
}

#endif
