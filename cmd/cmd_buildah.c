/* Scripted builds, as buildah offers them: berth from / build-exec / cp / config / commit.
 * (buildah's `run` on a working container is `berth build-exec`, since `berth exec` belongs to
 * the container runtime commands.) */
#include "build/builder.h"
#include "cmd/cli.h"
#include "cmd/store_open.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/strutil.h"
#include "common/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ from */

static const char from_usage[] =
    "Usage: berth from [--name NAME] [-q] IMAGE\n\n"
    "Create a working container from a local image (or scratch) and print its name.\n"
    "Change it with berth build-exec / cp / config, then berth commit it.\n";

static int cmd_from(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *name = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "n:qh", opts, false)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'q':
            break;
        case 'h':
            return cli_usage(from_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 1)
        return cli_nargs_error(argv[0], "exactly one IMAGE");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_free char *out = NULL;
    if (working_from(s, argv[optind], name, &out, &err) < 0)
        return cli_fail(&err);
    printf("%s\n", out);
    return 0;
}

BERTH_COMMAND(from, "from", "Create a working container from an image (scripted builds)", cmd_from);

/* ------------------------------------------------------------------ build-exec */

static const char exec_usage[] =
    "Usage: berth build-exec [OPTIONS] CONTAINER [--] COMMAND [ARG...]\n\n"
    "Run a command in a working container made by berth from (buildah run); its changes are\n"
    "kept for berth commit.\n\n"
    "Options:\n"
    "  -e, --env K=V         extra environment variable\n"
    "      --workingdir DIR  working directory (default: the container's)\n"
    "  -u, --user USER       user (default: the container's)\n"
    "      --network MODE    none (default) or host\n"
    "      --isolation MODE  auto (default; also $BUILDAH_ISOLATION), oci, rootless, chroot\n"
    "  -t, --tty             allocate a terminal\n";

