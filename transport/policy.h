/* Signature verification policy: containers-policy.json(5).
 *
 * A policy maps (transport, scope) to a list of requirements that must all accept an image:
 * insecureAcceptAnything, reject, signedBy (GPG keys, "simple signing" signatures, see
 * signature.h), sigstoreSigned (keyPath/keyData public keys, cosign-format signatures, see
 * sigstore.h; Fulcio and Rekor are refused).  Unknown requirement types are refused when the
 * file is parsed (fail closed).  Parsing is strict like containers/image: unknown or duplicated
 * fields are errors, and the error names the key path ("transports.docker.\"quay.io\"[0].keyPath").
 *
 * Scopes: for docker (and atomic) the most specific scope is the full reference
 * ("host/ns/repo:tag" or "@digest"), then the repository, then each '/' prefix of it down to
 * the host, then "*.domain" wildcards for the host's parent domains; for dir, oci and
 * oci-archive the absolute path of the directory/file, then each parent directory.  The longest
 * match wins; "" is the transport's default and "default" the global one.  Simplifications:
 * containers-storage images are scoped by their docker name like docker images (no
 * "[driver@root]" prefix); docker-archive images only by "".  docker scopes must be a host, a
 * fully qualified name ("docker.io/library/busybox") or "*.domain": others never match and are
 * refused.  Transports the file names but berth does not know are ignored.
 *
 * Ownership: a struct policy belongs to whoever received it from policy_parse/policy_load* and
 * is released with policy_free (or cleanup_policy).
 */
#ifndef BERTH_TRANSPORT_POLICY_H
#define BERTH_TRANSPORT_POLICY_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

#define POLICY_MAX_SIZE (1024u * 1024)

struct policy;
struct image_reference;

BERTH_MUST_CHECK int policy_parse(const char *buf, size_t len, const char *what,
                                  struct policy **out, berth_error_t *err);
BERTH_MUST_CHECK int policy_load_file(const char *path, struct policy **out, berth_error_t *err);
/* The policy file to use: override when not NULL, else $HOME/.config/containers/policy.json when
 * it exists, else /etc/containers/policy.json when it exists; otherwise an ENOENT error
 * "no policy.json found ...".  *out owned by caller. */
BERTH_MUST_CHECK int policy_find_path(const char *override, char **out, berth_error_t *err);
/* policy_find_path + policy_load_file. */
BERTH_MUST_CHECK int policy_load_default(const char *override, struct policy **out,
                                         berth_error_t *err);

void policy_free(struct policy *p);
static inline void cleanup_policyp(struct policy **p)
{
    if (*p)
        policy_free(*p);
    *p = NULL;
}
#define cleanup_policy __attribute__((cleanup(cleanup_policyp)))

/* Decides whether an image is accepted.  transport: "docker", "dir", ...; scope_ref: the
 * transport's policy identity of the image (docker: the normalized "host/repo:tag" or
 * "@digest" reference; dir/oci: the absolute path).  For docker and atomic the scope_ref is also
 * the image's docker reference used by signedIdentity.  manifest: the exact top-level manifest
 * bytes; sigs: the image's signatures.  Returns 0 when every applicable requirement accepts,
 * <0 with an EACCES error naming the requirement that rejected it (and why). */
BERTH_MUST_CHECK int policy_check_image(const struct policy *p, const char *transport,
                                        const char *scope_ref, const char *manifest, size_t len,
                                        char *const *sigs, const size_t *sig_lens, size_t nsigs,
                                        berth_error_t *err);
/* Same, with the image's docker reference given separately (NULL: the image has none, e.g. a
 * dir: or oci: image; then only exactReference/exactRepository identities can match). */
BERTH_MUST_CHECK int policy_check_image_ident(const struct policy *p, const char *transport,
                                              const char *scope_ref, const char *docker_ref,
                                              const char *manifest, size_t len, char *const *sigs,
                                              const size_t *sig_lens, size_t nsigs,
                                              berth_error_t *err);

/* The policy identity and docker reference of a transport reference (both owned by caller;
 * *docker_ref may be NULL). */
BERTH_MUST_CHECK int policy_reference_identity(const struct image_reference *ref, char **scope_ref,
                                               char **docker_ref, berth_error_t *err);

/* The scopes an image identity falls in, most specific first (see above); NULL-terminated,
 * owned by caller (NULL for an empty identity). */
char **policy_scope_candidates(const char *transport, const char *identity);

/* The copy engine's check: the policy for src (its reference's identity, its top-level
 * manifest and its signatures via get_signatures).  manifest is the top-level manifest the
 * source served. */
struct image_source;
BERTH_MUST_CHECK int policy_check_source(const struct policy *p, struct image_source *src,
                                         const char *manifest, size_t len, berth_error_t *err);

#endif
