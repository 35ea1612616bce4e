/*
 * fp_journal.h - the proxy's journal: every request, response, frame,
 * connect, close and fault application, in order, with a sequence number.
 *
 * The harness reads it as the source of truth for what a client did, so an
 * entry is added at the instant the proxy has read a whole unit from its
 * sender (before any fault delays or drops it).  Memory is bounded: when an
 * add would pass max_entries or max_bytes, the oldest entries are dropped and
 * counted (fpj_dropped()); sequence numbers never restart.
 */
#ifndef FP_JOURNAL_H
#define FP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct fp_journal fp_journal;

/* Limits: max_entries >= 1, max_bytes >= 1 (bytes of the entries'
 * compact JSON).  Returns NULL when out of memory. */
fp_journal *fpj_new(size_t max_entries, size_t max_bytes);
void fpj_free(fp_journal *j);

/*
 * Append entry (stolen: the journal owns it from now on).  The journal sets
 * "seq" (from 1, +1 per entry) and "t_ms" (now_ms, epoch milliseconds).
 * client is the per-client name ("" for the main port), sub the token's
 * subject or NULL; both are kept for filtering and also set in the entry
 * ("client": null for the main port).  Returns the sequence number.
 */
uint64_t fpj_add(fp_journal *j, int64_t now_ms, const char *client, const char *sub,
                 uint64_t conn, json_t *entry);

typedef struct fpj_filter {
    const char *client;        /* NULL: any; "": main-port connections only */
    const char *sub;           /* NULL: any */
    uint64_t conn;             /* 0: any */
    uint64_t since;            /* entries with seq > since */
    size_t limit;              /* at most this many (oldest first) */
} fpj_filter;

/* A new JSON object {"entries": [...], "next": last seq returned or since,
 * "more": bool, "dropped": fpj_dropped(), "first_seq": oldest kept or 0,
 * "last_seq": newest or 0}.  Entries are shared (incref'd). */
json_t *fpj_query(const fp_journal *j, const fpj_filter *f);

/* Forget every entry (sequence numbers go on). */
void fpj_clear(fp_journal *j);

uint64_t fpj_dropped(const fp_journal *j);
size_t fpj_count(const fp_journal *j);
size_t fpj_bytes(const fp_journal *j);

#endif
