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
 * ("sigstore"/"sigstore-staging" are accepted as the older names).  The most specific "docker"
 * key wins (same scopes as policy.json), then default-docker, then the built-in default
 * (/var/lib/containers/sigstore for root, ~/.local/share/containers/sigstore otherwise).  The
 * signatures of an image are <base>/<repository path>@<algo>=<hex>/signature-<N>, N from 1.
 *
 * Only file:// locations are implemented; an http(s) location is skipped with a warning when
 * reading and is an error when writing.
 *
 * The directory: $BERTH_REGISTRIES_D when set, else ~/.config/containers/registries.d when it
 * exists, else /etc/containers/registries.d.
 */
#ifndef BERTH_TRANSPORT_LOOKASIDE_H
#define BERTH_TRANSPORT_LOOKASIDE_H

#include "common/error.h"

#include <stddef.h>

#define LOOKASIDE_MAX_SIGS   1000
#define LOOKASIDE_CONFIG_MAX (1024u * 1024)

/* docker_ref: the image's normalized docker reference ("host/repo:tag"); manifest_digest: the
 * digest the signatures belong to.  the *sigs and *lens arrays (and each signature) owned by
 * caller; *n 0 and *sigs NULL when there are none. */
int lookaside_get_signatures(const char *docker_ref, const char *manifest_digest, char ***sigs,
                             size_t **lens, size_t *n, berth_error_t *err);
/* Replaces the stored signatures of (docker_ref, manifest_digest) with sigs. */
int lookaside_put_signatures(const char *docker_ref, const char *manifest_digest, char *const *sigs,
                             const size_t *lens, size_t n, berth_error_t *err);

#endif
