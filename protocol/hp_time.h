/*
 * hp_time.h - RFC 3339 times with offset, durations.
 *
 * C-4 / WS-3: time values are kept verbatim.  Parsing only validates and
 * computes the instant (for reminders); the original string is what gets
 * stored and sent.
 */
#ifndef HP_TIME_H
#define HP_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Parse "YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)".  The offset is
 * required (a naked local time is bad input).  On success stores the instant
 * as epoch ms and returns 0; returns -1 on any error (out untouched). */
int hp_time_parse(const char *s, int64_t *epoch_ms);

/* Format epoch ms as "2026-11-25T10:00:00.000Z" (buf >= 25 bytes). */
void hp_time_format_utc(int64_t epoch_ms, char *buf, size_t buflen);

/* Parse an HTTP-date (RFC 9110 5.6.7), the other form of Retry-After:
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete forms a
 * recipient must still accept, RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT"
 * and asctime "Sun Nov  6 08:49:37 1994".  Epoch ms, 0 or -1 (out
 * untouched).  Day names are checked for spelling, not against the date. */
int hp_http_date_parse(const char *s, int64_t *epoch_ms);

/* Format epoch ms (>= 0) as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"
 * (buf >= 30 bytes; milliseconds dropped). */
void hp_http_date_format(int64_t epoch_ms, char *buf, size_t buflen);

/* Durations for scenarios and flags: "250ms", "30s", "31m", "2h", "7d",
 * and sums like "1m30s".  A bare integer is milliseconds.  0 or -1. */
int hp_duration_parse(const char *s, int64_t *ms);

/* Format ms as the shortest exact duration string ("31m", "1500ms"). */
void hp_duration_format(int64_t ms, char *buf, size_t buflen);

#endif
