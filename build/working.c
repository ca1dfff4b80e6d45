/* Scripted builds: working containers (buildah from / run / copy / config / commit).
 *
 * A working container is a store container (storage/store.h) whose userdata directory holds
 * berth-build.json: {"image": id|null, "doc": <image config document being built>}.  Its rw
 * layer sits on the image's top layer; commit turns the rw layer's diff into a new layer. */
#include "build/builder.h"

#include "build/build_internal.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "common/log.h"
#include "common/path.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WC_FILE "berth-build.json"

static int wc_load(storage_store_t *s, const char *ctr, storage_container_t **c, json_t **meta,
                   char **path, berth_error_t *err)
{
    if (storage_container_get(s, ctr, c, err) < 0)
        return -1;
    cleanup_free char *ud = NULL, *rd = NULL;
    if (storage_container_dirs(s, (*c)->id, &ud, &rd, err) < 0)
        return -1;
    cleanup_free char *p = fs_join(ud, WC_FILE);
    if (!fs_exists(p))
        return berth_error_make_status(
            err, EINVAL, "container \"%s\" is not a working container (berth from)", ctr);
    if (json_load_file_bounded(p, IMAGE_CONFIG_MAX_SIZE, meta, err) < 0)
        return -1;
    if (!json_is_object(json_object_get(*meta, "doc")))
        return berth_error_make_status(err, EINVAL, "\"%s\": damaged %s", ctr, WC_FILE);
    if (path)
        *path = steal_pointer(&p);
    return 0;
}

bool working_is_container(storage_store_t *s, const char *ctr)
{
    storage_container_t *c = NULL;
    json_t *m = NULL;
    berth_error_t e = NULL;
    bool r = wc_load(s, ctr, &c, &m, NULL, &e) == 0;
    berth_error_release(&e);
    storage_container_free(c);
    json_decref(m);
    return r;
}

int working_from(storage_store_t *s, const char *image, const char *name_hint, char **name,
                 berth_error_t *err)
{
    cleanup_storage_image storage_image_t *img = NULL;
    cleanup_json json_t *doc = NULL;
    bool scratch = strcmp(image, "scratch") == 0;
    if (scratch) {
        doc = bld_config_scratch();
    } else {
        if (storage_image_lookup(s, image, &img, err) < 0)
            return berth_error_wrap(err, "from \"%s\"", image);
        if (bld_config_from_image(s, img->id, &doc, err) < 0)
            return -1;
    }
    cleanup_free char *base = NULL;
    if (name_hint) {
        base = xstrdup(name_hint);
    } else {
        const char *b = strrchr(image, '/');
        base = xstrdup(b ? b + 1 : image);
        char *c = strpbrk(base, ":@");
        if (c)
            *c = 0;
        char *n = xasprintf("%s-working-container", base);
        free(base);
        base = n;
    }
    cleanup_storage_container storage_container_t *c = NULL;
    for (int i = 0; i < 1000; i++) {
        cleanup_free char *try = i ? xasprintf("%s-%d", base, i) : xstrdup(base);
        struct storage_container_options co = {.name = try, .image_id = img ? img->id : NULL};
        berth_error_t e2 = NULL;
        if (storage_container_create(s, &co, &c, &e2) == 0)
            break;
        if (berth_error_status(e2) != EEXIST || name_hint) {
            *err = e2;
            return berth_error_wrap(err, "create working container");
        }
        berth_error_release(&e2);
    }
    if (!c)
        return berth_error_make_status(err, EEXIST, "no free name for \"%s\"", base);
    cleanup_free char *ud = NULL, *rd = NULL;
    if (storage_container_dirs(s, c->id, &ud, &rd, err) < 0)
        return -1;
    cleanup_json json_t *meta = json_object();
    json_object_set_new(meta, "image", img ? json_string(img->id) : json_null());
    json_object_set(meta, "doc", doc);
    cleanup_free char *p = fs_join(ud, WC_FILE);
    if (json_write_file_atomic(p, meta, 0600, err) < 0)
        return -1;
    *name = xstrdup(c->name);
    return 0;
}

static json_t *doc_cfg(json_t *meta)
{
    return bld_exec_config(json_object_get(meta, "doc"));
}

