/*
 * hp_load_loop.c - hp-load's sockets and event loop (hp_load_int.h).
 *
 * Inputs: the connections of L.c and their epoll events.  Outputs: bytes
 * on the sockets (buffered when the socket is full), client WebSocket
 * frames (text and control, zero mask), reads handed to the protocol side
 * (hp_load_proto.c), heartbeats due, writers restarted in phase 4.
 * Ownership: a connection's in / out buffers are freed by ld_conn_dead().
 */
#define _GNU_SOURCE
#include "hp_load_int.h"

void ld_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void ld_ep_mod(lconn *k, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(k - L.c)};
    epoll_ctl(L.ep, EPOLL_CTL_MOD, k->fd, &e);
}

void ld_conn_dead(lconn *k)
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
void ld_send_bytes(lconn *k, const char *b, size_t n)
{
    if (k->state == S_DEAD)
        return;
    if (!k->out) {
        ssize_t w = send(k->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            ld_conn_dead(k);
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
        ld_ep_mod(k, EPOLLIN | EPOLLOUT);
        return;
    }
    k->out = realloc(k->out, k->out_len + n);
    memcpy(k->out + k->out_len, b, n);
    k->out_len += n;
}

void ld_flush_out(lconn *k)
{
    while (k->out && k->out_off < k->out_len) {
        ssize_t w = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ld_conn_dead(k);
            return;
        }
        k->out_off += (size_t)w;
    }
    free(k->out);
    k->out = NULL;
    k->out_len = k->out_off = 0;
    ld_ep_mod(k, EPOLLIN);
}

/* A masked client text frame (RFC 6455 5.3; the mask need not be secret). */
void ld_ws_send_text(lconn *k, const char *s)
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
    ld_send_bytes(k, (const char *)f, h + n);
}

void ld_ws_send_ctrl(lconn *k, int opcode, const unsigned char *p, size_t n)
{
    unsigned char f[6 + 125];
    if (n > 125)
        n = 125;
    f[0] = (unsigned char)(0x80 | opcode);
    f[1] = (unsigned char)(0x80 | n);
    memset(f + 2, 0, 4); /* zero mask */
    memcpy(f + 6, p, n);
    ld_send_bytes(k, (const char *)f, 6 + n);
}

/* The first "key": <integer> in s (JSON from the server: the event's own
 * revision comes before its payload's). */
int ld_json_int_field(const char *s, size_t n, const char *key, int64_t *out)
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

int ld_has(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* ---- the loop ------------------------------------------------------------ */

static void on_readable(lconn *k, int64_t t)
{
    for (;;) {
        ssize_t r = recv(k->fd, L.rbuf, sizeof L.rbuf, 0);
        if (r == 0) {
            ld_conn_dead(k);
            return;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ld_conn_dead(k);
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
                    ld_conn_dead(k);
                    return;
                }
                u = (size_t)(eoh - (buf + used)) + 4;
                k->state = S_HELLO;
                ld_ws_send_text(k, "{\"type\":\"HELLO\",\"revision\":0}");
            } else if (k->kind == K_STREAM) {
                u = ld_ws_parse(k, buf + used, len - used, t);
            } else {
                u = ld_http_response(k, buf + used, len - used, t);
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
        ld_ws_send_text(k, "{\"type\":\"HEARTBEAT\",\"locks\":[]}");
        ld_hb_push(i, t + L.hb_interval_us);
    }
}

/* Service sockets and timers until done() or the deadline (µs). */
void ld_run_until(int (*done)(void), int64_t deadline)
{
    struct epoll_event ev[512];
    for (;;) {
        int64_t t = ld_now_us();
        if ((done && done()) || t >= deadline)
            return;
        while (L.phase == 1 && L.inflight_connects < L.parallel && L.next_to_connect < L.conns)
            ld_stream_start(L.next_to_connect++);
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
        t = ld_now_us();
        for (int j = 0; j < n; j++) {
            lconn *k = &L.c[ev[j].data.u32];
            if (k->state == S_DEAD)
                continue;
            if (k->state == S_CONNECTING && (ev[j].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                ld_stream_connected(k);
                continue;
            }
            if (ev[j].events & EPOLLOUT)
                ld_flush_out(k);
            if (k->state != S_DEAD && (ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(k, t);
        }
        heartbeats(t);
        if (L.phase == 4) {
            for (int w = 0; w < L.writers; w++) {
                lconn *k = &L.c[L.conns + w];
                if (k->state == S_IDLE && t < L.end4)
                    ld_writer_send(k);
            }
        }
    }
}
