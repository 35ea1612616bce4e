/*
 * hx_cli_util.h - running hx-fake (hp-harness with the fake engine) as a
 * real process in a scratch directory, for test_hx_cli.c and
 * test_hx_run.c: write_file() under g_dir, hx(args..., NULL) -> exit code
 * with stdout/stderr in g_out/g_err, last_line(), pos().  Static functions:
 * each test program includes it once.
 */
#ifndef HX_CLI_UTIL_H
#define HX_CLI_UTIL_H

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

static char g_dir[64];
static char *g_out, *g_err;

/* ---- helpers ---------------------------------------------------------- */

static void write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    /* mkdir -p of the parents */
    for (char *p = path + strlen(g_dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0777);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, k;
    char tmp[4096];
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = (n + k + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + n, tmp, k);
        n += k;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[n] = '\0';
    return buf;
}

static char *rel_slurp(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    return slurp(path);
}

static int rel_exists(const char *rel)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    return stat(path, &st) == 0;
}

/* Runs hx-fake with the given arguments (NULL-terminated) in g_dir;
 * stdout and stderr end up in g_out and g_err.  Returns the exit code. */
static int hx(const char *arg, ...)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = HX_FAKE_BIN;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/.out", g_dir);
    snprintf(err, sizeof err, "%s/.err", g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(g_dir) != 0)
            _exit(126);
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(HX_FAKE_BIN, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    free(g_out);
    free(g_err);
    g_out = slurp(out);
    g_err = slurp(err);
    if (!WIFEXITED(st))
        fail_msg("hx-fake died (signal %d); stderr:\n%s", WTERMSIG(st), g_err);
    return WEXITSTATUS(st);
}

/* The last line of stdout, without its newline; stdout must end in one. */
static const char *last_line(void)
{
    static char line[256];
    size_t n = strlen(g_out);
    assert_true(n > 0);
    assert_int_equal(g_out[n - 1], '\n');
    const char *p = g_out + n - 1;
    while (p > g_out && p[-1] != '\n')
        p--;
    snprintf(line, sizeof line, "%.*s", (int)(g_out + n - 1 - p), p);
    return line;
}

/* Position of needle in g_out, or -1. */
static long pos(const char *needle)
{
    const char *p = strstr(g_out, needle);
    return p ? (long)(p - g_out) : -1;
}

#endif
