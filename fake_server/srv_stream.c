/*
 * srv_stream.c - the change stream, server side (WS-1..WS-5, A-2, A-4).
 *
 * A connection's life: srv_ws_open() checks path and token (WS-1, A-1) ->
 * AWAIT_HELLO (HELLO within hello_timeout_ms, WS-2) -> replay + READY, or
 * RESYNC_REQUIRED (-> RESYNC: the next HELLO is answered like a first one)
 * -> READY (events flow, heartbeats both ways) -> CLOSING (a close was
 * pushed; srv_ws_closed() forgets it).
 *
 * Close codes: 4001 token expired, 4002 protocol error (bad JSON,
 * unknown or unexpected type, no HELLO in time, a second HELLO), 4008
 * heartbeat timeout (WS-5), 1009 frame too big, 1001 shutdown.
 *
 * Timers (issue 13): each connection not CLOSING sits in c->timers, a
 * min-heap keyed by its earliest deadline (A-2 expiry, WS-2 HELLO, WS-5
 * silence, WS-4 heartbeat; conn_deadline).  The key is kept exact:
 * srv_conn_rearm() follows every change of state, last_rx_ms or
 * next_hb_ms, so srv_stream_next_deadline() is the heap's top and
 * srv_stream_tick() looks only at the connections due.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_msg.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* O(1) by the driver's id (srv_conns.c). */
static srv_conn *find_conn(srv_core *c, uint64_t id)
{
    return srv_conn_find(c, id);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * The value of `name` in a raw query string, percent-decoded ('+' is a
 * space), malloc'd; NULL when absent.  The first occurrence wins.
 */
static char *query_get(const char *query, const char *name)
{
    if (!query)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = len - nlen - 1;
            char *out = malloc(vlen + 1);
            if (!out)
                return NULL;
            /* Nothing to decode (a token is base64url): the bytes as they
             * are, not one by one through the decoder. */
            if (!memchr(v, '%', vlen) && !memchr(v, '+', vlen)) {
                memcpy(out, v, vlen);
                out[vlen] = 0;
                return out;
            }
            size_t o = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] == '%' && i + 2 < vlen && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
                    out[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
                    i += 2;
                } else {
                    out[o++] = v[i] == '+' ? ' ' : v[i];
                }
            }
            out[o] = 0;
            return out;
        }
        if (len == nlen && strncmp(p, name, nlen) == 0)
            return strdup("");
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}

char *srv_query_get(const char *query, const char *name)
{
    return query_get(query, name);
}

/*
 * WS-1 / A-1: the stream path and a valid token, else the upgrade is
 * refused (401 with a JSON reason; 404 for another path).  The token is
 * never logged: only the refusal reason is.
 */
