/* Distribution API v2 client: blobs (a streaming, resuming GET; HEAD; mount; uploads). */
#include "transport/registry_internal.h"

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

#define BLOB_BUFFER_MAX (512 * 1024)

/* ---------- blobs: streaming GET ---------- */

struct blob_reader {
    berth_reader_t base;
    registry_client_t *c;
    char *url;
    char *scope;
    char *what;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    struct http_resp hdr; /* headers/status of the current response; body unused */
    char errbuf[CURL_ERROR_SIZE];
    char *buf;
    size_t len, off, cap;
    char *errbody;
    size_t errlen;
    bool running, eof;
    CURLcode result;
    int64_t received;    /* bytes delivered to our buffer across attempts */
    int64_t skip;        /* bytes to drop (a server ignored our Range) */
    bool first_data;     /* no body byte of the current response seen yet */
    int64_t range_start; /* what the current request asked to start at */
    bool paused;
    int64_t total;
    int resumes;
};

static size_t blob_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct blob_reader *b = ud;
    size_t n = size * nmemb;
    if (b->hdr.status != 200 && b->hdr.status != 206) {
        size_t room = REGISTRY_ERRBODY_MAX - b->errlen;
        size_t k = n < room ? n : room;
        b->errbody = xrealloc(b->errbody, b->errlen + k + 1);
        memcpy(b->errbody + b->errlen, ptr, k);
        b->errlen += k;
        b->errbody[b->errlen] = '\0';
        return n;
    }
    if (b->first_data) {
        b->first_data = false;
        /* a server that ignored our Range sends everything again: drop what we have */
        if (b->hdr.status == 200 && b->received > 0)
            b->skip = b->received;
    }
    /* keep memory flat: stop the transfer while BLOB_BUFFER_MAX waits to be read; curl delivers
     * this chunk again after curl_easy_pause(CURLPAUSE_CONT) */
    if (b->len > b->off && b->len - b->off + n > BLOB_BUFFER_MAX) {
        b->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (b->skip > 0) {
        size_t k = (int64_t)n < b->skip ? n : (size_t)b->skip;
        b->skip -= (int64_t)k;
        ptr += k;
        n -= k;
        if (n == 0)
            return size * nmemb;
    }
    if (b->len + n > b->cap) {
        /* the pause above bounds len + n by BLOB_BUFFER_MAX (or one chunk): no doubling */
        b->cap = b->len + n > BLOB_BUFFER_MAX ? b->len + n : BLOB_BUFFER_MAX;
        b->buf = xrealloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, ptr, n);
    b->len += n;
    b->received += (int64_t)n;
    return size * nmemb;
}

static void blob_stop(struct blob_reader *b)
{
    if (b->easy) {
        curl_multi_remove_handle(b->multi, b->easy);
        curl_easy_setopt(b->easy, CURLOPT_SHARE, NULL);
        curl_easy_cleanup(b->easy);
        b->easy = NULL;
    }
    curl_slist_free_all(b->hdrs);
    b->hdrs = NULL;
    b->running = false;
}

