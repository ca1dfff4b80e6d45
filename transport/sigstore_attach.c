/* Sigstore signatures as registry attachments: see sigstore_attach.h. */
#include "transport/sigstore_attach.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "common/log.h"
#include "common/stream.h"
#include "transport/sigstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX REGISTRY_JSON_MAX

static int attachment_tag(const char *manifest_digest, char **out, berth_error_t *err)
{
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(manifest_digest, &algo, &hex, err) < 0)
        return -1;
    *out = xasprintf("%s-%s.sig", digest_algo_name(algo), hex);
    return 0;
}

/* A blob of at most max bytes, checked against digest and size. */
static int get_small_blob(registry_client_t *c, const char *repo, const char *digest, int64_t size,
                          size_t max, char **out, size_t *len, berth_error_t *err)
{
    if (size < 0 || (uint64_t)size > max)
        return berth_error_make_status(err, EFBIG, "blob %s: size %lld is over the %zu byte limit",
                                       digest, (long long)size, max);
    berth_reader_t *raw = NULL;
    int64_t got_size = -1;
    if (registry_get_blob(c, repo, digest, &raw, &got_size, err) < 0)
        return -1;
    cleanup_reader berth_reader_t *r = reader_verify(raw, true, digest, size);
    if (reader_read_all(r, max, out, len, err) < 0)
        return berth_error_wrap(err, "blob %s", digest);
    return 0;
}

/* The attachment manifest (NULL when there is none) as JSON, checked to be an OCI manifest. */
static int get_manifest(registry_client_t *c, const char *repo, const char *tag, json_t **out,
                        berth_error_t *err)
{
    *out = NULL;
    cleanup_free char *body = NULL, *mime = NULL;
    size_t len = 0;
    berth_error_t e = NULL;
    if (registry_get_manifest(c, repo, tag, &body, &len, &mime, NULL, &e) < 0) {
        if (berth_error_status(e) == ENOENT) {
            berth_error_release(&e);
            return 0;
        }
        *err = e;
        return -1;
    }
    cleanup_json json_t *m = NULL;
    if (json_parse_bounded(body, len, REGISTRY_MANIFEST_MAX, "sigstore attachment manifest", &m,
                           err) < 0)
        return -1;
    const char *mt = json_is_object(m) ? json_get_string(m, "mediaType") : NULL;
    if (!mt || strcmp(mt, MEDIA_OCI_MANIFEST) != 0)
        return berth_error_make_status(err, EINVAL,
                                       "unexpected media type \"%s\" of the sigstore attachment "
                                       "manifest (expected %s)",
                                       mt ? mt : (mime ? mime : "(none)"), MEDIA_OCI_MANIFEST);
    json_t *layers = json_object_get(m, "layers");
    if (layers && !json_is_array(layers))
        return berth_error_make_status(err, EINVAL,
                                       "sigstore attachment manifest: layers is not "
                                       "an array");
    if (json_array_size(layers) > SIGSTORE_ATTACH_MAX_SIGS)
        return berth_error_make_status(err, EFBIG,
                                       "sigstore attachment manifest: more than %d signatures",
                                       SIGSTORE_ATTACH_MAX_SIGS);
    *out = steal_pointer(&m);
    return 0;
}

/* Checks a layer descriptor: media type, digest, size, annotations (NULL when absent). */
static int layer_fields(const json_t *l, size_t i, const char **mt, const char **digest,
                        int64_t *size, json_t **ann, berth_error_t *err)
{
    *mt = json_get_string(l, "mediaType");
    *digest = json_get_string(l, "digest");
    *ann = json_object_get(l, "annotations");
    if (!*mt || !*digest || !json_get_int(l, "size", size) || *size < 0 ||
        (*ann && !json_is_object(*ann)))
        return berth_error_make_status(err, EINVAL,
                                       "sigstore attachment manifest: layers[%zu] is not a valid "
                                       "descriptor",
                                       i);
    if (digest_validate(*digest, err) < 0)
        return berth_error_wrap(err, "sigstore attachment manifest: layers[%zu]", i);
    return 0;
}

