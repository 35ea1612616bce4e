/* Unit tests for protocol/hp_jwt.c: HS256 pinned, claims, no leeway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <jwt.h>

#include "hp_jwt.h"

#define SECRET "test-secret-0123456789"
#define NOW_S 1795600800LL
#define NOW_MS (NOW_S * 1000)

/* ---- helpers ---- */

static char *b64url(const char *in, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n * 4 / 3 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | (unsigned char)in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = al[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = al[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return out;
}

/* header.payload.sig from raw JSON texts and a literal signature part. */
static char *craft(const char *hdr, const char *payload, const char *sig)
{
    char *h = b64url(hdr, strlen(hdr));
    char *p = b64url(payload, strlen(payload));
    char *t = malloc(strlen(h) + strlen(p) + strlen(sig) + 3);
    sprintf(t, "%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return t;
}

/* A token signed by libjwt with any alg and any grants JSON. */
static char *mint_raw(jwt_alg_t alg, const char *secret, const char *grants)
{
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)secret, (int)strlen(secret)), 0);
    assert_int_equal(jwt_add_grants_json(j, grants), 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(t);
    return t;
}

static json_t *payload_of(const char *tok)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    /* decode via a tiny base64url decoder */
    size_t n = (size_t)(d2 - d1 - 1);
    char *out = calloc(1, n + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = d1[1 + i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                                       : 63;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(j);
    return j;
}

static void expect_refused(const char *secret, const char *tok, int64_t now_ms, const char *want)
{
    hp_claims c;
    const char *reason = "unset";
    char msg[128] = "";
    int rc = hp_jwt_verify(secret, tok, now_ms, &c, &reason, msg, sizeof msg);
    if (rc != -1)
        fail_msg("token %s accepted, wanted %s", tok ? tok : "(null)", want);
    if (!reason || strcmp(reason, want) != 0)
        fail_msg("token refused with %s (%s), wanted %s", reason ? reason : "(null)", msg, want);
    assert_true(msg[0] != '\0');
    /* reason and message may be NULL */
    assert_int_equal(hp_jwt_verify(secret, tok, now_ms, NULL, NULL, NULL, 0), -1);
}

/* ---- tests ---- */

static void test_valid(void **st)
{
    (void)st;
    char *t = hp_jwt_mint(SECRET, "alice", "house-1", "phone", NOW_S - 10, NOW_S + 3600);
    assert_non_null(t);
    hp_claims c;
    const char *reason = "x";
    char msg[64] = "x";
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_MS, &c, &reason, msg, sizeof msg), 0);
    assert_string_equal(c.sub, "alice");
    assert_string_equal(c.hh, "house-1");
    assert_string_equal(c.dev, "phone");
    assert_int_equal(c.exp, NOW_S + 3600);
    assert_int_equal(c.iat, NOW_S - 10);
    assert_int_equal(c.nbf, 0);
    assert_null(reason);
    assert_string_equal(msg, "");
    free(t);

    t = hp_jwt_mint(SECRET, "bob", "h2", NULL, 0, NOW_S + 1);
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_MS, &c, NULL, NULL, 0), 0);
    assert_string_equal(c.dev, "");
    assert_int_equal(c.iat, 0);
    free(t);
}

