/* "Simple signing" image signatures (containers-signature(5)) with GPG keys through gpgme.
 *
 * A signature is an OpenPGP signed message (not detached, binary) whose content is JSON:
 *   {"critical": {"type": "atomic container signature",
 *                 "image": {"docker-manifest-digest": "sha256:..."},
 *                 "identity": {"docker-reference": "host/repo:tag"}},
 *    "optional": {"creator": "...", "timestamp": N}}
 * Verification checks the OpenPGP signature against trusted keys, then parses the payload
 * strictly (unknown critical fields are refused); callers then check the manifest digest
 * (signature_check_manifest) and the identity (policy.h decides how).
 */
#ifndef BERTH_TRANSPORT_SIGNATURE_H
#define BERTH_TRANSPORT_SIGNATURE_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

#define SIGNATURE_MAX_SIZE (4u * 1024 * 1024)
#define SIGNATURE_TYPE     "atomic container signature"
#define SIGNATURE_KEYS_MAX (4u * 1024 * 1024)

/* Creates a signature claiming that the manifest (its sha256 digest is computed here) is the
 * image docker_ref (normalized before signing).  key_id: fingerprint or anything gpg accepts to
 * name a secret key in the user's keyring ($GNUPGHOME or ~/.gnupg).  passphrase_file: NULL for
 * keys without passphrase (or an agent that has it).  *out (len bytes) owned by caller. */
BERTH_MUST_CHECK int signature_sign(const char *manifest, size_t manifest_len,
                                    const char *docker_ref, const char *key_id,
                                    const char *passphrase_file, char **out, size_t *len,
                                    berth_error_t *err);

/* What a verified signature says. */
struct signature_info {
    char *manifest_digest;  /* critical.image.docker-manifest-digest */
    char *docker_reference; /* critical.identity.docker-reference, normalized */
    char *fingerprint;      /* primary key fingerprint of the signer */
};
void signature_info_clear(struct signature_info *si);

/* A set of trusted keys in a private temporary GNUPGHOME (removed by signature_keyring_free). */
struct signature_keyring;
/* Imports the keys of every file in key_paths (NULL-terminated, may be NULL) and key_data
 * (binary or armored, may be NULL).  Fails when no key at all could be imported. */
BERTH_MUST_CHECK int signature_keyring_new(char *const *key_paths, const char *key_data,
                                           size_t key_data_len, struct signature_keyring **out,
                                           berth_error_t *err);
void signature_keyring_free(struct signature_keyring *kr);

/* Verifies the OpenPGP signature of blob and parses its payload.  kr NULL: the user's keyring,
 * and then fingerprints (NULL-terminated) must list the accepted signer fingerprints.  With kr,
 * any key of kr is accepted.  Errors say why (unknown key, bad signature, bad payload). */
BERTH_MUST_CHECK int signature_verify(struct signature_keyring *kr, char *const *fingerprints,
                                      const char *blob, size_t len, struct signature_info *out,
                                      berth_error_t *err);

/* Parses a "simple signing" payload ({"critical": {"type", "image": {docker-manifest-digest},
 * "identity": {docker-reference}}, "optional": {...}}), which GPG signatures and sigstore
 * (cosign) signatures both carry: exactly these critical fields, critical.type == type, a valid
 * digest, a normalizable reference.  cosign: "optional" may be null (cosign writes that), and
 * its creator/timestamp, when present, must be a string/an integer.  Messages start with fmt
 * ("signature payload", "sigstore payload"). */
BERTH_MUST_CHECK int signature_payload_parse(const char *buf, size_t len, size_t max,
                                             const char *type, bool cosign, const char *fmt,
                                             struct signature_info *out, berth_error_t *err);

/* Checks that si's manifest digest is the digest of manifest (same algorithm). */
BERTH_MUST_CHECK int signature_check_manifest(const struct signature_info *si, const char *manifest,
                                              size_t len, berth_error_t *err);

/* Normalizes a docker reference as signatures carry it ("busybox:1" ->
 * "docker.io/library/busybox:1"); *out owned. */
BERTH_MUST_CHECK int signature_normalize_reference(const char *ref, char **out, berth_error_t *err);

#endif