int srv_ws_open(srv_core *c, uint64_t conn_id, const char *path, const char *query,
                char **refusal_body)
{
    if (refusal_body)
        *refusal_body = NULL;
    if (!c)
        return 500;
    if (!path || strcmp(path, HP_STREAM_PATH) != 0) {
        if (refusal_body)
            *refusal_body = hp_error_body("not_found", "no such stream endpoint");
        hp_log(&c->env, HP_LOG_INFO, "ws_refused", "conn=%llu status=404 user=- hh=- dev=-",
               (unsigned long long)conn_id);
        return 404;
    }
    char *token = query_get(query, "token");
    hp_claims cl;
    const char *reason = "missing";
    char msg[256] = "token missing";
    int ok = token && *token &&
             hp_jwt_verify_memo(c->jwt_memo, c->secret, token, srv_now(c), &cl, &reason, msg, sizeof msg) == 0;
    free(token);
    if (!ok) {
        if (refusal_body)
            *refusal_body = hp_error_body("unauthorized", msg);
        hp_log(&c->env, HP_LOG_WARNING, "token_refused",
               "where=stream conn=%llu reason=%s user=- hh=- dev=-", (unsigned long long)conn_id,
               reason ? reason : "invalid");
        return 401;
    }
    /* Admin fault refuse_upgrade (scope from the verified token). */
    srv_who who = {cl.hh, cl.sub, cl.dev[0] ? cl.dev : NULL};
    srv_afault *af = srv_fault_match(c, SRV_AF_REFUSE, &who, 0, NULL, NULL, NULL);
    if (af) {
        int st = af->status;
        srv_fault_use(c, af, "", &who);
        if (refusal_body)
            *refusal_body = hp_error_body(hp_error_code_for_status(st), "injected refusal");
        hp_log(&c->env, HP_LOG_INFO, "ws_refused", "conn=%llu status=%d user=%s hh=%s dev=%s",
               (unsigned long long)conn_id, st, cl.sub, cl.hh, srv_dash(cl.dev));
        return st;
    }
    srv_conn *old = find_conn(c, conn_id);
    if (old) {
        /* A driver reusing a live id is a driver bug; refuse rather than
         * mix two sockets' state. */
        if (refusal_body)
            *refusal_body = hp_error_body("bad_request", "connection id already in use");
        return 400;
    }
    /* Limits (docs/LIMITS.md): one user cannot take every socket, and the
     * server keeps a ceiling on the state it holds.  Counted over the
     * connections not already closing (kept by srv_conns.c: O(1)). */
    int mine = srv_conn_user_live(c, cl.sub), all = c->n_live;
    if (mine >= c->lim.conns_per_user || all >= c->lim.conns_total) {
        int per_user = mine >= c->lim.conns_per_user;
        char m[160];
        snprintf(m, sizeof m, "too many connections %s (limit %d)",
                 per_user ? "for this user" : "on this server",
                 per_user ? c->lim.conns_per_user : c->lim.conns_total);
        if (refusal_body)
            *refusal_body = hp_error_body("too_many_connections", m);
        hp_log(&c->env, HP_LOG_WARNING, "limit_reached",
               "limit=%s conn=%llu user=%s value=%d hh=%s dev=%s",
               per_user ? "conns_per_user" : "conns_total", (unsigned long long)conn_id, cl.sub,
               per_user ? c->lim.conns_per_user : c->lim.conns_total, cl.hh, srv_dash(cl.dev));
        return per_user ? 429 : 503;
    }
    srv_conn *k = calloc(1, sizeof *k);
    if (!k) {
        if (refusal_body)
            *refusal_body = hp_error_body("internal", "out of memory");
        return 503;
    }
    int64_t now = srv_now(c);
    k->id = conn_id;
    snprintf(k->dev, sizeof k->dev, "%s", cl.dev);
    k->token_exp_ms = cl.exp > INT64_MAX / 1000 ? INT64_MAX : cl.exp * 1000;
    k->hello_deadline = now + c->pol.hello_timeout_ms;
    k->last_rx_ms = now;
    k->next_hb_ms = now + c->pol.heartbeat_ms;
    k->state = SRV_CONN_AWAIT_HELLO;
    if (srv_conn_add(c, k, cl.sub, cl.hh) != 0) {
        free(k);
        if (refusal_body)
            *refusal_body = hp_error_body("internal", "out of memory");
        return 503;
    }
    srv_conn_rearm(c, k);
    /* Heartbeat drops scripted before this user connected. */
    for (srv_hb_fault **pp = &c->hb_faults; *pp;) {
        srv_hb_fault *f = *pp;
        if (!f->user || strcmp(f->user, k->user) == 0) {
            k->drop_hb += f->n;
            *pp = f->next;
            free(f->user);
            free(f);
        } else {
            pp = &f->next;
        }
    }
    hp_log(&c->env, HP_LOG_INFO, "ws_open", "conn=%llu user=%s hh=%s dev=%s",
           (unsigned long long)conn_id, k->user, k->hh, srv_dash(cl.dev));
    return 0;
}

static void replay_step_at(srv_core *c, srv_conn *k, int64_t cur, int64_t trimmed);

typedef struct replay_ctx {
    srv_core *c;
    srv_conn *k;
} replay_ctx;

