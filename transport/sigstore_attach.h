/* Sigstore signatures stored in a registry as "attachments" (cosign's layout, what
 * containers/image does with registries.d use-sigstore-attachments: true).
 *
 * The signatures of the manifest with digest sha256:<hex> live in the same repository, in the
 * OCI image manifest tagged sha256-<hex>.sig: each layer is one signature (its blob is the
 * payload, its media type and annotations those of the signature, see sigstore.h); the config
 * is a minimal OCI image config whose rootfs.diff_ids lists the payload digests.
 *
 * Reading: a 404 for the tag means no signatures; the manifest must be an OCI image manifest;
 * at most SIGSTORE_ATTACH_MAX_SIGS layers; each payload at most SIGSTORE_PAYLOAD_MAX bytes (and
 * SIGSTORE_ATTACH_MAX_TOTAL in all), checked against its layer digest and size.  Writing merges:
 * signatures already attached (same media type, payload digest and annotations) are not added
 * twice, others are kept, and nothing is written when all are already there.  Payload and config
 * blobs are uploaded before the manifest, so a failure never leaves a manifest naming missing
 * blobs.
 */
#ifndef BERTH_TRANSPORT_SIGSTORE_ATTACH_H
#define BERTH_TRANSPORT_SIGSTORE_ATTACH_H

#include "common/error.h"
#include "transport/registry_client.h"

#include <stddef.h>

#define SIGSTORE_ATTACH_MAX_SIGS  1000
#define SIGSTORE_ATTACH_MAX_TOTAL (64u * 1024 * 1024) /* payload bytes read per image */

/* Appends the attached signatures of manifest_digest (as "\0sigstore-json\n" blobs) to
 * *sigs, *lens and *n (arrays grown with xreallocarray; each blob owned by the caller).  Errors
 * name the repository and tag. */
BERTH_MUST_CHECK int sigstore_attachments_get(registry_client_t *c, const char *repo,
                                              const char *manifest_digest, char ***sigs,
                                              size_t **lens, size_t *n, berth_error_t *err);

/* Attaches sigs (all sigstore blobs) to manifest_digest, merging with what is there. */
BERTH_MUST_CHECK int sigstore_attachments_put(registry_client_t *c, const char *repo,
                                              const char *manifest_digest, char *const *sigs,
                                              const size_t *lens, size_t n, berth_error_t *err);

#endif
