/* Local image store commands: images, rmi, tag, import, image prune, system df, system check,
 * mount, umount. */
#include "cmd/cli.h"
#include "cmd/decompress_reader.h"
#include "cmd/store_open.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "common/reference.h"
#include "common/stream.h"
#include "common/strutil.h"
#include "common/template.h"
#include "run/container.h"
#include "run/net/net.h"
#include "storage/store.h"
#include "storage/userns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Local names: a short name gets "localhost/", a missing tag ":latest" (podman's rules for
 * tag/import/commit). */
static int local_name(const char *s, char **out, berth_error_t *err)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(s, &r, err) < 0)
        return -1;
    if (!r->domain)
        r->domain = xstrdup("localhost");
    if (!r->tag && !r->digest && image_ref_set_tag(r, "latest", err) < 0)
        return -1;
    *out = image_ref_string(r);
    return 0;
}

static int64_t image_size(storage_store_t *s, const char *id)
{
    char **layers = NULL;
    berth_error_t err = NULL;
    if (storage_image_layers(s, id, &layers, &err) < 0) {
        berth_error_release(&err);
        return 0;
    }
    int64_t total = 0;
    for (char **l = layers; *l; l++) {
        storage_layer_t *ly = NULL;
        if (storage_layer_get(s, *l, &ly, &err) == 0 && ly->diff_size > 0)
            total += ly->diff_size;
        berth_error_release(&err);
        storage_layer_free(ly);
    }
    for (char **l = layers; *l; l++)
        free(*l);
    free(layers);
    return total;
}

static void human_size(int64_t n, char *buf, size_t len)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        i++;
    }
    snprintf(buf, len, i == 0 ? "%.0f %s" : "%.3g %s", v, u[i]);
}

/* "N units ago" with podman's (go-units HumanDuration) wording and thresholds. */
static void human_ago(int64_t t, char *buf, size_t len)
{
    int64_t d = (int64_t)time(NULL) - t;
    if (d < 0)
        d = 0;
    int64_t h = (d + 1800) / 3600; /* rounded hours */
    if (d < 1)
        snprintf(buf, len, "Less than a second ago");
    else if (d == 1)
        snprintf(buf, len, "1 second ago");
    else if (d < 60)
        snprintf(buf, len, "%lld seconds ago", (long long)d);
    else if (d / 60 == 1)
        snprintf(buf, len, "About a minute ago");
    else if (d < 3600)
        snprintf(buf, len, "%lld minutes ago", (long long)(d / 60));
    else if (h == 1)
        snprintf(buf, len, "About an hour ago");
    else if (h < 48)
        snprintf(buf, len, "%lld hours ago", (long long)h);
    else if (h < 24 * 7 * 2)
        snprintf(buf, len, "%lld days ago", (long long)(h / 24));
    else if (h < 24 * 30 * 2)
        snprintf(buf, len, "%lld weeks ago", (long long)(h / 24 / 7));
    else if (h < 24 * 365 * 2)
        snprintf(buf, len, "%lld months ago", (long long)(h / 24 / 30));
    else
        snprintf(buf, len, "%lld years ago", (long long)(d / (365 * 86400)));
}

static void format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

/* The image's own creation time: its config's "created" (what podman shows), else the time the
 * image was stored (as containers/storage records it for a config without one). */
static int64_t image_created(storage_store_t *s, const storage_image_t *img)
{
    cleanup_free char *buf = NULL;
    size_t len = 0;
    berth_error_t err = NULL;
    if (storage_image_get_big_data(s, img->id, "config", IMAGE_CONFIG_MAX_SIZE, &buf, &len, &err) <
        0) {
        berth_error_release(&err);
        return img->created;
    }
    json_t *j = NULL;
    if (json_parse_bounded(buf, len, IMAGE_CONFIG_MAX_SIZE, "image config", &j, &err) < 0)
        berth_error_release(&err);
    int64_t t = img->created;
    int64_t parsed;
    if (image_time_parse(json_string_value(json_object_get(j, "created")), &parsed) == 0)
        t = parsed;
    json_decref(j);
    return t;
}

/* ------------------------------------------------------------------ images */

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Sorts an array of strings in place. */
static void json_array_sort_strings(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_json_str);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}

/* An image's size as podman counts it: its layers plus its big data, where podman keeps the
 * manifest twice (also under "manifest-DIGEST"). */
static int64_t image_podman_size(storage_store_t *s, const storage_image_t *img)
{
    int64_t size = image_size(s, img->id);
    for (char **k = img->big_data; k && *k; k++) {
        cleanup_free char *bd = NULL;
        size_t bl = 0;
        berth_error_t err = NULL;
        if (storage_image_get_big_data(s, img->id, *k, IMAGE_CONFIG_MAX_SIZE, &bd, &bl, &err) == 0)
            size += (int64_t)bl * (strcmp(*k, "manifest") == 0 ? 2 : 1);
        berth_error_release(&err);
    }
    return size;
}

