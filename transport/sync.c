/* berth sync: list images, detect changes by manifest digest, copy what changed. */
#include "transport/sync.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"
#include "common/reference.h"
#include "transport/docker.h"
#include "transport/lookaside.h"
#include "transport/manifest.h"
#include "transport/registry_client.h"
#include "transport/registry_session.h"
#include "transport/sigstore_attach.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_YAML_MAX  (4 * 1024 * 1024)
#define SYNC_DIR_DEPTH 16

/* ---------- work items ---------- */

struct src_ctx {
    struct system_context sys;
    char *cert_dir, *creds; /* storage for sys strings */
};

struct work {
    char *src, *dst; /* full transport references */
    const struct system_context *src_sys;
};

struct plan {
    struct work *w;
    size_t n;
    struct src_ctx **ctx;
    size_t nctx;
};

static void plan_add(struct plan *p, char *src, char *dst, const struct system_context *sys)
{
    p->w = xreallocarray(p->w, p->n + 1, sizeof(*p->w));
    p->w[p->n].src = src;
    p->w[p->n].dst = dst;
    p->w[p->n].src_sys = sys;
    p->n++;
}

static void plan_clear(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->w[i].src);
        free(p->w[i].dst);
    }
    free(p->w);
    for (size_t i = 0; i < p->nctx; i++) {
        free(p->ctx[i]->cert_dir);
        if (p->ctx[i]->creds)
            explicit_bzero(p->ctx[i]->creds, strlen(p->ctx[i]->creds));
        free(p->ctx[i]->creds);
        free(p->ctx[i]);
    }
    free(p->ctx);
    memset(p, 0, sizeof(*p));
}

static const char *strip_prefix(const char *s, const char *prefix)
{
    size_t l = strlen(prefix);
    return strncmp(s, prefix, l) == 0 ? s + l : s;
}

static bool tag_selected(const struct sync_options *o, const char *tag)
{
    for (size_t i = 0; i < o->n_exclude; i++)
        if (regexec(&o->exclude[i], tag, 0, NULL, 0) == 0)
            return false;
    if (o->n_include == 0)
        return true;
    for (size_t i = 0; i < o->n_include; i++)
        if (regexec(&o->include[i], tag, 0, NULL, 0) == 0)
            return true;
    return false;
}

/* Destination reference for source name (domain/path) and tag or digest. */
static char *dest_ref(const struct sync_options *o, const char *name, const char *tag)
{
    const char *suffix = name;
    if (!o->scoped) {
        const char *slash = strrchr(name, '/');
        suffix = slash ? slash + 1 : name;
    }
    const char *dst = strip_prefix(o->dst, o->dst_kind == SYNC_DOCKER ? "docker://" : "dir:");
    size_t dl = strlen(dst);
    while (dl > 1 && dst[dl - 1] == '/')
        dl--;
    bool is_digest = strchr(tag, ':') != NULL;
    return xasprintf("%s%.*s/%s%s%s", o->dst_kind == SYNC_DOCKER ? "docker://" : "dir:", (int)dl,
                     dst, suffix, is_digest ? "@" : ":", tag);
}

static int list_repo_tags(const char *name, const struct system_context *sys, char ***tags,
                          size_t *n, berth_error_t *err)
{
    cleanup_free char *s = xasprintf("docker://%s", name);
    cleanup_image_reference struct image_reference *ref = NULL;
    if (transport_parse_reference(s, &ref, err) < 0)
        return -1;
    registry_client_t *c;
    cleanup_free char *repo = NULL;
    if (docker_open_client(ref, sys, &c, &repo, err) < 0)
        return -1;
    return registry_list_tags(c, repo, 0, tags, n, err);
}

