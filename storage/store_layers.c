/* The layer store: layer records, staging and commit, removal, prune, diff and mounts. */
#include "storage/store_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"

#include "storage/tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ layer records */

void storage_layer_free(storage_layer_t *l)
{
    if (!l)
        return;
    free(l->id);
    free(l->parent);
    free(l->diff_digest);
    free(l->compressed_digest);
    free(l);
}

void storage_layer_list_free(storage_layer_t **v)
{
    for (size_t i = 0; v && v[i]; i++)
        storage_layer_free(v[i]);
    free(v);
}

char *store_layer_record_path(storage_store_t *s, const char *id)
{
    return xasprintf("%s/layers/%s.json", s->root, id);
}

char *store_layer_split_path(storage_store_t *s, const char *id)
{
    return xasprintf("%s/layers/%s.tar-split.gz", s->root, id);
}

int store_layer_read(storage_store_t *s, const char *id, storage_layer_t **out, berth_error_t *err)
{
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *p = store_layer_record_path(s, id);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "layer \"%s\" not known", id);
    cleanup_json json_t *j = NULL;
    if (json_load_file_bounded(p, RECORD_MAX, &j, err) < 0)
        return berth_error_wrap(err, "layer \"%s\"", id);
    const char *rid = json_get_string(j, "id");
    if (!rid || strcmp(rid, id) != 0)
        return berth_error_make_status(err, EINVAL, "layer record \"%s\" is corrupt", p);
    storage_layer_t *l = xzalloc(sizeof(*l));
    l->id = xstrdup(id);
    l->parent = store_strdup_or_null(json_get_string(j, "parent"));
    l->diff_digest = store_strdup_or_null(json_get_string(j, "diff_digest"));
    l->compressed_digest = store_strdup_or_null(json_get_string(j, "compressed_digest"));
    if (!json_get_int(j, "diff_size", &l->diff_size))
        l->diff_size = -1;
    if (!json_get_int(j, "compressed_size", &l->compressed_size))
        l->compressed_size = -1;
    json_get_int(j, "created", &l->created);
    json_get_bool(j, "tar_split", &l->has_tar_split);
    json_get_bool(j, "rw", &l->rw);
    if (l->parent && storage_check_id(l->parent, NULL) < 0) {
        storage_layer_free(l);
        return berth_error_make_status(err, EINVAL, "layer record \"%s\" has a bad parent", p);
    }
    *out = l;
    return 0;
}

static int layer_write(storage_store_t *s, const storage_layer_t *l, berth_error_t *err)
{
    cleanup_json json_t *j = json_object();
    json_object_set_new(j, "id", json_string(l->id));
    if (l->parent)
        json_object_set_new(j, "parent", json_string(l->parent));
    if (l->diff_digest)
        json_object_set_new(j, "diff_digest", json_string(l->diff_digest));
    json_object_set_new(j, "diff_size", json_integer(l->diff_size));
    if (l->compressed_digest)
        json_object_set_new(j, "compressed_digest", json_string(l->compressed_digest));
    json_object_set_new(j, "compressed_size", json_integer(l->compressed_size));
    json_object_set_new(j, "created", json_integer(l->created));
    json_object_set_new(j, "tar_split", json_boolean(l->has_tar_split));
    json_object_set_new(j, "rw", json_boolean(l->rw));
    cleanup_free char *p = store_layer_record_path(s, l->id);
    return json_write_file_atomic(p, j, 0600, err);
}

int storage_layer_get(storage_store_t *s, const char *id, storage_layer_t **out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return store_layer_read(s, id, out, err);
}

int storage_layer_list(storage_store_t *s, storage_layer_t ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_free char *dir = xasprintf("%s/layers", s->root);
    char **names = NULL;
    if (store_list_names(dir, ".json", &names, err) < 0)
        return -1;
    size_t n = strv_len(names);
    storage_layer_t **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        berth_error_t e2 = NULL;
        if (store_layer_read(s, names[i], &v[k], &e2) == 0)
            k++;
        else
            log_warn("skipping layer: %s", berth_error_msg(e2));
        berth_error_release(&e2);
    }
    strv_free(names);
    *out = v;
    return 0;
}

