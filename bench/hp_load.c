/*
 * hp_load.c - hp-load: a load generator for hp-fake-server (and the bare
 * broadcast floor, hp_floor.c), one process, one thread, epoll.
 *
 *   hp-load --target 127.0.0.1:8080 --secret S [--conns N] [--households H]
 *           [--writers W] [--rounds R] [--duration SECS] [--server-pid PID]
 *           [--label NAME] [--parallel N] [--json FILE] [--settle SECS]
 *
 * Inputs: a running server (it is not started here: bench/load.sh starts
 * hp-fake-server and hp-floor side by side), the JWT secret to mint tokens
 * with (HS256, like `hp-fake-server token`), the figures below as flags.
 * Outputs: a readable table and, as the last line on stdout, one JSON
 * object with every figure (also appended to --json FILE).
 *
 * Phases of one run:
 *   1. connect: N stream connections, user u<i> in household h<i % H>,
 *      at most --parallel handshakes in flight; each does the upgrade
 *      (?token=JWT&hh=h<k>: the floor reads hh from the query, the real
 *      server ignores it), sends HELLO 0 and waits for READY; then it
 *      sends {"type":"HEARTBEAT","locks":[]} at the interval READY
 *      announced, like a real client.  Figures: setup rate (READY per
 *      second over the phase), setup latency.
 *   2. idle: --settle seconds; the server's RSS minus its RSS before phase
 *      1, divided by N, is the RSS per idle stream connection.
 *   3. fan-out: --rounds sequential PUTs by one writer, round r to
 *      household r % H; a round ends when every READY listener of that
 *      household has the event (or after 10 s).  Fan-out latency of one
 *      listener = time its frame is read minus time the PUT was sent (the
 *      send time travels in the task's title, so no bookkeeping is
 *      needed).  Also reported: from the writer's 200 to each frame read
 *      after it; the server sends the events in the same service round as
 *      the 200, so many frames come BEFORE it (frames_before_200).
 *   4. writes: W writers (one keep-alive HTTP connection each, household
 *      w % H, a new task id per PUT, base_revision 0) in a closed loop for
 *      --duration seconds: durable PUT/s, PUT latency, 409 and error
 *      counts; the listeners keep receiving (fan-out under load).
 * Server CPU (utime+stime from /proc/PID/stat) and RSS (VmRSS) when
 * --server-pid is given; hp-load's own CPU share from getrusage, so a run
 * shows whether the generator or the server was the bottleneck.
 *
 * Ranges: --conns 0..50000, --households 1..conns (>= 1), --writers
 * 0..1024, --rounds 0..100000, --duration 0..3600 s, --parallel 1..4096.
 * Exit: 0 run done, 2 usage error, 3 cannot reach the target / no
 * connection became READY when some were asked for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hp_jwt.h"
#include "load_hist.h"

#define MAX_CONNS 50000
#define MAX_WRITERS 1024
#define STREAM_PATH "/api/v0.2/tasks/stream"
#define API "/api/v0.2/tasks"
#define RING 4096 /* revisions remembered per household for fan-out */

/* ---- clock ------------------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- connections ------------------------------------------------------- */

enum { K_STREAM = 1, K_WRITER };
enum { S_CONNECTING = 1, S_UPGRADING, S_HELLO, S_READY, S_IDLE, S_WAIT, S_DEAD };

typedef struct lconn {
    int fd;
    int kind;
    int state;
    int hh;                  /* household index */
    int idx;                 /* listener or writer number */
    int64_t t_start;         /* connect start (stream) / request sent (writer) */
    char *in;                /* unparsed bytes (NULL when none) */
    size_t in_len, in_cap;
    char *out;               /* unsent bytes (NULL when none) */
    size_t out_len, out_off;
    int64_t wseq;            /* writer: PUTs sent */
} lconn;

typedef struct rev_slot {
    int64_t rev;
    int64_t t200;            /* 0: the 200 not read yet */
    int got;                 /* listeners that have the frame */
} rev_slot;

static struct {
    /* options */
    struct sockaddr_in target;
    const char *target_text, *secret, *label, *json_path;
    int conns, households, writers, rounds, parallel;
    double duration_s, settle_s;
    int server_pid;
    /* state */
    int ep;
    lconn *c;                /* conns + writers */
    int n;                   /* entries used in c */
    int *hh_ready;           /* READY listeners per household */
    rev_slot *ring;          /* households * RING */
    int64_t hb_interval_us;
    int *hbq;                /* FIFO of listener indices by next heartbeat */
    int64_t *hb_due;
    int hbq_head, hbq_len;
    char rbuf[1 << 16];
    /* counters */
    int ready, failed, inflight_connects, next_to_connect;
    int64_t frames, frames_before_200, events, closes_seen;
    int64_t puts_ok, puts_409, puts_err, puts_sent;
    int phase;               /* 3: fan-out, 4: writes */
    int64_t round_rev;       /* fan-out: revision of the current round, 0 none */
    int round_hh, round_need;
    int64_t end4;            /* end of the write phase (µs) */
    int round_200;
    char **tokens_w;
    /* histograms (µs) */
    lh_hist setup, fanout, fanout_load, put_lat, after200, after200_load;
} L;

