/*
 * real_proc.c - child processes and a tiny HTTP/1.1 client for --mode real.
 *
 * This is the real-mode ADAPTER (SPEC §2): unlike the cores and the
 * simulator it may use the wall clock, sockets and processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/time.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "real_int.h"

double rl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void rl_sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Starts argv[0] with stdin/stdout/stderr on pipes (stdin only when
 * want_stdin).  The child gets its own process group so a kill never
 * reaches the harness.  Pipes are close-on-exec in the parent so that
 * clients started later do not inherit (and keep open) each other's
 * stdin.  0 or -1.
 */
int rl_proc_start(rl_proc *p, char *const argv[], int want_stdin)
{
    int in[2] = {-1, -1}, out[2], err[2];
    memset(p, 0, sizeof *p);
    p->in = p->out = p->err = -1;
    p->pid = -1;
    if (want_stdin && pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        if (want_stdin) {
            close(in[0]);
            close(in[1]);
        }
        return -1;
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        if (want_stdin) {
            close(in[0]);
            close(in[1]);
        }
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        if (want_stdin) {
            close(in[0]);
            close(in[1]);
        }
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* Never outlive the harness (killed by a CI timeout, crashed). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(want_stdin ? in[0] : devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(out[1]);
    close(err[1]);
    if (want_stdin) {
        close(in[0]);
        p->in = in[1];
    }
    p->out = out[0];
    p->err = err[0];
    fcntl(p->out, F_SETFL, O_NONBLOCK);
    fcntl(p->err, F_SETFL, O_NONBLOCK);
    p->pid = pid;
    return 0;
}

/* Sends sig and waits up to wait_ms for the exit (then SIGKILL).  Closes
 * stdin first so a client quits by itself on SIGTERM-less paths. */
void rl_proc_stop(rl_proc *p, int sig, double wait_ms)
{
    if (p->in >= 0) {
        close(p->in);
        p->in = -1;
    }
    if (p->pid > 0) {
        kill(p->pid, sig);
        double end = rl_now_ms() + wait_ms;
        int st;
        for (;;) {
            pid_t r = waitpid(p->pid, &st, WNOHANG);
            if (r == p->pid || (r < 0 && errno != EINTR))
                break;
            if (rl_now_ms() > end) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &st, 0);
                break;
            }
            rl_sleep_ms(5);
        }
        p->pid = -1;
    }
}

void rl_proc_close_fds(rl_proc *p)
{
    if (p->in >= 0)
        close(p->in);
    if (p->out >= 0)
        close(p->out);
    if (p->err >= 0)
        close(p->err);
    p->in = p->out = p->err = -1;
    free(p->obuf);
    free(p->ebuf);
    p->obuf = p->ebuf = NULL;
    p->olen = p->elen = 0;
}

/* Reads what fd has into *buf and calls fn for each complete line.  Returns
 * 0, or -1 at EOF/error (fd should be closed by the caller). */
int rl_read_lines(int fd, char **buf, size_t *len, void (*fn)(void *, const char *), void *ud)
{
    char tmp[8192];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        if (n == 0) {
            if (*len) { /* last line without newline */
                char *b = realloc(*buf, *len + 1);
                if (b) {
                    *buf = b;
                    b[*len] = '\0';
                    fn(ud, b);
                }
                *len = 0;
            }
            return -1;
        }
        char *b = realloc(*buf, *len + (size_t)n + 1);
        if (!b)
            return -1;
        *buf = b;
        memcpy(b + *len, tmp, (size_t)n);
        *len += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < *len; i++) {
            if (b[i] == '\n') {
                b[i] = '\0';
                fn(ud, b + start);
                start = i + 1;
            }
        }
        memmove(b, b + start, *len - start);
        *len -= start;
    }
}