/* A handle that stages or reuses layers takes a shared lease on <root>/layer-writers.lock and
 * keeps it until it is closed: a pull commits its layers one by one and creates the image that
 * uses them last, so layers no image uses yet may be in use by a live writer.  Pruning of
 * dangling layers checks the lease (see storage_layer_prune).  Called without the store lock;
 * a failure only makes pruning less careful, so it is not an error. */
static void writer_lease(storage_store_t *s)
{
    if (__atomic_load_n(&s->lease_fd, __ATOMIC_ACQUIRE) >= 0)
        return;
    cleanup_free char *p = xasprintf("%s/layer-writers.lock", s->root);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int none = -1;
    /* threads staging in parallel: the first one's lease is kept */
    if (flock(fd, LOCK_SH) < 0 || !__atomic_compare_exchange_n(&s->lease_fd, &none, fd, false,
                                                               __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        close(fd);
}

int storage_layer_chain(storage_store_t *s, const char *top, storage_layer_t ***out, size_t *n,
                        berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    storage_layer_t **v = xzalloc(sizeof(*v));
    size_t cnt = 0;
    for (const char *cur = top; cur;) {
        if (cnt >= STORAGE_LAYER_CHAIN_MAX) {
            storage_layer_list_free(v);
            return berth_error_make_status(err, ELOOP,
                                           "layer chain of %.12s: more than %d layers (a parent "
                                           "loop?)",
                                           top, STORAGE_LAYER_CHAIN_MAX);
        }
        storage_layer_t *l = NULL;
        if (store_layer_read(s, cur, &l, err) < 0) {
            storage_layer_list_free(v);
            return -1;
        }
        v = xreallocarray(v, cnt + 2, sizeof(*v));
        v[cnt++] = l;
        v[cnt] = NULL;
        cur = l->parent;
    }
    for (size_t i = 0; i < cnt / 2; i++) { /* base first */
        storage_layer_t *tmp = v[i];
        v[i] = v[cnt - 1 - i];
        v[cnt - 1 - i] = tmp;
    }
    *out = v;
    if (n)
        *n = cnt;
    return 0;
}

int storage_layer_find_by_digest(storage_store_t *s, const char *digest, storage_layer_t **out,
                                 berth_error_t *err)
{
    writer_lease(s);
    if (digest_validate(digest, err) < 0)
        return -1;
    storage_layer_t **all = NULL;
    if (storage_layer_list(s, &all, err) < 0)
        return -1;
    storage_layer_t *found = NULL;
    for (size_t i = 0; all[i]; i++) {
        if ((all[i]->diff_digest && strcmp(all[i]->diff_digest, digest) == 0) ||
            (all[i]->compressed_digest && strcmp(all[i]->compressed_digest, digest) == 0)) {
            if (!found || strcmp(all[i]->id, found->id) < 0)
                found = all[i];
        }
    }
    int ret = 0;
    if (found) {
        *out = found;
        for (size_t i = 0; all[i]; i++)
            if (all[i] != found)
                storage_layer_free(all[i]);
        free(all);
        return 0;
    }
    ret = berth_error_make_status(err, ENOENT, "no layer with digest %s", digest);
    storage_layer_list_free(all);
    return ret;
}

int storage_layer_set_compressed(storage_store_t *s, const char *id, const char *digest,
                                 int64_t size, berth_error_t *err)
{
    if (digest_validate(digest, err) < 0)
        return -1;
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (store_layer_read(s, id, &l, err) < 0)
        return -1;
    free(l->compressed_digest);
    l->compressed_digest = xstrdup(digest);
    l->compressed_size = size;
    return layer_write(s, l, err);
}

char *storage_chain_id(const char *parent_chain_id, const char *diff_digest)
{
    if (!parent_chain_id)
        return xstrdup(diff_digest);
    cleanup_free char *buf = xasprintf("%s %s", parent_chain_id, diff_digest);
    return digest_buffer(DIGEST_SHA256, buf, strlen(buf));
}

/* ------------------------------------------------------------------ layer creation */

struct staging {
    char *id;
    char *lock_path;
    int lock_fd;
};

static int staging_begin(storage_store_t *s, struct staging *st, berth_error_t *err)
{
    writer_lease(s);
    cleanup_free char *rnd = store_random_hex(8);
    st->id = xasprintf("stg-%d-%s", (int)getpid(), rnd);
    st->lock_path = xasprintf("%s/staging/%s.lock", s->root, st->id);
    cleanup_free char *tmp = xasprintf("%s.new", st->lock_path);
    st->lock_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (st->lock_fd < 0)
        return berth_error_make(err, errno, "create \"%s\"", tmp);
    /* lock before the name becomes visible to cleaners */
    if (flock(st->lock_fd, LOCK_EX) < 0 || rename(tmp, st->lock_path) < 0) {
        int e = errno;
        unlink(tmp);
        return berth_error_make(err, e, "create staging lock \"%s\"", st->lock_path);
    }
    return 0;
}

static void staging_end(storage_store_t *s, struct staging *st, bool remove_layer)
{
    if (remove_layer && st->id) {
        berth_error_t e = NULL;
        if (s->drv->remove(s->dstate, st->id, &e) < 0)
            log_warn("%s", berth_error_msg(e));
        berth_error_release(&e);
        cleanup_free char *sp = xasprintf("%s/staging/%s.tar-split.gz", s->root, st->id);
        unlink(sp);
    }
    if (st->lock_path)
        unlink(st->lock_path);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->id);
    free(st->lock_path);
}

static int syncfs_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = syncfs(fd);
    close(fd);
    return r;
}

