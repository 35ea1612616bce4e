/*
 * hp_util.c - small helpers the protocol modules share (hp_util.h).
 */
#include "hp_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* See hp_util.h.  Always -1: callers return it as their failure value. */
int hp_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    return -1;
}

int hp_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hp_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int64_t hp_parse_decimal(const char *s, int64_t max)
{
    if (!s || !*s || strlen(s) > 18) /* 18 digits cannot overflow int64 */
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v <= max ? v : -1;
}