int working_exec(storage_store_t *s, const char *ctr, const struct working_exec_options *o,
                 int *status, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (wc_load(s, ctr, &c, &meta, NULL, err) < 0)
        return -1;
    json_t *cfg = doc_cfg(meta);
    cleanup_strv char **env = NULL;
    json_t *je = json_object_get(cfg, "Env");
    if (json_is_array(je) && json_to_strv(je, "Env", &env, err) < 0)
        return -1;
    size_t n = 0, ne = 0;
    while (env && env[n])
        n++;
    while (o->env && o->env[ne])
        ne++;
    char **all = xcalloc(n + ne + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        all[i] = env[i];
    for (size_t i = 0; i < ne; i++)
        all[n + i] = o->env[i];
    cleanup_free char *dir = NULL;
    if (storage_container_mount(s, c->id, &dir, err) < 0) {
        free(all);
        return -1;
    }
    const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
    struct bld_run r = {
        .argv = o->argv,
        .env = all,
        .workdir = o->workdir ? o->workdir : (wd && *wd ? wd : "/"),
        .user = o->user ? o->user : json_string_value(json_object_get(cfg, "User")),
        .network = o->network ? o->network : "none",
        .hostname = c->name,
        .terminal = o->terminal,
        .isolation = o->isolation,
        .runroot = storage_store_runroot(s),
    };
    int rc = bld_run(dir, &r, status, err);
    free(all);
    berth_error_t e2 = NULL;
    if (storage_container_unmount(s, c->id, false, &e2) < 0)
        berth_error_release(&e2);
    return rc;
}

int working_copy(storage_store_t *s, const char *ctr, char **srcs, const char *dest,
                 const char *chown, const char *chmod_s, bool extract, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (wc_load(s, ctr, &c, &meta, NULL, err) < 0)
        return -1;
    int chmod_v = -1;
    if (chmod_s) {
        char *end;
        long v = strtol(chmod_s, &end, 8);
        if (*end || v < 0 || v > 07777)
            return berth_error_make_status(err, EINVAL, "invalid --chmod %s", chmod_s);
        chmod_v = (int)v;
    }
    size_t n = 0;
    while (srcs[n])
        n++;
    char **abs = xcalloc(n + 1, sizeof(char *));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char real[PATH_MAX];
        if (!realpath(srcs[i], real))
            rc = berth_error_make(err, errno, "copy \"%s\"", srcs[i]);
        else
            abs[i] = xstrdup(real);
    }
    cleanup_close int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    json_t *cfg = doc_cfg(meta);
    const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
    cleanup_free char *d =
        dest[0] == '/' ? xstrdup(dest) : xasprintf("%s/%s", wd && *wd ? wd : "", dest);
    struct copy_plan plan = {.tmp_dir_fd = -1};
    struct copy_source cs = {.fd = root};
    cleanup_free char *dir = NULL;
    bool mounted = false;
    if (rc == 0)
        rc = copy_plan_make(&cs, abs, n, d, extract, NULL, NULL, &plan, err);
    if (rc == 0) {
        rc = storage_container_mount(s, c->id, &dir, err);
        mounted = rc == 0;
    }
    if (rc == 0) {
        cleanup_close int rfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct copy_owner own = {.chmod = chmod_v, .reset_owner = true};
        if (rfd < 0)
            rc = berth_error_make(err, errno, "open \"%s\"", dir);
        if (rc == 0 && chown) {
            own.set = true;
            rc = copy_parse_chown(rfd, chown, &own.uid, &own.gid, err);
        }
        copy_plan_detect_archives(&plan);
        if (rc == 0)
            rc = copy_plan_apply(&plan, rfd, &own, err);
    }
    if (mounted) {
        berth_error_t e2 = NULL;
        if (storage_container_unmount(s, c->id, false, &e2) < 0)
            berth_error_release(&e2);
    }
    copy_plan_clear(&plan);
    for (size_t i = 0; i < n; i++)
        free(abs[i]);
    free(abs);
    return rc;
}

static int kv_apply(json_t *obj, char **kvs, bool env_style, json_t *arr)
{
    for (char **p = kvs; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        size_t kl = eq ? (size_t)(eq - *p) : strlen(*p);
        cleanup_free char *k = xstrndup(*p, kl);
        bool remove = !eq && kl > 0 && k[kl - 1] == '-';
        if (remove)
            k[kl - 1] = 0;
        if (env_style) {
            size_t i;
            json_t *e;
            bool done = false;
            json_array_foreach(arr, i, e)
            {
                const char *s = json_string_value(e);
                if (s && strncmp(s, k, strlen(k)) == 0 && s[strlen(k)] == '=') {
                    if (remove)
                        json_array_remove(arr, i);
                    else
                        json_array_set_new(arr, i, json_string(*p));
                    done = true;
                    break;
                }
            }
            if (!done && !remove) {
                cleanup_free char *v = eq ? xstrdup(*p) : xasprintf("%s=", k);
                json_array_append_new(arr, json_string(v));
            }
        } else if (remove) {
            json_object_del(obj, k);
        } else {
            json_object_set_new(obj, k, json_string(eq ? eq + 1 : ""));
        }
    }
    return 0;
}

static json_t *cmd_value(const char *v, json_t *cfg)
{
    if (!*v)
        return NULL;
    json_t *j = NULL;
    berth_error_t e = NULL;
    if (v[0] == '[' && json_parse_bounded(v, strlen(v), 1 << 20, "command", &j, &e) == 0 &&
        json_is_array(j))
        return j;
    berth_error_release(&e);
    json_decref(j);
    json_t *sh = json_object_get(cfg, "Shell");
    json_t *a = json_is_array(sh) && json_array_size(sh) ? json_deep_copy(sh)
                                                         : json_pack("[s,s]", "/bin/sh", "-c");
    json_array_append_new(a, json_string(v));
    return a;
}

