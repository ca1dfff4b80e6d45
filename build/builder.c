/* berth build: executes a Containerfile stage by stage (see builder.h for the model). */
#include "build/builder.h"

#include "build/build_internal.h"
#include "storage/tar.h"
#include "build/containerfile.h"
#include "build/expand.h"
#include "build/ignore.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "common/log.h"
#include "common/path.h"
#include "common/reference.h"
#include "common/strutil.h"
#include "transport/copy.h"
#include "transport/policy.h"
#include "transport/transport.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct stage_result {
    bool built;
    char *top;   /* top layer or NULL */
    json_t *doc; /* image config document */
    char *key;   /* cache key after the last step */
};

struct bctx {
    storage_store_t *s;
    const struct builder_options *o;
    struct containerfile *cf;
    struct cf_stages *st;
    struct build_args *ba;
    int ctx_fd;
    struct ignore *ign;
    char *cache_dir;
    struct bld_memo *memo;
    FILE *out;
    size_t step; /* steps run so far (unique names for temporary files) */
    struct stage_result *res;
    char **keys; /* every key of this build (for --cache-to) */
    size_t nkeys;
};

/* The state of the stage being built. */
struct sstate {
    json_t *doc;
    char *top;
    char *key;
    struct stage_env se;
    bool cmd_set;
    bool entrypoint_set;
    /* --layers=false: one working layer for the whole stage, committed at its end */
    struct bld_rw stage_rw;
    bool stage_rw_open;
    long last_layer_hist; /* history index of the last step that changed files, -1 none */
};

static void say(struct bctx *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct bctx *b, const char *fmt, ...)
{
    if (b->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(b->out, fmt, ap);
    va_end(ap);
    fflush(b->out);
}

static void remember_key(struct bctx *b, const char *key)
{
    b->keys = xreallocarray(b->keys, b->nkeys + 2, sizeof(char *));
    b->keys[b->nkeys++] = xstrdup(key);
    b->keys[b->nkeys] = NULL;
}

static const char *cfg_str(json_t *doc, const char *k)
{
    return json_string_value(json_object_get(json_object_get(doc, "config"), k));
}

static char **shell_of(json_t *doc)
{
    json_t *sh = json_object_get(json_object_get(doc, "config"), "Shell");
    char **v = NULL;
    berth_error_t e = NULL;
    if (json_is_array(sh) && json_array_size(sh) > 0 && json_to_strv(sh, "Shell", &v, &e) == 0)
        return v;
    berth_error_release(&e);
    v = xcalloc(3, sizeof(char *));
    v[0] = xstrdup("/bin/sh");
    v[1] = xstrdup("-c");
    return v;
}

static json_t *shell_form(json_t *doc, const char *cmd)
{
    cleanup_strv char **sh = shell_of(doc);
    json_t *a = json_from_strv(sh);
    json_array_append_new(a, json_string(cmd));
    return a;
}

/* The text of an expanded instruction as recorded in history and hashed into the key. */
static char *inst_text(const struct cf_instruction *x)
{
    char *flags = xstrdup("");
    for (size_t i = 0; i < x->nflags; i++) {
        char *n = xasprintf("%s--%s=%s ", flags, x->flags[i].name, x->flags[i].value);
        free(flags);
        flags = n;
    }
    char *args;
    if (x->json_form) {
        json_t *a = json_from_strv(x->args);
        args = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    } else if (!strcmp(x->keyword, "ENV") || !strcmp(x->keyword, "LABEL")) {
        args = xstrdup("");
        for (size_t i = 0; i + 1 < x->nargs; i += 2) {
            bool q = strpbrk(x->args[i + 1], " \t\"") || !*x->args[i + 1];
            json_t *js = json_string(x->args[i + 1]);
            char *quoted = q && js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
            json_decref(js);
            char *n = xasprintf("%s%s%s=%s", args, i ? " " : "", x->args[i],
                                quoted ? quoted : x->args[i + 1]);
            free(quoted);
            free(args);
            args = n;
        }
    } else {
        args = strv_join(x->args, " ");
    }
    char *hd = xstrdup("");
    for (size_t i = 0; i < x->nheredocs; i++) {
        char *n = xasprintf("%s\n%s%s", hd, x->heredocs[i].content, x->heredocs[i].name);
        free(hd);
        hd = n;
    }
    char *r = xasprintf("%s %s%s%s", x->keyword, flags, args, hd);
    free(flags);
    free(args);
    free(hd);
    return r;
}

static int ensure_obj(json_t *cfg, const char *k, json_t **out)
{
    json_t *o = json_object_get(cfg, k);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(cfg, k, o);
    }
    *out = o;
    return 0;
}

static void env_set(json_t *cfg, const char *name, const char *value)
{
    json_t *env = json_object_get(cfg, "Env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(cfg, "Env", env);
    }
    size_t nl = strlen(name);
    size_t i;
    json_t *e;
    cleanup_free char *kv = xasprintf("%s=%s", name, value);
    json_array_foreach(env, i, e)
    {
        const char *s = json_string_value(e);
        if (s && strncmp(s, name, nl) == 0 && s[nl] == '=') {
            json_array_set_new(env, i, json_string(kv));
            return;
        }
    }
    json_array_append_new(env, json_string(kv));
}

/* The key a stage starts from.  It includes the timestamp: layers made with clamped mtimes
 * (--timestamp) must not be reused by a build without, nor the other way round. */
static int stage_key_base(const struct bctx *b, const char *what, char **out)
{
    cleanup_free char *t = xasprintf("%s timestamp=%lld", what, (long long)b->o->timestamp);
    *out = bld_cache_key(NULL, t, NULL);
    return 0;
}

/* Mount helpers for COPY --from / RUN --mount from=: a stage result or a store image. */
struct from_root {
    char *layer; /* mounted layer (NULL for an empty root) */
    char *dir;
    int fd;
    char *empty_dir;
};

static void from_root_release(struct bctx *b, struct from_root *r)
{
    if (r->fd >= 0)
        close(r->fd);
    if (r->layer) {
        berth_error_t e = NULL;
        if (storage_layer_unmount(b->s, r->layer, false, &e) < 0)
            berth_error_release(&e);
    }
    if (r->empty_dir)
        rmdir(r->empty_dir);
    free(r->layer);
    free(r->dir);
    free(r->empty_dir);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

static int from_root_open(struct bctx *b, size_t cur_stage, const char *from, struct from_root *r,
                          char **key_part, berth_error_t *err)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    const struct cf_stage *st = cf_stages_find(b->st, from);
    const char *layer = NULL;
    if (st) {
        if (st->index >= cur_stage)
            return berth_error_make_status(err, EINVAL,
                                           "stage \"%s\" is not defined before this one", from);
        struct stage_result *res = &b->res[st->index];
        if (!res->built)
            return berth_error_make_status(err, EINVAL, "stage \"%s\" was not built", from);
        layer = res->top;
        *key_part = xasprintf("stage:%s", res->top ? res->top : "scratch");
    } else {
        cleanup_storage_image storage_image_t *img = NULL;
        if (storage_image_lookup(b->s, from, &img, err) < 0)
            return berth_error_wrap(err, "--from=%s: not a stage of this build nor a local image",
                                    from);
        r->layer = img->top_layer ? xstrdup(img->top_layer) : NULL;
        *key_part = xasprintf("image:%s", img->id);
        layer = r->layer;
    }
    if (layer) {
        char *copy = xstrdup(layer); /* layer may be r->layer itself */
        free(r->layer);
        r->layer = copy;
        if (storage_layer_mount(b->s, r->layer, &r->dir, err) < 0) {
            free(r->layer);
            r->layer = NULL;
            return -1;
        }
    } else {
        r->empty_dir = xasprintf("%s/tmp/empty-%d", b->cache_dir, (int)getpid());
        if (fs_mkdir_p(r->empty_dir, 0700, err) < 0)
            return -1;
        r->dir = xstrdup(r->empty_dir);
    }
    r->fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        from_root_release(b, r);
        return berth_error_make(err, e, "open \"%s\"", r->dir ? r->dir : "");
    }
    return 0;
}

