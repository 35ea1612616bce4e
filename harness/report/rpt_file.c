/*
 * rpt_file.c - writing a report file safely: parent directories created,
 * written under a temporary name ("path.tmp.PID") and renamed into place.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "rpt.h"

/* mkdir -p of every directory in front of the last '/' of path. */
static int make_parents(const char *path, char *err, size_t errlen)
{
    char *copy = strdup(path);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    char *slash = strrchr(copy, '/');
    int rc = 0;
    if (slash && slash != copy) {
        *slash = '\0';
        for (char *p = copy + 1; *p && rc == 0; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(copy, 0777) != 0 && errno != EEXIST)
                rc = -1;
            *p = '/';
        }
        if (rc == 0 && mkdir(copy, 0777) != 0 && errno != EEXIST)
            rc = -1;
        if (rc != 0)
            snprintf(err, errlen, "%s: cannot create directory: %s", copy, strerror(errno));
    }
    free(copy);
    return rc;
}

int rpt_write_file(const char *path, rpt_writer w, const rpt_run *run, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "empty report path");
        return -1;
    }
    if (make_parents(path, err, errlen) != 0)
        return -1;
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    /* The pid keeps two runs writing the same report from sharing a
     * temporary file. */
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = w(f, run);
    if (fflush(f) != 0 || ferror(f))
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
