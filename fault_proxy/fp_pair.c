/*
 * fp_pair.c - the forwarding engine of hp-fault-proxy: one fp_pair per
 * downstream connection and its upstream twin (part of fp_proxy.c's loop;
 * see fp_proxy.h; fp_unit.c, its other file, reads the units: fp_pair.h).
 *
 * Each direction (c2s: client to server, s2c) reads bytes from its source,
 * cuts them into units (an HTTP message with its Content-Length body, or one
 * WebSocket frame), journals each unit the moment it is complete, applies
 * the faults that cover the pair, and queues the unit's ORIGINAL bytes with
 * a due instant.  fp_pairs_pump() writes what is due.  Bytes are never
 * rewritten: a fault can only delay, withhold, drop a whole unit, or cut.
 *
 * Partition: while a partition covers a pair nothing is written either way
 * and a FIN or reset from one side is not passed on (the side's socket is
 * closed locally, the other stays open and silent).  On heal a pair that
 * lost a side has its other side reset, as a peer answering late packets.
 */
#define _GNU_SOURCE
#include "fp_pair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "hp_log.h"

/* ---- small helpers ---------------------------------------------------------- */

const char *fpp_side_name(const fp_side *s)
{
    return s->is_up ? "server" : "client";
}

static int buf_append(fp_dir *d, const uint8_t *p, size_t n)
{
    if (d->in_len + n > d->in_cap) {
        size_t cap = d->in_cap ? d->in_cap : 4096;
        while (cap < d->in_len + n)
            cap *= 2;
        uint8_t *q = realloc(d->in, cap);
        if (!q)
            return -1;
        d->in = q;
        d->in_cap = cap;
    }
    memcpy(d->in + d->in_len, p, n);
    d->in_len += n;
    return 0;
}

void fpp_buf_consume(fp_dir *d, size_t n)
{
    memmove(d->in, d->in + n, d->in_len - n);
    d->in_len -= n;
}

static void side_set_mask(fp_proxy *p, fp_side *s, uint32_t mask)
{
    if (s->fd < 0 || s->mask == mask)
        return;
    s->mask = mask;
    fp_watch(p, s->fd, &s->ev, mask);
}

