/*
 * cli_store.h - the client's device store: one SQLite file per device.
 *
 * Tables: meta (key check, last applied revision), queue (FIFO: seq, mutation
 * id, op, entity id, base revision, base snapshot, snapshot, attempts),
 * dead_letter, cache (entity id, value, size, updated_at, used_at),
 * quarantine (queued items that a wrong key could not open).
 *
 * C-3: every task value - cache values, queued snapshots and bases, dead-letter
 * snapshots - is sealed with AES-256-GCM (OpenSSL), a fresh 96-bit nonce each
 * time (drawn from env->rng when set, for deterministic simulation; else
 * RAND_bytes), the entity id as associated data.  No task text is stored in
 * plain text.
 *
 * A wrong key is detected by the key-check row: the cache is emptied and the
 * last applied revision reset (the client rebuilds from the server), queued
 * items are moved, still sealed, to quarantine (never deleted); opening the
 * store again with the original key puts them back at the queue's tail (the
 * file is re-keyed to the key in use, so that reopening also reports a
 * mismatch, with "restored" > 0).
 * A value whose tag fails is dropped and logged at WARNING; never a crash.
 */
#ifndef CLI_STORE_H
#define CLI_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "hp_env.h"

typedef struct cli_store cli_store;

typedef struct cli_store_open_info {
    int key_mismatch;       /* 1 when the key did not match the file's key */
    int quarantined;        /* queued items moved to quarantine by this open */
    int restored;           /* quarantined items restored by this open */
} cli_store_open_info;

/* Open or create.  key is 32 bytes.  env supplies the logger (and the clock
 * for timestamps).  Returns NULL with err on I/O failure only: a wrong key is
 * not a failure (see info).
 * path ":memory:" (or NULL): a new, empty store every time, as if just
 * created (AUTOINCREMENT sequences restart, no key check but its own, no
 * quarantine).  Its connection may be one an earlier store emptied at
 * close (hp_memdb.h), with its prepared statements, and its key one an
 * earlier store with the same key bytes gave back (cli_keypool.h, kept
 * until the process ends; a store on a file wipes its key at close).
 * Nothing a caller can read tells the two apart, nonces included. */
cli_store *cli_store_open(const char *path, const uint8_t key[32], const hp_env *env,
                          cli_store_open_info *info, char *err, size_t errlen);
void cli_store_close(cli_store *st);

/* Read a key file: 32 raw bytes, or 64 hex characters (whitespace allowed
 * around).  0 or -1 with err. */
int cli_key_load(const char *path, uint8_t key[32], char *err, size_t errlen);

/* ---- meta ------------------------------------------------------------- */
int64_t cli_store_applied_revision(cli_store *st);
int cli_store_set_applied_revision(cli_store *st, int64_t rev);

/* ---- queue (Q-1..Q-3) ------------------------------------------------- */

typedef struct cli_item {
    int64_t seq;             /* FIFO order, assigned by the store */
    char mutation_id[64];    /* Idempotency-Key */
    char op[8];              /* "put" | "delete" */
    char entity_id[72];
    int64_t base_revision;
    json_t *base;            /* base snapshot (server version edited from) or NULL */
    json_t *snapshot;        /* the full task to send */
    int attempts;            /* consecutive failed attempts */
    int sent;                /* 1 once it has been sent at least once */
    int64_t created_at;      /* ms */
} cli_item;

void cli_item_clear(cli_item *it);

/* Append at tail; assigns seq. 0 or -1. */
int cli_store_queue_push(cli_store *st, cli_item *it);
/* The same with base_txt / snapshot_txt, each when non-NULL the item's
 * base / snapshot as hp_json_dump() gives it, already made by the caller:
 * sealed as they are instead of dumped again (same seals, same order). */
int cli_store_queue_push_txt(cli_store *st, cli_item *it, const char *base_txt,
                             const char *snapshot_txt);
/* Rewrite an existing item (by seq) - coalescing, rebasing, attempts. */
int cli_store_queue_update(cli_store *st, const cli_item *it);
/* The same with the texts as for cli_store_queue_push_txt(). */
int cli_store_queue_update_txt(cli_store *st, const cli_item *it, const char *base_txt,
                               const char *snapshot_txt);
int cli_store_queue_remove(cli_store *st, int64_t seq);
int cli_store_queue_count(cli_store *st);
/* Load all items in FIFO order into a malloc'd array (caller clears each and
 * frees the array).  Items whose tag fails are left out, moved to quarantine
 * (kept sealed, never deleted) and logged at WARNING. */
int cli_store_queue_load(cli_store *st, cli_item **items, int *n);

/* Dead-letter list: kept, visible.  reason e.g. "400 bad_request". */
int cli_store_dead_push(cli_store *st, const cli_item *it, int status, const char *reason);
/* [{"mutation_id","op","entity_id","status","reason","snapshot"}]; new ref. */
json_t *cli_store_dead_list(cli_store *st);

/* ---- cache (C-1..C-4) ------------------------------------------------- */

/* Insert or replace the server version of a task; updates updated_at and
 * used_at to now.  Eviction is the caller's job (cli_store_cache_enforce). */
int cli_store_cache_put(cli_store *st, const char *id, const json_t *task);
/* New reference or NULL (absent, or tag failed: dropped + WARNING).  Marks
 * the entry used (LRU). */
json_t *cli_store_cache_get(cli_store *st, const char *id);
int cli_store_cache_remove(cli_store *st, const char *id);
/* The revision of id's cached task without reading the row, when this
 * store has written or read it since it opened: 1 and *rev, 0 when id is
 * not cached, -1 when unknown (read it with cli_store_cache_get).  Marks
 * nothing used (WS-2's check before a write that does, cli_cache.c). */
int cli_store_cache_revision(cli_store *st, const char *id, int64_t *rev);
/* Remove everything (wrong key, RESYNC reload). */
int cli_store_cache_clear(cli_store *st);

/* is_pinned(ud, id) returns 1 for entities with queued changes (C-2). */
typedef int (*cli_pin_fn)(void *ud, const char *id);

/* C-1: purge entries not updated within window_ms of now (pinned kept).
 * C-2: evict least-recently-used until stored bytes <= cap (pinned kept).
 * Returns the number of entries removed. */
int cli_store_cache_enforce(cli_store *st, int64_t now_ms, int64_t window_ms, int64_t cap_bytes,
                            cli_pin_fn pinned, void *ud);

/* The same, and with next non-NULL *next = cli_store_cache_next_expiry()
 * as it would be afterwards, mostly found by the same scan (the core's
 * upkeep after every cache write). */
int cli_store_cache_upkeep(cli_store *st, int64_t now_ms, int64_t window_ms, int64_t cap_bytes,
                           cli_pin_fn pinned, void *ud, int64_t *next);

/* {"entries": n, "bytes": n, "ids": [...sorted]} ; new ref. */
json_t *cli_store_cache_info(cli_store *st);
/* Stored bytes counted for C-2 (sealed value sizes). */
int64_t cli_store_cache_bytes(cli_store *st);
/* C-1: the instant the next unpinned entry falls out of the window
 * (min updated_at + window_ms), or INT64_MAX when none. */
int64_t cli_store_cache_next_expiry(cli_store *st, int64_t window_ms, cli_pin_fn pinned, void *ud);

/* ---- extras ------------------------------------------------------------ */
/* The open info of this store (key mismatch, quarantined, restored). */
cli_store_open_info cli_store_info(const cli_store *st);
/* Items held in quarantine (sealed with another key, or failed their tag). */
int cli_store_quarantine_count(cli_store *st);

#endif
