/* Unit tests for protocol/hp_task.c: ids, defaults, validation, apply (C-4, CF-2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hp_task.h"

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

static void test_field_names(void **st)
{
    (void)st;
    const char *names[] = {"title", "notes", "done", "assignee", "due_at", "remind_at"};
    unsigned bits[] = {HP_F_TITLE, HP_F_NOTES, HP_F_DONE, HP_F_ASSIGNEE, HP_F_DUE_AT, HP_F_REMIND_AT};
    unsigned all = 0;
    for (int i = 0; i < HP_F_COUNT; i++) {
        assert_string_equal(hp_field_name(i), names[i]);
        assert_int_equal(hp_field_by_name(names[i]), bits[i]);
        assert_int_equal(bits[i], 1u << i);
        all |= bits[i];
    }
    assert_int_equal(all, HP_F_ALL);
    assert_null(hp_field_name(-1));
    assert_null(hp_field_name(HP_F_COUNT));
    assert_int_equal(hp_field_by_name("id"), 0);
    assert_int_equal(hp_field_by_name("revision"), 0);
    assert_int_equal(hp_field_by_name("Title"), 0);
    assert_int_equal(hp_field_by_name(""), 0);
    assert_int_equal(hp_field_by_name(NULL), 0);
}

static void test_id_valid(void **st)
{
    (void)st;
    char id64[65], id65[66];
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'a', 65);
    id65[65] = '\0';
    assert_true(hp_task_id_valid("t1"));
    assert_true(hp_task_id_valid("A-z_0-9"));
    assert_true(hp_task_id_valid("x"));
    assert_true(hp_task_id_valid(id64));
    assert_false(hp_task_id_valid(id65));
    assert_false(hp_task_id_valid(""));
    assert_false(hp_task_id_valid(NULL));
    assert_false(hp_task_id_valid("a b"));
    assert_false(hp_task_id_valid("a/b"));
    assert_false(hp_task_id_valid("a.b"));
    assert_false(hp_task_id_valid("../x"));
    assert_false(hp_task_id_valid("t%31"));
    assert_false(hp_task_id_valid("\xc3\xa9t\xc3\xa9"));
}

static void test_new_defaults(void **st)
{
    (void)st;
    json_t *t = hp_task_new("t1");
    char *s = hp_json_dump(t);
    assert_string_equal(s, "{\"assignee\":null,\"deleted\":false,\"done\":false,\"due_at\":null,"
                           "\"id\":\"t1\",\"notes\":\"\",\"remind_at\":null,\"revision\":0,"
                           "\"title\":\"\",\"updated_by\":\"\"}");
    char err[128];
    assert_int_equal(hp_task_validate_full(t, err, sizeof err), 0);
    free(s);
    json_decref(t);
}

static void test_apply_ok_and_ignored(void **st)
{
    (void)st;
    json_t *t = hp_task_new("t1");
    json_t *in = js("{\"title\":\"Buy milk\",\"done\":true,\"assignee\":\"bob\","
                    "\"due_at\":\"2026-11-25T09:00:00+03:00\",\"remind_at\":null,"
                    "\"id\":\"other\",\"revision\":99,\"updated_by\":\"mallory\","
                    "\"deleted\":true,\"color\":\"red\"}");
    char err[128] = "";
    assert_int_equal(hp_task_apply_fields(t, in, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(t, "title")), "Buy milk");
    assert_true(json_is_true(json_object_get(t, "done")));
    assert_string_equal(json_string_value(json_object_get(t, "assignee")), "bob");
    /* C-4: kept byte-for-byte, never converted. */
    assert_string_equal(json_string_value(json_object_get(t, "due_at")), "2026-11-25T09:00:00+03:00");
    assert_true(json_is_null(json_object_get(t, "remind_at")));
    /* Server-set fields ignored, unknown fields dropped. */
    assert_string_equal(json_string_value(json_object_get(t, "id")), "t1");
    assert_int_equal(json_integer_value(json_object_get(t, "revision")), 0);
    assert_string_equal(json_string_value(json_object_get(t, "updated_by")), "");
    assert_true(json_is_false(json_object_get(t, "deleted")));
    assert_null(json_object_get(t, "color"));
    /* Deep copy: changing in afterwards does not change the task. */
    json_string_set(json_object_get(in, "title"), "changed");
    assert_string_equal(json_string_value(json_object_get(t, "title")), "Buy milk");
    /* Absent fields stay. */
    json_t *in2 = js("{\"notes\":\"n\"}");
    assert_int_equal(hp_task_apply_fields(t, in2, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(t, "title")), "Buy milk");
    assert_string_equal(json_string_value(json_object_get(t, "notes")), "n");
    /* Back to null. */
    json_t *in3 = js("{\"assignee\":null,\"due_at\":null}");
    assert_int_equal(hp_task_apply_fields(t, in3, err, sizeof err), 0);
    assert_true(json_is_null(json_object_get(t, "assignee")));
    assert_true(json_is_null(json_object_get(t, "due_at")));
    assert_int_equal(hp_task_validate_full(t, err, sizeof err), 0);
    json_decref(in);
    json_decref(in2);
    json_decref(in3);
    json_decref(t);
}

