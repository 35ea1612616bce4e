/*
 * cli_crypto.c - C-3 sealing of stored task values (AES-256-GCM, OpenSSL
 * EVP) and the unverified read of a token's "sub" claim.
 */
#include "cli_internal.h"

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

static int b64url_val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-' || ch == '+')
        return 62;
    if (ch == '_' || ch == '/')
        return 63;
    return -1;
}

/*
 * The user name for log lines (CF-4): the token's payload segment decoded
 * as base64url JSON, its "sub".  No verification - the client has no
 * secret; a malformed token just yields NULL.
 */
char *cli_token_sub(const char *token)
{
    if (!token)
        return NULL;
    const char *p = strchr(token, '.');
    if (!p)
        return NULL;
    p++;
    const char *e = strchr(p, '.');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || n > 8192)
        return NULL;
    unsigned char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '=')
            break;
        int v = b64url_val((unsigned char)p[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)out, o, 0, &jerr);
    free(out);
    char *sub = NULL;
    if (j && json_is_string(json_object_get(j, "sub")))
        sub = strdup(json_string_value(json_object_get(j, "sub")));
    json_decref(j);
    return sub;
}
