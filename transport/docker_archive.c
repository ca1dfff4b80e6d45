/* docker-archive:PATH[:NAME:TAG|@INDEX] — the `docker save` format: manifest.json
 * ([{Config, RepoTags, Layers}]), repositories, the config as <hex>.json and layers as tar files
 * (legacy <id>/layer.tar directories are read too).
 *
 * Reading indexes the tar in place and presents a Docker schema 2 manifest whose layer digests
 * are the DiffIDs for uncompressed layers (computed for compressed ones).  Writing stores
 * uncompressed layers (the copy engine decompresses; DiffIDs stay the same) streamed into a temp
 * tar that is renamed at commit. */
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/path.h"
#include "common/reference.h"
#include "transport/archive.h"
#include "transport/archive_multi.h"
#include "transport/internal.h"
#include "transport/manifest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DA_MAX_MANIFEST (16u * 1024 * 1024)

extern const struct transport_ops docker_archive_transport;

struct da_ref {
    char *path;
    char *name; /* normalised "domain/path:tag" or NULL */
    int index;
};

static char *da_string(const struct image_reference *ref)
{
    const struct da_ref *r = ref->priv;
    if (r->index >= 0)
        return xasprintf("docker-archive:%s@%d", r->path, r->index);
    if (r->name)
        return xasprintf("docker-archive:%s:%s", r->path, r->name);
    return xasprintf("docker-archive:%s", r->path);
}

static void da_ref_free(struct image_reference *ref)
{
    struct da_ref *r = ref->priv;
    if (r) {
        free(r->path);
        free(r->name);
        free(r);
    }
    free(ref->docker_name);
    free(ref);
}

static int normalise_name(const char *s, char **out, berth_error_t *err)
{
    cleanup_image_ref image_ref_t *ir = NULL;
    if (image_ref_parse_normalized(s, &ir, err) < 0)
        return -1;
    if (ir->digest)
        return berth_error_make_status(err, EINVAL,
                                       "docker-archive names cannot contain a digest: \"%s\"", s);
    *out = image_ref_string(ir);
    return 0;
}

/* ---- source ---- */

struct da_layer {
    char *member;
    struct blob_info info;
};

struct da_src {
    struct tar_index *t;
    char *config_member;
    char *config_digest;
    char *manifest;
    size_t manifest_len;
    struct da_layer *layers;
    size_t n;
};

static int das_get_manifest(struct image_source *src, const char *instance, char **manifest,
                            size_t *len, char **mime, berth_error_t *err)
{
    struct da_src *s = src->priv;
    if (instance)
        return berth_error_make_status(err, ENOENT, "docker-archive images have no instances");
    *manifest = xstrdup(s->manifest);
    *len = s->manifest_len;
    *mime = xstrdup(MT_DOCKER_V2S2);
    return 0;
}

static int das_get_blob(struct image_source *src, const struct blob_info *info,
                        berth_reader_t **out, int64_t *size, berth_error_t *err)
{
    struct da_src *s = src->priv;
    if (digest_equal(info->digest, s->config_digest))
        return tar_index_open_member(s->t, s->config_member, out, size, err);
    for (size_t i = 0; i < s->n; i++)
        if (digest_equal(info->digest, s->layers[i].info.digest))
            return tar_index_open_member(s->t, s->layers[i].member, out, size, err);
    return berth_error_make_status(err, ENOENT, "blob %s is not in the archive", info->digest);
}

static void das_close(struct image_source *src)
{
    struct da_src *s = src->priv;
    tar_index_free(s->t);
    free(s->config_member);
    free(s->config_digest);
    free(s->manifest);
    for (size_t i = 0; i < s->n; i++) {
        free(s->layers[i].member);
        blob_info_clear(&s->layers[i].info);
    }
    free(s->layers);
    free(s);
    free(src);
}

static const struct image_source_ops da_src_ops = {
    .get_manifest = das_get_manifest,
    .get_blob = das_get_blob,
    .thread_safe_get_blob = true,
    .close = das_close,
};

static bool tags_match(const json_t *tags, const char *want)
{
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        const char *t = json_string_value(v);
        cleanup_free char *n = NULL;
        cleanup_error berth_error_t e = NULL;
        if (t && normalise_name(t, &n, &e) == 0 && strcmp(n, want) == 0)
            return true;
    }
    return false;
}

