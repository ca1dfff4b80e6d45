/* containers-policy.json(5) parsing and evaluation: see policy.h. */
#include "transport/policy.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/strutil.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/reference.h"
#include "transport/internal.h"
#include "transport/signature.h"
#include "transport/sigstore.h"
#include "transport/transport.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum req_type { REQ_ACCEPT, REQ_REJECT, REQ_SIGNED_BY, REQ_SIGSTORE_SIGNED };
enum ident_type {
    ID_MATCH_REPO_DIGEST_OR_EXACT,
    ID_MATCH_EXACT,
    ID_MATCH_REPOSITORY,
    ID_EXACT_REFERENCE,
    ID_EXACT_REPOSITORY,
    ID_REMAP,
};

struct requirement {
    enum req_type type;
    char **key_paths; /* NULL-terminated */
    char *key_data;
    size_t key_data_len;
    enum ident_type ident;
    char *ident_ref; /* exactReference / exactRepository, normalized */
    char *prefix, *signed_prefix;
};

struct reqlist {
    struct requirement *r;
    size_t n;
};

struct scope {
    char *name;
    struct reqlist reqs;
};

struct transport_scopes {
    char *transport;
    struct scope *scopes;
    size_t n;
};

struct policy {
    struct reqlist def;
    struct transport_scopes *t;
    size_t nt;
};

static void reqlist_clear(struct reqlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct requirement *r = &l->r[i];
        for (char **p = r->key_paths; p && *p; p++)
            free(*p);
        free(r->key_paths);
        free(r->key_data);
        free(r->ident_ref);
        free(r->prefix);
        free(r->signed_prefix);
    }
    free(l->r);
    memset(l, 0, sizeof(*l));
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    reqlist_clear(&p->def);
    for (size_t i = 0; i < p->nt; i++) {
        for (size_t j = 0; j < p->t[i].n; j++) {
            free(p->t[i].scopes[j].name);
            reqlist_clear(&p->t[i].scopes[j].reqs);
        }
        free(p->t[i].scopes);
        free(p->t[i].transport);
    }
    free(p->t);
    free(p);
}

/* ---- parsing ---- */

static int bad(berth_error_t *err, const char *path, const char *fmt, const char *arg)
{
    cleanup_free char *msg = xasprintf(fmt, arg ? arg : "");
    return berth_error_make_status(err, EINVAL, "%s: %s", path, msg);
}

/* Every key of obj must be in keys (NULL-terminated). */
static int known_keys(const json_t *obj, const char *path, const char *const *keys,
                      berth_error_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (const char *const *k = keys; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok)
            return bad(err, path, "unknown field \"%s\"", key);
    }
    return 0;
}

/* Standard base64 with padding; whitespace is not allowed. */
static int b64_decode(const char *str, char **out, size_t *len)
{
    return sigstore_base64_decode(str, strlen(str), out, len);
}

static int norm_ref(const char *s, bool name_only, char **out)
{
    cleanup_image_ref image_ref_t *r = NULL;
    cleanup_error berth_error_t e = NULL;
    if (image_ref_parse(s, &r, &e) < 0)
        return -1;
    bool plain = !r->tag && !r->digest;
    if (name_only != plain)
        return -1;
    if (image_ref_normalize(r, &e) < 0)
        return -1;
    *out = name_only ? image_ref_name(r) : image_ref_string(r);
    return 0;
}

