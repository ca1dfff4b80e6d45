/* berth runtime (also the berth-runtime symlink): a runc-compatible OCI runtime CLI over the
 * runtime core in run/.  Global flags as runc's (--root, --log, --log-format, --debug,
 * --systemd-cgroup, --rootless) come before the subcommand. */
#include "cmd/cli.h"

#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "run/runtime.h"
#include "run/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "Usage: berth runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [OPTIONS]\n"
    "\n"
    "A runc-compatible OCI runtime (also available as the berth-runtime symlink).\n"
    "\n"
    "Commands:\n"
    "  create [-b BUNDLE] [--console-socket SOCK] [--pid-file FILE] ID\n"
    "  start ID\n"
    "  run [-b BUNDLE] [--console-socket SOCK] [--pid-file FILE] [-d] ID\n"
    "  state ID\n"
    "  kill [-a] ID [SIGNAL]\n"
    "  delete [-f] ID\n"
    "  exec [-t] [-d] [-e K=V] [--cwd DIR] [-u USER] [-p process.json] [--pid-file F] ID [CMD...]\n"
    "  list [-q] [--format table|json]\n"
    "  spec [-b BUNDLE] [--rootless]\n";

struct rt_globals {
    char *root;
    const char *log;
    bool log_json;
};

static struct rt_globals *cur_globals;

/* Prints the error (and appends it to --log in runc's format when asked). */
static int rt_fail(berth_error_t *err)
{
    if (cur_globals && cur_globals->log) {
        FILE *f = fopen(cur_globals->log, "ae");
        if (f) {
            time_t t = time(NULL);
            char ts[64];
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
            if (cur_globals->log_json) {
                json_t *j = json_pack("{s:s,s:s,s:s}", "level", "error", "msg",
                                      berth_error_msg(*err), "time", ts);
                char *s = json_dumps(j, JSON_COMPACT);
                fprintf(f, "%s\n", s);
                free(s);
                json_decref(j);
            } else {
                fprintf(f, "time=\"%s\" level=error msg=\"%s\"\n", ts, berth_error_msg(*err));
            }
            fclose(f);
        }
    }
    return cli_fail(err);
}

static int load_bundle_spec(const char *bundle, json_t **spec, char **abs, berth_error_t *err)
{
    char real[PATH_MAX];
    if (!realpath(bundle, real))
        return berth_error_make(err, errno, "bundle \"%s\"", bundle);
    cleanup_free char *p = xasprintf("%s/config.json", real);
    json_t *j = NULL;
    if (json_load_file_bounded(p, 4 << 20, &j, err) < 0)
        return -1;
    *spec = j;
    *abs = xstrdup(real);
    return 0;
}

enum {
    OPT_CONSOLE = 256,
    OPT_PIDFILE,
    OPT_NOPIVOT,
    OPT_NOKEYRING,
    OPT_PRESERVE,
    OPT_CWD,
    OPT_FORMAT,
    OPT_ROOTLESS,
    OPT_IGNORED,
};