static void test_mint_adds_nothing_else(void **st)
{
    (void)st;
    char *t = hp_jwt_mint(SECRET, "alice", "h1", "d1", NOW_S, NOW_S + 60);
    json_t *p = payload_of(t);
    assert_int_equal(json_object_size(p), 5);
    assert_string_equal(json_string_value(json_object_get(p, "sub")), "alice");
    assert_string_equal(json_string_value(json_object_get(p, "hh")), "h1");
    assert_string_equal(json_string_value(json_object_get(p, "dev")), "d1");
    assert_int_equal(json_integer_value(json_object_get(p, "iat")), NOW_S);
    assert_int_equal(json_integer_value(json_object_get(p, "exp")), NOW_S + 60);
    json_decref(p);
    free(t);
    t = hp_jwt_mint(SECRET, "alice", "h1", NULL, 0, NOW_S + 60);
    p = payload_of(t);
    assert_int_equal(json_object_size(p), 3);
    assert_null(json_object_get(p, "dev"));
    assert_null(json_object_get(p, "iat"));
    json_decref(p);
    free(t);
    /* The header says HS256. */
    t = hp_jwt_mint(SECRET, "a", "h", NULL, 0, NOW_S + 60);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "%.*s", (int)(strchr(t, '.') - t), t);
    jwt_t *j = NULL;
    assert_int_equal(jwt_decode(&j, t, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);
    free(t);
    assert_null(hp_jwt_mint(NULL, "a", "h", NULL, 0, 1));
    assert_null(hp_jwt_mint("", "a", "h", NULL, 0, 1));
    assert_null(hp_jwt_mint(SECRET, NULL, "h", NULL, 0, 1));
    /* Claims verify would refuse are not minted (found by fuzz_jwt). */
    char big[129];
    memset(big, 'x', 128);
    big[128] = '\0';
    assert_null(hp_jwt_mint(SECRET, big, "h", NULL, 0, NOW_S + 60));
    assert_null(hp_jwt_mint(SECRET, "a", big, NULL, 0, NOW_S + 60));
    assert_null(hp_jwt_mint(SECRET, "a", "h", big, 0, NOW_S + 60));
    assert_null(hp_jwt_mint(SECRET, "", "h", NULL, 0, NOW_S + 60));
    assert_null(hp_jwt_mint(SECRET, "a", "", NULL, 0, NOW_S + 60));
    assert_null(hp_jwt_mint(SECRET, "a", "h", "", 0, NOW_S + 60));
    big[127] = '\0'; /* 127 bytes: the longest accepted */
    t = hp_jwt_mint(SECRET, big, big, big, 0, NOW_S + 60);
    assert_non_null(t);
    hp_claims c127;
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_S * 1000, &c127, NULL, NULL, 0), 0);
    assert_string_equal(c127.sub, big);
    free(t);
    assert_null(hp_jwt_mint(SECRET, "a", NULL, NULL, 0, 1));
}

static void test_expiry_boundary(void **st)
{
    (void)st;
    char *t = hp_jwt_mint(SECRET, "alice", "h1", NULL, 0, NOW_S);
    /* No leeway: valid until the last ms before exp, expired at exp. */
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_MS - 1, NULL, NULL, NULL, 0), 0);
    expect_refused(SECRET, t, NOW_MS, "expired");
    expect_refused(SECRET, t, NOW_MS + 3600000, "expired");
    free(t);
    /* Far-future exp does not overflow into the past. */
    t = mint_raw(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":9223372036854775807}");
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_MS, NULL, NULL, NULL, 0), 0);
    free(t);
    t = mint_raw(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":-5}");
    expect_refused(SECRET, t, NOW_MS, "expired");
    free(t);
}

static void test_nbf(void **st)
{
    (void)st;
    char grants[256];
    snprintf(grants, sizeof grants, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":%lld,\"nbf\":%lld}",
             NOW_S + 600, NOW_S + 60);
    char *t = mint_raw(JWT_ALG_HS256, SECRET, grants);
    expect_refused(SECRET, t, NOW_MS, "not_yet_valid");
    expect_refused(SECRET, t, (NOW_S + 60) * 1000 - 1, "not_yet_valid");
    hp_claims c;
    assert_int_equal(hp_jwt_verify(SECRET, t, (NOW_S + 60) * 1000, &c, NULL, NULL, 0), 0);
    assert_int_equal(c.nbf, NOW_S + 60);
    free(t);
}

static void test_iat_in_future(void **st)
{
    (void)st;
    char *t = hp_jwt_mint(SECRET, "alice", "h1", NULL, NOW_S + 1, NOW_S + 600);
    expect_refused(SECRET, t, NOW_MS, "iat_in_future");
    expect_refused(SECRET, t, NOW_MS + 999, "iat_in_future");
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_MS + 1000, NULL, NULL, NULL, 0), 0);
    free(t);
}

