/* Manifest parsing, conversion and platform selection for the transports and the copy engine. */
#include "transport/manifest.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"

#include <string.h>
#include <sys/utsname.h>

static const char *const known_types[] = {
    MT_OCI_MANIFEST, MT_OCI_INDEX,       MT_DOCKER_V2S2, MT_DOCKER_LIST,
    MT_DOCKER_V2S1,  MT_DOCKER_V2S1_SIG, NULL,
};

static const char *known(const char *mt)
{
    if (!mt)
        return NULL;
    for (size_t i = 0; known_types[i]; i++)
        if (strcmp(mt, known_types[i]) == 0)
            return known_types[i];
    return NULL;
}

const char *mf_detect(const char *buf, size_t len, const char *declared)
{
    cleanup_json json_t *j = NULL;
    berth_error_t e = NULL;
    /* the same bounded parser (and so the same duplicate-key rule) as every later read */
    if (json_parse_bounded(buf, len, MF_MAX_MANIFEST, "manifest", &j, &e) < 0 ||
        !json_is_object(j)) {
        berth_error_release(&e);
        return known(declared);
    }
    switch (image_manifest_kind(j)) {
    case MANIFEST_KIND_OCI_MANIFEST:
        return MT_OCI_MANIFEST;
    case MANIFEST_KIND_OCI_INDEX:
        return MT_OCI_INDEX;
    case MANIFEST_KIND_DOCKER_V2:
        return MT_DOCKER_V2S2;
    case MANIFEST_KIND_DOCKER_LIST:
        return MT_DOCKER_LIST;
    case MANIFEST_KIND_DOCKER_V1: {
        const char *mt = known(json_get_string(j, "mediaType"));
        if (mt)
            return mt;
        return json_get_array(j, "signatures") || json_get_object(j, "signatures")
                   ? MT_DOCKER_V2S1_SIG
                   : MT_DOCKER_V2S1;
    }
    default:
        break;
    }
    return known(declared);
}

bool mf_is_index(const char *mt)
{
    return manifest_kind_is_index(manifest_kind_from_media_type(mt));
}

bool mf_is_image(const char *mt)
{
    manifest_kind_t k = manifest_kind_from_media_type(mt);
    return k == MANIFEST_KIND_OCI_MANIFEST || k == MANIFEST_KIND_DOCKER_V2;
}

static int parse_desc(const json_t *o, const char *what, struct blob_info *b, berth_error_t *err)
{
    const char *d;
    int64_t size;
    if (!json_is_object(o))
        return berth_error_make_status(err, EINVAL, "%s is not an object", what);
    if (json_require_string(o, what, "digest", &d, err) < 0)
        return -1;
    if (digest_validate(d, err) < 0)
        return berth_error_wrap(err, "%s", what);
    if (json_require_int(o, what, "size", &size, err) < 0)
        return -1;
    if (size < 0)
        return berth_error_make_status(err, EINVAL, "%s: negative size", what);
    b->digest = xstrdup(d);
    b->size = size;
    const char *mt = json_get_string(o, "mediaType");
    b->media_type = mt ? xstrdup(mt) : NULL;
    json_t *urls = json_get_array(o, "urls");
    if (urls && json_array_size(urls) > 0 && json_to_strv(urls, what, &b->urls, err) < 0)
        return -1;
    return 0;
}

int mf_image_parse(const char *buf, size_t len, const char *mt, struct mf_image *out,
                   berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cleanup_json json_t *j = NULL;
    if (json_parse_bounded(buf, len, MF_MAX_MANIFEST, "manifest", &j, err) < 0)
        return -1;
    mt = mf_detect(buf, len, mt);
    if (!mf_is_image(mt))
        return berth_error_make_status(err, ENOTSUP, "unsupported manifest type %s",
                                       mt ? mt : "(unknown)");
    out->media_type = mt;
    if (parse_desc(json_get_object(j, "config"), "manifest.config", &out->config, err) < 0)
        goto fail;
    json_t *layers = json_get_array(j, "layers");
    if (!layers) {
        berth_error_make_status(err, EINVAL, "manifest has no layers array");
        goto fail;
    }
    out->n_layers = json_array_size(layers);
    out->layers = xcalloc(out->n_layers + 1, sizeof(*out->layers));
    for (size_t i = 0; i < out->n_layers; i++) {
        char what[48];
        snprintf(what, sizeof(what), "manifest.layers[%zu]", i);
        if (parse_desc(json_array_get(layers, i), what, &out->layers[i], err) < 0)
            goto fail;
    }
    json_t *ann = json_get_object(j, "annotations");
    if (ann)
        out->annotations = json_incref(ann);
    return 0;
fail:
    mf_image_clear(out);
    return -1;
}

