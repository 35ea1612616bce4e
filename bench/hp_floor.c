/*
 * hp_floor.c - hp-floor: the bare libwebsockets broadcast server that
 * bench/README.md measures hp-fake-server against ("the floor").
 *
 *   hp-floor [--listen 127.0.0.1:PORT]
 *
 * What a server of this wire shape cannot do with less: one lws context,
 * one thread, one protocol for HTTP and the stream, the same event loop
 * (lws's poll(); HP_FLOOR_EVLIB=ev|uv for an event-lib plugin) as srv_lws.c.  No
 * policy and no store: no token check (the household comes from the
 * `hh` query parameter hp-load adds), no HELLO timer, no heartbeats, no
 * log, no replay.  It answers
 *   - a stream message containing "HELLO" with
 *     {"type":"READY","revision":0,"heartbeat_interval_ms":30000};
 *     every other message is ignored;
 *   - PUT /api/v0.2/tasks/<id>?hh=H with body {"task": {...}}: the
 *     household's counter + 1 is the revision; 200 with the task (id and
 *     revision set), and the event {"event_type":"TASK_UPDATED",...} with
 *     the task as payload is queued to every stream of H (the same linear
 *     scan the real server's broadcast does); any other request: 404.
 * Frames are shared between the listeners (reference-counted) and written
 * from SERVER_WRITEABLE.  Memory: per connection the lws wsi plus a 64-byte
 * session; nothing allocated while idle.
 * Exit: 0 on SIGINT/SIGTERM, 2 usage, 3 cannot listen.
 */
#define _GNU_SOURCE
#include <libwebsockets.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define HH_MAX 64
#define BODY_MAX 65536

typedef struct frame {
    int refs;
    size_t len;
    unsigned char data[]; /* LWS_PRE + len */
} frame;

typedef struct qnode {
    struct qnode *next;
    frame *f;
} qnode;

typedef struct pss {
    int ws;                     /* 1: a stream connection */
    struct lws *wsi;
    struct pss *next, *prev;    /* all streams */
    char hh[HH_MAX];
    qnode *head, *tail;
    /* HTTP */
    char *body;
    size_t body_len;
    char id[80];
    int put;
    unsigned char *resp;        /* LWS_PRE + resp_len */
    size_t resp_len;
    int status;
} pss;

typedef struct hh_rev {
    char hh[HH_MAX];
    long long rev;
    struct hh_rev *next;
} hh_rev;

static pss *g_streams;
static hh_rev *g_revs;
static volatile sig_atomic_t g_stop;
static struct lws_context *g_ctx;

static frame *frame_new(const char *s, size_t n)
{
    frame *f = malloc(sizeof *f + LWS_PRE + n);
    if (!f)
        return NULL;
    f->refs = 0;
    f->len = n;
    memcpy(f->data + LWS_PRE, s, n);
    return f;
}

static void frame_unref(frame *f)
{
    if (--f->refs <= 0)
        free(f);
}

static void enqueue(pss *p, frame *f)
{
    qnode *q = malloc(sizeof *q);
    if (!q)
        return;
    q->next = NULL;
    q->f = f;
    f->refs++;
    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    lws_callback_on_writable(p->wsi);
}

static long long next_rev(const char *hh)
{
    for (hh_rev *r = g_revs; r; r = r->next)
        if (!strcmp(r->hh, hh))
            return ++r->rev;
    hh_rev *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    snprintf(r->hh, sizeof r->hh, "%s", hh);
    r->next = g_revs;
    g_revs = r;
    return ++r->rev;
}

static void set_resp(pss *p, int status, const char *s)
{
    size_t n = strlen(s);
    free(p->resp);
    p->resp = malloc(LWS_PRE + n + 1);
    if (p->resp)
        memcpy(p->resp + LWS_PRE, s, n + 1);
    p->resp_len = p->resp ? n : 0;
    p->status = status;
}

/* A complete PUT: revision, answer, broadcast to the household. */
static void put_done(pss *p)
{
    json_t *root = p->body ? json_loadb(p->body, p->body_len, 0, NULL) : NULL;
    json_t *task = root ? json_object_get(root, "task") : NULL;
    if (!json_is_object(task)) {
        set_resp(p, 400, "{\"error\":\"bad_request\",\"message\":\"no task\"}");
        json_decref(root);
        return;
    }
    long long rev = next_rev(p->hh);
    json_object_set_new(task, "id", json_string(p->id));
    json_object_set_new(task, "revision", json_integer(rev));
    char *t = json_dumps(task, JSON_COMPACT);
    json_t *ev = json_pack("{s:s, s:s, s:I, s:O}", "event_type", "TASK_UPDATED", "entity_id",
                           p->id, "revision", (json_int_t)rev, "payload", task);
    char *e = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    set_resp(p, 200, t ? t : "{}");
    if (e) {
        frame *f = frame_new(e, strlen(e));
        if (f) {
            f->refs = 1; /* held while queuing */
            for (pss *s = g_streams; s; s = s->next)
                if (!strcmp(s->hh, p->hh))
                    enqueue(s, f);
            frame_unref(f);
        }
    }
    free(t);
    free(e);
    json_decref(ev);
    json_decref(root);
}

