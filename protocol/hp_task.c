/*
 * hp_task.c - the task entity: field table, validation, apply, dump.
 */
#define _GNU_SOURCE
#include "hp_task.h"
#include "hp_jdump.h"
#include "hp_time.h"
#include "hp_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index i here is bit (1u << i) of hp_field. */
static const char *const field_names[HP_F_COUNT] = {
    "title", "notes", "done", "assignee", "due_at", "remind_at",
};

const char *hp_field_name(int index)
{
    if (index < 0 || index >= HP_F_COUNT)
        return NULL;
    return field_names[index];
}

unsigned hp_field_by_name(const char *name)
{
    if (!name)
        return 0;
    for (int i = 0; i < HP_F_COUNT; i++)
        if (strcmp(name, field_names[i]) == 0)
            return 1u << i;
    return 0;
}

/* Name of a single-bit field mask, or NULL. */
static const char *name_of_bit(unsigned f)
{
    for (int i = 0; i < HP_F_COUNT; i++)
        if (f == (1u << i))
            return field_names[i];
    return NULL;
}

int hp_task_id_valid(const char *id)
{
    if (!id)
        return 0;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
        if (n >= HP_TASK_ID_MAX)
            return 0;
    }
    return n >= 1;
}

/* Built key by key, in the field table's order: json_pack() parsed its
 * format string on every call (one call per edit of a new task and per
 * server write; about 8,600 instructions each). */
json_t *hp_task_new(const char *id)
{
    json_t *idv = json_string(id ? id : ""); /* NULL for bad UTF-8, as json_pack was */
    json_t *t = idv ? json_object() : NULL;
    if (!t) {
        json_decref(idv);
        return NULL;
    }
    if (json_object_set_new_nocheck(t, "id", idv) != 0 ||
        json_object_set_new_nocheck(t, "title", json_string_nocheck("")) != 0 ||
        json_object_set_new_nocheck(t, "notes", json_string_nocheck("")) != 0 ||
        json_object_set_new_nocheck(t, "done", json_false()) != 0 ||
        json_object_set_new_nocheck(t, "assignee", json_null()) != 0 ||
        json_object_set_new_nocheck(t, "due_at", json_null()) != 0 ||
        json_object_set_new_nocheck(t, "remind_at", json_null()) != 0 ||
        json_object_set_new_nocheck(t, "revision", json_integer(0)) != 0 ||
        json_object_set_new_nocheck(t, "updated_by", json_string_nocheck("")) != 0 ||
        json_object_set_new_nocheck(t, "deleted", json_false()) != 0) {
        json_decref(t);
        return NULL;
    }
    return t;
}

/*
 * Checks one editable field's value.  Limits are in bytes of UTF-8 (jansson
 * guarantees valid UTF-8 for parsed strings).  Strings with an embedded NUL
 * are refused: they cannot be stored or logged faithfully.
 */
static int check_field(unsigned f, const json_t *v, char *err, size_t errlen)
{
    const char *name = name_of_bit(f);
    switch (f) {
    case HP_F_TITLE:
    case HP_F_NOTES: {
        size_t max = f == HP_F_TITLE ? HP_TASK_TITLE_MAX : HP_TASK_NOTES_MAX;
        if (!json_is_string(v))
            return hp_errf(err, errlen, "%s must be a string", name);
        size_t n = json_string_length(v);
        if (strlen(json_string_value(v)) != n)
            return hp_errf(err, errlen, "%s must not contain NUL characters", name);
        if (n > max)
            return hp_errf(err, errlen, "%s is longer than %zu bytes", name, max);
        return 0;
    }
    case HP_F_DONE:
        if (!json_is_boolean(v))
            return hp_errf(err, errlen, "done must be a boolean");
        return 0;
    case HP_F_ASSIGNEE: {
        if (json_is_null(v))
            return 0;
        if (!json_is_string(v))
            return hp_errf(err, errlen, "assignee must be a string or null");
        size_t n = json_string_length(v);
        if (strlen(json_string_value(v)) != n)
            return hp_errf(err, errlen, "assignee must not contain NUL characters");
        if (n > HP_TASK_NAME_MAX)
            return hp_errf(err, errlen, "assignee is longer than %d bytes", HP_TASK_NAME_MAX);
        return 0;
    }
    case HP_F_DUE_AT:
    case HP_F_REMIND_AT: {
        /* C-4: time values must carry their offset; kept verbatim. */
        int64_t ms;
        if (json_is_null(v))
            return 0;
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            hp_time_parse(json_string_value(v), &ms) != 0)
            return hp_errf(err, errlen, "%s must be an RFC 3339 time with offset or null", name);
        return 0;
    }
    }
    return hp_errf(err, errlen, "unknown field");
}

