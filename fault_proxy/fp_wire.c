/*
 * fp_wire.c - HTTP heads, WebSocket frame headers and unverified JWT claims
 * for hp-fault-proxy (see fp_wire.h).  Strict enough to find message
 * boundaries; anything it cannot frame makes the caller forward opaquely.
 */
#define _GNU_SOURCE
#include "fp_wire.h"

#include "hp_log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static const char *find_blank_line(const char *buf, size_t len)
{
    if (len < 4)
        return NULL;
    return memmem(buf, len, "\r\n\r\n", 4);
}

/* The request line "METHOD target HTTP/1.x" or the status line
 * "HTTP/1.x NNN reason"; 0 or -1. */
static int parse_first_line(const char *s, size_t n, int is_response, fpw_head *h)
{
    const char *sp1 = memchr(s, ' ', n);
    if (!sp1)
        return -1;
    if (is_response) {
        if (n < 12 || strncmp(s, "HTTP/1.", 7) != 0)
            return -1;
        const char *d = sp1 + 1;
        if ((size_t)(d - s) + 3 > n || !isdigit((unsigned char)d[0]) ||
            !isdigit((unsigned char)d[1]) || !isdigit((unsigned char)d[2]))
            return -1;
        h->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
        return 0;
    }
    size_t ml = (size_t)(sp1 - s);
    if (ml == 0 || ml >= sizeof h->method)
        return -1;
    for (size_t i = 0; i < ml; i++)
        if (!isupper((unsigned char)s[i]))
            return -1;
    memcpy(h->method, s, ml);
    h->method[ml] = '\0';
    const char *t = sp1 + 1;
    const char *end = s + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t || (size_t)(end - sp2) < 9 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    const char *q = memchr(t, '?', (size_t)(sp2 - t));
    h->path = dup_range(t, (size_t)((q ? q : sp2) - t));
    if (q)
        h->query = dup_range(q + 1, (size_t)(sp2 - q - 1));
    return h->path ? 0 : -1;
}

