/* oci-archive:PATH[:TAG] — a tar of an OCI image layout.
 *
 * Reading indexes the tar in place (no extraction; a compressed tar is decompressed to an
 * unlinked temp file first).  Writing streams each blob straight into a temp tar beside PATH
 * (named after its digest once hashed), adds oci-layout and index.json at commit, then fsyncs
 * and renames: an interrupted copy leaves no archive. */
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "transport/archive.h"
#include "transport/archive_multi.h"
#include "transport/internal.h"
#include "transport/manifest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const struct transport_ops oci_archive_transport;

static int ar_open(void *ctx, const char *rel, berth_reader_t **out, int64_t *size,
                   berth_error_t *err)
{
    return tar_index_open_member(ctx, rel, out, size, err);
}

static void ar_free(void *ctx)
{
    tar_index_free(ctx);
}

static int oa_new_source(struct image_reference *ref, const struct system_context *sys,
                         struct image_source **out, berth_error_t *err)
{
    const char *path, *tag;
    int index;
    oci_ref_parts(ref, &path, &tag, &index);
    struct tar_index *t;
    if (tar_index_open(path, transport_tmpdir(sys), &t, err) < 0)
        return berth_error_wrap(err, "oci-archive");
    struct layout_access acc = {.open = ar_open, .free = ar_free, .ctx = t, .thread_safe = true};
    if (oci_source_from_layout(ref, acc, tag, index, out, err) < 0)
        return berth_error_wrap(err, "oci-archive \"%s\"", path);
    return 0;
}

/* ---- destination ---- */

/* The archive being written; shared by several destinations when saving several images. */
struct oa_writer {
    char *path;
    struct tar_writer *tw;
    json_t *index; /* index.json being built */
    pthread_mutex_t lock;
};

static void oa_writer_free_impl(struct oa_writer *w)
{
    if (!w)
        return;
    tar_writer_free(w->tw);
    if (w->index)
        json_decref(w->index);
    pthread_mutex_destroy(&w->lock);
    free(w->path);
    free(w);
}

