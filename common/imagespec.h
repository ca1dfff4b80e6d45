/* Image-spec documents: OCI image manifest, index and config; Docker schema2 manifest, manifest
 * list and config.  Parsing (with size limits and errors that name the field), validation,
 * canonical serialisation, OCI <-> Docker conversion, and platform matching.
 *
 * Byte-exactness: a manifest pulled from somewhere is identified by the digest of its bytes, so
 * callers keep the original bytes and never re-serialise a parsed document to store or push it.
 * The serialisers here are for new documents (build, conversion): compact JSON, fields in the
 * order the specs list them, optional fields omitted when unset.  Every parsed struct keeps the
 * parsed JSON in `raw` for fields not modelled here (NULL in structs built by hand).
 *
 * Ownership: structs returned by *_parse, *_convert, *_dup and *_new are owned by the caller and
 * released with the matching *_free (or cleanup_* attribute).  Every char * and char ** inside is
 * owned by the struct; string lists (char **) are NULL-terminated; json_t * fields (annotations,
 * labels, raw, container_config) hold one reference owned by the struct.  To fill a struct by
 * hand, allocate it zeroed (xzalloc) and set fields to heap strings; *_free releases them.
 *
 * Errors: -1 with messages like
 *   `manifest: layers[2].digest: invalid digest "sha256:ab": sha256 needs 64 hex characters...`
 *   `config: rootfs.diff_ids[0]: must be a string, got integer`
 *   `index: 5000000 bytes exceeds the maximum of 4194304 bytes`
 */
#ifndef BERTH_IMAGESPEC_H
#define BERTH_IMAGESPEC_H

#include "common/error.h"
#include "common/stream.h" /* compression_t */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size limits for documents read from outside (registries, layouts, archives). */
#define IMAGE_MANIFEST_MAX_SIZE (4 * 1024 * 1024) /* manifests and indexes */
#define IMAGE_CONFIG_MAX_SIZE   (8 * 1024 * 1024)

/* ---- media types ---- */
#define MEDIA_TYPE_OCI_MANIFEST   "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_OCI_INDEX      "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_OCI_CONFIG     "application/vnd.oci.image.config.v1+json"
#define MEDIA_TYPE_OCI_EMPTY      "application/vnd.oci.empty.v1+json"
#define MEDIA_TYPE_OCI_LAYER_TAR  "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_TYPE_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MEDIA_TYPE_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
/* deprecated in image-spec 1.1 but still found in the wild */
#define MEDIA_TYPE_OCI_LAYER_ND_TAR  "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define MEDIA_TYPE_OCI_LAYER_ND_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define MEDIA_TYPE_OCI_LAYER_ND_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

#define MEDIA_TYPE_DOCKER_MANIFEST       "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_TYPE_DOCKER_MANIFEST_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1        "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MEDIA_TYPE_DOCKER_CONFIG         "application/vnd.docker.container.image.v1+json"
#define MEDIA_TYPE_DOCKER_LAYER_GZIP     "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MEDIA_TYPE_DOCKER_LAYER_TAR      "application/vnd.docker.image.rootfs.diff.tar"
#define MEDIA_TYPE_DOCKER_FOREIGN_GZIP   "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define MEDIA_TYPE_DOCKER_FOREIGN_TAR    "application/vnd.docker.image.rootfs.foreign.diff.tar"

typedef enum {
    MANIFEST_KIND_UNKNOWN = 0,
    MANIFEST_KIND_OCI_MANIFEST,
    MANIFEST_KIND_OCI_INDEX,
    MANIFEST_KIND_DOCKER_V2,   /* Docker schema2 manifest */
    MANIFEST_KIND_DOCKER_LIST, /* Docker manifest list */
    MANIFEST_KIND_DOCKER_V1,   /* schema1: recognised so it can be refused clearly */
} manifest_kind_t;

