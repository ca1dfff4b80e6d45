/* berth sync: mirror repositories between registries and directories, like skopeo sync. */
#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "transport/policy.h"
#include "transport/sync.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: berth sync [options] --src docker|dir|yaml --dest docker|dir SOURCE DESTINATION\n\n"
    "Copy every image of SOURCE to DESTINATION, skipping images whose manifest digest already\n"
    "matches (one HEAD request per tag for an up-to-date registry mirror).\n\n"
    "  --src docker: SOURCE is REGISTRY/REPO (all tags) or REGISTRY/REPO:TAG\n"
    "  --src dir:    SOURCE is a directory written by 'berth sync --dest dir'\n"
    "  --src yaml:   SOURCE is a skopeo-sync YAML file (images, images-by-tag-regex,\n"
    "                tls-verify, cert-dir, credentials per registry)\n"
    "  DESTINATION is REGISTRY[/PREFIX] (docker) or a directory (dir); images land at\n"
    "  DESTINATION/NAME:TAG (NAME is the last path component unless --scoped).\n\n"
    "Options:\n"
    "  -s, --src TYPE                 source type\n"
    "  -d, --dest TYPE                destination type\n"
    "      --scoped                   keep the full source name below DESTINATION\n"
    "  -a, --all                      copy every image of multi-arch lists\n"
    "      --arch LIST                copy only these architectures of lists (amd64,arm64)\n"
    "      --include-tag REGEX        only tags matching (repeatable, POSIX extended)\n"
    "      --exclude-tag REGEX        skip tags matching (repeatable)\n"
    "      --dry-run                  print what would be copied, write nothing\n"
    "      --keep-going               continue after failures; print a JSON report at the end\n"
    "  -j, --jobs N                   images copied in parallel (default: CPUs, 2..4)\n"
    "      --blob-jobs N              blob transfers per image (default 6)\n"
    "  -f, --format oci|v2s2          manifest type of the destination\n"
    "      --preserve-digests         fail rather than change a manifest digest\n"
    "      --remove-signatures        do not copy signatures\n"
    "      --sign-by KEY              sign every image written with this GPG key\n"
    "      --sign-by-sigstore-private-key FILE   ... with this cosign private key\n"
    "      --sign-passphrase-file FILE   passphrase of the signing key\n"
    "                                 (images already up to date are not signed again)\n"
    "  -q, --quiet                    no progress output\n"
    "      --src-tls-verify[=BOOL]    --dest-tls-verify[=BOOL]\n"
    "      --src-cert-dir DIR         --dest-cert-dir DIR\n"
    "      --src-creds USER[:PASS]    --dest-creds USER[:PASS]\n"
    "      --src-authfile FILE        --dest-authfile FILE   --authfile FILE (both)\n"
    "      --src-retry-times N        --dest-retry-times N   --retry-times N (both)\n"
    "      --src-retry-delay DUR      --dest-retry-delay DUR --retry-delay DUR (both)\n";

static int parse_kind(const char *flag, const char *v, enum sync_kind *out)
{
    if (!strcmp(v, "docker"))
        *out = SYNC_DOCKER;
    else if (!strcmp(v, "dir"))
        *out = SYNC_DIR;
    else if (!strcmp(v, "yaml"))
        *out = SYNC_YAML;
    else
        return cli_failf("invalid %s \"%s\": use docker, dir or yaml", flag, v);
    return 0;
}

static int add_regex(regex_t **v, size_t *n, const char *flag, const char *re)
{
    *v = xreallocarray(*v, *n + 1, sizeof(regex_t));
    int rc = regcomp(&(*v)[*n], re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char buf[256];
        regerror(rc, &(*v)[*n], buf, sizeof(buf));
        return cli_failf("invalid %s \"%s\": %s", flag, re, buf);
    }
    (*n)++;
    return 0;
}

