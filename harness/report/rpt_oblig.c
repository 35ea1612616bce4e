/*
 * rpt_oblig.c - the obligations table: every rule of the policy broken into
 * numbered obligations (docs/SYNC_POLICY.md, section "Obligations"), each
 * traced to the checks that would fail if it were broken.
 *
 * Inputs: the policy doc and the sources under a root (a checkout):
 *   - the doc's rows "| Q-5.1 | sentence | checked by |" between the
 *     markers <!-- obligations:begin --> and <!-- obligations:end -->;
 *   - "checks: Q-5.2" markers in comments: in scenario files
 *     (scenarios/ recursively, *.yaml / *.yml) on or inside an assertion
 *     step (expect, expect_log, wait_until), cited as "file:line"; in test
 *     sources (tests/ recursively, *.c and *.py) inside a function, cited
 *     as "file:function".
 * Outputs: a JSON description of the table (rpt.h), the list of problems
 * (an obligation with no check, a marker naming an unknown obligation or
 * standing outside an assertion, a "checked by" cell that no longer says
 * what the markers say), and, on request, the doc rewritten with fresh
 * cells.  The markers are the truth and the cells are generated from them,
 * so a moved line never leaves a stale citation behind: the check fails
 * until `hp-harness trace --update` is run.
 *
 * Pure text: no YAML parser and no engine, so the front-end tests can link
 * it against the fake engine.  Scenario steps are found the way a reader
 * sees them: the items of the top-level `steps:` sequence, by indentation.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpt.h"

#define OB_DOC "docs/SYNC_POLICY.md"
#define OB_BEGIN "<!-- obligations:begin -->"
#define OB_END "<!-- obligations:end -->"
#define OB_MAX_DEPTH 16

static const char *const ob_rules[] = {
    "WS-1", "WS-2", "WS-3", "WS-4", "WS-5", "WS-6", "Q-1",  "Q-2",  "Q-3",  "Q-4",
    "Q-5",  "Q-6",  "Q-7",  "C-1",  "C-2",  "C-3",  "C-4",  "CF-1", "CF-2", "CF-3",
    "CF-4", "N-1",  "R-1",  "A-1",  "A-2",  "A-3",  "A-4",  NULL};

/* ---- small helpers -------------------------------------------------------- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Splits text into lines in place: returns an array of line starts (NUL
 * terminated, without the '\n'), count in *n.  The caller frees the array. */
