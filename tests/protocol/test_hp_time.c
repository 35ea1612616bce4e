/* Unit tests for protocol/hp_time.c: RFC 3339 with offset (C-4) and durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "hp_time.h"

static int64_t parse_ok(const char *s)
{
    int64_t ms = 12345;
    if (hp_time_parse(s, &ms) != 0)
        fail_msg("expected \"%s\" to parse", s);
    return ms;
}

static void parse_bad(const char *s)
{
    int64_t ms = 777;
    if (hp_time_parse(s, &ms) != -1)
        fail_msg("expected \"%s\" to be refused", s);
    assert_int_equal(ms, 777); /* out untouched */
}

static void test_epoch_and_known_instants(void **st)
{
    (void)st;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("1970-01-01T00:00:01.5Z"), 1500);
    /* 2026-11-25T10:00:00Z = 1795600800 s (checked with `date -u -d`). */
    assert_int_equal(parse_ok("2026-11-25T10:00:00Z"), 1795600800000LL);
    assert_int_equal(parse_ok("2026-11-25T13:00:00+03:00"), 1795600800000LL);
    assert_int_equal(parse_ok("2026-11-25T04:30:00-05:30"), 1795600800000LL);
    assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    assert_int_equal(parse_ok("1969-12-31T23:59:59.999Z"), -1);
    assert_int_equal(parse_ok("0000-01-01T00:00:00Z"), -62167219200000LL);
    assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), 253402300799000LL);
}

static void test_fraction(void **st)
{
    (void)st;
    assert_int_equal(parse_ok("1970-01-01T00:00:00.1Z"), 100);
    assert_int_equal(parse_ok("1970-01-01T00:00:00.12Z"), 120);
    assert_int_equal(parse_ok("1970-01-01T00:00:00.123Z"), 123);
    /* Sub-millisecond digits are truncated, not rounded. */
    assert_int_equal(parse_ok("1970-01-01T00:00:00.123999999Z"), 123);
    parse_bad("1970-01-01T00:00:00.Z");
    parse_bad("1970-01-01T00:00:00,5Z");
}

static void test_offsets(void **st)
{
    (void)st;
    assert_int_equal(parse_ok("2026-01-01T14:00:00+14:00"), parse_ok("2026-01-01T00:00:00Z"));
    assert_int_equal(parse_ok("2026-01-01T00:00:00-12:00"), parse_ok("2026-01-01T12:00:00Z"));
    assert_int_equal(parse_ok("2026-01-01T00:00:00+23:59"), parse_ok("2025-12-31T00:01:00Z"));
    assert_int_equal(parse_ok("2026-01-01T00:00:00-00:00"), parse_ok("2026-01-01T00:00:00Z"));
    assert_int_equal(parse_ok("2026-01-01t00:00:00z"), parse_ok("2026-01-01T00:00:00Z"));
    parse_bad("2026-01-01T00:00:00+24:00");
    parse_bad("2026-01-01T00:00:00+05:60");
    parse_bad("2026-01-01T00:00:00+0500");
    parse_bad("2026-01-01T00:00:00+05");
    parse_bad("2026-01-01T00:00:00+5:00");
    parse_bad("2026-01-01T00:00:00 +05:00");
}

static void test_offset_required(void **st)
{
    (void)st;
    /* C-4: a naked local time is ambiguous: bad input. */
    parse_bad("2026-11-25T09:00:00");
    parse_bad("2026-11-25T09:00:00.000");
    parse_bad("2026-11-25");
    parse_bad("2026-11-25T09:00Z");
}

static void test_ranges_and_leap_years(void **st)
{
    (void)st;
    parse_ok("2024-02-29T00:00:00Z");
    parse_ok("2000-02-29T00:00:00Z");
    parse_bad("2023-02-29T00:00:00Z");
    parse_bad("1900-02-29T00:00:00Z");
    parse_bad("2100-02-29T00:00:00Z");
    parse_ok("2026-04-30T00:00:00Z");
    parse_bad("2026-04-31T00:00:00Z");
    parse_ok("2026-12-31T00:00:00Z");
    parse_bad("2026-12-32T00:00:00Z");
    parse_bad("2026-00-10T00:00:00Z");
    parse_bad("2026-13-10T00:00:00Z");
    parse_bad("2026-01-00T00:00:00Z");
    parse_ok("2026-01-01T23:59:59Z");
    parse_bad("2026-01-01T24:00:00Z");
    parse_bad("2026-01-01T12:60:00Z");
    parse_bad("2026-01-01T12:00:61Z");
    /* A leap second is accepted and counts as the next minute's 0. */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2017-01-01T00:00:00Z"));
}

