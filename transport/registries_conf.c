/* registries.conf parsing (a TOML subset) and short-name resolution. */
#include "transport/registries_conf.h"
#include "common/strutil.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/reference.h"
#include "transport/toml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

registries_conf_t *registries_conf_new(void)
{
    return xzalloc(sizeof(registries_conf_t));
}

static void entry_clear(struct registry_entry *e)
{
    free(e->prefix);
    free(e->location);
    for (size_t i = 0; i < e->nmirrors; i++)
        free(e->mirrors[i].location);
    free(e->mirrors);
}

void registries_conf_free(registries_conf_t *c)
{
    if (!c)
        return;
    strv_free(c->unqualified_search);
    strv_free(c->credential_helpers);
    free(c->short_name_mode);
    for (size_t i = 0; i < c->nregistries; i++)
        entry_clear(&c->registries[i]);
    free(c->registries);
    for (size_t i = 0; i < c->naliases; i++) {
        free(c->aliases[i].name);
        free(c->aliases[i].value);
    }
    free(c->aliases);
    free(c);
}

/* ---------- registries.conf on the TOML lexer ---------- */

enum section {
    SEC_TOP,
    SEC_REGISTRY,
    SEC_MIRROR,
    SEC_ALIASES,
    SEC_V1_SEARCH,
    SEC_V1_INSECURE,
    SEC_V1_BLOCK,
};

struct parser {
    struct toml_lexer lx;
    registries_conf_t *conf;
    enum section sec;
    bool v1, v2;
    size_t first_new_registry; /* registries added by this file start here */
};

static int want(struct parser *ps, const char *key, struct toml_value *v, enum toml_type t,
                berth_error_t *err)
{
    if (v->type != t)
        return toml_error(&ps->lx, err, "\"%s\" must be %s, not %s", key, toml_type_name(t),
                          toml_type_name(v->type));
    return 0;
}

static void set_str(char **slot, struct toml_value *v)
{
    free(*slot);
    *slot = v->s;
    v->s = NULL;
}

static void set_strv(char ***slot, struct toml_value *v)
{
    strv_free(*slot);
    *slot = v->arr;
    v->arr = NULL;
}

static int parse_pull_from(struct parser *ps, const char *s, enum pull_from_mirror *out,
                           berth_error_t *err)
{
    if (strcmp(s, "all") == 0)
        *out = PULL_FROM_MIRROR_ALL;
    else if (strcmp(s, "digest-only") == 0)
        *out = PULL_FROM_MIRROR_DIGEST;
    else if (strcmp(s, "tag-only") == 0)
        *out = PULL_FROM_MIRROR_TAG;
    else
        return toml_error(&ps->lx, err,
                          "invalid pull-from-mirror \"%s\": use all, digest-only or tag-only", s);
    return 0;
}

static int v1_add_registries(struct parser *ps, char **names, bool insecure, bool blocked)
{
    for (char **n = names; n && *n; n++) {
        struct registry_entry *e = NULL;
        /* A [[registry]] of this file given only a location has no prefix until the file is
         * validated (a v1 table after it is refused then, as a mix of versions). */
        for (size_t i = 0; i < ps->conf->nregistries; i++)
            if (ps->conf->registries[i].prefix && strcmp(ps->conf->registries[i].prefix, *n) == 0)
                e = &ps->conf->registries[i];
        if (!e) {
            ps->conf->registries = xreallocarray(ps->conf->registries, ps->conf->nregistries + 1,
                                                 sizeof(struct registry_entry));
            e = &ps->conf->registries[ps->conf->nregistries++];
            memset(e, 0, sizeof(*e));
            e->prefix = xstrdup(*n);
            e->location = xstrdup(*n);
        }
        if (insecure)
            e->insecure = true;
        if (blocked)
            e->blocked = true;
    }
    return 0;
}

