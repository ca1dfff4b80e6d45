/* berth save / load: images from the store to archives and back (podman save / load). */
#include "cmd/cli.h"
#include "cmd/transport_cli.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/reference.h"
#include "transport/archive.h"
#include "transport/archive_multi.h"
#include "transport/copy.h"
#include "transport/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char save_usage[] =
    "Usage: berth save [OPTIONS] IMAGE [IMAGE...]\n\n"
    "Save images from local storage to an archive or directory.\n\n"
    "Options:\n"
    "  -o, --output FILE        where to write (required when stdout is a terminal)\n"
    "      --format F           docker-archive (default), oci-archive, oci-dir, docker-dir\n"
    "  -q, --quiet              no progress output\n"
    "      --compress           accepted for compatibility (layers are kept as stored)\n";

static int save_all(struct system_context *sys_, int argc, char **argv, const char *transport,
                    const char *output, bool quiet, berth_error_t *errp);

static int cmd_save(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"compress", no_argument, NULL, 'c'},
        {"multi-image-archive", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *output = NULL, *format = "docker-archive";
    bool quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "o:f:qmh", opts, false)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'c':
        case 'm':
            break;
        case 'h':
            return cli_usage(save_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 1)
        return cli_nargs_error(argv[0], "at least one IMAGE");
    if (!output)
        return cli_failf("--output (-o) is required");
    const char *transport;
    if (strcmp(format, "docker-archive") == 0)
        transport = "docker-archive";
    else if (strcmp(format, "oci-archive") == 0)
        transport = "oci-archive";
    else if (strcmp(format, "oci-dir") == 0)
        transport = "oci";
    else if (strcmp(format, "docker-dir") == 0)
        transport = "dir";
    else
        return cli_failf("unknown --format \"%s\": use docker-archive, oci-archive, oci-dir or "
                         "docker-dir",
                         format);
    if (argc - optind > 1 && strcmp(transport, "dir") == 0)
        return cli_failf("--format docker-dir holds one image");
    struct system_context sys;
    cli_system_context_init(g, &sys);
    cleanup_error berth_error_t err = NULL;
    struct cli_store_holder h = {0};
    if (cli_store_for_sys(g, &h, &sys, &err) < 0)
        return cli_fail(&err);
    int ret = save_all(&sys, argc, argv, transport, output, quiet, &err);
    cli_store_release(&h);
    return ret < 0 ? cli_fail(&err) : 0;
}

static int save_all(struct system_context *sys_, int argc, char **argv, const char *transport,
                    const char *output, bool quiet, berth_error_t *errp)
{
    struct system_context sys = *sys_;
    /* archives take every image through one writer, committed once at the end */
    struct da_writer *dw = NULL;
    struct oa_writer *ow = NULL;
    if (strcmp(transport, "docker-archive") == 0 &&
        docker_archive_writer_open(output, &dw, errp) < 0)
        return -1;
    if (strcmp(transport, "oci-archive") == 0 && oci_archive_writer_open(output, &ow, errp) < 0)
        return -1;
    int ret = -1;
    for (int i = optind; i < argc; i++) {
        cleanup_free char *ss = xasprintf("containers-storage:%s", argv[i]);
        cleanup_image_reference struct image_reference *src = NULL;
        cleanup_image_reference struct image_reference *dst = NULL;
        if (transport_parse_reference(ss, &src, errp) < 0)
            goto out;
        /* the stored name travels with the image: RepoTags, ref.name (like podman) */
        if (cli_name_from_source(src, &sys, errp) < 0)
            goto out;
        const char *name = src->docker_name;
        if (dw) {
            dst = docker_archive_writer_reference(dw, name);
        } else if (ow) {
            dst = oci_archive_writer_reference(ow, name);
        } else {
            cleanup_free char *ds = strcmp(transport, "dir") != 0 && name
                                        ? xasprintf("%s:%s:%s", transport, output, name)
                                        : xasprintf("%s:%s", transport, output);
            if (transport_parse_reference(ds, &dst, errp) < 0)
                goto out;
        }
        struct copy_options o = cli_plain_copy_options(&sys, quiet);
        /* as podman save: archives do not carry signatures, and a stored image's layers are
         * recompressed (which would invalidate them) */
        o.remove_signatures = true;
        struct copy_result res = {0};
        if (copy_image(src, dst, &o, &res, errp) < 0) {
            berth_error_wrap(errp, "saving \"%s\"", argv[i]);
            goto out;
        }
        copy_result_clear(&res);
    }
    if (dw && docker_archive_writer_commit(dw, errp) < 0)
        goto out;
    if (ow && oci_archive_writer_commit(ow, errp) < 0)
        goto out;
    ret = 0;
out:
    docker_archive_writer_free(dw);
    oci_archive_writer_free(ow);
    return ret;
}

