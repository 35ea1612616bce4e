/*
 * rpt_explain.c - the terminal's explanation of a scenario (issue 12 §2):
 * every failed assertion, then a compact timeline of what happened before
 * the first one, one line per record: virtual time, actor, lane (step,
 * http, ws, notify, event, log, assert) and a short summary.
 *
 * Input: a scn_result (its checks and trace, harness.h), read only.  The
 * same record shapes come from both engines (sim and real), so a real-mode
 * failure reads like a simulated one.  Output: text on f, with ANSI
 * colours only when asked (rpt_term_opts.color, decided by the caller from
 * isatty, NO_COLOR and --color).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpt.h"

#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BLUE "\033[34m"
#define C_MAGENTA "\033[35m"
#define C_CYAN "\033[36m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"
#define C_OFF "\033[0m"

#define SUMMARY_MAX 110 /* bytes of a record's summary on one line */

static const char *col(const rpt_term_opts *o, const char *c)
{
    return o && o->color ? c : "";
}

/* "m:ss.mmm" (or "h:mm:ss.mmm") of virtual ms. */
void rpt_fmt_vtime(char *buf, size_t len, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, f = ms % 1000;
    if (h)
        snprintf(buf, len, "%" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64, h, m, s, f);
    else
        snprintf(buf, len, "%" PRId64 ":%02" PRId64 ".%03" PRId64, m, s, f);
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A growing one-line buffer, cut at SUMMARY_MAX with "...". */
typedef struct line_buf {
    char s[SUMMARY_MAX + 8];
    size_t n;
} line_buf;

static void lb_add(line_buf *b, const char *text)
{
    for (const char *p = text; p && *p; p++) {
        if (b->n >= SUMMARY_MAX) {
            /* back off to a UTF-8 boundary before the ellipsis */
            while (b->n > 0 && ((unsigned char)b->s[b->n] & 0xC0) == 0x80)
                b->n--;
            memcpy(b->s + b->n, "...", 4);
            b->n = SUMMARY_MAX + 3;
            return;
        }
        b->s[b->n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
        b->s[b->n] = '\0';
    }
}

static void lb_json(line_buf *b, const json_t *j)
{
    if (json_is_string(j)) {
        lb_add(b, json_string_value(j));
        return;
    }
    char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    lb_add(b, t ? t : "?");
    free(t);
}

/* The "type" (or "event_type") of a frame's text, "" when none. */
static void frame_type(const json_t *e, char *out, size_t len)
{
    out[0] = '\0';
    const char *t = sget(e, "type_name"); /* not used by the engines; reserved */
    json_t *data = json_object_get(e, "data");
    json_t *parsed = NULL;
    if (json_is_string(data))
        parsed = json_loads(json_string_value(data), 0, NULL);
    else if (json_is_object(data))
        parsed = json_incref(data);
    if (parsed) {
        const char *et = sget(parsed, "event_type");
        t = et ? et : sget(parsed, "type");
    }
    if (!t)
        t = sget(e, "frame_type"); /* real mode: the driver's frame line */
    if (t)
        snprintf(out, len, "%s", t);
    json_decref(parsed);
}

/* 1 when a record belongs in the compact timeline: steps, requests,
 * frames other than heartbeats, notifications, WARNING and ERROR logs,
 * failed assertions. */
int rpt_record_notable(const json_t *e)
{
    const char *type = sget(e, "type");
    if (!type)
        return 0;
    if (!strcmp(type, "step") || !strcmp(type, "http") || !strcmp(type, "notify"))
        return 1;
    if (!strcmp(type, "assert"))
        return !json_is_true(json_object_get(e, "passed")) &&
               !(sget(e, "verdict") && !strcmp(sget(e, "verdict"), "unobservable"));
    if (!strcmp(type, "log")) {
        const char *lvl = sget(e, "level");
        return lvl && (!strcmp(lvl, "WARNING") || !strcmp(lvl, "ERROR") ||
                       !strcmp(lvl, "STDERR"));
    }
    if (!strcmp(type, "ws")) {
        if (json_object_get(e, "connect") || json_object_get(e, "close") ||
            json_object_get(e, "refused") || json_object_get(e, "lost"))
            return 1;
        char ft[48];
        frame_type(e, ft, sizeof ft);
        return strcmp(ft, "HEARTBEAT") != 0;
    }
    return 0;
}

/* One record as "TIME  ACTOR  LANE  summary". */
static void print_record(FILE *f, const json_t *e, const rpt_term_opts *o, const char *indent)
{
    char tb[32];
    rpt_fmt_vtime(tb, sizeof tb, json_integer_value(json_object_get(e, "t")));
    const char *type = sget(e, "type") ? sget(e, "type") : "?";
    const char *actor = sget(e, "actor") ? sget(e, "actor") : "?";
    const char *lane = type, *c = "";
    line_buf b = {{0}, 0};
    char tmp[160];
    if (!strcmp(type, "step")) {
        json_int_t ix = json_integer_value(json_object_get(e, "index"));
        snprintf(tmp, sizeof tmp, ix < 0 ? "(heal) " : "line %" JSON_INTEGER_FORMAT ": ",
                 json_integer_value(json_object_get(e, "line")));
        lb_add(&b, tmp);
        lb_add(&b, sget(e, "text"));
        c = C_BOLD;
    } else if (!strcmp(type, "http")) {
        json_t *st = json_object_get(e, "status");
        snprintf(tmp, sizeof tmp, "%s %s", sget(e, "method") ? sget(e, "method") : "?",
                 sget(e, "path") ? sget(e, "path") : "?");
        lb_add(&b, tmp);
        if (sget(e, "idem_key")) {
            lb_add(&b, " key=");
            lb_add(&b, sget(e, "idem_key"));
        }
        if (json_is_integer(st))
            snprintf(tmp, sizeof tmp, " -> %" JSON_INTEGER_FORMAT, json_integer_value(st));
        else
            snprintf(tmp, sizeof tmp, " -> no answer");
        lb_add(&b, tmp);
        if (sget(e, "lost") || sget(e, "reply_lost") || sget(e, "error")) {
            lb_add(&b, " (lost: ");
            lb_add(&b, sget(e, "lost") ? sget(e, "lost")
                       : sget(e, "reply_lost") ? sget(e, "reply_lost") : sget(e, "error"));
            lb_add(&b, ")");
        }
        c = json_is_integer(st) && json_integer_value(st) >= 400 ? C_YELLOW : C_BLUE;
    } else if (!strcmp(type, "ws")) {
        const char *from = sget(e, "from") ? sget(e, "from") : "?";
        const char *to = sget(e, "to") ? sget(e, "to") : "?";
        /* the lane is the client's: "->" it sent, "<-" it received */
        int in = !strcmp(from, "server");
        actor = in ? to : from;
        lb_add(&b, in ? "<- " : "-> ");
        if (json_object_get(e, "connect")) {
            snprintf(tmp, sizeof tmp, "connect -> %" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(e, "status")));
            lb_add(&b, tmp);
        } else if (json_object_get(e, "close")) {
            snprintf(tmp, sizeof tmp, "close %" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(e, "close")));
            lb_add(&b, tmp);
        } else if (json_object_get(e, "refused")) {
            lb_add(&b, "connect timed out");
        } else {
            char ft[48];
            frame_type(e, ft, sizeof ft);
            lb_add(&b, ft[0] ? ft : "frame");
            json_t *data = json_object_get(e, "data");
            if (data) {
                lb_add(&b, " ");
                lb_json(&b, data);
            }
        }
        if (sget(e, "lost") || json_is_true(json_object_get(e, "lost"))) {
            lb_add(&b, " (lost");
            if (sget(e, "lost")) {
                lb_add(&b, ": ");
                lb_add(&b, sget(e, "lost"));
            }
            lb_add(&b, ")");
        }
        c = C_CYAN;
    } else if (!strcmp(type, "log")) {
        const char *lvl = sget(e, "level") ? sget(e, "level") : "?";
        lane = lvl;
        /* The formatted line starts with its own time and level: show
         * what follows them ("msg fields"), or the parsed parts. */
        if (sget(e, "msg")) {
            lb_add(&b, sget(e, "msg"));
            if (sget(e, "fields") && *sget(e, "fields")) {
                lb_add(&b, " ");
                lb_add(&b, sget(e, "fields"));
            }
        } else {
            const char *line = sget(e, "line") ? sget(e, "line") : "";
            const char *p = strstr(line, lvl);
            if (p && strcmp(lvl, "STDERR")) {
                p += strlen(lvl);
                while (*p == ' ')
                    p++;
                const char *sp = strchr(p, ' '); /* the actor's name */
                p = sp ? sp + 1 : p;
            } else {
                p = line;
            }
            lb_add(&b, p);
        }
        c = !strcmp(lvl, "ERROR") || !strcmp(lvl, "STDERR") ? C_RED
            : !strcmp(lvl, "WARNING")                      ? C_YELLOW
                                                           : C_DIM;
    } else if (!strcmp(type, "assert")) {
        int ok = json_is_true(json_object_get(e, "passed"));
        snprintf(tmp, sizeof tmp, "line %" JSON_INTEGER_FORMAT " %s: ",
                 json_integer_value(json_object_get(e, "line")),
                 sget(e, "text") ? sget(e, "text") : "");
        lb_add(&b, tmp);
        lb_add(&b, ok ? "ok" : "FAILED");
        c = ok ? C_GREEN : C_RED;
    } else {
        lb_json(&b, json_object_get(e, "info"));
        c = !strcmp(type, "notify") ? C_MAGENTA : C_DIM;
    }
    fprintf(f, "%s%s%10s%s  %-10.10s %s%-7.7s%s %s%s%s\n", indent, col(o, C_DIM), tb,
            col(o, C_OFF), actor, col(o, c), lane, col(o, C_OFF), col(o, c), b.s,
            col(o, C_OFF));
}