/* Cache lookup for a layer step: true when the step can be skipped (state updated). */
static int try_cache(struct bctx *b, struct sstate *ss, const char *key, const char *history,
                     bool *hit, berth_error_t *err)
{
    *hit = false;
    if (!b->o->layers || b->o->no_cache)
        return 0;
    bool found = false;
    cleanup_free char *layer = NULL;
    if (bld_cache_lookup(b->cache_dir, key, &found, &layer, err) < 0)
        return -1;
    if (!found || !layer)
        return 0;
    cleanup_storage_layer storage_layer_t *l = NULL;
    berth_error_t e2 = NULL;
    if (storage_layer_get(b->s, layer, &l, &e2) < 0 || !l->diff_digest ||
        !(ss->top ? (l->parent && strcmp(l->parent, ss->top) == 0) : !l->parent)) {
        berth_error_release(&e2);
        return 0;
    }
    say(b, "--> Using cache %s\n", l->id);
    free(ss->top);
    ss->top = xstrdup(l->id);
    bld_diff_id_add(ss->doc, l->diff_digest);
    bld_history_add(ss->doc, history, false, b->o->timestamp);
    *hit = true;
    return 0;
}

static int finish_layer(struct bctx *b, struct sstate *ss, struct bld_rw *rw, const char *key,
                        const char *history, berth_error_t *err)
{
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (bld_rw_commit(b->s, rw, ss->top, b->o->timestamp, &l, err) < 0)
        return -1;
    free(ss->top);
    ss->top = xstrdup(l->id);
    bld_diff_id_add(ss->doc, l->diff_digest);
    bld_history_add(ss->doc, history, false, b->o->timestamp);
    if (b->o->layers && bld_cache_store(b->cache_dir, key, l->id, err) < 0)
        return -1;
    say(b, "--> %.12s\n", l->id);
    return 0;
}

/* The working layer a file-changing step writes to: a new one per step with --layers, else
 * the stage's single one. */
static int step_rw_open(struct bctx *b, struct sstate *ss, struct bld_rw *local,
                        struct bld_rw **out, berth_error_t *err)
{
    if (b->o->layers) {
        if (bld_rw_open(b->s, ss->top, local, err) < 0)
            return -1;
        *out = local;
        return 0;
    }
    if (!ss->stage_rw_open) {
        if (bld_rw_open(b->s, ss->top, &ss->stage_rw, err) < 0)
            return -1;
        ss->stage_rw_open = true;
    }
    *out = &ss->stage_rw;
    return 0;
}

static int step_rw_done(struct bctx *b, struct sstate *ss, struct bld_rw *rw, bool ok,
                        const char *key, const char *history, berth_error_t *err)
{
    if (b->o->layers) {
        if (!ok) {
            bld_rw_abort(b->s, rw);
            return -1;
        }
        return finish_layer(b, ss, rw, key, history, err);
    }
    if (!ok)
        return -1; /* the stage's layer is dropped by build_stage */
    bld_history_add(ss->doc, history, true, b->o->timestamp);
    ss->last_layer_hist = (long)json_array_size(json_object_get(ss->doc, "history")) - 1;
    return 0;
}

/* --layers=false: commits the stage's working layer (one layer for all its steps). */
static int stage_rw_commit(struct bctx *b, struct sstate *ss, berth_error_t *err)
{
    if (!ss->stage_rw_open)
        return 0;
    ss->stage_rw_open = false;
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (bld_rw_commit(b->s, &ss->stage_rw, ss->top, b->o->timestamp, &l, err) < 0) {
        bld_rw_abort(b->s, &ss->stage_rw);
        return -1;
    }
    free(ss->top);
    ss->top = xstrdup(l->id);
    bld_diff_id_add(ss->doc, l->diff_digest);
    json_t *h = json_array_get(json_object_get(ss->doc, "history"), (size_t)ss->last_layer_hist);
    if (h)
        json_object_del(h, "empty_layer");
    say(b, "--> %.12s\n", l->id);
    return 0;
}

static const char *workdir_of(struct sstate *ss)
{
    const char *w = cfg_str(ss->doc, "WorkingDir");
    return w && *w ? w : "/";
}

/* ---- COPY / ADD ---- */

