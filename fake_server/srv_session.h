/*
 * srv_session.h - isolated worlds on one hp-fake-server (sans-I/O).
 *
 * A session owns a store, a core over it, a JWT secret, a policy (with its
 * own overrides and time scale), a journal (srv_journal.h) and a logger
 * whose lines carry "session=ID".  Sessions share nothing: two CI jobs or
 * two teams on one server never see each other's households, revisions,
 * faults, journal entries or log lines.
 *
 * The "default" session is the --db store with --jwt-secret: requests
 * without a /s/{id} prefix use it, so existing clients keep working.  Other
 * sessions live in memory (":memory:" store) and are deleted with their
 * data.
 *
 * Ownership: the registry owns every session; env clock, rng and the base
 * policy are copied.  The driver (srv_lws.c) must drain a session's outbox
 * before it is freed or its core replaced: it registers on_retire, called
 * with the session right before (the core's outbox holds the 1001 closes
 * pushed by srv_shutdown at that point).
 *
 * Limits (docs/ADMIN_API.md): at most SRV_SESSIONS_MAX sessions; ids are
 * 1-32 characters of [a-z0-9-]; time_scale in (0, 1e6].
 */
#ifndef SRV_SESSION_H
#define SRV_SESSION_H

#include <stdint.h>
#include <jansson.h>
#include "hp_env.h"
#include "hp_policy.h"
#include "srv_core.h"

#define SRV_SESSIONS_MAX 64
#define SRV_SESSION_ID_MAX 32

typedef struct srv_journal srv_journal;

typedef struct srv_session {
    char id[SRV_SESSION_ID_MAX + 1];
    int is_default;
    srv_store *st;
    int own_store;            /* 1: freed with the session */
    srv_core *core;
    char *secret;
    hp_policy pol;            /* overrides applied, then scaled */
    double time_scale;
    json_t *overrides;        /* the policy overrides as given (object) */
    hp_env env;               /* clock and rng shared, logger own */
    hp_logger logger;
    srv_journal *journal;
    int retry_after_date;     /* Retry-After written as an HTTP-date */
    int64_t created_ms;
    uint64_t restarts;
    struct srv_sessions *reg;
    struct srv_session *next;
} srv_session;

typedef void (*srv_session_retire_fn)(void *ud, srv_session *s);

typedef struct srv_sessions {
    srv_session *list;        /* creation order; default first */
    size_t n;
    hp_env base_env;          /* clock, rng; logger is the base sink */
    hp_log_level level;
    hp_policy base_pol;       /* --policy applied, not scaled */
    double default_scale;
    srv_session_retire_fn on_retire;
    void *retire_ud;
    int group_commit;         /* srv_set_group_commit() on every new core */
    srv_limits lim;           /* srv_set_limits() on every core */
    int have_lim;
    uint64_t next_auto;
} srv_sessions;

/* The registry with its default session over st (borrowed) and secret
 * (copied); base_pol has --policy applied but is NOT yet scaled by
 * time_scale.  NULL on failure. */
srv_sessions *srv_sessions_new(const hp_env *env, hp_log_level level, const hp_policy *base_pol,
                               double time_scale, const char *secret, srv_store *st);
/* Frees every session (on_retire is called for each). */
void srv_sessions_free(srv_sessions *r);

/* Resource limits for every core, now and later (copied; each session's
 * core counts its own connections and locks). */
void srv_sessions_set_limits(srv_sessions *r, const srv_limits *l);

srv_session *srv_session_find(srv_sessions *r, const char *id);
srv_session *srv_session_default(srv_sessions *r);

/* Create from an admin body {"id"?, "jwt_secret"?, "time_scale"?,
 * "policy"?: {...}} (strict: unknown keys refused).  Returns the session,
 * or NULL with *status (400 bad body, 409 id taken, 429 too many, 500) and
 * err. */
srv_session *srv_session_create(srv_sessions *r, const json_t *body, int *status, char *err,
                                size_t errlen);
/* Delete a non-default session with its data.  0, or -1 (default / none). */
int srv_session_delete(srv_sessions *r, const char *id);
/* Empty the session's world (households, journal, faults), sockets closed
 * 1001, same id, secret and policy.  0 or -1. */
int srv_session_reset(srv_session *s);
/* A restart: every socket closed 1001, a new core over the same store
 * (locks are lost as on a real restart; faults are kept).  0 or -1. */
int srv_session_restart(srv_session *s);

/* {"id", "default", "base_url", "stream_url", "time_scale", "policy",
 * "created_at", "connections", "households", "journal_entries", "faults"} */
json_t *srv_session_json(srv_session *s);

/* Ids are 1-32 of [a-z0-9-]. */
int srv_session_id_valid(const char *id);

#endif