static void replay_one(void *ud, int64_t rev, const char *type, const char *entity_id,
                       const char *payload)
{
    replay_ctx *r = ud;
    /* the logged text into the frame as it is: no parse and dump again */
    srv_push_send(r->c, r->k->id, srv_event_frame(type, entity_id, rev, payload));
    r->k->replay_pos = rev;
    r->k->replay_n++;
}

/*
 * WS-2: the next chunk of a replay (about replay_chunk_bytes), or READY
 * once the replay has caught up with the log.  Between chunks the
 * connection is REPLAYING: broadcasts skip it, and what is written
 * meanwhile is read from the log by a later chunk, so no event is lost or
 * sent twice and READY carries the revision of the last replayed event.
 * A log trimmed past the position meanwhile (event_retain) cannot be
 * continued: RESYNC_REQUIRED, as for a HELLO older than the log.
 */
static void replay_step(srv_core *c, srv_conn *k)
{
    int64_t cur, trimmed;
    if (srv_store_household(c->st, k->hh, &cur, &trimmed) != 0) {
        srv_push_close(c, k, 1011, "store error");
        return;
    }
    replay_step_at(c, k, cur, trimmed);
}

/* replay_step() with the household's revision and trimmed mark already
 * read (on_hello read them and wrote nothing since). */
static void replay_step_at(srv_core *c, srv_conn *k, int64_t cur, int64_t trimmed)
{
    if (k->replay_pos < trimmed) {
        srv_push_send(c, k->id, hp_msg_resync(cur));
        k->state = SRV_CONN_RESYNC;
        hp_log(&c->env, HP_LOG_INFO, "resync_required",
               "conn=%llu user=%s hello=%lld current=%lld reason=trimmed_during_replay hh=%s dev=%s",
               (unsigned long long)k->id, k->user, (long long)k->replay_from, (long long)cur,
               k->hh, srv_dash(k->dev));
        return;
    }
    if (k->replay_pos < cur) {
        replay_ctx rc = {c, k};
        int n = 0;
        if (srv_store_events_page(c->st, k->hh, k->replay_pos, c->lim.replay_chunk_bytes,
                                  replay_one, &rc, &n) != 0) {
            srv_push_close(c, k, 1011, "store error");
            return;
        }
        if (n > 0 && k->replay_pos < cur) {
            /* More to come: the driver calls srv_ws_writable() once this
             * chunk has left. */
            hp_out o = hp_out_make(HP_OUT_WS_WANT_WRITABLE, k->id);
            hp_outbox_push(srv_box(c), &o); /* after the chunk (group commit holds both) */
            return;
        }
        /* n == 0: the revisions past replay_pos have no logged event (lock
         * events are not logged): the replay has caught up. */
    }
    srv_push_send(c, k->id, hp_msg_ready(cur, c->pol.heartbeat_ms));
    k->state = SRV_CONN_READY;
    hp_log(&c->env, HP_LOG_INFO, "ready",
           "conn=%llu user=%s hello=%lld replayed=%d revision=%lld hh=%s dev=%s",
           (unsigned long long)k->id, k->user, (long long)k->replay_from, k->replay_n,
           (long long)cur, k->hh, srv_dash(k->dev));
}

/*
 * WS-2: R newer than the household's revision, or older than the retained
 * log, cannot be served by replay: RESYNC_REQUIRED, and the connection
 * waits for another HELLO.  So is a replay larger than replay_max_bytes
 * (docs/LIMITS.md): the client reloads with GET ?since=0, which carries each
 * task once instead of every version of it.  Otherwise every logged event
 * > R in revision order, streamed chunk by chunk (replay_step), then READY
 * {current, heartbeat_interval_ms}.
 */
