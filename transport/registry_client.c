/* Distribution API v2 client over libcurl: the HTTP session (TLS setup, requests, retries,
 * errors, the ping).  Auth, manifests, blobs and tags are in registry_auth.c,
 * registry_manifests.c, registry_blobs.c and registry_tags.c.  See registry_client.h for the
 * contracts. */
#include "transport/registry_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "transport/auth.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEADER_VALUE_MAX 8192
#define CA_FILE_MAX      (8 * 1024 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
    registry_client_t *c = u;
    pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
    registry_client_t *c = u;
    pthread_mutex_unlock(&c->share_locks[data]);
}

const char *registry_client_host(const registry_client_t *c)
{
    return c->host;
}

void registry_client_stats(registry_client_t *c, struct registry_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

void http_count_method(registry_client_t *c, const char *m)
{
    pthread_mutex_lock(&c->lock);
    if (strcmp(m, "GET") == 0)
        c->stats.get++;
    else if (strcmp(m, "HEAD") == 0)
        c->stats.head++;
    else if (strcmp(m, "PUT") == 0)
        c->stats.put++;
    else if (strcmp(m, "POST") == 0)
        c->stats.post++;
    else if (strcmp(m, "PATCH") == 0)
        c->stats.patch++;
    else if (strcmp(m, "DELETE") == 0)
        c->stats.del++;
    pthread_mutex_unlock(&c->lock);
}

/* ---------- small file helpers (bounded) ---------- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a certs.d-style directory: CA files (.crt) are appended to ca; the first client
 * certificate (.cert) with its key (.key) is kept. */
static int load_cert_dir(registry_client_t *c, const char *dir, char **ca, size_t *ca_len,
                         berth_error_t *err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return berth_error_make(err, errno, "open certificate directory \"%s\"", dir);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = xreallocarray(names, n + 1, sizeof(char *));
        names[n++] = xstrdup(e->d_name);
    }
    if (n)
        qsort(names, n, sizeof(char *), name_cmp);
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, names[i]);
        if (has_suffix(names[i], ".crt")) {
            char *data;
            size_t len;
            if (fs_read_file(path, CA_FILE_MAX, &data, &len, err) < 0) {
                ret = -1;
                break;
            }
            *ca = xrealloc(*ca, *ca_len + len + 2);
            memcpy(*ca + *ca_len, data, len);
            *ca_len += len;
            (*ca)[(*ca_len)++] = '\n';
            (*ca)[*ca_len] = '\0';
            free(data);
            log_debug("%s: trusting CA certificate %s", c->registry, path);
        } else if (has_suffix(names[i], ".cert")) {
            size_t bl = strlen(names[i]) - 5;
            char *key = xasprintf("%s/%.*s.key", dir, (int)bl, names[i]);
            if (access(key, R_OK) != 0) {
                ret = berth_error_make_status(err, ENOENT,
                                              "client certificate \"%s\" has no matching key "
                                              "\"%s\"",
                                              path, key);
                free(key);
                break;
            }
            if (!c->client_cert) {
                c->client_cert = xstrdup(path);
                c->client_key = key;
            } else {
                free(key);
            }
        } else if (has_suffix(names[i], ".key")) {
            size_t bl = strlen(names[i]) - 4;
            cleanup_free char *cert = xasprintf("%s/%.*s.cert", dir, (int)bl, names[i]);
            if (access(cert, R_OK) != 0) {
                ret = berth_error_make_status(err, ENOENT,
                                              "client key \"%s\" has no matching certificate "
                                              "\"%s\"",
                                              path, cert);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

static const char *system_ca_bundle(void)
{
    static const char *const candidates[] = {"/etc/ssl/certs/ca-certificates.crt",
                                             "/etc/pki/tls/certs/ca-bundle.crt",
                                             "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem", NULL};
    const char *env = getenv("SSL_CERT_FILE");
    if (env && env[0] && access(env, R_OK) == 0)
        return env;
    for (size_t i = 0; candidates[i]; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return NULL;
}

static int setup_tls(registry_client_t *c, const char *cert_dir, berth_error_t *err)
{
    char *extra = NULL;
    size_t extra_len = 0;
    int r = 0;
    if (cert_dir) {
        r = load_cert_dir(c, cert_dir, &extra, &extra_len, err);
    } else {
        const char *home = getenv("HOME");
        cleanup_free char *d1 = xasprintf("/etc/containers/certs.d/%s", c->registry);
        cleanup_free char *d2 =
            home ? xasprintf("%s/.config/containers/certs.d/%s", home, c->registry) : NULL;
        cleanup_free char *d3 = xasprintf("/etc/docker/certs.d/%s", c->registry);
        r = load_cert_dir(c, d1, &extra, &extra_len, err);
        if (r == 0 && d2)
            r = load_cert_dir(c, d2, &extra, &extra_len, err);
        if (r == 0)
            r = load_cert_dir(c, d3, &extra, &extra_len, err);
    }
    if (r < 0) {
        free(extra);
        return -1;
    }
    if (extra) {
        /* certs.d CAs are added to the system bundle, not used instead of it */
        const char *sys = system_ca_bundle();
        char *sysdata = NULL;
        size_t syslen = 0;
        if (sys && fs_read_file(sys, CA_FILE_MAX, &sysdata, &syslen, err) < 0) {
            free(extra);
            return -1;
        }
        c->ca_pem = xmalloc(syslen + extra_len + 2);
        if (syslen)
            memcpy(c->ca_pem, sysdata, syslen);
        c->ca_pem[syslen] = '\n';
        memcpy(c->ca_pem + syslen + 1, extra, extra_len);
        c->ca_pem_len = syslen + 1 + extra_len;
        c->ca_pem[c->ca_pem_len] = '\0';
        free(sysdata);
        free(extra);
    }
    return 0;
}

int registry_client_new(const struct registry_options *o, registry_client_t **out,
                        berth_error_t *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (o->registry == NULL || o->registry[0] == '\0' || strchr(o->registry, '/'))
        return berth_error_make_status(err, EINVAL, "invalid registry name \"%s\"",
                                       o->registry ? o->registry : "");
    registry_client_t *c = xzalloc(sizeof(*c));
    c->registry = xstrdup(o->registry);
    if (strcmp(o->registry, "docker.io") == 0 || strcmp(o->registry, "index.docker.io") == 0)
        c->host = xstrdup("registry-1.docker.io");
    else
        c->host = xstrdup(o->registry);
    if (o->tls_verify == 0 || (o->tls_verify < 0 && o->insecure)) {
        c->verify = false;
        c->allow_http = true;
    } else {
        c->verify = true;
    }
    c->retry_times = o->retry_times < 0 ? 3 : o->retry_times;
    c->retry_delay_ms = o->retry_delay_ms;
    c->user_agent = xstrdup(o->user_agent ? o->user_agent : "berth/" BERTH_VERSION);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->ping_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    c->share = curl_share_init();
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);

    if (setup_tls(c, o->cert_dir, err) < 0) {
        registry_client_free(c);
        return berth_error_wrap(err, "registry %s", o->registry);
    }
    if (o->username) {
        c->user = xstrdup(o->username);
        c->pass = xstrdup(o->password ? o->password : "");
    } else if (!o->no_creds) {
        bool found = false;
        if (auth_lookup(o->auth_file, o->registry, NULL, &c->user, &c->pass, &found, err) < 0) {
            registry_client_free(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

void registry_client_free(registry_client_t *c)
{
    if (!c)
        return;
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->ping_lock);
    free(c->ping_error);
    for (size_t i = 0; i < c->ntokens; i++) {
        free(c->tokens[i].scope);
        if (c->tokens[i].token)
            explicit_bzero(c->tokens[i].token, strlen(c->tokens[i].token));
        free(c->tokens[i].token);
    }
    free(c->tokens);
    auth_challenge_clear(&c->chal);
    if (c->pass)
        explicit_bzero(c->pass, strlen(c->pass));
    free(c->user);
    free(c->pass);
    free(c->registry);
    free(c->host);
    free(c->scheme);
    free(c->ca_pem);
    free(c->client_cert);
    free(c->client_key);
    free(c->user_agent);
    free(c);
}

/* ---------- HTTP responses ---------- */

void http_resp_reset_headers(struct http_resp *r)
{
    free(r->content_type);
    free(r->digest);
    free(r->location);
    free(r->www_auth);
    free(r->link);
    free(r->retry_after);
    free(r->content_range);
    r->content_type = r->digest = r->location = r->www_auth = r->link = r->retry_after =
        r->content_range = NULL;
    r->content_length = -1;
}

void http_resp_clear(struct http_resp *r)
{
    http_resp_reset_headers(r);
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = 0;
    r->too_big = false;
}

void http_resp_cleanup(struct http_resp *r)
{
    http_resp_clear(r);
}

size_t http_header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct http_resp *r = ud;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        http_resp_reset_headers(r);
        const char *sp = memchr(buf, ' ', n);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        /* the body of a redirect or 100-continue is not ours */
        r->len = 0;
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1;
    const char *end = buf + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl > HEADER_VALUE_MAX)
        return n; /* ignore absurd values rather than store them */
    char **slot = NULL;
#define H(name, field)                                                                             \
    if (nl == strlen(name) && strncasecmp(buf, name, nl) == 0)                                     \
    slot = &r->field
    H("Content-Type", content_type);
    H("Docker-Content-Digest", digest);
    H("Location", location);
    H("WWW-Authenticate", www_auth);
    H("Link", link);
    H("Retry-After", retry_after);
    H("Content-Range", content_range);
#undef H
    if (slot) {
        free(*slot);
        *slot = xstrndup(v, vl);
    } else if (nl == 14 && strncasecmp(buf, "Content-Length", 14) == 0) {
        char tmp[32];
        if (vl < sizeof(tmp)) {
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            r->content_length = strtoll(tmp, NULL, 10);
        }
    }
    return n;
}

size_t http_body_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct http_resp *r = ud;
    size_t n = size * nmemb;
    if (r->len + n > r->max) {
        r->too_big = true;
        return 0;
    }
    r->body = xrealloc(r->body, r->len + n + 1);
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Formats the registry's {"errors":[...]} body, or a short plain body. */
static char *format_registry_errors(const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    json_t *j = NULL;
    berth_error_t perr = NULL;
    if (json_parse_bounded(body, len, REGISTRY_ERRBODY_MAX, "error body", &j, &perr) < 0)
        berth_error_release(&perr); /* not JSON: shown as text below */
    if (j) {
        json_t *errs = json_get_array(j, "errors");
        if (errs && json_array_size(errs) > 0) {
            char *acc = NULL;
            size_t i;
            json_t *e;
            json_array_foreach(errs, i, e)
            {
                const char *code = json_get_string(e, "code");
                const char *msg = json_get_string(e, "message");
                json_t *detail = json_object_get(e, "detail");
                char *ds = NULL;
                if (detail && !json_is_null(detail))
                    ds = json_dumps(detail, JSON_COMPACT);
                char *one;
                if (code && msg)
                    one = xasprintf("%s: %s", code, msg);
                else
                    one = xstrdup(code ? code : msg ? msg : "unknown error");
                if (ds && strlen(ds) < 300) {
                    char *t = xasprintf("%s (%s)", one, ds);
                    free(one);
                    one = t;
                }
                free(ds);
                char *t = acc ? xasprintf("%s; %s", acc, one) : xstrdup(one);
                free(acc);
                free(one);
                acc = t;
                if (i >= 5)
                    break;
            }
            json_decref(j);
            return acc;
        }
        json_t *det = json_object_get(j, "details");
        if (json_is_string(det)) {
            char *s = xstrdup(json_string_value(det));
            json_decref(j);
            return s;
        }
        json_decref(j);
    }
    /* plain text: keep one short printable line */
    size_t n = len < 200 ? len : 200;
    char *s = xstrndup(body, n);
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return s;
}

int http_error(registry_client_t *c, const struct http_resp *r, berth_error_t *err, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *what = xvasprintf(fmt, ap);
    va_end(ap);
    cleanup_free char *regmsg = format_registry_errors(r->body, r->len);
    const char *kind;
    int status;
    switch (r->status) {
    case 401:
        kind = "authentication required";
        status = EACCES;
        break;
    case 403:
        kind = "access denied";
        status = EACCES;
        break;
    case 404:
        kind = "not found";
        status = ENOENT;
        break;
    case 429:
        kind = "too many requests";
        status = EAGAIN;
        break;
    default:
        kind = r->status >= 500 ? "registry server error" : "unexpected response";
        status = r->status >= 500 ? EIO : EPROTO;
    }
    const char *hint = "";
    if (r->status == 401 && c && !c->user)
        hint = "; no credentials were found: use berth login or --creds";
    else if (r->status == 401 && c)
        hint = "; the credentials were not accepted for this operation";
    return berth_error_make_status(err, status, "%s: %s%s%s (HTTP %ld)%s", what, kind,
                                   regmsg ? ": " : "", regmsg ? regmsg : "", r->status, hint);
}

/* ---------- easy handle setup ---------- */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct upload_src *u = ud;
    size_t want = size * nitems;
    ssize_t n = reader_read(u->r, buf, want, &u->err);
    if (n < 0)
        return CURL_READFUNC_ABORT;
    if (n > 0) {
        if (u->dg)
            digester_update(u->dg, buf, (size_t)n);
        u->sent += n;
        if (u->limit >= 0 && u->sent > u->limit) {
            u->overflow = true;
            return CURL_READFUNC_ABORT;
        }
    }
    return (size_t)n;
}

void http_setup_easy(registry_client_t *c, CURL *e, char *errbuf)
{
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    /* abort transfers that stall for a minute instead of hanging forever */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!c->verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->ca_pem) {
        struct curl_blob blob = {
            .data = c->ca_pem, .len = c->ca_pem_len, .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (c->client_cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->client_cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->client_key);
    }
    if (berth_log_get_level() >= LOG_LEVEL_TRACE)
        curl_easy_setopt(e, CURLOPT_VERBOSE, 0L); /* verbose would print credentials */
}

static char *base_url(registry_client_t *c)
{
    pthread_mutex_lock(&c->lock);
    char *u = xasprintf("%s://%s", c->scheme ? c->scheme : "https", c->host);
    pthread_mutex_unlock(&c->lock);
    return u;
}

void http_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

long http_backoff_ms(registry_client_t *c, int attempt, const char *retry_after)
{
    if (retry_after) {
        char *end;
        long s = strtol(retry_after, &end, 10);
        if (end != retry_after && s >= 0)
            return (s > 60 ? 60 : s) * 1000L;
    }
    if (c->retry_delay_ms >= 0)
        return c->retry_delay_ms;
    long ms = 500L << (attempt > 6 ? 6 : attempt);
    return ms > 30000 ? 30000 : ms;
}

bool http_retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

bool http_retryable_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

int http_curl_failure(registry_client_t *c, CURLcode rc, const char *errbuf, const char *method,
                      const char *url, berth_error_t *err)
{
    const char *msg = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
        return berth_error_make_status(err, EPROTO,
                                       "%s %s: TLS certificate verification failed: %s "
                                       "(trust the registry's CA in /etc/containers/certs.d/%s/ "
                                       "or --cert-dir, or use --tls-verify=false)",
                                       method, url, msg, c->registry);
    int st = (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) ? ECONNREFUSED
             : rc == CURLE_OPERATION_TIMEDOUT                                  ? ETIMEDOUT
                                                                               : EIO;
    return berth_error_make_status(err, st, "%s %s: %s", method, url, msg);
}

/* ---------- one request ---------- */

static CURLcode perform_once(registry_client_t *c, const struct request *rq, const char *authz,
                             struct http_resp *resp, char *errbuf)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    http_setup_easy(c, e, errbuf);
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, rq->follow ? 1L : 0L);
    if (authz)
        h = curl_slist_append(h, authz);
    if (rq->accept) {
        cleanup_free char *a = xasprintf("Accept: %s", rq->accept);
        h = curl_slist_append(h, a);
    }
    if (rq->content_type) {
        cleanup_free char *a = xasprintf("Content-Type: %s", rq->content_type);
        h = curl_slist_append(h, a);
    }
    if (rq->range) {
        cleanup_free char *a = xasprintf("Range: %s", rq->range);
        h = curl_slist_append(h, a);
    }
    h = curl_slist_append(h, "Expect:");
    const char *m = rq->method;
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (rq->upload) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        /* larger chunks: fewer read callbacks and syscalls for big layers */
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, rq->upload);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->upload_size);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "DELETE") == 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        if (!rq->content_type)
            h = curl_slist_append(h, "Content-Type:");
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    http_count_method(c, m);
    errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(e);
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    if (st)
        resp->status = st;
    curl_easy_setopt(e, CURLOPT_SHARE, NULL);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    return rc;
}

