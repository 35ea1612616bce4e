/*
 * fp_journal.c - a bounded ring of journal entries (see fp_journal.h).
 */
#define _GNU_SOURCE
#include "fp_journal.h"

#include <stdlib.h>
#include <string.h>

typedef struct fpj_entry {
    json_t *j;
    char *client;
    char *sub;
    uint64_t conn;
    uint64_t seq;
    size_t bytes;
} fpj_entry;

struct fp_journal {
    fpj_entry *ring;           /* max_entries slots */
    size_t max_entries, max_bytes;
    size_t head, count;        /* oldest at head */
    size_t bytes;
    uint64_t next_seq;
    uint64_t dropped;
};

fp_journal *fpj_new(size_t max_entries, size_t max_bytes)
{
    fp_journal *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->ring = calloc(max_entries ? max_entries : 1, sizeof *j->ring);
    if (!j->ring) {
        free(j);
        return NULL;
    }
    j->max_entries = max_entries ? max_entries : 1;
    j->max_bytes = max_bytes ? max_bytes : 1;
    j->next_seq = 1;
    return j;
}

static void drop_oldest(fp_journal *j)
{
    fpj_entry *e = &j->ring[j->head];
    j->bytes -= e->bytes;
    json_decref(e->j);
    free(e->client);
    free(e->sub);
    memset(e, 0, sizeof *e);
    j->head = (j->head + 1) % j->max_entries;
    j->count--;
}

void fpj_clear(fp_journal *j)
{
    while (j->count)
        drop_oldest(j);
}

void fpj_free(fp_journal *j)
{
    if (!j)
        return;
    fpj_clear(j);
    free(j->ring);
    free(j);
}

uint64_t fpj_add(fp_journal *j, int64_t now_ms, const char *client, const char *sub,
                 uint64_t conn, json_t *entry)
{
    uint64_t seq = j->next_seq++;
    /* seq and t_ms first, so a reader sees them at the front of the object. */
    json_t *e = json_object();
    json_object_set_new(e, "seq", json_integer((json_int_t)seq));
    json_object_set_new(e, "t_ms", json_integer(now_ms));
    json_object_set_new(e, "client", client && *client ? json_string(client) : json_null());
    if (conn)
        json_object_set_new(e, "conn", json_integer((json_int_t)conn));
    if (sub)
        json_object_set_new(e, "sub", json_string(sub));
    json_object_update(e, entry);
    json_decref(entry);
    char *s = json_dumps(e, JSON_COMPACT);
    size_t bytes = s ? strlen(s) : 0;
    free(s);
    while (j->count && (j->count >= j->max_entries || j->bytes + bytes > j->max_bytes)) {
        drop_oldest(j);
        j->dropped++;
    }
    fpj_entry *slot = &j->ring[(j->head + j->count) % j->max_entries];
    slot->j = e;
    slot->client = strdup(client ? client : "");
    slot->sub = sub ? strdup(sub) : NULL;
    slot->conn = conn;
    slot->seq = seq;
    slot->bytes = bytes;
    j->bytes += bytes;
    j->count++;
    return seq;
}

json_t *fpj_query(const fp_journal *j, const fpj_filter *f)
{
    json_t *arr = json_array();
    uint64_t next = f->since;
    int more = 0;
    for (size_t i = 0; i < j->count; i++) {
        const fpj_entry *e = &j->ring[(j->head + i) % j->max_entries];
        if (e->seq <= f->since)
            continue;
        if (f->client && strcmp(f->client, e->client ? e->client : "") != 0)
            continue;
        if (f->sub && (!e->sub || strcmp(f->sub, e->sub) != 0))
            continue;
        if (f->conn && f->conn != e->conn)
            continue;
        if (json_array_size(arr) >= f->limit) {
            more = 1;
            break;
        }
        json_array_append(arr, e->j);
        next = e->seq;
    }
    json_t *o = json_object();
    json_object_set_new(o, "entries", arr);
    json_object_set_new(o, "next", json_integer((json_int_t)next));
    json_object_set_new(o, "more", json_boolean(more));
    json_object_set_new(o, "dropped", json_integer((json_int_t)j->dropped));
    json_object_set_new(o, "first_seq",
                        json_integer(j->count ? (json_int_t)j->ring[j->head].seq : 0));
    json_object_set_new(o, "last_seq", json_integer((json_int_t)(j->next_seq - 1)));
    return o;
}

uint64_t fpj_dropped(const fp_journal *j) { return j->dropped; }
size_t fpj_count(const fp_journal *j) { return j->count; }
size_t fpj_bytes(const fp_journal *j) { return j->bytes; }