/* MANIFEST_KIND_UNKNOWN for media types that are not manifests (or NULL). */
manifest_kind_t manifest_kind_from_media_type(const char *media_type);
/* The media type string of a kind (static), NULL for UNKNOWN. */
const char *manifest_kind_media_type(manifest_kind_t kind);
bool manifest_kind_is_index(manifest_kind_t kind); /* OCI index or Docker list */
bool manifest_kind_is_docker(manifest_kind_t kind);
/* The config media type that goes with a manifest kind (OCI or Docker), NULL otherwise. */
const char *manifest_kind_config_media_type(manifest_kind_t kind);

/* The one manifest-type detector (transport/manifest.c's mf_detect and this file's parsers use
 * it): the kind of a parsed manifest document, from its mediaType field when present (an unknown
 * one gives MANIFEST_KIND_UNKNOWN), otherwise from its structure (schemaVersion 1 with fsLayers,
 * a "manifests" array, a "config" object whose mediaType says Docker or OCI, a "layers"
 * array).  Parse with json_parse_bounded first (one parser, one rule set). */
manifest_kind_t image_manifest_kind(const json_t *doc);

/* Layer media types: true for a known layer type, with its compression and whether it is
 * non-distributable/foreign (its blob may live at `urls` instead of the registry). */
bool image_layer_media_type_info(const char *media_type, compression_t *compression,
                                 bool *nondistributable);
/* The media type for a new (distributable) layer in a manifest of `kind`; NULL when that kind
 * cannot carry it (Docker schema2 + zstd). */
const char *image_layer_media_type(manifest_kind_t kind, compression_t compression);

/* ---- platform ---- */
typedef struct image_platform {
    char *architecture; /* "amd64", "arm64" */
    char *os;           /* "linux" */
    char *variant;      /* "v8", or NULL */
    char *os_version;   /* NULL if absent */
    char **os_features; /* NULL if absent */
} image_platform_t;

image_platform_t *image_platform_new(const char *os, const char *architecture, const char *variant);
image_platform_t *image_platform_dup(const image_platform_t *p);
void image_platform_free(image_platform_t *p);
static inline void cleanup_image_platformp(image_platform_t **p)
{
    image_platform_free(*p);
    *p = NULL;
}
#define cleanup_image_platform __attribute__((cleanup(cleanup_image_platformp)))

/* Normalises in place the way container tools compare platforms: os lowercase ("macos" ->
 * "darwin"); x86_64/x86-64 -> amd64 (variant v1 dropped); aarch64 -> arm64 with variant "v8"
 * when absent or "8"; i386/i686 -> 386; armhf -> arm/v7, armel -> arm/v6, arm defaults to v7 and
 * variant "7" becomes "v7". */
void image_platform_normalize(image_platform_t *p);
/* True when `have` (an image's platform) satisfies `want`: same os and architecture after
 * normalisation, and the same variant unless `want` names none. os.version/features ignored. */
bool image_platform_match(const image_platform_t *want, const image_platform_t *have);
/* This machine's platform (uname), normalised.  Never NULL. */
image_platform_t *image_platform_host(void);
/* "os/arch[/variant]" (the --platform flag) */
BERTH_MUST_CHECK int image_platform_parse(const char *s, image_platform_t **out,
                                          berth_error_t *err);
char *image_platform_string(const image_platform_t *p); /* "linux/arm64/v8" */

/* ---- descriptor ---- */
typedef struct image_descriptor {
    char *media_type;
    char *digest;
    int64_t size;
    char **urls;                /* NULL if absent */
    json_t *annotations;        /* object of strings, NULL if absent */
    image_platform_t *platform; /* NULL if absent */
    char *artifact_type;        /* NULL if absent */
    char *data;                 /* base64 embedded content (OCI 1.1), NULL if absent; not
                                   decoded or checked against the digest here */
} image_descriptor_t;

/* Deep copy into *dst (which is overwritten, not freed). */
void image_descriptor_copy(image_descriptor_t *dst, const image_descriptor_t *src);
/* Frees the members and zeroes the struct (the struct itself is not freed). */
void image_descriptor_clear(image_descriptor_t *d);
/* Checks media type syntax, digest, size >= 0, platform fields; `where` prefixes errors. */
BERTH_MUST_CHECK int image_descriptor_validate(const image_descriptor_t *d, const char *where,
                                               berth_error_t *err);

