/*
 * hp_jwt.h - HS256 tokens.
 *
 * The algorithm is pinned: only HS256 with the shared secret is accepted;
 * "none", HS512, RS256... are refused.  Claims: sub, hh, exp required; dev
 * optional; nbf and iat honoured; no clock leeway; iat in the future refused.
 */
#ifndef HP_JWT_H
#define HP_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef struct hp_claims {
    char sub[128];   /* user */
    char hh[128];    /* household */
    char dev[128];   /* device, "" when absent */
    int64_t exp;     /* seconds since epoch */
    int64_t iat;     /* 0 when absent */
    int64_t nbf;     /* 0 when absent */
} hp_claims;

/*
 * Verify token against secret at now_ms.  Returns 0 and fills out, or -1
 * with reason set to a short machine word and a human text:
 *   "missing", "malformed", "bad_signature", "alg_not_allowed",
 *   "missing_claim", "expired", "not_yet_valid", "iat_in_future".
 * reason and message may be NULL.
 */
int hp_jwt_verify(const char *secret, const char *token, int64_t now_ms,
                  hp_claims *out, const char **reason, char *message, size_t msglen);

/*
 * A memo of tokens whose checks that depend on the token alone (shape, alg,
 * signature, claims) passed: hp_jwt_verify_memo() skips the HMAC and JSON
 * for a (secret, token) pair it has seen pass, and still checks exp, nbf
 * and iat against now_ms every time.  The results are those of
 * hp_jwt_verify() for every input.
 *
 * SIMULATOR ONLY.  A real server must not use it: comparing a presented
 * token with remembered ones is a timing side channel (strcmp stops at the
 * first differing byte).  The simulator has no attacker and a virtual clock;
 * there it saves a verification per request and per upgrade.  A memo is
 * direct-mapped (a new pair replaces the one in its slot, hp_jwt.c).
 *
 * hp_jwt_memo_new(): 64 slots, serves one thread, hp_jwt_memo_free() it.
 * hp_jwt_memo_process(): the one memo of the process (1024 slots, locked:
 * any thread may use it), made at the first call, never freed
 * (hp_jwt_memo_free() ignores it); NULL when out of memory.  The simulator
 * runs many worlds whose clients get the same tokens (same names, secret
 * and virtual start): a pair verified in one world is not verified again
 * in the next; sound because the static checks are a pure function of the
 * exact secret and token text, and the clock checks run every time.
 */
typedef struct hp_jwt_memo hp_jwt_memo;
hp_jwt_memo *hp_jwt_memo_new(void);
hp_jwt_memo *hp_jwt_memo_process(void);
void hp_jwt_memo_free(hp_jwt_memo *m);
/* hp_jwt_verify() through memo m (NULL: no memo, exactly hp_jwt_verify). */
int hp_jwt_verify_memo(hp_jwt_memo *m, const char *secret, const char *token, int64_t now_ms,
                       hp_claims *out, const char **reason, char *message, size_t msglen);

/* Mint an HS256 token.  dev may be NULL (no "dev" claim).  iat_s is written
 * as "iat" (0 = no "iat" claim); exp_s as "exp".  No other claim is added.
 * Returns a malloc'd string (free()) or NULL (NULL/empty secret, NULL sub/hh,
 * or a claim hp_jwt_verify would refuse: sub, hh and a non-NULL dev must be
 * 1 to 127 bytes). */
char *hp_jwt_mint(const char *secret, const char *sub, const char *hh, const char *dev,
                  int64_t iat_s, int64_t exp_s);

/* The sub claim of a token WITHOUT verifying it (the client has no secret):
 * only for naming the user in log lines, never for a decision.  Reads the
 * segment after the first '.' (up to the next '.' or the end) as canonical
 * base64url JSON.  Malloc'd (free()), NULL when the token is not a
 * decodable JWT (NULL token, no '.', empty or oversized payload, bad
 * base64url, not a JSON object, sub absent or not a string). */
char *hp_jwt_peek_sub(const char *token);

#endif
