/* oci:PATH[:TAG|@INDEX] — an OCI image layout directory (oci-layout, index.json, blobs/).
 *
 * Reading selects the image by its org.opencontainers.image.ref.name annotation, by position
 * (@INDEX), or takes the only image.  Writing puts blobs under blobs/<algo>/<hex> (temp name,
 * fsync, rename) and updates index.json atomically at commit, replacing an existing tag; close
 * without commit removes the blobs this destination created. */
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/path.h"
#include "common/reference.h"
#include "transport/internal.h"
#include "transport/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct oci_ref {
    char *path;
    char *tag;
    int index;
};

char *oci_ref_string(const struct image_reference *ref)
{
    const struct oci_ref *r = ref->priv;
    if (r->index >= 0)
        return xasprintf("%s:%s@%d", ref->transport->name, r->path, r->index);
    if (r->tag)
        return xasprintf("%s:%s:%s", ref->transport->name, r->path, r->tag);
    return xasprintf("%s:%s", ref->transport->name, r->path);
}

void oci_ref_free(struct image_reference *ref)
{
    struct oci_ref *r = ref->priv;
    if (r) {
        free(r->path);
        free(r->tag);
        free(r);
    }
    free(ref->docker_name);
    free(ref);
}

int oci_ref_new(const struct transport_ops *t, const struct reference_ops *ops, const char *within,
                struct image_reference **out, berth_error_t *err)
{
    struct oci_ref *r = xzalloc(sizeof(*r));
    if (oci_split_within(within, true, &r->path, &r->tag, &r->index, err) < 0) {
        free(r);
        return -1;
    }
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = t;
    ref->ops = ops;
    ref->priv = r;
    *out = ref;
    return 0;
}

void oci_ref_parts(const struct image_reference *ref, const char **path, const char **tag,
                   int *index)
{
    const struct oci_ref *r = ref->priv;
    *path = r->path;
    *tag = r->tag;
    *index = r->index;
}

/* ---- source over a layout ---- */

struct oci_src {
    struct layout_access acc;
    char *digest; /* selected top-level manifest */
    char *mt;
    int64_t size;
};

static int layout_read(struct layout_access *acc, const char *rel, size_t max, char **out,
                       size_t *len, berth_error_t *err)
{
    berth_reader_t *r = NULL;
    if (acc->open(acc->ctx, rel, &r, NULL, err) < 0)
        return -1;
    if (read_all_close(r, max, out, len, err) < 0)
        return berth_error_wrap(err, "read \"%s\"", rel);
    return 0;
}

static int src_get_manifest(struct image_source *src, const char *instance, char **manifest,
                            size_t *len, char **mime, berth_error_t *err)
{
    struct oci_src *s = src->priv;
    const char *d = instance ? instance : s->digest;
    cleanup_free char *rel = oci_blob_path(d, err);
    if (!rel)
        return -1;
    cleanup_free char *buf = NULL;
    size_t n;
    if (layout_read(&s->acc, rel, MF_MAX_MANIFEST, &buf, &n, err) < 0)
        return -1;
    /* a manifest is trusted only through its digest */
    cleanup_free char *got = NULL;
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(d, &algo, &hex, err) < 0)
        return -1;
    got = digest_buffer(algo, buf, n);
    if (!digest_equal(got, d))
        return berth_error_make_status(err, EIO, "manifest %s: digest mismatch (content is %s)", d,
                                       got);
    const char *mt = mf_detect(buf, n, instance ? NULL : s->mt);
    *mime = mt ? xstrdup(mt) : (!instance && s->mt ? xstrdup(s->mt) : NULL);
    *manifest = steal_pointer(&buf);
    *len = n;
    return 0;
}

static int src_get_blob(struct image_source *src, const struct blob_info *info,
                        berth_reader_t **out, int64_t *size, berth_error_t *err)
{
    struct oci_src *s = src->priv;
    cleanup_free char *rel = oci_blob_path(info->digest, err);
    if (!rel)
        return -1;
    return s->acc.open(s->acc.ctx, rel, out, size, err);
}

static void src_close(struct image_source *src)
{
    struct oci_src *s = src->priv;
    if (s->acc.free)
        s->acc.free(s->acc.ctx);
    free(s->digest);
    free(s->mt);
    free(s);
    free(src);
}

static const struct image_source_ops oci_src_ops = {
    .get_manifest = src_get_manifest,
    .get_blob = src_get_blob,
    .thread_safe_get_blob = true,
    .close = src_close,
};