/*
 * All-or-nothing: every present editable field is validated first; only
 * when all pass are they copied (deep, so `in` can be freed) onto task.
 */
int hp_task_apply_fields(json_t *task, const json_t *in, char *err, size_t errlen)
{
    if (!json_is_object(task))
        return hp_errf(err, errlen, "task must be an object");
    if (!json_is_object(in))
        return hp_errf(err, errlen, "task must be a JSON object");
    /* Each field is looked up once: the values found in the first pass
     * are the ones copied in the second. */
    const json_t *vals[HP_F_COUNT];
    for (int i = 0; i < HP_F_COUNT; i++) {
        const json_t *v = json_object_get(in, field_names[i]);
        vals[i] = v;
        if (v && check_field(1u << i, v, err, errlen) != 0)
            return -1;
    }
    for (int i = 0; i < HP_F_COUNT; i++) {
        const json_t *v = vals[i];
        if (v && json_object_set_new_nocheck(task, field_names[i], json_deep_copy(v)) != 0)
            return hp_errf(err, errlen, "out of memory");
    }
    return 0;
}

/* A full task as a server sends it: every known field, right types. */
int hp_task_validate_full(const json_t *task, char *err, size_t errlen)
{
    if (!json_is_object(task))
        return hp_errf(err, errlen, "task must be an object");
    const json_t *id = json_object_get(task, "id");
    if (!json_is_string(id) || !hp_task_id_valid(json_string_value(id)) ||
        strlen(json_string_value(id)) != json_string_length(id))
        return hp_errf(err, errlen, "id must be 1-64 characters of [A-Za-z0-9_-]");
    for (int i = 0; i < HP_F_COUNT; i++) {
        const json_t *v = json_object_get(task, field_names[i]);
        if (!v)
            return hp_errf(err, errlen, "%s is missing", field_names[i]);
        if (check_field(1u << i, v, err, errlen) != 0)
            return -1;
    }
    const json_t *rev = json_object_get(task, "revision");
    if (!json_is_integer(rev) || json_integer_value(rev) < 0)
        return hp_errf(err, errlen, "revision must be a non-negative integer");
    const json_t *ub = json_object_get(task, "updated_by");
    if (!json_is_string(ub))
        return hp_errf(err, errlen, "updated_by must be a string");
    if (!json_is_boolean(json_object_get(task, "deleted")))
        return hp_errf(err, errlen, "deleted must be a boolean");
    return 0;
}

int hp_task_field_equal(const json_t *a, const json_t *b, unsigned f)
{
    const char *name = name_of_bit(f);
    if (!name)
        return 0;
    const json_t *va = a ? json_object_get(a, name) : NULL;
    const json_t *vb = b ? json_object_get(b, name) : NULL;
    if (!va && !vb)
        return 1;
    return json_equal(va, vb) ? 1 : 0;
}

json_t *hp_task_copy(const json_t *task)
{
    return task ? json_deep_copy(task) : NULL;
}

char *hp_json_dump(const json_t *v)
{
    /* The same bytes as json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
     * JSON_ENCODE_ANY), at a fraction of the cost (hp_jdump.h). */
    return hp_jdump(v, NULL);
}
