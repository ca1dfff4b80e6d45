/* Signature "lookaside" storage for docker:// images (containers-registries.d(5)).
 *
 * registries.d holds YAML files (*.yaml, *.yml) that say where the signatures of a registry's
 * images live:
 *     default-docker:
 *       lookaside: file:///var/lib/containers/sigstore
 *     docker:
 *       registry.example.com/ns:
 *         lookaside: file:///srv/sigs
 *         lookaside-staging: file:///srv/staging     # where writes go, when set
 * ("sigstore"/"sigstore-staging" are accepted as the older names), and
 *         use-sigstore-attachments: true             # sigstore signatures as registry attachments
 * at either level.  The most specific "docker"
 * key wins (same scopes as policy.json), then default-docker, then the built-in default
 * (/var/lib/containers/sigstore for root, ~/.local/share/containers/sigstore otherwise).  The
 * signatures of an image are <base>/<repository path>@<algo>=<hex>/signature-<N>, N from 1.
 *
 * Reading: file:// locations are read from disk (missing signature-N ends the list; unreadable
 * storage is warned about and holds no signatures).  http:// and https:// locations are read
 * with GET like containers/image does: a 404 ends the list, any other answer than 200 and any
 * connection or TLS failure is an error naming the URL (connection failures, 429 and 5xx after
 * two more tries).  TLS is verified against the system CAs (or $SSL_CERT_FILE), not certs.d;
 * no credentials are sent; redirects only to http(s), at most 5; 30 s to connect, 120 s per
 * signature.  Each signature is at most SIGNATURE_MAX_SIZE bytes, at most LOOKASIDE_MAX_SIGS of
 * them and LOOKASIDE_MAX_TOTAL bytes in all are read.
 *
 * Writing: file:// only (the lookaside-staging location when set); an http(s) or other location
 * is an error, as in skopeo.
 *
 * The directory: $BERTH_REGISTRIES_D when set, else ~/.config/containers/registries.d when it
 * exists, else /etc/containers/registries.d.
 */
#ifndef BERTH_TRANSPORT_LOOKASIDE_H
#define BERTH_TRANSPORT_LOOKASIDE_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

#define LOOKASIDE_MAX_SIGS   1000
#define LOOKASIDE_CONFIG_MAX (1024u * 1024)
#define LOOKASIDE_MAX_TOTAL  (64u * 1024 * 1024)

/* docker_ref: the image's normalized docker reference ("host/repo:tag"); manifest_digest: the
 * digest the signatures belong to.  the *sigs and *lens arrays (and each signature) owned by
 * caller; *n 0 and *sigs NULL when there are none.  Errors are wrapped with the image name. */
BERTH_MUST_CHECK int lookaside_get_signatures(const char *docker_ref, const char *manifest_digest,
                                              char ***sigs, size_t **lens, size_t *n,
                                              berth_error_t *err);
/* Replaces the stored signatures of (docker_ref, manifest_digest) with sigs. */
BERTH_MUST_CHECK int lookaside_put_signatures(const char *docker_ref, const char *manifest_digest,
                                              char *const *sigs, const size_t *lens, size_t n,
                                              berth_error_t *err);

/* registries.d's use-sigstore-attachments for the image (same scopes, the most specific key
 * that sets it wins, then default-docker; false when none does): whether sigstore signatures
 * are read from and written to the registry as sha256-<hex>.sig attachments. */
BERTH_MUST_CHECK int lookaside_use_sigstore_attachments(const char *docker_ref, bool *out,
                                                        berth_error_t *err);

#endif
