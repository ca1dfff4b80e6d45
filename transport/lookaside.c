/* registries.d lookaside signature storage (file://, and http(s):// for reading): see
 * lookaside.h. */
#include "transport/lookaside.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/reference.h"
#include "common/strutil.h"
#include "storage/userns.h"
#include "transport/policy.h"
#include "transport/signature.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct la_entry {
    char *scope; /* NULL for default-docker */
    char *lookaside;
    char *staging;
    int attachments; /* use-sigstore-attachments: 0 unset, 1 false, 2 true */
};

struct la_config {
    struct la_entry *e;
    size_t n;
    struct la_entry def;
};

static void la_config_clear(struct la_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].scope);
        free(c->e[i].lookaside);
        free(c->e[i].staging);
    }
    free(c->e);
    free(c->def.lookaside);
    free(c->def.staging);
    memset(c, 0, sizeof(*c));
}

/* Unquotes a YAML scalar in place ("x", 'x' or plain, a trailing " # comment" removed). */
static char *scalar(char *s)
{
    while (*s == ' ')
        s++;
    if (*s == '"' || *s == '\'') {
        char q = *s++;
        char *end = strchr(s, q);
        if (end)
            *end = '\0';
        return s;
    }
    char *hash = strstr(s, " #");
    if (hash)
        *hash = '\0';
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int set_key(struct la_entry *e, const char *key, const char *val, const char *file,
                   size_t lineno, berth_error_t *err)
{
    if (strcmp(key, "use-sigstore-attachments") == 0) {
        /* YAML 1.2 booleans, as containers/image reads them */
        if (strcmp(val, "true") == 0 || strcmp(val, "True") == 0 || strcmp(val, "TRUE") == 0)
            e->attachments = 2;
        else if (strcmp(val, "false") == 0 || strcmp(val, "False") == 0 ||
                 strcmp(val, "FALSE") == 0)
            e->attachments = 1;
        else
            return berth_error_make_status(err, EINVAL,
                                           "%s:%zu: use-sigstore-attachments: \"%s\" is not "
                                           "true or false",
                                           file, lineno, val);
        return 0;
    }
    char **slot = NULL;
    if (strcmp(key, "lookaside") == 0 || strcmp(key, "sigstore") == 0)
        slot = &e->lookaside;
    else if (strcmp(key, "lookaside-staging") == 0 || strcmp(key, "sigstore-staging") == 0)
        slot = &e->staging;
    if (!slot || !*val)
        return 0;
    free(*slot);
    *slot = xstrdup(val);
    return 0;
}

/* The subset of YAML registries.d files use: nested block mappings of plain or quoted scalars,
 * indented with spaces, and comments. */
static int parse_yaml(char *buf, const char *file, struct la_config *c, berth_error_t *err)
{
    int indents[4];
    int depth = 0; /* number of valid entries in indents */
    enum { SEC_OTHER, SEC_DEFAULT, SEC_DOCKER } sec = SEC_OTHER;
    struct la_entry *cur = NULL;
    size_t lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        line[strcspn(line, "\r")] = '\0';
        int ind = 0;
        while (line[ind] == ' ')
            ind++;
        if (line[ind] == '\t')
            return berth_error_make_status(err, EINVAL, "%s:%zu: tabs are not allowed", file,
                                           lineno);
        if (!line[ind] || line[ind] == '#' || strcmp(line + ind, "---") == 0)
            continue;
        char *key = line + ind;
        char *colon = NULL;
        if (*key == '"' || *key == '\'') {
            char *end = strchr(key + 1, *key);
            colon = end ? strchr(end, ':') : NULL;
        } else {
            colon = strstr(key, ": ");
            if (!colon) {
                size_t kl = strlen(key);
                while (kl && key[kl - 1] == ' ')
                    kl--;
                if (kl && key[kl - 1] == ':')
                    colon = key + kl - 1;
            }
        }
        if (!colon)
            return berth_error_make_status(err, EINVAL, "%s:%zu: expected \"key: value\"", file,
                                           lineno);
        *colon = '\0';
        char *val = scalar(colon + 1);
        key = scalar(key);
        while (depth > 0 && ind < indents[depth - 1])
            depth--;
        if (depth == 0 || ind > indents[depth - 1]) {
            if (depth == 4)
                return berth_error_make_status(err, EINVAL, "%s:%zu: nested too deeply", file,
                                               lineno);
            indents[depth++] = ind;
        } else if (ind != indents[depth - 1]) {
            return berth_error_make_status(err, EINVAL, "%s:%zu: bad indentation", file, lineno);
        }
        int level = depth - 1;
        if (level == 0) {
            sec = strcmp(key, "default-docker") == 0 ? SEC_DEFAULT
                  : strcmp(key, "docker") == 0       ? SEC_DOCKER
                                                     : SEC_OTHER;
            cur = NULL;
        } else if (level == 1 && sec == SEC_DEFAULT) {
            if (set_key(&c->def, key, val, file, lineno, err) < 0)
                return -1;
        } else if (level == 1 && sec == SEC_DOCKER) {
            cur = NULL;
            for (size_t i = 0; i < c->n && !cur; i++)
                if (strcmp(c->e[i].scope, key) == 0)
                    cur = &c->e[i];
            if (!cur) {
                c->e = xreallocarray(c->e, c->n + 1, sizeof(*c->e));
                cur = &c->e[c->n++];
                memset(cur, 0, sizeof(*cur));
                cur->scope = xstrdup(key);
            }
        } else if (level == 2 && sec == SEC_DOCKER && cur) {
            if (set_key(cur, key, val, file, lineno, err) < 0)
                return -1;
        }
    }
    return 0;
}

