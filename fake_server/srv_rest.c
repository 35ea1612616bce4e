/*
 * srv_rest.c - the REST API (SPEC §3): routing, auth, every answer.
 *
 * Order of checks for one request, so each bad input gets one well-defined
 * answer and nothing is applied:
 *   OPTIONS (CORS preflight: 204, no auth) -> scripted failures (fault) ->
 *   Bearer token (A-1, 401) -> route (404) -> method (405) -> task id (400)
 *   -> Idempotency-Key (PUT/DELETE: replay, or 422 for a key reused on
 *   another request, Q-3) -> Content-Length (411) -> size
 *   (413) -> body / query (400) -> state (404, 409) -> write.
 * Every write is one store transaction (task + event + idempotency
 * result); the response and the TASK_UPDATED broadcast are pushed only
 * after COMMIT (with group commit, srv_group.c, several writes share one
 * transaction and everything they push is held until its COMMIT).  A store failure answers 503 "internal" with Retry-After,
 * never a 500 for bad input.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_jload.h"
#include "hp_msg.h"
#include "hp_util.h"
#include "hp_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct rq {
    srv_core *c;
    const srv_http_req *req;
    const char *method;
    const char *path;
    const hp_claims *cl;     /* NULL before auth */
    int64_t hold_ms;         /* admin fault hold_response */
} rq;

/* Pushes the one response of this request and logs it (INFO; never the
 * query string, which may hold a token, A-4).  Takes ownership of body. */
static void reply(rq *r, int status, char *body, int retry_after_s)
{
    /* The Idempotency-Key is logged (it is a mutation id, not a secret) so
     * retries can be matched from outside (real-mode `same_idem_key`); any
     * byte that could break the key=value line becomes '_'. */
    char idem[SRV_IDEM_KEY_MAX + 8] = "";
    const char *k = r->req->idem_key;
    if (k && *k) {
        size_t n = strlen(k), o = 0;
        memcpy(idem, " idem=", 6);
        o = 6;
        for (size_t i = 0; i < n && i < SRV_IDEM_KEY_MAX; i++) {
            char ch = k[i];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || strchr("-_.:~+/", ch);
            idem[o++] = ok && ch ? ch : '_';
        }
        idem[o] = '\0';
    }
    hp_log(&r->c->env, HP_LOG_INFO, "request",
           "method=%.16s path=%.200s status=%d user=%s%s hh=%s dev=%s", r->method, r->path,
           status, r->cl ? r->cl->sub : "-", idem, r->cl ? r->cl->hh : "-",
           r->cl && r->cl->dev[0] ? r->cl->dev : "-");
    srv_push_response_held(r->c, r->req->id, status, body, retry_after_s, r->hold_ms);
}

static void reply_error(rq *r, int status, const char *message)
{
    reply(r, status, hp_error_body(hp_error_code_for_status(status), message), -1);
}

static void reply_json(rq *r, int status, const json_t *v)
{
    reply(r, status, hp_json_dump(v), -1);
}

/* Store trouble is the server's, not the client's: 503 + Retry-After so a
 * client retries, and an ERROR line for the operator. */
static void reply_store_error(rq *r, const char *op)
{
    hp_log(&r->c->env, HP_LOG_ERROR, "store_error", "op=%s error=\"%s\"", op,
           srv_store_errmsg(r->c->st));
    srv_tx_abort(r->c);
    reply(r, 503, hp_error_body("internal", "storage unavailable, retry later"), 1);
}

/* ---- faults ----------------------------------------------------------- */

/* A scripted failure answers without applying anything.  Oldest matching
 * fault first; it is used up after `left` requests. */
