/* docker:// transport over the registry client. */
#include "transport/docker.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"
#include "transport/auth.h"
#include "transport/lookaside.h"
#include "transport/registries_conf.h"
#include "transport/registry_session.h"
#include "transport/sigstore.h"
#include "transport/sigstore_attach.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What a copy or sync learns about registries (clients, blob locations, uploads in flight)
 * lives in the registry_session it owns (sys->registry_session); a source or destination opened
 * without one keeps its own for its lifetime. */

static char *upload_key(const char *registry, const char *repo, const char *digest)
{
    return xasprintf("%s/%s@%s", registry, repo, digest);
}

int docker_registry_options(const struct system_context *sys, const char *registry, bool insecure,
                            struct registry_options *o, char **user_out, char **pass_out,
                            berth_error_t *err)
{
    memset(o, 0, sizeof(*o));
    *user_out = *pass_out = NULL;
    o->registry = registry;
    o->insecure = insecure;
    o->tls_verify = sys ? sys->tls_verify : -1;
    o->cert_dir = sys ? sys->cert_dir : NULL;
    o->auth_file = sys ? sys->auth_file : NULL;
    o->retry_times = sys ? sys->retry_times : -1;
    o->retry_delay_ms = sys ? sys->retry_delay_ms : -1;
    o->user_agent = sys ? sys->user_agent : NULL;
    if (sys && sys->creds && sys->no_creds)
        return berth_error_make_status(err, EINVAL,
                                       "--creds and --no-creds cannot be used together");
    if (sys && sys->creds) {
        if (auth_parse_creds(sys->creds, user_out, pass_out, err) < 0)
            return -1;
        if (!*pass_out)
            *pass_out = xstrdup("");
        o->username = *user_out;
        o->password = *pass_out;
    }
    return 0;
}

static int get_client(const struct system_context *sys, registry_session_t *session,
                      const char *registry, const char *repo, bool insecure,
                      registry_client_t **out, berth_error_t *err)
{
    cleanup_free char *user = NULL, *pass = NULL;
    struct registry_options o;
    if (docker_registry_options(sys, registry, insecure, &o, &user, &pass, err) < 0)
        return -1;
    if (!user && !(sys && sys->no_creds)) {
        /* looked up here with the repository, so "host/namespace" entries of auth.json apply */
        bool found = false;
        if (auth_lookup(o.auth_file, registry, repo, &user, &pass, &found, err) < 0)
            return -1;
        o.username = user;
        o.password = pass ? pass : "";
    }
    o.no_creds = true;
    /* the key holds a hash of the credentials, never the credentials */
    cleanup_free char *credhash = NULL;
    if (user) {
        cleanup_free char *raw = xasprintf("%s:%s", user, pass);
        credhash = digest_buffer(DIGEST_SHA256, raw, strlen(raw));
        explicit_bzero(raw, strlen(raw));
    }
    cleanup_free char *key = xasprintf(
        "%s|%d|%d|%s|%s|%s|%d|%d|%s", registry, insecure, o.tls_verify,
        o.cert_dir ? o.cert_dir : "", o.auth_file ? o.auth_file : "", credhash ? credhash : "",
        o.retry_times, o.retry_delay_ms, o.user_agent ? o.user_agent : "");
    registry_client_t *c = registry_session_client(session, key);
    if (c) {
        if (pass)
            explicit_bzero(pass, strlen(pass));
        *out = c;
        return 0;
    }
    int r = registry_client_new(&o, &c, err);
    if (pass)
        explicit_bzero(pass, strlen(pass));
    if (r < 0)
        return -1;
    *out = registry_session_add_client(session, key, c);
    return 0;
}

/* ---------- references ---------- */

struct docker_ref {
    image_ref_t *ref; /* normalised */
};

static const struct reference_ops docker_ref_ops;

const image_ref_t *docker_reference_ref(const struct image_reference *ref)
{
    if (!ref || ref->ops != &docker_ref_ops)
        return NULL;
    return ((struct docker_ref *)ref->priv)->ref;
}