static char *registries_d(void)
{
    const char *env = getenv("BERTH_REGISTRIES_D");
    if (env && *env)
        return xstrdup(env);
    const char *home = getenv("HOME");
    if (home && *home) {
        char *p = xasprintf("%s/.config/containers/registries.d", home);
        if (access(p, F_OK) == 0)
            return p;
        free(p);
    }
    return xstrdup("/etc/containers/registries.d");
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_config(struct la_config *c, berth_error_t *err)
{
    memset(c, 0, sizeof(*c));
    cleanup_free char *dir = registries_d();
    cleanup_dir DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return berth_error_make(err, errno, "open registries.d \"%s\"", dir);
    }
    cleanup_strv char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if ((l > 5 && strcmp(de->d_name + l - 5, ".yaml") == 0) ||
            (l > 4 && strcmp(de->d_name + l - 4, ".yml") == 0))
            strv_add(&names, de->d_name);
    }
    if (!names)
        return 0;
    qsort(names, strv_len(names), sizeof(char *), name_cmp);
    for (char **n = names; *n; n++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, *n), *buf = NULL;
        size_t len;
        if (fs_read_file(path, LOOKASIDE_CONFIG_MAX, &buf, &len, err) < 0 ||
            parse_yaml(buf, path, c, err) < 0) {
            la_config_clear(c);
            return berth_error_wrap(err, "registries.d");
        }
    }
    return 0;
}

static bool is_http(const char *base)
{
    return strncmp(base, "http://", 7) == 0 || strncmp(base, "https://", 8) == 0;
}

/* An http(s) base is used as a prefix of request URLs: a query or fragment would swallow the
 * appended path, and user information would be sent as credentials. */
static int check_http_base(const char *base, berth_error_t *err)
{
    const char *auth = strstr(base, "://") + 3;
    size_t alen = strcspn(auth, "/");
    if (alen == 0)
        return berth_error_make_status(err, EINVAL, "lookaside \"%s\" has no host", base);
    if (memchr(auth, '@', alen))
        return berth_error_make_status(
            err, EINVAL, "lookaside \"%s\": credentials in the URL are not supported", base);
    for (const char *c = base; *c; c++) {
        if (!isgraph((unsigned char)*c))
            return berth_error_make_status(
                err, EINVAL, "lookaside \"%s\": spaces and control characters are not allowed",
                base);
        if (*c == '?' || *c == '#')
            return berth_error_make_status(
                err, EINVAL, "lookaside \"%s\": a query or fragment is not supported", base);
    }
    return 0;
}