static void test_wrong_secret_and_tamper(void **st)
{
    (void)st;
    char *t = hp_jwt_mint(SECRET, "alice", "h1", NULL, 0, NOW_S + 600);
    expect_refused("another-secret", t, NOW_MS, "bad_signature");
    expect_refused(SECRET "x", t, NOW_MS, "bad_signature");
    /* Swap the payload for bob's, keep alice's signature. */
    char *other = hp_jwt_mint(SECRET, "bob", "h1", NULL, 0, NOW_S + 600);
    const char *sig = strrchr(t, '.');
    const char *d1 = strchr(other, '.');
    const char *d2 = strrchr(other, '.');
    char forged[1024];
    snprintf(forged, sizeof forged, "%.*s%s", (int)(d2 - other), other, sig);
    (void)d1;
    expect_refused(SECRET, forged, NOW_MS, "bad_signature");
    /* Strip the signature. */
    snprintf(forged, sizeof forged, "%.*s.", (int)(strrchr(t, '.') - t), t);
    expect_refused(SECRET, forged, NOW_MS, "bad_signature");
    /* Flip a signature character. */
    snprintf(forged, sizeof forged, "%s", t);
    char *last = forged + strlen(forged) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    expect_refused(SECRET, forged, NOW_MS, "bad_signature");
    /* Malleability: the last signature char has 2 unused bits; a variant
     * spelling that decodes to the same bytes is refused too. */
    snprintf(forged, sizeof forged, "%s", t);
    last = forged + strlen(forged) - 1;
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(al, *last) - al);
    *last = al[v ^ 1];
    expect_refused(SECRET, forged, NOW_MS, "bad_signature");
    /* A signature of the wrong length. */
    snprintf(forged, sizeof forged, "%sAAAA", t);
    expect_refused(SECRET, forged, NOW_MS, "bad_signature");
    /* No secret configured: never accepted (libjwt would skip the check). */
    expect_refused("", t, NOW_MS, "bad_signature");
    expect_refused(NULL, t, NOW_MS, "bad_signature");
    free(t);
    free(other);
}

static void test_alg_none(void **st)
{
    (void)st;
    char payload[256];
    snprintf(payload, sizeof payload, "{\"sub\":\"alice\",\"hh\":\"h1\",\"exp\":%lld}", NOW_S + 600);
    char *t = craft("{\"alg\":\"none\"}", payload, "");
    assert_true(strncmp(t, "eyJhbGciOiJub25lIn0.", 20) == 0);
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    t = craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "");
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    /* A none token with a bogus signature part is refused too. */
    t = craft("{\"alg\":\"none\"}", payload, "abc");
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    /* Case variants and other algs. */
    t = craft("{\"alg\":\"hs256\"}", payload, "abc");
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    t = craft("{\"alg\":\"RS256\"}", payload, "abc");
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    t = craft("{\"typ\":\"JWT\"}", payload, "abc");
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    t = craft("{\"alg\":256}", payload, "abc");
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
}

static void test_hs512_same_secret(void **st)
{
    (void)st;
    char grants[256];
    snprintf(grants, sizeof grants, "{\"sub\":\"alice\",\"hh\":\"h1\",\"exp\":%lld}", NOW_S + 600);
    char *t = mint_raw(JWT_ALG_HS512, SECRET, grants);
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    t = mint_raw(JWT_ALG_HS384, SECRET, grants);
    expect_refused(SECRET, t, NOW_MS, "alg_not_allowed");
    free(t);
    /* The same grants under HS256 pass (the test can fail). */
    t = mint_raw(JWT_ALG_HS256, SECRET, grants);
    assert_int_equal(hp_jwt_verify(SECRET, t, NOW_MS, NULL, NULL, NULL, 0), 0);
    free(t);
}