static int assign(struct parser *ps, const char *key, bool quoted, struct toml_value *v,
                  berth_error_t *err)
{
    registries_conf_t *c = ps->conf;
    switch (ps->sec) {
    case SEC_TOP:
        ps->v2 = true;
        if (strcmp(key, "unqualified-search-registries") == 0) {
            if (want(ps, key, v, TOML_ARRAY, err) < 0)
                return -1;
            set_strv(&c->unqualified_search, v);
        } else if (strcmp(key, "short-name-mode") == 0) {
            if (want(ps, key, v, TOML_STRING, err) < 0)
                return -1;
            if (strcmp(v->s, "enforcing") && strcmp(v->s, "permissive") && strcmp(v->s, "disabled"))
                return toml_error(&ps->lx, err,
                                  "invalid short-name-mode \"%s\": use enforcing, permissive or "
                                  "disabled",
                                  v->s);
            set_str(&c->short_name_mode, v);
        } else if (strcmp(key, "credential-helpers") == 0) {
            if (want(ps, key, v, TOML_ARRAY, err) < 0)
                return -1;
            set_strv(&c->credential_helpers, v);
        } else {
            return toml_error(&ps->lx, err, "unknown key \"%s\"", key);
        }
        return 0;
    case SEC_REGISTRY: {
        struct registry_entry *e = &c->registries[c->nregistries - 1];
        if (strcmp(key, "prefix") == 0 || strcmp(key, "location") == 0) {
            if (want(ps, key, v, TOML_STRING, err) < 0)
                return -1;
            set_str(key[0] == 'p' ? &e->prefix : &e->location, v);
        } else if (strcmp(key, "insecure") == 0 || strcmp(key, "blocked") == 0 ||
                   strcmp(key, "mirror-by-digest-only") == 0) {
            if (want(ps, key, v, TOML_BOOL, err) < 0)
                return -1;
            if (key[0] == 'i')
                e->insecure = v->b;
            else if (key[0] == 'b')
                e->blocked = v->b;
            else
                e->mirror_by_digest_only = v->b;
        } else {
            return toml_error(&ps->lx, err, "unknown key \"%s\" in [[registry]]", key);
        }
        return 0;
    }
    case SEC_MIRROR: {
        struct registry_entry *e = &c->registries[c->nregistries - 1];
        struct registry_mirror *m = &e->mirrors[e->nmirrors - 1];
        if (strcmp(key, "location") == 0) {
            if (want(ps, key, v, TOML_STRING, err) < 0)
                return -1;
            set_str(&m->location, v);
        } else if (strcmp(key, "insecure") == 0) {
            if (want(ps, key, v, TOML_BOOL, err) < 0)
                return -1;
            m->insecure = v->b;
        } else if (strcmp(key, "pull-from-mirror") == 0) {
            if (want(ps, key, v, TOML_STRING, err) < 0)
                return -1;
            if (parse_pull_from(ps, v->s, &m->pull_from, err) < 0)
                return -1;
        } else {
            return toml_error(&ps->lx, err, "unknown key \"%s\" in [[registry.mirror]]", key);
        }
        return 0;
    }
    case SEC_ALIASES: {
        if (want(ps, key, v, TOML_STRING, err) < 0)
            return -1;
        (void)quoted;
        if (!image_ref_is_short_name(key))
            return toml_error(&ps->lx, err, "alias \"%s\" is not a short name", key);
        cleanup_image_ref image_ref_t *r = NULL;
        if (image_ref_parse(v->s, &r, err) < 0)
            return berth_error_wrap(err, "%s:%d: alias \"%s\"", ps->lx.file, ps->lx.line, key);
        if (!r->domain)
            return toml_error(&ps->lx, err,
                              "alias \"%s\" must name a fully-qualified image, not \"%s\"", key,
                              v->s);
        for (size_t i = 0; i < c->naliases; i++) {
            if (strcmp(c->aliases[i].name, key) == 0) {
                set_str(&c->aliases[i].value, v);
                return 0;
            }
        }
        c->aliases = xreallocarray(c->aliases, c->naliases + 1, sizeof(*c->aliases));
        c->aliases[c->naliases].name = xstrdup(key);
        c->aliases[c->naliases].value = NULL;
        set_str(&c->aliases[c->naliases].value, v);
        c->naliases++;
        return 0;
    }
    case SEC_V1_SEARCH:
    case SEC_V1_INSECURE:
    case SEC_V1_BLOCK:
        ps->v1 = true;
        if (strcmp(key, "registries") != 0)
            return toml_error(&ps->lx, err, "unknown key \"%s\"", key);
        if (want(ps, key, v, TOML_ARRAY, err) < 0)
            return -1;
        if (ps->sec == SEC_V1_SEARCH)
            strv_extend(&c->unqualified_search, v->arr);
        else
            v1_add_registries(ps, v->arr, ps->sec == SEC_V1_INSECURE, ps->sec == SEC_V1_BLOCK);
        return 0;
    }
    return toml_error(&ps->lx, err, "internal error");
}

