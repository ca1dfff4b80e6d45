/* The copy engine (see copy.h). */
#include "transport/copy.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"
#include "common/progress.h"
#include "transport/manifest.h"
#include "transport/registry_session.h"
#include "transport/policy.h"
#include "transport/signature.h"
#include "transport/sigstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* one transfer per layer of a typical image: as skopeo's default, and on loopback six streams
 * beat four by ~10% (tests/bench/bench_registry.sh) */
#define DEFAULT_PARALLEL 6
#define DRAIN_BUF        65536

void copy_result_clear(struct copy_result *r)
{
    free(r->manifest_digest);
    r->manifest_digest = NULL;
}

/* ---- readers used while copying ---- */

/* Counts bytes into a progress bar. */
struct count_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    progress_bar_t *bar;
};

static ssize_t count_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct count_reader *c = (struct count_reader *)r;
    ssize_t n = reader_read(c->lower, buf, len, err);
    if (n > 0 && c->bar)
        progress_bar_add(c->bar, (uint64_t)n);
    return n;
}

static void count_close(berth_reader_t *r)
{
    struct count_reader *c = (struct count_reader *)r;
    reader_close(c->lower);
    free(c);
}

static const char *count_verified(berth_reader_t *r, int64_t *size)
{
    return reader_verified_digest(((struct count_reader *)r)->lower, size);
}

static const struct berth_reader_ops count_ops = {
    .read = count_read, .close = count_close, .verified_digest = count_verified};

static berth_reader_t *counting_reader(berth_reader_t *lower, progress_bar_t *bar)
{
    struct count_reader *c = xzalloc(sizeof(*c));
    c->base.ops = &count_ops;
    c->lower = lower;
    c->bar = bar;
    return &c->base;
}

/* When the transformed stream ends, reads the source stream (not owned) to its end so that its
 * verification runs before the destination keeps anything: a decompressor may stop before the
 * last bytes of its input. */
struct guard_reader {
    berth_reader_t base;
    berth_reader_t *top;   /* owned */
    berth_reader_t *check; /* not owned, below top */
};

static ssize_t guard_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct guard_reader *g = (struct guard_reader *)r;
    ssize_t n = reader_read(g->top, buf, len, err);
    if (n != 0)
        return n;
    char tmp[4096];
    for (;;) {
        ssize_t m = reader_read(g->check, tmp, sizeof(tmp), err);
        if (m < 0)
            return m;
        if (m == 0)
            return 0;
    }
}

static void guard_close(berth_reader_t *r)
{
    struct guard_reader *g = (struct guard_reader *)r;
    reader_close(g->top);
    free(g);
}

static const struct berth_reader_ops guard_ops = {.read = guard_read, .close = guard_close};

static berth_reader_t *guarding_reader(berth_reader_t *top, berth_reader_t *check)
{
    struct guard_reader *g = xzalloc(sizeof(*g));
    g->base.ops = &guard_ops;
    g->top = top;
    g->check = check;
    return &g->base;
}

/* ---- blob jobs ---- */

struct blob_job {
    const struct blob_info *src;
    bool is_config;
    bool transform;
    compression_t to;
    const char *new_mt;
    const char *diff_id; /* expected uncompressed digest, when known */
    const void *buf;     /* config: already read and verified */
    size_t buf_len;
    struct blob_info out;
};

struct copy_ctx {
    struct image_source *src;
    struct image_destination *dst;
    const struct copy_options *o;
    progress_t *prog;
    struct blob_job *jobs;
    size_t n_jobs;
    atomic_size_t next;
    atomic_bool failed;
    pthread_mutex_t lock;
    berth_error_t first_err;
    int level;
};

static char *short_label(const char *kind, const char *digest)
{
    return xasprintf("Copying %s %s", kind, digest);
}

