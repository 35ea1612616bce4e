/*
 * hp_log.c - the one structured logger; redaction happens here.
 *
 * hp_log() formats the fields, redacts msg, actor and fields, and only then
 * hands the record to the sink: no sink can ever see a token.
 */
#define _GNU_SOURCE
#include "hp_log.h"
#include "hp_env.h"
#include "hp_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

static const char REDACTED[] = "[REDACTED]";

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/*
 * Length of a JWT-looking run at s (s starts "eyJ"): seg '.' seg '.' seg
 * of base64url, the first non-empty, the others possibly empty (an
 * unsigned "alg":"none" token ends with '.').  When s is glued to a
 * preceding base64url char (e.g. "token%3DeyJ..." in an encoded URL) the
 * first segment must be at least 16 chars long, as every real JWT header
 * is, so ordinary words ("honeyJar.v1.2") are left alone.  0 when not one.
 */
static size_t jwt_run(const char *s, int glued)
{
    size_t i = 0, first = 0;
    int dots = 0;
    for (;;) {
        while (is_b64url(s[i]))
            i++;
        if (dots == 0)
            first = i;
        if (s[i] == '.' && dots < 2) {
            dots++;
            i++;
            continue;
        }
        break;
    }
    if (dots != 2 || (glued && first < 16))
        return 0;
    return i;
}

/*
 * Matches a secret-bearing key at s, case-insensitively: "token" followed
 * by optional closing quotes (", \", ') and spaces, then '=' or ':', then
 * spaces; or "bearer " followed by spaces.  Covers query strings
 * (?token=), log fields (access_token=), JSON ("token": "...") and JSON
 * escaped inside a JSON string (\"token\":\"...\").  Returns the length of
 * the key part (kept in the output) or 0.
 */
/* strncasecmp(s, lower, n) == 0 for a lower-case ASCII pattern, inline:
 * stops at the first difference, so never reads past s's NUL. */
static int starts_ci(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != lower[i])
            return 0;
    }
    return 1;
}

static size_t secret_key(const char *s)
{
    size_t i;
    /* Called at every byte of every record and journal body: the first
     * letter decides before any comparison (6 % of the server's CPU in a
     * fan-out to 1,000 listeners went to two strncasecmp calls here). */
    char c0 = (char)(s[0] | 0x20);
    if (c0 != 'b' && c0 != 't')
        return 0;
    if (c0 == 'b' && starts_ci(s, "bearer ", 7)) {
        i = 7;
    } else if (c0 == 't' && starts_ci(s, "token", 5)) {
        i = 5;
        while (s[i] == '"' || s[i] == '\\' || s[i] == '\'')
            i++;
        while (s[i] == ' ')
            i++;
        if (s[i] != '=' && s[i] != ':')
            return 0;
        i++;
    } else {
        return 0;
    }
    while (s[i] == ' ')
        i++;
    return i;
}

/* Where a bare value ends: NUL, whitespace, '&', ',', ';', '}', a quote
 * or a backslash (a switch: this runs at every byte of such a value). */
static int bare_end(char c)
{
    switch (c) {
    case '\0': case ' ': case '\t': case '\r': case '\n': case '&': case ',': case ';':
    case '}': case '"': case '\'': case '\\':
        return 1;
    default:
        return 0;
    }
}

/*
 * The secret value at s.  *open / *close receive the quoting kept around
 * the redaction ("", "\"", "\\\"" or "'"); returns the length consumed.
 * Quoted values run to their closing quote (so "a b c" is hidden whole);
 * bare values run to whitespace, '&', ',', ';', '}', a quote or a
 * backslash (the ends of query, field and JSON values).
 */
static size_t secret_value(const char *s, const char **open, const char **close)
{
    size_t i;
    *open = *close = "";
    if (s[0] == '\\' && s[1] == '"') {
        *open = "\\\"";
        for (i = 2; s[i] && !(s[i] == '\\' && s[i + 1] == '"'); i++)
            ;
        if (s[i]) {
            *close = "\\\"";
            i += 2;
        }
        return i;
    }
    if (s[0] == '"' || s[0] == '\'') {
        char q = s[0];
        *open = q == '"' ? "\"" : "'";
        for (i = 1; s[i] && s[i] != q; i++)
            if (s[i] == '\\' && s[i + 1])
                i++;
        if (s[i] == q) {
            *close = *open;
            i++;
        }
        return i;
    }
    for (i = 0; !bare_end(s[i]); i++)
        ;
    return i;
}

