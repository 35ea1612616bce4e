/*
 * test_real_cpu_wait.c - rl_wait_cpu_ms() (harness/real/real_proc.c): the
 * time a process and its descendants waited for a CPU while runnable, which
 * real mode allows a reconnect delay on its late side (real_expect.c).
 * Three busy processes pinned to one CPU: together they can run at most
 * the time that passed, so a figure above it can only be waiting; the
 * parent's figure holds its children's; a process that is gone has none.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "real_int.h"

static void busy_forever(void)
{
    for (volatile unsigned long i = 0;; i++)
        ;
}

static pid_t group; /* the busy processes' group, ended by the teardown */

static int end_group(void **state)
{
    (void)state;
    if (group > 0) {
        kill(-group, SIGKILL);
        waitpid(group, NULL, 0);
        group = 0;
    }
    return 0;
}

static void test_waits_are_measured(void **state)
{
    (void)state;
    if (rl_self_wait_cpu_ms() < 0)
        skip(); /* a kernel without schedstat: real mode allows nothing then */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t parent = fork();
    assert_true(parent >= 0);
    if (parent > 0)
        group = parent; /* a failed assertion still ends them (end_group) */
    setpgid(parent, parent); /* as the child does: whichever runs first */
    if (parent == 0) {
        /* All three on CPU 0 and always runnable: each waits about two
         * thirds of the time, more when the machine runs anything else. */
        setpgid(0, 0); /* one group: the test ends them with one kill */
        sched_setaffinity(0, sizeof one, &one);
        for (int k = 0; k < 2; k++)
            if (fork() == 0)
                busy_forever();
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        busy_forever();
    }
    char x;
    assert_int_equal(read(ready[0], &x, 1), 1);
    double t0 = rl_now_ms(), before = rl_wait_cpu_ms(parent);
    assert_true(before >= 0);
    rl_sleep_ms(400);
    double after = rl_wait_cpu_ms(parent), elapsed = rl_now_ms() - t0;
    /* The parent alone, from its own file. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)parent);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long run = 0, wait_ns = 0;
    assert_int_equal(fscanf(f, "%llu %llu", &run, &wait_ns), 2);
    fclose(f);
    /* ~800 ms of waiting in 400 ms; running could give at most 400. */
    if (!(after - before > 1.25 * elapsed))
        fail_msg("waited %.0f ms in %.0f ms", after - before, elapsed);
    /* The child's waits are in the parent's figure (a --client-cmd runs
     * under /bin/sh -c). */
    assert_true(after > (double)wait_ns / 1e6 + 100);
    end_group(NULL);
    assert_true(rl_wait_cpu_ms(parent) < 0);
    assert_true(rl_wait_cpu_ms(0) < 0);
    close(ready[0]);
    close(ready[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_waits_are_measured, end_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