static int apply_fail_fault(rq *r)
{
    srv_core *c = r->c;
    /* Admin-API faults: unscoped ones before authentication (like the
     * scripted ones), scoped ones once the token names the scope. */
    srv_who who = {r->cl ? r->cl->hh : NULL, r->cl ? r->cl->sub : NULL,
                   r->cl && r->cl->dev[0] ? r->cl->dev : NULL};
    srv_afault *af = srv_fault_match(c, SRV_AF_HOLD, r->cl ? &who : NULL, r->cl != NULL, r->method, r->path,
                                     NULL);
    if (af) {
        r->hold_ms = af->hold_ms;
        srv_fault_use(c, af, "", r->cl ? &who : NULL);
    }
    af = srv_fault_match(c, SRV_AF_FAIL, r->cl ? &who : NULL, r->cl != NULL, r->method, r->path, NULL);
    if (af) {
        int status = af->status, ra = af->retry_after_s;
        srv_fault_use(c, af, "", r->cl ? &who : NULL);
        reply(r, status, hp_error_body(hp_error_code_for_status(status), "injected failure"),
              ra >= 0 ? ra : -1);
        return 1;
    }
    if (r->cl)
        return 0; /* the scripted faults were checked before authentication */
    for (srv_fail_fault **pp = &c->fails; *pp; pp = &(*pp)->next) {
        srv_fail_fault *f = *pp;
        if (f->method && strcasecmp(f->method, r->method) != 0)
            continue;
        if (f->prefix && strncmp(r->path, f->prefix, strlen(f->prefix)) != 0)
            continue;
        int status = f->status, ra = f->retry_after_s;
        if (--f->left <= 0) {
            *pp = f->next;
            free(f->method);
            free(f->prefix);
            free(f);
        }
        /* scripted faults fire before the token is checked: nobody known yet */
        hp_log(&c->env, HP_LOG_INFO, "fault_applied",
               "kind=fail_requests method=%.16s path=%.200s status=%d user=- hh=- dev=-",
               r->method, r->path, status);
        reply(r, status, hp_error_body(hp_error_code_for_status(status), "injected failure"),
              ra >= 0 ? ra : -1);
        return 1;
    }
    return 0;
}

/* Consumes a "force 409" fault for id; 1 when one was armed. */
static int take_forced_conflict(rq *r, const char *id)
{
    srv_core *c = r->c;
    srv_who who = {r->cl->hh, r->cl->sub, r->cl->dev[0] ? r->cl->dev : NULL};
    srv_afault *af = srv_fault_match(c, SRV_AF_CONFLICT, &who, 0, NULL, NULL, id);
    if (af) {
        srv_fault_use(c, af, "", &who);
        return 1;
    }
    for (srv_name **pp = &c->force_409; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, id) == 0) {
            srv_name *f = *pp;
            *pp = f->next;
            free(f->name);
            free(f);
            return 1;
        }
    }
    return 0;
}

/* ---- auth (A-1) ------------------------------------------------------- */

/* 0 with *cl filled, or -1 after answering 401 with the reason.  Only the
 * reason is logged, never the header. */
static int authenticate(rq *r, hp_claims *cl)
{
    const char *h = r->req->authorization;
    const char *reason = "missing";
    char msg[256] = "Authorization: Bearer <token> required";
    if (h) {
        while (*h == ' ')
            h++;
        if (strncasecmp(h, "Bearer ", 7) == 0) {
            const char *tok = h + 7;
            while (*tok == ' ')
                tok++;
            if (hp_jwt_verify_memo(r->c->jwt_memo, r->c->secret, tok, srv_now(r->c), cl, &reason,
                                   msg, sizeof msg) == 0)
                return 0;
        } else {
            reason = "malformed";
            snprintf(msg, sizeof msg, "Authorization must be \"Bearer <token>\"");
        }
    }
    /* A refused token names nobody: its claims are not trusted. */
    hp_log(&r->c->env, HP_LOG_WARNING, "token_refused",
           "where=rest method=%.16s path=%.200s reason=%s user=- hh=- dev=-", r->method, r->path,
           reason ? reason : "invalid");
    reply_error(r, 401, msg);
    return -1;
}

/* ---- helpers ---------------------------------------------------------- */

