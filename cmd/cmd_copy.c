/* berth copy / inspect / manifest-digest: skopeo's image commands for every transport. */
#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "cmd/transport_cli.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/template.h"
#include "transport/copy.h"
#include "transport/registry_session.h"
#include "transport/docker.h"
#include "transport/manifest.h"
#include "transport/policy.h"
#include "transport/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char copy_usage[] =
    "Usage: berth copy [OPTIONS] SOURCE-IMAGE DESTINATION-IMAGE\n\n"
    "Copy an image from one location to another (transports: docker://, oci:, oci-archive:,\n"
    "docker-archive:, dir:, containers-storage:).\n\n"
    "Options:\n"
    "  -a, --all                         copy every image of a list\n"
    "  -f, --format oci|v2s2             manifest type of the destination\n"
    "      --dest-compress-format F      gzip or zstd\n"
    "      --dest-compress-level N       compression level\n"
    "      --preserve-digests            fail if the manifest digest would change\n"
    "      --remove-signatures           do not copy signatures\n"
    "      --sign-by KEY                 sign the written manifest with this GPG key\n"
    "      --sign-identity REF           docker reference to sign (default: the destination's)\n"
    "      --sign-passphrase-file FILE   passphrase of the --sign-by key\n"
    "      --sign-by-sigstore-private-key FILE   sign with this cosign private key (sigstore)\n"
    "  -j, --jobs N                      blob transfers at once (default 6)\n"
    "  -q, --quiet                       no progress output\n"
    "      --override-os/--override-arch/--override-variant   platform to pick from a list\n"
    "      --digestfile FILE                 write the manifest digest to FILE\n"
    "Registry options (--src-X: the source only, --dest-X: the destination only):\n"
    "      --src-creds/--dest-creds USER[:PASS]     --src-no-creds/--dest-no-creds\n"
    "      --src-tls-verify/--dest-tls-verify BOOL  --src-cert-dir/--dest-cert-dir DIR\n"
    "      --authfile FILE         --src-authfile/--dest-authfile FILE\n"
    "      --retry-times N         --src-retry-times/--dest-retry-times N   (0..100)\n"
    "      --retry-delay DURATION  --src-retry-delay/--dest-retry-delay DURATION\n"
    "                              (e.g. 500ms, 2s; default: exponential backoff)\n"
    "  --authfile, --retry-times and --retry-delay without a prefix set both sides.\n";

enum {
    OPT_DCF = 1000,
    OPT_DCL,
    OPT_PRESERVE,
    OPT_RMSIG,
    OPT_OS,
    OPT_ARCH,
    OPT_VARIANT,
    OPT_DIGESTFILE,
    OPT_SRC_NOCREDS,
    OPT_DST_NOCREDS,
    OPT_MULTI_ARCH,
    OPT_SIGN_BY,
    OPT_TMPDIR,
    OPT_SIGN_IDENTITY,
    OPT_SIGN_PASS,
    OPT_SIGN_SIGSTORE,
    /* registry flags (registry_flags.h): --src-X, --dest-X, and --X for both sides */
    OPT_RF_SRC,
    OPT_RF_DST = OPT_RF_SRC + RF_COUNT,
    OPT_RF_BOTH = OPT_RF_DST + RF_COUNT,
    /* inspect's --X */
    OPT_RF = OPT_RF_BOTH + RF_COUNT,
};

/* the unprefixed registry flags of copy (skopeo's): they set both sides */
#define COPY_RF_BOTH (RF_BIT(RF_AUTHFILE) | RF_BIT(RF_RETRY_TIMES) | RF_BIT(RF_RETRY_DELAY))

