/*
 * test_cli_cacheidx.c - the store's in-memory index of its cache rows
 * (cli_cacheidx.h) against a plain list, and the store's answers that come
 * from it (cli_store_cache_bytes, cli_store_cache_revision) against the
 * rows themselves, on ":memory:" and on a file reopened.
 */
#define _GNU_SOURCE
#include "cli_fx.h"
#include "cli_cacheidx.h"
#include <unistd.h>

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* Random sets and deletes over 300 ids (the table grows, wraps, and shifts
 * runs back on delete): every id is found exactly when the list has it. */
static void test_index_matches_list(void **state)
{
    (void)state;
    enum { N = 300 };
    cli_cacheidx x = {0};
    int in[N] = {0};
    int64_t size[N] = {0};
    uint64_t s = 1;
    char id[N][16];
    for (int i = 0; i < N; i++)
        snprintf(id[i], sizeof id[i], "t%d", i);
    for (int step = 0; step < 20000; step++) {
        int i = (int)(lcg(&s) % N);
        if (lcg(&s) % 3) {
            size[i] = (int64_t)(lcg(&s) % 1000);
            assert_int_equal(cli_cacheidx_set(&x, id[i], size[i], i % 2, i), 0);
            in[i] = 1;
        } else {
            cli_cacheidx_del(&x, id[i]);
            in[i] = 0;
        }
        if (step % 97)
            continue;
        size_t n = 0;
        for (int k = 0; k < N; k++) {
            cli_cacheent *e = cli_cacheidx_find(&x, id[k]);
            assert_int_equal(e != NULL, in[k]);
            if (e) {
                assert_string_equal(e->id, id[k]);
                assert_int_equal(e->size, size[k]);
                assert_int_equal(e->has_rev, k % 2);
                n++;
            }
        }
        assert_int_equal(x.n, n);
    }
    char lng[CLI_CACHEIDX_ID_MAX + 2];
    memset(lng, 'a', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    assert_int_equal(cli_cacheidx_set(&x, lng, 1, 0, 0), -1); /* too long: refused */
    assert_null(cli_cacheidx_find(&x, lng));
    cli_cacheidx_clear(&x);
    assert_null(cli_cacheidx_find(&x, "t1"));
    assert_int_equal(cli_cacheidx_set(&x, "t1", 5, 0, 0), 0); /* reused after clear */
    assert_int_equal(cli_cacheidx_find(&x, "t1")->size, 5);
    assert_null(cli_cacheidx_find(&x, "t2"));
    cli_cacheidx_free(&x);
}

/* What the index answers equals what the rows say. */
static void check_store(cli_store *st, int nids, char ids[][8])
{
    json_t *info = cli_store_cache_info(st);
    assert_int_equal(cli_store_cache_bytes(st), json_integer_value(json_object_get(info, "bytes")));
    json_decref(info);
    for (int i = 0; i < nids; i++) {
        int64_t rev = -5;
        int k = cli_store_cache_revision(st, ids[i], &rev);
        json_t *v = cli_store_cache_get(st, ids[i]);
        if (k == 0)
            assert_null(v);
        if (k == 1) {
            assert_non_null(v);
            assert_int_equal(rev, json_integer_value(json_object_get(v, "revision")));
        }
        if (v) {
            /* Read once: now known. */
            assert_int_equal(cli_store_cache_revision(st, ids[i], &rev), 1);
            assert_int_equal(rev, json_integer_value(json_object_get(v, "revision")));
        } else {
            assert_int_equal(cli_store_cache_revision(st, ids[i], &rev), 0);
        }
        json_decref(v);
    }
}

static void run_ops(fx *f, const char *path)
{
    char err[200];
    enum { NIDS = 12 };
    char ids[NIDS][8];
    for (int i = 0; i < NIDS; i++)
        snprintf(ids[i], sizeof ids[i], "c%d", i);
    cli_store *st = cli_store_open(path, f->key, &f->env, NULL, err, sizeof err);
    assert_non_null(st);
    uint64_t s = 7;
    for (int step = 0; step < 400; step++) {
        const char *id = ids[lcg(&s) % NIDS];
        uint64_t op = lcg(&s) % 20;
        f->t += 10;
        if (op < 12) {
            json_t *t = fx_task_json(id, step % 2 ? "A longer title, for another size" : "T",
                                     (int64_t)(lcg(&s) % 50));
            assert_int_equal(cli_store_cache_put(st, id, t), 0);
            json_decref(t);
        } else if (op < 18) {
            assert_int_equal(cli_store_cache_remove(st, id), 0);
        } else if (op < 19) {
            assert_int_equal(cli_store_cache_clear(st), 0);
        } else if (path) {
            cli_store_close(st); /* a restart: nothing known until read */
            st = cli_store_open(path, f->key, &f->env, NULL, err, sizeof err);
            assert_non_null(st);
            int64_t rev;
            for (int i = 0; i < NIDS; i++)
                assert_int_equal(cli_store_cache_revision(st, ids[i], &rev), -1);
        }
        if (step % 7 == 0)
            check_store(st, NIDS, ids);
    }
    check_store(st, NIDS, ids);
    cli_store_close(st);
}

static void test_store_memory(void **state)
{
    (void)state;
    fx *f = fx_env_new(NULL, 3);
    run_ops(f, NULL);
    fx_free(f);
}

static void test_store_file(void **state)
{
    (void)state;
    fx *f = fx_env_new(NULL, 4);
    char path[200], side[220];
    snprintf(path, sizeof path, "/tmp/test_cli_cacheidx_%d.db", (int)getpid());
    run_ops(f, path);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_matches_list),
        cmocka_unit_test(test_store_memory),
        cmocka_unit_test(test_store_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
