/*
 * fp_unit.c - the forwarding engine's reading of the wire (see fp_pair.h):
 * each direction's bytes are cut into units, an HTTP/1.1 message with its
 * Content-Length body or one WebSocket frame, journaled the moment they are
 * whole, and matched against the per-unit faults (dropped and held
 * responses, dropped messages, cuts).  Whatever cannot be framed
 * (chunked bodies, unsized responses, garbage, frames over FP_UNIT_MAX)
 * switches the direction to opaque forwarding, noted in the journal.
 */
#define _GNU_SOURCE
#include "fp_pair.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_wire.h"
#include "hp_log.h"

static const char *dir_name(const fp_dir *d)
{
    return d->which == FPF_C2S ? "c2s" : "s2c";
}

/* ---- queueing --------------------------------------------------------------- */

/* Queue bytes for d's destination.  The delay is the sum of the latency
 * faults covering the pair in this direction (each with its jitter), plus
 * extra_delay (a held response); FIFO order is kept.  Returns the delay
 * applied (ms). */
int64_t fpp_enqueue(fp_proxy *p, fp_pair *pr, fp_dir *d, const uint8_t *data, size_t len,
                    int64_t extra_delay, int close_after, int64_t now)
{
    int64_t delay = 0;
    for (fp_fault *f = p->faults; f; f = f->next) {
        if (f->kind != FPF_LATENCY || !(f->dir & d->which) || !fpp_covered(pr, &f->scope))
            continue;
        int64_t dl = f->ms;
        if (f->jitter_ms > 0) {
            uint64_t span = 2 * (uint64_t)f->jitter_ms + 1;
            dl += (int64_t)(hp_rng_next(&p->rng) % span) - f->jitter_ms;
        }
        if (dl < 0)
            dl = 0;
        delay += dl;
        f->applied++;
    }
    delay += extra_delay;
    fp_unit *u = calloc(1, sizeof *u);
    if (!u)
        return 0;
    u->data = malloc(len ? len : 1);
    if (!u->data) {
        free(u);
        return 0;
    }
    memcpy(u->data, data, len);
    u->len = len;
    u->due = now + delay;
    if (u->due < d->last_due)
        u->due = d->last_due;
    d->last_due = u->due;
    u->close_after = close_after;
    if (d->tail)
        d->tail->next = u;
    else
        d->head = u;
    d->tail = u;
    d->queued += len;
    return delay;
}

/* ---- journal bodies --------------------------------------------------------- */

/* Put a body or message into entry e: "body" as JSON when it parses (and is
 * not over the cap), else "body_text" when it is UTF-8, plus "size". */
static void put_body(json_t *e, const char *key_json, const char *key_text, const uint8_t *b,
                     size_t n)
{
    json_object_set_new(e, "size", json_integer((json_int_t)n));
    if (n == 0)
        return;
    if (n > FP_JOURNAL_BODY_MAX) {
        json_object_set_new(e, "truncated", json_true());
        return;
    }
    json_t *j = json_loadb((const char *)b, n, JSON_DECODE_ANY, NULL);
    if (j) {
        json_object_set_new(e, key_json, j);
        return;
    }
    json_t *s = json_stringn((const char *)b, n);
    if (s)
        json_object_set_new(e, key_text, s);
}

/* ---- cuts ------------------------------------------------------------------- */

static int match_unit(const fp_fault *f, const void *arg)
{
    return (f->cut_units & *(const int *)arg) != 0;
}

/* The cut covering pr in d's direction for a unit of this kind, or NULL. */
static fp_fault *find_cut(fp_proxy *p, fp_pair *pr, fp_dir *d, int unit_kind)
{
    return fpp_find_fault(p, pr, FPF_CUT, d->which, match_unit, &unit_kind);
}

/* Queue the first bytes of the unit at the front of d and close both sides
 * once they are written.  The cut always falls inside the unit: at most
 * total - 1 bytes go through.  Notes it in e. */