static void apply_bad(const char *body, const char *want_err)
{
    json_t *t = hp_task_new("t1");
    json_t *before = json_deep_copy(t);
    json_t *in = js(body);
    char err[160] = "";
    if (hp_task_apply_fields(t, in, err, sizeof err) != -1)
        fail_msg("expected %s to be refused", body);
    if (!strstr(err, want_err))
        fail_msg("%s: err \"%s\" lacks \"%s\"", body, err, want_err);
    /* All-or-nothing: the task is unchanged. */
    assert_true(json_equal(t, before));
    json_decref(in);
    json_decref(before);
    json_decref(t);
}

static void test_apply_type_errors(void **st)
{
    (void)st;
    apply_bad("{\"title\":5}", "title must be a string");
    apply_bad("{\"title\":null}", "title must be a string");
    apply_bad("{\"notes\":[]}", "notes must be a string");
    apply_bad("{\"done\":\"yes\"}", "done must be a boolean");
    apply_bad("{\"done\":1}", "done must be a boolean");
    apply_bad("{\"done\":null}", "done must be a boolean");
    apply_bad("{\"assignee\":7}", "assignee must be a string or null");
    apply_bad("{\"due_at\":\"2026-11-25T09:00:00\"}", "due_at must be an RFC 3339 time with offset");
    apply_bad("{\"remind_at\":\"tomorrow\"}", "remind_at must be an RFC 3339 time with offset");
    apply_bad("{\"remind_at\":1795600800}", "remind_at must be an RFC 3339 time with offset");
    apply_bad("{\"due_at\":\"2026-02-30T09:00:00Z\"}", "due_at");
    /* A valid field before an invalid one is not applied either. */
    apply_bad("{\"title\":\"ok\",\"done\":true,\"due_at\":\"bad\"}", "due_at");
    apply_bad("{\"title\":\"ok\",\"notes\":\"ok\",\"assignee\":false}", "assignee");
}

