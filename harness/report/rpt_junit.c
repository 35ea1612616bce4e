/*
 * rpt_junit.c - JUnit XML: one <testsuite>, one <testcase> per scenario.
 *
 * CI tools (Jenkins, GitLab, GitHub annotations) read this; the failure
 * message is the assertion text with its scenario file:line so a red test
 * in a CI page says where to look.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpt.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid.
 * Overlong forms and surrogates are refused: an XML parser would. */
size_t rpt_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || c == 0xFFFE || c == 0xFFFF)
        return 0;
    return n;
}

void rpt_xml_escape(FILE *f, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        switch (*p) {
        case '&': fputs("&amp;", f); p++; continue;
        case '<': fputs("&lt;", f); p++; continue;
        case '>': fputs("&gt;", f); p++; continue;
        case '"': fputs("&quot;", f); p++; continue;
        case '\'': fputs("&apos;", f); p++; continue;
        /* As references so attribute values keep their line breaks. */
        case '\n': fputs("&#10;", f); p++; continue;
        case '\r': fputs("&#13;", f); p++; continue;
        case '\t': fputs("&#9;", f); p++; continue;
        default: break;
        }
        if (*p < 0x20) {             /* forbidden in XML 1.0 */
            fputc('?', f);
            p++;
            continue;
        }
        size_t n = rpt_utf8_len(p);
        if (n == 0) {
            fputc('?', f);
            p++;
            continue;
        }
        fwrite(p, 1, n, f);
        p += n;
    }
}

void rpt_junit_classname(const char *id, char *buf, size_t len)
{
    if (len == 0)
        return;
    const char *slash = id ? strrchr(id, '/') : NULL;
    if (!slash || slash == id) {
        snprintf(buf, len, "scenarios");
        return;
    }
    size_t n = (size_t)(slash - id);
    if (n >= len)
        n = len - 1;
    memcpy(buf, id, n);
    buf[n] = '\0';
}

/* "file:line: text", the failure as one string for message= and the body. */
static void write_failure_text(FILE *f, const scn_result *r)
{
    if (r->failure_loc && *r->failure_loc) {
        rpt_xml_escape(f, r->failure_loc);
        fputs(": ", f);
    }
    rpt_xml_escape(f, r->failure ? r->failure : "failed (no detail given)");
}

/* The rule table as properties ("rule.WS-4" = "passed=3 failed=0
 * unobservable=1 not_run=0 required=yes"). */
static void write_rule_props(FILE *f, json_t *rules)
{
    for (const char *const *r = rpt_rule_ids; *r; r++) {
        json_t *row = json_object_get(rules, *r);
        fprintf(f, "    <property name=\"rule.%s\" value=\"passed=%lld failed=%lld "
                   "unobservable=%lld not_run=%lld required=%s\"/>\n", *r,
                (long long)json_integer_value(json_object_get(row, "passed")),
                (long long)json_integer_value(json_object_get(row, "failed")),
                (long long)json_integer_value(json_object_get(row, "unobservable")),
                (long long)json_integer_value(json_object_get(row, "not_run")),
                json_is_true(json_object_get(row, "required")) ? "yes" : "no");
    }
}

int rpt_junit_write(FILE *f, const rpt_run *run)
{
    size_t failures = 0, errors = 0, skipped = 0;
    double total = 0;
    for (size_t i = 0; i < run->n; i++) {
        int err = run->errors && run->errors[i];
        if (err)
            errors++;
        else if (run->results[i].skipped && !run->results[i].passed)
            skipped++;
        else if (!run->results[i].passed)
            failures++;
        total += run->results[i].wall_ms;
    }
    json_t *unchecked = run->rules ? rpt_rules_unchecked(run->rules) : json_array();
    size_t ntests = run->n + (run->rules ? 1 : 0);
    if (json_array_size(unchecked))
        failures++;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f, "<testsuite name=\"hp-harness\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
               "skipped=\"%zu\" time=\"%.3f\">\n", ntests, failures, errors, skipped,
            total / 1000.0);
    fprintf(f, "  <properties>\n"
               "    <property name=\"seed\" value=\"%llu\"/>\n"
               "    <property name=\"mode\" value=\"",
            (unsigned long long)run->meta.seed);
    rpt_xml_escape(f, run->meta.mode ? run->meta.mode : "sim");
    fputs("\"/>\n    <property name=\"version\" value=\"", f);
    rpt_xml_escape(f, run->meta.version ? run->meta.version : HX_VERSION);
    fputs("\"/>\n", f);
    if (run->rules)
        write_rule_props(f, run->rules);
    fputs("  </properties>\n", f);
    /* One summary test case for rule coverage: it fails when a required
     * rule has no passing observable check (--require-rules, SPEC §7). */
    if (run->rules) {
        size_t total, checked = rpt_rules_checked(run->rules, &total);
        fprintf(f, "  <testcase classname=\"coverage\" name=\"rules: %zu of %zu checked\" "
                   "time=\"0.000\"", checked, total);
        if (json_array_size(unchecked)) {
            fputs(">\n    <failure message=\"required rules without a passing observable check:",
                  f);
            size_t i;
            json_t *r;
            json_array_foreach(unchecked, i, r) fprintf(f, " %s", json_string_value(r));
            fputs("\" type=\"coverage\"/>\n  </testcase>\n", f);
        } else {
            fputs("/>\n", f);
        }
    }
    json_decref(unchecked);

    for (size_t i = 0; i < run->n; i++) {
        const scn_result *r = &run->results[i];
        int err = run->errors && run->errors[i];
        char cls[256];
        rpt_junit_classname(r->id, cls, sizeof cls);
        fputs("  <testcase classname=\"", f);
        rpt_xml_escape(f, cls);
        fputs("\" name=\"", f);
        rpt_xml_escape(f, r->id ? r->id : "?");
        fputs("\" file=\"", f);
        rpt_xml_escape(f, r->file ? r->file : "");
        fprintf(f, "\" time=\"%.3f\"", r->wall_ms / 1000.0);
        if (r->passed && !err) {
            fputs("/>\n", f);
            continue;
        }
        if (r->skipped && !err) {
            fputs(">\n    <skipped message=\"", f);
            rpt_xml_escape(f, r->failure ? r->failure : "skipped");
            fputs("\"/>\n  </testcase>\n", f);
            continue;
        }
        const char *tag = err ? "error" : "failure";
        fprintf(f, ">\n    <%s message=\"", tag);
        write_failure_text(f, r);
        fprintf(f, "\" type=\"%s\">", err ? "runtime" : "assertion");
        write_failure_text(f, r);
        if (r->name && *r->name) {
            fputs("&#10;scenario: ", f);
            rpt_xml_escape(f, r->name);
        }
        /* What the terminal explains (every failed assertion, the
         * timeline before the first), for CI pages that show the body. */
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (m) {
            rpt_term_opts plain = {0, 0, 0};
            rpt_term_explain(m, r, err, &plain);
            fclose(m);
            if (buf && *buf) {
                fputs("&#10;", f);
                rpt_xml_escape(f, buf);
            }
            free(buf);
        }
        fprintf(f, "</%s>\n  </testcase>\n", tag);
    }
    fputs("</testsuite>\n", f);
    return ferror(f) ? -1 : 0;
}