/* Appends n bytes to out, never past outlen-1. */
static void put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    for (size_t k = 0; k < n && *o + 1 < outlen; k++)
        out[(*o)++] = s[k];
}

static void puts_(char *out, size_t outlen, size_t *o, const char *s)
{
    put(out, outlen, o, s, strlen(s));
}

/*
 * redaction.  Besides the two forms the header names (JWT-looking
 * runs and "token=" values) it also hides the value after "Bearer " and
 * after JSON "token" keys (see secret_key()), so a logged Authorization
 * header or JSON body cannot leak a token either.
 */
void hp_log_redact(const char *in, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    size_t o = 0;
    if (!in)
        in = "";
    const char *p = in;
    while (*p) {
        char lc = (char)(*p | 0x20); /* secret_key's first test, without the call */
        size_t k = lc == 'b' || lc == 't' ? secret_key(p) : 0;
        if (k) {
            put(out, outlen, &o, p, k);
            p += k;
            const char *open, *close;
            size_t v = secret_value(p, &open, &close);
            if (v > strlen(open) + strlen(close)) {
                puts_(out, outlen, &o, open);
                puts_(out, outlen, &o, REDACTED);
                puts_(out, outlen, &o, close);
                p += v;
            }
            continue;
        }
        if (p[0] == 'e' && p[1] == 'y' && p[2] == 'J') {
            size_t v = jwt_run(p, p != in && is_b64url(p[-1]));
            if (v > 0) {
                puts_(out, outlen, &o, REDACTED);
                p += v;
                continue;
            }
        }
        put(out, outlen, &o, p, 1);
        p++;
    }
    out[o] = '\0';
}

/*
 * Redacts into a fresh heap buffer large enough for any growth (each
 * redaction replaces at least 1 byte by at most 14: \"[REDACTED]\"), then
 * escapes control characters (\n, \r, \t as two-char escapes, others as
 * '?') so a record always stays one line.
 */
static char *redact_dup(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    size_t cap = n * 14 + 16;
    char *red = malloc(cap);
    if (!red)
        return NULL;
    hp_log_redact(s, red, cap);
    char *out = malloc(strlen(red) * 2 + 1);
    if (!out) {
        free(red);
        return NULL;
    }
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)red; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            out[o++] = '\\';
            out[o++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            out[o++] = '?';
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    free(red);
    return out;
}

/* What a byte is to log_clean(): 0 nothing to look at, 1 NUL or a
 * control character (0x00-0x1F, 0x7F), 2 a letter a secret key starts
 * with (b B t T: secret_key()), 3 'e' (a JWT's "eyJ"). */
static const unsigned char clean_class[256] = {
    /* 0x00 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x10 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x40 */ 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x50 */ 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x60 */ 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x70 */ 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    /* 0x80 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xA0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xB0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xC0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xD0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xE0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0xF0 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/*
 * 1 when redact_dup(s) would return a copy of s unchanged: no control
 * character and nothing hp_log_redact() replaces (the same walk, without
 * the output).  Most records are like that, and then hp_log() hands s to
 * the sink as it is instead of two copies.  A-4: every byte that could
 * start a secret (clean_class 2 and 3) gets the same tests as in
 * hp_log_redact(); the table only skips the bytes that cannot.
 */
static int log_clean(const char *s)
{
    const char *p = s;
    for (;;) {
        unsigned char c;
        while (clean_class[c = (unsigned char)*p] == 0)
            p++;
        switch (clean_class[c]) {
        case 1:
            return c == '\0'; /* the end; a control character is not clean */
        case 2: {
            size_t k = secret_key(p);
            if (k) {
                const char *open, *close;
                size_t v = secret_value(p + k, &open, &close);
                if (v > strlen(open) + strlen(close))
                    return 0;
                p += k;
                continue;
            }
            break;
        }
        default: /* 3: 'e' */
            if (p[1] == 'y' && p[2] == 'J' && jwt_run(p, p != s && is_b64url(p[-1])))
                return 0;
            break;
        }
        p++;
    }
}

/* s itself when clean (*owned = NULL), else redact_dup(s) (*owned: the
 * copy, to free; NULL when out of memory). */
static const char *redacted(const char *s, char **owned)
{
    *owned = NULL;
    if (log_clean(s))
        return s;
    *owned = redact_dup(s);
    return *owned;
}

int hp_log_has_secret(const char *s)
{
    if (!s)
        return 0;
    size_t cap = strlen(s) * 14 + 16;
    char *red = malloc(cap);
    if (!red)
        return 1; /* cannot tell: assume the worst */
    hp_log_redact(s, red, cap);
    int diff = strcmp(red, s) != 0;
    free(red);
    return diff;
}

/* Appends the decimal form of u (with a '-' when neg) at *o; 0, or -1
 * when it does not fit below cap. */
static int fmt_num(char *out, size_t cap, size_t *o, unsigned long long u, int neg)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *q = e;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        *--q = '-';
    size_t n = (size_t)(e - q);
    if (cap - *o <= n)
        return -1;
    memcpy(out + *o, q, n);
    *o += n;
    return 0;
}

