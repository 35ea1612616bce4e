/*
 * fp_main.c - the hp-fault-proxy program: command line and wiring.
 *
 *   hp-fault-proxy --listen 127.0.0.1:PORT --upstream http://HOST:PORT
 *                  [--control 127.0.0.1:PORT] [--journal-max N]
 *                  [--journal-max-bytes N] [--log-level L]
 *
 * Prints one JSON line on stdout once both ports listen (a harness reads the
 * ports from it), then logs on stderr.  Exit codes: 0 clean stop (SIGTERM /
 * SIGINT), 2 usage error, 3 runtime error (a port cannot be bound, the
 * upstream host does not resolve).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_proxy.h"
#include "hp_log.h"

#define EXIT_USAGE 2
#define EXIT_RUNTIME 3

static const char USAGE[] =
    "usage: hp-fault-proxy --listen HOST:PORT --upstream http://HOST:PORT\n"
    "                      [--control HOST:PORT] [--journal-max N]\n"
    "                      [--journal-max-bytes N] [--log-level LEVEL]\n"
    "       hp-fault-proxy --help | --version\n"
    "\n"
    "A fault-injecting proxy between HomePlanner clients and a server: forwards\n"
    "HTTP/1.1 and WebSocket byte for byte, journals every request, response and\n"
    "frame, and plays scoped faults (partition, latency, bandwidth, reset, cut,\n"
    "held or dropped responses, dropped messages) set through a JSON control API.\n"
    "\n"
    "  --listen HOST:PORT        where clients connect (numeric IPv4; port 0 picks\n"
    "                            a free one). Per-client ports: POST /clients\n"
    "  --upstream URL            the server, http://HOST:PORT (no TLS, no path)\n"
    "  --control HOST:PORT       the control API (default 127.0.0.1:0)\n"
    "  --journal-max N           journal entries kept, 100..10000000 (default 100000)\n"
    "  --journal-max-bytes N     journal bytes kept, 65536..4294967296 (default 64 MiB);\n"
    "                            beyond either cap the oldest entries are dropped\n"
    "  --log-level LEVEL         debug, info (default), warning or error\n"
    "\n"
    "At start one line goes to stdout:\n"
    "  {\"listen\":\"127.0.0.1:41234\",\"control\":\"127.0.0.1:41235\",\"upstream\":...}\n"
    "Reference: docs/FAULT_PROXY.md\n";

static int parse_addr(const char *s, struct sockaddr_in *a)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= INET_ADDRSTRLEN)
        return -1;
    char host[INET_ADDRSTRLEN];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *e = NULL;
    long port = strtol(colon + 1, &e, 10);
    if (!colon[1] || *e || port < 0 || port > 65535)
        return -1;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int parse_size(const char *s, unsigned long long lo, unsigned long long hi, size_t *out)
{
    char *e = NULL;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &e, 10);
    if (*e || v < lo || v > hi)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "hp-fault-proxy: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see hp-fault-proxy --help)\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *upstream = NULL, *control = "127.0.0.1:0", *level_s = "info";
    size_t jmax = FP_JOURNAL_ENTRIES_DEFAULT, jbytes = FP_JOURNAL_BYTES_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("hp-fault-proxy %s\n", FP_VERSION);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = strcmp(a, "--listen") == 0 || strcmp(a, "--upstream") == 0 ||
                    strcmp(a, "--control") == 0 || strcmp(a, "--log-level") == 0 ||
                    strcmp(a, "--journal-max") == 0 || strcmp(a, "--journal-max-bytes") == 0;
        if (!takes)
            return usage_error("unknown option '%s'", a);
        if (!v)
            return usage_error("%s needs a value", a);
        i++;
        if (strcmp(a, "--listen") == 0)
            listen = v;
        else if (strcmp(a, "--upstream") == 0)
            upstream = v;
        else if (strcmp(a, "--control") == 0)
            control = v;
        else if (strcmp(a, "--log-level") == 0)
            level_s = v;
        else if (strcmp(a, "--journal-max") == 0) {
            if (parse_size(v, 100, 10000000, &jmax) != 0)
                return usage_error("--journal-max must be an integer 100..10000000, got '%s'", v);
        } else if (parse_size(v, 65536, 4294967296ULL, &jbytes) != 0) {
            return usage_error("--journal-max-bytes must be an integer 65536..4294967296, got '%s'",
                               v);
        }
    }
    if (!listen)
        return usage_error("%s", "--listen HOST:PORT is required");
    if (!upstream)
        return usage_error("%s", "--upstream http://HOST:PORT is required");
    struct sockaddr_in la, ca;
    if (parse_addr(listen, &la) != 0)
        return usage_error("--listen must be IPV4:PORT (port 0..65535), got '%s'", listen);
    if (parse_addr(control, &ca) != 0)
        return usage_error("--control must be IPV4:PORT (port 0..65535), got '%s'", control);
    hp_log_level level;
    if (hp_log_level_parse(level_s, &level) != 0)
        return usage_error("--log-level must be debug, info, warning or error, got '%s'", level_s);

    fp_proxy p;
    char err[512];
    if (fp_proxy_init(&p, &la, &ca, upstream, jmax, jbytes, level, err, sizeof err) != 0) {
        hp_log(&p.env, HP_LOG_ERROR, "start_failed", "error=\"%s\"", err);
        fprintf(stderr, "hp-fault-proxy: %s\n", err);
        fp_proxy_free(&p);
        /* A malformed --upstream is a usage error; a host that does not
         * resolve or a port that cannot be bound is a runtime one. */
        int usage = strncmp(err, "--upstream", 10) == 0 && !strstr(err, " host '");
        return usage ? EXIT_USAGE : EXIT_RUNTIME;
    }
    char a1[INET_ADDRSTRLEN], a2[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &p.listen_addr.sin_addr, a1, sizeof a1);
    inet_ntop(AF_INET, &p.control_addr.sin_addr, a2, sizeof a2);
    char l1[64], l2[64];
    snprintf(l1, sizeof l1, "%s:%d", a1, ntohs(p.listen_addr.sin_port));
    snprintf(l2, sizeof l2, "%s:%d", a2, ntohs(p.control_addr.sin_port));
    json_t *line = json_pack("{ssssss}", "listen", l1, "control", l2, "upstream", p.up_url);
    char *out = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    printf("%s\n", out ? out : "{}");
    fflush(stdout);
    free(out);
    int rc = fp_proxy_run(&p);
    fp_proxy_free(&p);
    return rc;
}
