/*
 * scn_valid.h - what the validator's files share (scn_load.c: keywords,
 * actions, steps, the scenario object; scn_vhelp.c: the context and the
 * need_* checks; scn_vexpect.c: expectations).  Internal to harness/lang.
 */
#ifndef SCN_VALID_H
#define SCN_VALID_H

#include "scn_internal.h"

typedef struct vctx {
    const char *file;
    scn_diags *d;
    scn_scenario *s;
    int errors;
    const char **marks;     /* marks defined by earlier steps */
    size_t nmarks;
    int in_repeat;          /* "{i}" allowed in ids */
} vctx;

/* A diagnostic at `at` (its included file and position when it has one). */
void sv_verr(vctx *v, const scn_node *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int sv_in_list(const char *w, const char *const *list);
void sv_join(const char *const *list, char *buf, size_t len);
void sv_unknown(vctx *v, const scn_node *at, const char *what, const char *word,
                    const char *const *cands);
void sv_unknown_mark(vctx *v, const scn_node *x);
void sv_type_err(vctx *v, const scn_node *n, const char *what, const char *expected);
int sv_check_keys(vctx *v, const scn_node *m, const char *what, const char *const *allowed);
int sv_need_map(vctx *v, const scn_node *n, const char *what);
int sv_need_str(vctx *v, const scn_node *n, const char *what);
int sv_need_int(vctx *v, const scn_node *n, const char *what, int64_t min, int64_t max,
                    int64_t *out);
int sv_need_bool(vctx *v, const scn_node *n, const char *what, int *out);
int sv_need_duration(vctx *v, const scn_node *n, const char *what, int64_t *out);
int sv_need_word(vctx *v, const scn_node *n, const char *what, const char *const *allowed);
int sv_need_task_id(vctx *v, const scn_node *n, const char *what);
int sv_need_task_ids(vctx *v, const scn_node *n, const char *what);
void sv_client_names(const vctx *v, char *buf, size_t len);
void sv_unknown_client(vctx *v, const scn_node *at, const char *what, const char *word,
                           const char *const *cands);
int sv_need_client(vctx *v, const scn_node *n, const char *what);
int sv_need_time(vctx *v, const scn_node *n, const char *what);
int sv_need_str_list(vctx *v, const scn_node *n, const char *what);
void v_log(vctx *v, const scn_node *val, int top);
void v_expect(vctx *v, const scn_node *val, const char *what, const char *const *extra);

/* Keyword tables of the validator (scn_load.c). */
extern const char *const sv_token_kinds[];
extern const char *const sv_reserved_names[];
extern const char *const sv_event_types[];
extern const char *const sv_notify_types[];
extern const char *const sv_frame_types[];
extern const char *const sv_http_methods[];
extern const char *const sv_levels[];
extern const char *const sv_quant_keys[];
extern const char *const sv_m_received[];
extern const char *const sv_m_notified[];
extern const char *const sv_m_requests[];
extern const char *const sv_m_closed[];
extern const char *const sv_m_frames[];
extern const char *const sv_queue_keys[];
extern const char *const sv_queue_item_keys[];
extern const char *const sv_cache_keys[];
extern const char *const sv_lock_keys[];
extern const char *const sv_conn_keys[];
extern const char *const sv_fail_keys[];
extern const char *const sv_drop_keys[];
extern const char *const sv_choose_keys[];
extern const char *const sv_restart_keys[];
extern const char *const sv_send_frame_keys[];
extern const char *const sv_send_request_keys[];
extern const char *const sv_token_keys[];
extern const char *const sv_reconnect_keys[];
extern const char *const sv_expect_extra[];
extern const char *const sv_until_extra[];
extern const char *const sv_network_keys[];

#endif
