/*
 * cli_internal.h - pieces shared by the client core's source files only.
 *
 * Not a contract: the harness and the program use cli_core.h / cli_store.h.
 */
#ifndef CLI_INTERNAL_H
#define CLI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "hp_env.h"

#define CLI_NONCE_LEN 12
#define CLI_TAG_LEN 16

/* C-3: a store's key, held with its AES-256-GCM contexts so that a seal or
 * an open only sets a nonce (cli_crypto.c).  cli_key_new copies the 32
 * bytes (NULL when out of memory); the owner (the store) frees it with
 * cli_key_free, which wipes the key.  One thread at a time. */
typedef struct cli_key cli_key;
cli_key *cli_key_new(const uint8_t key[32]);
void cli_key_free(cli_key *key);

/* C-3: AES-256-GCM seal.  out = nonce(12) || ciphertext || tag(16), malloc'd.
 * aad (NUL-terminated, may be "") is authenticated, not stored.  The nonce
 * comes from env->rng when there is one (deterministic simulation runs),
 * else from OpenSSL's RAND_bytes.  0 or -1. */
int cli_seal(cli_key *key, const hp_env *env, const char *aad, const void *pt, size_t ptlen,
             uint8_t **out, size_t *outlen);
/* Open a sealed blob; -1 when too short or the GCM tag fails (wrong key,
 * tampered bytes, wrong aad).  *pt is malloc'd and NUL-terminated. */
int cli_open(cli_key *key, const char *aad, const uint8_t *in, size_t inlen, char **pt,
             size_t *ptlen);

/* CF-2/CF-3: three-way merge of task objects over the mergeable field mask.
 * base may be NULL (created offline: base reads as a fresh task's
 * defaults).  Returns the merged task (new reference; starts as a copy of
 * current, so id/revision/updated_by/deleted are theirs) and fills
 * *conflicts with the field bits changed on both sides to different values;
 * for those fields the result holds THEIR value (the "merge" choice). */
json_t *cli_merge3(const json_t *base, const json_t *local, const json_t *current,
                   unsigned mergeable, unsigned *conflicts);

/* The "sub" claim of a JWT, decoded without verification, or NULL.
 * Malloc'd. */
char *cli_token_sub(const char *token);

#endif