struct storage_staged_layer {
    struct staging st;
    bool created; /* the driver has a layer under st.id */
    char *parent; /* what it was created on (NULL: nothing yet) */
    char *split;  /* tar-split record in staging/ */
    char *compressed_digest;
    int64_t compressed_size;
    struct storage_apply_result res;
};

void storage_staged_layer_discard(storage_store_t *s, storage_staged_layer_t *sl)
{
    if (!sl)
        return;
    staging_end(s, &sl->st, sl->created);
    free(sl->parent);
    free(sl->split);
    free(sl->compressed_digest);
    storage_apply_result_clear(&sl->res);
    free(sl);
}

const char *storage_staged_layer_diff_digest(const storage_staged_layer_t *sl)
{
    return sl->res.diff_digest;
}

bool storage_store_can_stage(storage_store_t *s)
{
    return s->drv->set_parent != NULL;
}

/* Applies the tar into a new staging layer created on `parent` (may be NULL) and syncs it; the
 * layer stays invisible (a staging id under a held lock) until commit_staged. */
static int stage_layer(storage_store_t *s, const struct storage_layer_options *opts,
                       const char *parent, berth_reader_t *tar, storage_staged_layer_t **out,
                       berth_error_t *err)
{
    storage_staged_layer_t *sl = xzalloc(sizeof(*sl));
    sl->st.lock_fd = -1;
    sl->compressed_digest = store_strdup_or_null(opts ? opts->compressed_digest : NULL);
    sl->compressed_size = opts && opts->compressed_digest ? opts->compressed_size : -1;
    berth_reader_t *plain = NULL;
    if (staging_begin(s, &sl->st, err) < 0)
        goto fail;
    if (storage_store_lock(s, false, err) < 0)
        goto fail;
    if (parent) {
        cleanup_storage_layer storage_layer_t *pl = NULL;
        if (store_layer_read(s, parent, &pl, err) < 0) {
            storage_store_unlock(s);
            goto fail;
        }
    }
    if (s->drv->create(s->dstate, sl->st.id, parent, err) < 0) {
        storage_store_unlock(s);
        goto fail;
    }
    sl->created = true;
    sl->parent = store_strdup_or_null(parent);
    storage_store_unlock(s);

    if (reader_decompress(tar, false, NULL, &plain, err) < 0)
        goto fail;
    sl->split = xasprintf("%s/staging/%s.tar-split.gz", s->root, sl->st.id);
    struct storage_apply_options ao = {.record_path = sl->split};
    if (s->drv->apply_diff(s->dstate, sl->st.id, plain, &ao, &sl->res, err) < 0) {
        berth_error_wrap(err, "apply layer");
        goto fail;
    }
    reader_close(plain);
    plain = NULL;
    if (opts && opts->expected_diff_digest &&
        !digest_equal(opts->expected_diff_digest, sl->res.diff_digest)) {
        berth_error_make_status(err, EINVAL, "layer has diff digest %s, expected %s",
                                sl->res.diff_digest, opts->expected_diff_digest);
        goto fail;
    }
    /* data on disk before the record that makes it visible */
    syncfs_dir(s->driver_home);
    *out = sl;
    return 0;
fail:
    reader_close(plain);
    storage_staged_layer_discard(s, sl);
    return -1;
}