static char *docker_ref_string(const struct image_reference *ref)
{
    struct docker_ref *d = ref->priv;
    cleanup_free char *s = image_ref_string(d->ref);
    return xasprintf("docker://%s", s);
}

static void docker_ref_free(struct image_reference *ref)
{
    if (!ref)
        return;
    struct docker_ref *d = ref->priv;
    if (d) {
        image_ref_free(d->ref);
        free(d);
    }
    free(ref->docker_name);
    free(ref);
}

struct endpoint {
    registry_client_t *c;        /* the session's, not owned */
    registry_session_t *session; /* not owned */
    char *registry;
    char *repo;
};

static int load_conf(const struct system_context *sys, registries_conf_t **conf, berth_error_t *err)
{
    if (registries_conf_load(sys ? sys->registries_conf : NULL, conf, err) < 0)
        return berth_error_wrap(err, "loading registries.conf");
    return 0;
}

/* Splits "host/path" at the first '/'. */
static int split_name(const char *name, char **host, char **path, berth_error_t *err)
{
    const char *slash = strchr(name, '/');
    if (!slash || slash == name || slash[1] == '\0')
        return berth_error_make_status(err, EINVAL, "invalid registry location \"%s\"", name);
    *host = xstrndup(name, (size_t)(slash - name));
    *path = xstrdup(slash + 1);
    return 0;
}

static int open_endpoint(const struct system_context *sys, registry_session_t *session,
                         const char *name, bool insecure, struct endpoint *ep, berth_error_t *err)
{
    memset(ep, 0, sizeof(*ep));
    ep->session = session;
    if (split_name(name, &ep->registry, &ep->repo, err) < 0)
        return -1;
    if (get_client(sys, session, ep->registry, ep->repo, insecure, &ep->c, err) < 0) {
        free(ep->registry);
        free(ep->repo);
        return -1;
    }
    return 0;
}

static void endpoint_clear(struct endpoint *ep)
{
    free(ep->registry);
    free(ep->repo);
    memset(ep, 0, sizeof(*ep));
}

/* The primary endpoint after registries.conf, plus (for sources) the mirrors to try first. */
static int resolve_endpoints(const struct image_reference *ref, const struct system_context *sys,
                             registry_session_t *session, bool for_pull, struct endpoint **eps,
                             size_t *neps, berth_error_t *err)
{
    struct docker_ref *d = ref->priv;
    cleanup_registries_conf registries_conf_t *conf = NULL;
    if (load_conf(sys, &conf, err) < 0)
        return -1;
    cleanup_free char *name = image_ref_name(d->ref);
    const struct registry_entry *e = registries_conf_find(conf, name);
    if (e && e->blocked)
        return berth_error_make_status(err, EACCES,
                                       "registry %s is blocked in registries.conf (prefix \"%s\")",
                                       d->ref->domain, e->prefix);
    struct endpoint *v = xcalloc(1 + (e ? e->nmirrors : 0), sizeof(*v));
    size_t n = 0;
    if (for_pull && e) {
        for (size_t i = 0; i < e->nmirrors; i++) {
            const struct registry_mirror *m = &e->mirrors[i];
            if (m->pull_from == PULL_FROM_MIRROR_DIGEST && !d->ref->digest)
                continue;
            if (m->pull_from == PULL_FROM_MIRROR_TAG && d->ref->digest)
                continue;
            cleanup_free char *mname = NULL;
            size_t pl = strlen(e->prefix);
            if (e->prefix[0] != '*' && strncmp(name, e->prefix, pl) == 0)
                mname = xasprintf("%s%s", m->location, name + pl);
            else
                continue;
            berth_error_t e2 = NULL;
            if (open_endpoint(sys, session, mname, m->insecure, &v[n], &e2) == 0)
                n++;
            else
                log_warn("mirror %s: %s", m->location, berth_error_msg(e2));
            berth_error_release(&e2);
        }
    }
    cleanup_free char *rewritten = registries_conf_rewrite(e, name);
    if (open_endpoint(sys, session, rewritten, e ? e->insecure : false, &v[n], err) < 0) {
        for (size_t i = 0; i < n; i++)
            endpoint_clear(&v[i]);
        free(v);
        return -1;
    }
    n++;
    *eps = v;
    *neps = n;
    return 0;
}

