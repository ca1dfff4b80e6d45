/* dir:PATH — skopeo's directory format: manifest.json, each blob in a file named by its digest's
 * hex, a "version" file, signatures as signature-1, signature-2...; instances of an index as
 * <hex>.manifest.json.  Blobs are written to a temp name, fsynced and renamed; manifest.json is
 * written atomically at commit; close without commit removes what this destination created. */
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/path.h"
#include "transport/internal.h"
#include "transport/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_VERSION  "Directory Transport Version: 1.1\n"
#define DIR_MAX_SIG  (4u * 1024 * 1024)
#define DIR_MAX_SIGS 1000

struct dir_ref {
    char *path;
};

extern const struct transport_ops dir_transport;

static char *dir_string(const struct image_reference *ref)
{
    const struct dir_ref *r = ref->priv;
    return xasprintf("dir:%s", r->path);
}

static void dir_ref_free(struct image_reference *ref)
{
    struct dir_ref *r = ref->priv;
    if (r)
        free(r->path);
    free(r);
    free(ref->docker_name);
    free(ref);
}

static char *manifest_file_name(const char *instance, berth_error_t *err)
{
    if (!instance)
        return xstrdup("manifest.json");
    const char *hex;
    digest_algo_t a;
    if (digest_parse(instance, &a, &hex, err) < 0)
        return NULL;
    return xasprintf("%s.manifest.json", hex);
}

/* signature-N of the image, <hex>.signature-N of an instance: the prefix ("" or "<hex>.") */
static char *sig_prefix(const char *instance, berth_error_t *err)
{
    if (!instance)
        return xstrdup("");
    const char *hex;
    digest_algo_t a;
    if (digest_parse(instance, &a, &hex, err) < 0)
        return NULL;
    return xasprintf("%s.", hex);
}

/* ---- source ---- */

struct dir_src {
    int fd;
};

static int ds_get_manifest(struct image_source *src, const char *instance, char **manifest,
                           size_t *len, char **mime, berth_error_t *err)
{
    struct dir_src *s = src->priv;
    cleanup_free char *name = manifest_file_name(instance, err);
    if (!name)
        return -1;
    if (fs_read_file_at(s->fd, name, MF_MAX_MANIFEST, manifest, len, err) < 0)
        return -1;
    if (instance) {
        cleanup_free char *got = digest_buffer(DIGEST_SHA256, *manifest, *len);
        if (!digest_equal(got, instance)) {
            free(*manifest);
            *manifest = NULL;
            return berth_error_make_status(err, EIO, "manifest %s: digest mismatch", instance);
        }
    }
    const char *mt = mf_detect(*manifest, *len, NULL);
    *mime = mt ? xstrdup(mt) : NULL;
    return 0;
}

static int ds_get_blob(struct image_source *src, const struct blob_info *info, berth_reader_t **out,
                       int64_t *size, berth_error_t *err)
{
    struct dir_src *s = src->priv;
    const char *hex;
    digest_algo_t a;
    if (digest_parse(info->digest, &a, &hex, err) < 0)
        return -1;
    int fd = openat(s->fd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open blob %s", info->digest);
    struct stat st;
    *size = fstat(fd, &st) == 0 ? st.st_size : -1;
    *out = reader_from_fd(fd, true);
    return 0;
}

static int ds_get_signatures(struct image_source *src, const char *instance, char ***sigs,
                             size_t **lens, size_t *n, berth_error_t *err)
{
    struct dir_src *s = src->priv;
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    cleanup_free char *prefix = sig_prefix(instance, err);
    if (!prefix)
        return -1;
    for (size_t i = 1; i <= DIR_MAX_SIGS; i++) {
        cleanup_free char *name = xasprintf("%ssignature-%zu", prefix, i);
        char *buf;
        size_t l;
        cleanup_error berth_error_t e = NULL;
        if (fs_read_file_at(s->fd, name, DIR_MAX_SIG, &buf, &l, &e) < 0) {
            if (berth_error_status(e) == ENOENT)
                break;
            *err = steal_pointer(&e);
            return -1;
        }
        *sigs = xreallocarray(*sigs, *n + 1, sizeof(char *));
        *lens = xreallocarray(*lens, *n + 1, sizeof(size_t));
        (*sigs)[*n] = buf;
        (*lens)[*n] = l;
        (*n)++;
    }
    return 0;
}

static void ds_close(struct image_source *src)
{
    struct dir_src *s = src->priv;
    if (s->fd >= 0)
        close(s->fd);
    free(s);
    free(src);
}

static const struct image_source_ops dir_src_ops = {
    .get_manifest = ds_get_manifest,
    .get_blob = ds_get_blob,
    .get_signatures = ds_get_signatures,
    .thread_safe_get_blob = true,
    .close = ds_close,
};

static int dir_new_source(struct image_reference *ref, const struct system_context *sys,
                          struct image_source **out, berth_error_t *err)
{
    struct dir_ref *r = ref->priv;
    int fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory \"%s\"", r->path);
    struct dir_src *s = xzalloc(sizeof(*s));
    s->fd = fd;
    struct image_source *src = xzalloc(sizeof(*src));
    src->ops = &dir_src_ops;
    src->ref = ref;
    src->priv = s;
    *out = src;
    return 0;
}

