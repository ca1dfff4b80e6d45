/* Manifest helpers used by the transports and the copy engine: media types, detection, parsing
 * of image manifests (OCI, Docker schema 2) and indexes (OCI index, Docker manifest list),
 * serialisation after conversion, and platform selection.
 *
 * The media types and size limits are common/imagespec.h's under the short names used here.
 * Parsing, serialisation and platform choice stay separate from imagespec's on purpose: the
 * copy engine accepts descriptors without a mediaType (as skopeo does; imagespec refuses them),
 * keeps an index's own JSON to rewrite it (unknown fields survive), works on struct blob_info,
 * picks instances without platform normalisation (best variant first), and reports errno-style
 * statuses (ENOTSUP, ENOENT) that callers test; imagespec's errors carry no status.
 *
 * Ownership: mf_image / mf_index own their strings and JSON; release with *_clear(). */
#ifndef BERTH_TRANSPORT_MANIFEST_H
#define BERTH_TRANSPORT_MANIFEST_H

#include "common/error.h"
#include "common/imagespec.h"
#include "common/stream.h"
#include "transport/transport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MT_OCI_MANIFEST     MEDIA_TYPE_OCI_MANIFEST
#define MT_OCI_INDEX        MEDIA_TYPE_OCI_INDEX
#define MT_OCI_CONFIG       MEDIA_TYPE_OCI_CONFIG
#define MT_OCI_LAYER        MEDIA_TYPE_OCI_LAYER_TAR
#define MT_OCI_LAYER_GZIP   MEDIA_TYPE_OCI_LAYER_GZIP
#define MT_OCI_LAYER_ZSTD   MEDIA_TYPE_OCI_LAYER_ZSTD
#define MT_OCI_LAYER_ND     MEDIA_TYPE_OCI_LAYER_ND_TAR
#define MT_OCI_LAYER_ND_GZ  MEDIA_TYPE_OCI_LAYER_ND_GZIP
#define MT_OCI_LAYER_ND_ZST MEDIA_TYPE_OCI_LAYER_ND_ZSTD
#define MT_DOCKER_V2S2      MEDIA_TYPE_DOCKER_MANIFEST
#define MT_DOCKER_LIST      MEDIA_TYPE_DOCKER_MANIFEST_LIST
#define MT_DOCKER_V2S1      MEDIA_TYPE_DOCKER_SCHEMA1
#define MT_DOCKER_V2S1_SIG  MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED
#define MT_DOCKER_CONFIG    MEDIA_TYPE_DOCKER_CONFIG
#define MT_DOCKER_LAYER     MEDIA_TYPE_DOCKER_LAYER_TAR
#define MT_DOCKER_LAYER_GZ  MEDIA_TYPE_DOCKER_LAYER_GZIP
#define MT_DOCKER_FOREIGN   MEDIA_TYPE_DOCKER_FOREIGN_GZIP

#define MF_MAX_MANIFEST ((unsigned)IMAGE_MANIFEST_MAX_SIZE)
#define MF_MAX_CONFIG   ((unsigned)IMAGE_CONFIG_MAX_SIZE)

/* Returns one of the MT_ constants (static) for the document, or NULL when unrecognised.
 * declared (may be NULL) is what the transport said. */
const char *mf_detect(const char *buf, size_t len, const char *declared);
bool mf_is_index(const char *mt);
bool mf_is_image(const char *mt); /* OCI manifest or Docker schema 2 */

struct mf_image {
    const char *media_type; /* MT_ constant */
    struct blob_info config;
    struct blob_info *layers;
    size_t n_layers;
    json_t *annotations; /* OCI only, may be NULL */
};
BERTH_MUST_CHECK int mf_image_parse(const char *buf, size_t len, const char *mt,
                                    struct mf_image *out, berth_error_t *err);
void mf_image_clear(struct mf_image *m);
/* Serialises as media type mt (MT_OCI_MANIFEST or MT_DOCKER_V2S2); compact JSON in the field
 * order of containers/image.  Caller frees. */
char *mf_image_serialize(const struct mf_image *m, const char *mt, size_t *len);

struct mf_instance {
    struct blob_info desc;
    char *os, *arch, *variant; /* may be NULL */
};
struct mf_index {
    const char *media_type;
    struct mf_instance *inst;
    size_t n;
    json_t *doc; /* the parsed document, kept to rewrite instances */
};
BERTH_MUST_CHECK int mf_index_parse(const char *buf, size_t len, const char *mt,
                                    struct mf_index *out, berth_error_t *err);
void mf_index_clear(struct mf_index *ix);
/* Picks the instance for os/arch/variant (NULL: this machine's); ENOENT status if none. */
BERTH_MUST_CHECK int mf_index_choose(const struct mf_index *ix, const char *os, const char *arch,
                                     const char *variant, size_t *out, berth_error_t *err);
/* Rewrites the index with instance i's descriptor changed (digest/size/media type) and the
 * document type as mt (MT_OCI_INDEX or MT_DOCKER_LIST). Caller frees. */
char *mf_index_serialize(const struct mf_index *ix, const char *mt, size_t *len);

/* Compression implied by a layer media type. */
compression_t mf_layer_compression(const char *layer_mt);
bool mf_layer_is_foreign(const char *layer_mt);
/* Layer media type for a manifest type and compression (foreign keeps the nondistributable /
 * foreign flavour).  NULL when not representable (zstd in Docker schema 2). */
const char *mf_layer_media_type(const char *manifest_mt, compression_t c, bool foreign);
const char *mf_config_media_type(const char *manifest_mt);

/* This machine's GOARCH-style architecture ("amd64", "arm64", ...) and variant (or NULL). */
const char *mf_host_arch(void);
const char *mf_host_variant(void);

#endif