static int open_client(const struct image_reference *ref, const struct system_context *sys,
                       registry_session_t *session, registry_client_t **client, char **repo,
                       berth_error_t *err)
{
    struct endpoint *eps = NULL;
    size_t n = 0;
    if (resolve_endpoints(ref, sys, session, false, &eps, &n, err) < 0)
        return -1;
    *client = eps[0].c;
    *repo = steal_pointer(&eps[0].repo);
    endpoint_clear(&eps[0]);
    free(eps);
    return 0;
}

int docker_open_client(const struct image_reference *ref, const struct system_context *sys,
                       registry_client_t **client, char **repo, berth_error_t *err)
{
    if (!sys || !sys->registry_session)
        return berth_error_make_status(err, EINVAL,
                                       "docker_open_client needs a registry session (it owns the "
                                       "client)");
    return open_client(ref, sys, sys->registry_session, client, repo, err);
}

/* ---------- source ---------- */

struct docker_src {
    struct endpoint *eps;
    size_t neps;
    size_t chosen; /* index into eps once the top manifest came from there */
    bool pinned;
    char *ref;        /* tag or digest to fetch */
    char *top_digest; /* digest of the top-level manifest once read (for signatures) */
    registry_session_t *own_session; /* when sys had none */
};

static void remember_manifest_blobs(const struct endpoint *ep, const char *body, size_t len)
{
    json_t *j = NULL;
    berth_error_t e = NULL;
    if (json_parse_bounded(body, len, REGISTRY_MANIFEST_MAX, "manifest", &j, &e) < 0) {
        berth_error_release(&e);
        return;
    }
    json_t *cfg = json_get_object(j, "config");
    const char *d = cfg ? json_get_string(cfg, "digest") : NULL;
    if (d && digest_validate(d, NULL) == 0)
        registry_session_remember_blob(ep->session, ep->registry, ep->repo, d);
    json_t *layers = json_get_array(j, "layers");
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        d = json_get_string(l, "digest");
        if (d && digest_validate(d, NULL) == 0)
            registry_session_remember_blob(ep->session, ep->registry, ep->repo, d);
    }
    json_decref(j);
}

static int ds_fetch_manifest(struct image_source *src, const char *instance, char **manifest,
                             size_t *len, char **mime, berth_error_t *err)
{
    struct docker_src *s = src->priv;
    const char *ref = instance ? instance : s->ref;
    if (instance && digest_validate(instance, err) < 0)
        return -1;
    if (s->pinned) {
        struct endpoint *ep = &s->eps[s->chosen];
        if (registry_get_manifest(ep->c, ep->repo, ref, manifest, len, mime, NULL, err) < 0)
            return -1;
        remember_manifest_blobs(ep, *manifest, *len);
        return 0;
    }
    for (size_t i = 0; i < s->neps; i++) {
        struct endpoint *ep = &s->eps[i];
        bool last = i + 1 == s->neps;
        berth_error_t e2 = NULL;
        if (registry_get_manifest(ep->c, ep->repo, ref, manifest, len, mime, NULL, &e2) == 0) {
            s->chosen = i;
            s->pinned = true;
            if (!last)
                log_info("using mirror %s for %s", ep->registry, ref);
            remember_manifest_blobs(ep, *manifest, *len);
            return 0;
        }
        if (last) {
            *err = e2;
            return -1;
        }
        log_warn("mirror %s/%s: %s", ep->registry, ep->repo, berth_error_msg(e2));
        berth_error_release(&e2);
    }
    return berth_error_make_status(err, ENOENT, "no endpoint to read from");
}

