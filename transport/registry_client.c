/* Distribution API v2 client over libcurl.  See registry_client.h for the contracts. */
#include "transport/registry_client.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"
#include "transport/auth.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEADER_VALUE_MAX 8192
#define CA_FILE_MAX      (8 * 1024 * 1024)
#define TAG_PAGES_MAX    10000
#define TAG_ENTRIES_MAX  1000000
#define BLOB_BUFFER_MAX  (512 * 1024)

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

static void count_method(registry_client_t *c, const char *m)
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

static int read_small_file(const char *path, size_t max, char **out, size_t *len,
                           berth_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                free(buf);
                return berth_error_make_status(err, EFBIG, "\"%s\" is larger than %zu bytes", path,
                                               max);
            }
            cap = cap * 2 > max ? max : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return berth_error_make(err, errno, "read \"%s\"", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

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
            if (read_small_file(path, CA_FILE_MAX, &data, &len, err) < 0) {
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
        if (sys && read_small_file(sys, CA_FILE_MAX, &sysdata, &syslen, err) < 0) {
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

struct http_resp {
    long status;
    char *body;
    size_t len, max;
    bool too_big;
    int64_t content_length;
    char *content_type, *digest, *location, *www_auth, *link, *retry_after, *content_range;
};

static void resp_reset_headers(struct http_resp *r)
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

static void resp_clear(struct http_resp *r)
{
    resp_reset_headers(r);
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = 0;
    r->too_big = false;
}

static void cleanup_respp(struct http_resp *r)
{
    resp_clear(r);
}
#define cleanup_resp __attribute__((cleanup(cleanup_respp)))

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct http_resp *r = ud;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        resp_reset_headers(r);
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

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *ud)
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
    json_t *j = json_loadb(body, len, 0, NULL);
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

static int http_error(registry_client_t *c, const struct http_resp *r, berth_error_t *err,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int http_error(registry_client_t *c, const struct http_resp *r, berth_error_t *err,
                      const char *fmt, ...)
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

struct upload_src {
    berth_reader_t *r;
    digester_t *dg;
    int64_t sent;
    int64_t limit; /* fail when more arrive; -1 none */
    berth_error_t err;
    bool overflow;
};

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

static void setup_common(registry_client_t *c, CURL *e, char *errbuf)
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

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static long backoff_ms(registry_client_t *c, int attempt, const char *retry_after)
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

static bool retryable_curl(CURLcode rc)
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

static bool retryable_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int curl_failure(registry_client_t *c, CURLcode rc, const char *errbuf, const char *method,
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
    setup_common(c, e, errbuf);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &resp);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
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
        resp_clear(&resp);
        rc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp.status);
        bool again = (rc != CURLE_OK && retryable_curl(rc)) ||
                     (rc == CURLE_OK && retryable_status(resp.status));
        if (!again || attempt >= c->retry_times)
            break;
        sleep_ms(backoff_ms(c, attempt, resp.retry_after));
    }
    int ret;
    if (rc != CURLE_OK) {
        if (resp.too_big)
            ret = berth_error_make_status(err, EFBIG, "token from %s: larger than %d bytes", realm,
                                          AUTH_TOKEN_MAX);
        else
            ret = curl_failure(c, rc, errbuf, "GET", realm, err);
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
static int auth_header(registry_client_t *c, const char *const *scopes, bool refresh, char **out,
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

/* ---------- one request ---------- */

static CURLcode perform_once(registry_client_t *c, const struct request *rq, const char *authz,
                             struct http_resp *resp, char *errbuf)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    setup_common(c, e, errbuf);
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
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
    count_method(c, m);
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

static int ensure_pinged(registry_client_t *c, berth_error_t *err);

/* The scheme is known only after the ping (https, or http for insecure registries). */
static int get_base(registry_client_t *c, char **out, berth_error_t *err)
{
    if (ensure_pinged(c, err) < 0)
        return -1;
    *out = base_url(c);
    return 0;
}

static int do_request(registry_client_t *c, const struct request *rq, struct http_resp *resp,
                      berth_error_t *err)
{
    if (!rq->no_auth && ensure_pinged(c, err) < 0)
        return -1;
    bool refreshed = false;
    for (int attempt = 0;;) {
        cleanup_free char *authz = NULL;
        if (!rq->no_auth && auth_header(c, rq->scopes, refreshed, &authz, err) < 0)
            return -1;
        char errbuf[CURL_ERROR_SIZE];
        resp_clear(resp);
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
            if (rq->idempotent && !rq->upload && retryable_curl(rc) && attempt < c->retry_times) {
                long ms = backoff_ms(c, attempt, NULL);
                log_warn("%s %s failed (%s), retrying in %ld ms (%d/%d)", rq->method, rq->url,
                         errbuf[0] ? errbuf : curl_easy_strerror(rc), ms, attempt + 1,
                         c->retry_times);
                sleep_ms(ms);
                attempt++;
                continue;
            }
            return curl_failure(c, rc, errbuf, rq->method, rq->url, err);
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
        if (rq->idempotent && !rq->upload && retryable_status(resp->status) &&
            attempt < c->retry_times) {
            long ms = backoff_ms(c, attempt, resp->retry_after);
            log_warn("%s %s: HTTP %ld, retrying in %ld ms (%d/%d)", rq->method, rq->url,
                     resp->status, ms, attempt + 1, c->retry_times);
            sleep_ms(ms);
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
    return do_request(c, &rq, resp, err);
}

static int ping_locked(registry_client_t *c, berth_error_t *err);

static int ensure_pinged(registry_client_t *c, berth_error_t *err)
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
    if (ensure_pinged(c, err) < 0)
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
    if (get_base(c, &base, err) < 0)
        return -1;
    cleanup_free char *url = xasprintf("%s/v2/", base);
    cleanup_resp struct http_resp resp = {0};
    if (sch == AUTH_SCHEME_BEARER) {
        /* a token fetched with the credentials proves them; it is cached for the GET below */
        cleanup_free char *authz = NULL;
        if (auth_header(c, NULL, false, &authz, err) < 0)
            return -1;
        explicit_bzero(authz, strlen(authz));
    }
    struct request rq = {.method = "GET", .url = url, .idempotent = true, .follow = true};
    if (do_request(c, &rq, &resp, err) < 0)
        return -1;
    if (resp.status == 401)
        return http_error(c, &resp, err, "invalid username or password for %s", c->registry);
    if (resp.status != 200)
        return http_error(c, &resp, err, "checking credentials for %s", c->registry);
    return 0;
}

/* ---------- manifests ---------- */

static const char manifest_accept[] =
    MEDIA_OCI_MANIFEST ", " MEDIA_OCI_INDEX ", " MEDIA_DOCKER_MANIFEST ", " MEDIA_DOCKER_LIST;

const char *registry_manifest_mime(const char *body, size_t len)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j)
        return NULL;
    const char *ret = NULL;
    const char *mt = json_get_string(j, "mediaType");
    int64_t sv = 0;
    json_get_int(j, "schemaVersion", &sv);
    if (mt) {
        static const char *const known[] = {MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX,
                                            MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST, NULL};
        for (size_t i = 0; known[i]; i++)
            if (strcmp(mt, known[i]) == 0)
                ret = known[i];
    } else if (sv == 2 && json_get_array(j, "manifests")) {
        ret = MEDIA_OCI_INDEX;
    } else if (sv == 2 && json_get_object(j, "config")) {
        ret = MEDIA_OCI_MANIFEST;
    }
    json_decref(j);
    return ret;
}

/* "<base>/v2/<repo>/<kind>/<ref>" (kind: manifests or blobs), pinging first; NULL on error. */
static char *repo_url(registry_client_t *c, const char *repo, const char *kind, const char *ref,
                      berth_error_t *err)
{
    cleanup_free char *base = NULL;
    if (get_base(c, &base, err) < 0)
        return NULL;
    return xasprintf("%s/v2/%s/%s/%s", base, repo, kind, ref);
}

static void repo_scope(char *buf, size_t n, const char *repo, const char *actions)
{
    snprintf(buf, n, "repository:%s:%s", repo, actions);
}

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
    repo_scope(scope, sizeof(scope), repo, "pull");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = repo_url(c, repo, "manifests", ref, err);
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
    if (do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "reading manifest %s in %s/%s", ref, c->registry, repo);
    if (resp.status != 200)
        return http_error(c, &resp, err, "reading manifest %s in %s/%s", ref, c->registry, repo);
    cleanup_free char *ct = media_base(resp.content_type);
    const char *detected = registry_manifest_mime(resp.body ? resp.body : "", resp.len);
    if ((ct && (strcmp(ct, MEDIA_DOCKER_SCHEMA1) == 0 || strcmp(ct, MEDIA_DOCKER_SCHEMA1S) == 0)) ||
        (!detected && resp.body && strstr(resp.body, "\"schemaVersion\"") &&
         registry_manifest_mime(resp.body, resp.len) == NULL)) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
        int64_t sv = 0;
        if (j)
            json_get_int(j, "schemaVersion", &sv);
        json_decref(j);
        /* "manifest.v1" alone would also match the OCI type (image.manifest.v1+json): a
         * malformed OCI manifest is not a schema 1 one. */
        if (sv == 1 || (ct && strstr(ct, "distribution.manifest.v1")))
            return berth_error_make_status(
                err, ENOTSUP,
                "reading manifest %s in %s/%s: Docker schema 1 manifests are not supported "
                "(deprecated format); re-push the image with a current tool",
                ref, c->registry, repo);
    }
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
    repo_scope(scope, sizeof(scope), repo, "pull");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = repo_url(c, repo, "manifests", ref, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {.method = "HEAD",
                         .url = url,
                         .scopes = scopes,
                         .accept = manifest_accept,
                         .idempotent = true,
                         .follow = true};
    if (do_request(c, &rq, &resp, err) < 0)
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
    if (!mime)
        mime = registry_manifest_mime(body, len);
    if (!mime)
        return berth_error_make_status(
            err, EINVAL, "writing manifest to %s/%s: unknown manifest type", c->registry, repo);
    char scope[512];
    repo_scope(scope, sizeof(scope), repo, "pull,push");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *computed = digest_buffer(DIGEST_SHA256, body, len);
    cleanup_free char *url = repo_url(c, repo, "manifests", ref, err);
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
    if (do_request(c, &rq, &resp, err) < 0)
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
    repo_scope(scope, sizeof(scope), repo, "pull,push,delete");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = repo_url(c, repo, "manifests", digest, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {.method = "DELETE", .url = url, .scopes = scopes, .idempotent = true};
    if (do_request(c, &rq, &resp, err) < 0)
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
    if (auth_header(b->c, scopes, refresh, &authz, err) < 0)
        return -1;
    b->easy = curl_easy_init();
    setup_common(b->c, b->easy, b->errbuf);
    curl_easy_setopt(b->easy, CURLOPT_URL, b->url);
    curl_easy_setopt(b->easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(b->easy, CURLOPT_BUFFERSIZE, 256L * 1024L);
    curl_easy_setopt(b->easy, CURLOPT_HEADERFUNCTION, header_cb);
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
    resp_reset_headers(&b->hdr);
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
    count_method(b->c, "GET");
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
        if (retryable_curl(b->result) && *attempt < b->c->retry_times) {
            long ms = backoff_ms(b->c, *attempt, NULL);
            log_warn("%s: %s, retrying in %ld ms", b->what,
                     b->errbuf[0] ? b->errbuf : curl_easy_strerror(b->result), ms);
            sleep_ms(ms);
            (*attempt)++;
            return 1;
        }
        return curl_failure(b->c, b->result, b->errbuf, "GET", b->url, err);
    }
    if (st == 401 && !*refreshed) {
        *refreshed = true;
        return 1;
    }
    if (retryable_status(st) && *attempt < b->c->retry_times) {
        long ms = backoff_ms(b->c, *attempt, b->hdr.retry_after);
        log_warn("%s: HTTP %ld, retrying in %ld ms", b->what, st, ms);
        sleep_ms(ms);
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
        bool resumable = b->result == CURLE_OK || retryable_curl(b->result);
        if (!resumable || b->resumes >= b->c->retry_times) {
            if (b->result == CURLE_OK)
                return berth_error_make_status(err, EIO,
                                               "%s: connection closed after %lld of "
                                               "%lld bytes",
                                               b->what, (long long)b->received,
                                               (long long)b->total);
            return curl_failure(b->c, b->result, b->errbuf, "GET", b->url, err);
        }
        b->resumes++;
        log_warn("%s: interrupted after %lld bytes (%s), resuming (%d/%d)", b->what,
                 (long long)b->received, b->errbuf[0] ? b->errbuf : curl_easy_strerror(b->result),
                 b->resumes, b->c->retry_times);
        sleep_ms(backoff_ms(b->c, b->resumes - 1, NULL));
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
    resp_clear(&b->hdr);
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
    if (ensure_pinged(c, err) < 0)
        return -1;
    struct blob_reader *b = xzalloc(sizeof(*b));
    b->base.ops = &blob_reader_ops;
    b->c = c;
    cleanup_free char *base = NULL;
    if (get_base(c, &base, err) < 0)
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
    repo_scope(scope, sizeof(scope), repo, "pull");
    const char *scopes[] = {scope, NULL};
    cleanup_free char *url = repo_url(c, repo, "blobs", digest, err);
    if (url == NULL)
        return -1;
    cleanup_resp struct http_resp resp = {0};
    struct request rq = {
        .method = "HEAD", .url = url, .scopes = scopes, .idempotent = true, .follow = true};
    if (do_request(c, &rq, &resp, err) < 0)
        return berth_error_wrap(err, "checking blob %s in %s/%s", digest, c->registry, repo);
    if (resp.status != 200)
        return http_error(c, &resp, err, "checking blob %s in %s/%s", digest, c->registry, repo);
    if (size)
        *size = resp.content_length;
    return 0;
}

/* Resolves a Location header against the request URL; appends a query parameter when given. */
static int resolve_location(const char *base, const char *loc, const char *qname, const char *qval,
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

static void cancel_upload(registry_client_t *c, const char *url, const char *const *scopes)
{
    cleanup_resp struct http_resp resp = {0};
    berth_error_t e = NULL;
    struct request rq = {.method = "DELETE", .url = url, .scopes = scopes};
    if (do_request(c, &rq, &resp, &e) < 0)
        log_debug("cancelling upload: %s", berth_error_msg(e));
    berth_error_release(&e);
}

static int start_upload(registry_client_t *c, const char *repo, const char *const *scopes,
                        const char *query, struct http_resp *resp, char **base_out,
                        berth_error_t *err)
{
    cleanup_free char *base = NULL;
    if (get_base(c, &base, err) < 0)
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
    if (do_request(c, &rq, resp, err) < 0)
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
    repo_scope(s1, sizeof(s1), repo, "pull,push");
    repo_scope(s2, sizeof(s2), from_repo, "pull");
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
        if (resolve_location(url, resp.location, NULL, NULL, &loc, &e2) == 0)
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
    repo_scope(scope, sizeof(scope), repo, "pull,push");
    const char *scopes[] = {scope, NULL};
    cleanup_resp struct http_resp resp = {0};
    cleanup_free char *post_url = NULL;
    if (start_upload(c, repo, scopes, NULL, &resp, &post_url, err) < 0)
        return berth_error_wrap(err, "starting blob upload to %s/%s", c->registry, repo);
    if (resp.status != 202 || !resp.location)
        return http_error(c, &resp, err, "starting blob upload to %s/%s", c->registry, repo);
    cleanup_free char *loc = NULL;
    if (resolve_location(post_url, resp.location, NULL, NULL, &loc, err) < 0)
        return -1;

    /* With a known digest the registry verifies it at PUT ?digest= (DIGEST_INVALID on a
     * mismatch, and nothing is kept), so the data is not hashed a second time here. */
    struct upload_src up = {.r = r, .dg = digest ? NULL : digester_new(algo), .limit = size};
    int ret = -1;
    cleanup_free char *computed = NULL;
    cleanup_free char *put_url = NULL;
    if (monolithic) {
        if (resolve_location(loc, loc, "digest", digest, &put_url, err) < 0)
            goto cancel;
        struct request rq = {.method = "PUT",
                             .url = put_url,
                             .scopes = scopes,
                             .content_type = "application/octet-stream",
                             .upload = &up,
                             .upload_size = size};
        if (do_request(c, &rq, &resp, err) < 0)
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
        if (do_request(c, &rq, &resp, err) < 0)
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
        if (resp.location && resolve_location(loc, resp.location, NULL, NULL, &loc2, err) < 0)
            goto cancel;
        free(loc);
        loc = loc2 ? steal_pointer(&loc2) : xstrdup(loc);
        if (resolve_location(loc, loc, "digest", computed, &put_url, err) < 0)
            goto cancel;
        /* completing is retried; if an earlier attempt did complete but its answer was lost,
         * the session is gone (404) and the blob is there: check with HEAD */
        struct request rq2 = {
            .method = "PUT", .url = put_url, .scopes = scopes, .idempotent = true};
        int pr = do_request(c, &rq2, &resp, err);
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

/* ---------- tags and catalog ---------- */

/* Extracts the URL of rel="next" from a Link header. */
static char *link_next(const char *link)
{
    if (!link)
        return NULL;
    const char *p = link;
    while ((p = strchr(p, '<')) != NULL) {
        const char *e = strchr(p, '>');
        if (!e)
            return NULL;
        const char *params = e + 1;
        const char *next = strchr(params, '<');
        size_t plen = next ? (size_t)(next - params) : strlen(params);
        cleanup_free char *ps = xstrndup(params, plen);
        if (strstr(ps, "rel=\"next\"") || strstr(ps, "rel=next"))
            return xstrndup(p + 1, (size_t)(e - p - 1));
        p = e + 1;
    }
    return NULL;
}

static int list_paged(registry_client_t *c, const char *first_path, const char *scope,
                      const char *field, char ***out, size_t *nout, const char *what,
                      berth_error_t *err)
{
    const char *scopes[] = {scope, NULL};
    cleanup_free char *base = NULL;
    if (get_base(c, &base, err) < 0)
        return -1;
    char *url = xasprintf("%s%s", base, first_path);
    char **v = xcalloc(1, sizeof(char *));
    size_t n = 0;
    int ret = -1;
    /* every page URL seen so far: a registry whose rel="next" leads back to a page already
     * read (a loop) would otherwise be asked forever */
    char **seen = xcalloc(1, sizeof(char *));
    size_t nseen = 0;
    for (int page = 0; url; page++) {
        if (page >= TAG_PAGES_MAX) {
            berth_error_make_status(err, E2BIG, "%s: more than %d pages", what, TAG_PAGES_MAX);
            goto out;
        }
        for (size_t k = 0; k < nseen; k++) {
            if (strcmp(seen[k], url) == 0) {
                berth_error_make_status(err, ELOOP,
                                        "%s: the registry's next page (%s) was already read: "
                                        "its pagination loops",
                                        what, url);
                goto out;
            }
        }
        seen = xreallocarray(seen, nseen + 2, sizeof(char *));
        seen[nseen++] = xstrdup(url);
        seen[nseen] = NULL;
        cleanup_resp struct http_resp resp = {0};
        struct request rq = {.method = "GET",
                             .url = url,
                             .scopes = scopes,
                             .accept = "application/json",
                             .max_body = REGISTRY_JSON_MAX,
                             .idempotent = true,
                             .follow = true};
        if (do_request(c, &rq, &resp, err) < 0) {
            berth_error_wrap(err, "%s", what);
            goto out;
        }
        if (resp.status != 200) {
            http_error(c, &resp, err, "%s", what);
            goto out;
        }
        cleanup_json json_t *j = NULL;
        if (json_parse_bounded(resp.body ? resp.body : "", resp.len, REGISTRY_JSON_MAX, what, &j,
                               err) < 0)
            goto out;
        json_t *arr = json_get_array(j, field);
        size_t i;
        json_t *t;
        json_array_foreach(arr, i, t)
        {
            if (!json_is_string(t))
                continue;
            if (n >= TAG_ENTRIES_MAX) {
                berth_error_make_status(err, E2BIG, "%s: more than %d entries", what,
                                        TAG_ENTRIES_MAX);
                goto out;
            }
            v = xreallocarray(v, n + 2, sizeof(char *));
            v[n++] = xstrdup(json_string_value(t));
            v[n] = NULL;
        }
        cleanup_free char *next = link_next(resp.link);
        char *nu = NULL;
        if (next && resolve_location(url, next, NULL, NULL, &nu, err) < 0)
            goto out;
        free(url);
        url = nu;
    }
    *out = steal_pointer(&v);
    *nout = n;
    ret = 0;
out:
    free(url);
    for (size_t k = 0; k < nseen; k++)
        free(seen[k]);
    free(seen);
    if (v) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
    }
    return ret;
}

int registry_list_tags(registry_client_t *c, const char *repo, int page_size, char ***tags,
                       size_t *n, berth_error_t *err)
{
    char scope[512];
    repo_scope(scope, sizeof(scope), repo, "pull");
    cleanup_free char *path = page_size > 0 ? xasprintf("/v2/%s/tags/list?n=%d", repo, page_size)
                                            : xasprintf("/v2/%s/tags/list", repo);
    cleanup_free char *what = xasprintf("listing tags of %s/%s", c->registry, repo);
    return list_paged(c, path, scope, "tags", tags, n, what, err);
}

int registry_catalog(registry_client_t *c, int page_size, char ***repos, size_t *n,
                     berth_error_t *err)
{
    cleanup_free char *path =
        page_size > 0 ? xasprintf("/v2/_catalog?n=%d", page_size) : xstrdup("/v2/_catalog");
    cleanup_free char *what = xasprintf("listing repositories of %s", c->registry);
    return list_paged(c, path, "registry:catalog:*", "repositories", repos, n, what, err);
}
