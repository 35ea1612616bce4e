/*
 * cli_main.c - the hp-fake-client program: flags, set-up and the JSON-lines
 * driver.
 *
 * The program has two halves: this file (command line, the core's environment,
 * the stdin command language and the stdout observables) and cli_lws*.c (the
 * libwebsockets event loop that carries out the core's outbox).  The policy
 * lives in the core (cli_core.h); nothing here decides a rule.
 *
 * stdout carries only JSON lines, one compact object per observable, each
 * with a "kind" (docs/CLIENT_DRIVER.md); stderr carries only log lines in the
 * project's one format (hp_log).  Every stdout line is flushed at once so a
 * script reading a pipe sees it without delay.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli_core.h"
#include "cli_store.h"
#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_log.h"
#include "hp_outbox.h"
#include "hp_msg.h"
#include "hp_policy.h"

#ifndef HP_VERSION
#define HP_VERSION "unknown" /* CMake defines it from project() */
#endif

/* ---- the interface between the program's two halves --------------------
 * (These few prototypes are repeated, identically, in the adapter's
 * internal header cli_lws_int.h.) */

/* cli_lws.c: run the event loop until quit; 0, or -1 with err on set-up. */
int cli_lws_run(cli_core *core, const hp_env *env, const char *server_url, char *err,
                size_t errlen);
/* cli_lws.c: ask the loop to stop (async-signal-safe). */
void cli_lws_quit(void);
/* cli_lws.c: check a --server URL without connecting; 0 or -1 with err. */
int cli_lws_check_url(const char *url, char *err, size_t errlen);
/* cli_lws_ws.c: a raw text frame on the open stream; 0 or -1 with err. */
int cli_lws_send_frame(const char *text, size_t len, char *err, size_t errlen);
/* cli_lws.c: PEM file of CAs to trust for https:// (NULL: the system's). */
void cli_lws_set_ca_file(const char *path);
/* cli_lws.c: --frames, a "frame" line per WebSocket message read or written. */
void cli_lws_set_frames(int on);
/* cli_lws.c: driver command drop, a network fault; 0 or -1 with err. */
int cli_lws_add_drop(const char *from, const char *message, int count, char *err, size_t errlen);

/* Here: one stdin command line; returns 1 when the driver must quit. */
int cli_drv_line(cli_core *core, const char *line, size_t len);
/* Here: print obj as one stdout line (steals the reference). */
void cli_drv_emit(json_t *obj);
/* Here: a NOTIFY / OBSERVE outbox item becomes a stdout line. */
void cli_drv_observable(const hp_out *it);
/* Here: one HTTP exchange ended: status, or 0 with error set. */
void cli_drv_http(const char *method, const char *path, const char *idem_key, int status,
                  const char *error, const char *body, size_t body_len, const char *resp,
                  size_t resp_len, double elapsed_ms);

/* ---- stdout ------------------------------------------------------------- */

static int g_stdout_broken;

/* One compact JSON object per line, flushed.  A reader that went away
 * (EPIPE) stops the program: nobody is left to observe it. */
void cli_drv_emit(json_t *obj)
{
    if (!obj)
        return;
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(obj);
    if (!s)
        return;
    if (!g_stdout_broken) {
        if (fputs(s, stdout) < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
            g_stdout_broken = 1;
            cli_lws_quit();
        }
    }
    free(s);
}

/* A new object whose first key is "kind" (readers grep for it). */
static json_t *kind_obj(const char *kind)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(kind));
    return o;
}

/* NOTIFY => {"kind":"notification", ...info}; OBSERVE => info as is (it
 * carries its own "kind"; one without gets "observe"). */
void cli_drv_observable(const hp_out *it)
{
    if (!it || !json_is_object(it->info))
        return;
    json_t *o;
    if (it->kind == HP_OUT_NOTIFY) {
        o = kind_obj("notification");
        json_object_update_missing(o, it->info);
    } else {
        const char *k = json_string_value(json_object_get(it->info, "kind"));
        o = kind_obj(k ? k : "observe");
        json_object_update_missing(o, it->info);
    }
    cli_drv_emit(o);
}

/* --http-bodies: the request and response bodies go on the http line too
 * (parsed when they are JSON), so a harness judging a server can check
 * what crossed the wire - a 409's "current", a 423's holder - from our
 * side of it (SPEC §7). */
