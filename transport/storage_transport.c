/* containers-storage:[[DRIVER@ROOT+RUNROOT]]NAME|ID — berth's own layer store.
 *
 * Writing: layers are applied in manifest order on their parents (the store's layer ids are
 * chain ids, so a layer already present is reused without reading its blob).  When the driver
 * can stage (overlay), blobs are accepted from several copy threads at once: each is applied
 * into a staged layer as it arrives and the staged layers are committed in manifest order as
 * soon as their parent is; the image record
 * keeps the exact manifest bytes, the config and the manifest digest, and is created at commit —
 * an interrupted copy leaves no image (layers it created are removed again).
 *
 * Reading: the manifest and config are returned as stored.  The store keeps layers uncompressed,
 * so the original compressed blobs cannot be served byte for byte: layer_infos_for_copy offers
 * the uncompressed diffs instead (digest = DiffID) and the copy engine rewrites the manifest;
 * DiffIDs and the config digest stay the same.
 *
 * Signatures: put_signatures keeps the signatures of the manifest being written; commit stores
 * them with the image record as big-data item "signatures-<manifest digest>" (see sig_encode),
 * replacing an earlier set for that digest, and get_signatures returns them.  An image reached by
 * several manifest digests keeps one set per digest; they go when the image is removed. */
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/reference.h"
#include "common/strutil.h"
#include "storage/store.h"
#include "transport/internal.h"
#include "transport/lookaside.h"
#include "transport/manifest.h"
#include "transport/signature.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const struct transport_ops storage_transport;

struct st_ref {
    char *spec;   /* what was written after "containers-storage:" (without [..]) */
    char *name;   /* normalised name for writing, or NULL */
    char *driver; /* from [DRIVER@ROOT+RUNROOT], or NULL */
    char *root;
    char *runroot;
};

static char *st_string(const struct image_reference *ref)
{
    const struct st_ref *r = ref->priv;
    return xasprintf("containers-storage:%s", r->spec);
}

static void st_free(struct image_reference *ref)
{
    struct st_ref *r = ref->priv;
    if (r) {
        free(r->spec);
        free(r->name);
        free(r->driver);
        free(r->root);
        free(r->runroot);
        free(r);
    }
    free(ref->docker_name);
    free(ref);
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* The store keeps one manifest digest per image (image id = config digest).  The same config can
 * arrive under other manifests (another format, another compression, a push then pull): those are
 * kept as big-data items "manifest-sha256:<hex>", and "name-manifest-<sha256 of name>" records
 * which manifest digest the name was last written with, so reading the image by that name or by
 * that digest returns the manifest that was written for it. */
static char *extra_manifest_key(const char *digest)
{
    return xasprintf("manifest-%s", digest);
}

static char *name_manifest_key(const char *name)
{
    cleanup_free char *d = digest_buffer(DIGEST_SHA256, name, strlen(name));
    return xasprintf("name-manifest-%s", digest_hex(d));
}

/* The image that has digest as an additional manifest (see above), or ENOENT. */
static int lookup_by_extra_manifest(storage_store_t *store, const char *digest,
                                    storage_image_t **out, berth_error_t *err)
{
    storage_image_t **all = NULL;
    if (storage_image_list(store, &all, err) < 0)
        return -1;
    cleanup_free char *key = extra_manifest_key(digest);
    int ret = -1;
    for (size_t i = 0; all[i]; i++) {
        if (strv_contains(all[i]->big_data, key)) {
            *out = all[i];
            /* take it out of the list before freeing the rest */
            for (size_t k = i; all[k]; k++)
                all[k] = all[k + 1];
            ret = 0;
            break;
        }
    }
    storage_image_list_free(all);
    if (ret < 0)
        return berth_error_make_status(err, ENOENT, "image %s not known", digest);
    return 0;
}

/* Signatures of manifest `digest` (sha256: manifests written here are hashed with sha256, and
 * "signatures-sha256:<hex>" fits the 128-character limit of big-data keys). */
static char *signatures_key(const char *digest, berth_error_t *err)
{
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(digest, &algo, &hex, err) < 0)
        return NULL;
    if (algo != DIGEST_SHA256) {
        berth_error_make_status(err, ENOTSUP,
                                "containers-storage: signatures of %s: only sha256 "
                                "manifest digests are supported",
                                digest);
        return NULL;
    }
    return xasprintf("signatures-sha256:%s", hex);
}

/* The stored form of a set of signatures: the magic "BERTHSG1", a 4-byte big-endian count, then
 * for each signature a 4-byte big-endian length and the bytes.  Binary signatures need the
 * explicit lengths; the limits are those of lookaside storage. */
#define SIG_MAGIC     "BERTHSG1"
#define SIG_MAGIC_LEN 8
#define SIG_MAX_TOTAL (64u * 1024 * 1024) /* all signatures of one manifest, bytes */
#define SIG_BLOB_MAX  (SIG_MAGIC_LEN + 4 + 4 * (size_t)LOOKASIDE_MAX_SIGS + SIG_MAX_TOTAL)

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static uint32_t get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

