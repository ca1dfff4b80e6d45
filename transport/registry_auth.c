/* Distribution API v2 client: Basic and Bearer authorization, the per-scope token cache. */
#include "transport/registry_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"
#include "transport/auth.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

/* ---------- auth ---------- */

static char *scope_key(const char *const *scopes)
{
    if (!scopes || !scopes[0])
        return xstrdup("");
    char *k = xstrdup(scopes[0]);
    for (size_t i = 1; scopes[i]; i++) {
        char *t = xasprintf("%s %s", k, scopes[i]);
        free(k);
        k = t;
    }
    return k;
}

static int fetch_token(registry_client_t *c, const char *const *scopes, char **token,
                       int64_t *expires, berth_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    cleanup_free char *realm = xstrdup(c->chal.realm);
    cleanup_free char *service = c->chal.service ? xstrdup(c->chal.service) : NULL;
    c->stats.token++;
    pthread_mutex_unlock(&c->lock);

    CURL *e = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = xstrdup(realm);
    char sep = strchr(url, '?') ? '&' : '?';
    if (service) {
        char *esc = curl_easy_escape(e, service, 0);
        char *t = xasprintf("%s%cservice=%s", url, sep, esc);
        curl_free(esc);
        free(url);
        url = t;
        sep = '&';
    }
    for (size_t i = 0; scopes && scopes[i]; i++) {
        char *esc = curl_easy_escape(e, scopes[i], 0);
        char *t = xasprintf("%s%cscope=%s", url, sep, esc);
        curl_free(esc);
        free(url);
        url = t;
        sep = '&';
    }
    cleanup_resp struct http_resp resp = {.max = AUTH_TOKEN_MAX, .content_length = -1};
    http_setup_easy(c, e, errbuf);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &resp);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    char *form = NULL;
    if (c->user && strcmp(c->user, AUTH_IDENTITY_TOKEN_USER) == 0) {
        /* OAuth2: POST realm with the refresh token; service and scopes in the form */
        char *rt = curl_easy_escape(e, c->pass, 0);
        form = xasprintf("grant_type=refresh_token&client_id=berth&refresh_token=%s", rt);
        explicit_bzero(rt, strlen(rt));
        curl_free(rt);
        if (service) {
            char *esc = curl_easy_escape(e, service, 0);
            char *t = xasprintf("%s&service=%s", form, esc);
            curl_free(esc);
            explicit_bzero(form, strlen(form));
            free(form);
            form = t;
        }
        for (size_t i = 0; scopes && scopes[i]; i++) {
            char *esc = curl_easy_escape(e, scopes[i], 0);
            char *t = xasprintf("%s&scope=%s", form, esc);
            curl_free(esc);
            explicit_bzero(form, strlen(form));
            free(form);
            form = t;
        }
        curl_easy_setopt(e, CURLOPT_URL, realm);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
    } else if (c->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, c->pass);
    }
    CURLcode rc = CURLE_OK;
    for (int attempt = 0;; attempt++) {
        http_resp_clear(&resp);
        rc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp.status);
        bool again = (rc != CURLE_OK && http_retryable_curl(rc)) ||
                     (rc == CURLE_OK && http_retryable_status(resp.status));
        if (!again || attempt >= c->retry_times)
            break;
        http_sleep_ms(http_backoff_ms(c, attempt, resp.retry_after));
    }
    int ret;
    if (rc != CURLE_OK) {
        if (resp.too_big)
            ret = berth_error_make_status(err, EFBIG, "token from %s: larger than %d bytes", realm,
                                          AUTH_TOKEN_MAX);
        else
            ret = http_curl_failure(c, rc, errbuf, "GET", realm, err);
    } else if (resp.status == 401 || resp.status == 403) {
        ret = http_error(c, &resp, err, "requesting a token from %s%s", realm,
                         c->user ? " (invalid username or password?)" : "");
        if (resp.status == 401)
            (*err)->status = EACCES;
    } else if (resp.status != 200) {
        ret = http_error(c, &resp, err, "requesting a token from %s", realm);
    } else {
        ret = auth_parse_token_response(resp.body, resp.len, token, expires, err);
        if (ret < 0)
            berth_error_wrap(err, "token from %s", realm);
    }
    if (resp.body)
        explicit_bzero(resp.body, resp.len);
    curl_easy_setopt(e, CURLOPT_SHARE, NULL);
    curl_easy_cleanup(e);
    free(url);
    if (form) {
        explicit_bzero(form, strlen(form));
        free(form);
    }
    return ret;
}

/* Returns the Authorization header to send (owned) or NULL. */
int session_auth_header(registry_client_t *c, const char *const *scopes, bool refresh, char **out,
                        berth_error_t *err)
{
    *out = NULL;
    pthread_mutex_lock(&c->lock);
    enum auth_scheme sch = c->chal.scheme;
    pthread_mutex_unlock(&c->lock);
    if (sch == AUTH_SCHEME_BASIC) {
        if (!c->user)
            return 0;
        cleanup_free char *raw = xasprintf("%s:%s", c->user, c->pass);
        cleanup_free char *b = auth_base64_encode(raw, strlen(raw));
        explicit_bzero(raw, strlen(raw));
        *out = xasprintf("Authorization: Basic %s", b);
        explicit_bzero(b, strlen(b));
        return 0;
    }
    if (sch != AUTH_SCHEME_BEARER)
        return 0;
    cleanup_free char *key = scope_key(scopes);
    /* a token that may push to a repository may also pull from it: reuse it */
    cleanup_free char *wider = NULL;
    size_t kl = strlen(key);
    if (scopes && scopes[0] && !scopes[1] && kl > 5 && strcmp(key + kl - 5, ":pull") == 0)
        wider = xasprintf("%s,push", key);
    time_t now = time(NULL);
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->ntokens; i++) {
        if (strcmp(c->tokens[i].scope, key) == 0 ||
            (wider && !refresh && strcmp(c->tokens[i].scope, wider) == 0)) {
            if (!refresh && c->tokens[i].expiry > now + 5) {
                *out = xasprintf("Authorization: Bearer %s", c->tokens[i].token);
                pthread_mutex_unlock(&c->lock);
                return 0;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    char *tok = NULL;
    int64_t exp = 0;
    if (fetch_token(c, scopes, &tok, &exp, err) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    size_t i;
    for (i = 0; i < c->ntokens; i++)
        if (strcmp(c->tokens[i].scope, key) == 0)
            break;
    if (i == c->ntokens) {
        c->tokens = xreallocarray(c->tokens, c->ntokens + 1, sizeof(*c->tokens));
        c->tokens[i].scope = xstrdup(key);
        c->tokens[i].token = NULL;
        c->ntokens++;
    }
    free(c->tokens[i].token);
    c->tokens[i].token = xstrdup(tok);
    c->tokens[i].expiry = now + exp;
    pthread_mutex_unlock(&c->lock);
    *out = xasprintf("Authorization: Bearer %s", tok);
    explicit_bzero(tok, strlen(tok));
    free(tok);
    return 0;
}
