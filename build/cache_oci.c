/* --cache-from / --cache-to: exchanging build cache entries through an OCI image layout.
 *
 * Layer ids in the store are chain ids, so they mean the same thing in every store: a cache entry
 * (step key -> layer id) can move between machines with the layers it names.  The layout holds,
 * for every distinct layer an entry names, one image manifest whose layers are the whole chain
 * from the base (uncompressed tar blobs, reproduced byte for byte from the store) and whose config
 * is a minimal image config with those diff_ids.  The entries themselves (including those of
 * metadata-only steps, which name no layer) are the JSON object in the index annotation
 * "org.berth.build-cache": {"<key>": "<layer id>" | null}.  Writing merges with what the layout
 * already holds; reading imports every layer that is missing, parent first, then the entries.
 *
 * A registry (docker://REPO:TAG) gets the same content: the blobs, every manifest by digest, and
 * the index (with the annotation) as the manifest of TAG.  Pushing replaces what the tag held. */
#include "build/build_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "common/log.h"
#include "transport/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define CACHE_ANNOTATION "org.berth.build-cache"
#define INDEX_MAX        (16u << 20)

static const char *layout_dir(const char *ref)
{
    if (strncmp(ref, "oci:", 4) == 0)
        ref += 4;
    return ref;
}

/* "DIR" of "oci:DIR[:tag]": the tag is ignored (the cache is the whole layout). */
static char *layout_path(const char *ref)
{
    char *p = xstrdup(layout_dir(ref));
    char *c = strrchr(p, ':');
    if (c && !strchr(c, '/'))
        *c = 0;
    return p;
}

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static char *blob_path(const char *dir, const char *digest)
{
    const char *hex = digest_hex(digest);
    return xasprintf("%s/blobs/sha256/%s", dir, hex ? hex : "invalid");
}

static int put_bytes(const char *dir, const void *data, size_t len, char **digest,
                     berth_error_t *err)
{
    *digest = digest_buffer(DIGEST_SHA256, data, len);
    cleanup_free char *p = blob_path(dir, *digest);
    if (fs_exists(p))
        return 0;
    return fs_write_file_atomic(p, data, len, 0644, err);
}

static int put_layer(storage_store_t *s, const char *dir, const storage_layer_t *l,
                     berth_error_t *err)
{
    if (digest_validate(l->diff_digest, err) < 0)
        return -1;
    cleanup_free char *p = blob_path(dir, l->diff_digest);
    if (fs_exists(p))
        return 0;
    cleanup_reader berth_reader_t *tar = NULL;
    if (storage_layer_diff(s, l->id, NULL, &tar, err) < 0)
        return -1;
    struct fs_atomic_file f cleanup_atomic_file = {.fd = -1};
    if (fs_atomic_open(p, 0644, &f, err) < 0)
        return -1;
    cleanup_reader berth_reader_t *v = reader_verify(tar, false, l->diff_digest, l->diff_size);
    if (reader_copy_to_fd(v, f.fd, err) < 0)
        return berth_error_wrap(err, "export layer %s", l->id);
    return fs_atomic_commit(&f, err);
}

static int load_index(const char *dir, json_t **out, berth_error_t *err)
{
    cleanup_free char *p = fs_join(dir, "index.json");
    if (!fs_exists(p)) {
        *out = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", MEDIA_TYPE_OCI_INDEX,
                         "manifests");
        return 0;
    }
    if (json_load_file_bounded(p, INDEX_MAX, out, err) < 0)
        return -1;
    if (!json_is_array(json_object_get(*out, "manifests")))
        return berth_error_make_status(err, EINVAL, "%s: not an OCI index", p);
    return 0;
}

static json_t *entries_of(json_t *index)
{
    const char *s =
        json_string_value(json_object_get(json_object_get(index, "annotations"), CACHE_ANNOTATION));
    json_t *j = NULL;
    berth_error_t e = NULL;
    if (s && json_parse_bounded(s, strlen(s), INDEX_MAX, "cache entries", &j, &e) == 0 &&
        json_is_object(j))
        return j;
    berth_error_release(&e);
    json_decref(j);
    return json_object();
}

