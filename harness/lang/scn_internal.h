/*
 * scn_internal.h - what the scenario engine's modules share (not for the
 * front end: harness.h is the contract).
 *
 *   scn_yaml.c    libyaml -> a node tree that remembers line/column
 *   scn_diag.c    diagnostics, "did you mean" suggestions
 *   scn_expand.c  vars, for_each, include: the tree expanded before validation
 *   scn_load.c    validation of a scenario file (keywords, actions, steps,
 *                 top level), the scenario object
 *   scn_vhelp.c   the validator's checks of single values (scn_valid.h)
 *   scn_vexpect.c validation of expectations (scn_valid.h)
 *   sim/         the discrete-event world: virtual clock, links, cores (sim_int.h)
 *   scn_match.c   JSON subset matching, history expectations
 *   scn_run.c     steps, actions, expectations, healing
 *   chk_invariants.c  the invariants checked after every scenario
 */
#ifndef SCN_INTERNAL_H
#define SCN_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "harness.h"
#include "hp_policy.h"

/* ---- YAML node tree (scn_yaml.c) ------------------------------------- */

typedef enum scn_node_kind { SCN_SCALAR = 1, SCN_SEQ, SCN_MAP } scn_node_kind;

typedef struct scn_node {
    scn_node_kind kind;
    int line, col;              /* 1-based position of the node's start in the
                                 * scenario file (for a node from an included
                                 * file: the position of its `include:` step) */
    char *src;                  /* NULL, or the included file it comes from
                                 * (owned); src_line/src_col are there */
    int src_line, src_col;
    char *str;                  /* SCN_SCALAR: the text */
    int plain;                  /* SCN_SCALAR: written unquoted (so may be a number) */
    size_t n;                   /* SEQ items / MAP pairs */
    struct scn_node **items;    /* SEQ items, MAP values */
    struct scn_node **keys;     /* MAP keys (scalars) */
} scn_node;

/* Parse YAML text (first document) into a tree.  Syntax errors, non-scalar
 * keys, duplicate keys and alias loops become diagnostics.  0 or -1. */
int scn_yaml_parse(const char *file, const char *text, size_t len, scn_node **out,
                   scn_diags *d);
int scn_yaml_load_file(const char *path, scn_node **out, scn_diags *d);
void scn_node_free(scn_node *n);
/* Appends val (with key, for a MAP) to p; p owns both after.  Arrays grow by
 * doubling: one realloc per item made a mapping of n keys O(n^2) bytes copied. */
void scn_node_push(scn_node *p, scn_node *key, scn_node *val);
/* String comparisons made by this thread's duplicate-key checks so far
 * (a test keeps them linear in the number of keys). */
size_t scn_yaml_key_compares(void);

/* Where a diagnostic about n points: its included file and position there,
 * or main_file and n's own position. */
const char *scn_node_where(const scn_node *n, const char *main_file, int *line, int *col);

/* ---- vars, for_each, include (scn_expand.c) ---------------------------- */

/* Expands *root in place before validation: top-level `vars:`, `{name}`
 * in any string or key, `for_each` items of any list, `include` items of
 * any list (relative to the including file).  Problems become diagnostics
 * naming the file they are in.  0, or -1 (then *root is unchanged). */
int scn_expand(const char *file, scn_node **root, scn_diags *d);
#define SCN_EXPAND_MAX_NODES 1000000 /* nodes an expanded scenario may have */
#define SCN_FOR_EACH_MAX 100000      /* iterations of one for_each */
#define SCN_INCLUDE_DEPTH 8          /* nested includes */

/* MAP lookup: the value node or NULL (also NULL for a non-map). */
const scn_node *scn_map_get(const scn_node *m, const char *key);
const scn_node *scn_map_key(const scn_node *m, const char *key);
/* Scalar text, NULL for a non-scalar. */
const char *scn_str(const scn_node *n);
/* Plain scalar typing (YAML 1.2 core schema subset). */
int scn_is_null(const scn_node *n);
int scn_get_bool(const scn_node *n, int *out);     /* 0 or -1 */
int scn_get_int(const scn_node *n, int64_t *out);  /* 0 or -1 */
/* Convert to JSON: plain scalars become null/bool/integer/real when they
 * look like one, everything else a string.  New reference. */
json_t *scn_node_json(const scn_node *n);
/* Same, substituting "{i}" in strings by i (repeat) when i >= 0. */
json_t *scn_node_json_i(const scn_node *n, long i);
/* send_frame (a raw text frame on a client's stream): arg is the frame as
 * a string, or {"text": s}, or {"size": n} = a HEARTBEAT padded to exactly
 * n bytes (SCN_FRAME_MIN..SCN_FRAME_MAX).  malloc'd text, length in *len;
 * NULL on a malformed arg (the validator refuses those first). */
