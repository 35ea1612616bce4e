/*
 * hp_outbox.c - the ordered queue of what a core asks its driver to do.
 *
 * A ring buffer that doubles when full; items keep push order.
 */
#define _GNU_SOURCE
#include "hp_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hp_outbox_init(hp_outbox *ob)
{
    memset(ob, 0, sizeof *ob);
}

/* Frees every item still queued, then the storage. */
void hp_outbox_free(hp_outbox *ob)
{
    if (!ob)
        return;
    hp_out it;
    while (hp_outbox_pop(ob, &it))
        hp_out_clear(&it);
    free(ob->items);
    memset(ob, 0, sizeof *ob);
}

/* Doubles capacity, unrolling the ring so head becomes 0. */
static int grow(hp_outbox *ob)
{
    size_t ncap = ob->cap ? ob->cap * 2 : 16;
    hp_out *n = malloc(ncap * sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < ob->len; i++)
        n[i] = ob->items[(ob->head + i) % ob->cap];
    free(ob->items);
    ob->items = n;
    ob->cap = ncap;
    ob->head = 0;
    return 0;
}

/* On allocation failure the item is freed (ownership moved in) and
 * dropped, with a note on stderr: the cores cannot do anything better. */
void hp_outbox_push(hp_outbox *ob, const hp_out *item)
{
    if (!ob || !item)
        return;
    if (ob->len == ob->cap && grow(ob) != 0) {
        hp_out tmp = *item;
        hp_out_clear(&tmp);
        fputs("hp_outbox: out of memory, item dropped\n", stderr);
        return;
    }
    ob->items[(ob->head + ob->len) % ob->cap] = *item;
    ob->len++;
}

int hp_outbox_pop(hp_outbox *ob, hp_out *out)
{
    if (!ob || ob->len == 0)
        return 0;
    *out = ob->items[ob->head];
    ob->head = (ob->head + 1) % ob->cap;
    ob->len--;
    if (ob->len == 0)
        ob->head = 0;
    return 1;
}

size_t hp_outbox_count(const hp_outbox *ob)
{
    return ob ? ob->len : 0;
}

void hp_out_clear(hp_out *item)
{
    if (!item)
        return;
    free(item->method);
    free(item->path);
    free(item->auth);
    free(item->idem_key);
    free(item->body);
    json_decref(item->info);
    memset(item, 0, sizeof *item);
}

hp_out hp_out_make(hp_out_kind kind, uint64_t id)
{
    hp_out o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.id = id;
    o.retry_after_s = -1;
    return o;
}

char *hp_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}