static char **split_lines(char *text, size_t *n)
{
    size_t cap = 256, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *p = text;
    while (v && *p) {
        if (k == cap) {
            char **nv = realloc(v, cap * 2 * sizeof *v);
            if (!nv) {
                free(v);
                return NULL;
            }
            v = nv;
            cap *= 2;
        }
        v[k++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    *n = k;
    return v;
}

static int known_rule(const char *r)
{
    for (const char *const *p = ob_rules; *p; p++)
        if (!strcmp(*p, r))
            return 1;
    return 0;
}

/* "Q-5.1" -> rule "Q-5" in buf; 0 when id has the form RULE.N of a known
 * rule, -1 otherwise. */
static int id_rule(const char *id, char *buf, size_t len)
{
    const char *dot = strrchr(id, '.');
    if (!dot || dot == id || !dot[1] || (size_t)(dot - id) >= len)
        return -1;
    for (const char *q = dot + 1; *q; q++)
        if (!isdigit((unsigned char)*q))
            return -1;
    memcpy(buf, id, (size_t)(dot - id));
    buf[dot - id] = '\0';
    return known_rule(buf) ? 0 : -1;
}

static void problem(json_t *scan, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(json_t *scan, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(json_object_get(scan, "problems"), json_string(buf));
}

/* The obligation ids of a "checks:" marker on this line (new array), or
 * NULL when the line has no marker in a comment. */
static json_t *marker_ids(const char *line, int c_style)
{
    const char *m = strstr(line, "checks:");
    if (!m)
        return NULL;
    /* Only inside a comment: '#' (YAML, Python) or a C comment before it. */
    const char *hash = c_style ? NULL : memchr(line, '#', (size_t)(m - line));
    const char *cc = NULL;
    if (c_style) {
        cc = strstr(line, "/*");
        if (!cc || cc > m)
            cc = strstr(line, "//");
        if (cc && cc > m)
            cc = NULL;
    }
    if (!hash && !cc)
        return NULL;
    json_t *ids = json_array();
    const char *p = m + strlen("checks:");
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *s = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
            p++;
        if (p == s)
            break;
        char id[32];
        size_t l = (size_t)(p - s);
        if (l >= sizeof id)
            break;
        memcpy(id, s, l);
        id[l] = '\0';
        while (l > 0 && id[l - 1] == '.') /* a sentence's full stop */
            id[--l] = '\0';
        if (!strchr(id, '.'))
            break;
        json_array_append_new(ids, json_string(id));
    }
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        return NULL;
    }
    return ids;
}

/* ---- the doc -------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t l = strlen(s);
    while (l > 0 && isspace((unsigned char)s[l - 1]))
        s[--l] = '\0';
    return s;
}

/* Reads the rows of the obligations section into scan["obligations"]. */
static int read_doc(json_t *scan, const char *path)
{
    size_t len;
    char *text = read_all(path, &len);
    if (!text)
        return -1;
    size_t n;
    char **lines = split_lines(text, &n);
    json_t *obs = json_object_get(scan, "obligations");
    int in = 0, seen_end = 0;
    for (size_t i = 0; lines && i < n; i++) {
        char *l = lines[i];
        if (strstr(l, OB_BEGIN)) {
            in = 1;
            continue;
        }
        if (strstr(l, OB_END)) {
            seen_end = in;
            in = 0;
            continue;
        }
        if (!in || l[0] != '|')
            continue;
        /* | id | text | cell |  (the text may not contain " | ") */
        char *row = strdup(l);
        char *cells[3] = {0};
        char *p = row + 1;
        char *first = strchr(p, '|');
        char *last = strrchr(p, '|');
        if (first && last && last > first) {
            *first = '\0';
            char *mid = first + 1;
            char *end = last;
            *end = '\0';
            char *cell_start = strrchr(mid, '|');
            if (cell_start) {
                *cell_start = '\0';
                cells[0] = trim(p);
                cells[1] = trim(mid);
                cells[2] = trim(cell_start + 1);
            }
        }
        char rule[16];
        if (cells[0] && id_rule(cells[0], rule, sizeof rule) == 0) {
            size_t k;
            json_t *o;
            int dup = 0;
            json_array_foreach(obs, k, o) dup |= !strcmp(json_string_value(json_object_get(o, "id")),
                                                         cells[0]);
            if (dup)
                problem(scan, "%s:%zu: obligation %s is listed twice", path, i + 1, cells[0]);
            else
                json_array_append_new(obs, json_pack("{s:s,s:s,s:s,s:s,s:i,s:[]}", "id", cells[0],
                                                     "rule", rule, "text", cells[1], "cell",
                                                     cells[2], "doc_line", (int)(i + 1),
                                                     "checks"));
        } else if (cells[0] && strcmp(cells[0], "id") && strncmp(cells[0], "---", 3)) {
            problem(scan, "%s:%zu: '%s' is not an obligation id (RULE.N, e.g. Q-5.1)", path,
                    i + 1, cells[0]);
        }
        free(row);
    }
    free(lines);
    free(text);
    if (!seen_end)
        problem(scan, "%s: no obligations section (%s ... %s)", path, OB_BEGIN, OB_END);
    return 0;
}

static json_t *find_ob(json_t *scan, const char *id)
{
    size_t k;
    json_t *o;
    json_array_foreach(json_object_get(scan, "obligations"), k, o)
        if (!strcmp(json_string_value(json_object_get(o, "id")), id))
            return o;
    return NULL;
}

/* ---- markers in scenarios -------------------------------------------------- */

static int indent_of(const char *l)
{
    int i = 0;
    while (l[i] == ' ')
        i++;
    return i;
}

static int blank_or_comment(const char *l)
{
    const char *p = l + indent_of(l);
    return *p == '\0' || *p == '#' || *p == '\r';
}

/* The first key of a step item "- key: ..." or "- {key: ...}". */
static void step_key(const char *l, char *buf, size_t len)
{
    const char *p = l + indent_of(l) + 1;
    while (*p == ' ' || *p == '{')
        p++;
    size_t k = 0;
    while (*p && *p != ':' && *p != ' ' && *p != '}' && k + 1 < len)
        buf[k++] = *p++;
    buf[k] = '\0';
}

int rpt_oblig_step_starts(const char *text, int *starts, char (*keys)[32], int max)
{
    char *copy = strdup(text ? text : "");
    size_t n;
    char **lines = split_lines(copy, &n);
    int count = 0, in = 0, ind = -1;
    for (size_t i = 0; lines && i < n; i++) {
        const char *l = lines[i];
        if (!in) {
            if (!strncmp(l, "steps:", 6))
                in = 1;
            continue;
        }
        if (blank_or_comment(l))
            continue;
        int d = indent_of(l);
        if (d == 0 && l[0] != '-') /* the next top-level key */
            break;
        if (l[d] == '-' && (l[d + 1] == ' ' || l[d + 1] == '\0') && (ind < 0 || d == ind)) {
            ind = d;
            if (count < max) {
                starts[count] = (int)(i + 1);
                step_key(l, keys[count], sizeof keys[count]);
            }
            count++;
        }
    }
    free(lines);
    free(copy);
    return count < max ? count : max;
}

static int is_assert_key(const char *k)
{
    return !strcmp(k, "expect") || !strcmp(k, "expect_log") || !strcmp(k, "wait_until");
}

#define OB_MAX_STEPS 4096

static void scan_scenario(json_t *scan, const char *root, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *text = read_all(path, NULL);
    if (!text)
        return;
    static __thread int starts[OB_MAX_STEPS];
    static __thread char keys[OB_MAX_STEPS][32];
    int ns = rpt_oblig_step_starts(text, starts, keys, OB_MAX_STEPS);
    size_t n;
    char **lines = split_lines(text, &n);
    for (size_t i = 0; lines && i < n; i++) {
        json_t *ids = marker_ids(lines[i], 0);
        if (!ids)
            continue;
        int line = (int)(i + 1), s = -1;
        for (int k = 0; k < ns && starts[k] <= line; k++)
            s = k;
        if (s < 0 || !is_assert_key(keys[s])) {
            problem(scan, "%s:%d: a checks: marker must stand on or inside an expect, "
                          "expect_log or wait_until step", rel, line);
            json_decref(ids);
            continue;
        }
        size_t k;
        json_t *id;
        json_array_foreach(ids, k, id) {
            json_t *o = find_ob(scan, json_string_value(id));
            if (!o) {
                problem(scan, "%s:%d: checks: names unknown obligation %s", rel, line,
                        json_string_value(id));
                continue;
            }
            json_array_append_new(json_object_get(o, "checks"),
                                  json_pack("{s:s,s:s,s:i,s:i}", "kind", "scenario", "file", rel,
                                            "line", line, "step_line", starts[s]));
        }
        json_object_set_new(scan, "markers",
                            json_integer(json_integer_value(json_object_get(scan, "markers")) +
                                         (json_int_t)json_array_size(ids)));
        json_decref(ids);
    }
    free(lines);
    free(text);
}

/* ---- markers in tests ------------------------------------------------------ */

/* The C function a line belongs to: the last "name(" at column 0 of a line
 * starting with a type before it ("static void test_x(void **state)"). */
static int c_function(char **lines, size_t i, char *buf, size_t len)
{
    for (size_t j = i + 1; j-- > 0;) {
        const char *l = lines[j];
        if (l[0] == '}' && j != i)
            return -1; /* the marker is between functions */
        if (!isalpha((unsigned char)l[0]) || strchr(l, ';'))
            continue;
        const char *par = strchr(l, '(');
        if (!par)
            continue;
        const char *e = par;
        while (e > l && (isalnum((unsigned char)e[-1]) || e[-1] == '_'))
            e--;
        size_t k = (size_t)(par - e);
        if (k == 0 || k >= len)
            continue;
        memcpy(buf, e, k);
        buf[k] = '\0';
        return 0;
    }
    return -1;
}

static int py_function(char **lines, size_t i, char *buf, size_t len)
{
    for (size_t j = i + 1; j-- > 0;) {
        const char *p = lines[j] + indent_of(lines[j]);
        if (strncmp(p, "def ", 4))
            continue;
        p += 4;
        size_t k = 0;
        while ((isalnum((unsigned char)p[k]) || p[k] == '_') && k + 1 < len) {
            buf[k] = p[k];
            k++;
        }
        buf[k] = '\0';
        return k ? 0 : -1;
    }
    return -1;
}

static void scan_test(json_t *scan, const char *root, const char *rel, int is_c)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *text = read_all(path, NULL);
    if (!text || !strstr(text, "checks:")) {
        free(text);
        return;
    }
    size_t n;
    char **lines = split_lines(text, &n);
    for (size_t i = 0; lines && i < n; i++) {
        json_t *ids = marker_ids(lines[i], is_c);
        if (!ids)
            continue;
        char fn[128];
        if ((is_c ? c_function(lines, i, fn, sizeof fn) : py_function(lines, i, fn, sizeof fn))) {
            problem(scan, "%s:%zu: a checks: marker must stand inside a test function", rel,
                    i + 1);
            json_decref(ids);
            continue;
        }
        size_t k;
        json_t *id;
        json_array_foreach(ids, k, id) {
            json_t *o = find_ob(scan, json_string_value(id));
            if (!o) {
                problem(scan, "%s:%zu: checks: names unknown obligation %s", rel, i + 1,
                        json_string_value(id));
                continue;
            }
            json_t *checks = json_object_get(o, "checks");
            size_t q;
            json_t *c;
            int dup = 0;
            json_array_foreach(checks, q, c) dup |= json_is_string(json_object_get(c, "function")) &&
                                                   !strcmp(json_string_value(json_object_get(c, "file")), rel) &&
                                                   !strcmp(json_string_value(json_object_get(c, "function")), fn);
            if (!dup)
                json_array_append_new(checks, json_pack("{s:s,s:s,s:s,s:i}", "kind", "test", "file",
                                                        rel, "function", fn, "line", (int)(i + 1)));
        }
        json_object_set_new(scan, "markers",
                            json_integer(json_integer_value(json_object_get(scan, "markers")) +
                                         (json_int_t)json_array_size(ids)));
        json_decref(ids);
    }
    free(lines);
    free(text);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files under root/rel (recursively, sorted), each passed to fn. */
static void walk(json_t *scan, const char *root, const char *rel, int depth,
                 void (*fn)(json_t *, const char *, const char *))
{
    if (depth > OB_MAX_DEPTH)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "node_modules") ||
            !strcmp(e->d_name, "__pycache__"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv)
                break;
            names = nv;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", rel, names[i]);
        char full[PATH_MAX + 2];
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
            walk(scan, root, sub, depth + 1, fn);
        else if (S_ISREG(st.st_mode))
            fn(scan, root, sub);
        free(names[i]);
    }
    free(names);
}

