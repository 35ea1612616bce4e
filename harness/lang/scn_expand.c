/*
 * scn_expand.c - vars, for_each and include: the scenario's node tree is
 * expanded into plain steps and lists before validation (scn_load.c) and
 * the run (which never sees these keywords).
 *
 *   vars:      top-level mapping name -> value; `{name}` in any string or
 *              key is replaced.  A string that is exactly "{name}" takes
 *              the value itself (a number stays a number, a list a list).
 *   for_each:  an item of ANY list, `{for_each: {i: 1..100}, do: X}`:
 *              X (one item, or a list of items) once per value, with
 *              `{i}` bound.  Values: "A..B" (integers, inclusive) or a
 *              list.  Several variables nest, first written outermost.
 *   include:   an item of any list, `{include: FILE}` or
 *              `{include: {file: FILE, vars: {...}}}`: the items of FILE
 *              (a YAML list, or a mapping with `steps:` and default
 *              `vars:`), FILE relative to the including file.
 *
 * Inputs: the parsed tree (scn_yaml.c) and the scenario's file name.
 * Output: a new tree replacing *root (the old one is freed); nodes keep
 * the position of what they were expanded from, and nodes from an included
 * file carry that file (scn_node.src) so that diagnostics name it; at run
 * time they report the position of their `include:` step.
 * Unbound `{i}` is left alone: it is the `repeat` counter (scn_run.c).
 * Bounds: SCN_FOR_EACH_MAX iterations per for_each, SCN_EXPAND_MAX_NODES
 * nodes in all, SCN_INCLUDE_DEPTH nested includes (a cycle is an error).
 */
#define _GNU_SOURCE
#include "scn_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binding {
    char *name;
    scn_node *val; /* owned, already expanded */
} binding;

/* Where copies come from: nodes of an included file point at it. */
typedef struct origin {
    const char *src; /* NULL: the scenario file itself */
    int line, col;   /* the include step's position in the scenario file */
} origin;

typedef struct xctx {
    const char *file; /* the scenario file */
    scn_diags *d;
    binding *b;
    size_t nb, cap;
    char *incs[SCN_INCLUDE_DEPTH + 1]; /* realpaths of the includes being expanded */
    size_t ninc;
    size_t nodes;
    int errors, too_big;
    int prose; /* in a description, name or note: an unknown {word} is text */
    const char *cur_src; /* the included file whose nodes are being read, or NULL */
} xctx;

static const char *const for_each_keys[] = {"for_each", "do", NULL};
static const char *const include_keys[] = {"file", "vars", NULL};
static const char *const fragment_keys[] = {"vars", "steps", "description", NULL};