static int parse_identity(const json_t *j, const char *path, struct requirement *r,
                          berth_error_t *err)
{
    if (!json_is_object(j))
        return bad(err, path, "not an object%s", NULL);
    const char *type = json_get_string(j, "type");
    if (!type)
        return bad(err, path, "\"type\" is missing or not a string%s", NULL);
    static const char *const only_type[] = {"type", NULL};
    if (strcmp(type, "matchRepoDigestOrExact") == 0 || strcmp(type, "matchExact") == 0 ||
        strcmp(type, "matchRepository") == 0) {
        if (strcmp(type, "matchRepoDigestOrExact") == 0)
            r->ident = ID_MATCH_REPO_DIGEST_OR_EXACT;
        else if (strcmp(type, "matchExact") == 0)
            r->ident = ID_MATCH_EXACT;
        else
            r->ident = ID_MATCH_REPOSITORY;
        return known_keys(j, path, only_type, err);
    }
    if (strcmp(type, "exactReference") == 0 || strcmp(type, "exactRepository") == 0) {
        bool repo = strcmp(type, "exactRepository") == 0;
        const char *key = repo ? "dockerRepository" : "dockerReference";
        const char *const keys[] = {"type", key, NULL};
        if (known_keys(j, path, keys, err) < 0)
            return -1;
        const char *v = json_get_string(j, key);
        if (!v)
            return bad(err, path, "\"%s\" is missing or not a string", key);
        if (norm_ref(v, repo, &r->ident_ref) < 0)
            return berth_error_make_status(err, EINVAL, "%s.%s: \"%s\" is not a %s", path, key, v,
                                           repo ? "repository name"
                                                : "reference with a tag or digest");
        r->ident = repo ? ID_EXACT_REPOSITORY : ID_EXACT_REFERENCE;
        return 0;
    }
    if (strcmp(type, "remapIdentity") == 0) {
        static const char *const keys[] = {"type", "prefix", "signedPrefix", NULL};
        if (known_keys(j, path, keys, err) < 0)
            return -1;
        const char *p = json_get_string(j, "prefix"), *sp = json_get_string(j, "signedPrefix");
        if (!p || !sp || !*p || !*sp)
            return bad(err, path, "\"prefix\" and \"signedPrefix\" must be non-empty strings%s",
                       NULL);
        r->ident = ID_REMAP;
        r->prefix = xstrdup(p);
        r->signed_prefix = xstrdup(sp);
        return 0;
    }
    return bad(err, path, "unknown signedIdentity type \"%s\"", type);
}

/* The keys and identity of signedBy and sigstoreSigned: exactly one of keyPath, keyPaths (only
 * when paths_allowed) and keyData; signedIdentity defaulting to matchRepoDigestOrExact.  what
 * names the requirement in messages ("" for signedBy, whose messages never said it). */
static int parse_keys_identity(const json_t *j, const char *path, bool paths_allowed,
                               const char *what, struct requirement *r, berth_error_t *err)
{
    json_t *kp = json_object_get(j, "keyPath"), *kps = json_object_get(j, "keyPaths"),
           *kd = json_object_get(j, "keyData");
    if (!!kp + !!kps + !!kd != 1)
        return bad(err, path,
                   paths_allowed ? "exactly one of keyPath, keyPaths and keyData is required%s"
                                 : "%sexactly one of keyPath and keyData is required",
                   what);
    if (kp) {
        if (!json_is_string(kp) || !*json_string_value(kp))
            return bad(err, path, "keyPath is not a non-empty string%s", NULL);
        r->key_paths = xcalloc(2, sizeof(char *));
        r->key_paths[0] = xstrdup(json_string_value(kp));
    } else if (kps) {
        if (!json_is_array(kps) || json_array_size(kps) == 0)
            return bad(err, path, "keyPaths is not a non-empty array%s", NULL);
        r->key_paths = xcalloc(json_array_size(kps) + 1, sizeof(char *));
        size_t i;
        json_t *v;
        json_array_foreach(kps, i, v)
        {
            if (!json_is_string(v) || !*json_string_value(v))
                return bad(err, path, "keyPaths holds something that is not a path%s", NULL);
            r->key_paths[i] = xstrdup(json_string_value(v));
        }
    } else if (!json_is_string(kd) ||
               b64_decode(json_string_value(kd), &r->key_data, &r->key_data_len) < 0 ||
               r->key_data_len == 0) {
        return bad(err, path, "keyData is not non-empty base64%s", NULL);
    }
    json_t *si = json_object_get(j, "signedIdentity");
    r->ident = ID_MATCH_REPO_DIGEST_OR_EXACT;
    if (si) {
        cleanup_free char *p = xasprintf("%s.signedIdentity", path);
        return parse_identity(si, p, r, err);
    }
    return 0;
}

