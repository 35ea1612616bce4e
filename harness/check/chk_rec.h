/*
 * chk_rec.h - history records as C records: the one shape the matcher
 * (chk_history.c) reads, in the simulator and in real mode alike.
 *
 * The simulator writes them as C records (building a JSON object per
 * record cost more than the rest of writing it); real mode builds the
 * same records from the JSON its programs' lines were parsed into
 * (real_expect.c).  Windows (chk_window) read a record's numbers through
 * chk_logrec_num(), as they read a JSON record's keys.
 *
 * Ownership: a record's strings are borrowed from whoever made it (the
 * simulator: the world's string arena, sim_world.c; real mode: its JSON
 * records); a chk_logs owns only its array (chk_logs_free).
 */
#ifndef CHK_REC_H
#define CHK_REC_H

#include <stddef.h>
#include <stdint.h>

/* A log record (chk_history.h: the `log` shape). */
typedef struct chk_logrec {
    double t;                /* sim: virtual epoch ms; real: wall ms */
    uint64_t n;              /* sim: the world's record counter; real: 0 (none) */
    int level;               /* hp_log_level; -1: a level no program of ours writes */
    const char *actor, *msg; /* never NULL ("" when there was none) */
    const char *fields;      /* the text after msg, "" when none */
    const char *line;        /* the formatted line */
} chk_logrec;

/* Log records in record order: n never decreases (the simulator's
 * counter; real mode's records all have n 0), so a window on n starts at
 * a binary search. */
typedef struct chk_logs {
    chk_logrec *v;
    size_t n, cap;
} chk_logs;

/* Appends a copy of r (its strings stay borrowed); aborts when out of
 * memory, as the JSON arrays it replaces did not fail softly either. */
void chk_logs_add(chk_logs *l, const chk_logrec *r);
/* Frees the array (not the strings); l is empty after. */
void chk_logs_free(chk_logs *l);

/* A record's number under a window key, as a JSON record's key would
 * read: "t", "n"; any other key reads 0 (a missing key). */
double chk_logrec_num(const chk_logrec *r, const char *key);

#endif
