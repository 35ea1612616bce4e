/*
 * hx_test_load.h - for the harness's cmocka tests that run scenarios
 * (test_sim.c, test_checker_sim.c): hx_test_load() loads a scenario from
 * text or fails the test with the loader's diagnostics on stderr.
 * Include after <cmocka.h> and scn_internal.h.  The scenario is the
 * caller's (scn_scenario_free).
 */
#ifndef HX_TEST_LOAD_H
#define HX_TEST_LOAD_H

#include <string.h>

static inline scn_scenario *hx_test_load(const char *file, const char *text)
{
    scn_diags d = {0};
    scn_scenario *s = NULL;
    if (scn_load_string(file, text, strlen(text), &s, &d)) {
        scn_diags_print(&d, stderr);
        fail_msg("scenario %s does not validate", file);
    }
    scn_diags_free(&d);
    return s;
}

#endif