/* {"type":"sigstoreSigned","keyPath":P | "keyData":BASE64-PEM,"signedIdentity":...}: the key is
 * read when the requirement is evaluated, as containers/image does. */
static int parse_sigstore_signed(const json_t *j, const char *path, struct requirement *r,
                                 berth_error_t *err)
{
    static const char *const keys[] = {"type", "keyPath", "keyData", "signedIdentity", NULL};
    if (json_object_get(j, "fulcio") || json_object_get(j, "rekorPublicKeyPath") ||
        json_object_get(j, "rekorPublicKeyData"))
        return bad(err, path,
                   "sigstoreSigned: Fulcio certificates and Rekor are not supported (only "
                   "keyPath/keyData public keys)%s",
                   NULL);
    if (known_keys(j, path, keys, err) < 0)
        return -1;
    r->type = REQ_SIGSTORE_SIGNED;
    return parse_keys_identity(j, path, false, "sigstoreSigned: ", r, err);
}

static int parse_requirement(const json_t *j, const char *path, struct requirement *r,
                             berth_error_t *err)
{
    if (!json_is_object(j))
        return bad(err, path, "requirement is not an object%s", NULL);
    const char *type = json_get_string(j, "type");
    if (!type)
        return bad(err, path, "\"type\" is missing or not a string%s", NULL);
    static const char *const only_type[] = {"type", NULL};
    if (strcmp(type, "insecureAcceptAnything") == 0 || strcmp(type, "reject") == 0) {
        r->type = type[0] == 'r' ? REQ_REJECT : REQ_ACCEPT;
        return known_keys(j, path, only_type, err);
    }
    if (strcmp(type, "sigstoreSigned") == 0)
        return parse_sigstore_signed(j, path, r, err);
    if (strcmp(type, "signedBy") != 0)
        return bad(err, path, "unknown requirement type \"%s\"", type);
    static const char *const keys[] = {"type",    "keyType",        "keyPath", "keyPaths",
                                       "keyData", "signedIdentity", NULL};
    if (known_keys(j, path, keys, err) < 0)
        return -1;
    r->type = REQ_SIGNED_BY;
    const char *kt = json_get_string(j, "keyType");
    if (!kt)
        return bad(err, path, "\"keyType\" is missing or not a string%s", NULL);
    if (strcmp(kt, "GPGKeys") != 0)
        return bad(err, path, "keyType \"%s\" is not supported (only GPGKeys)", kt);
    return parse_keys_identity(j, path, true, "", r, err);
}

static int parse_reqlist(const json_t *j, const char *path, struct reqlist *out, berth_error_t *err)
{
    if (!json_is_array(j))
        return bad(err, path, "not an array of requirements%s", NULL);
    if (json_array_size(j) == 0)
        return bad(err, path, "the list of requirements must not be empty%s", NULL);
    out->r = xcalloc(json_array_size(j), sizeof(*out->r));
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        out->n = i + 1;
        cleanup_free char *p = xasprintf("%s[%zu]", path, i);
        if (parse_requirement(v, p, &out->r[i], err) < 0)
            return -1;
    }
    return 0;
}

/* A docker scope is "" , "*.domain", or a fully qualified name (what would never match is an
 * error, not a silent no-op: "busybox" is not "docker.io/library/busybox"). */
static int docker_scope_check(const char *scope, const char *path, berth_error_t *err)
{
    if (!*scope)
        return 0;
    if (scope[0] == '*') {
        if (scope[1] != '.' || !scope[2] || strchr(scope + 2, '/') || strchr(scope + 2, '*'))
            return bad(err, path, "invalid wildcard scope \"%s\" (expected *.DOMAIN)", scope);
        return 0;
    }
    cleanup_image_ref image_ref_t *r = NULL, *n = NULL;
    cleanup_error berth_error_t e = NULL;
    if (!strchr(scope, '/')) {
        /* a host ("quay.io", "localhost:5000") */
        if ((strchr(scope, '.') || strchr(scope, ':') || strcmp(scope, "localhost") == 0) &&
            image_ref_validate_domain(scope, &e) == 0)
            return 0;
        return bad(err, path,
                   "scope \"%s\" is neither a registry host nor a fully qualified "
                   "image name",
                   scope);
    }
    bool ok = image_ref_parse(scope, &r, &e) == 0 && r->domain;
    if (ok) {
        ok = image_ref_parse_normalized(scope, &n, &e) == 0;
        cleanup_free char *a = ok ? image_ref_name(r) : NULL, *b = ok ? image_ref_name(n) : NULL;
        ok = ok && strcmp(a, b) == 0;
    }
    if (!ok)
        return bad(err, path,
                   "scope \"%s\" is not a fully qualified image name (e.g. "
                   "docker.io/library/busybox)",
                   scope);
    return 0;
}