static void on_scenario_file(json_t *scan, const char *root, const char *rel)
{
    if (ends_with(rel, ".yaml") || ends_with(rel, ".yml"))
        scan_scenario(scan, root, rel);
}

static void on_test_file(json_t *scan, const char *root, const char *rel)
{
    if (ends_with(rel, ".c"))
        scan_test(scan, root, rel, 1);
    else if (ends_with(rel, ".py"))
        scan_test(scan, root, rel, 0);
}

/* ---- the table ------------------------------------------------------------- */

static char *cell_of(json_t *o)
{
    size_t cap = 256, len = 0;
    char *s = calloc(1, cap);
    size_t k;
    json_t *c;
    json_array_foreach(json_object_get(o, "checks"), k, c) {
        char one[PATH_MAX + 160];
        if (json_object_get(c, "function"))
            snprintf(one, sizeof one, "`%s:%s`", json_string_value(json_object_get(c, "file")),
                     json_string_value(json_object_get(c, "function")));
        else
            snprintf(one, sizeof one, "`%s:%d`", json_string_value(json_object_get(c, "file")),
                     (int)json_integer_value(json_object_get(c, "line")));
        size_t l = strlen(one) + 2;
        if (len + l + 1 > cap) {
            cap = (len + l + 1) * 2;
            s = realloc(s, cap);
        }
        len += (size_t)sprintf(s + len, "%s%s", k ? ", " : "", one);
    }
    return s;
}