/* Strict decimal revision 0..HP_REVISION_MAX (no sign, no spaces, no
 * overflow: issue 11, every number from outside has a range). */
static int parse_rev(const char *s, int64_t *out)
{
    int64_t v = hp_parse_decimal(s, HP_REVISION_MAX);
    if (v < 0)
        return -1;
    *out = v;
    return 0;
}

#define REV_RANGE "an integer revision from 0 to 9007199254740991"

/* CF-4 (server): every 409 sent is logged at WARNING with entity, base,
 * current and user; the body carries the current task (CF-2 input). */
static void reply_conflict(rq *r, const char *id, int64_t base, const json_t *cur,
                           const char *why)
{
    int64_t crev = json_integer_value(json_object_get(cur, "revision"));
    hp_log(&r->c->env, HP_LOG_WARNING, "conflict",
           "entity=task/%s base=%lld current=%lld user=%s hh=%s dev=%s", id, (long long)base,
           (long long)crev, r->cl->sub, r->cl->hh, srv_dash(r->cl->dev));
    char msg[200];
    snprintf(msg, sizeof msg, "%s (base %lld, current %lld)", why, (long long)base,
             (long long)crev);
    json_t *extra = json_pack("{s:O}", "current", (json_t *)cur);
    reply(r, 409, srv_error_body("conflict", msg, extra), -1);
    json_decref(extra);
}

/*
 * Q-3, Idempotency-Key (SPEC §3, IETF draft; srv_idem.c): the same request
 * again answers the stored first result; the same key on another request
 * (method, path, query or body) is 422 idempotency_key_reused.  Nothing is
 * applied in either case.  Only 2xx results are stored, so a retry after a
 * 409 is answered afresh.  Returns 1 when answered, 0 to go on.
 */
static int idem_replay(rq *r, const json_t *parsed, srv_idem *id)
{
    int status = 0;
    char *body = NULL;
    char msg[400];
    int rc = srv_idem_check(r->c, r->req, parsed, r->method, r->path, r->cl, id, &status, &body,
                            msg, sizeof msg);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        reply_store_error(r, "idempotency");
        return 1;
    }
    if (body)
        reply(r, status, body, -1);
    else
        reply_error(r, status, msg);
    return 1;
}

/* After COMMIT: TASK_UPDATED to the household (WS-3) and the reminder
 * cache (a remind_at in the past fires at the next tick, R-1).  text is
 * hp_json_dump(task) (commit_write's).  When the last lookup found no
 * unfired reminder and this task is no candidate, the write added none
 * (it can only have taken its own row out): the cache stays right without
 * the lookup.  Every other store change refreshes it too (srv_remind.c,
 * srv_group.c, srv_new), removes candidates only (a session wipe) or
 * restores the state the last lookup saw (a write's rollback). */
static void after_write(srv_core *c, const char *hh, const json_t *task, const char *text)
{
    srv_broadcast_event_text(c, hh, "TASK_UPDATED",
                             json_string_value(json_object_get(task, "id")),
                             json_integer_value(json_object_get(task, "revision")), text);
    if (!c->reminders_none || srv_store_task_reminds(task))
        srv_refresh_reminder(c);
}

/*
 * Stores `task` as the household's next revision with its TASK_UPDATED
 * event and (when keyed) the idempotency result, in the open transaction,
 * then commits.  0 on success (task updated in place, *text its
 * hp_json_dump(), owned by the caller: the task's row, its event's
 * payload, the idempotency record, the 200 body and the broadcast are
 * that one text), -1 on a store error (rolled back, answered 503).
 */