static int blob_start(struct blob_reader *b, bool refresh, berth_error_t *err)
{
    blob_stop(b);
    const char *scopes[] = {b->scope, NULL};
    cleanup_free char *authz = NULL;
    if (session_auth_header(b->c, scopes, refresh, &authz, err) < 0)
        return -1;
    b->easy = curl_easy_init();
    http_setup_easy(b->c, b->easy, b->errbuf);
    curl_easy_setopt(b->easy, CURLOPT_URL, b->url);
    curl_easy_setopt(b->easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(b->easy, CURLOPT_BUFFERSIZE, 256L * 1024L);
    curl_easy_setopt(b->easy, CURLOPT_HEADERFUNCTION, http_header_cb);
    curl_easy_setopt(b->easy, CURLOPT_HEADERDATA, &b->hdr);
    curl_easy_setopt(b->easy, CURLOPT_WRITEFUNCTION, blob_write_cb);
    curl_easy_setopt(b->easy, CURLOPT_WRITEDATA, b);
    if (authz) {
        b->hdrs = curl_slist_append(b->hdrs, authz);
        explicit_bzero(authz, strlen(authz));
    }
    if (b->received > 0) {
        char r[64];
        snprintf(r, sizeof(r), "Range: bytes=%lld-", (long long)b->received);
        b->hdrs = curl_slist_append(b->hdrs, r);
    }
    curl_easy_setopt(b->easy, CURLOPT_HTTPHEADER, b->hdrs);
    http_resp_reset_headers(&b->hdr);
    b->hdr.status = 0;
    free(b->errbody);
    b->errbody = NULL;
    b->errlen = 0;
    b->result = CURLE_OK;
    b->errbuf[0] = '\0';
    b->first_data = true;
    b->paused = false;
    b->skip = 0;
    b->range_start = b->received;
    http_count_method(b->c, "GET");
    curl_multi_add_handle(b->multi, b->easy);
    b->running = true;
    return 0;
}

/* Drives the transfer until data is buffered or it finishes. */
static int blob_pump(struct blob_reader *b, berth_error_t *err)
{
    while (b->running && b->len == b->off) {
        if (b->paused) {
            b->paused = false;
            b->off = b->len = 0;
            curl_easy_pause(b->easy, CURLPAUSE_CONT);
            if (b->len > b->off)
                break;
        }
        int still = 0;
        CURLMcode mc = curl_multi_perform(b->multi, &still);
        if (mc != CURLM_OK)
            return berth_error_make_status(err, EIO, "%s: %s", b->what, curl_multi_strerror(mc));
        if (!still) {
            int q;
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(b->multi, &q)) != NULL)
                if (msg->msg == CURLMSG_DONE)
                    b->result = msg->data.result;
            long st = 0;
            curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &st);
            if (st)
                b->hdr.status = st;
            b->running = false;
            break;
        }
        if (b->len > b->off)
            break;
        mc = curl_multi_poll(b->multi, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK)
            return berth_error_make_status(err, EIO, "%s: %s", b->what, curl_multi_strerror(mc));
    }
    return 0;
}

/* After the response headers are in: checks the status. 1 = retry (auth refresh/transient),
 * 0 = ok, -1 error. */
static int blob_check_status(struct blob_reader *b, int *attempt, bool *refreshed,
                             berth_error_t *err)
{
    long st = b->hdr.status;
    if (st == 200 || st == 206) {
        if (st == 206 && b->hdr.content_range) {
            long long start = -1;
            if (sscanf(b->hdr.content_range, "bytes %lld-", &start) != 1 || start != b->range_start)
                return berth_error_make_status(err, EPROTO, "%s: unexpected Content-Range \"%s\"",
                                               b->what, b->hdr.content_range);
        }
        if (b->total < 0 && st == 200 && b->hdr.content_length >= 0)
            b->total = b->hdr.content_length;
        return 0;
    }
    if (st == 0 && b->result != CURLE_OK) {
        /* no response at all */
        if (http_retryable_curl(b->result) && *attempt < b->c->retry_times) {
            long ms = http_backoff_ms(b->c, *attempt, NULL);
            log_warn("%s: %s, retrying in %ld ms", b->what,
                     b->errbuf[0] ? b->errbuf : curl_easy_strerror(b->result), ms);
            http_sleep_ms(ms);
            (*attempt)++;
            return 1;
        }
        return http_curl_failure(b->c, b->result, b->errbuf, "GET", b->url, err);
    }
    if (st == 401 && !*refreshed) {
        *refreshed = true;
        return 1;
    }
    if (http_retryable_status(st) && *attempt < b->c->retry_times) {
        long ms = http_backoff_ms(b->c, *attempt, b->hdr.retry_after);
        log_warn("%s: HTTP %ld, retrying in %ld ms", b->what, st, ms);
        http_sleep_ms(ms);
        (*attempt)++;
        return 1;
    }
    struct http_resp tmp = {.status = st, .body = b->errbody, .len = b->errlen};
    return http_error(b->c, &tmp, err, "%s", b->what);
}

