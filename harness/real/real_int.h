/*
 * real_int.h - shared by the real-mode files (real_proc.c, real_run.c).
 */
#ifndef HARNESS_REAL_INT_H
#define HARNESS_REAL_INT_H

#include <stddef.h>
#include <sys/types.h>

typedef struct rl_proc {
    pid_t pid;
    int in, out, err;          /* parent's ends, -1 when closed */
    char *obuf, *ebuf;         /* partial lines */
    size_t olen, elen;
} rl_proc;

double rl_now_ms(void);
void rl_sleep_ms(double ms);
int rl_proc_start(rl_proc *p, char *const argv[], int want_stdin);
void rl_proc_stop(rl_proc *p, int sig, double wait_ms);
void rl_proc_close_fds(rl_proc *p);
int rl_read_lines(int fd, char **buf, size_t *len, void (*fn)(void *, const char *), void *ud);
int rl_write_all(int fd, const char *s, size_t n);
/* How long a process has waited for a CPU while runnable, in ms since it
 * started (Linux schedstat: /proc/PID/task/TID/schedstat, the second
 * field), summed over its threads and its descendants (a --client-cmd runs
 * under /bin/sh -c); -1 when the kernel does not say.  A timer of that
 * process that fired in an interval fired late by up to the growth of this
 * figure over the interval: what a loaded machine did, not the program. */
double rl_wait_cpu_ms(pid_t pid);
/* The same for the calling thread (the harness's reader of its lines). */
double rl_self_wait_cpu_ms(void);
/* http:// or https:// (then *tls = 1 when tls is given). 0 or -1. */
int rl_parse_url(const char *url, char *host, size_t hl, int *port, const char **prefix,
                 int *tls);
/* CAs for https:// servers (PEM file; NULL = the system's).  Call before
 * the first rl_http(). */
void rl_tls_set_ca_file(const char *path);
/* The status, -1 for a network error or timeout, RL_HTTP_TLS_FAILED when
 * the TLS handshake or the certificate check failed. */
#define RL_HTTP_TLS_FAILED (-2)
int rl_http(const char *url, const char *method, const char *path, const char *token,
            const char *body, double timeout_ms, char **body_out);

#endif