static int commit_write(rq *r, json_t *task, const srv_idem *key, char **text)
{
    srv_core *c = r->c;
    const char *hh = r->cl->hh;
    char *js = NULL;
    int64_t rev = srv_store_bump(c->st, hh);
    if (rev < 0)
        goto fail;
    json_object_set_new(task, "revision", json_integer(rev));
    json_object_set_new(task, "updated_by", json_string(r->cl->sub));
    js = hp_json_dump(task);
    if (!js || srv_store_task_put(c->st, hh, task, js) != 0 ||
        srv_store_event_append(c->st, hh, rev, "TASK_UPDATED",
                               json_string_value(json_object_get(task, "id")), task, js,
                               c->pol.event_retain) != 0)
        goto fail;
    if (key && key->key && srv_idem_store(c, key, r->cl, 200, js) != 0)
        goto fail;
    if (srv_tx_commit(c) != 0)
        goto fail;
    *text = js;
    return 0;
fail:
    free(js);
    reply_store_error(r, "write");
    return -1;
}

/* A committed write's 200 (its body the task's text), then after_write.
 * Takes ownership of text. */
static void after_write_reply(rq *r, const json_t *task, char *text)
{
    char *body = strdup(text);
    if (body)
        reply(r, 200, body, -1);
    else
        reply_json(r, 200, task); /* as before: out of memory answers what it can */
    after_write(r->c, r->cl->hh, task, text);
    free(text);
}

/* ---- handlers --------------------------------------------------------- */

static void get_list(rq *r)
{
    int64_t since = 0;
    char *s = srv_query_get(r->req->query, "since");
    if (s && parse_rev(s, &since) != 0) {
        free(s);
        reply_error(r, 400, "since must be " REV_RANGE);
        return;
    }
    free(s);
    int64_t cur = srv_store_revision(r->c->st, r->cl->hh);
    json_t *tasks = srv_store_tasks_since(r->c->st, r->cl->hh, since);
    if (cur < 0 || !tasks) {
        json_decref(tasks);
        reply_store_error(r, "list");
        return;
    }
    json_t *o = json_pack("{s:I, s:o}", "revision", (json_int_t)cur, "tasks", tasks);
    reply_json(r, 200, o);
    json_decref(o);
}

/* A tombstone is returned as it is (deleted: true), like in ?since=. */
static void get_one(rq *r, const char *id)
{
    json_t *t = srv_store_task_get(r->c->st, r->cl->hh, id);
    if (!t) {
        reply_error(r, 404, "no such task");
        return;
    }
    reply_json(r, 200, t);
    json_decref(t);
}

/* 413 for any request whose body (announced or received) is over
 * max_body: the driver may hand a truncated body. 0 to go on. */
static int check_size(rq *r)
{
    const srv_http_req *q = r->req;
    if ((q->content_length > 0 && (uint64_t)q->content_length > r->c->pol.max_body) ||
        q->body_len > r->c->pol.max_body) {
        char msg[100];
        snprintf(msg, sizeof msg, "body over %zu bytes", r->c->pol.max_body);
        reply_error(r, 413, msg);
        return -1;
    }
    return 0;
}

/* The request body parsed (duplicate keys refused), or NULL with je. */
static json_t *parse_body(rq *r, json_error_t *je)
{
    return r->req->body && r->req->body_len
               ? hp_json_loadb(r->req->body, r->req->body_len, JSON_REJECT_DUPLICATES, je)
               : NULL;
}

/* 411 then 413 for a PUT body. 0 to go on. */
static int check_length(rq *r)
{
    if (r->req->content_length < 0) {
        reply_error(r, 411, "Content-Length is required");
        return -1;
    }
    return check_size(r);
}

/*
 * PUT {"base_revision": B, "task": {...}} (SPEC §3 + decisions):
 * B = 0 creates (409 when the id exists, tombstone included); B > 0 on an
 * unknown id is 404; B != current is 409 with the current task.  A PUT with
 * the current revision onto a tombstone brings the task back (that is what
 * "overwrite" after edit-meets-delete asks for).  Unknown fields dropped;
 * revision/updated_by/deleted/id in the task are the server's.
 */