int sigstore_attachments_get(registry_client_t *c, const char *repo, const char *manifest_digest,
                             char ***sigs, size_t **lens, size_t *n, berth_error_t *err)
{
    cleanup_free char *tag = NULL;
    if (attachment_tag(manifest_digest, &tag, err) < 0)
        return -1;
    cleanup_json json_t *m = NULL;
    if (get_manifest(c, repo, tag, &m, err) < 0)
        return berth_error_wrap(err, "sigstore signatures in %s:%s", repo, tag);
    if (!m)
        return 0;
    json_t *layers = json_object_get(m, "layers");
    size_t i, total = 0;
    json_t *l;
    log_debug("%s:%s: %zu sigstore signatures", repo, tag, json_array_size(layers));
    json_array_foreach(layers, i, l)
    {
        const char *mt, *digest;
        int64_t size;
        json_t *ann;
        cleanup_free char *payload = NULL, *blob = NULL;
        size_t plen, blen;
        if (layer_fields(l, i, &mt, &digest, &size, &ann, err) < 0)
            return berth_error_wrap(err, "sigstore signature %zu in %s:%s", i + 1, repo, tag);
        if (get_small_blob(c, repo, digest, size, SIGSTORE_PAYLOAD_MAX, &payload, &plen, err) < 0)
            return berth_error_wrap(err, "sigstore signature %zu in %s:%s", i + 1, repo, tag);
        /* a thousand payloads of the maximum size would be gigabytes */
        if (plen > SIGSTORE_ATTACH_MAX_TOTAL - total)
            return berth_error_make_status(err, EFBIG,
                                           "sigstore signatures in %s:%s: more than %u bytes in "
                                           "total",
                                           repo, tag, SIGSTORE_ATTACH_MAX_TOTAL);
        total += plen;
        if (sigstore_blob_make(mt, payload, plen, ann, &blob, &blen, err) < 0)
            return berth_error_wrap(err, "sigstore signature %zu in %s:%s", i + 1, repo, tag);
        *sigs = xreallocarray(*sigs, *n + 1, sizeof(char *));
        *lens = xreallocarray(*lens, *n + 1, sizeof(size_t));
        (*sigs)[*n] = steal_pointer(&blob);
        (*lens)[*n] = blen;
        (*n)++;
    }
    return 0;
}

static int put_bytes(registry_client_t *c, const char *repo, const char *buf, size_t len,
                     const char *digest, berth_error_t *err)
{
    int64_t size = -1;
    cleanup_error berth_error_t e = NULL;
    if (registry_head_blob(c, repo, digest, &size, &e) == 0 && size == (int64_t)len)
        return 0;
    cleanup_reader berth_reader_t *r = reader_from_buffer(buf, len, false);
    return registry_put_blob(c, repo, r, digest, (int64_t)len, true, NULL, NULL, err);
}

static int attachments_put(registry_client_t *c, const char *repo, const char *manifest_digest,
                           char *const *sigs, const size_t *lens, size_t n, berth_error_t *err);

/* The merge is read-modify-write of one tag: copies in this process that sign or carry
 * signatures of the same manifest (sync writes the tags of one manifest in parallel) take
 * turns, so none of their signatures is lost.  Other processes can still race, as with skopeo. */
static pthread_mutex_t put_lock = PTHREAD_MUTEX_INITIALIZER;

int sigstore_attachments_put(registry_client_t *c, const char *repo, const char *manifest_digest,
                             char *const *sigs, const size_t *lens, size_t n, berth_error_t *err)
{
    pthread_mutex_lock(&put_lock);
    int r = attachments_put(c, repo, manifest_digest, sigs, lens, n, err);
    pthread_mutex_unlock(&put_lock);
    return r;
}

