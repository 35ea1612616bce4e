/*
 * srv_keyset.c - the grow-only hash set of srv_keyset.h.
 */
#include "srv_keyset.h"

#include <stdlib.h>

/* FNV-1a over each part and a separator after it, so ("ab", "c") and
 * ("a", "bc") differ; 0 is kept for empty slots. */
uint64_t srv_keyset_hash(const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < 3 && parts[i]; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL;
    }
    return h ? h : 1;
}

static void put(uint64_t *v, size_t cap, uint64_t h)
{
    size_t i = (size_t)(h ^ (h >> 29)) & (cap - 1);
    while (v[i] && v[i] != h)
        i = (i + 1) & (cap - 1);
    v[i] = h;
}

void srv_keyset_add(srv_keyset *s, uint64_t h)
{
    if (s->all || srv_keyset_maybe(s, h))
        return;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        uint64_t *v = calloc(cap, sizeof *v);
        if (!v) {
            s->all = 1;
            return;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                put(v, cap, s->v[i]);
        free(s->v);
        s->v = v;
        s->cap = cap;
    }
    put(s->v, s->cap, h);
    s->n++;
}

int srv_keyset_maybe(const srv_keyset *s, uint64_t h)
{
    if (s->all)
        return 1;
    if (!s->cap)
        return 0;
    size_t i = (size_t)(h ^ (h >> 29)) & (s->cap - 1);
    while (s->v[i]) {
        if (s->v[i] == h)
            return 1;
        i = (i + 1) & (s->cap - 1);
    }
    return 0;
}

void srv_keyset_free(srv_keyset *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
    s->all = 0;
}
