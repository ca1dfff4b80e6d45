/* The docker:// transport: images in registries speaking the distribution API
 * ("docker://quay.io/org/app:tag", "docker://localhost:5000/x@sha256:...").
 *
 * References are normalised like docker's ("docker://busybox" is docker.io/library/busybox:latest).
 * registries.conf (sys->registries_conf or the default files) is honoured: blocked registries
 * are refused, [[registry]] location rewrites the name, insecure allows plain HTTP / unverified
 * TLS unless --tls-verify says otherwise, and sources try the mirrors first (pull-from-mirror).
 *
 * Blobs with a known digest are uploaded monolithically (POST, then PUT ?digest= with the
 * data); BERTH_REGISTRY_UPLOAD=chunked in the environment uses POST/PATCH/PUT instead.
 */
#ifndef BERTH_TRANSPORT_DOCKER_H
#define BERTH_TRANSPORT_DOCKER_H

#include "common/error.h"
#include "common/reference.h"
#include "transport/registry_client.h"
#include "transport/transport.h"

extern const struct transport_ops docker_transport;

/* The parsed, normalised reference of a docker:// image_reference (owned by it), or NULL when
 * ref is not a docker reference. */
const image_ref_t *docker_reference_ref(const struct image_reference *ref);

/* Opens a client for a docker reference's registry after applying registries.conf (location
 * rewrite, blocked, insecure); *repo receives the repository path on that registry (owned).
 * The client belongs to sys->registry_session, which must be set (EINVAL otherwise) and must
 * outlive the client's use. */
BERTH_MUST_CHECK int docker_open_client(const struct image_reference *ref,
                                        const struct system_context *sys,
                                        registry_client_t **client, char **repo,
                                        berth_error_t *err);

/* Builds registry options from sys for `registry` (strings point into sys / creds storage that
 * the caller keeps alive: *user_out and *pass_out are owned by the caller). */
BERTH_MUST_CHECK int docker_registry_options(const struct system_context *sys, const char *registry,
                                             bool insecure, struct registry_options *o,
                                             char **user_out, char **pass_out, berth_error_t *err);

#endif
