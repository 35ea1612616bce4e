/*
 * fp_wire.h - what hp-fault-proxy understands of the wire: HTTP/1.1 heads,
 * WebSocket frame headers, and the claims of a JWT read without checking it.
 *
 * Pure functions over caller buffers: no sockets, no clock, no globals.  The
 * forwarding engine (fp_pair.c) calls them on copies of the bytes it relays;
 * the bytes it forwards are never rewritten.
 */
#ifndef FP_WIRE_H
#define FP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* A head is refused (the direction falls back to opaque forwarding) when it
 * is longer than this without its blank line. */
#define FPW_HEAD_MAX (64 * 1024)

typedef struct fpw_head {
    /* request heads */
    char method[16];           /* "GET", "PUT", ... */
    char *path;                /* malloc'd, the target without '?query' */
    char *query;               /* malloc'd, without '?'; NULL when none */
    /* response heads */
    int status;                /* 0 for a request */
    /* both */
    json_t *headers;           /* owned: {"lower-case-name": "value"}, Authorization left out */
    char *bearer;              /* malloc'd token of "Authorization: Bearer", NULL when none */
    int64_t content_length;    /* -1 when absent */
    int chunked;               /* Transfer-Encoding: chunked */
    int upgrade_ws;            /* Upgrade: websocket */
} fpw_head;

/*
 * Parse one HTTP/1.1 head at buf[0..len).  Returns the head's length
 * including the blank line (> 0) and fills *h (release with
 * fpw_head_free()); 0 when the blank line has not arrived yet (h untouched);
 * -1 when the bytes are not an HTTP head of the expected kind (request when
 * is_response is 0, response otherwise) or the head exceeds FPW_HEAD_MAX.
 */
long fpw_head_parse(const char *buf, size_t len, int is_response, fpw_head *h);
void fpw_head_free(fpw_head *h);

/* The value of query parameter `name` (e.g. "token") in query, malloc'd
 * (not percent-decoded: tokens are base64url), or NULL when absent. */
char *fpw_query_param(const char *query, const char *name);

/*
 * The "sub" and "dev" claims of a JWT, read by base64url-decoding its
 * payload WITHOUT verifying the signature: the proxy only uses them to
 * scope faults, never to grant anything.  *sub / *dev get malloc'd strings
 * or NULL.  Returns 0 when the payload decoded as a JSON object, else -1.
 */
int fpw_jwt_claims(const char *jwt, char **sub, char **dev);

typedef struct fpw_frame {
    int fin;                   /* 1 on the last frame of a message */
    int opcode;                /* 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    int masked;                /* client frames are masked (RFC 6455 5.3) */
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len;         /* 2..14 bytes */
} fpw_frame;

/* Decode a frame header at p[0..n).  Returns 1 and fills *f when the whole
 * header is there, 0 when more bytes are needed. */
int fpw_frame_header(const uint8_t *p, size_t n, fpw_frame *f);

/* dst[i] = src[i] ^ mask[(offset + i) % 4]; dst may equal src.  With
 * masked == 0 this is a copy. */
void fpw_unmask(uint8_t *dst, const uint8_t *src, size_t n, const fpw_frame *f, uint64_t offset);

/* "text", "binary", "close", "ping", "pong", "continuation" or "reserved". */
const char *fpw_opcode_name(int opcode);

#endif
