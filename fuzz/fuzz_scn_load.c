/*
 * fuzz_scn_load.c - the YAML scenario loader (harness/lang: scn_yaml.c,
 * scn_load.c, scn_diag.c).
 *
 * Input: a scenario file's text.  Loaded as a scenario and, separately,
 * parsed as a YAML node tree rendered back as JSON and as text.  Oracles:
 * a refusal always carries at least one diagnostic with a message; an
 * accepted scenario has an id and a name.  Timeouts catch quadratic paths
 * (issue 11: lint was quadratic in the keys of one mapping).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fz_util.h"
#include "harness.h"
#include "scn_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 512 * 1024)
        return -1;
    scn_diags d = {0};
    scn_scenario *s = NULL;
    if (scn_load_string("fuzz.yaml", (const char *)data, size, &s, &d) == 0) {
        FZ_CHECK(s && scn_id(s) && scn_name(s), "accepted scenario without id/name");
        scn_free(s);
    } else {
        FZ_CHECK(d.n > 0, "refused without a diagnostic");
        for (size_t i = 0; i < d.n; i++)
            FZ_CHECK(d.v[i].msg && d.v[i].msg[0], "empty diagnostic");
    }
    scn_diags_free(&d);

    scn_diags d2 = {0};
    scn_node *root = NULL;
    if (scn_yaml_parse("fuzz.yaml", (const char *)data, size, &root, &d2) == 0 && root) {
        json_t *j = scn_node_json(root);
        json_decref(j);
        char *t = scn_node_text(root);
        free(t);
        scn_node_free(root);
    }
    scn_diags_free(&d2);
    return 0;
}
