/*
 * hp_env.c - PRNG and clocks of the environment a core runs in.
 *
 * The PRNG is xoshiro256** seeded through splitmix64, so any 64-bit seed
 * (including 0) gives a well-mixed, non-zero state and the same seed always
 * gives the same sequence (byte-identical simulation traces).
 */
#define _GNU_SOURCE
#include "hp_env.h"

#include <time.h>

/* splitmix64 step: expands one seed word into the four state words. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void hp_rng_seed(hp_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* xoshiro256**: the all-zero state is impossible after hp_rng_seed(). */
uint64_t hp_rng_next(hp_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top 53 bits make an exact double in [0, 1). */
double hp_rng_unit(hp_rng *r)
{
    return (double)(hp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* A NULL env or a NULL clock reads as time 0 rather than crashing. */
int64_t hp_env_now(const hp_env *env)
{
    if (!env || !env->now)
        return 0;
    return env->now(env->clock_ud);
}

int64_t hp_wall_clock(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
