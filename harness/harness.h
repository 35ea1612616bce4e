/*
 * harness.h - the contract between the scenario engine (scn_*, sim_*, chk_*)
 * and the front end (hx_main.c: CLI, filters, jobs; rpt_*: reports).
 *
 * Ownership: scn_load_file() returns a scenario the caller frees with
 * scn_free(); scn_run() fills a scn_result the caller clears with
 * scn_result_clear().  Runs share nothing: several may run at once on
 * different threads (--jobs).
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

/* ---- diagnostics: "file:line:col: message" ---------------------------- */

typedef struct scn_diag {
    char *file;
    int line, col;     /* 1-based; 0 when unknown */
    char *msg;         /* includes "did you mean 'x'?" when there is one */
} scn_diag;

typedef struct scn_diags {
    scn_diag *v;
    size_t n, cap;
} scn_diags;

void scn_diags_add(scn_diags *d, const char *file, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
void scn_diags_free(scn_diags *d);
/* Prints each as "file:line:col: message\n" to f (a FILE*). */
void scn_diags_print(const scn_diags *d, void *f);

/* ---- scenarios -------------------------------------------------------- */

typedef struct scn_scenario scn_scenario;
struct sim_world;

/* Parse and validate one YAML file.  Returns 0 with *out set, or -1 with
 * every problem found added to diags (nothing to free). */
int scn_load_file(const char *path, scn_scenario **out, scn_diags *diags);
void scn_free(scn_scenario *s);

const char *scn_id(const scn_scenario *s);
const char *scn_name(const scn_scenario *s);
const char *scn_file(const scn_scenario *s);
json_t *scn_rules(const scn_scenario *s);   /* borrowed array of strings */
json_t *scn_tags(const scn_scenario *s);    /* borrowed array of strings */

/* ---- results ---------------------------------------------------------- */

typedef struct scn_result {
    char *id, *name, *file;
    json_t *rules, *tags;       /* owned arrays */
    int passed;                 /* 1 passed, 0 failed */
    char *failure;              /* NULL when passed: "expected ..., got ..." */
    char *failure_loc;          /* "file:line" of the failing step/assertion */
    int failure_step;           /* index into steps, -1 when an invariant failed */
    int64_t sim_ms;             /* virtual time covered */
    uint64_t messages;          /* simulated messages delivered (bench) */
    double wall_ms;             /* wall time: never written to JSON reports */
    json_t *trace;              /* owned array, see below */
    json_t *checks;             /* owned array: [{"name","passed","detail"}] incl. invariants */
    /* Added for --mode real (zero = not skipped): 1 when the scenario could
     * not run in this mode; passed is then 0 and failure holds the reason
     * (e.g. "real mode cannot observe: frames (line 12)").  A skip is not a
     * failure: exit 0 when nothing failed. */
    int skipped;
    /* 1 when the scenario passed every observable assertion but some were
     * unobservable against this target (SPEC §7: per-assertion verdicts;
     * trace "assert" entries then carry "verdict": "unobservable" and a
     * "reason").  passed stays 1: reports show it as PARTIAL. */
    int partial;
    /* Wall time of each step, by step index (the healing phase, when there
     * is one, comes after the last step), malloc'ed, NULL when none; freed
     * by scn_result_clear().  Reports only, never in the trace: the trace
     * stays the same bytes for a seed.  scn_step_wall() appends. */
    double *step_wall_ms;
    size_t step_wall_n;
    /* Trace records a report already left out (a compact JSON report read
     * back by merge-reports); engines leave it 0. */
    uint64_t trace_omitted;
} scn_result;

/* Appends one step's wall time to r->step_wall_ms (dropped when out of
 * memory: timings are informative). */
static inline void scn_step_wall(scn_result *r, double ms)
{
    if ((r->step_wall_n & 15) == 0) {
        double *v = (double *)realloc(r->step_wall_ms, (r->step_wall_n + 16) * sizeof *v);
        if (!v)
            return;
        r->step_wall_ms = v;
    }
    r->step_wall_ms[r->step_wall_n++] = ms;
}

/*
 * Trace entries, in virtual-time order (stable for a seed):
 *   {"t": ms, "actor": "alice"|"server"|"harness", "type": T, ...}
 *   T = "step"   {"index","line","text"}
 *       "http"   {"from","to","method","path","status","idem_key","request","response"}
 *       "ws"     {"from","to","data"} | {"from","to","close": code}
 *       "notify" {"info"}
 *       "event"  {"info"}            (event applied by a client)
 *       "log"    {"level","line"}    (every log record, formatted)
 *       "assert" {"line","passed","text","expected","actual"}
 *
 * Additions by the engine (all optional for readers):
 *   "t" is virtual ms since the scenario's start.
 *   "http": "arrive" (t the request reached the server), "reply_arrive"
 *       (t the answer reached the app), "lost" / "reply_lost" (why it never
 *       arrived: "offline", "link down", "dropped", ...), "aborted": true;
 *       "status" is null when the server never answered, 0 when it was down.
 *   "ws": "arrive" / "lost" likewise; a connect is {"from","to","connect":
 *       path (token redacted),"status": 101 | refusal status | 0}; a connect
 *       timeout is {"from":"server","to":app,"refused":0}.
 *   "observe" {"info"}: the client's other observables (queue changes,
 *       connection state, request results).
 *   "step" with "index": -1 and "text": "heal" starts the healing phase;
 *       an action the app refused (e.g. QUEUE_FULL) is a "step" entry whose
 *       text ends "refused: <reason>".
 */

typedef struct scn_run_opts {
    uint64_t seed;
    const char *mode;           /* "sim" (only mode implemented by scn_run) */
    /* Added for --mode real (real.h: scn_run_real); zero = default. */
    const char *server_url;     /* foreign server http://HOST:PORT; NULL = start our own */
    const char *jwt_secret;     /* HS256 secret (required with server_url) */
    double time_scale;          /* wall s per virtual s; 0 = SCN_REAL_DEFAULT_SCALE */
    const char *bin_dir;        /* dir with fake_server/ and fake_client/; NULL = next to exe */
    const char *ca_file;        /* PEM CAs for an https:// server_url; NULL = the system's */
    double slack_ms;            /* real-world slack of expect/wait_until; 0 = 3000 */
    double max_wall_s;          /* skip scenarios whose waits exceed this; 0 = 120 */
    double settle_ms;           /* least real time of a `wait`; 0 = 100 */
    /* Foreign targets (SPEC §7), NULL = none: */
    const char *server_reset;   /* sh -c before each scenario (clean a staging server) */
    const char *token_cmd;      /* token minting template: {sub} {hh} {dev} {ttl_s} */
    const char *client_cmd;     /* a foreign client instead of hp-fake-client (template) */
    const char *run_prefix;     /* names made unique per run against a foreign server */
    int no_proxy;               /* 1: no hp-fault-proxy (link faults skip, offline is the
                                 * client's own: its FIN reaches the server) */
    /* Added for hp-harness explore (harness/explore/): called in sim mode
     * after the last step when every step passed, before healing, with the
     * world (struct sim_world, sim.h; borrowed, read it only).  It may not
     * change the run: what it finds goes to ud. */
    void (*after_steps)(struct sim_world *w, void *ud);
    void *after_steps_ud;
} scn_run_opts;

/* Run one scenario.  Returns 0 when it ran (passed or failed: see result),
 * -1 on a runtime error (result->failure says what). */
int scn_run(const scn_scenario *s, const scn_run_opts *opts, scn_result *result);
void scn_result_clear(scn_result *r);

/* `hp-harness explore` (harness/explore/explore.h): argv[0] is "explore".
 * Returns the exit status. */
int exp_main(int argc, char **argv);

/* Known rule ids (WS-1..A-4), NULL-terminated: validation and coverage. */
extern const char *const scn_rule_ids[];

#endif