static void xerr(xctx *x, const scn_node *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void xerr(xctx *x, const scn_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = scn_vasprintf(fmt, ap);
    va_end(ap);
    int line, col;
    const char *f = scn_node_where(at, x->file, &line, &col);
    if (at && !at->src && x->cur_src)
        f = x->cur_src; /* a node of the included file being read */
    scn_diags_add(x->d, f, line, col, "%s", msg);
    free(msg);
    x->errors++;
}

static int is_ident(const char *s, size_t n)
{
    if (n == 0 || n > 64 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* The innermost binding of name[0..n), or NULL. */
static const binding *lookup(const xctx *x, const char *name, size_t n)
{
    for (size_t i = x->nb; i-- > 0;)
        if (strlen(x->b[i].name) == n && !strncmp(x->b[i].name, name, n))
            return &x->b[i];
    return NULL;
}

static void bind(xctx *x, const char *name, scn_node *val)
{
    if (x->nb == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        binding *nb = realloc(x->b, x->cap * sizeof *nb);
        if (!nb)
            abort();
        x->b = nb;
    }
    x->b[x->nb].name = strdup(name);
    if (!x->b[x->nb].name)
        abort();
    x->b[x->nb++].val = val;
}

static void unbind_to(xctx *x, size_t nb)
{
    while (x->nb > nb) {
        x->nb--;
        free(x->b[x->nb].name);
        scn_node_free(x->b[x->nb].val);
    }
}

static scn_node *new_node(xctx *x, scn_node_kind kind, const scn_node *from, const origin *o)
{
    scn_node *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    x->nodes++;
    n->kind = kind;
    if (o && o->src) {
        /* From an included file: diagnostics point there, the run points
         * at the include step. */
        n->src = strdup(o->src);
        if (!n->src)
            abort();
        n->src_line = from->line;
        n->src_col = from->col;
        n->line = o->line;
        n->col = o->col;
    } else {
        n->line = from->line;
        n->col = from->col;
        if (from->src) {
            n->src = strdup(from->src);
            if (!n->src)
                abort();
            n->src_line = from->src_line;
            n->src_col = from->src_col;
        }
    }
    return n;
}

/* A copy of val (already expanded) placed at `at` (a use of a variable;
 * o: at's origin when at is a node of an included file). */
static scn_node *copy_at(xctx *x, const scn_node *val, const scn_node *at, const origin *o)
{
    scn_node *n = new_node(x, val->kind, at, o);
    n->plain = val->plain;
    if (val->str && !(n->str = strdup(val->str)))
        abort();
    for (size_t i = 0; i < val->n; i++)
        scn_node_push(n, val->keys ? copy_at(x, val->keys[i], at, o) : NULL,
             copy_at(x, val->items[i], at, o));
    return n;
}

static char *bound_names(const xctx *x)
{
    char *out = strdup("");
    for (size_t i = 0; out && i < x->nb; i++) {
        if (lookup(x, x->b[i].name, strlen(x->b[i].name)) != &x->b[i])
            continue; /* shadowed */
        char *o2 = scn_asprintf("%s%s%s", out, *out ? ", " : "", x->b[i].name);
        free(out);
        out = o2;
    }
    return out;
}

static void unknown_var(xctx *x, const scn_node *at, const char *name, size_t n)
{
    char w[72];
    snprintf(w, sizeof w, "%.*s", (int)n, name);
    const char **c = calloc(x->nb + 1, sizeof *c);
    if (!c)
        abort();
    for (size_t i = 0; i < x->nb; i++)
        c[i] = x->b[i].name;
    const char *sug = scn_suggest(w, c);
    char *all = bound_names(x);
    if (sug)
        xerr(x, at, "unknown variable '{%s}' (did you mean '{%s}'?)", w, sug);
    else if (*all)
        xerr(x, at, "unknown variable '{%s}' (defined here: %s; define it under 'vars:' or "
                    "in a for_each)", w, all);
    else
        xerr(x, at, "unknown variable '{%s}' (define it under 'vars:' or in a for_each)", w);
    free(all);
    free(c);
}

/* Substitutes `{name}` in s.  Returns a malloc'd text, or NULL when s
 * names no variable (used as is).  *whole is set to the binding when s is
 * exactly one reference, so the caller can take the value itself. */
static char *subst(xctx *x, const scn_node *at, const char *s, const binding **whole)
{
    *whole = NULL;
    if (!strchr(s, '{'))
        return NULL;
    size_t sl = strlen(s);
    if (s[0] == '{' && s[sl - 1] == '}' && is_ident(s + 1, sl - 2)) {
        const binding *b = lookup(x, s + 1, sl - 2);
        if (b) {
            *whole = b;
            return NULL;
        }
    }
    char *out = NULL;
    size_t olen = 0;
    FILE *m = open_memstream(&out, &olen);
    if (!m)
        abort();
    int changed = 0;
    for (const char *p = s; *p;) {
        const char *e = *p == '{' ? strchr(p + 1, '}') : NULL;
        if (e && is_ident(p + 1, (size_t)(e - p - 1))) {
            size_t n = (size_t)(e - p - 1);
            const binding *b = lookup(x, p + 1, n);
            if (b && b->val->kind == SCN_SCALAR) {
                fputs(b->val->str, m);
                changed = 1;
            } else if (b) {
                xerr(x, at, "variable '{%.*s}' is a %s: it can only stand alone (\"{%.*s}\"), "
                            "not inside a text", (int)n, p + 1,
                     b->val->kind == SCN_SEQ ? "list" : "mapping", (int)n, p + 1);
                fwrite(p, 1, n + 2, m);
            } else {
                /* {i} outside any for_each is the repeat counter. */
                if (!(n == 1 && p[1] == 'i') && !x->prose)
                    unknown_var(x, at, p + 1, n);
                fwrite(p, 1, n + 2, m);
            }
            p = e + 1;
        } else {
            fputc(*p++, m);
        }
    }
    fclose(m);
    if (!changed) {
        free(out);
        return NULL;
    }
    return out;
}

static scn_node *expand(xctx *x, const scn_node *n, const origin *o, const char *dir);
static void expand_items(xctx *x, const scn_node *seq_or_one, scn_node *dest, const origin *o,
                         const char *dir);

static int over_budget(xctx *x, const scn_node *at)
{
    if (x->nodes <= SCN_EXPAND_MAX_NODES)
        return 0;
    if (!x->too_big)
        xerr(x, at, "the expanded scenario is too large (over %d nodes): fewer for_each "
                    "iterations or smaller included files", SCN_EXPAND_MAX_NODES);
    x->too_big = 1;
    return 1;
}

/* A for_each variable's values: "A..B" or a list.  NULL after an error. */
static scn_node *for_each_values(xctx *x, const scn_node *k, const scn_node *v, const origin *o,
                                 const char *dir)
{
    int errors = x->errors;
    scn_node *e = expand(x, v, o, dir);
    if (x->errors > errors) { /* said already (an unknown variable) */
        scn_node_free(e);
        return NULL;
    }
    if (e->kind == SCN_SEQ)
        return e;
    long long lo, hi;
    int used = 0;
    if (e->kind == SCN_SCALAR && sscanf(e->str, "%lld..%lld%n", &lo, &hi, &used) == 2 &&
        (size_t)used == strlen(e->str)) {
        if (hi < lo || hi - lo >= SCN_FOR_EACH_MAX) {
            xerr(x, v, "for_each %s: range %s must go up, at most %d values", k->str, e->str,
                 SCN_FOR_EACH_MAX);
            scn_node_free(e);
            return NULL;
        }
        scn_node *seq = new_node(x, SCN_SEQ, e, NULL);
        for (long long i = lo; i <= hi; i++) {
            scn_node *s = new_node(x, SCN_SCALAR, e, NULL);
            s->plain = 1;
            s->str = scn_asprintf("%lld", i);
            scn_node_push(seq, NULL, s);
        }
        scn_node_free(e);
        return seq;
    }
    char got[96];
    scn_node_describe(e, got, sizeof got);
    xerr(x, v, "for_each %s: expected a range such as 1..100 or a list, got %s", k->str, got);
    scn_node_free(e);
    return NULL;
}

/* Binds variable k (0-based index of fe's keys) to each of its values in
 * turn, then the next; at the last, expands `do` into dest. */
static void for_each_level(xctx *x, const scn_node *fe, scn_node **vals, size_t k,
                           const scn_node *body, scn_node *dest, const origin *o, const char *dir)
{
    if (k == fe->n) {
        expand_items(x, body, dest, o, dir);
        return;
    }
    for (size_t i = 0; i < vals[k]->n && !x->too_big; i++) {
        size_t mark = x->nb;
        bind(x, fe->keys[k]->str, copy_at(x, vals[k]->items[i], vals[k]->items[i], NULL));
        for_each_level(x, fe, vals, k + 1, body, dest, o, dir);
        unbind_to(x, mark);
    }
}

static void expand_for_each(xctx *x, const scn_node *item, scn_node *dest, const origin *o,
                            const char *dir)
{
    for (size_t i = 0; i < item->n; i++)
        if (strcmp(item->keys[i]->str, "for_each") && strcmp(item->keys[i]->str, "do")) {
            const char *sug = scn_suggest(item->keys[i]->str, for_each_keys);
            xerr(x, item->keys[i], "unknown key '%s' beside for_each (%s)", item->keys[i]->str,
                 sug && !strcmp(sug, "do") ? "did you mean 'do'?"
                                           : "a for_each item has 'for_each' and 'do'");
        }
    const scn_node *fe = scn_map_get(item, "for_each");
    const scn_node *body = scn_map_get(item, "do");
    if (!body) {
        xerr(x, item, "for_each needs 'do:' (the item or list of items to repeat)");
        return;
    }
    if (fe->kind != SCN_MAP || fe->n == 0) {
        xerr(x, fe, "for_each must be a mapping of variables to values, e.g. "
                    "'for_each: {i: 1..100}' or 'for_each: {who: [alice, bob]}'");
        return;
    }
    scn_node **vals = calloc(fe->n, sizeof *vals);
    if (!vals)
        abort();
    int ok = 1;
    size_t total = 1;
    for (size_t i = 0; i < fe->n; i++) {
        const char *name = fe->keys[i]->str;
        if (!is_ident(name, strlen(name))) {
            xerr(x, fe->keys[i], "variable name '%s' must be a letter or _ then letters, "
                                 "digits, _", name);
            ok = 0;
            continue;
        }
        vals[i] = for_each_values(x, fe->keys[i], fe->items[i], o, dir);
        if (!vals[i]) {
            ok = 0;
            continue;
        }
        total *= vals[i]->n ? vals[i]->n : 1;
        if (total > SCN_FOR_EACH_MAX) {
            xerr(x, fe, "for_each makes over %d iterations", SCN_FOR_EACH_MAX);
            ok = 0;
            break;
        }
    }
    if (ok)
        for_each_level(x, fe, vals, 0, body, dest, o, dir);
    for (size_t i = 0; i < fe->n; i++)
        scn_node_free(vals[i]);
    free(vals);
}

static char *dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    return sl ? strndup(path, (size_t)(sl - path)) : strdup(".");
}

static void expand_include(xctx *x, const scn_node *item, scn_node *dest, const origin *o,
                           const char *dir)
{
    if (item->n != 1) {
        for (size_t i = 0; i < item->n; i++)
            if (strcmp(item->keys[i]->str, "include"))
                xerr(x, item->keys[i], "'include' is an item of its own: '%s' goes in "
                                       "another item (or in include's 'vars:')",
                     item->keys[i]->str);
        return;
    }
    const scn_node *arg = item->items[0];
    const scn_node *fnode = arg, *ivars = NULL;
    if (arg->kind == SCN_MAP) {
        for (size_t i = 0; i < arg->n; i++)
            if (strcmp(arg->keys[i]->str, "file") && strcmp(arg->keys[i]->str, "vars")) {
                const char *sug = scn_suggest(arg->keys[i]->str, include_keys);
                xerr(x, arg->keys[i], "unknown include key '%s' (%s%s%s)", arg->keys[i]->str,
                     sug ? "did you mean '" : "expected file, vars", sug ? sug : "",
                     sug ? "'?" : "");
            }
        fnode = scn_map_get(arg, "file");
        ivars = scn_map_get(arg, "vars");
        if (!fnode) {
            xerr(x, arg, "include needs 'file:' (a YAML file of steps)");
            return;
        }
    }
    scn_node *fe = expand(x, fnode, o, dir);
    if (fe->kind != SCN_SCALAR || !fe->str[0]) {
        xerr(x, fnode, "include: expected a file name, e.g. 'include: ../fixtures/setup.yaml'");
        scn_node_free(fe);
        return;
    }
    if (ivars && ivars->kind != SCN_MAP) {
        xerr(x, ivars, "include vars must be a mapping name -> value");
        scn_node_free(fe);
        return;
    }
    char *path = fe->str[0] == '/' ? strdup(fe->str) : scn_asprintf("%s/%s", dir, fe->str);
    scn_node_free(fe);
    char *real = realpath(path, NULL);
    if (!real) {
        xerr(x, fnode, "include '%s': %s", path, strerror(errno));
        free(path);
        return;
    }
    for (size_t i = 0; i < x->ninc; i++)
        if (!strcmp(x->incs[i], real)) {
            xerr(x, fnode, "include '%s' makes a cycle: that file is already being included", path);
            free(real);
            free(path);
            return;
        }
    if (x->ninc > SCN_INCLUDE_DEPTH) {
        xerr(x, fnode, "include '%s': includes nested over %d deep", path, SCN_INCLUDE_DEPTH);
        free(real);
        free(path);
        return;
    }
    scn_node *froot = NULL;
    if (scn_yaml_load_file(path, &froot, x->d)) {
        x->errors++; /* the diagnostic names the included file */
        free(real);
        free(path);
        return;
    }
    x->incs[x->ninc++] = real;
    /* Nodes of this file point at it; the run points at the outermost
     * include step (the scenario file's position). */
    int line, col;
    if (o && o->src) {
        line = o->line;
        col = o->col;
    } else {
        line = item->line;
        col = item->col;
    }
    origin io = {path, line, col};
    char *idir = dir_of(path);
    size_t mark = x->nb;
    const char *outer_src = x->cur_src;
    x->cur_src = path;
    const scn_node *items = froot;
    if (froot->kind == SCN_MAP) {
        items = NULL;
        for (size_t i = 0; i < froot->n; i++) {
            const char *k = froot->keys[i]->str;
            const scn_node *v = froot->items[i];
            if (!strcmp(k, "steps")) {
                items = v;
            } else if (!strcmp(k, "vars")) {
                if (v->kind != SCN_MAP) {
                    xerr(x, froot->keys[i], "vars must be a mapping name -> value");
                    continue;
                }
                /* Defaults: the include's own vars override them. */
                for (size_t j = 0; j < v->n; j++)
                    if (!scn_map_get(ivars, v->keys[j]->str))
                        bind(x, v->keys[j]->str, expand(x, v->items[j], &io, idir));
            } else if (strcmp(k, "description")) {
                const char *sug = scn_suggest(k, fragment_keys);
                scn_diags_add(x->d, path, froot->keys[i]->line, froot->keys[i]->col,
                              "unknown key '%s' in an included file (%s%s%s)", k,
                              sug ? "did you mean '" : "expected steps, vars, description",
                              sug ? sug : "", sug ? "'?" : "");
                x->errors++;
            }
        }
        if (!items) {
            scn_diags_add(x->d, path, froot->line, froot->col,
                          "an included file is a list of steps, or a mapping with 'steps:'");
            x->errors++;
        }
    } else if (froot->kind != SCN_SEQ) {
        scn_diags_add(x->d, path, froot->line, froot->col,
                      "an included file is a list of steps, or a mapping with 'steps:'");
        x->errors++;
        items = NULL;
    }
    /* The include's vars: their values are the including file's. */
    x->cur_src = outer_src;
    for (size_t j = 0; ivars && j < ivars->n; j++)
        bind(x, ivars->keys[j]->str, expand(x, ivars->items[j], o, dir));
    x->cur_src = path;
    if (items && items->kind != SCN_SEQ) {
        scn_diags_add(x->d, path, items->line, items->col, "steps must be a list of steps");
        x->errors++;
    } else if (items) {
        /* Positions inside the included tree are the file's own. */
        expand_items(x, items, dest, &io, idir);
    }
    x->cur_src = outer_src;
    unbind_to(x, mark);
    free(idir);
    scn_node_free(froot);
    free(x->incs[--x->ninc]);
    free(path);
}

/* Appends to dest the expansion of seq's items (or of one item, when it
 * is not a list), for_each and include items flattened in place. */
static void expand_items(xctx *x, const scn_node *seq_or_one, scn_node *dest, const origin *o,
                         const char *dir)
{
    size_t n = seq_or_one->kind == SCN_SEQ ? seq_or_one->n : 1;
    for (size_t i = 0; i < n && !over_budget(x, seq_or_one); i++) {
        const scn_node *it = seq_or_one->kind == SCN_SEQ ? seq_or_one->items[i] : seq_or_one;
        if (it->kind == SCN_MAP && scn_map_get(it, "for_each"))
            expand_for_each(x, it, dest, o, dir);
        else if (it->kind == SCN_MAP && scn_map_get(it, "include"))
            expand_include(x, it, dest, o, dir);
        else
            scn_node_push(dest, NULL, expand(x, it, o, dir));
    }
}

static scn_node *expand(xctx *x, const scn_node *n, const origin *o, const char *dir)
{
    if (n->kind == SCN_SCALAR) {
        const binding *whole;
        char *t = subst(x, n, n->str, &whole);
        if (whole)
            return copy_at(x, whole->val, n, o);
        scn_node *c = new_node(x, SCN_SCALAR, n, o);
        c->plain = n->plain;
        c->str = t ? t : strdup(n->str);
        if (!c->str)
            abort();
        return c;
    }
    scn_node *c = new_node(x, n->kind, n, o);
    if (n->kind == SCN_SEQ) {
        expand_items(x, n, c, o, dir);
        return c;
    }
    for (size_t i = 0; i < n->n; i++) {
        const binding *whole;
        const scn_node *k = n->keys[i];
        char *t = subst(x, k, k->str, &whole);
        if (whole && whole->val->kind != SCN_SCALAR) {
            xerr(x, k, "variable '%s' is a list or mapping: a key must be a word", k->str);
        } else if (whole) {
            t = strdup(whole->val->str);
            if (!t)
                abort();
        }
        scn_node *kc = new_node(x, SCN_SCALAR, k, o);
        kc->plain = k->plain;
        kc->str = t ? t : strdup(k->str);
        if (!kc->str)
            abort();
        if (t && scn_map_key(c, kc->str)) {
            xerr(x, k, "key '%s' (after substitution) is already in this mapping", kc->str);
        }
        int prose = x->prose;
        x->prose = prose || !strcmp(kc->str, "description") || !strcmp(kc->str, "note");
        scn_node_push(c, kc, expand(x, n->items[i], o, dir));
        x->prose = prose;
    }
    return c;
}

/* Does the tree use any of the keywords (a plain file needs no copy)? */
static int uses_expansion(const scn_node *n)
{
    if (n->kind == SCN_SCALAR)
        return strchr(n->str, '{') != NULL;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys && (strchr(n->keys[i]->str, '{') || !strcmp(n->keys[i]->str, "for_each") ||
                        !strcmp(n->keys[i]->str, "include")))
            return 1;
        if (uses_expansion(n->items[i]))
            return 1;
    }
    return 0;
}