static int cmd_build_exec(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"env", required_argument, NULL, 'e'},
                                         {"workingdir", required_argument, NULL, 'w'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"network", required_argument, NULL, 'N'},
                                         {"net", required_argument, NULL, 'N'},
                                         {"tty", no_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"isolation", required_argument, NULL, 'I'},
                                         {0}};
    const char *isolation = NULL;
    struct working_exec_options o = {0};
    cleanup_strv char **env = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "e:w:u:th", opts, true)) != -1) {
        switch (c) {
        case 'e':
            strv_add(&env, optarg);
            break;
        case 'w':
            o.workdir = optarg;
            break;
        case 'u':
            o.user = optarg;
            break;
        case 'N':
            if (strcmp(optarg, "none") && strcmp(optarg, "host"))
                return cli_failf("--network %s: use none or host", optarg);
            o.network = optarg;
            break;
        case 't':
            o.terminal = true;
            break;
        case 'I':
            isolation = optarg;
            break;
        case 'h':
            return cli_usage(exec_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 2)
        return cli_nargs_error(argv[0], "a CONTAINER and a COMMAND");
    const char *ctr = argv[optind++];
    if (strcmp(argv[optind], "--") == 0)
        optind++;
    if (optind >= argc)
        return cli_nargs_error(argv[0], "a COMMAND");
    o.argv = argv + optind;
    o.env = env;
    if (cli_isolation(isolation, &o.isolation) != 0)
        return BERTH_EXIT_ERROR;
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    int status = 0;
    if (working_exec(s, ctr, &o, &status, &err) < 0)
        return cli_fail(&err);
    return status;
}

BERTH_COMMAND(build_exec, "build-exec", "Run a command in a working container (buildah run)",
              cmd_build_exec);

/* ------------------------------------------------------------------ cp */

static const char cp_usage[] =
    "Usage: berth cp [--chown USER[:GROUP]] [--chmod MODE] [--extract] SRC... CONTAINER:DEST\n\n"
    "Copy host files or directories (a directory's contents) into a working container.\n"
    "DEST is relative to the container's working directory unless absolute.\n";

static int cmd_cp(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"chown", required_argument, NULL, 'o'},
                                         {"chmod", required_argument, NULL, 'm'},
                                         {"extract", no_argument, NULL, 'x'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *chown = NULL, *chmod_s = NULL;
    bool extract = false;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        switch (c) {
        case 'o':
            chown = optarg;
            break;
        case 'm':
            chmod_s = optarg;
            break;
        case 'x':
            extract = true;
            break;
        case 'h':
            return cli_usage(cp_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 2)
        return cli_nargs_error(argv[0], "SRC... CONTAINER:DEST");
    cleanup_free char *last = xstrdup(argv[argc - 1]);
    char *colon = strchr(last, ':');
    if (!colon || colon == last)
        return cli_failf("the destination must be CONTAINER:PATH, got \"%s\"", last);
    *colon = 0;
    const char *dest = colon[1] ? colon + 1 : "/";
    cleanup_free char **srcs = xcalloc((size_t)(argc - optind), sizeof(char *));
    for (int i = optind; i < argc - 1; i++)
        srcs[i - optind] = argv[i];
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    if (working_copy(s, last, srcs, dest, chown, chmod_s, extract, &err) < 0)
        return cli_fail(&err);
    return 0;
}

BERTH_COMMAND(cp, "cp", "Copy files into a working container (buildah copy)", cmd_cp);

/* ------------------------------------------------------------------ config */

static const char config_usage[] =
    "Usage: berth config [OPTIONS] CONTAINER\n\n"
    "Change the image configuration a working container will be committed with.\n\n"
    "Options (repeatable ones marked *):\n"
    "  --env K=V *           set (K- removes) an environment variable\n"
    "  --cmd CMD             JSON array or shell string (\"\" clears)\n"
    "  --entrypoint CMD      JSON array or shell string (\"\" clears)\n"
    "  --label K=V *         set (K- removes) a label\n"
    "  --annotation K=V *    set a manifest annotation\n"
    "  --workingdir DIR      working directory\n"
    "  --user USER           user\n"
    "  --port PORT[/PROTO] * exposed port\n"
    "  --volume PATH *       volume\n"
    "  --stop-signal SIG     stop signal\n"
    "  --author NAME         author\n";

static int cmd_config(struct berth_globals *g, int argc, char **argv)
{
    enum { O_ENV = 1000, O_CMD, O_EP, O_LABEL, O_ANN, O_WD, O_USER, O_PORT, O_VOL, O_SIG, O_AUTH };
    static const struct option opts[] = {{"env", required_argument, NULL, O_ENV},
                                         {"cmd", required_argument, NULL, O_CMD},
                                         {"entrypoint", required_argument, NULL, O_EP},
                                         {"label", required_argument, NULL, O_LABEL},
                                         {"annotation", required_argument, NULL, O_ANN},
                                         {"workingdir", required_argument, NULL, O_WD},
                                         {"user", required_argument, NULL, O_USER},
                                         {"port", required_argument, NULL, O_PORT},
                                         {"volume", required_argument, NULL, O_VOL},
                                         {"stop-signal", required_argument, NULL, O_SIG},
                                         {"author", required_argument, NULL, O_AUTH},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    struct working_config_options o = {0};
    /* freed on every return, also --help's and a bad option's */
    cleanup_strv char **env = NULL, **labels = NULL, **annotations = NULL, **ports = NULL,
                      **volumes = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        switch (c) {
        case O_ENV:
            strv_add(&env, optarg);
            break;
        case O_CMD:
            o.cmd = optarg;
            break;
        case O_EP:
            o.entrypoint = optarg;
            break;
        case O_LABEL:
            strv_add(&labels, optarg);
            break;
        case O_ANN:
            strv_add(&annotations, optarg);
            break;
        case O_WD:
            o.workingdir = optarg;
            break;
        case O_USER:
            o.user = optarg;
            break;
        case O_PORT:
            strv_add(&ports, optarg);
            break;
        case O_VOL:
            strv_add(&volumes, optarg);
            break;
        case O_SIG:
            o.stop_signal = optarg;
            break;
        case O_AUTH:
            o.author = optarg;
            break;
        case 'h':
            return cli_usage(config_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 1)
        return cli_nargs_error(argv[0], "exactly one CONTAINER");
    o.env = env;
    o.labels = labels;
    o.annotations = annotations;
    o.ports = ports;
    o.volumes = volumes;
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0 || working_config(s, argv[optind], &o, &err) < 0)
        return cli_fail(&err);
    return 0;
}

BERTH_COMMAND(config, "config", "Change the configuration of a working container", cmd_config);

/* ------------------------------------------------------------------ commit */

static const char commit_usage[] =
    "Usage: berth commit [OPTIONS] CONTAINER [IMAGE]\n\n"
    "Create an image from a working container's changes and configuration.\n\n"
    "Options:\n"
    "  -f, --format oci|docker  manifest and config format (default oci)\n"
    "      --timestamp N        created time and file times clamped to N (reproducible)\n"
    "      --squash             a single layer\n"
    "      --rm                 remove the working container afterwards\n"
    "      --iidfile FILE       write the image id to FILE\n"
    "  -q, --quiet              print nothing but the id\n";

static int cmd_commit(struct berth_globals *g, int argc, char **argv)
{
    enum { O_TS = 1000, O_SQ, O_RM, O_IID };
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"timestamp", required_argument, NULL, O_TS},
                                         {"squash", no_argument, NULL, O_SQ},
                                         {"rm", no_argument, NULL, O_RM},
                                         {"iidfile", required_argument, NULL, O_IID},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool docker = false, squash = false, rm = false;
    int64_t ts = -1;
    const char *iidfile = NULL;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde && cli_parse_timestamp(sde, &ts) != 0)
        return BERTH_EXIT_ERROR;
    int c;
    while ((c = cli_getopt(argc, argv, "f:qh", opts, false)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "oci") == 0)
                docker = false;
            else if (strcmp(optarg, "docker") == 0)
                docker = true;
            else
                return cli_failf("--format %s: use oci or docker", optarg);
            break;
        case O_TS:
            if (cli_parse_timestamp(optarg, &ts) != 0)
                return BERTH_EXIT_ERROR;
            break;
        case O_SQ:
            squash = true;
            break;
        case O_RM:
            rm = true;
            break;
        case O_IID:
            iidfile = optarg;
            break;
        case 'q':
            break;
        case 'h':
            return cli_usage(commit_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return cli_nargs_error(argv[0], "a CONTAINER and an optional IMAGE name");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_free char *id = NULL;
    if (working_commit(s, argv[optind], argc - optind == 2 ? argv[optind + 1] : NULL, docker, ts,
                       squash, &id, &err) < 0)
        return cli_fail(&err);
    if (iidfile) {
        cleanup_free char *v = xasprintf("sha256:%s", id);
        if (fs_write_output(iidfile, v, strlen(v), 0644, &err) < 0)
            return cli_fail(&err);
    }
    if (rm && working_remove(s, argv[optind], &err) < 0)
        return cli_fail(&err);
    printf("%s\n", id);
    return 0;
}

BERTH_COMMAND(commit, "commit", "Create an image from a working container", cmd_commit);
