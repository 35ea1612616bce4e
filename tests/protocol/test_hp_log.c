/* Unit tests for protocol/hp_log.c: format, level filter, redaction. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_log.h"
#include "hp_time.h"

/* A capturing sink: keeps formatted lines. */
typedef struct cap {
    int n;
    char lines[16][4096];
    hp_log_record last;
} cap;

static void cap_sink(void *ud, const hp_log_record *rec)
{
    cap *c = ud;
    if (c->n < 16)
        hp_log_format(rec, c->lines[c->n], sizeof c->lines[0]);
    c->last = *rec; /* pointers only valid during the call; scalars kept */
    c->n++;
}

static int64_t fake_clock(void *ud)
{
    return *(int64_t *)ud;
}

typedef struct fx {
    int64_t now;
    cap cap;
    hp_logger log;
    hp_env env;
} fx;

static int setup(void **st)
{
    fx *f = calloc(1, sizeof *f);
    f->now = 1795600800000LL; /* 2026-11-25T10:00:00.000Z */
    f->log.sink = cap_sink;
    f->log.ud = &f->cap;
    f->log.min_level = HP_LOG_DEBUG;
    f->env.now = fake_clock;
    f->env.clock_ud = &f->now;
    f->env.log = &f->log;
    f->env.actor = "fake_server";
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    free(*st);
    return 0;
}

static void test_line_format(void **st)
{
    fx *f = *st;
    hp_log(&f->env, HP_LOG_WARNING, "conflict", "entity=task/%s base=%d current=%d user=%s", "t1", 5,
           7, "alice");
    assert_int_equal(f->cap.n, 1);
    assert_string_equal(f->cap.lines[0], "2026-11-25T10:00:00.000Z WARNING fake_server conflict "
                                         "entity=task/t1 base=5 current=7 user=alice");
    assert_int_equal(f->cap.last.level, HP_LOG_WARNING);
    assert_int_equal(f->cap.last.time_ms, 1795600800000LL);

    /* No fields: no trailing space; the clock is the env's. */
    f->now += 1234;
    hp_log(&f->env, HP_LOG_INFO, "ws_open", NULL);
    assert_string_equal(f->cap.lines[1], "2026-11-25T10:00:01.234Z INFO fake_server ws_open");
}

/* The time text hp_log_format() keeps between records (only seconds and
 * milliseconds rewritten within a minute) is hp_time_format_utc()'s. */
static void test_format_time_sequence(void **st)
{
    (void)st;
    const int64_t t[] = {1795600800000LL, 1795600800000LL, 1795600801234LL, 1795600859999LL,
                         1795600860000LL, 1795600860001LL, 1795600799999LL, 1795600800000LL,
                         1795651199999LL, 1795651200000LL, 0, 59999, 60000, -1, -60001, -60000,
                         -59999, 253402300799999LL, 253402300800000LL, 253402300800001LL,
                         1795600800000LL, 1795600800500LL, 1795600810000LL};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        hp_log_record r = {.time_ms = t[i], .level = HP_LOG_INFO, .actor = "a", .msg = "m",
                           .fields = ""};
        char line[128], ts[64], want[128];
        hp_log_format(&r, line, sizeof line);
        hp_time_format_utc(t[i], ts, sizeof ts);
        snprintf(want, sizeof want, "%s INFO a m", ts);
        assert_string_equal(line, want);
    }
}

static void test_level_filter_and_drop(void **st)
{
    fx *f = *st;
    f->log.min_level = HP_LOG_WARNING;
    hp_log(&f->env, HP_LOG_DEBUG, "d", NULL);
    hp_log(&f->env, HP_LOG_INFO, "i", NULL);
    assert_int_equal(f->cap.n, 0);
    hp_log(&f->env, HP_LOG_WARNING, "w", NULL);
    hp_log(&f->env, HP_LOG_ERROR, "e", NULL);
    assert_int_equal(f->cap.n, 2);

    /* NULL logger, NULL sink, NULL env: dropped, no crash. */
    f->env.log = NULL;
    hp_log(&f->env, HP_LOG_ERROR, "x", "a=%d", 1);
    f->env.log = &f->log;
    f->log.sink = NULL;
    hp_log(&f->env, HP_LOG_ERROR, "x", "a=%d", 1);
    hp_log(NULL, HP_LOG_ERROR, "x", NULL);
    assert_int_equal(f->cap.n, 2);
}

static void test_null_actor_and_msg(void **st)
{
    fx *f = *st;
    f->env.actor = NULL;
    hp_log(&f->env, HP_LOG_INFO, NULL, "k=v");
    assert_int_equal(f->cap.n, 1);
    assert_string_equal(f->cap.lines[0], "2026-11-25T10:00:00.000Z INFO -  k=v");
}