/* Writes all of s (a command line) to fd.  0 or -1. */
int rl_write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {fd, POLLOUT, 0};
                poll(&pf, 1, 100);
                continue;
            }
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* "http://host:port[/prefix]" -> host, port, prefix.  0 or -1. */
int rl_parse_url(const char *url, char *host, size_t hl, int *port, const char **prefix,
                 int *tls)
{
    size_t skip = !strncmp(url, "http://", 7) ? 7 : !strncmp(url, "https://", 8) ? 8 : 0;
    if (!skip)
        return -1;
    if (tls)
        *tls = skip == 8;
    const char *h = url + skip, *slash = strchr(h, '/'), *colon = strchr(h, ':');
    if (!slash)
        slash = h + strlen(h);
    if (!colon || colon > slash)
        return -1;
    if ((size_t)(colon - h) >= hl || colon == h)
        return -1;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    *port = atoi(colon + 1);
    *prefix = slash;
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* ---- TLS for a foreign https:// server -------------------------------- */

static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx;
static const char *tls_ca_file;

void rl_tls_set_ca_file(const char *path)
{
    /* Every scenario thread sets the same --ca-file: under the lock. */
    pthread_mutex_lock(&tls_mu);
    tls_ca_file = path;
    pthread_mutex_unlock(&tls_mu);
}

/* One client context for every exchange (OpenSSL contexts are shareable
 * between threads): peer verification on, the --ca-file or the system's
 * CAs.  NULL when it cannot be built. */
static SSL_CTX *tls_context(void)
{
    pthread_mutex_lock(&tls_mu);
    if (!tls_ctx) {
        SSL_CTX *c = SSL_CTX_new(TLS_client_method());
        if (c) {
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
            int ok = tls_ca_file ? SSL_CTX_load_verify_locations(c, tls_ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(c);
            if (ok != 1) {
                SSL_CTX_free(c);
                c = NULL;
            }
        }
        tls_ctx = c;
    }
    SSL_CTX *c = tls_ctx;
    pthread_mutex_unlock(&tls_mu);
    return c;
}

/* The TLS session over a connected fd, the certificate checked against
 * host (a name or an IP address).  NULL on any failure. */
static SSL *tls_open(int fd, const char *host)
{
    SSL_CTX *ctx = tls_context();
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl)
        return NULL;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                   : SSL_set1_host(ssl, host) && SSL_set_tlsext_host_name(ssl, host);
    if (ok != 1 || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/*
 * One HTTP/1.1 exchange with Connection: close.  *body_out gets the
 * response body (malloc'd, NUL-terminated).  Returns the status, or -1 on
 * a network error / timeout (timeout_ms for the whole exchange), or
 * RL_HTTP_TLS_FAILED.
 */
int rl_http(const char *url, const char *method, const char *path, const char *token,
            const char *body, double timeout_ms, char **body_out)
{
    char host[256];
    int port;
    const char *prefix;
    *body_out = NULL;
    int tls = 0;
    if (rl_parse_url(url, host, sizeof host, &port, &prefix, &tls) != 0)
        return -1;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    /* The deadline also bounds a TLS handshake or a record that never
     * completes: blocking reads and writes time out with it. */
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((long)timeout_ms % 1000 * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = NULL;
    if (tls && !(ssl = tls_open(fd, host))) {
        close(fd);
        return RL_HTTP_TLS_FAILED;
    }
    char *req = NULL;
    size_t bl = body ? strlen(body) : 0;
    char auth[4200] = "";
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    int n = asprintf(&req,
                     "%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, strcmp(prefix, "/") ? prefix : "", path, host, port, auth, bl,
                     body ? body : "");
    if (n < 0) {
        SSL_free(ssl);
        close(fd);
        return -1;
    }
    int rc = ssl ? (SSL_write(ssl, req, n) == n ? 0 : -1) : rl_write_all(fd, req, (size_t)n);
    free(req);
    if (rc != 0) {
        SSL_free(ssl);
        close(fd);
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *resp = malloc(cap);
    double end = rl_now_ms() + timeout_ms;
    while (resp) {
        struct pollfd pf = {fd, POLLIN, 0};
        double left = end - rl_now_ms();
        if (left <= 0 || (!(ssl && SSL_pending(ssl) > 0) && poll(&pf, 1, (int)left) <= 0)) {
            free(resp);
            resp = NULL;
            break;
        }
        if (len + 4096 + 1 > cap) {
            char *r2 = realloc(resp, cap * 2);
            if (!r2) {
                free(resp);
                resp = NULL;
                break;
            }
            resp = r2;
            cap *= 2;
        }
        ssize_t r = ssl ? SSL_read(ssl, resp + len, (int)(cap - len - 1))
                        : read(fd, resp + len, cap - len - 1);
        if (!ssl && r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* end of the response (Connection: close), or an error */
        len += (size_t)r;
    }
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    if (!resp)
        return -1;
    resp[len] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        free(resp);
        return -1;
    }
    char *b = strstr(resp, "\r\n\r\n");
    *body_out = strdup(b ? b + 4 : "");
    free(resp);
    return status;
}

/* ---- time spent waiting for a CPU --------------------------------------- */

/* The second field of a schedstat file: ns runnable but not running. */
static double schedstat_wait_ms(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    unsigned long long run = 0, wait = 0;
    int ok = fscanf(f, "%llu %llu", &run, &wait) == 2;
    fclose(f);
    return ok ? (double)wait / 1e6 : -1;
}

/* pid's threads, then (depth-first, at most `*budget` processes) the
 * children each thread started: a --client-cmd runs under /bin/sh -c, and
 * a wrapper script may start the client as its child. */
static double tree_wait_ms(pid_t pid, int depth, int *budget)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    double sum = 0;
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char f[160];
        snprintf(f, sizeof f, "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
        double ms = schedstat_wait_ms(f);
        if (ms < 0)
            continue;
        sum += ms;
        seen = 1;
        if (depth <= 0)
            continue;
        snprintf(f, sizeof f, "/proc/%d/task/%.20s/children", (int)pid, e->d_name);
        FILE *cf = fopen(f, "r");
        int child;
        while (cf && *budget > 0 && fscanf(cf, "%d", &child) == 1) {
            (*budget)--;
            double c = tree_wait_ms((pid_t)child, depth - 1, budget);
            if (c > 0)
                sum += c;
        }
        if (cf)
            fclose(cf);
    }
    closedir(d);
    return seen ? sum : -1;
}

double rl_wait_cpu_ms(pid_t pid)
{
    int budget = 16;
    return pid > 0 ? tree_wait_ms(pid, 3, &budget) : -1;
}

double rl_self_wait_cpu_ms(void)
{
    return schedstat_wait_ms("/proc/thread-self/schedstat");
}