static void free_strv_n(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Adds name's tags (all, filtered by the include/exclude options and by re when given). */
static int add_repo(const struct sync_options *o, struct plan *p, const char *name,
                    const struct system_context *sys, const regex_t *re, berth_error_t *err)
{
    char **tags = NULL;
    size_t n = 0;
    if (list_repo_tags(name, sys, &tags, &n, err) < 0)
        return -1;
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tag_selected(o, tags[i]))
            continue;
        if (re && regexec(re, tags[i], 0, NULL, 0) != 0)
            continue;
        plan_add(p, xasprintf("docker://%s:%s", name, tags[i]), dest_ref(o, name, tags[i]), sys);
        added++;
    }
    free_strv_n(tags, n);
    if (added == 0)
        log_warn("%s: no tags selected", name);
    return 0;
}

static int plan_docker(const struct sync_options *o, struct plan *p, berth_error_t *err)
{
    const char *s = strip_prefix(o->src, "docker://");
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(s, &r, err) < 0)
        return -1;
    bool explicit_tag = r->tag || r->digest;
    if (image_ref_normalize(r, err) < 0)
        return -1;
    cleanup_free char *name = image_ref_name(r);
    if (explicit_tag) {
        const char *t = r->digest ? r->digest : r->tag;
        plan_add(p, xasprintf("docker://%s%s%s", name, r->digest ? "@" : ":", t),
                 dest_ref(o, name, t), o->src_sys);
        return 0;
    }
    return add_repo(o, p, name, o->src_sys, NULL, err);
}

static int walk_dir(const struct sync_options *o, struct plan *p, const char *root, const char *rel,
                    int depth, berth_error_t *err)
{
    if (depth > SYNC_DIR_DEPTH)
        return 0;
    cleanup_free char *path = rel[0] ? xasprintf("%s/%s", root, rel) : xstrdup(root);
    cleanup_free char *mf = xasprintf("%s/manifest.json", path);
    struct stat st;
    if (rel[0] && lstat(mf, &st) == 0 && S_ISREG(st.st_mode)) {
        /* rel is "name:tag" or "ns/name:tag" */
        const char *last = strrchr(rel, '/');
        last = last ? last + 1 : rel;
        const char *colon = strrchr(last, ':');
        const char *at = strchr(last, '@');
        const char *sep = at ? at : colon;
        if (!sep)
            return 0;
        cleanup_free char *name = xstrndup(rel, (size_t)(sep - rel));
        const char *tag = sep + 1;
        if (!tag_selected(o, tag))
            return 0;
        plan_add(p, xasprintf("dir:%s", path), dest_ref(o, name, tag), o->src_sys);
        return 0;
    }
    cleanup_dir DIR *d = opendir(path);
    if (!d)
        return berth_error_make(err, errno, "open directory \"%s\"", path);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        cleanup_free char *sub = xasprintf("%s/%s", path, e->d_name);
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            names = xreallocarray(names, n + 1, sizeof(char *));
            names[n++] = xstrdup(e->d_name);
        }
    }
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        if (ret == 0) {
            cleanup_free char *r = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
            ret = walk_dir(o, p, root, r, depth + 1, err);
        }
        free(names[i]);
    }
    free(names);
    return ret;
}

static bool yaml_bool(json_t *v, bool *out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s)
        return false;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no")) {
        *out = false;
        return true;
    }
    return false;
}