static void test_token_never_reaches_sink(void **st)
{
    fx *f = *st;
    char *tok = hp_jwt_mint("s3cret", "alice", "h1", "phone", 1795600000, 1795700000);
    assert_non_null(tok);
    const char *sig = strrchr(tok, '.') + 1;
    char payload[512];
    const char *d1 = strchr(tok, '.');
    snprintf(payload, sizeof payload, "%.*s", (int)(strrchr(tok, '.') - d1 - 1), d1 + 1);

    hp_log(&f->env, HP_LOG_WARNING, tok, NULL);                              /* in msg */
    hp_log(&f->env, HP_LOG_WARNING, "ws_upgrade", "path=/stream?token=%s", tok); /* query */
    hp_log(&f->env, HP_LOG_WARNING, "auth", "header=\"Bearer %s\"", tok);
    hp_log(&f->env, HP_LOG_WARNING, "auth", "t=%s user=alice", tok);             /* bare JWT */
    hp_log(&f->env, HP_LOG_WARNING, "body", "json={\"token\":\"%s\"}", tok);
    hp_log(&f->env, HP_LOG_WARNING, "secret", "token=opaque-secret-123 next=1");
    assert_int_equal(f->cap.n, 6);
    for (int i = 0; i < f->cap.n; i++) {
        const char *l = f->cap.lines[i];
        assert_null(strstr(l, sig));
        assert_null(strstr(l, payload));
        assert_null(strstr(l, "opaque-secret-123"));
        assert_non_null(strstr(l, "[REDACTED]"));
    }
    assert_non_null(strstr(f->cap.lines[1], "path=/stream?token=[REDACTED]"));
    assert_non_null(strstr(f->cap.lines[3], "t=[REDACTED] user=alice"));
    assert_non_null(strstr(f->cap.lines[5], "token=[REDACTED] next=1"));
    free(tok);
}