int policy_parse(const char *buf, size_t len, const char *what, struct policy **out,
                 berth_error_t *err)
{
    cleanup_json json_t *doc = NULL;
    if (json_parse_bounded(buf, len, POLICY_MAX_SIZE, what, &doc, err) < 0)
        return -1;
    struct policy *p = xzalloc(sizeof(*p));
    static const char *const top[] = {"default", "transports", NULL};
    if (!json_is_object(doc)) {
        bad(err, "(top level)", "not a JSON object%s", NULL);
        goto fail;
    }
    if (known_keys(doc, "(top level)", top, err) < 0)
        goto fail;
    json_t *def = json_object_get(doc, "default");
    if (!def) {
        bad(err, "default", "is missing%s", NULL);
        goto fail;
    }
    if (parse_reqlist(def, "default", &p->def, err) < 0)
        goto fail;
    json_t *ts = json_object_get(doc, "transports");
    if (ts) {
        if (!json_is_object(ts)) {
            bad(err, "transports", "not an object%s", NULL);
            goto fail;
        }
        p->t = xcalloc(json_object_size(ts), sizeof(*p->t));
        const char *tname;
        json_t *tv;
        json_object_foreach(ts, tname, tv)
        {
            struct transport_scopes *t = &p->t[p->nt++];
            t->transport = xstrdup(tname);
            cleanup_free char *tp = xasprintf("transports.%s", tname);
            if (!json_is_object(tv)) {
                bad(err, tp, "not an object of scopes%s", NULL);
                goto fail;
            }
            t->scopes = xcalloc(json_object_size(tv), sizeof(*t->scopes));
            const char *sname;
            json_t *sv;
            json_object_foreach(tv, sname, sv)
            {
                struct scope *s = &t->scopes[t->n++];
                s->name = xstrdup(sname);
                cleanup_free char *sp = xasprintf("%s[\"%s\"]", tp, sname);
                if ((strcmp(tname, "dir") == 0 || strcmp(tname, "oci") == 0 ||
                     strcmp(tname, "oci-archive") == 0) &&
                    *sname && sname[0] != '/') {
                    bad(err, sp, "scope must be an absolute path%s", NULL);
                    goto fail;
                }
                if ((strcmp(tname, "docker") == 0 || strcmp(tname, "atomic") == 0) &&
                    docker_scope_check(sname, sp, err) < 0)
                    goto fail;
                if (parse_reqlist(sv, sp, &s->reqs, err) < 0)
                    goto fail;
            }
        }
    }
    *out = p;
    return 0;
fail:
    policy_free(p);
    return berth_error_wrap(err, "invalid policy %s", what);
}

int policy_load_file(const char *path, struct policy **out, berth_error_t *err)
{
    cleanup_free char *buf = NULL;
    size_t len;
    if (fs_read_file(path, POLICY_MAX_SIZE, &buf, &len, err) < 0)
        return berth_error_wrap(err, "reading policy");
    cleanup_free char *what = xasprintf("\"%s\"", path);
    return policy_parse(buf, len, what, out, err);
}

