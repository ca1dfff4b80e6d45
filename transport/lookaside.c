/* registries.d lookaside signature storage (file:// only): see lookaside.h. */
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
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct la_entry {
    char *scope; /* NULL for default-docker */
    char *lookaside;
    char *staging;
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

static void set_key(struct la_entry *e, const char *key, const char *val)
{
    char **slot = NULL;
    if (strcmp(key, "lookaside") == 0 || strcmp(key, "sigstore") == 0)
        slot = &e->lookaside;
    else if (strcmp(key, "lookaside-staging") == 0 || strcmp(key, "sigstore-staging") == 0)
        slot = &e->staging;
    if (!slot || !*val)
        return;
    free(*slot);
    *slot = xstrdup(val);
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
            set_key(&c->def, key, val);
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
            set_key(cur, key, val);
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

/* The signature directory of (docker_ref, digest) for reading or writing; *out NULL when the
 * configured location is not file:// (reading only). */
static int sig_dir(const char *docker_ref, const char *digest, bool write, char **out,
                   berth_error_t *err)
{
    *out = NULL;
    if (!docker_ref)
        return berth_error_make_status(err, EINVAL, "signature storage: the image has no name");
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(digest, &algo, &hex, err) < 0)
        return -1;
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse_normalized(docker_ref, &r, err) < 0)
        return -1;
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
    if (strncmp(base, "file://", 7) != 0) {
        if (write)
            ret = berth_error_make_status(err, ENOTSUP,
                                          "signature storage \"%s\" for %s: only file:// "
                                          "lookaside locations are supported",
                                          base, docker_ref);
        else
            log_warn("signature storage \"%s\" for %s: only file:// lookaside locations are "
                     "supported; no signatures read",
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
        else if (strstr(r->path, ".."))
            ret =
                berth_error_make_status(err, EINVAL, "unexpected repository path \"%s\"", r->path);
        else
            *out = xasprintf("%.*s/%s@%s=%s", (int)pl, p, r->path, digest_algo_name(algo), hex);
    }
    la_config_clear(&c);
    return ret;
}

int lookaside_get_signatures(const char *docker_ref, const char *manifest_digest, char ***sigs,
                             size_t **lens, size_t *n, berth_error_t *err)
{
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    cleanup_free char *dir = NULL;
    if (sig_dir(docker_ref, manifest_digest, false, &dir, err) < 0)
        return -1;
    for (size_t i = 1; dir && i <= LOOKASIDE_MAX_SIGS; i++) {
        cleanup_free char *path = xasprintf("%s/signature-%zu", dir, i);
        cleanup_error berth_error_t e = NULL;
        char *buf;
        size_t l;
        if (fs_read_file(path, SIGNATURE_MAX_SIZE, &buf, &l, &e) < 0) {
            if (berth_error_status(e) == ENOENT)
                break;
            /* unreadable storage holds no signatures for us: a policy that needs them then
             * rejects the image, and copies that do not need them go on */
            if (berth_error_status(e) == EACCES || berth_error_status(e) == ENOTDIR) {
                log_warn("signatures of %s: %s", docker_ref, berth_error_msg(e));
                break;
            }
            for (size_t k = 0; k < *n; k++)
                free((*sigs)[k]);
            free(*sigs);
            free(*lens);
            *sigs = NULL;
            *lens = NULL;
            *n = 0;
            *err = steal_pointer(&e);
            return -1;
        }
        *sigs = xreallocarray(*sigs, *n + 1, sizeof(char *));
        *lens = xreallocarray(*lens, *n + 1, sizeof(size_t));
        (*sigs)[*n] = buf;
        (*lens)[*n] = l;
        (*n)++;
    }
    return 0;
}

int lookaside_put_signatures(const char *docker_ref, const char *manifest_digest, char *const *sigs,
                             const size_t *lens, size_t n, berth_error_t *err)
{
    cleanup_free char *dir = NULL;
    if (sig_dir(docker_ref, manifest_digest, true, &dir, err) < 0)
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
