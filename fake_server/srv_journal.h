/*
 * srv_journal.h - what a session saw: requests, responses, frames, closes
 * and its WARNING/ERROR log lines, in order (sans-I/O).
 *
 * Entries are JSON objects with "seq" (1, 2, ... per session), "t" (epoch
 * ms), "kind" ("http", "ws_open", "ws_in", "ws_out", "ws_close",
 * "ws_refused", "log") and, when known from the verified token, "household",
 * "user", "device".  "http": method, path, query (tokens redacted),
 * headers (never Authorization), body, status, response body.  Frames:
 * conn, type, revision, body.  Bodies are kept up to SRV_JOURNAL_BODY_MAX
 * bytes ("truncated": true beyond).
 *
 * Bounded: the oldest entries are dropped past SRV_JOURNAL_MAX ("dropped"
 * in the query answer tells how many).  Owned by its session.
 */
#ifndef SRV_JOURNAL_H
#define SRV_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SRV_JOURNAL_MAX 5000
#define SRV_JOURNAL_BODY_MAX 8192

typedef struct srv_journal srv_journal;

srv_journal *srv_journal_new(void);
void srv_journal_free(srv_journal *j);
void srv_journal_clear(srv_journal *j);
size_t srv_journal_count(const srv_journal *j);

/* Who an entry is about; any field may be NULL or "". */
typedef struct srv_jwho {
    const char *hh, *user, *dev;
} srv_jwho;

/* A seq taken now for an entry recorded later: a request's entry is
 * written once it is answered but keeps its place before the frames its
 * handling sent (pass it as seq; 0 = the next one). */
uint64_t srv_journal_reserve(srv_journal *j);
void srv_journal_http(srv_journal *j, int64_t t, const char *method, const char *path,
                      const char *query, json_t *headers /* stolen, may be NULL */,
                      const char *body, size_t body_len, int status, const char *resp,
                      size_t resp_len, int64_t hold_ms, const srv_jwho *who, uint64_t seq);
/* dir: "ws_in" / "ws_out". */
void srv_journal_frame(srv_journal *j, int64_t t, const char *dir, uint64_t conn,
                       const char *data, size_t len, const srv_jwho *who);
/* kind: "ws_open", "ws_close", "ws_refused"; code: close code or status. */
void srv_journal_conn(srv_journal *j, int64_t t, const char *kind, uint64_t conn, int code,
                      const char *reason, const srv_jwho *who);
void srv_journal_log(srv_journal *j, int64_t t, const char *level, const char *msg,
                     const char *fields);

/* Entries with seq > since, optionally only those of device / kind, at
 * most limit (1..SRV_JOURNAL_MAX): {"entries": [...], "next": seq to pass
 * as since, "dropped": n}.  New reference. */
json_t *srv_journal_query(srv_journal *j, uint64_t since, const char *device, const char *kind,
                          size_t limit);

/* WireMock-style verification.  body: {"pattern": P, "count"?: n,
 * "at_least"?: n, "at_most"?: n} or {"sequence": [P, P, ...]} (each must
 * occur after the previous).  A pattern matches an entry when every key
 * is equal (strings with '*' are globs; "status": 409; "body_contains":
 * text).  Returns 0 with *result {"ok", "matched", "seqs"} or -1 with err
 * (bad body). */
int srv_journal_verify(srv_journal *j, const json_t *body, json_t **result, char *err,
                       size_t errlen);

#endif