static void die_usage(const char *fmt, const char *a)
{
    fprintf(stderr, "hp-load: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n(see hp-load --help)\n");
    exit(2);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void ep_mod(lconn *k, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(k - L.c)};
    epoll_ctl(L.ep, EPOLL_CTL_MOD, k->fd, &e);
}

static void conn_dead(lconn *k)
{
    if (k->state == S_DEAD)
        return;
    if (k->kind == K_STREAM) {
        if (k->state == S_READY)
            L.hh_ready[k->hh]--;
        else
            L.inflight_connects--;
        if (k->state != S_READY)
            L.failed++;
    }
    if (k->kind == K_WRITER && k->state == S_WAIT)
        L.puts_err++; /* the server went away under the request */
    k->state = S_DEAD;
    if (k->fd >= 0) {
        epoll_ctl(L.ep, EPOLL_CTL_DEL, k->fd, NULL);
        close(k->fd);
    }
    k->fd = -1;
    free(k->in);
    free(k->out);
    k->in = k->out = NULL;
    k->in_len = k->in_cap = k->out_len = k->out_off = 0;
}

/* Write now; what the socket does not take waits for EPOLLOUT. */
static void send_bytes(lconn *k, const char *b, size_t n)
{
    if (k->state == S_DEAD)
        return;
    if (!k->out) {
        ssize_t w = send(k->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_dead(k);
            return;
        }
        if (w < 0)
            w = 0;
        if ((size_t)w == n)
            return;
        b += w;
        n -= (size_t)w;
        k->out = malloc(n);
        memcpy(k->out, b, n);
        k->out_len = n;
        k->out_off = 0;
        ep_mod(k, EPOLLIN | EPOLLOUT);
        return;
    }
    k->out = realloc(k->out, k->out_len + n);
    memcpy(k->out + k->out_len, b, n);
    k->out_len += n;
}

static void flush_out(lconn *k)
{
    while (k->out && k->out_off < k->out_len) {
        ssize_t w = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_dead(k);
            return;
        }
        k->out_off += (size_t)w;
    }
    free(k->out);
    k->out = NULL;
    k->out_len = k->out_off = 0;
    ep_mod(k, EPOLLIN);
}

/* A masked client text frame (RFC 6455 5.3; the mask need not be secret). */
static void ws_send_text(lconn *k, const char *s)
{
    size_t n = strlen(s);
    unsigned char f[16 + 512];
    size_t h = 0;
    if (n > 512)
        return;
    f[h++] = 0x81;
    if (n < 126) {
        f[h++] = (unsigned char)(0x80 | n);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    }
    static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = (unsigned char)s[i] ^ mask[i & 3];
    send_bytes(k, (const char *)f, h + n);
}

static void ws_send_ctrl(lconn *k, int opcode, const unsigned char *p, size_t n)
{
    unsigned char f[6 + 125];
    if (n > 125)
        n = 125;
    f[0] = (unsigned char)(0x80 | opcode);
    f[1] = (unsigned char)(0x80 | n);
    memset(f + 2, 0, 4); /* zero mask */
    memcpy(f + 6, p, n);
    send_bytes(k, (const char *)f, 6 + n);
}

/* The first "key": <integer> in s (JSON from the server: the event's own
 * revision comes before its payload's). */
static int json_int_field(const char *s, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const char *end = s + n;
    for (const char *p = s; p + kl + 2 < end; p++) {
        if (p[0] != '"' || memcmp(p + 1, key, kl) != 0 || p[1 + kl] != '"')
            continue;
        p += kl + 2;
        while (p < end && (*p == ' ' || *p == ':'))
            p++;
        int64_t v = 0;
        int any = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            any = 1;
        }
        if (!any)
            return -1;
        *out = v;
        return 0;
    }
    return -1;
}