/* Where the signatures of (docker_ref, digest) live, for reading or writing: *out is a
 * directory for file:// locations or, when reading, a URL prefix for http(s) ones (*remote
 * true); *out NULL when the configured location cannot be used (reading only, warned). */
static int sig_location(const char *docker_ref, const char *digest, bool write, char **out,
                        bool *remote, berth_error_t *err)
{
    *out = NULL;
    *remote = false;
    if (!docker_ref)
        return berth_error_make_status(err, EINVAL, "signature storage: the image has no name");
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(digest, &algo, &hex, err) < 0)
        return -1;
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse_normalized(docker_ref, &r, err) < 0)
        return -1;
    /* the path becomes part of a file name or a URL: the reference grammar keeps it to
     * [a-z0-9._/-], and ".." must not climb out of the base */
    if (strstr(r->path, ".."))
        return berth_error_make_status(err, EINVAL, "unexpected repository path \"%s\"", r->path);
    struct la_config c;
    if (load_config(&c, err) < 0)
        return -1;
    const char *base = NULL;
    cleanup_strv char **cands = policy_scope_candidates("docker", docker_ref);
    for (char **s = cands; s && *s && !base; s++)
        for (size_t i = 0; i < c.n && !base; i++)
            if (strcmp(c.e[i].scope, *s) == 0)
                base = write && c.e[i].staging ? c.e[i].staging : c.e[i].lookaside;
    if (!base)
        base = write && c.def.staging ? c.def.staging : c.def.lookaside;
    cleanup_free char *builtin = NULL;
    if (!base) {
        const char *home = getenv("HOME");
        /* rootless berth runs as root inside its user namespace: ask who the user is */
        builtin = !userns_is_rootless() || !home
                      ? xstrdup("file:///var/lib/containers/sigstore")
                      : xasprintf("file://%s/.local/share/containers/sigstore", home);
        base = builtin;
    }
    int ret = 0;
    if (write && is_http(base)) {
        /* like skopeo: a web server is read-only storage; writes go to a staging directory */
        ret = berth_error_make_status(err, ENOTSUP,
                                      "signature storage \"%s\" for %s: writing needs a file:// "
                                      "location (set lookaside-staging: file://...)",
                                      base, docker_ref);
    } else if (is_http(base)) {
        size_t bl = strlen(base);
        while (bl > 1 && base[bl - 1] == '/')
            bl--;
        if (check_http_base(base, err) < 0)
            ret = -1;
        else {
            *out = xasprintf("%.*s/%s@%s=%s", (int)bl, base, r->path, digest_algo_name(algo), hex);
            *remote = true;
        }
    } else if (strncmp(base, "file://", 7) != 0) {
        if (write)
            ret = berth_error_make_status(err, ENOTSUP,
                                          "signature storage \"%s\" for %s: only file:// "
                                          "lookaside locations are supported for writing",
                                          base, docker_ref);
        else
            log_warn("signature storage \"%s\" for %s: only file://, http:// and https:// "
                     "lookaside locations are supported; no signatures read",
                     base, docker_ref);
    } else {
        const char *p = base + 7;
        size_t pl = strlen(p);
        while (pl > 1 && p[pl - 1] == '/')
            pl--;
        if (p[0] != '/')
            ret = berth_error_make_status(err, EINVAL,
                                          "lookaside \"%s\" is not an absolute "
                                          "file:// URL",
                                          base);
        else
            *out = xasprintf("%.*s/%s@%s=%s", (int)pl, p, r->path, digest_algo_name(algo), hex);
    }
    la_config_clear(&c);
    return ret;
}

struct sig_list {
    char **sigs;
    size_t *lens;
    size_t n;
    size_t total;
};

static void sig_list_clear(struct sig_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->sigs[i]);
    free(l->sigs);
    free(l->lens);
    memset(l, 0, sizeof(*l));
}

/* Takes buf.  The total is bounded too: LOOKASIDE_MAX_SIGS signatures of the maximum size
 * would be gigabytes. */
