/* A Docker Registry HTTP API v2 / OCI distribution-spec client over libcurl.
 *
 * One registry_client_t talks to one registry host.  It is thread-safe: every call uses its own
 * curl easy handle, while connections, DNS and TLS sessions are shared between them through a
 * curl share handle, and the token cache is guarded by a mutex.
 *
 * Auth: the first request pings /v2/ and remembers the challenge (none, Basic, Bearer).  Bearer
 * tokens are fetched per scope set ("repository:R:pull", ...) and cached until expiry; Basic
 * credentials are sent when the registry asks for Basic.  Credentials come from the options or
 * the auth files (auth.h); they are never logged.
 *
 * TLS: verified by default against the system CAs plus the CA files (NAME.crt) of the
 * registry's certs.d directory (or cert_dir); NAME.cert with NAME.key there is a client
 * certificate. tls_verify=0 disables verification and also allows falling back to plain HTTP.
 *
 * Errors: HTTP failures carry the registry's own error messages and the status; the error
 * status is ENOENT for 404, EACCES for 401/403, EAGAIN for 429, EIO/EPROTO otherwise.
 * Idempotent requests are retried with exponential backoff on connection errors, 429 and 5xx;
 * Retry-After is honoured.
 */
#ifndef BERTH_REGISTRY_CLIENT_H
#define BERTH_REGISTRY_CLIENT_H

#include "common/error.h"
#include "common/stream.h"

#include <stdbool.h>
#include <stdint.h>

#define REGISTRY_MANIFEST_MAX (4 * 1024 * 1024)
#define REGISTRY_JSON_MAX     (1024 * 1024)
#define REGISTRY_ERRBODY_MAX  (64 * 1024)

#define MEDIA_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_DOCKER_SCHEMA1  "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_DOCKER_SCHEMA1S "application/vnd.docker.distribution.manifest.v1+prettyjws"

struct registry_options {
    const char *registry; /* "host[:port]" as written in references ("docker.io" allowed) */
    int tls_verify;       /* -1: default (true), 0: off (and allow http), 1: on */
    bool insecure;        /* registries.conf insecure=true: same as tls_verify 0 unless 1 */
    const char *cert_dir; /* NULL: /etc/containers/certs.d/HOST[:PORT] and the user's */
    const char *username; /* explicit credentials (--creds), or NULL to look them up */
    const char *password;
    const char *auth_file; /* --authfile */
    bool no_creds;         /* do not look credentials up (anonymous) */
    int retry_times;       /* < 0: default 3 */
    int retry_delay_ms;    /* < 0: exponential backoff from 500 ms */
    const char *user_agent;
};

typedef struct registry_client registry_client_t;

BERTH_MUST_CHECK int registry_client_new(const struct registry_options *opts,
                                         registry_client_t **out, berth_error_t *err);
void registry_client_free(registry_client_t *c);
static inline void cleanup_registry_clientp(registry_client_t **c)
{
    registry_client_free(*c);
    *c = NULL;
}
#define cleanup_registry_client __attribute__((cleanup(cleanup_registry_clientp)))

/* The host that is contacted ("registry-1.docker.io" for docker.io). */
const char *registry_client_host(const registry_client_t *c);

/* GET /v2/: checks reachability and credentials.  Fails with EACCES on bad credentials. */
BERTH_MUST_CHECK int registry_ping(registry_client_t *c, berth_error_t *err);

/* GET a manifest by tag or digest.  Refuses schema1.  Checks Docker-Content-Digest against the
 * computed digest, and for a digest reference that the content has that digest.  *body
 * (NUL-terminated), *mime and *digest are owned by the caller; mime/digest may be NULL. */
BERTH_MUST_CHECK int registry_get_manifest(registry_client_t *c, const char *repo, const char *ref,
                                           char **body, size_t *len, char **mime, char **digest,
                                           berth_error_t *err);
/* HEAD a manifest: *digest (Docker-Content-Digest, may be NULL if the registry omits it),
 * *mime, *size.  ENOENT status when it does not exist.  Any out pointer may be NULL. */
BERTH_MUST_CHECK int registry_head_manifest(registry_client_t *c, const char *repo, const char *ref,
                                            char **digest, char **mime, int64_t *size,
                                            berth_error_t *err);
/* PUT a manifest under ref (tag or digest); mime NULL: detected from the content.  *digest
 * (optional) receives the manifest's digest. */
BERTH_MUST_CHECK int registry_put_manifest(registry_client_t *c, const char *repo, const char *ref,
                                           const char *body, size_t len, const char *mime,
                                           char **digest, berth_error_t *err);
BERTH_MUST_CHECK int registry_delete_manifest(registry_client_t *c, const char *repo,
                                              const char *digest, berth_error_t *err);

/* Opens a blob for reading.  Redirects are followed; a download interrupted by the network is
 * resumed with a Range request (up to retry_times).  The reader does not verify the digest (the
 * copy engine does).  *size receives Content-Length or -1. */
BERTH_MUST_CHECK int registry_get_blob(registry_client_t *c, const char *repo, const char *digest,
                                       berth_reader_t **out, int64_t *size, berth_error_t *err);
/* HEAD a blob: 0 and *size when present; ENOENT status when absent. */
BERTH_MUST_CHECK int registry_head_blob(registry_client_t *c, const char *repo, const char *digest,
                                        int64_t *size, berth_error_t *err);
/* Cross-repository mount: *mounted true when the registry mounted it (201), false when it
 * opened an upload instead (which is cancelled). */
BERTH_MUST_CHECK int registry_mount_blob(registry_client_t *c, const char *repo, const char *digest,
                                         const char *from_repo, bool *mounted, berth_error_t *err);
/* Uploads a blob streaming from r: POST, then one streaming PATCH, then PUT ?digest=.  When
 * digest is NULL it is computed while sending; when given, the registry verifies it at the
 * final PUT (the data is not hashed twice).  When the data differ from digest/size, the upload
 * is cancelled and fails and the registry keeps nothing.  monolithic: POST then a single PUT
 * ?digest= carrying the data (needs the digest; ignored without one).  Opening and completing
 * the upload are retried; the data stream itself cannot be replayed.  *out_digest (optional,
 * owned) and *out_size receive what was sent. */
BERTH_MUST_CHECK int registry_put_blob(registry_client_t *c, const char *repo, berth_reader_t *r,
                                       const char *digest, int64_t size, bool monolithic,
                                       char **out_digest, int64_t *out_size, berth_error_t *err);

/* Tags of repo, following Link: rel="next" pages; page_size <= 0: registry default.  *tags is
 * NULL-terminated, owned by caller. */
BERTH_MUST_CHECK int registry_list_tags(registry_client_t *c, const char *repo, int page_size,
                                        char ***tags, size_t *n, berth_error_t *err);
BERTH_MUST_CHECK int registry_catalog(registry_client_t *c, int page_size, char ***repos, size_t *n,
                                      berth_error_t *err);

/* Statistics for tests and benchmarks: number of HTTP requests by method. */
struct registry_stats {
    unsigned long get, head, put, post, patch, del, token;
};
void registry_client_stats(registry_client_t *c, struct registry_stats *out);

#endif