static void test_garbage(void **st)
{
    (void)st;
    expect_refused(SECRET, NULL, NOW_MS, "missing");
    expect_refused(SECRET, "", NOW_MS, "missing");
    const char *bad[] = {
        "abc",
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "!!!.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.a b",
        "eyJhbGciOiJIUzI1NiJ9.eyJ=.c",
        "bm90IGpzb24.e30.c",                 /* header "not json" */
        "WzFd.e30.c",                        /* header [1] */
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c", /* payload not JSON */
        "eyJhbGciOiJIUzI1NiJ9.WzFd.c",       /* payload an array */
        "eyJhbGciOiJIUzI1NiJ9.A.c",          /* impossible base64 length */
        "...",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(SECRET, bad[i], NOW_MS, "malformed");
    /* A very long token does not crash. */
    size_t n = 200000;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    big[1000] = '.';
    big[2000] = '.';
    expect_refused(SECRET, big, NOW_MS, "malformed");
    free(big);
}

static void test_missing_claims(void **st)
{
    (void)st;
    const char *cases[] = {
        "{\"hh\":\"h\",\"exp\":9999999999}",
        "{\"sub\":\"a\",\"exp\":9999999999}",
        "{\"sub\":\"a\",\"hh\":\"h\"}",
        "{\"sub\":\"\",\"hh\":\"h\",\"exp\":9999999999}",
        "{\"sub\":5,\"hh\":\"h\",\"exp\":9999999999}",
        "{\"sub\":\"a\",\"hh\":null,\"exp\":9999999999}",
        "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":\"9999999999\"}",
        "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":9999999999.5}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = mint_raw(JWT_ALG_HS256, SECRET, cases[i]);
        expect_refused(SECRET, t, NOW_MS, "missing_claim");
        free(t);
    }
    /* A sub too long for the claims buffer is refused rather than cut. */
    char grants[512];
    char longsub[200];
    memset(longsub, 'u', 150);
    longsub[150] = '\0';
    snprintf(grants, sizeof grants, "{\"sub\":\"%s\",\"hh\":\"h\",\"exp\":9999999999}", longsub);
    char *t = mint_raw(JWT_ALG_HS256, SECRET, grants);
    expect_refused(SECRET, t, NOW_MS, "missing_claim");
    free(t);
    /* Wrong-typed optional claims. */
    t = mint_raw(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":9999999999,\"nbf\":\"0\"}");
    expect_refused(SECRET, t, NOW_MS, "malformed");
    free(t);
    t = mint_raw(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":9999999999,\"iat\":1.5}");
    expect_refused(SECRET, t, NOW_MS, "malformed");
    free(t);
    t = mint_raw(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":9999999999,\"dev\":7}");
    expect_refused(SECRET, t, NOW_MS, "malformed");
    free(t);
}

/* hp_jwt_peek_sub: the client's unverified read of "sub" for log lines. */
static void expect_peek(const char *tok, const char *want)
{
    char *s = hp_jwt_peek_sub(tok);
    if (!want) {
        if (s)
            fail_msg("peek of %s gave '%s', wanted NULL", tok ? tok : "(null)", s);
        return;
    }
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_peek_sub(void **st)
{
    (void)st;
    /* A minted token, an expired one and one with a wrong signature: all
     * readable - nothing is verified. */
    char *t = hp_jwt_mint(SECRET, "alice", "h1", NULL, 0, NOW_S + 60);
    expect_peek(t, "alice");
    free(t);
    t = hp_jwt_mint(SECRET, "bob", "h1", "d1", NOW_S - 120, NOW_S - 60);
    expect_peek(t, "bob");
    free(t);
    t = mint_raw(JWT_ALG_HS256, "another-secret", "{\"sub\":\"carol\",\"hh\":\"h\"}");
    expect_peek(t, "carol");
    free(t);
    t = craft("{\"alg\":\"none\"}", "{\"sub\":\"dave\"}", "");
    expect_peek(t, "dave");
    free(t);
    /* Not a decodable JWT, or no string sub: NULL. */
    expect_peek(NULL, NULL);
    expect_peek("", NULL);
    expect_peek("abc", NULL);
    expect_peek("a..c", NULL);
    expect_peek("a.!!!.c", NULL);
    expect_peek("a.e.c", NULL); /* impossible base64url length */
    const char *payloads[] = {"[\"sub\"]", "{\"sub\":7}", "{\"hh\":\"h\"}", "{\"sub\":"};
    for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
        t = craft("{}", payloads[i], "x");
        expect_peek(t, NULL);
        free(t);
    }
}

