/* Image config documents, working layers and image records for the builder. */
#include "build/build_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/imagespec.h"
#include "common/json.h"
#include "common/log.h"
#include "common/reference.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

json_t *bld_config_scratch(void)
{
    cleanup_image_platform image_platform_t *p = image_platform_host();
    json_t *doc = json_object();
    json_object_set_new(doc, "architecture", json_string(p->architecture));
    json_object_set_new(doc, "os", json_string(p->os ? p->os : "linux"));
    if (p->variant)
        json_object_set_new(doc, "variant", json_string(p->variant));
    json_object_set_new(doc, "config", json_object());
    json_t *rootfs = json_object();
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_object_set_new(rootfs, "diff_ids", json_array());
    json_object_set_new(doc, "rootfs", rootfs);
    json_object_set_new(doc, "history", json_array());
    return doc;
}

int bld_config_from_image(storage_store_t *s, const char *image_id, json_t **out,
                          berth_error_t *err)
{
    cleanup_free char *buf = NULL;
    size_t len = 0;
    if (storage_image_get_big_data(s, image_id, "config", IMAGE_CONFIG_MAX_SIZE, &buf, &len, err) <
        0)
        return berth_error_wrap(err, "image %.12s: read config", image_id);
    json_t *doc = NULL;
    if (json_parse_bounded(buf, len, IMAGE_CONFIG_MAX_SIZE, "config", &doc, err) < 0)
        return -1;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return berth_error_make_status(err, EINVAL, "image %.12s: config is not an object",
                                       image_id);
    }
    /* fields that belong to the old image, not the one being built */
    json_object_del(doc, "container");
    json_object_del(doc, "container_config");
    json_object_del(doc, "docker_version");
    if (!json_is_object(json_object_get(doc, "rootfs"))) {
        json_t *rootfs = json_object();
        json_object_set_new(rootfs, "type", json_string("layers"));
        json_object_set_new(rootfs, "diff_ids", json_array());
        json_object_set_new(doc, "rootfs", rootfs);
    }
    if (!json_is_array(json_object_get(doc, "history")))
        json_object_set_new(doc, "history", json_array());
    *out = doc;
    return 0;
}

json_t *bld_exec_config(json_t *doc)
{
    json_t *c = json_object_get(doc, "config");
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(doc, "config", c);
    }
    return c;
}

void bld_history_add(json_t *doc, const char *created_by, bool empty_layer, int64_t ts)
{
    json_t *h = json_object_get(doc, "history");
    if (!json_is_array(h)) {
        h = json_array();
        json_object_set_new(doc, "history", h);
    }
    json_t *e = json_object();
    cleanup_free char *t = image_time_format(ts);
    json_object_set_new(e, "created", json_string(t));
    json_object_set_new(e, "created_by", json_string(created_by));
    if (empty_layer)
        json_object_set_new(e, "empty_layer", json_true());
    json_array_append_new(h, e);
}

void bld_diff_id_add(json_t *doc, const char *diff_id)
{
    json_t *r = json_object_get(doc, "rootfs");
    json_t *ids = json_object_get(r, "diff_ids");
    if (!json_is_array(ids)) {
        ids = json_array();
        json_object_set_new(r, "diff_ids", ids);
    }
    json_array_append_new(ids, json_string(diff_id));
}

int bld_local_name(const char *s, char **out, berth_error_t *err)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(s, &r, err) < 0)
        return berth_error_wrap(err, "tag \"%s\"", s);
    if (!r->domain)
        r->domain = xstrdup("localhost");
    if (!r->tag && !r->digest && image_ref_set_tag(r, "latest", err) < 0)
        return -1;
    *out = image_ref_string(r);
    return 0;
}