int storage_layer_stage_from_tar(storage_store_t *s, const struct storage_layer_options *opts,
                                 berth_reader_t *tar, storage_staged_layer_t **out,
                                 berth_error_t *err)
{
    if (!storage_store_can_stage(s))
        return berth_error_make_status(
            err, ENOTSUP, "the %s driver applies a layer only on its parent", s->drv->name);
    return stage_layer(s, opts, NULL, tar, out, err);
}

int storage_layer_commit_staged(storage_store_t *s, storage_staged_layer_t *sl, const char *parent,
                                storage_layer_t **out, berth_error_t *err)
{
    if (!sl->created)
        return berth_error_make_status(err, EINVAL, "staged layer already committed");
    cleanup_free char *parent_chain = parent ? xasprintf("sha256:%s", parent) : NULL;
    cleanup_free char *chain = storage_chain_id(parent_chain, sl->res.diff_digest);
    const char *id = digest_hex(chain);
    if (storage_store_lock(s, true, err) < 0)
        return -1;
    cleanup_unlock storage_store_t *guard = s;
    storage_layer_t *existing = NULL;
    berth_error_t e2 = NULL;
    if (store_layer_read(s, id, &existing, &e2) == 0) {
        if (s->drv->exists(s->dstate, id)) {
            *out = existing; /* someone else committed it first: our copy goes with discard */
            return 1;
        }
        /* a record whose files are incomplete (left by an older berth's interrupted removal):
         * replace the files with ours */
        log_warn("layer %.12s is incomplete: replacing it", id);
        storage_layer_free(existing);
        if (storage_layer_remove_record_step(s, id, err) < 0)
            return -1;
    }
    berth_error_release(&e2);
    if (parent) {
        cleanup_storage_layer storage_layer_t *pl = NULL;
        if (store_layer_read(s, parent, &pl, err) < 0) /* removed while we were applying */
            return berth_error_wrap(err, "parent of the new layer");
    }
    bool same_parent =
        (!parent && !sl->parent) || (parent && sl->parent && strcmp(parent, sl->parent) == 0);
    if (!same_parent) {
        if (!s->drv->set_parent)
            return berth_error_make_status(err, ENOTSUP, "layer staged on another parent");
        if (s->drv->set_parent(s->dstate, sl->st.id, parent, err) < 0)
            return -1;
        free(sl->parent);
        sl->parent = store_strdup_or_null(parent);
    }
    /* orphan (possibly partly deleted) from a crash while we held no lock */
    s->drv->remove(s->dstate, id, &e2);
    berth_error_release(&e2);
    if (s->drv->rename(s->dstate, sl->st.id, id, err) < 0)
        return -1;
    sl->created = false;
    storage_layer_t *l = xzalloc(sizeof(*l));
    l->id = xstrdup(id);
    l->parent = store_strdup_or_null(parent);
    l->diff_digest = xstrdup(sl->res.diff_digest);
    l->diff_size = (int64_t)sl->res.diff_size;
    l->compressed_digest = store_strdup_or_null(sl->compressed_digest);
    l->compressed_size = sl->compressed_digest ? sl->compressed_size : -1;
    l->created = time(NULL);
    cleanup_free char *final_split = store_layer_split_path(s, id);
    l->has_tar_split = rename(sl->split, final_split) == 0;
    if (layer_write(s, l, err) < 0) {
        storage_layer_free(l);
        s->drv->remove(s->dstate, id, &e2);
        berth_error_release(&e2);
        unlink(final_split);
        return -1;
    }
    *out = l;
    return 0;
}

int storage_layer_create_from_tar(storage_store_t *s, const struct storage_layer_options *opts,
                                  berth_reader_t *tar, storage_layer_t **out, berth_error_t *err)
{
    const char *parent = opts ? opts->parent : NULL;
    storage_staged_layer_t *sl = NULL;
    if (stage_layer(s, opts, parent, tar, &sl, err) < 0)
        return -1;
    int r = storage_layer_commit_staged(s, sl, parent, out, err);
    storage_staged_layer_discard(s, sl);
    return r < 0 ? -1 : 0;
}