/* The rows podman's images --format TEMPLATE sees (its imageReporter: one per name), with its
 * field names; headers as podman derives them. */
static json_t *images_template_rows(storage_store_t *s, storage_image_t **imgs)
{
    storage_container_t **ctrs = NULL;
    berth_error_t err = NULL;
    if (storage_container_list(s, &ctrs, &err) < 0)
        berth_error_release(&err);
    json_t *rows = json_array();
    for (size_t i = 0; imgs[i]; i++) {
        storage_image_t *img = imgs[i];
        int64_t created = image_created(s, img), size = image_podman_size(s, img);
        char ago[64], when[64], human[32];
        human_ago(created, ago, sizeof(ago));
        cli_go_time(created, when, sizeof(when));
        human_size(size, human, sizeof(human));
        json_int_t nctr = 0;
        for (size_t k = 0; ctrs && ctrs[k]; k++)
            if (ctrs[k]->image_id && strcmp(ctrs[k]->image_id, img->id) == 0)
                nctr++;
        json_t *labels = NULL;
        cleanup_free char *cbuf = NULL;
        size_t clen = 0;
        cleanup_json json_t *cfg = NULL;
        if (storage_image_get_big_data(s, img->id, "config", IMAGE_CONFIG_MAX_SIZE, &cbuf, &clen,
                                       &err) == 0 &&
            json_parse_bounded(cbuf, clen, IMAGE_CONFIG_MAX_SIZE, "config", &cfg, &err) == 0) {
            json_t *l = json_get_object(json_get_object(cfg, "config"), "Labels");
            if (l)
                labels = json_deep_copy(l);
        }
        berth_error_release(&err);
        json_t *digests = json_array(), *history = json_array();
        size_t nnames = strv_len(img->names);
        for (size_t k = 0; k < nnames; k++) {
            cleanup_image_ref image_ref_t *r = NULL;
            if (img->digest && image_ref_parse(img->names[k], &r, &err) == 0) {
                cleanup_free char *full = image_ref_string(r);
                char *cut = strrchr(full, '@');
                if (!cut && (cut = strrchr(full, ':')) && strchr(cut, '/'))
                    cut = NULL;
                if (cut)
                    *cut = '\0';
                cleanup_free char *d = xasprintf("%s@%s", full, img->digest);
                bool dup = false;
                for (size_t m = 0; m < json_array_size(digests); m++)
                    dup |= strcmp(json_string_value(json_array_get(digests, m)), d) == 0;
                if (!dup)
                    json_array_append_new(digests, json_string(d));
            }
            berth_error_release(&err);
            /* the names history, newest first */
            json_array_append_new(history, json_string(img->names[nnames - 1 - k]));
        }
        json_array_sort_strings(digests);
        cleanup_free char *hist = NULL;
        {
            struct strbuf hb = STRBUF_INIT;
            for (size_t k = 0; k < json_array_size(history); k++)
                strbuf_appendf(&hb, "%s%s", k ? ", " : "",
                               json_string_value(json_array_get(history, k)));
            hist = strbuf_steal(&hb);
        }
        for (size_t k = 0; k < (nnames ? nnames : 1); k++) {
            json_t *o = tmpl_struct_new("images.imageReporter");
            cleanup_free char *repo = xstrdup(nnames ? img->names[k] : "<none>");
            const char *tag = "<none>";
            char *at = strchr(repo, '@');
            if (at)
                *at = '\0';
            char *colon = strrchr(repo, ':');
            if (colon && !strchr(colon, '/')) {
                *colon = '\0';
                tag = colon + 1;
            }
            char shortid[13];
            snprintf(shortid, sizeof(shortid), "%.12s", img->id);
            json_object_set_new(o, "Repository", json_string(repo));
            json_object_set_new(o, "Tag", json_string(tag));
            json_object_set_new(o, "ID", json_string(shortid));
            json_object_set_new(o, "Id", json_string(img->id));
            json_object_set_new(o, "ParentId", json_string(""));
            json_object_set_new(o, "RepoTags", json_from_strv(img->names));
            json_object_set(o, "RepoDigests", digests);
            json_object_set_new(o, "Size", json_string(human));
            json_object_set_new(o, "SharedSize", json_integer(0));
            json_object_set_new(o, "VirtualSize", json_integer(size));
            json_object_set_new(o, "Labels", labels ? json_deep_copy(labels) : tmpl_nil_map());
            json_object_set_new(o, "Containers", json_integer(nctr));
            json_object_set_new(o, "ReadOnly", json_false());
            json_object_set_new(o, "Dangling", json_boolean(nnames == 0));
            json_object_set_new(o, "Names", json_from_strv(img->names));
            json_object_set_new(o, "Digest", json_string(img->digest ? img->digest : ""));
            json_object_set_new(o, "History", json_string(hist));
            json_object_set_new(o, "Created", json_string(ago));
            json_object_set_new(o, "CreatedAt", json_string(when));
            json_object_set_new(o, "CreatedSince", json_string(ago));
            json_object_set_new(o, "CreatedTime", json_string(when));
            json_object_set_new(o, "IsReadOnly", json_false());
            json_array_append_new(rows, o);
        }
        json_decref(digests);
        json_decref(history);
        json_decref(labels);
    }
    storage_container_list_free(ctrs);
    return rows;
}