static int http_bodies;
static int no_start; /* --no-start: cli_start() waits for the `start` command */
static int start_offline; /* --online no: the device is offline when the app starts */

static json_t *body_json(const char *b, size_t len)
{
    if (!b || len == 0)
        return NULL;
    json_t *j = json_loadb(b, len, JSON_DECODE_ANY, NULL);
    return j ? j : json_stringn(b, len); /* NULL when not UTF-8 */
}

void cli_drv_http(const char *method, const char *path, const char *idem_key, int status,
                  const char *error, const char *body, size_t body_len, const char *resp,
                  size_t resp_len, double elapsed_ms)
{
    json_t *o = kind_obj("http");
    json_object_set_new(o, "method", json_string(method ? method : ""));
    json_object_set_new(o, "path", json_string(path ? path : ""));
    if (idem_key) /* a retry carries the same key; scripts can check it */
        json_object_set_new(o, "idem_key", json_string(idem_key));
    json_object_set_new(o, "status", json_integer(status));
    if (error)
        json_object_set_new(o, "error", hp_json_text(error));
    /* From the request's start to its answer, on this device's clock. */
    json_object_set_new(o, "elapsed_ms", json_integer((json_int_t)(elapsed_ms + 0.5)));
    if (http_bodies) {
        json_t *b = body_json(body, body_len), *r = body_json(resp, resp_len);
        if (b)
            json_object_set_new(o, "body", b);
        if (r)
            json_object_set_new(o, "response", r);
    }
    cli_drv_emit(o);
}

/*
 * --token-file / {"cmd":"token","file":...}: the token as the whole file,
 * surrounding whitespace (a trailing newline) removed.  1 to
 * CLI_TOKEN_FILE_MAX bytes of printable ASCII (a JWT), else NULL with err.
 * the token never appears in argv (ps) nor in err.
 */