int storage_layer_create_rw(storage_store_t *s, const char *id, const char *parent,
                            storage_layer_t **out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_free char *rid = id ? xstrdup(id) : store_random_hex(32);
    if (storage_check_id(rid, err) < 0)
        return -1;
    cleanup_free char *rp = store_layer_record_path(s, rid);
    if (fs_exists(rp))
        return berth_error_make_status(err, EEXIST, "layer \"%s\" already exists", rid);
    if (parent) {
        cleanup_storage_layer storage_layer_t *pl = NULL;
        if (store_layer_read(s, parent, &pl, err) < 0)
            return -1;
    }
    if (s->drv->create(s->dstate, rid, parent, err) < 0)
        return -1;
    storage_layer_t *l = xzalloc(sizeof(*l));
    l->id = xstrdup(rid);
    l->parent = store_strdup_or_null(parent);
    l->diff_size = -1;
    l->compressed_size = -1;
    l->created = time(NULL);
    l->rw = true;
    if (layer_write(s, l, err) < 0) {
        berth_error_t e2 = NULL;
        s->drv->remove(s->dstate, rid, &e2);
        berth_error_release(&e2);
        storage_layer_free(l);
        return -1;
    }
    *out = l;
    return 0;
}

/* ------------------------------------------------------------------ usage graph */

void store_usage_free(struct store_usage *u)
{
    storage_layer_list_free(u->layers);
    storage_image_list_free(u->images);
    storage_container_list_free(u->containers);
}

int store_usage_load(storage_store_t *s, struct store_usage *u, berth_error_t *err)
{
    memset(u, 0, sizeof(*u));
    if (storage_layer_list(s, &u->layers, err) < 0 ||
        store_image_list_locked(s, &u->images, err) < 0 ||
        store_container_list_locked(s, &u->containers, err) < 0) {
        store_usage_free(u);
        return -1;
    }
    return 0;
}

storage_layer_t *store_usage_layer(struct store_usage *u, const char *id)
{
    for (size_t i = 0; id && u->layers[i]; i++)
        if (strcmp(u->layers[i]->id, id) == 0)
            return u->layers[i];
    return NULL;
}

/* Why `id` is in use (a static description), or NULL. Ignores image `skip_image`. */
const char *store_layer_user(struct store_usage *u, const char *id, const char *skip_image)
{
    for (size_t i = 0; u->layers[i]; i++)
        if (u->layers[i]->parent && strcmp(u->layers[i]->parent, id) == 0)
            return "another layer";
    for (size_t i = 0; u->images[i]; i++) {
        if (skip_image && strcmp(u->images[i]->id, skip_image) == 0)
            continue;
        for (const char *l = u->images[i]->top_layer; l;) {
            if (strcmp(l, id) == 0)
                return "an image";
            storage_layer_t *ly = store_usage_layer(u, l);
            l = ly ? ly->parent : NULL;
        }
    }
    for (size_t i = 0; u->containers[i]; i++)
        if (u->containers[i]->layer && strcmp(u->containers[i]->layer, id) == 0)
            return "a container";
    return NULL;
}

/* Removal is two steps so that `kill -9` between or inside them never leaves a record that
 * points at half-deleted files: first the record goes (durably), which makes the layer
 * invisible; then its files, which are an orphan directory from then on and are removed by
 * cleanup_incomplete() at the next open if we die before finishing. */
int storage_layer_remove_record_step(storage_store_t *s, const char *id, berth_error_t *err)
{
    cleanup_free char *rp = store_layer_record_path(s, id);
    cleanup_free char *sp = store_layer_split_path(s, id);
    if (unlink(rp) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "remove \"%s\"", rp);
    unlink(sp);
    cleanup_free char *dir = xasprintf("%s/layers", s->root);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return berth_error_make(err, e, "sync \"%s\"", dir);
    }
    close(fd);
    return 0;
}

static int layer_remove_record(storage_store_t *s, const char *id, berth_error_t *err)
{
    return storage_layer_remove_record_step(s, id, err);
}

static int layer_remove_files(storage_store_t *s, const char *id, berth_error_t *err)
{
    return s->drv->remove(s->dstate, id, err);
}

