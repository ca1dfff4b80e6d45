/* Registry authentication helpers: challenges, token answers, credential files. */
#include "transport/auth.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void auth_challenge_clear(struct auth_challenge *c)
{
    free(c->realm);
    free(c->service);
    free(c->scope);
    memset(c, 0, sizeof(*c));
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads a token68/auth-param value: quoted-string (with \-escapes) or token.  Returns the
 * position after it. */
static const char *read_value(const char *p, char **out)
{
    size_t cap = strlen(p) + 1, n = 0;
    char *v = xmalloc(cap);
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1])
                p++;
            v[n++] = *p++;
        }
        if (*p == '"')
            p++;
    } else {
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            v[n++] = *p++;
    }
    v[n] = '\0';
    *out = v;
    return p;
}

int auth_challenge_parse(const char *header, struct auth_challenge *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    struct auth_challenge cur = {0}, best = {0};
    const char *p = header ? header : "";
    bool have_cur = false;
    while (*p) {
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\0')
            break;
        /* read a word: either a scheme name or a param name */
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '=' && *p != ',')
            p++;
        size_t wl = (size_t)(p - w);
        const char *q = skip_ws(p);
        if (*q == '=' && have_cur) {
            /* auth-param of the current challenge */
            q = skip_ws(q + 1);
            char *val = NULL;
            p = read_value(q, &val);
            char **slot = NULL;
            if (wl == 5 && strncasecmp(w, "realm", 5) == 0)
                slot = &cur.realm;
            else if (wl == 7 && strncasecmp(w, "service", 7) == 0)
                slot = &cur.service;
            else if (wl == 5 && strncasecmp(w, "scope", 5) == 0)
                slot = &cur.scope;
            if (slot) {
                free(*slot);
                *slot = val;
            } else {
                free(val);
            }
            continue;
        }
        /* a new scheme starts: close the current one */
        if (have_cur) {
            if (cur.scheme > best.scheme) {
                auth_challenge_clear(&best);
                best = cur;
            } else {
                auth_challenge_clear(&cur);
            }
            memset(&cur, 0, sizeof(cur));
        }
        have_cur = true;
        if (wl == 6 && strncasecmp(w, "bearer", 6) == 0)
            cur.scheme = AUTH_SCHEME_BEARER;
        else if (wl == 5 && strncasecmp(w, "basic", 5) == 0)
            cur.scheme = AUTH_SCHEME_BASIC;
        else
            cur.scheme = AUTH_SCHEME_NONE;
    }
    if (have_cur) {
        if (cur.scheme > best.scheme) {
            auth_challenge_clear(&best);
            best = cur;
        } else {
            auth_challenge_clear(&cur);
        }
    }
    if (best.scheme == AUTH_SCHEME_NONE) {
        auth_challenge_clear(&best);
        return berth_error_make_status(err, EPROTO,
                                       "unsupported authentication challenge \"%.200s\": "
                                       "only Bearer and Basic are supported",
                                       header ? header : "");
    }
    if (best.scheme == AUTH_SCHEME_BEARER && (best.realm == NULL || best.realm[0] == '\0')) {
        auth_challenge_clear(&best);
        return berth_error_make_status(
            err, EPROTO, "bearer authentication challenge without a realm: \"%.200s\"", header);
    }
    *out = best;
    return 0;
}

int auth_parse_token_response(const char *body, size_t len, char **token, int64_t *expires_in,
                              berth_error_t *err)
{
    cleanup_json json_t *j = NULL;
    if (json_parse_bounded(body, len, AUTH_TOKEN_MAX, "token response", &j, err) < 0)
        return -1;
    if (!json_is_object(j))
        return berth_error_make_status(err, EPROTO, "token response is not a JSON object");
    const char *t = json_get_string(j, "token");
    if (t == NULL || t[0] == '\0')
        t = json_get_string(j, "access_token");
    if (t == NULL || t[0] == '\0')
        return berth_error_make_status(err, EPROTO,
                                       "token response has neither \"token\" nor \"access_token\"");
    int64_t e = 0;
    if (!json_get_int(j, "expires_in", &e) || e < 60)
        e = 60;
    *token = xstrdup(t);
    *expires_in = e;
    return 0;
}