static void test_garbage(void **st)
{
    (void)st;
    parse_bad(NULL);
    parse_bad("");
    parse_bad("Z");
    parse_bad("2026-1-01T00:00:00Z");
    parse_bad("26-01-01T00:00:00Z");
    parse_bad("2026/01/01T00:00:00Z");
    parse_bad("2026-01-01 00:00:00Z");
    parse_bad("2026-01-01T00:00:00Zjunk");
    parse_bad("2026-01-01T00:00:00+05:00x");
    parse_bad("+2026-01-01T00:00:00Z");
    parse_bad("2026-01-01T0a:00:00Z");
    parse_bad("2026-01-01T00:00:00\xff");
    /* Every prefix of a valid time is refused (and never read past the NUL). */
    const char *full = "2026-11-25T09:00:00.250+03:00";
    char buf[64];
    for (size_t n = 0; n < strlen(full); n++) {
        memcpy(buf, full, n);
        buf[n] = '\0';
        parse_bad(buf);
    }
    parse_ok(full);
}

static void test_format_utc(void **st)
{
    (void)st;
    char buf[32];
    hp_time_format_utc(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    hp_time_format_utc(1795600800123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-25T10:00:00.123Z");
    hp_time_format_utc(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    hp_time_format_utc(951782400000LL, buf, sizeof buf);
    assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
    /* Round trip over a spread of instants, including leap days. */
    for (int64_t t = -5000000000000LL; t < 5000000000000LL; t += 86399999LL * 97) {
        int64_t back;
        hp_time_format_utc(t, buf, sizeof buf);
        assert_int_equal(hp_time_parse(buf, &back), 0);
        assert_int_equal(back, t);
    }
    /* The digit-by-digit path (years 0 to 9999) writes what snprintf of
     * gmtime_r's fields writes; outside it, and into a buffer under 25
     * bytes, snprintf itself. */
    for (int64_t t = -62167219200000LL; t < 253402300800000LL; t += 86399999LL * 3697 + 7) {
        time_t secs = (time_t)(t >= 0 ? t / 1000 : (t - 999) / 1000);
        int ms = (int)(t - (int64_t)secs * 1000);
        struct tm tm;
        assert_non_null(gmtime_r(&secs, &tm));
        char want[64];
        snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ms);
        hp_time_format_utc(t, buf, sizeof buf);
        assert_string_equal(buf, want);
    }
    hp_time_format_utc(-62167219200000LL, buf, sizeof buf);
    assert_string_equal(buf, "0000-01-01T00:00:00.000Z");
    hp_time_format_utc(253402300799999LL, buf, sizeof buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
    hp_time_format_utc(253402300800000LL, buf, sizeof buf);
    assert_string_equal(buf, "10000-01-01T00:00:00.000Z");
    hp_time_format_utc(-62167219200001LL, buf, sizeof buf);
    assert_string_equal(buf, "-001-12-31T23:59:59.999Z");
    char b25[25], b24[24];
    hp_time_format_utc(1795600800123LL, b25, sizeof b25);
    assert_string_equal(b25, "2026-11-25T10:00:00.123Z");
    hp_time_format_utc(1795600800123LL, b24, sizeof b24);
    assert_string_equal(b24, "2026-11-25T10:00:00.123");
    /* Truncation stays NUL-terminated. */
    char small[8];
    hp_time_format_utc(0, small, sizeof small);
    assert_int_equal(strlen(small), 7);
}

static int64_t dur_ok(const char *s)
{
    int64_t ms = -99;
    if (hp_duration_parse(s, &ms) != 0)
        fail_msg("expected duration \"%s\" to parse", s);
    return ms;
}

static void dur_bad(const char *s)
{
    int64_t ms = -99;
    if (hp_duration_parse(s, &ms) != -1)
        fail_msg("expected duration \"%s\" to be refused", s);
    assert_int_equal(ms, -99);
}

static void test_duration_parse(void **st)
{
    (void)st;
    assert_int_equal(dur_ok("250ms"), 250);
    assert_int_equal(dur_ok("30s"), 30000);
    assert_int_equal(dur_ok("31m"), 31 * 60000);
    assert_int_equal(dur_ok("2h"), 2 * 3600000);
    assert_int_equal(dur_ok("7d"), 7LL * 86400000);
    assert_int_equal(dur_ok("1m30s"), 90000);
    assert_int_equal(dur_ok("1h1m1s1ms"), 3661001);
    assert_int_equal(dur_ok("1500"), 1500);
    assert_int_equal(dur_ok("0"), 0);
    assert_int_equal(dur_ok("0s"), 0);
    assert_int_equal(dur_ok("9223372036854775807"), INT64_MAX);
}

static void test_duration_bad(void **st)
{
    (void)st;
    dur_bad(NULL);
    dur_bad("");
    dur_bad("-5s");
    dur_bad("-5");
    dur_bad("+5s");
    dur_bad("5 s");
    dur_bad(" 5s");
    dur_bad("5s ");
    dur_bad("1.5s");
    dur_bad("s");
    dur_bad("ms");
    dur_bad("5x");
    dur_bad("5sec");
    dur_bad("5min");
    dur_bad("10s5");     /* bare number only on its own */
    dur_bad("9223372036854775808");
    dur_bad("99999999999999999999ms");
    assert_int_equal(dur_ok("106751991167d"), 106751991167LL * 86400000); /* fits */
    dur_bad("106751991168d");   /* overflows when multiplied */
    dur_bad("9223372036854775807ms1ms"); /* overflows when summed */
    dur_bad("9223372036854775s1s");
}

static void test_duration_format(void **st)
{
    (void)st;
    char buf[32];
    struct {
        int64_t ms;
        const char *s;
    } cases[] = {{0, "0ms"},        {1, "1ms"},      {1500, "1500ms"}, {1000, "1s"},
                 {90000, "90s"},    {60000, "1m"},   {31 * 60000, "31m"},
                 {7200000, "2h"},   {86400000, "1d"}, {7LL * 86400000, "7d"},
                 {90 * 60000, "90m"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hp_duration_format(cases[i].ms, buf, sizeof buf);
        assert_string_equal(buf, cases[i].s);
        int64_t back;
        assert_int_equal(hp_duration_parse(buf, &back), 0);
        assert_int_equal(back, cases[i].ms);
    }
}

/* Retry-After as an HTTP-date: the three forms RFC 9110 names. */
static void test_http_date(void **st)
{
    (void)st;
    int64_t ms = 0;
    /* 784111777 s = 1994-11-06T08:49:37Z (RFC 9110's example; `date -u -d`). */
    assert_int_equal(hp_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &ms), 0);
    assert_int_equal(ms, 784111777000LL);
    ms = 0;
    assert_int_equal(hp_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &ms), 0);
    assert_int_equal(ms, 784111777000LL);
    ms = 0;
    assert_int_equal(hp_http_date_parse("Sun Nov  6 08:49:37 1994", &ms), 0);
    assert_int_equal(ms, 784111777000LL);
    assert_int_equal(hp_http_date_parse("Wed, 25 Nov 2026 10:00:00 GMT", &ms), 0);
    assert_int_equal(ms, 1795600800000LL);
    assert_int_equal(hp_http_date_parse("Wednesday, 25-Nov-26 10:00:00 GMT", &ms), 0);
    assert_int_equal(ms, 1795600800000LL);
    assert_int_equal(hp_http_date_parse("Wed Nov 25 10:00:00 2026", &ms), 0);
    assert_int_equal(ms, 1795600800000LL);
    assert_int_equal(hp_http_date_parse("Tue, 29 Feb 2028 23:59:59 GMT", &ms), 0);

    static const char *const bad[] = {
        "", "120", "Sun, 06 Nov 1994 08:49:37",      /* no GMT */
        "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sun, 6 Nov 1994 08:49:37 GMT",              /* day needs 2 digits */
        "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 29 Feb 2027 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 1994 GMT", "Sun, 06 Nov 1994",
        "Sun,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 777;
        if (hp_http_date_parse(bad[i], &ms) != -1)
            fail_msg("expected HTTP-date \"%s\" to be refused", bad[i]);
        assert_int_equal(ms, 777);
    }
    assert_int_equal(hp_http_date_parse(NULL, &ms), -1);

    char buf[40];
    hp_http_date_format(784111777999LL, buf, sizeof buf);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    hp_http_date_format(1795600800000LL, buf, sizeof buf);
    assert_string_equal(buf, "Wed, 25 Nov 2026 10:00:00 GMT");
    hp_http_date_format(0, buf, sizeof buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    /* Round trip over a stretch of days: every weekday and month. */
    for (int64_t t = 1700000000000LL; t < 1700000000000LL + 400LL * 86400000; t += 86400000 + 3723000) {
        hp_http_date_format(t, buf, sizeof buf);
        assert_int_equal(hp_http_date_parse(buf, &ms), 0);
        assert_int_equal(ms, t / 1000 * 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_and_known_instants),
        cmocka_unit_test(test_fraction),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_offset_required),
        cmocka_unit_test(test_ranges_and_leap_years),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_http_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