static int table_header(struct parser *ps, berth_error_t *err)
{
    bool array = ps->lx.p + 1 < ps->lx.end && ps->lx.p[1] == '[';
    ps->lx.p += array ? 2 : 1;
    char *name;
    bool quoted;
    if (toml_parse_key(&ps->lx, &name, &quoted, err) < 0)
        return -1;
    cleanup_free char *n = name;
    toml_skip(&ps->lx, false);
    if (ps->lx.p >= ps->lx.end || *ps->lx.p != ']' ||
        (array && (ps->lx.p + 1 >= ps->lx.end || ps->lx.p[1] != ']')))
        return toml_error(&ps->lx, err, "expected '%s' after table name", array ? "]]" : "]");
    ps->lx.p += array ? 2 : 1;
    registries_conf_t *c = ps->conf;
    if (array && strcmp(n, "registry") == 0) {
        ps->v2 = true;
        c->registries =
            xreallocarray(c->registries, c->nregistries + 1, sizeof(struct registry_entry));
        memset(&c->registries[c->nregistries], 0, sizeof(struct registry_entry));
        c->nregistries++;
        ps->sec = SEC_REGISTRY;
    } else if (array && strcmp(n, "registry.mirror") == 0) {
        if (c->nregistries <= ps->first_new_registry || ps->sec == SEC_TOP)
            return toml_error(&ps->lx, err, "[[registry.mirror]] must follow a [[registry]]");
        struct registry_entry *e = &c->registries[c->nregistries - 1];
        e->mirrors = xreallocarray(e->mirrors, e->nmirrors + 1, sizeof(struct registry_mirror));
        memset(&e->mirrors[e->nmirrors], 0, sizeof(struct registry_mirror));
        e->nmirrors++;
        ps->sec = SEC_MIRROR;
    } else if (!array && strcmp(n, "aliases") == 0) {
        ps->v2 = true;
        ps->sec = SEC_ALIASES;
    } else if (!array && strcmp(n, "registries.search") == 0) {
        ps->sec = SEC_V1_SEARCH;
    } else if (!array && strcmp(n, "registries.insecure") == 0) {
        ps->sec = SEC_V1_INSECURE;
    } else if (!array && strcmp(n, "registries.block") == 0) {
        ps->sec = SEC_V1_BLOCK;
    } else {
        return toml_error(&ps->lx, err, "unknown table %s%s%s", array ? "[[" : "[", n,
                          array ? "]]" : "]");
    }
    return 0;
}

static int validate_entries(struct parser *ps, berth_error_t *err)
{
    registries_conf_t *c = ps->conf;
    for (size_t i = ps->first_new_registry; i < c->nregistries; i++) {
        struct registry_entry *e = &c->registries[i];
        if (!e->prefix && !e->location)
            return berth_error_make_status(err, EINVAL,
                                           "%s: [[registry]] #%zu has neither prefix nor location",
                                           ps->lx.file, i - ps->first_new_registry + 1);
        if (!e->prefix)
            e->prefix = xstrdup(e->location);
        if (!e->location && e->prefix[0] != '*')
            e->location = xstrdup(e->prefix);
        for (size_t m = 0; m < e->nmirrors; m++)
            if (!e->mirrors[m].location)
                return berth_error_make_status(err, EINVAL,
                                               "%s: a mirror of registry \"%s\" has no location",
                                               ps->lx.file, e->prefix);
        if (e->mirror_by_digest_only)
            for (size_t m = 0; m < e->nmirrors; m++)
                e->mirrors[m].pull_from = PULL_FROM_MIRROR_DIGEST;
    }
    return 0;
}