int auth_parse_creds(const char *creds, char **user, char **pass, berth_error_t *err)
{
    if (creds == NULL || creds[0] == '\0' || creds[0] == ':')
        return berth_error_make_status(err, EINVAL, "invalid credentials: expected USER[:PASS]");
    const char *colon = strchr(creds, ':');
    if (colon) {
        *user = xstrndup(creds, (size_t)(colon - creds));
        *pass = xstrdup(colon + 1);
    } else {
        *user = xstrdup(creds);
        *pass = NULL;
    }
    return 0;
}

char *auth_base64_encode(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[n] = '\0';
    return out;
}

int auth_base64_decode(const char *s, char **out, size_t *len, berth_error_t *err)
{
    size_t sl = strlen(s);
    while (sl > 0 && isspace((unsigned char)s[sl - 1]))
        sl--;
    if (sl % 4 != 0 || sl > AUTH_FILE_MAX)
        return berth_error_make_status(err, EINVAL, "invalid base64 data");
    char *buf = xmalloc(sl / 4 * 3 + 1);
    int n = EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)s, (int)sl);
    if (n < 0) {
        free(buf);
        return berth_error_make_status(err, EINVAL, "invalid base64 data");
    }
    /* EVP_DecodeBlock counts padding as zero bytes */
    if (sl >= 1 && s[sl - 1] == '=')
        n--;
    if (sl >= 2 && s[sl - 2] == '=')
        n--;
    buf[n] = '\0';
    *out = buf;
    *len = (size_t)n;
    return 0;
}

int auth_decode_entry(const char *b64, char **user, char **pass, berth_error_t *err)
{
    cleanup_free char *raw = NULL;
    size_t len;
    if (auth_base64_decode(b64, &raw, &len, err) < 0)
        return berth_error_wrap(err, "decoding \"auth\" entry");
    if (memchr(raw, '\0', len) != NULL)
        return berth_error_make_status(err, EINVAL, "decoding \"auth\" entry: contains NUL");
    char *colon = strchr(raw, ':');
    if (colon == NULL || colon == raw)
        return berth_error_make_status(err, EINVAL,
                                       "decoding \"auth\" entry: expected base64 of USER:PASS");
    *user = xstrndup(raw, (size_t)(colon - raw));
    *pass = xstrdup(colon + 1);
    explicit_bzero(raw, len);
    return 0;
}

static char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && h[0])
        return xstrdup(h);
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? xstrdup(pw->pw_dir) : NULL;
}

/* podman's location: ${XDG_RUNTIME_DIR}/containers/auth.json, for root without
 * XDG_RUNTIME_DIR /run/containers/0/auth.json. */
static char *runtime_auth_path(void)
{
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (x && x[0])
        return xasprintf("%s/containers/auth.json", x);
    if (getuid() == 0)
        return xstrdup("/run/containers/0/auth.json");
    return NULL;
}

char **auth_default_files(void)
{
    char **v = xcalloc(5, sizeof(char *));
    size_t n = 0;
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && env[0])
        v[n++] = xstrdup(env);
    char *rt = runtime_auth_path();
    if (rt)
        v[n++] = rt;
    cleanup_free char *home = home_dir();
    if (home) {
        v[n++] = xasprintf("%s/.config/containers/auth.json", home);
        v[n++] = xasprintf("%s/.docker/config.json", home);
    }
    v[n] = NULL;
    return v;
}