static int has(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* ---- fan-out bookkeeping ------------------------------------------------ */

static rev_slot *slot(int hh, int64_t rev)
{
    return &L.ring[(size_t)hh * RING + (size_t)(rev % RING)];
}

/* sent_us: when the PUT that made this event was sent (from its title),
 * 0 when unknown. */
static void on_event(lconn *k, int64_t rev, int64_t t, int64_t sent_us)
{
    L.events++;
    if (sent_us > 0 && t >= sent_us)
        lh_add(L.phase == 4 ? &L.fanout_load : &L.fanout, (uint64_t)(t - sent_us));
    rev_slot *s = slot(k->hh, rev);
    if (s->rev != rev) {
        s->rev = rev;
        s->t200 = 0;
        s->got = 0;
    }
    s->got++;
    if (s->t200 && t >= s->t200)
        lh_add(L.phase == 4 ? &L.after200_load : &L.after200, (uint64_t)(t - s->t200));
    else
        L.frames_before_200++;
}

/* A writer read its 200 for (hh, rev) at t. */
static void on_200(int hh, int64_t rev, int64_t t)
{
    rev_slot *s = slot(hh, rev);
    if (s->rev != rev) {
        s->rev = rev;
        s->got = 0;
    }
    s->t200 = t;
}

/* ---- stream connections -------------------------------------------------- */

static void hb_push(int i, int64_t due)
{
    int cap = L.conns;
    L.hbq[(L.hbq_head + L.hbq_len) % cap] = i;
    L.hb_due[(L.hbq_head + L.hbq_len) % cap] = due;
    L.hbq_len++;
}

static void stream_message(lconn *k, const char *m, size_t n, int64_t t)
{
    L.frames++;
    if (k->state == S_HELLO) {
        if (has(m, n, "\"READY\"")) {
            int64_t hb = 0;
            if (json_int_field(m, n, "heartbeat_interval_ms", &hb) == 0 && hb > 0 &&
                !L.hb_interval_us)
                L.hb_interval_us = hb * 1000;
            k->state = S_READY;
            L.inflight_connects--;
            L.ready++;
            L.hh_ready[k->hh]++;
            lh_add(&L.setup, (uint64_t)(t - k->t_start));
            hb_push(k->idx, t + (L.hb_interval_us ? L.hb_interval_us : 30000000));
        } else if (has(m, n, "RESYNC_REQUIRED")) {
            conn_dead(k);
        }
        return;
    }
    if (!has(m, n, "\"event_type\""))
        return; /* HEARTBEAT */
    int64_t rev = 0, sent = 0;
    /* the PUT's send time travels in the task's title: "load W-N t=<µs>" */
    const char *ts = memmem(m, n, " t=", 3);
    for (const char *p = ts ? ts + 3 : NULL; p && p < m + n && *p >= '0' && *p <= '9'; p++)
        sent = sent * 10 + (*p - '0');
    if (json_int_field(m, n, "revision", &rev) == 0)
        on_event(k, rev, t, sent);
}

/* Parses whole frames out of buf; returns the bytes used. */
static size_t ws_parse(lconn *k, const char *buf, size_t len, int64_t t)
{
    size_t off = 0;
    while (len - off >= 2 && k->state != S_DEAD) {
        const unsigned char *p = (const unsigned char *)buf + off;
        int op = p[0] & 0x0f;
        uint64_t pl = p[1] & 0x7f;
        size_t h = 2;
        if (pl == 126) {
            if (len - off < 4)
                break;
            pl = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (pl == 127) {
            if (len - off < 10)
                break;
            pl = 0;
            for (int i = 0; i < 8; i++)
                pl = (pl << 8) | p[2 + i];
            h = 10;
        }
        if (p[1] & 0x80)
            h += 4; /* a server must not mask; skip it anyway */
        if (pl > (1u << 24)) {
            conn_dead(k);
            break;
        }
        if (len - off < h + pl)
            break;
        const char *pay = buf + off + h;
        if (op == 1 || op == 0)
            stream_message(k, pay, (size_t)pl, t);
        else if (op == 9)
            ws_send_ctrl(k, 10, (const unsigned char *)pay, (size_t)pl);
        else if (op == 8) {
            L.closes_seen++;
            conn_dead(k);
        }
        off += h + (size_t)pl;
    }
    return off;
}

static void stream_start(int i)
{
    lconn *k = &L.c[i];
    k->kind = K_STREAM;
    k->idx = i;
    k->hh = i % L.households;
    k->t_start = now_us();
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        k->state = S_DEAD;
        L.failed++;
        return;
    }
    /* One loopback source address per 20,000 connections: the ephemeral
     * port range (about 28,000) is per source address. */
    int one = 1;
    setsockopt(k->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (ntohl(L.target.sin_addr.s_addr) >> 24 == 127) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i / 20000) * 0x100u + 0x10u);
        if (i < 20000)
            src.sin_addr.s_addr = htonl(0x7f000001u);
        bind(k->fd, (struct sockaddr *)&src, sizeof src);
    }
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->state = S_CONNECTING;
    L.inflight_connects++;
    struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(L.ep, EPOLL_CTL_ADD, k->fd, &e);
    if (connect(k->fd, (struct sockaddr *)&L.target, sizeof L.target) != 0 &&
        errno != EINPROGRESS) {
        conn_dead(k);
    }
}

static void stream_connected(lconn *k)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        conn_dead(k);
        return;
    }
    char sub[32], hh[32], dev[32];
    snprintf(sub, sizeof sub, "u%d", k->idx);
    snprintf(hh, sizeof hh, "h%d", k->hh);
    snprintf(dev, sizeof dev, "d%d", k->idx);
    int64_t nows = time(NULL);
    char *tok = hp_jwt_mint(L.secret, sub, hh, dev, nows - 5, nows + 86400);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET " STREAM_PATH "?token=%s&hh=%s HTTP/1.1\r\n"
                     "Host: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     tok ? tok : "", hh, L.target_text);
    free(tok);
    k->state = S_UPGRADING;
    ep_mod(k, EPOLLIN);
    send_bytes(k, req, (size_t)n);
}

