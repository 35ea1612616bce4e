/*
 * sim_frame.c - the kind of a frame ("type", or "event_type" for events)
 * and its entity id, for drop rules and the `frames` history.
 *
 * Inputs: frame bytes (borrowed).  Outputs: kind and entity in the
 * caller's buffers.  No state.
 */
#define _GNU_SOURCE
#include "sim_int.h"
#include "hp_jload.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>


/* The kind of a frame for drop rules and histories: its "type", or its
 * "event_type" for events. */
void sim_frame_kind(const char *data, size_t len, char *kind, size_t klen, char *entity,
                       size_t elen)
{
    snprintf(kind, klen, "?");
    if (entity)
        entity[0] = '\0';
    json_t *j = hp_json_loadb(data, len, 0, NULL);
    if (!j)
        return;
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *et = json_string_value(json_object_get(j, "event_type"));
    if (t)
        snprintf(kind, klen, "%s", t);
    else if (et)
        snprintf(kind, klen, "%s", et);
    const char *id = json_string_value(json_object_get(j, "entity_id"));
    if (entity && id)
        snprintf(entity, elen, "%s", id);
    json_decref(j);
}

/* The fast path of sim_frame_kind() for frames the cores wrote (json_dumps
 * output: valid JSON, one object): the top-level string values of "type",
 * "event_type" and "entity_id" by a scan that skips nested values, without
 * building the tree (a frame can carry a task of a megabyte).  -1 when the
 * frame is not a plain object or a wanted value has an escape: the caller
 * then parses it. */
/* dst = the first n bytes of src, cut to dlen - 1 as snprintf("%.*s")
 * would cut them (called for three keys of every frame). */
