/*
 * fuzz_scn_sim.c - the loader and the simulator together: a scenario that
 * loads is run (scn_run, mode sim, fixed seed) - both cores, the virtual
 * network, the steps, expectations and invariants.
 *
 * Input: a scenario file's text.  Oracles: scn_run returns 0 or -1 with a
 * failure message; a failed result names its failure.  Scenarios that ask
 * for more than an hour of virtual time per wait or many repeats are
 * still run (the engine bounds them); libFuzzer's -timeout catches a run
 * that does not end.  Sanitizers catch the rest (issue 11: a huge policy
 * heartbeat_interval overflowed the server's deadline arithmetic).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fz_util.h"
#include "harness.h"
#include "scn_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return -1;
    scn_diags d = {0};
    scn_scenario *s = NULL;
    if (scn_load_string("fuzz.yaml", (const char *)data, size, &s, &d) != 0) {
        scn_diags_free(&d);
        return 0;
    }
    scn_diags_free(&d);
    scn_run_opts o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    o.mode = "sim";
    scn_result r;
    memset(&r, 0, sizeof r);
    int rc = scn_run(s, &o, &r);
    if (rc != 0 || !r.passed)
        FZ_CHECK(r.failure && r.failure[0], "failed run without a failure message");
    scn_result_clear(&r);
    scn_free(s);
    return 0;
}
