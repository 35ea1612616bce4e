/*
 * fp_proxy.c - hp-fault-proxy's loop and registries (owner of struct
 * fp_proxy; fp_pair.c and fp_control.c are its parts, see fp_proxy.h).
 *
 * Plain epoll, level-triggered, one thread: the proxy needs byte-level
 * control of each TCP pair (hold a FIN, send a reset, write half a frame),
 * which a WebSocket library would hide.  After every batch of events the
 * pump delivers what is due and says when it next needs to run, which
 * becomes epoll_wait's timeout: no timer structure is needed for the few
 * connections a test opens.
 */
#define _GNU_SOURCE
#include "fp_proxy.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "hp_log.h"

int64_t fp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fp_wall_ms(void)
{
    return hp_wall_clock(NULL);
}

void fp_watch(fp_proxy *p, int fd, fp_ev *ev, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    if (epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &e) != 0 && errno == ENOENT)
        epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e);
}

void fp_unwatch(fp_proxy *p, int fd)
{
    epoll_ctl(p->ep, EPOLL_CTL_DEL, fd, NULL);
}

int fp_listen_on(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t al = sizeof *addr;
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &al) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- clients ---------------------------------------------------------------- */

fp_client *fp_client_find(fp_proxy *p, const char *name)
{
    for (fp_client *c = p->clients; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

fp_client *fp_client_add(fp_proxy *p, const char *name, int port, int *status, char *err,
                         size_t errlen)
{
    if (fp_client_find(p, name)) {
        *status = 409;
        snprintf(err, errlen, "client '%s' exists (DELETE /clients/%s first)", name, name);
        return NULL;
    }
    if (p->n_clients >= FP_MAX_CLIENTS) {
        *status = 503;
        snprintf(err, errlen, "at most %d clients", FP_MAX_CLIENTS);
        return NULL;
    }
    fp_client *c = calloc(1, sizeof *c);
    if (!c) {
        *status = 503;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct sockaddr_in a = p->listen_addr;
    a.sin_port = htons((uint16_t)port);
    c->fd = fp_listen_on(&a);
    if (c->fd < 0) {
        *status = port ? 409 : 503;
        snprintf(err, errlen, "cannot listen on port %d: %s", port, strerror(errno));
        free(c);
        return NULL;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->port = ntohs(a.sin_port);
    c->created_ms = fp_wall_ms();
    c->ev = (fp_ev){FP_EV_LISTEN, c};
    fp_watch(p, c->fd, &c->ev, EPOLLIN);
    c->next = p->clients;
    p->clients = c;
    p->n_clients++;
    hp_log(&p->env, HP_LOG_INFO, "client_added", "client=%s port=%d", c->name, c->port);
    fp_journal_pair(p, NULL, json_pack("{sssssi}", "kind", "client_added", "client", c->name,
                                       "port", c->port));
    return c;
}

void fp_client_remove(fp_proxy *p, fp_client *c)
{
    fpf_scope s;
    memset(&s, 0, sizeof s);
    s.kind = FPF_SCOPE_CLIENT;
    snprintf(s.client, sizeof s.client, "%s", c->name);
    /* Its faults first, so resetting its pairs does not count as a heal. */
    for (fp_fault *f = p->faults, *n; f; f = n) {
        n = f->next;
        if (f->scope.kind == FPF_SCOPE_CLIENT && strcmp(f->scope.client, c->name) == 0)
            fp_fault_remove(p, f);
    }
    fp_pairs_reset(p, &s, 0, "client_removed");
    fp_unwatch(p, c->fd);
    close(c->fd);
    for (fp_client **pp = &p->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    p->n_clients--;
    hp_log(&p->env, HP_LOG_INFO, "client_removed", "client=%s", c->name);
    fp_journal_pair(p, NULL, json_pack("{ssss}", "kind", "client_removed", "client", c->name));
    free(c);
}

/* ---- faults ------------------------------------------------------------------ */

static const char *scope_text(const fpf_scope *s, char *buf, size_t n)
{
    if (s->kind == FPF_SCOPE_CLIENT)
        snprintf(buf, n, "client=%s", s->client);
    else if (s->kind == FPF_SCOPE_TOKEN)
        snprintf(buf, n, "sub=%s dev=%s", s->sub, s->dev[0] ? s->dev : "*");
    else
        snprintf(buf, n, "conn=%llu", (unsigned long long)s->conn);
    return buf;
}

static void journal_fault(fp_proxy *p, const fp_fault *f, const char *action)
{
    json_t *e = json_pack("{sssIss}", "kind", "fault", "fault", (json_int_t)f->id, "action",
                          action);
    json_object_set_new(e, "spec", fpf_to_json(f));
    if (f->scope.kind == FPF_SCOPE_CLIENT)
        json_object_set_new(e, "client", json_string(f->scope.client));
    else if (f->scope.kind == FPF_SCOPE_TOKEN)
        json_object_set_new(e, "sub", json_string(f->scope.sub));
    fp_journal_pair(p, NULL, e);
}

fp_fault *fp_fault_arm(fp_proxy *p, const fp_fault *in, int *applied)
{
    *applied = 0;
    fp_fault *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    *f = *in;
    f->id = ++p->next_fault_id;
    f->created_ms = fp_wall_ms();
    f->next = NULL;
    char sc[600];
    hp_log(&p->env, HP_LOG_INFO, "fault_armed", "fault=%llu kind=%s %s",
           (unsigned long long)f->id, fpf_kind_name(f->kind),
           scope_text(&f->scope, sc, sizeof sc));
    if (f->kind == FPF_RESET) {
        journal_fault(p, f, "reset");
        *applied = fp_pairs_reset(p, &f->scope, f->id, "reset");
        f->applied = *applied;
        return f;              /* not kept: the caller frees it */
    }
    journal_fault(p, f, "armed");
    fp_fault **pp = &p->faults;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    p->n_faults++;
    return f;
}

fp_fault *fp_fault_find(fp_proxy *p, uint64_t id)
{
    for (fp_fault *f = p->faults; f; f = f->next)
        if (f->id == id)
            return f;
    return NULL;
}

void fp_fault_remove(fp_proxy *p, fp_fault *f)
{
    for (fp_fault **pp = &p->faults; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            p->n_faults--;
            break;
        }
    hp_log(&p->env, HP_LOG_INFO, "fault_removed", "fault=%llu kind=%s applied=%lld",
           (unsigned long long)f->id, fpf_kind_name(f->kind), (long long)f->applied);
    journal_fault(p, f, f->count == 0 ? "exhausted" : "removed");
    free(f);
    /* A removed partition heals at the next pump (fp_pairs_pump). */
}

/* ---- setup and loop --------------------------------------------------------- */

static int resolve_upstream(fp_proxy *p, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "--upstream must be http://HOST:PORT (got '%s')", url);
        return -1;
    }
    const char *hp = url + 7;
    size_t n = strcspn(hp, "/");
    if (n == 0 || n >= 256 || (hp[n] == '/' && hp[n + 1] != '\0')) {
        snprintf(err, errlen, "--upstream must be http://HOST:PORT without a path");
        return -1;
    }
    char host[256];
    memcpy(host, hp, n);
    host[n] = '\0';
    char *colon = strrchr(host, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "--upstream needs a port: http://HOST:PORT");
        return -1;
    }
    *colon = '\0';
    char *e = NULL;
    long port = strtol(colon + 1, &e, 10);
    if (*e || port < 1 || port > 65535) {
        snprintf(err, errlen, "--upstream port must be 1..65535");
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "--upstream host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&p->up_addr, res->ai_addr, res->ai_addrlen);
    p->up_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(p->up_url, sizeof p->up_url, "%s", url);
    return 0;
}

int fp_proxy_init(fp_proxy *p, const struct sockaddr_in *listen_addr,
                  const struct sockaddr_in *control_addr, const char *upstream_url,
                  size_t journal_entries, size_t journal_bytes, hp_log_level level, char *err,
                  size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->listen_fd = p->control_fd = p->sig_fd = p->ep = -1;
    p->logger = (hp_logger){hp_log_stderr_sink, NULL, level};
    hp_rng_seed(&p->rng, (uint64_t)fp_mono_ms() ^ (uint64_t)getpid());
    p->env = (hp_env){hp_wall_clock, NULL, &p->rng, &p->logger, "fault_proxy"};
    if (resolve_upstream(p, upstream_url, err, errlen) != 0)
        return -1;
    p->journal = fpj_new(journal_entries, journal_bytes);
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!p->journal || p->ep < 0) {
        snprintf(err, errlen, "out of memory or epoll: %s", strerror(errno));
        return -1;
    }
    p->listen_addr = *listen_addr;
    p->listen_fd = fp_listen_on(&p->listen_addr);
    if (p->listen_fd < 0) {
        snprintf(err, errlen, "cannot listen on --listen: %s", strerror(errno));
        return -1;
    }
    p->control_addr = *control_addr;
    p->control_fd = fp_listen_on(&p->control_addr);
    if (p->control_fd < 0) {
        snprintf(err, errlen, "cannot listen on --control: %s", strerror(errno));
        return -1;
    }
    p->listen_ev = (fp_ev){FP_EV_LISTEN, NULL};
    p->control_ev = (fp_ev){FP_EV_CONTROL_LISTEN, NULL};
    fp_watch(p, p->listen_fd, &p->listen_ev, EPOLLIN);
    fp_watch(p, p->control_fd, &p->control_ev, EPOLLIN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    p->sig_fd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    if (p->sig_fd >= 0) {
        p->sig_ev = (fp_ev){FP_EV_SIGNAL, NULL};
        fp_watch(p, p->sig_fd, &p->sig_ev, EPOLLIN);
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void accept_all(fp_proxy *p, int lfd, fp_client *c)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        fp_pair_accept(p, fd, c, &peer);
    }
}

int fp_proxy_run(fp_proxy *p)
{
    char a1[INET_ADDRSTRLEN], a2[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &p->listen_addr.sin_addr, a1, sizeof a1);
    inet_ntop(AF_INET, &p->control_addr.sin_addr, a2, sizeof a2);
    hp_log(&p->env, HP_LOG_INFO, "listening", "listen=%s:%d control=%s:%d upstream=%s", a1,
           ntohs(p->listen_addr.sin_port), a2, ntohs(p->control_addr.sin_port), p->up_url);
    int64_t next = -1;
    while (!p->stop) {
        int timeout = -1;
        if (next >= 0) {
            int64_t d = next - fp_mono_ms();
            timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
        }
        struct epoll_event evs[64];
        int n = epoll_wait(p->ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            fp_ev *ev = evs[i].data.ptr;
            fp_ev_kind kind = ev->kind;   /* ev may be freed by its handler */
            switch (kind) {
            case FP_EV_LISTEN:
                if (ev->obj)
                    accept_all(p, ((fp_client *)ev->obj)->fd, ev->obj);
                else
                    accept_all(p, p->listen_fd, NULL);
                break;
            case FP_EV_SIDE:
                fp_pair_event(p, ev->obj, evs[i].events);
                break;
            case FP_EV_CONTROL_LISTEN:
                fp_control_accept(p);
                break;
            case FP_EV_CONTROL_CONN:
                fp_control_event(p, ev->obj, evs[i].events);
                break;
            case FP_EV_SIGNAL: {
                struct signalfd_siginfo si;
                while (read(p->sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
                    p->stop = 1;
                break;
            }
            }
            /* A control request may free a client or a pair's socket that
             * later events of this batch point at: they are reported again
             * (level-triggered) by the next epoll_wait. */
            if (kind == FP_EV_CONTROL_CONN)
                break;
        }
        next = fp_pairs_pump(p, fp_mono_ms());
    }
    hp_log(&p->env, HP_LOG_INFO, "stopping", "connections=%d", p->n_pairs);
    return 0;
}

void fp_proxy_free(fp_proxy *p)
{
    fp_control_free_all(p);
    fp_pairs_free_all(p);
    while (p->clients) {
        fp_client *c = p->clients;
        p->clients = c->next;
        close(c->fd);
        free(c);
    }
    while (p->faults) {
        fp_fault *f = p->faults;
        p->faults = f->next;
        free(f);
    }
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    if (p->control_fd >= 0)
        close(p->control_fd);
    if (p->sig_fd >= 0)
        close(p->sig_fd);
    if (p->ep >= 0)
        close(p->ep);
    fpj_free(p->journal);
}