static int copy_blob(struct copy_ctx *c, struct blob_job *j, berth_error_t *err)
{
    const struct blob_info *si = j->src;
    cleanup_free char *label = short_label(j->is_config ? "config" : "blob", si->digest);
    if (!j->transform && c->dst->ops->try_reuse_blob) {
        bool reused = false;
        struct blob_info got = {0};
        got.size = -1;
        if (c->dst->ops->try_reuse_blob(c->dst, si, &reused, &got, err) < 0)
            return berth_error_wrap(err, "check blob %s", si->digest);
        if (reused) {
            blob_info_clear(&got);
            blob_info_copy(&j->out, si);
            if (j->new_mt) {
                free(j->out.media_type);
                j->out.media_type = xstrdup(j->new_mt);
            }
            progress_message(c->prog, "%s skipped: already exists", label);
            return 0;
        }
        blob_info_clear(&got);
    }
    berth_reader_t *raw = NULL;
    int64_t size = -1;
    if (j->buf) {
        raw = reader_from_buffer(j->buf, j->buf_len, false);
        size = (int64_t)j->buf_len;
    } else if (c->src->ops->get_blob(c->src, si, &raw, &size, err) < 0) {
        return berth_error_wrap(err, "reading blob %s", si->digest);
    }
    if (si->size >= 0 && size >= 0 && size != si->size) {
        reader_close(raw);
        return berth_error_make_status(err, EIO, "blob %s: size is %lld, the manifest says %lld",
                                       si->digest, (long long)size, (long long)si->size);
    }
    progress_bar_t *bar = progress_bar_start(c->prog, label, si->size);
    berth_reader_t *verified = reader_verify(raw, true, si->digest, si->size);
    berth_reader_t *counted = counting_reader(verified, bar);
    berth_reader_t *top = counted;
    berth_reader_t *diff_digest = NULL;
    struct blob_info pinfo = {0};
    if (j->transform) {
        berth_reader_t *dec = NULL;
        if (reader_decompress(counted, true, NULL, &dec, err) < 0) {
            reader_close(counted);
            progress_bar_done(bar, "failed");
            return berth_error_wrap(err, "blob %s", si->digest);
        }
        diff_digest = reader_digest(dec, true, DIGEST_SHA256);
        top = diff_digest;
        if (j->to != COMPRESSION_NONE)
            top = reader_compress(top, true, j->to, c->level);
        top = guarding_reader(top, counted);
        pinfo.size = -1;
        pinfo.media_type = (char *)j->new_mt;
    } else {
        pinfo = *si;
    }
    struct blob_info out = {0};
    out.size = -1;
    int ret = c->dst->ops->put_blob(c->dst, top, &pinfo, j->is_config, &out, err);
    if (ret == 0 && diff_digest && j->diff_id &&
        !digest_equal(reader_digest_result(diff_digest), j->diff_id)) {
        ret = berth_error_make_status(err, EIO,
                                      "layer %s: uncompressed digest %s does not match the "
                                      "config's DiffID %s",
                                      si->digest, reader_digest_result(diff_digest), j->diff_id);
    }
    reader_close(top);
    progress_bar_done(bar, ret < 0 ? "failed" : "done");
    if (ret < 0) {
        blob_info_clear(&out);
        return berth_error_wrap(err, "copying blob %s", si->digest);
    }
    j->out.digest = out.digest ? xstrdup(out.digest) : xstrdup(si->digest);
    j->out.size = out.size >= 0 ? out.size : si->size;
    j->out.media_type = xstrdup(j->new_mt ? j->new_mt : (si->media_type ? si->media_type : ""));
    if (!j->transform && si->urls) {
        struct blob_info tmp;
        blob_info_copy(&tmp, si);
        j->out.urls = tmp.urls;
        tmp.urls = NULL;
        blob_info_clear(&tmp);
    }
    blob_info_clear(&out);
    return 0;
}

static void *worker(void *arg)
{
    struct copy_ctx *c = arg;
    for (;;) {
        if (atomic_load(&c->failed))
            break;
        size_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->n_jobs)
            break;
        berth_error_t e = NULL;
        if (copy_blob(c, &c->jobs[i], &e) < 0) {
            pthread_mutex_lock(&c->lock);
            if (!c->first_err)
                c->first_err = e;
            else
                berth_error_release(&e);
            pthread_mutex_unlock(&c->lock);
            atomic_store(&c->failed, true);
            break;
        }
    }
    return NULL;
}