/* Index of the first failed assertion in the trace, or the trace's size
 * (an invariant or a runtime error: after everything). */
static size_t first_failure(json_t *trace)
{
    size_t i;
    json_t *e;
    json_array_foreach(trace, i, e) {
        const char *type = sget(e, "type");
        if (type && !strcmp(type, "assert") && rpt_record_notable(e))
            return i;
    }
    return json_array_size(trace);
}

/* The checks that failed, other than the one rpt_term_line() printed. */
static void print_other_failures(FILE *f, const scn_result *r, const rpt_term_opts *o)
{
    size_t i, nfail = 0, shown = 0;
    json_t *c;
    json_array_foreach(r->checks, i, c) nfail += !json_is_true(json_object_get(c, "passed")) &&
                                                !(sget(c, "verdict") &&
                                                  !strcmp(sget(c, "verdict"), "unobservable"));
    if (nfail < 2)
        return;
    fprintf(f, "      %s%zu failed assertions:%s\n", col(o, C_BOLD), nfail, col(o, C_OFF));
    json_array_foreach(r->checks, i, c) {
        if (json_is_true(json_object_get(c, "passed")) ||
            (sget(c, "verdict") && !strcmp(sget(c, "verdict"), "unobservable")))
            continue;
        if (shown++ == 20) {
            fprintf(f, "      ... %zu more (see the reports)\n", nfail - 20);
            break;
        }
        const char *d = sget(c, "detail");
        fprintf(f, "      %s%s%s%s%s\n", col(o, C_RED), sget(c, "name") ? sget(c, "name") : "?",
                col(o, C_OFF), d && *d ? ": " : "", d ? d : "");
    }
}

