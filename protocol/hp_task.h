/*
 * hp_task.h - the task entity, its validation and its fields.
 *
 * A task is held as a jansson object with exactly the known fields:
 *   id (string), title (string), notes (string), done (bool),
 *   assignee (string|null), due_at (time|null), remind_at (time|null),
 *   revision (integer), updated_by (string), deleted (bool)
 * Times are RFC 3339 strings *with* offset, kept byte-for-byte (C-4).
 */
#ifndef HP_TASK_H
#define HP_TASK_H

#include <stddef.h>
#include <jansson.h>

#define HP_TASK_ID_MAX 64
#define HP_TASK_TITLE_MAX 1024      /* bytes */
#define HP_TASK_NOTES_MAX 65536     /* bytes */
#define HP_TASK_NAME_MAX 128        /* assignee / user names, bytes */

/* The editable fields, as bits for merge masks (CF-2). */
typedef enum hp_field {
    HP_F_TITLE = 1u << 0,
    HP_F_NOTES = 1u << 1,
    HP_F_DONE = 1u << 2,
    HP_F_ASSIGNEE = 1u << 3,
    HP_F_DUE_AT = 1u << 4,
    HP_F_REMIND_AT = 1u << 5
} hp_field;

#define HP_F_ALL (HP_F_TITLE | HP_F_NOTES | HP_F_DONE | HP_F_ASSIGNEE | HP_F_DUE_AT | HP_F_REMIND_AT)
#define HP_F_COUNT 6

/* Name of field bit i (0..HP_F_COUNT-1): "title", "notes", ... */
const char *hp_field_name(int index);
/* Bit for a field name, or 0 when unknown. */
unsigned hp_field_by_name(const char *name);

/* 1 when id is 1..64 chars of [A-Za-z0-9_-]. */
int hp_task_id_valid(const char *id);

/* A fresh task with defaults: title "", notes "", done false, assignee,
 * due_at, remind_at null, revision 0, updated_by "", deleted false.
 * Returns a new reference. */
json_t *hp_task_new(const char *id);

/*
 * Validate the editable fields present in `in` and apply them onto `task`
 * (which must be a full task).  Unknown fields are dropped; "id",
 * "revision", "updated_by" and "deleted" in `in` are ignored (the server
 * sets them).  Type errors and times without offset fail: returns -1 and
 * writes a human message ("title must be a string", "due_at must be an
 * RFC 3339 time with offset") into err; task is then unchanged.
 * Returns 0 on success.
 */
int hp_task_apply_fields(json_t *task, const json_t *in, char *err, size_t errlen);

/* Validate a full task as received from a server (all fields, right types).
 * 0 or -1 with err. */
int hp_task_validate_full(const json_t *task, char *err, size_t errlen);

/* 1 when field bit f has equal values in a and b (json_equal). */
int hp_task_field_equal(const json_t *a, const json_t *b, unsigned f);

/* Deep copy (new reference). */
json_t *hp_task_copy(const json_t *task);

/* Compact JSON with sorted keys (for logs, storage and byte-identical
 * traces).  Caller frees with free(). */
char *hp_json_dump(const json_t *v);

#endif
