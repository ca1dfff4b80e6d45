/* The copy engine: moves an image (or every image of an index) from a source reference to a
 * destination reference, blob by blob.
 *
 * Every blob is verified (digest and size) while it streams; blobs the destination already has
 * are skipped; the manifest is written last and the destination committed only when everything
 * succeeded — on any error the destination is closed without commit, which removes what was
 * written.  Manifest type and layer compression change only when asked or when the destination
 * requires it (docker-archive wants uncompressed layers, Docker schema 2 cannot carry zstd, an
 * OCI layout cannot hold a Docker manifest).  When layers are recompressed the manifest's layer
 * descriptors change and the config (and its DiffIDs) stays the same. */
#ifndef BERTH_TRANSPORT_COPY_H
#define BERTH_TRANSPORT_COPY_H

#include "common/error.h"
#include "common/stream.h"
#include "transport/transport.h"

#include <stdbool.h>
#include <stdio.h>

struct policy;

typedef enum {
    COPY_FORMAT_KEEP = 0, /* as the source, unless the destination requires otherwise */
    COPY_FORMAT_OCI,
    COPY_FORMAT_V2S2,
} copy_format_t;

struct copy_options {
    const struct system_context *src_sys; /* may be NULL */
    const struct system_context *dst_sys; /* may be NULL */
    bool all;                             /* --all: every instance of an index, then the index */
    copy_format_t format;                 /* --format */
    bool set_compression;                 /* --dest-compress-format given */
    compression_t compression;
    int compression_level; /* -1: default */
    bool preserve_digests; /* refuse any change of the manifest digest */
    bool remove_signatures;
    bool quiet;
    FILE *progress_out; /* NULL: stderr */
    int max_parallel;   /* blob transfers at once; 0: default (6, as skopeo) */
    /* platform selection for an index without --all (NULL: this machine) */
    const char *os, *arch, *variant;
    /* signature policy (transport/policy.h) the source must satisfy before anything is
     * written; NULL: no check */
    const struct policy *policy;
    /* --sign-by: GPG key that signs the top-level manifest written (transport/signature.h);
     * sign_identity: the docker reference claimed (NULL: the destination's docker name) */
    const char *sign_by;
    const char *sign_identity;
    const char *sign_passphrase_file;
    /* --sign-by-sigstore-private-key: cosign private key file (transport/sigstore.h); the
     * passphrase is sign_passphrase_file's too, as in skopeo */
    const char *sign_by_sigstore;
};

struct copy_result {
    char *manifest_digest; /* digest of the top-level manifest written */
};
void copy_result_clear(struct copy_result *r);

BERTH_MUST_CHECK int copy_image(struct image_reference *src, struct image_reference *dst,
                                const struct copy_options *opts, struct copy_result *res,
                                berth_error_t *err);

/* Shorthand: parses both references. */
BERTH_MUST_CHECK int copy_image_refs(const char *src, const char *dst,
                                     const struct copy_options *opts, struct copy_result *res,
                                     berth_error_t *err);

#endif