int scn_expand(const char *file, scn_node **root, scn_diags *d)
{
    scn_node *r = *root;
    if (r->kind != SCN_MAP || (!scn_map_get(r, "vars") && !uses_expansion(r)))
        return 0; /* nothing to do: the validator reports a non-mapping */
    xctx x = {0};
    x.file = file;
    x.d = d;
    size_t first_diag = d ? d->n : 0;
    char *dir = dir_of(file);
    char *self = realpath(file, NULL); /* a scenario that includes itself */
    if (self)
        x.incs[x.ninc++] = self;
    const scn_node *vars = scn_map_get(r, "vars");
    if (vars && vars->kind != SCN_MAP && !scn_is_null(vars)) {
        xerr(&x, vars, "vars must be a mapping name -> value, e.g. 'vars: {n: 100, who: alice}'");
    } else if (vars) {
        for (size_t i = 0; i < vars->n; i++) {
            const char *name = vars->keys[i]->str;
            if (!is_ident(name, strlen(name)))
                xerr(&x, vars->keys[i], "variable name '%s' must be a letter or _ then "
                                        "letters, digits, _", name);
            else if (!strcmp(name, "i"))
                xerr(&x, vars->keys[i], "'i' is the repeat counter ({i} in a repeat step): "
                                        "choose another name");
            else /* later vars may use earlier ones */
                bind(&x, name, expand(&x, vars->items[i], NULL, dir));
        }
    }
    scn_node *out = new_node(&x, SCN_MAP, r, NULL);
    for (size_t i = 0; i < r->n && !x.too_big; i++) {
        const scn_node *k = r->keys[i];
        scn_node *kc = new_node(&x, SCN_SCALAR, k, NULL);
        kc->plain = k->plain;
        kc->str = strdup(k->str);
        if (!kc->str)
            abort();
        /* vars stays as written (the validator only checks it is there). */
        x.prose = !strcmp(k->str, "description") || !strcmp(k->str, "name");
        scn_node_push(out, kc, !strcmp(k->str, "vars") ? copy_at(&x, r->items[i], r->items[i], NULL)
                                              : expand(&x, r->items[i], NULL, dir));
    }
    unbind_to(&x, 0);
    free(x.b);
    free(dir);
    free(self);
    scn_diags_sort_unique(d, first_diag);
    if (x.errors) {
        scn_node_free(out);
        return -1;
    }
    scn_node_free(r);
    *root = out;
    return 0;
}