static void redact_eq(const char *in, const char *want)
{
    char out[512];
    hp_log_redact(in, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("redact(\"%s\") = \"%s\", want \"%s\"", in, out, want);
}

static void test_redact_cases(void **st)
{
    (void)st;
    redact_eq("", "");
    redact_eq(NULL, "");
    redact_eq("nothing here", "nothing here");
    redact_eq("token=abc", "token=[REDACTED]");
    redact_eq("token=a", "token=[REDACTED]"); /* grows: "a" is shorter than [REDACTED] */
    redact_eq("/s?x=1&token=abc&y=2", "/s?x=1&token=[REDACTED]&y=2");
    redact_eq("access_token=abc", "access_token=[REDACTED]");
    redact_eq("TOKEN=abc", "TOKEN=[REDACTED]");
    redact_eq("token=&x=1", "token=&x=1"); /* empty value: nothing to hide */
    redact_eq("token=", "token=");
    redact_eq("token= x", "token= [REDACTED]"); /* spaces after '=' are skipped */
    redact_eq("token=\"a b c\" k=v", "token=\"[REDACTED]\" k=v");
    redact_eq("Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]");
    redact_eq("{\"token\":\"abc\",\"x\":1}", "{\"token\":\"[REDACTED]\",\"x\":1}");
    redact_eq("{\"token\": \"abc\"}", "{\"token\": \"[REDACTED]\"}");
    redact_eq("a eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln b",
              "a [REDACTED] b");
    /* alg:none tokens end with an empty signature. */
    redact_eq("x=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0. y", "x=[REDACTED] y");
    /* Not JWT-looking: one segment only, or "eyJ" inside a word. */
    redact_eq("eyJust a word", "eyJust a word");
    redact_eq("eyJabc.def", "eyJabc.def");
    redact_eq("keyJa.b.c", "keyJa.b.c");
    redact_eq("honeyJar.v1.2", "honeyJar.v1.2");
    /* Glued to a preceding char (URL-encoded "token%3D"): long header => JWT. */
    redact_eq("u=%2Fs%3Ftoken%3DeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln&z=1",
              "u=%2Fs%3Ftoken%3D[REDACTED]&z=1");
    /* More key spellings. */
    redact_eq("token: abc def", "token: [REDACTED] def");
    redact_eq("token = abc", "token = [REDACTED]");
    redact_eq("token='a b' x", "token='[REDACTED]' x");
    redact_eq("token=\"abc\" x", "token=\"[REDACTED]\" x");
    redact_eq("token=\"abc", "token=\"[REDACTED]");
    redact_eq("token=\"\" x", "token=\"\" x");
    redact_eq("body=\"{\\\"token\\\":\\\"abc\\\"}\"",
              "body=\"{\\\"token\\\":\\\"[REDACTED]\\\"}\"");
    redact_eq("tokens=5 tokenize=x", "tokens=5 tokenize=x");
    redact_eq("bearer   abc", "bearer   [REDACTED]");
    redact_eq("two eyJa.b.c eyJd.e.f", "two [REDACTED] [REDACTED]");
}

static void test_redact_truncation(void **st)
{
    (void)st;
    char out[8];
    hp_log_redact("token=abcdef", out, sizeof out);
    assert_string_equal(out, "token=[");
    char one[1];
    hp_log_redact("anything", one, 1);
    assert_string_equal(one, "");
    hp_log_redact("x", NULL, 0); /* no crash */
    /* Long input redacts fully when the buffer is large. */
    size_t n = 100000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    memcpy(big + 5000, "token=", 6);
    big[n] = '\0';
    char *res = malloc(n + 64);
    hp_log_redact(big, res, n + 64);
    assert_non_null(strstr(res, "token=[REDACTED]"));
    assert_int_equal(strlen(res), 5000 + 6 + 10);
    free(big);
    free(res);
}

static void test_many_short_tokens_grow(void **st)
{
    fx *f = *st;
    /* Each "token=x" grows by 9 bytes: hp_log must not truncate or overflow. */
    char fields[2048] = "";
    for (int i = 0; i < 100; i++)
        strcat(fields, "token=x ");
    hp_log(&f->env, HP_LOG_INFO, "m", "%s", fields);
    assert_int_equal(f->cap.n, 1);
    assert_null(strstr(f->cap.lines[0], "token=x"));
    const char *p = f->cap.lines[0];
    int count = 0;
    while ((p = strstr(p, "[REDACTED]")) != NULL) {
        count++;
        p++;
    }
    assert_int_equal(count, 100);
}

/* Fields of any length come out whole, on both sides of hp_log's 512-byte
 * stack buffer; clean text (no secret, no control character) unchanged,
 * including words that only start like a secret key. */
static void test_fields_lengths(void **st)
{
    fx *f = *st;
    size_t lens[] = {0, 1, 510, 511, 512, 513, 3000};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        char *v = malloc(lens[i] + 1);
        for (size_t k = 0; k < lens[i]; k++)
            v[k] = "tokenbearerXeyJ "[k % 16];
        v[lens[i]] = '\0';
        f->cap.n = 0;
        hp_log(&f->env, HP_LOG_DEBUG, "tokens", "%s", v);
        assert_int_equal(f->cap.n, 1);
        char want[4096];
        snprintf(want, sizeof want, "2026-11-25T10:00:00.000Z DEBUG fake_server tokens%s%s",
                 lens[i] ? " " : "", v);
        assert_string_equal(f->cap.lines[0], want);
        free(v);
    }
}

/* The fields text hp_log() formats itself (its own conversions, for
 * speed) is snprintf's text; the conversions it leaves to vsnprintf
 * (%g, widths, flags, %h, %x) too. */
#define FIELDS_EQ(f, ...)                                                                      \
    do {                                                                                       \
        char want_[4096], line_[4200];                                                         \
        (f)->cap.n = 0;                                                                        \
        hp_log(&(f)->env, HP_LOG_DEBUG, "m", __VA_ARGS__);                                     \
        snprintf(want_, sizeof want_, __VA_ARGS__);                                            \
        snprintf(line_, sizeof line_, "2026-11-25T10:00:00.000Z DEBUG fake_server m%s%s",      \
                 want_[0] ? " " : "", want_);                                                  \
        assert_int_equal((f)->cap.n, 1);                                                       \
        assert_string_equal((f)->cap.lines[0], line_);                                         \
    } while (0)

static void test_fields_conversions(void **st)
{
    fx *f = *st;
    FIELDS_EQ(f, "a=%s b=%d c=%lld d=%llu e=%zu", "x y", -5, (long long)INT64_MIN,
              (unsigned long long)UINT64_MAX, (size_t)0);
    FIELDS_EQ(f, "n=%d m=%d u=%u l=%ld lu=%lu i=%i zd=%zd", INT32_MIN, INT32_MAX, 4000000000u,
              -7L, 7UL, 12, (ssize_t)-3);
    FIELDS_EQ(f, "pct=100%% c=%c end=%.3s|%.0s|%.10s", 'q', "abcdef", "zz", "ab");
    FIELDS_EQ(f, "g=%g w=%5d f=%-3s|%05lld", 0.5, 42, "a", 7LL);
    FIELDS_EQ(f, "%s", "");
    FIELDS_EQ(f, "h=%hd x=%x", 5, 255);
    /* past the 512-byte stack buffer: the formatted text, whole */
    char big[700];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    FIELDS_EQ(f, "big=%s n=%d", big, 9);
    FIELDS_EQ(f, "big=%.600s n=%llu", big, 9ULL);
}

