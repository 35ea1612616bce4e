/*
 * fuzz_cli_driver.c - hp-fake-client's stdin command language
 * (fake_client/cli_main.c: cli_drv_line), over a real client core.
 *
 * cli_main.c is compiled into this target with its main() renamed (see
 * CMakeLists.txt); the libwebsockets half of the program (cli_lws*.c) is
 * replaced by the stubs below, which accept or refuse like the real ones
 * without a socket.
 *
 * Input: the lines a script writes on the client's stdin ($A/$B/$X become
 * tokens).  stdout is captured: oracles: every line the driver writes is
 * one JSON object with a string "kind"; every "error" line has a string
 * "message" (issue 11: a message cut inside a UTF-8 character was lost).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_core.h"
#include "cli_store.h"
#include "fz_util.h"
#include "hp_policy.h"

/* ---- the program's interface (cli_main.c / cli_lws_int.h) ---- */
int cli_drv_line(cli_core *core, const char *line, size_t len);

int cli_lws_run(cli_core *core, const hp_env *env, const char *server_url, char *err,
                size_t errlen);
void cli_lws_quit(void);
int cli_lws_check_url(const char *url, char *err, size_t errlen);
int cli_lws_send_frame(const char *text, size_t len, char *err, size_t errlen);
void cli_lws_set_ca_file(const char *path);
void cli_lws_set_frames(int on);
int cli_lws_add_drop(const char *from, const char *message, int count, char *err,
                     size_t errlen);

int cli_lws_run(cli_core *core, const hp_env *env, const char *server_url, char *err,
                size_t errlen)
{
    (void)core, (void)env, (void)server_url;
    snprintf(err, errlen, "no event loop in the fuzz target");
    return -1;
}
void cli_lws_quit(void) {}
int cli_lws_check_url(const char *url, char *err, size_t errlen)
{
    (void)url, (void)err, (void)errlen;
    return 0;
}
/* As cli_lws_ws.c: refused when no stream is open (there never is one here). */
int cli_lws_send_frame(const char *text, size_t len, char *err, size_t errlen)
{
    (void)text, (void)len;
    snprintf(err, errlen, "no open stream");
    return -1;
}
void cli_lws_set_ca_file(const char *path) { (void)path; }
void cli_lws_set_frames(int on) { (void)on; }
/* As cli_lws.c: the same checks, the same (fixed) messages. */
int cli_lws_add_drop(const char *from, const char *message, int count, char *err,
                     size_t errlen)
{
    static const char *const kinds[] = {"HELLO", "READY", "HEARTBEAT", "RESYNC_REQUIRED",
                                        "TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED",
                                        "request", "response", "any", NULL};
    if (!from || (strcmp(from, "client") && strcmp(from, "server"))) {
        snprintf(err, errlen, "\"from\" must be \"server\" or \"client\"");
        return -1;
    }
    const char *const *k = kinds;
    while (*k && (!message || strcmp(*k, message)))
        k++;
    if (!*k) {
        snprintf(err, errlen, "\"message\" must be a message type, request, response or any");
        return -1;
    }
    if (count < 1) {
        snprintf(err, errlen, "\"count\" must be 1 or more");
        return -1;
    }
    return 0;
}

/* ---- the target ----------------------------------------------------------- */

static void check_output(const char *out, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(out + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (out + i)) : len - i;
        json_error_t je;
        json_t *o = json_loadb(out + i, n, 0, &je);
        FZ_CHECK(json_is_object(o), "stdout line is not a JSON object: %.*s", (int)(n > 300 ? 300 : n),
                 out + i);
        const char *kind = json_string_value(json_object_get(o, "kind"));
        FZ_CHECK(kind != NULL, "stdout line without kind");
        if (strcmp(kind, "error") == 0)
            FZ_CHECK(json_is_string(json_object_get(o, "message")),
                     "error line without a message: %.*s", (int)(n > 300 ? 300 : n), out + i);
        json_decref(o);
        i += n + 1;
    }
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
    if (size > 256 * 1024)
        return -1;
    fz_env e;
    fz_env_init(&e, "alice");
    hp_policy pol;
    hp_policy_defaults(&pol);
    uint8_t key[32];
    memset(key, 7, sizeof key);
    char err[256];
    cli_store *st = cli_store_open(":memory:", key, &e.env, NULL, err, sizeof err);
    FZ_CHECK(st != NULL, "store: %s", err);
    cli_core *c = cli_new(&e.env, &pol, st, fz_tokens[0]);
    FZ_CHECK(c != NULL, "cli_new");

    char *buf = NULL;
    size_t blen = 0;
    FILE *saved = stdout;
    stdout = open_memstream(&buf, &blen);
    FZ_CHECK(stdout != NULL, "open_memstream");

    size_t n = 0;
    char *in = fz_subst((const char *)data, size, &n);
    size_t i = 0;
    for (int lines = 0; i < n && lines < 500; lines++) {
        const char *nl = memchr(in + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (in + i)) : n - i;
        if (cli_drv_line(c, in + i, len))
            break;
        i += len + 1;
        /* The adapter carries out the outbox between lines. */
        hp_out o;
        while (hp_outbox_pop(cli_outbox(c), &o))
            hp_out_clear(&o);
    }
    free(in);
    fclose(stdout);
    stdout = saved;
    check_output(buf, blen);
    free(buf);
    cli_free(c);
    cli_store_close(st);
    return 0;
}
