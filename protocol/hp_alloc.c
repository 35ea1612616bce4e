/*
 * hp_alloc.c - the per-thread block cache (hp_alloc.h).
 */
#include "hp_alloc.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ASan must see every malloc and free to find leaks and uses after free:
 * a cached block would be "in use" to it.  gcc says so with
 * __SANITIZE_ADDRESS__, clang with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define HP_ALLOC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HP_ALLOC_SANITIZED 1
#endif
#endif
#ifndef HP_ALLOC_SANITIZED
#define HP_ALLOC_SANITIZED 0
#endif

/*
 * The usable size of a block, which files it under its class, is asked on
 * every free (700,000 a suite run): malloc_usable_size() is a call into
 * libc of ~14 instructions, a third of a cached free.  glibc keeps it in
 * the word before the block (the chunk header: its size, low three bits
 * flags, of which 2 means mmap()ed), and on x86-64, which has no memory
 * tagging, malloc_usable_size() of an in-use chunk not mmap()ed is that
 * size less the header word.  The header is read only when
 * hp_alloc_install() has checked, for every size up to the classes' and
 * one mmap()ed block, that it gives what malloc_usable_size() gives (so a
 * malloc of another layout, e.g. preloaded, keeps the libc call); mmap()ed
 * blocks are far larger than any class and go to free().
 */
#if !HP_ALLOC_SANITIZED && defined(__GLIBC__) && defined(__x86_64__)
#define HP_ALLOC_HEADER 1
#else
#define HP_ALLOC_HEADER 0
#endif
static int header_ok; /* set once, by hp_alloc_install(), before threads */

static inline size_t chunk_word(const void *p)
{
    size_t h;
    memcpy(&h, (const char *)p - sizeof h, sizeof h);
    return h;
}

static inline size_t usable_size(void *p)
{
    if (HP_ALLOC_HEADER && header_ok) {
        size_t h = chunk_word(p);
        return (h & 2) ? SIZE_MAX : (h & ~(size_t)7) - sizeof h;
    }
    return malloc_usable_size(p);
}

/* p, with gcc no longer knowing it came from malloc(n): reading the
 * word before a block it knows the bounds of is an -Warray-bounds error. */
static void *opaque(void *p)
{
    __asm__("" : "+r"(p));
    return p;
}

/* 1 when the header gives malloc_usable_size() for every block size the
 * classes hold, around them, and for an mmap()ed block. */
static int header_check(void)
{
    if (!HP_ALLOC_HEADER)
        return 0;
    for (size_t n = 0; n <= HP_ALLOC_MAX + 4 * HP_ALLOC_STEP; n += 97) {
        void *p = opaque(malloc(n));
        if (!p)
            return 0;
        size_t h = chunk_word(p);
        int ok = !(h & 2) && (h & ~(size_t)7) - sizeof h == malloc_usable_size(p);
        free(p);
        if (!ok)
            return 0;
    }
    size_t big = (size_t)64 << 20; /* above any mmap threshold glibc uses */
    void *p = opaque(malloc(big));
    if (!p)
        return 0;
    int ok = (chunk_word(p) & 2) != 0 && malloc_usable_size(p) > HP_ALLOC_MAX;
    free(p);
    return ok;
}

enum { TC_FRESH, TC_LIVE, TC_DEAD };

/* No per-class block count: only hp_alloc_cached() (tests) wants one,
 * and it walks the lists; keeping it cost a memory update per call on
 * both hot paths. */
typedef struct tcache {
    void *head[HP_ALLOC_CLASSES];  /* LIFO of free blocks; next = first word */
    size_t bytes;                  /* sum of the classes' nominal sizes */
    int state;                     /* TC_FRESH: no destructor registered yet;
                                      TC_DEAD: exiting, cache nothing more */
} tcache;

static __thread tcache tc;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static int tc_key_ok;

static size_t class_size(size_t c)
{
    return HP_ALLOC_MIN + c * HP_ALLOC_STEP;
}

static void drain(tcache *t)
{
    for (size_t c = 0; c < HP_ALLOC_CLASSES; c++) {
        void *p = t->head[c];
        while (p) {
            void *next = *(void **)p;
            free(p);
            p = next;
        }
        t->head[c] = NULL;
    }
    t->bytes = 0;
}

/* Thread exit: give everything back, and cache nothing from the frees
 * that later destructors of this thread may still make. */
static void tc_destroy(void *arg)
{
    tcache *t = arg;
    drain(t);
    t->state = TC_DEAD;
}

static void make_key(void)
{
    tc_key_ok = pthread_key_create(&tc_key, tc_destroy) == 0;
}

/* The first block this thread caches registers the destructor; without
 * one (no key) the thread caches nothing rather than leak at its exit. */
static int tc_register(void)
{
    pthread_once(&tc_once, make_key);
    if (!tc_key_ok || pthread_setspecific(tc_key, &tc) != 0) {
        tc.state = TC_DEAD;
        return 0;
    }
    tc.state = TC_LIVE;
    return 1;
}

