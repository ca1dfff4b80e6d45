/* Image transports: a reference ("oci:/path:tag", "docker://quay.io/x:y") names an image in some
 * transport; it opens an image source (read) or an image destination (write).
 *
 * Contracts:
 *  - Sources do not verify: the copy engine verifies every blob's digest and size while streaming.
 *  - A destination's put_blob writes to a temporary name, hashes while writing, fsyncs and renames;
 *    on any error it removes the temporary data.  Nothing becomes visible before commit() where
 *    the format allows (e.g. index.json of an OCI layout, the image record of the store).
 *  - Manifests are passed as the exact bytes; their digest is the digest of those bytes.
 *  - Each backend is a `const struct transport_ops` with designated initialisers, found by name
 *    with transport_lookup().
 */
#ifndef BERTH_TRANSPORT_H
#define BERTH_TRANSPORT_H

#include "common/error.h"
#include "common/stream.h"

#include <stdbool.h>
#include <stdint.h>

struct storage_store;

/* Settings that travel from the CLI to every transport, like containers/image's SystemContext. */
struct system_context {
    /* storage (containers-storage:) */
    struct storage_store *store; /* an open store to use (not owned); NULL: open one below */
    const char *storage_root;
    const char *storage_runroot;
    const char *storage_driver;
    /* registries (docker://) */
    const char *registries_conf;
    const char *auth_file;  /* --authfile */
    const char *creds;      /* --creds USER[:PASS] */
    bool no_creds;          /* --no-creds: anonymous, credentials are not looked up */
    const char *cert_dir;   /* --cert-dir */
    int tls_verify;         /* -1 unset (use registries.conf / default true), 0 false, 1 true */
    int retry_times;        /* -1 = default */
    int retry_delay_ms;     /* -1 = default (exponential backoff) */
    const char *user_agent; /* NULL = "berth/<version>" */
    /* what the copy or sync learns about registries (transport/registry_session.h); not owned.
     * copy_image and sync_run make one when NULL; a docker source or destination opened
     * without one keeps its own. */
    struct registry_session *registry_session;
    /* platform selection */
    const char *os_override;
    const char *arch_override;
    const char *variant_override;
    /* archives */
    const char *tmpdir; /* for archive staging; NULL = $TMPDIR or /var/tmp */
};

struct image_reference;
struct image_source;
struct image_destination;

/* Description of a blob as listed in a manifest (or known after writing it). */
struct blob_info {
    char *digest;     /* "sha256:..." or NULL when unknown (put_blob computes it) */
    int64_t size;     /* -1 when unknown */
    char *media_type; /* may be NULL */
    char **urls;      /* NULL-terminated or NULL */
};
void blob_info_clear(struct blob_info *b);
void blob_info_copy(struct blob_info *dst, const struct blob_info *src);

struct transport_ops {
    const char *name; /* "oci", "docker", ... as written before the ':' */
    /* Parses the part after "name:" ("//quay.io/x" for docker). */
    int (*parse_reference)(const char *within, struct image_reference **out, berth_error_t *err);
};

struct reference_ops {
    /* "transport:within" form, owned by caller */
    char *(*string)(const struct image_reference *ref);
    int (*new_source)(struct image_reference *ref, const struct system_context *sys,
                      struct image_source **out, berth_error_t *err);
    int (*new_destination)(struct image_reference *ref, const struct system_context *sys,
                           struct image_destination **out, berth_error_t *err);
    /* optional: NULL = not supported by this transport */
    int (*delete_image)(struct image_reference *ref, const struct system_context *sys,
                        berth_error_t *err);
    /* Frees everything: priv, docker_name and the struct itself (image_reference_free just
     * calls this). */
    void (*free)(struct image_reference *ref);
};

struct image_reference {
    const struct transport_ops *transport;
    const struct reference_ops *ops;
    /* the docker-style name attached to the reference, if any ("docker.io/library/x:tag"),
     * used for RepoTags, archive names and storage names; may be NULL */
    char *docker_name;
    void *priv;
};

struct image_source_ops {
    /* instance_digest NULL: the top-level manifest (which may be an index).  Otherwise the
     * manifest with that digest from the index.  *manifest, *mime owned by caller; mime may be
     * NULL when the transport does not know it (caller detects from content). */
    int (*get_manifest)(struct image_source *src, const char *instance_digest, char **manifest,
                        size_t *len, char **mime, berth_error_t *err);
    /* Opens the blob.  *size receives the size when known, else -1.  ENOENT status when the blob
     * does not exist. */
    int (*get_blob)(struct image_source *src, const struct blob_info *info, berth_reader_t **out,
                    int64_t *size, berth_error_t *err);
    /* optional: signatures as an array of byte strings; NULL = none stored */
    int (*get_signatures)(struct image_source *src, const char *instance_digest, char ***sigs,
                          size_t **lens, size_t *n, berth_error_t *err);
    /* optional: when the source cannot serve the manifest's layer blobs byte for byte (e.g. the
     * store keeps layers uncompressed), the descriptors it can serve instead, one per manifest
     * layer (*out owned by caller, n must equal the manifest's layer count).  *out NULL: serve
     * the manifest as is.  The copy engine then rewrites the manifest (DiffIDs unchanged). */
    int (*layer_infos_for_copy)(struct image_source *src, const char *instance_digest,
                                struct blob_info **out, size_t *n, berth_error_t *err);
    /* get_blob may be called from several threads at once */
    bool thread_safe_get_blob;
    /* Frees (priv and the struct). */
    void (*close)(struct image_source *src);
};

