/*
 * hp_alloc.h - a per-thread cache of freed malloc blocks, installed as
 * jansson's and SQLite's allocator in the programs that run the simulator.
 *
 * The simulator builds and drops a JSON tree for every message, trace
 * entry and history record, and SQLite allocates for every statement it
 * steps: over a million small malloc/free pairs per suite run, of which
 * glibc's tcache (7 blocks per size) absorbs only the steady part; the rest
 * goes through the arena's bins.  This cache keeps more freed blocks per
 * size, in the thread that freed them, and hands them out again.
 *
 * Every block it hands out is a genuine malloc() block, and every block
 * given back may be any malloc() block: jansson frees with its free
 * function memory that was malloc()'d, and our code frees json_dumps()'
 * strings with plain free().  So:
 *   - hp_alloc_free(p) files p by malloc_usable_size(p) under the largest
 *     size class it covers, in a LIFO list of the calling thread (the first
 *     word of the free block links the list); a block too large or too
 *     small for the classes, a full cache and a thread that is exiting go
 *     straight to free();
 *   - hp_alloc_malloc(n) pops a block of the smallest class covering n,
 *     else calls malloc(n);
 *   - free() of a block hp_alloc_malloc() returned is valid, and a block
 *     allocated on one thread may be given back on another (--jobs,
 *     explore workers): it joins that thread's cache, and glibc copes with
 *     the eventual cross-thread free().
 * Each thread's cache is bounded (HP_ALLOC_BYTES_MAX) and emptied when
 * the thread exits (a pthread key destructor) or, for the thread that
 * calls exit(), by an atexit handler; nothing is left for LeakSanitizer.
 *
 * hp_alloc_install() is called once at the top of hp-harness' and
 * hp-bench's main(), before any thread or SQLite call.  It keeps the
 * system allocator (installs nothing) in ASan builds, so the sanitizer
 * sees every allocation and every use after free, and when the environment
 * says HP_SIM_MALLOC=system (e.g. for valgrind --tool=memcheck).  The real
 * programs (hp-fake-server, hp-fake-client) do not call it.
 *
 * Thread safety: the cache is thread-local; the functions need no lock.
 * hp_alloc_install() must run before other threads exist.
 */
#ifndef HP_ALLOC_H
#define HP_ALLOC_H

#include <stddef.h>

/* Size classes: usable sizes HP_ALLOC_MIN + k * HP_ALLOC_STEP, k = 0 ..
 * HP_ALLOC_CLASSES - 1 (glibc on 64 bits: 24, 40, 56, ... the usable sizes
 * of its chunks).  Larger blocks are never cached. */
#define HP_ALLOC_MIN 24
#define HP_ALLOC_STEP 16
#define HP_ALLOC_CLASSES 64
#define HP_ALLOC_MAX (HP_ALLOC_MIN + (HP_ALLOC_CLASSES - 1) * HP_ALLOC_STEP)
/* Per thread: bytes kept in all (the classes' sizes).  The simulator
 * frees a whole world's trees at once, tens of thousands of small blocks:
 * with a limit of 512 blocks per class a quarter of the frees overflowed
 * to free() and as many mallocs missed; 4 MiB overflows only in explore's
 * largest worlds, and the peak resident memory of hp-bench stays the same
 * (glibc would keep these blocks in its bins instead). */
#define HP_ALLOC_BYTES_MAX (4u << 20)

/* Install the cache as jansson's (json_set_alloc_funcs) and SQLite's
 * (SQLITE_CONFIG_MALLOC) allocator, and turn off SQLite's memory
 * statistics (a global mutex per allocation; nothing here reads them) and
 * its per-connection mutexes (SQLITE_CONFIG_MULTITHREAD: the simulator
 * never uses one connection from two threads at once; the real programs,
 * which do not call this, keep SQLite's serialized mode).  The SQLite
 * settings are made in every mode, ASan and HP_SIM_MALLOC=system too.
 * Returns 1 when the cache is installed, 0 when the system allocator is
 * kept (sanitizer build, HP_SIM_MALLOC=system, or SQLite already
 * initialized: then neither library is changed).  Any other value of
 * HP_SIM_MALLOC than "system" or "cache" is an error: a message on stderr
 * and -1, nothing installed. */
int hp_alloc_install(void);

/* The allocator itself (what hp_alloc_install() installs; usable directly,
 * e.g. by tests, in any build).  hp_alloc_malloc() returns NULL only when
 * malloc() does; hp_alloc_free(NULL) does nothing. */
void *hp_alloc_malloc(size_t n);
void hp_alloc_free(void *p);

/* Blocks held by the calling thread's cache, and (bytes, if not NULL) the
 * sum of their classes' sizes (tests). */
size_t hp_alloc_cached(size_t *bytes);
/* free() every block the calling thread's cache holds; the cache stays
 * usable. */
void hp_alloc_release(void);

#endif