/* Close one socket; rst makes the kernel send a reset (SO_LINGER 0). */
static void side_close(fp_proxy *p, fp_side *s, int rst)
{
    if (s->fd < 0)
        return;
    if (rst) {
        struct linger lg = {1, 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    fp_unwatch(p, s->fd);
    close(s->fd);
    s->fd = -1;
    s->eof = 1;
    s->mask = 0;
}

static void units_free(fp_dir *d)
{
    for (fp_unit *u = d->head, *n; u; u = n) {
        n = u->next;
        free(u->data);
        free(u);
    }
    d->head = d->tail = NULL;
    d->queued = 0;
}

void fp_journal_pair(fp_proxy *p, const fp_pair *pr, json_t *e)
{
    if (pr) {
        if (pr->dev && !json_object_get(e, "dev"))
            json_object_set_new(e, "dev", json_string(pr->dev));
        fpj_add(p->journal, fp_wall_ms(), pr->client, pr->sub, pr->id, e);
    } else {
        /* Registry entries (faults, clients) carry their own client / sub;
         * copied first, since the journal takes e over. */
        const char *c = json_string_value(json_object_get(e, "client"));
        const char *s = json_string_value(json_object_get(e, "sub"));
        char cb[FPF_NAME_MAX + 1], sb[FPF_CLAIM_MAX + 1];
        snprintf(cb, sizeof cb, "%s", c ? c : "");
        snprintf(sb, sizeof sb, "%s", s ? s : "");
        fpj_add(p->journal, fp_wall_ms(), cb, s ? sb : NULL, 0, e);
    }
}

void fpp_journal(fp_proxy *p, fp_pair *pr, json_t *e)
{
    fp_journal_pair(p, pr, e);
}

static void journal_close(fp_proxy *p, fp_pair *pr, const char *side, const char *by,
                          const char *how, int passed, const char *reason)
{
    json_t *e = json_pack("{ssssssss}", "kind", "close", "side", side, "by", by, "how", how);
    json_object_set_new(e, "passed", json_boolean(passed));
    if (reason)
        json_object_set_new(e, "reason", json_string(reason));
    if (pr->partitioned)
        json_object_set_new(e, "during_partition", json_true());
    if (pr->ws_close_code) {
        json_object_set_new(e, "ws_close_code", json_integer(pr->ws_close_code));
        json_object_set_new(e, "ws_close_from", json_string(pr->ws_close_from));
    }
    fpp_journal(p, pr, e);
}

/* Close both sockets (the pair is then freed by the next pump). */
static void pair_kill(fp_proxy *p, fp_pair *pr, int rst, const char *reason)
{
    if (pr->dead)
        return;
    if (pr->down.fd >= 0)
        journal_close(p, pr, "client", "proxy", rst ? "rst" : "fin", 1, reason);
    if (pr->up.fd >= 0)
        journal_close(p, pr, "server", "proxy", rst ? "rst" : "fin", 1, reason);
    side_close(p, &pr->down, rst);
    side_close(p, &pr->up, rst);
    pr->dead = 1;
    hp_log(&p->env, HP_LOG_INFO, "conn_closed", "conn=%llu client=%s by=proxy how=%s reason=%s",
           (unsigned long long)pr->id, pr->client[0] ? pr->client : "-", rst ? "rst" : "fin",
           reason);
}

int fpp_covered(const fp_pair *pr, const fpf_scope *s)
{
    return fpf_scope_match(s, pr->client, pr->sub, pr->dev, pr->id);
}

int fpp_partitioned(fp_proxy *p, const fp_pair *pr)
{
    for (fp_fault *f = p->faults; f; f = f->next)
        if (f->kind == FPF_PARTITION && fpp_covered(pr, &f->scope))
            return 1;
    return 0;
}

/* A partition began for pr: each partition covering it counts it once
 * (the "applied" of GET /faults = connections it took). */
static void count_partition(fp_proxy *p, const fp_pair *pr)
{
    for (fp_fault *f = p->faults; f; f = f->next)
        if (f->kind == FPF_PARTITION && fpp_covered(pr, &f->scope))
            f->applied++;
}

/* Count one application of f; a counted fault that reaches 0 is removed. */
void fpp_fault_used(fp_proxy *p, fp_fault *f)
{
    f->applied++;
    if (f->count > 0 && --f->count == 0)
        fp_fault_remove(p, f);
}

/* The first armed fault of kind covering pr in direction dir that pred
 * accepts (oldest first). */
fp_fault *fpp_find_fault(fp_proxy *p, fp_pair *pr, fpf_kind kind, int dir,
                            int (*pred)(const fp_fault *, const void *), const void *arg)
{
    for (fp_fault *f = p->faults; f; f = f->next) {
        if (f->kind != kind || !fpp_covered(pr, &f->scope))
            continue;
        if (dir && !(f->dir & dir))
            continue;
        if (pred && !pred(f, arg))
            continue;
        return f;
    }
    return NULL;
}

/* ---- sockets ---------------------------------------------------------------- */

static int set_nonblock_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

void fpp_start_upstream(fp_proxy *p, fp_pair *pr)
{
    if (pr->up_state != UP_NONE || pr->dead)
        return;
    int fd = socket(p->up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pair_kill(p, pr, 1, "upstream_socket_failed");
        return;
    }
    set_nonblock_nodelay(fd);
    int rc = connect(fd, (struct sockaddr *)&p->up_addr, p->up_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        fpp_journal(p, pr, json_pack("{ssss}", "kind", "upstream_error", "error", strerror(e)));
        pair_kill(p, pr, 1, "upstream_connect_failed");
        return;
    }
    pr->up.fd = fd;
    pr->up.eof = 0;
    pr->up_state = UP_CONNECTING;
    pr->up.mask = EPOLLOUT;
    fp_watch(p, fd, &pr->up.ev, EPOLLOUT);
}

/* What the proxy had read but never delivered when a pair ends (held by a
 * partition, queued behind a latency, waiting for a silent side): the
 * journal says so, so a reader never takes a journaled unit for delivered
 * without checking. */
static void journal_undelivered(fp_proxy *p, fp_pair *pr)
{
    for (int i = 0; i < 2; i++) {
        fp_dir *d = i ? &pr->s2c : &pr->c2s;
        size_t units = 0, bytes = 0;
        for (fp_unit *u = d->head; u; u = u->next) {
            units++;
            bytes += u->len - u->off;
        }
        if (units)
            fpp_journal(p, pr, json_pack("{sssssIsI}", "kind", "undelivered", "dir",
                                         i ? "s2c" : "c2s", "units", (json_int_t)units, "bytes",
                                         (json_int_t)bytes));
    }
}

static void pair_free(fp_pair *pr)
{
    units_free(&pr->c2s);
    units_free(&pr->s2c);
    free(pr->c2s.in);
    free(pr->s2c.in);
    free(pr->c2s.msg);
    free(pr->s2c.msg);
    for (fp_req *r = pr->reqs, *n; r; r = n) {
        n = r->next;
        free(r->path);
        free(r);
    }
    free(pr->sub);
    free(pr->dev);
    free(pr);
}

void fp_pair_accept(fp_proxy *p, int fd, fp_client *c, const struct sockaddr_in *peer)
{
    if (p->n_pairs >= FP_MAX_CONNS) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        hp_log(&p->env, HP_LOG_WARNING, "conn_refused", "reason=too_many_connections max=%d",
               FP_MAX_CONNS);
        return;
    }
    fp_pair *pr = calloc(1, sizeof *pr);
    if (!pr) {
        close(fd);
        return;
    }
    set_nonblock_nodelay(fd);
    pr->id = ++p->next_conn_id;
    if (c)
        snprintf(pr->client, sizeof pr->client, "%s", c->name);
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof ip);
    snprintf(pr->peer, sizeof pr->peer, "%s:%d", ip, ntohs(peer->sin_port));
    pr->opened_ms = fp_wall_ms();
    pr->down = (fp_side){{FP_EV_SIDE, &pr->down}, pr, fd, 0, 0, 0, 0};
    pr->up = (fp_side){{FP_EV_SIDE, &pr->up}, pr, -1, 1, 0, 0, 0};
    pr->c2s.which = FPF_C2S;
    pr->c2s.src = &pr->down;
    pr->c2s.dst = &pr->up;
    pr->s2c.which = FPF_S2C;
    pr->s2c.src = &pr->up;
    pr->s2c.dst = &pr->down;
    pr->next = p->pairs;
    p->pairs = pr;
    p->n_pairs++;
    pr->partitioned = fpp_partitioned(p, pr);
    if (pr->partitioned)
        count_partition(p, pr);
    pr->down.mask = EPOLLIN;
    fp_watch(p, fd, &pr->down.ev, EPOLLIN);
    json_t *e = json_pack("{ssss}", "kind", "connect", "peer", pr->peer);
    if (pr->partitioned)
        json_object_set_new(e, "held", json_true());
    fpp_journal(p, pr, e);
    hp_log(&p->env, HP_LOG_INFO, "conn_open", "conn=%llu client=%s peer=%s%s",
           (unsigned long long)pr->id, pr->client[0] ? pr->client : "-", pr->peer,
           pr->partitioned ? " partitioned=1" : "");
}

