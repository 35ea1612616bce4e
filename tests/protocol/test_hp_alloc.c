/* Unit tests for protocol/hp_alloc.c: the per-thread block cache.  Sizes
 * whose reuse is asserted are class sizes (24 + 16 k): under ASan
 * malloc_usable_size() is the size asked for, not glibc's rounded one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <pthread.h>
#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "hp_alloc.h"

#define CLASS(k) ((size_t)HP_ALLOC_MIN + (size_t)(k) * HP_ALLOC_STEP)

static void test_reuse_lifo(void **st)
{
    (void)st;
    hp_alloc_release();
    char *a = hp_alloc_malloc(CLASS(1));
    char *b = hp_alloc_malloc(CLASS(1));
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 'a', CLASS(1));
    memset(b, 'b', CLASS(1));
    hp_alloc_free(a);
    hp_alloc_free(b);
    size_t bytes = 0;
    assert_int_equal(hp_alloc_cached(&bytes), 2);
    assert_int_equal(bytes, 2 * CLASS(1));
    /* Any request the class covers gets its blocks, the last freed first. */
    assert_ptr_equal(hp_alloc_malloc(CLASS(0) + 1), b);
    assert_ptr_equal(hp_alloc_malloc(CLASS(1)), a);
    assert_int_equal(hp_alloc_cached(NULL), 0);
    /* A handed-out block is a malloc block: plain free() and realloc(). */
    free(b);
    a = realloc(a, 5000);
    assert_non_null(a);
    free(a);
    hp_alloc_free(NULL);
    assert_int_equal(hp_alloc_cached(NULL), 0);
}

static void test_any_malloc_block(void **st)
{
    (void)st;
    hp_alloc_release();
    /* Blocks from malloc(), strdup() and realloc() are accepted, under the
     * largest class they cover, and served to requests that fit. */
    char *s = strdup("a string json_dumps() might have made");
    assert_non_null(s);
    hp_alloc_free(s);
    char *m = malloc(CLASS(3));
    hp_alloc_free(m);
    assert_int_equal(hp_alloc_cached(NULL), 2);
    char *p = hp_alloc_malloc(CLASS(3));
    assert_ptr_equal(p, m);
    memset(p, 0, CLASS(3));
    hp_alloc_free(p);
    hp_alloc_release();
    assert_int_equal(hp_alloc_cached(NULL), 0);
}

static void test_large_and_tiny_bypass(void **st)
{
    (void)st;
    hp_alloc_release();
    void *big = hp_alloc_malloc(HP_ALLOC_MAX + HP_ALLOC_STEP);
    void *huge = hp_alloc_malloc(1u << 20);
    assert_non_null(big);
    assert_non_null(huge);
    memset(huge, 1, 1u << 20);
    hp_alloc_free(big);
    hp_alloc_free(huge);
    assert_int_equal(hp_alloc_cached(NULL), 0);
    /* malloc(0) and malloc(1) still give a usable block, from class 0. */
    void *z = hp_alloc_malloc(0);
    assert_non_null(z);
    hp_alloc_free(z);
    hp_alloc_release();
    void *top = malloc(HP_ALLOC_MAX);
    hp_alloc_free(top);
    assert_int_equal(hp_alloc_cached(NULL), 1);
    assert_ptr_equal(hp_alloc_malloc(HP_ALLOC_MAX), top);
    free(top);
}