#define CLI_TOKEN_FILE_MAX 16384
static char *read_token_file(const char *path, char *err, size_t errlen)
{
    /* A regular file only, opened without blocking: a FIFO or a device
     * (/dev/stdin) must not hang the driver that reads commands. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "token file %.200s: %s", path,
                 fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "token file %.200s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CLI_TOKEN_FILE_MAX + 2);
    size_t n = buf ? fread(buf, 1, CLI_TOKEN_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t a = 0, b = n;
    while (a < b && isspace((unsigned char)buf[a]))
        a++;
    while (b > a && isspace((unsigned char)buf[b - 1]))
        b--;
    const char *why = NULL;
    if (n > CLI_TOKEN_FILE_MAX)
        why = "is over 16384 bytes";
    else if (a == b)
        why = "is empty";
    for (size_t i = a; !why && i < b; i++)
        if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e)
            why = "holds more than one token (spaces, lines or non-ASCII bytes inside)";
    if (why) {
        snprintf(err, errlen, "token file %.200s %s", path, why);
        free(buf);
        return NULL;
    }
    memmove(buf, buf + a, b - a);
    buf[b - a] = '\0';
    return buf;
}

/* ---- the command language ------------------------------------------------ */

static void emit_ok(const char *cmd, const char *id)
{
    json_t *o = kind_obj("ok");
    json_object_set_new(o, "cmd", json_string(cmd));
    if (id)
        json_object_set_new(o, "id", json_string(id));
    cli_drv_emit(o);
}

/* cmd may be NULL when the line had none we could read (then "cmd": null). */
static void emit_error(const char *cmd, const char *id, const char *message)
{
    json_t *o = kind_obj("error");
    json_object_set_new(o, "cmd", cmd ? hp_json_text(cmd) : json_null());
    if (id)
        json_object_set_new(o, "id", hp_json_text(id));
    /* hp_json_text: a message cut inside a UTF-8 character by snprintf
     * keeps its text (issue 11: json_string() gave NULL, the key vanished). */
    json_object_set_new(o, "message", hp_json_text(message ? message : "error"));
    cli_drv_emit(o);
}

/* The string member `key` of a command, or NULL (then an error line was
 * emitted naming what is missing). */
static const char *need_string(const json_t *root, const char *cmd, const char *key)
{
    const json_t *v = json_object_get(root, key);
    if (!json_is_string(v)) {
        char msg[128];
        snprintf(msg, sizeof msg, "\"%s\" needs a string \"%s\"", cmd, key);
        emit_error(cmd, NULL, msg);
        return NULL;
    }
    return json_string_value(v);
}

typedef int (*id_action)(cli_core *, const char *, char *, size_t);

/* delete / lock / unlock: an "id" and a core action that may refuse. */
static void run_id_action(cli_core *core, const json_t *root, const char *cmd, id_action fn)
{
    const char *id = need_string(root, cmd, "id");
    if (!id)
        return;
    char err[256] = "";
    if (fn(core, id, err, sizeof err) == 0)
        emit_ok(cmd, id);
    else
        emit_error(cmd, id, err[0] ? err : "refused");
}

/*
 * One command line.  Blank lines are ignored.  Anything else that is not a
 * JSON object with a known "cmd" and well-typed arguments gets an
 * {"kind":"error"} line and changes nothing; a refused action (queue full,
 * no conflict pending, invalid field...) gets one too, with the core's
 * message.  Returns 1 for "quit".
 */
int cli_drv_line(cli_core *core, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return 0;

    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "not JSON: %s (column %d)", jerr.text, jerr.column);
        emit_error(NULL, NULL, msg);
        return 0;
    }
    if (!json_is_object(root)) {
        emit_error(NULL, NULL, "a command is a JSON object with a \"cmd\"");
        json_decref(root);
        return 0;
    }
    const char *cmd = json_string_value(json_object_get(root, "cmd"));
    if (!cmd) {
        emit_error(NULL, NULL, "missing string \"cmd\"");
        json_decref(root);
        return 0;
    }

    int quit = 0;
    char err[256] = "";
    if (strcmp(cmd, "edit") == 0) {
        const char *id = need_string(root, cmd, "id");
        const json_t *fields = json_object_get(root, "fields");
        if (id && !json_is_object(fields)) {
            emit_error(cmd, id, "\"edit\" needs an object \"fields\"");
        } else if (id) {
            if (cli_edit(core, id, fields, err, sizeof err) == 0)
                emit_ok(cmd, id);
            else
                emit_error(cmd, id, err[0] ? err : "refused");
        }
    } else if (strcmp(cmd, "delete") == 0) {
        run_id_action(core, root, cmd, cli_delete);
    } else if (strcmp(cmd, "lock") == 0) {
        run_id_action(core, root, cmd, cli_lock);
    } else if (strcmp(cmd, "unlock") == 0) {
        run_id_action(core, root, cmd, cli_unlock);
    } else if (strcmp(cmd, "offline") == 0 || strcmp(cmd, "online") == 0) {
        cli_set_online(core, cmd[1] == 'n');
        emit_ok(cmd, NULL);
    } else if (strcmp(cmd, "sync_now") == 0) {
        cli_sync_now(core);
        emit_ok(cmd, NULL);
    } else if (strcmp(cmd, "start") == 0) {
        /* --no-start: the app opens its store and takes commands (edits are
         * queued) but connects only now, as a scenario's `connect` says. */
        cli_start(core);
        emit_ok(cmd, NULL);
    } else if (strcmp(cmd, "choose") == 0) {
        const char *id = need_string(root, cmd, "id");
        const char *choice = id ? need_string(root, cmd, "choice") : NULL;
        if (id && choice) {
            if (cli_choose(core, id, choice, err, sizeof err) == 0)
                emit_ok(cmd, id);
            else
                emit_error(cmd, id, err[0] ? err : "refused");
        }
    } else if (strcmp(cmd, "token") == 0) {
        /* {"token": JWT} or {"file": PATH} (the token read from a
         * file, so it need not pass through a harness's pipe or argv). */
        json_t *jf = json_object_get(root, "file");
        if (jf && json_object_get(root, "token")) {
            emit_error(cmd, NULL, "give \"token\" or \"file\", not both");
        } else if (jf) {
            char ferr[300] = "";
            char *tok = json_is_string(jf) ? read_token_file(json_string_value(jf), ferr,
                                                             sizeof ferr)
                                           : NULL;
            if (!json_is_string(jf))
                emit_error(cmd, NULL, "\"file\" must be a string (a path)");
            else if (!tok)
                emit_error(cmd, NULL, ferr);
            else {
                cli_set_token(core, tok);
                emit_ok(cmd, NULL);
            }
            free(tok);
        } else {
            const char *tok = need_string(root, cmd, "token");
            if (tok && !*tok) {
                emit_error(cmd, NULL, "\"token\" must not be empty");
            } else if (tok) {
                cli_set_token(core, tok);
                emit_ok(cmd, NULL);
            }
        }
    } else if (strcmp(cmd, "status") == 0) {
        json_t *o = kind_obj("status");
        json_t *st = cli_status(core);
        if (st)
            json_object_update_missing(o, st);
        json_decref(st);
        cli_drv_emit(o);
    } else if (strcmp(cmd, "cached") == 0) {
        const char *id = need_string(root, cmd, "id");
        if (id) {
            json_t *o = kind_obj("cached");
            json_object_set_new(o, "id", json_string(id));
            json_t *t = cli_cached(core, id);
            json_object_set_new(o, "task", t ? t : json_null());
            cli_drv_emit(o);
        }
    } else if (strcmp(cmd, "send_frame") == 0) {
        /* A test probe, not a user action: the frame goes out as given. */
        const json_t *t = json_object_get(root, "text");
        if (!json_is_string(t)) {
            emit_error(cmd, NULL, "\"send_frame\" needs a string \"text\"");
        } else if (cli_lws_send_frame(json_string_value(t), json_string_length(t), err,
                                      sizeof err) == 0) {
            emit_ok(cmd, NULL);
        } else {
            emit_error(cmd, NULL, err);
        }
    } else if (strcmp(cmd, "drop") == 0) {
        /* A test fault, not a user action: the next messages are lost. */
        const json_t *cnt = json_object_get(root, "count");
        if (cnt && (!json_is_integer(cnt) || json_integer_value(cnt) < 1 ||
                    json_integer_value(cnt) > 1000000)) {
            emit_error(cmd, NULL, "\"count\" must be an integer from 1 to 1000000");
        } else if (cli_lws_add_drop(json_string_value(json_object_get(root, "from")),
                                    json_string_value(json_object_get(root, "message")),
                                    cnt ? (int)json_integer_value(cnt) : 1, err,
                                    sizeof err) == 0) {
            emit_ok(cmd, NULL);
        } else {
            emit_error(cmd, NULL, err);
        }
    } else if (strcmp(cmd, "quit") == 0) {
        emit_ok(cmd, NULL);
        quit = 1;
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown command \"%.64s\"", cmd);
        emit_error(cmd, NULL, msg);
    }
    json_decref(root);
    return quit;
}