static void put_task(rq *r, const char *id)
{
    srv_idem key;
    /* With an Idempotency-Key the body is parsed before the key's check,
     * which fingerprints it (and only reads the tree): one parse, not two.
     * Without one, after the length check as before.  The answers keep
     * their order either way. */
    json_error_t je;
    int early = r->req->idem_key && *r->req->idem_key;
    json_t *root = early ? parse_body(r, &je) : NULL;
    if (idem_replay(r, root, &key) != 0 || check_length(r) != 0) {
        json_decref(root);
        return;
    }
    if (!early)
        root = parse_body(r, &je);
    if (!root) {
        char msg[256];
        if (r->req->body && r->req->body_len)
            snprintf(msg, sizeof msg, "body is not valid JSON: %s", je.text);
        else
            snprintf(msg, sizeof msg, "body is empty");
        reply_error(r, 400, msg);
        return;
    }
    json_t *jb = json_object_get(root, "base_revision");
    json_t *jt = json_object_get(root, "task");
    const char *err = NULL;
    if (!json_is_object(root))
        err = "body must be a JSON object";
    else if (!json_is_integer(jb) || json_integer_value(jb) < 0 ||
             json_integer_value(jb) > HP_REVISION_MAX)
        err = "base_revision must be " REV_RANGE;
    else if (!json_is_object(jt))
        err = "task must be a JSON object";
    else if (json_object_get(jt, "id") &&
             (!json_is_string(json_object_get(jt, "id")) ||
              strcmp(json_string_value(json_object_get(jt, "id")), id) != 0))
        err = "task.id must match the id in the path";
    if (err) {
        json_decref(root);
        reply_error(r, 400, err);
        return;
    }
    int64_t base = json_integer_value(jb);
    /* Validate on a scratch task first: a bad field is a 400 whatever the
     * stored state is, and nothing is read or written.  The scratch is
     * hp_task_new(id) with the fields applied: a create stores it as it is
     * (the same tree as making and applying again). */
    char verr[256];
    json_t *scratch = hp_task_new(id);
    if (!scratch || hp_task_apply_fields(scratch, jt, verr, sizeof verr) != 0) {
        json_decref(scratch);
        json_decref(root);
        reply_error(r, 400, scratch ? verr : "out of memory");
        return;
    }

    srv_core *c = r->c;
    if (srv_tx_begin(c) != 0) {
        json_decref(scratch);
        json_decref(root);
        reply_store_error(r, "begin");
        return;
    }
    json_t *cur = srv_store_task_get(c->st, r->cl->hh, id);
    if (!cur && base > 0) {
        srv_tx_abort(c);
        json_decref(scratch);
        json_decref(root);
        reply_error(r, 404, "no such task (base_revision > 0 needs an existing task)");
        return;
    }
    if (cur) {
        int64_t crev = json_integer_value(json_object_get(cur, "revision"));
        const char *why = NULL;
        if (take_forced_conflict(r, id))
            why = "another write won the race";
        else if (base == 0)
            why = "task already exists";
        else if (base != crev)
            why = "base_revision is not the current revision";
        if (why) {
            srv_tx_abort(c);
            reply_conflict(r, id, base, cur, why);
            json_decref(cur);
            json_decref(scratch);
            json_decref(root);
            return;
        }
    }
    json_t *task = cur ? cur : scratch;
    if (cur) {
        json_decref(scratch);
        if (hp_task_apply_fields(task, jt, verr, sizeof verr) != 0) {
            json_decref(task);
            json_decref(root);
            reply_store_error(r, "apply");
            return;
        }
    }
    json_decref(root);
    json_object_set_new(task, "deleted", json_false());
    char *js = NULL;
    if (commit_write(r, task, &key, &js) != 0) {
        json_decref(task);
        return;
    }
    after_write_reply(r, task, js);
    json_decref(task);
}

/*
 * DELETE ?base_revision=B -> tombstone (deleted: true, fields kept so an
 * "edit meets delete" banner can show what was deleted).  400 without B,
 * 404 unknown, 409 as for PUT.  Deleting a tombstone at its revision
 * answers it again without a new revision (nothing changes).
 */