static json_t *images_template_headers(void)
{
    static const char *const h[][2] = {
        {"ID", "IMAGE ID"},
        {"Repository", "REPOSITORY"},
        {"Tag", "TAG"},
        {"Digest", "DIGEST"},
        {"Created", "CREATED"},
        {"Size", "SIZE"},
        {"ReadOnly", "R/O"},
        {"VirtualSize", "VIRTUAL SIZE"},
        {"SharedSize", "SHARED SIZE"},
        {"Containers", "CONTAINERS"},
        {"Dangling", "DANGLING"},
        {"Names", "NAMES"},
        {"Labels", "LABELS"},
        {"History", "HISTORY"},
        {"ParentId", "PARENT ID"},
        {"RepoTags", "REPO TAGS"},
        {"RepoDigests", "REPO DIGESTS"},
    };
    return cli_template_headers(h, sizeof(h) / sizeof(h[0]));
}

static const char images_usage[] = "Usage: berth images [--format json|TEMPLATE] [-q] [-n]\n\n"
                                   "List images in local storage.\n"
                                   "  --format json   print a JSON array\n"
                                   "  --format T      a Go template per image name (.Repository,\n"
                                   "                  .Tag, .ID, .Digest, .Size ...); \"table T\"\n"
                                   "                  aligns columns under a header\n"
                                   "  -q, --quiet     print image IDs only\n"
                                   "  -n, --noheading omit the table header\n";