static int export_layout(storage_store_t *s, const char *cache_dir, const char *dir,
                         char *const *keys, berth_error_t *err)
{
    cleanup_free char *blobs = xasprintf("%s/blobs/sha256", dir);
    if (fs_mkdir_p(blobs, 0755, err) < 0)
        return -1;
    cleanup_json json_t *index = NULL;
    if (load_index(dir, &index, err) < 0)
        return -1;
    cleanup_json json_t *entries = entries_of(index);
    json_t *mans = json_object_get(index, "manifests");
    for (char *const *k = keys; k && *k; k++) {
        bool found = false;
        cleanup_free char *layer = NULL;
        if (bld_cache_lookup(cache_dir, *k, &found, &layer, err) < 0)
            return -1;
        if (!found)
            continue;
        json_object_set_new(entries, *k, layer ? json_string(layer) : json_null());
        if (!layer)
            continue;
        /* one manifest per layer named (skip when present) */
        bool have = false;
        size_t i;
        json_t *m;
        json_array_foreach(mans, i, m)
        {
            const char *l = json_string_value(
                json_object_get(json_object_get(m, "annotations"), "org.berth.cache.layer"));
            if (l && strcmp(l, layer) == 0)
                have = true;
        }
        if (have)
            continue;
        storage_layer_t **chain = NULL;
        size_t n = 0;
        if (storage_layer_chain(s, layer, &chain, &n, err) < 0)
            return berth_error_wrap(err, "layer %s", layer);
        int rc = 0;
        json_t *ids = json_array(), *layers = json_array();
        for (size_t c = 0; c < n && rc == 0; c++) {
            rc = put_layer(s, dir, chain[c], err);
            json_array_append_new(ids, json_string(chain[c]->diff_digest));
            json_array_append_new(
                layers, json_pack("{s:s,s:s,s:I}", "mediaType", MEDIA_TYPE_OCI_LAYER_TAR, "digest",
                                  chain[c]->diff_digest, "size", (json_int_t)chain[c]->diff_size));
        }
        for (size_t c = 0; c < n; c++)
            storage_layer_free(chain[c]);
        free(chain);
        if (rc < 0) {
            json_decref(ids);
            json_decref(layers);
            return -1;
        }
        json_t *cfg = bld_config_scratch();
        json_object_set_new(json_object_get(cfg, "rootfs"), "diff_ids", ids);
        size_t cl = 0;
        cleanup_free char *cs = json_dump_canonical(cfg, &cl);
        json_decref(cfg);
        cleanup_free char *cd = NULL;
        if (put_bytes(dir, cs, cl, &cd, err) < 0) {
            json_decref(layers);
            return -1;
        }
        json_t *man =
            json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:o}", "schemaVersion", 2, "mediaType",
                      MEDIA_TYPE_OCI_MANIFEST, "config", "mediaType", MEDIA_TYPE_OCI_CONFIG,
                      "digest", cd, "size", (json_int_t)cl, "layers", layers);
        size_t ml = 0;
        cleanup_free char *ms = json_dump_canonical(man, &ml);
        json_decref(man);
        cleanup_free char *md = NULL;
        if (put_bytes(dir, ms, ml, &md, err) < 0)
            return -1;
        json_array_append_new(mans, json_pack("{s:s,s:s,s:I,s:{s:s}}", "mediaType",
                                              MEDIA_TYPE_OCI_MANIFEST, "digest", md, "size",
                                              (json_int_t)ml, "annotations",
                                              "org.berth.cache.layer", layer));
    }
    cleanup_free char *es = json_dump_canonical(entries, NULL);
    json_t *ann = json_object_get(index, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(index, "annotations", ann);
    }
    json_object_set_new(ann, CACHE_ANNOTATION, json_string(es));
    cleanup_free char *lp = fs_join(dir, "oci-layout");
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    if (fs_write_file_atomic(lp, layout, strlen(layout), 0644, err) < 0)
        return -1;
    cleanup_free char *ip = fs_join(dir, "index.json");
    return json_write_file_atomic(ip, index, 0644, err);
}

/* Where cache manifests and blobs are read from: a layout directory or a registry source. */
struct csrc {
    const char *dir;
    struct image_source *src;
};

static int fetch_manifest(struct csrc *c, const char *digest, char **buf, size_t *len,
                          berth_error_t *err)
{
    if (digest_validate(digest, err) < 0)
        return -1;
    if (c->dir) {
        cleanup_free char *p = blob_path(c->dir, digest);
        if (fs_read_file(p, IMAGE_MANIFEST_MAX_SIZE, buf, len, err) < 0)
            return -1;
    } else {
        cleanup_free char *mime = NULL;
        if (c->src->ops->get_manifest(c->src, digest, buf, len, &mime, err) < 0)
            return -1;
    }
    cleanup_free char *got = digest_buffer(DIGEST_SHA256, *buf, *len);
    if (strcmp(got, digest) != 0) {
        free(*buf);
        *buf = NULL;
        return berth_error_make_status(err, EINVAL, "manifest %s: content has digest %s", digest,
                                       got);
    }
    return 0;
}