/* The source of d sent FIN (eof) or failed (error). */
static void on_src_gone(fp_proxy *p, fp_pair *pr, fp_dir *d, int error)
{
    fp_side *s = d->src;
    if (pr->partitioned) {
        /* A phone losing its network: nothing crosses.  Close our socket
         * to this side and leave the other side open and silent. */
        journal_close(p, pr, fpp_side_name(s), fpp_side_name(s), error ? "rst" : "fin", 0, NULL);
        side_close(p, s, 0);
        hp_log(&p->env, HP_LOG_INFO, "conn_side_closed", "conn=%llu side=%s passed=0",
               (unsigned long long)pr->id, fpp_side_name(s));
        return;
    }
    if (d->silent && d->which == FPF_S2C) {
        /* After a dropped response the client must time out, not see the
         * server hang up: the server's close stays with the proxy too. */
        journal_close(p, pr, fpp_side_name(s), fpp_side_name(s), error ? "rst" : "fin", 0,
                      "after_dropped_response");
        side_close(p, s, 0);
        if (d->dst->eof) {
            /* The client had hung up already: nothing is left open. */
            side_close(p, d->dst, 0);
            pr->dead = 1;
        }
        return;
    }
    if (d->dst->fd < 0) {
        /* The other side is already gone (it left silently): nobody to tell. */
        journal_close(p, pr, fpp_side_name(s), fpp_side_name(s), error ? "rst" : "fin", 1, NULL);
        side_close(p, s, 0);
        pr->dead = 1;
        return;
    }
    if (error) {
        journal_close(p, pr, fpp_side_name(s), fpp_side_name(s), "rst", 1, NULL);
        side_close(p, s, 0);
        pair_kill(p, pr, 1, "peer_reset");
        return;
    }
    journal_close(p, pr, fpp_side_name(s), fpp_side_name(s), "fin", 1, NULL);
    s->eof = 1;
    /* Whatever partial unit is left goes through as it is. */
    if (d->in_len && !d->cutting && !d->silent)
        fpp_enqueue(p, pr, d, d->in, d->in_len, 0, CLOSE_NONE, fp_mono_ms());
    d->in_len = 0;
    if (!s->is_up && pr->up_state == UP_NONE) {
        /* Nothing was ever sent upstream: there is nobody to tell. */
        side_close(p, s, 0);
        pr->dead = 1;
    }
}

