/*
 * scn_yaml.c - YAML (libyaml) into a small node tree that keeps positions.
 *
 * libyaml's document loader gives nodes with start marks; we copy them into
 * our own tree (scn_node) so that validation and the run can point at
 * file:line:col long after the libyaml document is gone.  Aliases are
 * expanded by copying; a depth and a node budget stop alias bombs.
 */
#define _GNU_SOURCE
#include "scn_internal.h"
#include "hp_jdump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_NODES 200000
#define MAX_FILE_BYTES (4u << 20)

typedef struct build_ctx {
    const char *file;
    yaml_document_t *doc;
    scn_diags *d;
    size_t budget;
    int failed;
} build_ctx;

static scn_node *node_new(scn_node_kind kind, const yaml_node_t *yn)
{
    scn_node *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->kind = kind;
    n->line = (int)yn->start_mark.line + 1;
    n->col = (int)yn->start_mark.column + 1;
    return n;
}

/* Appends a child.  The arrays grow by doubling (at n = 0, 1, 2, 4, ...):
 * one realloc per item made a mapping of n keys cost O(n^2) bytes copied
 * where realloc moves the block (always under ASan: issue 11's 84 s). */
void scn_node_push(scn_node *p, scn_node *key, scn_node *val)
{
    if ((p->n & (p->n - 1)) == 0) {
        size_t cap = p->n ? 2 * p->n : 1;
        scn_node **items = realloc(p->items, cap * sizeof *items);
        if (!items)
            abort();
        p->items = items;
        if (p->kind == SCN_MAP) {
            scn_node **keys = realloc(p->keys, cap * sizeof *keys);
            if (!keys)
                abort();
            p->keys = keys;
        }
    }
    if (p->kind == SCN_MAP)
        p->keys[p->n] = key;
    p->items[p->n++] = val;
}

/* Duplicate keys are found with a hash set per mapping, so one mapping of
 * n keys costs O(n), not O(n^2) string comparisons (issue 11: 40,000 keys
 * took 3.8 s, 84 s under ASan).  The comparisons are counted for the test
 * that keeps it linear (scn_yaml_key_compares). */
static _Thread_local size_t key_compares;

size_t scn_yaml_key_compares(void) { return key_compares; }

typedef struct keyset {
    const scn_node **slot; /* open addressing, NULL = empty */
    size_t mask;
} keyset;

static void keyset_init(keyset *ks, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    ks->slot = calloc(cap, sizeof *ks->slot);
    if (!ks->slot)
        abort();
    ks->mask = cap - 1;
}

static void keyset_free(keyset *ks) { free(ks->slot); }