static int cmd_copy(struct berth_globals *g, int argc, char **argv)
{
    static const struct option fixed_opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"format", required_argument, NULL, 'f'},
        {"dest-compress-format", required_argument, NULL, OPT_DCF},
        {"dest-compress-level", required_argument, NULL, OPT_DCL},
        {"preserve-digests", no_argument, NULL, OPT_PRESERVE},
        {"remove-signatures", no_argument, NULL, OPT_RMSIG},
        {"quiet", no_argument, NULL, 'q'},
        {"jobs", required_argument, NULL, 'j'},
        {"override-os", required_argument, NULL, OPT_OS},
        {"override-arch", required_argument, NULL, OPT_ARCH},
        {"override-variant", required_argument, NULL, OPT_VARIANT},
        {"src-no-creds", no_argument, NULL, OPT_SRC_NOCREDS},
        {"dest-no-creds", no_argument, NULL, OPT_DST_NOCREDS},
        {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
        {"multi-arch", required_argument, NULL, OPT_MULTI_ARCH},
        {"tmpdir", required_argument, NULL, OPT_TMPDIR},
        {"sign-by", required_argument, NULL, OPT_SIGN_BY},
        {"sign-identity", required_argument, NULL, OPT_SIGN_IDENTITY},
        {"sign-passphrase-file", required_argument, NULL, OPT_SIGN_PASS},
        {"sign-by-sigstore-private-key", required_argument, NULL, OPT_SIGN_SIGSTORE},
        {"help", no_argument, NULL, 'h'},
    };
    enum { NFIXED = sizeof(fixed_opts) / sizeof(fixed_opts[0]) };
    struct option opts[NFIXED + 3 * RF_COUNT + 1];
    char src_names[RF_COUNT][48], dst_names[RF_COUNT][48], both_names[RF_COUNT][48];
    memcpy(opts, fixed_opts, sizeof(fixed_opts));
    size_t n = NFIXED;
    n += registry_flags_options_mask(&opts[n], src_names, "src-", OPT_RF_SRC, RF_ALL);
    n += registry_flags_options_mask(&opts[n], dst_names, "dest-", OPT_RF_DST, RF_ALL);
    n += registry_flags_options_mask(&opts[n], both_names, "", OPT_RF_BOTH, COPY_RF_BOTH);
    memset(&opts[n], 0, sizeof(opts[n]));
    struct system_context src_sys, dst_sys;
    cli_system_context_init(g, &src_sys);
    cli_system_context_init(g, &dst_sys);
    struct copy_options o = {.compression_level = -1, .progress_out = stdout};
    const char *digestfile = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "af:j:qh", opts, false)) != -1) {
        int r = registry_flags_apply(c, OPT_RF_SRC, "src-", optarg, &src_sys);
        if (r == 0)
            r = registry_flags_apply(c, OPT_RF_DST, "dest-", optarg, &dst_sys);
        if (r == 0)
            r = registry_flags_apply_both(c, OPT_RF_BOTH, "", optarg, &src_sys, &dst_sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case 'a':
            o.all = true;
            break;
        case 'f':
            if (strcmp(optarg, "oci") == 0)
                o.format = COPY_FORMAT_OCI;
            else if (strcmp(optarg, "v2s2") == 0)
                o.format = COPY_FORMAT_V2S2;
            else
                return cli_failf("unknown --format \"%s\": use oci or v2s2", optarg);
            break;
        case OPT_DCF: {
            cleanup_error berth_error_t e = NULL;
            if (compression_from_name(optarg, &o.compression, &e) < 0 ||
                o.compression == COMPRESSION_NONE)
                return cli_failf("unknown --dest-compress-format \"%s\": use gzip or zstd", optarg);
            o.set_compression = true;
            break;
        }
        case OPT_DCL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 22)
                return cli_failf("invalid --dest-compress-level \"%s\"", optarg);
            o.compression_level = (int)v;
            break;
        }
        case OPT_PRESERVE:
            o.preserve_digests = true;
            break;
        case OPT_RMSIG:
            o.remove_signatures = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'j':
            if (cli_parse_int("--jobs", optarg, 1, 64, &o.max_parallel) != 0)
                return BERTH_EXIT_ERROR;
            break;
        case OPT_OS:
            o.os = optarg;
            break;
        case OPT_ARCH:
            o.arch = optarg;
            break;
        case OPT_VARIANT:
            o.variant = optarg;
            break;
        case OPT_SRC_NOCREDS:
            src_sys.no_creds = true;
            break;
        case OPT_DST_NOCREDS:
            dst_sys.no_creds = true;
            break;
        case OPT_DIGESTFILE:
            digestfile = optarg;
            break;
        case OPT_MULTI_ARCH:
            if (strcmp(optarg, "all") == 0)
                o.all = true;
            else if (strcmp(optarg, "system") != 0)
                return cli_failf("--multi-arch \"%s\" is not supported: use system or all", optarg);
            break;
        case OPT_TMPDIR:
            src_sys.tmpdir = dst_sys.tmpdir = optarg;
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
            return cli_usage(copy_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 2)
        return cli_nargs_error(argv[0], "exactly two arguments (SOURCE-IMAGE DESTINATION-IMAGE)");
    src_sys.os_override = o.os;
    src_sys.arch_override = o.arch;
    src_sys.variant_override = o.variant;
    o.src_sys = &src_sys;
    o.dst_sys = &dst_sys;
    cleanup_error berth_error_t err = NULL;
    cleanup_image_reference struct image_reference *s = NULL;
    cleanup_image_reference struct image_reference *d = NULL;
    if (transport_parse_reference(argv[optind], &s, &err) < 0 ||
        transport_parse_reference(argv[optind + 1], &d, &err) < 0)
        return cli_fail(&err);
    cleanup_policy struct policy *policy = NULL;
    if (policy_load_default(g->policy, &policy, &err) < 0)
        return cli_fail(&err);
    o.policy = policy;
    struct copy_result res = {0};
    if (cli_copy_image(g, s, d, &src_sys, &dst_sys, &o, &res, &err) < 0)
        return cli_fail(&err);
    if (digestfile && fs_write_output(digestfile, res.manifest_digest, strlen(res.manifest_digest),
                                      0644, &err) < 0) {
        copy_result_clear(&res);
        return cli_fail(&err);
    }
    copy_result_clear(&res);
    return 0;
}

