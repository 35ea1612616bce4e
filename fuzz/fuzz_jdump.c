/*
 * fuzz_jdump.c - the JSON writer (protocol/hp_jdump.c) against jansson.
 *
 * Input: any bytes, used twice.  First as JSON text (json_loadb with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL): what parses is dumped by both.  Then
 * as the choices of the tree generator of the unit test
 * (tests/protocol/jd_gen.h), which also makes what the parser cannot: keys
 * with NUL, strings and keys that are not UTF-8, reals from raw bits.
 * Oracle: hp_jdump() returns exactly what json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS | JSON_ENCODE_ANY) returns, NULL included, and its length;
 * hp_jdump_ordered() what json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fz_util.h"
#include "hp_jdump.h"
#include "jd_gen.h"

static void same(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    size_t len = 0;
    char *got = hp_jdump(v, &len);
    FZ_CHECK(!want == !got, "jansson %s, hp_jdump %s", want ? want : "NULL", got ? got : "NULL");
    if (want) {
        FZ_CHECK(strcmp(want, got) == 0, "jansson %s, hp_jdump %s", want, got);
        FZ_CHECK(len == strlen(want), "length %zu for %zu bytes", len, strlen(want));
    }
    free(want);
    free(got);
    want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    got = hp_jdump_ordered(v, NULL);
    FZ_CHECK(!want == !got, "unsorted: jansson %s, hp_jdump_ordered %s", want ? want : "NULL",
             got ? got : "NULL");
    FZ_CHECK(!want || strcmp(want, got) == 0, "unsorted: jansson %s, hp_jdump_ordered %s", want,
             got);
    free(want);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return -1;
    json_t *parsed = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (parsed) {
        same(parsed);
        json_decref(parsed);
    }
    jd_src s = {data, size, 0, 1, 40, 0};
    json_t *made = jd_gen_value(&s, 0);
    same(made);
    json_decref(made);
    return 0;
}