static int run_jobs(struct copy_ctx *c, bool parallel, berth_error_t *err)
{
    atomic_store(&c->next, 0);
    atomic_store(&c->failed, false);
    c->first_err = NULL;
    size_t nt = 1;
    if (parallel) {
        nt = c->o->max_parallel > 0 ? (size_t)c->o->max_parallel : DEFAULT_PARALLEL;
        if (nt > c->n_jobs)
            nt = c->n_jobs;
    }
    if (nt <= 1) {
        worker(c);
    } else {
        pthread_t th[16];
        if (nt > 16)
            nt = 16;
        size_t started = 0;
        for (; started < nt; started++)
            if (pthread_create(&th[started], NULL, worker, c) != 0)
                break;
        if (started == 0)
            worker(c);
        for (size_t i = 0; i < started; i++)
            pthread_join(th[i], NULL);
    }
    if (atomic_load(&c->failed)) {
        *err = c->first_err;
        c->first_err = NULL;
        return -1;
    }
    return 0;
}

/* ---- manifest decisions ---- */

static bool type_in(const char *const *list, const char *mt)
{
    if (!list)
        return true;
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], mt) == 0)
            return true;
    return false;
}

static const char *format_mt(copy_format_t f, bool index)
{
    switch (f) {
    case COPY_FORMAT_OCI:
        return index ? MT_OCI_INDEX : MT_OCI_MANIFEST;
    case COPY_FORMAT_V2S2:
        return index ? MT_DOCKER_LIST : MT_DOCKER_V2S2;
    default:
        return NULL;
    }
}

static int choose_type(struct image_destination *dst, const struct copy_options *o,
                       const char *src_mt, bool index, const char **out, berth_error_t *err)
{
    const char *const *sup =
        dst->ops->supported_manifest_types ? dst->ops->supported_manifest_types(dst) : NULL;
    const char *want = format_mt(o->format, index);
    if (want) {
        if (!type_in(sup, want))
            return berth_error_make_status(err, ENOTSUP,
                                           "the destination does not accept %s manifests", want);
        *out = want;
        return 0;
    }
    if (type_in(sup, src_mt)) {
        *out = src_mt;
        return 0;
    }
    for (size_t i = 0; sup[i]; i++)
        if (index ? mf_is_index(sup[i]) : mf_is_image(sup[i])) {
            *out = sup[i];
            return 0;
        }
    return berth_error_make_status(err, ENOTSUP, "the destination cannot store a %s", src_mt);
}

static int read_config(struct image_source *src, const struct blob_info *ci, char **out,
                       size_t *len, berth_error_t *err)
{
    berth_reader_t *raw = NULL;
    int64_t size;
    if (src->ops->get_blob(src, ci, &raw, &size, err) < 0)
        return berth_error_wrap(err, "reading config %s", ci->digest);
    berth_reader_t *v = reader_verify(raw, true, ci->digest, ci->size);
    int r = reader_read_all(v, MF_MAX_CONFIG, out, len, err);
    reader_close(v);
    if (r < 0)
        return berth_error_wrap(err, "reading config %s", ci->digest);
    return 0;
}

static int get_sigs(struct image_source *src, const char *instance, char ***sigs, size_t **lens,
                    size_t *n, berth_error_t *err)
{
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    if (!src->ops->get_signatures)
        return 0;
    return src->ops->get_signatures(src, instance, sigs, lens, n, err);
}

static void free_sigs(char **sigs, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(sigs[i]);
    free(sigs);
    free(lens);
}

/* Whether a layer media type is one of the image-spec / Docker layer types (a tar stream,
 * maybe compressed); NULL (Docker schema 2 leaves no doubt) counts as one. */
static bool image_layer_type(const char *mt)
{
    return !mt || strncmp(mt, "application/vnd.oci.image.layer.", 32) == 0 ||
           strncmp(mt, "application/vnd.docker.image.rootfs.", 36) == 0;
}

static bool signing(const struct copy_options *o)
{
    return o->sign_by || o->sign_by_sigstore;
}

/* --sign-by / --sign-by-sigstore-private-key: appends signatures of the manifest about to be
 * written as the top level. */