int registries_conf_parse(registries_conf_t *conf, const char *text, size_t len,
                          const char *filename, berth_error_t *err)
{
    struct parser ps = {.lx = {.p = text, .end = text + len, .file = filename, .line = 1},
                        .conf = conf,
                        .sec = SEC_TOP,
                        .first_new_registry = conf->nregistries};
    for (;;) {
        toml_skip(&ps.lx, true);
        if (ps.lx.p >= ps.lx.end)
            break;
        if (*ps.lx.p == '[') {
            if (table_header(&ps, err) < 0)
                return -1;
        } else {
            char *key;
            bool quoted;
            if (toml_parse_key(&ps.lx, &key, &quoted, err) < 0)
                return -1;
            cleanup_free char *k = key;
            toml_skip(&ps.lx, false);
            if (ps.lx.p >= ps.lx.end || *ps.lx.p != '=')
                return toml_error(&ps.lx, err, "expected '=' after key \"%s\"", k);
            ps.lx.p++;
            struct toml_value v;
            int line = ps.lx.line;
            if (toml_parse_value(&ps.lx, &v, err) < 0) {
                toml_value_clear(&v);
                return -1;
            }
            int end_line = ps.lx.line;
            ps.lx.line = line; /* report the key's line */
            int r = assign(&ps, k, quoted, &v, err);
            ps.lx.line = end_line;
            toml_value_clear(&v);
            if (r < 0)
                return -1;
        }
        toml_skip(&ps.lx, false);
        if (ps.lx.p < ps.lx.end && *ps.lx.p != '\n')
            return toml_error(&ps.lx, err, "unexpected \"%c\" at end of line", *ps.lx.p);
    }
    if (ps.v1 && ps.v2)
        return berth_error_make_status(err, EINVAL,
                                       "%s: mixes version 1 ([registries.*]) and version 2 "
                                       "settings",
                                       filename);
    return validate_entries(&ps, err);
}

int registries_conf_parse_file(registries_conf_t *conf, const char *path, berth_error_t *err)
{
    cleanup_free char *buf = NULL;
    size_t n = 0;
    if (fs_read_file(path, REGISTRIES_CONF_MAX, &buf, &n, err) < 0)
        return -1;
    return registries_conf_parse(conf, buf, n, path, err);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dropins(registries_conf_t *conf, const char *dir, berth_error_t *err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".conf") != 0)
            continue;
        names = xreallocarray(names, n + 1, sizeof(char *));
        names[n++] = xstrdup(e->d_name);
    }
    if (n)
        qsort(names, n, sizeof(char *), str_cmp);
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        if (ret == 0) {
            cleanup_free char *p = xasprintf("%s/%s", dir, names[i]);
            ret = registries_conf_parse_file(conf, p, err);
        }
        free(names[i]);
    }
    free(names);
    return ret;
}

int registries_conf_load(const char *path, registries_conf_t **out, berth_error_t *err)
{
    cleanup_registries_conf registries_conf_t *c = registries_conf_new();
    const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
    if (path && path[0]) {
        if (registries_conf_parse_file(c, path, err) < 0)
            return -1;
    } else if (env && env[0]) {
        if (registries_conf_parse_file(c, env, err) < 0)
            return -1;
    } else {
        const char *home = getenv("HOME");
        cleanup_free char *user =
            home ? xasprintf("%s/.config/containers/registries.conf", home) : NULL;
        const char *main =
            user && access(user, F_OK) == 0 ? user : "/etc/containers/registries.conf";
        if (access(main, F_OK) == 0 && registries_conf_parse_file(c, main, err) < 0)
            return -1;
        if (load_dropins(c, "/etc/containers/registries.conf.d", err) < 0)
            return -1;
        if (home) {
            cleanup_free char *ud = xasprintf("%s/.config/containers/registries.conf.d", home);
            if (load_dropins(c, ud, err) < 0)
                return -1;
        }
    }
    *out = steal_pointer(&c);
    return 0;
}