static void delete_task(rq *r, const char *id)
{
    srv_idem key;
    if (idem_replay(r, NULL, &key) != 0)
        return;
    int64_t base = 0;
    char *s = srv_query_get(r->req->query, "base_revision");
    int bad = !s || parse_rev(s, &base) != 0;
    free(s);
    if (bad) {
        reply_error(r, 400, "DELETE needs ?base_revision=<" REV_RANGE ">");
        return;
    }
    srv_core *c = r->c;
    if (srv_tx_begin(c) != 0) {
        reply_store_error(r, "begin");
        return;
    }
    json_t *cur = srv_store_task_get(c->st, r->cl->hh, id);
    if (!cur) {
        srv_tx_abort(c);
        reply_error(r, 404, "no such task");
        return;
    }
    int64_t crev = json_integer_value(json_object_get(cur, "revision"));
    const char *why = NULL;
    if (take_forced_conflict(r, id))
        why = "another write won the race";
    else if (base != crev)
        why = "base_revision is not the current revision";
    if (why) {
        srv_tx_abort(c);
        reply_conflict(r, id, base, cur, why);
        json_decref(cur);
        return;
    }
    if (json_is_true(json_object_get(cur, "deleted"))) {
        char *body = hp_json_dump(cur);
        if (body && srv_idem_store(c, &key, r->cl, 200, body) != 0) {
            free(body);
            json_decref(cur);
            reply_store_error(r, "idempotency");
            return;
        }
        if (srv_tx_commit(c) != 0) {
            free(body);
            json_decref(cur);
            reply_store_error(r, "commit");
            return;
        }
        json_decref(cur);
        reply(r, 200, body, -1);
        return;
    }
    json_object_set_new(cur, "deleted", json_true());
    char *js = NULL;
    if (commit_write(r, cur, &key, &js) != 0) {
        json_decref(cur);
        return;
    }
    after_write_reply(r, cur, js);
    json_decref(cur);
}

/* CF-1: POST takes or refreshes (200 {holder, expires_at}); another user's
 * live lock is 423 with its holder and expiry.  DELETE releases (204);
 * releasing a lock one does not hold is a 204 no-op, unless another user
 * holds it (423: the caller learns it lost the lock). */
static void lock_route(rq *r, const char *id, int take)
{
    srv_lock *l = NULL;
    if (take) {
        int rc = srv_lock_take(r->c, r->cl->hh, id, r->cl->sub, r->cl->dev, &l);
        if (rc < 0) {
            reply_error(r, 503, "out of memory");
            return;
        }
        if (rc == 2) {
            /* docs/LIMITS.md: locks per user */
            char msg[160];
            snprintf(msg, sizeof msg, "too many locks held by this user (limit %d)",
                     r->c->lim.locks_per_user);
            reply(r, 429, srv_error_body("too_many_locks", msg, NULL), -1);
            return;
        }
        json_t *lj = srv_lock_json(l);
        json_object_del(lj, "state");
        if (rc == 0) {
            reply_json(r, 200, lj);
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "task/%s is being edited by %s", id, l->holder);
            reply(r, 423, srv_error_body("locked", msg, lj), -1);
        }
        json_decref(lj);
        return;
    }
    int rc = srv_lock_release(r->c, r->cl->hh, id, r->cl->sub, r->cl->dev);
    if (rc >= 0) {
        reply(r, 204, NULL, -1);
        return;
    }
    for (l = r->c->locks; l; l = l->next)
        if (strcmp(l->hh, r->cl->hh) == 0 && strcmp(l->id, id) == 0)
            break;
    json_t *lj = l ? srv_lock_json(l) : json_object();
    json_object_del(lj, "state");
    reply(r, 423, srv_error_body("locked", "the lock is held by another user", lj), -1);
    json_decref(lj);
}

/* ---- routing ---------------------------------------------------------- */

