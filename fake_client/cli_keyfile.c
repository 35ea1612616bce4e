/*
 * cli_keyfile.c - reading a device store's key file (cli_key_load(),
 * declared in cli_store.h): 32 raw bytes, or 64 hex characters with
 * optional surrounding whitespace.  Inputs: a path; output: the 32 key
 * bytes in the caller's buffer, or -1 with a message in err.  Nothing is
 * kept.
 */
#include "cli_store.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Key file: exactly 32 raw bytes, or 64 hex characters with optional
 * surrounding whitespace. */
int cli_key_load(const char *path, uint8_t key[32], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open key file %s", path);
        return -1;
    }
    uint8_t buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == 32) {
        memcpy(key, buf, 32);
        return 0;
    }
    size_t a = 0, b = n;
    while (a < b && isspace(buf[a]))
        a++;
    while (b > a && isspace(buf[b - 1]))
        b--;
    if (b - a == 64) {
        for (int i = 0; i < 32; i++) {
            int h = hexval(buf[a + 2 * i]), l = hexval(buf[a + 2 * i + 1]);
            if (h < 0 || l < 0)
                goto bad;
            key[i] = (uint8_t)(h * 16 + l);
        }
        return 0;
    }
bad:
    snprintf(err, errlen, "key file %s: expected 32 raw bytes or 64 hex characters", path);
    return -1;
}