static int plan_yaml(const struct sync_options *o, struct plan *p, berth_error_t *err)
{
    cleanup_close int fd = open(o->src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", o->src);
    berth_reader_t *r = reader_from_fd(fd, false);
    cleanup_free char *text = NULL;
    size_t len = 0;
    int rr = reader_read_all(r, SYNC_YAML_MAX, &text, &len, err);
    reader_close(r);
    if (rr < 0)
        return berth_error_wrap(err, "reading \"%s\"", o->src);
    cleanup_json json_t *doc = NULL;
    if (sync_yaml_parse(text, len, o->src, &doc, err) < 0)
        return -1;
    if (!json_is_object(doc))
        return berth_error_make_status(err, EINVAL, "%s: expected a mapping of registries", o->src);
    const char *reg;
    json_t *cfg;
    json_object_foreach(doc, reg, cfg)
    {
        if (!json_is_object(cfg))
            return berth_error_make_status(err, EINVAL, "%s: registry %s: expected a mapping",
                                           o->src, reg);
        struct src_ctx *ctx = xzalloc(sizeof(*ctx));
        p->ctx = xreallocarray(p->ctx, p->nctx + 1, sizeof(*p->ctx));
        p->ctx[p->nctx++] = ctx;
        if (o->src_sys)
            ctx->sys = *o->src_sys;
        else {
            ctx->sys.tls_verify = -1;
            ctx->sys.retry_times = -1;
            ctx->sys.retry_delay_ms = -1;
        }
        json_t *images = NULL, *by_regex = NULL;
        const char *key;
        json_t *v;
        json_object_foreach(cfg, key, v)
        {
            if (!strcmp(key, "images")) {
                images = v;
            } else if (!strcmp(key, "images-by-tag-regex")) {
                by_regex = v;
            } else if (!strcmp(key, "tls-verify")) {
                bool b;
                if (!yaml_bool(v, &b))
                    return berth_error_make_status(err, EINVAL,
                                                   "%s: registry %s: tls-verify must be true or "
                                                   "false",
                                                   o->src, reg);
                ctx->sys.tls_verify = b ? 1 : 0;
            } else if (!strcmp(key, "cert-dir")) {
                if (!json_is_string(v))
                    return berth_error_make_status(err, EINVAL, "%s: registry %s: bad cert-dir",
                                                   o->src, reg);
                ctx->cert_dir = xstrdup(json_string_value(v));
                ctx->sys.cert_dir = ctx->cert_dir;
            } else if (!strcmp(key, "credentials")) {
                const char *u = json_get_string(v, "username");
                const char *pw = json_get_string(v, "password");
                if (!u || !pw)
                    return berth_error_make_status(err, EINVAL,
                                                   "%s: registry %s: credentials need username "
                                                   "and password",
                                                   o->src, reg);
                ctx->creds = xasprintf("%s:%s", u, pw);
                ctx->sys.creds = ctx->creds;
            } else {
                return berth_error_make_status(err, EINVAL,
                                               "%s: registry %s: unknown key \"%s\" (supported: "
                                               "images, images-by-tag-regex, tls-verify, "
                                               "cert-dir, credentials)",
                                               o->src, reg, key);
            }
        }
        if (images && !json_is_null(images)) {
            if (!json_is_object(images))
                return berth_error_make_status(err, EINVAL, "%s: %s.images must be a mapping",
                                               o->src, reg);
            const char *repo;
            json_t *tags;
            json_object_foreach(images, repo, tags)
            {
                cleanup_free char *name = xasprintf("%s/%s", reg, repo);
                cleanup_image_ref image_ref_t *ir = NULL;
                if (image_ref_parse(name, &ir, err) < 0)
                    return berth_error_wrap(err, "%s", o->src);
                if (json_is_null(tags) || (json_is_array(tags) && json_array_size(tags) == 0)) {
                    if (add_repo(o, p, name, &ctx->sys, NULL, err) < 0)
                        return -1;
                    continue;
                }
                if (!json_is_array(tags))
                    return berth_error_make_status(
                        err, EINVAL, "%s: %s.images.%s must be a list of tags", o->src, reg, repo);
                size_t i;
                json_t *t;
                json_array_foreach(tags, i, t)
                {
                    const char *tag = json_string_value(t);
                    if (!tag)
                        continue;
                    if (strchr(tag, ':')) {
                        if (digest_validate(tag, err) < 0)
                            return berth_error_wrap(err, "%s: %s", o->src, name);
                    } else if (image_ref_validate_tag(tag, err) < 0) {
                        return berth_error_wrap(err, "%s: %s", o->src, name);
                    }
                    plan_add(p,
                             xasprintf("docker://%s%s%s", name, strchr(tag, ':') ? "@" : ":", tag),
                             dest_ref(o, name, tag), &ctx->sys);
                }
            }
        }
        if (by_regex && !json_is_null(by_regex)) {
            if (!json_is_object(by_regex))
                return berth_error_make_status(
                    err, EINVAL, "%s: %s.images-by-tag-regex must be a mapping", o->src, reg);
            const char *repo;
            json_t *re;
            json_object_foreach(by_regex, repo, re)
            {
                if (!json_is_string(re))
                    return berth_error_make_status(err, EINVAL,
                                                   "%s: %s.images-by-tag-regex.%s must be a "
                                                   "string",
                                                   o->src, reg, repo);
                regex_t rx;
                int rc = regcomp(&rx, json_string_value(re), REG_EXTENDED | REG_NOSUB);
                if (rc != 0)
                    return berth_error_make_status(err, EINVAL, "%s: invalid regex \"%s\"", o->src,
                                                   json_string_value(re));
                cleanup_free char *name = xasprintf("%s/%s", reg, repo);
                int ar = add_repo(o, p, name, &ctx->sys, &rx, err);
                regfree(&rx);
                if (ar < 0)
                    return -1;
            }
        }
    }
    return 0;
}

/* ---------- change detection ---------- */

static bool is_index_mime(const char *m)
{
    return m && (strcmp(m, MEDIA_OCI_INDEX) == 0 || strcmp(m, MEDIA_DOCKER_LIST) == 0);
}

static bool arch_wanted(const struct sync_options *o, const char *arch)
{
    for (char **a = o->arches; a && *a; a++)
        if (arch && strcmp(*a, arch) == 0)
            return true;
    return false;
}

/* The index restricted to o->arches: new bytes (owned), ENOENT when nothing is left. */
static int filter_index(const struct sync_options *o, const char *body, size_t len, char **out,
                        size_t *out_len, char ***kept, berth_error_t *err)
{
    cleanup_json json_t *j = NULL;
    if (json_parse_bounded(body, len, REGISTRY_MANIFEST_MAX, "index", &j, err) < 0)
        return -1;
    json_t *mans = json_get_array(j, "manifests");
    if (!mans)
        return berth_error_make_status(err, EINVAL, "index without manifests");
    json_t *keep = json_array();
    size_t i;
    json_t *m;
    char **k = xcalloc(json_array_size(mans) + 1, sizeof(char *));
    size_t nk = 0;
    json_array_foreach(mans, i, m)
    {
        json_t *plat = json_get_object(m, "platform");
        const char *arch = plat ? json_get_string(plat, "architecture") : NULL;
        const char *d = json_get_string(m, "digest");
        if (arch_wanted(o, arch) && d && digest_validate(d, NULL) == 0) {
            json_array_append(keep, m);
            k[nk++] = xstrdup(d);
        }
    }
    if (nk == 0) {
        json_decref(keep);
        free(k);
        return berth_error_make_status(err, ENOENT, "no image in the index matches --arch");
    }
    json_object_set_new(j, "manifests", keep);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    *out = s;
    *out_len = strlen(s);
    *kept = k;
    return 0;
}

struct src_state {
    struct image_reference *ref;
    registry_client_t *c; /* docker sources */
    char *repo;
    char *tagref;
    char *digest; /* what the destination should hold when up to date */
    char *mime;
    char *index; /* filtered index bytes (arch subset) */
    size_t index_len;
    char **instances;
};

static void src_state_clear(struct src_state *s)
{
    if (s->ref)
        image_reference_free(s->ref);
    free(s->repo);
    free(s->tagref);
    free(s->digest);
    free(s->mime);
    free(s->index);
    for (char **p = s->instances; p && *p; p++)
        free(*p);
    free(s->instances);
    memset(s, 0, sizeof(*s));
}

static int file_digest_if_exists(const char *dir_ref, char **digest, berth_error_t *err)
{
    const char *path = strip_prefix(dir_ref, "dir:");
    cleanup_free char *mf = xasprintf("%s/manifest.json", path);
    *digest = NULL;
    if (access(mf, F_OK) != 0)
        return 0;
    return digest_file(mf, DIGEST_SHA256, digest, err);
}

static int source_digest(const struct sync_options *o, const struct work *w, struct src_state *s,
                         berth_error_t *err)
{
    if (strncmp(w->src, "dir:", 4) == 0)
        return file_digest_if_exists(w->src, &s->digest, err);
    if (transport_parse_reference(w->src, &s->ref, err) < 0)
        return -1;
    if (docker_open_client(s->ref, w->src_sys, &s->c, &s->repo, err) < 0)
        return -1;
    const image_ref_t *ir = docker_reference_ref(s->ref);
    s->tagref = xstrdup(ir->digest ? ir->digest : ir->tag ? ir->tag : "latest");
    if (registry_head_manifest(s->c, s->repo, s->tagref, &s->digest, &s->mime, NULL, err) < 0)
        return -1;
    bool index = is_index_mime(s->mime);
    if (!s->digest || (index && (!o->all || o->arches))) {
        cleanup_free char *body = NULL, *mime = NULL, *d = NULL;
        size_t len = 0;
        if (registry_get_manifest(s->c, s->repo, s->tagref, &body, &len, &mime, &d, err) < 0)
            return -1;
        free(s->digest);
        s->digest = steal_pointer(&d);
        if (mime) {
            free(s->mime);
            s->mime = steal_pointer(&mime);
        }
        index = is_index_mime(s->mime);
        if (index && o->arches) {
            free(s->digest);
            s->digest = NULL;
            if (filter_index(o, body, len, &s->index, &s->index_len, &s->instances, err) < 0)
                return -1;
            s->digest = digest_buffer(DIGEST_SHA256, s->index, s->index_len);
        } else if (index && !o->all) {
            /* the copy engine writes the instance for this platform */
            struct mf_index ix;
            if (mf_index_parse(body, len, s->mime, &ix, err) < 0)
                return -1;
            size_t pick;
            int r = mf_index_choose(&ix, NULL, NULL, NULL, &pick, err);
            if (r == 0) {
                free(s->digest);
                s->digest = xstrdup(ix.inst[pick].desc.digest);
            }
            mf_index_clear(&ix);
            if (r < 0)
                return -1;
        }
    }
    return 0;
}

/* HEAD of repo:ref; *digest NULL when it does not exist */
static int head_or_none(registry_client_t *c, const char *repo, const char *ref, char **digest,
                        berth_error_t *err)
{
    *digest = NULL;
    berth_error_t e2 = NULL;
    if (registry_head_manifest(c, repo, ref, digest, NULL, NULL, &e2) == 0)
        return 0;
    if (berth_error_status(e2) == ENOENT) {
        berth_error_release(&e2);
        return 0;
    }
    *err = e2;
    return -1;
}

static int dest_digest(const struct work *w, const struct system_context *sys, char **digest,
                       berth_error_t *err)
{
    *digest = NULL;
    if (strncmp(w->dst, "dir:", 4) == 0)
        return file_digest_if_exists(w->dst, digest, err);
    cleanup_image_reference struct image_reference *ref = NULL;
    if (transport_parse_reference(w->dst, &ref, err) < 0)
        return -1;
    registry_client_t *c;
    cleanup_free char *repo = NULL;
    if (docker_open_client(ref, sys, &c, &repo, err) < 0)
        return -1;
    const image_ref_t *ir = docker_reference_ref(ref);
    return head_or_none(c, repo, ir->digest ? ir->digest : ir->tag, digest, err);
}

static void free_sigs(char **sigs, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(sigs[i]);
    free(sigs);
    free(lens);
}

/* An image whose manifest the destination already holds may still have gained sigstore
 * signatures at the source.  Only with registries.d use-sigstore-attachments for both sides
 * (otherwise nothing is looked at: an up-to-date mirror still costs one HEAD per tag): the
 * sha256-<hex>.sig tags are compared by HEAD, and when their digests differ, by content
 * (*changed when a source signature is not attached at the destination; the destination may
 * hold more, since writes merge). */
static int attachments_changed(const struct sync_options *o, const struct work *w,
                               const struct src_state *s, bool *changed, berth_error_t *err)
{
    *changed = false;
    if (o->remove_signatures || !s->c || !s->ref || !s->digest ||
        strncmp(w->dst, "docker://", 9) != 0)
        return 0;
    cleanup_image_reference struct image_reference *dref = NULL;
    if (transport_parse_reference(w->dst, &dref, err) < 0)
        return -1;
    bool src_att = false, dst_att = false;
    if (lookaside_use_sigstore_attachments(s->ref->docker_name, &src_att, err) < 0 ||
        lookaside_use_sigstore_attachments(dref->docker_name, &dst_att, err) < 0)
        return -1;
    if (!src_att || !dst_att)
        return 0;
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(s->digest, &algo, &hex, err) < 0)
        return -1;
    cleanup_free char *tag = xasprintf("%s-%s.sig", digest_algo_name(algo), hex);
    cleanup_free char *sd = NULL, *dd = NULL;
    if (head_or_none(s->c, s->repo, tag, &sd, err) < 0)
        return -1;
    if (!sd)
        return 0;
    registry_client_t *dc;
    cleanup_free char *drepo = NULL;
    if (docker_open_client(dref, o->dst_sys, &dc, &drepo, err) < 0 ||
        head_or_none(dc, drepo, tag, &dd, err) < 0)
        return -1;
    if (dd && digest_equal(sd, dd))
        return 0;
    if (!dd) {
        *changed = true;
        return 0;
    }
    char **ss = NULL, **ds = NULL;
    size_t *sl = NULL, *dl = NULL, sn = 0, dn = 0;
    int r = sigstore_attachments_get(s->c, s->repo, s->digest, &ss, &sl, &sn, err);
    if (r == 0)
        r = sigstore_attachments_get(dc, drepo, s->digest, &ds, &dl, &dn, err);
    for (size_t i = 0; r == 0 && i < sn && !*changed; i++) {
        bool found = false;
        for (size_t k = 0; k < dn && !found; k++)
            found = sl[i] == dl[k] && memcmp(ss[i], ds[k], sl[i]) == 0;
        *changed = !found;
    }
    free_sigs(ss, sl, sn);
    free_sigs(ds, dl, dn);
    return r;
}