static int sign_manifest(struct copy_ctx *c, const char *buf, size_t len, char ***sigs,
                         size_t **lens, size_t *n, berth_error_t *err)
{
    const struct copy_options *o = c->o;
    const char *ident = o->sign_identity ? o->sign_identity : c->dst->ref->docker_name;
    for (int kind = 0; kind < 2; kind++) {
        char *sig = NULL;
        size_t sl;
        if (kind == 0 && o->sign_by) {
            progress_message(c->prog, "Signing manifest using simple signing");
            if (signature_sign(buf, len, ident, o->sign_by, o->sign_passphrase_file, &sig, &sl,
                               err) < 0)
                return berth_error_wrap(err, "signing");
        } else if (kind == 1 && o->sign_by_sigstore) {
            progress_message(c->prog, "Signing manifest using a sigstore signature");
            if (sigstore_sign(buf, len, ident, o->sign_by_sigstore, o->sign_passphrase_file, &sig,
                              &sl, err) < 0)
                return berth_error_wrap(err, "signing");
        } else {
            continue;
        }
        *sigs = xreallocarray(*sigs, *n + 1, sizeof(char *));
        *lens = xreallocarray(*lens, *n + 1, sizeof(size_t));
        (*sigs)[*n] = sig;
        (*lens)[*n] = sl;
        (*n)++;
    }
    return 0;
}

/* Copies one image manifest (src_instance: NULL for the top level, else the instance digest)
 * and writes its manifest (as top level when write_instance is false).  *out_digest, *out_size and
 * *out_mt describe the manifest written. */