/* The scheme is known only after the ping (https, or http for insecure registries). */
int session_get_base(registry_client_t *c, char **out, berth_error_t *err)
{
    if (session_ensure_pinged(c, err) < 0)
        return -1;
    *out = base_url(c);
    return 0;
}

int session_do_request(registry_client_t *c, const struct request *rq, struct http_resp *resp,
                       berth_error_t *err)
{
    if (!rq->no_auth && session_ensure_pinged(c, err) < 0)
        return -1;
    bool refreshed = false;
    for (int attempt = 0;;) {
        cleanup_free char *authz = NULL;
        if (!rq->no_auth && session_auth_header(c, rq->scopes, refreshed, &authz, err) < 0)
            return -1;
        char errbuf[CURL_ERROR_SIZE];
        http_resp_clear(resp);
        resp->content_length = -1;
        resp->max = rq->max_body ? rq->max_body : REGISTRY_ERRBODY_MAX;
        CURLcode rc = perform_once(c, rq, authz, resp, errbuf);
        if (authz)
            explicit_bzero(authz, strlen(authz));
        if (rc != CURLE_OK) {
            if (resp->too_big)
                return berth_error_make_status(err, EFBIG,
                                               "%s %s: response body larger than %zu bytes",
                                               rq->method, rq->url, resp->max);
            if (rq->upload && rq->upload->err)
                return -1; /* the caller reports the stream's error */
            if (rq->idempotent && !rq->upload && http_retryable_curl(rc) &&
                attempt < c->retry_times) {
                long ms = http_backoff_ms(c, attempt, NULL);
                log_warn("%s %s failed (%s), retrying in %ld ms (%d/%d)", rq->method, rq->url,
                         errbuf[0] ? errbuf : curl_easy_strerror(rc), ms, attempt + 1,
                         c->retry_times);
                http_sleep_ms(ms);
                attempt++;
                continue;
            }
            return http_curl_failure(c, rc, errbuf, rq->method, rq->url, err);
        }
        if (resp->status == 401 && !refreshed && !rq->no_auth && !rq->upload) {
            /* token expired or scope changed: ask again once */
            pthread_mutex_lock(&c->lock);
            bool bearer = c->chal.scheme == AUTH_SCHEME_BEARER;
            pthread_mutex_unlock(&c->lock);
            if (bearer) {
                refreshed = true;
                continue;
            }
        }
        if (rq->idempotent && !rq->upload && http_retryable_status(resp->status) &&
            attempt < c->retry_times) {
            long ms = http_backoff_ms(c, attempt, resp->retry_after);
            log_warn("%s %s: HTTP %ld, retrying in %ld ms (%d/%d)", rq->method, rq->url,
                     resp->status, ms, attempt + 1, c->retry_times);
            http_sleep_ms(ms);
            attempt++;
            continue;
        }
        return 0;
    }
}

