/* berth list-tags docker://REPO, berth delete docker://REF. */
#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "transport/registry_session.h"
#include "transport/docker.h"
#include "transport/registry_client.h"
#include "transport/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char list_tags_usage[] =
    "Usage: berth list-tags [options] docker://REPOSITORY\n\n"
    "List the tags of a repository in a registry (JSON, like skopeo list-tags).\n\n"
    "Options:\n"
    "      --tls-verify[=BOOL]  verify TLS (default true)\n"
    "      --cert-dir DIR       CA and client certificates for the registry\n"
    "      --creds USER[:PASS]  credentials\n"
    "      --authfile FILE      auth file\n"
    "      --retry-times N      retries for transient failures (default 3)\n"
    "      --retry-delay DUR    fixed delay between retries (default: exponential backoff)\n"
    "      --page-size N        ask the registry for N tags per page\n";

static const char delete_usage[] =
    "Usage: berth delete [options] docker://IMAGE[:TAG|@DIGEST]\n\n"
    "Delete an image's manifest from a registry (every tag pointing to it goes away).\n\n"
    "Options:\n"
    "      --tls-verify[=BOOL]  verify TLS (default true)\n"
    "      --cert-dir DIR       CA and client certificates for the registry\n"
    "      --creds USER[:PASS]  credentials\n"
    "      --authfile FILE      auth file\n"
    "      --retry-times N      retries for transient failures (default 3)\n"
    "      --retry-delay DUR    fixed delay between retries\n";

static int parse_docker_arg(const char *arg, struct image_reference **ref, berth_error_t *err)
{
    if (strncmp(arg, "docker://", 9) != 0)
        return berth_error_make_status(err, EINVAL,
                                       "\"%s\": only docker:// references are supported here", arg);
    return transport_parse_reference(arg, ref, err);
}

static int cmd_list_tags(struct berth_globals *g, int argc, char **argv)
{
    enum { O_PAGE = 1000, O_RF = 1100 };
    struct option opts[12] = {
        {"page-size", required_argument, NULL, O_PAGE},
        {"help", no_argument, NULL, 'h'},
    };
    char names[RF_COUNT][48];
    registry_flags_options(&opts[2], names, "", O_RF);
    struct system_context sys;
    registry_flags_sys_init(&sys);
    sys.registries_conf = g->registries_conf;
    int page = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        int r = registry_flags_apply(c, O_RF, "", optarg, &sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        switch (c) {
        case O_PAGE: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 100000)
                return cli_failf("invalid --page-size \"%s\"", optarg);
            page = (int)v;
            break;
        }
        case 'h':
            return cli_usage(list_tags_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one argument (docker://REPOSITORY)");
    berth_error_t err = NULL;
    cleanup_image_reference struct image_reference *ref = NULL;
    if (parse_docker_arg(argv[optind], &ref, &err) < 0)
        return cli_fail(&err);
    const image_ref_t *ir = docker_reference_ref(ref);
    /* a tag in the argument is an error unless it is the implicit "latest" */
    const char *arg = argv[optind] + 9;
    const char *last_slash = strrchr(arg, '/');
    if (ir->digest || strchr(last_slash ? last_slash : arg, ':'))
        return cli_failf("\"%s\": list-tags takes a repository without tag or digest",
                         argv[optind]);
    cleanup_registry_session registry_session_t *session = registry_session_new();
    sys.registry_session = session;
    registry_client_t *client; /* owned by the session */
    cleanup_free char *repo = NULL;
    if (docker_open_client(ref, &sys, &client, &repo, &err) < 0)
        return cli_fail(&err);
    char **tags = NULL;
    size_t n = 0;
    if (registry_list_tags(client, repo, page, &tags, &n, &err) < 0)
        return cli_fail(&err);
    cleanup_json json_t *out = json_object();
    cleanup_free char *name = image_ref_name(ir);
    json_object_set_new(out, "Repository", json_string(name));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(tags[i]));
        free(tags[i]);
    }
    free(tags);
    json_object_set_new(out, "Tags", arr);
    char *s = json_dumps(out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
    return 0;
}

static int cmd_delete(struct berth_globals *g, int argc, char **argv)
{
    enum { O_RF = 1100 };
    struct option opts[10] = {
        {"help", no_argument, NULL, 'h'},
    };
    char names[RF_COUNT][48];
    registry_flags_options(&opts[1], names, "", O_RF);
    struct system_context sys;
    registry_flags_sys_init(&sys);
    sys.registries_conf = g->registries_conf;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        int r = registry_flags_apply(c, O_RF, "", optarg, &sys);
        if (r < 0)
            return BERTH_EXIT_ERROR;
        if (r > 0)
            continue;
        if (c == 'h')
            return cli_usage(delete_usage);
        return cli_bad_option(argv[0], argc, argv);
    }
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one argument (docker://IMAGE)");
    berth_error_t err = NULL;
    cleanup_image_reference struct image_reference *ref = NULL;
    if (parse_docker_arg(argv[optind], &ref, &err) < 0)
        return cli_fail(&err);
    if (!ref->ops->delete_image)
        return cli_failf("deleting is not supported for %s", argv[optind]);
    if (ref->ops->delete_image(ref, &sys, &err) < 0)
        return cli_fail(&err);
    return 0;
}

BERTH_COMMAND(list_tags, "list-tags", "List the tags of a repository in a registry", cmd_list_tags);
BERTH_COMMAND(delete_image, "delete", "Delete an image from a registry", cmd_delete);
