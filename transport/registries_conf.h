/* registries.conf (containers-registries.conf(5), version 2) with a small TOML parser.
 *
 * Supported TOML: comments, [table], [[array-of-tables]] ([[registry]], [[registry.mirror]]),
 * bare and quoted keys, basic and literal strings, booleans, integers, arrays of strings (over
 * several lines, trailing comma allowed).  Keys that registries.conf does not define are an
 * error naming file:line, as are TOML constructs outside this subset.  The version 1 tables
 * ([registries.search], [registries.insecure], [registries.block]) are accepted too.
 *
 * Files: --registries-conf FILE, else $CONTAINERS_REGISTRIES_CONF, else
 * ~/.config/containers/registries.conf when it exists, else /etc/containers/registries.conf;
 * then drop-ins from /etc/containers/registries.conf.d/ and ~/.config/containers/registries.conf.d/
 * (files ending in .conf, lexical order; later files override scalar settings and add registries)
 * unless a file was named explicitly.
 *
 * Ownership: a registries_conf_t and everything in it belong to whoever loaded it.
 */
#ifndef BERTH_REGISTRIES_CONF_H
#define BERTH_REGISTRIES_CONF_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

#define REGISTRIES_CONF_MAX (1024 * 1024)

enum pull_from_mirror { PULL_FROM_MIRROR_ALL = 0, PULL_FROM_MIRROR_DIGEST, PULL_FROM_MIRROR_TAG };

struct registry_mirror {
    char *location;
    bool insecure;
    enum pull_from_mirror pull_from;
};

struct registry_entry {
    char *prefix;   /* what the entry matches ("example.com/foo", "*.example.com") */
    char *location; /* where to go instead; defaults to prefix */
    bool insecure;
    bool blocked;
    bool mirror_by_digest_only;
    struct registry_mirror *mirrors;
    size_t nmirrors;
};

struct registry_alias {
    char *name;  /* short name ("busybox" or "user/app") */
    char *value; /* fully-qualified name */
};

typedef struct registries_conf {
    char **unqualified_search; /* NULL-terminated; NULL when unset */
    char *short_name_mode;     /* "enforcing", "permissive", "disabled"; NULL when unset */
    char **credential_helpers; /* NULL-terminated or NULL */
    struct registry_entry *registries;
    size_t nregistries;
    struct registry_alias *aliases;
    size_t naliases;
} registries_conf_t;

registries_conf_t *registries_conf_new(void);
void registries_conf_free(registries_conf_t *conf);
static inline void cleanup_registries_confp(registries_conf_t **c)
{
    registries_conf_free(*c);
    *c = NULL;
}
#define cleanup_registries_conf __attribute__((cleanup(cleanup_registries_confp)))

/* Parses text (named `filename` in errors) into conf, adding to what is there. */
BERTH_MUST_CHECK int registries_conf_parse(registries_conf_t *conf, const char *text, size_t len,
                                           const char *filename, berth_error_t *err);
BERTH_MUST_CHECK int registries_conf_parse_file(registries_conf_t *conf, const char *path,
                                                berth_error_t *err);

/* Loads the configuration as described above.  path: --registries-conf or NULL.  Missing
 * default files are fine (an empty configuration). */
BERTH_MUST_CHECK int registries_conf_load(const char *path, registries_conf_t **out,
                                          berth_error_t *err);

/* The entry whose prefix best matches name ("host[:port]/path", no tag/digest), or NULL. */
const struct registry_entry *registries_conf_find(const registries_conf_t *conf, const char *name);

/* Rewrites name by the matching entry's location (prefix replaced); returns a new string, or a
 * copy of name when nothing matches. */
char *registries_conf_rewrite(const struct registry_entry *e, const char *name);

/* Resolves a short name ("busybox", "user/app:1", with tag/digest allowed) into the
 * fully-qualified references to try, in order: the alias when one matches, otherwise one per
 * unqualified-search registry.  A name with a domain resolves to itself.  *from_alias says
 * whether an alias was used.  Fails when nothing can be tried (no alias and no search
 * registries) with a message saying what to configure.  *candidates NULL-terminated, owned. */
BERTH_MUST_CHECK int registries_conf_resolve_short_name(const registries_conf_t *conf,
                                                        const char *name, char ***candidates,
                                                        bool *from_alias, berth_error_t *err);

#endif