static int sig_encode(char *const *sigs, const size_t *lens, size_t n, char **out, size_t *len,
                      berth_error_t *err)
{
    if (n > LOOKASIDE_MAX_SIGS)
        return berth_error_make_status(err, E2BIG, "%zu signatures, at most %u can be stored", n,
                                       LOOKASIDE_MAX_SIGS);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > SIGNATURE_MAX_SIZE)
            return berth_error_make_status(err, EFBIG,
                                           "signature %zu has %zu bytes, at most %u can be stored",
                                           i + 1, lens[i], SIGNATURE_MAX_SIZE);
        if (lens[i] > SIG_MAX_TOTAL - total)
            return berth_error_make_status(err, EFBIG, "the signatures exceed %u bytes in all",
                                           SIG_MAX_TOTAL);
        total += lens[i];
    }
    size_t size = SIG_MAGIC_LEN + 4 + 4 * n + total;
    char *buf = xmalloc(size);
    memcpy(buf, SIG_MAGIC, SIG_MAGIC_LEN);
    put_be32(buf + SIG_MAGIC_LEN, (uint32_t)n);
    char *p = buf + SIG_MAGIC_LEN + 4;
    for (size_t i = 0; i < n; i++) {
        put_be32(p, (uint32_t)lens[i]);
        memcpy(p + 4, sigs[i], lens[i]);
        p += 4 + lens[i];
    }
    *out = buf;
    *len = size;
    return 0;
}

/* Parses what sig_encode wrote; anything else (truncated, trailing bytes, over the limits) is an
 * error, never a shorter list. */
static int sig_decode(const char *buf, size_t len, char ***sigs, size_t **lens, size_t *n,
                      berth_error_t *err)
{
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    if (len < SIG_MAGIC_LEN + 4 || memcmp(buf, SIG_MAGIC, SIG_MAGIC_LEN) != 0)
        return berth_error_make_status(err, EINVAL, "not a stored signature list");
    uint32_t count = get_be32(buf + SIG_MAGIC_LEN);
    if (count > LOOKASIDE_MAX_SIGS)
        return berth_error_make_status(err, EINVAL, "stored signature list: %u signatures", count);
    size_t off = SIG_MAGIC_LEN + 4;
    char **v = xcalloc((size_t)count + 1, sizeof(*v));
    size_t *l = xcalloc((size_t)count + 1, sizeof(*l));
    size_t i = 0;
    for (; i < count; i++) {
        if (len - off < 4)
            break;
        uint32_t sl = get_be32(buf + off);
        off += 4;
        if (sl > SIGNATURE_MAX_SIZE || sl > len - off)
            break;
        v[i] = xmalloc((size_t)sl + 1);
        memcpy(v[i], buf + off, sl);
        v[i][sl] = 0;
        l[i] = sl;
        off += sl;
    }
    if (i < count || off != len) {
        for (size_t k = 0; k < i; k++)
            free(v[k]);
        free(v);
        free(l);
        return berth_error_make_status(err, EINVAL, "stored signature list is corrupt (%s)",
                                       i < count ? "truncated" : "trailing bytes");
    }
    if (count == 0) {
        free(v);
        free(l);
        return 0;
    }
    *sigs = v;
    *lens = l;
    *n = count;
    return 0;
}

static int open_store(const struct st_ref *r, const struct system_context *sys,
                      storage_store_t **store, bool *owned, berth_error_t *err)
{
    if (sys && sys->store && !r->root) {
        *store = (storage_store_t *)sys->store;
        *owned = false;
        return 0;
    }
    struct storage_options o = {
        .root = r->root ? r->root : (sys ? sys->storage_root : NULL),
        .runroot = r->runroot ? r->runroot : (sys ? sys->storage_runroot : NULL),
        .driver = r->driver ? r->driver : (sys ? sys->storage_driver : NULL),
    };
    if (storage_store_open(&o, store, err) < 0)
        return -1;
    *owned = true;
    return 0;
}

/* ---- source ---- */

struct st_src {
    storage_store_t *store;
    bool owned;
    storage_image_t *img;
    char *manifest;
    size_t manifest_len;
    char *manifest_digest; /* of the manifest served (the image's own or an additional one) */
    char *config;
    size_t config_len;
    char *config_digest;
    storage_layer_t **layers; /* base first */
    size_t n;
};

static int ss_get_manifest(struct image_source *src, const char *instance, char **manifest,
                           size_t *len, char **mime, berth_error_t *err)
{
    struct st_src *s = src->priv;
    if (instance && !digest_equal(instance, s->manifest_digest))
        return berth_error_make_status(err, ENOENT, "the stored image has no instance %s",
                                       instance);
    *manifest = xmalloc(s->manifest_len + 1);
    memcpy(*manifest, s->manifest, s->manifest_len);
    (*manifest)[s->manifest_len] = 0;
    *len = s->manifest_len;
    const char *mt = mf_detect(s->manifest, s->manifest_len, NULL);
    *mime = mt ? xstrdup(mt) : NULL;
    return 0;
}