BERTH_COMMAND(copy, "copy", "Copy an image from one location to another", cmd_copy);

/* ---- inspect ---- */

static const char inspect_usage[] =
    "Usage: berth inspect [OPTIONS] IMAGE-NAME\n\n"
    "Print information about an image (skopeo inspect).\n\n"
    "Options:\n"
    "      --raw          print the raw manifest (or with --config the raw config)\n"
    "      --config       print the image config\n"
    "  -f, --format T     print a Go template over the output (.Name .Digest .RepoTags .Created\n"
    "                     .Labels .Architecture .Os .Layers .Env ...)\n"
    "  -n, --no-tags      do not list the repository's tags\n"
    "      --override-os/--override-arch/--override-variant   platform to pick from a list\n"
    "      --creds USER[:PASS]  --tls-verify BOOL  --cert-dir DIR  --authfile FILE\n"
    "      --retry-times N      retries of a failed registry request (0..100)\n"
    "      --retry-delay DURATION  delay between retries (e.g. 500ms, 2s; default: exponential\n"
    "                           backoff)\n";

static int read_blob_all(struct image_source *src, const struct blob_info *bi, size_t max,
                         char **out, size_t *len, berth_error_t *err)
{
    berth_reader_t *r = NULL;
    int64_t size;
    if (src->ops->get_blob(src, bi, &r, &size, err) < 0)
        return -1;
    berth_reader_t *v = reader_verify(r, true, bi->digest, bi->size);
    int ret = reader_read_all(v, max, out, len, err);
    reader_close(v);
    return ret;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_string(""));
}

/* What skopeo's inspect --format sees: its output struct (Name and Tag always there, Created as
 * Go prints a time, Labels a map even when null). */
static json_t *inspect_template_view(const json_t *out)
{
    json_t *v = tmpl_struct_new("interface {}");
    const char *name = json_get_string(out, "Name");
    json_object_set_new(v, "Name", json_string(name ? name : ""));
    json_object_set_new(v, "Tag", json_string(""));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)out, key, val)
    {
        if (strcmp(key, "Name") == 0)
            continue;
        char when[80];
        if (strcmp(key, "Created") == 0 && json_is_string(val) &&
            tmpl_go_time(json_string_value(val), when, sizeof(when)) == 0)
            json_object_set_new(v, key, json_string(when));
        else if (strcmp(key, "Labels") == 0 && !json_is_object(val))
            json_object_set_new(v, key, tmpl_nil_map());
        else
            json_object_set(v, key, val);
    }
    return v;
}