static void apply_cut(fp_proxy *p, fp_pair *pr, fp_dir *d, fp_fault *cut, size_t total, json_t *e,
                      int64_t now)
{
    size_t keep = (size_t)cut->after_bytes < total ? (size_t)cut->after_bytes : total - 1;
    fpp_enqueue(p, pr, d, d->in, keep, 0, cut->how_rst ? CLOSE_RST : CLOSE_FIN, now);
    d->cutting = 1;
    json_object_set_new(e, "cut_after", json_integer((json_int_t)keep));
    json_object_set_new(e, "fault", json_integer((json_int_t)cut->id));
}

/* ---- HTTP units ------------------------------------------------------------- */

static void update_claims(fp_pair *pr, const fpw_head *h)
{
    char *tok = h->bearer ? strdup(h->bearer) : fpw_query_param(h->query, "token");
    if (!tok)
        return;
    char *sub = NULL, *dev = NULL;
    if (fpw_jwt_claims(tok, &sub, &dev) == 0 && sub) {
        free(pr->sub);
        free(pr->dev);
        pr->sub = sub;
        pr->dev = dev;
    } else {
        free(sub);
        free(dev);
    }
    free(tok);
}

static int match_req(const fp_fault *f, const void *arg)
{
    const fp_req *r = arg;
    return (strcmp(f->method, "*") == 0 || strcmp(f->method, r->method) == 0) &&
           fnmatch(f->path, r->path ? r->path : "", 0) == 0;
}

/* A whole request (head + body) at the front of c2s. */
static void on_request(fp_proxy *p, fp_pair *pr, fp_dir *d, fpw_head *h, size_t head_len,
                       size_t total, int64_t now)
{
    update_claims(pr, h);
    json_t *e = json_pack("{ssssss}", "kind", "request", "method", h->method, "path", h->path);
    if (h->query) {
        char red[4096];
        hp_log_redact(h->query, red, sizeof red);
        json_object_set_new(e, "query", json_string(red));
    }
    json_object_set(e, "headers", h->headers);
    put_body(e, "body", "body_text", d->in + head_len, total - head_len);
    if (pr->partitioned)
        json_object_set_new(e, "held", json_true());
    fp_req probe = {{0}, h->path, NULL};
    snprintf(probe.method, sizeof probe.method, "%s", h->method);
    fp_fault *drop = d->silent ? NULL
                               : fpp_find_fault(p, pr, FPF_DROP_REQUEST, 0, match_req, &probe);
    if (d->silent || drop) {
        /* Lost before the server: no response will come, so later requests
         * on this connection are not forwarded either (their responses
         * would answer the lost one).  The client times out. */
        json_object_set_new(e, "dropped", json_true());
        if (drop)
            json_object_set_new(e, "fault", json_integer((json_int_t)drop->id));
        else
            json_object_set_new(e, "reason", json_string("after_dropped_request"));
        d->silent = 1;
        fpp_journal(p, pr, e);
        if (drop)
            fpp_fault_used(p, drop);
        return;
    }
    fp_req *r = calloc(1, sizeof *r);
    if (r) {
        snprintf(r->method, sizeof r->method, "%s", h->method);
        r->path = strdup(h->path);
        if (pr->reqs_tail)
            pr->reqs_tail->next = r;
        else
            pr->reqs = r;
        pr->reqs_tail = r;
    }
    fp_fault *cut = find_cut(p, pr, d, FPF_UNIT_HTTP);
    if (cut) {
        apply_cut(p, pr, d, cut, total, e, now);
    } else {
        int64_t dl = fpp_enqueue(p, pr, d, d->in, total, 0, CLOSE_NONE, now);
        if (dl > 0)
            json_object_set_new(e, "delay_ms", json_integer(dl));
    }
    fpp_journal(p, pr, e);
    if (cut)
        fpp_fault_used(p, cut);
    if (h->upgrade_ws)
        d->mode = MODE_WAIT_UPGRADE;
    if (!pr->started) {
        pr->started = 1;
        if (!fpp_partitioned(p, pr))
            fpp_start_upstream(p, pr);
    }
}