static int ss_layer_infos(struct image_source *src, const char *instance, struct blob_info **out,
                          size_t *n, berth_error_t *err)
{
    struct st_src *s = src->priv;
    *out = NULL;
    *n = 0;
    struct mf_image m;
    if (mf_image_parse(s->manifest, s->manifest_len, NULL, &m, err) < 0)
        return -1;
    if (m.n_layers != s->n) {
        mf_image_clear(&m);
        return berth_error_make_status(err, EINVAL,
                                       "stored image %s: manifest has %zu layers, the store %zu",
                                       s->img->id, m.n_layers, s->n);
    }
    bool need = false;
    for (size_t i = 0; i < m.n_layers; i++)
        if (!digest_equal(m.layers[i].digest, s->layers[i]->diff_digest))
            need = true;
    if (need) {
        struct blob_info *v = xcalloc(m.n_layers + 1, sizeof(*v));
        for (size_t i = 0; i < m.n_layers; i++) {
            v[i].digest = xstrdup(s->layers[i]->diff_digest);
            v[i].size = s->layers[i]->diff_size;
            v[i].media_type = xstrdup(mf_layer_media_type(
                m.media_type, COMPRESSION_NONE, mf_layer_is_foreign(m.layers[i].media_type)));
        }
        *out = v;
        *n = m.n_layers;
    }
    mf_image_clear(&m);
    return 0;
}

static int ss_get_blob(struct image_source *src, const struct blob_info *info, berth_reader_t **out,
                       int64_t *size, berth_error_t *err)
{
    struct st_src *s = src->priv;
    if (digest_equal(info->digest, s->config_digest)) {
        *out = reader_from_buffer(s->config, s->config_len, false);
        *size = (int64_t)s->config_len;
        return 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (digest_equal(info->digest, s->layers[i]->diff_digest)) {
            if (storage_layer_diff(s->store, s->layers[i]->id, NULL, out, err) < 0)
                return -1;
            *size = s->layers[i]->diff_size;
            return 0;
        }
    }
    return berth_error_make_status(err, ENOENT,
                                   "blob %s is not available from the store (layers are kept "
                                   "uncompressed)",
                                   info->digest);
}

static int ss_get_signatures(struct image_source *src, const char *instance, char ***sigs,
                             size_t **lens, size_t *n, berth_error_t *err)
{
    struct st_src *s = src->priv;
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    /* the store serves one manifest per source (see ss_get_manifest) */
    if (instance && !digest_equal(instance, s->manifest_digest))
        return berth_error_make_status(err, ENOENT, "the stored image has no instance %s",
                                       instance);
    cleanup_free char *key = signatures_key(s->manifest_digest, err);
    if (!key)
        return -1;
    if (!strv_contains(s->img->big_data, key))
        return 0;
    cleanup_free char *buf = NULL;
    size_t len;
    if (storage_image_get_big_data(s->store, s->img->id, key, SIG_BLOB_MAX, &buf, &len, err) < 0 ||
        sig_decode(buf, len, sigs, lens, n, err) < 0)
        return berth_error_wrap(err, "signatures of %s in image %.12s", s->manifest_digest,
                                s->img->id);
    return 0;
}

static void ss_close(struct image_source *src)
{
    struct st_src *s = src->priv;
    for (size_t i = 0; i < s->n; i++)
        storage_layer_free(s->layers[i]);
    free(s->layers);
    storage_image_free(s->img);
    free(s->manifest);
    free(s->manifest_digest);
    free(s->config);
    free(s->config_digest);
    if (s->owned)
        storage_store_close(s->store);
    free(s);
    free(src);
}

static const struct image_source_ops st_src_ops = {
    .get_manifest = ss_get_manifest,
    .get_blob = ss_get_blob,
    .get_signatures = ss_get_signatures,
    .layer_infos_for_copy = ss_layer_infos,
    .thread_safe_get_blob = false,
    .close = ss_close,
};