static int ds_get_manifest(struct image_source *src, const char *instance, char **manifest,
                           size_t *len, char **mime, berth_error_t *err)
{
    struct docker_src *s = src->priv;
    if (ds_fetch_manifest(src, instance, manifest, len, mime, err) < 0)
        return -1;
    if (!instance) {
        free(s->top_digest);
        s->top_digest = digest_buffer(DIGEST_SHA256, *manifest, *len);
    }
    return 0;
}

/* Simple signing signatures live beside the registry, in the lookaside storage of
 * registries.d; sigstore ones in the registry itself when use-sigstore-attachments is on. */
static int ds_get_signatures(struct image_source *src, const char *instance, char ***sigs,
                             size_t **lens, size_t *n, berth_error_t *err)
{
    struct docker_src *s = src->priv;
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    if (!instance && !s->top_digest) {
        cleanup_free char *m = NULL, *mt = NULL;
        size_t ml;
        if (ds_get_manifest(src, NULL, &m, &ml, &mt, err) < 0)
            return -1;
    }
    const char *digest = instance ? instance : s->top_digest;
    bool attachments;
    if (lookaside_use_sigstore_attachments(src->ref->docker_name, &attachments, err) < 0)
        return -1;
    if (lookaside_get_signatures(src->ref->docker_name, digest, sigs, lens, n, err) < 0)
        return -1;
    if (!attachments)
        return 0;
    /* sigstore signatures follow the lookaside ones, from where the manifest came from */
    struct endpoint *ep = &s->eps[s->pinned ? s->chosen : s->neps - 1];
    if (sigstore_attachments_get(ep->c, ep->repo, digest, sigs, lens, n, err) < 0) {
        for (size_t i = 0; i < *n; i++)
            free((*sigs)[i]);
        free(*sigs);
        free(*lens);
        *sigs = NULL;
        *lens = NULL;
        *n = 0;
        return berth_error_wrap(err, "signatures of %s", src->ref->docker_name);
    }
    return 0;
}

static int ds_get_blob(struct image_source *src, const struct blob_info *info, berth_reader_t **out,
                       int64_t *size, berth_error_t *err)
{
    struct docker_src *s = src->priv;
    if (!info->digest)
        return berth_error_make_status(err, EINVAL, "blob without a digest");
    struct endpoint *ep = &s->eps[s->pinned ? s->chosen : s->neps - 1];
    if (registry_get_blob(ep->c, ep->repo, info->digest, out, size, err) < 0)
        return -1;
    if (*size < 0 && info->size >= 0)
        *size = info->size;
    return 0;
}

static void ds_close(struct image_source *src)
{
    if (!src)
        return;
    struct docker_src *s = src->priv;
    if (s) {
        for (size_t i = 0; i < s->neps; i++)
            endpoint_clear(&s->eps[i]);
        free(s->eps);
        free(s->ref);
        free(s->top_digest);
        registry_session_free(s->own_session); /* after the endpoints: it owns their clients */
        free(s);
    }
    free(src);
}

static const struct image_source_ops docker_src_ops = {
    .get_manifest = ds_get_manifest,
    .get_blob = ds_get_blob,
    .get_signatures = ds_get_signatures,
    .thread_safe_get_blob = true,
    .close = ds_close,
};

static int docker_new_source(struct image_reference *ref, const struct system_context *sys,
                             struct image_source **out, berth_error_t *err)
{
    struct docker_ref *d = ref->priv;
    struct docker_src *s = xzalloc(sizeof(*s));
    registry_session_t *session = sys ? sys->registry_session : NULL;
    if (!session)
        session = s->own_session = registry_session_new();
    if (resolve_endpoints(ref, sys, session, true, &s->eps, &s->neps, err) < 0) {
        registry_session_free(s->own_session);
        free(s);
        return -1;
    }
    s->ref = xstrdup(d->ref->digest ? d->ref->digest
                     : d->ref->tag  ? d->ref->tag
                                    : IMAGE_REF_DEFAULT_TAG);
    struct image_source *src = xzalloc(sizeof(*src));
    src->ops = &docker_src_ops;
    src->ref = ref;
    src->priv = s;
    *out = src;
    return 0;
}