static int copy_single(struct copy_ctx *c, const char *src_instance, const char *buf, size_t len,
                       const char *src_mt, bool write_instance, char **out_digest,
                       int64_t *out_size, const char **out_mt, berth_error_t *err)
{
    const struct copy_options *o = c->o;
    struct image_destination *dst = c->dst;
    if (src_mt && (strcmp(src_mt, MT_DOCKER_V2S1) == 0 || strcmp(src_mt, MT_DOCKER_V2S1_SIG) == 0))
        return berth_error_make_status(err, ENOTSUP, "Docker schema 1 manifests are not supported");
    struct mf_image m;
    if (mf_image_parse(buf, len, src_mt, &m, err) < 0)
        return -1;
    int ret = -1;
    char *cfg = NULL;
    size_t cfg_len = 0;
    struct blob_job *jobs = NULL;
    char **sigs = NULL;
    size_t *sig_lens = NULL, n_sigs = 0;
    cleanup_json json_t *cfgj = NULL;
    /* declared before the first goto: cleanup variables must not be jumped over */
    cleanup_free char *newbuf = NULL, *digest = NULL;
    const char *want;
    if (choose_type(dst, o, m.media_type, false, &want, err) < 0)
        goto out;

    if (read_config(c->src, &m.config, &cfg, &cfg_len, err) < 0)
        goto out;
    json_t *diff_ids = NULL;
    {
        berth_error_t e = NULL;
        if (json_parse_bounded(cfg, cfg_len, MF_MAX_CONFIG, "config", &cfgj, &e) == 0)
            diff_ids = json_get_array(json_get_object(cfgj, "rootfs"), "diff_ids");
        berth_error_release(&e);
    }

    bool changed = strcmp(want, m.media_type) != 0;
    if (c->src->ops->layer_infos_for_copy) {
        struct blob_info *subst = NULL;
        size_t n_subst = 0;
        if (c->src->ops->layer_infos_for_copy(c->src, src_instance, &subst, &n_subst, err) < 0)
            goto out;
        if (subst && n_subst != m.n_layers) {
            for (size_t i = 0; i < n_subst; i++)
                blob_info_clear(&subst[i]);
            free(subst);
            berth_error_make_status(err, EINVAL, "source offers %zu layers for %zu", n_subst,
                                    m.n_layers);
            goto out;
        }
        for (size_t i = 0; subst && i < m.n_layers; i++) {
            /* a destination that has the original blob keeps the original descriptor */
            bool reused = false;
            if (dst->ops->try_reuse_blob && !dst->ops->prepare_image) {
                berth_error_t e = NULL;
                if (dst->ops->try_reuse_blob(dst, &m.layers[i], &reused, NULL, &e) < 0)
                    reused = false;
                berth_error_release(&e);
            }
            if (!reused && !digest_equal(m.layers[i].digest, subst[i].digest)) {
                blob_info_clear(&m.layers[i]);
                m.layers[i] = subst[i];
                memset(&subst[i], 0, sizeof(subst[i]));
                changed = true;
            }
            blob_info_clear(&subst[i]);
        }
        free(subst);
    }
    if (dst->ops->prepare_image &&
        dst->ops->prepare_image(dst, m.layers, m.n_layers, cfg, cfg_len, err) < 0)
        goto out;

    jobs = xcalloc(m.n_layers + 1, sizeof(*jobs));
    bool desires_unc = dst->ops->desires_uncompressed_layers;
    for (size_t i = 0; i < m.n_layers; i++) {
        struct blob_job *j = &jobs[i];
        const struct blob_info *l = &m.layers[i];
        j->src = l;
        compression_t from = mf_layer_compression(l->media_type);
        bool foreign = mf_layer_is_foreign(l->media_type);
        compression_t to = from;
        if (!desires_unc && !image_layer_type(l->media_type)) {
            /* an artifact's blob (a cosign signature payload, ...): not a tar stream, so
             * neither compressed nor converted; copied as it is, as containers/image does */
            if (strcmp(want, MT_OCI_MANIFEST) != 0 || strcmp(m.media_type, MT_OCI_MANIFEST) != 0) {
                berth_error_make_status(err, ENOTSUP,
                                        "layer %s has media type \"%s\", which cannot be "
                                        "stored in a %s manifest",
                                        l->digest, l->media_type, want);
                goto out;
            }
            j->transform = false;
            j->to = from;
            j->new_mt = l->media_type;
            continue;
        }
        if (desires_unc)
            to = COMPRESSION_NONE;
        else if (o->set_compression)
            to = o->compression;
        else if (from == COMPRESSION_NONE && dst->ops->desires_compressed_layers)
            to = COMPRESSION_GZIP;
        if (strcmp(want, MT_DOCKER_V2S2) == 0 && to == COMPRESSION_ZSTD)
            to = COMPRESSION_GZIP;
        const char *nmt = mf_layer_media_type(want, to, foreign);
        if (!nmt) {
            berth_error_make_status(err, ENOTSUP, "layer %s cannot be stored as %s", l->digest,
                                    want);
            goto out;
        }
        j->transform = to != from;
        j->to = to;
        j->new_mt = nmt;
        if (i < json_array_size(diff_ids))
            j->diff_id = json_string_value(json_array_get(diff_ids, i));
        if (j->transform || !l->media_type || strcmp(nmt, l->media_type) != 0)
            changed = true;
        if (foreign && !dst->ops->accepts_foreign_layers) {
            berth_error_make_status(err, ENOTSUP,
                                    "layer %s is non-distributable and the destination does not "
                                    "accept such layers",
                                    l->digest);
            goto out;
        }
    }
    if (changed && o->preserve_digests) {
        berth_error_make_status(err, EPERM,
                                "copying this image requires changing its manifest (to %s%s), "
                                "which --preserve-digests forbids",
                                want, strcmp(want, m.media_type) ? "" : " with other layer types");
        goto out;
    }
    if (get_sigs(c->src, src_instance, &sigs, &sig_lens, &n_sigs, err) < 0)
        goto out;
    if (changed && n_sigs > 0 && !o->remove_signatures) {
        berth_error_make_status(err, EPERM,
                                "copying this image would change its manifest: would invalidate "
                                "signatures (use --remove-signatures)");
        goto out;
    }
    if (o->remove_signatures) {
        free_sigs(sigs, sig_lens, n_sigs);
        sigs = NULL;
        sig_lens = NULL;
        n_sigs = 0;
    }

    c->jobs = jobs;
    c->n_jobs = m.n_layers;
    bool par = c->src->ops->thread_safe_get_blob && dst->ops->thread_safe_put_blob;
    if (run_jobs(c, par, err) < 0)
        goto out;

    struct blob_job cj = {.src = &m.config, .is_config = true, .buf = cfg, .buf_len = cfg_len};
    c->jobs = &cj;
    c->n_jobs = 1;
    int cr = run_jobs(c, false, err);
    blob_info_clear(&cj.out);
    if (cr < 0)
        goto out;

    const char *wbuf = buf;
    size_t wlen = len;
    if (changed) {
        for (size_t i = 0; i < m.n_layers; i++) {
            blob_info_clear(&m.layers[i]);
            m.layers[i] = jobs[i].out;
            memset(&jobs[i].out, 0, sizeof(jobs[i].out));
        }
        newbuf = mf_image_serialize(&m, want, &wlen);
        wbuf = newbuf;
    }
    digest = digest_buffer(DIGEST_SHA256, wbuf, wlen);
    if (signing(o) && !write_instance &&
        sign_manifest(c, wbuf, wlen, &sigs, &sig_lens, &n_sigs, err) < 0)
        goto out;
    if (n_sigs > 0 && dst->ops->check_signatures &&
        dst->ops->check_signatures(dst, sigs, sig_lens, n_sigs, err) < 0)
        goto out;
    progress_message(c->prog, "Writing manifest to image destination");
    if (dst->ops->put_manifest(dst, wbuf, wlen, write_instance ? digest : NULL, err) < 0) {
        berth_error_wrap(err, "writing manifest");
        goto out;
    }
    if (n_sigs > 0) {
        if (!dst->ops->put_signatures) {
            if (!o->remove_signatures) {
                berth_error_make_status(err, ENOTSUP,
                                        "the destination does not support signatures; use "
                                        "--remove-signatures");
                goto out;
            }
        } else {
            progress_message(c->prog, "Storing signatures");
            if (dst->ops->put_signatures(dst, write_instance ? digest : NULL, sigs, sig_lens,
                                         n_sigs, err) < 0)
                goto out;
        }
    }
    *out_digest = steal_pointer(&digest);
    *out_size = (int64_t)wlen;
    *out_mt = want;
    ret = 0;
out:
    if (jobs)
        for (size_t i = 0; i < m.n_layers; i++)
            blob_info_clear(&jobs[i].out);
    free(jobs);
    free(cfg);
    free_sigs(sigs, sig_lens, n_sigs);
    mf_image_clear(&m);
    return ret;
}