struct image_source {
    const struct image_source_ops *ops;
    struct image_reference *ref; /* not owned */
    void *priv;
};

struct image_destination_ops {
    /* Manifest media types accepted, most preferred first; NULL = anything. */
    const char *const *(*supported_manifest_types)(struct image_destination *dst);
    /* Whether a layer must be stored uncompressed/compressed: COMPRESSION_NONE means "as is". */
    bool desires_uncompressed_layers; /* e.g. dir: keeps as is => false; storage => n/a */
    bool accepts_foreign_layers;
    /* Uncompressed source layers are compressed (gzip) on the way, as containers/image does for
     * OCI layouts and registries.  false = kept as they are. */
    bool desires_compressed_layers;
    /* Checks whether the destination already has the blob; *reused true if so (no upload
     * needed).  May fill *out with the stored info. Optional (NULL: never reused). */
    int (*try_reuse_blob)(struct image_destination *dst, const struct blob_info *info, bool *reused,
                          struct blob_info *out, berth_error_t *err);
    /* optional: called once per image before its blobs, with the layer descriptors as the
     * source lists them (the order of the image's layers) and the config bytes (already
     * verified).  Lets a destination that builds layers on their parents (the store) plan. */
    int (*prepare_image)(struct image_destination *dst, const struct blob_info *layers,
                         size_t n_layers, const char *config, size_t config_len,
                         berth_error_t *err);
    /* Stores a blob from stream.  info->digest/size may be NULL/-1 (then computed); when given,
     * the destination must verify them and fail without keeping anything on mismatch.  *out
     * receives the stored digest and size.  is_config marks the image config blob. */
    int (*put_blob)(struct image_destination *dst, berth_reader_t *stream,
                    const struct blob_info *info, bool is_config, struct blob_info *out,
                    berth_error_t *err);
    /* instance_digest NULL: the top-level manifest; else a manifest of an index's instance
     * (written before the index). */
    int (*put_manifest)(struct image_destination *dst, const char *manifest, size_t len,
                        const char *instance_digest, berth_error_t *err);
    /* optional */
    int (*put_signatures)(struct image_destination *dst, const char *instance_digest,
                          char *const *sigs, const size_t *lens, size_t n, berth_error_t *err);
    /* optional: fails when put_signatures would refuse these signatures (e.g. sigstore ones
     * where they cannot be stored); asked before the manifest is written, so that such a copy
     * leaves no new tag behind */
    int (*check_signatures)(struct image_destination *dst, char *const *sigs, const size_t *lens,
                            size_t n, berth_error_t *err);
    /* Makes the image visible. */
    int (*commit)(struct image_destination *dst, berth_error_t *err);
    bool thread_safe_put_blob;
    /* Frees (priv and the struct); if commit was not called, removes everything written. */
    void (*close)(struct image_destination *dst);
};

struct image_destination {
    const struct image_destination_ops *ops;
    struct image_reference *ref; /* not owned */
    void *priv;
};

/* Registry of transports.  transport_lookup returns NULL for unknown names (and for names
 * recognised but not implemented, e.g. "ostree": transport_parse_reference says so clearly). */
const struct transport_ops *transport_lookup(const char *name);
/* Is name a transport berth knows (implemented, or recognised as unsupported)?  For front ends
 * that decide whether "x:y" names a transport or an image. */
bool transport_name_is_known(const char *name);
/* Parses "transport:within"; a string without a known transport prefix is an error naming the
 * known transports.  For docker, within keeps the "//" ("docker://x" -> "//x"). */
BERTH_MUST_CHECK int transport_parse_reference(const char *s, struct image_reference **out,
                                               berth_error_t *err);
void image_reference_free(struct image_reference *ref);
static inline void cleanup_image_referencep(struct image_reference **r)
{
    if (*r)
        image_reference_free(*r);
    *r = NULL;
}
#define cleanup_image_reference __attribute__((cleanup(cleanup_image_referencep)))
char *image_reference_string(const struct image_reference *ref);

void image_source_close(struct image_source *src);
void image_destination_close(struct image_destination *dst);

#endif
