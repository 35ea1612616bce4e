/*
 * fp_control.c - hp-fault-proxy's control API: a small HTTP/1.1 server on
 * --control (part of fp_proxy.c's loop, see fp_proxy.h).  JSON in, JSON out,
 * one request per connection (every answer carries Connection: close).
 *
 * Every refusal goes through reply_error(), so each error body has the same
 * shape: {"error": code, "message": for humans, "key": the offending key
 * when there is one}.  A refused request changes nothing.  The endpoints
 * and their limits are documented in docs/FAULT_PROXY.md.
 */
#define _GNU_SOURCE
#include "fp_proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "fp_wire.h"
#include "hp_log.h"

#define JOURNAL_LIMIT_MAX 10000

typedef struct fp_ctl_conn {
    fp_ev ev;
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;                 /* the response, once made */
    size_t out_len, out_off;
    struct fp_ctl_conn *next;
} fp_ctl_conn;

/* ---- replies ---------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    default: return "Service Unavailable";
    }
}

/* Make the response (takes body); allow is the Allow header or NULL. */
static int reply(fp_ctl_conn *c, int status, json_t *body, const char *allow)
{
    char *b = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!b)
        b = strdup("{}");
    size_t bl = strlen(b);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n%s%s%sConnection: close\r\n\r\n",
                      status, reason(status), bl + 1, allow ? "Allow: " : "", allow ? allow : "",
                      allow ? "\r\n" : "");
    free(c->out);
    c->out = malloc((size_t)hl + bl + 2);
    if (!c->out) {
        free(b);
        c->out_len = 0;
        return 0;
    }
    memcpy(c->out, head, (size_t)hl);
    memcpy(c->out + hl, b, bl);
    c->out[hl + bl] = '\n';
    c->out_len = (size_t)hl + bl + 1;
    c->out_off = 0;
    free(b);
    return 0;
}

static const char *error_code(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 411: return "length_required";
    case 413: return "payload_too_large";
    default: return "unavailable";
    }
}

static int reply_error(fp_ctl_conn *c, int status, const char *key, const char *allow,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static int reply_error(fp_ctl_conn *c, int status, const char *key, const char *allow,
                       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *b = json_pack("{ssss}", "error", error_code(status), "message", msg);
    if (key && *key)
        json_object_set_new(b, "key", json_string(key));
    return reply(c, status, b, allow);
}

/* ---- helpers ---------------------------------------------------------------- */

static json_t *client_json(fp_proxy *p, const fp_client *cl, int with_conns)
{
    char url[96];
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &p->listen_addr.sin_addr, ip, sizeof ip);
    snprintf(url, sizeof url, "http://%s:%d", ip, cl->port);
    json_t *o = json_pack("{sssiss}", "name", cl->name, "port", cl->port, "url", url);
    int part = 0;
    for (fp_fault *f = p->faults; f; f = f->next)
        part |= f->kind == FPF_PARTITION && f->scope.kind == FPF_SCOPE_CLIENT &&
                strcmp(f->scope.client, cl->name) == 0;
    json_object_set_new(o, "partitioned", json_boolean(part));
    json_object_set_new(o, "created_ms", json_integer(cl->created_ms));
    if (with_conns)
        json_object_set_new(o, "connections", fp_pairs_json(p, cl->name));
    return o;
}

/* Refuse every key of obj not in allowed (NULL-terminated); 0 when clean. */
static int check_keys(fp_ctl_conn *c, const json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char list[256] = "";
            for (size_t i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'",
                         i ? ", " : "", allowed[i]);
            reply_error(c, 400, k, NULL, "unknown key '%s' (this endpoint accepts %s)", k,
                        allowed[0] ? list : "no key");
            return -1;
        }
    }
    return 0;
}