char *auth_write_path(const char *auth_file)
{
    if (auth_file && auth_file[0])
        return xstrdup(auth_file);
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && env[0])
        return xstrdup(env);
    char *rt = runtime_auth_path();
    if (rt)
        return rt;
    cleanup_free char *home = home_dir();
    return home ? xasprintf("%s/.config/containers/auth.json", home)
                : xstrdup("/run/containers/auth.json");
}

/* Normalises an "auths" key: strips "http(s)://" and a trailing "/v1/" or "/v2/" path (docker's
 * legacy forms) and a trailing '/'. */
static char *normalize_key(const char *k)
{
    if (strncmp(k, "https://", 8) == 0)
        k += 8;
    else if (strncmp(k, "http://", 7) == 0)
        k += 7;
    char *s = xstrdup(k);
    size_t l = strlen(s);
    if (l >= 4 && (strcmp(s + l - 4, "/v1/") == 0 || strcmp(s + l - 4, "/v2/") == 0))
        s[l - 4] = '\0';
    else if (l >= 3 && (strcmp(s + l - 3, "/v1") == 0 || strcmp(s + l - 3, "/v2") == 0))
        s[l - 3] = '\0';
    l = strlen(s);
    while (l > 0 && s[l - 1] == '/')
        s[--l] = '\0';
    if (strcmp(s, "index.docker.io") == 0 || strcmp(s, "registry-1.docker.io") == 0) {
        free(s);
        s = xstrdup("docker.io");
    }
    return s;
}