int policy_find_path(const char *override, char **out, berth_error_t *err)
{
    if (override) {
        *out = xstrdup(override);
        return 0;
    }
    const char *home = getenv("HOME");
    if (home && *home) {
        char *p = xasprintf("%s/.config/containers/policy.json", home);
        if (access(p, F_OK) == 0) {
            *out = p;
            return 0;
        }
        free(p);
    }
    if (access("/etc/containers/policy.json", F_OK) == 0) {
        *out = xstrdup("/etc/containers/policy.json");
        return 0;
    }
    return berth_error_make_status(err, ENOENT,
                                   "no policy.json found: neither $HOME/.config/containers/"
                                   "policy.json nor /etc/containers/policy.json exists (use "
                                   "--policy FILE)");
}

int policy_load_default(const char *override, struct policy **out, berth_error_t *err)
{
    cleanup_free char *path = NULL;
    if (policy_find_path(override, &path, err) < 0)
        return -1;
    return policy_load_file(path, out, err);
}

/* ---- scopes ---- */

static bool is_docker_like(const char *transport)
{
    return strcmp(transport, "docker") == 0 || strcmp(transport, "atomic") == 0 ||
           strcmp(transport, "containers-storage") == 0;
}

static bool is_path_like(const char *transport)
{
    return strcmp(transport, "dir") == 0 || strcmp(transport, "oci") == 0 ||
           strcmp(transport, "oci-archive") == 0;
}

/* The scopes an image identity matches, most specific first. */
char **policy_scope_candidates(const char *transport, const char *ident)
{
    char **v = NULL;
    if (!ident || !*ident)
        return NULL;
    strv_add_take(&v, xstrdup(ident));
    if (is_docker_like(transport)) {
        cleanup_image_ref image_ref_t *r = NULL;
        cleanup_error berth_error_t e = NULL;
        if (image_ref_parse(ident, &r, &e) < 0)
            return v;
        char *name = image_ref_name(r);
        if (strcmp(name, ident) != 0)
            strv_add_take(&v, xstrdup(name));
        for (char *slash = strrchr(name, '/'); slash; slash = strrchr(name, '/')) {
            *slash = '\0';
            strv_add_take(&v, xstrdup(name));
        }
        /* name is now the host: "*.example.com" wildcards for its parent domains */
        if (!strchr(name, ':'))
            for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.'))
                strv_add_take(&v, xasprintf("*%s", dot));
        free(name);
    } else if (is_path_like(transport)) {
        char *p = xstrdup(ident);
        for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
            if (slash == p) {
                if (p[1])
                    strv_add_take(&v, xstrdup("/"));
                break;
            }
            *slash = '\0';
            strv_add_take(&v, xstrdup(p));
        }
        free(p);
    }
    return v;
}

static const struct reqlist *find_reqs(const struct policy *p, const char *transport,
                                       const char *ident, const char **scope_name)
{
    const struct transport_scopes *t = NULL;
    for (size_t i = 0; i < p->nt && !t; i++)
        if (strcmp(p->t[i].transport, transport) == 0)
            t = &p->t[i];
    *scope_name = "default";
    if (!t)
        return &p->def;
    cleanup_strv char **cands = policy_scope_candidates(transport, ident);
    for (char **c = cands; c && *c; c++)
        for (size_t j = 0; j < t->n; j++)
            if (strcmp(t->scopes[j].name, *c) == 0) {
                *scope_name = t->scopes[j].name;
                return &t->scopes[j].reqs;
            }
    for (size_t j = 0; j < t->n; j++)
        if (!*t->scopes[j].name) {
            *scope_name = "\"\"";
            return &t->scopes[j].reqs;
        }
    return &p->def;
}

/* ---- identities ---- */

static bool ref_parts(const char *s, image_ref_t **out)
{
    cleanup_error berth_error_t e = NULL;
    return image_ref_parse(s, out, &e) == 0;
}

static bool match_repo_digest_or_exact(const char *img, const char *sig)
{
    cleanup_image_ref image_ref_t *i = NULL, *s = NULL;
    if (!img || !ref_parts(img, &i) || !ref_parts(sig, &s))
        return false;
    if (i->digest) {
        cleanup_free char *a = image_ref_name(i), *b = image_ref_name(s);
        return strcmp(a, b) == 0;
    }
    if (i->tag)
        return strcmp(img, sig) == 0;
    return false;
}

