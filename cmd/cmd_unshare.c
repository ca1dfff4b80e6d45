/* berth unshare [CMD [ARG...]]: run a command inside berth's user namespace, as `podman unshare`
 * does: uid 0 there maps to the user, subordinate ids to the rest, so the store's files can be
 * inspected and changed with their image ownership. */
#include "cmd/cli.h"

#include "storage/userns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] = "Usage: berth unshare [COMMAND [ARG...]]\n\n"
                            "Run COMMAND (default: $SHELL) in berth's user namespace.\n";

static int cmd_unshare(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, true)) != -1) {
        switch (c) {
        case 'h':
            return cli_usage(usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    berth_error_t err = NULL;
    if (userns_ensure(&err) < 0)
        return cli_fail(&err);
    setenv("BERTH_UNSHARE", "1", 1);
    char *shell[] = {getenv("SHELL") ? getenv("SHELL") : "/bin/sh", NULL};
    char **cmd = optind < argc ? argv + optind : shell;
    execvp(cmd[0], cmd);
    int e = errno;
    fprintf(stderr, "Error: exec \"%s\": %s\n", cmd[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}

BERTH_COMMAND(unshare, "unshare", "Run a command in berth's user namespace", cmd_unshare);
