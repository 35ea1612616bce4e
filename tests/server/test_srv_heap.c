/*
 * test_srv_heap.c - the timer heap of the server core (srv_heap.c, issue
 * 13) and the connection timers built on it (srv_stream.c): ordering,
 * key changes both ways, removal from the middle, many entries, and the
 * core's deadlines with many connections (due ones handled in open order,
 * the next deadline the earliest of all).
 */
#include "srv_test_util.h"
#include "srv_heap.h"

/* Deterministic pseudo-random numbers (no clock, no seed from outside). */
static uint64_t rnd_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* The heap property and every node's recorded slot. */
static void check_heap(const srv_heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(h->v[i]->pos, i + 1);
        if (i > 0)
            assert_true(h->v[(i - 1) / 2]->key <= h->v[i]->key);
    }
}

/* Pops everything; keys must come out non-decreasing; returns the count. */
static size_t drain_sorted(srv_heap *h)
{
    size_t n = 0;
    int64_t last = INT64_MIN;
    srv_heap_node *x;
    while ((x = srv_heap_pop(h))) {
        assert_true(x->key >= last);
        assert_false(srv_heap_has(x));
        last = x->key;
        n++;
        check_heap(h);
    }
    return n;
}

static void test_empty(void **state)
{
    (void)state;
    srv_heap h;
    srv_heap_init(&h);
    assert_null(srv_heap_top(&h));
    assert_null(srv_heap_pop(&h));
    assert_true(srv_heap_min(&h) == INT64_MAX);
    srv_heap_node a = {0, 0};
    srv_heap_remove(&h, &a); /* not in: no-op */
    assert_int_equal(h.n, 0);
    srv_heap_free(&h);
}

static void test_ordering(void **state)
{
    (void)state;
    srv_heap h;
    srv_heap_init(&h);
    int64_t keys[] = {50, 10, 40, 10, 30, INT64_MAX, -5, 20, 0, 10};
    size_t n = sizeof keys / sizeof keys[0];
    srv_heap_node nodes[sizeof keys / sizeof keys[0]];
    memset(nodes, 0, sizeof nodes);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(srv_heap_set(&h, &nodes[i], keys[i]), 0);
        assert_true(srv_heap_has(&nodes[i]));
        check_heap(&h);
    }
    assert_true(srv_heap_min(&h) == -5);
    assert_ptr_equal(srv_heap_top(&h), &nodes[6]);
    assert_int_equal(drain_sorted(&h), n);
    srv_heap_free(&h);
}

static void test_change_key(void **state)
{
    (void)state;
    srv_heap h;
    srv_heap_init(&h);
    srv_heap_node nodes[8];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < 8; i++)
        assert_int_equal(srv_heap_set(&h, &nodes[i], 100 + 10 * i), 0);
    /* decrease: the last one becomes the top */
    assert_int_equal(srv_heap_set(&h, &nodes[7], 5), 0);
    check_heap(&h);
    assert_ptr_equal(srv_heap_top(&h), &nodes[7]);
    /* increase: the top sinks below everyone */
    assert_int_equal(srv_heap_set(&h, &nodes[7], 1000), 0);
    check_heap(&h);
    assert_ptr_equal(srv_heap_top(&h), &nodes[0]);
    assert_int_equal(srv_heap_set(&h, &nodes[0], 155), 0);
    check_heap(&h);
    assert_ptr_equal(srv_heap_top(&h), &nodes[1]);
    /* the same key again changes nothing */
    assert_int_equal(srv_heap_set(&h, &nodes[1], 110), 0);
    check_heap(&h);
    assert_int_equal(h.n, 8);
    /* order now: 1(110) 2(120) 3(130) 4(140) 5(150) 0(155) 6(160) 7(1000) */
    int want[] = {1, 2, 3, 4, 5, 0, 6, 7};
    for (int i = 0; i < 8; i++)
        assert_ptr_equal(srv_heap_pop(&h), &nodes[want[i]]);
    srv_heap_free(&h);
}

static void test_remove_middle(void **state)
{
    (void)state;
    srv_heap h;
    srv_heap_init(&h);
    enum { N = 31 };
    srv_heap_node nodes[N];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < N; i++)
        assert_int_equal(srv_heap_set(&h, &nodes[i], (i * 7) % N), 0);
    /* a node deep inside, the last slot, the top, then one twice */
    srv_heap_remove(&h, h.v[N / 2]);
    check_heap(&h);
    srv_heap_remove(&h, h.v[h.n - 1]);
    check_heap(&h);
    srv_heap_node *top = srv_heap_top(&h);
    srv_heap_remove(&h, top);
    assert_false(srv_heap_has(top));
    check_heap(&h);
    srv_heap_node *mid = h.v[3];
    srv_heap_remove(&h, mid);
    srv_heap_remove(&h, mid);
    check_heap(&h);
    assert_int_equal(h.n, N - 4);
    /* a removed node can come back */
    assert_int_equal(srv_heap_set(&h, mid, -1), 0);
    assert_ptr_equal(srv_heap_top(&h), mid);
    /* a hole filled by a node smaller than the hole's parent moves up */
    srv_heap g;
    srv_heap_init(&g);
    srv_heap_node m[7];
    memset(m, 0, sizeof m);
    int64_t k[] = {0, 100, 1, 101, 102, 2, 3};
    for (int i = 0; i < 7; i++)
        assert_int_equal(srv_heap_set(&g, &m[i], k[i]), 0);
    srv_heap_remove(&g, &m[3]); /* a child of 100; the last (3) fills it */
    check_heap(&g);
    assert_int_equal(drain_sorted(&g), 6);
    srv_heap_free(&g);
    assert_int_equal(drain_sorted(&h), N - 3);
    srv_heap_free(&h);
}

