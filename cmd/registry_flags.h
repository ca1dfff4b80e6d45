/* Registry flags shared by login, list-tags, delete and sync: --tls-verify, --cert-dir, --creds,
 * --authfile, --retry-times, --retry-delay (optionally with a "src-"/"dest-" prefix), mapped onto
 * a struct system_context. */
#ifndef BERTH_CMD_REGISTRY_FLAGS_H
#define BERTH_CMD_REGISTRY_FLAGS_H

#include "cmd/cli.h"
#include "transport/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    RF_TLS_VERIFY = 0,
    RF_CERT_DIR,
    RF_CREDS,
    RF_AUTHFILE,
    RF_RETRY_TIMES,
    RF_RETRY_DELAY,
    RF_COUNT
};

static inline void registry_flags_sys_init(struct system_context *sys)
{
    memset(sys, 0, sizeof(*sys));
    sys->tls_verify = -1;
    sys->retry_times = -1;
    sys->retry_delay_ms = -1;
}

/* Fills opts[0..RF_COUNT-1] with the long options "<prefix>tls-verify" ... using vals base+i.
 * names must have room for RF_COUNT strings of 48 bytes. */
static inline void registry_flags_options(struct option *opts, char names[][48], const char *prefix,
                                          int base)
{
    static const char *const n[RF_COUNT] = {"tls-verify", "cert-dir",    "creds",
                                            "authfile",   "retry-times", "retry-delay"};
    for (int i = 0; i < RF_COUNT; i++) {
        snprintf(names[i], 48, "%s%s", prefix, n[i]);
        opts[i].name = names[i];
        opts[i].has_arg = (i == RF_TLS_VERIFY) ? optional_argument : required_argument;
        opts[i].flag = NULL;
        opts[i].val = base + i;
    }
}

/* "2s", "500ms", "1m", "3" (seconds) -> milliseconds */
static inline int registry_flags_duration_ms(const char *s, int *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return -1;
    double mult = 1000;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        return -1;
    if (v * mult > 3600000)
        return -1;
    *out = (int)(v * mult);
    return 0;
}

/* Returns 1 when c was one of our flags (applied), 0 when not ours, -1 on a bad value (message
 * printed). */
static inline int registry_flags_apply(int c, int base, const char *flag_prefix, const char *arg,
                                       struct system_context *sys)
{
    if (c < base || c >= base + RF_COUNT)
        return 0;
    char flag[64];
    static const char *const n[RF_COUNT] = {"tls-verify", "cert-dir",    "creds",
                                            "authfile",   "retry-times", "retry-delay"};
    snprintf(flag, sizeof(flag), "--%s%s", flag_prefix, n[c - base]);
    switch (c - base) {
    case RF_TLS_VERIFY: {
        bool b;
        if (cli_parse_bool(flag, arg, &b) < 0)
            return -1;
        sys->tls_verify = b ? 1 : 0;
        return 1;
    }
    case RF_CERT_DIR:
        sys->cert_dir = arg;
        return 1;
    case RF_CREDS:
        sys->creds = arg;
        return 1;
    case RF_AUTHFILE:
        sys->auth_file = arg;
        return 1;
    case RF_RETRY_TIMES: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end || v < 0 || v > 100) {
            fprintf(stderr, "Error: invalid value \"%s\" for %s: expected 0..100\n", arg, flag);
            return -1;
        }
        sys->retry_times = (int)v;
        return 1;
    }
    case RF_RETRY_DELAY: {
        int ms;
        if (registry_flags_duration_ms(arg, &ms) < 0) {
            fprintf(stderr, "Error: invalid duration \"%s\" for %s (e.g. 2s, 500ms)\n", arg, flag);
            return -1;
        }
        sys->retry_delay_ms = ms;
        return 1;
    }
    }
    return 0;
}

#endif