int oci_source_from_layout(struct image_reference *ref, struct layout_access acc, const char *tag,
                           int index, struct image_source **out, berth_error_t *err)
{
    struct oci_src *s = xzalloc(sizeof(*s));
    s->acc = acc;
    struct image_source *src = xzalloc(sizeof(*src));
    src->ops = &oci_src_ops;
    src->ref = ref;
    src->priv = s;
    cleanup_free char *buf = NULL;
    size_t n;
    cleanup_json json_t *ix = NULL;
    if (layout_read(&s->acc, "index.json", OCI_INDEX_MAX, &buf, &n, err) < 0)
        goto fail;
    if (json_parse_bounded(buf, n, OCI_INDEX_MAX, "index.json", &ix, err) < 0)
        goto fail;
    json_t *ms = json_get_array(ix, "manifests");
    if (!ms) {
        berth_error_make_status(err, EINVAL, "index.json: no manifests array");
        goto fail;
    }
    json_t *sel = NULL;
    size_t nm = json_array_size(ms);
    if (index >= 0) {
        if ((size_t)index >= nm) {
            berth_error_make_status(err, ENOENT, "index %d out of range: index.json has %zu images",
                                    index, nm);
            goto fail;
        }
        sel = json_array_get(ms, (size_t)index);
    } else if (tag) {
        for (size_t i = 0; i < nm; i++) {
            json_t *d = json_array_get(ms, i);
            const char *name =
                json_get_string(json_get_object(d, "annotations"), OCI_REF_NAME_ANNOTATION);
            if (name && strcmp(name, tag) == 0)
                sel = d;
        }
        if (!sel) {
            berth_error_make_status(err, ENOENT, "no image tagged \"%s\" in the layout", tag);
            goto fail;
        }
    } else {
        if (nm != 1) {
            berth_error_make_status(err, nm ? EINVAL : ENOENT,
                                    nm ? "the layout has %zu images: name one with :TAG or @INDEX"
                                       : "the layout has no images%.0zu",
                                    nm);
            goto fail;
        }
        sel = json_array_get(ms, 0);
    }
    struct blob_info b = {0};
    if (!json_is_object(sel)) {
        berth_error_make_status(err, EINVAL, "index.json: manifest entry is not an object");
        goto fail;
    }
    const char *d = json_get_string(sel, "digest");
    if (!d) {
        berth_error_make_status(err, EINVAL, "index.json: manifest entry without digest");
        goto fail;
    }
    if (digest_validate(d, err) < 0) {
        berth_error_wrap(err, "index.json");
        goto fail;
    }
    (void)b;
    s->digest = xstrdup(d);
    const char *mt = json_get_string(sel, "mediaType");
    s->mt = mt ? xstrdup(mt) : NULL;
    json_get_int(sel, "size", &s->size);
    /* a ref.name that is a full image name ("localhost/x:1") names the image (load, pull) */
    const char *rn = json_get_string(json_get_object(sel, "annotations"), OCI_REF_NAME_ANNOTATION);
    if (!ref->docker_name && rn && strchr(rn, ':')) {
        cleanup_image_ref image_ref_t *ir = NULL;
        cleanup_error berth_error_t e2 = NULL;
        if (image_ref_parse_normalized(rn, &ir, &e2) == 0 && ir->tag && !ir->digest)
            ref->docker_name = image_ref_string(ir);
    }
    *out = src;
    return 0;
fail:
    src_close(src);
    return -1;
}

/* directory access */
static int dir_open(void *ctx, const char *rel, berth_reader_t **out, int64_t *size,
                    berth_error_t *err)
{
    int dirfd = (int)(intptr_t)ctx;
    int fd = path_openat_in_root(dirfd, rel, O_RDONLY | O_CLOEXEC, 0, err);
    if (fd < 0)
        return -1;
    if (size) {
        struct stat st;
        *size = fstat(fd, &st) == 0 ? st.st_size : -1;
    }
    *out = reader_from_fd(fd, true);
    return 0;
}

static void dir_free(void *ctx)
{
    close((int)(intptr_t)ctx);
}

static int oci_new_source(struct image_reference *ref, const struct system_context *sys,
                          struct image_source **out, berth_error_t *err)
{
    struct oci_ref *r = ref->priv;
    int fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open OCI layout \"%s\"", r->path);
    struct layout_access acc = {
        .open = dir_open, .free = dir_free, .ctx = (void *)(intptr_t)fd, .thread_safe = true};
    if (oci_source_from_layout(ref, acc, r->tag, r->index, out, err) < 0)
        return berth_error_wrap(err, "OCI layout \"%s\"", r->path);
    return 0;
}

/* ---- index.json editing ---- */