static int copy_index_all(struct copy_ctx *c, const char *buf, size_t len, const char *src_mt,
                          char **out_digest, berth_error_t *err)
{
    struct image_destination *dst = c->dst;
    struct mf_index ix;
    if (mf_index_parse(buf, len, src_mt, &ix, err) < 0)
        return -1;
    int ret = -1;
    cleanup_free char *nb = NULL;
    char **sigs = NULL;
    size_t *sig_lens = NULL, n_sigs = 0;
    const char *want;
    if (choose_type(dst, c->o, ix.media_type, true, &want, err) < 0)
        goto out;
    bool changed = strcmp(want, ix.media_type) != 0;
    progress_message(c->prog, "Copying %zu images generated from %zu images in list", ix.n, ix.n);
    for (size_t i = 0; i < ix.n; i++) {
        struct mf_instance *in = &ix.inst[i];
        progress_message(c->prog, "Copying image %s (%zu/%zu)", in->desc.digest, i + 1, ix.n);
        cleanup_free char *mb = NULL, *mmt = NULL;
        size_t ml;
        if (c->src->ops->get_manifest(c->src, in->desc.digest, &mb, &ml, &mmt, err) < 0)
            goto out;
        cleanup_free char *got = digest_buffer(DIGEST_SHA256, mb, ml);
        if (!digest_equal(got, in->desc.digest)) {
            berth_error_make_status(err, EIO, "manifest %s: digest mismatch", in->desc.digest);
            goto out;
        }
        const char *imt = mf_detect(mb, ml, mmt);
        if (mf_is_index(imt)) {
            berth_error_make_status(err, ENOTSUP, "nested indexes are not supported");
            goto out;
        }
        char *nd = NULL;
        int64_t ns;
        const char *nmt;
        /* instance types follow the index type */
        copy_format_t saved = c->o->format;
        struct copy_options o2 = *c->o;
        if (strcmp(want, MT_OCI_INDEX) == 0)
            o2.format = COPY_FORMAT_OCI;
        else if (strcmp(want, MT_DOCKER_LIST) == 0)
            o2.format = COPY_FORMAT_V2S2;
        (void)saved;
        const struct copy_options *keep = c->o;
        c->o = &o2;
        int r = copy_single(c, in->desc.digest, mb, ml, imt, true, &nd, &ns, &nmt, err);
        c->o = keep;
        if (r < 0)
            goto out;
        if (!digest_equal(nd, in->desc.digest)) {
            changed = true;
            free(in->desc.digest);
            in->desc.digest = nd;
            in->desc.size = ns;
            free(in->desc.media_type);
            in->desc.media_type = xstrdup(nmt);
        } else {
            free(nd);
        }
    }
    if (changed && c->o->preserve_digests) {
        berth_error_make_status(err, EPERM,
                                "copying this index requires changing it, which "
                                "--preserve-digests forbids");
        goto out;
    }
    const char *wbuf = buf;
    size_t wlen = len;
    if (changed) {
        nb = mf_index_serialize(&ix, want, &wlen);
        wbuf = nb;
    }
    /* the index's own signatures travel like an image's */
    if (!c->o->remove_signatures && get_sigs(c->src, NULL, &sigs, &sig_lens, &n_sigs, err) < 0)
        goto out;
    if (changed && n_sigs > 0) {
        berth_error_make_status(err, EPERM,
                                "copying this index would change it: would invalidate "
                                "signatures (use --remove-signatures)");
        goto out;
    }
    if ((signing(c->o) || n_sigs > 0) && !dst->ops->put_signatures) {
        berth_error_make_status(err, ENOTSUP, "the destination does not support signatures%s",
                                signing(c->o) ? "" : "; use --remove-signatures");
        goto out;
    }
    if (signing(c->o) && sign_manifest(c, wbuf, wlen, &sigs, &sig_lens, &n_sigs, err) < 0)
        goto out;
    if (n_sigs > 0 && dst->ops->check_signatures &&
        dst->ops->check_signatures(dst, sigs, sig_lens, n_sigs, err) < 0)
        goto out;
    progress_message(c->prog, "Writing manifest list to image destination");
    if (dst->ops->put_manifest(dst, wbuf, wlen, NULL, err) < 0)
        goto out;
    if (n_sigs > 0 && dst->ops->put_signatures(dst, NULL, sigs, sig_lens, n_sigs, err) < 0)
        goto out;
    *out_digest = digest_buffer(DIGEST_SHA256, wbuf, wlen);
    ret = 0;
out:
    free_sigs(sigs, sig_lens, n_sigs);
    mf_index_clear(&ix);
    return ret;
}