/* With layers: the plan becomes a layer directly (layer_tar.c), no working layer. */
static int copy_to_layer(struct bctx *b, struct sstate *ss, const struct copy_plan *plan,
                         struct copy_owner *own, const char *chown, const char *key,
                         const char *history, berth_error_t *err)
{
    cleanup_free char *pdir = NULL;
    int pfd = -1, rc = 0;
    if (ss->top) {
        if (storage_layer_mount(b->s, ss->top, &pdir, err) < 0)
            return berth_error_wrap(err, "mount the parent layer");
        pfd = open(pdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            rc = berth_error_make(err, errno, "open \"%s\"", pdir);
    }
    if (rc == 0 && chown && *chown) {
        own->set = true;
        rc = copy_parse_chown(pfd, chown, &own->uid, &own->gid, err);
    }
    cleanup_reader berth_reader_t *tar = NULL;
    if (rc == 0)
        rc = copy_plan_layer(plan, pfd, own, b->o->timestamp, &tar, err);
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (rc == 0) {
        struct storage_layer_options lo = {.parent = ss->top, .compressed_size = -1};
        rc = storage_layer_create_from_tar(b->s, &lo, tar, &l, err);
    }
    reader_close(tar);
    tar = NULL;
    if (pfd >= 0)
        close(pfd);
    if (pdir) {
        berth_error_t e2 = NULL;
        if (storage_layer_unmount(b->s, ss->top, false, &e2) < 0)
            berth_error_release(&e2);
    }
    if (rc < 0)
        return -1;
    free(ss->top);
    ss->top = xstrdup(l->id);
    bld_diff_id_add(ss->doc, l->diff_digest);
    bld_history_add(ss->doc, history, false, b->o->timestamp);
    if (bld_cache_store(b->cache_dir, key, l->id, err) < 0)
        return -1;
    say(b, "--> %.12s\n", l->id);
    return 0;
}

static int do_copy(struct bctx *b, size_t stage, struct sstate *ss, const struct cf_instruction *x,
                   const char *text, berth_error_t *err)
{
    bool add = strcmp(x->keyword, "ADD") == 0;
    if (x->nargs < 2)
        return berth_error_make_status(err, EINVAL, "%s requires at least two arguments",
                                       x->keyword);
    const char *from = cf_flag_get(x, "from");
    const char *chown = cf_flag_get(x, "chown");
    const char *chmod_s = cf_flag_get(x, "chmod");
    const char *checksum = add ? cf_flag_get(x, "checksum") : NULL;
    int chmod_v = -1;
    if (chmod_s && *chmod_s) {
        char *end;
        long v = strtol(chmod_s, &end, 8);
        if (*end || v < 0 || v > 07777)
            return berth_error_make_status(err, EINVAL, "invalid --chmod=%s: need octal bits",
                                           chmod_s);
        chmod_v = (int)v;
    }
    const char *dest_raw = x->args[x->nargs - 1];
    cleanup_free char *dest = NULL;
    if (dest_raw[0] == '/') {
        dest = xstrdup(dest_raw);
    } else {
        const char *wd = workdir_of(ss);
        dest = xasprintf("%s%s%s", wd, wd[strlen(wd) - 1] == '/' ? "" : "/", dest_raw);
        if (strcmp(dest_raw, ".") == 0 || strcmp(dest_raw, "./") == 0) {
            free(dest);
            dest = xasprintf("%s/", wd);
        }
    }
    /* heredoc sources become files in a temporary directory */
    cleanup_free char *hd_dir = NULL, *from_key = NULL, *tmpdir = NULL, *key = NULL,
                      *history = NULL;
    cleanup_close int hd_fd = -1;
    struct from_root fr = {.fd = -1};
    struct copy_plan plan = {.tmp_dir_fd = -1};
    size_t nsrc = x->nargs - 1;
    char **srcs = xcalloc(nsrc + 1, sizeof(char *));
    bool any_hd = false, any_plain = false;
    for (size_t i = 0; i < nsrc; i++) {
        const struct cf_heredoc *h = cf_heredoc_for_arg(x, x->args[i]);
        if (h) {
            any_hd = true;
            if (!hd_dir) {
                hd_dir = xasprintf("%s/tmp/heredoc-%d-%zu", b->cache_dir, (int)getpid(), b->step);
                if (fs_mkdir_p(hd_dir, 0700, err) < 0)
                    goto fail_srcs;
            }
            cleanup_free char *p = fs_join(hd_dir, h->name);
            if (fs_write_file_atomic(p, h->content, strlen(h->content), 0644, err) < 0)
                goto fail_srcs;
            srcs[i] = xstrdup(h->name);
        } else {
            any_plain = true;
            srcs[i] = xstrdup(x->args[i]);
        }
    }
    if (any_hd && (any_plain || from)) {
        berth_error_make_status(err, EINVAL, "%s: heredoc sources can't be mixed with others",
                                x->keyword);
        goto fail_srcs;
    }
    struct copy_source src = {.fd = b->ctx_fd, .ign = b->ign, .is_context = true};
    if (from) {
        if (from_root_open(b, stage, from, &fr, &from_key, err) < 0)
            goto fail_srcs;
        src = (struct copy_source){.fd = fr.fd, .ign = NULL, .is_context = false};
    } else if (any_hd) {
        hd_fd = open(hd_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hd_fd < 0) {
            berth_error_make(err, errno, "open \"%s\"", hd_dir);
            goto fail_srcs;
        }
        src = (struct copy_source){.fd = hd_fd, .ign = NULL, .is_context = true};
    }
    tmpdir = fs_join(b->cache_dir, "tmp");
    int rc = copy_plan_make(&src, srcs, nsrc, dest, add, checksum, tmpdir, &plan, err);
    if (rc == 0) {
        cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
        if (from_key)
            digester_update(d, from_key, strlen(from_key));
        rc = copy_plan_digest(&plan, b->memo, d, err);
        cleanup_free char *inputs = digester_finish(d);
        key = bld_cache_key(ss->key, text, inputs);
    }
    bool hit = false;
    if (rc == 0) {
        history = xasprintf("/bin/sh -c #(nop) %s", text);
        rc = try_cache(b, ss, key, history, &hit, err);
    }
    if (rc == 0 && !hit)
        copy_plan_detect_archives(&plan);
    if (rc == 0 && !hit && b->o->layers) {
        struct copy_owner own = {.chmod = chmod_v, .reset_owner = !from};
        rc = copy_to_layer(b, ss, &plan, &own, chown, key, history, err);
    } else if (rc == 0 && !hit) {
        struct bld_rw local, *rw = NULL;
        rc = step_rw_open(b, ss, &local, &rw, err);
        if (rc == 0) {
            struct copy_owner own = {.chmod = chmod_v, .reset_owner = !from};
            if (chown && *chown) {
                own.set = true;
                rc = copy_parse_chown(rw->root_fd, chown, &own.uid, &own.gid, err);
            }
            if (rc == 0)
                rc = copy_plan_apply(&plan, rw->root_fd, &own, err);
            rc = step_rw_done(b, ss, rw, rc == 0, key, history, err);
        }
    }
    if (rc == 0) {
        free(ss->key);
        ss->key = steal_pointer(&key);
        remember_key(b, ss->key);
    }
    copy_plan_clear(&plan);
    from_root_release(b, &fr);
    if (hd_dir) {
        berth_error_t e2 = NULL;
        IGNORE_RESULT(fs_rm_rf(hd_dir, &e2));
        berth_error_release(&e2);
    }
    for (size_t i = 0; i < nsrc; i++)
        free(srcs[i]);
    free(srcs);
    return rc;
fail_srcs:
    for (size_t i = 0; i < nsrc; i++)
        free(srcs[i]);
    free(srcs);
    if (hd_dir) {
        berth_error_t e2 = NULL;
        IGNORE_RESULT(fs_rm_rf(hd_dir, &e2));
        berth_error_release(&e2);
    }
    return -1;
}

/* ---- RUN ---- */

struct run_mounts {
    json_t *mounts;
    struct from_root roots[8];
    size_t nroots;
    char *copies[8]; /* temporary copies bound instead of the source (removed after RUN) */
    size_t ncopies;
};

/* Copies what plan lists into a new temporary directory (for bind mounts that must not expose
 * ignored files or must not let RUN write into the source). */
static int bind_copy(struct bctx *b, struct run_mounts *rm, const struct copy_plan *plan,
                     char **dir, berth_error_t *err)
{
    if (rm->ncopies >= 8)
        return berth_error_make_status(err, E2BIG, "too many RUN --mount=type=bind");
    char *d =
        xasprintf("%s/tmp/bind-%d-%zu-%zu", b->cache_dir, (int)getpid(), b->step, rm->ncopies);
    rm->copies[rm->ncopies++] = d;
    if (fs_mkdir_p(d, 0755, err) < 0)
        return -1;
    cleanup_close int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", d);
    struct copy_owner own = {.chmod = -1};
    if (copy_plan_apply(plan, fd, &own, err) < 0)
        return berth_error_wrap(err, "RUN --mount=type=bind: copy the source");
    *dir = xstrdup(d);
    return 0;
}

static int valid_cache_id(const char *id)
{
    if (!*id || strlen(id) > 255 || id[0] == '/')
        return 0;
    cleanup_free char *c = xstrdup(id);
    char *save = NULL;
    for (char *p = strtok_r(c, "/", &save); p; p = strtok_r(NULL, "/", &save))
        if (strcmp(p, "..") == 0 || strcmp(p, ".") == 0)
            return 0;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* secret: the id is source=, else id=, else the target's base name; the default target is
 * /run/secrets/<id> (buildkit's dispatch rules) */
static int secret_mount(struct bctx *b, const struct cf_mount *cm, json_t **out, berth_error_t *err)
{
    cleanup_free char *id = NULL;
    if (cm->source)
        id = xstrdup(cm->source);
    else if (cm->id)
        id = xstrdup(cm->id);
    else {
        const char *bn = strrchr(cm->target, '/');
        id = xstrdup(bn ? bn + 1 : cm->target);
    }
    cleanup_free char *path = NULL;
    for (char **s = b->o->secrets; s && *s; s++) {
        cleanup_free char *c2 = xstrdup(*s);
        char *sv = NULL, *sid = NULL, *ssrc = NULL;
        for (char *kv = strtok_r(c2, ",", &sv); kv; kv = strtok_r(NULL, ",", &sv)) {
            if (strncmp(kv, "id=", 3) == 0)
                sid = kv + 3;
            else if (strncmp(kv, "src=", 4) == 0 || strncmp(kv, "source=", 7) == 0)
                ssrc = strchr(kv, '=') + 1;
        }
        if (sid && ssrc && strcmp(sid, id) == 0) {
            free(path);
            path = xstrdup(ssrc);
        }
    }
    if (!path) {
        if (cm->required)
            return berth_error_make_status(err, ENOENT,
                                           "secret \"%s\" was not given "
                                           "(--secret id=%s,src=PATH)",
                                           id, id);
        return 0; /* an optional secret that is not there: no mount */
    }
    char real[4096];
    if (!realpath(path, real))
        return berth_error_make(err, errno, "secret \"%s\": \"%s\"", id, path);
    const char *bn = strrchr(id, '/');
    cleanup_free char *dst =
        cm->target ? xstrdup(cm->target) : xasprintf("/run/secrets/%s", bn ? bn + 1 : id);
    *out = json_pack("{s:s,s:s,s:s,s:[s,s]}", "destination", dst, "type", "bind", "source", real,
                     "options", "rbind", cm->readonly ? "ro" : "rw");
    return 0;
}

static int cache_mount(struct bctx *b, const struct cf_mount *cm, json_t **out, berth_error_t *err)
{
    /* without an id the target names the cache (docker); only given ids are checked */
    const char *cid = cm->id ? cm->id : cm->target;
    if (cm->id && !valid_cache_id(cid))
        return berth_error_make_status(err, EINVAL,
                                       "RUN --mount=type=cache: invalid cache id \"%s\" "
                                       "(no \"..\" components, not absolute)",
                                       cid);
    /* the directory is named by a digest of the id: it can never leave mounts/ */
    cleanup_free char *h = bld_cache_key(NULL, "cache-mount", cid);
    cleanup_free char *dir = xasprintf("%s/mounts/%s", b->cache_dir, h);
    if (fs_mkdir_p(dir, 0755, err) < 0)
        return -1;
    if (cm->has_uid || cm->has_gid || cm->has_mode) {
        if (chown(dir, cm->has_uid ? (uid_t)cm->uid : 0, cm->has_gid ? (gid_t)cm->gid : 0) < 0)
            return berth_error_make(err, errno, "chown cache mount");
        if (cm->has_mode && chmod(dir, (mode_t)cm->mode) < 0)
            return berth_error_make(err, errno, "chmod cache mount");
    }
    *out = json_pack("{s:s,s:s,s:s,s:[s,s]}", "destination", cm->target, "type", "bind", "source",
                     dir, "options", "rbind", cm->readonly ? "ro" : "rw");
    return 0;
}

static int bind_mount(struct bctx *b, size_t stage, const struct cf_mount *cm,
                      struct run_mounts *rm, digester_t *d, json_t **out, berth_error_t *err)
{
    if (rm->nroots >= 8)
        return berth_error_make_status(err, E2BIG, "too many RUN --mount=type=bind");
    bool rw = !cm->readonly;
    struct from_root *fr = &rm->roots[rm->nroots];
    fr->fd = -1;
    cleanup_free char *srcpath = NULL;
    int root_fd;
    const char *root_dir;
    cleanup_free char *kp = NULL;
    if (cm->from) {
        if (from_root_open(b, stage, cm->from, fr, &kp, err) < 0)
            return -1;
        rm->nroots++;
        root_fd = fr->fd;
        root_dir = fr->dir;
        srcpath = path_clean_relative(cm->source ? cm->source : "/");
    } else {
        if (copy_clean_inside(cm->source ? cm->source : ".", &srcpath, err) < 0)
            return -1;
        root_fd = b->ctx_fd;
        root_dir = b->o->context;
    }
    cleanup_free char *resolved = NULL;
    if (path_resolve_in_root(root_fd, *srcpath ? srcpath : ".", true, &resolved, err) < 0)
        return -1;
    char real[4096];
    cleanup_free char *joined = fs_join(root_dir, resolved);
    if (!realpath(joined, real))
        return berth_error_make(err, errno, "RUN --mount source \"%s\"",
                                cm->source ? cm->source : ".");
    /* inputs: the bound files' content when from the context, the layer otherwise */
    cleanup_free char *copy = NULL;
    bool filtered = !cm->from && b->ign && ignore_count(b->ign) > 0;
    if (!cm->from || rw) {
        struct copy_source cs = {.fd = cm->from ? root_fd : b->ctx_fd,
                                 .ign = cm->from ? NULL : b->ign,
                                 .is_context = !cm->from};
        struct copy_plan plan = {.tmp_dir_fd = -1};
        char *one[2] = {*resolved ? resolved : (char *)".", NULL};
        if (copy_plan_make(&cs, one, 1, "/", false, NULL, NULL, &plan, err) < 0)
            return -1;
        int r = cm->from ? 0 : copy_plan_digest(&plan, b->memo, d, err);
        /* rw: writes must not reach the context or a stored layer (docker discards them);
         * an ignore file: excluded files must not be visible (as docker) */
        if (r == 0 && (rw || filtered))
            r = bind_copy(b, rm, &plan, &copy, err);
        if (r == 0 && copy && plan.ntops == 1) {
            struct copy_top_view tv;
            copy_plan_top(&plan, 0, &tv);
            if (!tv.is_dir) {
                char *f = fs_join(copy, tv.name);
                free(copy);
                copy = f;
            }
        }
        copy_plan_clear(&plan);
        if (r < 0)
            return -1;
    }
    if (cm->from)
        digester_update(d, kp, strlen(kp));
    *out = json_pack("{s:s,s:s,s:s,s:[s,s]}", "destination", cm->target, "type", "bind", "source",
                     copy ? copy : real, "options", "rbind", rw ? "rw" : "ro");
    return 0;
}

/* One RUN --mount value, parsed by cf_parse_mount (buildkit's rules), as a runtime-spec mount
 * appended to rm->mounts; what the mount brings in is fed to d for the cache key. */
static int parse_mount(struct bctx *b, size_t stage, const char *spec, struct run_mounts *rm,
                       digester_t *d, berth_error_t *err)
{
    struct cf_mount cm;
    if (cf_parse_mount(spec, &cm, err) < 0)
        return -1;
    json_t *m = NULL;
    int rc = 0;
    switch (cm.type) {
    case CF_MOUNT_SECRET:
        rc = secret_mount(b, &cm, &m, err);
        break;
    case CF_MOUNT_TMPFS:
        m = json_pack("{s:s,s:s,s:s,s:[s,s,s]}", "destination", cm.target, "type", "tmpfs",
                      "source", "tmpfs", "options", "nosuid", "nodev", "mode=1777");
        if (cm.size) {
            cleanup_free char *o = xasprintf("size=%llu", cm.size);
            json_array_append_new(json_object_get(m, "options"), json_string(o));
        }
        if (cm.readonly)
            json_array_append_new(json_object_get(m, "options"), json_string("ro"));
        break;
    case CF_MOUNT_CACHE:
        rc = cache_mount(b, &cm, &m, err);
        break;
    case CF_MOUNT_BIND:
        rc = bind_mount(b, stage, &cm, rm, d, &m, err);
        break;
    case CF_MOUNT_SSH:
        rc = berth_error_make_status(err, ENOTSUP, "RUN --mount=type=ssh is not supported");
        break;
    }
    bool secret = cm.type == CF_MOUNT_SECRET;
    cf_mount_clear(&cm);
    if (rc < 0)
        return -1;
    if (!secret) /* a secret's content is never part of the cache key */
        digester_update(d, spec, strlen(spec));
    if (m)
        json_array_append_new(rm->mounts, m);
    return 0;
}

/* build -v HOST:CTR[:OPTS] (buildah's transient RUN mounts): a bind mount for every RUN;
 * nothing of the host's files stays in the image, the target directory does (as buildah
 * leaves it).  Not part of the cache key (as buildah). */
static int build_volume(const char *spec, json_t *mounts, berth_error_t *err)
{
    cleanup_free char *s = xstrdup(spec);
    char *host = s, *ctr = strchr(s, ':'), *opts = NULL;
    if (ctr) {
        *ctr++ = 0;
        opts = strchr(ctr, ':');
        if (opts)
            *opts++ = 0;
    }
    if (!ctr || !*host || !*ctr || host[0] != '/' || ctr[0] != '/')
        return berth_error_make_status(err, EINVAL,
                                       "-v %s: use HOST:CTR[:OPTS] with absolute paths", spec);
    char real[4096];
    if (!realpath(host, real))
        return berth_error_make(err, errno, "-v %s: \"%s\"", spec, host);
    json_t *o = json_array();
    json_array_append_new(o, json_string("rbind"));
    bool ro = false;
    char *save = NULL;
    for (char *t = opts ? strtok_r(opts, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "ro") == 0) {
            ro = true;
        } else if (strcmp(t, "rw") == 0) {
            ro = false;
        } else if (strcmp(t, "z") == 0 || strcmp(t, "Z") == 0) {
            continue; /* SELinux relabelling: nothing to do here */
        } else if (strcmp(t, "nosuid") == 0 || strcmp(t, "nodev") == 0 ||
                   strcmp(t, "noexec") == 0 || strcmp(t, "suid") == 0 || strcmp(t, "dev") == 0 ||
                   strcmp(t, "exec") == 0 || strcmp(t, "rprivate") == 0 ||
                   strcmp(t, "private") == 0 || strcmp(t, "rslave") == 0 ||
                   strcmp(t, "slave") == 0 || strcmp(t, "rshared") == 0 ||
                   strcmp(t, "shared") == 0) {
            json_array_append_new(o, json_string(t));
        } else {
            json_decref(o);
            return berth_error_make_status(err, EINVAL, "-v %s: unknown option \"%s\"", spec, t);
        }
    }
    json_array_append_new(o, json_string(ro ? "ro" : "rw"));
    json_array_append_new(mounts,
                          json_pack("{s:s,s:s,s:s,s:o,s:b}", "destination", ctr, "type", "bind",
                                    "source", real, "options", o, "berth-keep-target", 1));
    return 0;
}

/* What a RUN writes below a VOLUME of the image is discarded (Docker, buildah): the volumes'
 * contents are copied aside before the step and put back after it. */
struct vol_saves {
    char **full;  /* the volume in the working rootfs */
    char **saved; /* its copy, NULL when it did not exist */
    size_t n;
};

static int volumes_save(struct bctx *b, struct sstate *ss, struct bld_rw *rw, struct vol_saves *vs,
                        berth_error_t *err)
{
    json_t *vols = json_object_get(bld_exec_config(ss->doc), "Volumes");
    size_t n = json_object_size(vols), i = 0;
    if (!n)
        return 0;
    vs->full = xcalloc(n, sizeof(char *));
    vs->saved = xcalloc(n, sizeof(char *));
    const char *path;
    json_t *v;
    json_object_foreach(vols, path, v)
    {
        (void)v;
        cleanup_free char *rel = NULL;
        berth_error_t e2 = NULL;
        if (path_resolve_in_root(rw->root_fd, path, true, &rel, &e2) < 0) {
            berth_error_release(&e2);
            rel = path_clean_relative(path);
        }
        if (!*rel)
            continue; /* VOLUME / */
        char *full = fs_join(rw->dir, rel);
        vs->full[vs->n] = full;
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            char *save =
                xasprintf("%s/tmp/volume-%d-%zu-%zu", b->cache_dir, (int)getpid(), b->step, i++);
            berth_error_t e3 = NULL;
            IGNORE_RESULT(fs_rm_rf(save, &e3));
            berth_error_release(&e3);
            cleanup_free char *tmp = fs_join(b->cache_dir, "tmp");
            if (fs_mkdir_p(tmp, 0700, err) < 0 || tar_copy_tree(full, save, err) < 0) {
                free(save);
                vs->n++;
                return berth_error_wrap(err, "VOLUME %s: save its contents", path);
            }
            vs->saved[vs->n] = save;
        } else if (lstat(full, &st) == 0) {
            free(full);
            vs->full[vs->n] = NULL; /* not a directory: nothing to keep apart */
        }
        vs->n++;
    }
    return 0;
}

static int volumes_restore(struct vol_saves *vs, bool put_back, berth_error_t *err)
{
    int rc = 0;
    for (size_t i = 0; i < vs->n; i++) {
        if (put_back && rc == 0 && vs->full[i]) {
            if (fs_rm_rf(vs->full[i], err) < 0 ||
                (vs->saved[i] && tar_copy_tree(vs->saved[i], vs->full[i], err) < 0))
                rc = berth_error_wrap(err, "VOLUME: put back the contents of \"%s\"", vs->full[i]);
        }
        if (vs->saved[i]) {
            berth_error_t e2 = NULL;
            IGNORE_RESULT(fs_rm_rf(vs->saved[i], &e2));
            berth_error_release(&e2);
        }
        free(vs->full[i]);
        free(vs->saved[i]);
    }
    free(vs->full);
    free(vs->saved);
    memset(vs, 0, sizeof(*vs));
    return rc;
}

static int do_run(struct bctx *b, size_t stage, struct sstate *ss, const struct cf_instruction *x,
                  berth_error_t *err)
{
    cleanup_strv char **argv = NULL;
    cleanup_free char *cmdtext = NULL;
    if (x->json_form) {
        argv = xcalloc(x->nargs + 1, sizeof(char *));
        for (size_t i = 0; i < x->nargs; i++)
            argv[i] = xstrdup(x->args[i]);
        json_t *a = json_from_strv(argv);
        cmdtext = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    } else {
        const char *line = x->nargs ? x->args[0] : "";
        char *script;
        const char *trimmed = line;
        while (isspace((unsigned char)*trimmed))
            trimmed++;
        if (x->nheredocs == 1 && cf_heredoc_for_arg(x, trimmed)) {
            script = cf_heredoc_body(&x->heredocs[0]);
        } else {
            script = xstrdup(line);
            for (size_t i = 0; i < x->nheredocs; i++) {
                char *n =
                    xasprintf("%s\n%s%s", script, x->heredocs[i].content, x->heredocs[i].name);
                free(script);
                script = n;
            }
        }
        cleanup_strv char **sh = shell_of(ss->doc);
        size_t n = 0;
        while (sh[n])
            n++;
        argv = xcalloc(n + 2, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            argv[i] = xstrdup(sh[i]);
        argv[n] = script;
        cmdtext = strv_join(argv, " ");
    }
    cleanup_strv char **hargs = stage_env_history_args(&ss->se);
    size_t nh = 0;
    while (hargs && hargs[nh])
        nh++;
    cleanup_free char *hj = strv_join(hargs, " ");
    cleanup_free char *history = nh ? xasprintf("|%zu %s %s", nh, hj, cmdtext) : xstrdup(cmdtext);
    const char *network = cf_flag_get(x, "network");
    if (!network || strcmp(network, "default") == 0)
        network = b->o->network ? b->o->network : "none";
    if (strcmp(network, "none") != 0 && strcmp(network, "host") != 0)
        return berth_error_make_status(err, EINVAL, "RUN --network=%s: use none or host", network);
    struct run_mounts rm = {.mounts = json_array()};
    cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
    size_t nm = 0;
    const char **mounts = cf_flag_get_all(x, "mount", &nm);
    int rc = 0;
    for (size_t i = 0; i < nm && rc == 0; i++)
        rc = parse_mount(b, stage, mounts[i], &rm, d, err);
    free(mounts);
    for (char **v = b->o->volumes; v && *v && rc == 0; v++)
        rc = build_volume(*v, rm.mounts, err);
    cleanup_free char *inputs = digester_finish(d);
    cleanup_free char *keytext = xasprintf("RUN %s network=%s user=%s workdir=%s", history, network,
                                           cfg_str(ss->doc, "User") ?: "", workdir_of(ss));
    cleanup_free char *key = rc == 0 ? bld_cache_key(ss->key, keytext, inputs) : NULL;
    bool hit = false;
    if (rc == 0)
        rc = try_cache(b, ss, key, history, &hit, err);
    if (rc == 0 && !hit) {
        struct bld_rw local, *rw = NULL;
        rc = step_rw_open(b, ss, &local, &rw, err);
        if (rc == 0) {
            cleanup_strv char **env = stage_env_run_env(&ss->se);
            struct bld_run r = {
                .argv = argv,
                .env = env,
                .workdir = workdir_of(ss),
                .user = cfg_str(ss->doc, "User"),
                .network = network,
                .mounts = rm.mounts,
                .stdout_to_stderr = b->o->quiet,
                .isolation = b->o->isolation,
                .runroot = storage_store_runroot(b->s),
            };
            int status = 0;
            struct vol_saves vs = {0};
            rc = volumes_save(b, ss, rw, &vs, err);
            if (rc == 0)
                rc = bld_run(rw->dir, &r, &status, err);
            if (rc == 0 && status != 0)
                rc = berth_error_make_status(
                    err, ECHILD, "RUN %s: the command exited with status %d", cmdtext, status);
            if (volumes_restore(&vs, rc == 0, err) < 0)
                rc = -1;
            rc = step_rw_done(b, ss, rw, rc == 0, key, history, err);
        }
    }
    if (rc == 0) {
        free(ss->key);
        ss->key = steal_pointer(&key);
        remember_key(b, ss->key);
    }
    for (size_t i = 0; i < rm.nroots; i++)
        from_root_release(b, &rm.roots[i]);
    for (size_t i = 0; i < rm.ncopies; i++) {
        berth_error_t e2 = NULL;
        if (fs_rm_rf(rm.copies[i], &e2) < 0)
            berth_error_release(&e2);
        free(rm.copies[i]);
    }
    json_decref(rm.mounts);
    return rc;
}

/* ---- metadata instructions ---- */

static json_t *args_array(const struct cf_instruction *x, json_t *doc)
{
    if (x->json_form) {
        json_t *a = json_array();
        for (size_t i = 0; i < x->nargs; i++)
            json_array_append_new(a, cf_arg_to_json(x->args[i]));
        return a;
    }
    return shell_form(doc, x->nargs ? x->args[0] : "");
}

static int do_meta(struct bctx *b, struct sstate *ss, const struct cf_instruction *in,
                   const struct cf_instruction *x, const char *text, berth_error_t *err)
{
    json_t *cfg = bld_exec_config(ss->doc);
    const char *kw = x->keyword;
    cleanup_free char *history = xasprintf("/bin/sh -c #(nop) %s", text);
    if (strcmp(kw, "ENV") == 0) {
        if (stage_env_apply_env(&ss->se, in, err) < 0)
            return -1;
        for (size_t i = 0; i + 1 < x->nargs; i += 2)
            env_set(cfg, x->args[i], x->args[i + 1]);
    } else if (strcmp(kw, "ARG") == 0) {
        if (stage_env_apply_arg(&ss->se, in, err) < 0)
            return -1;
    } else if (strcmp(kw, "LABEL") == 0) {
        json_t *l;
        ensure_obj(cfg, "Labels", &l);
        for (size_t i = 0; i + 1 < x->nargs; i += 2)
            json_object_set_new(l, x->args[i], json_string(x->args[i + 1]));
    } else if (strcmp(kw, "WORKDIR") == 0) {
        const char *w = x->nargs ? x->args[0] : "";
        cleanup_free char *joined =
            w[0] == '/' ? xstrdup(w) : xasprintf("%s/%s", workdir_of(ss), w);
        cleanup_free char *clean = path_clean_relative(joined);
        /* a trailing slash is kept as written (Docker and buildah keep it) */
        size_t wl = strlen(w);
        cleanup_free char *abs =
            xasprintf("/%s%s", clean, *clean && wl && w[wl - 1] == '/' ? "/" : "");
        json_object_set_new(cfg, "WorkingDir", json_string(abs));
    } else if (strcmp(kw, "USER") == 0) {
        json_object_set_new(cfg, "User", json_string(x->nargs ? x->args[0] : ""));
    } else if (strcmp(kw, "CMD") == 0) {
        json_object_set_new(cfg, "Cmd", args_array(x, ss->doc));
        ss->cmd_set = true;
    } else if (strcmp(kw, "ENTRYPOINT") == 0) {
        json_object_set_new(cfg, "Entrypoint", args_array(x, ss->doc));
        /* docker: an ENTRYPOINT resets a CMD inherited from the base image */
        if (!ss->cmd_set)
            json_object_del(cfg, "Cmd");
    } else if (strcmp(kw, "SHELL") == 0) {
        if (!x->json_form || x->nargs == 0)
            return berth_error_make_status(err, EINVAL, "SHELL requires the JSON form");
        json_object_set_new(cfg, "Shell", json_from_strv(x->args));
    } else if (strcmp(kw, "EXPOSE") == 0) {
        json_t *p;
        ensure_obj(cfg, "ExposedPorts", &p);
        for (size_t i = 0; i < x->nargs; i++) {
            cleanup_free char *port =
                strchr(x->args[i], '/') ? xstrdup(x->args[i]) : xasprintf("%s/tcp", x->args[i]);
            for (char *c = port; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            /* "8000-8002/tcp" is three ports (as docker) */
            unsigned lo, hi;
            char proto[16];
            if (sscanf(port, "%u-%u/%15s", &lo, &hi, proto) == 3) {
                if (lo > hi || hi > 65535 || hi - lo > 65535)
                    return berth_error_make_status(err, EINVAL, "EXPOSE: invalid range %s",
                                                   x->args[i]);
                for (unsigned n = lo; n <= hi; n++) {
                    char k[32];
                    snprintf(k, sizeof(k), "%u/%s", n, proto);
                    json_object_set_new(p, k, json_object());
                }
                continue;
            }
            json_object_set_new(p, port, json_object());
        }
    } else if (strcmp(kw, "VOLUME") == 0) {
        json_t *v;
        ensure_obj(cfg, "Volumes", &v);
        for (size_t i = 0; i < x->nargs; i++) {
            if (!*x->args[i])
                return berth_error_make_status(err, EINVAL, "VOLUME specified can not be empty");
            json_object_set_new(v, x->args[i], json_object());
        }
    } else if (strcmp(kw, "STOPSIGNAL") == 0) {
        json_object_set_new(cfg, "StopSignal", json_string(x->nargs ? x->args[0] : ""));
    } else if (strcmp(kw, "MAINTAINER") == 0) {
        json_object_set_new(ss->doc, "author", json_string(x->nargs ? x->args[0] : ""));
    } else if (strcmp(kw, "ONBUILD") == 0) {
        json_t *ob = json_object_get(cfg, "OnBuild");
        if (!json_is_array(ob)) {
            ob = json_array();
            json_object_set_new(cfg, "OnBuild", ob);
        }
        json_array_append_new(ob, json_string(x->nargs ? x->args[0] : ""));
    } else if (strcmp(kw, "HEALTHCHECK") == 0) {
        json_t *hc = json_object();
        if (x->nargs && strcmp(x->args[0], "NONE") == 0) {
            json_object_set_new(hc, "Test", json_pack("[s]", "NONE"));
        } else {
            json_t *t = json_array();
            if (x->json_form) {
                json_array_append_new(t, json_string("CMD"));
                for (size_t i = 1; i < x->nargs; i++)
                    json_array_append_new(t, json_string(x->args[i]));
            } else {
                json_array_append_new(t, json_string("CMD-SHELL"));
                json_array_append_new(t, json_string(x->nargs > 1 ? x->args[1] : ""));
            }
            json_object_set_new(hc, "Test", t);
            static const struct {
                const char *flag, *key;
            } durs[] = {{"interval", "Interval"},
                        {"timeout", "Timeout"},
                        {"start-period", "StartPeriod"},
                        {"start-interval", "StartInterval"}};
            for (size_t i = 0; i < 4; i++) {
                const char *v = cf_flag_get(x, durs[i].flag);
                int64_t ns = 0;
                if (v && cf_parse_duration(v, &ns, err) < 0) {
                    json_decref(hc);
                    return -1;
                }
                if (v)
                    json_object_set_new(hc, durs[i].key, json_integer(ns));
            }
            const char *r = cf_flag_get(x, "retries");
            if (r)
                json_object_set_new(hc, "Retries", json_integer(strtoll(r, NULL, 10)));
        }
        json_object_set_new(cfg, "Healthcheck", hc);
    } else {
        return berth_error_make_status(err, EINVAL, "unknown instruction %s", kw);
    }
    bld_history_add(ss->doc, history, true, b->o->timestamp);
    cleanup_free char *key = bld_cache_key(ss->key, history, NULL);
    if (b->o->layers) {
        /* metadata steps have nothing to reuse, but say so as buildah does */
        bool found = false;
        cleanup_free char *unused = NULL;
        if (!b->o->no_cache && bld_cache_lookup(b->cache_dir, key, &found, &unused, err) < 0)
            return -1;
        if (found)
            say(b, "--> Using cache %s\n", key);
        else if (bld_cache_store(b->cache_dir, key, NULL, err) < 0)
            return -1;
    }
    free(ss->key);
    ss->key = steal_pointer(&key);
    remember_key(b, ss->key);
    return 0;
}

static int exec_instruction(struct bctx *b, size_t stage, struct sstate *ss,
                            const struct cf_instruction *in, berth_error_t *err)
{
    cleanup_cf_instruction struct cf_instruction *x = NULL;
    if (stage_env_expand_instruction(&ss->se, in, &x, err) < 0)
        return -1;
    cleanup_free char *text = inst_text(x);
    int rc;
    if (strcmp(x->keyword, "COPY") == 0 || strcmp(x->keyword, "ADD") == 0)
        rc = do_copy(b, stage, ss, x, text, err);
    else if (strcmp(x->keyword, "RUN") == 0)
        rc = do_run(b, stage, ss, x, err);
    else
        rc = do_meta(b, ss, in, x, text, err);
    if (rc < 0)
        return berth_error_wrap(err, "%s:%d: %s", b->cf->filename, in->start_line, in->keyword);
    return 0;
}

/* ---- stages ---- */

static bool refs_stage(const struct cf_instruction *in, const struct cf_stage *st)
{
    size_t n = 0;
    const char **v = cf_flag_get_all(in, "from", &n);
    bool r = false;
    char idx[32];
    snprintf(idx, sizeof(idx), "%zu", st->index);
    for (size_t i = 0; i < n; i++)
        if ((st->name && strcasecmp(v[i], st->name) == 0) || strcmp(v[i], idx) == 0 ||
            strchr(v[i], '$'))
            r = true;
    free(v);
    const char **m = cf_flag_get_all(in, "mount", &n);
    for (size_t i = 0; i < n; i++) {
        const char *f = strstr(m[i], "from=");
        if (f &&
            (strchr(f, '$') || (st->name && strncasecmp(f + 5, st->name, strlen(st->name)) == 0) ||
             strncmp(f + 5, idx, strlen(idx)) == 0))
            r = true;
    }
    free(m);
    return r;
}

/* Marks the stages the target needs (its base chain and every --from it uses). */
static void mark_needed(const struct bctx *b, size_t t, bool *need)
{
    if (need[t])
        return;
    need[t] = true;
    const struct cf_stage *st = &b->st->stages[t];
    for (size_t j = 0; j < t; j++) {
        const struct cf_stage *o = &b->st->stages[j];
        bool r = (o->name && strcasecmp(st->base, o->name) == 0) || strchr(st->base, '$');
        for (size_t i = st->first; i < st->end && !r; i++) {
            const struct cf_instruction *in = &b->cf->insts[i];
            r = refs_stage(in, o) || (in->onbuild_inner && refs_stage(in->onbuild_inner, o));
        }
        if (r)
            mark_needed(b, j, need);
    }
}

static int run_onbuild(struct bctx *b, size_t stage, struct sstate *ss, berth_error_t *err)
{
    json_t *cfg = bld_exec_config(ss->doc);
    json_t *ob = json_object_get(cfg, "OnBuild");
    if (!json_is_array(ob) || json_array_size(ob) == 0) {
        json_object_del(cfg, "OnBuild");
        return 0;
    }
    json_incref(ob);
    json_object_del(cfg, "OnBuild");
    size_t i;
    json_t *t;
    int rc = 0;
    json_array_foreach(ob, i, t)
    {
        const char *s = json_string_value(t);
        if (!s)
            continue;
        say(b, "ONBUILD %s\n", s);
        cleanup_containerfile struct containerfile *cf = NULL;
        if (containerfile_parse(s, strlen(s), "ONBUILD trigger", &cf, err) < 0) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < cf->n && rc == 0; k++) {
            const char *kw = cf->insts[k].keyword;
            if (!strcmp(kw, "FROM") || !strcmp(kw, "ONBUILD") || !strcmp(kw, "MAINTAINER")) {
                rc = berth_error_make_status(err, EINVAL,
                                             "%s isn't allowed as an ONBUILD "
                                             "trigger",
                                             kw);
                break;
            }
            rc = exec_instruction(b, stage, ss, &cf->insts[k], err);
        }
        if (rc < 0)
            break;
    }
    json_decref(ob);
    return rc;
}

/* FROM an image the store does not have: pulled from its registry (as podman build does). */
static int pull_base(struct bctx *b, const char *base, storage_image_t **img, berth_error_t *err)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse_normalized(base, &r, err) < 0)
        return -1;
    cleanup_free char *name = image_ref_string(r);
    if (r->domain && strcmp(r->domain, "localhost") == 0)
        return berth_error_make_status(err, ENOENT, "no image \"%s\" in the local store", name);
    cleanup_free char *src = xasprintf("docker://%s", name);
    cleanup_free char *dst = xasprintf("containers-storage:%s", name);
    say(b, "Pulling %s\n", name);
    struct system_context dsys = {
        .store = b->s, .tls_verify = -1, .retry_times = -1, .retry_delay_ms = -1};
    /* a base image passes the same signature policy as `berth pull` */
    cleanup_policy struct policy *policy = NULL;
    if (policy_load_default(b->o->policy_path, &policy, err) < 0)
        return berth_error_wrap(err, "pull %s", src);
    struct copy_options co = {
        .policy = policy,
        .src_sys = b->o->cache_sys,
        .dst_sys = &dsys,
        .quiet = b->o->quiet,
        .progress_out = b->out,
        .remove_signatures = true, /* a base image's signatures are of no use to the build */
    };
    struct copy_result res = {0};
    int rc = copy_image_refs(src, dst, &co, &res, err);
    copy_result_clear(&res);
    if (rc < 0)
        return berth_error_wrap(err, "not in the local store; pull %s", src);
    return storage_image_lookup(b->s, name, img, err);
}