/* The hh query parameter (hp-load adds it), "-" when absent. */
static void get_hh(struct lws *wsi, char *out)
{
    char buf[4096]; /* each fragment is copied whole: the token is long */
    const char *v = lws_get_urlarg_by_name(wsi, "hh=", buf, (int)sizeof buf);
    snprintf(out, HH_MAX, "%s", v ? v : "-");
}

static int http_write(struct lws *wsi, pss *p)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *pp = start,
                                      *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)p->status, "application/json", p->resp_len,
                                    &pp, end) ||
        lws_finalize_write_http_header(wsi, start, &pp, end))
        return -1;
    if (p->resp_len && lws_write(wsi, p->resp + LWS_PRE, p->resp_len, LWS_WRITE_HTTP_FINAL) < 0)
        return -1;
    free(p->resp);
    free(p->body);
    p->resp = NULL;
    p->body = NULL;
    p->body_len = p->resp_len = 0;
    p->status = 0;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    pss *p = user;
    if (!p && reason != LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        const char *uri = in;
        static const char pre[] = "/api/v0.2/tasks/";
        p->put = lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0 &&
                 !strncmp(uri, pre, sizeof pre - 1);
        p->body_len = 0;
        p->hh[0] = 0;
        get_hh(wsi, p->hh);
        snprintf(p->id, sizeof p->id, "%s", p->put ? uri + sizeof pre - 1 : "");
        if (!p->put) {
            set_resp(p, 404, "{\"error\":\"not_found\",\"message\":\"floor: PUT only\"}");
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (p->body_len + len <= BODY_MAX) {
            char *b = realloc(p->body, p->body_len + len + 1);
            if (b) {
                memcpy(b + p->body_len, in, len);
                p->body = b;
                p->body_len += len;
            }
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        put_done(p);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return p->status ? http_write(wsi, p) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        free(p->body);
        free(p->resp);
        p->body = NULL;
        p->resp = NULL;
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* the headers (and the query) are still there: take hh now */
        if (p)
            get_hh(wsi, p->hh);
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        p->ws = 1;
        p->wsi = wsi;
        p->head = p->tail = NULL;
        p->prev = NULL;
        p->next = g_streams;
        if (g_streams)
            g_streams->prev = p;
        g_streams = p;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (p->ws && memmem(in, len, "HELLO", 5)) {
            static const char ready[] =
                "{\"type\":\"READY\",\"revision\":0,\"heartbeat_interval_ms\":30000}";
            frame *f = frame_new(ready, sizeof ready - 1);
            if (f)
                enqueue(p, f);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (p->ws && p->head) {
            qnode *q = p->head;
            if (lws_write(wsi, q->f->data + LWS_PRE, q->f->len, LWS_WRITE_TEXT) < (int)q->f->len)
                return -1;
            p->head = q->next;
            if (!p->head)
                p->tail = NULL;
            frame_unref(q->f);
            free(q);
            if (p->head)
                lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (p && p->ws) {
            if (p->prev)
                p->prev->next = p->next;
            else
                g_streams = p->next;
            if (p->next)
                p->next->prev = p->prev;
            while (p->head) {
                qnode *q = p->head;
                p->head = q->next;
                frame_unref(q->f);
                free(q);
            }
            p->ws = 0;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"floor", callback, sizeof(pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_ctx)
        lws_cancel_service(g_ctx);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8090";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: hp-floor [--listen 127.0.0.1:PORT]\n"
                 "The bare broadcast floor of bench/README.md (no policy, no store).");
            return 0;
        } else {
            fprintf(stderr, "hp-floor: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || atoi(colon + 1) <= 0) {
        fprintf(stderr, "hp-floor: bad --listen %s (HOST:PORT)\n", listen);
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    /* lws sizes its descriptor table from the limit at context creation. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = atoi(colon + 1);
    info.iface = host[0] ? host : NULL;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    /* The same loop as hp-fake-server: lws's own poll() loop, which walks
     * every descriptor per round.  HP_FLOOR_EVLIB=ev|uv: lws's libev /
     * libuv event-lib plugin (epoll) instead, to measure what that loop
     * would give (bench/README.md). */
    const char *evlib = getenv("HP_FLOOR_EVLIB");
    if (evlib && !strcmp(evlib, "ev"))
        info.options |= LWS_SERVER_OPTION_LIBEV;
    else if (evlib && !strcmp(evlib, "uv"))
        info.options |= LWS_SERVER_OPTION_LIBUV;
    g_ctx = lws_create_context(&info);
    if (!g_ctx) {
        fprintf(stderr, "hp-floor: cannot listen on %s\n", listen);
        return 3;
    }
    fprintf(stderr, "hp-floor: listening on %s\n", listen);
    while (!g_stop && lws_service(g_ctx, 0) >= 0)
        ;
    lws_context_destroy(g_ctx);
    while (g_revs) {
        hh_rev *n = g_revs->next;
        free(g_revs);
        g_revs = n;
    }
    return 0;
}
