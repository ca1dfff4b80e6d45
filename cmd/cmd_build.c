/* berth build: builds an image from a Containerfile into the store (buildah bud / podman build),
 * or with --print-ast prints the parsed Containerfile as JSON. */
#include "build/builder.h"
#include "build/containerfile.h"
#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "cmd/store_open.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/imagespec.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: berth build [OPTIONS] [CONTEXT]\n"
    "       berth build --print-ast [-f FILE] [CONTEXT]\n\n"
    "Build an image from a Containerfile (or Dockerfile) and the CONTEXT directory (default .).\n"
    "The new image's id is printed on standard output.\n\n"
    "Options:\n"
    "  -f, --file FILE          Containerfile, relative to the current directory or else to\n"
    "                           CONTEXT (default: CONTEXT/Containerfile, then Dockerfile;\n"
    "                           \"-\" reads standard input)\n"
    "  -t, --tag NAME           name the image (repeatable)\n"
    "      --build-arg K[=V]    set a build argument (repeatable; K alone takes $K)\n"
    "      --target STAGE       build up to this stage\n"
    "      --format oci|docker  manifest and config format (default oci; also $BUILDAH_FORMAT)\n"
    "      --layers[=BOOL]      cache every step's layer (default true)\n"
    "      --no-cache           do not reuse cached steps\n"
    "      --squash             the new image has one layer\n"
    "      --timestamp N        created time N (seconds) and file times clamped to N, for\n"
    "                           byte-identical rebuilds (also $SOURCE_DATE_EPOCH)\n"
    "      --iidfile FILE       write the image id (sha256:...) to FILE\n"
    "      --platform OS/ARCH   accepted when it is this machine's platform\n"
    "      --network none|host  network of RUN steps (default none)\n"
    "      --isolation MODE     RUN isolation: auto (default; also $BUILDAH_ISOLATION), oci,\n"
    "                           rootless or chroot (what works inside CI containers)\n"
    "      --secret id=ID,src=PATH  a secret for RUN --mount=type=secret (repeatable)\n"
    "  -v, --volume HOST:CTR[:OPTS]  bind HOST at CTR during every RUN step; nothing of it\n"
    "                           stays in the image (OPTS: ro, rw, z, Z, nosuid, nodev, noexec)\n"
    "      --cache-from REF     import cache entries from oci:DIR or docker://REPO:TAG\n"
    "                           (repeatable)\n"
    "      --cache-to REF       export this build's cache entries to oci:DIR or\n"
    "                           docker://REPO:TAG\n"
    "      --tls-verify BOOL, --creds USER[:PASS], --authfile FILE, --cert-dir DIR\n"
    "                           registry settings for pulls and --cache-from/--cache-to\n"
    "      --label K=V          add a label to the image (repeatable)\n"
    "      --annotation K=V     add an annotation to the (OCI) manifest (repeatable)\n"
    "      --pull[=never]       a FROM image missing from the store is pulled from its\n"
    "                           registry, unless --pull=never\n"
    "  -q, --quiet              print only the image id\n"
    "      --print-ast          print the parsed file as JSON and exit\n"
    "  -h, --help               show this help\n";

static void push(char ***v, size_t *n, const char *s)
{
    *v = xreallocarray(*v, *n + 2, sizeof(char *));
    (*v)[(*n)++] = (char *)s;
    (*v)[*n] = NULL;
}

static int print_ast(const char *path)
{
    cleanup_error berth_error_t err = NULL;
    struct containerfile *cf = NULL;
    if (containerfile_parse_file(path, &cf, &err) < 0)
        return cli_fail(&err);
    for (size_t i = 0; i < cf->nwarnings; i++)
        log_warn("%s", cf->warnings[i]);
    cleanup_json json_t *j = containerfile_to_json(cf);
    containerfile_free(cf);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s)
        return cli_failf("cannot encode the AST as JSON");
    puts(s);
    free(s);
    if (fflush(stdout) != 0)
        return cli_failf("write standard output: %s", strerror(errno));
    return 0;
}