/* The request body as a JSON object ({} when empty); NULL after replying. */
static json_t *body_object(fp_ctl_conn *c, const char *body, size_t n)
{
    if (n == 0)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        reply_error(c, 400, "", NULL, "the body is not valid JSON: %s (line %d column %d)",
                    je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        reply_error(c, 400, "", NULL, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Arm f; reply 201 with it (or 200 {"reset": n} for an immediate reset). */
static void arm_and_reply(fp_proxy *p, fp_ctl_conn *c, const fp_fault *f)
{
    if (f->kind != FPF_RESET && p->n_faults >= FP_MAX_FAULTS) {
        reply_error(c, 503, "", NULL, "at most %d armed faults (DELETE /faults)", FP_MAX_FAULTS);
        return;
    }
    int applied = 0;
    fp_fault *a = fp_fault_arm(p, f, &applied);
    if (!a) {
        reply_error(c, 503, "", NULL, "out of memory");
        return;
    }
    if (f->kind == FPF_RESET) {
        json_t *o = fpf_to_json(a);
        json_object_set_new(o, "reset", json_integer(applied));
        free(a);
        reply(c, 200, o, NULL);
        return;
    }
    reply(c, 201, fpf_to_json(a), NULL);
}

/* A fault body for POST /faults or POST /clients/{name}/...: validated,
 * the client scope checked against the registry. */
static void post_fault(fp_proxy *p, fp_ctl_conn *c, json_t *body, int forced_kind,
                       const char *forced_client)
{
    fp_fault f;
    memset(&f, 0, sizeof f);
    char err[512], key[128];
    if (fpf_parse(body, forced_kind, forced_client, &f, err, sizeof err, key, sizeof key) != 0) {
        reply_error(c, 400, key, NULL, "%s", err);
        return;
    }
    if (f.scope.kind == FPF_SCOPE_CLIENT && !fp_client_find(p, f.scope.client)) {
        reply_error(c, 400, "scope.client", NULL, "no client '%s' (POST /clients first)",
                    f.scope.client);
        return;
    }
    /* A connection id names one live connection; ids are never reused, so
     * a fault on a gone one could never apply: most likely a typo. */
    if (f.scope.kind == FPF_SCOPE_CONN && !fp_pair_live(p, f.scope.conn)) {
        reply_error(c, 400, "scope.conn", NULL, "no live connection %llu (GET /clients)",
                    (unsigned long long)f.scope.conn);
        return;
    }
    arm_and_reply(p, c, &f);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return -1;
    uint64_t v = 0;
    for (const char *q = s; *q; q++) {
        if (*q < '0' || *q > '9')
            return -1;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- endpoints -------------------------------------------------------------- */

static int get_journal(fp_proxy *p, fp_ctl_conn *c, const char *query)
{
    fpj_filter f = {NULL, NULL, 0, 0, JOURNAL_LIMIT_MAX};
    char *client = NULL, *sub = NULL;
    const char *q = query ? query : "";
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t l = amp ? (size_t)(amp - q) : strlen(q);
        char part[512];
        if (l >= sizeof part) {
            reply_error(c, 400, "", NULL, "query parameter too long");
            goto out;
        }
        memcpy(part, q, l);
        part[l] = '\0';
        char *eq = strchr(part, '=');
        const char *val = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        uint64_t v = 0;
        if (strcmp(part, "client") == 0) {
            if (*val && !fpf_valid_name(val)) {
                reply_error(c, 400, "client", NULL,
                            "'client' must be a client name (1..64 of [A-Za-z0-9_.-]) or empty "
                            "for the main port");
                goto out;
            }
            free(client);
            client = strdup(val);
            f.client = client;
        } else if (strcmp(part, "sub") == 0) {
            free(sub);
            sub = strdup(val);
            f.sub = sub;
        } else if (strcmp(part, "since") == 0) {
            if (parse_u64(val, INT64_MAX, &v) != 0) {
                reply_error(c, 400, "since", NULL, "'since' must be an integer 0..%lld",
                            (long long)INT64_MAX);
                goto out;
            }
            f.since = v;
        } else if (strcmp(part, "conn") == 0) {
            if (parse_u64(val, INT64_MAX, &v) != 0 || v == 0) {
                reply_error(c, 400, "conn", NULL, "'conn' must be a connection id >= 1");
                goto out;
            }
            f.conn = v;
        } else if (strcmp(part, "limit") == 0) {
            if (parse_u64(val, JOURNAL_LIMIT_MAX, &v) != 0 || v == 0) {
                reply_error(c, 400, "limit", NULL, "'limit' must be an integer 1..%d",
                            JOURNAL_LIMIT_MAX);
                goto out;
            }
            f.limit = (size_t)v;
        } else {
            reply_error(c, 400, part, NULL,
                        "unknown query parameter '%s' (client, sub, conn, since, limit)", part);
            goto out;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    reply(c, 200, fpj_query(p->journal, &f), NULL);
out:
    free(client);
    free(sub);
    return 0;
}

static int route(fp_proxy *p, fp_ctl_conn *c, const char *method, const char *path,
                 const char *query, const char *body, size_t blen)
{
    /* split the path into at most 3 segments */
    char segs[3][128] = {{0}};
    int ns = 0;
    const char *s = path;
    if (*s != '/') {
        reply_error(c, 404, "", NULL, "no such endpoint");
        return 0;
    }
    while (*s == '/' && ns < 4) {
        s++;
        size_t l = strcspn(s, "/");
        if (l == 0 && !*s)
            break;
        if (ns == 3 || l == 0 || l >= sizeof segs[0]) {
            reply_error(c, 404, "", NULL, "no such endpoint: %s", path);
            return 0;
        }
        memcpy(segs[ns], s, l);
        ns++;
        s += l;
    }
    int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0,
        is_del = strcmp(method, "DELETE") == 0;
    if (ns == 1 && strcmp(segs[0], "status") == 0) {
        if (!is_get)
            return reply_error(c, 405, "", "GET", "use GET");
        char a1[INET_ADDRSTRLEN], a2[INET_ADDRSTRLEN], l1[64], l2[64];
        inet_ntop(AF_INET, &p->listen_addr.sin_addr, a1, sizeof a1);
        inet_ntop(AF_INET, &p->control_addr.sin_addr, a2, sizeof a2);
        snprintf(l1, sizeof l1, "%s:%d", a1, ntohs(p->listen_addr.sin_port));
        snprintf(l2, sizeof l2, "%s:%d", a2, ntohs(p->control_addr.sin_port));
        json_t *o = json_pack("{ssssssss}", "version", FP_VERSION, "listen", l1, "control", l2,
                              "upstream", p->up_url);
        json_object_set_new(o, "clients", json_integer(p->n_clients));
        json_object_set_new(o, "faults", json_integer(p->n_faults));
        json_object_set_new(o, "connections", json_integer(p->n_pairs));
        json_object_set_new(o, "journal_entries", json_integer((json_int_t)fpj_count(p->journal)));
        json_object_set_new(o, "journal_bytes", json_integer((json_int_t)fpj_bytes(p->journal)));
        json_object_set_new(o, "journal_dropped",
                            json_integer((json_int_t)fpj_dropped(p->journal)));
        return reply(c, 200, o, NULL);
    }
    if (ns >= 1 && strcmp(segs[0], "clients") == 0) {
        if (ns == 1) {
            if (is_get) {
                json_t *arr = json_array();
                for (fp_client *cl = p->clients; cl; cl = cl->next)
                    json_array_append_new(arr, client_json(p, cl, 1));
                json_t *o = json_pack("{so}", "clients", arr);
                json_object_set_new(o, "main", json_pack("{so}", "connections",
                                                         fp_pairs_json(p, "")));
                return reply(c, 200, o, NULL);
            }
            if (!is_post)
                return reply_error(c, 405, "", "GET, POST", "use GET or POST");
            json_t *b = body_object(c, body, blen);
            if (!b)
                return 0;
            static const char *const keys[] = {"name", "port", NULL};
            json_t *jn = json_object_get(b, "name"), *jp = json_object_get(b, "port");
            if (check_keys(c, b, keys) != 0) {
            } else if (!jn) {
                reply_error(c, 400, "name", NULL, "missing key 'name'");
            } else if (!json_is_string(jn) || !fpf_valid_name(json_string_value(jn))) {
                reply_error(c, 400, "name", NULL,
                            "'name' must be a string of 1..64 of [A-Za-z0-9_.-]");
            } else if (jp && (!json_is_integer(jp) || json_integer_value(jp) < 0 ||
                              json_integer_value(jp) > 65535)) {
                reply_error(c, 400, "port", NULL,
                            "'port' must be an integer 0..65535 (0: any free port)");
            } else {
                char err[256];
                int st = 0;
                fp_client *cl = fp_client_add(p, json_string_value(jn),
                                              jp ? (int)json_integer_value(jp) : 0, &st, err,
                                              sizeof err);
                if (!cl)
                    reply_error(c, st, st == 409 && !jp ? "name" : jp ? "port" : "", NULL, "%s",
                                err);
                else
                    reply(c, 201, client_json(p, cl, 0), NULL);
            }
            json_decref(b);
            return 0;
        }
        fp_client *cl = fp_client_find(p, segs[1]);
        if (!cl)
            return reply_error(c, 404, "", NULL, "no client '%s'", segs[1]);
        if (ns == 2) {
            if (is_get)
                return reply(c, 200, client_json(p, cl, 1), NULL);
            if (!is_del)
                return reply_error(c, 405, "", "GET, DELETE", "use GET or DELETE");
            json_t *o = client_json(p, cl, 0);
            fp_client_remove(p, cl);
            json_object_set_new(o, "deleted", json_true());
            return reply(c, 200, o, NULL);
        }
        const char *act = segs[2];
        int kind = strcmp(act, "partition") == 0 ? FPF_PARTITION
                   : strcmp(act, "reset") == 0   ? FPF_RESET
                   : strcmp(act, "faults") == 0  ? -1
                   : strcmp(act, "heal") == 0    ? -2
                                                 : -3;
        if (kind == -3)
            return reply_error(c, 404, "", NULL,
                               "no such endpoint: /clients/%s/%s (partition, heal, reset, "
                               "faults)", cl->name, act);
        if (!is_post)
            return reply_error(c, 405, "", "POST", "use POST");
        json_t *b = body_object(c, body, blen);
        if (!b)
            return 0;
        static const char *const none[] = {NULL};
        if (kind == -2) {
            if (check_keys(c, b, none) == 0) {
                json_t *ids = json_array();
                for (fp_fault *f = p->faults, *n; f; f = n) {
                    n = f->next;
                    if (f->kind == FPF_PARTITION && f->scope.kind == FPF_SCOPE_CLIENT &&
                        strcmp(f->scope.client, cl->name) == 0) {
                        json_array_append_new(ids, json_integer((json_int_t)f->id));
                        fp_fault_remove(p, f);
                    }
                }
                json_t *o = json_pack("{sssIso}", "client", cl->name, "healed",
                                      (json_int_t)json_array_size(ids), "faults", ids);
                reply(c, 200, o, NULL);
            }
        } else if (kind == FPF_PARTITION) {
            fp_fault *have = NULL;
            for (fp_fault *f = p->faults; f; f = f->next)
                if (f->kind == FPF_PARTITION && f->scope.kind == FPF_SCOPE_CLIENT &&
                    strcmp(f->scope.client, cl->name) == 0)
                    have = f;
            fp_fault f;
            memset(&f, 0, sizeof f);
            char err[512], key[128];
            if (have && fpf_parse(b, kind, cl->name, &f, err, sizeof err, key, sizeof key) == 0)
                reply(c, 200, fpf_to_json(have), NULL);   /* already partitioned */
            else
                post_fault(p, c, b, kind, cl->name);     /* arms, or says what is wrong */
        } else {
            post_fault(p, c, b, kind, cl->name);
        }
        json_decref(b);
        return 0;
    }
    if (ns >= 1 && strcmp(segs[0], "faults") == 0) {
        if (ns == 1) {
            if (is_get) {
                json_t *arr = json_array();
                for (fp_fault *f = p->faults; f; f = f->next)
                    json_array_append_new(arr, fpf_to_json(f));
                return reply(c, 200, json_pack("{so}", "faults", arr), NULL);
            }
            if (is_del) {
                int n = 0;
                while (p->faults) {
                    fp_fault_remove(p, p->faults);
                    n++;
                }
                return reply(c, 200, json_pack("{si}", "deleted", n), NULL);
            }
            if (!is_post)
                return reply_error(c, 405, "", "GET, POST, DELETE", "use GET, POST or DELETE");
            json_t *b = body_object(c, body, blen);
            if (!b)
                return 0;
            post_fault(p, c, b, -1, NULL);
            json_decref(b);
            return 0;
        }
        if (ns > 2)
            return reply_error(c, 404, "", NULL, "no such endpoint: %s", path);
        uint64_t id = 0;
        if (parse_u64(segs[1], INT64_MAX, &id) != 0)
            return reply_error(c, 404, "", NULL, "no fault '%s' (ids are integers)", segs[1]);
        fp_fault *f = fp_fault_find(p, id);
        if (!f)
            return reply_error(c, 404, "", NULL, "no armed fault %llu", (unsigned long long)id);
        if (is_get)
            return reply(c, 200, fpf_to_json(f), NULL);
        if (!is_del)
            return reply_error(c, 405, "", "GET, DELETE", "use GET or DELETE");
        json_t *o = fpf_to_json(f);
        fp_fault_remove(p, f);
        json_object_set_new(o, "deleted", json_true());
        return reply(c, 200, o, NULL);
    }
    if (ns == 1 && strcmp(segs[0], "journal") == 0) {
        if (is_get)
            return get_journal(p, c, query);
        if (is_del) {
            size_t n = fpj_count(p->journal);
            fpj_clear(p->journal);
            return reply(c, 200, json_pack("{sI}", "deleted", (json_int_t)n), NULL);
        }
        return reply_error(c, 405, "", "GET, DELETE", "use GET or DELETE");
    }
    reply_error(c, 404, "", NULL,
                "no such endpoint: %s (status, clients, faults, journal: docs/FAULT_PROXY.md)",
                path);
    return 0;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_free(fp_proxy *p, fp_ctl_conn *c)
{
    for (fp_ctl_conn **pp = &p->ctl_conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    fp_unwatch(p, c->fd);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

void fp_control_accept(fp_proxy *p)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(p->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        fp_ctl_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->ev = (fp_ev){FP_EV_CONTROL_CONN, c};
        c->next = p->ctl_conns;
        p->ctl_conns = c;
        fp_watch(p, fd, &c->ev, EPOLLIN);
    }
}

/* Parse what has arrived; make the response when the request is whole. */
static void try_request(fp_proxy *p, fp_ctl_conn *c)
{
    fpw_head h;
    long hl = fpw_head_parse(c->in, c->in_len, 0, &h);
    if (hl == 0)
        return;
    if (hl < 0) {
        reply_error(c, 400, "", NULL, "not an HTTP/1.1 request");
        return;
    }
    if (h.chunked) {
        reply_error(c, 411, "", NULL, "send the body with Content-Length");
    } else if (h.content_length > FP_CONTROL_BODY_MAX) {
        reply_error(c, 413, "", NULL, "a control body is at most %d bytes", FP_CONTROL_BODY_MAX);
    } else {
        size_t bl = h.content_length > 0 ? (size_t)h.content_length : 0;
        if (c->in_len >= (size_t)hl + bl) {
            hp_log(&p->env, HP_LOG_DEBUG, "control", "method=%s path=%s", h.method, h.path);
            route(p, c, h.method, h.path, h.query, c->in + hl, bl);
        }
    }
    fpw_head_free(&h);
}

void fp_control_event(fp_proxy *p, fp_ctl_conn *c, uint32_t events)
{
    if (!c->out && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        char buf[16384];
        for (;;) {
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (c->in_len + (size_t)n > FP_CONTROL_BODY_MAX + 64 * 1024) {
                    reply_error(c, 413, "", NULL, "request too large");
                    break;
                }
                if (c->in_len + (size_t)n + 1 > c->in_cap) {
                    size_t cap = (c->in_len + (size_t)n + 1) * 2;
                    char *q = realloc(c->in, cap);
                    if (!q) {
                        conn_free(p, c);
                        return;
                    }
                    c->in = q;
                    c->in_cap = cap;
                }
                memcpy(c->in + c->in_len, buf, (size_t)n);
                c->in_len += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n < 0 && errno == EINTR)
                continue;
            conn_free(p, c);   /* closed before a whole request */
            return;
        }
        if (!c->out)
            try_request(p, c);
        if (c->out)
            fp_watch(p, c->fd, &c->ev, EPOLLOUT);
    }
    if (c->out) {
        while (c->out_off < c->out_len) {
            ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            c->out_off += (size_t)w;
        }
        conn_free(p, c);
    }
}

void fp_control_free_all(fp_proxy *p)
{
    while (p->ctl_conns)
        conn_free(p, p->ctl_conns);
}
