/*
 * real_actions.c - a scenario's actions in real mode: client actions as
 * driver commands (or the fault proxy's faults: offline, link, latency,
 * drop), server actions through our server's /_hp/faults and process
 * control, and remind_at translated onto the wall clock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hp_env.h"
#include "hp_time.h"
#include "real.h"
#include "real_world.h"

/* ---- actions -------------------------------------------------------------- */

static int64_t dur_ms(json_t *v, int64_t dflt)
{
    if (!json_is_string(v))
        return dflt;
    int64_t ms;
    return hp_duration_parse(json_string_value(v), &ms) == 0 ? ms : dflt;
}

/*
 * After a start: wait until the app reports where its first connect went
 * (ready, closed/refused, a notification such as AUTH_REQUIRED or
 * KEY_MISMATCH), or it is offline, at most 15 s.  In the simulator a
 * connect is one round trip; a real start takes a process launch, which
 * must not eat the scenario's next `wait`.
 */
static void client_settle(rl_world *w, rl_client *c, size_t notes0, size_t closed0)
{
    double end = rl_now_ms() + 15000;
    while (rl_now_ms() < end && c->running && c->p.out >= 0 && !c->offline) {
        if (c->ready || json_array_size(c->notes) > notes0 || json_array_size(c->closed) > closed0)
            return;
        rl_pump(w, 5);
    }
}

/* An action as JSON: "word" or {"word": arg}.  The name, or NULL. */
static const char *action_of(json_t *a, json_t **arg)
{
    *arg = NULL;
    if (json_is_string(a))
        return json_string_value(a);
    if (json_is_object(a) && json_object_size(a) == 1) {
        void *it = json_object_iter(a);
        *arg = json_object_iter_value(it);
        return json_object_iter_key(it);
    }
    return NULL;
}

/*
 * R-1 in real mode.  A scenario's remind_at is an instant on its virtual
 * clock (which starts at the scenario's `start`), but a real server fires
 * reminders on the wall clock.  So a remind_at is sent as the wall instant
 * that stands where the virtual one stands on the schedule: now + (remind_at
 * - virtual now) x F, with the written UTC offset kept and milliseconds
 * added.  The first translation of a value is kept, so every later use of
 * the same text (another edit, an expectation) means the same instant.
 * Text that does not parse is sent as written (the server refuses it, as
 * in simulation).
 */
static const char *real_time_of(rl_world *w, const char *orig)
{
    json_t *done_ = json_object_get(w->times, orig);
    if (done_)
        return json_string_value(done_);
    int64_t r;
    if (hp_time_parse(orig, &r) != 0)
        return orig;
    int64_t wall = hp_wall_clock(NULL) + (int64_t)((double)(r - (w->s->start_ms + w->vnow)) * w->F);
    /* The written offset: "Z" or the last six characters "+HH:MM". */
    size_t n = strlen(orig);
    const char *off = (orig[n - 1] == 'Z' || orig[n - 1] == 'z') ? "Z" : orig + n - 6;
    int64_t off_ms = 0;
    if (off[0] == '+' || off[0] == '-')
        off_ms = (off[0] == '-' ? -1 : 1) *
                 ((int64_t)atoi(off + 1) * 3600000 + (int64_t)atoi(off + 4) * 60000);
    char buf[40];
    hp_time_format_utc(wall + off_ms, buf, sizeof buf); /* local digits, then the offset */
    snprintf(buf + strlen(buf) - 1, sizeof buf - (strlen(buf) - 1), "%s", off);
    json_object_set_new(w->times, orig, json_string(buf));
    rl_trace_add(w, "harness", "observe",
              json_pack("{s:{s:s,s:s,s:s}}", "info", "kind", "remind_at", "written", orig, "sent",
                        buf));
    return json_string_value(json_object_get(w->times, orig));
}

/* Expectations name remind_at as written: compare with what was sent. */
void rl_xlate_times(rl_world *w, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            rl_xlate_times(w, x);
        return;
    }
    json_object_foreach(v, k, x) {
        json_t *sent;
        if (!strcmp(k, "remind_at") && json_is_string(x) &&
            (sent = json_object_get(w->times, json_string_value(x))))
            json_object_set(v, k, sent);
        else
            rl_xlate_times(w, x);
    }
}

/* A test fault or probe (send_frame, drop) as a driver command: unlike a
 * user action, a refusal stops the scenario with a runtime error. */
static int fault_cmd(rl_world *w, rl_client *c, json_t *cmd, const char *name)
{
    json_t *ans = NULL;
    if (rl_client_cmd(w, c, cmd, &ans) != 0)
        return -1;
    const char *kind = json_string_value(json_object_get(ans, "kind"));
    int rc = 0;
    if (kind && !strcmp(kind, "error"))
        rc = rl_fail(w, "%s: %s: %s", c->spec->name, name,
                     json_string_value(json_object_get(ans, "message")));
    json_decref(ans);
    return rc;
}

