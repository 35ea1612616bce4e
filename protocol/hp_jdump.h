/*
 * hp_jdump.h - compact, key-sorted JSON text of a jansson tree, fast.
 *
 * Output: exactly the bytes jansson 2.14's
 *     json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
 * returns for the same tree, including its failures.  Every frame, HTTP
 * body, log payload and stored value the cores write is made this way
 * (through hp_json_dump(), hp_task.h), and traces and reports compare
 * those bytes, so "the same as jansson" is the contract, not "valid JSON":
 *   - keys sorted by their bytes (unsigned), a key that is a prefix of
 *     another first; keys may hold NUL (json_object_setn);
 *   - strings: `"` `\` and bytes < 0x20 escaped (\b \f \n \r \t, else
 *     \u00XX with upper-case hex), everything else raw (UTF-8 unescaped);
 *   - integers in decimal, reals as "%.17g" with ".0" appended when that
 *     has neither '.' nor 'e', the exponent without '+' or leading zeros;
 *   - NULL where jansson returns NULL: v NULL, a string *value* that is
 *     not valid UTF-8 (json_stringn_nocheck), a container that holds
 *     itself (a cycle), out of memory.  A *key* that is not valid UTF-8
 *     does not fail in jansson: it writes `"`, the part of the key up to
 *     and including its last escape, no closing quote, and goes on; so
 *     does this.
 * Why not json_dumps: it costs ~14 k instructions per call (a strbuffer
 * grown by callbacks, a hash table of parents with a snprintf'd pointer per
 * container, a malloc'd key array and a hash lookup per key).  This writes
 * in one pass into a buffer on the stack (the heap past a few KiB) with one
 * malloc for the result; keys are sorted in a scratch array shared by all
 * levels (on the stack when few).
 *
 * hp_jdump_ordered() is the same without JSON_SORT_KEYS (keys in each
 * object's insertion order).
 *
 * tests/protocol/test_hp_jdump.c and fuzz/fuzz_jdump.c compare it with
 * json_dumps on generated trees.
 *
 * Ownership: v is borrowed, never changed.  The result is a new
 * NUL-terminated string the caller frees with free().  Thread-safe (no
 * state between calls).
 */
#ifndef HP_JDUMP_H
#define HP_JDUMP_H

#include <stddef.h>
#include <jansson.h>

/* The text of v, or NULL (see above).  When lenp is not NULL it receives
 * the length of the result (its strlen(): the text never holds a raw NUL,
 * a NUL in a string or key is written \u0000). */
char *hp_jdump(const json_t *v, size_t *lenp);

/* The same without sorting: each object's keys in its own (insertion)
 * order, what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) returns. */
char *hp_jdump_ordered(const json_t *v, size_t *lenp);

/* pre, then the text of v, then post, in one malloc'd string (NULL when
 * hp_jdump(v) would be NULL).  pre and post are plain C strings, copied as
 * they are; NULL means "". */
char *hp_jdump_wrap(const char *pre, const json_t *v, const char *post, size_t *lenp);

/* ---- a text built piece by piece -------------------------------------
 *
 * For messages whose shape is fixed (hp_msg.c's frames): the caller writes
 * the punctuation and keys in sorted order itself and the values through
 * these, and gets what hp_jdump() of the whole object would give, without
 * building the object.
 *
 *     hp_jw w;
 *     hp_jw_init(&w);
 *     hp_jw_raw(&w, "{\"revision\":", 12);
 *     hp_jw_int(&w, rev);
 *     hp_jw_raw(&w, "}", 1);
 *     char *text = hp_jw_take(&w, NULL);
 *
 * The text starts in the struct itself (so an hp_jw must not be copied or
 * moved once used) and moves to the heap when it outgrows it.  A piece
 * that fails (out of memory, a value hp_jdump() would refuse) marks the
 * whole text failed: later pieces are ignored and hp_jw_take() returns
 * NULL.  hp_jw_take() always releases what the hp_jw holds.
 */
#define HP_JW_STACK_BYTES 2048

typedef struct hp_jw {
    char *p;      /* private: the text so far (buf, or the heap) */
    size_t n;     /* private: bytes written */
    size_t cap;   /* private: bytes available at p */
    int heap;     /* private: p was malloc'd */
    int failed;   /* private: a piece failed */
    char buf[HP_JW_STACK_BYTES]; /* private */
} hp_jw;

void hp_jw_init(hp_jw *w);
/* n bytes as they are (punctuation, keys already in JSON form). */
void hp_jw_raw(hp_jw *w, const char *s, size_t n);
/* s[0..n) as a JSON string.  Returns 0; 1 when s is not valid UTF-8, in
 * which case nothing is written and the text is not failed (the caller
 * may write a repaired string instead); -1 out of memory (failed). */
int hp_jw_str(hp_jw *w, const char *s, size_t n);
void hp_jw_int(hp_jw *w, json_int_t i);
/* The text hp_jdump(v) gives; v NULL or refused: the text fails. */
void hp_jw_value(hp_jw *w, const json_t *v);
/* The text as a new NUL-terminated string (free() it), its length in
 * *lenp when lenp is not NULL; NULL when a piece failed or out of memory. */
char *hp_jw_take(hp_jw *w, size_t *lenp);

#endif