static int copy_in_session(struct image_reference *srcref, struct image_reference *dstref,
                           const struct copy_options *o, struct copy_result *res,
                           berth_error_t *err)
{
    struct image_source *src = NULL;
    struct image_destination *dst = NULL;
    int ret = -1;
    cleanup_free char *buf = NULL, *mime = NULL;
    size_t len;
    char *digest = NULL;
    progress_t *prog = progress_new(o->progress_out ? o->progress_out : stderr, o->quiet);
    struct copy_ctx c = {.o = o, .prog = prog, .level = o->compression_level};
    pthread_mutex_init(&c.lock, NULL);

    if (signing(o) && !o->sign_identity && !dstref->docker_name) {
        cleanup_free char *s = image_reference_string(dstref);
        berth_error_make_status(err, EINVAL,
                                "cannot determine the docker reference to sign for %s: use "
                                "--sign-identity",
                                s);
        goto out;
    }
    if (srcref->ops->new_source(srcref, o->src_sys, &src, err) < 0)
        goto out;
    c.src = src;
    progress_message(prog, "Getting image source signatures");
    if (src->ops->get_manifest(src, NULL, &buf, &len, &mime, err) < 0) {
        berth_error_wrap(err, "reading manifest");
        goto out;
    }
    /* the policy decides before the destination is even opened: nothing is written */
    if (o->policy && policy_check_source(o->policy, src, buf, len, err) < 0)
        goto out;
    if (dstref->ops->new_destination(dstref, o->dst_sys, &dst, err) < 0)
        goto out;
    c.dst = dst;
    if (signing(o) && !dst->ops->put_signatures) {
        cleanup_free char *s = image_reference_string(dstref);
        berth_error_make_status(err, ENOTSUP, "%s cannot store signatures (--sign-by)", s);
        goto out;
    }
    const char *mt = mf_detect(buf, len, mime);
    if (!mt) {
        /* not JSON at all (or not one value: duplicate keys, trailing bytes): say why */
        cleanup_json json_t *j = NULL;
        if (json_parse_bounded(buf, len, MF_MAX_MANIFEST, "manifest", &j, err) == 0)
            berth_error_make_status(err, EINVAL, "unrecognised manifest type %s",
                                    mime ? mime : "(none given)");
        goto out;
    }
    if (mf_is_index(mt)) {
        if (o->all) {
            if (copy_index_all(&c, buf, len, mt, &digest, err) < 0)
                goto out;
        } else {
            struct mf_index ix;
            if (mf_index_parse(buf, len, mt, &ix, err) < 0)
                goto out;
            size_t i;
            const char *os = o->os ? o->os : (o->src_sys ? o->src_sys->os_override : NULL);
            const char *arch = o->arch ? o->arch : (o->src_sys ? o->src_sys->arch_override : NULL);
            const char *var =
                o->variant ? o->variant : (o->src_sys ? o->src_sys->variant_override : NULL);
            if (mf_index_choose(&ix, os, arch, var, &i, err) < 0) {
                mf_index_clear(&ix);
                goto out;
            }
            cleanup_free char *inst = xstrdup(ix.inst[i].desc.digest);
            mf_index_clear(&ix);
            cleanup_free char *mb = NULL, *mm = NULL;
            size_t ml;
            if (src->ops->get_manifest(src, inst, &mb, &ml, &mm, err) < 0)
                goto out;
            cleanup_free char *got = digest_buffer(DIGEST_SHA256, mb, ml);
            if (!digest_equal(got, inst)) {
                berth_error_make_status(err, EIO, "manifest %s: digest mismatch", inst);
                goto out;
            }
            int64_t ns;
            const char *nmt;
            if (copy_single(&c, inst, mb, ml, mf_detect(mb, ml, mm), false, &digest, &ns, &nmt,
                            err) < 0)
                goto out;
        }
    } else {
        int64_t ns;
        const char *nmt;
        if (copy_single(&c, NULL, buf, len, mt, false, &digest, &ns, &nmt, err) < 0)
            goto out;
    }
    if (dst->ops->commit(dst, err) < 0) {
        berth_error_wrap(err, "committing the image");
        goto out;
    }
    if (res)
        res->manifest_digest = steal_pointer(&digest);
    ret = 0;
out:
    free(digest);
    image_destination_close(dst);
    image_source_close(src);
    pthread_mutex_destroy(&c.lock);
    progress_free(prog);
    return ret;
}