/* The simulator's memo (hp_jwt_verify_memo): the same answer as
 * hp_jwt_verify() for every token and clock, on the first call (which
 * fills it) and on later ones (which hit it); a remembered token still
 * expires, still waits for nbf and iat; a token with another secret is
 * not taken from the memo; past 64 entries the oldest go. */
static void same_answer(hp_jwt_memo *m, const char *secret, const char *tok, int64_t now_ms)
{
    hp_claims a, b;
    memset(&a, 0x55, sizeof a);
    memset(&b, 0x55, sizeof b);
    const char *ra = "unset", *rb = "unset";
    char ma[128] = "unset", mb[128] = "unset";
    int rca = hp_jwt_verify(secret, tok, now_ms, &a, &ra, ma, sizeof ma);
    int rcb = hp_jwt_verify_memo(m, secret, tok, now_ms, &b, &rb, mb, sizeof mb);
    assert_int_equal(rca, rcb);
    assert_true(ra == rb || (ra && rb && !strcmp(ra, rb)));
    assert_string_equal(ma, mb);
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_memo_same_answers(void **st)
{
    (void)st;
    hp_jwt_memo *m = hp_jwt_memo_new();
    assert_non_null(m);
    char grants[256];
    snprintf(grants, sizeof grants, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":%lld,\"nbf\":%lld}",
             NOW_S + 600, NOW_S + 60);
    char *toks[] = {
        hp_jwt_mint(SECRET, "alice", "house-1", "phone", NOW_S - 10, NOW_S + 3600),
        hp_jwt_mint(SECRET, "bob", "h2", NULL, 0, NOW_S),
        hp_jwt_mint(SECRET, "carol", "h1", NULL, NOW_S + 1, NOW_S + 600),
        mint_raw(JWT_ALG_HS256, SECRET, grants),
        hp_jwt_mint("another-secret", "mallory", "h1", NULL, 0, NOW_S + 600),
        mint_raw(JWT_ALG_HS512, SECRET, "{\"sub\":\"a\",\"hh\":\"h\",\"exp\":9999999999}"),
        strdup("not.a.token"),
    };
    int64_t times[] = {NOW_MS - 1, NOW_MS, NOW_MS + 999, (NOW_S + 60) * 1000,
                       (NOW_S + 600) * 1000, (NOW_S + 3600) * 1000};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof toks / sizeof *toks; i++)
            for (size_t k = 0; k < sizeof times / sizeof *times; k++) {
                same_answer(m, SECRET, toks[i], times[k]);
                same_answer(m, "another-secret", toks[i], times[k]);
            }
    same_answer(m, SECRET, NULL, NOW_MS);
    same_answer(m, SECRET, "", NOW_MS);
    same_answer(m, "", toks[0], NOW_MS);
    /* more tokens than entries: the oldest are replaced, answers unchanged */
    for (int i = 0; i < 70; i++) {
        char sub[16];
        snprintf(sub, sizeof sub, "u%d", i);
        char *t = hp_jwt_mint(SECRET, sub, "h", NULL, 0, NOW_S + 10 + i);
        same_answer(m, SECRET, t, NOW_MS);
        same_answer(m, SECRET, t, (NOW_S + 10 + i) * 1000);
        free(t);
    }
    for (size_t i = 0; i < sizeof toks / sizeof *toks; i++) {
        same_answer(m, SECRET, toks[i], NOW_MS);
        free(toks[i]);
    }
    hp_jwt_memo_free(m);
    hp_jwt_memo_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_mint_adds_nothing_else),
        cmocka_unit_test(test_expiry_boundary),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_iat_in_future),
        cmocka_unit_test(test_wrong_secret_and_tamper),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs512_same_secret),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_missing_claims),
        cmocka_unit_test(test_peek_sub),
        cmocka_unit_test(test_memo_same_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
