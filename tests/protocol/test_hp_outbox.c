/* Unit tests for protocol/hp_outbox.c: ordered, growable, owning queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hp_outbox.h"

static void test_make(void **st)
{
    (void)st;
    hp_out o = hp_out_make(HP_OUT_HTTP_RESPONSE, 77);
    assert_int_equal(o.kind, HP_OUT_HTTP_RESPONSE);
    assert_int_equal(o.id, 77);
    assert_int_equal(o.retry_after_s, -1);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.code, 0);
    assert_null(o.method);
    assert_null(o.path);
    assert_null(o.auth);
    assert_null(o.idem_key);
    assert_null(o.body);
    assert_int_equal(o.body_len, 0);
    assert_null(o.info);
}

static void test_fifo_and_growth(void **st)
{
    (void)st;
    hp_outbox ob;
    hp_outbox_init(&ob);
    assert_int_equal(hp_outbox_count(&ob), 0);
    hp_out o;
    assert_int_equal(hp_outbox_pop(&ob, &o), 0);
    /* Interleave pushes and pops so the ring wraps while it grows. */
    uint64_t next_push = 0, next_pop = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 37; i++) {
            hp_out it = hp_out_make(HP_OUT_WS_SEND, next_push++);
            it.body = hp_strdup("frame");
            it.body_len = 5;
            hp_outbox_push(&ob, &it);
        }
        for (int i = 0; i < 30; i++) {
            assert_int_equal(hp_outbox_pop(&ob, &o), 1);
            assert_int_equal(o.id, next_pop++);
            assert_string_equal(o.body, "frame");
            hp_out_clear(&o);
        }
        assert_int_equal(hp_outbox_count(&ob), next_push - next_pop);
    }
    while (hp_outbox_pop(&ob, &o)) {
        assert_int_equal(o.id, next_pop++);
        hp_out_clear(&o);
    }
    assert_int_equal(next_pop, next_push);
    assert_int_equal(hp_outbox_count(&ob), 0);
    hp_outbox_free(&ob);
}

static void test_ownership(void **st)
{
    (void)st;
    hp_outbox ob;
    hp_outbox_init(&ob);
    hp_out r = hp_out_make(HP_OUT_HTTP_REQUEST, 1);
    r.method = hp_strdup("PUT");
    r.path = hp_strdup("/api/v0.2/tasks/t1");
    r.auth = hp_strdup("tok");
    r.idem_key = hp_strdup("m-1");
    r.body = hp_strdup("{}");
    r.body_len = 2;
    hp_outbox_push(&ob, &r);
    hp_out n = hp_out_make(HP_OUT_NOTIFY, 2);
    n.info = json_pack("{s:s}", "type", "SYNC_FAILED");
    hp_outbox_push(&ob, &n);
    hp_out c = hp_out_make(HP_OUT_WS_CLOSE, 3);
    c.code = 4002;
    c.body = hp_strdup("protocol error");
    hp_outbox_push(&ob, &c);
    assert_int_equal(hp_outbox_count(&ob), 3);

    hp_out o;
    assert_int_equal(hp_outbox_pop(&ob, &o), 1);
    assert_int_equal(o.kind, HP_OUT_HTTP_REQUEST);
    assert_string_equal(o.method, "PUT");
    assert_string_equal(o.idem_key, "m-1");
    assert_int_equal(o.retry_after_s, -1);
    hp_out_clear(&o);
    assert_null(o.method);
    assert_int_equal(o.kind, 0);
    hp_out_clear(&o); /* twice is harmless */
    /* Items left in the box are freed by hp_outbox_free (ASan checks leaks). */
    hp_outbox_free(&ob);
    assert_int_equal(hp_outbox_count(&ob), 0);
    hp_outbox_free(&ob); /* idempotent */
    hp_out_clear(NULL);
}

static void test_strdup(void **st)
{
    (void)st;
    assert_null(hp_strdup(NULL));
    char *s = hp_strdup("abc");
    assert_string_equal(s, "abc");
    free(s);
    s = hp_strdup("");
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_fifo_and_growth),
        cmocka_unit_test(test_ownership),
        cmocka_unit_test(test_strdup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