static int cmd_inspect(struct berth_globals *g, int argc, char **argv)
{
    static const struct option fixed_opts[] = {
        {"raw", no_argument, NULL, 'r'},
        {"config", no_argument, NULL, 'c'},
        {"no-tags", no_argument, NULL, 'n'},
        {"override-os", required_argument, NULL, OPT_OS},
        {"override-arch", required_argument, NULL, OPT_ARCH},
        {"override-variant", required_argument, NULL, OPT_VARIANT},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
    };
    enum { NFIXED = sizeof(fixed_opts) / sizeof(fixed_opts[0]) };
    struct option opts[NFIXED + RF_COUNT + 1];
    char rf_names[RF_COUNT][48];
    memcpy(opts, fixed_opts, sizeof(fixed_opts));
    registry_flags_options(&opts[NFIXED], rf_names, "", OPT_RF);
    memset(&opts[NFIXED + RF_COUNT], 0, sizeof(opts[0]));
    struct system_context sys;
    cli_system_context_init(g, &sys);
    bool raw = false, config = false, no_tags = false;
    const char *format = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "nf:h", opts, false)) != -1) {
        int r = registry_flags_apply(c, OPT_RF, "", optarg, &sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case 'r':
            raw = true;
            break;
        case 'c':
            config = true;
            break;
        case 'n':
            no_tags = true;
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
        case 'f':
            format = tmpl_format_is_json(optarg) ? NULL : optarg;
            break;
        case 'h':
            return cli_usage(inspect_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 1)
        return cli_nargs_error(argv[0], "exactly one argument (IMAGE-NAME)");
    if (raw && format)
        return cli_failf("raw output does not support format option");
    cleanup_error berth_error_t err = NULL;
    cleanup_image_reference struct image_reference *ref = NULL;
    if (cli_parse_image_ref(argv[optind], "docker", &ref, &err) < 0)
        return cli_fail(&err);
    struct cli_store_holder h = {0};
    if (cli_store_for_refs(g, &h, ref, NULL, &sys, NULL, &err) < 0)
        return cli_fail(&err);
    /* declared before src: freed after it (the session owns the source's client), shared
     * with the tag listing below (one ping) */
    cleanup_registry_session registry_session_t *session = registry_session_new();
    sys.registry_session = session;
    struct image_source *src = NULL;
    int ret = BERTH_EXIT_ERROR;
    cleanup_free char *mbuf = NULL, *mime = NULL, *cfg = NULL, *name = NULL;
    cleanup_free char *ibuf = NULL, *imime = NULL, *digest = NULL;
    size_t mlen, clen = 0, ilen;
    struct mf_image m = {0};
    cleanup_json json_t *cj = NULL;
    cleanup_json json_t *out = NULL;
    if (ref->ops->new_source(ref, &sys, &src, &err) < 0)
        goto fail;
    if (src->ops->get_manifest(src, NULL, &mbuf, &mlen, &mime, &err) < 0)
        goto fail;
    if (raw && !config) {
        fwrite(mbuf, 1, mlen, stdout);
        ret = 0;
        goto done;
    }
    const char *mt = mf_detect(mbuf, mlen, mime);
    digest = digest_buffer(DIGEST_SHA256, mbuf, mlen);
    const char *body = mbuf;
    size_t body_len = mlen;
    if (mf_is_index(mt)) {
        struct mf_index ix;
        if (mf_index_parse(mbuf, mlen, mt, &ix, &err) < 0)
            goto fail;
        size_t i;
        if (mf_index_choose(&ix, sys.os_override, sys.arch_override, sys.variant_override, &i,
                            &err) < 0) {
            mf_index_clear(&ix);
            goto fail;
        }
        cleanup_free char *inst = xstrdup(ix.inst[i].desc.digest);
        mf_index_clear(&ix);
        if (src->ops->get_manifest(src, inst, &ibuf, &ilen, &imime, &err) < 0)
            goto fail;
        body = ibuf;
        body_len = ilen;
        mt = mf_detect(ibuf, ilen, imime);
    }
    if (mf_image_parse(body, body_len, mt, &m, &err) < 0)
        goto fail;
    if (read_blob_all(src, &m.config, MF_MAX_CONFIG, &cfg, &clen, &err) < 0)
        goto fail;
    if (config && raw) {
        fwrite(cfg, 1, clen, stdout);
        ret = 0;
        goto done;
    }
    if (json_parse_bounded(cfg, clen, MF_MAX_CONFIG, "config", &cj, &err) < 0)
        goto fail;
    if (config && format) {
        cleanup_json json_t *items = json_pack("[O]", cj);
        ret = cli_print_template(format, items, NULL, false);
        goto done;
    }
    if (config) {
        char *s = json_dumps(cj, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        ret = 0;
        goto done;
    }
    out = json_object();
    name = ref->docker_name ? xstrdup(ref->docker_name) : NULL;
    if (name) {
        char *at = strrchr(name, '@');
        if (at)
            *at = 0;
        char *colon = strrchr(name, ':');
        if (colon && !strchr(colon, '/'))
            *colon = 0;
    }
    if (name)
        json_object_set_new(out, "Name", json_string(name));
    json_object_set_new(out, "Digest", json_string(digest));
    json_t *tags = json_array();
    if (!no_tags && strcmp(ref->transport->name, "docker") == 0) {
        /* skopeo lists the repository's tags for registry images */
        registry_client_t *rc = NULL; /* owned by the session */
        cleanup_free char *repo = NULL;
        cleanup_strv char **tv = NULL;
        size_t nt = 0;
        if (docker_open_client(ref, &sys, &rc, &repo, &err) < 0 ||
            registry_list_tags(rc, repo, 0, &tv, &nt, &err) < 0)
            goto fail;
        for (size_t i = 0; i < nt; i++)
            json_array_append_new(tags, json_string(tv[i]));
    }
    json_object_set_new(out, "RepoTags", tags);
    const char *created = json_get_string(cj, "created");
    if (created)
        json_object_set_new(out, "Created", json_string(created));
    set_str(out, "DockerVersion", json_get_string(cj, "docker_version"));
    json_t *ccfg = json_get_object(cj, "config");
    json_t *labels = json_get_object(ccfg, "Labels");
    json_object_set(out, "Labels", labels ? labels : json_null());
    set_str(out, "Architecture", json_get_string(cj, "architecture"));
    if (json_get_string(cj, "variant"))
        set_str(out, "Variant", json_get_string(cj, "variant"));
    set_str(out, "Os", json_get_string(cj, "os"));
    json_t *layers = json_array(), *ld = json_array();
    for (size_t i = 0; i < m.n_layers; i++) {
        json_array_append_new(layers, json_string(m.layers[i].digest));
        json_t *d = json_object();
        set_str(d, "MIMEType", m.layers[i].media_type);
        json_object_set_new(d, "Digest", json_string(m.layers[i].digest));
        json_object_set_new(d, "Size", json_integer(m.layers[i].size));
        json_object_set_new(d, "Annotations", json_null());
        json_array_append_new(ld, d);
    }
    json_object_set_new(out, "Layers", layers);
    json_object_set_new(out, "LayersData", ld);
    json_t *env = json_get_array(ccfg, "Env");
    json_object_set(out, "Env", env ? env : json_null());
    if (format) {
        cleanup_json json_t *items = json_pack("[o]", inspect_template_view(out));
        ret = cli_print_template(format, items, NULL, false);
        goto done;
    }
    char *s = json_dumps(out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
    ret = 0;
    goto done;
fail:
    ret = cli_fail(&err);
done:
    mf_image_clear(&m);
    image_source_close(src);
    cli_store_release(&h);
    return ret;
}

BERTH_COMMAND(inspect, "inspect", "Inspect an image in any transport (skopeo inspect)",
              cmd_inspect);

/* ---- manifest-digest ---- */

static int cmd_manifest_digest(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        if (c == 'h')
            return cli_usage("Usage: berth manifest-digest MANIFEST-FILE\n\n"
                             "Print the digest of a manifest file.\n");
        return cli_bad_option(argv[0], argc, argv);
    }
    if (argc - optind != 1)
        return cli_nargs_error(argv[0], "exactly one argument (MANIFEST-FILE)");
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *buf = NULL;
    size_t len;
    if (fs_read_file(argv[optind], MF_MAX_MANIFEST, &buf, &len, &err) < 0)
        return cli_fail(&err);
    cleanup_free char *d = digest_buffer(DIGEST_SHA256, buf, len);
    printf("%s\n", d);
    return 0;
}

BERTH_COMMAND(manifest_digest, "manifest-digest", "Compute a manifest file's digest",
              cmd_manifest_digest);