static int sig_list_add(struct sig_list *l, char *buf, size_t len, const char *where,
                        berth_error_t *err)
{
    if (len > LOOKASIDE_MAX_TOTAL - l->total) {
        free(buf);
        return berth_error_make_status(err, EFBIG, "%s: the signatures exceed %u bytes in total",
                                       where, LOOKASIDE_MAX_TOTAL);
    }
    l->sigs = xreallocarray(l->sigs, l->n + 1, sizeof(char *));
    l->lens = xreallocarray(l->lens, l->n + 1, sizeof(size_t));
    l->sigs[l->n] = buf;
    l->lens[l->n] = len;
    l->n++;
    l->total += len;
    return 0;
}

static int get_file_signatures(const char *docker_ref, const char *dir, struct sig_list *l,
                               berth_error_t *err)
{
    for (size_t i = 1; i <= LOOKASIDE_MAX_SIGS; i++) {
        cleanup_free char *path = xasprintf("%s/signature-%zu", dir, i);
        cleanup_error berth_error_t e = NULL;
        char *buf;
        size_t len;
        if (fs_read_file(path, SIGNATURE_MAX_SIZE, &buf, &len, &e) < 0) {
            if (berth_error_status(e) == ENOENT)
                break;
            /* unreadable storage holds no signatures for us: a policy that needs them then
             * rejects the image, and copies that do not need them go on */
            if (berth_error_status(e) == EACCES || berth_error_status(e) == ENOTDIR) {
                log_warn("signatures of %s: %s", docker_ref, berth_error_msg(e));
                break;
            }
            *err = steal_pointer(&e);
            return -1;
        }
        if (sig_list_add(l, buf, len, dir, err) < 0)
            return -1;
    }
    return 0;
}

/* ---------- http(s) ---------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_body {
    CURL *easy;
    struct strbuf data; /* limited to SIGNATURE_MAX_SIZE */
};

static size_t http_body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct http_body *b = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &status);
    /* the status decides alone what any other answer means: its body is not needed */
    if (status != 200)
        return 0;
    if (strbuf_append_len(&b->data, ptr, n) < 0)
        return 0; /* past SIGNATURE_MAX_SIZE: strbuf_finish reports it */
    return n;
}

/* One handle for all signature-N of an image, so that the connection is reused. */
static CURL *http_handle(char *errbuf)
{
    pthread_once(&curl_once, curl_init_once);
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SIGNATURE_MAX_SIZE);
    curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_write);
    /* TLS is verified against the system CAs; SSL_CERT_FILE names another bundle, as for the
     * registry client (certs.d directories are not consulted for lookaside hosts) */
    const char *ca = getenv("SSL_CERT_FILE");
    if (ca && *ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    return e;
}

static void cleanup_curlp(CURL **e)
{
    if (*e)
        curl_easy_cleanup(*e);
}

/* 0 and the signature, 1 when there is none (404), -1 on any other answer or failure;
 * *transient then says whether trying again may help (connection failures, 429, 5xx). */