/* ---------- destination ---------- */

struct docker_dst {
    struct endpoint ep;
    char *tag;
    char *digest;
    char *put_digest;                /* digest of the top-level manifest written (for signatures) */
    registry_session_t *own_session; /* when sys had none */
};

static const char *const docker_manifest_types[] = {MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST,
                                                    MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST, NULL};

static const char *const *dd_supported(struct image_destination *dst)
{
    return docker_manifest_types;
}

static int dd_try_reuse(struct image_destination *dst, const struct blob_info *info, bool *reused,
                        struct blob_info *out, berth_error_t *err)
{
    struct docker_dst *d = dst->priv;
    *reused = false;
    if (!info->digest)
        return 0;
    /* if another copy of this session uploads it now, wait and then find it */
    cleanup_free char *key = upload_key(d->ep.registry, d->ep.repo, info->digest);
    registry_session_upload_claim(d->ep.session, key, d);
    int64_t size = -1;
    berth_error_t e2 = NULL;
    if (registry_head_blob(d->ep.c, d->ep.repo, info->digest, &size, &e2) == 0) {
        if (info->size >= 0 && size >= 0 && size != info->size) {
            log_warn("blob %s exists in %s/%s with size %lld, expected %lld; uploading",
                     info->digest, d->ep.registry, d->ep.repo, (long long)size,
                     (long long)info->size);
            return 0;
        }
        *reused = true;
    } else if (berth_error_status(e2) != ENOENT) {
        registry_session_upload_release(d->ep.session, key, d);
        *err = e2;
        return -1;
    } else {
        berth_error_release(&e2);
        cleanup_free char *from =
            registry_session_blob_repo(d->ep.session, d->ep.registry, d->ep.repo, info->digest);
        if (from) {
            bool mounted = false;
            if (registry_mount_blob(d->ep.c, d->ep.repo, info->digest, from, &mounted, &e2) < 0) {
                log_debug("mount of %s from %s failed: %s", info->digest, from,
                          berth_error_msg(e2));
                berth_error_release(&e2);
            } else if (mounted) {
                log_debug("mounted %s from %s", info->digest, from);
                *reused = true;
                size = info->size;
            }
        }
    }
    if (*reused) {
        registry_session_upload_release(d->ep.session, key, d);
        registry_session_remember_blob(d->ep.session, d->ep.registry, d->ep.repo, info->digest);
        if (out) {
            blob_info_copy(out, info);
            if (size >= 0)
                out->size = size;
        }
    }
    return 0;
}

static int dd_put_blob(struct image_destination *dst, berth_reader_t *stream,
                       const struct blob_info *info, bool is_config, struct blob_info *out,
                       berth_error_t *err)
{
    struct docker_dst *d = dst->priv;
    char *digest = NULL;
    int64_t size = -1;
    cleanup_free char *key =
        info->digest ? upload_key(d->ep.registry, d->ep.repo, info->digest) : NULL;
    /* With the digest known, POST + one PUT carrying the data (monolithic) costs the
     * registry less than POST + PATCH + PUT; BERTH_REGISTRY_UPLOAD=chunked forces PATCH for
     * registries that refuse monolithic uploads. */
    const char *mode = getenv("BERTH_REGISTRY_UPLOAD");
    bool monolithic = info->digest && !(mode && strcmp(mode, "chunked") == 0);
    int r = registry_put_blob(d->ep.c, d->ep.repo, stream, info->digest, info->size, monolithic,
                              &digest, &size, err);
    if (r == 0)
        registry_session_remember_blob(d->ep.session, d->ep.registry, d->ep.repo, digest);
    if (key)
        registry_session_upload_release(d->ep.session, key, d);
    if (r < 0)
        return -1;
    if (out) {
        blob_info_copy(out, info);
        free(out->digest);
        out->digest = digest;
        out->size = size;
    } else {
        free(digest);
    }
    return 0;
}