/* ---- writers ---------------------------------------------------------- */

static void writer_send(lconn *k)
{
    char body[256], req[2048];
    k->t_start = now_us();
    int bl = snprintf(body, sizeof body,
                      "{\"base_revision\":0,\"task\":{\"title\":\"load %d-%lld t=%lld\"}}",
                      k->idx, (long long)k->wseq, (long long)k->t_start);
    int n = snprintf(req, sizeof req,
                     "PUT " API "/w%d-%lld?hh=h%d HTTP/1.1\r\nHost: %s\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     k->idx, (long long)k->wseq, k->hh, L.target_text, L.tokens_w[k->idx], bl,
                     body);
    k->wseq++;
    k->state = S_WAIT;
    L.puts_sent++;
    send_bytes(k, req, (size_t)n);
}

/* One whole HTTP response in buf?  Returns its length, 0 when incomplete. */
static size_t http_response(lconn *k, const char *buf, size_t len, int64_t t)
{
    const char *eoh = memmem(buf, len, "\r\n\r\n", 4);
    if (!eoh)
        return 0;
    size_t hl = (size_t)(eoh - buf) + 4;
    int status = 0;
    if (len < 12 || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        conn_dead(k);
        return 0;
    }
    size_t cl = 0;
    const char *p = buf;
    while ((p = memmem(p, (size_t)(eoh - p), "\r\n", 2)) && p < eoh) {
        p += 2;
        if (strncasecmp(p, "content-length:", 15) == 0)
            cl = (size_t)strtoul(p + 15, NULL, 10);
    }
    if (len < hl + cl)
        return 0;
    const char *body = buf + hl;
    lh_add(&L.put_lat, (uint64_t)(t - k->t_start));
    if (status == 200) {
        L.puts_ok++;
        int64_t rev = 0;
        if (json_int_field(body, cl, "revision", &rev) == 0) {
            on_200(k->hh, rev, t);
            if (L.phase == 3 && k->hh == L.round_hh) {
                L.round_rev = rev;
                L.round_200 = 1;
            }
        }
    } else if (status == 409) {
        L.puts_409++;
    } else {
        L.puts_err++;
        if (getenv("HP_LOAD_DEBUG"))
            fprintf(stderr, "hp-load: writer %d: %.*s\n", k->idx, (int)(hl + cl), buf);
    }
    k->state = S_IDLE;
    return hl + cl;
}

/* ---- the loop ------------------------------------------------------------ */

static void on_readable(lconn *k, int64_t t)
{
    for (;;) {
        ssize_t r = recv(k->fd, L.rbuf, sizeof L.rbuf, 0);
        if (r == 0) {
            conn_dead(k);
            return;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_dead(k);
            return;
        }
        const char *buf = L.rbuf;
        size_t len = (size_t)r;
        if (k->in_len) {
            if (k->in_len + len > k->in_cap) {
                k->in_cap = (k->in_len + len) * 2;
                k->in = realloc(k->in, k->in_cap);
            }
            memcpy(k->in + k->in_len, L.rbuf, len);
            k->in_len += len;
            buf = k->in;
            len = k->in_len;
        }
        size_t used = 0;
        for (;;) {
            size_t u = 0;
            if (k->state == S_DEAD)
                return;
            if (k->kind == K_STREAM && k->state == S_UPGRADING) {
                const char *eoh = memmem(buf + used, len - used, "\r\n\r\n", 4);
                if (!eoh)
                    break;
                if (strncmp(buf + used, "HTTP/1.1 101", 12) != 0) {
                    conn_dead(k);
                    return;
                }
                u = (size_t)(eoh - (buf + used)) + 4;
                k->state = S_HELLO;
                ws_send_text(k, "{\"type\":\"HELLO\",\"revision\":0}");
            } else if (k->kind == K_STREAM) {
                u = ws_parse(k, buf + used, len - used, t);
            } else {
                u = http_response(k, buf + used, len - used, t);
            }
            if (!u)
                break;
            used += u;
            if (used == len)
                break;
        }
        if (k->state == S_DEAD)
            return;
        size_t left = len - used;
        if (left == 0) {
            free(k->in);
            k->in = NULL;
            k->in_len = k->in_cap = 0;
        } else if (buf == k->in) {
            memmove(k->in, k->in + used, left);
            k->in_len = left;
        } else {
            k->in_cap = left * 2 + 256;
            k->in = malloc(k->in_cap);
            memcpy(k->in, buf + used, left);
            k->in_len = left;
        }
        if ((size_t)r < sizeof L.rbuf)
            return;
    }
}

