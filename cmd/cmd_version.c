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
#include <sys/utsname.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/template.h"

static const char usage[] = "Usage: berth version [--format json|TEMPLATE]\n\n"
                            "Print berth's version and the versions of its libraries.\n";

struct lib {
    const char *name, *version;
};

static json_t *libs_json(const struct lib *libs, size_t n)
{
    json_t *l = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(l, libs[i].name, json_string(libs[i].version));
    return l;
}

/* podman version --format: the template over {Client, Server} (Server is nil without a remote
 * service), or over Client alone when that fails (podman's fallback for "{{.Version}}").
 * Client has podman's fields; Libraries is berth's own. */
static int version_template(const char *format, json_t *libs /* takes */)
{
    struct utsname u;
    const char *arch = uname(&u) == 0 ? u.machine : "";
    const char *goarch = strcmp(arch, "x86_64") == 0    ? "amd64"
                         : strcmp(arch, "aarch64") == 0 ? "arm64"
                                                        : arch;
    char osarch[80], built[64];
    snprintf(osarch, sizeof(osarch), "linux/%s", goarch);
    time_t zero = 0;
    struct tm tm;
    if (!localtime_r(&zero, &tm) ||
        strftime(built, sizeof(built), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        built[0] = '\0';
    json_t *client = tmpl_struct_new("define.Version");
    json_object_set_new(client, "APIVersion", json_string(BERTH_VERSION));
    json_object_set_new(client, "Version", json_string(BERTH_VERSION));
    json_object_set_new(client, "GoVersion", json_string(""));
    json_object_set_new(client, "GitCommit", json_string(""));
    json_object_set_new(client, "BuiltTime", json_string(built));
    json_object_set_new(client, "Built", json_integer(0));
    json_object_set_new(client, "OsArch", json_string(osarch));
    json_object_set_new(client, "Os", json_string("linux"));
    json_object_set_new(client, "Libraries", libs);
    json_t *v = tmpl_struct_new("entities.SystemVersionReport");
    json_object_set_new(v, "Client", client);
    json_object_set_new(v, "Server", json_null());
    cleanup_json json_t *items = json_pack("[o]", v);
    cleanup_json json_t *citems = json_pack("[O]", client);
    cleanup_error berth_error_t err = NULL, err2 = NULL;
    cleanup_free char *out = NULL;
    if (cli_render_template(format, items, NULL, true, &out, &err) < 0 &&
        cli_render_template(format, citems, NULL, true, &out, &err2) < 0)
        return cli_fail(&err);
    fputs(out, stdout);
    return 0;
}

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
    const struct lib libs[] = {
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
    if (format && !tmpl_format_is_json(format))
        return version_template(format, libs_json(libs, n));
    if (format && tmpl_format_is_json(format)) {
        json_t *o = json_object();
        json_object_set_new(o, "version", json_string(BERTH_VERSION));
        json_object_set_new(o, "libraries", libs_json(libs, n));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
        json_decref(o);
        return 0;
    }
    printf("berth version %s\n", BERTH_VERSION);
    for (size_t i = 0; i < n; i++)
        printf("  %-11s %s\n", libs[i].name, libs[i].version);
    return 0;
}

BERTH_COMMAND(version, "version", "Print the version of berth and its libraries", cmd_version);