static int http_get_signature(CURL *e, char *errbuf, const char *url, char **out, size_t *len,
                              bool *transient, berth_error_t *err)
{
    *transient = false;
    struct http_body b = {.easy = e};
    strbuf_init(&b.data, SIGNATURE_MAX_SIZE);
    errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    log_debug("GET %s", url);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    int ret;
    if (b.data.failed || rc == CURLE_FILESIZE_EXCEEDED) {
        ret = berth_error_make_status(err, EFBIG, "GET %s: the signature is larger than %u bytes",
                                      url, SIGNATURE_MAX_SIZE);
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
        ret = berth_error_make_status(err, EPROTO,
                                      "GET %s: TLS certificate verification failed: %s "
                                      "(lookaside servers are checked against the system CAs)",
                                      url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && status != 200)) {
        *transient = rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
                     rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
                     rc == CURLE_PARTIAL_FILE;
        ret =
            berth_error_make_status(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO,
                                    "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (status == 404) {
        ret = 1;
    } else if (status != 200) {
        *transient = status == 429 || status >= 500;
        ret = berth_error_make_status(err, status == 401 || status == 403 ? EACCES : EIO,
                                      "GET %s: HTTP %ld", url, status);
    } else {
        return strbuf_finish(&b.data, url, out, len, err);
    }
    strbuf_release(&b.data);
    return ret;
}

/* As containers/image reads them: signature-1, -2, ... until the first 404; any other answer
 * is an error, so that a broken server is not mistaken for an unsigned image. */
static int get_http_signatures(const char *base, struct sig_list *l, berth_error_t *err)
{
    char errbuf[CURL_ERROR_SIZE];
    __attribute__((cleanup(cleanup_curlp))) CURL *e = http_handle(errbuf);
    if (!e)
        return berth_error_make_status(err, ENOMEM, "GET %s: cannot create a curl handle", base);
    for (size_t i = 1; i <= LOOKASIDE_MAX_SIGS; i++) {
        cleanup_free char *url = xasprintf("%s/signature-%zu", base, i);
        char *buf = NULL;
        size_t len = 0;
        bool transient = false;
        int r = -1;
        /* idempotent: a server that hiccups gets two more chances, 0.5 s and 1 s later */
        for (int attempt = 0; attempt < 3; attempt++) {
            if (attempt > 0) {
                log_debug("%s; trying again", berth_error_msg(*err));
                berth_error_release(err);
                struct timespec ts = {.tv_nsec = 500000000L};
                if (attempt == 2)
                    ts = (struct timespec){.tv_sec = 1};
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                    ;
            }
            r = http_get_signature(e, errbuf, url, &buf, &len, &transient, err);
            if (r >= 0 || !transient)
                break;
        }
        if (r < 0)
            return -1;
        if (r > 0)
            break;
        if (sig_list_add(l, buf, len, base, err) < 0)
            return -1;
    }
    return 0;
}

int lookaside_get_signatures(const char *docker_ref, const char *manifest_digest, char ***sigs,
                             size_t **lens, size_t *n, berth_error_t *err)
{
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    cleanup_free char *loc = NULL;
    bool remote;
    if (sig_location(docker_ref, manifest_digest, false, &loc, &remote, err) < 0)
        return -1;
    if (!loc)
        return 0;
    struct sig_list l = {0};
    int r =
        remote ? get_http_signatures(loc, &l, err) : get_file_signatures(docker_ref, loc, &l, err);
    if (r < 0) {
        sig_list_clear(&l);
        return berth_error_wrap(err, "signatures of %s", docker_ref);
    }
    *sigs = l.sigs;
    *lens = l.lens;
    *n = l.n;
    return 0;
}

int lookaside_put_signatures(const char *docker_ref, const char *manifest_digest, char *const *sigs,
                             const size_t *lens, size_t n, berth_error_t *err)
{
    cleanup_free char *dir = NULL;
    bool remote;
    if (sig_location(docker_ref, manifest_digest, true, &dir, &remote, err) < 0)
        return -1;
    if (n > LOOKASIDE_MAX_SIGS)
        return berth_error_make_status(err, EINVAL, "too many signatures (%zu)", n);
    if (n > 0 && fs_mkdir_p(dir, 0755, err) < 0)
        return berth_error_wrap(err, "signature storage");
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *path = xasprintf("%s/signature-%zu", dir, i + 1);
        if (fs_write_file_atomic(path, sigs[i], lens[i], 0644, err) < 0)
            return berth_error_wrap(err, "storing signature");
    }
    /* signatures of an earlier write beyond the new ones would otherwise still be read */
    for (size_t i = n + 1; i <= LOOKASIDE_MAX_SIGS; i++) {
        cleanup_free char *path = xasprintf("%s/signature-%zu", dir, i);
        if (unlink(path) < 0)
            break;
    }
    return 0;
}

int lookaside_use_sigstore_attachments(const char *docker_ref, bool *out, berth_error_t *err)
{
    *out = false;
    if (!docker_ref)
        return 0;
    struct la_config c;
    if (load_config(&c, err) < 0)
        return -1;
    /* the most specific scope that sets it, then default-docker; off when nothing does */
    int v = 0;
    cleanup_strv char **cands = policy_scope_candidates("docker", docker_ref);
    for (char **s = cands; s && *s && !v; s++)
        for (size_t i = 0; i < c.n && !v; i++)
            if (strcmp(c.e[i].scope, *s) == 0)
                v = c.e[i].attachments;
    if (!v)
        v = c.def.attachments;
    la_config_clear(&c);
    *out = v == 2;
    return 0;
}