static int oa_writer_open_impl(const char *path, struct oa_writer **out, berth_error_t *err)
{
    struct oa_writer *w = xzalloc(sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    w->path = xstrdup(path);
    if (tar_writer_open(path, &w->tw, err) < 0 || tar_writer_add_dir(w->tw, "blobs/", err) < 0 ||
        tar_writer_add_dir(w->tw, "blobs/sha256/", err) < 0) {
        oa_writer_free_impl(w);
        return berth_error_wrap(err, "oci-archive \"%s\"", path);
    }
    *out = w;
    return 0;
}

static int oa_writer_finish(struct oa_writer *w, berth_error_t *err)
{
    if (!w->index)
        return berth_error_make_status(err, EINVAL, "oci-archive: no image was added");
    char *s = json_dumps(w->index, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int ret = -1;
    if (tar_writer_add_buffer(w->tw, "oci-layout", OCI_LAYOUT_CONTENT, strlen(OCI_LAYOUT_CONTENT),
                              err) == 0 &&
        tar_writer_add_buffer(w->tw, "index.json", s, strlen(s), err) == 0 &&
        tar_writer_commit(w->tw, err) == 0)
        ret = 0;
    free(s);
    return ret;
}

struct oa_dst {
    struct oa_writer *w;
    bool own_writer;
    char *tag;
    struct oci_top_manifest top;
};

static int oa_try_reuse(struct image_destination *dst, const struct blob_info *info, bool *reused,
                        struct blob_info *out, berth_error_t *err)
{
    struct oa_dst *o = dst->priv;
    *reused = false;
    if (!info->digest)
        return 0;
    cleanup_free char *name = oci_blob_path(info->digest, err);
    if (!name)
        return -1;
    pthread_mutex_lock(&o->w->lock);
    *reused = tar_writer_has(o->w->tw, name);
    pthread_mutex_unlock(&o->w->lock);
    if (*reused && out)
        blob_info_copy(out, info);
    return 0;
}

static int put_stream(struct oa_writer *w, berth_reader_t *stream, const char *want_digest,
                      int64_t want_size, char **digest_out, int64_t *size_out, berth_error_t *err)
{
    cleanup_free char *digest = NULL;
    int64_t size;
    if (want_digest) {
        digest_algo_t a;
        const char *hex;
        if (digest_parse(want_digest, &a, &hex, err) < 0)
            return -1;
        if (a != DIGEST_SHA256)
            return berth_error_make_status(err, ENOTSUP, "only sha256 blobs are supported");
    }
    pthread_mutex_lock(&w->lock);
    int ret = -1;
    if (tar_writer_stream(w->tw, stream, &digest, &size, err) < 0)
        goto out;
    if (want_size >= 0 && size != want_size) {
        berth_error_make_status(err, EIO, "blob %s: size %lld, expected %lld",
                                want_digest ? want_digest : digest, (long long)size,
                                (long long)want_size);
        tar_writer_drop_pending(w->tw);
        goto out;
    }
    if (want_digest && !digest_equal(want_digest, digest)) {
        berth_error_make_status(err, EIO, "blob digest mismatch: expected %s, got %s", want_digest,
                                digest);
        tar_writer_drop_pending(w->tw);
        goto out;
    }
    char *name = oci_blob_path(digest, err);
    int named = tar_writer_name_pending_once(w->tw, name, err);
    free(name);
    if (named < 0)
        goto out;
    *digest_out = steal_pointer(&digest);
    *size_out = size;
    ret = 0;
out:
    pthread_mutex_unlock(&w->lock);
    return ret;
}

static int oa_put_blob(struct image_destination *dst, berth_reader_t *stream,
                       const struct blob_info *info, bool is_config, struct blob_info *out,
                       berth_error_t *err)
{
    struct oa_dst *o = dst->priv;
    char *digest = NULL;
    int64_t size = -1;
    if (put_stream(o->w, stream, info->digest, info->size, &digest, &size, err) < 0)
        return -1;
    blob_info_set_written(out, digest, size, info->media_type);
    return 0;
}

static int oa_put_manifest(struct image_destination *dst, const char *manifest, size_t len,
                           const char *instance, berth_error_t *err)
{
    struct oa_dst *o = dst->priv;
    const char *mt = mf_detect(manifest, len, NULL);
    if (!mt || (strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_OCI_INDEX) != 0))
        return berth_error_make_status(err, ENOTSUP,
                                       "an OCI archive can only hold OCI manifests and indexes");
    berth_reader_t *r = reader_from_buffer(manifest, len, false);
    char *digest = NULL;
    int64_t size;
    int ret = put_stream(o->w, r, NULL, -1, &digest, &size, err);
    reader_close(r);
    if (ret < 0)
        return -1;
    oci_top_manifest_put(&o->top, instance, digest, mt, size);
    return 0;
}

static int oa_commit(struct image_destination *dst, berth_error_t *err)
{
    struct oa_dst *o = dst->priv;
    if (!o->top.digest)
        return berth_error_make_status(err, EINVAL, "commit without a manifest");
    pthread_mutex_lock(&o->w->lock);
    o->w->index = oci_index_add(o->w->index, o->top.media_type, o->top.digest, o->top.size, o->tag);
    pthread_mutex_unlock(&o->w->lock);
    return o->own_writer ? oa_writer_finish(o->w, err) : 0;
}

static void oa_close(struct image_destination *dst)
{
    struct oa_dst *o = dst->priv;
    if (o->own_writer)
        oa_writer_free_impl(o->w);
    free(o->tag);
    oci_top_manifest_clear(&o->top);
    free(o);
    free(dst);
}

static const struct image_destination_ops oa_dst_ops = {
    .supported_manifest_types = oci_supported_manifest_types,
    .desires_compressed_layers = true,
    .accepts_foreign_layers = true,
    .try_reuse_blob = oa_try_reuse,
    .put_blob = oa_put_blob,
    .put_manifest = oa_put_manifest,
    .commit = oa_commit,
    .thread_safe_put_blob = false,
    .close = oa_close,
};

static struct image_destination *oa_dst_new(struct image_reference *ref, struct oa_writer *w,
                                            bool own, const char *tag)
{
    struct oa_dst *o = xzalloc(sizeof(*o));
    o->w = w;
    o->own_writer = own;
    o->tag = tag ? xstrdup(tag) : NULL;
    struct image_destination *dst = xzalloc(sizeof(*dst));
    dst->ops = &oa_dst_ops;
    dst->ref = ref;
    dst->priv = o;
    return dst;
}

static int oa_new_destination(struct image_reference *ref, const struct system_context *sys,
                              struct image_destination **out, berth_error_t *err)
{
    const char *path, *tag;
    int index;
    oci_ref_parts(ref, &path, &tag, &index);
    if (index >= 0)
        return berth_error_make_status(err, EINVAL, "@INDEX cannot be used as a destination");
    struct oa_writer *w;
    if (oa_writer_open_impl(path, &w, err) < 0)
        return -1;
    *out = oa_dst_new(ref, w, true, tag);
    return 0;
}

/* ---- several images in one archive ---- */

int oci_archive_writer_open(const char *path, struct oa_writer **out, berth_error_t *err)
{
    return oa_writer_open_impl(path, out, err);
}

int oci_archive_writer_commit(struct oa_writer *w, berth_error_t *err)
{
    return oa_writer_finish(w, err);
}

void oci_archive_writer_free(struct oa_writer *w)
{
    oa_writer_free_impl(w);
}

static struct image_destination *oaw_dst_new(struct image_reference *ref, void *w, const char *name)
{
    return oa_dst_new(ref, w, false, name);
}

struct image_reference *oci_archive_writer_reference(struct oa_writer *w, const char *name)
{
    return archive_writer_reference(&oci_archive_transport, w->path, w, name, oaw_dst_new);
}

static const struct reference_ops oa_ref_ops = {
    .string = oci_ref_string,
    .new_source = oa_new_source,
    .new_destination = oa_new_destination,
    .free = oci_ref_free,
};

static int oa_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    return oci_ref_new(&oci_archive_transport, &oa_ref_ops, within, out, err);
}

const struct transport_ops oci_archive_transport = {.name = "oci-archive",
                                                    .parse_reference = oa_parse};
