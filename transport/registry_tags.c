/* Distribution API v2 client: tag lists and the catalog, paged. */
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

#define TAG_PAGES_MAX   10000
#define TAG_ENTRIES_MAX 1000000

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
    if (session_get_base(c, &base, err) < 0)
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
        if (session_do_request(c, &rq, &resp, err) < 0) {
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
        if (next && http_resolve_location(url, next, NULL, NULL, &nu, err) < 0)
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
    session_repo_scope(scope, sizeof(scope), repo, "pull");
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