/*
 * The fields text, for the conversions the project's records use: %s and
 * %.Ns, %d %i %u %c with no length, l, ll or z, and %%; the bytes are
 * those vsnprintf writes for them.  -1 (ap partly consumed) for anything
 * else (flags, widths, %g, a NULL string, ...) or when the text does not
 * fit in out: the caller then formats with vsnprintf.  Why: every record
 * of a simulated run is formatted, and vsnprintf cost ~1,700 instructions
 * a record.
 */
static int fmt_fields(char *out, size_t cap, const char *fmt, va_list ap)
{
    size_t o = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (cap - o <= 1)
                return -1;
            out[o++] = *f;
            continue;
        }
        f++;
        size_t prec = (size_t)-1;
        if (*f == '.') {
            if (f[1] < '0' || f[1] > '9')
                return -1;
            prec = 0;
            for (f++; *f >= '0' && *f <= '9'; f++) {
                prec = prec * 10 + (size_t)(*f - '0');
                if (prec > 100000)
                    return -1;
            }
            if (*f != 's')
                return -1;
        }
        int len = 0; /* 0 int, 1 long, 2 long long, 3 size_t */
        if (*f == 'l') {
            len = 1;
            if (*++f == 'l') {
                len = 2;
                f++;
            }
        } else if (*f == 'z') {
            len = 3;
            f++;
        }
        switch (*f) {
        case '%':
            if (len || cap - o <= 1)
                return -1;
            out[o++] = '%';
            break;
        case 's': {
            if (len)
                return -1;
            const char *v = va_arg(ap, const char *);
            if (!v)
                return -1;
            size_t n = prec == (size_t)-1 ? strlen(v) : strnlen(v, prec);
            if (cap - o <= n)
                return -1;
            memcpy(out + o, v, n);
            o += n;
            break;
        }
        case 'c':
            if (len || cap - o <= 1)
                return -1;
            out[o++] = (char)va_arg(ap, int);
            break;
        case 'd':
        case 'i': {
            long long v = len == 0   ? va_arg(ap, int)
                          : len == 1 ? va_arg(ap, long)
                          : len == 2 ? va_arg(ap, long long)
                                     : (long long)va_arg(ap, ssize_t);
            unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            if (fmt_num(out, cap, &o, u, v < 0))
                return -1;
            break;
        }
        case 'u': {
            unsigned long long v = len == 0   ? va_arg(ap, unsigned)
                                   : len == 1 ? va_arg(ap, unsigned long)
                                   : len == 2 ? va_arg(ap, unsigned long long)
                                              : va_arg(ap, size_t);
            if (fmt_num(out, cap, &o, v, 0))
                return -1;
            break;
        }
        default:
            return -1;
        }
    }
    out[o] = '\0';
    return (int)o;
}

void hp_log(const struct hp_env *env, hp_log_level level, const char *msg,
            const char *fields_fmt, ...)
{
    if (!env || !env->log || !env->log->sink || level < env->log->min_level)
        return;
    /* Most fields fit the stack buffer: vasprintf only for the others (a
     * simulated run logs every message at DEBUG). */
    char stack[512];
    char *raw = NULL;
    const char *fmtd = "";
    if (fields_fmt) {
        va_list ap;
        va_start(ap, fields_fmt);
        int n = fmt_fields(stack, sizeof stack, fields_fmt, ap);
        va_end(ap);
        if (n < 0) {
            va_start(ap, fields_fmt);
            n = vsnprintf(stack, sizeof stack, fields_fmt, ap);
            va_end(ap);
        }
        if (n >= 0 && (size_t)n < sizeof stack) {
            fmtd = stack;
        } else if (n >= 0) {
            va_start(ap, fields_fmt);
            if (vasprintf(&raw, fields_fmt, ap) < 0)
                raw = NULL;
            va_end(ap);
            fmtd = raw ? raw : "";
        }
    }
    char *own_f, *own_m, *own_a;
    const char *fields = redacted(fmtd, &own_f);
    const char *rmsg = redacted(msg ? msg : "", &own_m);
    const char *ractor = redacted(env->actor ? env->actor : "-", &own_a);
    if (fields && rmsg && ractor) {
        hp_log_record rec = {
            .time_ms = hp_env_now(env),
            .level = level,
            .actor = ractor,
            .msg = rmsg,
            .fields = fields,
        };
        env->log->sink(env->log->ud, &rec);
    }
    free(raw);
    free(own_f);
    free(own_m);
    free(own_a);
}

