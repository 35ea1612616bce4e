/*
 * fuzz_policy.c - policy overrides (protocol/hp_policy.c: the programs'
 * --policy flag, a scenario's policy:) and what both cores do with them.
 *
 * Input: the JSON text of --policy.  When it is accepted, a server core
 * and a client core run with that policy for a few simulated minutes: a
 * connection, HELLO, READY, heartbeats, a lock, timers.  Oracles: a
 * refused policy leaves the defaults untouched and names the key; the
 * sanitizers catch deadline arithmetic that overflows (issue 11: a huge
 * heartbeat_interval aborted the sanitized server).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_core.h"
#include "cli_store.h"
#include "fz_util.h"
#include "hp_msg.h"
#include "hp_policy.h"
#include "srv_core.h"

static void drain_srv(srv_core *c)
{
    hp_out o;
    while (hp_outbox_pop(srv_outbox(c), &o))
        hp_out_clear(&o);
}

static void drain_cli(cli_core *c)
{
    hp_out o;
    while (hp_outbox_pop(cli_outbox(c), &o))
        hp_out_clear(&o);
}

static void run_server(const hp_policy *p)
{
    fz_env e;
    fz_env_init(&e, "fake_server");
    char err[256];
    srv_store *st = srv_store_open(":memory:", err, sizeof err);
    FZ_CHECK(st != NULL, "store: %s", err);
    srv_core *c = srv_new(&e.env, p, FZ_SECRET, st);
    FZ_CHECK(c != NULL, "srv_new");
    char q[600];
    snprintf(q, sizeof q, "token=%s", fz_tokens[0]);
    char *refusal = NULL;
    if (srv_ws_open(c, 1, HP_STREAM_PATH, q, &refusal) == 0) {
        const char *hello = "{\"type\":\"HELLO\",\"revision\":0}";
        srv_ws_message(c, 1, hello, strlen(hello));
        const char *hb = "{\"type\":\"HEARTBEAT\",\"locks\":[\"t1\"]}";
        srv_ws_message(c, 1, hb, strlen(hb));
    }
    free(refusal);
    srv_http_req req = {.id = 1, .method = "POST", .path = HP_API_PREFIX "/t1/lock",
                        .content_length = 0};
    char auth[600];
    snprintf(auth, sizeof auth, "Bearer %s", fz_tokens[0]);
    req.authorization = auth;
    srv_http(c, &req);
    drain_srv(c);
    for (int i = 0; i < 20; i++) {
        int64_t d = srv_next_deadline(c);
        if (d == INT64_MAX)
            break;
        if (d > e.now)
            e.now = d;
        srv_tick(c);
        drain_srv(c);
    }
    srv_free(c);
    srv_store_close(st);
}

static void run_client(const hp_policy *p)
{
    fz_env e;
    fz_env_init(&e, "alice");
    uint8_t key[32];
    memset(key, 7, sizeof key);
    char err[256];
    cli_store *st = cli_store_open(":memory:", key, &e.env, NULL, err, sizeof err);
    FZ_CHECK(st != NULL, "store: %s", err);
    cli_core *c = cli_new(&e.env, p, st, fz_tokens[0]);
    FZ_CHECK(c != NULL, "cli_new");
    cli_start(c);
    uint64_t conn = 0;
    hp_out o;
    while (hp_outbox_pop(cli_outbox(c), &o)) {
        if (o.kind == HP_OUT_WS_CONNECT)
            conn = o.id;
        hp_out_clear(&o);
    }
    if (conn) {
        cli_ws_opened(c, conn);
        char *ready = hp_msg_ready(0, p->heartbeat_ms);
        cli_ws_message(c, conn, ready, strlen(ready));
        free(ready);
    }
    json_t *f = json_pack("{s:s}", "title", "x");
    cli_edit(c, "t1", f, err, sizeof err);
    json_decref(f);
    cli_lock(c, "t1", err, sizeof err);
    drain_cli(c);
    for (int i = 0; i < 20; i++) {
        int64_t d = cli_next_deadline(c);
        if (d == INT64_MAX)
            break;
        if (d > e.now)
            e.now = d;
        cli_tick(c);
        drain_cli(c);
    }
    cli_free(c);
    cli_store_close(st);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_tokens_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024)
        return -1;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    hp_policy p, d;
    hp_policy_defaults(&p);
    hp_policy_defaults(&d);
    char err[256] = "";
    if (hp_policy_apply_json(&p, s, err, sizeof err) != 0) {
        json_t *a = hp_policy_to_json(&p), *b = hp_policy_to_json(&d);
        FZ_CHECK(json_equal(a, b), "a refused policy changed the policy");
        json_decref(a);
        json_decref(b);
        FZ_CHECK(err[0], "refused without a message");
    } else {
        json_t *j = hp_policy_to_json(&p);
        FZ_CHECK(json_is_object(j), "hp_policy_to_json");
        json_decref(j);
        run_server(&p);
        run_client(&p);
    }
    free(s);
    return 0;
}
