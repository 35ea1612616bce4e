/*
 * cli_cacheidx.c - the store's in-memory index of its cache rows
 * (cli_cacheidx.h): a hash table by entity id, linear probing, at most
 * half full, deletion by backward shift (no tombstones).
 */
#include "cli_cacheidx.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a of id; *len = strlen(id). */
static uint64_t hash(const char *id, size_t *len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *p = (const unsigned char *)id;
    size_t n = 0;
    for (; p[n]; n++) {
        h ^= p[n];
        h *= 0x100000001b3ULL;
    }
    *len = n;
    return h;
}

void cli_cacheidx_clear(cli_cacheidx *x)
{
    for (size_t i = 0; x->n && i < x->cap; i++)
        x->tab[i].id[0] = '\0';
    x->n = 0;
}

void cli_cacheidx_free(cli_cacheidx *x)
{
    free(x->tab);
    x->tab = NULL;
    x->cap = 0;
    x->n = 0;
}

/* The slot of id, or the free slot where it would go (cap > 0). */
static size_t slot_of(const cli_cacheidx *x, const char *id, uint64_t h)
{
    size_t m = x->cap - 1, i = (size_t)h & m;
    while (x->tab[i].id[0] && strcmp(x->tab[i].id, id) != 0)
        i = (i + 1) & m;
    return i;
}

cli_cacheent *cli_cacheidx_find(const cli_cacheidx *x, const char *id)
{
    if (!x->cap || !id)
        return NULL;
    size_t len;
    size_t i = slot_of(x, id, hash(id, &len));
    return x->tab[i].id[0] ? &x->tab[i] : NULL;
}

/* Doubles the table (or makes the first one, small: most stores the
 * simulator opens cache a few tasks); -1 when out of memory.  Only the
 * first byte of a free slot's id is set (the rest is written on use). */
static int grow(cli_cacheidx *x)
{
    size_t ncap = x->cap ? x->cap * 2 : 16;
    cli_cacheent *nt = malloc(ncap * sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < ncap; i++)
        nt[i].id[0] = '\0';
    cli_cacheidx old = *x;
    x->tab = nt;
    x->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.tab[i].id[0])
            continue;
        size_t len;
        x->tab[slot_of(x, old.tab[i].id, hash(old.tab[i].id, &len))] = old.tab[i];
    }
    free(old.tab);
    return 0;
}

int cli_cacheidx_set(cli_cacheidx *x, const char *id, int64_t size, int has_rev, int64_t rev)
{
    size_t len;
    uint64_t h = hash(id, &len);
    if (len == 0 || len > CLI_CACHEIDX_ID_MAX)
        return -1;
    if ((x->n + 1) * 2 > x->cap && grow(x) != 0)
        return -1;
    cli_cacheent *e = &x->tab[slot_of(x, id, h)];
    if (!e->id[0]) {
        memcpy(e->id, id, len + 1);
        x->n++;
    }
    e->size = size;
    e->rev = rev;
    e->has_rev = has_rev;
    return 0;
}

void cli_cacheidx_del(cli_cacheidx *x, const char *id)
{
    if (!x->cap || !id)
        return;
    size_t len, m = x->cap - 1;
    size_t i = slot_of(x, id, hash(id, &len));
    if (!x->tab[i].id[0])
        return;
    /* Backward shift: later entries of the probe run move into the hole
     * unless their home slot lies (cyclically) after the hole. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & m;
        if (!x->tab[j].id[0])
            break;
        size_t home = (size_t)hash(x->tab[j].id, &len) & m;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        x->tab[i] = x->tab[j];
        i = j;
    }
    x->tab[i].id[0] = '\0';
    x->n--;
}