static bool identity_matches(const struct requirement *r, const char *img, const char *sig)
{
    switch (r->ident) {
    case ID_MATCH_REPO_DIGEST_OR_EXACT:
        return match_repo_digest_or_exact(img, sig);
    case ID_MATCH_EXACT: {
        cleanup_image_ref image_ref_t *i = NULL;
        if (!img || !ref_parts(img, &i) || (!i->tag && !i->digest))
            return false;
        return strcmp(img, sig) == 0;
    }
    case ID_MATCH_REPOSITORY: {
        cleanup_image_ref image_ref_t *i = NULL, *s = NULL;
        if (!img || !ref_parts(img, &i) || !ref_parts(sig, &s))
            return false;
        cleanup_free char *a = image_ref_name(i), *b = image_ref_name(s);
        return strcmp(a, b) == 0;
    }
    case ID_EXACT_REFERENCE:
        return strcmp(r->ident_ref, sig) == 0;
    case ID_EXACT_REPOSITORY: {
        cleanup_image_ref image_ref_t *s = NULL;
        if (!ref_parts(sig, &s))
            return false;
        cleanup_free char *b = image_ref_name(s);
        return strcmp(r->ident_ref, b) == 0;
    }
    case ID_REMAP: {
        if (!img)
            return false;
        size_t pl = strlen(r->prefix);
        const char *use = img;
        cleanup_free char *remapped = NULL;
        if (strncmp(img, r->prefix, pl) == 0 &&
            (img[pl] == '\0' || img[pl] == '/' || img[pl] == ':' || img[pl] == '@' ||
             r->prefix[pl - 1] == '/')) {
            remapped = xasprintf("%s%s", r->signed_prefix, img + pl);
            cleanup_free char *n = NULL;
            cleanup_error berth_error_t e = NULL;
            if (signature_normalize_reference(remapped, &n, &e) < 0)
                return false;
            free(remapped);
            remapped = steal_pointer(&n);
            use = remapped;
        }
        return match_repo_digest_or_exact(use, sig);
    }
    }
    return false;
}

static const char *ident_name(enum ident_type t)
{
    static const char *const names[] = {"matchRepoDigestOrExact", "matchExact",
                                        "matchRepository",        "exactReference",
                                        "exactRepository",        "remapIdentity"};
    return names[t];
}

/* One signedBy requirement: at least one signature must verify with its keys, be for this
 * manifest and claim an acceptable identity. */
static int check_signed_by(const struct requirement *r, const char *docker_ref,
                           const char *manifest, size_t len, char *const *sigs,
                           const size_t *sig_lens, size_t nsigs, berth_error_t *err)
{
    if (nsigs == 0)
        return berth_error_make_status(err, EACCES,
                                       "a signature was required, but no signature "
                                       "exists");
    struct signature_keyring *kr = NULL;
    if (signature_keyring_new(r->key_paths, r->key_data, r->key_data_len, &kr, err) < 0)
        return berth_error_wrap(err, "signedBy keys");
    cleanup_free char *reasons = NULL;
    int ret = -1;
    for (size_t i = 0; i < nsigs && ret < 0; i++) {
        struct signature_info si;
        berth_error_t e = NULL;
        const char *body;
        size_t body_len;
        enum signature_format f = signature_blob_format(sigs[i], sig_lens[i], &body, &body_len);
        if (f != SIGNATURE_FORMAT_SIMPLE) {
            berth_error_make_status(&e, EACCES, "%s",
                                    f == SIGNATURE_FORMAT_SIGSTORE
                                        ? "a sigstore signature (signedBy needs simple signing)"
                                        : "a signature of an unknown format");
        } else if (signature_verify(kr, NULL, body, body_len, &si, &e) == 0) {
            if (signature_check_manifest(&si, manifest, len, &e) == 0) {
                if (identity_matches(r, docker_ref, si.docker_reference))
                    ret = 0;
                else
                    berth_error_make_status(&e, EACCES,
                                            "its identity \"%s\" is not accepted for %s%s%s by "
                                            "signedIdentity %s",
                                            si.docker_reference, docker_ref ? "\"" : "",
                                            docker_ref ? docker_ref
                                                       : "an image without a docker reference",
                                            docker_ref ? "\"" : "", ident_name(r->ident));
            }
            signature_info_clear(&si);
        }
        if (ret < 0) {
            char *n = xasprintf("%s%ssignature %zu: %s", reasons ? reasons : "",
                                reasons ? "; " : "", i + 1, berth_error_msg(e));
            free(reasons);
            reasons = n;
        }
        berth_error_release(&e);
    }
    signature_keyring_free(kr);
    if (ret < 0)
        berth_error_make_status(err, EACCES, "no valid signature: %s", reasons);
    return ret;
}

