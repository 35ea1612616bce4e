/*
 * hp_jload.h - json_loadb() with a fast path for the plain JSON the cores
 * exchange.
 *
 * Every frame, HTTP body and stored value crosses the cores as JSON text
 * and is parsed by the receiver; jansson's reader spends most of that
 * time in its character-by-character lexer.  hp_json_loadb() parses the
 * common shapes itself (objects, arrays, ASCII or valid UTF-8 strings with
 * the short escapes, integers of up to 18 digits, true/false/null, nesting
 * up to 64 levels) straight into jansson values.  On anything else
 * (\u escapes, reals, big integers, a duplicate key, deep nesting, any
 * error at all) it throws its work away and returns what json_loadb()
 * returns for the same input, flags and error.  So the result is always
 * json_loadb()'s: the same tree, key order, value types and, on failure,
 * the same NULL and error text.
 *
 * Inputs: buf/len (borrowed; need not be NUL-terminated), jansson flags
 * (0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY or both; other flags go to
 * json_loadb untouched), err (may be NULL).  Output: a new reference, or
 * NULL with err filled by jansson.
 */
#ifndef HP_JLOAD_H
#define HP_JLOAD_H

#include <stddef.h>
#include <jansson.h>

json_t *hp_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);

/* The same for a NUL-terminated text (json_loads). */
json_t *hp_json_loads(const char *text, size_t flags, json_error_t *err);

#endif
