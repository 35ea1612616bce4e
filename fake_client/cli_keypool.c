/*
 * cli_keypool.c - kept keys of closed ":memory:" stores (cli_keypool.h).
 */
#include "cli_keypool.h"

#include <pthread.h>
#include <string.h>
#include <openssl/crypto.h>

/* Keys kept, oldest first.  The simulator's suite uses a few dozen
 * distinct client keys (one per client name, and its altered twin for the
 * wrong-key scenarios); a scenario's clients come back together, so a
 * short list already serves most opens, and a full one drops its oldest. */
enum { KEYPOOL_MAX = 16 };

static struct {
    uint8_t bytes[32];
    cli_key *k;
} pool[KEYPOOL_MAX];
static int npool;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Removes entry i, keeping the order of the others.  Under mu. */
static void drop(int i)
{
    memmove(&pool[i], &pool[i + 1], (size_t)(npool - i - 1) * sizeof pool[0]);
    npool--;
    OPENSSL_cleanse(&pool[npool], sizeof pool[npool]);
}

cli_key *cli_keypool_take(const uint8_t key[32])
{
    cli_key *k = NULL;
    pthread_mutex_lock(&mu);
    for (int i = npool - 1; i >= 0; i--) {
        if (CRYPTO_memcmp(pool[i].bytes, key, 32) == 0) {
            k = pool[i].k;
            drop(i);
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return k ? k : cli_key_new(key);
}

void cli_keypool_give(cli_key *k, const uint8_t key[32])
{
    if (!k)
        return;
    cli_key *old = NULL;
    pthread_mutex_lock(&mu);
    if (npool == KEYPOOL_MAX) {
        old = pool[0].k;
        drop(0);
    }
    memcpy(pool[npool].bytes, key, 32);
    pool[npool].k = k;
    npool++;
    pthread_mutex_unlock(&mu);
    cli_key_free(old); /* wipes the key; outside the lock */
}

void cli_keypool_clear(void)
{
    pthread_mutex_lock(&mu);
    while (npool > 0) {
        cli_key *k = pool[npool - 1].k;
        drop(npool - 1);
        cli_key_free(k);
    }
    pthread_mutex_unlock(&mu);
}
