/*
 * real_proxy.c - real mode's network: hp-fault-proxy between every
 * scenario client and the server (docs/FAULT_PROXY.md).
 *
 * Why: `offline` must mean a lost network in real mode as in simulation
 * (SPEC §3: no FIN crosses it, the server notices by heartbeat timeout),
 * link faults and drops must work for any client, ours or foreign, and a
 * verdict about a client must rest on what crossed the wire, recorded by
 * our side (SPEC §7).  So each scenario gets its own proxy: one per-client
 * port per scenario client (faults are scoped to it), the faults of the
 * scenario played through the control API, and the proxy's journal read
 * back as the clients' `frames` and `requests` histories.
 *
 * Inputs: the world (real_world.h) with the upstream URL; the scenario's
 * actions (offline, online, link, latency, drop) through rl_proxy_*.
 * Outputs: per client `wire_frames` / `wire_http` arrays of records in the
 * same shape as the clients' own `frame` / `http` lines (t = wall ms since
 * the scenario started), so one matcher reads either (real_expect.c), and
 * `wire_ws6`: each stream connection's attempt and loss as the wire shows
 * them, which reconnect_delays and connect_attempts judge (WS-6).
 * Ownership: the world owns the proxy process and the arrays; teardown is
 * rl_proxy_stop().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "real_world.h"

/* Epoch ms now, to map the journal's t_ms onto the harness's clock. */
static double epoch_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0;
}

int rl_proxy_wanted(rl_world *w)
{
    /* The proxy speaks plain HTTP upstream: an https:// server is reached
     * directly, and link faults are then out of reach (skipped). */
    return !w->o->no_proxy && !strncmp(w->url, "http://", 7) && w->bin_proxy[0];
}