static void test_one_line(void **st)
{
    fx *f = *st;
    hp_log(&f->env, HP_LOG_INFO, "multi\nline", "title=\"a\r\nb\tc\x01\" token=x\ny");
    assert_int_equal(f->cap.n, 1);
    assert_null(strchr(f->cap.lines[0], '\n'));
    assert_null(strchr(f->cap.lines[0], '\r'));
    assert_string_equal(f->cap.lines[0], "2026-11-25T10:00:00.000Z INFO fake_server multi\\nline "
                                         "title=\"a\\r\\nb\\tc?\" token=[REDACTED]\\ny");
}

static void test_has_secret(void **st)
{
    (void)st;
    assert_false(hp_log_has_secret(NULL));
    assert_false(hp_log_has_secret(""));
    assert_false(hp_log_has_secret("entity=task/t1 base=5 current=7 user=alice"));
    assert_true(hp_log_has_secret("path=/s?token=abc"));
    assert_true(hp_log_has_secret("x eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
    assert_true(hp_log_has_secret("Authorization: Bearer x"));
    /* Already redacted text is clean. */
    assert_false(hp_log_has_secret("path=/s?token=[REDACTED] t=[REDACTED]"));
}

static void test_level_names(void **st)
{
    (void)st;
    hp_log_level l;
    assert_string_equal(hp_log_level_name(HP_LOG_DEBUG), "DEBUG");
    assert_string_equal(hp_log_level_name(HP_LOG_INFO), "INFO");
    assert_string_equal(hp_log_level_name(HP_LOG_WARNING), "WARNING");
    assert_string_equal(hp_log_level_name(HP_LOG_ERROR), "ERROR");
    assert_int_equal(hp_log_level_parse("warning", &l), 0);
    assert_int_equal(l, HP_LOG_WARNING);
    assert_int_equal(hp_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, HP_LOG_DEBUG);
    assert_int_equal(hp_log_level_parse("Error", &l), 0);
    assert_int_equal(l, HP_LOG_ERROR);
    assert_int_equal(hp_log_level_parse("verbose", &l), -1);
    assert_int_equal(hp_log_level_parse("", &l), -1);
    assert_int_equal(hp_log_level_parse(NULL, &l), -1);
}

static void test_format_truncates(void **st)
{
    (void)st;
    hp_log_record r = {.time_ms = 0, .level = HP_LOG_INFO, .actor = "a", .msg = "m", .fields = "k=v"};
    char buf[10];
    size_t n = hp_log_format(&r, buf, sizeof buf);
    assert_int_equal(n, 9);
    assert_int_equal(strlen(buf), 9);
    char full[128];
    n = hp_log_format(&r, full, sizeof full);
    assert_string_equal(full, "1970-01-01T00:00:00.000Z INFO a m k=v");
    assert_int_equal(n, strlen(full));
}

static void test_stderr_sink(void **st)
{
    fx *f = *st;
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    f->log.sink = hp_log_stderr_sink;
    char big[3000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hp_log(&f->env, HP_LOG_ERROR, "boom", "k=%s token=zzz", big);
    hp_log(&f->env, HP_LOG_INFO, "small", NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    char *line = NULL;
    size_t cap = 0;
    assert_true(getline(&line, &cap, tmp) > 0);
    assert_non_null(strstr(line, "ERROR fake_server boom k=vvv"));
    assert_non_null(strstr(line, " token=[REDACTED]\n"));
    assert_true(getline(&line, &cap, tmp) > 0);
    assert_string_equal(line, "2026-11-25T10:00:00.000Z INFO fake_server small\n");
    free(line);
    fclose(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
        cmocka_unit_test(test_format_time_sequence),
        cmocka_unit_test_setup_teardown(test_level_filter_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_actor_and_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_never_reaches_sink, setup, teardown),
        cmocka_unit_test(test_redact_cases),
        cmocka_unit_test(test_redact_truncation),
        cmocka_unit_test_setup_teardown(test_many_short_tokens_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_conversions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_line, setup, teardown),
        cmocka_unit_test(test_has_secret),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_format_truncates),
        cmocka_unit_test_setup_teardown(test_stderr_sink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