json_t *oci_index_add(json_t *index, const char *media_type, const char *digest, int64_t size,
                      const char *tag)
{
    if (!index || !json_is_object(index)) {
        if (index)
            json_decref(index);
        index = json_object();
        json_object_set_new(index, "schemaVersion", json_integer(2));
        json_object_set_new(index, "mediaType", json_string(MT_OCI_INDEX));
    }
    json_t *ms = json_get_array(index, "manifests");
    if (!ms) {
        ms = json_array();
        json_object_set_new(index, "manifests", ms);
    }
    for (size_t i = json_array_size(ms); i > 0; i--) {
        json_t *d = json_array_get(ms, i - 1);
        const char *name =
            json_get_string(json_get_object(d, "annotations"), OCI_REF_NAME_ANNOTATION);
        const char *dd = json_get_string(d, "digest");
        bool drop =
            tag ? (name && strcmp(name, tag) == 0) : (!name && dd && strcmp(dd, digest) == 0);
        if (drop)
            json_array_remove(ms, i - 1);
    }
    json_t *d = json_object();
    json_object_set_new(d, "mediaType", json_string(media_type));
    json_object_set_new(d, "digest", json_string(digest));
    json_object_set_new(d, "size", json_integer(size));
    if (tag) {
        json_t *a = json_object();
        json_object_set_new(a, OCI_REF_NAME_ANNOTATION, json_string(tag));
        json_object_set_new(d, "annotations", a);
    }
    json_array_append_new(ms, d);
    return index;
}

/* ---- destination ---- */

struct oci_dst {
    char *path;
    char *tag;
    int rootfd, blobfd;
    bool created_root;
    struct file_list created; /* blob names (relative to blobs/sha256) created by us */
    struct oci_top_manifest top;
    bool committed;
};

#include <pthread.h>

static const char *const oci_types[] = {MT_OCI_MANIFEST, MT_OCI_INDEX, NULL};
const char *const *oci_supported_manifest_types(struct image_destination *d)
{
    return oci_types;
}

static int dst_try_reuse(struct image_destination *dst, const struct blob_info *info, bool *reused,
                         struct blob_info *out, berth_error_t *err)
{
    struct oci_dst *o = dst->priv;
    *reused = false;
    if (!info->digest)
        return 0;
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(info->digest, &algo, &hex, err) < 0)
        return -1;
    if (algo != DIGEST_SHA256)
        return 0;
    *reused = blob_file_reusable(o->blobfd, hex, info, out);
    return 0;
}

static int dst_put_blob(struct image_destination *dst, berth_reader_t *stream,
                        const struct blob_info *info, bool is_config, struct blob_info *out,
                        berth_error_t *err)
{
    struct oci_dst *o = dst->priv;
    if (info->digest) {
        digest_algo_t algo;
        const char *hex;
        if (digest_parse(info->digest, &algo, &hex, err) < 0)
            return -1;
        if (algo != DIGEST_SHA256)
            return berth_error_make_status(err, ENOTSUP, "only sha256 blobs can be stored in %s",
                                           o->path);
    }
    char *digest = NULL;
    int64_t size;
    bool created;
    if (blob_write_into_dir(o->blobfd, stream, info->digest, info->size, &digest, &size, &created,
                            err) < 0)
        return -1;
    if (created)
        file_list_add(&o->created, digest_hex(digest));
    blob_info_set_written(out, digest, size, info->media_type);
    return 0;
}

static int dst_put_manifest(struct image_destination *dst, const char *manifest, size_t len,
                            const char *instance, berth_error_t *err)
{
    struct oci_dst *o = dst->priv;
    const char *mt = mf_detect(manifest, len, NULL);
    if (!mt || (strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_OCI_INDEX) != 0))
        return berth_error_make_status(err, ENOTSUP,
                                       "an OCI layout can only hold OCI manifests and indexes, "
                                       "not %s",
                                       mt ? mt : "this document");
    berth_reader_t *r = reader_from_buffer(manifest, len, false);
    char *digest = NULL;
    int64_t size;
    bool created;
    int ret = blob_write_into_dir(o->blobfd, r, NULL, -1, &digest, &size, &created, err);
    reader_close(r);
    if (ret < 0)
        return -1;
    if (created)
        file_list_add(&o->created, digest_hex(digest));
    oci_top_manifest_put(&o->top, instance, digest, mt, size);
    return 0;
}

