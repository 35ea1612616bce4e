/*
 * hp_load_proto.c - what hp-load's connections say (hp_load_int.h).
 *
 * Inputs: bytes read from a stream connection (upgrade answer, frames) or
 * a writer (HTTP answers).  Outputs: HELLO and heartbeats, PUTs, and the
 * figures: READY count and setup latency, fan-out latency per listener
 * (the PUT's send time travels in the task's title), PUT latency and
 * status counts.  Ownership: nothing beyond L (fan-out slots: L.ring).
 */
#define _GNU_SOURCE
#include "hp_load_int.h"

/* ---- fan-out bookkeeping ------------------------------------------------ */

rev_slot *ld_slot(int hh, int64_t rev)
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
    rev_slot *s = ld_slot(k->hh, rev);
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
    rev_slot *s = ld_slot(hh, rev);
    if (s->rev != rev) {
        s->rev = rev;
        s->got = 0;
    }
    s->t200 = t;
}

/* ---- stream connections -------------------------------------------------- */

void ld_hb_push(int i, int64_t due)
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
        if (ld_has(m, n, "\"READY\"")) {
            int64_t hb = 0;
            if (ld_json_int_field(m, n, "heartbeat_interval_ms", &hb) == 0 && hb > 0 &&
                !L.hb_interval_us)
                L.hb_interval_us = hb * 1000;
            k->state = S_READY;
            L.inflight_connects--;
            L.ready++;
            L.hh_ready[k->hh]++;
            lh_add(&L.setup, (uint64_t)(t - k->t_start));
            ld_hb_push(k->idx, t + (L.hb_interval_us ? L.hb_interval_us : 30000000));
        } else if (ld_has(m, n, "RESYNC_REQUIRED")) {
            ld_conn_dead(k);
        }
        return;
    }
    if (!ld_has(m, n, "\"event_type\""))
        return; /* HEARTBEAT */
    int64_t rev = 0, sent = 0;
    /* the PUT's send time travels in the task's title: "load W-N t=<µs>" */
    const char *ts = memmem(m, n, " t=", 3);
    for (const char *p = ts ? ts + 3 : NULL; p && p < m + n && *p >= '0' && *p <= '9'; p++)
        sent = sent * 10 + (*p - '0');
    if (ld_json_int_field(m, n, "revision", &rev) == 0)
        on_event(k, rev, t, sent);
}

/* Parses whole frames out of buf; returns the bytes used. */
size_t ld_ws_parse(lconn *k, const char *buf, size_t len, int64_t t)
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
            ld_conn_dead(k);
            break;
        }
        if (len - off < h + pl)
            break;
        const char *pay = buf + off + h;
        if (op == 1 || op == 0)
            stream_message(k, pay, (size_t)pl, t);
        else if (op == 9)
            ld_ws_send_ctrl(k, 10, (const unsigned char *)pay, (size_t)pl);
        else if (op == 8) {
            L.closes_seen++;
            ld_conn_dead(k);
        }
        off += h + (size_t)pl;
    }
    return off;
}

void ld_stream_start(int i)
{
    lconn *k = &L.c[i];
    k->kind = K_STREAM;
    k->idx = i;
    k->hh = i % L.households;
    k->t_start = ld_now_us();
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
        ld_conn_dead(k);
    }
}

void ld_stream_connected(lconn *k)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        ld_conn_dead(k);
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
    ld_ep_mod(k, EPOLLIN);
    ld_send_bytes(k, req, (size_t)n);
}

/* ---- writers ---------------------------------------------------------- */

void ld_writer_send(lconn *k)
{
    char body[256], req[2048];
    k->t_start = ld_now_us();
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
    ld_send_bytes(k, req, (size_t)n);
}

/* One whole HTTP response in buf?  Returns its length, 0 when incomplete. */
size_t ld_http_response(lconn *k, const char *buf, size_t len, int64_t t)
{
    const char *eoh = memmem(buf, len, "\r\n\r\n", 4);
    if (!eoh)
        return 0;
    size_t hl = (size_t)(eoh - buf) + 4;
    int status = 0;
    if (len < 12 || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        ld_conn_dead(k);
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
        if (ld_json_int_field(body, cl, "revision", &rev) == 0) {
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