/* ---- set-up -------------------------------------------------------------- */

static const char USAGE[] =
    "usage: hp-fake-client --server http://HOST:PORT [--token JWT | --token-file F]\n"
    "                      --db FILE --key-file FILE\n"
    "                      [--time-scale F] [--log-level LEVEL] [--name NAME]\n"
    "                      [--ca-file PEM] [--policy JSON] [--frames]\n"
    "                      [--http-bodies]\n"
    "\n"
    "The HomePlanner reference client.  Reads commands as JSON lines on stdin and\n"
    "writes every observable as one JSON line on stdout; logs go to stderr.\n"
    "\n"
    "  --server URL      http://HOST:PORT (or https://), optionally with a path prefix\n"
    "  --token JWT       the bearer token (HS256); without it the client starts in\n"
    "                    AUTH_REQUIRED and waits for a {\"cmd\":\"token\"} line\n"
    "  --token-file F    read the token from file F instead (not visible in ps);\n"
    "                    {\"cmd\":\"token\",\"file\":F} does the same later\n"
    "  --db FILE         the device store (SQLite; created if missing)\n"
    "  --key-file FILE   the 32-byte store key: 32 raw bytes or 64 hex characters\n"
    "  --time-scale F    multiply every policy duration by F (> 0; default 1)\n"
    "  --log-level L     debug | info | warning | error (default info)\n"
    "  --name NAME       the actor name in log lines (default: the token's sub)\n"
    "  --policy JSON     overrides of the seed policy, as in a scenario's policy:\n"
    "                    e.g. '{\"queue_max\": 3, \"offline_long\": \"5m\"}'; scaled\n"
    "                    by --time-scale\n"
    "  --ca-file PEM     with https://: trust the CAs in this PEM file instead of\n"
    "                    the system's (a test or company CA); the server's\n"
    "                    certificate and host name are always verified\n"
    "  --frames          also write a {\"kind\":\"frame\"} line for every WebSocket\n"
    "                    message read or written (from, type, bytes)\n"
    "  --http-bodies     put the request and response bodies on http lines\n"
    "  --no-start        do not connect until the `start` command (edits queue)\n"
    "  --online yes|no   whether the device has a network when the app starts\n"
    "                    (default yes; no = as after the `offline` command)\n"
    "  --help            this text\n"
    "  --version         print the version and exit\n"
    "\n"
    "Commands: edit, delete, lock, unlock, offline, online, sync_now, choose,\n"
    "token, status, cached, quit; send_frame (a raw frame) and drop (lose messages),\n"
    "for protocol tests.\n"
    "See docs/CLIENT_DRIVER.md.\n"
    "Exit: 0 after quit or end of stdin, 2 usage, 3 runtime error.\n";