BERTH_COMMAND(save, "save", "Save images to an archive", cmd_save);

static const char load_usage[] = "Usage: berth load [OPTIONS]\n\n"
                                 "Load images from an archive (docker-archive or oci-archive, "
                                 "detected) or an OCI layout directory into local storage.\n\n"
                                 "Options:\n"
                                 "  -i, --input FILE   the archive (required)\n"
                                 "  -q, --quiet        no progress output\n";

static int load_one(struct system_context *sys, const char *src_s, bool quiet, char **name,
                    berth_error_t *err)
{
    cleanup_image_reference struct image_reference *src = NULL;
    cleanup_image_reference struct image_reference *dst = NULL;
    if (transport_parse_reference(src_s, &src, err) < 0)
        return -1;
    if (cli_name_from_source(src, sys, err) < 0)
        return -1;
    cleanup_free char *ds =
        xasprintf("containers-storage:%s", src->docker_name ? src->docker_name : "");
    if (transport_parse_reference(ds, &dst, err) < 0)
        return -1;
    struct copy_options o = cli_plain_copy_options(sys, quiet);
    struct copy_result res = {0};
    if (copy_image(src, dst, &o, &res, err) < 0)
        return -1;
    *name = src->docker_name ? xstrdup(src->docker_name) : xstrdup(res.manifest_digest);
    copy_result_clear(&res);
    return 0;
}

static int count_images(const char *path, bool oci, size_t *n, berth_error_t *err)
{
    cleanup_json json_t *j = NULL;
    cleanup_free char *buf = NULL;
    size_t len;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cleanup_free char *p = xasprintf("%s/index.json", path);
        if (json_load_file_bounded(p, 4u << 20, &j, err) < 0)
            return -1;
    } else {
        struct tar_index *t;
        if (tar_index_open(path, NULL, &t, err) < 0)
            return -1;
        int r = tar_index_read_member(t, oci ? "index.json" : "manifest.json", 16u << 20, &buf,
                                      &len, err);
        tar_index_free(t);
        if (r < 0 || json_parse_bounded(buf, len, 16u << 20, "archive index", &j, err) < 0)
            return -1;
    }
    json_t *arr = oci ? json_object_get(j, "manifests") : j;
    *n = json_array_size(arr);
    return 0;
}

static int cmd_load(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"input", required_argument, NULL, 'i'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *input = NULL;
    bool quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "i:qh", opts, false)) != -1) {
        switch (c) {
        case 'i':
            input = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            return cli_usage(load_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    if (!input)
        return cli_failf("--input (-i) is required");
    cleanup_error berth_error_t err = NULL;
    struct system_context sys;
    cli_system_context_init(g, &sys);
    const char *transport;
    struct stat st;
    if (stat(input, &st) < 0)
        return cli_failf("stat \"%s\": %s", input, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        transport = "oci";
    } else {
        struct tar_index *t;
        if (tar_index_open(input, NULL, &t, &err) < 0)
            return cli_fail(&err);
        bool docker = tar_index_has(t, "manifest.json");
        bool oci = tar_index_has(t, "index.json");
        tar_index_free(t);
        if (docker)
            transport = "docker-archive";
        else if (oci)
            transport = "oci-archive";
        else
            return cli_failf("\"%s\" is neither a docker-archive nor an oci-archive", input);
    }
    size_t n = 0;
    if (count_images(input, strcmp(transport, "docker-archive") != 0, &n, &err) < 0)
        return cli_fail(&err);
    struct cli_store_holder h = {0};
    if (cli_store_for_sys(g, &h, &sys, &err) < 0)
        return cli_fail(&err);
    int ret = 0;
    if (n == 0)
        return cli_failf("\"%s\" contains no images", input);
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *s = n == 1 ? xasprintf("%s:%s", transport, input)
                                      : xasprintf("%s:%s@%zu", transport, input, i);
        cleanup_free char *name = NULL;
        if (load_one(&sys, s, quiet, &name, &err) < 0) {
            ret = cli_fail(&err);
            break;
        }
        printf("Loaded image: %s\n", name);
    }
    cli_store_release(&h);
    return ret;
}

BERTH_COMMAND(load, "load", "Load images from an archive into local storage", cmd_load);