static int cmd_images(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"noheading", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *format = NULL;
    bool quiet = false, noheading = false;
    int c;
    while ((c = cli_getopt(argc, argv, "f:qnh", opts, false)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'n':
            noheading = true;
            break;
        case 'h':
            return cli_usage(images_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    storage_image_t **imgs = NULL;
    if (storage_image_list(s, &imgs, &err) < 0)
        return cli_fail(&err);
    if (format && !tmpl_format_is_json(format) && strcmp(format, "table") != 0 && !quiet) {
        /* a Go template, as podman runs it ("table" alone keeps berth's default table) */
        cleanup_json json_t *rows = images_template_rows(s, imgs);
        cleanup_json json_t *hdrs = images_template_headers();
        storage_image_list_free(imgs);
        return cli_print_template(format, rows, hdrs, noheading);
    }
    if (format && tmpl_format_is_json(format)) {
        json_t *arr = json_array();
        for (size_t i = 0; imgs[i]; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "Id", json_string(imgs[i]->id));
            json_object_set_new(o, "Names", json_from_strv(imgs[i]->names));
            json_object_set_new(o, "Digest", json_string(imgs[i]->digest ? imgs[i]->digest : ""));
            /* podman's fields for the image's creation, and when this store got it */
            char when[64];
            int64_t created = image_created(s, imgs[i]);
            json_object_set_new(o, "Created", json_integer(created));
            format_time(created, when, sizeof(when));
            json_object_set_new(o, "CreatedAt", json_string(when));
            json_object_set_new(o, "Stored", json_integer(imgs[i]->created));
            format_time(imgs[i]->created, when, sizeof(when));
            json_object_set_new(o, "StoredAt", json_string(when));
            json_object_set_new(o, "Size", json_integer(image_size(s, imgs[i]->id)));
            json_object_set_new(o, "TopLayer",
                                imgs[i]->top_layer ? json_string(imgs[i]->top_layer) : json_null());
            json_array_append_new(arr, o);
        }
        char *out = json_dump_pretty(arr);
        puts(out);
        free(out);
        json_decref(arr);
    } else {
        if (!quiet && !noheading)
            printf("%-40s %-12s %-14s %-16s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED",
                   "SIZE");
        for (size_t i = 0; imgs[i]; i++) {
            if (quiet) {
                printf("%.12s\n", imgs[i]->id);
                continue;
            }
            char sz[32], ago[32];
            human_size(image_size(s, imgs[i]->id), sz, sizeof(sz));
            human_ago(image_created(s, imgs[i]), ago, sizeof(ago));
            size_t n = 0;
            for (char **nm = imgs[i]->names; nm && *nm; nm++, n++) {
                cleanup_free char *repo = xstrdup(*nm);
                char *tag = "<none>";
                char *at = strchr(repo, '@');
                if (at)
                    *at = '\0';
                char *colon = strrchr(repo, ':');
                if (colon && !strchr(colon, '/')) {
                    *colon = '\0';
                    tag = colon + 1;
                }
                printf("%-40s %-12s %-14.12s %-16s %s\n", repo, tag, imgs[i]->id, ago, sz);
            }
            if (n == 0)
                printf("%-40s %-12s %-14.12s %-16s %s\n", "<none>", "<none>", imgs[i]->id, ago, sz);
        }
    }
    storage_image_list_free(imgs);
    return 0;
}

BERTH_COMMAND(images, "images", "List images in local storage", cmd_images);

/* ------------------------------------------------------------------ tag */

static const char tag_usage[] = "Usage: berth tag IMAGE NAME [NAME...]\n\n"
                                "Add names to a local image.\n";

static int cmd_tag(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        if (c == 'h')
            return cli_usage(tag_usage);
        return cli_bad_option(argv[0], argc, argv);
    }
    if (argc - optind < 2)
        return cli_nargs_error(argv[0], "an image and at least one name");
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (storage_image_lookup(s, argv[optind], &img, &err) < 0)
        return cli_fail(&err);
    for (int i = optind + 1; i < argc; i++) {
        cleanup_free char *name = NULL;
        if (local_name(argv[i], &name, &err) < 0 ||
            storage_image_add_name(s, img->id, name, &err) < 0)
            return cli_fail(&err);
    }
    return 0;
}

BERTH_COMMAND(tag, "tag", "Add names to a local image", cmd_tag);

/* ------------------------------------------------------------------ rmi */

static const char rmi_usage[] =
    "Usage: berth rmi [-f] IMAGE [IMAGE...]\n\n"
    "Remove local images.  Given a name of an image that has several, only that name is\n"
    "removed.  -f also removes containers using the image and all of its names.\n";

/* rmi -f: stops and removes the containers using image `id` (their monitors and processes
 * included, through run/'s removal) before the image goes; without -f the store refuses to
 * remove an image a container uses (EBUSY, naming the container). */
static int remove_image(storage_store_t *s, const char *id, bool force, berth_error_t *err)
{
    if (force) {
        storage_container_t **ctrs = NULL;
        if (storage_container_list(s, &ctrs, err) < 0)
            return -1;
        int r = 0;
        for (size_t k = 0; ctrs[k] && r == 0; k++) {
            if (!ctrs[k]->image_id || strcmp(ctrs[k]->image_id, id) != 0)
                continue;
            if (container_remove(s, ctrs[k]->id, true, err) < 0)
                r = berth_error_wrap(err, "remove container %.12s using image %.12s", ctrs[k]->id,
                                     id);
        }
        storage_container_list_free(ctrs);
        if (r < 0)
            return -1;
    }
    if (storage_image_remove(s, id, force, err) < 0) {
        if (berth_error_status(*err) == EBUSY && !force)
            return berth_error_wrap(err, "image is in use (use -f to remove its containers too)");
        return -1;
    }
    return 0;
}

static int cmd_rmi(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool force = false, all = false;
    int c;
    while ((c = cli_getopt(argc, argv, "fah", opts, false)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'a':
            all = true;
            break;
        case 'h':
            return cli_usage(rmi_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind == argc && !all)
        return cli_nargs_error(argv[0], "at least one image");
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    int rc = 0;
    if (all) {
        storage_image_t **imgs = NULL;
        if (storage_image_list(s, &imgs, &err) < 0)
            return cli_fail(&err);
        for (size_t i = 0; imgs[i]; i++) {
            if (remove_image(s, imgs[i]->id, force, &err) < 0)
                rc = cli_fail(&err);
            else
                printf("%s\n", imgs[i]->id);
        }
        storage_image_list_free(imgs);
        return rc;
    }
    for (int i = optind; i < argc; i++) {
        cleanup_storage_image storage_image_t *img = NULL;
        if (storage_image_lookup(s, argv[i], &img, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        /* a name of a multi-name image: untag only */
        const char *matched = NULL;
        size_t nnames = 0;
        for (char **n = img->names; n && *n; n++, nnames++) {
            cleanup_free char *ln = NULL;
            berth_error_t e2 = NULL;
            if (strcmp(*n, argv[i]) == 0 ||
                (local_name(argv[i], &ln, &e2) == 0 && strcmp(*n, ln) == 0))
                matched = *n;
            berth_error_release(&e2);
        }
        if (!force && matched && nnames > 1) {
            if (storage_image_remove_name(s, img->id, matched, &err) < 0)
                rc = cli_fail(&err);
            else
                printf("Untagged: %s\n", matched);
            continue;
        }
        if (remove_image(s, img->id, force, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        for (char **n = img->names; n && *n; n++)
            printf("Untagged: %s\n", *n);
        printf("Deleted: %s\n", img->id);
    }
    return rc;
}

BERTH_COMMAND(rmi, "rmi", "Remove local images", cmd_rmi);

/* ------------------------------------------------------------------ import */

static const char import_usage[] =
    "Usage: berth import [-q] TARBALL|- [NAME]\n\n"
    "Create a one-layer image from a root filesystem tarball: plain or compressed with gzip,\n"
    "zstd, xz, bzip2 or lz4 (detected from its first bytes).\n"
    "The layer is stored uncompressed; the image's OCI manifest lists it with the media type\n"
    "application/vnd.oci.image.layer.v1.tar (compressed when pushed).\n";

static const char *oci_arch(void)
{
    struct utsname u;
    static char buf[65];
    if (uname(&u) < 0)
        return "amd64";
    if (strcmp(u.machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(u.machine, "aarch64") == 0)
        return "arm64";
    if (strncmp(u.machine, "armv7", 5) == 0)
        return "arm";
    snprintf(buf, sizeof(buf), "%s", u.machine);
    return buf;
}

static int cmd_import(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "qh", opts, false)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'h':
            return cli_usage(import_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 1 || argc - optind > 2)
        return cli_nargs_error(argv[0], "a tarball and an optional name");
    (void)quiet;
    berth_error_t err = NULL;
    cleanup_free char *name = NULL;
    if (argc - optind == 2 && local_name(argv[optind + 1], &name, &err) < 0)
        return cli_fail(&err);
    cleanup_reader berth_reader_t *in = NULL;
    if (cli_open_decompressed(argv[optind], &in, &err) < 0)
        return cli_fail(&err);
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_storage_layer storage_layer_t *layer = NULL;
    if (storage_layer_create_from_tar(s, NULL, in, &layer, &err) < 0) {
        berth_error_wrap(&err, "import \"%s\"", argv[optind]);
        return cli_fail(&err);
    }
    char created[32];
    time_t now = time(NULL);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cleanup_json json_t *cfg = json_object();
    json_object_set_new(cfg, "created", json_string(created));
    json_object_set_new(cfg, "architecture", json_string(oci_arch()));
    json_object_set_new(cfg, "os", json_string("linux"));
    json_object_set_new(cfg, "config", json_object());
    json_t *rootfs = json_object();
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_t *ids = json_array();
    json_array_append_new(ids, json_string(layer->diff_digest));
    json_object_set_new(rootfs, "diff_ids", ids);
    json_object_set_new(cfg, "rootfs", rootfs);
    json_t *hist = json_array();
    json_t *h = json_object();
    json_object_set_new(h, "created", json_string(created));
    json_object_set_new(h, "created_by", json_string("berth import"));
    json_array_append_new(hist, h);
    json_object_set_new(cfg, "history", hist);
    size_t cfg_len = 0;
    cleanup_free char *cfg_s = json_dump_canonical(cfg, &cfg_len);
    cleanup_free char *cfg_digest = digest_buffer(DIGEST_SHA256, cfg_s, cfg_len);

    cleanup_json json_t *man = json_object();
    json_object_set_new(man, "schemaVersion", json_integer(2));
    json_object_set_new(man, "mediaType",
                        json_string("application/vnd.oci.image.manifest.v1+json"));
    json_t *cd = json_object();
    json_object_set_new(cd, "mediaType", json_string("application/vnd.oci.image.config.v1+json"));
    json_object_set_new(cd, "digest", json_string(cfg_digest));
    json_object_set_new(cd, "size", json_integer((json_int_t)cfg_len));
    json_object_set_new(man, "config", cd);
    json_t *ls = json_array();
    json_t *ld = json_object();
    json_object_set_new(ld, "mediaType", json_string("application/vnd.oci.image.layer.v1.tar"));
    json_object_set_new(ld, "digest", json_string(layer->diff_digest));
    json_object_set_new(ld, "size", json_integer(layer->diff_size));
    json_array_append_new(ls, ld);
    json_object_set_new(man, "layers", ls);
    size_t man_len = 0;
    cleanup_free char *man_s = json_dump_canonical(man, &man_len);

    const char *names[] = {name, NULL};
    struct storage_image_options io = {
        .names = name ? names : NULL,
        .top_layer = layer->id,
        .manifest = man_s,
        .manifest_len = man_len,
        .config = cfg_s,
        .config_len = cfg_len,
    };
    cleanup_storage_image storage_image_t *img = NULL;
    if (storage_image_create(s, &io, &img, &err) < 0)
        return cli_fail(&err);
    printf("%s\n", img->id);
    return 0;
}

BERTH_COMMAND(import, "import", "Create an image from a root filesystem tarball", cmd_import);

/* ------------------------------------------------------------------ image prune */

static const char prune_usage[] =
    "Usage: berth image prune [-a] [-f]\n\n"
    "Remove dangling images (without names); with -a every image no container uses.\n";

/* Layers no image or container uses (a killed pull's, an image removal's leftovers): kept only
 * while another berth process that stages layers (a pull in progress) runs and they are younger
 * than this, since a pull commits its layers before the image that uses them. */
#define PRUNE_BUSY_MIN_AGE (10 * 60)

static int prune_layers(storage_store_t *s)
{
    berth_error_t err = NULL;
    char **removed = NULL;
    int r = storage_layer_prune(s, PRUNE_BUSY_MIN_AGE, &removed, &err);
    size_t n = 0;
    while (removed && removed[n])
        n++;
    if (n)
        fprintf(stderr, "removed %zu layer(s) no image or container uses\n", n);
    strv_free(removed);
    return r < 0 ? cli_fail(&err) : 0;
}

static int cmd_image_prune(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool all = false;
    int c;
    while ((c = cli_getopt(argc, argv, "afh", opts, false)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'f':
            break;
        case 'h':
            return cli_usage(prune_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    storage_image_t **imgs = NULL;
    storage_container_t **ctrs = NULL;
    if (storage_image_list(s, &imgs, &err) < 0 || storage_container_list(s, &ctrs, &err) < 0)
        return cli_fail(&err);
    int rc = 0; /* a failed removal is reported, the others still go, the exit code says so */
    for (size_t i = 0; imgs[i]; i++) {
        if (!all && imgs[i]->names && imgs[i]->names[0])
            continue;
        bool used = false;
        for (size_t k = 0; ctrs[k]; k++)
            if (ctrs[k]->image_id && strcmp(ctrs[k]->image_id, imgs[i]->id) == 0)
                used = true;
        if (used)
            continue;
        if (storage_image_remove(s, imgs[i]->id, false, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%s\n", imgs[i]->id);
    }
    storage_image_list_free(imgs);
    storage_container_list_free(ctrs);
    int pr = prune_layers(s);
    return rc ? rc : pr;
}

BERTH_COMMAND(image_prune, "image prune", "Remove unused images", cmd_image_prune);

/* ------------------------------------------------------------------ system df */

static const char df_usage[] = "Usage: berth system df [--format json|TEMPLATE]\n\n"
                               "Show disk usage of the store.\n"
                               "  --format T  a Go template per type (.Type .Total .Active .Size\n"
                               "              .Reclaimable .RawSize .RawReclaimable), as podman\n";

/* go-units' HumanSize: 4 significant digits, decimal units, no space ("2.141MB") */
static void go_human_size(int64_t n, char *buf, size_t len)
{
    static const char *const u[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1000 && i < 6) {
        v /= 1000;
        i++;
    }
    snprintf(buf, len, "%.4g%s", v, u[i]);
}

static json_t *df_row(const char *type, int64_t total, int64_t active, int64_t size,
                      int64_t reclaimable)
{
    json_t *o = tmpl_struct_new("system.dfSummary");
    char h[32], r[64];
    json_object_set_new(o, "Type", json_string(type));
    json_object_set_new(o, "Total", json_integer(total));
    json_object_set_new(o, "Active", json_integer(active));
    json_object_set_new(o, "RawSize", json_integer(size));
    json_object_set_new(o, "RawReclaimable", json_integer(reclaimable));
    go_human_size(size, h, sizeof(h));
    json_object_set_new(o, "Size", json_string(h));
    go_human_size(reclaimable, h, sizeof(h));
    snprintf(r, sizeof(r), "%s (%lld%%)", h,
             size > 0 ? (long long)(reclaimable * 100 / size) : 0LL);
    json_object_set_new(o, "Reclaimable", json_string(r));
    return o;
}

/* podman system df's summary: images counted per name (as podman lists them), active when a
 * container uses them; containers active when running; berth has no volumes. */
static int df_template(storage_store_t *s, storage_image_t **imgs, storage_container_t **ctrs,
                       const char *format)
{
    int64_t n = 0, active = 0, size = 0, reclaim = 0;
    for (size_t i = 0; imgs[i]; i++) {
        size_t names = strv_len(imgs[i]->names);
        int64_t sz = image_podman_size(s, imgs[i]);
        bool used = false;
        for (size_t k = 0; ctrs[k]; k++)
            used |= ctrs[k]->image_id && strcmp(ctrs[k]->image_id, imgs[i]->id) == 0;
        for (size_t k = 0; k < (names ? names : 1); k++) {
            n++;
            size += sz;
            if (used)
                active++;
            else
                reclaim += sz;
        }
    }
    int64_t cn = 0, crun = 0, csize = 0, creclaim = 0;
    for (size_t k = 0; ctrs[k]; k++) {
        struct container_info ci;
        berth_error_t err = NULL;
        uint64_t b = 0;
        if (ctrs[k]->layer && storage_layer_disk_usage(s, ctrs[k]->layer, &b, &err) < 0)
            berth_error_release(&err);
        bool running = false;
        if (container_inspect(s, ctrs[k]->id, &ci, &err) == 0) {
            running = strcmp(ci.status, "running") == 0;
            container_info_clear(&ci);
        }
        berth_error_release(&err);
        cn++;
        csize += (int64_t)b;
        if (running)
            crun++;
        else
            creclaim += (int64_t)b;
    }
    cleanup_json json_t *rows = json_array();
    json_array_append_new(rows, df_row("Images", n, active, size, reclaim));
    json_array_append_new(rows, df_row("Containers", cn, crun, csize, creclaim));
    json_array_append_new(rows, df_row("Local Volumes", 0, 0, 0, 0));
    if (tmpl_format_is_json(format)) {
        cleanup_free char *out = json_dump_pretty(rows);
        puts(out);
        return 0;
    }
    static const char *const h[][2] = {
        {"Type", "TYPE"},
        {"Total", "TOTAL"},
        {"Active", "ACTIVE"},
        {"Size", "SIZE"},
        {"Reclaimable", "RECLAIMABLE"},
        {"RawSize", "RAW SIZE"},
        {"RawReclaimable", "RAW RECLAIMABLE"},
    };
    cleanup_json json_t *hdrs = cli_template_headers(h, sizeof(h) / sizeof(h[0]));
    return cli_print_template(format, rows, hdrs, false);
}

static int cmd_system_df(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *format = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        if (c == 'h')
            return cli_usage(df_usage);
        if (c == 'f') {
            format = optarg;
            continue;
        }
        return cli_bad_option(argv[0], argc, argv);
    }
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    storage_image_t **imgs = NULL;
    storage_container_t **ctrs = NULL;
    storage_layer_t **layers = NULL;
    if (storage_image_list(s, &imgs, &err) < 0 || storage_container_list(s, &ctrs, &err) < 0 ||
        storage_layer_list(s, &layers, &err) < 0)
        return cli_fail(&err);
    if (format && strcmp(format, "table") != 0) {
        int r = df_template(s, imgs, ctrs, format);
        storage_image_list_free(imgs);
        storage_container_list_free(ctrs);
        storage_layer_list_free(layers);
        return r;
    }
    uint64_t img_bytes = 0, ctr_bytes = 0;
    size_t n_img = 0, n_ctr = 0;
    for (size_t i = 0; layers[i]; i++) {
        uint64_t b = 0;
        if (storage_layer_disk_usage(s, layers[i]->id, &b, &err) < 0) {
            berth_error_release(&err);
            continue;
        }
        if (layers[i]->rw)
            ctr_bytes += b;
        else
            img_bytes += b;
    }
    for (; imgs[n_img]; n_img++)
        ;
    for (; ctrs[n_ctr]; n_ctr++)
        ;
    char a[32], b[32];
    human_size((int64_t)img_bytes, a, sizeof(a));
    human_size((int64_t)ctr_bytes, b, sizeof(b));
    printf("%-14s %-8s %s\n", "TYPE", "TOTAL", "SIZE");
    printf("%-14s %-8zu %s\n", "Images", n_img, a);
    printf("%-14s %-8zu %s\n", "Containers", n_ctr, b);
    storage_image_list_free(imgs);
    storage_container_list_free(ctrs);
    storage_layer_list_free(layers);
    return 0;
}

BERTH_COMMAND(system_df, "system df", "Show the store's disk usage", cmd_system_df);

/* ------------------------------------------------------------------ system check */

static const char check_usage[] =
    "Usage: berth system check [--repair]\n\n"
    "Check the store for incomplete layers, orphaned directories, missing layers and bad\n"
    "records; --repair removes what is broken.  Exit status 1 when problems remain.\n";

static int cmd_system_check(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"repair", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool repair = false;
    int c;
    while ((c = cli_getopt(argc, argv, "rh", opts, false)) != -1) {
        switch (c) {
        case 'r':
            repair = true;
            break;
        case 'h':
            return cli_usage(check_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    struct storage_check_report r;
    if (storage_check(s, repair, &r, &err) < 0)
        return cli_fail(&err);
    net_check(s, repair, &r.problems, &r.n_problems, &r.n_repaired);
    if (repair) {
        char **removed = NULL;
        if (storage_layer_prune(s, PRUNE_BUSY_MIN_AGE, &removed, &err) < 0) {
            strv_free(removed);
            storage_check_report_clear(&r);
            return cli_fail(&err);
        }
        for (char **p = removed; p && *p; p++) {
            cleanup_free char *m = xasprintf("layer %.12s: not used by any image or container", *p);
            strv_add(&r.problems, m);
            r.n_problems++;
            r.n_repaired++;
        }
        strv_free(removed);
    }
    for (size_t i = 0; i < r.n_problems; i++)
        printf("%s\n", r.problems[i]);
    int rc = 0;
    if (r.n_problems == 0)
        printf("store is clean\n");
    else if (repair)
        printf("%zu problem(s) found, %zu repaired\n", r.n_problems, r.n_repaired);
    else {
        printf("%zu problem(s) found; run with --repair to fix\n", r.n_problems);
        rc = 1;
    }
    storage_check_report_clear(&r);
    return rc;
}

BERTH_COMMAND(system_check, "system check", "Check (and repair) the store", cmd_system_check);

/* ------------------------------------------------------------------ mount / umount */

static const char mount_usage[] =
    "Usage: berth mount IMAGE|CONTAINER\n\n"
    "Mount a container's root filesystem (read-write) or an image's (read-only with overlay)\n"
    "and print the directory.\n"
    "Rootless overlay mounts only exist inside `berth unshare`.\n";

static int cmd_mount(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        if (c == 'h')
            return cli_usage(mount_usage);
        return cli_bad_option(argv[0], argc, argv);
    }
    if (argc - optind != 1)
        return cli_nargs_error(argv[0], "one image or container");
    bool entered = geteuid() != 0;
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    if (entered && strcmp(storage_store_driver_name(s), "vfs") != 0)
        return cli_failf("cannot mount with the %s driver in rootless mode outside of the user "
                         "namespace: run it inside `berth unshare`",
                         storage_store_driver_name(s));
    cleanup_free char *dir = NULL;
    cleanup_storage_container storage_container_t *ctr = NULL;
    if (storage_container_get(s, argv[optind], &ctr, &err) == 0) {
        if (storage_container_mount(s, ctr->id, &dir, &err) < 0)
            return cli_fail(&err);
        printf("%s\n", dir);
        return 0;
    }
    berth_error_release(&err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (storage_image_lookup(s, argv[optind], &img, &err) < 0)
        return cli_fail(&err);
    if (!img->top_layer)
        return cli_failf("image %.12s has no layers", img->id);
    if (storage_layer_mount(s, img->top_layer, &dir, &err) < 0)
        return cli_fail(&err);
    printf("%s\n", dir);
    return 0;
}

BERTH_COMMAND(mount, "mount", "Mount an image's or container's root filesystem", cmd_mount);

static const char umount_usage[] = "Usage: berth umount [-f] IMAGE|CONTAINER...\n\n"
                                   "Release a mount made by `berth mount` (-f: all of them).\n";

static int cmd_umount(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool force = false;
    int c;
    while ((c = cli_getopt(argc, argv, "fh", opts, false)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'h':
            return cli_usage(umount_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind == argc)
        return cli_nargs_error(argv[0], "at least one image or container");
    berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        cleanup_storage_container storage_container_t *ctr = NULL;
        if (storage_container_get(s, argv[i], &ctr, &err) == 0) {
            if (storage_container_unmount(s, ctr->id, force, &err) < 0)
                rc = cli_fail(&err);
            continue;
        }
        berth_error_release(&err);
        cleanup_storage_image storage_image_t *img = NULL;
        if (storage_image_lookup(s, argv[i], &img, &err) < 0 || !img->top_layer ||
            storage_layer_unmount(s, img->top_layer, force, &err) < 0) {
            if (err)
                rc = cli_fail(&err);
            continue;
        }
    }
    return rc;
}

BERTH_COMMAND(umount, "umount", "Unmount an image's or container's root filesystem", cmd_umount);
