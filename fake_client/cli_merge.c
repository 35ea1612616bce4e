/*
 * cli_merge.c - CF-2 / CF-3: the three-way, field-by-field merge.
 */
#include "cli_internal.h"
#include "hp_task.h"

/*
 * CF-2: for every mergeable field: changed only locally -> local value;
 * only remotely (or nowhere) -> current; both to the same value -> that;
 * both to different values -> conflict (CF-3), and the result keeps THEIR
 * value so the "merge" choice loses nothing of theirs.  Fields outside the
 * mergeable set take current's value.  A NULL base (an item created
 * offline that met an existing task) reads as a fresh task's defaults.
 */
json_t *cli_merge3(const json_t *base, const json_t *local, const json_t *current,
                   unsigned mergeable, unsigned *conflicts)
{
    json_t *tmp_base = NULL;
    if (!base) {
        const char *id = json_string_value(json_object_get(current, "id"));
        tmp_base = hp_task_new(id ? id : "x");
        base = tmp_base;
    }
    json_t *out = hp_task_copy(current);
    unsigned conf = 0;
    for (int i = 0; i < HP_F_COUNT; i++) {
        unsigned f = 1u << i;
        if (!(mergeable & f))
            continue;
        int l_changed = !hp_task_field_equal(base, local, f);
        int r_changed = !hp_task_field_equal(base, current, f);
        const char *name = hp_field_name(i);
        if (l_changed && !r_changed) {
            json_t *v = json_object_get(local, name);
            json_object_set(out, name, v ? v : json_null());
        } else if (l_changed && r_changed && !hp_task_field_equal(local, current, f)) {
            conf |= f;
        }
    }
    json_decref(tmp_base);
    if (conflicts)
        *conflicts = conf;
    return out;
}
