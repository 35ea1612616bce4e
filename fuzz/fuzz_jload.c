/*
 * fuzz_jload.c - hp_json_loadb(), the fast JSON reader (protocol/hp_jload.c).
 *
 * Input: any bytes; the first byte picks the flags (0, JSON_REJECT_DUPLICATES,
 * JSON_DECODE_ANY or both), the rest is the text.  Oracle: the answer is
 * json_loadb()'s exactly: both fail with the same error text, line, column
 * and position, or both succeed with the same tree (compared as
 * order-preserving dumps: types, values and key order).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fz_util.h"
#include "hp_jload.h"

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return -1;
    static const size_t flags[] = {0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY,
                                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY};
    size_t f = flags[data[0] & 3];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_error_t ea, eb;
    json_t *a = hp_json_loadb(text, len, f, &ea);
    json_t *b = json_loadb(text, len, f, &eb);
    FZ_CHECK(!a == !b, "fast %s, jansson %s", a ? "parsed" : ea.text, b ? "parsed" : eb.text);
    FZ_CHECK(!strcmp(ea.text, eb.text) && !strcmp(ea.source, eb.source) &&
                 ea.line == eb.line && ea.column == eb.column && ea.position == eb.position,
             "errors differ: '%s' %d:%d@%d vs '%s' %d:%d@%d", ea.text, ea.line, ea.column,
             ea.position, eb.text, eb.line, eb.column, eb.position);
    if (a) {
        char *da = dump(a), *db = dump(b);
        FZ_CHECK(da && db && !strcmp(da, db), "trees differ: %s vs %s", da ? da : "-",
                 db ? db : "-");
        free(da);
        free(db);
    }
    json_decref(a);
    json_decref(b);
    return 0;
}