static int member_digest(struct tar_index *t, const char *member, char **out, compression_t *c,
                         berth_error_t *err)
{
    cleanup_reader berth_reader_t *r = NULL;
    if (tar_index_open_member(t, member, &r, NULL, err) < 0)
        return -1;
    unsigned char head[8];
    cleanup_reader berth_reader_t *r2 = NULL;
    if (tar_index_open_member(t, member, &r2, NULL, err) < 0)
        return -1;
    ssize_t hn = reader_read_full(r2, head, sizeof(head), err);
    if (hn < 0)
        return -1;
    *c = compression_detect(head, (size_t)hn);
    if (*c == COMPRESSION_NONE) {
        *out = NULL;
        return 0;
    }
    berth_reader_t *d = reader_digest(r, false, DIGEST_SHA256);
    char buf[65536];
    ssize_t n;
    while ((n = reader_read(d, buf, sizeof(buf), err)) > 0)
        ;
    if (n == 0)
        *out = xstrdup(reader_digest_result(d));
    reader_close(d);
    return n < 0 ? -1 : 0;
}

static int da_new_source(struct image_reference *ref, const struct system_context *sys,
                         struct image_source **out, berth_error_t *err)
{
    struct da_ref *r = ref->priv;
    struct da_src *s = xzalloc(sizeof(*s));
    struct image_source *src = xzalloc(sizeof(*src));
    src->ops = &da_src_ops;
    src->ref = ref;
    src->priv = s;
    cleanup_free char *mbuf = NULL, *cfg = NULL;
    size_t mlen, clen;
    cleanup_json json_t *mj = NULL;
    cleanup_json json_t *cj = NULL;
    struct mf_image m = {0};
    if (tar_index_open(r->path, transport_tmpdir(sys), &s->t, err) < 0)
        goto fail;
    if (tar_index_read_member(s->t, "manifest.json", DA_MAX_MANIFEST, &mbuf, &mlen, err) < 0)
        goto fail;
    if (json_parse_bounded(mbuf, mlen, DA_MAX_MANIFEST, "manifest.json", &mj, err) < 0)
        goto fail;
    if (!json_is_array(mj) || json_array_size(mj) == 0) {
        berth_error_make_status(err, EINVAL, "manifest.json: expected a non-empty array");
        goto fail;
    }
    json_t *e = NULL;
    size_t ne = json_array_size(mj);
    if (r->index >= 0) {
        if ((size_t)r->index >= ne) {
            berth_error_make_status(
                err, ENOENT, "index %d out of range: the archive has %zu images", r->index, ne);
            goto fail;
        }
        e = json_array_get(mj, (size_t)r->index);
    } else if (r->name) {
        for (size_t i = 0; i < ne && !e; i++)
            if (tags_match(json_get_array(json_array_get(mj, i), "RepoTags"), r->name))
                e = json_array_get(mj, i);
        if (!e) {
            berth_error_make_status(err, ENOENT, "no image named \"%s\" in the archive", r->name);
            goto fail;
        }
    } else {
        if (ne != 1) {
            berth_error_make_status(
                err, EINVAL, "the archive has %zu images: name one with :NAME:TAG or @INDEX", ne);
            goto fail;
        }
        e = json_array_get(mj, 0);
    }
    const char *cm;
    if (json_require_string(e, "manifest.json", "Config", &cm, err) < 0)
        goto fail;
    s->config_member = path_clean_relative(cm);
    if (tar_index_read_member(s->t, s->config_member, MF_MAX_CONFIG, &cfg, &clen, err) < 0)
        goto fail;
    s->config_digest = digest_buffer(DIGEST_SHA256, cfg, clen);
    if (json_parse_bounded(cfg, clen, MF_MAX_CONFIG, "config", &cj, err) < 0)
        goto fail;
    json_t *diff_ids = json_get_array(json_get_object(cj, "rootfs"), "diff_ids");
    json_t *layers = json_get_array(e, "Layers");
    if (!layers) {
        berth_error_make_status(err, EINVAL, "manifest.json: Layers missing");
        goto fail;
    }
    s->n = json_array_size(layers);
    if (json_array_size(diff_ids) != s->n) {
        berth_error_make_status(err, EINVAL,
                                "manifest.json lists %zu layers but the config has %zu DiffIDs",
                                s->n, json_array_size(diff_ids));
        s->n = 0;
        goto fail;
    }
    s->layers = xcalloc(s->n + 1, sizeof(*s->layers));
    m.media_type = MT_DOCKER_V2S2;
    m.config.digest = xstrdup(s->config_digest);
    m.config.size = (int64_t)clen;
    m.n_layers = s->n;
    m.layers = xcalloc(s->n + 1, sizeof(*m.layers));
    for (size_t i = 0; i < s->n; i++) {
        const char *lm = json_string_value(json_array_get(layers, i));
        const char *did = json_string_value(json_array_get(diff_ids, i));
        if (!lm || !did || digest_validate(did, err) < 0) {
            if (!*err)
                berth_error_make_status(err, EINVAL, "manifest.json: bad layer %zu", i);
            goto fail;
        }
        struct da_layer *l = &s->layers[i];
        l->member = path_clean_relative(lm);
        int64_t size;
        berth_reader_t *tmp;
        if (tar_index_open_member(s->t, l->member, &tmp, &size, err) < 0)
            goto fail;
        reader_close(tmp);
        char *dg = NULL;
        compression_t c;
        if (member_digest(s->t, l->member, &dg, &c, err) < 0)
            goto fail;
        if (c == COMPRESSION_ZSTD) {
            free(dg);
            berth_error_make_status(err, ENOTSUP, "zstd layers in a docker-archive");
            goto fail;
        }
        l->info.digest = dg ? dg : xstrdup(did);
        l->info.size = size;
        l->info.media_type = xstrdup(c == COMPRESSION_GZIP ? MT_DOCKER_LAYER_GZ : MT_DOCKER_LAYER);
        blob_info_copy(&m.layers[i], &l->info);
    }
    s->manifest = mf_image_serialize(&m, MT_DOCKER_V2S2, &s->manifest_len);
    mf_image_clear(&m);
    if (!ref->docker_name) {
        json_t *tags = json_get_array(e, "RepoTags");
        const char *t0 = json_string_value(json_array_get(tags, 0));
        cleanup_error berth_error_t e2 = NULL;
        if (t0)
            normalise_name(t0, &ref->docker_name, &e2);
    }
    *out = src;
    return 0;
fail:
    mf_image_clear(&m);
    das_close(src);
    return berth_error_wrap(err, "docker-archive \"%s\"", r->path);
}

