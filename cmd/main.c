/* berth entry point: global options, then dispatch to a registered command. */
#include "cmd/cli.h"
#include "common/alloc.h"
#include "common/log.h"
#include "run/isolation.h"
#include "run/sealed_exe.h"

#include <libgen.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct berth_command __start_berth_cmds[];
extern const struct berth_command __stop_berth_cmds[];

int cli_fail(berth_error_t *err)
{
    fprintf(stderr, "Error: %s\n", berth_error_msg(err ? *err : NULL));
    berth_error_release(err);
    return BERTH_EXIT_ERROR;
}

int cli_failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return BERTH_EXIT_ERROR;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               bool stop_at_nonopt)
{
    opterr = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s:%s", stop_at_nonopt ? "+" : "", shortopts);
    return getopt_long(argc, argv, buf, longopts, NULL);
}

int cli_bad_option(const char *cmd, int argc, char **argv)
{
    const char *arg = (optind > 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
    if (optopt && optopt < 256 && (arg[0] != '-' || arg[1] == '-' || arg[1] == '\0'))
        arg = "";
    if (optopt && optopt < 256 && arg[0] == '\0')
        fprintf(stderr, "Error: %s: unknown shorthand flag or missing argument: '-%c'\n", cmd,
                optopt);
    else
        fprintf(stderr, "Error: %s: unknown flag or missing argument: %s\n", cmd, arg);
    fprintf(stderr, "See '%s --help'.\n", cmd);
    return BERTH_EXIT_ERROR;
}

int cli_parse_bool(const char *flag, const char *value, bool *out)
{
    if (value == NULL || strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
        *out = false;
        return 0;
    }
    fprintf(stderr, "Error: invalid value \"%s\" for %s: expected true or false\n", value, flag);
    return -1;
}

int cli_parse_int(const char *flag, const char *value, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end || errno || v < min || v > max)
        return cli_failf("invalid %s \"%s\": expected %ld..%ld", flag, value, min, max);
    *out = (int)v;
    return 0;
}

int cli_parse_timestamp(const char *value, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    /* "" is no timestamp: strtoll reads it as 0 (commit used to take it as 1970) */
    if (*value == '\0' || *end || errno || v < 0)
        return cli_failf("invalid timestamp \"%s\": need seconds since the epoch", value);
    *out = v;
    return 0;
}

int cli_isolation(const char *value, const char **out)
{
    if (!value)
        value = getenv("BUILDAH_ISOLATION");
    run_isolation_t i;
    berth_error_t err = NULL;
    if (run_isolation_parse(value, &i, &err) < 0)
        return cli_fail(&err);
    *out = value && *value ? value : NULL;
    return 0;
}

int cli_usage(const char *text)
{
    fputs(text, stdout);
    return 0;
}

int cli_nargs_error(const char *cmd, const char *expect)
{
    fprintf(stderr, "Error: %s requires %s\nSee '%s --help'.\n", cmd, expect, cmd);
    return BERTH_EXIT_ERROR;
}

static int cmp_cmd(const void *a, const void *b)
{
    const struct berth_command *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void print_help(void)
{
    size_t n = (size_t)(__stop_berth_cmds - __start_berth_cmds);
    const struct berth_command **v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = &__start_berth_cmds[i];
    qsort(v, n, sizeof(*v), cmp_cmd);
    printf("berth: build, move, sign and run container images, rootless and daemonless\n\n"
           "Usage:\n  berth [global options] COMMAND [options] [args]\n\n"
           "Commands:\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-18s %s\n", v[i]->name, v[i]->summary);
    printf("\nGlobal options:\n"
           "      --root DIR               storage root directory\n"
           "      --runroot DIR            storage state directory\n"
           "      --storage-driver NAME    storage driver (overlay, vfs)\n"
           "      --log-level LEVEL        error, warn, info, debug, trace (default warn)\n"
           "      --registries-conf FILE   path to registries.conf\n"
           "      --policy FILE            path to the signature policy (policy.json)\n"
           "  -v, --version                print the version\n"
           "  -h, --help                   print this help\n\n"
           "Run 'berth COMMAND --help' for more information on a command.\n");
    free(v);
}

static const struct berth_command *find_command(int argc, char **argv, int *consumed)
{
    const struct berth_command *one = NULL;
    for (const struct berth_command *c = __start_berth_cmds; c < __stop_berth_cmds; c++) {
        if (argc >= 2) {
            size_t l = strlen(argv[0]);
            if (strncmp(c->name, argv[0], l) == 0 && c->name[l] == ' ' &&
                strcmp(c->name + l + 1, argv[1]) == 0) {
                *consumed = 2;
                return c;
            }
        }
        if (strcmp(c->name, argv[0]) == 0)
            one = c;
    }
    *consumed = 1;
    return one;
}

/* Returns true if some command is registered as "<word> something". */
static bool is_group(const char *word)
{
    size_t l = strlen(word);
    for (const struct berth_command *c = __start_berth_cmds; c < __stop_berth_cmds; c++)
        if (strncmp(c->name, word, l) == 0 && c->name[l] == ' ')
            return true;
    return false;
}

static void print_group_help(const char *word)
{
    size_t l = strlen(word);
    printf("Usage:\n  berth %s COMMAND\n\nCommands:\n", word);
    for (const struct berth_command *c = __start_berth_cmds; c < __stop_berth_cmds; c++)
        if (strncmp(c->name, word, l) == 0 && c->name[l] == ' ')
            printf("  %-18s %s\n", c->name + l + 1, c->summary);
}

/* The process's own argv, for the sealed re-exec. */
static char **main_argv;

/* Commands that run container-side code (run/sealed_exe.h): the container init, the exec'd
 * process, build RUN steps and the OCI runtime driven by another engine start as berth inside
 * the container's pid namespace.  Of `runtime`, only create, run and exec do (state, kill,
 * delete, start... are called often by engines and need no re-exec): any argument spelled so
 * counts, which can only err on the side of sealing. */
static bool runs_container_code(const char *name, int argc, char **argv)
{
    static const char *const names[] = {"run", "exec", "start", "build", "build-exec"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    if (strcmp(name, "runtime") != 0)
        return false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "create") == 0 || strcmp(argv[i], "run") == 0 ||
            strcmp(argv[i], "exec") == 0)
            return true;
    return false;
}