/* ---- manifest (OCI image manifest / Docker schema2) ---- */
typedef struct image_manifest {
    manifest_kind_t kind; /* MANIFEST_KIND_OCI_MANIFEST or MANIFEST_KIND_DOCKER_V2 */
    int schema_version;   /* 2 */
    image_descriptor_t config;
    image_descriptor_t *layers;
    size_t n_layers;
    image_descriptor_t *subject; /* OCI only, NULL if absent */
    char *artifact_type;         /* OCI only, NULL if absent */
    json_t *annotations;         /* OCI only, NULL if absent */
    json_t *raw;                 /* parsed document, NULL if built by hand */
} image_manifest_t;

/* Parses and validates.  Fails for input over IMAGE_MANIFEST_MAX_SIZE, non-JSON, duplicate
 * keys, wrong field types, a mediaType that is not a manifest (index, schema1, unknown), and
 * whatever image_manifest_validate refuses. */
BERTH_MUST_CHECK int image_manifest_parse(const void *buf, size_t len, image_manifest_t **out,
                                          berth_error_t *err);
/* schemaVersion 2, a manifest kind, a valid config descriptor, layers valid; subject valid. */
BERTH_MUST_CHECK int image_manifest_validate(const image_manifest_t *m, berth_error_t *err);
/* Validates, then writes canonical JSON (*out NUL-terminated, *len without the NUL). */
BERTH_MUST_CHECK int image_manifest_serialize(const image_manifest_t *m, char **out, size_t *len,
                                              berth_error_t *err);
/* Converts between MANIFEST_KIND_OCI_MANIFEST and MANIFEST_KIND_DOCKER_V2: config and layer
 * media types are mapped, digests, sizes and urls kept.  OCI -> Docker drops annotations and
 * fails for zstd layers, a subject, an artifactType or a non-image config.  The config
 * descriptor keeps its digest: a caller that also converts the config blob
 * (image_config_convert) replaces config.digest/size afterwards.  Converting to the same kind
 * is a copy.  `raw` of the result is NULL. */
BERTH_MUST_CHECK int image_manifest_convert(const image_manifest_t *m, manifest_kind_t to,
                                            image_manifest_t **out, berth_error_t *err);
image_manifest_t *image_manifest_dup(const image_manifest_t *m);
void image_manifest_free(image_manifest_t *m);
static inline void cleanup_image_manifestp(image_manifest_t **m)
{
    image_manifest_free(*m);
    *m = NULL;
}
#define cleanup_image_manifest __attribute__((cleanup(cleanup_image_manifestp)))

/* ---- index (OCI image index / Docker manifest list) ---- */
typedef struct image_index {
    manifest_kind_t kind; /* MANIFEST_KIND_OCI_INDEX or MANIFEST_KIND_DOCKER_LIST */
    int schema_version;
    image_descriptor_t *manifests;
    size_t n_manifests;
    image_descriptor_t *subject; /* OCI only */
    char *artifact_type;         /* OCI only */
    json_t *annotations;         /* OCI only */
    json_t *raw;
} image_index_t;

BERTH_MUST_CHECK int image_index_parse(const void *buf, size_t len, image_index_t **out,
                                       berth_error_t *err);
BERTH_MUST_CHECK int image_index_validate(const image_index_t *ix, berth_error_t *err);
BERTH_MUST_CHECK int image_index_serialize(const image_index_t *ix, char **out, size_t *len,
                                           berth_error_t *err);
/* OCI index <-> Docker list: entry media types mapped (manifest <-> schema2, index <-> list);
 * digests are kept, so a caller converting the child manifests too updates the entries.
 * OCI -> Docker drops annotations and fails for a subject or non-manifest entries. */
BERTH_MUST_CHECK int image_index_convert(const image_index_t *ix, manifest_kind_t to,
                                         image_index_t **out, berth_error_t *err);
/* First entry whose platform matches `want` (image_platform_match); NULL if none. */
const image_descriptor_t *image_index_find_platform(const image_index_t *ix,
                                                    const image_platform_t *want);
