/* berth version: berth's own version and those of the libraries it is linked with. */
#include "cmd/cli.h"

#include <archive.h>
#include <curl/curl.h>
#include <gpgme.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <ostree.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static const char usage[] = "Usage: berth version [--format json]\n\n"
                            "Print berth's version and the versions of its libraries.\n";

static int cmd_version(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *format = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "f:h", opts, false)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'h':
            return cli_usage(usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    const struct scmp_version *sv = seccomp_version();
    char seccomp_v[64];
    snprintf(seccomp_v, sizeof(seccomp_v), "%u.%u.%u", sv->major, sv->minor, sv->micro);
    const char *gpgme_v = gpgme_check_version(NULL);
    char ostree_v[32];
    snprintf(ostree_v, sizeof(ostree_v), "%d.%d", OSTREE_YEAR_VERSION, OSTREE_RELEASE_VERSION);
    const struct {
        const char *name, *version;
    } libs[] = {
        {"libarchive", archive_version_details()},
        {"libcurl", curl_version()},
        {"openssl", OpenSSL_version(OPENSSL_VERSION)},
        {"zstd", ZSTD_versionString()},
        {"zlib", zlibVersion()},
        {"jansson", jansson_version_str()},
        {"gpgme", gpgme_v},
        {"ostree", ostree_v},
        {"libseccomp", seccomp_v},
    };
    size_t n = sizeof(libs) / sizeof(libs[0]);
    if (format && strcmp(format, "json") == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "version", json_string(BERTH_VERSION));
        json_t *l = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(l, libs[i].name, json_string(libs[i].version));
        json_object_set_new(o, "libraries", l);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
        json_decref(o);
        return 0;
    } else if (format) {
        return cli_failf("unknown --format \"%s\": use json", format);
    }
    printf("berth version %s\n", BERTH_VERSION);
    for (size_t i = 0; i < n; i++)
        printf("  %-11s %s\n", libs[i].name, libs[i].version);
    return 0;
}

BERTH_COMMAND(version, "version", "Print the version of berth and its libraries", cmd_version);
