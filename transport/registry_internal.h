/* Shared by the registry client's own files only (registry_client.c: the HTTP session;
 * registry_auth.c, registry_manifests.c, registry_blobs.c, registry_tags.c).  Other modules use
 * transport/registry_client.h. */
#ifndef BERTH_REGISTRY_INTERNAL_H
#define BERTH_REGISTRY_INTERNAL_H

#include "common/digest.h"
#include "transport/auth.h"
#include "transport/registry_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct token_entry {
    char *scope;
    char *token;
    time_t expiry;
};

struct registry_client {
    char *registry; /* as written: key for certs.d and auth files */
    char *host;     /* contacted host[:port] */
    char *scheme;   /* "https" or "http" once known */
    bool verify;
    bool allow_http;
    char *ca_pem; /* combined system + certs.d CAs, or NULL for curl's default */
    size_t ca_pem_len;
    char *client_cert, *client_key;
    char *user, *pass;
    int retry_times, retry_delay_ms;
    char *user_agent;

    pthread_mutex_t ping_lock; /* one ping at a time; others wait for its result */
    char *ping_error;          /* a failed ping is not repeated for every request */
    pthread_mutex_t lock;      /* guards everything below */
    bool pinged;
    struct auth_challenge chal;
    struct token_entry *tokens;
    size_t ntokens;
    struct registry_stats stats;

    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

struct http_resp {
    long status;
    char *body;
    size_t len, max;
    bool too_big;
    int64_t content_length;
    char *content_type, *digest, *location, *www_auth, *link, *retry_after, *content_range;
};

struct upload_src {
    berth_reader_t *r;
    digester_t *dg;
    int64_t sent;
    int64_t limit; /* fail when more arrive; -1 none */
    berth_error_t err;
    bool overflow;
};

struct request {
    const char *method;
    const char *url;
    const char *const *scopes;
    const char *accept;
    const char *content_type;
    const char *range;
    const void *body;
    size_t body_len;
    struct upload_src *upload;
    int64_t upload_size; /* -1: chunked */
    size_t max_body;
    bool follow;
    bool idempotent;
    bool no_auth;
};

/* ---------- HTTP session (registry_client.c) ---------- */

void http_resp_reset_headers(struct http_resp *r);
void http_resp_clear(struct http_resp *r);
void http_resp_cleanup(struct http_resp *r);
#define cleanup_resp __attribute__((cleanup(http_resp_cleanup)))
/* curl header and body callbacks filling a struct http_resp (body bounded by r->max) */
size_t http_header_cb(char *buf, size_t size, size_t nitems, void *ud);
size_t http_body_cb(char *ptr, size_t size, size_t nmemb, void *ud);
/* An error for a failed response: the registry's own messages, the status mapped as in
 * registry_client.h; returns -1. */
int http_error(registry_client_t *c, const struct http_resp *r, berth_error_t *err, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));
/* Options every easy handle of this client gets (share, TLS, timeouts, protocols). */
void http_setup_easy(registry_client_t *c, CURL *e, char *errbuf);
void http_count_method(registry_client_t *c, const char *m);
void http_sleep_ms(long ms);
long http_backoff_ms(registry_client_t *c, int attempt, const char *retry_after);
bool http_retryable_curl(CURLcode rc);
bool http_retryable_status(long s);
BERTH_MUST_CHECK int http_curl_failure(registry_client_t *c, CURLcode rc, const char *errbuf,
                                       const char *method, const char *url, berth_error_t *err);
/* Resolves a Location header against the request URL; appends a query parameter when given. */
BERTH_MUST_CHECK int http_resolve_location(const char *base, const char *loc, const char *qname,
                                           const char *qval, char **out, berth_error_t *err);

BERTH_MUST_CHECK int session_ensure_pinged(registry_client_t *c, berth_error_t *err);
/* "<scheme>://<host>" once the ping has decided the scheme (owned). */
BERTH_MUST_CHECK int session_get_base(registry_client_t *c, char **out, berth_error_t *err);
/* One request with auth, a 401 refresh and retries of idempotent requests; 0 with any HTTP
 * status in resp, -1 when no response came. */
BERTH_MUST_CHECK int session_do_request(registry_client_t *c, const struct request *rq,
                                        struct http_resp *resp, berth_error_t *err);
/* "<base>/v2/<repo>/<kind>/<ref>" (kind: manifests or blobs), pinging first; NULL on error. */
BERTH_MUST_CHECK char *session_repo_url(registry_client_t *c, const char *repo, const char *kind,
                                        const char *ref, berth_error_t *err);
void session_repo_scope(char *buf, size_t n, const char *repo, const char *actions);

/* ---------- auth (registry_auth.c) ---------- */

/* The Authorization header to send for scopes (owned), or NULL when none is needed; refresh
 * fetches a new token instead of a cached one. */
BERTH_MUST_CHECK int session_auth_header(registry_client_t *c, const char *const *scopes,
                                         bool refresh, char **out, berth_error_t *err);

#endif
