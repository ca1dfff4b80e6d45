/* berth pull / push: move images between the store and any transport (docker:// by default). */
#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "cmd/transport_cli.h"
#include "transport/registry_client.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/reference.h"
#include "transport/copy.h"
#include "transport/policy.h"
#include "transport/registries_conf.h"
#include "transport/transport.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_OS = 1000,
    OPT_ARCH,
    OPT_VARIANT,
    OPT_PLATFORM,
    OPT_RETRY,
    OPT_FORMAT,
    OPT_DCF,
    OPT_DCL,
    OPT_RMSIG,
    OPT_DIGESTFILE,
    OPT_ALL_TAGS,
    OPT_SIGN_BY,
    OPT_SIGN_IDENTITY,
    OPT_SIGN_PASS,
    OPT_SIGN_SIGSTORE,
    OPT_RF, /* registry_flags.h: --tls-verify ... --retry-delay */
};

/* Copies fixed (n entries, no terminator) into opts and appends the registry flags pull and push
 * share (registry_flags.h's six, plus --retry: podman's name for --retry-times) and the
 * terminator; opts must have room for n + RF_COUNT + 2 entries. */
static void add_registry_options(struct option *opts, char names[][48], const struct option *fixed,
                                 size_t n)
{
    memcpy(opts, fixed, n * sizeof(*fixed));
    registry_flags_options(&opts[n], names, "", OPT_RF);
    opts[n + RF_COUNT] = (struct option){"retry", required_argument, NULL, OPT_RETRY};
    memset(&opts[n + RF_COUNT + 1], 0, sizeof(*opts));
}

static const char pull_usage[] =
    "Usage: berth pull [OPTIONS] IMAGE\n\n"
    "Pull an image into local storage.  IMAGE is a transport reference (oci:DIR, docker://NAME,\n"
    "...) or a registry name; short names are resolved with registries.conf's\n"
    "unqualified-search-registries.\n\n"
    "Options:\n"
    "  -q, --quiet                      no progress output\n"
    "      --platform OS/ARCH[/VARIANT] --os/--arch/--variant   platform to pick from a list\n"
    "      --creds USER[:PASS]  --tls-verify BOOL  --cert-dir DIR  --authfile FILE\n"
    "      --retry-times N, --retry N       retries of a failed registry request (0..100)\n"
    "      --retry-delay DURATION           delay between retries (e.g. 500ms, 2s; default:\n"
    "                                       exponential backoff)\n";

static const struct option pull_opts[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"os", required_argument, NULL, OPT_OS},
    {"arch", required_argument, NULL, OPT_ARCH},
    {"variant", required_argument, NULL, OPT_VARIANT},
    {"platform", required_argument, NULL, OPT_PLATFORM},
    {"all-tags", no_argument, NULL, OPT_ALL_TAGS},
    {"help", no_argument, NULL, 'h'},
};

/* The name an image gets in the store when pulled from ref. */
static char *store_name_for(const struct image_reference *ref)
{
    if (ref->docker_name)
        return xstrdup(ref->docker_name);
    return NULL;
}

static int pull_one(struct berth_globals *g, struct image_reference *src,
                    struct system_context *sys, bool quiet, char **image_id, berth_error_t *err)
{
    cleanup_free char *name = store_name_for(src);
    cleanup_free char *dst_s = xasprintf("containers-storage:%s", name ? name : "");
    cleanup_image_reference struct image_reference *dst = NULL;
    if (transport_parse_reference(dst_s, &dst, err) < 0)
        return -1;
    struct copy_options o = cli_plain_copy_options(sys, quiet);
    cleanup_policy struct policy *policy = NULL;
    if (policy_load_default(g->policy, &policy, err) < 0)
        return -1;
    o.policy = policy;
    /* The policy has checked the signatures.  The store could keep them (copy into
     * containers-storage: does), but it keeps layers uncompressed, so a later push of a kept
     * signed image anywhere the original compressed layers are not would stop for
     * --remove-signatures (as podman's does); pull drops them so that pull-then-push works. */
    o.remove_signatures = true;
    struct cli_store_holder h = {0};
    if (cli_store_for_refs(g, &h, src, dst, sys, NULL, err) < 0)
        return -1;
    struct copy_result res = {0};
    int r = copy_image(src, dst, &o, &res, err);
    if (r < 0 && berth_error_status(*err) == EAGAIN) {
        /* the store lost a layer this pull reused (a concurrent rmi): once more from the top */
        log_warn("%s; pulling again", berth_error_msg(*err));
        berth_error_release(err);
        r = copy_image(src, dst, &o, &res, err);
    }
    if (r < 0) {
        cli_store_release(&h);
        return -1;
    }
    /* the image id is the config digest's hex: read it back through the store reference */
    free(dst->docker_name);
    dst->docker_name = NULL;
    struct image_reference *byd = NULL;
    cleanup_free char *byd_s = xasprintf("containers-storage:@%s", res.manifest_digest);
    copy_result_clear(&res);
    struct image_source *s = NULL;
    cleanup_free char *m = NULL, *mt = NULL;
    size_t len;
    int ret = transport_parse_reference(byd_s, &byd, err);
    if (ret == 0)
        ret = byd->ops->new_source(byd, sys, &s, err);
    if (ret == 0)
        ret = s->ops->get_manifest(s, NULL, &m, &len, &mt, err);
    image_source_close(s);
    image_reference_free(byd);
    cli_store_release(&h);
    if (ret < 0)
        return -1;
    /* the manifest was verified and read by the copy already: a parse failure here only leaves
     * the id unknown */
    cleanup_json json_t *j = NULL;
    berth_error_t jerr = NULL;
    if (json_parse_bounded(m, len, REGISTRY_MANIFEST_MAX, "manifest", &j, &jerr) < 0)
        berth_error_release(&jerr);
    const char *cd =
        j ? json_string_value(json_object_get(json_object_get(j, "config"), "digest")) : NULL;
    *image_id = xstrdup(cd && digest_hex(cd) ? digest_hex(cd) : "");
    return 0;
}