/* ---------- copying ---------- */

static int copy_arch_subset(const struct sync_options *o, const struct work *w, struct src_state *s,
                            const struct copy_options *co, berth_error_t *err)
{
    if (strncmp(w->dst, "docker://", 9) != 0)
        return berth_error_make_status(err, ENOTSUP, "--arch needs a docker destination");
    cleanup_image_reference struct image_reference *dref = NULL;
    if (transport_parse_reference(w->dst, &dref, err) < 0)
        return -1;
    const image_ref_t *dir = docker_reference_ref(dref);
    cleanup_free char *dname = image_ref_name(dir);
    cleanup_free char *sname = image_ref_name(docker_reference_ref(s->ref));
    for (char **d = s->instances; *d; d++) {
        cleanup_free char *sr = xasprintf("docker://%s@%s", sname, *d);
        cleanup_free char *dr = xasprintf("docker://%s@%s", dname, *d);
        struct copy_result res = {0};
        int r = copy_image_refs(sr, dr, co, &res, err);
        copy_result_clear(&res);
        if (r < 0)
            return -1;
    }
    struct image_destination *dst = NULL;
    if (dref->ops->new_destination(dref, o->dst_sys, &dst, err) < 0)
        return -1;
    int r = dst->ops->put_manifest(dst, s->index, s->index_len, NULL, err);
    if (r == 0)
        r = dst->ops->commit(dst, err);
    image_destination_close(dst);
    return r;
}