static int dst_commit(struct image_destination *dst, berth_error_t *err)
{
    struct oci_dst *o = dst->priv;
    if (!o->top.digest)
        return berth_error_make_status(err, EINVAL, "commit without a manifest");
    /* serialise concurrent writers of index.json */
    if (flock(o->rootfd, LOCK_EX) < 0)
        return berth_error_make(err, errno, "lock \"%s\"", o->path);
    cleanup_json json_t *ix = NULL;
    cleanup_free char *buf = NULL;
    size_t n;
    cleanup_error berth_error_t e2 = NULL;
    int ret = -1;
    if (fs_read_file_at(o->rootfd, "index.json", OCI_INDEX_MAX, &buf, &n, &e2) == 0) {
        if (json_parse_bounded(buf, n, OCI_INDEX_MAX, "index.json", &ix, err) < 0) {
            berth_error_wrap(err, "\"%s\"", o->path);
            goto out;
        }
    } else if (berth_error_status(e2) != ENOENT) {
        *err = steal_pointer(&e2);
        goto out;
    }
    ix = oci_index_add(steal_pointer(&ix), o->top.media_type, o->top.digest, o->top.size, o->tag);
    char *s = json_dumps(ix, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ret = fs_write_file_atomic_at(o->rootfd, "index.json", s, strlen(s), 0644, err);
    free(s);
    if (ret == 0)
        o->committed = true;
out:
    flock(o->rootfd, LOCK_UN);
    return ret;
}

static void dst_close(struct image_destination *dst)
{
    struct oci_dst *o = dst->priv;
    if (!o->committed) {
        file_list_unlink_all(&o->created, o->blobfd);
        if (o->created_root) {
            cleanup_error berth_error_t e = NULL;
            IGNORE_RESULT(fs_rm_rf(o->path, &e));
        }
    }
    file_list_destroy(&o->created);
    if (o->blobfd >= 0)
        close(o->blobfd);
    if (o->rootfd >= 0)
        close(o->rootfd);
    free(o->path);
    free(o->tag);
    oci_top_manifest_clear(&o->top);
    free(o);
    free(dst);
}

static const struct image_destination_ops oci_dst_ops = {
    .supported_manifest_types = oci_supported_manifest_types,
    .desires_compressed_layers = true,
    .accepts_foreign_layers = true,
    .try_reuse_blob = dst_try_reuse,
    .put_blob = dst_put_blob,
    .put_manifest = dst_put_manifest,
    .commit = dst_commit,
    .thread_safe_put_blob = true,
    .close = dst_close,
};

static int oci_new_destination(struct image_reference *ref, const struct system_context *sys,
                               struct image_destination **out, berth_error_t *err)
{
    struct oci_ref *r = ref->priv;
    if (r->index >= 0)
        return berth_error_make_status(err, EINVAL, "@INDEX cannot be used as a destination");
    struct oci_dst *o = xzalloc(sizeof(*o));
    o->rootfd = o->blobfd = -1;
    file_list_init(&o->created);
    o->path = xstrdup(r->path);
    o->tag = r->tag ? xstrdup(r->tag) : NULL;
    struct image_destination *dst = xzalloc(sizeof(*dst));
    dst->ops = &oci_dst_ops;
    dst->ref = ref;
    dst->priv = o;
    if (dest_dir_open(r->path, &o->rootfd, &o->created_root, err) < 0) {
        /* not "goto fail": that would jump over the cleanup_ declarations below */
        dst_close(dst);
        return -1;
    }
    /* an existing directory must be empty or a layout */
    cleanup_free char *lay = NULL;
    size_t ln;
    cleanup_error berth_error_t e2 = NULL;
    if (fs_read_file_at(o->rootfd, "oci-layout", 4096, &lay, &ln, &e2) < 0) {
        if (berth_error_status(e2) != ENOENT) {
            *err = steal_pointer(&e2);
            goto fail;
        }
        if (fs_write_file_atomic_at(o->rootfd, "oci-layout", OCI_LAYOUT_CONTENT,
                                    strlen(OCI_LAYOUT_CONTENT), 0644, err) < 0)
            goto fail;
    }
    if (mkdirat(o->rootfd, "blobs", 0755) < 0 && errno != EEXIST) {
        berth_error_make(err, errno, "mkdir \"%s/blobs\"", r->path);
        goto fail;
    }
    if (mkdirat(o->rootfd, "blobs/sha256", 0755) < 0 && errno != EEXIST) {
        berth_error_make(err, errno, "mkdir \"%s/blobs/sha256\"", r->path);
        goto fail;
    }
    o->blobfd = openat(o->rootfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (o->blobfd < 0) {
        berth_error_make(err, errno, "open \"%s/blobs/sha256\"", r->path);
        goto fail;
    }
    blob_dir_remove_stale_temps(o->blobfd);
    fs_remove_stale_temps_at(o->rootfd, NULL); /* index.json.tmp-..., oci-layout.tmp-... */
    *out = dst;
    return 0;
fail:
    dst_close(dst);
    return -1;
}

static int oci_delete(struct image_reference *ref, const struct system_context *sys,
                      berth_error_t *err)
{
    return berth_error_make_status(err, ENOTSUP, "deleting from an OCI layout is not supported");
}

static const struct reference_ops oci_ref_ops = {
    .string = oci_ref_string,
    .new_source = oci_new_source,
    .new_destination = oci_new_destination,
    .delete_image = oci_delete,
    .free = oci_ref_free,
};

extern const struct transport_ops oci_transport;
static int oci_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    return oci_ref_new(&oci_transport, &oci_ref_ops, within, out, err);
}

const struct transport_ops oci_transport = {.name = "oci", .parse_reference = oci_parse};