image_index_t *image_index_dup(const image_index_t *ix);
void image_index_free(image_index_t *ix);
static inline void cleanup_image_indexp(image_index_t **ix)
{
    image_index_free(*ix);
    *ix = NULL;
}
#define cleanup_image_index __attribute__((cleanup(cleanup_image_indexp)))

/* ---- image config (OCI config / Docker config) ---- */
typedef struct image_healthcheck {
    char **test;            /* ["CMD", ...] / ["CMD-SHELL", "..."] / ["NONE"]; NULL if absent */
    int64_t interval;       /* nanoseconds, 0 = inherit */
    int64_t timeout;        /* nanoseconds */
    int64_t start_period;   /* nanoseconds */
    int64_t start_interval; /* nanoseconds */
    int64_t retries;
} image_healthcheck_t;

typedef struct image_exec_config {
    char *user;
    char **exposed_ports; /* keys of ExposedPorts ("80/tcp") */
    char **env;           /* "K=V" */
    char **entrypoint;    /* NULL = absent; an empty list is kept as [] */
    char **cmd;           /* same */
    char **volumes;       /* keys of Volumes */
    char *working_dir;
    json_t *labels; /* object of strings */
    char *stop_signal;
    bool args_escaped;
    /* Docker only: dropped when converting to OCI */
    image_healthcheck_t *healthcheck;
    char **onbuild;
    char **shell;
} image_exec_config_t;

typedef struct image_history {
    char *created; /* RFC 3339 */
    char *created_by;
    char *author;
    char *comment;
    bool empty_layer;
} image_history_t;

/* Parses an RFC 3339 time as image configs carry it ("2006-01-02T15:04:05[.frac](Z|+hh:mm)";
 * a space is accepted for 'T') into unix seconds (fraction dropped).  -1 when malformed. */
int image_time_parse(const char *s, int64_t *out);
/* RFC 3339 UTC time of ts seconds since the epoch, or of now with nanoseconds when ts < 0
 * (image configs, history, records). Owned by the caller. */
char *image_time_format(int64_t ts);

typedef struct image_config {
    char *created; /* RFC 3339, NULL if absent */
    char *author;
    char *architecture; /* required */
    char *os;           /* required */
    char *variant;
    char *os_version;
    char **os_features;
    bool has_config; /* the "config" object was present (or is to be written) */
    image_exec_config_t config;
    char *rootfs_type; /* "layers" */
    char **diff_ids;   /* uncompressed layer digests, bottom first; never NULL after parse */
    image_history_t *history;
    size_t n_history;
    /* Docker only: dropped when converting to OCI */
    char *docker_version;
    char *container;
    json_t *container_config;
    json_t *raw;
} image_config_t;

/* Parses and validates.  Fails over IMAGE_CONFIG_MAX_SIZE, on non-JSON, wrong types, and what
 * image_config_validate refuses. */
BERTH_MUST_CHECK int image_config_parse(const void *buf, size_t len, image_config_t **out,
                                        berth_error_t *err);
/* architecture and os present, rootfs.type "layers", diff_ids valid digests. */
BERTH_MUST_CHECK int image_config_validate(const image_config_t *c, berth_error_t *err);
/* Canonical JSON; Docker-only fields are written when set. */
BERTH_MUST_CHECK int image_config_serialize(const image_config_t *c, char **out, size_t *len,
                                            berth_error_t *err);
/* To MANIFEST_KIND_OCI_MANIFEST: a copy without the Docker-only fields.  To
 * MANIFEST_KIND_DOCKER_V2: a full copy (a Docker config is a superset).  diff_ids and history
 * are always kept.  Serialise the result for the new config blob. */
BERTH_MUST_CHECK int image_config_convert(const image_config_t *c, manifest_kind_t to,
                                          image_config_t **out, berth_error_t *err);
image_config_t *image_config_dup(const image_config_t *c);
/* The number of history entries that are not empty_layer (should equal the diff_ids count). */
size_t image_config_history_layers(const image_config_t *c);
void image_config_free(image_config_t *c);
static inline void cleanup_image_configp(image_config_t **c)
{
    image_config_free(*c);
    *c = NULL;
}
#define cleanup_image_config __attribute__((cleanup(cleanup_image_configp)))

#endif
