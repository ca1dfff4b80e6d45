/* Registry flags shared by the commands that talk to registries (login, list-tags, delete, sync,
 * copy, inspect, pull, push): --tls-verify, --cert-dir, --creds, --authfile, --retry-times,
 * --retry-delay (optionally with a "src-"/"dest-" prefix), mapped onto a struct system_context.
 *
 * A command adds the long options with registry_flags_options (all six) or
 * registry_flags_options_mask (a subset), and hands every getopt result to registry_flags_apply
 * before its own switch.  A flag under another name (pull's --retry) uses registry_flags_set. */
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

/* masks for registry_flags_options_mask */
#define RF_BIT(i) (1u << (i))
#define RF_ALL    (RF_BIT(RF_COUNT) - 1u)

/* The flag's name without "--" or prefix. */
static inline const char *registry_flags_name(int i)
{
    static const char *const n[RF_COUNT] = {"tls-verify", "cert-dir",    "creds",
                                            "authfile",   "retry-times", "retry-delay"};
    return n[i];
}

static inline void registry_flags_sys_init(struct system_context *sys)
{
    memset(sys, 0, sizeof(*sys));
    sys->tls_verify = -1;
    sys->retry_times = -1;
    sys->retry_delay_ms = -1;
}

/* Fills opts[0..n-1] with the long options "<prefix>tls-verify" ... for the flags in mask
 * (RF_BIT(RF_...) or RF_ALL), flag i with val base+i, and returns n.  names must have room for
 * RF_COUNT strings of 48 bytes (names[i] for flag i) and live as long as opts. */
static inline size_t registry_flags_options_mask(struct option *opts, char names[][48],
                                                 const char *prefix, int base, unsigned mask)
{
    size_t n = 0;
    for (int i = 0; i < RF_COUNT; i++) {
        if (!(mask & RF_BIT(i)))
            continue;
        snprintf(names[i], 48, "%s%s", prefix, registry_flags_name(i));
        opts[n].name = names[i];
        opts[n].has_arg = (i == RF_TLS_VERIFY) ? optional_argument : required_argument;
        opts[n].flag = NULL;
        opts[n].val = base + i;
        n++;
    }
    return n;
}

/* Fills opts[0..RF_COUNT-1] with all six long options (see registry_flags_options_mask). */
static inline void registry_flags_options(struct option *opts, char names[][48], const char *prefix,
                                          int base)
{
    registry_flags_options_mask(opts, names, prefix, base, RF_ALL);
}

/* "2s", "500ms", "1m", "3" (seconds) -> milliseconds */
static inline int registry_flags_duration_ms(const char *s, int *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* !(v >= 0) also refuses "nan" */
    if (end == s || errno || !(v >= 0))
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

/* Sets flag i (RF_...) from arg; flag is the name the user typed ("--src-retry-times", "--retry")
 * for the error message.  Returns 0, or -1 on a bad value (message printed). */
static inline int registry_flags_set(int i, const char *flag, const char *arg,
                                     struct system_context *sys)
{
    switch (i) {
    case RF_TLS_VERIFY: {
        bool b;
        if (cli_parse_bool(flag, arg, &b) < 0) /* arg NULL (bare --tls-verify): true */
            return -1;
        sys->tls_verify = b ? 1 : 0;
        return 0;
    }
    case RF_CERT_DIR:
        sys->cert_dir = arg;
        return 0;
    case RF_CREDS:
        sys->creds = arg;
        return 0;
    case RF_AUTHFILE:
        sys->auth_file = arg;
        return 0;
    case RF_RETRY_TIMES: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end || v < 0 || v > 100) {
            fprintf(stderr, "Error: invalid value \"%s\" for %s: expected 0..100\n", arg, flag);
            return -1;
        }
        sys->retry_times = (int)v;
        return 0;
    }
    case RF_RETRY_DELAY: {
        int ms;
        if (registry_flags_duration_ms(arg, &ms) < 0) {
            fprintf(stderr, "Error: invalid duration \"%s\" for %s (e.g. 2s, 500ms)\n", arg, flag);
            return -1;
        }
        sys->retry_delay_ms = ms;
        return 0;
    }
    }
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
    snprintf(flag, sizeof(flag), "--%s%s", flag_prefix, registry_flags_name(c - base));
    return registry_flags_set(c - base, flag, arg, sys) < 0 ? -1 : 1;
}

/* registry_flags_apply for a flag that sets both sides of a copy (copy's --authfile,
 * --retry-times): the same value goes to a and b. */
static inline int registry_flags_apply_both(int c, int base, const char *flag_prefix,
                                            const char *arg, struct system_context *a,
                                            struct system_context *b)
{
    int r = registry_flags_apply(c, base, flag_prefix, arg, a);
    if (r > 0)
        r = registry_flags_apply(c, base, flag_prefix, arg, b);
    return r;
}

#endif