/* ---- destination ---- */

/* The archive being written; shared by several destinations when saving several images. */
struct da_writer {
    char *path;
    struct tar_writer *tw;
    json_t *entries; /* manifest.json */
    json_t *repos;   /* repositories */
    pthread_mutex_t lock;
};

static void da_writer_free_impl(struct da_writer *w)
{
    if (!w)
        return;
    tar_writer_free(w->tw);
    if (w->entries)
        json_decref(w->entries);
    if (w->repos)
        json_decref(w->repos);
    pthread_mutex_destroy(&w->lock);
    free(w->path);
    free(w);
}

static int da_writer_open_impl(const char *path, struct da_writer **out, berth_error_t *err)
{
    struct da_writer *w = xzalloc(sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    w->path = xstrdup(path);
    w->entries = json_array();
    w->repos = json_object();
    if (tar_writer_open(path, &w->tw, err) < 0) {
        da_writer_free_impl(w);
        return berth_error_wrap(err, "docker-archive \"%s\"", path);
    }
    *out = w;
    return 0;
}

static int da_writer_finish(struct da_writer *w, berth_error_t *err)
{
    char *ms = json_dumps(w->entries, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int ret = tar_writer_add_buffer(w->tw, "manifest.json", ms, strlen(ms), err);
    free(ms);
    if (ret == 0 && json_object_size(w->repos)) {
        char *rs = json_dumps(w->repos, JSON_COMPACT);
        ret = tar_writer_add_buffer(w->tw, "repositories", rs, strlen(rs), err);
        free(rs);
    }
    if (ret == 0)
        ret = tar_writer_commit(w->tw, err);
    return ret;
}

struct da_dst {
    struct da_writer *w;
    bool own_writer; /* a plain docker-archive: destination: commit finishes the archive */
    char *name;
    char *manifest;
    size_t manifest_len;
};

static const char *const da_types[] = {MT_DOCKER_V2S2, NULL};
static const char *const *dad_types(struct image_destination *d)
{
    return da_types;
}

static int dad_try_reuse(struct image_destination *dst, const struct blob_info *info, bool *reused,
                         struct blob_info *out, berth_error_t *err)
{
    struct da_dst *o = dst->priv;
    *reused = false;
    if (!info->digest)
        return 0;
    const char *hex = digest_hex(info->digest);
    if (!hex)
        return 0;
    cleanup_free char *a = xasprintf("%s.tar", hex);
    cleanup_free char *b = xasprintf("%s.json", hex);
    pthread_mutex_lock(&o->w->lock);
    *reused = tar_writer_has(o->w->tw, a) || tar_writer_has(o->w->tw, b);
    pthread_mutex_unlock(&o->w->lock);
    if (*reused && out)
        blob_info_copy(out, info);
    return 0;
}

static int dad_put_blob(struct image_destination *dst, berth_reader_t *stream,
                        const struct blob_info *info, bool is_config, struct blob_info *out,
                        berth_error_t *err)
{
    struct da_dst *o = dst->priv;
    struct da_writer *w = o->w;
    cleanup_free char *digest = NULL;
    int64_t size;
    int ret = -1;
    pthread_mutex_lock(&w->lock);
    if (tar_writer_stream(w->tw, stream, &digest, &size, err) < 0)
        goto out;
    if ((info->size >= 0 && size != info->size) ||
        (info->digest && !digest_equal(info->digest, digest))) {
        berth_error_make_status(err, EIO, "blob %s: content is %s (%lld bytes)",
                                info->digest ? info->digest : "?", digest, (long long)size);
        tar_writer_drop_pending(w->tw);
        goto out;
    }
    char *name = xasprintf("%s.%s", digest_hex(digest), is_config ? "json" : "tar");
    int named = tar_writer_name_pending_once(w->tw, name, err);
    free(name);
    if (named < 0)
        goto out;
    blob_info_set_written(out, steal_pointer(&digest), size, info->media_type);
    ret = 0;
out:
    pthread_mutex_unlock(&w->lock);
    return ret;
}

static int dad_put_manifest(struct image_destination *dst, const char *manifest, size_t len,
                            const char *instance, berth_error_t *err)
{
    struct da_dst *o = dst->priv;
    if (instance)
        return berth_error_make_status(err, ENOTSUP, "a docker-archive cannot hold an index");
    const char *mt = mf_detect(manifest, len, NULL);
    if (!mt || strcmp(mt, MT_DOCKER_V2S2) != 0)
        return berth_error_make_status(err, ENOTSUP,
                                       "a docker-archive can only hold Docker schema 2 images");
    free(o->manifest);
    o->manifest = xstrndup(manifest, len);
    o->manifest_len = len;
    return 0;
}

static int dad_commit(struct image_destination *dst, berth_error_t *err)
{
    struct da_dst *o = dst->priv;
    struct da_writer *w = o->w;
    if (!o->manifest)
        return berth_error_make_status(err, EINVAL, "commit without a manifest");
    struct mf_image m;
    if (mf_image_parse(o->manifest, o->manifest_len, MT_DOCKER_V2S2, &m, err) < 0)
        return -1;
    json_t *e = json_object();
    json_object_set_new(e, "Config", json_sprintf("%s.json", digest_hex(m.config.digest)));
    json_t *tags = json_array();
    const char *name = o->name ? o->name : dst->ref->docker_name;
    if (name) {
        cleanup_image_ref image_ref_t *ir = NULL;
        cleanup_error berth_error_t e2 = NULL;
        if (image_ref_parse_normalized(name, &ir, &e2) == 0 && ir->tag && !ir->digest) {
            cleanup_free char *familiar = image_ref_familiar(ir);
            cleanup_free char *repo = image_ref_familiar_name(ir);
            json_array_append_new(tags, json_string(familiar));
            if (m.n_layers > 0) {
                json_t *t = json_object_get(w->repos, repo);
                if (!t) {
                    t = json_object();
                    json_object_set_new(w->repos, repo, t);
                }
                json_object_set_new(t, ir->tag,
                                    json_string(digest_hex(m.layers[m.n_layers - 1].digest)));
            }
        }
    }
    json_object_set_new(e, "RepoTags", tags);
    json_t *ls = json_array();
    for (size_t i = 0; i < m.n_layers; i++)
        json_array_append_new(ls, json_sprintf("%s.tar", digest_hex(m.layers[i].digest)));
    json_object_set_new(e, "Layers", ls);
    json_array_append_new(w->entries, e);
    mf_image_clear(&m);
    return o->own_writer ? da_writer_finish(w, err) : 0;
}

static void dad_close(struct image_destination *dst)
{
    struct da_dst *o = dst->priv;
    if (o->own_writer)
        da_writer_free_impl(o->w);
    free(o->name);
    free(o->manifest);
    free(o);
    free(dst);
}

static const struct image_destination_ops da_dst_ops = {
    .supported_manifest_types = dad_types,
    .desires_uncompressed_layers = true,
    .accepts_foreign_layers = true,
    .try_reuse_blob = dad_try_reuse,
    .put_blob = dad_put_blob,
    .put_manifest = dad_put_manifest,
    .commit = dad_commit,
    .thread_safe_put_blob = false,
    .close = dad_close,
};

static struct image_destination *dad_new(struct image_reference *ref, struct da_writer *w, bool own,
                                         const char *name)
{
    struct da_dst *o = xzalloc(sizeof(*o));
    o->w = w;
    o->own_writer = own;
    o->name = name ? xstrdup(name) : NULL;
    struct image_destination *dst = xzalloc(sizeof(*dst));
    dst->ops = &da_dst_ops;
    dst->ref = ref;
    dst->priv = o;
    return dst;
}

static int da_new_destination(struct image_reference *ref, const struct system_context *sys,
                              struct image_destination **out, berth_error_t *err)
{
    struct da_ref *r = ref->priv;
    if (r->index >= 0)
        return berth_error_make_status(err, EINVAL, "@INDEX cannot be used as a destination");
    struct da_writer *w = NULL;
    if (da_writer_open_impl(r->path, &w, err) < 0)
        return -1;
    *out = dad_new(ref, w, true, r->name);
    return 0;
}

/* ---- several images in one archive ---- */

int docker_archive_writer_open(const char *path, struct da_writer **out, berth_error_t *err)
{
    return da_writer_open_impl(path, out, err);
}

int docker_archive_writer_commit(struct da_writer *w, berth_error_t *err)
{
    if (json_array_size(w->entries) == 0)
        return berth_error_make_status(err, EINVAL, "docker-archive: no image was added");
    return da_writer_finish(w, err);
}

void docker_archive_writer_free(struct da_writer *w)
{
    da_writer_free_impl(w);
}

static struct image_destination *daw_dst_new(struct image_reference *ref, void *w, const char *name)
{
    return dad_new(ref, w, false, name);
}

struct image_reference *docker_archive_writer_reference(struct da_writer *w, const char *name)
{
    return archive_writer_reference(&docker_archive_transport, w->path, w, name, daw_dst_new);
}

static const struct reference_ops da_ref_ops = {
    .string = da_string,
    .new_source = da_new_source,
    .new_destination = da_new_destination,
    .free = da_ref_free,
};

static int da_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    if (!*within)
        return berth_error_make_status(err, EINVAL, "empty path");
    struct da_ref *r = xzalloc(sizeof(*r));
    r->index = -1;
    cleanup_free char *w = xstrdup(within);
    char *at = strrchr(w, '@');
    if (at && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1) && strlen(at + 1) < 9) {
        r->index = (int)strtol(at + 1, NULL, 10); /* checked above: 1..8 digits */
        *at = 0;
    }
    char *split = NULL;
    if (r->index < 0) {
        /* the first ':' whose prefix is an existing file, else the first ':' */
        for (char *p = strchr(w, ':'); p; p = strchr(p + 1, ':')) {
            *p = 0;
            struct stat st;
            bool exists = stat(w, &st) == 0 && S_ISREG(st.st_mode);
            *p = ':';
            if (exists) {
                split = p;
                break;
            }
        }
        if (!split)
            split = strchr(w, ':');
    }
    if (split) {
        *split = 0;
        if (normalise_name(split + 1, &r->name, err) < 0) {
            free(r);
            return -1;
        }
    }
    if (!*w) {
        free(r->name);
        free(r);
        return berth_error_make_status(err, EINVAL, "empty path");
    }
    r->path = steal_pointer(&w);
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = &docker_archive_transport;
    ref->ops = &da_ref_ops;
    ref->priv = r;
    if (r->name)
        ref->docker_name = xstrdup(r->name);
    *out = ref;
    return 0;
}

const struct transport_ops docker_archive_transport = {.name = "docker-archive",
                                                       .parse_reference = da_parse};
