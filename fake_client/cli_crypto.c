/*
 * cli_crypto.c - C-3 sealing of stored task values (AES-256-GCM, OpenSSL
 * EVP) and the unverified read of a token's "sub" claim (via hp_jwt).
 */
#include "cli_internal.h"
#include "hp_jwt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/*
 * A store's key with its AES-256-GCM contexts.  Setting a key up (the
 * implicit cipher fetch, the context, the AES key schedule and the GHASH
 * table) cost far more than sealing one small task value, and it happened
 * on every seal and open; now it happens once per direction and key, and
 * each seal/open only gives the context its nonce.  The contexts are made
 * on first use, so a store that only reads never builds the sealing one.
 * Not thread-safe: one store, one thread at a time (cli_store.h).
 */
struct cli_key {
    uint8_t key[32];
    EVP_CIPHER_CTX *enc; /* NULL until the first seal */
    EVP_CIPHER_CTX *dec; /* NULL until the first open */
};

cli_key *cli_key_new(const uint8_t key[32])
{
    cli_key *k = calloc(1, sizeof *k);
    if (k)
        memcpy(k->key, key, 32);
    return k;
}

void cli_key_free(cli_key *k)
{
    if (!k)
        return;
    EVP_CIPHER_CTX_free(k->enc); /* wipes the key schedule */
    EVP_CIPHER_CTX_free(k->dec);
    OPENSSL_cleanse(k->key, sizeof k->key);
    free(k);
}

/* The context of one direction with the key set and no nonce yet; made on
 * first use.  NULL on an OpenSSL failure (nothing kept, the next call
 * tries again). */
static EVP_CIPHER_CTX *key_ctx(cli_key *k, int enc)
{
    EVP_CIPHER_CTX **slot = enc ? &k->enc : &k->dec;
    if (*slot)
        return *slot;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL;
    ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CLI_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, k->key, NULL, enc) == 1;
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return *slot = ctx;
}

/*
 * C-3: seal pt with key, a fresh 96-bit nonce and aad.  The nonce is drawn
 * from env->rng when present so simulated runs are byte-identical; the real
 * program seeds that PRNG from the OS (see docs), so nonces do not repeat
 * across runs in practice.  Returns 0, or -1 on an OpenSSL failure.
 */
int cli_seal(cli_key *key, const hp_env *env, const char *aad, const void *pt, size_t ptlen,
             uint8_t **out, size_t *outlen)
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
    EVP_CIPHER_CTX *ctx = key_ctx(key, 1);
    int ok = ctx != NULL;
    int len = 0, total = 0;
    /* The key stays set: a new nonce restarts GCM (counter, GHASH, tag). */
    ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, buf) == 1;
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
    if (!ok) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = (size_t)CLI_NONCE_LEN + (size_t)total + CLI_TAG_LEN;
    return 0;
}

/* C-3: open; any failure (short blob, bad tag) is -1, never a crash.  A
 * failed open leaves the context reusable: the next nonce restarts it. */
int cli_open(cli_key *key, const char *aad, const uint8_t *in, size_t inlen, char **pt,
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
    EVP_CIPHER_CTX *ctx = key_ctx(key, 0);
    int ok = ctx != NULL;
    int len = 0, total = 0;
    ok = ok && EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, in) == 1;
    if (ok && aad && *aad)
        ok = EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    if (ok && clen > 0) {
        ok = EVP_DecryptUpdate(ctx, (unsigned char *)buf, &len, in + CLI_NONCE_LEN, (int)clen) == 1;
        total = len;
    }
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CLI_TAG_LEN, tag) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, (unsigned char *)buf + total, &len) == 1;
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
 * The last "sub" claims read, by the token's header and payload (the part
 * before its second '.'; the claim comes from the payload alone): the
 * simulator starts a client core per client per world with the same few
 * tokens, and decoding one (base64, JSON) cost 1.7 M Ir per suite run.
 * The signature is not kept, so nothing here is a token a server would
 * accept.  Kept until the process ends (reachable: not a leak); one mutex.
 */
enum { SUB_MEMO = 16 };
static struct {
    char *key;  /* malloc'd header.payload; NULL = free slot */
    size_t n;   /* its length */
    char *sub;  /* malloc'd claim, or NULL when the token has none */
} sub_memo[SUB_MEMO];
static int sub_next; /* the slot the next new key replaces (round robin) */
static pthread_mutex_t sub_mu = PTHREAD_MUTEX_INITIALIZER;

/* *out = a new copy of the memo's claim for key[0..n); 1 when found. */
static int sub_find(const char *key, size_t n, char **out)
{
    int found = 0;
    pthread_mutex_lock(&sub_mu);
    for (int i = 0; i < SUB_MEMO && !found; i++) {
        if (sub_memo[i].key && sub_memo[i].n == n && memcmp(sub_memo[i].key, key, n) == 0) {
            *out = sub_memo[i].sub ? strdup(sub_memo[i].sub) : NULL;
            found = !sub_memo[i].sub || *out; /* a failed copy: decoded again */
        }
    }
    pthread_mutex_unlock(&sub_mu);
    return found;
}

/* Remembers sub (may be NULL) for key[0..n); out of memory: not kept. */
static void sub_keep(const char *key, size_t n, const char *sub)
{
    char *k = malloc(n + 1), *v = sub ? strdup(sub) : NULL;
    if (!k || (sub && !v)) {
        free(k);
        free(v);
        return;
    }
    memcpy(k, key, n);
    k[n] = '\0';
    pthread_mutex_lock(&sub_mu);
    free(sub_memo[sub_next].key);
    free(sub_memo[sub_next].sub);
    sub_memo[sub_next].key = k;
    sub_memo[sub_next].n = n;
    sub_memo[sub_next].sub = v;
    sub_next = (sub_next + 1) % SUB_MEMO;
    pthread_mutex_unlock(&sub_mu);
}

/*
 * The user name for log lines (CF-4): the token's unverified "sub" (the
 * client has no secret; hp_jwt_peek_sub).  A malformed token just yields
 * NULL, which the core logs as "unknown".
 */
char *cli_token_sub(const char *token)
{
    const char *p = token ? strchr(token, '.') : NULL;
    const char *e = p ? strchr(p + 1, '.') : NULL;
    if (!e)
        return hp_jwt_peek_sub(token); /* no signature part: not remembered */
    size_t n = (size_t)(e - token);
    char *r = NULL;
    if (sub_find(token, n, &r))
        return r;
    r = hp_jwt_peek_sub(token);
    sub_keep(token, n, r);
    return r;
}