int store_layer_remove_locked(storage_store_t *s, const char *id, berth_error_t *err)
{
    int lfd = store_layer_lock(s, id, err);
    if (lfd < 0)
        return -1;
    berth_error_t e2 = NULL;
    s->drv->unmount(s->dstate, id, s->mounts_dir, true, &e2);
    berth_error_release(&e2);
    int r = layer_remove_record(s, id, err);
    if (r == 0)
        r = layer_remove_files(s, id, err);
    cleanup_free char *lp = xasprintf("%s/layers/%s.lock", s->root, id);
    unlink(lp);
    close(lfd);
    return r;
}

int storage_layer_remove(storage_store_t *s, const char *id, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (store_layer_read(s, id, &l, err) < 0)
        return -1;
    struct store_usage u;
    if (store_usage_load(s, &u, err) < 0)
        return -1;
    const char *user = store_layer_user(&u, id, NULL);
    store_usage_free(&u);
    if (user)
        return berth_error_make_status(err, EBUSY, "layer \"%s\" is used by %s", id, user);
    return store_layer_remove_locked(s, id, err);
}

int storage_layer_prune(storage_store_t *s, int64_t busy_min_age, char ***removed,
                        berth_error_t *err)
{
    *removed = xzalloc(sizeof(char *));
    LOCK_OR_FAIL(s, true, err);
    /* writers that started after this probe can commit or reuse layers only once we release the
     * store lock, so a probe that finds no writer stays true for the whole prune */
    bool busy = true;
    if (s->lease_fd < 0) {
        cleanup_free char *p = xasprintf("%s/layer-writers.lock", s->root);
        int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            busy = flock(fd, LOCK_EX | LOCK_NB) < 0;
            close(fd);
        }
    }
    int64_t now = time(NULL);
    for (bool again = true; again;) {
        again = false;
        struct store_usage u;
        if (store_usage_load(s, &u, err) < 0)
            return -1;
        int r = 0;
        for (size_t i = 0; u.layers[i] && r == 0; i++) {
            storage_layer_t *l = u.layers[i];
            if (l->rw || store_layer_user(&u, l->id, NULL))
                continue;
            if (busy && now - l->created < busy_min_age)
                continue;
            if (store_layer_remove_locked(s, l->id, err) < 0) {
                r = -1;
                break;
            }
            strv_add(removed, l->id);
            again = true;
        }
        store_usage_free(&u);
        if (r < 0)
            return -1;
    }
    return 0;
}

int storage_layer_diff(storage_store_t *s, const char *id, const struct storage_diff_options *opts,
                       berth_reader_t **out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (store_layer_read(s, id, &l, err) < 0)
        return -1;
    int64_t clamp = opts ? opts->clamp_mtime : -1;
    if (l->has_tar_split && !l->rw && clamp < 0) {
        cleanup_free char *sp = store_layer_split_path(s, id);
        cleanup_free char *dir = s->drv->layer_dir(s->dstate, id);
        if (tar_split_reader(sp, dir, l->diff_digest, l->diff_size, out, err) == 0)
            return 0;
        log_warn("layer %s: %s; generating a new tar", id, berth_error_msg(*err));
        berth_error_release(err);
    }
    struct storage_diff_options o = {.clamp_mtime = clamp};
    return s->drv->diff(s->dstate, id, &o, out, err);
}

int storage_layer_mount(storage_store_t *s, const char *id, char **dir, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_layer storage_layer_t *l = NULL;
    if (store_layer_read(s, id, &l, err) < 0)
        return -1;
    int lfd = store_layer_lock(s, id, err);
    if (lfd < 0)
        return -1;
    int r = s->drv->mount(s->dstate, id, s->mounts_dir, !l->rw, dir, err);
    close(lfd);
    return r;
}

int storage_layer_unmount(storage_store_t *s, const char *id, bool force, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    if (storage_check_id(id, err) < 0)
        return -1;
    int lfd = store_layer_lock(s, id, err);
    if (lfd < 0)
        return -1;
    int r = s->drv->unmount(s->dstate, id, s->mounts_dir, force, err);
    close(lfd);
    return r;
}

int storage_layer_disk_usage(storage_store_t *s, const char *id, uint64_t *bytes,
                             berth_error_t *err)
{
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *dir = s->drv->layer_dir(s->dstate, id);
    uint64_t disk = 0, app = 0;
    if (fs_tree_size(dir, &disk, &app, err) < 0)
        return -1;
    *bytes = disk;
    return 0;
}