static int build_stage(struct bctx *b, size_t si, berth_error_t *err)
{
    const struct cf_stage *st = &b->st->stages[si];
    const struct cf_instruction *from = &b->cf->insts[st->from];
    struct sstate ss = {.last_layer_hist = -1, .stage_rw = {.root_fd = -1}};
    int rc = 0;
    cleanup_free char *base = NULL;
    if (build_args_expand_global(b->ba, st->base, &base, err) < 0)
        return berth_error_wrap(err, "%s:%d: FROM", b->cf->filename, from->start_line);
    if (st->platform) {
        /* FROM --platform: only this machine's platform can run RUN steps */
        cleanup_free char *pl = NULL;
        cleanup_image_platform image_platform_t *want = NULL;
        cleanup_image_platform image_platform_t *host = image_platform_host();
        if (build_args_expand_global(b->ba, st->platform, &pl, err) < 0 ||
            image_platform_parse(pl, &want, err) < 0)
            return berth_error_wrap(err, "%s:%d: FROM --platform", b->cf->filename,
                                    from->start_line);
        image_platform_normalize(want);
        if (!image_platform_match(want, host)) {
            cleanup_free char *h = image_platform_string(host);
            return berth_error_make_status(err, ENOTSUP,
                                           "%s:%d: FROM --platform=%s: only this machine's "
                                           "platform (%s) can be built",
                                           b->cf->filename, from->start_line, pl, h);
        }
    }
    /* as buildah: steps numbered per stage, "[stage/stages] " when there are several */
    char prefix[48] = "";
    if (b->st->n > 1)
        snprintf(prefix, sizeof(prefix), "[%zu/%zu] ", si + 1, b->st->n);
    size_t nstage = 1 + st->end - st->first, k = 1;
    b->step++;
    say(b, "%sSTEP %zu/%zu: %s\n", prefix, k, nstage, from->original);
    const struct cf_stage *prev = cf_stages_find(b->st, base);
    if (prev && prev->index < si && prev->name && strcasecmp(prev->name, base) == 0) {
        struct stage_result *r = &b->res[prev->index];
        ss.doc = json_deep_copy(r->doc);
        ss.top = r->top ? xstrdup(r->top) : NULL;
        ss.key = xstrdup(r->key);
    } else if (strcasecmp(base, "scratch") == 0) {
        ss.doc = bld_config_scratch();
        stage_key_base(b, "scratch", &ss.key);
    } else {
        cleanup_storage_image storage_image_t *img = NULL;
        if (storage_image_lookup(b->s, base, &img, err) < 0) {
            if (berth_error_status(*err) != ENOENT || b->o->pull_never)
                return berth_error_wrap(err, "%s:%d: FROM %s", b->cf->filename, from->start_line,
                                        base);
            berth_error_release(err);
            if (pull_base(b, base, &img, err) < 0)
                return berth_error_wrap(err, "%s:%d: FROM %s", b->cf->filename, from->start_line,
                                        base);
        }
        if (bld_config_from_image(b->s, img->id, &ss.doc, err) < 0)
            return -1;
        ss.top = img->top_layer ? xstrdup(img->top_layer) : NULL;
        cleanup_free char *what = xasprintf("image:%s", img->id);
        stage_key_base(b, what, &ss.key);
    }
    json_t *cfg = bld_exec_config(ss.doc);
    /* as docker and buildah: an image without PATH gets the default one */
    bool has_path = false;
    json_t *pe = json_object_get(cfg, "Env");
    size_t pi;
    json_t *pv;
    json_array_foreach(pe, pi, pv)
    {
        const char *str = json_string_value(pv);
        if (str && strncmp(str, "PATH=", 5) == 0)
            has_path = true;
    }
    if (!has_path) {
        if (!json_is_array(pe)) {
            pe = json_array();
            json_object_set_new(cfg, "Env", pe);
        }
        json_array_insert_new(
            pe, 0,
            json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    }
    cleanup_strv char **env = NULL;
    json_t *je = json_object_get(cfg, "Env");
    berth_error_t e2 = NULL;
    if (json_is_array(je) && json_to_strv(je, "Env", &env, &e2) < 0)
        berth_error_release(&e2);
    size_t ne = 0;
    while (env && env[ne])
        ne++;
    stage_env_init(&ss.se, b->ba, (const char *const *)env, ne);
    rc = run_onbuild(b, si, &ss, err);
    for (size_t i = st->first; i < st->end && rc == 0; i++) {
        const struct cf_instruction *in = &b->cf->insts[i];
        b->step++;
        say(b, "%sSTEP %zu/%zu: %s\n", prefix, ++k, nstage, in->original);
        rc = exec_instruction(b, si, &ss, in, err);
    }
    if (rc == 0)
        rc = stage_rw_commit(b, &ss, err);
    if (ss.stage_rw_open)
        bld_rw_abort(b->s, &ss.stage_rw);
    stage_env_clear(&ss.se);
    if (rc < 0) {
        json_decref(ss.doc);
        free(ss.top);
        free(ss.key);
        return -1;
    }
    struct stage_result *r = &b->res[si];
    r->built = true;
    r->doc = ss.doc;
    r->top = ss.top;
    r->key = ss.key;
    return 0;
}

int builder_build(storage_store_t *s, const struct builder_options *o, char **image_id,
                  berth_error_t *err)
{
    struct bctx b = {.s = s, .o = o, .ctx_fd = -1, .out = o->progress ? o->progress : stderr};
    int rc = -1;
    bool *need = NULL;
    /* cleanup variables live here: the gotos below jump over later declarations */
    cleanup_free char *top = NULL, *ktext = NULL, *fkey = NULL;
    cleanup_strv char **unused = NULL;
    cleanup_json json_t *ann = NULL;
    if (containerfile_parse_file(o->containerfile, &b.cf, err) < 0)
        return -1;
    for (size_t i = 0; i < b.cf->nwarnings; i++)
        log_warn("%s", b.cf->warnings[i]);
    if (containerfile_stages(b.cf, &b.st, err) < 0)
        goto out;
    if (build_args_new((const char *const *)o->build_args, o->platform, NULL, &b.ba, err) < 0)
        goto out;
    for (size_t i = 0; i < b.st->nglobal_args; i++)
        if (build_args_apply_global(b.ba, &b.cf->insts[b.st->global_args[i]], err) < 0)
            goto out;
    b.ctx_fd = open(o->context, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b.ctx_fd < 0) {
        berth_error_make(err, errno, "build context \"%s\"", o->context);
        goto out;
    }
    if (ignore_load(b.ctx_fd, strcmp(o->containerfile, "-") ? o->containerfile : NULL, &b.ign, NULL,
                    err) < 0)
        goto out;
    b.cache_dir = fs_join(storage_store_root(s), "build-cache");
    if (fs_mkdir_p(b.cache_dir, 0700, err) < 0)
        goto out;
    bld_cleanup_stale(s, b.cache_dir);
    b.memo = bld_memo_open(b.cache_dir);
    for (char **cf = o->cache_from; cf && *cf; cf++)
        if (bld_cache_import(s, b.cache_dir, *cf, o->cache_sys, err) < 0)
            goto out;
    size_t target = b.st->n - 1;
    if (o->target) {
        const struct cf_stage *t = cf_stages_find(b.st, o->target);
        if (!t) {
            berth_error_make_status(err, ENOENT, "--target %s: no such stage in %s", o->target,
                                    b.cf->filename);
            goto out;
        }
        target = t->index;
    }
    need = xcalloc(b.st->n, sizeof(bool));
    mark_needed(&b, target, need);
    b.res = xcalloc(b.st->n, sizeof(*b.res));
    for (size_t i = 0; i <= target; i++) {
        if (!need[i])
            continue;
        if (build_stage(&b, i, err) < 0)
            goto out;
    }
    struct stage_result *fin = &b.res[target];
    top = fin->top ? xstrdup(fin->top) : NULL;
    if (o->squash && top) {
        cleanup_storage_layer storage_layer_t *l = NULL;
        if (bld_squash(s, top, o->timestamp, &l, err) < 0)
            goto out;
        free(top);
        top = xstrdup(l->id);
        json_t *h = json_object_get(fin->doc, "history");
        /* one layer now: mark every earlier entry empty except the last */
        size_t i;
        json_t *e;
        json_array_foreach(h, i, e)
        {
            if (i + 1 < json_array_size(h))
                json_object_set_new(e, "empty_layer", json_true());
            else
                json_object_del(e, "empty_layer");
        }
    }
    char **names = NULL;
    size_t nn = 0;
    for (char **t = o->tags; t && *t; t++) {
        char *n = NULL;
        if (bld_local_name(*t, &n, err) < 0) {
            for (size_t k = 0; k < nn; k++)
                free(names[k]);
            free(names);
            goto out;
        }
        names = xreallocarray(names, nn + 2, sizeof(char *));
        names[nn++] = n;
        names[nn] = NULL;
    }
    say(&b, "COMMIT%s%s\n", nn ? " " : "", nn ? names[0] : "");
    /* --label: on the final image (not part of any step, so not cached per step) */
    for (char **l = o->labels; l && *l; l++) {
        const char *eq = strchr(*l, '=');
        cleanup_free char *k = eq ? xstrndup(*l, (size_t)(eq - *l)) : xstrdup(*l);
        json_t *cfg = bld_exec_config(fin->doc), *lab = NULL;
        ensure_obj(cfg, "Labels", &lab);
        json_object_set_new(lab, k, json_string(eq ? eq + 1 : ""));
    }
    ann = json_object();
    for (char **a = o->annotations; a && *a; a++) {
        const char *eq = strchr(*a, '=');
        cleanup_free char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
        json_object_set_new(ann, k, json_string(eq ? eq + 1 : ""));
    }
    /* a fully cached build gives the image it gave before (as buildah --layers) */
    {
        cleanup_free char *lj = strv_join(o->labels, "\n"), *aj = strv_join(o->annotations, "\n");
        ktext = xasprintf("COMMIT format=%s squash=%d timestamp=%lld labels=%s annotations=%s",
                          o->docker_format ? "docker" : "oci", o->squash, (long long)o->timestamp,
                          lj, aj);
    }
    fkey = bld_cache_key(fin->key, ktext, NULL);
    int wr = 1;
    if (o->layers && !o->no_cache) {
        bool found = false;
        cleanup_free char *prev = NULL;
        cleanup_storage_image storage_image_t *img = NULL;
        berth_error_t e2 = NULL;
        if (bld_cache_lookup(b.cache_dir, fkey, &found, &prev, &e2) == 0 && found && prev &&
            storage_image_lookup(s, prev, &img, &e2) == 0 && strcmp(img->id, prev) == 0 &&
            (img->top_layer ? (top && strcmp(img->top_layer, top) == 0) : !top)) {
            wr = 0;
            for (size_t k = 0; k < nn && wr == 0; k++)
                wr = storage_image_add_name(s, img->id, names[k], err);
            if (wr == 0)
                *image_id = xstrdup(img->id);
        }
        berth_error_release(&e2);
    }
    if (wr > 0)
        wr = bld_image_write(s, fin->doc, top, o->docker_format, ann, o->timestamp, names, image_id,
                             err);
    if (wr == 0 && o->layers) {
        berth_error_t e2 = NULL;
        if (bld_cache_store(b.cache_dir, fkey, *image_id, &e2) < 0)
            berth_error_release(&e2);
    }
    for (size_t k = 0; k < nn; k++)
        free(names[k]);
    free(names);
    if (wr < 0)
        goto out;
    say(&b, "--> %.12s\n", *image_id);
    for (char **t = o->tags; t && *t; t++) {
        cleanup_free char *n = NULL;
        if (bld_local_name(*t, &n, err) == 0)
            say(&b, "Successfully tagged %s\n", n);
        else
            berth_error_release(err);
    }
    if (o->cache_to && bld_cache_export(s, b.cache_dir, o->cache_to, b.keys, o->cache_sys, err) < 0)
        goto out;
    unused = build_args_unused(b.ba);
    for (char **u = unused; u && *u; u++)
        log_warn("one or more build args were not consumed: %s", *u);
    rc = 0;
out:
    if (b.res) {
        for (size_t i = 0; i < b.st->n; i++) {
            json_decref(b.res[i].doc);
            free(b.res[i].top);
            free(b.res[i].key);
        }
        free(b.res);
    }
    free(need);
    for (size_t i = 0; i < b.nkeys; i++)
        free(b.keys[i]);
    free(b.keys);
    bld_memo_close(b.memo);
    if (b.ctx_fd >= 0)
        close(b.ctx_fd);
    ignore_free(b.ign);
    free(b.cache_dir);
    build_args_free(b.ba);
    cf_stages_free(b.st);
    containerfile_free(b.cf);
    return rc;
}
