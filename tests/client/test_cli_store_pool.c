/*
 * test_cli_store_pool.c - a ":memory:" store opened after others were
 * closed (its connection emptied and reused, its key kept: hp_memdb.h,
 * cli_keypool.h) is indistinguishable from a fresh one in everything the
 * core can read, and draws the same nonces; the key pool hands out only
 * the key asked for and is bounded.
 */
#define _GNU_SOURCE
#include "cli_fx.h"
#include "cli_internal.h"
#include "cli_keypool.h"

static int never_pinned(void *ud, const char *id)
{
    (void)ud;
    (void)id;
    return 0;
}

/* Everything the store's interface shows, as one JSON value. */
static json_t *observe(cli_store *st)
{
    json_t *o = json_object();
    cli_store_open_info in = cli_store_info(st);
    json_object_set_new(o, "mismatch", json_integer(in.key_mismatch));
    json_object_set_new(o, "quarantined", json_integer(in.quarantined));
    json_object_set_new(o, "restored", json_integer(in.restored));
    json_object_set_new(o, "applied", json_integer(cli_store_applied_revision(st)));
    json_object_set_new(o, "queue_count", json_integer(cli_store_queue_count(st)));
    json_object_set_new(o, "quarantine", json_integer(cli_store_quarantine_count(st)));
    json_object_set_new(o, "dead", cli_store_dead_list(st));
    json_object_set_new(o, "cache", cli_store_cache_info(st));
    json_object_set_new(o, "bytes", json_integer(cli_store_cache_bytes(st)));
    json_object_set_new(o, "expiry", json_integer(cli_store_cache_next_expiry(st, 1000, never_pinned, NULL)));
    cli_item *items = NULL;
    int n = 0;
    assert_int_equal(cli_store_queue_load(st, &items, &n), 0);
    json_t *q = json_array();
    for (int i = 0; i < n; i++) {
        json_t *it = json_pack("{sI ss ss ss sI si si sI}", "seq", (json_int_t)items[i].seq,
                               "mid", items[i].mutation_id, "op", items[i].op, "eid",
                               items[i].entity_id, "base_rev", (json_int_t)items[i].base_revision,
                               "attempts", items[i].attempts, "sent", items[i].sent, "created",
                               (json_int_t)items[i].created_at);
        json_object_set(it, "snapshot", items[i].snapshot ? items[i].snapshot : json_null());
        json_object_set(it, "base", items[i].base ? items[i].base : json_null());
        json_array_append_new(q, it);
        cli_item_clear(&items[i]);
    }
    free(items);
    json_object_set_new(o, "queue", q);
    return o;
}

static void item(cli_item *it, const char *mid, const char *eid, json_t *snap)
{
    memset(it, 0, sizeof *it);
    snprintf(it->mutation_id, sizeof it->mutation_id, "%s", mid);
    snprintf(it->op, sizeof it->op, "put");
    snprintf(it->entity_id, sizeof it->entity_id, "%s", eid);
    it->base_revision = 3;
    it->snapshot = snap;
    it->created_at = 1800000000000LL;
}

/* Opens a ":memory:" store with keybyte's key and a PRNG seeded 42, fills
 * every table (the seqs, the dead letter, the cache), and returns what
 * could be read after the open and after each step. */
static json_t *script(uint8_t keybyte, hp_rng *rng_out)
{
    fx *f = fx_env_new(NULL, keybyte); /* the fixture's clock, PRNG and log; no core */
    char err[200];
    cli_store *st = cli_store_open(":memory:", f->key, &f->env, NULL, err, sizeof err);
    assert_non_null(st);
    json_t *r = json_array();
    json_array_append_new(r, observe(st));
    assert_int_equal(cli_store_set_applied_revision(st, 17), 0);
    cli_item a, b;
    item(&a, "m-1", "t1", fx_task_json("t1", "One", 3));
    item(&b, "m-2", "t2", fx_task_json("t2", "Two", 4));
    assert_int_equal(cli_store_queue_push(st, &a), 0);
    assert_int_equal(cli_store_queue_push(st, &b), 0);
    a.attempts = 2;
    assert_int_equal(cli_store_queue_update(st, &a), 0);
    assert_int_equal(cli_store_dead_push(st, &b, 400, "400 bad_request"), 0);
    assert_int_equal(cli_store_queue_remove(st, b.seq), 0);
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "c%d", i);
        json_t *t = fx_task_json(id, "Cached", 10 + i);
        assert_int_equal(cli_store_cache_put(st, id, t), 0);
        json_decref(t);
        f->t += 10;
    }
    json_t *g = cli_store_cache_get(st, "c1");
    assert_non_null(g);
    json_decref(g);
    json_array_append_new(r, observe(st));
    cli_item_clear(&a);
    cli_item_clear(&b);
    /* What a core starting on it reads and shows. */
    cli_core *c = cli_new(&f->env, &f->pol, st, TOK_ALICE);
    assert_non_null(c);
    json_array_append_new(r, cli_status(c));
    cli_free(c);
    json_array_append_new(r, json_integer(f->nlog));
    cli_store_close(st); /* rows left in every table */
    *rng_out = f->rng;
    free(f);
    return r;
}

