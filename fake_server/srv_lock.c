/*
 * srv_lock.c - CF-1 soft-locks.
 *
 * A lock is (household, task id) -> holder + expiry, kept in memory only:
 * it is advisory, never blocks a write, and a restarted server simply
 * starts without locks (clients re-take them on their next edit).  Every
 * change is broadcast as LOCK_REFRESHED {holder, expires_at, state} with the
 * household's current revision and is NOT appended to the event log (SPEC
 * §3: locks are not in the log).
 *
 * expires_at is an RFC 3339 UTC string: for "held" the instant the lock
 * will expire, for "expired" the instant it did, for "released" the
 * instant of the release.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_msg.h"
#include "hp_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *srv_lock_json(const srv_lock *l)
{
    char ts[40];
    hp_time_format_utc(l->expires_ms, ts, sizeof ts);
    return json_pack("{s:s, s:s, s:s}", "holder", l->holder, "expires_at", ts, "state", "held");
}

/* CF-1: broadcast one lock change to the household. */
static void announce(srv_core *c, const srv_lock *l, const char *state, int64_t at_ms)
{
    char ts[40];
    hp_time_format_utc(at_ms, ts, sizeof ts);
    json_t *p = json_pack("{s:s, s:s, s:s}", "holder", l->holder, "expires_at", ts, "state", state);
    int64_t rev = srv_store_revision(c->st, l->hh);
    srv_broadcast_event(c, l->hh, "LOCK_REFRESHED", l->id, rev < 0 ? 0 : rev, p);
    json_decref(p);
    hp_log(&c->env, HP_LOG_INFO, "lock", "entity=task/%s user=%s state=%s expires_at=%s hh=%s dev=%s",
           l->id, l->holder, state, ts, l->hh, srv_dash(l->dev));
}

static srv_lock *find(srv_core *c, const char *hh, const char *id)
{
    for (srv_lock *l = c->locks; l; l = l->next)
        if (strcmp(l->hh, hh) == 0 && strcmp(l->id, id) == 0)
            return l;
    return NULL;
}

static void unlink_lock(srv_core *c, srv_lock *x)
{
    for (srv_lock **pp = &c->locks; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            return;
        }
    }
}

/*
 * CF-1: take a free (or expired) lock, or refresh one the same user holds,
 * for lock_ttl_ms from now.  Another user's live lock is not touched:
 * returns 1 with *out pointing at it (the REST layer answers 423).  A lock
 * whose expiry has passed but whose tick has not run yet counts as free;
 * its expiry is announced first so observers see expired, then held.
 */
int srv_lock_take(srv_core *c, const char *hh, const char *id, const char *user, const char *dev,
                  srv_lock **out)
{
    int64_t now = srv_now(c);
    srv_lock *l = find(c, hh, id);
    if (l && l->expires_ms <= now) {
        announce(c, l, "expired", l->expires_ms);
        unlink_lock(c, l);
        free(l);
        l = NULL;
    }
    if (l && strcmp(l->holder, user) != 0) {
        *out = l;
        return 1;
    }
    if (!l) {
        /* docs/LIMITS.md: the locks one user holds are bounded, so one
         * client cannot grow the lock table (and every LOCK_REFRESHED
         * burst) without end.  Expired ones not yet reaped do not count. */
        int held = 0;
        for (srv_lock *o = c->locks; o; o = o->next)
            if (o->expires_ms > now && strcmp(o->holder, user) == 0 && strcmp(o->hh, hh) == 0)
                held++;
        if (held >= c->lim.locks_per_user) {
            hp_log(&c->env, HP_LOG_WARNING, "limit_reached",
                   "limit=locks_per_user entity=task/%s user=%s value=%d hh=%s dev=%s", id, user,
                   c->lim.locks_per_user, hh, srv_dash(dev));
            *out = NULL;
            return 2;
        }
        l = calloc(1, sizeof *l);
        if (!l)
            return -1;
        snprintf(l->hh, sizeof l->hh, "%s", hh);
        snprintf(l->id, sizeof l->id, "%s", id);
        snprintf(l->holder, sizeof l->holder, "%s", user);
        srv_lock **pp = &c->locks;
        while (*pp)
            pp = &(*pp)->next;
        *pp = l;
    }
    l->expires_ms = now + c->pol.lock_ttl_ms;
    snprintf(l->dev, sizeof l->dev, "%s", dev ? dev : "");
    announce(c, l, "held", l->expires_ms);
    *out = l;
    return 0;
}

/* CF-1: released on save/cancel by its holder.  Releasing a lock one does
 * not hold changes nothing (returns 0, or -1 when someone else holds it). */
int srv_lock_release(srv_core *c, const char *hh, const char *id, const char *user,
                     const char *dev)
{
    srv_lock *l = find(c, hh, id);
    if (!l)
        return 0;
    if (strcmp(l->holder, user) != 0)
        return l->expires_ms <= srv_now(c) ? 0 : -1;
    snprintf(l->dev, sizeof l->dev, "%s", dev ? dev : "");
    announce(c, l, "released", srv_now(c));
    unlink_lock(c, l);
    free(l);
    return 1;
}

/* CF-1: a client HEARTBEAT's "locks" refreshes those of the listed ids
 * that this user holds in this household; other ids are ignored (a lock is
 * taken only by POST .../lock).  Bounded (docs/LIMITS.md): only the first
 * heartbeat_lock_ids entries are read, and a lock named twice is refreshed
 * (and announced) once, so one HEARTBEAT cannot make more LOCK_REFRESHED
 * frames than the user holds locks. */
void srv_lock_refresh_list(srv_core *c, const char *hh, const char *user, const char *dev,
                           const json_t *ids)
{
    size_t i;
    json_t *v;
    int64_t now = srv_now(c);
    int64_t until = now + c->pol.lock_ttl_ms;
    size_t n = json_array_size(ids);
    if (n > (size_t)c->lim.heartbeat_lock_ids)
        hp_log(&c->env, HP_LOG_WARNING, "limit_reached",
               "limit=heartbeat_lock_ids user=%s ids=%zu value=%d hh=%s dev=%s", user, n,
               c->lim.heartbeat_lock_ids, hh, srv_dash(dev));
    json_array_foreach((json_t *)ids, i, v) {
        if (i >= (size_t)c->lim.heartbeat_lock_ids)
            break;
        const char *id = json_string_value(v);
        if (!id)
            continue;
        srv_lock *l = find(c, hh, id);
        if (!l || strcmp(l->holder, user) != 0 || l->expires_ms <= now || l->expires_ms == until)
            continue;
        l->expires_ms = until;
        snprintf(l->dev, sizeof l->dev, "%s", dev ? dev : "");
        announce(c, l, "held", l->expires_ms);
    }
}

/* CF-1: locks whose time has come expire, in acquisition order. */
void srv_lock_expire(srv_core *c)
{
    int64_t now = srv_now(c);
    srv_lock **pp = &c->locks;
    while (*pp) {
        srv_lock *l = *pp;
        if (l->expires_ms <= now) {
            announce(c, l, "expired", l->expires_ms);
            *pp = l->next;
            free(l);
        } else {
            pp = &l->next;
        }
    }
}

int64_t srv_lock_next_deadline(const srv_core *c)
{
    int64_t d = INT64_MAX;
    for (const srv_lock *l = c->locks; l; l = l->next)
        if (l->expires_ms < d)
            d = l->expires_ms;
    return d;
}

void srv_lock_free_all(srv_core *c)
{
    for (srv_lock *l = c->locks, *n; l; l = n) {
        n = l->next;
        free(l);
    }
    c->locks = NULL;
}