static int fetch_blob(struct csrc *c, const image_descriptor_t *d, berth_reader_t **out,
                      berth_error_t *err)
{
    berth_reader_t *r = NULL;
    if (c->dir) {
        cleanup_free char *p = blob_path(c->dir, d->digest);
        if (reader_open_file(p, &r, err) < 0)
            return -1;
    } else {
        struct blob_info bi = {.digest = d->digest, .size = d->size, .media_type = d->media_type};
        int64_t size = -1;
        if (c->src->ops->get_blob(c->src, &bi, &r, &size, err) < 0)
            return -1;
    }
    /* never trust a supplied digest: verified while it streams */
    *out = reader_verify(r, true, d->digest, d->size);
    return 0;
}

static int import_from(storage_store_t *s, const char *cache_dir, struct csrc *c, json_t *index,
                       berth_error_t *err)
{
    cleanup_json json_t *entries = entries_of(index);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(index, "manifests"), i, d)
    {
        const char *md = json_string_value(json_object_get(d, "digest"));
        if (!json_object_get(json_object_get(d, "annotations"), "org.berth.cache.layer"))
            continue;
        cleanup_free char *buf = NULL;
        size_t len = 0;
        if (!md)
            continue;
        if (fetch_manifest(c, md, &buf, &len, err) < 0)
            return -1;
        cleanup_image_manifest image_manifest_t *m = NULL;
        if (image_manifest_parse(buf, len, &m, err) < 0)
            return -1;
        cleanup_free char *parent = NULL;
        for (size_t k = 0; k < m->n_layers; k++) {
            const char *diff = m->layers[k].digest;
            cleanup_free char *pchain = parent ? xasprintf("sha256:%s", parent) : NULL;
            cleanup_free char *chain = storage_chain_id(pchain, diff);
            const char *id = digest_hex(chain);
            storage_layer_t *have = NULL;
            berth_error_t e2 = NULL;
            if (id && storage_layer_get(s, id, &have, &e2) == 0) {
                storage_layer_free(have);
                free(parent);
                parent = xstrdup(id);
                continue;
            }
            berth_error_release(&e2);
            cleanup_reader berth_reader_t *r = NULL;
            if (fetch_blob(c, &m->layers[k], &r, err) < 0)
                return -1;
            struct storage_layer_options lo = {
                .parent = parent, .compressed_size = -1, .expected_diff_digest = diff};
            cleanup_storage_layer storage_layer_t *l = NULL;
            if (storage_layer_create_from_tar(s, &lo, r, &l, err) < 0)
                return berth_error_wrap(err, "layer %s", diff);
            free(parent);
            parent = xstrdup(l->id);
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(entries, key, v)
    {
        const char *layer = json_string_value(v);
        if (!hex64(key) || (layer && !hex64(layer)))
            continue;
        if (bld_cache_store(cache_dir, key, layer, err) < 0)
            return -1;
    }
    return 0;
}

static bool is_registry(const char *ref)
{
    return strncmp(ref, "docker://", 9) == 0;
}

int bld_cache_import(storage_store_t *s, const char *cache_dir, const char *ref,
                     const struct system_context *sys, berth_error_t *err)
{
    if (!is_registry(ref)) {
        cleanup_free char *dir = layout_path(ref);
        cleanup_free char *ip = fs_join(dir, "index.json");
        if (!fs_exists(ip)) {
            log_warn("--cache-from %s: no layout there yet", ref);
            return 0;
        }
        cleanup_json json_t *index = NULL;
        if (load_index(dir, &index, err) < 0)
            return berth_error_wrap(err, "--cache-from %s", ref);
        struct csrc c = {.dir = dir};
        if (import_from(s, cache_dir, &c, index, err) < 0)
            return berth_error_wrap(err, "--cache-from %s", ref);
        return 0;
    }
    cleanup_image_reference struct image_reference *ir = NULL;
    if (transport_parse_reference(ref, &ir, err) < 0)
        return berth_error_wrap(err, "--cache-from");
    struct image_source *src = NULL;
    if (ir->ops->new_source(ir, sys, &src, err) < 0)
        return berth_error_wrap(err, "--cache-from %s", ref);
    int rc = -1;
    cleanup_free char *buf = NULL, *mime = NULL;
    size_t len = 0;
    json_t *index = NULL;
    berth_error_t e2 = NULL;
    if (src->ops->get_manifest(src, NULL, &buf, &len, &mime, &e2) < 0) {
        /* nothing cached there yet is not an error */
        log_warn("--cache-from %s: %s", ref, berth_error_msg(e2));
        berth_error_release(&e2);
        rc = 0;
    } else if (json_parse_bounded(buf, len, IMAGE_MANIFEST_MAX_SIZE, "cache index", &index, err) ==
               0) {
        struct csrc c = {.src = src};
        rc = import_from(s, cache_dir, &c, index, err);
    }
    json_decref(index);
    image_source_close(src);
    if (rc < 0)
        berth_error_wrap(err, "--cache-from %s", ref);
    return rc;
}

/* Pushes the layout dir (made by export_layout) to a registry: blobs, each manifest by digest,
 * then the index (with the entries annotation) under the reference's tag. */
static int push_layout(const char *dir, const char *ref, const struct system_context *sys,
                       berth_error_t *err)
{
    cleanup_json json_t *index = NULL;
    if (load_index(dir, &index, err) < 0)
        return -1;
    cleanup_image_reference struct image_reference *ir = NULL;
    if (transport_parse_reference(ref, &ir, err) < 0)
        return -1;
    struct image_destination *dst = NULL;
    if (ir->ops->new_destination(ir, sys, &dst, err) < 0)
        return -1;
    int rc = 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(index, "manifests"), i, d)
    {
        const char *md = json_string_value(json_object_get(d, "digest"));
        struct csrc c = {.dir = dir};
        cleanup_free char *buf = NULL;
        size_t len = 0;
        cleanup_image_manifest image_manifest_t *m = NULL;
        if (!md || fetch_manifest(&c, md, &buf, &len, err) < 0 ||
            image_manifest_parse(buf, len, &m, err) < 0) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k <= m->n_layers && rc == 0; k++) {
            const image_descriptor_t *bd = k < m->n_layers ? &m->layers[k] : &m->config;
            struct blob_info bi = {
                .digest = bd->digest, .size = bd->size, .media_type = bd->media_type};
            struct blob_info got = {.size = -1};
            bool reused = false;
            if (dst->ops->try_reuse_blob &&
                dst->ops->try_reuse_blob(dst, &bi, &reused, &got, err) < 0) {
                rc = -1;
                break;
            }
            blob_info_clear(&got);
            if (reused)
                continue;
            cleanup_reader berth_reader_t *r = NULL;
            if (fetch_blob(&c, bd, &r, err) < 0) {
                rc = -1;
                break;
            }
            rc = dst->ops->put_blob(dst, r, &bi, k == m->n_layers, &got, err);
            blob_info_clear(&got);
        }
        if (rc == 0)
            rc = dst->ops->put_manifest(dst, buf, len, md, err);
        if (rc < 0)
            break;
    }
    if (rc == 0) {
        size_t len = 0;
        cleanup_free char *ib = json_dump_canonical(index, &len);
        rc = dst->ops->put_manifest(dst, ib, len, NULL, err);
    }
    if (rc == 0)
        rc = dst->ops->commit(dst, err);
    image_destination_close(dst);
    return rc;
}

int bld_cache_export(storage_store_t *s, const char *cache_dir, const char *ref, char *const *keys,
                     const struct system_context *sys, berth_error_t *err)
{
    if (!is_registry(ref)) {
        cleanup_free char *dir = layout_path(ref);
        if (export_layout(s, cache_dir, dir, keys, err) < 0)
            return berth_error_wrap(err, "--cache-to %s", ref);
        return 0;
    }
    cleanup_free char *tmp = xasprintf("%s/tmp/cacheto-%d", cache_dir, (int)getpid());
    int rc = export_layout(s, cache_dir, tmp, keys, err);
    if (rc == 0)
        rc = push_layout(tmp, ref, sys, err);
    berth_error_t e2 = NULL;
    if (fs_rm_rf(tmp, &e2) < 0)
        berth_error_release(&e2);
    if (rc < 0)
        return berth_error_wrap(err, "--cache-to %s", ref);
    return 0;
}
