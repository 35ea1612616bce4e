/*
 * cli_crypto.c - C-3 sealing of stored task values (AES-256-GCM, OpenSSL
 * EVP) and the unverified read of a token's "sub" claim (via hp_jwt).
 */
#include "cli_internal.h"
#include "hp_jwt.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/*
 * C-3: seal pt with key, a fresh 96-bit nonce and aad.  The nonce is drawn
 * from env->rng when present so simulated runs are byte-identical; the real
 * program seeds that PRNG from the OS (see docs), so nonces do not repeat
 * across runs in practice.  Returns 0, or -1 on an OpenSSL failure.
 */
int cli_seal(const uint8_t key[32], const hp_env *env, const char *aad, const void *pt,
             size_t ptlen, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    uint8_t *buf = malloc(CLI_NONCE_LEN + ptlen + CLI_TAG_LEN + 1);
    if (!buf)
        return -1;
    if (env && env->rng) {
        uint64_t a = hp_rng_next(env->rng), b = hp_rng_next(env->rng);
        memcpy(buf, &a, 8);
        memcpy(buf + 8, &b, 4);
    } else if (RAND_bytes(buf, CLI_NONCE_LEN) != 1) {
        free(buf);
        return -1;
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL;
    int len = 0, total = 0;
    ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CLI_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, key, buf) == 1;
    if (ok && aad && *aad)
        ok = EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    if (ok && ptlen > 0) {
        ok = EVP_EncryptUpdate(ctx, buf + CLI_NONCE_LEN, &len, pt, (int)ptlen) == 1;
        total = len;
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, buf + CLI_NONCE_LEN + total, &len) == 1;
    if (ok)
        total += len;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CLI_TAG_LEN,
                                   buf + CLI_NONCE_LEN + total) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = (size_t)CLI_NONCE_LEN + (size_t)total + CLI_TAG_LEN;
    return 0;
}

/* C-3: open; any failure (short blob, bad tag) is -1, never a crash. */
int cli_open(const uint8_t key[32], const char *aad, const uint8_t *in, size_t inlen, char **pt,
             size_t *ptlen)
{
    *pt = NULL;
    if (ptlen)
        *ptlen = 0;
    if (!in || inlen < CLI_NONCE_LEN + CLI_TAG_LEN || inlen > (size_t)1 << 30)
        return -1;
    size_t clen = inlen - CLI_NONCE_LEN - CLI_TAG_LEN;
    char *buf = malloc(clen + 1);
    if (!buf)
        return -1;
    uint8_t tag[CLI_TAG_LEN];
    memcpy(tag, in + CLI_NONCE_LEN + clen, CLI_TAG_LEN);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL;
    int len = 0, total = 0;
    ok = ok && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CLI_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_DecryptInit_ex(ctx, NULL, NULL, key, in) == 1;
    if (ok && aad && *aad)
        ok = EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    if (ok && clen > 0) {
        ok = EVP_DecryptUpdate(ctx, (unsigned char *)buf, &len, in + CLI_NONCE_LEN, (int)clen) == 1;
        total = len;
    }
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CLI_TAG_LEN, tag) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, (unsigned char *)buf + total, &len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        free(buf);
        return -1;
    }
    total += len;
    buf[total] = '\0';
    *pt = buf;
    if (ptlen)
        *ptlen = (size_t)total;
    return 0;
}

/*
 * The user name for log lines (CF-4): the token's unverified "sub" (the
 * client has no secret; hp_jwt_peek_sub).  A malformed token just yields
 * NULL, which the core logs as "unknown".
 */
char *cli_token_sub(const char *token)
{
    return hp_jwt_peek_sub(token);
}