json_t *rpt_oblig_scan(const char *root, char *err, size_t errlen)
{
    char doc[PATH_MAX];
    snprintf(doc, sizeof doc, "%s/%s", root, OB_DOC);
    json_t *scan = json_pack("{s:s,s:[],s:[],s:i}", "doc", OB_DOC, "obligations", "problems",
                             "markers", 0);
    if (read_doc(scan, doc) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", doc, strerror(errno));
        json_decref(scan);
        return NULL;
    }
    walk(scan, root, "scenarios", 0, on_scenario_file);
    walk(scan, root, "tests", 0, on_test_file);
    /* Every rule has obligations; every obligation a check; every cell
     * says what the markers say. */
    for (const char *const *r = ob_rules; *r; r++) {
        int any = 0;
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(scan, "obligations"), k, o)
            any |= !strcmp(json_string_value(json_object_get(o, "rule")), *r);
        if (!any)
            problem(scan, "%s: rule %s has no obligation", OB_DOC, *r);
    }
    size_t k;
    json_t *o;
    json_array_foreach(json_object_get(scan, "obligations"), k, o) {
        char *cell = cell_of(o);
        json_object_set_new(o, "want_cell", json_string(cell));
        if (json_array_size(json_object_get(o, "checks")) == 0)
            problem(scan, "%s:%d: %s has no check (no checks: marker names it)", OB_DOC,
                    (int)json_integer_value(json_object_get(o, "doc_line")),
                    json_string_value(json_object_get(o, "id")));
        else if (strcmp(cell, json_string_value(json_object_get(o, "cell"))))
            problem(scan, "%s:%d: the 'checked by' cell of %s is out of date (run "
                          "hp-harness trace --update)", OB_DOC,
                    (int)json_integer_value(json_object_get(o, "doc_line")),
                    json_string_value(json_object_get(o, "id")));
        free(cell);
    }
    return scan;
}