static void test_apply_sizes(void **st)
{
    (void)st;
    json_t *t = hp_task_new("t1");
    char err[128];
    char *big = malloc(HP_TASK_NOTES_MAX + 2);
    memset(big, 'x', HP_TASK_NOTES_MAX + 1);
    big[HP_TASK_NOTES_MAX + 1] = '\0';

    struct {
        const char *field;
        size_t max;
    } lim[] = {{"title", HP_TASK_TITLE_MAX}, {"notes", HP_TASK_NOTES_MAX}, {"assignee", HP_TASK_NAME_MAX}};
    for (size_t i = 0; i < 3; i++) {
        json_t *ok = json_object();
        json_object_set_new(ok, lim[i].field, json_stringn(big, lim[i].max));
        assert_int_equal(hp_task_apply_fields(t, ok, err, sizeof err), 0);
        json_t *bad = json_object();
        json_object_set_new(bad, lim[i].field, json_stringn(big, lim[i].max + 1));
        assert_int_equal(hp_task_apply_fields(t, bad, err, sizeof err), -1);
        assert_non_null(strstr(err, lim[i].field));
        assert_non_null(strstr(err, "longer"));
        json_decref(ok);
        json_decref(bad);
    }
    /* Multi-byte UTF-8: the limit is in bytes (512 x 2-byte e-acute = 1024). */
    char title[HP_TASK_TITLE_MAX + 3];
    for (int i = 0; i < HP_TASK_TITLE_MAX / 2 + 1; i++)
        memcpy(title + 2 * i, "\xc3\xa9", 2);
    json_t *u = json_object();
    json_object_set_new(u, "title", json_stringn(title, HP_TASK_TITLE_MAX));
    assert_int_equal(hp_task_apply_fields(t, u, err, sizeof err), 0);
    json_object_set_new(u, "title", json_stringn(title, HP_TASK_TITLE_MAX + 2));
    assert_int_equal(hp_task_apply_fields(t, u, err, sizeof err), -1);
    /* An embedded NUL cannot be stored faithfully: refused. */
    json_object_set_new(u, "title", json_stringn("a\0b", 3));
    assert_int_equal(hp_task_apply_fields(t, u, err, sizeof err), -1);
    assert_non_null(strstr(err, "title"));
    json_decref(u);
    free(big);
    json_decref(t);
}

static void test_apply_bad_args(void **st)
{
    (void)st;
    char err[64];
    json_t *t = hp_task_new("t1");
    json_t *arr = json_array();
    assert_int_equal(hp_task_apply_fields(t, arr, err, sizeof err), -1);
    assert_int_equal(hp_task_apply_fields(t, NULL, err, sizeof err), -1);
    assert_int_equal(hp_task_apply_fields(NULL, t, err, sizeof err), -1);
    /* err may be NULL */
    assert_int_equal(hp_task_apply_fields(t, arr, NULL, 0), -1);
    json_decref(arr);
    json_decref(t);
}

static void validate_bad(const char *text, const char *want)
{
    json_t *t = js(text);
    char err[160] = "";
    if (hp_task_validate_full(t, err, sizeof err) != -1)
        fail_msg("expected full task %s to be refused", text);
    if (!strstr(err, want))
        fail_msg("err \"%s\" lacks \"%s\"", err, want);
    json_decref(t);
}

#define FULL_HEAD "{\"id\":\"t1\",\"title\":\"a\",\"notes\":\"\",\"done\":false,\"assignee\":null,"