static void side_read(fp_proxy *p, fp_pair *pr, fp_side *s)
{
    fp_dir *d = s->is_up ? &pr->s2c : &pr->c2s;
    uint8_t buf[65536];
    for (int rounds = 0; rounds < 16 && s->fd >= 0 && !pr->dead; rounds++) {
        if (d->in_len + d->queued > FP_HELD_MAX)
            break;
        ssize_t n = recv(s->fd, buf, sizeof buf, 0);
        if (n > 0) {
            if (buf_append(d, buf, (size_t)n) != 0) {
                pair_kill(p, pr, 1, "out_of_memory");
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        fpp_parse(p, pr, d, fp_mono_ms());
        on_src_gone(p, pr, d, n < 0);
        return;
    }
    fpp_parse(p, pr, d, fp_mono_ms());
}

void fp_pair_event(fp_proxy *p, void *obj, uint32_t events)
{
    fp_side *s = obj;
    fp_pair *pr = s->pair;
    if (pr->dead || s->fd < 0)
        return;
    if (s->is_up && pr->up_state == UP_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            fpp_journal(p, pr,
                        json_pack("{ssss}", "kind", "upstream_error", "error", strerror(err)));
            side_close(p, s, 0);
            pair_kill(p, pr, 1, "upstream_connect_failed");
            return;
        }
        pr->up_state = UP_OPEN;
        s->mask = 0;
        fpp_journal(p, pr, json_pack("{ss}", "kind", "upstream_open"));
        return;                /* the pump registers the steady-state mask */
    }
    if (events & EPOLLOUT)
        s->want_out = 0;
    if (s->eof && (events & (EPOLLERR | EPOLLHUP))) {
        /* Nothing left to read and the socket is dead both ways (a reset
         * after its FIN): level-triggered epoll would report it forever. */
        if (pr->partitioned)
            side_close(p, s, 0);
        else
            pair_kill(p, pr, 1, "peer_reset");
        return;
    }
    if (!s->eof && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        side_read(p, pr, s);
}

/* ---- delivery --------------------------------------------------------------- */

static int64_t bandwidth(fp_proxy *p, fp_pair *pr, int which)
{
    int64_t bps = 0;
    for (fp_fault *f = p->faults; f; f = f->next)
        if (f->kind == FPF_BANDWIDTH && (f->dir & which) && fpp_covered(pr, &f->scope) &&
            (bps == 0 || f->bytes_per_s < bps))
            bps = f->bytes_per_s;
    return bps;
}

/* Write what is due in d; returns the next instant d needs a visit (-1). */
static int64_t pump_dir(fp_proxy *p, fp_pair *pr, fp_dir *d, int64_t now)
{
    fp_side *dst = d->dst;
    if (pr->partitioned || dst->fd < 0 || dst->want_out)
        return -1;
    if (dst->is_up && pr->up_state != UP_OPEN)
        return -1;
    int64_t bps = bandwidth(p, pr, d->which);
    if (bps) {
        /* A token bucket with a 50 ms burst: smooth enough to measure. */
        double burst = bps / 20.0 < 1 ? 1 : bps / 20.0;
        if (d->bw_t == 0)
            d->bw_t = now, d->bw_credit = burst;
        d->bw_credit += (double)(now - d->bw_t) * (double)bps / 1000.0;
        if (d->bw_credit > burst)
            d->bw_credit = burst;
        d->bw_t = now;
    }
    while (d->head) {
        fp_unit *u = d->head;
        if (u->due > now)
            return u->due;
        size_t n = u->len - u->off;
        if (bps) {
            if (d->bw_credit < 1)
                return now + 1 + (int64_t)((1 - d->bw_credit) * 1000.0 / (double)bps);
            if ((double)n > d->bw_credit)
                n = (size_t)d->bw_credit;
        }
        ssize_t w = n ? send(dst->fd, u->data + u->off, n, MSG_NOSIGNAL) : 0;
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                dst->want_out = 1;
                return -1;
            }
            if (errno == EINTR)
                continue;
            journal_close(p, pr, fpp_side_name(dst), fpp_side_name(dst), "rst", 1, "write_failed");
            side_close(p, dst, 0);
            pair_kill(p, pr, 1, "peer_reset");
            return -1;
        }
        if (bps)
            d->bw_credit -= (double)w;
        u->off += (size_t)w;
        d->queued -= (size_t)w;
        if (u->off < u->len)
            continue;
        d->head = u->next;
        if (!d->head)
            d->tail = NULL;
        int close_after = u->close_after;
        free(u->data);
        free(u);
        if (close_after) {
            pair_kill(p, pr, close_after == CLOSE_RST, "cut");
            return -1;
        }
    }
    if (d->src->eof && !d->shut && d->in_len == 0 && !(d->silent && d->which == FPF_S2C)) {
        shutdown(dst->fd, SHUT_WR);
        d->shut = 1;
    }
    return -1;
}