static void on_hello(srv_core *c, srv_conn *k, int64_t r)
{
    int64_t cur, trimmed;
    if (srv_store_household(c->st, k->hh, &cur, &trimmed) != 0) {
        srv_push_close(c, k, 1011, "store error");
        return;
    }
    int too_big = 0;
    int64_t n_ev = 0, bytes = 0;
    if (r <= cur && r >= trimmed && r < cur && c->lim.replay_max_bytes > 0) {
        if (srv_store_events_size(c->st, k->hh, r, &n_ev, &bytes) != 0) {
            srv_push_close(c, k, 1011, "store error");
            return;
        }
        /* ~100 bytes of envelope per frame on top of the payload */
        too_big = (uint64_t)bytes + (uint64_t)n_ev * 100 > (uint64_t)c->lim.replay_max_bytes;
    }
    if (r > cur || r < trimmed || too_big) {
        srv_push_send(c, k->id, hp_msg_resync(cur));
        k->state = SRV_CONN_RESYNC;
        if (too_big)
            hp_log(&c->env, HP_LOG_WARNING, "limit_reached",
                   "limit=replay_max_bytes conn=%llu user=%s hello=%lld current=%lld "
                   "events=%lld bytes=%lld value=%zu hh=%s dev=%s",
                   (unsigned long long)k->id, k->user, (long long)r, (long long)cur,
                   (long long)n_ev, (long long)bytes, c->lim.replay_max_bytes, k->hh,
                   srv_dash(k->dev));
        hp_log(&c->env, HP_LOG_INFO, "resync_required",
               "conn=%llu user=%s hello=%lld current=%lld hh=%s dev=%s", (unsigned long long)k->id,
               k->user, (long long)r, (long long)cur, k->hh, srv_dash(k->dev));
        return;
    }
    k->state = SRV_CONN_REPLAYING;
    k->replay_pos = r;
    k->replay_from = r;
    k->replay_n = 0;
    replay_step_at(c, k, cur, trimmed);
}

void srv_ws_writable(srv_core *c, uint64_t conn_id)
{
    if (!c)
        return;
    srv_conn *k = find_conn(c, conn_id);
    if (!k || k->state != SRV_CONN_REPLAYING)
        return;
    /* The peer is taking the replay: that proves it alive (WS-5) while it
     * cannot yet send heartbeats of its own.  A peer that stops reading
     * stops these pulls and meets the silence timeout. */
    k->last_rx_ms = srv_now(c);
    replay_step(c, k);
    srv_conn_rearm(c, k);
}

const char *srv_ws_user(srv_core *c, uint64_t conn_id)
{
    srv_conn *k = c ? find_conn(c, conn_id) : NULL;
    return k ? k->user : NULL;
}

/* A client's HEARTBEAT naming no lock, in the two byte forms
 * hp_msg_heartbeat() writes ({"locks":[]} is what a client holding no lock
 * sends: most frames of a run).  Such a frame parses to HEARTBEAT with no
 * lock to refresh (an empty "locks" refreshes nothing, CF-1), so it is
 * answered without building and freeing its tree.  Any other bytes take
 * the full parse. */
static int lockless_heartbeat(const char *data, size_t len)
{
    static const char plain[] = "{\"type\":\"HEARTBEAT\"}";
    static const char nolocks[] = "{\"locks\":[],\"type\":\"HEARTBEAT\"}";
    return data && ((len == sizeof nolocks - 1 && memcmp(data, nolocks, len) == 0) ||
                    (len == sizeof plain - 1 && memcmp(data, plain, len) == 0));
}