void rpt_term_explain(FILE *f, const scn_result *r, int error, const rpt_term_opts *o)
{
    int failed = error || (!r->passed && !r->skipped);
    if (!failed && !(o && o->verbose))
        return;
    if (failed)
        print_other_failures(f, r, o);
    if (!json_is_array(r->trace) || json_array_size(r->trace) == 0)
        return;
    size_t end = failed ? first_failure(r->trace) : json_array_size(r->trace);
    size_t want = o && o->verbose ? (size_t)-1 : o && o->timeline > 0 ? (size_t)o->timeline : 20;
    /* the last `want` notable records before end */
    size_t start = end, n = 0;
    while (start > 0 && n < want) {
        start--;
        n += rpt_record_notable(json_array_get(r->trace, start));
    }
    size_t total = 0;
    for (size_t i = 0; i < end; i++)
        total += rpt_record_notable(json_array_get(r->trace, i));
    char tb[32];
    json_t *at = json_array_get(r->trace, end < json_array_size(r->trace) ? end : end - 1);
    rpt_fmt_vtime(tb, sizeof tb, json_integer_value(json_object_get(at, "t")));
    if (failed)
        fprintf(f, "      %stimeline: the last %zu of %zu records before the first failure "
                   "(at %s)%s\n", col(o, C_BOLD), n, total, tb, col(o, C_OFF));
    else
        fprintf(f, "      %stimeline: %zu records%s\n", col(o, C_BOLD), n, col(o, C_OFF));
    for (size_t i = start; i < end; i++) {
        json_t *e = json_array_get(r->trace, i);
        if (rpt_record_notable(e))
            print_record(f, e, o, "      ");
    }
}