static void usage_error(const char *fmt, const char *arg)
{
    fputs("hp-fake-client: ", stderr);
    fprintf(stderr, fmt, arg ? arg : "");
    fputs("\n(see hp-fake-client --help)\n", stderr);
    exit(2);
}

static void on_signal(int sig)
{
    (void)sig;
    cli_lws_quit();
}

/* 64 bits from /dev/urandom for the core's PRNG (jitter, mutation ids): the
 * adapter seeds it, the core never reads entropy itself.  Falls back to the
 * clock mixed with the pid when /dev/urandom is unreadable. */
static uint64_t urandom_seed(void)
{
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, &seed, sizeof seed);
        close(fd);
        if (n == (ssize_t)sizeof seed)
            return seed;
    }
    return (uint64_t)hp_wall_clock(NULL) * 6364136223846793005ull ^ (uint64_t)getpid();
}

/*
 * The "sub" claim of a JWT, read without verifying it (the client has no
 * secret): only used to name the actor in log lines.  Writes "" when the
 * token is not a readable JWT.
 */
static void token_sub(const char *token, char *out, size_t outlen)
{
    char *sub = hp_jwt_peek_sub(token);
    snprintf(out, outlen, "%s", sub ? sub : "");
    free(sub);
}

/* Actor names appear unquoted in log lines: keep them one word. */
static void sanitize_actor(char *s)
{
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '=')
            *s = '_';
}

