/*
 * hp_time.c - RFC 3339 instants and durations.
 *
 * C-4 / WS-3: a time value is validated here and its instant computed, but
 * the string itself is what gets stored and sent.  No timegm()/TZ: the
 * calendar arithmetic is done by hand so the result never depends on the
 * process time zone.
 */
#include "hp_time.h"

#include <stdio.h>
#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian civil date (any year). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                          /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yy + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at *p into *v; advances *p.  0 or -1. */
static int digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

/*
 * Strict RFC 3339 date-time: "T" (or "t") between date and time, seconds
 * required, fraction optional (any number of digits, truncated to ms),
 * offset required ("Z"/"z" or +HH:MM/-HH:MM with HH <= 23, MM <= 59).
 * Second 60 (leap second) is accepted and counts as the next minute's 0.
 * Anything after the offset is an error.
 */
int hp_time_parse(const char *s, int64_t *epoch_ms)
{
    if (!s)
        return -1;
    const char *p = s;
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    int64_t frac_ms = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &se))
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        for (int i = n; i < 3; i++)
            frac_ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return -1;
    } else {
        return -1; /* no offset: a naked local time is ambiguous */
    }
    if (*p != '\0')
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 60 || oh > 23 || om > 59)
        return -1;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se;
    secs -= (int64_t)sign * (oh * 3600 + om * 60);
    *epoch_ms = secs * 1000 + frac_ms;
    return 0;
}

void hp_time_format_utc(int64_t epoch_ms, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return;
    int64_t ms = epoch_ms % 1000;
    int64_t secs = epoch_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999 && buflen >= 25) {
        /* What the snprintf below writes for a four-digit year, digit by
         * digit: every log record carries one (hp_log). */
        int v[7] = {(int)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
                    (int)ms};
        static const char pat[] = "YYYY-MM-DDThh:mm:ss.fffZ";
        static const signed char field[] = {0, 0, 0, 0, -1, 1, 1, -1, 2, 2, -1, 3, 3,
                                            -1, 4, 4, -1, 5, 5, -1, 6, 6, 6, -1};
        for (int i = 23; i >= 0; i--) {
            if (field[i] < 0) {
                buf[i] = pat[i];
            } else {
                buf[i] = (char)('0' + v[field[i]] % 10);
                v[field[i]] /= 10;
            }
        }
        buf[24] = '\0';
        return;
    }
    snprintf(buf, buflen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)ms);
}

static const char http_days[7][4] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char http_months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

void hp_http_date_format(int64_t epoch_ms, char *buf, size_t buflen)
{
    int64_t secs = epoch_ms < 0 ? 0 : epoch_ms / 1000;
    int64_t days = secs / 86400, rem = secs % 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    /* 1970-01-01 was a Thursday (index 3 from Monday). */
    snprintf(buf, buflen, "%s, %02d %.3s %04lld %02d:%02d:%02d GMT", http_days[(days + 3) % 7], d,
             http_months + 3 * (m - 1), (long long)y, (int)(rem / 3600), (int)(rem / 60 % 60),
             (int)(rem % 60));
}

/* Consumes the literal lit at *p.  0 or -1 (strncmp stops at the NUL). */
static int lit(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0)
        return -1;
    *p += n;
    return 0;
}

static int http_month(const char **p, int *m)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(*p, http_months + 3 * i, 3) == 0) {
            *p += 3;
            *m = i + 1;
            return 0;
        }
    return -1;
}

static int http_day_name(const char **p, int long_form)
{
    static const char *const names[7][2] = {
        {"Mon", "Monday"}, {"Tue", "Tuesday"}, {"Wed", "Wednesday"}, {"Thu", "Thursday"},
        {"Fri", "Friday"}, {"Sat", "Saturday"}, {"Sun", "Sunday"}};
    for (int i = 0; i < 7; i++)
        if (lit(p, names[i][long_form]) == 0)
            return 0;
    return -1;
}

static int http_hms(const char **p, int *h, int *mi, int *sec)
{
    if (digits(p, 2, h) || lit(p, ":") || digits(p, 2, mi) || lit(p, ":") || digits(p, 2, sec))
        return -1;
    return *h <= 23 && *mi <= 59 && *sec <= 60 ? 0 : -1;
}

int hp_http_date_parse(const char *s, int64_t *epoch_ms)
{
    const char *p = s;
    int d, m, y, h, mi, sec;
    int64_t year;
    if (!s)
        return -1;
    const char *comma = strchr(s, ',');
    if (comma && comma - s == 3) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (http_day_name(&p, 0) || lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, " ") ||
            http_month(&p, &m) || lit(&p, " ") || digits(&p, 4, &y) || lit(&p, " ") ||
            http_hms(&p, &h, &mi, &sec) || lit(&p, " GMT") || *p)
            return -1;
        year = y;
    } else if (comma) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT.  A two-digit year below
         * 70 is 20yy (RFC 9110 asks for "not more than 50 years ahead";
         * without a clock here, 1970..2069 is that window for this era). */
        if (http_day_name(&p, 1) || lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, "-") ||
            http_month(&p, &m) || lit(&p, "-") || digits(&p, 2, &y) || lit(&p, " ") ||
            http_hms(&p, &h, &mi, &sec) || lit(&p, " GMT") || *p)
            return -1;
        year = y < 70 ? 2000 + y : 1900 + y;
    } else {
        /* asctime: Sun Nov  6 08:49:37 1994 (day padded with a space) */
        if (http_day_name(&p, 0) || lit(&p, " ") || http_month(&p, &m) || lit(&p, " "))
            return -1;
        if (*p == ' ') {
            p++;
            if (digits(&p, 1, &d))
                return -1;
        } else if (digits(&p, 2, &d)) {
            return -1;
        }
        if (lit(&p, " ") || http_hms(&p, &h, &mi, &sec) || lit(&p, " ") ||
            digits(&p, 4, &y) || *p)
            return -1;
        year = y;
    }
    if (d < 1 || d > days_in_month(year, m))
        return -1;
    *epoch_ms = (((days_from_civil(year, m, d) * 24 + h) * 60 + mi) * 60 + sec) * 1000;
    return 0;
}

/*
 * A duration is one or more "<digits><unit>" parts (units ms, s, m, h, d),
 * summed, or a bare non-negative integer (milliseconds).  Signs, spaces,
 * fractions, unknown units, an empty string and int64 overflow are errors.
 */
int hp_duration_parse(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    const char *p = s;
    int64_t total = 0;
    int parts = 0;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            int dg = *p - '0';
            if (n > (INT64_MAX - dg) / 10)
                return -1;
            n = n * 10 + dg;
            p++;
        }
        int64_t unit;
        if (p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else if (*p == '\0' && parts == 0) {
            unit = 1; /* bare integer: milliseconds */
        } else {
            return -1;
        }
        if (n > INT64_MAX / unit || total > INT64_MAX - n * unit)
            return -1;
        total += n * unit;
        parts++;
    }
    *ms = total;
    return 0;
}

/* The largest single unit that divides ms exactly: "31m", "90s", "1500ms". */
void hp_duration_format(int64_t ms, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return;
    static const struct {
        int64_t ms;
        const char *suffix;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms != 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (ms % units[i].ms == 0) {
                snprintf(buf, buflen, "%lld%s", (long long)(ms / units[i].ms), units[i].suffix);
                return;
            }
        }
    }
    snprintf(buf, buflen, "%lldms", (long long)ms);
}