void srv_ws_message(srv_core *c, uint64_t conn_id, const char *data, size_t len)
{
    if (!c)
        return;
    srv_conn *k = find_conn(c, conn_id);
    if (!k || k->state == SRV_CONN_CLOSING)
        return;
    k->last_rx_ms = srv_now(c); /* WS-5: any client message proves liveness */
    srv_conn_rearm(c, k);
    if (len > c->pol.max_frame) {
        srv_push_close(c, k, HP_CLOSE_TOO_BIG, "frame too big");
        return;
    }
    hp_msg m;
    char err[200];
    if (lockless_heartbeat(data, len)) {
        /* What hp_msg_parse would give, without its tree; the switch below
         * decides it like any other HEARTBEAT (one place for WS-2/CF-1). */
        memset(&m, 0, sizeof m);
        m.type = HP_MSG_HEARTBEAT;
        m.revision = -1;
    } else if (!data || hp_msg_parse(data, len, &m, err, sizeof err) != 0) {
        srv_push_close(c, k, HP_CLOSE_PROTOCOL, data ? err : "no data");
        return;
    }
    switch (m.type) {
    case HP_MSG_HELLO:
        if (k->state == SRV_CONN_READY || k->state == SRV_CONN_REPLAYING)
            srv_push_close(c, k, HP_CLOSE_PROTOCOL, "second HELLO");
        else
            on_hello(c, k, m.revision);
        break;
    case HP_MSG_HEARTBEAT:
        if (k->state == SRV_CONN_AWAIT_HELLO) {
            srv_push_close(c, k, HP_CLOSE_PROTOCOL, "HELLO must come first");
            break;
        }
        /* CF-1: the client's heartbeat refreshes the locks it edits. */
        if (m.locks)
            srv_lock_refresh_list(c, k->hh, k->user, k->dev, m.locks);
        break;
    case HP_MSG_UNKNOWN:
        srv_push_close(c, k, HP_CLOSE_PROTOCOL, "unknown message type");
        break;
    default:
        /* READY, RESYNC_REQUIRED and events are server messages. */
        srv_push_close(c, k, HP_CLOSE_PROTOCOL, "unexpected message type from a client");
        break;
    }
    hp_msg_clear(&m);
    srv_conn_rearm(c, k); /* a HELLO ends the WS-2 timer */
}

void srv_ws_closed(srv_core *c, uint64_t conn_id)
{
    if (!c)
        return;
    srv_conn *k = find_conn(c, conn_id);
    if (!k)
        return;
    hp_log(&c->env, HP_LOG_INFO, "ws_closed", "conn=%llu user=%s hh=%s dev=%s",
           (unsigned long long)conn_id, k->user, k->hh, srv_dash(k->dev));
    srv_conn_remove(c, k); /* k->user goes with it */
    free(k);
}

void srv_shutdown(srv_core *c)
{
    if (!c)
        return;
    srv_flush(c); /* the group's answers go out before the closes */
    for (srv_conn *k = c->conns; k; k = k->next)
        srv_push_close(c, k, HP_CLOSE_GOING_AWAY, "server shutdown");
}

/*
 * WS-5: "closes 4008 after 2 missed client heartbeats".  A client that
 * missed ONE heartbeat sends its next one exactly 2 intervals after the
 * previous, so a deadline of exactly 2 intervals races its arrival (on real
 * sockets the close won most of the time).  The second heartbeat counts as
 * missed only half an interval after it was due: 75 s of silence by
 * default, well before a third would be due (90 s).
 */
static int64_t hb_grace(const srv_core *c)
{
    return c->pol.heartbeat_ms / 2;
}

/*
 * The earliest of k's deadlines: A-2 token expiry, WS-2 HELLO (only while
 * awaiting it), WS-5 silence, WS-4 next heartbeat; INT64_MAX when CLOSING
 * (no timers).  The heap key of k.
 */
static int64_t conn_deadline(const srv_core *c, const srv_conn *k)
{
    int64_t silence = c->pol.heartbeat_ms * (c->pol.heartbeat_misses > 0 ? c->pol.heartbeat_misses : 1);
    silence += hb_grace(c);
    int64_t d = INT64_MAX;
    if (k->state != SRV_CONN_CLOSING) {
        int64_t t[4] = {k->token_exp_ms, k->state == SRV_CONN_AWAIT_HELLO ? k->hello_deadline : INT64_MAX,
                        k->last_rx_ms + silence, k->next_hb_ms};
        for (int i = 0; i < 4; i++)
            if (t[i] < d)
                d = t[i];
    }
    return d;
}

void srv_conn_rearm(srv_core *c, srv_conn *k)
{
    if (k->state == SRV_CONN_CLOSING) {
        srv_heap_remove(&c->timers, &k->timer);
        return;
    }
    /* Cannot fail: srv_conn_add() reserved a slot for every connection. */
    (void)srv_heap_set(&c->timers, &k->timer, conn_deadline(c, k));
}