static void copy_cut(char *dst, size_t dlen, const char *src, size_t n)
{
    if (n > dlen - 1)
        n = dlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* The SWAR "has a zero byte" mask of x: the high bit set in every byte
 * that is zero, and possibly in bytes above one that is (a false alarm can
 * only follow a true one), never where none is.  So the lowest bit set
 * always marks a true zero: stops_at() goes straight to it. */
static inline uint64_t zero_bytes(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    return (x - ones) & ~x & highs;
}

static inline uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* The eight-byte steps read the first byte of a word as its lowest: on
 * other machines the scans go byte by byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR8 1
#else
#define SWAR8 0
#endif

/* The offset of the first byte set in mask m (non-zero, of the bytes at p
 * as load8() read them): a true one, since false alarms only follow. */
static inline size_t first_set(uint64_t m)
{
    return (size_t)__builtin_ctzll(m) >> 3;
}

static const char *skip_string(const char *p, const char *end, int *escaped)
{
    /* p at the opening quote; returns past the closing one or NULL.  Eight
     * bytes at a time to the next quote or backslash: string bytes were
     * most of this scan's instructions (frames carry whole tasks). */
    const uint64_t ones = 0x0101010101010101u;
    for (p++;;) {
        if (SWAR8 && end - p >= 8) {
            uint64_t x = load8(p);
            uint64_t m = zero_bytes(x ^ (ones * '"')) | zero_bytes(x ^ (ones * '\\'));
            if (!m) {
                p += 8;
                continue;
            }
            p += first_set(m);
        } else {
            while (p < end && *p != '"' && *p != '\\')
                p++;
            if (p >= end)
                return NULL;
        }
        if (*p == '"')
            return p + 1;
        *escaped = 1; /* a backslash: it and the byte it escapes */
        p += 2;
    }
}

int sim_frame_scan(const char *data, size_t len, char *kind, size_t klen, char *entity,
                      size_t elen)
{
    const char *p = data, *end = data + len;
    char type[64] = "", etype[64] = "";
    int have_type = 0, have_etype = 0;
    if (entity)
        entity[0] = '\0';
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        goto done;
    for (;;) {
        if (p >= end || *p != '"')
            return -1;
        int esc = 0;
        const char *k0 = p + 1, *k1 = skip_string(p, end, &esc);
        if (!k1 || esc)
            return -1;
        size_t kl = (size_t)(k1 - 1 - k0);
        p = skip_ws(k1, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        if (p >= end)
            return -1;
        if (*p == '"') {
            const char *v0 = p + 1, *v1 = skip_string(p, end, &esc);
            if (!v1)
                return -1;
            size_t vl = (size_t)(v1 - 1 - v0);
            char *dst = NULL;
            size_t dl = 0;
            if (kl == 4 && !memcmp(k0, "type", 4)) {
                dst = type;
                dl = sizeof type;
                have_type = 1;
            } else if (kl == 10 && !memcmp(k0, "event_type", 10)) {
                dst = etype;
                dl = sizeof etype;
                have_etype = 1;
            } else if (kl == 9 && !memcmp(k0, "entity_id", 9) && entity) {
                dst = entity;
                dl = elen;
            }
            if (dst) {
                if (esc)
                    return -1;
                copy_cut(dst, dl, v0, vl);
            }
            p = v1;
        } else {
            /* A non-string "entity_id" is no entity (the parse's answer),
             * also when a string one came before it (the last one wins). */
            if (kl == 9 && !memcmp(k0, "entity_id", 9) && entity)
                entity[0] = '\0';
            /* a number, literal, object or array: skip it */
            int depth = 0;
            while (p < end) {
                if (*p == '"') {
                    int e2 = 0;
                    p = skip_string(p, end, &e2);
                    if (!p)
                        return -1;
                    continue;
                }
                if (*p == '{' || *p == '[')
                    depth++;
                else if (*p == '}' || *p == ']') {
                    if (depth == 0)
                        break;
                    depth--;
                } else if (*p == ',' && depth == 0)
                    break;
                p++;
            }
            /* a non-string "type" would have made the old path say "?" */
            if ((kl == 4 && !memcmp(k0, "type", 4)) || (kl == 10 && !memcmp(k0, "event_type", 10)))
                return -1;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        return -1;
    }
done:
    if (have_type)
        copy_cut(kind, klen, type, strlen(type));
    else if (have_etype)
        copy_cut(kind, klen, etype, strlen(etype));
    else
        copy_cut(kind, klen, "?", 1);
    return 0;
}


/* ---- plain frames ------------------------------------------------------ */

/* The validation half of a parse, for the conservative subset of JSON that
 * needs no decoding: objects, arrays and strings of printable ASCII without
 * escapes.  Anything else (numbers, literals, escapes, other bytes, deeper
 * than PLAIN_DEPTH) is "cannot tell", never "invalid": the caller then
 * parses.  A frame a scenario writes (send_frame) may be any text, and a
 * 64 KiB one took 2 M instructions to parse only to learn its "type". */
#define PLAIN_DEPTH 32

/* The mask (as zero_bytes()) of the bytes at p plain_string() must look
 * at: below 0x20, 0x7F and above, '"' and '\\'. */
static inline uint64_t unprintable8(const char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t x = load8(p);
    return (x & highs) | ((x - ones * 0x20) & ~x & highs) | zero_bytes(x ^ (ones * '"')) |
           zero_bytes(x ^ (ones * '\\')) | zero_bytes(x ^ (ones * 0x7f));
}

static const char *plain_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (SWAR8 && end - p >= 8) {
            uint64_t m = unprintable8(p);
            if (!m) {
                p += 7; /* and the loop's p++ */
                continue;
            }
            p += first_set(m);
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20 || c >= 0x7f || c == '\\')
            return NULL;
    }
    return NULL;
}

static const char *plain_value(const char *p, const char *end, int depth)
{
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return plain_string(p, end);
    if ((*p != '{' && *p != '[') || depth >= PLAIN_DEPTH)
        return NULL;
    char close = *p == '{' ? '}' : ']';
    p = skip_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            if (p >= end || *p != '"' || !(p = plain_string(p, end)))
                return NULL;
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p++;
        }
        if (!(p = plain_value(p, end, depth + 1)))
            return NULL;
        p = skip_ws(p, end);
        if (p >= end)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1, end);
    }
}

int sim_frame_plain(const char *data, size_t len)
{
    const char *end = data + len, *p = skip_ws(data, end);
    if (p >= end || *p != '{' || !(p = plain_value(p, end, 0)))
        return 0;
    return skip_ws(p, end) == end;
}
