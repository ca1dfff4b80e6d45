/* Sigstore (cosign-format) image signatures: the on-disk form berth passes around, the public
 * keys of policy.json's "sigstoreSigned" and the verification of one signature.
 *
 * Signature lists (get_signatures/put_signatures of the transports) hold opaque byte strings.
 * Like containers/image, a string that starts with a NUL byte names its format on the first
 * line: "\0sigstore-json\n{JSON}" is a sigstore signature, "\0simple-signing\n..." a simple
 * signing one; anything else is a simple signing signature (the older form, what berth and
 * skopeo write for them).  The sigstore JSON is
 *     {"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json",
 *      "payload":"<base64 of the payload>",
 *      "annotations":{"dev.cosignproject.cosign/signature":"<base64 signature>", ...}}
 * which is the form skopeo writes into dir: (signature-N), so dir: images interoperate.  On a
 * registry each such signature is one layer of the OCI manifest tagged sha256-<hex>.sig
 * (docker.c): payload = layer blob, mimeType = layer media type, annotations = layer's.
 *
 * The payload is JSON:
 *     {"critical":{"identity":{"docker-reference":"host/repo:tag"},
 *                  "image":{"docker-manifest-digest":"sha256:..."},
 *                  "type":"cosign container image signature"},
 *      "optional":null | {"creator":"...","timestamp":N,...}}
 * parsed strictly as containers/image does (critical and its members have exactly these
 * fields).  The signature is over the payload bytes, with SHA-256 for ECDSA (any curve OpenSSL
 * knows, P-256 and P-384 included) and RSA (PKCS#1 v1.5), and pure Ed25519.
 */
#ifndef BERTH_TRANSPORT_SIGSTORE_H
#define BERTH_TRANSPORT_SIGSTORE_H

#include "common/error.h"
#include "transport/signature.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGSTORE_BLOB_PREFIX     "\0sigstore-json\n"
#define SIGSTORE_BLOB_PREFIX_LEN 15
#define SIMPLE_BLOB_PREFIX       "\0simple-signing\n"
#define SIMPLE_BLOB_PREFIX_LEN   16
#define SIGSTORE_MIME_TYPE       "application/vnd.dev.cosign.simplesigning.v1+json"
#define SIGSTORE_SIGNATURE_ANN   "dev.cosignproject.cosign/signature"
#define SIGSTORE_TYPE            "cosign container image signature"
/* payload blobs, like simple signing signatures */
#define SIGSTORE_PAYLOAD_MAX SIGNATURE_MAX_SIZE
/* the base64 signature annotation (an RSA-16384 signature is under 3 KiB of base64) */
#define SIGSTORE_SIGNATURE_MAX (64u * 1024)
/* public key files and keyData */
#define SIGSTORE_KEY_MAX (1024u * 1024)

enum signature_format {
    SIGNATURE_FORMAT_SIMPLE,
    SIGNATURE_FORMAT_SIGSTORE,
    SIGNATURE_FORMAT_UNKNOWN
};

/* The format of a signature blob; body and body_len (optional) receive the bytes after the
 * format line (the whole blob for the older untagged simple signing form). */
enum signature_format signature_blob_format(const char *blob, size_t len, const char **body,
                                            size_t *body_len);

/* A sigstore signature taken apart (nothing verified). */
struct sigstore_sig {
    char *mime_type;
    char *payload; /* NUL-terminated for convenience; payload_len bytes */
    size_t payload_len;
    json_t *annotations; /* an object of strings, never NULL after a successful parse */
};
void sigstore_sig_clear(struct sigstore_sig *s);

/* Parses a "\0sigstore-json\n" blob (EINVAL naming what is wrong). */
BERTH_MUST_CHECK int sigstore_blob_parse(const char *blob, size_t len, struct sigstore_sig *out,
                                         berth_error_t *err);
/* Builds the blob; annotations NULL means none.  *out (len bytes) owned by caller. */
BERTH_MUST_CHECK int sigstore_blob_make(const char *mime_type, const char *payload,
                                        size_t payload_len, const json_t *annotations, char **out,
                                        size_t *len, berth_error_t *err);

/* Standard base64 with padding, no whitespace.  decode: -1 on bad input; *out NUL-terminated,
 * owned by caller. */
int sigstore_base64_decode(const char *s, size_t n, char **out, size_t *len);
char *sigstore_base64_encode(const void *buf, size_t len);

/* A public key (PEM "PUBLIC KEY": ECDSA, RSA or Ed25519). */
struct sigstore_pubkey;
/* From a file (path) or from PEM bytes (data, data_len). */
BERTH_MUST_CHECK int sigstore_pubkey_load(const char *path, const char *data, size_t data_len,
                                          struct sigstore_pubkey **out, berth_error_t *err);
void sigstore_pubkey_free(struct sigstore_pubkey *k);

/* Parses a payload strictly; fills manifest_digest and docker_reference (normalized). */
BERTH_MUST_CHECK int sigstore_payload_parse(const char *payload, size_t len,
                                            struct signature_info *out, berth_error_t *err);

/* Verifies a sigstore signature blob: media type, the signature annotation over the payload
 * with key, then the payload (sigstore_payload_parse).  The caller checks the digest
 * (signature_check_manifest) and the identity.  Errors (EACCES/EINVAL) say why. */
BERTH_MUST_CHECK int sigstore_verify(const struct sigstore_pubkey *key, const char *blob,
                                     size_t len, struct signature_info *out, berth_error_t *err);

/* Signs the manifest (its sha256 digest is computed here) as the image docker_ref (normalized)
 * with a cosign private key file (PEM "ENCRYPTED SIGSTORE PRIVATE KEY" or "ENCRYPTED COSIGN
 * PRIVATE KEY": scrypt and NaCl secretbox over a PKCS#8 key).  passphrase_file: its first line
 * is the passphrase (NULL: empty).  *out is a "\0sigstore-json\n" blob owned by the caller. */
BERTH_MUST_CHECK int sigstore_sign(const char *manifest, size_t manifest_len,
                                   const char *docker_ref, const char *key_path,
                                   const char *passphrase_file, char **out, size_t *len,
                                   berth_error_t *err);

/* NaCl crypto_secretbox_open (XSalsa20-Poly1305): box is the 16-byte tag then the ciphertext.
 * EACCES when the tag does not match.  *out (out_len bytes) owned by caller. */
BERTH_MUST_CHECK int sigstore_secretbox_open(const uint8_t *box, size_t len,
                                             const uint8_t nonce[24], const uint8_t key[32],
                                             uint8_t **out, size_t *out_len, berth_error_t *err);

#endif