static int rt_create_or_run(struct rt_globals *g, int argc, char **argv, bool run)
{
    static const struct option opts[] = {
        {"bundle", required_argument, NULL, 'b'},
        {"console-socket", required_argument, NULL, OPT_CONSOLE},
        {"pid-file", required_argument, NULL, OPT_PIDFILE},
        {"detach", no_argument, NULL, 'd'},
        {"no-pivot", no_argument, NULL, OPT_NOPIVOT},
        {"no-new-keyring", no_argument, NULL, OPT_NOKEYRING},
        {"preserve-fds", required_argument, NULL, OPT_PRESERVE},
        {"keep", no_argument, NULL, OPT_IGNORED},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *bundle = ".", *console = NULL, *pidfile = NULL;
    bool detach = false;
    int c;
    while ((c = cli_getopt(argc, argv, "b:dh", opts, false)) != -1) {
        switch (c) {
        case 'b':
            bundle = optarg;
            break;
        case OPT_CONSOLE:
            console = optarg;
            break;
        case OPT_PIDFILE:
            pidfile = optarg;
            break;
        case 'd':
            detach = true;
            break;
        case OPT_NOPIVOT:
        case OPT_NOKEYRING:
        case OPT_PRESERVE:
        case OPT_IGNORED:
            break;
        case 'h':
            return cli_usage(usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one container id");
    const char *id = argv[optind];
    cleanup_error berth_error_t err = NULL;
    cleanup_json json_t *spec = NULL;
    cleanup_free char *abs = NULL;
    if (load_bundle_spec(bundle, &spec, &abs, &err) < 0)
        return rt_fail(&err);
    cleanup_free char *pidabs = NULL;
    if (pidfile) {
        /* runc resolves the pid file relative to the caller's cwd */
        pidabs = pidfile[0] == '/' ? xstrdup(pidfile)
                                   : xasprintf("%s/%s", getcwd(NULL, 0) ?: ".", pidfile);
    }
    struct runtime_create_opts o = {
        .root = g->root,
        .id = id,
        .bundle = abs,
        .spec = spec,
        .wait_start = !run,
        .console_socket = console,
        .pid_file = pidabs,
    };
    if (!run || detach) {
        bool terminal = json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"));
        if (terminal && !console)
            return cli_failf("cannot allocate tty if runc will detach without setting "
                             "console socket");
        pid_t pid;
        if (runtime_create(&o, &pid, &err) < 0)
            return rt_fail(&err);
        return 0;
    }
    int status = 0;
    if (runtime_run(&o, &status, &err) < 0) {
        if (status > 0) {
            fprintf(stderr, "Error: %s\n", berth_error_msg(err));
            return status;
        }
        return rt_fail(&err);
    }
    return status;
}

static int one_id(int argc, char **argv, const char **id)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        if (c == 'h')
            return cli_usage(usage);
        return cli_bad_option(argv[0], argc, argv);
    }
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one container id");
    *id = argv[optind];
    return -1;
}

static int rt_start(struct rt_globals *g, int argc, char **argv)
{
    const char *id = NULL;
    int r = one_id(argc, argv, &id);
    if (r >= 0)
        return r;
    cleanup_error berth_error_t err = NULL;
    if (runtime_start(g->root, id, &err) < 0)
        return rt_fail(&err);
    return 0;
}

static int rt_state(struct rt_globals *g, int argc, char **argv)
{
    const char *id = NULL;
    int r = one_id(argc, argv, &id);
    if (r >= 0)
        return r;
    cleanup_error berth_error_t err = NULL;
    struct runtime_state s;
    if (runtime_state(g->root, id, &s, &err) < 0)
        return rt_fail(&err);
    json_t *j = runtime_state_json(&s);
    char *out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(out);
    free(out);
    json_decref(j);
    runtime_state_free(&s);
    return 0;
}

static int rt_kill(struct rt_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool all = false;
    int c;
    while ((c = cli_getopt(argc, argv, "ah", opts, false)) != -1) {
        if (c == 'a')
            all = true;
        else if (c == 'h')
            return cli_usage(usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (optind >= argc || argc - optind > 2)
        return cli_nargs_error(argv[0], "a container id and an optional signal");
    int sig = SIGTERM;
    if (argc - optind == 2) {
        sig = runtime_parse_signal(argv[optind + 1]);
        if (sig < 0)
            return cli_failf("unknown signal \"%s\"", argv[optind + 1]);
    }
    cleanup_error berth_error_t err = NULL;
    if (runtime_kill(g->root, argv[optind], sig, all, &err) < 0)
        return rt_fail(&err);
    return 0;
}

static int rt_delete(struct rt_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool force = false;
    int c;
    while ((c = cli_getopt(argc, argv, "fh", opts, false)) != -1) {
        if (c == 'f')
            force = true;
        else if (c == 'h')
            return cli_usage(usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one container id");
    cleanup_error berth_error_t err = NULL;
    if (runtime_delete(g->root, argv[optind], force, &err) < 0) {
        /* runc: deleting a missing container with --force succeeds */
        if (force && berth_error_status(err) == ENOENT)
            return 0;
        return rt_fail(&err);
    }
    return 0;
}

static int rt_exec(struct rt_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"console-socket", required_argument, NULL, OPT_CONSOLE},
        {"pid-file", required_argument, NULL, OPT_PIDFILE},
        {"cwd", required_argument, NULL, OPT_CWD},
        {"env", required_argument, NULL, 'e'},
        {"tty", no_argument, NULL, 't'},
        {"user", required_argument, NULL, 'u'},
        {"process", required_argument, NULL, 'p'},
        {"detach", no_argument, NULL, 'd'},
        {"cap", required_argument, NULL, 'c'},
        {"no-new-privs", no_argument, NULL, OPT_IGNORED},
        {"preserve-fds", required_argument, NULL, OPT_PRESERVE},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct runtime_exec_opts o = {.root = g->root};
    const char *process_file = NULL;
    char **env = xcalloc((size_t)argc + 1, sizeof(char *));
    size_t nenv = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "e:tu:p:dc:h", opts, true)) != -1) {
        switch (c) {
        case OPT_CONSOLE:
            o.console_socket = optarg;
            break;
        case OPT_PIDFILE:
            o.pid_file = optarg;
            break;
        case OPT_CWD:
            o.cwd = optarg;
            break;
        case 'e':
            env[nenv++] = optarg;
            break;
        case 't':
            o.terminal = true;
            break;
        case 'u':
            o.user = optarg;
            break;
        case 'p':
            process_file = optarg;
            break;
        case 'd':
            o.detach = true;
            break;
        case 'c':
        case OPT_IGNORED:
        case OPT_PRESERVE:
            break;
        case 'h':
            free(env);
            return cli_usage(usage);
        default:
            free(env);
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    o.env = env;
    if (optind >= argc) {
        free(env);
        return cli_nargs_error(argv[0], "a container id and a command");
    }
    o.id = argv[optind];
    o.args = argv + optind + 1;
    cleanup_json json_t *proc = NULL;
    cleanup_error berth_error_t err = NULL;
    if (process_file) {
        if (json_load_file_bounded(process_file, 4 << 20, &proc, &err) < 0) {
            free(env);
            return cli_fail(&err);
        }
        o.process = proc;
        o.terminal = json_is_true(json_object_get(proc, "terminal"));
    } else if (!o.args[0]) {
        free(env);
        return cli_nargs_error(argv[0], "a container id and a command");
    }
    if (o.terminal && o.detach && !o.console_socket) {
        free(env);
        return cli_failf("cannot allocate tty if runc will detach without setting console "
                         "socket");
    }
    int status = 0;
    int r = runtime_exec(&o, &status, &err);
    free(env);
    if (r < 0) {
        if (status > 0) {
            fprintf(stderr, "Error: %s\n", berth_error_msg(err));
            return status;
        }
        return rt_fail(&err);
    }
    return status;
}

static int rt_list(struct rt_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"quiet", no_argument, NULL, 'q'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool quiet = false, json = false;
    int c;
    while ((c = cli_getopt(argc, argv, "qf:h", opts, false)) != -1) {
        if (c == 'q')
            quiet = true;
        else if (c == 'f')
            json = strcmp(optarg, "json") == 0;
        else if (c == 'h')
            return cli_usage(usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    cleanup_error berth_error_t err = NULL;
    cleanup_strv char **ids = NULL;
    if (runtime_list(g->root, &ids, &err) < 0)
        return rt_fail(&err);
    json_t *arr = json ? json_array() : NULL;
    if (!quiet && !json)
        printf("%-20s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
               "OWNER");
    for (char **id = ids; *id; id++) {
        struct runtime_state s;
        berth_error_t e2 = NULL;
        if (runtime_state(g->root, *id, &s, &e2) < 0) {
            berth_error_release(&e2);
            continue;
        }
        if (quiet)
            printf("%s\n", s.id);
        else if (json)
            json_array_append_new(arr, runtime_state_json(&s));
        else
            printf("%-20s %-8d %-10s %-40s %-30s %s\n", s.id,
                   s.status == RUNTIME_STOPPED ? 0 : (int)s.pid, runtime_status_name(s.status),
                   s.bundle, s.created, s.owner);
        runtime_state_free(&s);
    }
    if (json) {
        char *out = json_dumps(arr, JSON_COMPACT);
        puts(out);
        free(out);
        json_decref(arr);
    }
    return 0;
}

static int rt_spec(int argc, char **argv)
{
    static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                         {"rootless", no_argument, NULL, OPT_ROOTLESS},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *bundle = ".";
    bool rootless = false;
    int c;
    while ((c = cli_getopt(argc, argv, "b:h", opts, false)) != -1) {
        if (c == 'b')
            bundle = optarg;
        else if (c == OPT_ROOTLESS)
            rootless = true;
        else if (c == 'h')
            return cli_usage(usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    if (access(path, F_OK) == 0)
        return cli_failf("File %s exists. Remove it first", path);
    json_t *spec = spec_default(rootless);
    if (!spec)
        return cli_failf("cannot generate the default spec");
    int r = json_dump_file(spec, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(spec);
    if (r < 0)
        return cli_failf("write \"%s\": %s", path, strerror(errno));
    return 0;
}

static int cmd_runtime(struct berth_globals *bg, int argc, char **argv)
{
    enum { G_ROOT = 300, G_LOG, G_LOGFMT, G_DEBUG, G_SYSTEMD, G_ROOTLESS, G_CRIU };
    static const struct option opts[] = {
        {"root", required_argument, NULL, G_ROOT},
        {"log", required_argument, NULL, G_LOG},
        {"log-format", required_argument, NULL, G_LOGFMT},
        {"debug", no_argument, NULL, G_DEBUG},
        {"systemd-cgroup", no_argument, NULL, G_SYSTEMD},
        {"rootless", required_argument, NULL, G_ROOTLESS},
        {"criu", required_argument, NULL, G_CRIU},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct rt_globals g = {0};
    const char *root = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, true)) != -1) {
        switch (c) {
        case G_ROOT:
            root = optarg;
            break;
        case G_LOG:
            g.log = optarg;
            break;
        case G_LOGFMT:
            g.log_json = strcmp(optarg, "json") == 0;
            break;
        case G_DEBUG:
        case G_SYSTEMD:
        case G_ROOTLESS:
        case G_CRIU:
            break;
        case 'h':
            return cli_usage(usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    /* berth's own global --root (before "runtime") is the store, not the runtime root */
    (void)bg;
    if (optind >= argc) {
        fputs(usage, stderr);
        return BERTH_EXIT_ERROR;
    }
    g.root = root ? xstrdup(root) : runtime_default_root();
    cur_globals = &g;
    const char *sub = argv[optind];
    int sargc = argc - optind;
    char **sargv = xcalloc((size_t)sargc + 1, sizeof(char *));
    sargv[0] = xasprintf("%s %s", argv[0], sub);
    for (int i = 1; i < sargc; i++)
        sargv[i] = argv[optind + i];
    int rc;
    optind = 0; /* cli_getopt does not reset getopt's state */
    if (strcmp(sub, "create") == 0)
        rc = rt_create_or_run(&g, sargc, sargv, false);
    else if (strcmp(sub, "run") == 0)
        rc = rt_create_or_run(&g, sargc, sargv, true);
    else if (strcmp(sub, "start") == 0)
        rc = rt_start(&g, sargc, sargv);
    else if (strcmp(sub, "state") == 0)
        rc = rt_state(&g, sargc, sargv);
    else if (strcmp(sub, "kill") == 0)
        rc = rt_kill(&g, sargc, sargv);
    else if (strcmp(sub, "delete") == 0)
        rc = rt_delete(&g, sargc, sargv);
    else if (strcmp(sub, "exec") == 0)
        rc = rt_exec(&g, sargc, sargv);
    else if (strcmp(sub, "list") == 0 || strcmp(sub, "ps") == 0)
        rc = rt_list(&g, sargc, sargv);
    else if (strcmp(sub, "spec") == 0)
        rc = rt_spec(sargc, sargv);
    else
        rc = cli_failf("unknown runtime command \"%s\"", sub);
    free(sargv[0]);
    free(sargv);
    free(g.root);
    cur_globals = NULL;
    return rc;
}

BERTH_COMMAND(runtime, "runtime", "Run OCI bundles (runc-compatible runtime)", cmd_runtime);