int rl_client_action(rl_world *w, rl_client *c, json_t *a)
{
    json_t *arg;
    const char *name = action_of(a, &arg);
    if (!name)
        return rl_fail(w, "malformed action for %s", c->spec->name);
    if (!strcmp(name, "connect") || !strcmp(name, "crash") || !strcmp(name, "restart"))
        w->slow_action = 1;
    size_t notes0 = json_array_size(c->notes), closed0 = json_array_size(c->closed);
    if (!strcmp(name, "connect")) {
        if (c->running && c->unstarted) { /* edits came first: now it connects */
            c->unstarted = 0;
            rl_ws6_reset(w, c);
            if (rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "start"), NULL) != 0)
                return -1;
            client_settle(w, c, notes0, closed0);
            return 0;
        }
        if (c->running && !w->o->client_cmd)
            return rl_fail(w, "connect: %s is already running", c->spec->name);
        c->ready = 0;
        if (!c->running && rl_client_start(w, c, 0) != 0)
            return -1;
        client_settle(w, c, notes0, closed0);
        return 0;
    }
    /* An action before `connect`: the app is open but not connected yet. */
    if (!c->running && strcmp(name, "crash") && strcmp(name, "restart")) {
        w->slow_action = 1;
        if (rl_client_start(w, c, 1) != 0)
            return -1;
    }
    if (!strcmp(name, "crash")) {
        rl_client_kill(w, c, SIGKILL);
        return 0;
    }
    if (!strcmp(name, "restart")) {
        const char *key = json_string_value(json_object_get(arg, "key"));
        rl_client_kill(w, c, SIGKILL);
        if (key)
            c->other_key = !strcmp(key, "other");
        c->ready = 0;
        /* The device's network switch survives the app: an offline device
         * restarts offline (our client: told before it may connect). */
        if (rl_client_start(w, c, c->offline && !w->o->client_cmd) != 0)
            return -1;
        if (c->offline) {
            if (rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "offline"), NULL) != 0)
                return -1;
            if (c->unstarted) {
                c->unstarted = 0;
                return rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "start"), NULL);
            }
            return 0;
        }
        client_settle(w, c, notes0, closed0);
        return 0;
    }
    json_t *cmd = NULL;
    if (!strcmp(name, "link") && w->proxy_running) {
        /* A silent link the app does not know of: only the network changes. */
        const char *v = json_string_value(arg);
        return rl_proxy_partition(w, c, !(v && !strcmp(v, "up")));
    }
    if (!strcmp(name, "latency") && w->proxy_running) {
        int64_t ms = dur_ms(arg, 0);
        return rl_proxy_fault(w, c, json_pack("{s:s,s:s,s:I}", "kind", "latency", "direction",
                                              "both", "ms", (json_int_t)((double)ms * w->F)));
    }
    if (!strcmp(name, "offline") || !strcmp(name, "online") || !strcmp(name, "sync_now")) {
        if (!strcmp(name, "offline"))
            c->offline = 1;
        if (!strcmp(name, "online"))
            c->offline = 0;
        /* SPEC §3: offline is a lost network.  The proxy blackholes the
         * client first, so the close the app then makes never reaches the
         * server (no FIN crosses a lost network: the server finds out by
         * heartbeat timeout); online heals it before the app reconnects. */
        if (w->proxy_running && strcmp(name, "sync_now") &&
            rl_proxy_partition(w, c, !strcmp(name, "offline")) != 0)
            return -1;
        /* WS-6: a connect after online (or offline) is immediate, not a retry. */
        if (strcmp(name, "sync_now"))
            rl_ws6_reset(w, c);
        cmd = json_pack("{s:s}", "cmd", name);
    } else if (!strcmp(name, "edit")) {
        json_t *fields = json_deep_copy(arg);
        json_t *id = json_incref(json_object_get(fields, "id"));
        json_object_del(fields, "id");
        json_t *ra = json_object_get(fields, "remind_at");
        if (json_is_string(ra))
            json_object_set_new(fields, "remind_at",
                                json_string(real_time_of(w, json_string_value(ra))));
        cmd = json_pack("{s:s,s:o,s:o}", "cmd", "edit", "id", id ? id : json_null(), "fields",
                        fields ? fields : json_object());
    } else if (!strcmp(name, "delete") || !strcmp(name, "lock") || !strcmp(name, "unlock")) {
        cmd = json_pack("{s:s,s:O}", "cmd", name, "id", arg ? arg : json_null());
    } else if (!strcmp(name, "choose")) {
        cmd = json_pack("{s:s,s:O,s:O}", "cmd", "choose", "id",
                        json_object_get(arg, "id") ? json_object_get(arg, "id") : json_null(),
                        "choice",
                        json_object_get(arg, "choice") ? json_object_get(arg, "choice") : json_null());
    } else if (!strcmp(name, "new_token")) {
        scn_client_spec sp = *c->spec;
        sp.token = SCN_TOKEN_VALID;
        free(c->token);
        c->token = rl_mint_for_client(w, &sp, dur_ms(json_object_get(arg, "ttl"), sp.token_ttl_ms));
        if (!c->token)
            return rl_fail(w, "cannot rl_mint a token");
        cmd = json_pack("{s:s,s:s}", "cmd", "token", "token", c->token);
        rl_ws6_reset(w, c);
    } else if (!strcmp(name, "send_frame")) {
        size_t n = 0;
        char *text = scn_frame_text(arg, &n);
        if (!text)
            return rl_fail(w, "send_frame: malformed frame");
        cmd = json_pack("{s:s,s:s%}", "cmd", "send_frame", "text", text, n);
        free(text);
        /* As in simulation, a frame with no stream to carry it is an error. */
        return fault_cmd(w, c, cmd, name);
    } else if (!strcmp(name, "drop")) {
        json_t *count = json_object_get(arg, "count");
        const char *from = json_string_value(json_object_get(arg, "from"));
        const char *msg = json_string_value(json_object_get(arg, "message"));
        /* The link's loss, played by the proxy for any client; a request
         * lost before the server (the proxy forwards what it reads) is the
         * one loss our client's socket layer still plays (driver drop). */
        if (w->proxy_running && from && msg && strcmp(msg, "request")) {
            json_t *f;
            if (!strcmp(msg, "response"))
                f = json_pack("{s:s,s:s,s:s}", "kind", "drop_response", "method", "*", "path",
                              "*");
            else
                f = json_pack("{s:s,s:s,s:s}", "kind", "drop_message", "direction",
                              !strcmp(from, "server") ? "s2c" : "c2s", "message", msg);
            json_object_set_new(f, "count", count ? json_incref(count) : json_integer(1));
            return rl_proxy_fault(w, c, f);
        }
        cmd = json_pack("{s:s,s:O,s:O,s:o}", "cmd", "drop", "from",
                        json_object_get(arg, "from") ? json_object_get(arg, "from") : json_null(),
                        "message",
                        json_object_get(arg, "message") ? json_object_get(arg, "message")
                                                        : json_null(),
                        "count", count ? json_incref(count) : json_integer(1));
        return fault_cmd(w, c, cmd, name);
    } else {
        return rl_fail(w, "action '%s' is not supported in real mode", name);
    }
    json_t *ans = NULL;
    if (rl_client_cmd(w, c, cmd, &ans) != 0)
        return -1;
    json_decref(ans); /* refused actions are asserted on, not fatal (SCENARIOS §4) */
    return 0;
}

