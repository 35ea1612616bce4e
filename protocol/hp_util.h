/*
 * hp_util.h - small helpers the protocol modules share.
 */
#ifndef HP_UTIL_H
#define HP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The protocol parsers' error convention: format a human message into
 * err (truncated to errlen, always terminated) and return -1, so a parser
 * can `return hp_errf(err, errlen, "...", ...);`.  err may be NULL or
 * errlen 0: nothing is written, -1 is still returned.
 */
int hp_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The same for variadic callers (ap is consumed: va_end is the caller's). */
int hp_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 0)))
#endif
    ;

/* A strict unsigned decimal from outside (a query value, a path segment):
 * digits only (no sign, space or empty string), at most 18 of them, and
 * <= max.  Returns the value, or -1 when s is not one. */
int64_t hp_parse_decimal(const char *s, int64_t max);

#endif