/* A whole response at the front of s2c; its request is popped. */
static void on_response(fp_proxy *p, fp_pair *pr, fp_dir *d, fpw_head *h, size_t head_len,
                        size_t total, int64_t now)
{
    fp_req *r = pr->reqs;
    if (r) {
        pr->reqs = r->next;
        if (!pr->reqs)
            pr->reqs_tail = NULL;
    }
    json_t *e = json_pack("{sssi}", "kind", "response", "status", h->status);
    if (r) {
        json_object_set_new(e, "method", json_string(r->method));
        json_object_set_new(e, "path", json_string(r->path ? r->path : ""));
    }
    json_object_set(e, "headers", h->headers);
    put_body(e, "body", "body_text", d->in + head_len, total - head_len);
    fp_fault *drop = NULL, *hold = NULL, *cut = NULL;
    if (r && !d->silent) {
        drop = fpp_find_fault(p, pr, FPF_DROP_RESPONSE, 0, match_req, r);
        if (!drop)
            hold = fpp_find_fault(p, pr, FPF_HOLD_RESPONSE, 0, match_req, r);
    }
    if (!drop && !d->silent)
        cut = find_cut(p, pr, d, FPF_UNIT_HTTP);
    if (d->silent) {
        json_object_set_new(e, "dropped", json_true());
        json_object_set_new(e, "reason", json_string("after_dropped_response"));
    } else if (drop) {
        json_object_set_new(e, "dropped", json_true());
        json_object_set_new(e, "fault", json_integer((json_int_t)drop->id));
        /* Later responses on this connection would answer the wrong request
         * for the client: the connection stays open and silent instead. */
        d->silent = 1;
    } else if (cut) {
        apply_cut(p, pr, d, cut, total, e, now);
        hold = NULL;
    } else {
        int64_t dl = fpp_enqueue(p, pr, d, d->in, total, hold ? hold->ms : 0, CLOSE_NONE, now);
        if (hold) {
            json_object_set_new(e, "held_ms", json_integer(hold->ms));
            json_object_set_new(e, "fault", json_integer((json_int_t)hold->id));
        }
        if (dl > 0)
            json_object_set_new(e, "delay_ms", json_integer(dl));
    }
    if (pr->partitioned)
        json_object_set_new(e, "held", json_true());
    fpp_journal(p, pr, e);
    if (drop)
        fpp_fault_used(p, drop);
    if (hold)
        fpp_fault_used(p, hold);
    if (cut)
        fpp_fault_used(p, cut);
    if (r) {
        free(r->path);
        free(r);
    }
    if (h->status == 101) {
        pr->ws = 1;
        pr->s2c.mode = MODE_WS;
        pr->c2s.mode = MODE_WS;
    } else if (pr->c2s.mode == MODE_WAIT_UPGRADE) {
        pr->c2s.mode = MODE_HTTP;
    }
}

/* ---- WebSocket units -------------------------------------------------------- */

static int match_msg(const fp_fault *f, const void *arg)
{
    const char *type = arg;
    return strcmp(f->message, "any") == 0 || (type && strcmp(f->message, type) == 0);
}

/* Read the message's JSON into e: type / event_type / revision / entity_id
 * and the whole message as "msg"; returns the type (owned by e) or NULL. */
