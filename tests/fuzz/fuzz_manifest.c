/* Manifests, indexes and image configs as a registry or an archive serves them: type detection,
 * both parsers, instance choice and re-serialisation (what copy does with them). */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "transport/manifest.h"

#include <stdbool.h>
#include <stdio.h>

static bool same_blob(const struct blob_info *a, const struct blob_info *b)
{
    return a->size == b->size && !a->digest == !b->digest &&
           (!a->digest || strcmp(a->digest, b->digest) == 0);
}

/* A manifest copy rewrites (same type) must read back with the same config and layers. */
static void same_after_rewrite(const struct mf_image *m, const char *mt)
{
    if (strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_DOCKER_V2S2) != 0)
        return;
    size_t len = 0;
    cleanup_free char *out = mf_image_serialize(m, mt, &len);
    struct mf_image again = {0};
    cleanup_error berth_error_t err = NULL;
    bool same = out && mf_image_parse(out, len, mt, &again, &err) == 0 &&
                again.n_layers == m->n_layers && same_blob(&again.config, &m->config);
    for (size_t i = 0; same && i < m->n_layers; i++)
        same = same_blob(&again.layers[i], &m->layers[i]);
    if (!same) {
        fprintf(stderr, "rewritten manifest differs: %s\n%.*s\n", err ? berth_error_msg(err) : "",
                (int)len, out ? out : "");
        abort();
    }
    mf_image_clear(&again);
}

static void transport_model(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const char *mt = mf_detect(buf, size, NULL);
    if (!mt)
        return;
    cleanup_error berth_error_t err = NULL;
    if (mf_is_index(mt)) {
        struct mf_index ix = {0};
        if (mf_index_parse(buf, size, mt, &ix, &err) < 0)
            return;
        size_t i = 0, len = 0;
        cleanup_error berth_error_t cerr = NULL;
        IGNORE_RESULT(mf_index_choose(&ix, "linux", "amd64", NULL, &i, &cerr));
        free(mf_index_serialize(&ix, MT_OCI_INDEX, &len));
        free(mf_index_serialize(&ix, MT_DOCKER_LIST, &len));
        mf_index_clear(&ix);
    } else if (mf_is_image(mt)) {
        struct mf_image m = {0};
        if (mf_image_parse(buf, size, mt, &m, &err) < 0)
            return;
        for (size_t i = 0; i < m.n_layers; i++) {
            (void)mf_layer_compression(m.layers[i].media_type);
            (void)mf_layer_is_foreign(m.layers[i].media_type);
        }
        size_t len = 0;
        free(mf_image_serialize(&m, MT_OCI_MANIFEST, &len));
        free(mf_image_serialize(&m, MT_DOCKER_V2S2, &len));
        same_after_rewrite(&m, mt);
        mf_image_clear(&m);
    }
}

static void imagespec_model(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_json json_t *doc = NULL;
    if (json_parse_bounded((const char *)data, size, IMAGE_MANIFEST_MAX_SIZE, "manifest", &doc,
                           &err) == 0 &&
        json_is_object(doc))
        (void)image_manifest_kind(doc);
    berth_error_release(&err);
    cleanup_image_manifest image_manifest_t *m = NULL;
    if (image_manifest_parse(data, size, &m, &err) == 0) {
        cleanup_free char *out = NULL;
        size_t len = 0;
        if (image_manifest_serialize(m, &out, &len, &err) < 0)
            berth_error_release(&err);
    }
    berth_error_release(&err);
    cleanup_image_index image_index_t *ix = NULL;
    if (image_index_parse(data, size, &ix, &err) == 0) {
        cleanup_free char *out = NULL;
        size_t len = 0;
        if (image_index_serialize(ix, &out, &len, &err) < 0)
            berth_error_release(&err);
    }
    berth_error_release(&err);
    cleanup_image_config image_config_t *c = NULL;
    IGNORE_RESULT(image_config_parse(data, size, &c, &err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    transport_model(data, size);
    imagespec_model(data, size);
    return 0;
}
