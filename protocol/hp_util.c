/*
 * hp_util.c - small helpers the protocol modules share (hp_util.h).
 */
#include "hp_util.h"

#include <stdarg.h>
#include <stdio.h>

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
