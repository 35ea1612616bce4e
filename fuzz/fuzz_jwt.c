/*
 * fuzz_jwt.c - HS256 tokens (protocol/hp_jwt.c).
 *
 * Input: any bytes.  1) The whole input as a token: verified with the
 * fixed secret (it must never verify unless it carries the secret's
 * signature, which the fuzzer cannot make: any acceptance of a token that
 * is not one we minted is a finding), and peeked for its sub.
 * 2) The input split at '\n' into sub, hh, dev: a token minted from them
 * either is refused (NULL) or verifies to the same claims - a minted
 * token the server refuses is a finding (issue 11: `token --sub <500
 * chars>`).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fz_util.h"
#include "hp_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024)
        return -1;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';

    hp_claims cl;
    const char *reason = NULL;
    char msg[256];
    int now_s = 1800000000;
    if (hp_jwt_verify(FZ_SECRET, s, (int64_t)now_s * 1000, &cl, &reason, msg, sizeof msg) == 0) {
        /* Only a token signed with FZ_SECRET verifies: the fuzzer can only
         * have copied one from the seeds (tokens/ in the corpus). */
        FZ_CHECK(cl.sub[0] && cl.hh[0], "verified token without sub/hh");
    } else {
        FZ_CHECK(reason != NULL, "refusal without a reason");
    }
    free(hp_jwt_peek_sub(s));

    char *parts[3] = {s, NULL, NULL};
    for (int i = 1; i < 3; i++) {
        char *nl = parts[i - 1] ? strchr(parts[i - 1], '\n') : NULL;
        if (nl) {
            *nl = '\0';
            parts[i] = nl + 1;
        }
    }
    const char *sub = parts[0], *hh = parts[1] ? parts[1] : "home", *dev = parts[2];
    char *tok = hp_jwt_mint(FZ_SECRET, sub, hh, dev, now_s, (int64_t)now_s + 3600);
    if (tok) {
        int rc = hp_jwt_verify(FZ_SECRET, tok, (int64_t)now_s * 1000, &cl, &reason, msg, sizeof msg);
        FZ_CHECK(rc == 0, "minted token refused (%s: %s) for sub of %zu bytes, hh of %zu",
                 reason ? reason : "?", msg, strlen(sub), strlen(hh));
        FZ_CHECK(strcmp(cl.sub, sub) == 0 && strcmp(cl.hh, hh) == 0 &&
                     strcmp(cl.dev, dev ? dev : "") == 0,
                 "minted claims came back changed");
        char *peek = hp_jwt_peek_sub(tok);
        FZ_CHECK(peek && strcmp(peek, sub) == 0, "peek_sub of a minted token");
        free(peek);
        free(tok);
    }
    free(s);
    return 0;
}
