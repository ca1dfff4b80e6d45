/* Distribution API v2 client: manifests (GET with digest checks, HEAD, PUT, DELETE). */
#include "transport/registry_internal.h"
#include "transport/manifest.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- manifests ---------- */

static const char manifest_accept[] =
    MEDIA_OCI_MANIFEST ", " MEDIA_OCI_INDEX ", " MEDIA_DOCKER_MANIFEST ", " MEDIA_DOCKER_LIST;

static bool is_digest_ref(const char *ref)
{
    return strchr(ref, ':') != NULL;
}

static char *media_base(const char *ct)
{
    if (!ct)
        return NULL;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return xstrndup(ct, n);
}

int registry_get_manifest(registry_client_t *c, const char *repo, const char *ref, char **body,
                          size_t *len, char **mime, char **digest, berth_error_t *err)
{
    char scope[512];
    session_repo_scope(scope, sizeof(scope), repo, "pull");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = session_repo_url(c, repo, "manifests", ref, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {.method = "GET",
                         .url = url,
                         .scopes = scopes,
                         .accept = manifest_accept,
                         .max_body = REGISTRY_MANIFEST_MAX,
                         .idempotent = true,
                         .follow = true};
    if (session_do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "reading manifest %s in %s/%s", ref, c->registry, repo);
    if (resp.status != 200)
        return http_error(c, &resp, err, "reading manifest %s in %s/%s", ref, c->registry, repo);
    cleanup_free char *ct = media_base(resp.content_type);
    /* one detector for every command (transport/manifest.h) */
    const char *detected = mf_detect(resp.body ? resp.body : "", resp.len, NULL);
    if ((ct && (strcmp(ct, MEDIA_DOCKER_SCHEMA1) == 0 || strcmp(ct, MEDIA_DOCKER_SCHEMA1S) == 0)) ||
        (detected &&
         (strcmp(detected, MT_DOCKER_V2S1) == 0 || strcmp(detected, MT_DOCKER_V2S1_SIG) == 0)))
        return berth_error_make_status(
            err, ENOTSUP,
            "reading manifest %s in %s/%s: Docker schema 1 manifests are not supported "
            "(deprecated format); re-push the image with a current tool",
            ref, c->registry, repo);
    cleanup_free char *computed = NULL;
    const char *hdr = resp.digest;
    digest_algo_t algo = DIGEST_SHA256;
    if (is_digest_ref(ref)) {
        const char *hex;
        if (digest_parse(ref, &algo, &hex, err) < 0)
            return -1;
    } else if (hdr && strncmp(hdr, "sha512:", 7) == 0) {
        algo = DIGEST_SHA512;
    }
    computed = digest_buffer(algo, resp.body ? resp.body : "", resp.len);
    if (is_digest_ref(ref) && !digest_equal(computed, ref))
        return berth_error_make_status(err, EBADMSG,
                                       "manifest %s in %s/%s: content has digest %s, not the "
                                       "requested one",
                                       ref, c->registry, repo, computed);
    if (hdr && strncmp(hdr, digest_algo_name(algo), strlen(digest_algo_name(algo))) == 0 &&
        !digest_equal(hdr, computed))
        return berth_error_make_status(err, EBADMSG,
                                       "manifest %s in %s/%s: Docker-Content-Digest %s does not "
                                       "match the content's digest %s",
                                       ref, c->registry, repo, hdr, computed);
    if (mime) {
        const char *m = detected;
        if (ct && strcmp(ct, "application/json") != 0 && strcmp(ct, "text/plain") != 0)
            m = ct;
        *mime = m ? xstrdup(m) : NULL;
    }
    if (digest)
        *digest = steal_pointer(&computed);
    *len = resp.len;
    *body = resp.body ? steal_pointer(&resp.body) : xstrdup("");
    return 0;
}

int registry_head_manifest(registry_client_t *c, const char *repo, const char *ref, char **digest,
                           char **mime, int64_t *size, berth_error_t *err)
{
    char scope[512];
    session_repo_scope(scope, sizeof(scope), repo, "pull");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = session_repo_url(c, repo, "manifests", ref, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {.method = "HEAD",
                         .url = url,
                         .scopes = scopes,
                         .accept = manifest_accept,
                         .idempotent = true,
                         .follow = true};
    if (session_do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "checking manifest %s in %s/%s", ref, c->registry, repo);
    if (resp.status != 200)
        return http_error(c, &resp, err, "checking manifest %s in %s/%s", ref, c->registry, repo);
    if (digest) {
        *digest = NULL;
        if (resp.digest) {
            berth_error_t e2 = NULL;
            if (digest_validate(resp.digest, &e2) == 0)
                *digest = xstrdup(resp.digest);
            berth_error_release(&e2);
        }
    }
    if (mime)
        *mime = media_base(resp.content_type);
    if (size)
        *size = resp.content_length;
    return 0;
}

int registry_put_manifest(registry_client_t *c, const char *repo, const char *ref, const char *body,
                          size_t len, const char *mime, char **digest, berth_error_t *err)
{
    if (len > REGISTRY_MANIFEST_MAX)
        return berth_error_make_status(err, EFBIG, "manifest larger than %d bytes",
                                       REGISTRY_MANIFEST_MAX);
    if (!mime) {
        mime = mf_detect(body, len, NULL);
        if (mime && !mf_is_image(mime) && !mf_is_index(mime))
            mime = NULL; /* schema 1 is not written */
    }
    if (!mime)
        return berth_error_make_status(
            err, EINVAL, "writing manifest to %s/%s: unknown manifest type", c->registry, repo);
    char scope[512];
    session_repo_scope(scope, sizeof(scope), repo, "pull,push");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *computed = digest_buffer(DIGEST_SHA256, body, len);
    cleanup_free char *url = session_repo_url(c, repo, "manifests", ref, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {.method = "PUT",
                         .url = url,
                         .scopes = scopes,
                         .content_type = mime,
                         .body = body,
                         .body_len = len,
                         .idempotent = true};
    if (session_do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "writing manifest %s to %s/%s", ref, c->registry, repo);
    if (resp.status != 201 && resp.status != 200 && resp.status != 202)
        return http_error(c, &resp, err, "writing manifest %s to %s/%s", ref, c->registry, repo);
    if (resp.digest && strncmp(resp.digest, "sha256:", 7) == 0 &&
        !digest_equal(resp.digest, computed))
        return berth_error_make_status(err, EBADMSG,
                                       "writing manifest %s to %s/%s: registry stored digest %s, "
                                       "expected %s",
                                       ref, c->registry, repo, resp.digest, computed);
    if (digest)
        *digest = steal_pointer(&computed);
    return 0;
}

int registry_delete_manifest(registry_client_t *c, const char *repo, const char *digest,
                             berth_error_t *err)
{
    if (digest_validate(digest, err) < 0)
        return -1;
    char scope[512];
    session_repo_scope(scope, sizeof(scope), repo, "pull,push,delete");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = session_repo_url(c, repo, "manifests", digest, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {.method = "DELETE", .url = url, .scopes = scopes, .idempotent = true};
    if (session_do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "deleting %s@%s", repo, digest);
    if (resp.status == 405)
        return http_error(c, &resp, err,
                          "deleting %s/%s@%s (the registry does not allow deletion; distribution "
                          "needs REGISTRY_STORAGE_DELETE_ENABLED=true)",
                          c->registry, repo, digest);
    if (resp.status != 202 && resp.status != 200 && resp.status != 204)
        return http_error(c, &resp, err, "deleting %s/%s@%s", c->registry, repo, digest);
    return 0;
}