/* A reused store reads as the first, fresh one did, and seals with the
 * same nonces (the PRNG ends in the same state). */
static void test_reuse_is_fresh(void **s)
{
    (void)s;
    hp_rng r1, r2, r3;
    json_t *fresh = script(7, &r1);
    json_t *again = script(7, &r2);
    json_t *other = script(9, &r3); /* another key over a reused connection */
    char *a = json_dumps(fresh, JSON_SORT_KEYS), *b = json_dumps(again, JSON_SORT_KEYS);
    assert_string_equal(a, b);
    assert_memory_equal(&r1, &r2, sizeof r1);
    /* The key does not change what is readable, nor the draws. */
    char *c = json_dumps(other, JSON_SORT_KEYS);
    assert_string_equal(a, c);
    assert_memory_equal(&r1, &r3, sizeof r1);
    /* The first open read no key check and a fresh store has none wrong. */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(fresh, 0), "mismatch")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(again, 1), "queue_count")), 1);
    free(a);
    free(b);
    free(c);
    json_decref(fresh);
    json_decref(again);
    json_decref(other);
}

static uint8_t *seal_with(cli_key *k, const char *text, size_t *n)
{
    hp_rng rng;
    hp_rng_seed(&rng, 5);
    hp_env env = {0};
    env.rng = &rng;
    uint8_t *out = NULL;
    assert_int_equal(cli_seal(k, &env, "aad", text, strlen(text), &out, n), 0);
    return out;
}

/* A kept key is handed out for its own bytes only, seals as a new key of
 * those bytes does, and the pool holds a bounded number. */
static void test_keypool(void **s)
{
    (void)s;
    uint8_t ka[32], kb[32];
    memset(ka, 1, 32);
    memset(kb, 2, 32);
    cli_key *fresh_a = cli_key_new(ka);
    size_t n0 = 0, n1 = 0, nb = 0;
    uint8_t *ref = seal_with(fresh_a, "hello", &n0);

    cli_key *a = cli_keypool_take(ka);
    uint8_t *x = seal_with(a, "hello", &n1); /* builds its contexts */
    free(x);
    cli_keypool_give(a, ka);
    cli_key *b = cli_keypool_take(kb);
    assert_ptr_not_equal(a, b);
    char *pt = NULL;
    assert_int_equal(cli_open(b, "aad", ref, n0, &pt, NULL), -1); /* B cannot open A's */
    uint8_t *bb = seal_with(b, "hello", &nb);
    cli_keypool_give(b, kb);

    cli_key *a2 = cli_keypool_take(ka);
    assert_ptr_equal(a2, a); /* kept, contexts and all */
    uint8_t *y = seal_with(a2, "hello", &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(y, ref, n0); /* byte for byte a new key's seal */
    assert_int_equal(cli_open(a2, "aad", ref, n0, &pt, NULL), 0);
    assert_string_equal(pt, "hello");
    free(pt);
    assert_int_equal(cli_open(a2, "aad", bb, nb, &pt, NULL), -1);
    cli_keypool_give(a2, ka);

    /* Bounded: 40 distinct keys given, the oldest are freed (ASan/LSan:
     * no leak), and any key still comes out right. */
    for (int i = 0; i < 40; i++) {
        uint8_t k[32];
        memset(k, 100 + i, 32);
        cli_keypool_give(cli_key_new(k), k);
    }
    cli_key *a3 = cli_keypool_take(ka); /* long dropped: a new one */
    assert_int_equal(cli_open(a3, "aad", ref, n0, &pt, NULL), 0);
    free(pt);
    cli_key_free(a3);
    cli_keypool_clear();
    cli_key_free(fresh_a);
    free(ref);
    free(y);
    free(bb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_is_fresh),
        cmocka_unit_test(test_keypool),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cli_keypool_clear();
    return rc;
}