/* The reason an identity is refused (shared by signedBy and sigstoreSigned). */
static void identity_refused(const struct requirement *r, const char *docker_ref,
                             const char *claimed, berth_error_t *e)
{
    berth_error_make_status(
        e, EACCES, "its identity \"%s\" is not accepted for %s%s%s by signedIdentity %s", claimed,
        docker_ref ? "\"" : "", docker_ref ? docker_ref : "an image without a docker reference",
        docker_ref ? "\"" : "", ident_name(r->ident));
}

/* One sigstoreSigned requirement: at least one sigstore signature must verify with the public
 * key, be for this manifest and claim an acceptable identity. */
static int check_sigstore_signed(const struct requirement *r, const char *docker_ref,
                                 const char *manifest, size_t len, char *const *sigs,
                                 const size_t *sig_lens, size_t nsigs, berth_error_t *err)
{
    size_t nsst = 0;
    for (size_t i = 0; i < nsigs; i++)
        if (signature_blob_format(sigs[i], sig_lens[i], NULL, NULL) == SIGNATURE_FORMAT_SIGSTORE)
            nsst++;
    if (nsst == 0)
        return berth_error_make_status(err, EACCES,
                                       "a sigstore signature was required, but no sigstore "
                                       "signature exists%s",
                                       nsigs ? " (only simple signing signatures)" : "");
    struct sigstore_pubkey *key = NULL;
    if (sigstore_pubkey_load(r->key_paths ? r->key_paths[0] : NULL, r->key_data, r->key_data_len,
                             &key, err) < 0)
        return berth_error_wrap(err, "sigstoreSigned key");
    cleanup_free char *reasons = NULL;
    int ret = -1;
    size_t k = 0;
    for (size_t i = 0; i < nsigs && ret < 0; i++) {
        if (signature_blob_format(sigs[i], sig_lens[i], NULL, NULL) != SIGNATURE_FORMAT_SIGSTORE)
            continue;
        k++;
        struct signature_info si;
        berth_error_t e = NULL;
        if (sigstore_verify(key, sigs[i], sig_lens[i], &si, &e) == 0) {
            if (signature_check_manifest(&si, manifest, len, &e) == 0) {
                if (identity_matches(r, docker_ref, si.docker_reference))
                    ret = 0;
                else
                    identity_refused(r, docker_ref, si.docker_reference, &e);
            }
            signature_info_clear(&si);
        }
        if (ret < 0) {
            char *n = xasprintf("%s%ssigstore signature %zu: %s", reasons ? reasons : "",
                                reasons ? "; " : "", k, berth_error_msg(e));
            free(reasons);
            reasons = n;
        }
        berth_error_release(&e);
    }
    sigstore_pubkey_free(key);
    if (ret < 0)
        berth_error_make_status(err, EACCES, "no valid sigstore signature: %s", reasons);
    return ret;
}