static size_t key_hash(const char *s)
{
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Adds k; returns the earlier key with the same text, or NULL. */
static const scn_node *keyset_add(keyset *ks, const scn_node *k)
{
    for (size_t i = key_hash(k->str) & ks->mask;; i = (i + 1) & ks->mask) {
        if (!ks->slot[i]) {
            ks->slot[i] = k;
            return NULL;
        }
        key_compares++;
        if (!strcmp(ks->slot[i]->str, k->str))
            return ks->slot[i];
    }
}

/* Recursively copy libyaml node `yn`.  Returns NULL on a budget/depth
 * failure (diagnostic added). */
static scn_node *build(build_ctx *b, yaml_node_t *yn, int depth)
{
    if (!yn)
        return NULL;
    if (depth > MAX_DEPTH || b->budget == 0) {
        if (!b->failed)
            scn_diags_add(b->d, b->file, (int)yn->start_mark.line + 1,
                          (int)yn->start_mark.column + 1,
                          "document too deep or too large (alias expansion?)");
        b->failed = 1;
        return NULL;
    }
    b->budget--;
    if (yn->type == YAML_SCALAR_NODE) {
        scn_node *n = node_new(SCN_SCALAR, yn);
        n->str = strndup((const char *)yn->data.scalar.value, yn->data.scalar.length);
        if (!n->str)
            abort();
        n->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
                   yn->data.scalar.style == YAML_ANY_SCALAR_STYLE;
        return n;
    }
    if (yn->type == YAML_SEQUENCE_NODE) {
        scn_node *n = node_new(SCN_SEQ, yn);
        for (yaml_node_item_t *it = yn->data.sequence.items.start;
             it < yn->data.sequence.items.top; it++) {
            scn_node *c = build(b, yaml_document_get_node(b->doc, *it), depth + 1);
            if (!c) {
                scn_node_free(n);
                return NULL;
            }
            scn_node_push(n, NULL, c);
        }
        return n;
    }
    if (yn->type == YAML_MAPPING_NODE) {
        scn_node *n = node_new(SCN_MAP, yn);
        keyset ks;
        keyset_init(&ks, (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start));
        for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(b->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(b->doc, p->value);
            if (!kn || kn->type != YAML_SCALAR_NODE) {
                if (kn)
                    scn_diags_add(b->d, b->file, (int)kn->start_mark.line + 1,
                                  (int)kn->start_mark.column + 1,
                                  "a key must be a plain word, not a list or mapping");
                b->failed = 1;
                keyset_free(&ks);
                scn_node_free(n);
                return NULL;
            }
            scn_node *k = build(b, kn, depth + 1);
            if (!k) {
                keyset_free(&ks);
                scn_node_free(n);
                return NULL;
            }
            const scn_node *first = keyset_add(&ks, k);
            if (first) {
                scn_diags_add(b->d, b->file, k->line, k->col,
                              "duplicate key '%s' (first at line %d)", k->str, first->line);
                b->failed = 1;
            }
            scn_node *v = build(b, vn, depth + 1);
            if (!v) {
                keyset_free(&ks);
                scn_node_free(k);
                scn_node_free(n);
                return NULL;
            }
            scn_node_push(n, k, v);
        }
        keyset_free(&ks);
        return n;
    }
    return NULL;
}

int scn_yaml_parse(const char *file, const char *text, size_t len, scn_node **out, scn_diags *d)
{
    *out = NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        scn_diags_add(d, file, 0, 0, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* libyaml marks are 0-based; problem_mark is where it gave up. */
        int line = (int)parser.problem_mark.line + 1;
        int col = (int)parser.problem_mark.column + 1;
        const char *problem = parser.problem ? parser.problem : "error";
        if (parser.context && (strstr(problem, "expected key") ||
                               strstr(problem, "expected '-' indicator")))
            /* libyaml's words for a line indented unlike its siblings:
             * say so, and where the enclosing mapping or list starts. */
            scn_diags_add(d, file, line, col,
                          "YAML syntax error: %s %s (check the indentation: the %s starting at "
                          "line %d has its items at column %d; this line is indented to "
                          "column %d - line it up with its siblings, or indent it under a key "
                          "that ends with ':'; spaces only, no tabs)",
                          problem, parser.context,
                          strstr(parser.context, "mapping") ? "mapping" : "list",
                          (int)parser.context_mark.line + 1, (int)parser.context_mark.column + 1,
                          col);
        else if (parser.context)
            scn_diags_add(d, file, line, col, "YAML syntax error: %s %s", problem,
                          parser.context);
        else
            scn_diags_add(d, file, line, col, "YAML syntax error: %s",
                          parser.problem ? parser.problem : "error");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        scn_diags_add(d, file, 1, 1, "empty file: a scenario needs id, name, rules, clients, steps");
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return -1;
    }
    build_ctx b = {file, &doc, d, MAX_NODES, 0};
    scn_node *n = build(&b, root, 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!n || b.failed) {
        scn_node_free(n);
        return -1;
    }
    *out = n;
    return 0;
}

int scn_yaml_load_file(const char *path, scn_node **out, scn_diags *d)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        scn_diags_add(d, path, 0, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len > MAX_FILE_BYTES) {
            fclose(f);
            free(buf);
            scn_diags_add(d, path, 0, 0, "file too large (over 4 MiB)");
            return -1;
        }
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        scn_diags_add(d, path, 0, 0, "read error");
        return -1;
    }
    int rc = scn_yaml_parse(path, buf, len, out, d);
    free(buf);
    return rc;
}