/* prefix matches name at a component boundary; "*.example.com" matches subdomains */
static size_t prefix_match(const char *prefix, const char *name)
{
    if (prefix[0] == '*' && prefix[1] == '.') {
        size_t hl = strcspn(name, "/");
        size_t sl = strlen(prefix + 1); /* ".example.com" */
        if (hl > sl && strncmp(name + hl - sl, prefix + 1, sl) == 0 && strchr(prefix, '/') == NULL)
            return sl;
        return 0;
    }
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0)
        return 0;
    char next = name[pl];
    if (next == '\0' || next == '/' || next == ':' || next == '@')
        return pl + 1; /* exact prefixes beat wildcards */
    return 0;
}

const struct registry_entry *registries_conf_find(const registries_conf_t *conf, const char *name)
{
    if (!conf)
        return NULL;
    const struct registry_entry *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < conf->nregistries; i++) {
        size_t l = prefix_match(conf->registries[i].prefix, name);
        if (l > best_len) {
            best = &conf->registries[i];
            best_len = l;
        }
    }
    return best;
}

char *registries_conf_rewrite(const struct registry_entry *e, const char *name)
{
    if (!e || !e->location || e->prefix[0] == '*')
        return xstrdup(name);
    size_t pl = strlen(e->prefix);
    if (strncmp(name, e->prefix, pl) != 0)
        return xstrdup(name);
    return xasprintf("%s%s", e->location, name + pl);
}

int registries_conf_resolve_short_name(const registries_conf_t *conf, const char *name,
                                       char ***candidates, bool *from_alias, berth_error_t *err)
{
    *from_alias = false;
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(name, &r, err) < 0)
        return -1;
    char **v = xcalloc(1, sizeof(char *));
    size_t n = 0;
    if (r->domain) {
        image_ref_t *q = image_ref_dup(r);
        if (image_ref_normalize(q, err) < 0) {
            image_ref_free(q);
            free(v);
            return -1;
        }
        v[0] = image_ref_string(q);
        image_ref_free(q);
        v = xreallocarray(v, 2, sizeof(char *));
        v[1] = NULL;
        *candidates = v;
        return 0;
    }
    /* aliases match the name without tag/digest */
    for (size_t i = 0; conf && i < conf->naliases; i++) {
        if (strcmp(conf->aliases[i].name, r->path) != 0)
            continue;
        cleanup_image_ref image_ref_t *a = NULL;
        if (image_ref_parse(conf->aliases[i].value, &a, err) < 0) {
            free(v);
            return -1;
        }
        if (r->tag || r->digest) {
            if (image_ref_set_tag(a, r->tag, err) < 0 ||
                image_ref_set_digest(a, r->digest, err) < 0) {
                free(v);
                return -1;
            }
        }
        if (!a->tag && !a->digest && image_ref_set_tag(a, IMAGE_REF_DEFAULT_TAG, err) < 0) {
            free(v);
            return -1;
        }
        v = xreallocarray(v, 2, sizeof(char *));
        v[0] = image_ref_string(a);
        v[1] = NULL;
        *from_alias = true;
        *candidates = v;
        return 0;
    }
    for (char **s = conf ? conf->unqualified_search : NULL; s && *s; s++) {
        cleanup_image_ref image_ref_t *q = NULL;
        if (image_ref_qualify(r, *s, &q, err) < 0) {
            for (size_t i = 0; i < n; i++)
                free(v[i]);
            free(v);
            return berth_error_wrap(err, "unqualified-search-registries entry \"%s\"", *s);
        }
        if (!q->tag && !q->digest)
            IGNORE_RESULT(image_ref_set_tag(q, IMAGE_REF_DEFAULT_TAG, NULL));
        v = xreallocarray(v, n + 2, sizeof(char *));
        v[n++] = image_ref_string(q);
        v[n] = NULL;
    }
    if (n == 0) {
        free(v);
        return berth_error_make_status(err, ENOENT,
                                       "short-name \"%s\" did not resolve to an alias and no "
                                       "unqualified-search-registries are defined in "
                                       "registries.conf; use a fully-qualified name such as "
                                       "docker.io/library/%s",
                                       name, name);
    }
    *candidates = v;
    return 0;
}
