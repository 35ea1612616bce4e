/*
 * cli_keypool.h - the keys of closed ":memory:" stores, kept with their
 * AES-256-GCM contexts for the next store opened with the same key bytes.
 *
 * The simulator opens a fresh ":memory:" store per client per world, with
 * the same few keys every time (a key is a function of the client's name).
 * Setting a key up (cipher fetch, AES key schedule, GHASH table:
 * cli_crypto.c) cost more than the rest of opening such a store, and
 * every store seals its key check at once.  A kept key seals and opens
 * byte for byte as a new one: each seal or open gives the context its
 * nonce, which restarts GCM (cli_crypto.c).
 *
 * Only ":memory:" stores use the pool (cli_store.c): a store on a file,
 * the real program's, still wipes its key when it closes.
 *
 * Thread safety: one mutex guards the pool; a key taken is its store's
 * alone until given back, so two threads never share one.
 * Ownership: cli_keypool_take() returns a key the caller owns (as from
 * cli_key_new()); cli_keypool_give() takes it over (kept, or wiped and
 * freed when the pool is full).  Kept keys are static storage's until
 * cli_keypool_clear() or the process ends.
 */
#ifndef CLI_KEYPOOL_H
#define CLI_KEYPOOL_H

#include <stdint.h>
#include "cli_internal.h"

/* A key for these 32 bytes: a kept one, else cli_key_new(); NULL when out
 * of memory. */
cli_key *cli_keypool_take(const uint8_t key[32]);

/* Gives k (made for the 32 bytes key) back to the pool.  NULL k is
 * accepted. */
void cli_keypool_give(cli_key *k, const uint8_t key[32]);

/* Wipes and frees every kept key (tests; a program about to end). */
void cli_keypool_clear(void);

#endif