int rl_server_action(rl_world *w, json_t *a)
{
    json_t *arg;
    const char *name = action_of(a, &arg);
    if (!name)
        return rl_fail(w, "malformed server action");
    if (!strcmp(name, "restart") || !strcmp(name, "crash") || !strcmp(name, "start"))
        w->slow_action = 1;
    if (!strcmp(name, "restart")) {
        rl_server_stop(w, SIGTERM);
        return rl_server_start(w);
    }
    if (!strcmp(name, "crash")) {
        rl_server_stop(w, SIGKILL);
        return 0;
    }
    if (!strcmp(name, "start"))
        return w->srv_running ? 0 : rl_server_start(w);
    json_t *body = NULL;
    if (!strcmp(name, "fail_requests")) {
        json_t *f = json_object();
        json_t *count = json_object_get(arg, "count");
        json_object_set_new(f, "count", count ? json_incref(count) : json_integer(1));
        json_object_set(f, "status", json_object_get(arg, "status"));
        if (json_object_get(arg, "method"))
            json_object_set(f, "method", json_object_get(arg, "method"));
        if (json_object_get(arg, "path"))
            json_object_set(f, "path_prefix", json_object_get(arg, "path"));
        if (json_object_get(arg, "retry_after"))
            json_object_set_new(f, "retry_after",
                                json_integer(dur_ms(json_object_get(arg, "retry_after"), 0) / 1000));
        body = json_pack("{s:o}", "fail_requests", f);
    } else if (!strcmp(name, "force_conflict")) {
        body = json_pack("{s:{s:O}}", "force_conflict", "id", arg);
    } else {
        return rl_fail(w, "server action '%s' is not supported in real mode", name);
    }
    char *s = json_dumps(body, JSON_COMPACT), *resp = NULL;
    json_decref(body);
    int st = s ? rl_http(w->url, "POST", "/_hp/faults", NULL, s, 10000, &resp) : -1;
    free(s);
    free(resp);
    return st == 200 ? 0 : rl_fail(w, "POST /_hp/faults answered %d", st);
}