static int attachments_put(registry_client_t *c, const char *repo, const char *manifest_digest,
                           char *const *sigs, const size_t *lens, size_t n, berth_error_t *err)
{
    cleanup_free char *tag = NULL;
    if (attachment_tag(manifest_digest, &tag, err) < 0)
        return -1;
    cleanup_json json_t *m = NULL, *config = NULL;
    if (get_manifest(c, repo, tag, &m, err) < 0)
        return berth_error_wrap(err, "sigstore signatures in %s:%s", repo, tag);
    if (m) {
        json_t *cd = json_object_get(m, "config");
        const char *cdig = json_is_object(cd) ? json_get_string(cd, "digest") : NULL;
        int64_t csize = -1;
        cleanup_free char *cbuf = NULL;
        size_t clen;
        if (!cdig || !json_get_int(cd, "size", &csize) || digest_validate(cdig, err) < 0 ||
            get_small_blob(c, repo, cdig, csize, CONFIG_MAX, &cbuf, &clen, err) < 0 ||
            json_parse_bounded(cbuf, clen, CONFIG_MAX, "sigstore attachment config", &config, err) <
                0 ||
            !json_is_object(config)) {
            if (!*err)
                berth_error_make_status(err, EINVAL, "the config is not a valid JSON object");
            return berth_error_wrap(err, "sigstore attachment %s:%s", repo, tag);
        }
        if (!json_get_array(m, "layers"))
            json_object_set_new(m, "layers", json_array());
    } else {
        m = json_pack("{s:i,s:s,s:{},s:[]}", "schemaVersion", 2, "mediaType", MEDIA_OCI_MANIFEST,
                      "config", "layers");
        config = json_pack("{s:s,s:s,s:{},s:{s:s,s:[]}}", "architecture", "", "os", "", "config",
                           "rootfs", "type", "layers", "diff_ids");
    }
    json_t *layers = json_object_get(m, "layers");
    json_t *rootfs = json_object_get(config, "rootfs");
    if (!json_is_object(rootfs)) {
        rootfs = json_pack("{s:s}", "type", "layers");
        json_object_set_new(config, "rootfs", rootfs);
    }
    json_t *diff_ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_array(diff_ids)) {
        diff_ids = json_array();
        json_object_set_new(rootfs, "diff_ids", diff_ids);
    }
    size_t added = 0;
    for (size_t k = 0; k < n; k++) {
        struct sigstore_sig s;
        if (sigstore_blob_parse(sigs[k], lens[k], &s, err) < 0)
            return berth_error_wrap(err, "signature %zu", k + 1);
        cleanup_free char *pd = digest_buffer(DIGEST_SHA256, s.payload, s.payload_len);
        bool present = false;
        size_t i;
        json_t *l;
        json_array_foreach(layers, i, l)
        {
            const char *mt = json_get_string(l, "mediaType"), *d = json_get_string(l, "digest");
            json_t *ann = json_object_get(l, "annotations");
            cleanup_json json_t *empty = json_object();
            if (mt && d && strcmp(mt, s.mime_type) == 0 && digest_equal(d, pd) &&
                json_equal(ann ? ann : empty, s.annotations))
                present = true;
        }
        if (present) {
            log_debug("sigstore signature %s already attached in %s:%s", pd, repo, tag);
            sigstore_sig_clear(&s);
            continue;
        }
        if (json_array_size(layers) >= SIGSTORE_ATTACH_MAX_SIGS) {
            sigstore_sig_clear(&s);
            return berth_error_make_status(err, EFBIG, "%s:%s: more than %d sigstore signatures",
                                           repo, tag, SIGSTORE_ATTACH_MAX_SIGS);
        }
        if (put_bytes(c, repo, s.payload, s.payload_len, pd, err) < 0) {
            sigstore_sig_clear(&s);
            return berth_error_wrap(err, "uploading sigstore signature %zu to %s", k + 1, repo);
        }
        json_t *desc = json_pack("{s:s,s:s,s:I}", "mediaType", s.mime_type, "digest", pd, "size",
                                 (json_int_t)s.payload_len);
        if (json_object_size(s.annotations) > 0)
            json_object_set(desc, "annotations", s.annotations);
        json_array_append_new(layers, desc);
        json_array_append_new(diff_ids, json_string(pd));
        sigstore_sig_clear(&s);
        added++;
    }
    if (added == 0)
        return 0;
    char *cj = json_dumps(config, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t cl = strlen(cj);
    cleanup_free char *cdig = digest_buffer(DIGEST_SHA256, cj, cl);
    int r = put_bytes(c, repo, cj, cl, cdig, err);
    if (r == 0)
        json_object_set_new(m, "config",
                            json_pack("{s:s,s:s,s:I}", "mediaType", MEDIA_TYPE_OCI_CONFIG, "digest",
                                      cdig, "size", (json_int_t)cl));
    free(cj);
    if (r < 0)
        return berth_error_wrap(err, "uploading the sigstore attachment config to %s", repo);
    char *mj = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    r = registry_put_manifest(c, repo, tag, mj, strlen(mj), MEDIA_OCI_MANIFEST, NULL, err);
    free(mj);
    if (r < 0)
        return berth_error_wrap(err, "writing sigstore attachment %s:%s", repo, tag);
    log_debug("attached %zu sigstore signatures in %s:%s", added, repo, tag);
    return 0;
}