int bld_image_write(storage_store_t *s, json_t *doc, const char *top_layer, bool docker,
                    const json_t *annotations, int64_t ts, char **names, char **image_id,
                    berth_error_t *err)
{
    storage_layer_t **chain = NULL;
    size_t n = 0;
    if (storage_layer_chain(s, top_layer, &chain, &n, err) < 0)
        return -1;
    /* diff_ids always reflect the real chain */
    json_t *ids = json_array();
    json_t *layers = json_array();
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!chain[i]->diff_digest) {
            rc = berth_error_make_status(err, EINVAL, "layer %s has no diff digest", chain[i]->id);
            break;
        }
        json_array_append_new(ids, json_string(chain[i]->diff_digest));
        json_t *d = json_object();
        json_object_set_new(
            d, "mediaType",
            json_string(docker ? MEDIA_TYPE_DOCKER_LAYER_TAR : MEDIA_TYPE_OCI_LAYER_TAR));
        json_object_set_new(d, "digest", json_string(chain[i]->diff_digest));
        json_object_set_new(d, "size", json_integer(chain[i]->diff_size));
        json_array_append_new(layers, d);
    }
    for (size_t i = 0; i < n; i++)
        storage_layer_free(chain[i]);
    free(chain);
    if (rc < 0) {
        json_decref(ids);
        json_decref(layers);
        return -1;
    }
    json_t *rootfs = json_object();
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_object_set_new(rootfs, "diff_ids", ids);
    json_object_set_new(doc, "rootfs", rootfs);
    cleanup_free char *created = image_time_format(ts);
    json_object_set_new(doc, "created", json_string(created));

    size_t cfg_len = 0;
    cleanup_free char *cfg = json_dump_canonical(doc, &cfg_len);
    cleanup_free char *cfg_digest = digest_buffer(DIGEST_SHA256, cfg, cfg_len);
    cleanup_json json_t *man = json_object();
    json_object_set_new(man, "schemaVersion", json_integer(2));
    json_object_set_new(man, "mediaType",
                        json_string(docker ? MEDIA_TYPE_DOCKER_MANIFEST : MEDIA_TYPE_OCI_MANIFEST));
    json_t *cd = json_object();
    json_object_set_new(cd, "mediaType",
                        json_string(docker ? MEDIA_TYPE_DOCKER_CONFIG : MEDIA_TYPE_OCI_CONFIG));
    json_object_set_new(cd, "digest", json_string(cfg_digest));
    json_object_set_new(cd, "size", json_integer((json_int_t)cfg_len));
    json_object_set_new(man, "config", cd);
    json_object_set_new(man, "layers", layers);
    /* annotations exist in OCI manifests only (docker's format has none) */
    if (!docker && json_is_object(annotations) && json_object_size(annotations))
        json_object_set_new(man, "annotations", json_deep_copy(annotations));
    size_t man_len = 0;
    cleanup_free char *mans = json_dump_canonical(man, &man_len);
    struct storage_image_options io = {
        .names = (const char *const *)names,
        .top_layer = top_layer,
        .manifest = mans,
        .manifest_len = man_len,
        .config = cfg,
        .config_len = cfg_len,
    };
    cleanup_storage_image storage_image_t *img = NULL;
    if (storage_image_create(s, &io, &img, err) < 0)
        return berth_error_wrap(err, "commit image");
    if (image_id)
        *image_id = xstrdup(img->id);
    return 0;
}