/* ---- destination ---- */

struct dir_dst {
    char *path;
    int fd;
    bool created_root, committed;
    struct file_list created;
    struct file_list kept; /* files of an earlier image reused by this one */
    char *manifest;
    size_t manifest_len;
    /* instance manifests and signatures are written directly (they are content-addressed or
     * only meaningful with the manifest) */
};

static const char *const *dd_types(struct image_destination *dst)
{
    return NULL;
}

static int dd_try_reuse(struct image_destination *dst, const struct blob_info *info, bool *reused,
                        struct blob_info *out, berth_error_t *err)
{
    struct dir_dst *d = dst->priv;
    *reused = false;
    if (!info->digest)
        return 0;
    const char *hex;
    digest_algo_t a;
    if (digest_parse(info->digest, &a, &hex, err) < 0)
        return -1;
    if (blob_file_reusable(d->fd, hex, info, out)) {
        *reused = true;
        file_list_add(&d->kept, hex);
    }
    return 0;
}

static int dd_put_blob(struct image_destination *dst, berth_reader_t *stream,
                       const struct blob_info *info, bool is_config, struct blob_info *out,
                       berth_error_t *err)
{
    struct dir_dst *d = dst->priv;
    char *digest = NULL;
    int64_t size;
    bool created;
    if (blob_write_into_dir(d->fd, stream, info->digest, info->size, &digest, &size, &created,
                            err) < 0)
        return -1;
    file_list_add(created ? &d->created : &d->kept, digest_hex(digest));
    blob_info_set_written(out, digest, size, info->media_type);
    return 0;
}

static int dd_put_manifest(struct image_destination *dst, const char *manifest, size_t len,
                           const char *instance, berth_error_t *err)
{
    struct dir_dst *d = dst->priv;
    if (!instance) {
        free(d->manifest);
        d->manifest = xmalloc(len + 1);
        memcpy(d->manifest, manifest, len);
        d->manifest_len = len;
        return 0;
    }
    cleanup_free char *name = manifest_file_name(instance, err);
    if (!name)
        return -1;
    if (fs_write_file_atomic_at(d->fd, name, manifest, len, 0644, err) < 0)
        return -1;
    file_list_add(&d->created, name);
    return 0;
}

static int dd_put_signatures(struct image_destination *dst, const char *instance, char *const *sigs,
                             const size_t *lens, size_t n, berth_error_t *err)
{
    struct dir_dst *d = dst->priv;
    cleanup_free char *prefix = sig_prefix(instance, err);
    if (!prefix)
        return -1;
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *name = xasprintf("%ssignature-%zu", prefix, i + 1);
        if (fs_write_file_atomic_at(d->fd, name, sigs[i], lens[i], 0644, err) < 0)
            return -1;
        file_list_add(&d->created, name);
    }
    return 0;
}

static void remove_stale(struct dir_dst *d)
{
    DIR *dp = fdopendir(openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp))) {
        const char *n = de->d_name;
        if (de->d_type != DT_REG || strcmp(n, "manifest.json") == 0 || strcmp(n, "version") == 0)
            continue;
        if (file_list_has(&d->created, n) || file_list_has(&d->kept, n))
            continue;
        unlinkat(d->fd, n, 0);
    }
    closedir(dp);
}

static int dd_commit(struct image_destination *dst, berth_error_t *err)
{
    struct dir_dst *d = dst->priv;
    if (!d->manifest)
        return berth_error_make_status(err, EINVAL, "commit without a manifest");
    if (fs_write_file_atomic_at(d->fd, "version", DIR_VERSION, strlen(DIR_VERSION), 0644, err) < 0)
        return -1;
    if (fs_write_file_atomic_at(d->fd, "manifest.json", d->manifest, d->manifest_len, 0644, err) <
        0)
        return -1;
    d->committed = true;
    /* like skopeo, the directory holds one image: files of the image it replaced go, once the
     * new one is complete */
    if (!d->created_root)
        remove_stale(d);
    return 0;
}