int main(int argc, char **argv)
{
    const char *server = NULL, *token = NULL, *db = NULL, *key_file = NULL, *name = NULL;
    const char *ca_file = NULL, *policy_s = NULL, *token_file = NULL;
    char *token_from_file = NULL;
    double scale = 1.0;
    hp_log_level level = HP_LOG_INFO;

    enum { O_SERVER = 1, O_TOKEN, O_TOKEN_FILE, O_DB, O_KEY, O_SCALE, O_LEVEL, O_NAME, O_CA, O_POLICY, O_FRAMES, O_BODIES, O_NOSTART, O_ONLINE, O_HELP, O_VERSION };
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"db", required_argument, NULL, O_DB},
        {"key-file", required_argument, NULL, O_KEY},
        {"time-scale", required_argument, NULL, O_SCALE},
        {"log-level", required_argument, NULL, O_LEVEL},
        {"name", required_argument, NULL, O_NAME},
        {"ca-file", required_argument, NULL, O_CA},
        {"policy", required_argument, NULL, O_POLICY},
        {"frames", no_argument, NULL, O_FRAMES},
        {"http-bodies", no_argument, NULL, O_BODIES},
        {"no-start", no_argument, NULL, O_NOSTART},
        {"online", required_argument, NULL, O_ONLINE},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_SERVER: server = optarg; break;
        case O_TOKEN: token = optarg; break;
        case O_TOKEN_FILE: token_file = optarg; break;
        case O_DB: db = optarg; break;
        case O_KEY: key_file = optarg; break;
        case O_NAME: name = optarg; break;
        case O_CA: ca_file = optarg; break;
        case O_POLICY: policy_s = optarg; break;
        case O_FRAMES: cli_lws_set_frames(1); break;
        case O_BODIES: http_bodies = 1; break;
        case O_NOSTART: no_start = 1; break;
        case O_ONLINE:
            if (strcmp(optarg, "yes") && strcmp(optarg, "no"))
                usage_error("--online must be yes or no, not \"%s\"", optarg);
            start_offline = !strcmp(optarg, "no");
            break;
        case O_SCALE: {
            char *end = NULL;
            errno = 0;
            scale = strtod(optarg, &end);
            if (errno || !end || end == optarg || *end || hp_time_scale_check(scale, NULL, 0) != 0)
                usage_error("--time-scale needs a number from 0.001 to 1000, not \"%s\"", optarg);
            break;
        }
        case O_LEVEL:
            if (hp_log_level_parse(optarg, &level) != 0)
                usage_error("--log-level must be debug, info, warning or error, not \"%s\"",
                            optarg);
            break;
        case O_HELP: fputs(USAGE, stdout); return 0;
        case O_VERSION: printf("hp-fake-client %s\n", HP_VERSION); return 0;
        case ':': usage_error("%s needs a value", argv[optind - 1]); break;
        default: usage_error("unknown option \"%s\"", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!server)
        usage_error("--server is required%s", NULL);
    if (!db)
        usage_error("--db is required%s", NULL);
    if (!key_file)
        usage_error("--key-file is required%s", NULL);
    if (token && !*token) /* --token '': no token (a harness template's {token} when the
                             * scenario starts the app without one) */
        token = NULL;
    if (token_file && token)
        usage_error("give --token or --token-file, not both%s", NULL);
    if (token_file && *token_file) {
        /* a token on the command line is readable by every local user
         * (ps); --token-file keeps it in a file only its owner reads. */
        char terr[300];
        token_from_file = read_token_file(token_file, terr, sizeof terr);
        if (!token_from_file)
            usage_error("--token-file: %s", terr);
        token = token_from_file;
    }
    if (name && !*name)
        usage_error("--name must not be empty%s", NULL);
    if (ca_file && access(ca_file, R_OK) != 0)
        usage_error("--ca-file: cannot read \"%s\"", ca_file);
    if (ca_file && strncmp(server, "https://", 8) != 0)
        usage_error("--ca-file is for an https:// --server%s", NULL);
    cli_lws_set_ca_file(ca_file);

    char err[512];
    if (cli_lws_check_url(server, err, sizeof err) != 0)
        usage_error("--server: %s", err);
    uint8_t key[32];
    if (cli_key_load(key_file, key, err, sizeof err) != 0)
        usage_error("--key-file: %s", err);
    /* Before anything is opened: a bad --policy is a usage error. */
    hp_policy policy;
    hp_policy_defaults(&policy);
    /* Overrides first, then the scale (as on the server). */
    if (policy_s && hp_policy_apply_json(&policy, policy_s, err, sizeof err) != 0)
        usage_error("--policy: %s", err);
    hp_policy_scale(&policy, scale);

    /* The environment: wall clock, entropy-seeded PRNG, stderr logger. */
    char actor[128];
    if (name)
        snprintf(actor, sizeof actor, "%s", name);
    else
        token_sub(token, actor, sizeof actor);
    if (!actor[0])
        snprintf(actor, sizeof actor, "fake_client");
    sanitize_actor(actor);
    hp_rng rng;
    hp_rng_seed(&rng, urandom_seed());
    hp_logger logger = {.sink = hp_log_stderr_sink, .ud = NULL, .min_level = level};
    hp_env env = {.now = hp_wall_clock, .clock_ud = NULL, .rng = &rng, .log = &logger,
                  .actor = actor};

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    cli_store_open_info info = {0};
    cli_store *st = cli_store_open(db, key, &env, &info, err, sizeof err);
    memset(key, 0, sizeof key);
    if (!st) {
        hp_log(&env, HP_LOG_ERROR, "store_open_failed", "db=%s error=\"%s\"", db, err);
        return 3;
    }
    /* C-3 key news (KEY_MISMATCH, QUARANTINE_RESTORED) is the core's to
     * announce at cli_start(): it reads the store's open info itself. */


    cli_core *core = cli_new(&env, &policy, st, token);
    if (!core) {
        hp_log(&env, HP_LOG_ERROR, "client_start_failed", NULL);
        cli_store_close(st);
        return 3;
    }
    hp_log(&env, HP_LOG_INFO, "client_started", "server=%s db=%s time_scale=%g", server, db,
           scale);
    if (start_offline) /* before any connect: the network switch is the device's */
        cli_set_online(core, 0);
    if (!no_start)
        cli_start(core);
    int rc = cli_lws_run(core, &env, server, err, sizeof err);
    if (rc != 0)
        hp_log(&env, HP_LOG_ERROR, "event_loop_failed", "error=\"%s\"", err);
    else
        hp_log(&env, HP_LOG_INFO, "client_stopped", NULL);
    cli_free(core);
    cli_store_close(st);
    free(token_from_file);
    return rc == 0 ? 0 : 3;
}