struct runner {
    const struct sync_options *o;
    struct plan *p;
    struct sync_result *res;
    pthread_mutex_t lock;
    size_t next;
    bool stop;
    FILE *msg;
};

static void say(struct runner *rn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct runner *rn, const char *fmt, ...)
{
    if (rn->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&rn->lock);
    vfprintf(rn->msg, fmt, ap);
    fputc('\n', rn->msg);
    fflush(rn->msg);
    pthread_mutex_unlock(&rn->lock);
    va_end(ap);
}

static int run_work_item(struct runner *rn, size_t idx, berth_error_t *err)
{
    const struct sync_options *o = rn->o;
    struct work *w = &rn->p->w[idx];
    struct sync_item *it = &rn->res->items[idx];
    struct src_state s = {0};
    cleanup_free char *dd = NULL;
    int ret = -1;
    if (source_digest(o, w, &s, err) < 0)
        goto out;
    if (dest_digest(w, o->dst_sys, &dd, err) < 0)
        goto out;
    bool sigs_changed = false;
    if (s.digest && dd && digest_equal(s.digest, dd) &&
        attachments_changed(o, w, &s, &sigs_changed, err) < 0)
        goto out;
    if (s.digest && dd && digest_equal(s.digest, dd) && !sigs_changed) {
        it->status = SYNC_UP_TO_DATE;
        say(rn, "Up to date: %s (%s)", w->dst, dd);
        ret = 0;
        goto out;
    }
    if (sigs_changed)
        say(rn, "Signatures changed: %s (%s)", w->dst, dd);
    if (o->dry_run) {
        it->status = SYNC_WOULD_COPY;
        ret = 0;
        goto out;
    }
    say(rn, "Copying image %s to %s (%zu/%zu)", w->src, w->dst, idx + 1, rn->p->n);
    struct copy_options co = {
        .src_sys = w->src_sys,
        .dst_sys = o->dst_sys,
        .all = o->all,
        .format = o->format,
        .compression_level = -1,
        .preserve_digests = o->preserve_digests,
        .remove_signatures = o->remove_signatures,
        .policy = o->policy,
        .quiet = o->quiet,
        .progress_out = rn->msg,
        .max_parallel = o->blob_jobs,
        .sign_by = o->sign_by,
        .sign_by_sigstore = o->sign_by_sigstore,
        .sign_passphrase_file = o->sign_passphrase_file,
    };
    if (s.index) {
        if (o->sign_by || o->sign_by_sigstore) {
            berth_error_make_status(err, ENOTSUP,
                                    "signing an architecture subset (--arch) is not supported");
            goto out;
        }
        if (copy_arch_subset(o, w, &s, &co, err) < 0)
            goto out;
    } else {
        struct copy_result res = {0};
        int r = copy_image_refs(w->src, w->dst, &co, &res, err);
        copy_result_clear(&res);
        if (r < 0)
            goto out;
    }
    it->status = SYNC_COPIED;
    ret = 0;
out:
    src_state_clear(&s);
    return ret;
}

