/*
 * fuzz_time.c - RFC 3339 times, HTTP-dates and durations (protocol/hp_time.c).
 *
 * Input: any bytes, tried as each of the three forms.  Oracles: what
 * parses formats back to text that parses to the same instant (RFC 3339
 * as UTC, HTTP-dates to the second) or the same duration.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fz_util.h"
#include "hp_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return -1;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char buf[128];
    int64_t ms = 0, ms2 = 0;

    if (hp_time_parse(s, &ms) == 0) {
        hp_time_format_utc(ms, buf, sizeof buf);
        /* Years outside 0000..9999 cannot be written back as RFC 3339. */
        if (strlen(buf) == 24) {
            FZ_CHECK(hp_time_parse(buf, &ms2) == 0, "%s -> %s does not parse", s, buf);
            FZ_CHECK(ms2 == ms, "%s -> %s: %lld != %lld", s, buf, (long long)ms, (long long)ms2);
        }
    }
    if (hp_http_date_parse(s, &ms) == 0 && ms >= 0) {
        hp_http_date_format(ms, buf, sizeof buf);
        if (strlen(buf) == 29) {
            FZ_CHECK(hp_http_date_parse(buf, &ms2) == 0, "%s -> %s does not parse", s, buf);
            FZ_CHECK(ms2 == ms - ms % 1000, "%s -> %s: %lld != %lld", s, buf, (long long)ms,
                     (long long)ms2);
        }
    }
    if (hp_duration_parse(s, &ms) == 0) {
        hp_duration_format(ms, buf, sizeof buf);
        FZ_CHECK(hp_duration_parse(buf, &ms2) == 0, "%s -> %s does not parse", s, buf);
        FZ_CHECK(ms2 == ms, "%s -> %s: %lld != %lld", s, buf, (long long)ms, (long long)ms2);
    }
    free(s);
    return 0;
}
