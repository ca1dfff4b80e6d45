/* berth login / berth logout: credentials in auth.json, as podman and skopeo keep them. */
#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "transport/auth.h"
#include "transport/docker.h"
#include "transport/registry_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const char login_usage[] =
    "Usage: berth login [options] REGISTRY\n\n"
    "Log in to a registry: checks the credentials against REGISTRY/v2/ and stores them in the\n"
    "auth file (default ${XDG_RUNTIME_DIR}/containers/auth.json, mode 0600).\n\n"
    "Options:\n"
    "  -u, --username USER      user name (asked for on a terminal when missing)\n"
    "  -p, --password PASS      password (visible to other users: prefer --password-stdin)\n"
    "      --password-stdin     read the password from standard input\n"
    "      --authfile FILE      auth file to write\n"
    "      --tls-verify[=BOOL]  verify TLS (default true)\n"
    "      --cert-dir DIR       CA and client certificates for the registry\n"
    "      --get-login          print the user name stored for REGISTRY\n";

static const char logout_usage[] =
    "Usage: berth logout [options] REGISTRY\n"
    "       berth logout --all\n\n"
    "Remove stored credentials.\n\n"
    "Options:\n"
    "  -a, --all            remove the credentials of every registry\n"
    "      --authfile FILE  auth file to edit\n";

/* Accepts "host", "https://host/", "host/repo" (repository-scoped credentials). */
static char *normalize_registry_arg(const char *arg)
{
    if (strncmp(arg, "https://", 8) == 0)
        arg += 8;
    else if (strncmp(arg, "http://", 7) == 0)
        arg += 7;
    char *s = xstrdup(arg);
    size_t l = strlen(s);
    while (l > 0 && s[l - 1] == '/')
        s[--l] = '\0';
    return s;
}

static char *read_line(FILE *f, bool echo)
{
    struct termios old, noecho;
    bool tty = !echo && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
    if (tty) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSAFLUSH, &noecho);
    }
    char buf[4096];
    char *r = fgets(buf, sizeof(buf), f);
    if (tty) {
        tcsetattr(fileno(f), TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!r)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    char *s = xstrdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return s;
}

static int cmd_login(struct berth_globals *g, int argc, char **argv)
{
    enum { O_PWSTDIN = 1000, O_GETLOGIN, O_RF = 1100 };
    struct option opts[16] = {
        {"username", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'p'},
        {"password-stdin", no_argument, NULL, O_PWSTDIN},
        {"get-login", no_argument, NULL, O_GETLOGIN},
        {"help", no_argument, NULL, 'h'},
    };
    char names[RF_COUNT][48];
    registry_flags_options(&opts[5], names, "", O_RF);
    struct system_context sys;
    registry_flags_sys_init(&sys);
    const char *user = NULL, *pass_arg = NULL;
    bool pw_stdin = false, get_login = false;
    int c;
    while ((c = cli_getopt(argc, argv, "u:p:h", opts, false)) != -1) {
        int r = registry_flags_apply(c, O_RF, "", optarg, &sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case 'u':
            user = optarg;
            break;
        case 'p':
            pass_arg = optarg;
            break;
        case O_PWSTDIN:
            pw_stdin = true;
            break;
        case O_GETLOGIN:
            get_login = true;
            break;
        case 'h':
            return cli_usage(login_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one argument (REGISTRY)");
    if (sys.creds)
        return cli_failf("%s: use --username/--password instead of --creds", argv[0]);
    cleanup_free char *key = normalize_registry_arg(argv[optind]);
    cleanup_free char *host = xstrndup(key, strcspn(key, "/"));
    cleanup_free char *path = auth_write_path(sys.auth_file);
    berth_error_t err = NULL;

    if (get_login) {
        cleanup_free char *u = NULL, *p = NULL;
        bool found = false;
        const char *slash = strchr(key, '/');
        if (auth_lookup(sys.auth_file, host, slash ? slash + 1 : NULL, &u, &p, &found, &err) < 0)
            return cli_fail(&err);
        if (p)
            explicit_bzero(p, strlen(p));
        if (!found)
            return cli_failf("not logged into %s", key);
        printf("%s\n", u);
        return 0;
    }
    if (pw_stdin && pass_arg)
        return cli_failf("%s: --password and --password-stdin are mutually exclusive", argv[0]);
    cleanup_free char *u = user ? xstrdup(user) : NULL;
    cleanup_free char *p = pass_arg ? xstrdup(pass_arg) : NULL;
    if (!u) {
        if (!isatty(STDIN_FILENO) || pw_stdin)
            return cli_failf("%s: --username is required when not on a terminal", argv[0]);
        fprintf(stderr, "Username: ");
        u = read_line(stdin, true);
        if (!u || !u[0])
            return cli_failf("no user name given");
    }
    if (!p) {
        if (pw_stdin) {
            /* the whole of stdin, minus a trailing newline (like podman) */
            char buf[8192];
            size_t n = fread(buf, 1, sizeof(buf) - 1, stdin);
            buf[n] = '\0';
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
            p = xstrdup(buf);
            explicit_bzero(buf, sizeof(buf));
        } else if (isatty(STDIN_FILENO)) {
            fprintf(stderr, "Password: ");
            p = read_line(stdin, false);
        }
        if (!p || !p[0])
            return cli_failf("%s: no password given (use --password-stdin)", argv[0]);
    }
    cleanup_free char *cu = NULL, *cp = NULL;
    struct registry_options o;
    if (docker_registry_options(&sys, host, false, &o, &cu, &cp, &err) < 0)
        return cli_fail(&err);
    o.username = u;
    o.password = p;
    o.no_creds = true;
    cleanup_registry_client registry_client_t *client = NULL;
    int r = registry_client_new(&o, &client, &err);
    if (r == 0)
        r = registry_ping(client, &err);
    if (r < 0) {
        explicit_bzero(p, strlen(p));
        berth_error_wrap(&err, "logging in to %s", key);
        return cli_fail(&err);
    }
    r = auth_store(path, key, u, p, &err);
    explicit_bzero(p, strlen(p));
    if (r < 0)
        return cli_fail(&err);
    printf("Login Succeeded!\n");
    return 0;
}

static int cmd_logout(struct berth_globals *g, int argc, char **argv)
{
    enum { O_AUTHFILE = 1000 };
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"authfile", required_argument, NULL, O_AUTHFILE},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool all = false;
    const char *authfile = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "ah", opts, false)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case O_AUTHFILE:
            authfile = optarg;
            break;
        case 'h':
            return cli_usage(logout_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (all ? optind != argc : optind + 1 != argc)
        return cli_nargs_error(argv[0], all ? "no arguments with --all"
                                            : "exactly one argument "
                                              "(REGISTRY)");
    cleanup_free char *path = auth_write_path(authfile);
    berth_error_t err = NULL;
    bool removed = false;
    cleanup_free char *key = all ? NULL : normalize_registry_arg(argv[optind]);
    if (auth_remove(path, key, &removed, &err) < 0)
        return cli_fail(&err);
    if (all) {
        printf("Removed login credentials for all registries\n");
        return 0;
    }
    if (!removed)
        return cli_failf("not logged into %s", key);
    printf("Removed login credentials for %s\n", key);
    return 0;
}

BERTH_COMMAND(login, "login", "Log in to a container registry", cmd_login);
BERTH_COMMAND(logout, "logout", "Log out of a container registry", cmd_logout);