static int try_ping(registry_client_t *c, const char *scheme, struct http_resp *resp,
                    berth_error_t *err)
{
    cleanup_free char *url = xasprintf("%s://%s/v2/", scheme, c->host);
    struct request rq = {.method = "GET",
                         .url = url,
                         .idempotent = true,
                         .no_auth = true,
                         .follow = true,
                         .max_body = REGISTRY_ERRBODY_MAX};
    return session_do_request(c, &rq, resp, err);
}

static int ping_locked(registry_client_t *c, berth_error_t *err);

int session_ensure_pinged(registry_client_t *c, berth_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    bool done = c->pinged;
    pthread_mutex_unlock(&c->lock);
    if (done)
        return 0;
    pthread_mutex_lock(&c->ping_lock);
    pthread_mutex_lock(&c->lock);
    done = c->pinged;
    pthread_mutex_unlock(&c->lock);
    int r = 0;
    if (c->ping_error) {
        r = berth_error_make_status(err, ECONNREFUSED, "%s", c->ping_error);
    } else if (!done) {
        r = ping_locked(c, err);
        if (r < 0 && berth_error_status(*err) != EACCES)
            c->ping_error = xstrdup(berth_error_msg(*err));
    }
    pthread_mutex_unlock(&c->ping_lock);
    return r;
}

