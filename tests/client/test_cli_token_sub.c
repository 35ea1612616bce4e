/*
 * test_cli_token_sub.c - cli_token_sub() (CF-4's user name) with its memo
 * (cli_crypto.c) answers as hp_jwt_peek_sub() does: the same token again,
 * another signature, other payloads, no claim, no signature part, and more
 * tokens than the memo holds.
 */
#define _GNU_SOURCE
#include "cli_fx.h"
#include "cli_internal.h"
#include "hp_jwt.h"

/* cli_token_sub(tok) equals hp_jwt_peek_sub(tok) (both NULL, or equal). */
static void same(const char *tok)
{
    char *a = cli_token_sub(tok), *b = hp_jwt_peek_sub(tok);
    if (!b)
        assert_null(a);
    else
        assert_string_equal(a, b);
    free(a);
    free(b);
}

static void test_memo_answers_as_decoding(void **state)
{
    (void)state;
    static const char *const toks[] = {
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln", /* alice */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.b3RoZXI", /* alice, another signature */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln", /* bob */
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjV9.c2ln", /* no sub */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ", /* no signature part */
        "eyJhbGciOiJIUzI1NiJ9..c2ln", "nodots", "", "a.b.c", NULL,
    };
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
            same(toks[i]);
    char *a = cli_token_sub(toks[0]);
    assert_string_equal(a, "alice");
    free(a);
    a = cli_token_sub(toks[2]);
    assert_string_equal(a, "bob");
    free(a);
    assert_null(cli_token_sub(toks[3]));
    /* More distinct tokens than the memo keeps, twice over: old ones are
     * replaced, never answered for another key. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40; i++) {
            char tok[64];
            /* bob and eve: keys of one length; "x": a payload that does not decode */
            snprintf(tok, sizeof tok, "eyJhbGciOiJIUzI1NiJ9.%s%s.c2ln",
                     i % 3 ? "eyJzdWIiOiJib2IifQ" : "eyJzdWIiOiJldmUifQ", i % 2 ? "" : "x");
            tok[5] = (char)('A' + i % 26); /* other headers, same payload */
            same(tok);
        }
        same(toks[0]);
        same(toks[3]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_answers_as_decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