static void test_bounds(void **st)
{
    (void)st;
    hp_alloc_release();
    /* The cache holds at most HP_ALLOC_BYTES_MAX bytes: the largest class
     * fills it, then even the smallest blocks go to free(). */
    size_t n = HP_ALLOC_BYTES_MAX / HP_ALLOC_MAX + 100;
    void **v = calloc(n, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = malloc(HP_ALLOC_MAX);
    for (size_t i = 0; i < n; i++)
        hp_alloc_free(v[i]);
    size_t bytes = 0;
    size_t k = hp_alloc_cached(&bytes);
    assert_int_equal(k, HP_ALLOC_BYTES_MAX / HP_ALLOC_MAX);
    assert_int_equal(bytes, k * HP_ALLOC_MAX);
    for (size_t i = 0; i < n; i++)
        v[i] = malloc(CLASS(0));
    for (size_t i = 0; i < n; i++)
        hp_alloc_free(v[i]);
    size_t k2 = hp_alloc_cached(&bytes);
    assert_true(bytes <= HP_ALLOC_BYTES_MAX);
    assert_true(bytes + CLASS(0) > HP_ALLOC_BYTES_MAX);
    assert_int_equal(k2, k + (HP_ALLOC_BYTES_MAX - k * HP_ALLOC_MAX) / CLASS(0));
    free(v);
    hp_alloc_release();
    assert_int_equal(hp_alloc_cached(&bytes), 0);
    assert_int_equal(bytes, 0);
}

/* ---- threads: blocks made on one, given back on another ------------- */

enum { XN = 200 };

typedef struct xfer {
    void *blocks[XN];
    size_t cached_in_thread;
} xfer;

static void *give_back(void *arg)
{
    xfer *x = arg;
    for (int i = 0; i < XN; i++)
        hp_alloc_free(x->blocks[i]);
    x->cached_in_thread = hp_alloc_cached(NULL);
    /* Some go out again from this thread's cache, to be freed by main. */
    for (int i = 0; i < XN / 2; i++)
        x->blocks[i] = hp_alloc_malloc(CLASS(i % 8));
    return NULL; /* the rest: the thread's key destructor frees them */
}

static void *make_blocks(void *arg)
{
    xfer *x = arg;
    for (int i = 0; i < XN; i++) {
        x->blocks[i] = hp_alloc_malloc(CLASS(i % 8));
        memset(x->blocks[i], i, CLASS(i % 8));
    }
    return NULL;
}

static void test_cross_thread(void **st)
{
    (void)st;
    hp_alloc_release();
    xfer x;
    memset(&x, 0, sizeof x);
    pthread_t t;
    /* Made on a thread, given back on another (its cache), some of those
     * handed out again and freed on main, by both free functions. */
    assert_int_equal(pthread_create(&t, NULL, make_blocks, &x), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(pthread_create(&t, NULL, give_back, &x), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(x.cached_in_thread, XN);
    assert_int_equal(hp_alloc_cached(NULL), 0); /* main's cache: untouched */
    for (int i = 0; i < XN / 2; i++) {
        memset(x.blocks[i], 7, CLASS(i % 8));
        if (i % 2)
            free(x.blocks[i]);
        else
            hp_alloc_free(x.blocks[i]);
    }
    assert_int_equal(hp_alloc_cached(NULL), XN / 4);
    hp_alloc_release();
    /* Many threads at once (the --jobs pool), each exiting with a full
     * cache: LeakSanitizer (ASan build) finds any block left behind. */
    pthread_t ts[4];
    xfer xs[4];
    for (int j = 0; j < 4; j++) {
        memset(&xs[j], 0, sizeof xs[j]);
        for (int i = 0; i < XN; i++)
            xs[j].blocks[i] = malloc(CLASS(i % 8));
        assert_int_equal(pthread_create(&ts[j], NULL, give_back, &xs[j]), 0);
    }
    for (int j = 0; j < 4; j++) {
        assert_int_equal(pthread_join(ts[j], NULL), 0);
        for (int i = 0; i < XN / 2; i++)
            free(xs[j].blocks[i]);
    }
}

/* ---- installed: jansson and SQLite through the cache ---------------- */

static void test_install(void **st)
{
    (void)st;
    setenv("HP_SIM_MALLOC", "fast", 1);
    assert_int_equal(hp_alloc_install(), -1);
    unsetenv("HP_SIM_MALLOC");
    int rc = hp_alloc_install();
    assert_true(rc == 0 || rc == 1);
    json_malloc_t m = NULL;
    json_free_t f = NULL;
    json_get_alloc_funcs(&m, &f);
    if (rc == 1) {
        assert_ptr_equal(m, hp_alloc_malloc);
        assert_ptr_equal(f, hp_alloc_free);
    }

    /* jansson: trees made and dropped; json_dumps() text freed by free(). */
    for (int i = 0; i < 100; i++) {
        json_t *o = json_pack("{s:i, s:s, s:[i,i,i]}", "n", i, "s", "text", "a", 1, 2, 3);
        assert_non_null(o);
        char *txt = json_dumps(o, JSON_COMPACT);
        assert_non_null(txt);
        assert_non_null(strstr(txt, "\"s\":\"text\""));
        free(txt);
        json_decref(o);
    }

    /* SQLite: rows growing through realloc (a blob appended to), read back. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)", NULL, NULL,
                                  NULL), SQLITE_OK);
    for (int i = 0; i < 50; i++) {
        char *sql = sqlite3_mprintf("INSERT INTO t(k, v) VALUES(%d, printf('%%.*c', %d, 'x'))",
                                    i, 10 + i * 97);
        assert_non_null(sql);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_free(sql);
    }
    char *big = sqlite3_malloc(10);
    assert_non_null(big);
    for (int n = 20; n < 100000; n *= 3) {
        big = sqlite3_realloc(big, n);
        assert_non_null(big);
        memset(big, 'y', (size_t)n);
        assert_true(sqlite3_msize(big) >= (sqlite3_uint64)n);
    }
    sqlite3_free(big);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sum(length(v)) FROM t", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    long long want = 0;
    for (int i = 0; i < 50; i++)
        want += 10 + i * 97;
    assert_int_equal(sqlite3_column_int64(q, 0), want);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Installed, the free path may read glibc's chunk header instead of
 * calling malloc_usable_size(): every size files under the class
 * malloc_usable_size() gives (or none), as uninstalled. */
static void test_installed_classes(void **st)
{
    (void)st;
    assert_true(hp_alloc_install() >= 0);
    for (size_t n = 0; n < HP_ALLOC_MAX + 100; n++) {
        hp_alloc_release();
        void *p = malloc(n);
        assert_non_null(p);
        size_t u = malloc_usable_size(p);
        size_t want = u < HP_ALLOC_MIN || u >= HP_ALLOC_MAX + HP_ALLOC_STEP
                          ? 0
                          : CLASS((u - HP_ALLOC_MIN) / HP_ALLOC_STEP);
        hp_alloc_free(p);
        size_t bytes = 0;
        assert_int_equal(hp_alloc_cached(&bytes), want ? 1 : 0);
        assert_int_equal(bytes, want);
    }
    void *big = malloc((size_t)1 << 26); /* mmap()ed: never cached */
    assert_non_null(big);
    hp_alloc_free(big);
    assert_int_equal(hp_alloc_cached(NULL), 0);
    hp_alloc_release();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_lifo),
        cmocka_unit_test(test_any_malloc_block),
        cmocka_unit_test(test_large_and_tiny_bypass),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_cross_thread),
        cmocka_unit_test(test_install),
        cmocka_unit_test(test_installed_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