void mf_image_clear(struct mf_image *m)
{
    blob_info_clear(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        blob_info_clear(&m->layers[i]);
    free(m->layers);
    if (m->annotations)
        json_decref(m->annotations);
    memset(m, 0, sizeof(*m));
}

static json_t *desc_json(const struct blob_info *b, const char *mt)
{
    json_t *o = json_object();
    json_object_set_new(o, "mediaType", json_string(mt ? mt : b->media_type));
    json_object_set_new(o, "digest", json_string(b->digest));
    json_object_set_new(o, "size", json_integer(b->size));
    if (b->urls && b->urls[0])
        json_object_set_new(o, "urls", json_from_strv(b->urls));
    return o;
}

char *mf_image_serialize(const struct mf_image *m, const char *mt, size_t *len)
{
    cleanup_json json_t *o = json_object();
    json_object_set_new(o, "schemaVersion", json_integer(2));
    json_object_set_new(o, "mediaType", json_string(mt));
    json_object_set_new(o, "config", desc_json(&m->config, mf_config_media_type(mt)));
    json_t *layers = json_array();
    for (size_t i = 0; i < m->n_layers; i++)
        json_array_append_new(layers, desc_json(&m->layers[i], NULL));
    json_object_set_new(o, "layers", layers);
    if (strcmp(mt, MT_OCI_MANIFEST) == 0 && m->annotations && json_object_size(m->annotations))
        json_object_set(o, "annotations", m->annotations);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (len)
        *len = strlen(s);
    return s;
}

int mf_index_parse(const char *buf, size_t len, const char *mt, struct mf_index *out,
                   berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (json_parse_bounded(buf, len, MF_MAX_MANIFEST, "index", &out->doc, err) < 0)
        return -1;
    mt = mf_detect(buf, len, mt);
    if (!mf_is_index(mt)) {
        mf_index_clear(out);
        return berth_error_make_status(err, EINVAL, "not an image index");
    }
    out->media_type = mt;
    json_t *ms = json_get_array(out->doc, "manifests");
    if (!ms) {
        mf_index_clear(out);
        return berth_error_make_status(err, EINVAL, "index has no manifests array");
    }
    out->n = json_array_size(ms);
    out->inst = xcalloc(out->n + 1, sizeof(*out->inst));
    for (size_t i = 0; i < out->n; i++) {
        char what[48];
        snprintf(what, sizeof(what), "index.manifests[%zu]", i);
        json_t *d = json_array_get(ms, i);
        if (parse_desc(d, what, &out->inst[i].desc, err) < 0) {
            mf_index_clear(out);
            return -1;
        }
        json_t *p = json_get_object(d, "platform");
        if (p) {
            const char *s;
            if ((s = json_get_string(p, "os")))
                out->inst[i].os = xstrdup(s);
            if ((s = json_get_string(p, "architecture")))
                out->inst[i].arch = xstrdup(s);
            if ((s = json_get_string(p, "variant")))
                out->inst[i].variant = xstrdup(s);
        }
    }
    return 0;
}

void mf_index_clear(struct mf_index *ix)
{
    for (size_t i = 0; i < ix->n; i++) {
        blob_info_clear(&ix->inst[i].desc);
        free(ix->inst[i].os);
        free(ix->inst[i].arch);
        free(ix->inst[i].variant);
    }
    free(ix->inst);
    if (ix->doc)
        json_decref(ix->doc);
    memset(ix, 0, sizeof(*ix));
}

const char *mf_host_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#elif defined(__arm__)
    return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

const char *mf_host_variant(void)
{
#if defined(__aarch64__)
    return "v8";
#elif defined(__arm__)
    return "v7";
#else
    return NULL;
#endif
}

int mf_index_choose(const struct mf_index *ix, const char *os, const char *arch,
                    const char *variant, size_t *out, berth_error_t *err)
{
    bool explicit_variant = variant != NULL;
    if (!os)
        os = "linux";
    if (!arch)
        arch = mf_host_arch();
    if (!variant)
        variant = mf_host_variant();
    ssize_t best = -1;
    int best_score = -1;
    for (size_t i = 0; i < ix->n; i++) {
        const struct mf_instance *in = &ix->inst[i];
        if (!in->os || !in->arch || strcmp(in->os, os) != 0 || strcmp(in->arch, arch) != 0)
            continue;
        int score = 1;
        if (variant && in->variant && strcmp(variant, in->variant) == 0)
            score = 3;
        else if (!in->variant)
            score = 2;
        else if (explicit_variant)
            continue;
        if (score > best_score) {
            best = (ssize_t)i;
            best_score = score;
        }
    }
    if (best < 0)
        return berth_error_make_status(err, ENOENT,
                                       "no image found in manifest list for platform %s/%s%s%s", os,
                                       arch, variant ? "/" : "", variant ? variant : "");
    *out = (size_t)best;
    return 0;
}

char *mf_index_serialize(const struct mf_index *ix, const char *mt, size_t *len)
{
    cleanup_json json_t *o = json_deep_copy(ix->doc);
    json_object_set_new(o, "mediaType", json_string(mt));
    json_t *ms = json_get_array(o, "manifests");
    bool to_oci = strcmp(mt, MT_OCI_INDEX) == 0;
    for (size_t i = 0; i < ix->n && i < json_array_size(ms); i++) {
        json_t *d = json_array_get(ms, i);
        const struct blob_info *b = &ix->inst[i].desc;
        const char *imt = b->media_type;
        if (imt && mf_is_image(imt))
            imt = to_oci ? MT_OCI_MANIFEST : MT_DOCKER_V2S2;
        if (imt)
            json_object_set_new(d, "mediaType", json_string(imt));
        json_object_set_new(d, "digest", json_string(b->digest));
        json_object_set_new(d, "size", json_integer(b->size));
    }
    if (!to_oci)
        json_object_del(o, "annotations");
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (len)
        *len = strlen(s);
    return s;
}

compression_t mf_layer_compression(const char *mt)
{
    if (!mt)
        return COMPRESSION_GZIP;
    size_t n = strlen(mt);
    if ((n >= 5 && strcmp(mt + n - 5, "+gzip") == 0) ||
        (n >= 5 && strcmp(mt + n - 5, ".gzip") == 0))
        return COMPRESSION_GZIP;
    if (n >= 5 && strcmp(mt + n - 5, "+zstd") == 0)
        return COMPRESSION_ZSTD;
    return COMPRESSION_NONE;
}

bool mf_layer_is_foreign(const char *mt)
{
    return mt && (strstr(mt, "nondistributable") || strstr(mt, ".foreign."));
}

const char *mf_layer_media_type(const char *manifest_mt, compression_t c, bool foreign)
{
    bool docker = strcmp(manifest_mt, MT_DOCKER_V2S2) == 0;
    if (!foreign)
        return image_layer_media_type(docker ? MANIFEST_KIND_DOCKER_V2 : MANIFEST_KIND_OCI_MANIFEST,
                                      c);
    /* foreign layers: Docker has only the gzip flavour (as containers/image) */
    if (docker)
        return c == COMPRESSION_GZIP ? MT_DOCKER_FOREIGN : NULL;
    switch (c) {
    case COMPRESSION_NONE:
        return MT_OCI_LAYER_ND;
    case COMPRESSION_GZIP:
        return MT_OCI_LAYER_ND_GZ;
    default:
        return MT_OCI_LAYER_ND_ZST;
    }
}

const char *mf_config_media_type(const char *manifest_mt)
{
    return strcmp(manifest_mt, MT_DOCKER_V2S2) == 0 ? MT_DOCKER_CONFIG : MT_OCI_CONFIG;
}
