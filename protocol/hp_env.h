/*
 * hp_env.h - the environment a sans-I/O core runs in.
 *
 * Cores never call time(), rand() or read globals: the clock, the PRNG and the
 * logger come from here.  The simulator hands a virtual clock; the real
 * programs hand the wall clock.  Both clocks are epoch milliseconds, so
 * token expiry and remind_at instants mean the same thing in both modes.
 */
#ifndef HP_ENV_H
#define HP_ENV_H

#include <stdint.h>
#include "hp_log.h"

/* xoshiro-style 64-bit PRNG state; seeded with hp_rng_seed(). */
typedef struct hp_rng {
    uint64_t s[4];
} hp_rng;

void hp_rng_seed(hp_rng *r, uint64_t seed);
uint64_t hp_rng_next(hp_rng *r);
/* Uniform double in [0, 1). */
double hp_rng_unit(hp_rng *r);

typedef int64_t (*hp_clock_fn)(void *ud);

typedef struct hp_env {
    hp_clock_fn now;       /* public: returns epoch ms */
    void *clock_ud;        /* public */
    hp_rng *rng;           /* public: owned by the caller, mutated by cores */
    hp_logger *log;        /* public: may be NULL (no logging) */
    const char *actor;     /* public: "fake_server", client name, ... */
} hp_env;

/* env->now(env->clock_ud). */
int64_t hp_env_now(const hp_env *env);

/* Wall clock (CLOCK_REALTIME) in epoch ms: for adapters only, never cores. */
int64_t hp_wall_clock(void *ud);

#endif