static int cmd_build(struct berth_globals *g, int argc, char **argv)
{
    enum {
        OPT_PRINT_AST = 1000,
        OPT_BUILD_ARG,
        OPT_TARGET,
        OPT_FORMAT,
        OPT_LAYERS,
        OPT_NO_CACHE,
        OPT_SQUASH,
        OPT_TIMESTAMP,
        OPT_IIDFILE,
        OPT_PLATFORM,
        OPT_NETWORK,
        OPT_SECRET,
        OPT_CACHE_FROM,
        OPT_CACHE_TO,
        OPT_PULL,
        OPT_LABEL,
        OPT_ANNOTATION,
        OPT_VOLUME,
        OPT_ISOLATION,
    };
    static const struct option base_opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"tag", required_argument, NULL, 't'},
        {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
        {"target", required_argument, NULL, OPT_TARGET},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"layers", optional_argument, NULL, OPT_LAYERS},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"squash", no_argument, NULL, OPT_SQUASH},
        {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
        {"iidfile", required_argument, NULL, OPT_IIDFILE},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"net", required_argument, NULL, OPT_NETWORK},
        {"isolation", required_argument, NULL, OPT_ISOLATION},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"cache-from", required_argument, NULL, OPT_CACHE_FROM},
        {"cache-to", required_argument, NULL, OPT_CACHE_TO},
        {"pull", optional_argument, NULL, OPT_PULL},
        {"label", required_argument, NULL, OPT_LABEL},
        {"annotation", required_argument, NULL, OPT_ANNOTATION},
        {"volume", required_argument, NULL, OPT_VOLUME},
        {"quiet", no_argument, NULL, 'q'},
        {"print-ast", no_argument, NULL, OPT_PRINT_AST},
        {"help", no_argument, NULL, 'h'},
        {0}};
    enum { OPT_REGISTRY = 2000 };
    size_t nbase = sizeof(base_opts) / sizeof(base_opts[0]) - 1;
    struct option opts[sizeof(base_opts) / sizeof(base_opts[0]) + RF_COUNT];
    char rf_names[RF_COUNT][48];
    memcpy(opts, base_opts, nbase * sizeof(struct option));
    registry_flags_options(opts + nbase, rf_names, "", OPT_REGISTRY);
    memset(&opts[nbase + RF_COUNT], 0, sizeof(struct option));
    struct system_context sys;
    registry_flags_sys_init(&sys);
    const char *file = NULL, *iidfile = NULL;
    bool ast = false;
    struct builder_options o = {.layers = true, .timestamp = -1};
    const char *isolation = NULL;
    cleanup_free char **tags = NULL, **bargs = NULL, **secrets = NULL, **cache_from = NULL,
                      **labels = NULL, **annotations = NULL, **volumes = NULL;
    size_t nt = 0, nb = 0, ns = 0, ncf = 0, nl = 0, na = 0, nv = 0;
    const char *fmt = getenv("BUILDAH_FORMAT");
    if (fmt && strcmp(fmt, "docker") == 0)
        o.docker_format = true;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde && cli_parse_timestamp(sde, &o.timestamp) != 0)
        return BERTH_EXIT_ERROR;
    int c;
    while ((c = cli_getopt(argc, argv, "f:t:v:qh", opts, false)) != -1) {
        switch (c) {
        case 'f':
            file = optarg;
            break;
        case 't':
            push(&tags, &nt, optarg);
            break;
        case OPT_BUILD_ARG:
            push(&bargs, &nb, optarg);
            break;
        case OPT_TARGET:
            o.target = optarg;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "oci") == 0)
                o.docker_format = false;
            else if (strcmp(optarg, "docker") == 0)
                o.docker_format = true;
            else
                return cli_failf("--format %s: use oci or docker", optarg);
            break;
        case OPT_LAYERS:
            if (optarg && cli_parse_bool("--layers", optarg, &o.layers) < 0)
                return BERTH_EXIT_ERROR;
            if (!optarg)
                o.layers = true;
            break;
        case OPT_NO_CACHE:
            o.no_cache = true;
            break;
        case OPT_SQUASH:
            o.squash = true;
            break;
        case OPT_TIMESTAMP:
            if (cli_parse_timestamp(optarg, &o.timestamp) != 0)
                return BERTH_EXIT_ERROR;
            break;
        case OPT_IIDFILE:
            iidfile = optarg;
            break;
        case OPT_PLATFORM:
            o.platform = optarg;
            break;
        case OPT_NETWORK:
            if (strcmp(optarg, "none") && strcmp(optarg, "host"))
                return cli_failf("--network %s: use none or host", optarg);
            o.network = optarg;
            break;
        case OPT_SECRET:
            push(&secrets, &ns, optarg);
            break;
        case OPT_ISOLATION:
            isolation = optarg;
            break;
        case OPT_CACHE_FROM:
            push(&cache_from, &ncf, optarg);
            break;
        case OPT_CACHE_TO:
            o.cache_to = optarg;
            break;
        case OPT_PULL:
            /* missing base images are pulled unless --pull=never (true/always/missing: the
             * store's copy is used when it has one) */
            o.pull_never = optarg && (strcmp(optarg, "never") == 0 || strcmp(optarg, "false") == 0);
            break;
        case 'v':
        case OPT_VOLUME:
            push(&volumes, &nv, optarg);
            break;
        case OPT_LABEL:
            push(&labels, &nl, optarg);
            break;
        case OPT_ANNOTATION:
            push(&annotations, &na, optarg);
            break;
        case 'q':
            o.quiet = true;
            break;
        case OPT_PRINT_AST:
            ast = true;
            break;
        case 'h':
            return cli_usage(usage);
        default: {
            int r = registry_flags_apply(c, OPT_REGISTRY, "", optarg, &sys);
            if (r < 0)
                return BERTH_EXIT_ERROR;
            if (r == 0)
                return cli_bad_option(argv[0], argc, argv);
        }
        }
    }
    if (argc - optind > 1)
        return cli_nargs_error(argv[0], "at most one CONTEXT directory");
    const char *context = optind < argc ? argv[optind] : ".";
    cleanup_free char *path = NULL;
    if (file) {
        /* as buildah: relative to the current directory, else to the context */
        if (strcmp(file, "-") != 0 && file[0] != '/' && access(file, F_OK) != 0) {
            char *p = xasprintf("%s/%s", context, file);
            if (access(p, F_OK) == 0)
                path = p;
            else
                free(p);
        }
        if (!path)
            path = xstrdup(file);
    } else {
        static const char *const names[] = {"Containerfile", "Dockerfile"};
        for (size_t i = 0; i < 2 && !path; i++) {
            char *p = xasprintf("%s/%s", context, names[i]);
            if (access(p, F_OK) == 0)
                path = p;
            else
                free(p);
        }
        if (!path)
            return cli_failf("no Containerfile or Dockerfile found in \"%s\" (use -f FILE)",
                             context);
    }
    if (ast)
        return print_ast(path);
    if (o.platform) {
        cleanup_error berth_error_t perr = NULL;
        cleanup_image_platform image_platform_t *want = NULL;
        cleanup_image_platform image_platform_t *host = image_platform_host();
        if (image_platform_parse(o.platform, &want, &perr) < 0)
            return cli_fail(&perr);
        image_platform_normalize(want);
        if (!image_platform_match(want, host)) {
            cleanup_free char *h = image_platform_string(host);
            return cli_failf("--platform %s: only this machine's platform (%s) can be built",
                             o.platform, h);
        }
    }
    for (size_t i = 0; i < ncf; i++)
        if (strncmp(cache_from[i], "oci:", 4) != 0 && strncmp(cache_from[i], "docker://", 9) != 0)
            return cli_failf("--cache-from %s: use oci:DIR or docker://REPO:TAG", cache_from[i]);
    if (o.cache_to && strncmp(o.cache_to, "oci:", 4) != 0 &&
        strncmp(o.cache_to, "docker://", 9) != 0)
        return cli_failf("--cache-to %s: use oci:DIR or docker://REPO:TAG", o.cache_to);
    sys.registries_conf = g->registries_conf;
    o.cache_sys = &sys;
    o.policy_path = g->policy;
    /* RUN steps must not read the terminal; the Containerfile may come from stdin though */
    if (strcmp(path, "-") != 0) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, 0);
            close(fd);
        }
    }
    o.context = context;
    o.containerfile = path;
    o.build_args = bargs;
    o.tags = tags;
    o.secrets = secrets;
    o.volumes = volumes;
    o.cache_from = cache_from;
    o.labels = labels;
    o.annotations = annotations;
    o.progress = stdout;
    if (cli_isolation(isolation, &o.isolation) != 0)
        return BERTH_EXIT_ERROR;
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_free char *id = NULL;
    if (builder_build(s, &o, &id, &err) < 0) {
        fflush(stdout);
        return cli_fail(&err);
    }
    if (iidfile) {
        cleanup_free char *v = xasprintf("sha256:%s", id);
        if (fs_write_output(iidfile, v, strlen(v), 0644, &err) < 0)
            return cli_fail(&err);
    }
    printf("%s\n", id);
    if (fflush(stdout) != 0)
        return cli_failf("write standard output: %s", strerror(errno));
    return 0;
}

BERTH_COMMAND(build, "build", "Build an image from a Containerfile", cmd_build);