static void *worker(void *arg)
{
    struct runner *rn = arg;
    for (;;) {
        pthread_mutex_lock(&rn->lock);
        if (rn->stop || rn->next >= rn->p->n) {
            pthread_mutex_unlock(&rn->lock);
            return NULL;
        }
        size_t idx = rn->next++;
        pthread_mutex_unlock(&rn->lock);
        berth_error_t err = NULL;
        if (run_work_item(rn, idx, &err) < 0) {
            struct sync_item *it = &rn->res->items[idx];
            it->status = SYNC_FAILED;
            it->error = xstrdup(berth_error_msg(err));
            if (!rn->o->quiet || !rn->o->keep_going)
                log_error("%s: %s", rn->p->w[idx].src, it->error);
            berth_error_release(&err);
            if (!rn->o->keep_going) {
                pthread_mutex_lock(&rn->lock);
                rn->stop = true;
                pthread_mutex_unlock(&rn->lock);
            }
        }
    }
}

void sync_result_clear(struct sync_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].src);
        free(r->items[i].dst);
        free(r->items[i].error);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

json_t *sync_result_report(const struct sync_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "copied", json_integer((json_int_t)r->copied));
    json_object_set_new(o, "up_to_date", json_integer((json_int_t)r->up_to_date));
    if (r->would_copy)
        json_object_set_new(o, "would_copy", json_integer((json_int_t)r->would_copy));
    json_object_set_new(o, "failed", json_integer((json_int_t)r->failed));
    json_t *f = json_array();
    for (size_t i = 0; i < r->n; i++) {
        if (r->items[i].status != SYNC_FAILED || !r->items[i].error)
            continue;
        json_t *e = json_object();
        json_object_set_new(e, "source", json_string(r->items[i].src));
        json_object_set_new(e, "destination", json_string(r->items[i].dst));
        json_object_set_new(e, "error", json_string(r->items[i].error ? r->items[i].error : ""));
        json_array_append_new(f, e);
    }
    json_object_set_new(o, "failures", f);
    return o;
}