void *hp_alloc_malloc(size_t n)
{
    if (n <= HP_ALLOC_MAX) {
        /* The smallest class whose blocks all hold n bytes. */
        size_t c = n <= HP_ALLOC_MIN ? 0 : (n - HP_ALLOC_MIN + HP_ALLOC_STEP - 1) / HP_ALLOC_STEP;
        void *p = tc.head[c];
        if (p) {
            tc.head[c] = *(void **)p;
            tc.bytes -= class_size(c);
            return p;
        }
    }
    return malloc(n);
}

/* The rare cases of hp_alloc_free(): class c (of size sz) was chosen but
 * the thread is new (register it first), exiting, or its cache full. */
static void free_slow(void *p, size_t c, size_t sz)
{
    if (tc.state == TC_DEAD || tc.bytes + sz > HP_ALLOC_BYTES_MAX ||
        (tc.state == TC_FRESH && !tc_register())) {
        free(p);
        return;
    }
    *(void **)p = tc.head[c];
    tc.head[c] = p;
    tc.bytes += sz;
}

void hp_alloc_free(void *p)
{
    if (!p)
        return;
    /* The largest class the usable size covers: a block of this class
     * must hold any request the class is handed out for.  A size below
     * HP_ALLOC_MIN wraps to a huge c: one test refuses both ends. */
    size_t c = (usable_size(p) - HP_ALLOC_MIN) / HP_ALLOC_STEP;
    if (c >= HP_ALLOC_CLASSES) {
        free(p);
        return;
    }
    size_t sz = class_size(c);
    if (tc.state != TC_LIVE || tc.bytes + sz > HP_ALLOC_BYTES_MAX) {
        free_slow(p, c, sz);
        return;
    }
    *(void **)p = tc.head[c];
    tc.head[c] = p;
    tc.bytes += sz;
}

size_t hp_alloc_cached(size_t *bytes)
{
    size_t k = 0;
    for (size_t c = 0; c < HP_ALLOC_CLASSES; c++)
        for (void *p = tc.head[c]; p; p = *(void **)p)
            k++;
    if (bytes)
        *bytes = tc.bytes;
    return k;
}

void hp_alloc_release(void)
{
    drain(&tc);
}

/* exit() runs no key destructor for the thread that calls it. */
static void release_at_exit(void)
{
    drain(&tc);
    tc.state = TC_DEAD;
}

/* ---- SQLite's sqlite3_mem_methods ------------------------------------ */

static void *sq_malloc(int n)
{
    return n < 0 ? NULL : hp_alloc_malloc((size_t)n);
}

static void sq_free(void *p)
{
    hp_alloc_free(p);
}

/* Blocks are genuine malloc blocks: realloc() may move or resize any. */
static void *sq_realloc(void *p, int n)
{
    return n < 0 ? NULL : realloc(p, (size_t)n);
}

static int sq_size(void *p)
{
    return p ? (int)malloc_usable_size(p) : 0;
}

/* What hp_alloc_malloc(n) will at least provide: SQLite may use the slack
 * (and skips a realloc() that stays within it). */
static int sq_roundup(int n)
{
    if (n <= HP_ALLOC_MIN)
        return HP_ALLOC_MIN;
    if (n <= HP_ALLOC_MAX)
        return (int)class_size(((size_t)n - HP_ALLOC_MIN + HP_ALLOC_STEP - 1) / HP_ALLOC_STEP);
    return (n + 7) & ~7;
}

static int sq_init(void *app)
{
    (void)app;
    return SQLITE_OK;
}

static void sq_shutdown(void *app)
{
    (void)app;
}

static const sqlite3_mem_methods sq_methods = {
    sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL,
};

int hp_alloc_install(void)
{
    const char *env = getenv("HP_SIM_MALLOC");
    if (env && strcmp(env, "system") != 0 && strcmp(env, "cache") != 0) {
        fprintf(stderr, "HP_SIM_MALLOC: '%s' is neither 'system' nor 'cache'\n", env);
        return -1;
    }
    /* Memory statistics cost SQLite a global mutex per allocation, in
     * either mode; nothing here reads them (sqlite3_memory_used). */
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        return 0; /* already initialized: too late for any setting */
    /* Each connection of the simulator is used by one thread at a time
     * (a world's stores by its thread; hp_memdb.h hands pooled ones over
     * under its mutex), so the per-connection mutex of SQLite's default
     * serialized mode only costs a lock per API call.  The core mutexes
     * stay.  Failure (a single-thread build) changes nothing. */
    (void)sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    if (HP_ALLOC_SANITIZED || (env && strcmp(env, "system") == 0))
        return 0;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_methods) != SQLITE_OK)
        return 0;
    header_ok = header_check();
    json_set_alloc_funcs(hp_alloc_malloc, hp_alloc_free);
    atexit(release_at_exit);
    return 1;
}