int rpt_oblig_update(const char *root, json_t *scan, char *err, size_t errlen)
{
    char doc[PATH_MAX];
    snprintf(doc, sizeof doc, "%s/%s", root, OB_DOC);
    size_t len;
    char *text = read_all(doc, &len);
    if (!text) {
        snprintf(err, errlen, "cannot read %s: %s", doc, strerror(errno));
        return -1;
    }
    size_t n;
    char **lines = split_lines(text, &n);
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", doc);
    FILE *f = fopen(tmp, "wb");
    if (!f || !lines) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        free(lines);
        free(text);
        if (f)
            fclose(f);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *hit = NULL;
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(scan, "obligations"), k, o)
            if (json_integer_value(json_object_get(o, "doc_line")) == (json_int_t)(i + 1))
                hit = o;
        if (hit)
            fprintf(f, "| %s | %s | %s |", json_string_value(json_object_get(hit, "id")),
                    json_string_value(json_object_get(hit, "text")),
                    json_string_value(json_object_get(hit, "want_cell")));
        else
            fputs(lines[i], f);
        fputc('\n', f);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    free(lines);
    free(text);
    if (bad || rename(tmp, doc) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", doc, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- verdicts of one run --------------------------------------------------- */

/* The verdict of the assertions of one step (by its first line) in one
 * result's trace: "failed" beats "unobservable" beats "passed"; "not run"
 * when the step never ran. */
static const char *step_verdict(const scn_result *r, int step_line)
{
    size_t i;
    json_t *e;
    int in = 0, ran = 0, failed = 0, unobs = 0, passed = 0;
    json_array_foreach(r->trace, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!type)
            continue;
        if (!strcmp(type, "step")) {
            in = json_integer_value(json_object_get(e, "line")) == step_line;
            ran |= in;
        } else if (in && !strcmp(type, "assert")) {
            const char *v = json_string_value(json_object_get(e, "verdict"));
            if (v && !strcmp(v, "unobservable"))
                unobs = 1;
            else if (json_is_true(json_object_get(e, "passed")))
                passed = 1;
            else
                failed = 1;
        }
    }
    if (failed)
        return "failed";
    if (unobs && !passed)
        return "unobservable";
    if (passed)
        return unobs ? "partial" : "passed";
    (void)ran; /* a step that ran without assertions checked nothing */
    return "not run";
}

static int same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (realpath(a, ra) && realpath(b, rb))
        return !strcmp(ra, rb);
    return 0;
}