static void test_many(void **state)
{
    (void)state;
    enum { N = 20000 };
    srv_heap h;
    srv_heap_init(&h);
    assert_int_equal(srv_heap_reserve(&h, N), 0);
    size_t cap = h.cap;
    srv_heap_node *nodes = calloc(N, sizeof *nodes);
    assert_non_null(nodes);
    for (int i = 0; i < N; i++)
        assert_int_equal(srv_heap_set(&h, &nodes[i], (int64_t)(rnd() % 100000)), 0);
    assert_int_equal(h.cap, cap); /* reserved: no growth */
    check_heap(&h);
    /* random moves and removals, checked as they go */
    for (int r = 0; r < 20000; r++) {
        srv_heap_node *x = &nodes[rnd() % N];
        switch (rnd() % 3) {
        case 0:
            srv_heap_remove(&h, x);
            break;
        default:
            assert_int_equal(srv_heap_set(&h, x, (int64_t)(rnd() % 100000)), 0);
            break;
        }
        if (r % 1000 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    size_t in = 0;
    int64_t min = INT64_MAX;
    for (int i = 0; i < N; i++)
        if (srv_heap_has(&nodes[i])) {
            in++;
            if (nodes[i].key < min)
                min = nodes[i].key;
        }
    assert_int_equal(h.n, in);
    assert_true(srv_heap_min(&h) == min);
    assert_int_equal(drain_sorted(&h), in);
    srv_heap_free(&h);
    free(nodes);
}

static void test_free_forgets_slots(void **state)
{
    (void)state;
    srv_heap h;
    srv_heap_init(&h);
    srv_heap_node a = {0, 0}, b = {0, 0};
    assert_int_equal(srv_heap_set(&h, &a, 1), 0);
    assert_int_equal(srv_heap_set(&h, &b, 2), 0);
    srv_heap_free(&h);
    assert_false(srv_heap_has(&a));
    assert_false(srv_heap_has(&b));
    assert_int_equal(h.n, 0);
    srv_heap_free(&h);
}

/* ---- the core's connection timers -------------------------------------- */

/*
 * 300 connections opened 10 ms apart: the next deadline is the first
 * one's heartbeat; advancing past every first heartbeat sends each one
 * exactly one, in open order; closing some in the middle takes their
 * timers away (no heartbeat to a closed id), and a HELLO ends the WS-2
 * timer without moving the others.
 */
static void test_many_connection_timers(void **state)
{
    (void)state;
    enum { N = 300 };
    fx *f = fx_new();
    int64_t t0 = f->now;
    int64_t hb = f->pol.heartbeat_ms;
    for (int i = 0; i < N; i++) {
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        assert_int_equal(fx_ws_open(f, 1000 + i, user, i % 2 ? "home" : "away"), 0);
        f->now += 10;
    }
    int64_t first = t0 + f->pol.hello_timeout_ms < t0 + hb ? t0 + f->pol.hello_timeout_ms
                                                             : t0 + hb;
    assert_true(srv_next_deadline(f->c) == first);
    /* HELLO on every connection: the WS-2 timers go, the heartbeats stay. */
    for (int i = 0; i < N; i++)
        fx_hello(f, 1000 + i, 0);
    fx_reset(f);
    /* Close every third one (the driver reports the close). */
    for (int i = 0; i < N; i += 3)
        srv_ws_closed(f->c, 1000 + i);
    fx_advance(f, t0 + hb + 10 * N - f->now);
    int sent = 0;
    uint64_t last = 0;
    for (int i = 0; i < f->nitems; i++) {
        hp_out *o = &f->items[i];
        if (o->kind != HP_OUT_WS_SEND || !strstr(o->body, "HEARTBEAT"))
            continue;
        assert_true((o->id - 1000) % 3 != 0); /* never to a closed one */
        assert_true(o->id > last);            /* open order */
        last = o->id;
        sent++;
    }
    assert_int_equal(sent, N - (N + 2) / 3);
    json_t *st = srv_state(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "connections")), N - (N + 2) / 3);
    json_decref(st);
    /* The next deadline: connection 1001's second heartbeat, 10 ms after t0's slot. */
    assert_true(srv_next_deadline(f->c) == t0 + 10 + 2 * hb);
    fx_free(f);
}

/* Several due at the same instant go out in open order, not heap order. */
static void test_due_together_in_open_order(void **state)
{
    (void)state;
    fx *f = fx_new();
    /* Ids decreasing, all due at one instant: only the open order sorts them. */
    for (int i = 0; i < 20; i++) {
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        assert_int_equal(fx_ws_open(f, 50 - i, user, "home"), 0);
    }
    for (int i = 0; i < 20; i++)
        fx_hello(f, 50 - i, 0);
    fx_reset(f);
    fx_advance(f, f->pol.heartbeat_ms);
    int k = 0;
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == HP_OUT_WS_SEND && strstr(f->items[i].body, "HEARTBEAT"))
            assert_int_equal(f->items[i].id, 50 - k++);
    assert_int_equal(k, 20);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_change_key),
        cmocka_unit_test(test_remove_middle),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_free_forgets_slots),
        cmocka_unit_test(test_many_connection_timers),
        cmocka_unit_test(test_due_together_in_open_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