static int st_new_source(struct image_reference *ref, const struct system_context *sys,
                         struct image_source **out, berth_error_t *err)
{
    struct st_ref *r = ref->priv;
    if (!*r->spec)
        return berth_error_make_status(err, EINVAL, "containers-storage: no image named");
    struct st_src *s = xzalloc(sizeof(*s));
    struct image_source *src = xzalloc(sizeof(*src));
    src->ops = &st_src_ops;
    src->ref = ref;
    src->priv = s;
    cleanup_strv char **ids = NULL;
    cleanup_free char *mkey = NULL; /* big-data key of the manifest served, NULL = "manifest" */
    if (open_store(r, sys, &s->store, &s->owned, err) < 0)
        goto fail;
    const char *spec = r->spec[0] == '@' ? r->spec + 1 : r->spec;
    /* a manifest digest given as "@sha256:..." or "NAME@sha256:..." */
    const char *at = strchr(r->spec, '@');
    const char *want = at && strncmp(at + 1, "sha256:", 7) == 0 ? at + 1 : NULL;
    if (storage_image_lookup(s->store, spec, &s->img, err) < 0) {
        cleanup_error berth_error_t e = NULL;
        if (berth_error_status(*err) != ENOENT || !want ||
            lookup_by_extra_manifest(s->store, want, &s->img, &e) < 0)
            goto fail;
        berth_error_release(err);
    }
    bool named_as_given = false;
    for (size_t i = 0; ref->docker_name && s->img->names && s->img->names[i]; i++)
        named_as_given = named_as_given || strcmp(s->img->names[i], ref->docker_name) == 0;
    if (want && !digest_equal(want, s->img->digest)) {
        mkey = extra_manifest_key(want);
        if (!strv_contains(s->img->big_data, mkey)) {
            berth_error_make_status(err, ENOENT, "the stored image has no manifest %s", want);
            goto fail;
        }
        s->manifest_digest = xstrdup(want);
    } else if (!want && named_as_given) {
        cleanup_free char *nkey = name_manifest_key(ref->docker_name);
        cleanup_free char *nd = NULL;
        cleanup_error berth_error_t e = NULL;
        if (strv_contains(s->img->big_data, nkey) &&
            storage_image_get_big_data(s->store, s->img->id, nkey, 128, &nd, NULL, &e) == 0 &&
            digest_validate(nd, &e) == 0 && !digest_equal(nd, s->img->digest)) {
            mkey = extra_manifest_key(nd);
            if (strv_contains(s->img->big_data, mkey))
                s->manifest_digest = steal_pointer(&nd);
            else
                free(steal_pointer(&mkey));
        }
    }
    if (!s->manifest_digest)
        s->manifest_digest = xstrdup(s->img->digest);
    if (storage_image_get_big_data(s->store, s->img->id, mkey ? mkey : "manifest", MF_MAX_MANIFEST,
                                   &s->manifest, &s->manifest_len, err) < 0)
        goto fail;
    if (mkey) {
        /* never serve bytes that don't match the digest they are served for */
        cleanup_free char *dg = digest_buffer(DIGEST_SHA256, s->manifest, s->manifest_len);
        if (!digest_equal(dg, s->manifest_digest)) {
            berth_error_make_status(err, EIO, "stored manifest %s has digest %s",
                                    s->manifest_digest, dg);
            goto fail;
        }
    }
    if (storage_image_get_big_data(s->store, s->img->id, "config", MF_MAX_CONFIG, &s->config,
                                   &s->config_len, err) < 0)
        goto fail;
    s->config_digest = digest_buffer(DIGEST_SHA256, s->config, s->config_len);
    if (storage_image_layers(s->store, s->img->id, &ids, err) < 0)
        goto fail;
    for (size_t i = 0; ids[i]; i++)
        s->n++;
    s->layers = xcalloc(s->n + 1, sizeof(*s->layers));
    for (size_t i = 0; i < s->n; i++)
        if (storage_layer_get(s->store, ids[i], &s->layers[i], err) < 0)
            goto fail;
    if (!named_as_given && s->img->names && s->img->names[0]) {
        free(ref->docker_name);
        ref->docker_name = xstrdup(s->img->names[0]);
    }
    *out = src;
    return 0;
fail:
    ss_close(src);
    return berth_error_wrap(err, "containers-storage:%s", r->spec);
}

/* ---- destination ---- */

struct st_layer_plan {
    char *digest;  /* as the source lists it */
    char *diff_id; /* from the config */
    char *chain;   /* "sha256:..." */
    char *id;      /* store layer id once present */
    bool done, created;
    bool claimed;                   /* a blob was taken for it (reused, staged or stored) */
    storage_staged_layer_t *staged; /* applied, waiting for its parent to be committed */
};

struct st_dst {
    storage_store_t *store;
    bool owned;
    char *name;
    struct st_layer_plan *plan;
    size_t n;
    char *config;
    size_t config_len;
    char *manifest;
    size_t manifest_len;
    /* from put_signatures: the encoded set (sig_encode) and the manifest digest it is for */
    char *sigs;
    size_t sigs_len;
    char *sigs_digest;
    bool committed;
    /* staging mode: put_blob runs in several threads; mu guards the plan and the commits */
    bool staging;
    pthread_mutex_t mu;
};

static void plan_clear(struct st_dst *d)
{
    for (size_t i = 0; i < d->n; i++) {
        storage_staged_layer_discard(d->store, d->plan[i].staged);
        free(d->plan[i].digest);
        free(d->plan[i].diff_id);
        free(d->plan[i].chain);
        free(d->plan[i].id);
    }
    free(d->plan);
    d->plan = NULL;
    d->n = 0;
}

static int sd_prepare(struct image_destination *dst, const struct blob_info *layers,
                      size_t n_layers, const char *config, size_t config_len, berth_error_t *err)
{
    struct st_dst *d = dst->priv;
    plan_clear(d);
    cleanup_json json_t *cj = NULL;
    if (json_parse_bounded(config, config_len, MF_MAX_CONFIG, "config", &cj, err) < 0)
        return -1;
    json_t *diff_ids = json_get_array(json_get_object(cj, "rootfs"), "diff_ids");
    if (json_array_size(diff_ids) != n_layers)
        return berth_error_make_status(err, EINVAL, "the config lists %zu DiffIDs for %zu layers",
                                       json_array_size(diff_ids), n_layers);
    d->plan = xcalloc(n_layers + 1, sizeof(*d->plan));
    d->n = n_layers;
    const char *parent = NULL;
    for (size_t i = 0; i < n_layers; i++) {
        const char *did = json_string_value(json_array_get(diff_ids, i));
        if (!did || digest_validate(did, err) < 0)
            return berth_error_wrap(err, "config: rootfs.diff_ids[%zu]", i);
        d->plan[i].digest = layers[i].digest ? xstrdup(layers[i].digest) : NULL;
        d->plan[i].diff_id = xstrdup(did);
        d->plan[i].chain = storage_chain_id(parent, did);
        parent = d->plan[i].chain;
    }
    free(d->config);
    d->config = xmalloc(config_len + 1);
    memcpy(d->config, config, config_len);
    d->config_len = config_len;
    return 0;
}