void scn_node_free(scn_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        scn_node_free(n->items[i]);
        if (n->keys)
            scn_node_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->str);
    free(n->src);
    free(n);
}

const char *scn_node_where(const scn_node *n, const char *main_file, int *line, int *col)
{
    if (!n) {
        *line = *col = 0;
        return main_file;
    }
    if (n->src) {
        *line = n->src_line;
        *col = n->src_col;
        return n->src;
    }
    *line = n->line;
    *col = n->col;
    return main_file;
}

const scn_node *scn_map_key(const scn_node *m, const char *key)
{
    if (!m || m->kind != SCN_MAP)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i]->str, key) == 0)
            return m->keys[i];
    return NULL;
}

const scn_node *scn_map_get(const scn_node *m, const char *key)
{
    if (!m || m->kind != SCN_MAP)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i]->str, key) == 0)
            return m->items[i];
    return NULL;
}

const char *scn_str(const scn_node *n)
{
    return n && n->kind == SCN_SCALAR ? n->str : NULL;
}

int scn_is_null(const scn_node *n)
{
    if (!n || n->kind != SCN_SCALAR || !n->plain)
        return 0;
    return !strcmp(n->str, "") || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
           !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

int scn_get_bool(const scn_node *n, int *out)
{
    if (!n || n->kind != SCN_SCALAR || !n->plain)
        return -1;
    if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE")) {
        *out = 0;
        return 0;
    }
    return -1;
}

int scn_get_int(const scn_node *n, int64_t *out)
{
    if (!n || n->kind != SCN_SCALAR || !n->plain || !n->str[0])
        return -1;
    const char *p = n->str;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    char *end;
    long long v = strtoll(n->str, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int looks_real(const char *s)
{
    if (!*s)
        return 0;
    char *end;
    errno = 0;
    strtod(s, &end);
    if (errno || *end)
        return 0;
    /* Only decimal notation counts: "inf", "nan", hex are strings to us. */
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p))
            return 0;
    return strchr(s, '.') || strchr(s, 'e') || strchr(s, 'E');
}