typedef enum route { R_NONE, R_LIST, R_ITEM, R_LOCK } route;

/* Splits path into a route and the raw id segment (copied into id,
 * truncated at idlen-1; an over-long id is caught by hp_task_id_valid). */
static route parse_route(const char *path, char *id, size_t idlen, int *id_too_long)
{
    size_t plen = strlen(HP_API_PREFIX);
    *id_too_long = 0;
    id[0] = 0;
    if (strncmp(path, HP_API_PREFIX, plen) != 0)
        return R_NONE;
    const char *rest = path + plen;
    if (!*rest)
        return R_LIST;
    if (*rest != '/' || !rest[1])
        return R_NONE;
    rest++;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0)
        return R_NONE;
    if (n >= idlen) {
        *id_too_long = 1;
        n = idlen - 1;
    }
    memcpy(id, rest, n);
    id[n] = 0;
    if (!slash)
        return R_ITEM;
    if (strcmp(slash, "/lock") == 0)
        return R_LOCK;
    return R_NONE;
}

/*
 * One request -> exactly one HP_OUT_HTTP_RESPONSE with req->id.  A NULL
 * method or path reads as "" (answered 404/405), so a sloppy driver cannot
 * crash the core.
 */
void srv_http(srv_core *c, const srv_http_req *req)
{
    if (!c || !req)
        return;
    rq r = {c, req, req->method ? req->method : "", req->path ? req->path : "", NULL, 0};
    /* CORS preflight carries no credentials: answer it so browsers can
     * call the API (the adapter adds the Access-Control headers). */
    if (strcmp(r.method, "OPTIONS") == 0) {
        reply(&r, 204, NULL, -1);
        return;
    }
    if (apply_fail_fault(&r))
        return;
    hp_claims cl;
    if (authenticate(&r, &cl) != 0)
        return;
    r.cl = &cl; /* every lookup below is scoped to cl.hh */
    if (apply_fail_fault(&r))
        return;
    char id[HP_TASK_ID_MAX + 2];
    int too_long = 0;
    route rt = parse_route(r.path, id, sizeof id, &too_long);
    const char *m = r.method;
    switch (rt) {
    case R_NONE:
        reply_error(&r, 404, "no such endpoint");
        return;
    case R_LIST:
        if (strcmp(m, "GET") != 0) {
            reply_error(&r, 405, "use GET on the collection");
            return;
        }
        if (check_size(&r) == 0)
            get_list(&r);
        return;
    case R_ITEM:
        if (strcmp(m, "GET") != 0 && strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0) {
            reply_error(&r, 405, "use GET, PUT or DELETE on a task");
            return;
        }
        break;
    case R_LOCK:
        if (strcmp(m, "POST") != 0 && strcmp(m, "DELETE") != 0) {
            reply_error(&r, 405, "use POST or DELETE on a lock");
            return;
        }
        break;
    }
    if (too_long || !hp_task_id_valid(id)) {
        reply_error(&r, 400, "task id must be 1-64 characters of [A-Za-z0-9_-]");
        return;
    }
    if (strcmp(id, "stream") == 0) {
        /* The stream endpoint shares the tasks/ namespace: "stream" cannot
         * be a task id, and a plain GET on it lacks the upgrade. */
        reply_error(&r, 400, rt == R_ITEM && strcmp(m, "GET") == 0
                                 ? "the change stream needs a WebSocket upgrade"
                                 : "\"stream\" is reserved and cannot be a task id");
        return;
    }
    /* PUT checks its size after the idempotency replay (411 first). */
    if (strcmp(m, "PUT") != 0 && check_size(&r) != 0)
        return;
    if (rt == R_LOCK) {
        lock_route(&r, id, strcmp(m, "POST") == 0);
    } else if (strcmp(m, "GET") == 0) {
        get_one(&r, id);
    } else if (strcmp(m, "PUT") == 0) {
        put_task(&r, id);
    } else {
        delete_task(&r, id);
    }
}