static int run_cred_helper(const char *helper, const char *registry, char **user, char **pass,
                           bool *found, berth_error_t *err)
{
    /* docker-credential-NAME get: server URL on stdin, JSON {"Username","Secret"} on stdout */
    cleanup_free char *prog = xasprintf("docker-credential-%s", helper);
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    if (pipe2(outp, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return berth_error_make(err, errno, "pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        return berth_error_make(err, errno, "fork");
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        execlp(prog, prog, "get", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    /* a helper that exits without reading (not found: 127) closes the pipe first: that is an
     * EPIPE to ignore, not a SIGPIPE that kills berth (a race the unit test hit under load) */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    ssize_t wr = write(in[1], registry, strlen(registry));
    if (wr < 0 && errno == EPIPE) {
        struct timespec now = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    close(in[1]);
    /* bounded: a helper that writes more than a token's worth is an error, not a cut answer */
    char *buf = NULL;
    size_t n = 0;
    berth_error_t rerr = NULL;
    int rr = fs_read_fd(outp[0], AUTH_TOKEN_MAX, prog, &buf, &n, &rerr);
    close(outp[0]);
    if (rr < 0)
        kill(pid, SIGKILL); /* it may be blocked writing the rest */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rr < 0) {
        berth_error_release(err);
        *err = rerr;
        return berth_error_wrap(err, "credential helper");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        explicit_bzero(buf, n);
        free(buf);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return berth_error_make_status(err, ENOENT, "credential helper %s not found", prog);
        /* helpers exit 1 with "credentials not found" for unknown servers */
        *found = false;
        return 0;
    }
    cleanup_json json_t *j = NULL;
    int r = json_parse_bounded(buf, n, AUTH_TOKEN_MAX, "credential helper output", &j, err);
    explicit_bzero(buf, n);
    free(buf);
    if (r < 0)
        return berth_error_wrap(err, "%s", prog);
    const char *u = json_get_string(j, "Username");
    const char *s = json_get_string(j, "Secret");
    if (!u || !s)
        return berth_error_make_status(err, EPROTO, "%s: output lacks Username/Secret", prog);
    *user = xstrdup(u);
    *pass = xstrdup(s);
    *found = true;
    return 0;
}

int auth_lookup_in_file(const char *path, const char *registry, const char *repo, char **user,
                        char **pass, bool *found, berth_error_t *err)
{
    *found = false;
    cleanup_json json_t *j = NULL;
    if (json_load_file_bounded(path, AUTH_FILE_MAX, &j, err) < 0) {
        if (berth_error_status(*err) == ENOENT) {
            berth_error_release(err);
            return 0;
        }
        return berth_error_wrap(err, "reading auth file \"%s\"", path);
    }
    if (!json_is_object(j))
        return berth_error_make_status(err, EINVAL, "auth file \"%s\": not a JSON object", path);
    cleanup_free char *want_reg = normalize_key(registry);
    cleanup_free char *want_full =
        repo && repo[0] ? xasprintf("%s/%s", want_reg, repo) : xstrdup(want_reg);

    json_t *auths = json_get_object(j, "auths");
    const json_t *best = NULL;
    size_t best_len = 0;
    if (auths) {
        const char *key;
        json_t *val;
        json_object_foreach(auths, key, val)
        {
            cleanup_free char *k = normalize_key(key);
            size_t kl = strlen(k);
            /* key matches registry exactly, or is a path prefix of registry/repo */
            bool match = strcmp(k, want_reg) == 0 ||
                         (strncmp(want_full, k, kl) == 0 &&
                          (want_full[kl] == '\0' || want_full[kl] == '/') && strchr(k, '/'));
            if (match && kl > best_len && json_is_object(val)) {
                best = val;
                best_len = kl;
            }
        }
    }
    if (best) {
        /* an OAuth2 refresh token from a previous login replaces the password */
        const char *it = json_get_string(best, "identitytoken");
        if (it && it[0]) {
            *user = xstrdup(AUTH_IDENTITY_TOKEN_USER);
            *pass = xstrdup(it);
            *found = true;
            return 0;
        }
        const char *a = json_get_string(best, "auth");
        if (a && a[0]) {
            if (auth_decode_entry(a, user, pass, err) < 0)
                return berth_error_wrap(err, "auth file \"%s\", entry for %s", path, registry);
            *found = true;
            return 0;
        }
        const char *u = json_get_string(best, "username");
        const char *p = json_get_string(best, "password");
        if (u && p) {
            *user = xstrdup(u);
            *pass = xstrdup(p);
            *found = true;
            return 0;
        }
    }
    const char *helper = NULL;
    json_t *helpers = json_get_object(j, "credHelpers");
    if (helpers)
        helper = json_get_string(helpers, want_reg);
    if (!helper)
        helper = json_get_string(j, "credsStore");
    if (helper && helper[0]) {
        if (strchr(helper, '/'))
            return berth_error_make_status(err, EINVAL, "auth file \"%s\": bad helper name", path);
        log_debug("asking credential helper %s for %s", helper, registry);
        return run_cred_helper(helper, want_reg, user, pass, found, err);
    }
    return 0;
}

int auth_lookup(const char *auth_file, const char *registry, const char *repo, char **user,
                char **pass, bool *found, berth_error_t *err)
{
    *found = false;
    if (auth_file && auth_file[0])
        return auth_lookup_in_file(auth_file, registry, repo, user, pass, found, err);
    cleanup_strv char **files = auth_default_files();
    for (char **f = files; *f; f++) {
        if (auth_lookup_in_file(*f, registry, repo, user, pass, found, err) < 0)
            return -1;
        if (*found) {
            log_debug("using credentials for %s from %s", registry, *f);
            return 0;
        }
    }
    return 0;
}

/* Locks the auth file's directory for a read-modify-write: two logins (or a login and a
 * logout) at once would otherwise each rewrite the file from what they read, and one of the
 * updates would be lost.  The file itself cannot carry the lock: it is replaced by a rename.
 * Returns the locked directory fd (closing it unlocks). */
static int lock_for_edit(const char *path, berth_error_t *err)
{
    cleanup_free char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash) {
        free(dir);
        dir = xstrdup(".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
        if (fs_mkdir_p(dir, 0700, err) < 0)
            return berth_error_wrap(err, "creating directory for auth file \"%s\"", path);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory \"%s\"", dir);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return berth_error_make(err, e, "lock directory \"%s\"", dir);
    }
    return fd;
}

static int load_for_edit(const char *path, json_t **out, berth_error_t *err)
{
    json_t *j = NULL;
    cleanup_free char *buf = NULL;
    size_t len = 0;
    if (fs_read_file(path, AUTH_FILE_MAX, &buf, &len, err) < 0) {
        if (berth_error_status(*err) != ENOENT)
            return berth_error_wrap(err, "reading auth file \"%s\"", path);
        berth_error_release(err);
        j = json_object();
    } else if (strspn(buf, " \t\r\n") == len) {
        j = json_object(); /* empty, e.g. --authfile /dev/null */
    } else {
        cleanup_free char *what = xasprintf("JSON in \"%s\"", path);
        if (json_parse_bounded(buf, len, AUTH_FILE_MAX, what, &j, err) < 0)
            return berth_error_wrap(err, "reading auth file \"%s\"", path);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return berth_error_make_status(err, EINVAL, "auth file \"%s\": not a JSON object", path);
    }
    *out = j;
    return 0;
}

static int save(const char *path, json_t *j, berth_error_t *err)
{
    cleanup_free char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (fs_mkdir_p(dir, 0700, err) < 0)
            return berth_error_wrap(err, "creating directory for auth file \"%s\"", path);
    }
    cleanup_free char *s = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!s)
        return berth_error_make(err, ENOMEM, "serialising auth file");
    size_t len = strlen(s);
    /* the user's file: a symlink is followed, a device or FIFO written in place */
    int r = fs_write_output(path, s, len, 0600, err);
    explicit_bzero(s, len);
    if (r < 0)
        return berth_error_wrap(err, "writing auth file \"%s\"", path);
    return 0;
}

int auth_store(const char *named, const char *key, const char *user, const char *pass,
               berth_error_t *err)
{
    /* lock, read and write where a symlinked auth file really is */
    cleanup_free char *path = NULL;
    if (fs_output_resolve(named, &path, err) < 0)
        return -1;
    cleanup_close int lock = lock_for_edit(path, err);
    if (lock < 0)
        return -1;
    cleanup_json json_t *j = NULL;
    if (load_for_edit(path, &j, err) < 0)
        return -1;
    json_t *auths = json_get_object(j, "auths");
    if (!auths) {
        auths = json_object();
        json_object_set_new(j, "auths", auths);
    }
    cleanup_free char *raw = xasprintf("%s:%s", user, pass);
    cleanup_free char *b64 = auth_base64_encode(raw, strlen(raw));
    explicit_bzero(raw, strlen(raw));
    json_t *entry = json_object();
    json_object_set_new(entry, "auth", json_string(b64));
    explicit_bzero(b64, strlen(b64));
    json_object_set_new(auths, key, entry);
    return save(path, j, err);
}

int auth_remove(const char *named, const char *key, bool *removed, berth_error_t *err)
{
    *removed = false;
    cleanup_free char *path = NULL;
    if (fs_output_resolve(named, &path, err) < 0)
        return -1;
    if (!fs_exists(path))
        return 0;
    cleanup_close int lock = lock_for_edit(path, err);
    if (lock < 0)
        return -1;
    cleanup_json json_t *j = NULL;
    if (load_for_edit(path, &j, err) < 0)
        return -1;
    json_t *auths = json_get_object(j, "auths");
    if (!auths)
        return 0;
    if (key == NULL) {
        *removed = json_object_size(auths) > 0;
        json_object_clear(auths);
    } else {
        cleanup_free char *want = normalize_key(key);
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(auths, tmp, k, v)
        {
            cleanup_free char *nk = normalize_key(k);
            if (strcmp(nk, want) == 0) {
                json_object_del(auths, k);
                *removed = true;
            }
        }
    }
    if (!*removed)
        return 0;
    return save(path, j, err);
}
