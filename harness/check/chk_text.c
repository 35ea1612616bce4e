/*
 * chk_text.c - the compact JSON text of a scenario node, written straight
 * from the node: exactly what scn_node_text() gives (scn_node_json()
 * dumped by jansson: compact, keys in the written order, strings escaped
 * as jansson does), without building the JSON tree and dumping it.  The
 * runner writes every step's text and every passed expectation's to the
 * trace; the tree-then-dump route was ~3 % of a suite run (hp-bench,
 * callgrind), the for_each steps of a hundred items the most of it.
 *
 * Inputs: a node of a loaded scenario (borrowed).  Output: a malloc'd
 * string (never NULL).  tests/harness/test_checker.c holds the two equal
 * on every node of every scenario of scenarios/ and on the edge cases of
 * escaping and typing.
 */
#define _GNU_SOURCE
#include "scn_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tbuf {
    char *s;
    size_t len, cap;
} tbuf;

static void put(tbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? 2 * b->cap : 256;
        b->s = realloc(b->s, b->cap);
        if (!b->s)
            abort();
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(tbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string as jansson writes it without JSON_ENSURE_ASCII and
 * JSON_ESCAPE_SLASH: backslash, quote and the control characters escaped
 * (the short forms where JSON has one, else \u00XX in upper case), every
 * other byte as is (scenario text is valid UTF-8: libyaml refuses the
 * rest). */
static void put_string(tbuf *b, const char *s)
{
    put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, run, (size_t)(p - run));
        run = p + 1;
        /* JSON's two-character escapes where it has one (shorts[i] is
         * written \ letters[i]), else \u00XX */
        static const char shorts[] = "\"\\\b\f\n\r\t", letters[] = "\"\\bfnrt";
        const char *k = strchr(shorts, c);
        char esc[8];
        if (k)
            snprintf(esc, sizeof esc, "\\%c", letters[k - shorts]);
        else
            snprintf(esc, sizeof esc, "\\u%04X", c);
        puts_(b, esc);
    }
    put(b, run, strlen(run));
    put(b, "\"", 1);
}

/* Could scn_node_json() read this plain scalar as a real?  Only text of
 * digits, signs, '.' and exponents can be one; the rest is left to it. */
static int maybe_real(const char *s)
{
    return *s && strspn(s, "0123456789+-.eE") == strlen(s);
}

/* A map whose keys repeat (the loader refuses them): its JSON keeps one
 * value per key, in an order only jansson knows; ask jansson. */
static int keys_repeat(const scn_node *n)
{
    for (size_t i = 0; i < n->n; i++)
        for (size_t j = i + 1; j < n->n; j++)
            if (!strcmp(n->keys[i]->str, n->keys[j]->str))
                return 1;
    return 0;
}

/* The typing of a scalar is scn_node_json()'s (null, booleans, integers,
 * reals, else a string); the functions it uses say it.  Returns 1 when
 * the node has no JSON (a real out of range: jansson refuses it, and an
 * array or object then goes without it), having written nothing. */
static int put_node(tbuf *b, const scn_node *n)
{
    if (!n) {
        puts_(b, "null");
        return 0;
    }
    switch (n->kind) {
    case SCN_SCALAR: {
        int v;
        int64_t x;
        if (n->plain && scn_is_null(n)) {
            puts_(b, "null");
        } else if (n->plain && !scn_get_bool(n, &v)) {
            puts_(b, v ? "true" : "false");
        } else if (n->plain && !scn_get_int(n, &x)) {
            char num[32];
            snprintf(num, sizeof num, "%" PRId64, x);
            puts_(b, num);
        } else if (n->plain && maybe_real(n->str)) {
            /* a real's digits are jansson's */
            json_t *j = scn_node_json(n);
            char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_decref(j);
            if (!t)
                return 1;
            puts_(b, t);
            free(t);
        } else {
            put_string(b, n->str);
        }
        return 0;
    }
    case SCN_SEQ: {
        put(b, "[", 1);
        int first = 1;
        for (size_t i = 0; i < n->n; i++) {
            size_t mark = b->len;
            if (!first)
                put(b, ",", 1);
            if (put_node(b, n->items[i]))
                b->len = mark; /* dropped, with its comma */
            else
                first = 0;
        }
        put(b, "]", 1);
        return 0;
    }
    case SCN_MAP: {
        if (keys_repeat(n)) {
            char *t = scn_node_text(n);
            puts_(b, t);
            free(t);
            return 0;
        }
        put(b, "{", 1);
        int first = 1;
        for (size_t i = 0; i < n->n; i++) {
            size_t mark = b->len;
            if (!first)
                put(b, ",", 1);
            put_string(b, n->keys[i]->str);
            put(b, ":", 1);
            if (put_node(b, n->items[i]))
                b->len = mark;
            else
                first = 0;
        }
        put(b, "}", 1);
        return 0;
    }
    }
    puts_(b, "null");
    return 0;
}

char *chk_node_text(const scn_node *n)
{
    tbuf b = {0};
    if (put_node(&b, n)) { /* as json_dumps(NULL) in scn_node_text */
        free(b.s);
        return strdup("?");
    }
    return b.s;
}