/* Replace every "{i}" in s by i; malloc'd. */
static char *subst_i(const char *s, long i)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", i);
    size_t nl = strlen(num), cap = strlen(s) + 1, len = 0;
    for (const char *p = s; (p = strstr(p, "{i}")); p += 3)
        cap += nl;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (const char *p = s; *p;) {
        if (!strncmp(p, "{i}", 3)) {
            memcpy(out + len, num, nl);
            len += nl;
            p += 3;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
    return out;
}

json_t *scn_node_json_i(const scn_node *n, long i)
{
    if (!n)
        return json_null();
    switch (n->kind) {
    case SCN_SCALAR: {
        int64_t v;
        int b;
        if (n->plain) {
            if (scn_is_null(n))
                return json_null();
            if (!scn_get_bool(n, &b))
                return json_boolean(b);
            if (!scn_get_int(n, &v))
                return json_integer(v);
            if (looks_real(n->str))
                return json_real(strtod(n->str, NULL));
        }
        if (i >= 0 && strstr(n->str, "{i}")) {
            char *s = subst_i(n->str, i);
            json_t *j = json_string(s);
            free(s);
            return j ? j : json_null();
        }
        json_t *j = json_string(n->str);
        return j ? j : json_null(); /* invalid UTF-8: libyaml already refuses it */
    }
    case SCN_SEQ: {
        json_t *a = json_array();
        for (size_t k = 0; k < n->n; k++)
            json_array_append_new(a, scn_node_json_i(n->items[k], i));
        return a;
    }
    case SCN_MAP: {
        json_t *o = json_object();
        for (size_t k = 0; k < n->n; k++)
            json_object_set_new(o, n->keys[k]->str, scn_node_json_i(n->items[k], i));
        return o;
    }
    }
    return json_null();
}

json_t *scn_node_json(const scn_node *n)
{
    return scn_node_json_i(n, -1);
}

/* The text of scn_node_json(n) written straight from the node, without
 * the tree: the runner writes every step's text and every passed
 * expectation's into the trace, and the tree-then-dump route was ~3 % of a
 * suite run (hp-bench, callgrind).  The typing is scn_node_json_i()'s
 * (the same predicates, in the same order), the strings and numbers are
 * written by hp_jw as hp_jdump() writes them.  Returns -1, having written
 * part of the text, where only the tree knows the answer: a map whose keys
 * repeat (the loader refuses them; the tree keeps one value per key), a
 * string that is not UTF-8 (libyaml refuses it; the tree makes it null),
 * a real jansson refuses; the caller then takes the tree route. */
static int put_node(hp_jw *w, const scn_node *n)
{
    if (!n) {
        hp_jw_raw(w, "null", 4);
        return 0;
    }
    switch (n->kind) {
    case SCN_SCALAR: {
        int64_t v;
        int b;
        if (n->plain && scn_is_null(n)) {
            hp_jw_raw(w, "null", 4);
        } else if (n->plain && !scn_get_bool(n, &b)) {
            hp_jw_raw(w, b ? "true" : "false", b ? 4 : 5);
        } else if (n->plain && !scn_get_int(n, &v)) {
            hp_jw_int(w, (json_int_t)v);
        } else if (n->plain && looks_real(n->str)) {
            json_t *r = json_real(strtod(n->str, NULL));
            if (!r)
                return -1;
            hp_jw_value(w, r);
            json_decref(r);
        } else if (hp_jw_str(w, n->str, strlen(n->str))) {
            return -1;
        }
        return 0;
    }
    case SCN_SEQ:
        hp_jw_raw(w, "[", 1);
        for (size_t k = 0; k < n->n; k++) {
            if (k)
                hp_jw_raw(w, ",", 1);
            if (put_node(w, n->items[k]))
                return -1;
        }
        hp_jw_raw(w, "]", 1);
        return 0;
    case SCN_MAP:
        for (size_t i = 0; i < n->n; i++)
            for (size_t j = i + 1; j < n->n; j++)
                if (!strcmp(n->keys[i]->str, n->keys[j]->str))
                    return -1;
        hp_jw_raw(w, "{", 1);
        for (size_t k = 0; k < n->n; k++) {
            if (k)
                hp_jw_raw(w, ",", 1);
            if (hp_jw_str(w, n->keys[k]->str, strlen(n->keys[k]->str)))
                return -1;
            hp_jw_raw(w, ":", 1);
            if (put_node(w, n->items[k]))
                return -1;
        }
        hp_jw_raw(w, "}", 1);
        return 0;
    }
    return -1;
}

char *scn_node_text(const scn_node *n)
{
    hp_jw w;
    hp_jw_init(&w);
    if (!put_node(&w, n)) {
        char *s = hp_jw_take(&w, NULL);
        if (s)
            return s;
    } else {
        free(hp_jw_take(&w, NULL));
    }
    /* json_dumps(scn_node_json(n), JSON_COMPACT | JSON_ENCODE_ANY)'s
     * bytes: the definition, for what the direct route leaves to it. */
    json_t *j = scn_node_json(n);
    char *s = hp_jdump_ordered(j, NULL);
    json_decref(j);
    return s ? s : strdup("?");
}

void scn_node_describe(const scn_node *n, char *buf, size_t len)
{
    if (!n) {
        snprintf(buf, len, "nothing");
        return;
    }
    if (n->kind == SCN_SEQ)
        snprintf(buf, len, "a list");
    else if (n->kind == SCN_MAP)
        snprintf(buf, len, "a mapping");
    else if (scn_is_null(n))
        snprintf(buf, len, "nothing (null)");
    else
        snprintf(buf, len, "%s '%.60s'", n->plain ? "value" : "string", n->str);
}