#define SCN_FRAME_MIN 48
#define SCN_FRAME_MAX 1000000 /* under the driver's 1 MiB command line */
char *scn_frame_text(const json_t *arg, size_t *len);
/* Compact one-line rendering for traces and messages (malloc'd). */
char *scn_node_text(const scn_node *n);
/* "string 'x'", "a list", "a mapping" - for type errors. */
void scn_node_describe(const scn_node *n, char *buf, size_t len);

/* ---- diagnostics helpers (scn_diag.c) -------------------------------- */

/* Sorts d->v[first..] by file, line, column, message and drops exact
 * repetitions (a for_each repeats its body's mistakes once per value). */
void scn_diags_sort_unique(scn_diags *d, size_t first);

/* The candidate closest to word by edit distance, or NULL when none is
 * close enough (distance <= max(1, len/3), or same letters ignoring case). */
const char *scn_suggest(const char *word, const char *const *candidates);
size_t scn_edit_distance(const char *a, const char *b);
/* For rule ids: the id in ids that word spells differently ("q2",
 * "Q-02" -> "Q-2"), or NULL - never a neighbouring id ("R-2" is not
 * "Q-2"). */
const char *scn_suggest_rule(const char *word, const char *const *ids);

/* printf into a new string: malloc'd (the caller frees it), never NULL -
 * aborts on out of memory, as the rest of the engine does. */
char *scn_asprintf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The same for variadic callers (ap is consumed: va_end is the caller's). */
char *scn_vasprintf(const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 0)))
#endif
    ;

/* ---- durations -------------------------------------------------------- */

/* A scenario duration: a string with units ("30s", "1m30s", "250ms").
 * Bare numbers are refused (the unit is required for readability). */
int scn_duration(const scn_node *n, int64_t *ms);

/* ---- the scenario ---------------------------------------------------- */

typedef enum scn_token_kind {
    SCN_TOKEN_VALID = 0,
    SCN_TOKEN_NONE,
    SCN_TOKEN_EXPIRED,
    SCN_TOKEN_BAD_SIGNATURE
} scn_token_kind;

typedef struct scn_client_spec {
    char *name, *user, *household, *device;
    scn_token_kind token;
    int64_t token_ttl_ms;
    int64_t latency_ms;         /* -1: the network default */
    int needs_file_store;       /* a restart with another key needs a real file */
} scn_client_spec;

/* Invariant bits (scn_scenario.invariants_off). */
enum {
    SCN_INV_EDITS_KEPT = 1u << 0,
    SCN_INV_ENTITY_ORDER = 1u << 1,
    SCN_INV_CONFLICTS_LOGGED = 1u << 2,
    SCN_INV_QUEUE_BOUNDED = 1u << 3,
    SCN_INV_CACHE_BOUNDED = 1u << 4,
    SCN_INV_NO_TOKEN_IN_LOGS = 1u << 5
};
extern const char *const scn_invariant_names[]; /* index = bit number */

struct scn_scenario {
    char *file, *id, *name, *description;
    json_t *rules, *tags;
    scn_node *root;
    const scn_node *steps;      /* SEQ */
    hp_policy policy;
    json_t *policy_json;        /* the overrides as written (reports) */
    int64_t start_ms;
    int64_t latency_ms;
    int heal;
    unsigned invariants_off;
    size_t nclients;
    scn_client_spec *clients;
};

int scn_client_index(const scn_scenario *s, const char *name); /* -1 when unknown */

/* Like scn_load_file() on text in memory (tests); file names the source. */
int scn_load_string(const char *file, const char *text, size_t len, scn_scenario **out,
                    scn_diags *diags);

/* ---- keyword tables (scn_load.c; the schema test reads them) ---------- */

extern const char *const scn_top_keys[];
extern const char *const scn_client_keys[];
extern const char *const scn_step_keys[];
extern const char *const scn_client_actions[];
extern const char *const scn_server_actions[];
extern const char *const scn_client_asserts[];
extern const char *const scn_server_asserts[];
extern const char *const scn_log_keys[];
extern const char *const scn_edit_fields[];
extern const char *const scn_task_fields[];  /* task: / cached: keys (+ household in task:) */
extern const char *const scn_log_messages[]; /* every log record name (docs/LOG_RECORDS.md) */
extern const char *const scn_drop_messages[];
extern const char *const scn_conn_states[];

#endif