static int ping_locked(registry_client_t *c, berth_error_t *err)
{
    cleanup_resp struct http_resp resp = {0};
    const char *scheme = "https";
    if (try_ping(c, "https", &resp, err) < 0) {
        /* nothing listens: plain HTTP will not help either */
        if (!c->allow_http || berth_error_status(*err) == ECONNREFUSED)
            return berth_error_wrap(err, "pinging registry %s", c->registry);
        log_debug("%s: https failed (%s), trying http", c->registry, berth_error_msg(*err));
        berth_error_release(err);
        scheme = "http";
        if (try_ping(c, "http", &resp, err) < 0)
            return berth_error_wrap(err, "pinging registry %s", c->registry);
    }
    struct auth_challenge ch = {0};
    if (resp.status == 401) {
        if (!resp.www_auth)
            return berth_error_make_status(
                err, EPROTO, "pinging registry %s: 401 without WWW-Authenticate", c->registry);
        if (auth_challenge_parse(resp.www_auth, &ch, err) < 0)
            return berth_error_wrap(err, "pinging registry %s", c->registry);
    } else if (resp.status != 200) {
        return http_error(c, &resp, err, "pinging registry %s (is it a registry?)", c->registry);
    }
    pthread_mutex_lock(&c->lock);
    if (!c->pinged) {
        free(c->scheme);
        c->scheme = xstrdup(scheme);
        auth_challenge_clear(&c->chal);
        c->chal = ch;
        c->pinged = true;
    } else {
        auth_challenge_clear(&ch);
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int registry_ping(registry_client_t *c, berth_error_t *err)
{
    if (session_ensure_pinged(c, err) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    enum auth_scheme sch = c->chal.scheme;
    pthread_mutex_unlock(&c->lock);
    if (sch == AUTH_SCHEME_NONE)
        return 0;
    if (!c->user)
        return 0;
    /* verify the credentials: a Basic GET /v2/, or a token fetch with no scope */
    cleanup_free char *base = NULL;
    if (session_get_base(c, &base, err) < 0)
        return -1;
    cleanup_free char *url = xasprintf("%s/v2/", base);
    cleanup_resp struct http_resp resp = {0};
    if (sch == AUTH_SCHEME_BEARER) {
        /* a token fetched with the credentials proves them; it is cached for the GET below */
        cleanup_free char *authz = NULL;
        if (session_auth_header(c, NULL, false, &authz, err) < 0)
            return -1;
        explicit_bzero(authz, strlen(authz));
    }
    struct request rq = {.method = "GET", .url = url, .idempotent = true, .follow = true};
    if (session_do_request(c, &rq, &resp, err) < 0)
        return -1;
    if (resp.status == 401)
        return http_error(c, &resp, err, "invalid username or password for %s", c->registry);
    if (resp.status != 200)
        return http_error(c, &resp, err, "checking credentials for %s", c->registry);
    return 0;
}

char *session_repo_url(registry_client_t *c, const char *repo, const char *kind, const char *ref,
                       berth_error_t *err)
{
    cleanup_free char *base = NULL;
    if (session_get_base(c, &base, err) < 0)
        return NULL;
    return xasprintf("%s/v2/%s/%s/%s", base, repo, kind, ref);
}

void session_repo_scope(char *buf, size_t n, const char *repo, const char *actions)
{
    snprintf(buf, n, "repository:%s:%s", repo, actions);
}

int http_resolve_location(const char *base, const char *loc, const char *qname, const char *qval,
                          char **out, berth_error_t *err)
{
    CURLU *u = curl_url();
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, base, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_set(u, CURLUPART_URL, loc, 0);
    if (uc == CURLUE_OK && qname) {
        cleanup_free char *q = xasprintf("%s=%s", qname, qval);
        uc = curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE);
    }
    char *s = NULL;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_URL, &s, 0);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK)
        return berth_error_make_status(err, EPROTO, "invalid upload location \"%.200s\": %s", loc,
                                       curl_url_strerror(uc));
    *out = xstrdup(s);
    curl_free(s);
    return 0;
}
