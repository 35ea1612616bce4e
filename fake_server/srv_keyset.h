/*
 * srv_keyset.h - a set of 64-bit hashes of keys that only grows: "surely
 * absent" or "maybe present".
 *
 * A memory store (srv_store.c) adds the key of every row it writes to a
 * table and never removes one, so the set holds a superset of the table's
 * keys: a key whose hash is not in it has no row, and the lookup query is
 * not needed.  A hash in it (the row, a deleted or rolled-back one, or
 * another key with the same hash) only means "ask the table".
 *
 * Ownership: the set owns its array (srv_keyset_free).  Inputs: keys of
 * one to three NUL-terminated strings (borrowed for the call).  Out of
 * memory the set turns "maybe" for every key, which stays correct.
 */
#ifndef SRV_KEYSET_H
#define SRV_KEYSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_keyset {
    uint64_t *v;   /* open addressing, 0 = empty slot */
    size_t n, cap; /* cap: 0 or a power of two, kept at most half full */
    int all;       /* 1: an add failed, every key is "maybe" */
} srv_keyset;

/* The hash of the key (a, b, c); c may be NULL (a two-part key).  Never 0. */
uint64_t srv_keyset_hash(const char *a, const char *b, const char *c);
void srv_keyset_add(srv_keyset *s, uint64_t h);
/* 0: no key with hash h was ever added; 1: maybe. */
int srv_keyset_maybe(const srv_keyset *s, uint64_t h);
void srv_keyset_free(srv_keyset *s);

#endif