static uint32_t side_mask(fp_pair *pr, fp_side *s)
{
    fp_dir *d = s->is_up ? &pr->s2c : &pr->c2s;
    uint32_t m = 0;
    if (s->is_up && pr->up_state == UP_CONNECTING)
        return EPOLLOUT;
    if (!s->eof && d->in_len + d->queued <= FP_HELD_MAX)
        m |= EPOLLIN;
    if (s->want_out)
        m |= EPOLLOUT;
    return m;
}

/* The partition state of pr changed (or not): heal, or note it. */
static void check_partition(fp_proxy *p, fp_pair *pr)
{
    int now_part = fpp_partitioned(p, pr);
    if (now_part == pr->partitioned)
        return;
    pr->partitioned = now_part;
    fpp_journal(p, pr,
                json_pack("{ssss}", "kind", "partition", "state", now_part ? "start" : "heal"));
    if (now_part) {
        count_partition(p, pr);
        return;
    }
    int down_gone = pr->down.fd < 0;
    int up_gone = pr->up_state != UP_NONE && pr->up.fd < 0;
    if (down_gone || up_gone) {
        /* The closed side's peer would answer late packets with a reset. */
        pair_kill(p, pr, 1, "closed_during_partition");
        return;
    }
    if (pr->started && pr->up_state == UP_NONE)
        fpp_start_upstream(p, pr);
}