/* Starts (or restarts) and waits for the response status. */
static int blob_open_response(struct blob_reader *b, berth_error_t *err)
{
    int attempt = 0;
    bool refreshed = false;
    for (;;) {
        if (blob_start(b, refreshed, err) < 0)
            return -1;
        /* wait until body bytes arrive or the transfer ends */
        while (b->running && b->len == b->off &&
               !(b->hdr.status >= 200 && b->hdr.status != 401 &&
                 (b->hdr.status < 300 || b->hdr.status >= 400) && b->errlen > 0)) {
            if (blob_pump(b, err) < 0)
                return -1;
        }
        int r = blob_check_status(b, &attempt, &refreshed, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
    }
}

static ssize_t blob_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct blob_reader *b = (struct blob_reader *)r;
    while (b->off == b->len) {
        if (b->eof)
            return 0;
        b->off = b->len = 0;
        if (b->running) {
            if (blob_pump(b, err) < 0)
                return -1;
            continue;
        }
        /* transfer finished and buffer drained */
        if (b->result == CURLE_OK && (b->total < 0 || b->received >= b->total)) {
            b->eof = true;
            return 0;
        }
        bool resumable = b->result == CURLE_OK || http_retryable_curl(b->result);
        if (!resumable || b->resumes >= b->c->retry_times) {
            if (b->result == CURLE_OK)
                return berth_error_make_status(err, EIO,
                                               "%s: connection closed after %lld of "
                                               "%lld bytes",
                                               b->what, (long long)b->received,
                                               (long long)b->total);
            return http_curl_failure(b->c, b->result, b->errbuf, "GET", b->url, err);
        }
        b->resumes++;
        log_warn("%s: interrupted after %lld bytes (%s), resuming (%d/%d)", b->what,
                 (long long)b->received, b->errbuf[0] ? b->errbuf : curl_easy_strerror(b->result),
                 b->resumes, b->c->retry_times);
        http_sleep_ms(http_backoff_ms(b->c, b->resumes - 1, NULL));
        if (blob_open_response(b, err) < 0)
            return -1;
    }
    size_t n = b->len - b->off;
    if (n > len)
        n = len;
    memcpy(buf, b->buf + b->off, n);
    b->off += n;
    return (ssize_t)n;
}

static void blob_close(berth_reader_t *r)
{
    struct blob_reader *b = (struct blob_reader *)r;
    blob_stop(b);
    if (b->multi)
        curl_multi_cleanup(b->multi);
    http_resp_clear(&b->hdr);
    free(b->errbody);
    free(b->buf);
    free(b->url);
    free(b->scope);
    free(b->what);
    free(b);
}

static const struct berth_reader_ops blob_reader_ops = {.read = blob_read, .close = blob_close};

int registry_get_blob(registry_client_t *c, const char *repo, const char *digest,
                      berth_reader_t **out, int64_t *size, berth_error_t *err)
{
    if (digest_validate(digest, err) < 0)
        return -1;
    if (session_ensure_pinged(c, err) < 0)
        return -1;
    struct blob_reader *b = xzalloc(sizeof(*b));
    b->base.ops = &blob_reader_ops;
    b->c = c;
    cleanup_free char *base = NULL;
    if (session_get_base(c, &base, err) < 0)
        return -1;
    b->url = xasprintf("%s/v2/%s/blobs/%s", base, repo, digest);
    b->scope = xasprintf("repository:%s:pull", repo);
    b->what = xasprintf("reading blob %s from %s/%s", digest, c->registry, repo);
    b->multi = curl_multi_init();
    b->total = -1;
    b->hdr.content_length = -1;
    if (blob_open_response(b, err) < 0) {
        blob_close(&b->base);
        return -1;
    }
    if (size)
        *size = b->total;
    *out = &b->base;
    return 0;
}