static int by_open_order(const void *a, const void *b)
{
    const srv_conn *x = *(srv_conn *const *)a, *y = *(srv_conn *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Takes every connection whose earliest deadline is at or before now out
 * of the heap into c->due, in open order (the order a scan of c->conns
 * had, so a simulation's trace does not depend on the heap's shape);
 * returns how many.
 */
static size_t take_due(srv_core *c, int64_t now)
{
    size_t n = 0;
    srv_heap_node *x;
    while ((x = srv_heap_top(&c->timers)) && x->key <= now) {
        srv_heap_pop(&c->timers);
        c->due[n++] = (srv_conn *)((char *)x - offsetof(srv_conn, timer));
    }
    if (n > 1)
        qsort(c->due, n, sizeof *c->due, by_open_order);
    return n;
}

/*
 * Per connection due, in open order: A-2 token expiry (4001), WS-2 HELLO
 * timeout (4002), WS-5 silence (4008), WS-4 heartbeat.  A heartbeat that
 * fell behind (the driver ticked late) is sent once and rescheduled from
 * now rather than bursting.  A connection not due has nothing to do: none
 * of its deadlines is reached (conn_deadline is their minimum).
 */
void srv_stream_tick(srv_core *c)
{
    int64_t now = srv_now(c);
    int64_t silence = c->pol.heartbeat_ms * (c->pol.heartbeat_misses > 0 ? c->pol.heartbeat_misses : 1);
    silence += hb_grace(c);
    size_t n_due = take_due(c, now);
    for (size_t i = 0; i < n_due; i++) {
        srv_conn *k = c->due[i];
        if (k->state == SRV_CONN_CLOSING)
            continue;
        if (now >= k->token_exp_ms) {
            srv_push_close(c, k, HP_CLOSE_AUTH, "token expired");
            continue;
        }
        if (k->state == SRV_CONN_AWAIT_HELLO && now >= k->hello_deadline) {
            srv_push_close(c, k, HP_CLOSE_PROTOCOL, "no HELLO");
            continue;
        }
        if (now >= k->last_rx_ms + silence) {
            hp_log(&c->env, HP_LOG_WARNING, "heartbeat_timeout",
                   "conn=%llu user=%s silent_ms=%lld hh=%s dev=%s", (unsigned long long)k->id,
                   k->user, (long long)(now - k->last_rx_ms), k->hh, srv_dash(k->dev));
            srv_push_close(c, k, HP_CLOSE_HEARTBEAT, "heartbeat timeout");
            continue;
        }
        if (now >= k->next_hb_ms) {
            srv_who who = {k->hh, k->user, k->dev[0] ? k->dev : NULL};
            srv_afault *af = k->drop_hb > 0 ? NULL
                                            : srv_fault_match(c, SRV_AF_DROP_HB, &who, 0, NULL,
                                                              NULL, NULL);
            if (k->drop_hb > 0) {
                k->drop_hb--; /* fault: the heartbeat is "lost" */
                hp_log(&c->env, HP_LOG_INFO, "heartbeat_dropped",
                       "conn=%llu user=%s left=%d hh=%s dev=%s", (unsigned long long)k->id,
                       k->user, k->drop_hb, k->hh, srv_dash(k->dev));
            } else if (af) {
                char what[64];
                snprintf(what, sizeof what, "conn=%llu", (unsigned long long)k->id);
                srv_fault_use(c, af, what, &who); /* admin fault: the heartbeat is "lost" */
            } else {
                srv_push_send(c, k->id, hp_msg_heartbeat(NULL));
            }
            k->next_hb_ms += c->pol.heartbeat_ms;
            if (k->next_hb_ms <= now)
                k->next_hb_ms = now + c->pol.heartbeat_ms;
        }
    }
    /* Back into the heap at their next deadline (out of it when closed). */
    for (size_t i = 0; i < n_due; i++)
        srv_conn_rearm(c, c->due[i]);
}

int64_t srv_stream_next_deadline(const srv_core *c)
{
    return srv_heap_min(&c->timers);
}

void srv_conn_free_all(srv_core *c)
{
    srv_conn_table_free(c);
}