int working_config(storage_store_t *s, const char *ctr, const struct working_config_options *o,
                   berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    cleanup_free char *path = NULL;
    if (wc_load(s, ctr, &c, &meta, &path, err) < 0)
        return -1;
    json_t *doc = json_object_get(meta, "doc");
    json_t *cfg = bld_exec_config(doc);
    if (o->env) {
        json_t *env = json_object_get(cfg, "Env");
        if (!json_is_array(env)) {
            env = json_array();
            json_object_set_new(cfg, "Env", env);
        }
        kv_apply(NULL, o->env, true, env);
    }
    if (o->labels) {
        json_t *l = json_object_get(cfg, "Labels");
        if (!json_is_object(l)) {
            l = json_object();
            json_object_set_new(cfg, "Labels", l);
        }
        kv_apply(l, o->labels, false, NULL);
    }
    if (o->annotations) {
        json_t *a = json_object_get(meta, "annotations");
        if (!json_is_object(a)) {
            a = json_object();
            json_object_set_new(meta, "annotations", a);
        }
        kv_apply(a, o->annotations, false, NULL);
    }
    if (o->cmd) {
        json_t *v = cmd_value(o->cmd, cfg);
        if (v)
            json_object_set_new(cfg, "Cmd", v);
        else
            json_object_del(cfg, "Cmd");
    }
    if (o->entrypoint) {
        json_t *v = cmd_value(o->entrypoint, cfg);
        if (v)
            json_object_set_new(cfg, "Entrypoint", v);
        else
            json_object_del(cfg, "Entrypoint");
    }
    if (o->workingdir)
        json_object_set_new(cfg, "WorkingDir", json_string(o->workingdir));
    if (o->user)
        json_object_set_new(cfg, "User", json_string(o->user));
    if (o->stop_signal)
        json_object_set_new(cfg, "StopSignal", json_string(o->stop_signal));
    if (o->author)
        json_object_set_new(doc, "author", json_string(o->author));
    for (char **p = o->ports; p && *p; p++) {
        json_t *ports = json_object_get(cfg, "ExposedPorts");
        if (!json_is_object(ports)) {
            ports = json_object();
            json_object_set_new(cfg, "ExposedPorts", ports);
        }
        cleanup_free char *k = strchr(*p, '/') ? xstrdup(*p) : xasprintf("%s/tcp", *p);
        json_object_set_new(ports, k, json_object());
    }
    for (char **p = o->volumes; p && *p; p++) {
        json_t *v = json_object_get(cfg, "Volumes");
        if (!json_is_object(v)) {
            v = json_object();
            json_object_set_new(cfg, "Volumes", v);
        }
        json_object_set_new(v, *p, json_object());
    }
    return json_write_file_atomic(path, meta, 0600, err);
}

int working_commit(storage_store_t *s, const char *ctr, const char *name, bool docker_format,
                   int64_t timestamp, bool squash, char **image_id, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (wc_load(s, ctr, &c, &meta, NULL, err) < 0)
        return -1;
    cleanup_free char *parent = NULL;
    if (c->image_id) {
        cleanup_storage_image storage_image_t *img = NULL;
        if (storage_image_lookup(s, c->image_id, &img, err) < 0)
            return -1;
        parent = img->top_layer ? xstrdup(img->top_layer) : NULL;
    }
    struct storage_diff_options dopts = {.clamp_mtime = timestamp};
    cleanup_reader berth_reader_t *tar = NULL;
    if (storage_layer_diff(s, c->layer, &dopts, &tar, err) < 0)
        return berth_error_wrap(err, "commit \"%s\"", ctr);
    struct storage_layer_options lo = {.parent = parent, .compressed_size = -1};
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (storage_layer_create_from_tar(s, &lo, tar, &l, err) < 0)
        return berth_error_wrap(err, "commit \"%s\"", ctr);
    cleanup_free char *top = xstrdup(l->id);
    cleanup_json json_t *doc = json_deep_copy(json_object_get(meta, "doc"));
    bld_history_add(doc, "berth commit", false, timestamp);
    if (squash) {
        cleanup_storage_layer storage_layer_t *sq = NULL;
        if (bld_squash(s, top, timestamp, &sq, err) < 0)
            return -1;
        free(top);
        top = xstrdup(sq->id);
        json_t *h = json_object_get(doc, "history");
        size_t i;
        json_t *e;
        json_array_foreach(h, i, e)
        {
            if (i + 1 < json_array_size(h))
                json_object_set_new(e, "empty_layer", json_true());
        }
    }
    cleanup_free char *n = NULL;
    if (name && bld_local_name(name, &n, err) < 0)
        return -1;
    char *names[2] = {n, NULL};
    return bld_image_write(s, doc, top, docker_format, json_object_get(meta, "annotations"),
                           timestamp, n ? names : NULL, image_id, err);
}

int working_remove(storage_store_t *s, const char *ctr, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (wc_load(s, ctr, &c, &meta, NULL, err) < 0)
        return -1;
    return storage_container_remove(s, c->id, err);
}