static int dd_put_manifest(struct image_destination *dst, const char *manifest, size_t len,
                           const char *instance_digest, berth_error_t *err)
{
    struct docker_dst *d = dst->priv;
    if (instance_digest) {
        if (digest_validate(instance_digest, err) < 0)
            return -1;
        return registry_put_manifest(d->ep.c, d->ep.repo, instance_digest, manifest, len, NULL,
                                     NULL, err);
    }
    free(d->put_digest);
    d->put_digest = digest_buffer(DIGEST_SHA256, manifest, len);
    if (d->digest) {
        cleanup_free char *computed = digest_buffer(DIGEST_SHA256, manifest, len);
        if (!digest_equal(computed, d->digest))
            return berth_error_make_status(err, EINVAL,
                                           "the manifest has digest %s, but the destination "
                                           "names %s",
                                           computed, d->digest);
        if (!d->tag)
            return registry_put_manifest(d->ep.c, d->ep.repo, d->digest, manifest, len, NULL, NULL,
                                         err);
    }
    return registry_put_manifest(d->ep.c, d->ep.repo, d->tag ? d->tag : IMAGE_REF_DEFAULT_TAG,
                                 manifest, len, NULL, NULL, err);
}

/* sigstore signatures need use-sigstore-attachments for the destination (as in skopeo) */
static int dd_check_signatures(struct image_destination *dst, char *const *sigs, const size_t *lens,
                               size_t n, berth_error_t *err)
{
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = signature_blob_format(sigs[i], lens[i], NULL, NULL) == SIGNATURE_FORMAT_SIGSTORE;
    if (!any)
        return 0;
    bool attachments;
    if (lookaside_use_sigstore_attachments(dst->ref->docker_name, &attachments, err) < 0)
        return -1;
    if (!attachments)
        return berth_error_make_status(err, ENOTSUP,
                                       "writing sigstore signatures of %s: "
                                       "use-sigstore-attachments is not enabled for it in "
                                       "registries.d (or use --remove-signatures)",
                                       dst->ref->docker_name);
    return 0;
}

static int dd_put_signatures(struct image_destination *dst, const char *instance_digest,
                             char *const *sigs, const size_t *lens, size_t n, berth_error_t *err)
{
    struct docker_dst *d = dst->priv;
    const char *digest = instance_digest ? instance_digest : d->put_digest;
    if (!digest)
        return berth_error_make_status(err, EINVAL, "signatures before the manifest");
    /* like containers/image: sigstore signatures become attachments, the others go to the
     * lookaside; the attachments are written first since they can only merge, not replace */
    cleanup_free char **simple = xcalloc(n + 1, sizeof(char *)),
                      **sst = xcalloc(n + 1, sizeof(char *));
    cleanup_free size_t *simple_lens = xcalloc(n + 1, sizeof(size_t)),
                        *sst_lens = xcalloc(n + 1, sizeof(size_t));
    size_t nsimple = 0, nsst = 0;
    for (size_t i = 0; i < n; i++) {
        if (signature_blob_format(sigs[i], lens[i], NULL, NULL) == SIGNATURE_FORMAT_SIGSTORE) {
            sst[nsst] = sigs[i];
            sst_lens[nsst++] = lens[i];
        } else {
            simple[nsimple] = sigs[i];
            simple_lens[nsimple++] = lens[i];
        }
    }
    if (nsst > 0) {
        if (dd_check_signatures(dst, sst, sst_lens, nsst, err) < 0)
            return -1;
        if (sigstore_attachments_put(d->ep.c, d->ep.repo, digest, sst, sst_lens, nsst, err) < 0)
            return -1;
    }
    if (nsimple == 0)
        return 0;
    return lookaside_put_signatures(dst->ref->docker_name, digest, simple, simple_lens, nsimple,
                                    err);
}

static int dd_commit(struct image_destination *dst, berth_error_t *err)
{
    return 0; /* the manifest PUT made it visible */
}

