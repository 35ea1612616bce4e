/*
 * srv_idem.c - Idempotency-Key handling (Q-3 server part, SPEC §3), as in
 * the IETF httpapi Idempotency-Key draft.
 *
 * A key is bound to the request it first came with: its method, its path
 * and query, and a fingerprint of its body.  srv_idem_check() runs before
 * anything is read or written:
 *   - no key                     -> go on, nothing stored;
 *   - a bad key (400)            -> answered;
 *   - a live record, same request -> the stored first result is answered
 *                                   again, nothing applied;
 *   - a live record, other request -> 422 idempotency_key_reused, nothing
 *                                   applied (a key is never re-targeted);
 *   - no live record             -> go on; the caller stores the 2xx result
 *                                   with srv_store_idem_put() in the write's
 *                                   own transaction.
 * Records live policy.idempotency_window_ms (24 h by default, LIMITS.md);
 * an older record is ignored and trimmed at the next keyed write.
 *
 * Inputs: the request (borrowed) and its claims.  Outputs: at most one
 * response pushed; *out filled with the key and fingerprint (borrowed /
 * owned by the caller's srv_idem struct).
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_jload.h"
#include "hp_msg.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The body's fingerprint: SHA-256 of "METHOD path?query\n" + the body in a
 * canonical form (JSON parsed and dumped compact with sorted keys, so a
 * client that re-serializes its retry in another key order or spacing is
 * still recognised), or its raw bytes when it is not JSON.  A "j"/"r" tag
 * keeps the two forms apart.  Written as 64 hex characters + NUL.
 * parsed: the body as the handler parsed it (duplicate keys refused), or
 * NULL; where that parse succeeded this one would give the same tree, so
 * the body is not parsed a second time.
 */
static int fingerprint(srv_core *c, const srv_http_req *q, const char *method, const char *path,
                       const json_t *parsed, char out[65])
{
    /* The algorithm fetched once per core and one context reused: through
     * EVP_sha256() every EVP_DigestInit_ex() looked the implementation up
     * again, and a context per request was made and freed (together more
     * than the hashing itself, callgrind, suite bench).  Same digest. */
    if (!c->sha256)
        c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (c->sha256 && !c->sha_ctx)
        c->sha_ctx = EVP_MD_CTX_new();
    EVP_MD_CTX *ctx = c->sha_ctx;
    if (!ctx)
        return -1;
    int ok = EVP_DigestInit_ex2(ctx, c->sha256, NULL) == 1;
    ok = ok && EVP_DigestUpdate(ctx, method, strlen(method)) == 1;
    ok = ok && EVP_DigestUpdate(ctx, " ", 1) == 1;
    ok = ok && EVP_DigestUpdate(ctx, path, strlen(path)) == 1;
    if (q->query && *q->query) {
        ok = ok && EVP_DigestUpdate(ctx, "?", 1) == 1;
        ok = ok && EVP_DigestUpdate(ctx, q->query, strlen(q->query)) == 1;
    }
    ok = ok && EVP_DigestUpdate(ctx, "\n", 1) == 1;
    json_t *root = parsed ? NULL
                   : q->body && q->body_len ? hp_json_loadb(q->body, q->body_len, JSON_DECODE_ANY, NULL)
                                            : NULL;
    const json_t *tree = parsed ? parsed : root;
    char *canon = tree ? hp_json_dump(tree) : NULL;
    json_decref(root);
    if (canon) {
        ok = ok && EVP_DigestUpdate(ctx, "j", 1) == 1;
        ok = ok && EVP_DigestUpdate(ctx, canon, strlen(canon)) == 1;
    } else {
        ok = ok && EVP_DigestUpdate(ctx, "r", 1) == 1;
        if (q->body && q->body_len)
            ok = ok && EVP_DigestUpdate(ctx, q->body, q->body_len) == 1;
    }
    free(canon);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    if (!ok)
        return -1;
    /* lower-case hex, as "%02x" per byte wrote it (once per request) */
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int srv_idem_check(srv_core *c, const srv_http_req *q, const json_t *parsed, const char *method,
                   const char *path, const hp_claims *cl, srv_idem *out, int *status, char **body,
                   char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    *status = 0;
    *body = NULL;
    const char *k = q->idem_key;
    if (!k || !*k)
        return 0;
    size_t n = strlen(k);
    int printable = n <= SRV_IDEM_KEY_MAX;
    for (size_t i = 0; printable && i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            printable = 0;
    if (!printable) {
        *status = 400;
        snprintf(msg, msglen, "Idempotency-Key must be 1-%d printable ASCII characters",
                 SRV_IDEM_KEY_MAX);
        return 1;
    }
    if (fingerprint(c, q, method, path, parsed, out->fp) != 0) {
        *status = 503;
        snprintf(msg, msglen, "cannot fingerprint the request");
        return -1;
    }
    snprintf(out->request, sizeof out->request, "%.16s %.200s", method, path);
    int64_t now = srv_now(c);
    int64_t since = now - c->pol.idempotency_window_ms;
    srv_idem_rec rec;
    int got = srv_store_idem_get(c->st, cl->hh, cl->sub, k, since, &rec);
    if (got < 0) {
        *status = 503;
        snprintf(msg, msglen, "storage unavailable, retry later");
        return -1;
    }
    if (got == 1 && strcmp(rec.fingerprint, out->fp) == 0) {
        /* the same request again: the first result, nothing applied. */
        hp_log(&c->env, HP_LOG_INFO, "idempotent_replay", "method=%.16s path=%.200s user=%s hh=%s dev=%s",
               method, path, cl->sub, cl->hh, srv_dash(cl->dev));
        *status = rec.status;
        *body = rec.body;
        free(rec.request);
        return 1;
    }
    if (got == 1) {
        /* Q-3 (IETF draft): a key is never re-targeted to another request. */
        hp_log(&c->env, HP_LOG_WARNING, "idempotency_key_reused",
               "method=%.16s path=%.200s user=%s first=\"%.220s\" hh=%s dev=%s", method, path,
               cl->sub, rec.request ? rec.request : "?", cl->hh, srv_dash(cl->dev));
        *status = 422;
        snprintf(msg, msglen,
                 "Idempotency-Key was first used for %.220s with another body or target; "
                 "a key may only be retried with the same request (nothing was applied)",
                 rec.request ? rec.request : "another request");
        free(rec.request);
        free(rec.body);
        return 1;
    }
    out->key = k;
    return 0;
}

int srv_idem_store(srv_core *c, const srv_idem *id, const hp_claims *cl, int status,
                   const char *body)
{
    if (!id || !id->key)
        return 0;
    int64_t now = srv_now(c);
    return srv_store_idem_put(c->st, cl->hh, cl->sub, id->key, id->request, id->fp, now,
                              now - c->pol.idempotency_window_ms, status, body);
}

void srv_idem_free(srv_core *c)
{
    EVP_MD_CTX_free(c->sha_ctx);
    EVP_MD_free(c->sha256);
    c->sha_ctx = NULL;
    c->sha256 = NULL;
}