int sync_run(const struct sync_options *opts, struct sync_result *res, berth_error_t *err)
{
    /* one registry session for the whole sync: every image's copy shares the clients (one
     * ping, pooled connections, cached tokens) and what is known about blob locations */
    cleanup_registry_session registry_session_t *session = registry_session_new();
    struct sync_options so = *opts;
    /* NULL means the defaults, as everywhere in the transports */
    struct system_context ssys = {.tls_verify = -1, .retry_times = -1, .retry_delay_ms = -1};
    struct system_context dsys = ssys;
    if (opts->src_sys)
        ssys = *opts->src_sys;
    if (opts->dst_sys)
        dsys = *opts->dst_sys;
    if (!ssys.registry_session)
        ssys.registry_session = session;
    if (!dsys.registry_session)
        dsys.registry_session = session;
    so.src_sys = &ssys;
    so.dst_sys = &dsys;
    const struct sync_options *o = &so;
    memset(res, 0, sizeof(*res));
    if (o->dst_kind == SYNC_YAML)
        return berth_error_make_status(err, EINVAL, "yaml is a source format only");
    struct plan p = {0};
    int r;
    switch (o->src_kind) {
    case SYNC_DOCKER:
        r = plan_docker(o, &p, err);
        break;
    case SYNC_DIR: {
        const char *root = strip_prefix(o->src, "dir:");
        struct stat st;
        if (stat(root, &st) < 0) {
            r = berth_error_make(err, errno, "source directory \"%s\"", root);
            break;
        }
        r = walk_dir(o, &p, root, "", 0, err);
        break;
    }
    default:
        r = plan_yaml(o, &p, err);
    }
    if (r < 0) {
        plan_clear(&p);
        return -1;
    }
    res->n = p.n;
    res->items = xcalloc(p.n ? p.n : 1, sizeof(*res->items));
    for (size_t i = 0; i < p.n; i++) {
        res->items[i].src = xstrdup(p.w[i].src);
        res->items[i].dst = xstrdup(p.w[i].dst);
        res->items[i].status = SYNC_FAILED;
        res->items[i].error = NULL;
    }
    struct runner rn = {.o = o, .p = &p, .res = res, .msg = o->progress ? o->progress : stderr};
    pthread_mutex_init(&rn.lock, NULL);
    int jobs = o->jobs < 1 ? 1 : o->jobs;
    if ((size_t)jobs > p.n)
        jobs = p.n ? (int)p.n : 1;
    pthread_t *th = xcalloc((size_t)jobs, sizeof(pthread_t));
    int started = 0;
    for (int i = 1; i < jobs; i++)
        if (pthread_create(&th[i], NULL, worker, &rn) == 0)
            started = i;
        else
            break;
    worker(&rn);
    for (int i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    free(th);
    pthread_mutex_destroy(&rn.lock);
    size_t not_run = 0;
    for (size_t i = 0; i < p.n; i++) {
        struct sync_item *it = &res->items[i];
        switch (it->status) {
        case SYNC_COPIED:
            res->copied++;
            break;
        case SYNC_UP_TO_DATE:
            res->up_to_date++;
            break;
        case SYNC_WOULD_COPY:
            res->would_copy++;
            break;
        case SYNC_FAILED:
            if (it->error)
                res->failed++;
            else
                not_run++;
        }
    }
    /* images never attempted after a failure are not reported as failures */
    (void)not_run;
    plan_clear(&p);
    if (res->failed) {
        for (size_t i = 0; i < res->n; i++)
            if (res->items[i].status == SYNC_FAILED && res->items[i].error) {
                if (o->keep_going)
                    return berth_error_make_status(err, EIO,
                                                   "%zu of %zu images failed to sync (first: %s: "
                                                   "%s)",
                                                   res->failed, res->n, res->items[i].src,
                                                   res->items[i].error);
                return berth_error_make_status(err, EIO, "syncing %s: %s", res->items[i].src,
                                               res->items[i].error);
            }
    }
    return 0;
}
