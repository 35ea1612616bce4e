/*
 * load_hist.h - an HDR-style histogram for bench/ (header-only).
 *
 * Log-linear buckets: exact below 256, then 128 sub-buckets per power of
 * two, so any recorded value is reported within 1 % (0.8 %) of itself, from
 * 1 to 2^40 (µs: about 12 days).  Fixed memory (36 KiB), O(1) add, no
 * allocation.  Values are unsigned integers in the caller's unit.
 */
#ifndef LOAD_HIST_H
#define LOAD_HIST_H

#include <stdint.h>
#include <string.h>

#define LH_SUB 128
#define LH_BUCKETS (LH_SUB * 36)

typedef struct lh_hist {
    uint64_t cnt[LH_BUCKETS];
    uint64_t n, max;
} lh_hist;

static inline int lh_index(uint64_t v)
{
    if (v < 2 * LH_SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= 8 */
    uint64_t m = v >> (e - 7);       /* 128..255 */
    int i = (e - 6) * LH_SUB + (int)(m - LH_SUB);
    return i < LH_BUCKETS ? i : LH_BUCKETS - 1;
}

/* The middle of bucket i (the lowest value for the exact ones). */
static inline double lh_value(int i)
{
    if (i < 2 * LH_SUB)
        return (double)i;
    int e = i / LH_SUB + 6;
    uint64_t m = (uint64_t)(i % LH_SUB) + LH_SUB;
    double lo = (double)(m << (e - 7)), w = (double)(1ull << (e - 7));
    return lo + w / 2;
}

static inline void lh_add(lh_hist *h, uint64_t v)
{
    h->cnt[lh_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static inline void lh_reset(lh_hist *h)
{
    memset(h, 0, sizeof *h);
}

/* The p-th percentile (0 < p <= 100), 0 when empty; never above max. */
static inline double lh_pct(const lh_hist *h, double p)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)((double)h->n * p / 100.0 + 0.999999);
    if (want < 1)
        want = 1;
    uint64_t acc = 0;
    for (int i = 0; i < LH_BUCKETS; i++) {
        acc += h->cnt[i];
        if (acc >= want) {
            double v = lh_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

#endif
