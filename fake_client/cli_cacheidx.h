/*
 * cli_cacheidx.h - the store's in-memory index of its cache rows: per
 * entity id, the row's stored size and, when known, the revision of the
 * task it holds (cli_store.c).
 *
 * Why: C-2 reads the cache's total size after every cache write, and a
 * version from a REST answer is stored only when not older than the
 * cached one (WS-2, cli_cache.c).  Both used to cost SQLite statements
 * per write (the old row's size before each write; the old row read,
 * opened and parsed for its revision).  The store keeps this index exact
 * with its rows (every cache write goes through cli_store.c) and drops it
 * when a write fails, to be rebuilt from the rows.
 *
 * Nothing here is stored: the revisions live in memory only (C-3 seals
 * what is written to disk).  Sizes are the sealed value sizes (C-2).
 *
 * Inputs: ids (NUL-terminated, at most CLI_CACHEIDX_ID_MAX bytes; a longer
 * one is refused, and the store then goes without the index).  Outputs:
 * entries found by id.  Ownership: the index owns its table; entries
 * returned by cli_cacheidx_find() are valid until the next set, del or
 * clear.  Not thread-safe (one store, one thread).
 */
#ifndef CLI_CACHEIDX_H
#define CLI_CACHEIDX_H

#include <stddef.h>
#include <stdint.h>

#define CLI_CACHEIDX_ID_MAX 71

typedef struct cli_cacheent {
    char id[CLI_CACHEIDX_ID_MAX + 1]; /* "" marks a free slot */
    int64_t size;                     /* the row's size column */
    int64_t rev;                      /* the task's revision, when has_rev */
    int has_rev;                      /* 0: not known (not written or read yet) */
} cli_cacheent;

typedef struct cli_cacheidx {
    cli_cacheent *tab; /* open addressing, linear probing; NULL when empty */
    size_t cap;        /* 0 or a power of two */
    size_t n;          /* entries in use */
} cli_cacheidx;

/* Empties the index (its table is kept for reuse). */
void cli_cacheidx_clear(cli_cacheidx *x);
/* Empties the index and frees its table (it stays usable). */
void cli_cacheidx_free(cli_cacheidx *x);

/* The entry of id, or NULL. */
cli_cacheent *cli_cacheidx_find(const cli_cacheidx *x, const char *id);

/* Adds id or replaces its entry.  0, or -1 (out of memory, or id too long:
 * the index is left as it was). */
int cli_cacheidx_set(cli_cacheidx *x, const char *id, int64_t size, int has_rev, int64_t rev);

/* Removes id's entry, if any. */
void cli_cacheidx_del(cli_cacheidx *x, const char *id);

#endif