static void dd_close(struct image_destination *dst)
{
    struct dir_dst *d = dst->priv;
    if (!d->committed) {
        file_list_unlink_all(&d->created, d->fd);
        if (d->created_root) {
            cleanup_error berth_error_t e = NULL;
            IGNORE_RESULT(fs_rm_rf(d->path, &e));
        }
    }
    file_list_destroy(&d->created);
    file_list_destroy(&d->kept);
    if (d->fd >= 0)
        close(d->fd);
    free(d->manifest);
    free(d->path);
    free(d);
    free(dst);
}

static const struct image_destination_ops dir_dst_ops = {
    .supported_manifest_types = dd_types,
    .accepts_foreign_layers = true,
    .try_reuse_blob = dd_try_reuse,
    .put_blob = dd_put_blob,
    .put_manifest = dd_put_manifest,
    .put_signatures = dd_put_signatures,
    .commit = dd_commit,
    .thread_safe_put_blob = true,
    .close = dd_close,
};

/* What a dir: write killed before it wrote "version" leaves: temp blobs and blobs already
 * renamed to their hex digest.  A directory holding only these is an interrupted dir: image, not
 * someone else's data: writing into it again must work (the new image's commit removes what it
 * does not use). */
static bool is_hex_digest_name(const char *name, size_t len)
{
    if (len != 64 && len != 128)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

static bool interrupted_write_leftover(const char *name)
{
    if (strncmp(name, ".tmp-blob-", 10) == 0)
        return true;
    /* the temp file of an atomic write of a dir: file ("version.tmp-<pid>-XXXXXX"): a writer
     * killed inside its last steps */
    const char *t = strstr(name, ".tmp-");
    size_t len = t ? (size_t)(t - name) : strlen(name);
    if (t) {
        if ((len == 7 && strncmp(name, "version", 7) == 0) ||
            (len == 13 && strncmp(name, "manifest.json", 13) == 0))
            return true;
        if (len > 10 && strncmp(name, "signature-", 10) == 0 &&
            strspn(name + 10, "0123456789") == len - 10)
            return true;
    }
    return is_hex_digest_name(name, len);
}

static int dir_new_destination(struct image_reference *ref, const struct system_context *sys,
                               struct image_destination **out, berth_error_t *err)
{
    struct dir_ref *r = ref->priv;
    struct dir_dst *d = xzalloc(sizeof(*d));
    d->fd = -1;
    file_list_init(&d->created);
    file_list_init(&d->kept);
    d->path = xstrdup(r->path);
    struct image_destination *dst = xzalloc(sizeof(*dst));
    dst->ops = &dir_dst_ops;
    dst->ref = ref;
    dst->priv = d;
    if (dest_dir_open(r->path, &d->fd, &d->created_root, err) < 0)
        goto fail;
    blob_dir_remove_stale_temps(d->fd);
    fs_remove_stale_temps_at(d->fd, NULL); /* manifest.json.tmp-..., version.tmp-... */
    if (!d->created_root) {
        /* like skopeo: refuse to write into a non-empty directory that is not a dir: image */
        cleanup_dir DIR *dp = fdopendir(openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        bool empty = true;
        struct dirent *de;
        while (dp && (de = readdir(dp)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                !interrupted_write_leftover(de->d_name))
                empty = false;
        struct stat vs;
        if (!empty && fstatat(d->fd, "version", &vs, 0) < 0) {
            berth_error_make_status(err, EEXIST,
                                    "\"%s\" is not empty and is not a dir: image; refusing to "
                                    "write into it",
                                    r->path);
            goto fail;
        }
    }
    *out = dst;
    return 0;
fail:
    dd_close(dst);
    return -1;
}

static const struct reference_ops dir_ref_ops = {
    .string = dir_string,
    .new_source = dir_new_source,
    .new_destination = dir_new_destination,
    .free = dir_ref_free,
};

static int dir_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    if (!*within)
        return berth_error_make_status(err, EINVAL, "empty path");
    struct dir_ref *r = xzalloc(sizeof(*r));
    r->path = xstrdup(within);
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = &dir_transport;
    ref->ops = &dir_ref_ops;
    ref->priv = r;
    *out = ref;
    return 0;
}

const struct transport_ops dir_transport = {.name = "dir", .parse_reference = dir_parse};