/* The copy owns the registry session its source and destination share (unless the caller, a
 * sync, owns one for all its copies): blob locations learnt from the source let the destination
 * mount instead of upload, and one client per registry serves both sides. */
int copy_image(struct image_reference *srcref, struct image_reference *dstref,
               const struct copy_options *o, struct copy_result *res, berth_error_t *err)
{
    struct registry_session *have = o->src_sys && o->src_sys->registry_session
                                        ? o->src_sys->registry_session
                                    : o->dst_sys ? o->dst_sys->registry_session
                                                 : NULL;
    cleanup_registry_session registry_session_t *own = NULL;
    if (!have)
        have = own = registry_session_new();
    struct system_context s, d;
    struct copy_options oo = *o;
    if (o->src_sys && !o->src_sys->registry_session) {
        s = *o->src_sys;
        s.registry_session = have;
        oo.src_sys = &s;
    }
    if (o->dst_sys && !o->dst_sys->registry_session) {
        d = *o->dst_sys;
        d.registry_session = have;
        oo.dst_sys = &d;
    }
    return copy_in_session(srcref, dstref, &oo, res, err);
}

int copy_image_refs(const char *src, const char *dst, const struct copy_options *o,
                    struct copy_result *res, berth_error_t *err)
{
    cleanup_image_reference struct image_reference *s = NULL;
    cleanup_image_reference struct image_reference *d = NULL;
    if (transport_parse_reference(src, &s, err) < 0)
        return -1;
    if (transport_parse_reference(dst, &d, err) < 0)
        return -1;
    return copy_image(s, d, o, res, err);
}