int bld_rw_open(storage_store_t *s, const char *parent, struct bld_rw *rw, berth_error_t *err)
{
    memset(rw, 0, sizeof(*rw));
    rw->root_fd = -1;
    cleanup_storage_layer storage_layer_t *l = NULL;
    /* named after this process, so a later build can tell a crashed build's layer */
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    cleanup_free char *id =
        xasprintf(BLD_RW_PREFIX "%d-%02x%02x%02x%02x%02x%02x%02x%02x", (int)getpid(), rnd[0],
                  rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    if (storage_layer_create_rw(s, id, parent, &l, err) < 0)
        return berth_error_wrap(err, "create a working layer");
    rw->id = xstrdup(l->id);
    if (storage_layer_mount(s, rw->id, &rw->dir, err) < 0) {
        bld_rw_abort(s, rw);
        return berth_error_wrap(err, "mount the working layer");
    }
    rw->root_fd = open(rw->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rw->root_fd < 0) {
        int e = errno;
        bld_rw_abort(s, rw);
        return berth_error_make(err, e, "open \"%s\"", rw->dir ? rw->dir : "");
    }
    return 0;
}

void bld_rw_abort(storage_store_t *s, struct bld_rw *rw)
{
    berth_error_t e = NULL;
    if (rw->root_fd >= 0)
        close(rw->root_fd);
    rw->root_fd = -1;
    if (rw->dir && storage_layer_unmount(s, rw->id, true, &e) < 0) {
        log_debug("unmount working layer: %s", berth_error_msg(e));
        berth_error_release(&e);
    }
    if (rw->id && storage_layer_remove(s, rw->id, &e) < 0) {
        log_warn("remove working layer %s: %s", rw->id, berth_error_msg(e));
        berth_error_release(&e);
    }
    free(rw->id);
    free(rw->dir);
    rw->id = rw->dir = NULL;
}

int bld_rw_commit(storage_store_t *s, struct bld_rw *rw, const char *parent, int64_t clamp,
                  storage_layer_t **out, berth_error_t *err)
{
    if (rw->root_fd >= 0)
        close(rw->root_fd);
    rw->root_fd = -1;
    if (rw->dir) {
        if (storage_layer_unmount(s, rw->id, true, err) < 0)
            return berth_error_wrap(err, "unmount the working layer");
        free(rw->dir);
        rw->dir = NULL;
    }
    struct storage_diff_options dopts = {.clamp_mtime = clamp};
    cleanup_reader berth_reader_t *tar = NULL;
    if (storage_layer_diff(s, rw->id, &dopts, &tar, err) < 0)
        return berth_error_wrap(err, "diff the working layer");
    struct storage_layer_options lo = {.parent = parent, .compressed_size = -1};
    if (storage_layer_create_from_tar(s, &lo, tar, out, err) < 0)
        return berth_error_wrap(err, "store the new layer");
    reader_close(tar);
    tar = NULL;
    bld_rw_abort(s, rw);
    return 0;
}

int bld_squash(storage_store_t *s, const char *top, int64_t clamp, storage_layer_t **out,
               berth_error_t *err)
{
    cleanup_free char *dir = NULL;
    if (storage_layer_mount(s, top, &dir, err) < 0)
        return -1;
    int rc = -1;
    cleanup_close int src_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct copy_plan plan = {.tmp_dir_fd = -1};
    berth_reader_t *tar = NULL;
    if (src_fd < 0) {
        berth_error_make(err, errno, "open \"%s\"", dir);
        goto out;
    }
    /* the merged filesystem, streamed as one base layer (ownership and modes kept) */
    struct copy_source cs = {.fd = src_fd};
    char *all[2] = {(char *)".", NULL};
    if (copy_plan_make(&cs, all, 1, "/", false, NULL, NULL, &plan, err) < 0)
        goto out;
    struct copy_owner own = {.chmod = -1};
    if (copy_plan_layer(&plan, -1, &own, clamp, &tar, err) < 0)
        goto out;
    struct storage_layer_options lo = {.compressed_size = -1};
    rc = storage_layer_create_from_tar(s, &lo, tar, out, err);
out:
    reader_close(tar);
    copy_plan_clear(&plan);
    berth_error_t e2 = NULL;
    if (storage_layer_unmount(s, top, false, &e2) < 0)
        berth_error_release(&e2);
    return rc < 0 ? berth_error_wrap(err, "squash") : 0;
}

/* Whether pid is a live berth process (a build that may still use its files). */
static bool build_alive(long pid)
{
    if (pid <= 0)
        return false;
    if (pid == (long)getpid())
        return true;
    if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
        return false;
    char path[64], comm[32] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool berth = fgets(comm, sizeof(comm), f) && strncmp(comm, "berth", 5) == 0;
    fclose(f);
    if (!berth)
        return false;
    /* a killed process not reaped yet (zombie) uses nothing any more */
    char st[512] = "";
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "re");
    if (f) {
        size_t n = fread(st, 1, sizeof(st) - 1, f);
        st[n] = 0;
        fclose(f);
        const char *rp = strrchr(st, ')');
        if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
            return false;
    }
    return true;
}

/* pid in "<prefix><pid>-..." or -1 */
static long pid_in(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0)
        return -1;
    char *end;
    long pid = strtol(name + pl, &end, 10);
    return end != name + pl && (*end == '-' || *end == 0) ? pid : -1;
}

void bld_cleanup_stale(storage_store_t *s, const char *cache_dir)
{
    storage_layer_t **layers = NULL;
    berth_error_t e = NULL;
    if (storage_layer_list(s, &layers, &e) == 0) {
        for (storage_layer_t **l = layers; *l; l++) {
            long pid = pid_in((*l)->id, BLD_RW_PREFIX);
            if (!(*l)->rw || pid < 0 || build_alive(pid))
                continue;
            log_info("removing working layer %s of an interrupted build", (*l)->id);
            if (storage_layer_unmount(s, (*l)->id, true, &e) < 0)
                berth_error_release(&e);
            if (storage_layer_remove(s, (*l)->id, &e) < 0) {
                log_warn("remove stale working layer %s: %s", (*l)->id, berth_error_msg(e));
                berth_error_release(&e);
            }
        }
        storage_layer_list_free(layers);
    }
    berth_error_release(&e);
    cleanup_free char *tmp = fs_join(cache_dir, "tmp");
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *de;
    static const char *const prefixes[] = {"heredoc-", "dl-", "empty-", "bind-", "cacheto-"};
    while ((de = readdir(d))) {
        for (size_t i = 0; i < 5; i++) {
            long pid = pid_in(de->d_name, prefixes[i]);
            if (pid < 0 || build_alive(pid))
                continue;
            if (fs_rm_rf_at(dirfd(d), de->d_name, &e) < 0)
                berth_error_release(&e);
        }
    }
    closedir(d);
}
