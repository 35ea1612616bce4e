/*
 * hp_log.h - the one structured logger of the project.
 *
 * A record is: time, level, actor, message, and "key=value" fields.  Every
 * record goes through hp_log(), which redacts tokens before any sink
 * sees it, so no sink can leak one.  The text form is one line:
 *
 *   2026-11-25T10:00:00.000Z WARNING fake_server conflict entity=task/t1 base=5 current=7 user=alice
 *
 * Sinks: hp_log_stderr_sink() writes that line to stderr; the harness installs
 * its own sink to capture records for assertions.
 */
#ifndef HP_LOG_H
#define HP_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum hp_log_level {
    HP_LOG_DEBUG = 0,
    HP_LOG_INFO = 1,
    HP_LOG_WARNING = 2,
    HP_LOG_ERROR = 3
} hp_log_level;

/* A record as handed to a sink.  All strings are owned by the logger and are
 * valid only during the sink call: copy what you keep. */
typedef struct hp_log_record {
    int64_t time_ms;       /* epoch milliseconds, from the env clock */
    hp_log_level level;
    const char *actor;     /* "fake_server", "alice", ... */
    const char *msg;       /* short event name: "conflict", "ws_closed", ... */
    const char *fields;    /* "k=v k=v", already redacted; "" when none */
} hp_log_record;

typedef void (*hp_log_sink)(void *ud, const hp_log_record *rec);

typedef struct hp_logger {
    hp_log_sink sink;      /* public: NULL drops every record */
    void *ud;              /* public: handed to sink */
    hp_log_level min_level;/* public: records below are dropped */
} hp_logger;

struct hp_env;

/* Log through env's logger with env's clock and actor.  fields_fmt is a
 * printf format producing "k=v k=v" (may be NULL).  Values containing spaces
 * should be quoted by the caller ("title=\"a b\"").  Tokens are redacted
 * from actor, msg and fields; then newline, CR and tab are written
 * as the two-character escapes \n, \r, \t and other control characters as
 * '?', so a record is always one line. */
void hp_log(const struct hp_env *env, hp_log_level level, const char *msg,
            const char *fields_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Redact in place: every JWT-looking substring (three base64url segments, the
 * first starting "eyJ") and the value of every "token=" becomes "[REDACTED]";
 * so do the value after "Bearer " and after a JSON "token": key (all
 * keywords case-insensitive, so "access_token=" is covered too).
 * The string can only shrink or keep its length... except when a value is
 * shorter than "[REDACTED]"; so the result is written to out (outlen bytes,
 * always NUL-terminated, truncated if needed). */
void hp_log_redact(const char *in, char *out, size_t outlen);

/* 1 when hp_log_redact() would change s, i.e. s holds something that looks
 * like a token.  For checks such as the harness' "no token in any log"
 * invariant.  NULL => 0. */
int hp_log_has_secret(const char *s);

/* Format a record as one line without trailing newline into buf.  Returns
 * the length written (truncated to buflen-1). */
size_t hp_log_format(const hp_log_record *rec, char *buf, size_t buflen);

/* "DEBUG", "INFO", "WARNING", "ERROR" */
const char *hp_log_level_name(hp_log_level level);
/* Parses a level name (case-insensitive); returns 0 or -1. */
int hp_log_level_parse(const char *s, hp_log_level *out);

/* A sink that writes hp_log_format() + "\n" to stderr (ud unused). */
void hp_log_stderr_sink(void *ud, const hp_log_record *rec);

#endif
