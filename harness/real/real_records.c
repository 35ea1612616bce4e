/*
 * real_records.c - what the real programs write, turned into records: the
 * trace (rl_trace_add: the simulator's record shapes, harness.h, so the
 * terminal's timeline and the reports show both modes alike) and the
 * histories the expectations read (srv_logs, srv_requests; per client
 * answers, frames, events, notes, http, closed, ...).
 *
 * Inputs: one line at a time from rl_pump() (real_run.c): server and
 * client stderr (log records "TIME LEVEL ACTOR MESSAGE fields"; any other
 * line is a "log" record of level STDERR), client stdout (driver JSON
 * lines, docs/CLIENT_DRIVER.md), hp-fault-proxy's stderr.  Outputs: the
 * world's arrays, which own what is appended.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "real.h"
#include "real_int.h"
#include "scn_internal.h"
#include "scn_run.h"

#include "real_world.h"

/* ---- records and line handlers ----------------------------------------- */

void rl_trace_add(rl_world *w, const char *actor, const char *type, json_t *extra)
{
    json_t *e = json_pack("{s:I,s:s,s:s}", "t", (json_int_t)(rl_wt(w) / w->F), "actor", actor,
                          "type", type);
    if (extra) {
        json_object_update(e, extra);
        json_decref(extra);
    }
    json_array_append_new(w->trace, e);
}

/* "TIME LEVEL ACTOR MESSAGE fields..." -> a record, NULL when not that form. */
static json_t *parse_log(rl_world *w, const char *line)
{
    char tm[64], lvl[16], actor[128], msg[128];
    int off = 0;
    if (sscanf(line, "%63s %15s %127s %127s%n", tm, lvl, actor, msg, &off) != 4)
        return NULL;
    const char *fields = line + off;
    while (*fields == ' ')
        fields++;
    char *text = NULL;
    if (asprintf(&text, "%s %s", msg, fields) < 0)
        return NULL;
    json_t *r = json_pack("{s:f,s:s,s:s,s:s,s:s,s:s}", "t", rl_wt(w), "level", lvl, "actor", actor,
                          "message", msg, "text", text, "line", line);
    free(text);
    rl_unsuffix(w, r); /* a foreign server's fresh names, read back as the scenario's */
    return r;
}

/* key=value from a log line's fields ("" when absent). */
static void log_field(const char *text, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    size_t kl = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p++) {
        if ((p == text || p[-1] == ' ') && p[kl] == '=') {
            p += kl + 1;
            size_t n = strcspn(p, " ");
            if (n >= len)
                n = len - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
    }
}

static const char *client_name_of_user(rl_world *w, const char *user)
{
    for (size_t i = 0; i < w->nc; i++)
        if (!strcmp(w->c[i].spec->user, user))
            return w->c[i].spec->name;
    return user;
}

/* A stderr line that is not a log record (a sanitizer report, a library's
 * own message, a foreign program's format) still goes to the trace, as a
 * "log" record of level STDERR, so a crash shows in the timeline. */

/* A WS-6 record whose time is when its line was read, with how long the
 * client and this reader had waited for a CPU by then ("cpu_wait", ms;
 * absent when the kernel does not say): reconnect_delays allows a delay
 * the growth of that figure, which a loaded machine added, not the client
 * (real_expect.c). */
static void conn_hist_timed(rl_world *w, rl_client *c, const char *kind)
{
    json_t *e = json_pack("{s:f,s:s}", "t", rl_wt(w), "kind", kind);
    double a = rl_wait_cpu_ms(c->p.pid), b = rl_self_wait_cpu_ms();
    if (a >= 0 && b >= 0)
        json_object_set_new(e, "cpu_wait", json_real(a + b));
    json_array_append_new(c->conn_hist, e);
}

void rl_ws6_reset(rl_world *w, rl_client *c)
{
    json_t *e = json_pack("{s:f,s:s}", "t", rl_wt(w), "kind", "reset");
    if (w->proxy_running) {
        rl_proxy_sync(w);
        json_object_set_new(e, "seq", json_integer(w->proxy_seq));
    }
    json_array_append_new(c->conn_hist, e);
}

static void trace_raw(rl_world *w, const char *actor, const char *line)
{
    if (*line)
        rl_trace_add(w, actor, "log", json_pack("{s:s,s:s}", "level", "STDERR", "line", line));
}

void rl_on_server_err(void *ud, const char *line)
{
    rl_world *w = ud;
    json_t *r = parse_log(w, line);
    if (!r) {
        trace_raw(w, "server", line);
        return;
    }
    const char *msg = json_string_value(json_object_get(r, "message"));
    const char *text = json_string_value(json_object_get(r, "text"));
    if (!strcmp(msg, "listening") && !w->port) {
        char url[200];
        log_field(text, "url", url, sizeof url);
        const char *c = strrchr(url, ':');
        if (c)
            w->port = atoi(c + 1);
    }
    if (!strcmp(msg, "request")) {
        char m[16], path[256], st[16], user[128], idem[256];
        log_field(text, "method", m, sizeof m);
        log_field(text, "path", path, sizeof path);
        log_field(text, "status", st, sizeof st);
        log_field(text, "user", user, sizeof user);
        log_field(text, "idem", idem, sizeof idem);
        json_t *rec = json_pack("{s:f,s:s,s:s,s:i,s:s}", "t", rl_wt(w), "method", m, "path", path,
                                "status", atoi(st), "from", client_name_of_user(w, user));
        if (idem[0])
            json_object_set_new(rec, "idem_key", json_string(idem));
        json_array_append_new(w->srv_requests, rec);
    }
    rl_trace_add(w, "server", "log", json_pack("{s:O,s:s}", "level", json_object_get(r, "level"), "line", line));
    json_array_append_new(w->srv_logs, r);
}