/* The next layer of the plan this blob is for: the first not claimed with this digest, else (a
 * transformed blob without digest) the first not claimed. */
static ssize_t plan_find(struct st_dst *d, const char *digest)
{
    for (size_t i = 0; i < d->n; i++)
        if (!d->plan[i].claimed && digest && d->plan[i].digest &&
            digest_equal(d->plan[i].digest, digest))
            return (ssize_t)i;
    if (!digest)
        for (size_t i = 0; i < d->n; i++)
            if (!d->plan[i].claimed)
                return (ssize_t)i;
    return -1;
}

/* Staging mode, a blob without digest: the first unclaimed layer with this DiffID. */
static ssize_t plan_find_diff(struct st_dst *d, const char *diff_id)
{
    for (size_t i = 0; i < d->n; i++)
        if (!d->plan[i].claimed && digest_equal(d->plan[i].diff_id, diff_id))
            return (ssize_t)i;
    return -1;
}

/* A layer this copy reused from the store (not created by it) can be removed by a concurrent rmi
 * before the image record holds it; the next layer's commit or the image record then fails with
 * ENOENT.  The blobs were consumed already, so this copy cannot repair it: report it as EAGAIN so
 * the caller can run the whole copy again (pull does, once). */
static int reused_vanished(struct st_dst *d, berth_error_t *err)
{
    bool reused = false;
    for (size_t i = 0; i < d->n; i++)
        reused = reused || (d->plan[i].done && !d->plan[i].created);
    if (!reused || !*err || berth_error_status(*err) != ENOENT)
        return -1;
    berth_error_wrap(err, "a layer reused from the store was removed meanwhile (concurrent rmi?), "
                          "retry");
    (*err)->status = EAGAIN;
    return -1;
}

/* Staging mode: commits the staged layers whose parents are committed, in order.  Caller holds
 * d->mu. */
static int commit_ready(struct st_dst *d, berth_error_t *err)
{
    for (size_t i = 0; i < d->n; i++) {
        struct st_layer_plan *p = &d->plan[i];
        if (p->done)
            continue;
        if (!p->staged)
            return 0;
        storage_layer_t *l = NULL;
        int r = storage_layer_commit_staged(d->store, p->staged, i > 0 ? d->plan[i - 1].id : NULL,
                                            &l, err);
        if (r < 0)
            return reused_vanished(d, err);
        storage_staged_layer_discard(d->store, p->staged);
        p->staged = NULL;
        p->id = xstrdup(l->id);
        p->done = true;
        p->created = r == 0; /* 1: another process stored it first: not ours to remove */
        storage_layer_free(l);
    }
    return 0;
}

