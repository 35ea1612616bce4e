/*
 * real.h - `hp-harness run --mode real`: the same scenario files, run
 * against the REAL programs on real sockets (SPEC §2, the "real" adapter).
 *
 * The server is either the harness's own hp-fake-server (started per
 * scenario on a free loopback port, temp --db, --admin, random secret) or
 * a foreign server given by scn_run_opts.server_url (a secret is then
 * needed to mint tokens).  Every scenario client is an hp-fake-client
 * process driven through its JSON-lines driver (docs/CLIENT_DRIVER.md).
 * Scenario durations are virtual: wall time = virtual * time_scale.
 *
 * What real mode cannot observe (frames, link faults, the HTTP journal of a
 * foreign server, tight reconnect timing, policy overrides...) makes the
 * scenario SKIPPED (scn_result.skipped = 1, the reason in failure), never
 * passed.  docs/REAL_MODE.md is the user documentation.
 */
#ifndef HARNESS_REAL_H
#define HARNESS_REAL_H

#include "harness.h"

/* Default wall seconds per virtual second. */
#define SCN_REAL_DEFAULT_SCALE 0.01

/* Run one scenario in real mode.  Same contract as scn_run(): 0 when it
 * ran (passed, failed or skipped: see result), -1 on a runtime error
 * (result->failure says what: a program that cannot start, ...). */
int scn_run_real(const scn_scenario *s, const scn_run_opts *opts, scn_result *result);

/* Why s cannot run in real mode with these options: a malloc'd text
 * listing the unsupported keys, or NULL when it can run. */
char *scn_real_unsupported(const scn_scenario *s, const scn_run_opts *opts);

/* `hp-harness lint --mode real`: one warning per line of s that is skipped,
 * unobservable or behaves differently in real mode with these options (the
 * target), with the reason, added to warnings ("file:line:col: real mode:
 * ...").  Returns the number added.  real_lint.c; docs/REAL_MODE.md. */
int scn_real_lint(const scn_scenario *s, const scn_run_opts *opts, scn_diags *warnings);

#endif