void rl_on_client_err(void *ud, const char *line)
{
    rl_cb *cb = ud;
    json_t *r = parse_log(cb->w, line);
    if (!r) {
        trace_raw(cb->w, cb->c->spec->name, line);
        return;
    }
    rl_trace_add(cb->w, cb->c->spec->name, "log",
              json_pack("{s:O,s:s}", "level", json_object_get(r, "level"), "line", line));
    json_array_append_new(cb->c->logs, r);
}

void rl_on_client_out(void *ud, const char *line)
{
    rl_cb *cb = ud;
    rl_client *c = cb->c;
    rl_world *w = cb->w;
    json_t *o = json_loads(line, 0, NULL);
    rl_unsuffix(w, o); /* a foreign server's fresh names, read back as the scenario's */
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return;
    }
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!kind)
        kind = "";
    json_object_set_new(o, "t", json_real(rl_wt(w)));
    if (!strcmp(kind, "ok") || !strcmp(kind, "error") || !strcmp(kind, "status") ||
        !strcmp(kind, "cached")) {
        json_array_append(c->answers, o);
    } else if (!strcmp(kind, "frame")) {
        json_array_append(c->frames, o);
        /* The simulator's record shape ("ws": from, to; the message type
         * as frame_type, there is no text), so reports show both alike. */
        const char *from = json_string_value(json_object_get(o, "from"));
        int in = from && !strcmp(from, "server");
        json_t *ft = json_object_get(o, "type"), *bytes = json_object_get(o, "bytes");
        json_t *rec = json_pack("{s:s,s:s,s:O,s:O}", "from", in ? "server" : c->spec->name, "to",
                                in ? c->spec->name : "server", "frame_type", ft ? ft : json_null(),
                                "bytes", bytes ? bytes : json_null());
        if (json_is_true(json_object_get(o, "lost")))
            json_object_set_new(rec, "lost", json_string("dropped"));
        rl_trace_add(w, c->spec->name, "ws", rec);
    } else if (!strcmp(kind, "event")) {
        json_array_append(c->events, o);
        rl_trace_add(w, c->spec->name, "event", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "notification")) {
        json_array_append(c->notes, o);
        rl_trace_add(w, c->spec->name, "notify", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "queue")) {
        int len = (int)json_integer_value(json_object_get(o, "length"));
        if (len > c->max_queue)
            c->max_queue = len;
        rl_trace_add(w, c->spec->name, "observe", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "http")) {
        json_object_set_new(o, "from", json_string(c->spec->name));
        json_array_append(c->http, o);
        /* The simulator's "http" record shape; status 0 = no answer. */
        json_t *st = json_object_get(o, "status");
        json_t *m = json_object_get(o, "method"), *path = json_object_get(o, "path");
        json_t *rec = json_pack("{s:s,s:s,s:O,s:O,s:O}", "from", c->spec->name, "to", "server",
                                "method", m ? m : json_null(), "path", path ? path : json_null(),
                                "status", json_integer_value(st) > 0 ? st : json_null());
        if (json_is_string(json_object_get(o, "idem_key")))
            json_object_set(rec, "idem_key", json_object_get(o, "idem_key"));
        if (json_is_string(json_object_get(o, "error")))
            json_object_set(rec, "lost", json_object_get(o, "error"));
        rl_trace_add(w, c->spec->name, "http", rec);
    } else if (!strcmp(kind, "connection")) {
        const char *state = json_string_value(json_object_get(o, "state"));
        c->ready = state && !strcmp(state, "ready");
        snprintf(c->state, sizeof c->state, "%s", state ? state : "");
        if (state && !strcmp(state, "connecting")) { /* WS-6: the core's every attempt */
            json_array_append_new(c->attempts, json_pack("{s:f,s:s}", "t", rl_wt(w), "state", state));
            conn_hist_timed(w, c, "attempt");
        }
        if (state && !strcmp(state, "closed"))
            conn_hist_timed(w, c, "loss");
        if (state && !strcmp(state, "closed")) {
            int code = (int)json_integer_value(json_object_get(o, "code"));
            /* `by` is inferred: 0 = network, 1000 = the app (offline);
             * 4008 may be either side's watchdog, so it carries no `by`. */
            json_t *rec = json_pack("{s:f,s:i}", "t", rl_wt(w), "code", code);
            if (code == 0)
                json_object_set_new(rec, "by", json_string("network"));
            else if (code == 1000)
                json_object_set_new(rec, "by", json_string("client"));
            else if (code != 4008)
                json_object_set_new(rec, "by", json_string("server"));
            json_array_append_new(c->closed, rec);
        }
        rl_trace_add(w, c->spec->name, "observe", json_pack("{s:O}", "info", o));
    }
    json_decref(o);
}

/* hp-fault-proxy's log lines (warnings only) go to the trace. */
void rl_on_proxy_err(void *ud, const char *line)
{
    rl_world *w = ud;
    rl_trace_add(w, "fault_proxy", "log", json_pack("{s:s,s:s}", "level", "WARNING", "line", line));
}