static void heartbeats(int64_t t)
{
    while (L.hbq_len && L.hb_due[L.hbq_head] <= t) {
        int i = L.hbq[L.hbq_head];
        L.hbq_head = (L.hbq_head + 1) % L.conns;
        L.hbq_len--;
        lconn *k = &L.c[i];
        if (k->state != S_READY)
            continue;
        ws_send_text(k, "{\"type\":\"HEARTBEAT\",\"locks\":[]}");
        hb_push(i, t + L.hb_interval_us);
    }
}

/* Service sockets and timers until done() or the deadline (µs). */
static void run_until(int (*done)(void), int64_t deadline)
{
    struct epoll_event ev[512];
    for (;;) {
        int64_t t = now_us();
        if ((done && done()) || t >= deadline)
            return;
        while (L.phase == 1 && L.inflight_connects < L.parallel && L.next_to_connect < L.conns)
            stream_start(L.next_to_connect++);
        int64_t wait = (deadline - t) / 1000;
        if (L.hbq_len) {
            int64_t hbw = (L.hb_due[L.hbq_head] - t) / 1000;
            if (hbw < wait)
                wait = hbw;
        }
        if (wait > 50)
            wait = 50;
        if (wait < 0)
            wait = 0;
        int n = epoll_wait(L.ep, ev, 512, (int)wait);
        t = now_us();
        for (int j = 0; j < n; j++) {
            lconn *k = &L.c[ev[j].data.u32];
            if (k->state == S_DEAD)
                continue;
            if (k->state == S_CONNECTING && (ev[j].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                stream_connected(k);
                continue;
            }
            if (ev[j].events & EPOLLOUT)
                flush_out(k);
            if (k->state != S_DEAD && (ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(k, t);
        }
        heartbeats(t);
        if (L.phase == 4) {
            for (int w = 0; w < L.writers; w++) {
                lconn *k = &L.c[L.conns + w];
                if (k->state == S_IDLE && t < L.end4)
                    writer_send(k);
            }
        }
    }
}

static int connect_done(void)
{
    return L.next_to_connect >= L.conns && L.inflight_connects == 0;
}

/* Frames that beat their 200 are in the slot too. */
static int round_done(void)
{
    if (!L.round_200)
        return 0;
    rev_slot *s = slot(L.round_hh, L.round_rev);
    return s->rev == L.round_rev && s->got >= L.round_need;
}

static int writers_idle(void)
{
    for (int w = 0; w < L.writers; w++)
        if (L.c[L.conns + w].state == S_WAIT)
            return 0;
    return 1;
}

/* ---- /proc ------------------------------------------------------------- */

static long proc_rss_kib(int pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    FILE *f = fopen(p, "r");
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* utime + stime of pid in seconds, -1 when unknown. */
static double proc_cpu_s(int pid)
{
    char p[64], buf[2048];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *q = strrchr(buf, ')');
    if (!q)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- main ---------------------------------------------------------------- */

static const char USAGE[] =
    "usage: hp-load --target HOST:PORT --secret S [--conns N] [--households H]\n"
    "               [--writers W] [--rounds R] [--duration SECS] [--server-pid PID]\n"
    "               [--label NAME] [--parallel N] [--settle SECS] [--json FILE]\n"
    "\n"
    "Load generator for hp-fake-server (or bench's hp-floor): N stream\n"
    "connections (HELLO, heartbeats), R fan-out rounds by one writer, then W\n"
    "writers in a closed loop for SECS seconds.  Prints a table and one JSON line.\n"
    "\n"
    "  --target HOST:PORT  the server (numeric IPv4)\n"
    "  --secret S          the server's JWT secret (tokens are minted here)\n"
    "  --conns N           stream connections, 0..50000 (default 1000)\n"
    "  --households H      households the connections and writers spread over,\n"
    "                      1..N (default 1: every listener hears every write)\n"
    "  --writers W         concurrent writers in the write phase, 0..1024 (default 1)\n"
    "  --rounds R          fan-out rounds (one PUT each, sequential), default 20\n"
    "  --duration SECS     length of the write phase, 0..3600 (default 5)\n"
    "  --server-pid PID    read the server's RSS and CPU from /proc/PID\n"
    "  --settle SECS       idle time before the RSS is read (default 1)\n"
    "  --parallel N        handshakes in flight at once, 1..4096 (default 256)\n"
    "  --label NAME        name of the run in the table and the JSON\n"
    "  --json FILE         also append the JSON line to FILE\n"
    "\n"
    "Exit: 0 done; 2 usage; 3 the target refused everything.\n";

static double num(const char *name, const char *v, double lo, double hi)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (!*v || *end || d < lo || d > hi) {
        char m[200];
        snprintf(m, sizeof m, "bad %s %%s (%g..%g)", name, lo, hi);
        die_usage(m, v);
    }
    return d;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void print_hist(FILE *o, const char *name, const lh_hist *h, double div, const char *unit)
{
    fprintf(o, "  %-22s n=%-8llu p50=%-9.2f p99=%-9.2f p999=%-9.2f max=%-9.2f %s\n", name,
            (unsigned long long)h->n, lh_pct(h, 50) / div, lh_pct(h, 99) / div,
            lh_pct(h, 99.9) / div, (double)h->max / div, unit);
}

static void json_hist(FILE *o, const char *name, const lh_hist *h)
{
    fprintf(o, ",\"%s\":{\"n\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}",
            name, (unsigned long long)h->n, lh_pct(h, 50) / 1000.0, lh_pct(h, 99) / 1000.0,
            lh_pct(h, 99.9) / 1000.0, (double)h->max / 1000.0);
}

int main(int argc, char **argv)
{
    L.conns = 1000;
    L.households = 1;
    L.writers = 1;
    L.rounds = 20;
    L.duration_s = 5;
    L.settle_s = 1;
    L.parallel = 256;
    L.label = "run";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            die_usage("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--target"))
            L.target_text = v;
        else if (!strcmp(a, "--secret"))
            L.secret = v;
        else if (!strcmp(a, "--conns"))
            L.conns = (int)num(a, v, 0, MAX_CONNS);
        else if (!strcmp(a, "--households"))
            L.households = (int)num(a, v, 1, MAX_CONNS);
        else if (!strcmp(a, "--writers"))
            L.writers = (int)num(a, v, 0, MAX_WRITERS);
        else if (!strcmp(a, "--rounds"))
            L.rounds = (int)num(a, v, 0, 100000);
        else if (!strcmp(a, "--duration"))
            L.duration_s = num(a, v, 0, 3600);
        else if (!strcmp(a, "--settle"))
            L.settle_s = num(a, v, 0, 3600);
        else if (!strcmp(a, "--parallel"))
            L.parallel = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--server-pid"))
            L.server_pid = (int)num(a, v, 1, 1 << 30);
        else if (!strcmp(a, "--label"))
            L.label = v;
        else if (!strcmp(a, "--json"))
            L.json_path = v;
        else
            die_usage("unknown argument %s", a);
    }
    if (!L.target_text || !L.secret)
        die_usage("--target and --secret are required%s", "");
    {
        char host[64];
        int port = 0;
        const char *colon = strrchr(L.target_text, ':');
        if (!colon || (size_t)(colon - L.target_text) >= sizeof host)
            die_usage("bad --target %s (HOST:PORT)", L.target_text);
        memcpy(host, L.target_text, (size_t)(colon - L.target_text));
        host[colon - L.target_text] = 0;
        port = atoi(colon + 1);
        L.target.sin_family = AF_INET;
        L.target.sin_port = htons((uint16_t)port);
        if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &L.target.sin_addr) != 1)
            die_usage("bad --target %s (numeric IPv4 HOST:PORT)", L.target_text);
    }
    if (L.households > (L.conns > 0 ? L.conns : 1) && L.households > L.writers)
        die_usage("--households %s is more than --conns and --writers", argv[0]);
    raise_nofile();
    L.ep = epoll_create1(EPOLL_CLOEXEC);
    L.c = calloc((size_t)L.conns + (size_t)L.writers + 1, sizeof *L.c);
    L.hh_ready = calloc((size_t)L.households, sizeof *L.hh_ready);
    L.ring = calloc((size_t)L.households * RING, sizeof *L.ring);
    L.hbq = calloc((size_t)L.conns + 1, sizeof *L.hbq);
    L.hb_due = calloc((size_t)L.conns + 1, sizeof *L.hb_due);
    L.tokens_w = calloc((size_t)L.writers + 1, sizeof *L.tokens_w);
    if (!L.c || !L.hh_ready || !L.ring || !L.hbq || !L.hb_due || !L.tokens_w) {
        fprintf(stderr, "hp-load: out of memory\n");
        return 3;
    }
    for (int i = 0; i < L.conns + L.writers; i++)
        L.c[i].fd = -1;

    double cpu0 = L.server_pid ? proc_cpu_s(L.server_pid) : -1, self0 = self_cpu_s();
    long rss0 = L.server_pid ? proc_rss_kib(L.server_pid) : -1;

    /* 1. connect */
    L.phase = 1;
    int64_t t1 = now_us();
    run_until(connect_done, t1 + 300 * 1000000LL);
    int64_t t1e = now_us();
    double setup_s = (double)(t1e - t1) / 1e6;
    L.phase = 2;
    if (L.conns > 0 && L.ready == 0) {
        fprintf(stderr, "hp-load: no stream connection became READY (%d failed)\n", L.failed);
        return 3;
    }
    /* 2. idle */
    run_until(NULL, now_us() + (int64_t)(L.settle_s * 1e6));
    long rss_idle = L.server_pid ? proc_rss_kib(L.server_pid) : -1;
    double cpu1 = L.server_pid ? proc_cpu_s(L.server_pid) : -1;

    /* writers' connections (blocking connect, then non-blocking) */
    for (int w = 0; w < L.writers; w++) {
        lconn *k = &L.c[L.conns + w];
        k->kind = K_WRITER;
        k->idx = w;
        k->hh = w % L.households;
        char sub[32], hh[32];
        snprintf(sub, sizeof sub, "w%d", w);
        snprintf(hh, sizeof hh, "h%d", k->hh);
        int64_t nows = time(NULL);
        L.tokens_w[w] = hp_jwt_mint(L.secret, sub, hh, "load", nows - 5, nows + 86400);
        k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&L.target, sizeof L.target) != 0) {
            fprintf(stderr, "hp-load: writer %d cannot connect: %s\n", w, strerror(errno));
            return 3;
        }
        int one = 1;
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        set_nonblock(k->fd);
        k->state = S_IDLE;
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)(L.conns + w)};
        epoll_ctl(L.ep, EPOLL_CTL_ADD, k->fd, &e);
    }

    /* 3. fan-out rounds */
    L.phase = 3;
    int64_t t3 = now_us();
    int rounds_done = 0, rounds_timeout = 0;
    for (int r = 0; r < L.rounds && L.writers > 0; r++) {
        int hh = r % L.households;
        lconn *k = &L.c[L.conns + (hh % L.writers)];
        if (k->state != S_IDLE)
            break;
        /* the writer of this round writes to household hh */
        k->hh = hh;
        char sub[32], hhs[32];
        snprintf(sub, sizeof sub, "w%d", k->idx);
        snprintf(hhs, sizeof hhs, "h%d", hh);
        free(L.tokens_w[k->idx]);
        int64_t nows = time(NULL);
        L.tokens_w[k->idx] = hp_jwt_mint(L.secret, sub, hhs, "load", nows - 5, nows + 86400);
        L.round_hh = hh;
        L.round_rev = 0;
        L.round_200 = 0;
        L.round_need = L.hh_ready[hh];
        writer_send(k);
        run_until(round_done, now_us() + 10 * 1000000LL);
        if (round_done())
            rounds_done++;
        else
            rounds_timeout++;
        run_until(writers_idle, now_us() + 10 * 1000000LL);
    }
    int64_t t3e = now_us();
    double cpu3 = L.server_pid ? proc_cpu_s(L.server_pid) : -1;
    for (int w = 0; w < L.writers; w++) { /* back to their own household */
        lconn *k = &L.c[L.conns + w];
        k->hh = w % L.households;
        char sub[32], hhs[32];
        snprintf(sub, sizeof sub, "w%d", w);
        snprintf(hhs, sizeof hhs, "h%d", k->hh);
        free(L.tokens_w[w]);
        int64_t nows = time(NULL);
        L.tokens_w[w] = hp_jwt_mint(L.secret, sub, hhs, "load", nows - 5, nows + 86400);
    }

    /* 4. writes */
    L.phase = 4;
    int64_t ok3 = L.puts_ok, e3 = L.puts_err, c3 = L.puts_409;
    lh_hist put_fan = L.put_lat; /* fan-out rounds' PUTs, kept apart */
    lh_reset(&L.put_lat);
    int64_t t4 = now_us();
    L.end4 = t4 + (int64_t)(L.duration_s * 1e6);
    int64_t end4 = L.end4;
    double self4 = self_cpu_s();
    if (L.writers > 0 && L.duration_s > 0) {
        for (int w = 0; w < L.writers; w++)
            if (L.c[L.conns + w].state == S_IDLE)
                writer_send(&L.c[L.conns + w]);
        run_until(NULL, end4);
        run_until(writers_idle, now_us() + 10 * 1000000LL);
    }
    int64_t t4e = now_us();
    double cpu4 = L.server_pid ? proc_cpu_s(L.server_pid) : -1;
    double self_end = self_cpu_s();
    long rss_end = L.server_pid ? proc_rss_kib(L.server_pid) : -1;
    int64_t ok4 = L.puts_ok - ok3;
    double w_s = (double)(end4 - t4) / 1e6;
    double put_s = w_s > 0 ? (double)ok4 / w_s : 0;
    double wall = (double)(t4e - t1) / 1e6;
    double srv_cpu = cpu4 >= 0 && cpu0 >= 0 ? cpu4 - cpu0 : -1;
    double rss_per_conn = (rss_idle >= 0 && rss0 >= 0 && L.ready > 0)
                              ? (double)(rss_idle - rss0) * 1024.0 / L.ready
                              : -1;
    int alive = 0;
    for (int i = 0; i < L.conns; i++)
        alive += L.c[i].state == S_READY;

    FILE *o = stdout;
    fprintf(o, "hp-load %s: target %s, %d conns over %d households, %d writers\n", L.label,
            L.target_text, L.conns, L.households, L.writers);
    fprintf(o, "  connect: %d READY, %d failed in %.2f s = %.0f conn/s; %d still open at the end\n",
            L.ready, L.failed, setup_s, setup_s > 0 ? L.ready / setup_s : 0, alive);
    print_hist(o, "setup latency", &L.setup, 1000, "ms");
    if (L.server_pid)
        fprintf(o, "  server RSS: %ld KiB before, %ld KiB idle with %d streams (%.2f KiB/conn), "
                   "%ld KiB at the end\n",
                rss0, rss_idle, L.ready, rss_per_conn / 1024, rss_end);
    fprintf(o, "  fan-out rounds: %d done, %d timed out (%.2f s)\n", rounds_done, rounds_timeout,
            (double)(t3e - t3) / 1e6);
    print_hist(o, "fan-out (rounds)", &L.fanout, 1000, "ms");
    print_hist(o, "  after the 200", &L.after200, 1000, "ms");
    print_hist(o, "PUT latency (rounds)", &put_fan, 1000, "ms");
    fprintf(o, "  writes: %lld ok in %.2f s = %.0f PUT/s; 409: %lld, errors: %lld\n",
            (long long)ok4, w_s, put_s, (long long)(L.puts_409 - c3),
            (long long)(L.puts_err - e3));
    print_hist(o, "PUT latency (load)", &L.put_lat, 1000, "ms");
    print_hist(o, "fan-out (under load)", &L.fanout_load, 1000, "ms");
    print_hist(o, "  after the 200", &L.after200_load, 1000, "ms");
    fprintf(o, "  frames read %lld (events %lld, %lld before their 200), closes %lld\n",
            (long long)L.frames, (long long)L.events, (long long)L.frames_before_200,
            (long long)L.closes_seen);
    if (L.server_pid)
        fprintf(o, "  server CPU: %.2f s over %.2f s = %.0f%% (connect+idle %.2f s, rounds %.2f s, "
                   "writes %.2f s)\n",
                srv_cpu, wall, srv_cpu / wall * 100, cpu1 - cpu0, cpu3 - cpu1, cpu4 - cpu3);
    fprintf(o, "  hp-load CPU: %.2f s over %.2f s = %.0f%% (write phase %.0f%%)\n",
            self_end - self0, wall, (self_end - self0) / wall * 100,
            (double)(t4e - t4) > 0 ? (self_end - self4) / ((double)(t4e - t4) / 1e6) * 100 : 0);

    char *js = NULL;
    size_t jl = 0;
    FILE *j = open_memstream(&js, &jl);
    fprintf(j, "{\"label\":\"%s\",\"target\":\"%s\",\"conns\":%d,\"households\":%d,\"writers\":%d,"
               "\"ready\":%d,\"failed\":%d,\"open_at_end\":%d,\"setup_s\":%.3f,\"setup_rate\":%.1f",
            L.label, L.target_text, L.conns, L.households, L.writers, L.ready, L.failed, alive,
            setup_s, setup_s > 0 ? L.ready / setup_s : 0);
    json_hist(j, "setup", &L.setup);
    fprintf(j, ",\"rounds\":%d,\"rounds_timeout\":%d", rounds_done, rounds_timeout);
    json_hist(j, "fanout", &L.fanout);
    json_hist(j, "fanout_after_200", &L.after200);
    json_hist(j, "put_rounds", &put_fan);
    fprintf(j, ",\"put_ok\":%lld,\"put_s\":%.3f,\"puts_per_s\":%.1f,\"put_409\":%lld,"
               "\"put_errors\":%lld",
            (long long)ok4, w_s, put_s, (long long)(L.puts_409 - c3),
            (long long)(L.puts_err - e3));
    json_hist(j, "put", &L.put_lat);
    json_hist(j, "fanout_load", &L.fanout_load);
    json_hist(j, "fanout_load_after_200", &L.after200_load);
    fprintf(j, ",\"frames\":%lld,\"events\":%lld,\"frames_before_200\":%lld,\"closes\":%lld",
            (long long)L.frames, (long long)L.events, (long long)L.frames_before_200,
            (long long)L.closes_seen);
    fprintf(j, ",\"server_rss_kib\":{\"before\":%ld,\"idle\":%ld,\"end\":%ld},"
               "\"rss_per_conn_kib\":%.3f",
            rss0, rss_idle, rss_end, rss_per_conn >= 0 ? rss_per_conn / 1024 : -1);
    fprintf(j, ",\"server_cpu_s\":{\"connect\":%.2f,\"rounds\":%.2f,\"writes\":%.2f,\"total\":%.2f}",
            cpu1 - cpu0, cpu3 - cpu1, cpu4 - cpu3, srv_cpu);
    fprintf(j, ",\"wall_s\":%.3f,\"load_cpu_s\":%.2f,\"load_cpu_share\":%.3f}", wall,
            self_end - self0, (self_end - self0) / wall);
    fclose(j);
    printf("%s\n", js);
    if (L.json_path) {
        FILE *jf = fopen(L.json_path, "a");
        if (jf) {
            fprintf(jf, "%s\n", js);
            fclose(jf);
        }
    }
    free(js);
    for (int i = 0; i < L.conns + L.writers; i++)
        conn_dead(&L.c[i]);
    for (int w = 0; w < L.writers; w++)
        free(L.tokens_w[w]);
    free(L.tokens_w);
    free(L.c);
    free(L.hh_ready);
    free(L.ring);
    free(L.hbq);
    free(L.hb_due);
    close(L.ep);
    return 0;
}