static void dd_close(struct image_destination *dst)
{
    if (!dst)
        return;
    struct docker_dst *d = dst->priv;
    if (d) {
        registry_session_upload_release(d->ep.session, NULL, d);
        endpoint_clear(&d->ep);
        free(d->tag);
        free(d->digest);
        free(d->put_digest);
        registry_session_free(d->own_session);
        free(d);
    }
    free(dst);
}

static const struct image_destination_ops docker_dst_ops = {
    .supported_manifest_types = dd_supported,
    .desires_uncompressed_layers = false,
    .accepts_foreign_layers = true,
    .desires_compressed_layers = true,
    .try_reuse_blob = dd_try_reuse,
    .put_blob = dd_put_blob,
    .put_manifest = dd_put_manifest,
    .put_signatures = dd_put_signatures,
    .check_signatures = dd_check_signatures,
    .commit = dd_commit,
    .thread_safe_put_blob = true,
    .close = dd_close,
};

static int docker_new_destination(struct image_reference *ref, const struct system_context *sys,
                                  struct image_destination **out, berth_error_t *err)
{
    struct docker_ref *r = ref->priv;
    struct endpoint *eps = NULL;
    size_t n = 0;
    registry_session_t *own = NULL, *session = sys ? sys->registry_session : NULL;
    if (!session)
        session = own = registry_session_new();
    if (resolve_endpoints(ref, sys, session, false, &eps, &n, err) < 0) {
        registry_session_free(own);
        return -1;
    }
    struct docker_dst *d = xzalloc(sizeof(*d));
    d->ep = eps[0];
    d->own_session = own;
    free(eps);
    d->tag = r->ref->tag ? xstrdup(r->ref->tag) : NULL;
    d->digest = r->ref->digest ? xstrdup(r->ref->digest) : NULL;
    struct image_destination *dst = xzalloc(sizeof(*dst));
    dst->ops = &docker_dst_ops;
    dst->ref = ref;
    dst->priv = d;
    *out = dst;
    return 0;
}

static int docker_delete(struct image_reference *ref, const struct system_context *sys,
                         berth_error_t *err)
{
    struct docker_ref *r = ref->priv;
    cleanup_registry_session registry_session_t *own = NULL;
    registry_session_t *session = sys ? sys->registry_session : NULL;
    if (!session)
        session = own = registry_session_new();
    registry_client_t *c; /* the session's */
    cleanup_free char *repo = NULL;
    if (open_client(ref, sys, session, &c, &repo, err) < 0)
        return -1;
    cleanup_free char *digest = NULL;
    if (r->ref->digest) {
        digest = xstrdup(r->ref->digest);
    } else {
        const char *tag = r->ref->tag ? r->ref->tag : IMAGE_REF_DEFAULT_TAG;
        if (registry_head_manifest(c, repo, tag, &digest, NULL, NULL, err) < 0)
            return -1;
        if (!digest) {
            /* the registry did not say: compute it from the content */
            cleanup_free char *body = NULL;
            size_t len;
            if (registry_get_manifest(c, repo, tag, &body, &len, NULL, &digest, err) < 0)
                return -1;
        }
    }
    return registry_delete_manifest(c, repo, digest, err);
}

static const struct reference_ops docker_ref_ops = {
    .string = docker_ref_string,
    .new_source = docker_new_source,
    .new_destination = docker_new_destination,
    .delete_image = docker_delete,
    .free = docker_ref_free,
};

static int docker_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    if (strncmp(within, "//", 2) != 0)
        return berth_error_make_status(err, EINVAL,
                                       "invalid docker reference \"docker:%s\": expected "
                                       "docker://NAME[:TAG|@DIGEST]",
                                       within);
    const char *s = within + 2;
    image_ref_t *ir = NULL;
    if (image_ref_parse_normalized(s, &ir, err) < 0)
        return -1;
    struct docker_ref *d = xzalloc(sizeof(*d));
    d->ref = ir;
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = &docker_transport;
    ref->ops = &docker_ref_ops;
    ref->priv = d;
    ref->docker_name = image_ref_string(ir);
    *out = ref;
    return 0;
}

const struct transport_ops docker_transport = {.name = "docker", .parse_reference = docker_parse};