static void test_validate_full(void **st)
{
    (void)st;
    char err[128];
    json_t *ok = js(FULL_HEAD "\"due_at\":\"2026-11-25T09:00:00+03:00\",\"remind_at\":null,"
                              "\"revision\":7,\"updated_by\":\"alice\",\"deleted\":false,\"extra\":1}");
    assert_int_equal(hp_task_validate_full(ok, err, sizeof err), 0);
    json_decref(ok);
    validate_bad("[]", "object");
    validate_bad(FULL_HEAD "\"due_at\":null,\"remind_at\":null,\"revision\":7,\"updated_by\":\"a\"}",
                 "deleted");
    validate_bad(FULL_HEAD "\"due_at\":null,\"remind_at\":null,\"updated_by\":\"a\",\"deleted\":false}",
                 "revision");
    validate_bad(FULL_HEAD "\"due_at\":null,\"remind_at\":null,\"revision\":-1,\"updated_by\":\"a\","
                           "\"deleted\":false}",
                 "revision");
    validate_bad(FULL_HEAD "\"due_at\":null,\"remind_at\":null,\"revision\":\"7\",\"updated_by\":\"a\","
                           "\"deleted\":false}",
                 "revision");
    validate_bad(FULL_HEAD "\"due_at\":null,\"revision\":1,\"updated_by\":\"a\",\"deleted\":false}",
                 "remind_at is missing");
    validate_bad(FULL_HEAD "\"due_at\":\"2026-11-25T09:00:00\",\"remind_at\":null,\"revision\":1,"
                           "\"updated_by\":\"a\",\"deleted\":false}",
                 "due_at");
    validate_bad(FULL_HEAD "\"due_at\":null,\"remind_at\":null,\"revision\":1,\"updated_by\":null,"
                           "\"deleted\":false}",
                 "updated_by");
    validate_bad("{\"id\":\"bad id\",\"title\":\"a\",\"notes\":\"\",\"done\":false,\"assignee\":null,"
                 "\"due_at\":null,\"remind_at\":null,\"revision\":1,\"updated_by\":\"a\",\"deleted\":false}",
                 "id");
    validate_bad("{\"title\":\"a\",\"notes\":\"\",\"done\":false,\"assignee\":null,"
                 "\"due_at\":null,\"remind_at\":null,\"revision\":1,\"updated_by\":\"a\",\"deleted\":false}",
                 "id");
    assert_int_equal(hp_task_validate_full(NULL, err, sizeof err), -1);
}

static void test_field_equal_and_copy(void **st)
{
    (void)st;
    json_t *a = hp_task_new("t1");
    json_t *b = hp_task_copy(a);
    assert_true(a != b);
    for (int i = 0; i < HP_F_COUNT; i++)
        assert_true(hp_task_field_equal(a, b, 1u << i));
    json_object_set_new(b, "title", json_string("x"));
    assert_false(hp_task_field_equal(a, b, HP_F_TITLE));
    assert_true(hp_task_field_equal(a, b, HP_F_NOTES));
    assert_string_equal(json_string_value(json_object_get(a, "title")), "");
    json_object_set_new(b, "due_at", json_string("2026-11-25T09:00:00+03:00"));
    assert_false(hp_task_field_equal(a, b, HP_F_DUE_AT));
    /* Same instant written differently is a different value (C-4 verbatim). */
    json_object_set_new(a, "due_at", json_string("2026-11-25T06:00:00Z"));
    assert_false(hp_task_field_equal(a, b, HP_F_DUE_AT));
    json_object_del(a, "notes");
    assert_false(hp_task_field_equal(a, b, HP_F_NOTES));
    json_object_del(b, "notes");
    assert_true(hp_task_field_equal(a, b, HP_F_NOTES));
    /* Not a single field bit: never "equal". */
    assert_false(hp_task_field_equal(a, b, HP_F_TITLE | HP_F_NOTES));
    assert_false(hp_task_field_equal(a, b, 0));
    assert_null(hp_task_copy(NULL));
    json_decref(a);
    json_decref(b);
}

static void test_json_dump(void **st)
{
    (void)st;
    json_t *o = js("{\"b\":1,\"a\":{\"d\":[1,2],\"c\":\"\\u00e9\"}}");
    char *s = hp_json_dump(o);
    assert_string_equal(s, "{\"a\":{\"c\":\"\xc3\xa9\",\"d\":[1,2]},\"b\":1}");
    free(s);
    json_t *n = json_integer(5);
    s = hp_json_dump(n);
    assert_string_equal(s, "5");
    free(s);
    assert_null(hp_json_dump(NULL));
    json_decref(n);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_new_defaults),
        cmocka_unit_test(test_apply_ok_and_ignored),
        cmocka_unit_test(test_apply_type_errors),
        cmocka_unit_test(test_apply_sizes),
        cmocka_unit_test(test_apply_bad_args),
        cmocka_unit_test(test_validate_full),
        cmocka_unit_test(test_field_equal_and_copy),
        cmocka_unit_test(test_json_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