static int cmd_sync(struct berth_globals *g, int argc, char **argv)
{
    enum {
        O_SCOPED = 1000,
        O_ARCH,
        O_INCLUDE,
        O_EXCLUDE,
        O_DRY,
        O_KEEP,
        O_BLOBJOBS,
        O_PRESERVE,
        O_REMOVESIG,
        O_AUTHFILE,
        O_RETRY,
        O_RETRY_DELAY,
        O_SIGN_BY,
        O_SIGN_SIGSTORE,
        O_SIGN_PASS,
        O_SRC = 1100,
        O_DST = 1200,
    };
    struct option opts[48] = {
        {"src", required_argument, NULL, 's'},
        {"source", required_argument, NULL, 's'},
        {"dest", required_argument, NULL, 'd'},
        {"destination", required_argument, NULL, 'd'},
        {"scoped", no_argument, NULL, O_SCOPED},
        {"all", no_argument, NULL, 'a'},
        {"arch", required_argument, NULL, O_ARCH},
        {"include-tag", required_argument, NULL, O_INCLUDE},
        {"exclude-tag", required_argument, NULL, O_EXCLUDE},
        {"dry-run", no_argument, NULL, O_DRY},
        {"keep-going", no_argument, NULL, O_KEEP},
        {"jobs", required_argument, NULL, 'j'},
        {"blob-jobs", required_argument, NULL, O_BLOBJOBS},
        {"format", required_argument, NULL, 'f'},
        {"preserve-digests", no_argument, NULL, O_PRESERVE},
        {"remove-signatures", no_argument, NULL, O_REMOVESIG},
        {"quiet", no_argument, NULL, 'q'},
        {"authfile", required_argument, NULL, O_AUTHFILE},
        {"retry-times", required_argument, NULL, O_RETRY},
        {"retry-delay", required_argument, NULL, O_RETRY_DELAY},
        {"sign-by", required_argument, NULL, O_SIGN_BY},
        {"sign-by-sigstore-private-key", required_argument, NULL, O_SIGN_SIGSTORE},
        {"sign-passphrase-file", required_argument, NULL, O_SIGN_PASS},
        {"help", no_argument, NULL, 'h'},
    };
    size_t base = 0; /* the registry flags go after the fixed ones */
    while (opts[base].name)
        base++;
    char src_names[RF_COUNT][48], dst_names[RF_COUNT][48];
    registry_flags_options(&opts[base], src_names, "src-", O_SRC);
    registry_flags_options(&opts[base + RF_COUNT], dst_names, "dest-", O_DST);
    memset(&opts[base + 2 * RF_COUNT], 0, sizeof(struct option));

    struct system_context src_sys, dst_sys;
    registry_flags_sys_init(&src_sys);
    registry_flags_sys_init(&dst_sys);
    src_sys.registries_conf = dst_sys.registries_conf = g->registries_conf;
    /* images in parallel: one per CPU, at least 2 (transfers wait on the network), at most 4 */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct sync_options o = {.jobs = ncpu < 2   ? 2
                                     : ncpu > 4 ? 4
                                                : (int)ncpu,
                             .format = COPY_FORMAT_KEEP};
    bool have_src = false, have_dst = false;
    regex_t *inc = NULL, *exc = NULL;
    size_t ninc = 0, nexc = 0;
    cleanup_strv char **arches = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "s:d:aj:f:qh", opts, false)) != -1) {
        int r = registry_flags_apply(c, O_SRC, "src-", optarg, &src_sys);
        if (r == 0)
            r = registry_flags_apply(c, O_DST, "dest-", optarg, &dst_sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case 's':
            if (parse_kind("--src", optarg, &o.src_kind) < 0)
                return BERTH_EXIT_ERROR;
            have_src = true;
            break;
        case 'd':
            if (parse_kind("--dest", optarg, &o.dst_kind) < 0)
                return BERTH_EXIT_ERROR;
            if (o.dst_kind == SYNC_YAML)
                return cli_failf("--dest yaml is not possible: yaml is a source format");
            have_dst = true;
            break;
        case O_SCOPED:
            o.scoped = true;
            break;
        case 'a':
            o.all = true;
            break;
        case O_ARCH: {
            cleanup_free char *s = xstrdup(optarg);
            size_t n = 0;
            for (char *save = NULL, *t = strtok_r(s, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                arches = xreallocarray(arches, n + 2, sizeof(char *));
                arches[n++] = xstrdup(t);
                arches[n] = NULL;
            }
            if (n == 0)
                return cli_failf("--arch needs a list such as amd64,arm64");
            break;
        }
        case O_INCLUDE:
            if (add_regex(&inc, &ninc, "--include-tag", optarg) < 0)
                return BERTH_EXIT_ERROR;
            break;
        case O_EXCLUDE:
            if (add_regex(&exc, &nexc, "--exclude-tag", optarg) < 0)
                return BERTH_EXIT_ERROR;
            break;
        case O_DRY:
            o.dry_run = true;
            break;
        case O_KEEP:
            o.keep_going = true;
            break;
        case 'j':
        case O_BLOBJOBS:
            if (cli_parse_int(c == 'j' ? "--jobs" : "--blob-jobs", optarg, 1, 64,
                              c == 'j' ? &o.jobs : &o.blob_jobs) != 0)
                return BERTH_EXIT_ERROR;
            break;
        case 'f':
            if (!strcmp(optarg, "oci"))
                o.format = COPY_FORMAT_OCI;
            else if (!strcmp(optarg, "v2s2"))
                o.format = COPY_FORMAT_V2S2;
            else
                return cli_failf("invalid --format \"%s\": use oci or v2s2", optarg);
            break;
        case O_PRESERVE:
            o.preserve_digests = true;
            break;
        case O_REMOVESIG:
            o.remove_signatures = true;
            break;
        case O_SIGN_BY:
            o.sign_by = optarg;
            break;
        case O_SIGN_SIGSTORE:
            o.sign_by_sigstore = optarg;
            break;
        case O_SIGN_PASS:
            o.sign_passphrase_file = optarg;
            break;
        case 'q':
            o.quiet = true;
            break;
        case O_AUTHFILE:
            src_sys.auth_file = dst_sys.auth_file = optarg;
            break;
        case O_RETRY:
        case O_RETRY_DELAY:
            if (registry_flags_apply_both(O_SRC + (c == O_RETRY ? RF_RETRY_TIMES : RF_RETRY_DELAY),
                                          O_SRC, "", optarg, &src_sys, &dst_sys) < 0)
                return BERTH_EXIT_ERROR;
            break;
        case 'h':
            return cli_usage(usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (!have_src || !have_dst)
        return cli_failf("%s: --src and --dest are required (see --help)", argv[0]);
    if (optind + 2 != argc)
        return cli_nargs_error(argv[0], "two arguments (SOURCE DESTINATION)");
    if (o.all && arches)
        return cli_failf("--all and --arch exclude each other");
    o.src = argv[optind];
    o.dst = argv[optind + 1];
    o.src_sys = &src_sys;
    o.dst_sys = &dst_sys;
    o.arches = arches;
    o.include = inc;
    o.n_include = ninc;
    o.exclude = exc;
    o.n_exclude = nexc;
    o.progress = stderr;

    berth_error_t err = NULL;
    cleanup_policy struct policy *policy = NULL;
    int r = policy_load_default(g->policy, &policy, &err);
    o.policy = policy;
    struct sync_result res = {0};
    if (r == 0)
        r = sync_run(&o, &res, &err);
    for (size_t i = 0; i < ninc; i++)
        regfree(&inc[i]);
    for (size_t i = 0; i < nexc; i++)
        regfree(&exc[i]);
    free(inc);
    free(exc);
    if (o.dry_run)
        for (size_t i = 0; i < res.n; i++)
            if (res.items[i].status == SYNC_WOULD_COPY)
                printf("Would copy %s to %s\n", res.items[i].src, res.items[i].dst);
    if (o.keep_going || o.dry_run) {
        cleanup_json json_t *rep = sync_result_report(&res);
        char *s = json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
    } else if (r == 0 && !o.quiet) {
        fprintf(stderr, "Synced %zu images: %zu copied, %zu up to date\n", res.n, res.copied,
                res.up_to_date);
    }
    sync_result_clear(&res);
    if (r < 0)
        return cli_fail(&err);
    return 0;
}

BERTH_COMMAND(sync, "sync", "Synchronize images between registries and directories", cmd_sync);