int policy_check_image_ident(const struct policy *p, const char *transport, const char *scope_ref,
                             const char *docker_ref, const char *manifest, size_t len,
                             char *const *sigs, const size_t *sig_lens, size_t nsigs,
                             berth_error_t *err)
{
    const char *scope_name;
    const struct reqlist *l = find_reqs(p, transport, scope_ref, &scope_name);
    for (size_t i = 0; i < l->n; i++) {
        const struct requirement *r = &l->r[i];
        int rr = 0;
        const char *name = "insecureAcceptAnything";
        if (r->type == REQ_REJECT) {
            name = "reject";
            rr = berth_error_make_status(err, EACCES, "the policy rejects this image");
        } else if (r->type == REQ_SIGNED_BY) {
            name = "signedBy";
            rr = check_signed_by(r, docker_ref, manifest, len, sigs, sig_lens, nsigs, err);
        } else if (r->type == REQ_SIGSTORE_SIGNED) {
            name = "sigstoreSigned";
            rr = check_sigstore_signed(r, docker_ref, manifest, len, sigs, sig_lens, nsigs, err);
        }
        if (rr < 0)
            return berth_error_wrap(err,
                                    "source image %s:%s rejected by policy (requirement %zu "
                                    "\"%s\" of scope %s in transport %s)",
                                    transport, scope_ref ? scope_ref : "", i + 1, name, scope_name,
                                    l == &p->def ? "(any)" : transport);
    }
    return 0;
}

int policy_check_image(const struct policy *p, const char *transport, const char *scope_ref,
                       const char *manifest, size_t len, char *const *sigs, const size_t *sig_lens,
                       size_t nsigs, berth_error_t *err)
{
    const char *dref =
        transport && (strcmp(transport, "docker") == 0 || strcmp(transport, "atomic") == 0)
            ? scope_ref
            : NULL;
    return policy_check_image_ident(p, transport, scope_ref, dref, manifest, len, sigs, sig_lens,
                                    nsigs, err);
}

static char *abs_path(const char *p)
{
    char buf[PATH_MAX];
    if (realpath(p, buf))
        return xstrdup(buf);
    if (p[0] == '/')
        return xstrdup(p);
    if (!getcwd(buf, sizeof(buf)))
        return xstrdup(p);
    return xasprintf("%s/%s", buf, p);
}

int policy_reference_identity(const struct image_reference *ref, char **scope_ref,
                              char **docker_ref, berth_error_t *err)
{
    const char *t = ref->transport->name;
    *scope_ref = NULL;
    *docker_ref = NULL;
    if (is_path_like(t)) {
        if (strcmp(t, "dir") == 0) {
            cleanup_free char *s = image_reference_string(ref);
            *scope_ref = abs_path(s + strlen("dir:"));
        } else {
            const char *path, *tag;
            int index;
            oci_ref_parts(ref, &path, &tag, &index);
            *scope_ref = abs_path(path);
        }
        return 0;
    }
    if (ref->docker_name) {
        cleanup_image_ref image_ref_t *r = NULL;
        if (image_ref_parse_normalized(ref->docker_name, &r, err) < 0)
            return -1;
        *docker_ref = image_ref_string(r);
        if (is_docker_like(t))
            *scope_ref = xstrdup(*docker_ref);
    }
    return 0;
}

int policy_check_source(const struct policy *p, struct image_source *src, const char *manifest,
                        size_t len, berth_error_t *err)
{
    cleanup_free char *scope = NULL, *dref = NULL;
    if (policy_reference_identity(src->ref, &scope, &dref, err) < 0)
        return -1;
    /* signatures are read only when a requirement looks at them */
    const char *scope_name;
    const struct reqlist *l = find_reqs(p, src->ref->transport->name, scope, &scope_name);
    bool need_sigs = false;
    for (size_t i = 0; i < l->n; i++)
        need_sigs =
            need_sigs || l->r[i].type == REQ_SIGNED_BY || l->r[i].type == REQ_SIGSTORE_SIGNED;
    char **sigs = NULL;
    size_t *lens = NULL, n = 0;
    if (need_sigs && src->ops->get_signatures &&
        src->ops->get_signatures(src, NULL, &sigs, &lens, &n, err) < 0)
        return berth_error_wrap(err, "reading signatures");
    int r = policy_check_image_ident(p, src->ref->transport->name, scope, dref, manifest, len, sigs,
                                     lens, n, err);
    for (size_t i = 0; i < n; i++)
        free(sigs[i]);
    free(sigs);
    free(lens);
    return r;
}