void rpt_oblig_verdicts(json_t *scan, const char *root, const rpt_run *run)
{
    size_t k;
    json_t *o;
    json_array_foreach(json_object_get(scan, "obligations"), k, o) {
        size_t q;
        json_t *c;
        json_array_foreach(json_object_get(o, "checks"), q, c) {
            if (strcmp(json_string_value(json_object_get(c, "kind")), "scenario")) {
                json_object_set_new(c, "verdict", json_string("test"));
                continue;
            }
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", root,
                     json_string_value(json_object_get(c, "file")));
            const char *v = "not run";
            for (size_t i = 0; i < run->n; i++) {
                const scn_result *r = &run->results[i];
                if (!r->file || !same_file(r->file, path))
                    continue;
                v = r->skipped && !r->passed
                        ? "not run"
                        : step_verdict(r, (int)json_integer_value(json_object_get(c, "step_line")));
                break;
            }
            json_object_set_new(c, "verdict", json_string(v));
        }
    }
}

int rpt_oblig_find_root(const char *from, char *out, size_t len)
{
    char cur[PATH_MAX];
    if (!realpath(from && *from ? from : ".", cur))
        return -1;
    struct stat st;
    if (stat(cur, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(cur, '/');
        if (slash && slash != cur)
            *slash = '\0';
    }
    for (int depth = 0; depth < 64; depth++) {
        char doc[PATH_MAX + 32];
        snprintf(doc, sizeof doc, "%s/%s", cur, OB_DOC);
        if (access(doc, R_OK) == 0) {
            snprintf(out, len, "%s", cur);
            return 0;
        }
        char *slash = strrchr(cur, '/');
        if (!slash || slash == cur)
            return -1;
        *slash = '\0';
    }
    return -1;
}

void rpt_oblig_print(FILE *f, json_t *scan, int verbose)
{
    size_t k, total = 0, checked = 0;
    json_t *o;
    json_array_foreach(json_object_get(scan, "obligations"), k, o) {
        total++;
        size_t nc = json_array_size(json_object_get(o, "checks"));
        checked += nc > 0;
        if (verbose)
            fprintf(f, "%-8s %zu check%s  %s\n", json_string_value(json_object_get(o, "id")), nc,
                    nc == 1 ? " " : "s", json_string_value(json_object_get(o, "want_cell")));
    }
    json_t *pr;
    json_array_foreach(json_object_get(scan, "problems"), k, pr)
        fprintf(f, "%s\n", json_string_value(pr));
    fprintf(f, "%zu obligations, %zu with a check, %zu without; %lld markers; %zu problem%s\n",
            total, checked, total - checked,
            (long long)json_integer_value(json_object_get(scan, "markers")),
            json_array_size(json_object_get(scan, "problems")),
            json_array_size(json_object_get(scan, "problems")) == 1 ? "" : "s");
}

json_t *rpt_oblig_markers(const char *path)
{
    char *text = read_all(path, NULL);
    if (!text)
        return NULL;
    static __thread int starts[OB_MAX_STEPS];
    static __thread char keys[OB_MAX_STEPS][32];
    int ns = rpt_oblig_step_starts(text, starts, keys, OB_MAX_STEPS);
    size_t n;
    char **lines = split_lines(text, &n);
    json_t *out = json_object();
    for (size_t i = 0; lines && i < n; i++) {
        json_t *ids = marker_ids(lines[i], 0);
        if (!ids)
            continue;
        int s = -1;
        for (int k = 0; k < ns && starts[k] <= (int)(i + 1); k++)
            s = k;
        if (s >= 0) {
            char key[24], rule[16];
            snprintf(key, sizeof key, "%d", starts[s]);
            json_t *rules = json_object_get(out, key);
            if (!rules) {
                rules = json_array();
                json_object_set_new(out, key, rules);
            }
            size_t k;
            json_t *id;
            json_array_foreach(ids, k, id) {
                if (id_rule(json_string_value(id), rule, sizeof rule) != 0)
                    continue;
                int dup = 0;
                size_t q;
                json_t *x;
                json_array_foreach(rules, q, x) dup |= !strcmp(json_string_value(x), rule);
                if (!dup)
                    json_array_append_new(rules, json_string(rule));
            }
        }
        json_decref(ids);
    }
    free(lines);
    free(text);
    return out;
}