static int sd_try_reuse(struct image_destination *dst, const struct blob_info *info, bool *reused,
                        struct blob_info *out, berth_error_t *err)
{
    struct st_dst *d = dst->priv;
    *reused = false;
    pthread_mutex_lock(&d->mu);
    ssize_t i = plan_find(d, info->digest);
    struct st_layer_plan *p = i >= 0 ? &d->plan[i] : NULL;
    /* serially, parents first: reuse only on top of what is already there (in staging mode a
     * stored chain id implies its parents are stored too) */
    if (p && !d->staging && i > 0 && !d->plan[i - 1].done)
        p = NULL;
    storage_layer_t *l = NULL;
    cleanup_error berth_error_t e = NULL;
    if (!p || storage_layer_get(d->store, digest_hex(p->chain), &l, &e) < 0) {
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    p->id = xstrdup(l->id);
    p->done = true;
    p->claimed = true;
    pthread_mutex_unlock(&d->mu);
    storage_layer_free(l);
    *reused = true;
    if (out)
        blob_info_copy(out, info);
    return 0;
}

/* The engine's verifying reader reports a bad digest at EOF: make sure it was reached. */
static int check_consumed(berth_reader_t *stream, berth_error_t *err)
{
    char c;
    ssize_t more = reader_read(stream, &c, 1, err);
    if (more == 0)
        return 0;
    return more < 0 ? -1 : berth_error_make_status(err, EIO, "layer stream not fully consumed");
}

/* Staging mode (called from several threads): apply the blob into a staged layer without
 * waiting for its parent, then claim its place in the plan and commit what is ready. */
static int put_layer_staged(struct st_dst *d, berth_reader_t *stream, const struct blob_info *info,
                            struct blob_info *out, berth_error_t *err)
{
    cleanup_free char *expected = NULL;
    bool compressed_known = false;
    pthread_mutex_lock(&d->mu);
    ssize_t i = plan_find(d, info->digest);
    if (i >= 0 && info->digest) {
        expected = xstrdup(d->plan[i].diff_id);
        compressed_known = !digest_equal(info->digest, expected);
    }
    pthread_mutex_unlock(&d->mu);
    if (i < 0)
        return berth_error_make_status(err, EINVAL, "blob %s is not a layer of this image",
                                       info->digest ? info->digest : "(unknown)");
    struct storage_layer_options lo = {
        .compressed_digest = compressed_known ? info->digest : NULL,
        .compressed_size = compressed_known ? info->size : -1,
        .expected_diff_digest = expected,
    };
    storage_staged_layer_t *sl = NULL;
    if (storage_layer_stage_from_tar(d->store, &lo, stream, &sl, err) < 0)
        return -1;
    if (check_consumed(stream, err) < 0) {
        storage_staged_layer_discard(d->store, sl);
        return -1;
    }
    pthread_mutex_lock(&d->mu);
    const char *diff = storage_staged_layer_diff_digest(sl);
    i = info->digest ? plan_find(d, info->digest) : plan_find_diff(d, diff);
    if (i < 0 || !digest_equal(d->plan[i].diff_id, diff)) {
        pthread_mutex_unlock(&d->mu);
        storage_staged_layer_discard(d->store, sl);
        return berth_error_make_status(err, EINVAL, "layer with DiffID %s is not expected here",
                                       diff);
    }
    struct st_layer_plan *p = &d->plan[i];
    p->claimed = true;
    p->staged = sl;
    int r = commit_ready(d, err);
    if (r == 0 && out) {
        memset(out, 0, sizeof(*out));
        out->digest = info->digest ? xstrdup(info->digest) : xstrdup(p->diff_id);
        out->size = info->size;
        out->media_type = info->media_type ? xstrdup(info->media_type) : NULL;
    }
    pthread_mutex_unlock(&d->mu);
    return r;
}

static int sd_put_blob(struct image_destination *dst, berth_reader_t *stream,
                       const struct blob_info *info, bool is_config, struct blob_info *out,
                       berth_error_t *err)
{
    struct st_dst *d = dst->priv;
    if (is_config) {
        cleanup_free char *buf = NULL;
        size_t len;
        if (reader_read_all(stream, MF_MAX_CONFIG, &buf, &len, err) < 0)
            return -1;
        cleanup_free char *dg = digest_buffer(DIGEST_SHA256, buf, len);
        if (info->digest && !digest_equal(dg, info->digest))
            return berth_error_make_status(err, EIO, "config digest mismatch: expected %s, got %s",
                                           info->digest, dg);
        free(d->config);
        d->config = steal_pointer(&buf);
        d->config_len = len;
        if (out) {
            memset(out, 0, sizeof(*out));
            out->digest = steal_pointer(&dg);
            out->size = (int64_t)len;
        }
        return 0;
    }
    if (!d->plan)
        return berth_error_make_status(err, EINVAL, "containers-storage: layer before config");
    if (d->staging)
        return put_layer_staged(d, stream, info, out, err);
    ssize_t i = plan_find(d, info->digest);
    if (i < 0)
        return berth_error_make_status(err, EINVAL, "blob %s is not a layer of this image",
                                       info->digest ? info->digest : "(unknown)");
    if (i > 0 && !d->plan[i - 1].done)
        return berth_error_make_status(err, EINVAL, "containers-storage: layers out of order");
    struct st_layer_plan *p = &d->plan[i];
    bool compressed_known = info->digest && !digest_equal(info->digest, p->diff_id);
    struct storage_layer_options lo = {
        .parent = i > 0 ? d->plan[i - 1].id : NULL,
        .compressed_digest = compressed_known ? info->digest : NULL,
        .compressed_size = compressed_known ? info->size : -1,
        .expected_diff_digest = p->diff_id,
    };
    storage_layer_t *l = NULL;
    if (storage_layer_create_from_tar(d->store, &lo, stream, &l, err) < 0)
        return reused_vanished(d, err);
    if (check_consumed(stream, err) < 0) {
        cleanup_error berth_error_t e = NULL;
        IGNORE_RESULT(storage_layer_remove(d->store, l->id, &e));
        storage_layer_free(l);
        return -1;
    }
    p->id = xstrdup(l->id);
    p->done = true;
    p->claimed = true;
    p->created = true;
    storage_layer_free(l);
    if (out) {
        memset(out, 0, sizeof(*out));
        out->digest = info->digest ? xstrdup(info->digest) : xstrdup(p->diff_id);
        out->size = info->size;
        out->media_type = info->media_type ? xstrdup(info->media_type) : NULL;
    }
    return 0;
}

static int sd_put_manifest(struct image_destination *dst, const char *manifest, size_t len,
                           const char *instance, berth_error_t *err)
{
    struct st_dst *d = dst->priv;
    if (instance)
        return berth_error_make_status(err, ENOTSUP,
                                       "containers-storage keeps one image per copy: copy "
                                       "without --all");
    free(d->manifest);
    d->manifest = xmalloc(len + 1);
    memcpy(d->manifest, manifest, len);
    d->manifest_len = len;
    return 0;
}

static int sd_put_signatures(struct image_destination *dst, const char *instance, char *const *sigs,
                             const size_t *lens, size_t n, berth_error_t *err)
{
    struct st_dst *d = dst->priv;
    if (instance)
        return berth_error_make_status(err, ENOTSUP,
                                       "containers-storage keeps one image per copy: copy "
                                       "without --all");
    if (!d->manifest)
        return berth_error_make_status(err, EINVAL, "signatures before the manifest");
    free(d->sigs);
    free(d->sigs_digest);
    d->sigs = NULL;
    d->sigs_len = 0;
    d->sigs_digest = NULL;
    /* none: an earlier set for this manifest stays (it still signs the same digest) */
    if (n == 0)
        return 0;
    cleanup_free char *digest = digest_buffer(DIGEST_SHA256, d->manifest, d->manifest_len);
    if (sig_encode(sigs, lens, n, &d->sigs, &d->sigs_len, err) < 0)
        return berth_error_wrap(err, "containers-storage: signatures of %s", digest);
    d->sigs_digest = steal_pointer(&digest);
    return 0;
}

static int sd_commit(struct image_destination *dst, berth_error_t *err)
{
    struct st_dst *d = dst->priv;
    if (!d->manifest || !d->config)
        return berth_error_make_status(err, EINVAL, "commit without a manifest");
    pthread_mutex_lock(&d->mu);
    int cr = commit_ready(d, err);
    pthread_mutex_unlock(&d->mu);
    if (cr < 0)
        return -1;
    for (size_t i = 0; i < d->n; i++)
        if (!d->plan[i].done)
            return berth_error_make_status(err, EINVAL, "layer %zu was not stored", i);
    const char *names[2] = {d->name, NULL};
    cleanup_free char *digest = digest_buffer(DIGEST_SHA256, d->manifest, d->manifest_len);
    cleanup_free char *cfg_digest = digest_buffer(DIGEST_SHA256, d->config, d->config_len);
    cleanup_free char *sig_key = NULL;
    if (d->sigs) {
        if (!digest_equal(d->sigs_digest, digest))
            return berth_error_make_status(err, EINVAL,
                                           "signatures are for manifest %s, the manifest written "
                                           "is %s",
                                           d->sigs_digest, digest);
        sig_key = signatures_key(digest, err);
        if (!sig_key)
            return -1;
    }
    /* An image with this config may be stored already under another manifest: then the name is
     * added only once the manifest is recorded, so a failure leaves no new name behind. */
    cleanup_storage_image storage_image_t *old = NULL;
    cleanup_error berth_error_t e = NULL;
    bool existed = storage_image_lookup(d->store, digest_hex(cfg_digest), &old, &e) == 0 &&
                   strcmp(old->id, digest_hex(cfg_digest)) == 0;
    struct storage_image_options o = {
        .names = d->name && !existed ? names : NULL,
        .top_layer = d->n ? d->plan[d->n - 1].id : NULL,
        .manifest = d->manifest,
        .manifest_len = d->manifest_len,
        .config = d->config,
        .config_len = d->config_len,
        .digest = digest,
    };
    /* a new image record gets its signatures atomically with it (nothing stays if it fails) */
    struct storage_big_data sig_item = {.key = sig_key, .data = d->sigs, .len = d->sigs_len};
    if (sig_key) {
        o.extra = &sig_item;
        o.n_extra = 1;
    }
    cleanup_storage_image storage_image_t *img = NULL;
    if (storage_image_create(d->store, &o, &img, err) < 0)
        return reused_vanished(d, err);
    if (!digest_equal(img->digest, digest)) {
        cleanup_free char *key = extra_manifest_key(digest);
        if (storage_image_set_big_data(d->store, img->id, key, d->manifest, d->manifest_len, err) <
            0)
            return berth_error_wrap(err, "record manifest %s of image %.12s", digest, img->id);
    }
    /* an image that was there already (extra items are only written with a new record): replace
     * the set for this digest, before the name moves here */
    if (sig_key && (existed || !strv_contains(img->big_data, sig_key)) &&
        storage_image_set_big_data(d->store, img->id, sig_key, d->sigs, d->sigs_len, err) < 0)
        return berth_error_wrap(err, "store the signatures of %s in image %.12s", digest, img->id);
    if (d->name) {
        cleanup_free char *nkey = name_manifest_key(d->name);
        if ((!digest_equal(img->digest, digest) || strv_contains(img->big_data, nkey)) &&
            storage_image_set_big_data(d->store, img->id, nkey, digest, strlen(digest), err) < 0)
            return berth_error_wrap(err, "record manifest of \"%s\"", d->name);
        if (existed && storage_image_add_name(d->store, img->id, d->name, err) < 0)
            return -1;
    }
    d->committed = true;
    return 0;
}

static void sd_close(struct image_destination *dst)
{
    struct st_dst *d = dst->priv;
    for (size_t i = 0; i < d->n; i++) {
        storage_staged_layer_discard(d->store, d->plan[i].staged);
        d->plan[i].staged = NULL;
    }
    if (!d->committed && d->store) {
        for (size_t i = d->n; i > 0; i--) {
            if (d->plan[i - 1].created && d->plan[i - 1].id) {
                cleanup_error berth_error_t e = NULL;
                IGNORE_RESULT(storage_layer_remove(d->store, d->plan[i - 1].id, &e));
            }
        }
    }
    plan_clear(d);
    free(d->config);
    free(d->manifest);
    free(d->sigs);
    free(d->sigs_digest);
    free(d->name);
    if (d->owned)
        storage_store_close(d->store);
    pthread_mutex_destroy(&d->mu);
    free(d);
    free(dst);
}

static const struct image_destination_ops st_dst_ops = {
    .supported_manifest_types = NULL,
    .accepts_foreign_layers = true,
    .prepare_image = sd_prepare,
    .try_reuse_blob = sd_try_reuse,
    .put_blob = sd_put_blob,
    .put_manifest = sd_put_manifest,
    .put_signatures = sd_put_signatures,
    .commit = sd_commit,
    .thread_safe_put_blob = false,
    .close = sd_close,
};

/* The same with layers staged in parallel (drivers that can stage). */
static const struct image_destination_ops st_dst_ops_staging = {
    .supported_manifest_types = NULL,
    .accepts_foreign_layers = true,
    .prepare_image = sd_prepare,
    .try_reuse_blob = sd_try_reuse,
    .put_blob = sd_put_blob,
    .put_manifest = sd_put_manifest,
    .put_signatures = sd_put_signatures,
    .commit = sd_commit,
    .thread_safe_put_blob = true,
    .close = sd_close,
};

static int st_new_destination(struct image_reference *ref, const struct system_context *sys,
                              struct image_destination **out, berth_error_t *err)
{
    struct st_ref *r = ref->priv;
    struct st_dst *d = xzalloc(sizeof(*d));
    struct image_destination *dst = xzalloc(sizeof(*dst));
    dst->ops = &st_dst_ops;
    dst->ref = ref;
    dst->priv = d;
    pthread_mutex_init(&d->mu, NULL);
    if (r->name)
        d->name = xstrdup(r->name);
    else if (ref->docker_name && !strchr(ref->docker_name, '@'))
        d->name = xstrdup(ref->docker_name);
    if (open_store(r, sys, &d->store, &d->owned, err) < 0) {
        sd_close(dst);
        return berth_error_wrap(err, "containers-storage");
    }
    d->staging = storage_store_can_stage(d->store);
    if (d->staging)
        dst->ops = &st_dst_ops_staging;
    *out = dst;
    return 0;
}

static int st_delete(struct image_reference *ref, const struct system_context *sys,
                     berth_error_t *err)
{
    struct st_ref *r = ref->priv;
    storage_store_t *store;
    bool owned;
    if (open_store(r, sys, &store, &owned, err) < 0)
        return -1;
    storage_image_t *img = NULL;
    int ret = storage_image_lookup(store, r->spec, &img, err);
    if (ret == 0)
        ret = storage_image_remove(store, img->id, false, err);
    storage_image_free(img);
    if (owned)
        storage_store_close(store);
    return ret;
}

static const struct reference_ops st_ops = {
    .string = st_string,
    .new_source = st_new_source,
    .new_destination = st_new_destination,
    .delete_image = st_delete,
    .free = st_free,
};

static int st_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    struct st_ref *r = xzalloc(sizeof(*r));
    const char *rest = within;
    if (within[0] == '[') {
        const char *close = strchr(within, ']');
        if (!close) {
            free(r);
            return berth_error_make_status(err, EINVAL, "missing ']' in store specification");
        }
        cleanup_free char *spec = xstrndup(within + 1, (size_t)(close - within - 1));
        char *colon = strchr(spec, ':'); /* ":options" are ignored */
        if (colon)
            *colon = 0;
        char *root = spec;
        char *at = strchr(spec, '@');
        if (at) {
            *at = 0;
            r->driver = xstrdup(spec);
            root = at + 1;
        }
        char *plus = strchr(root, '+');
        if (plus) {
            *plus = 0;
            r->runroot = xstrdup(plus + 1);
        }
        if (*root)
            r->root = xstrdup(root);
        rest = close + 1;
    }
    r->spec = xstrdup(rest);
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = &storage_transport;
    ref->ops = &st_ops;
    ref->priv = r;
    /* a name (not an id) is normalised for writing: "busybox" -> docker.io/library/busybox:latest,
     * as podman does for pulled images */
    if (*rest && !is_hex64(rest) && rest[0] != '@') {
        cleanup_image_ref image_ref_t *ir = NULL;
        cleanup_error berth_error_t e = NULL;
        if (image_ref_parse_normalized(rest, &ir, &e) == 0) {
            if (!ir->digest)
                r->name = image_ref_string(ir);
            ref->docker_name = image_ref_string(ir);
        }
    }
    *out = ref;
    return 0;
}

const struct transport_ops storage_transport = {.name = "containers-storage",
                                                .parse_reference = st_parse};
