/*
 * real_token.c - tokens for real mode: minted with the HS256 secret (our
 * server's, or --jwt-secret for a foreign one), by the team's own command
 * (--token-cmd), or aligned to the scaled schedule when a scenario chose a
 * lifetime (token_ttl); and the command templates of --token-cmd and
 * --client-cmd (shell-quoted placeholders).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_policy.h"
#include "hp_time.h"
#include "real.h"
#include "real_world.h"

/* Runs cmd with sh -c; its first output line into out (when out).  The
 * exit status, or -1 when it could not run. */
int rl_run_shell(const char *cmd, char *out, size_t outlen)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    if (out) {
        size_t l = strcspn(buf, "\r\n");
        snprintf(out, outlen, "%.*s", (int)l, buf);
    }
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Single-quotes s for sh (' becomes '\''). */
static void shell_quote(const char *s, char *out, size_t len)
{
    size_t o = 0;
    if (o + 1 < len)
        out[o++] = '\'';
    for (; *s && o + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *s;
        }
    }
    if (o + 1 < len)
        out[o++] = '\'';
    out[o] = '\0';
}

/* Fills a command template: each {name} of vars[] (name, value pairs, NULL
 * ended) becomes the shell-quoted value.  malloc'd. */
char *rl_template(const char *tpl, const char *const *vars)
{
    size_t cap = strlen(tpl) * 2 + 256, o = 0;
    char *out = malloc(cap);
    for (const char *p = tpl; out && *p;) {
        const char *val = NULL;
        size_t skip = 0;
        if (*p == '{')
            for (const char *const *v = vars; v[0]; v += 2) {
                size_t l = strlen(v[0]);
                if (!strncmp(p + 1, v[0], l) && p[1 + l] == '}') {
                    val = v[1] ? v[1] : "";
                    skip = l + 2;
                    break;
                }
            }
        char q[8192];
        const char *add = p;
        size_t addlen = 1;
        if (val) {
            shell_quote(val, q, sizeof q);
            add = q;
            addlen = strlen(q);
        }
        if (o + addlen + 1 > cap) {
            cap = (o + addlen + 1) * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        memcpy(out + o, add, addlen);
        o += addlen;
        p += val ? skip : 1;
    }
    if (out)
        out[o] = '\0';
    return out;
}

/* --token-cmd: a token from the team's own minting command ({sub} {hh}
 * {dev} {ttl_s}; ttl_s < 0 asks for an expired one).  A bad signature is
 * made from a good token by changing its signature. */
static char *mint_by_command(rl_world *w, const scn_client_spec *sp, int64_t ttl_s)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    const char *vars[] = {"sub", sp->user, "hh", sp->household, "dev",
                          sp->device ? sp->device : "", "ttl_s", ttl, NULL};
    char *cmd = rl_template(w->o->token_cmd, vars);
    char tok[4096] = "";
    int st = cmd ? rl_run_shell(cmd, tok, sizeof tok) : -1;
    free(cmd);
    if (st != 0 || !tok[0])
        return NULL;
    char *sig = strrchr(tok, '.');
    if (sp->token == SCN_TOKEN_BAD_SIGNATURE && sig && sig[1])
        sig[1] = sig[1] == 'A' ? 'B' : 'A'; /* the first 6 bits: never padding */
    return strdup(tok);
}

/* On a foreign server every scenario run gets fresh names: household, user
 * and device each carry the run's suffix ("-r1a2b3c4"), so scenarios and
 * runs never see each other's tasks, locks or per-user state.  What the
 * programs report is read back without it (rl_unsuffix), so expectations
 * keep naming `alice` and `home`. */
static scn_client_spec fresh_names(rl_world *w, const scn_client_spec *sp, char *hh, char *user,
                                   char *dev, size_t len)
{
    scn_client_spec v = *sp;
    snprintf(hh, len, "%s%s", sp->household, w->hh_suffix);
    snprintf(user, len, "%s%s", sp->user, w->hh_suffix);
    v.household = hh;
    v.user = user;
    if (sp->device) {
        snprintf(dev, len, "%s%s", sp->device, w->hh_suffix);
        v.device = dev;
    }
    return v;
}

/* A token for a scenario client whose lifetime the scenario chose:
 * JWT `exp` is whole seconds on the wall clock, so the harness first waits
 * (at most 1 s, reading the programs meanwhile) until now + ttl x F falls
 * on a whole second, and mints exp exactly there.  The scenario's virtual
 * expiry and the server's are then the same instant, give or take the
 * milliseconds of starting the app.  Other tokens (30 days) need no care. */
char *rl_mint_for_client(rl_world *w, const scn_client_spec *sp, int64_t ttl_ms)
{
    if (ttl_ms >= RL_DEFAULT_TTL_MS || sp->token != SCN_TOKEN_VALID || w->o->token_cmd)
        return rl_mint(w, sp, ttl_ms);
    double wall_ttl_s = (double)ttl_ms * w->F / 1000.0;
    double now_s = (double)hp_wall_clock(NULL) / 1000.0;
    double frac = now_s + wall_ttl_s - floor(now_s + wall_ttl_s);
    if (frac > 0.002)
        rl_pump(w, (1.0 - frac) * 1000.0);
    now_s = (double)hp_wall_clock(NULL) / 1000.0;
    int64_t exp = (int64_t)llround(now_s + wall_ttl_s);
    char hh[300], user[300], dev[300];
    scn_client_spec v = fresh_names(w, sp, hh, user, dev, sizeof hh);
    char *t = hp_jwt_mint(w->secret_used, v.user, v.household, v.device, (int64_t)floor(now_s),
                          exp);
    if (t)
        json_array_append_new(w->tokens, json_string(t));
    /* The schedule starts again here: the token's clock is now the scenario's. */
    w->slow_action = 1;
    return t;
}

static void unsuffix_str(const char *suf, size_t sl, json_t *str)
{
    const char *s = json_string_value(str);
    if (!s || !strstr(s, suf))
        return;
    size_t n = strlen(s);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return;
    for (const char *p = s; *p;) {
        if (!strncmp(p, suf, sl)) {
            p += sl;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    json_string_set(str, out);
    free(out);
}

void rl_unsuffix(rl_world *w, json_t *v)
{
    size_t sl = strlen(w->hh_suffix);
    if (!sl || !v)
        return;
    if (json_is_string(v)) {
        unsuffix_str(w->hh_suffix, sl, v);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) rl_unsuffix(w, x);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) rl_unsuffix(w, x);
    }
}

char *rl_mint(rl_world *w, const scn_client_spec *sp, int64_t ttl_ms)
{
    int64_t now = hp_wall_clock(NULL) / 1000;
    char *t, hh[300], user[300], dev[300];
    scn_client_spec v = fresh_names(w, sp, hh, user, dev, sizeof hh);
    sp = &v;
    if (w->o->token_cmd)
        t = mint_by_command(w, sp, sp->token == SCN_TOKEN_EXPIRED ? -1 : ttl_ms / 1000);
    else if (sp->token == SCN_TOKEN_EXPIRED)
        t = hp_jwt_mint(w->secret_used, sp->user, sp->household, sp->device, now - 3600, now - 1);
    else if (sp->token == SCN_TOKEN_BAD_SIGNATURE)
        t = hp_jwt_mint("not-the-secret-of-this-server", sp->user, sp->household, sp->device, now,
                        now + ttl_ms / 1000);
    else
        t = hp_jwt_mint(w->secret_used, sp->user, sp->household, sp->device, now,
                        now + ttl_ms / 1000);
    if (t)
        json_array_append_new(w->tokens, json_string(t));
    return t;
}