int registry_head_blob(registry_client_t *c, const char *repo, const char *digest, int64_t *size,
                       berth_error_t *err)
{
    if (digest_validate(digest, err) < 0)
        return -1;
    char scope[512];
    session_repo_scope(scope, sizeof(scope), repo, "pull");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = session_repo_url(c, repo, "blobs", digest, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {
        .method = "HEAD", .url = url, .scopes = scopes, .idempotent = true, .follow = true};
    if (session_do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "checking blob %s in %s/%s", digest, c->registry, repo);
    if (resp.status != 200)
        return http_error(c, &resp, err, "checking blob %s in %s/%s", digest, c->registry, repo);
    if (size)
        *size = resp.content_length;
    return 0;
}

static void cancel_upload(registry_client_t *c, const char *url, const char *const *scopes)
{
    cleanup_resp struct http_resp resp = {0};
    berth_error_t e = NULL;
    struct request rq = {.method = "DELETE", .url = url, .scopes = scopes};
    if (session_do_request(c, &rq, &resp, &e) < 0)
        log_debug("cancelling upload: %s", berth_error_msg(e));
    berth_error_release(&e);
}

static int start_upload(registry_client_t *c, const char *repo, const char *const *scopes,
                        const char *query, struct http_resp *resp, char **base_out,
                        berth_error_t *err)
{
    cleanup_free char *base = NULL;
    if (session_get_base(c, &base, err) < 0)
        return -1;
    cleanup_free char *url =
        xasprintf("%s/v2/%s/blobs/uploads/%s%s", base, repo, query ? "?" : "", query ? query : "");
    /* opening an upload session has no effect until data is sent: safe to retry */
    struct request rq = {.method = "POST",
                         .url = url,
                         .scopes = scopes,
                         .body = "",
                         .body_len = 0,
                         .idempotent = true};
    if (session_do_request(c, &rq, resp, err) < 0)
        return -1;
    *base_out = steal_pointer(&url);
    return 0;
}

int registry_mount_blob(registry_client_t *c, const char *repo, const char *digest,
                        const char *from_repo, bool *mounted, berth_error_t *err)
{
    *mounted = false;
    if (digest_validate(digest, err) < 0)
        return -1;
    char s1[512], s2[512];
    session_repo_scope(s1, sizeof(s1), repo, "pull,push");
    session_repo_scope(s2, sizeof(s2), from_repo, "pull");
    const char *scopes[] = {s1, s2, NULL};
    CURL *e = curl_easy_init();
    char *ed = curl_easy_escape(e, digest, 0);
    char *ef = curl_easy_escape(e, from_repo, 0);
    cleanup_free char *q = xasprintf("mount=%s&from=%s", ed, ef);
    curl_free(ed);
    curl_free(ef);
    curl_easy_cleanup(e);
    cleanup_resp struct http_resp resp = {0};
    cleanup_free char *url = NULL;
    if (start_upload(c, repo, scopes, q, &resp, &url, err) < 0)
        return berth_error_wrap(err, "mounting blob %s from %s into %s", digest, from_repo, repo);
    if (resp.status == 201) {
        *mounted = true;
        return 0;
    }
    if (resp.status == 202 && resp.location) {
        cleanup_free char *loc = NULL;
        berth_error_t e2 = NULL;
        if (http_resolve_location(url, resp.location, NULL, NULL, &loc, &e2) == 0)
            cancel_upload(c, loc, scopes);
        berth_error_release(&e2);
        return 0;
    }
    if (resp.status == 401 || resp.status == 403 || resp.status == 404)
        return 0; /* not allowed to read from_repo: just upload */
    return http_error(c, &resp, err, "mounting blob %s from %s into %s/%s", digest, from_repo,
                      c->registry, repo);
}

int registry_put_blob(registry_client_t *c, const char *repo, berth_reader_t *r, const char *digest,
                      int64_t size, bool monolithic, char **out_digest, int64_t *out_size,
                      berth_error_t *err)
{
    digest_algo_t algo = DIGEST_SHA256;
    if (digest) {
        const char *hex;
        if (digest_parse(digest, &algo, &hex, err) < 0)
            return -1;
    }
    if (monolithic && !digest)
        monolithic = false;
    char scope[512];
    session_repo_scope(scope, sizeof(scope), repo, "pull,push");
    const char *scopes[] = {scope, NULL};
    cleanup_resp struct http_resp resp = {0};
    cleanup_free char *post_url = NULL;
    if (start_upload(c, repo, scopes, NULL, &resp, &post_url, err) < 0)
        return berth_error_wrap(err, "starting blob upload to %s/%s", c->registry, repo);
    if (resp.status != 202 || !resp.location)
        return http_error(c, &resp, err, "starting blob upload to %s/%s", c->registry, repo);
    cleanup_free char *loc = NULL;
    if (http_resolve_location(post_url, resp.location, NULL, NULL, &loc, err) < 0)
        return -1;

    /* With a known digest the registry verifies it at PUT ?digest= (DIGEST_INVALID on a
     * mismatch, and nothing is kept), so the data is not hashed a second time here. */
    struct upload_src up = {.r = r, .dg = digest ? NULL : digester_new(algo), .limit = size};
    int ret = -1;
    cleanup_free char *computed = NULL;
    cleanup_free char *put_url = NULL;
    if (monolithic) {
        if (http_resolve_location(loc, loc, "digest", digest, &put_url, err) < 0)
            goto cancel;
        struct request rq = {.method = "PUT",
                             .url = put_url,
                             .scopes = scopes,
                             .content_type = "application/octet-stream",
                             .upload = &up,
                             .upload_size = size};
        if (session_do_request(c, &rq, &resp, err) < 0)
            goto stream_err;
        computed = up.dg ? digester_finish(up.dg) : xstrdup(digest);
        if (resp.status != 201) {
            if (digest && !digest_equal(computed, digest))
                goto mismatch;
            http_error(c, &resp, err, "uploading blob %s to %s/%s", digest, c->registry, repo);
            goto cancel;
        }
    } else {
        struct request rq = {.method = "PATCH",
                             .url = loc,
                             .scopes = scopes,
                             .content_type = "application/octet-stream",
                             .upload = &up,
                             .upload_size = size};
        if (session_do_request(c, &rq, &resp, err) < 0)
            goto stream_err;
        computed = up.dg ? digester_finish(up.dg) : xstrdup(digest);
        if (resp.status != 202 && resp.status != 204) {
            http_error(c, &resp, err, "uploading blob to %s/%s", c->registry, repo);
            goto cancel;
        }
        if (digest && !digest_equal(computed, digest))
            goto mismatch;
        if (size >= 0 && up.sent != size)
            goto mismatch;
        cleanup_free char *loc2 = NULL;
        if (resp.location && http_resolve_location(loc, resp.location, NULL, NULL, &loc2, err) < 0)
            goto cancel;
        free(loc);
        loc = loc2 ? steal_pointer(&loc2) : xstrdup(loc);
        if (http_resolve_location(loc, loc, "digest", computed, &put_url, err) < 0)
            goto cancel;
        /* completing is retried; if an earlier attempt did complete but its answer was lost,
         * the session is gone (404) and the blob is there: check with HEAD */
        struct request rq2 = {
            .method = "PUT", .url = put_url, .scopes = scopes, .idempotent = true};
        int pr = session_do_request(c, &rq2, &resp, err);
        if ((pr < 0 || resp.status != 201) && digest_validate(computed, NULL) == 0) {
            int64_t have = -1;
            berth_error_t e3 = NULL;
            if (registry_head_blob(c, repo, computed, &have, &e3) == 0 &&
                (have < 0 || have == up.sent)) {
                berth_error_release(err);
                resp.status = 201;
                free(resp.digest);
                resp.digest = NULL;
                pr = 0;
            }
            berth_error_release(&e3);
        }
        if (pr < 0) {
            berth_error_wrap(err, "completing blob upload %s to %s/%s", computed, c->registry,
                             repo);
            goto cancel;
        }
        if (resp.status != 201) {
            http_error(c, &resp, err, "completing blob upload %s to %s/%s", computed, c->registry,
                       repo);
            goto cancel;
        }
    }
    if (resp.digest && !digest_equal(resp.digest, computed)) {
        berth_error_make_status(err, EBADMSG,
                                "uploading blob to %s/%s: registry stored %s, we sent %s",
                                c->registry, repo, resp.digest, computed);
        goto out;
    }
    if (out_digest)
        *out_digest = steal_pointer(&computed);
    if (out_size)
        *out_size = up.sent;
    ret = 0;
    goto out;

stream_err:
    if (up.overflow)
        berth_error_make_status(err, EBADMSG,
                                "uploading blob %s to %s/%s: more data than the expected %lld "
                                "bytes",
                                digest ? digest : "", c->registry, repo, (long long)size);
    else if (up.err) {
        berth_error_release(err);
        *err = up.err;
        up.err = NULL;
        berth_error_wrap(err, "uploading blob to %s/%s", c->registry, repo);
    } else
        berth_error_wrap(err, "uploading blob to %s/%s", c->registry, repo);
    goto cancel;
mismatch:
    berth_error_make_status(err, EBADMSG,
                            "uploading blob to %s/%s: data has digest %s and size %lld, expected "
                            "%s and size %lld",
                            c->registry, repo, computed, (long long)up.sent,
                            digest ? digest : "(any)", (long long)size);
cancel:
    cancel_upload(c, loc, scopes);
out:
    digester_free(up.dg); /* finish does not free */
    berth_error_release(&up.err);
    return ret;
}