static int dispatch(struct berth_globals *g, int argc, char **argv)
{
    int consumed = 0;
    const struct berth_command *c = find_command(argc, argv, &consumed);
    if (c != NULL && runs_container_code(c->name, argc, argv))
        sealed_exe_reexec(main_argv);
    if (c == NULL) {
        if (is_group(argv[0])) {
            if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                print_group_help(argv[0]);
                return argc < 2 ? BERTH_EXIT_ERROR : 0;
            }
            fprintf(stderr, "Error: unknown command \"%s\" for \"berth %s\"\n", argv[1], argv[0]);
            fprintf(stderr, "Run 'berth %s --help' for the list of commands.\n", argv[0]);
            return BERTH_EXIT_ERROR;
        }
        fprintf(stderr, "Error: unknown command \"%s\" for \"berth\"\n", argv[0]);
        fprintf(stderr, "Run 'berth --help' for the list of commands.\n");
        return BERTH_EXIT_ERROR;
    }
    /* argv[0] for the command becomes "berth <name>" for messages and getopt */
    char *name = xasprintf("berth %s", c->name);
    char **sub = xcalloc((size_t)(argc - consumed + 2), sizeof(char *));
    sub[0] = name;
    for (int i = consumed; i < argc; i++)
        sub[i - consumed + 1] = argv[i];
    optind = 0;
    int rc = c->fn(g, argc - consumed + 1, sub);
    free(sub);
    free(name);
    return rc;
}

/* The argv rewritten for berth-runtime lives as long as the process; kept in a global so leak
 * checkers see it as reachable (a write-only static would be optimised away). */
char **berth_runtime_argv;

int main(int argc, char **argv)
{
    struct berth_globals g = {.argv0 = argv[0]};
    main_argv = argv;
    const char *level = getenv("BERTH_LOG_LEVEL");

    /* Invoked through the berth-runtime symlink: behave as `berth runtime ...`. */
    char *a0 = xstrdup(argv[0]);
    bool as_runtime = strcmp(basename(a0), "berth-runtime") == 0;
    free(a0);
    if (as_runtime) {
        char **v = berth_runtime_argv = xcalloc((size_t)argc + 2, sizeof(char *));
        v[0] = argv[0];
        v[1] = "runtime";
        for (int i = 1; i < argc; i++)
            v[i + 1] = argv[i];
        argv = v;
        argc++;
    }

    enum { OPT_ROOT = 256, OPT_RUNROOT, OPT_DRIVER, OPT_LOGLEVEL, OPT_REGCONF, OPT_POLICY };
    static const struct option opts[] = {
        {"root", required_argument, NULL, OPT_ROOT},
        {"runroot", required_argument, NULL, OPT_RUNROOT},
        {"storage-driver", required_argument, NULL, OPT_DRIVER},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"registries-conf", required_argument, NULL, OPT_REGCONF},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    while ((c = cli_getopt(argc, argv, "vh", opts, true)) != -1) {
        switch (c) {
        case OPT_ROOT:
            g.root = optarg;
            break;
        case OPT_RUNROOT:
            g.runroot = optarg;
            break;
        case OPT_DRIVER:
            g.storage_driver = optarg;
            break;
        case OPT_LOGLEVEL:
            level = optarg;
            break;
        case OPT_REGCONF:
            g.registries_conf = optarg;
            break;
        case OPT_POLICY:
            g.policy = optarg;
            break;
        case 'v': {
            char *v[] = {"version", NULL};
            return dispatch(&g, 1, v);
        }
        case 'h':
            print_help();
            return 0;
        default:
            return cli_bad_option("berth", argc, argv);
        }
    }
    if (level) {
        berth_log_level_t l;
        if (berth_log_parse_level(level, &l) < 0)
            return cli_failf("invalid --log-level \"%s\": use error, warn, info, debug or trace",
                             level);
        berth_log_set_level(l);
    }
    if (optind >= argc) {
        print_help();
        return BERTH_EXIT_ERROR;
    }
    return dispatch(&g, argc - optind, argv + optind);
}