static int cmd_pull(struct berth_globals *g, int argc, char **argv)
{
    enum { NFIXED = sizeof(pull_opts) / sizeof(pull_opts[0]) };
    struct option opts[NFIXED + RF_COUNT + 2];
    char rf_names[RF_COUNT][48];
    add_registry_options(opts, rf_names, pull_opts, NFIXED);
    struct system_context sys;
    cli_system_context_init(g, &sys);
    bool quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "qh", opts, false)) != -1) {
        int r = registry_flags_apply(c, OPT_RF, "", optarg, &sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case OPT_RETRY:
            if (registry_flags_set(RF_RETRY_TIMES, "--retry", optarg, &sys) < 0)
                return BERTH_EXIT_ERROR;
            break;
        case 'q':
            quiet = true;
            break;
        case OPT_OS:
            sys.os_override = optarg;
            break;
        case OPT_ARCH:
            sys.arch_override = optarg;
            break;
        case OPT_VARIANT:
            sys.variant_override = optarg;
            break;
        case OPT_PLATFORM: {
            char *p = optarg;
            char *a = strchr(p, '/');
            if (!a)
                return cli_failf("invalid --platform \"%s\": use OS/ARCH[/VARIANT]", optarg);
            *a++ = 0;
            char *v = strchr(a, '/');
            if (v)
                *v++ = 0;
            sys.os_override = p;
            sys.arch_override = a;
            sys.variant_override = v;
            break;
        }
        case OPT_ALL_TAGS:
            return cli_failf("--all-tags is not supported");
        case 'h':
            return cli_usage(pull_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 1)
        return cli_nargs_error(argv[0], "exactly one argument (IMAGE)");
    const char *arg = argv[optind];
    cleanup_error berth_error_t err = NULL;
    cleanup_strv char **candidates = NULL;
    const char *colon = strchr(arg, ':');
    bool has_transport = false;
    if (colon) {
        cleanup_free char *tn = xstrndup(arg, (size_t)(colon - arg));
        has_transport = transport_name_is_known(tn);
    }
    if (!has_transport && image_ref_is_short_name(arg)) {
        cleanup_registries_conf registries_conf_t *conf = NULL;
        bool alias;
        if (registries_conf_load(g->registries_conf, &conf, &err) < 0)
            return cli_fail(&err);
        if (registries_conf_resolve_short_name(conf, arg, &candidates, &alias, &err) < 0)
            return cli_fail(&err);
    } else {
        candidates = xcalloc(2, sizeof(char *));
        candidates[0] = xstrdup(arg);
    }
    for (size_t i = 0; candidates[i]; i++) {
        cleanup_image_reference struct image_reference *src = NULL;
        if (cli_parse_image_ref(candidates[i], "docker", &src, &err) < 0)
            return cli_fail(&err);
        if (!quiet && strcmp(src->transport->name, "docker") == 0) {
            cleanup_free char *s = image_reference_string(src);
            fprintf(stderr, "Trying to pull %s...\n", s);
        }
        cleanup_free char *id = NULL;
        cleanup_error berth_error_t e = NULL;
        if (pull_one(g, src, &sys, quiet, &id, &e) == 0) {
            printf("%s\n", id);
            return 0;
        }
        if (!candidates[i + 1] || berth_error_status(e) != ENOENT) {
            return cli_fail(&e);
        }
        fprintf(stderr, "Warning: %s\n", berth_error_msg(e));
    }
    return cli_failf("no image found");
}

BERTH_COMMAND(pull, "pull", "Pull an image into local storage", cmd_pull);

static const char push_usage[] =
    "Usage: berth push [OPTIONS] IMAGE [DESTINATION]\n\n"
    "Push an image from local storage to DESTINATION (a transport reference; default the\n"
    "image's own name on its registry, docker://IMAGE).\n\n"
    "Options:\n"
    "  -q, --quiet                  no progress output\n"
    "  -f, --format oci|v2s2        manifest type\n"
    "      --compression-format F   gzip or zstd\n"
    "      --compression-level N\n"
    "      --remove-signatures      --digestfile FILE\n"
    "      --sign-by KEY            sign the pushed manifest with this GPG key\n"
    "      --sign-identity REF  --sign-passphrase-file FILE\n"
    "      --sign-by-sigstore-private-key FILE  sign with this cosign private key\n"
    "      --creds USER[:PASS]  --tls-verify BOOL  --cert-dir DIR  --authfile FILE\n"
    "      --retry-times N, --retry N   retries of a failed registry request (0..100)\n"
    "      --retry-delay DURATION   delay between retries (e.g. 500ms, 2s; default:\n"
    "                               exponential backoff)\n";

static int cmd_push(struct berth_globals *g, int argc, char **argv)
{
    static const struct option fixed_opts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"format", required_argument, NULL, 'f'},
        {"compression-format", required_argument, NULL, OPT_DCF},
        {"compression-level", required_argument, NULL, OPT_DCL},
        {"remove-signatures", no_argument, NULL, OPT_RMSIG},
        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
        {"sign-by", required_argument, NULL, OPT_SIGN_BY},
        {"sign-identity", required_argument, NULL, OPT_SIGN_IDENTITY},
        {"sign-passphrase-file", required_argument, NULL, OPT_SIGN_PASS},
        {"sign-by-sigstore-private-key", required_argument, NULL, OPT_SIGN_SIGSTORE},
        {"help", no_argument, NULL, 'h'},
    };
    enum { NFIXED = sizeof(fixed_opts) / sizeof(fixed_opts[0]) };
    struct option opts[NFIXED + RF_COUNT + 2];
    char rf_names[RF_COUNT][48];
    add_registry_options(opts, rf_names, fixed_opts, NFIXED);
    struct system_context sys;
    cli_system_context_init(g, &sys);
    struct copy_options o = {.compression_level = -1, .progress_out = stderr};
    const char *digestfile = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "qf:h", opts, false)) != -1) {
        int r = registry_flags_apply(c, OPT_RF, "", optarg, &sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case OPT_RETRY:
            if (registry_flags_set(RF_RETRY_TIMES, "--retry", optarg, &sys) < 0)
                return BERTH_EXIT_ERROR;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'f':
            if (strcmp(optarg, "oci") == 0)
                o.format = COPY_FORMAT_OCI;
            else if (strcmp(optarg, "v2s2") == 0 || strcmp(optarg, "docker") == 0)
                o.format = COPY_FORMAT_V2S2;
            else
                return cli_failf("unknown --format \"%s\": use oci or v2s2", optarg);
            break;
        case OPT_DCF: {
            cleanup_error berth_error_t e = NULL;
            if (compression_from_name(optarg, &o.compression, &e) < 0)
                return cli_failf("unknown --compression-format \"%s\"", optarg);
            o.set_compression = true;
            break;
        }
        case OPT_DCL: {
            int rc = cli_parse_int("--compression-level", optarg, INT_MIN, INT_MAX,
                                   &o.compression_level);
            if (rc != 0)
                return rc;
            break;
        }
        case OPT_RMSIG:
            o.remove_signatures = true;
            break;
        case OPT_DIGESTFILE:
            digestfile = optarg;
            break;
        case OPT_SIGN_BY:
            o.sign_by = optarg;
            break;
        case OPT_SIGN_IDENTITY:
            o.sign_identity = optarg;
            break;
        case OPT_SIGN_PASS:
            o.sign_passphrase_file = optarg;
            break;
        case OPT_SIGN_SIGSTORE:
            o.sign_by_sigstore = optarg;
            break;
        case 'h':
            return cli_usage(push_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return cli_nargs_error(argv[0], "IMAGE [DESTINATION]");
    cleanup_error berth_error_t err = NULL;
    cleanup_image_reference struct image_reference *src = NULL;
    cleanup_image_reference struct image_reference *dst = NULL;
    cleanup_free char *ss = xasprintf("containers-storage:%s", argv[optind]);
    if (transport_parse_reference(ss, &src, &err) < 0)
        return cli_fail(&err);
    const char *dest = argc - optind == 2 ? argv[optind + 1] : argv[optind];
    if (cli_parse_image_ref(dest, "docker", &dst, &err) < 0)
        return cli_fail(&err);
    if (!dst->docker_name && src->docker_name)
        dst->docker_name = xstrdup(src->docker_name);
    o.src_sys = &sys;
    o.dst_sys = &sys;
    cleanup_policy struct policy *policy = NULL;
    if (policy_load_default(g->policy, &policy, &err) < 0)
        return cli_fail(&err);
    o.policy = policy;
    struct copy_result res = {0};
    if (cli_copy_image(g, src, dst, &sys, NULL, &o, &res, &err) < 0)
        return cli_fail(&err);
    if (digestfile && fs_write_output(digestfile, res.manifest_digest, strlen(res.manifest_digest),
                                      0644, &err) < 0) {
        copy_result_clear(&res);
        return cli_fail(&err);
    }
    copy_result_clear(&res);
    return 0;
}

BERTH_COMMAND(push, "push", "Push an image from local storage to a destination", cmd_push);