static int token_in_list(const char *v, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == wl && strncasecmp(p, word, wl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

long fpw_head_parse(const char *buf, size_t len, int is_response, fpw_head *out)
{
    const char *blank = find_blank_line(buf, len < FPW_HEAD_MAX ? len : FPW_HEAD_MAX);
    if (!blank) {
        /* Judge the first line as soon as it is whole, so bytes that are
         * not HTTP go through at once instead of waiting for a blank line
         * that may never come. */
        const char *eol = memmem(buf, len, "\r\n", 2);
        if (eol) {
            fpw_head t;
            memset(&t, 0, sizeof t);
            int bad = parse_first_line(buf, (size_t)(eol - buf), is_response, &t) != 0;
            fpw_head_free(&t);
            if (bad)
                return -1;
        } else if (len > 0 && !(buf[0] >= 'A' && buf[0] <= 'Z')) {
            return -1;
        }
        return len >= FPW_HEAD_MAX ? -1 : 0;
    }
    size_t head_len = (size_t)(blank - buf) + 4;
    fpw_head h;
    memset(&h, 0, sizeof h);
    h.content_length = -1;
    h.headers = json_object();
    const char *line = buf;
    const char *eol = memmem(line, head_len, "\r\n", 2);
    if (!h.headers || parse_first_line(line, (size_t)(eol - line), is_response, &h) != 0)
        goto bad;
    for (line = eol + 2; line < blank + 2; line = eol + 2) {
        eol = memmem(line, (size_t)(blank + 2 - line), "\r\n", 2);
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || colon == line)
            goto bad;
        char *name = dup_range(line, (size_t)(colon - line));
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        char *val = dup_range(v, (size_t)(ve - v));
        if (!name || !val) {
            free(name);
            free(val);
            goto bad;
        }
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (strcmp(name, "content-length") == 0) {
            char *e = NULL;
            long long n = strtoll(val, &e, 10);
            if (e == val || *e || n < 0) {
                free(name);
                free(val);
                goto bad;
            }
            h.content_length = n;
        } else if (strcmp(name, "transfer-encoding") == 0) {
            h.chunked = token_in_list(val, "chunked");
        } else if (strcmp(name, "upgrade") == 0) {
            h.upgrade_ws = token_in_list(val, "websocket");
        }
        if (strcmp(name, "authorization") != 0) {
            /* A token may ride in other headers too (a cookie, a WebSocket
             * subprotocol): journaled values are redacted like the logs
             * .  A value can grow ("token=a" -> "token=[REDACTED]"). */
            size_t rl = strlen(val) * 2 + 16;
            char *red = malloc(rl);
            if (!red) {
                free(name);
                free(val);
                goto bad;
            }
            hp_log_redact(val, red, rl);
            free(val);
            val = red;
        }
        if (strcmp(name, "authorization") == 0) {
            /* Never journaled; only its claims are read, for scoping. */
            if (strncasecmp(val, "Bearer ", 7) == 0 && !h.bearer)
                h.bearer = strdup(val + 7);
        } else if (json_is_string(json_object_get(h.headers, name))) {
            /* A repeated header: keep every value, comma-joined (RFC 9110 5.3). */
            const char *old = json_string_value(json_object_get(h.headers, name));
            size_t n = strlen(old) + strlen(val) + 3;
            char *j = malloc(n);
            if (j) {
                snprintf(j, n, "%s, %s", old, val);
                json_object_set_new(h.headers, name, json_string(j));
                free(j);
            }
        } else {
            /* json_string refuses invalid UTF-8: such a header is left out. */
            json_t *s = json_string(val);
            if (s)
                json_object_set_new(h.headers, name, s);
        }
        free(name);
        free(val);
    }
    *out = h;
    return (long)head_len;
bad:
    fpw_head_free(&h);
    return -1;
}

void fpw_head_free(fpw_head *h)
{
    if (!h)
        return;
    free(h->path);
    free(h->query);
    free(h->bearer);
    json_decref(h->headers);
    memset(h, 0, sizeof *h);
}

char *fpw_query_param(const char *query, const char *name)
{
    if (!query)
        return NULL;
    size_t nl = strlen(name);
    for (const char *p = query; *p;) {
        const char *e = strchr(p, '&');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return dup_range(p + nl + 1, l - nl - 1);
        if (!e)
            break;
        p = e + 1;
    }
    return NULL;
}

static int b64url_val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

int fpw_jwt_claims(const char *jwt, char **sub, char **dev)
{
    *sub = NULL;
    *dev = NULL;
    const char *d1 = jwt ? strchr(jwt, '.') : NULL;
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || d2 - d1 - 1 > 8192)
        return -1;
    size_t n = (size_t)(d2 - d1 - 1);
    unsigned char *raw = malloc(n + 1);
    if (!raw)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)d1[1 + i]);
        if (v < 0) {
            if (d1[1 + i] == '=')
                break;
            free(raw);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[o++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    json_t *j = json_loadb((const char *)raw, o, 0, NULL);
    free(raw);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    const char *s = json_string_value(json_object_get(j, "sub"));
    const char *dv = json_string_value(json_object_get(j, "dev"));
    *sub = s ? strdup(s) : NULL;
    *dev = dv ? strdup(dv) : NULL;
    json_decref(j);
    return 0;
}

int fpw_frame_header(const uint8_t *p, size_t n, fpw_frame *f)
{
    if (n < 2)
        return 0;
    size_t need = 2;
    uint64_t len = p[1] & 0x7F;
    if (len == 126)
        need += 2;
    else if (len == 127)
        need += 8;
    int masked = (p[1] & 0x80) != 0;
    if (masked)
        need += 4;
    if (n < need)
        return 0;
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0F;
    f->masked = masked;
    size_t i = 2;
    if (len == 126) {
        len = ((uint64_t)p[2] << 8) | p[3];
        i = 4;
    } else if (len == 127) {
        len = 0;
        for (int k = 0; k < 8; k++)
            len = (len << 8) | p[2 + k];
        i = 10;
    }
    if (masked) {
        memcpy(f->mask, p + i, 4);
        i += 4;
    } else {
        memset(f->mask, 0, 4);
    }
    f->payload_len = len;
    f->header_len = i;
    return 1;
}

void fpw_unmask(uint8_t *dst, const uint8_t *src, size_t n, const fpw_frame *f, uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = f->masked ? (uint8_t)(src[i] ^ f->mask[(offset + i) & 3]) : src[i];
}

const char *fpw_opcode_name(int opcode)
{
    switch (opcode) {
    case 0: return "continuation";
    case 1: return "text";
    case 2: return "binary";
    case 8: return "close";
    case 9: return "ping";
    case 10: return "pong";
    default: return "reserved";
    }
}