static const char *describe_msg(json_t *e, int opcode, const uint8_t *m, size_t n)
{
    if (opcode != 1 || n > FP_JOURNAL_BODY_MAX) {
        if (n > FP_JOURNAL_BODY_MAX)
            json_object_set_new(e, "truncated", json_true());
        return NULL;
    }
    json_t *j = json_loadb((const char *)m, n, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    const char *type = NULL;
    static const char *const keys[] = {"type", "event_type", "revision", "entity_id"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(j, keys[i]);
        if (v)
            json_object_set(e, keys[i], v);
    }
    json_object_set_new(e, "msg", j);
    type = json_string_value(json_object_get(e, "type"));
    if (!type)
        type = json_string_value(json_object_get(e, "event_type"));
    return type;
}

/* One whole frame at the front of d (hdr decoded, total = header + payload). */
static void on_frame(fp_proxy *p, fp_pair *pr, fp_dir *d, const fpw_frame *fr, size_t total,
                     int64_t now)
{
    size_t plen = (size_t)fr->payload_len;
    const uint8_t *payload = d->in + fr->header_len;
    json_t *e = json_pack("{sssssssbsI}", "kind", "frame", "dir",
                          dir_name(d), "opcode",
                          fpw_opcode_name(fr->opcode), "fin", fr->fin, "size", (json_int_t)plen);
    const char *type = NULL;
    int whole_msg = 0;
    uint8_t *plain = malloc(plen ? plen : 1);
    if (plain)
        fpw_unmask(plain, payload, plen, fr, 0);
    if (plain && (fr->opcode == 1 || fr->opcode == 2)) {
        if (fr->fin) {
            whole_msg = 1;
            type = describe_msg(e, fr->opcode, plain, plen);
        } else {
            free(d->msg);
            d->msg = NULL;
            d->msg_len = 0;
            d->msg_op = fr->opcode;
            d->msg_big = plen > FP_JOURNAL_BODY_MAX;
            if (!d->msg_big && (d->msg = malloc(plen ? plen : 1)) != NULL) {
                memcpy(d->msg, plain, plen);
                d->msg_len = plen;
            }
        }
    } else if (plain && fr->opcode == 0) {
        if (!d->msg_big && d->msg && d->msg_len + plen <= FP_JOURNAL_BODY_MAX) {
            uint8_t *q = realloc(d->msg, d->msg_len + plen + 1);
            if (q) {
                memcpy(q + d->msg_len, plain, plen);
                d->msg = q;
                d->msg_len += plen;
            }
        } else {
            d->msg_big = 1;
        }
        if (fr->fin) {
            /* Fragmented messages are journaled on their last frame; they
             * are never dropped (the first fragments are already gone). */
            if (d->msg && !d->msg_big)
                type = describe_msg(e, d->msg_op, d->msg, d->msg_len);
            free(d->msg);
            d->msg = NULL;
            d->msg_len = 0;
            d->msg_big = 0;
        }
    } else if (plain && fr->opcode == 8) {
        if (plen >= 2) {
            pr->ws_close_code = (plain[0] << 8) | plain[1];
            pr->ws_close_from = fpp_side_name(d->src);
            json_object_set_new(e, "close_code", json_integer(pr->ws_close_code));
        }
    }
    free(plain);

    fp_fault *drop = NULL, *cut = NULL;
    if (whole_msg)
        drop = fpp_find_fault(p, pr, FPF_DROP_MESSAGE, d->which, match_msg, type);
    if (!drop && fr->opcode <= 2)
        cut = find_cut(p, pr, d, FPF_UNIT_FRAME);
    if (drop) {
        json_object_set_new(e, "dropped", json_true());
        json_object_set_new(e, "fault", json_integer((json_int_t)drop->id));
    } else if (cut) {
        apply_cut(p, pr, d, cut, total, e, now);
    } else {
        int64_t dl = fpp_enqueue(p, pr, d, d->in, total, 0, CLOSE_NONE, now);
        if (dl > 0)
            json_object_set_new(e, "delay_ms", json_integer(dl));
    }
    if (pr->partitioned)
        json_object_set_new(e, "held", json_true());
    fpp_journal(p, pr, e);
    if (drop)
        fpp_fault_used(p, drop);
    if (cut)
        fpp_fault_used(p, cut);
}

/* ---- cutting the input into units ------------------------------------------- */

static void go_opaque(fp_proxy *p, fp_pair *pr, fp_dir *d, const char *why)
{
    d->mode = MODE_OPAQUE;
    fpp_journal(p, pr, json_pack("{ssssss}", "kind", "opaque", "dir",
                                 dir_name(d), "reason", why));
    /* Bytes that are not HTTP still deserve a server to go to. */
    if (d->which == FPF_C2S && !pr->started) {
        pr->started = 1;
        if (!fpp_partitioned(p, pr))
            fpp_start_upstream(p, pr);
    }
}

void fpp_parse(fp_proxy *p, fp_pair *pr, fp_dir *d, int64_t now)
{
    while (d->in_len > 0 && !pr->dead) {
        if (d->cutting) {
            /* The connection is being cut: what follows is never delivered. */
            fpp_journal(p, pr, json_pack("{sssssIss}", "kind", "discarded", "dir", dir_name(d),
                                         "size", (json_int_t)d->in_len, "reason", "after_cut"));
            d->in_len = 0;
            return;
        }
        if (d->mode == MODE_OPAQUE) {
            /* Not framed, but still on the record: each run of bytes read. */
            json_t *e = json_pack("{sssssI}", "kind", "opaque_bytes", "dir", dir_name(d), "size",
                                  (json_int_t)d->in_len);
            if (d->silent) {
                json_object_set_new(e, "dropped", json_true());
                json_object_set_new(e, "reason", json_string("after_dropped_response"));
            } else {
                int64_t dl = fpp_enqueue(p, pr, d, d->in, d->in_len, 0, CLOSE_NONE, now);
                if (dl > 0)
                    json_object_set_new(e, "delay_ms", json_integer(dl));
            }
            if (pr->partitioned)
                json_object_set_new(e, "held", json_true());
            fpp_journal(p, pr, e);
            d->in_len = 0;
            return;
        }
        if (d->mode == MODE_WAIT_UPGRADE)
            return;
        if (d->mode == MODE_HTTP) {
            fpw_head h;
            long hl = fpw_head_parse((const char *)d->in, d->in_len, d->which == FPF_S2C, &h);
            if (hl == 0)
                return;
            if (hl < 0) {
                go_opaque(p, pr, d, "not_http");
                continue;
            }
            uint64_t body = 0;
            int opaque_after = 0;
            if (d->which == FPF_C2S) {
                if (h.chunked)
                    opaque_after = 1;
                else if (h.content_length > 0)
                    body = (uint64_t)h.content_length;
            } else {
                const char *m = pr->reqs ? pr->reqs->method : "";
                if (strcmp(m, "HEAD") == 0 || (h.status >= 100 && h.status < 200) ||
                    h.status == 204 || h.status == 304)
                    body = 0;
                else if (h.chunked || h.content_length < 0)
                    opaque_after = 1;
                else
                    body = (uint64_t)h.content_length;
            }
            if (body > FP_UNIT_MAX) {
                fpw_head_free(&h);
                go_opaque(p, pr, d, "body_too_big");
                continue;
            }
            size_t total = (size_t)hl + (size_t)body;
            if (d->in_len < total) {
                fpw_head_free(&h);
                return;
            }
            if (d->which == FPF_C2S)
                on_request(p, pr, d, &h, (size_t)hl, total, now);
            else
                on_response(p, pr, d, &h, (size_t)hl, total, now);
            fpw_head_free(&h);
            fpp_buf_consume(d, total);
            if (opaque_after)
                go_opaque(p, pr, d, "chunked_or_unsized_body");
            if (d->which == FPF_S2C && pr->c2s.in_len && pr->c2s.mode != MODE_WAIT_UPGRADE)
                fpp_parse(p, pr, &pr->c2s, now);
            continue;
        }
        /* MODE_WS */
        fpw_frame fr;
        if (!fpw_frame_header(d->in, d->in_len, &fr))
            return;
        if (fr.payload_len > FP_UNIT_MAX) {
            go_opaque(p, pr, d, "frame_too_big");
            continue;
        }
        size_t total = fr.header_len + (size_t)fr.payload_len;
        if (d->in_len < total)
            return;
        on_frame(p, pr, d, &fr, total, now);
        fpp_buf_consume(d, total);
    }
}