int64_t fp_pairs_pump(fp_proxy *p, int64_t now)
{
    int64_t next = -1;
    for (fp_pair *pr = p->pairs; pr; pr = pr->next) {
        if (pr->dead)
            continue;
        check_partition(p, pr);
        for (int i = 0; i < 2 && !pr->dead; i++) {
            fp_dir *d = i ? &pr->s2c : &pr->c2s;
            int64_t t = pump_dir(p, pr, d, now);
            if (t >= 0 && (next < 0 || t < next))
                next = t;
        }
        if (pr->dead)
            continue;
        if (pr->c2s.shut && pr->s2c.shut) {
            hp_log(&p->env, HP_LOG_INFO, "conn_closed", "conn=%llu client=%s by=peers how=fin",
                   (unsigned long long)pr->id, pr->client[0] ? pr->client : "-");
            side_close(p, &pr->down, 0);
            side_close(p, &pr->up, 0);
            pr->dead = 1;
            continue;
        }
        if (pr->down.fd < 0 && pr->up.fd < 0 && !pr->partitioned) {
            pr->dead = 1;
            continue;
        }
        side_set_mask(p, &pr->down, side_mask(pr, &pr->down));
        side_set_mask(p, &pr->up, side_mask(pr, &pr->up));
    }
    /* Free the pairs whose sockets are both closed. */
    for (fp_pair **pp = &p->pairs; *pp;) {
        fp_pair *pr = *pp;
        if (!pr->dead) {
            pp = &pr->next;
            continue;
        }
        side_close(p, &pr->down, 0);
        side_close(p, &pr->up, 0);
        journal_undelivered(p, pr);
        *pp = pr->next;
        p->n_pairs--;
        pair_free(pr);
    }
    return next;
}

int fp_pairs_reset(fp_proxy *p, const fpf_scope *scope, uint64_t fault_id, const char *why)
{
    int n = 0;
    for (fp_pair *pr = p->pairs; pr; pr = pr->next) {
        if (pr->dead || !fpp_covered(pr, scope))
            continue;
        json_t *e = json_pack("{ssss}", "kind", "fault", "action", why);
        if (fault_id)
            json_object_set_new(e, "fault", json_integer((json_int_t)fault_id));
        fpp_journal(p, pr, e);
        pair_kill(p, pr, 1, why);
        n++;
    }
    return n;
}

json_t *fp_pairs_json(fp_proxy *p, const char *client)
{
    json_t *arr = json_array();
    for (fp_pair *pr = p->pairs; pr; pr = pr->next) {
        if (pr->dead || (client && strcmp(client, pr->client) != 0))
            continue;
        json_t *o = json_pack("{sIssss}", "id", (json_int_t)pr->id, "peer", pr->peer, "kind",
                              pr->ws ? "websocket" : "http");
        json_object_set_new(o, "client", pr->client[0] ? json_string(pr->client) : json_null());
        json_object_set_new(o, "sub", pr->sub ? json_string(pr->sub) : json_null());
        json_object_set_new(o, "dev", pr->dev ? json_string(pr->dev) : json_null());
        json_object_set_new(o, "opened_ms", json_integer(pr->opened_ms));
        json_object_set_new(o, "partitioned", json_boolean(pr->partitioned));
        json_object_set_new(o, "client_open", json_boolean(pr->down.fd >= 0));
        json_object_set_new(o, "server_open", json_boolean(pr->up.fd >= 0));
        json_object_set_new(o, "held_bytes_c2s", json_integer((json_int_t)pr->c2s.queued));
        json_object_set_new(o, "held_bytes_s2c", json_integer((json_int_t)pr->s2c.queued));
        json_array_append_new(arr, o);
    }
    return arr;
}

int fp_pair_live(fp_proxy *p, uint64_t id)
{
    for (fp_pair *pr = p->pairs; pr; pr = pr->next)
        if (pr->id == id && !pr->dead)
            return 1;
    return 0;
}

void fp_pairs_free_all(fp_proxy *p)
{
    while (p->pairs) {
        fp_pair *pr = p->pairs;
        p->pairs = pr->next;
        side_close(p, &pr->down, 0);
        side_close(p, &pr->up, 0);
        pair_free(pr);
    }
    p->n_pairs = 0;
}