int rl_proxy_start(rl_world *w)
{
    char *argv[] = {w->bin_proxy, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                    "--upstream", w->url, "--log-level", "warning", NULL};
    if (rl_proc_start(&w->proxy, argv, 0) != 0)
        return rl_fail(w, "cannot start %s: %s", w->bin_proxy, strerror(errno));
    /* Its first stdout line: {"listen":..., "control":...}. */
    char line[1024];
    size_t n = 0;
    double end = rl_now_ms() + 15000;
    while (rl_now_ms() < end && n + 1 < sizeof line) {
        struct pollfd pf = {w->proxy.out, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        ssize_t r = read(w->proxy.out, line + n, 1);
        if (r <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    json_t *j = json_loads(line, 0, NULL);
    const char *ctl = json_string_value(json_object_get(j, "control"));
    if (!ctl) {
        json_decref(j);
        return rl_fail(w, "hp-fault-proxy did not start (no ports line on stdout)");
    }
    snprintf(w->proxy_ctl, sizeof w->proxy_ctl, "http://%s", ctl);
    json_decref(j);
    w->epoch_off = epoch_ms() - rl_now_ms();
    w->proxy_running = 1;
    return 0;
}

/* One control request; 0 when answered 2xx (ans, when given, gets the body). */
static int control(rl_world *w, const char *method, const char *path, json_t *body,
                   json_t **ans)
{
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char *out = NULL;
    int st = rl_http(w->proxy_ctl, method, path, NULL, b, 10000, &out);
    free(b);
    if (ans)
        *ans = out ? json_loads(out, 0, NULL) : NULL;
    if (st < 200 || st > 299) {
        rl_fail(w, "hp-fault-proxy: %s %s answered %d: %.300s", method, path, st,
                out ? out : "(no answer)");
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

int rl_proxy_add_client(rl_world *w, rl_client *c)
{
    json_t *ans = NULL;
    if (control(w, "POST", "/clients", json_pack("{s:s}", "name", c->spec->name), &ans) != 0)
        return -1;
    const char *url = json_string_value(json_object_get(ans, "url"));
    if (!url) {
        json_decref(ans);
        return rl_fail(w, "hp-fault-proxy: no url for client %s", c->spec->name);
    }
    /* The server's path prefix, if any, stays in front of every path. */
    const char *after = strstr(w->url, "://");
    const char *prefix = after ? strchr(after + 3, '/') : NULL;
    snprintf(c->url, sizeof c->url, "%s%s", url, prefix ? prefix : "");
    json_decref(ans);
    return 0;
}

int rl_proxy_partition(rl_world *w, rl_client *c, int on)
{
    char path[160];
    snprintf(path, sizeof path, "/clients/%s/%s", c->spec->name, on ? "partition" : "heal");
    return control(w, "POST", path, NULL, NULL);
}

int rl_proxy_fault(rl_world *w, rl_client *c, json_t *fault)
{
    char path[160];
    snprintf(path, sizeof path, "/clients/%s/faults", c->spec->name);
    return control(w, "POST", path, fault, NULL);
}

/* ---- the journal ----------------------------------------------------------- */

static rl_client *client_named(rl_world *w, const char *name)
{
    for (size_t i = 0; name && i < w->nc; i++)
        if (!strcmp(w->c[i].spec->name, name))
            return &w->c[i];
    return NULL;
}

/* ---- WS-6 from the wire ------------------------------------------------------
 * A stream connection is one whose first request is the upgrade to
 * /tasks/stream: the client's connect attempt, at that request (the proxy
 * journals a connection's `connect` only once it goes upstream, after the
 * request).  Its loss is the first thing on it that tells the client the
 * stream is gone: a close frame it sent, or one that reached it (not held
 * by a partition, not dropped); a close of its own socket, by itself or by
 * the proxy (a reset, a server that is down); the server's FIN passed on to
 * it; a refused upgrade.  A close the proxy kept from it (a partition, a
 * dropped response) is not a loss: the client cannot know of it. */

static void ws6_add(rl_client *c, const char *kind, double t, json_t *e)
{
    json_array_append_new(c->wire_ws6,
                          json_pack("{s:f,s:I,s:s}", "t", t, "seq",
                                    json_integer_value(json_object_get(e, "seq")), "kind", kind));
}

static const char *conn_key(json_t *e, char *buf, size_t n)
{
    snprintf(buf, n, "%lld", (long long)json_integer_value(json_object_get(e, "conn")));
    return buf;
}

static void ws6_attempt(rl_client *c, json_t *e, double t)
{
    char k[32];
    conn_key(e, k, sizeof k);
    if (json_object_get(c->wire_streams, k))
        return;
    json_object_set_new(c->wire_streams, k, json_integer(1));
    ws6_add(c, "attempt", t, e);
}

static void ws6_loss(rl_client *c, json_t *e, double t)
{
    char k[32];
    json_t *st = json_object_get(c->wire_streams, conn_key(e, k, sizeof k));
    if (json_integer_value(st) != 1)
        return; /* not a stream, or its loss is recorded already */
    json_integer_set(st, 2);
    ws6_add(c, "loss", t, e);
}

static void on_close(rl_client *c, json_t *e, double t)
{
    const char *side = json_string_value(json_object_get(e, "side"));
    const char *by = json_string_value(json_object_get(e, "by"));
    int passed = json_is_true(json_object_get(e, "passed"));
    /* The client's own socket (closed by it, or by the proxy: it sees the
     * FIN or the reset), or the server's close passed on to it. */
    if ((side && !strcmp(side, "client")) || (by && !strcmp(by, "proxy")) || passed)
        ws6_loss(c, e, t);
}

/* A frame entry -> {t, from, type, bytes, lost}, as hp-fake-client's
 * `frame` lines say it (data frames only: control frames are the socket's). */
static void on_frame(rl_world *w, rl_client *c, json_t *e, double t)
{
    const char *op = json_string_value(json_object_get(e, "opcode"));
    if (op && !strcmp(op, "close")) {
        /* Who sent a close frame: what `closed: {by: ...}` asks (a 4008 may
         * be either side's watchdog; the wire knows which). */
        const char *d = json_string_value(json_object_get(e, "dir"));
        int c2s = d && !strcmp(d, "c2s");
        if (c2s || !(json_is_true(json_object_get(e, "dropped")) ||
                     json_is_true(json_object_get(e, "held"))))
            ws6_loss(c, e, t); /* WS-6: sent by the client, or it reached the client */
        json_array_append_new(c->wire_closes,
                              json_pack("{s:f,s:O,s:s}", "t", t, "code",
                                        json_object_get(e, "close_code")
                                            ? json_object_get(e, "close_code")
                                            : json_null(),
                                        "by", d && !strcmp(d, "c2s") ? "client" : "server"));
        return;
    }
    if (!op || (strcmp(op, "text") && strcmp(op, "binary")))
        return;
    const char *dir = json_string_value(json_object_get(e, "dir"));
    json_t *type = json_object_get(e, "type");
    if (!json_is_string(type))
        type = json_object_get(e, "event_type");
    json_t *f = json_pack("{s:f,s:I,s:s,s:O,s:O,s:s}", "t", t, "seq",
                          json_integer_value(json_object_get(e, "seq")), "from",
                          dir && !strcmp(dir, "c2s") ? "client" : "server", "type",
                          json_is_string(type) ? type : json_null(), "bytes",
                          json_object_get(e, "size") ? json_object_get(e, "size")
                                                      : json_integer(0),
                          "source", "proxy");
    /* Dropped by a fault, or caught in a partition (held: it did not arrive
     * when sent; the simulator's silent link loses it outright). */
    if (json_is_true(json_object_get(e, "dropped")) || json_is_true(json_object_get(e, "held")))
        json_object_set_new(f, "lost", json_true());
    if (json_is_integer(json_object_get(e, "revision")))
        json_object_set(f, "revision", json_object_get(e, "revision"));
    if (json_is_string(json_object_get(e, "entity_id")))
        json_object_set(f, "entity_id", json_object_get(e, "entity_id"));
    json_array_append_new(c->wire_frames, f);
    (void)w;
}

/* A request entry waits for its response on the same connection (HTTP/1.1
 * order); the pair becomes one {t, method, path, status, idem_key, body,
 * response, elapsed_ms, from} record, like hp-fake-client's `http` line. */
static void on_request(rl_world *w, rl_client *c, json_t *e, double t)
{
    const char *path = json_string_value(json_object_get(e, "path"));
    if (path && strstr(path, "/tasks/stream")) {
        /* The upgrade: a connect, not a REST request.  Its answer matters
         * only when it is a refusal (below). */
        ws6_attempt(c, e, t);
        json_array_append_new(w->proxy_pending,
                              json_pack("{s:f,s:I,s:b}", "t", t, "conn",
                                        json_integer_value(json_object_get(e, "conn")),
                                        "upgrade", 1));
        return;
    }
    if (!path)
        return;
    char full[1024];
    const char *q = json_string_value(json_object_get(e, "query"));
    snprintf(full, sizeof full, "%s%s%s", path, q ? "?" : "", q ? q : "");
    json_t *headers = json_object_get(e, "headers");
    json_t *key = json_object_get(headers, "idempotency-key");
    json_t *r = json_pack("{s:f,s:I,s:O,s:s,s:s,s:I,s:s}", "t", t, "seq",
                          json_integer_value(json_object_get(e, "seq")), "method",
                          json_object_get(e, "method"), "path", full, "from", c->spec->name,
                          "conn", json_integer_value(json_object_get(e, "conn")), "source",
                          "proxy");
    if (json_is_string(key))
        json_object_set(r, "idem_key", key);
    if (json_object_get(e, "body"))
        json_object_set(r, "body", json_object_get(e, "body"));
    json_array_append_new(w->proxy_pending, r);
}

static void on_response(rl_world *w, rl_client *c, json_t *e, double t)
{
    json_int_t conn = json_integer_value(json_object_get(e, "conn"));
    size_t i;
    json_t *r;
    json_array_foreach(w->proxy_pending, i, r) {
        if (json_integer_value(json_object_get(r, "conn")) != conn)
            continue;
        if (json_is_true(json_object_get(r, "upgrade"))) {
            /* A refused upgrade (401...) is what the app reports as a
             * close with code 0: the wire knows the status. */
            json_int_t st = json_integer_value(json_object_get(e, "status"));
            if (st != 101) {
                json_array_append_new(c->wire_closes,
                                      json_pack("{s:f,s:I,s:s,s:b}", "t", t, "code", st, "by",
                                                "server", "refused", 1));
                ws6_loss(c, e, t);
            }
            json_array_remove(w->proxy_pending, i);
            return;
        }
        json_object_set(r, "status", json_object_get(e, "status"));
        if (json_object_get(e, "body"))
            json_object_set(r, "response", json_object_get(e, "body"));
        json_object_set_new(r, "elapsed_ms",
                            json_real(t - json_number_value(json_object_get(r, "t"))));
        /* A response the network lost still reached the server's side:
         * the request was applied (that is what a dropped response means). */
        if (json_is_true(json_object_get(e, "dropped")))
            json_object_set_new(r, "reply_lost", json_true());
        json_object_del(r, "conn");
        rl_unsuffix(w, r); /* fresh names on a foreign server, read back */
        json_array_append(c->wire_http, r);
        json_array_remove(w->proxy_pending, i);
        return;
    }
}

void rl_proxy_sync(rl_world *w)
{
    if (!w->proxy_running)
        return;
    for (int page = 0; page < 1000; page++) {
        char path[96];
        snprintf(path, sizeof path, "/journal?since=%lld&limit=10000", (long long)w->proxy_seq);
        char *out = NULL;
        int st = rl_http(w->proxy_ctl, "GET", path, NULL, NULL, 10000, &out);
        json_t *j = st == 200 && out ? json_loads(out, 0, NULL) : NULL;
        free(out);
        if (!j)
            return;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "entries"), i, e) {
            w->proxy_seq = json_integer_value(json_object_get(e, "seq"));
            rl_client *c = client_named(w, json_string_value(json_object_get(e, "client")));
            if (!c)
                continue;
            const char *kind = json_string_value(json_object_get(e, "kind"));
            double t = json_number_value(json_object_get(e, "t_ms")) - w->epoch_off - w->t0;
            if (!kind)
                continue;
            if (!strcmp(kind, "frame"))
                on_frame(w, c, e, t);
            else if (!strcmp(kind, "request"))
                on_request(w, c, e, t);
            else if (!strcmp(kind, "response"))
                on_response(w, c, e, t);
            else if (!strcmp(kind, "close"))
                on_close(c, e, t);
        }
        int more = json_is_true(json_object_get(j, "more"));
        json_decref(j);
        if (!more)
            return;
    }
}

void rl_proxy_stop(rl_world *w)
{
    /* HP_REAL_KEEP: the whole journal is kept beside the programs' files. */
    if (w->proxy_running && getenv("HP_REAL_KEEP")) {
        char *out = NULL, path[600];
        snprintf(path, sizeof path, "%s/proxy-journal.json", w->dir);
        if (rl_http(w->proxy_ctl, "GET", "/journal?limit=10000", NULL, NULL, 10000, &out) == 200 &&
            out) {
            FILE *f = fopen(path, "w");
            if (f) {
                fputs(out, f);
                fclose(f);
            }
        }
        free(out);
    }
    if (w->proxy.pid > 0)
        rl_proc_stop(&w->proxy, SIGTERM, 3000);
    rl_proc_close_fds(&w->proxy);
    w->proxy_running = 0;
}