/* Appends n bytes of s at *o, as far as buflen - 1 allows (the snprintf
 * truncation the format had). */
static void append(char *buf, size_t buflen, size_t *o, const char *s, size_t n)
{
    size_t room = buflen - 1 - *o;
    if (n > room)
        n = room;
    memcpy(buf + *o, s, n);
    *o += n;
}

size_t hp_log_format(const hp_log_record *rec, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return 0;
    /* "TS LEVEL actor msg[ fields]": built by copies, not snprintf (every
     * record of a simulated run is formatted; bench/README.md). */
    /* Records come in bursts at one instant (a simulated run logs many per
     * virtual ms): the last time's text is kept, per thread. */
    static _Thread_local int ts_valid;
    static _Thread_local int64_t ts_ms;
    static _Thread_local char ts[32];
    if (!ts_valid || ts_ms != rec->time_ms) {
        /* Most of the others are in the last one's minute: then only
         * "ss.fff" changes (UTC has no leap seconds here, and a 24-byte
         * text is the four-digit-year form "YYYY-MM-DDThh:mm:ss.fffZ"). */
        if (ts_valid && ts_ms >= 0 && rec->time_ms >= 0 && ts_ms / 60000 == rec->time_ms / 60000 &&
            strlen(ts) == 24) {
            int v = (int)(rec->time_ms % 60000); /* ss * 1000 + fff */
            ts[17] = (char)('0' + v / 10000);
            ts[18] = (char)('0' + v / 1000 % 10);
            ts[20] = (char)('0' + v / 100 % 10);
            ts[21] = (char)('0' + v / 10 % 10);
            ts[22] = (char)('0' + v % 10);
        } else {
            hp_time_format_utc(rec->time_ms, ts, sizeof ts);
        }
        ts_ms = rec->time_ms;
        ts_valid = 1;
    }
    const char *fields = rec->fields ? rec->fields : "";
    const char *level = hp_log_level_name(rec->level);
    const char *actor = rec->actor ? rec->actor : "-";
    const char *msg = rec->msg ? rec->msg : "";
    size_t o = 0;
    append(buf, buflen, &o, ts, strlen(ts));
    append(buf, buflen, &o, " ", 1);
    append(buf, buflen, &o, level, strlen(level));
    append(buf, buflen, &o, " ", 1);
    append(buf, buflen, &o, actor, strlen(actor));
    append(buf, buflen, &o, " ", 1);
    append(buf, buflen, &o, msg, strlen(msg));
    if (*fields) {
        append(buf, buflen, &o, " ", 1);
        append(buf, buflen, &o, fields, strlen(fields));
    }
    buf[o] = '\0';
    return o;
}

const char *hp_log_level_name(hp_log_level level)
{
    switch (level) {
    case HP_LOG_DEBUG: return "DEBUG";
    case HP_LOG_INFO: return "INFO";
    case HP_LOG_WARNING: return "WARNING";
    case HP_LOG_ERROR: return "ERROR";
    }
    return "UNKNOWN";
}

/* "warn" is accepted as an alias of WARNING for command-line comfort. */
int hp_log_level_parse(const char *s, hp_log_level *out)
{
    if (!s)
        return -1;
    static const struct {
        const char *name;
        hp_log_level level;
    } names[] = {{"debug", HP_LOG_DEBUG},     {"info", HP_LOG_INFO}, {"warning", HP_LOG_WARNING},
                 {"warn", HP_LOG_WARNING},    {"error", HP_LOG_ERROR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

void hp_log_stderr_sink(void *ud, const hp_log_record *rec)
{
    (void)ud;
    char stack[1024];
    char ts[32];
    hp_time_format_utc(rec->time_ms, ts, sizeof ts);
    size_t need = strlen(ts) + strlen(rec->actor ? rec->actor : "-") +
                  strlen(rec->msg ? rec->msg : "") + strlen(rec->fields ? rec->fields : "") + 32;
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf)
        return;
    size_t n = hp_log_format(rec, buf, need <= sizeof stack ? sizeof stack : need);
    buf[n] = '\n';
    fwrite(buf, 1, n + 1, stderr);
    if (buf != stack)
        free(buf);
}
