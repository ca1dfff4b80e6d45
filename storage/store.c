/* The layer store: records, locks, staging and commit.  See store.h for the layout. */
#include "storage/store.h"
#include "storage/tar.h"
#include "storage/userns.h"

#include "common/strutil.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECORD_MAX  (1024 * 1024)
#define BIGDATA_MAX (64 * 1024 * 1024)

struct storage_store {
    char *root;
    char *runroot;
    char *driver_home;
    char *mounts_dir;
    const struct storage_driver_ops *drv;
    void *dstate;
    int lock_fd;
    int lease_fd; /* shared "layer writer" lease, see writer_lease() */
    int depth;
    bool excl;
    bool rootless;
    /* flock does not exclude threads sharing lock_fd: this recursive mutex is held with the
     * store lock, so threads of one process (parallel layer staging) take turns as processes do */
    pthread_mutex_t tlock;
};

/* ------------------------------------------------------------------ small helpers */

static char *random_hex(size_t nbytes)
{
    unsigned char b[32];
    if (nbytes > sizeof(b))
        nbytes = sizeof(b);
    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srand((unsigned)(ts.tv_nsec ^ getpid()));
        for (size_t i = 0; i < nbytes; i++)
            b[i] = (unsigned char)rand();
    }
    char *out = xmalloc(nbytes * 2 + 1);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    return out;
}

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Sorted names in dir ending in suffix (suffix stripped); NULL-terminated. */
static int list_names(const char *dir, const char *suffix, char ***out, berth_error_t *err)
{
    char **v = xzalloc(sizeof(char *));
    cleanup_dir DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *out = v;
            return 0;
        }
        free(v);
        return berth_error_make(err, errno, "open \"%s\"", dir);
    }
    struct dirent *de;
    size_t sl = suffix ? strlen(suffix) : 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        size_t n = strlen(de->d_name);
        if (suffix && (n <= sl || strcmp(de->d_name + n - sl, suffix) != 0))
            continue;
        cleanup_free char *name = xstrndup(de->d_name, n - sl);
        strv_add(&v, name);
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ paths & locks */

int storage_default_paths(char **root, char **runroot, berth_error_t *err)
{
    if (!userns_is_rootless()) {
        *root = xstrdup("/var/lib/berth/storage");
        *runroot = xstrdup("/run/berth");
        return 0;
    }
    uid_t uid = userns_host_uid();
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg == '/')
        *root = xasprintf("%s/berth/storage", xdg);
    else if (home && *home == '/')
        *root = xasprintf("%s/.local/share/berth/storage", home);
    else
        return berth_error_make_status(err, EINVAL,
                                       "cannot find the storage root: set HOME or --root");
    const char *run = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (run && *run == '/' && stat(run, &st) == 0 && S_ISDIR(st.st_mode) && access(run, W_OK) == 0)
        *runroot = xasprintf("%s/berth", run);
    else
        *runroot = xasprintf("/tmp/berth-%u", (unsigned)uid);
    return 0;
}

int storage_store_lock(storage_store_t *s, bool exclusive, berth_error_t *err)
{
    pthread_mutex_lock(&s->tlock);
    if (s->depth > 0 && (s->excl || !exclusive)) {
        s->depth++;
        return 0;
    }
    int r;
    do
        r = flock(s->lock_fd, exclusive ? LOCK_EX : LOCK_SH);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        pthread_mutex_unlock(&s->tlock);
        return berth_error_make(err, e, "lock store \"%s\"", s->root);
    }
    if (exclusive)
        s->excl = true;
    s->depth++;
    return 0;
}

void storage_store_unlock(storage_store_t *s)
{
    if (s->depth <= 0)
        return;
    if (--s->depth == 0) {
        flock(s->lock_fd, LOCK_UN);
        s->excl = false;
    }
    pthread_mutex_unlock(&s->tlock);
}

/* Lock helper for scopes: `LOCKED(s, excl)` and unlock at the end. */
static void unlock_cleanup(storage_store_t **s)
{
    if (*s)
        storage_store_unlock(*s);
}
#define cleanup_unlock __attribute__((cleanup(unlock_cleanup)))

#define LOCK_OR_FAIL(s, excl, err)                                                                 \
    cleanup_unlock storage_store_t *lock_guard_ = NULL;                                            \
    if (storage_store_lock((s), (excl), (err)) < 0)                                                \
        return -1;                                                                                 \
    lock_guard_ = (s)

static int layer_lock(storage_store_t *s, const char *id, berth_error_t *err)
{
    cleanup_free char *p = xasprintf("%s/layers/%s.lock", s->root, id);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", p);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return berth_error_make(err, e, "lock layer \"%s\"", id);
        }
    }
    return fd;
}

const char *storage_store_root(const storage_store_t *s)
{
    return s->root;
}
const char *storage_store_runroot(const storage_store_t *s)
{
    return s->runroot;
}
const char *storage_store_driver_name(const storage_store_t *s)
{
    return s->drv->name;
}

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

static char *layer_record_path(storage_store_t *s, const char *id)
{
    return xasprintf("%s/layers/%s.json", s->root, id);
}

static char *layer_split_path(storage_store_t *s, const char *id)
{
    return xasprintf("%s/layers/%s.tar-split.gz", s->root, id);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static int layer_read(storage_store_t *s, const char *id, storage_layer_t **out, berth_error_t *err)
{
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *p = layer_record_path(s, id);
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
    l->parent = dup_or_null(json_get_string(j, "parent"));
    l->diff_digest = dup_or_null(json_get_string(j, "diff_digest"));
    l->compressed_digest = dup_or_null(json_get_string(j, "compressed_digest"));
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
    cleanup_free char *p = layer_record_path(s, l->id);
    return json_write_file_atomic(p, j, 0600, err);
}

int storage_layer_get(storage_store_t *s, const char *id, storage_layer_t **out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return layer_read(s, id, out, err);
}

int storage_layer_list(storage_store_t *s, storage_layer_t ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_free char *dir = xasprintf("%s/layers", s->root);
    char **names = NULL;
    if (list_names(dir, ".json", &names, err) < 0)
        return -1;
    size_t n = strv_len(names);
    storage_layer_t **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        berth_error_t e2 = NULL;
        if (layer_read(s, names[i], &v[k], &e2) == 0)
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
    if (layer_read(s, id, &l, err) < 0)
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

/* ------------------------------------------------------------------ open / cleanup */

static bool lock_is_stale(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    bool stale = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return stale;
}

/* Runs with the exclusive lock held: removes what crashed writers left behind. */
static void cleanup_incomplete(storage_store_t *s)
{
    berth_error_t e = NULL;
    cleanup_free char *staging = xasprintf("%s/staging", s->root);
    char **locks = NULL;
    if (list_names(staging, ".lock", &locks, &e) == 0) {
        for (char **p = locks; *p; p++) {
            cleanup_free char *lp = xasprintf("%s/%s.lock", staging, *p);
            if (!lock_is_stale(lp))
                continue;
            log_info("removing incomplete layer %s left by an interrupted command", *p);
            if (s->drv->remove(s->dstate, *p, &e) < 0) {
                log_warn("%s", berth_error_msg(e));
                berth_error_release(&e);
                continue;
            }
            cleanup_free char *sp = xasprintf("%s/%s.tar-split.gz", staging, *p);
            cleanup_free char *spt = xasprintf("%s/%s.tar-split.gz.tmp", staging, *p);
            unlink(sp);
            unlink(spt);
            unlink(lp);
        }
    }
    strv_free(locks);
    berth_error_release(&e);
    /* other staging files whose writer is gone: a tar-split record without its lock (the lock
     * was removed first), a lock that a writer killed before renaming it left as .lock.new */
    {
        cleanup_dir DIR *sd = opendir(staging);
        struct dirent *se;
        while (sd && (se = readdir(sd))) {
            const char *n = se->d_name;
            size_t len = strlen(n);
            if (n[0] == '.' || (len > 5 && strcmp(n + len - 5, ".lock") == 0))
                continue;
            cleanup_free char *path = xasprintf("%s/%s", staging, n);
            cleanup_free char *lp = NULL;
            if (len > 9 && strcmp(n + len - 9, ".lock.new") == 0) {
                /* its writer creates it, then locks it, then renames it: between the first two
                 * steps it is unlocked but not stale, so only a dead writer's counts (the name
                 * holds the writer's pid: stg-<pid>-<random>) */
                int pid = 0;
                if (sscanf(n, "stg-%d-", &pid) == 1 && pid > 0 &&
                    (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                    continue;
                lp = xstrdup(path);
            } else {
                const char *dot = strchr(n, '.');
                lp = xasprintf("%s/%.*s.lock", staging, (int)(dot ? dot - n : (ptrdiff_t)len), n);
            }
            if (!lock_is_stale(lp))
                continue;
            log_info("removing staging file %s left by an interrupted command", n);
            unlink(path);
        }
    }
    /* driver dirs without a record: a crash between rename and record write, or staging dirs
     * whose lock file never got created */
    char **dirs = NULL;
    if (list_names(s->driver_home, NULL, &dirs, &e) == 0) {
        for (char **p = dirs; *p; p++) {
            const char *n = *p;
            if (strcmp(n, "l") == 0 || strcmp(n, "empty") == 0 || strncmp(n, "probe-", 6) == 0)
                continue;
            if (strncmp(n, "stg-", 4) == 0) {
                cleanup_free char *lp = xasprintf("%s/%s.lock", staging, n);
                if (!lock_is_stale(lp))
                    continue;
            } else {
                cleanup_free char *rp = layer_record_path(s, n);
                if (fs_exists(rp))
                    continue;
            }
            log_info("removing orphaned layer directory %s", n);
            if (s->drv->remove(s->dstate, n, &e) < 0) {
                log_warn("%s", berth_error_msg(e));
                berth_error_release(&e);
            }
        }
    }
    strv_free(dirs);
    berth_error_release(&e);
    if (s->drv->cleanup && s->drv->cleanup(s->dstate, &e) < 0)
        log_warn("%s", berth_error_msg(e));
    berth_error_release(&e);
    /* temp files of atomic record writes (records are written under the exclusive lock, which
     * we hold: none of these is live) */
    const char *rec_dirs[] = {"layers", "images", "containers"};
    for (size_t k = 0; k < 3; k++) {
        cleanup_free char *dir = xasprintf("%s/%s", s->root, rec_dirs[k]);
        cleanup_dir DIR *rd = opendir(dir);
        struct dirent *re;
        while (rd && (re = readdir(rd))) {
            if (re->d_name[0] == '.')
                continue;
            if (strstr(re->d_name, ".tmp-")) {
                unlinkat(dirfd(rd), re->d_name, 0);
                continue;
            }
            if (k == 0 || re->d_type != DT_DIR)
                continue;
            /* one level down: images/<id>/x.tmp-NNN, containers/<id>/x.tmp-NNN */
            int sub = openat(dirfd(rd), re->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            DIR *sd = sub >= 0 ? fdopendir(sub) : NULL;
            struct dirent *se;
            while (sd && (se = readdir(sd)))
                if (strstr(se->d_name, ".tmp-"))
                    unlinkat(dirfd(sd), se->d_name, 0);
            if (sd)
                closedir(sd);
            else if (sub >= 0)
                close(sub);
        }
    }
    /* half-written image dirs */
    cleanup_free char *images = xasprintf("%s/images", s->root);
    cleanup_dir DIR *d = opendir(images);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, ".tmp-", 5) != 0)
            continue;
        cleanup_free char *p = xasprintf("%s/%s", images, de->d_name);
        fs_rm_rf(p, &e);
        berth_error_release(&e);
    }
}

static int choose_driver(storage_store_t *s, const char *wanted, berth_error_t *err)
{
    cleanup_free char *rec = xasprintf("%s/driver.json", s->root);
    cleanup_json json_t *j = NULL;
    const char *recorded = NULL;
    if (fs_exists(rec)) {
        if (json_load_file_bounded(rec, RECORD_MAX, &j, err) < 0)
            return -1;
        recorded = json_get_string(j, "driver");
    }
    const char *name = wanted;
    const struct storage_driver_ops *check = NULL;
    if (wanted && storage_driver_lookup(wanted, &check, err) < 0)
        return -1;
    if (recorded && wanted && strcmp(recorded, wanted) != 0) {
        cleanup_free char *ldir = xasprintf("%s/layers", s->root);
        char **names = NULL;
        if (list_names(ldir, ".json", &names, err) < 0)
            return -1;
        size_t n = strv_len(names);
        strv_free(names);
        if (n > 0)
            return berth_error_make_status(err, EINVAL,
                                           "store \"%s\" uses the \"%s\" driver and has layers: "
                                           "can't switch to \"%s\"",
                                           s->root, recorded, wanted);
    } else if (!name) {
        name = recorded;
    }
    cleanup_free char *probe_note = NULL;
    {
        /* a probe killed midway leaves probe-PID behind: we hold the exclusive lock, which
         * every probe runs under, so none of them is live */
        cleanup_free char *home = xasprintf("%s/overlay", s->root);
        storage_overlay_probe_cleanup(home);
        if (name && strcmp(name, "overlay") != 0)
            rmdir(home);
    }
    if (!name) {
        cleanup_free char *home = xasprintf("%s/overlay", s->root);
        if (fs_mkdir_p(home, 0700, err) < 0)
            return -1;
        char *why = NULL;
        if (storage_overlay_probe(home, s->rootless, &why)) {
            name = "overlay";
            probe_note = xstrdup("ok");
            rmdir(home);
        } else {
            log_warn("overlay is not usable here (%s); using the vfs driver, which copies every "
                     "layer",
                     why);
            name = "vfs";
            probe_note = why;
            rmdir(home);
        }
    }
    if (storage_driver_lookup(name, &s->drv, err) < 0)
        return -1;
    if (!recorded || strcmp(recorded, name) != 0) {
        cleanup_json json_t *o = json_object();
        json_object_set_new(o, "driver", json_string(name));
        if (probe_note)
            json_object_set_new(o, "overlay_probe", json_string(probe_note));
        if (json_write_file_atomic(rec, o, 0600, err) < 0)
            return -1;
    }
    return 0;
}

int storage_store_open(const struct storage_options *opts, storage_store_t **out,
                       berth_error_t *err)
{
    storage_store_t *s = xzalloc(sizeof(*s));
    s->lock_fd = -1;
    s->lease_fd = -1;
    {
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->tlock, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    s->rootless = userns_is_rootless();
    char *droot = NULL, *drun = NULL;
    if ((!opts || !opts->root || !opts->runroot) && storage_default_paths(&droot, &drun, err) < 0)
        goto fail;
    s->root = xstrdup(opts && opts->root ? opts->root : droot);
    s->runroot = xstrdup(opts && opts->runroot ? opts->runroot : drun);
    free(droot);
    free(drun);
    const char *subs[] = {"layers", "images", "containers", "staging"};
    for (size_t i = 0; i < 4; i++) {
        cleanup_free char *p = xasprintf("%s/%s", s->root, subs[i]);
        if (fs_mkdir_p(p, 0700, err) < 0)
            goto fail;
    }
    s->mounts_dir = xasprintf("%s/mounts", s->runroot);
    if (fs_mkdir_p(s->runroot, 0700, err) < 0)
        goto fail;
    {
        cleanup_free char *lp = xasprintf("%s/storage.lock", s->root);
        s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock_fd < 0) {
            berth_error_make(err, errno, "open \"%s\"", lp);
            goto fail;
        }
    }
    if (storage_store_lock(s, true, err) < 0)
        goto fail;
    if (choose_driver(s, opts ? opts->driver : NULL, err) < 0)
        goto fail_locked;
    s->driver_home = xasprintf("%s/%s", s->root, s->drv->name);
    if (s->drv->init(s->driver_home, s->rootless, &s->dstate, err) < 0)
        goto fail_locked;
    cleanup_incomplete(s);
    storage_store_unlock(s);
    *out = s;
    return 0;
fail_locked:
    storage_store_unlock(s);
fail:
    berth_error_wrap(err, "open storage");
    storage_store_close(s);
    return -1;
}

void storage_store_close(storage_store_t *s)
{
    if (!s)
        return;
    if (s->drv && s->dstate)
        s->drv->fini(s->dstate);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->lease_fd >= 0)
        close(s->lease_fd);
    free(s->root);
    free(s->runroot);
    free(s->driver_home);
    free(s->mounts_dir);
    pthread_mutex_destroy(&s->tlock);
    free(s);
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
    cleanup_free char *rnd = random_hex(8);
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

static int sync_dir(const char *dir)
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
    sl->compressed_digest = dup_or_null(opts ? opts->compressed_digest : NULL);
    sl->compressed_size = opts && opts->compressed_digest ? opts->compressed_size : -1;
    berth_reader_t *plain = NULL;
    if (staging_begin(s, &sl->st, err) < 0)
        goto fail;
    if (storage_store_lock(s, false, err) < 0)
        goto fail;
    if (parent) {
        cleanup_storage_layer storage_layer_t *pl = NULL;
        if (layer_read(s, parent, &pl, err) < 0) {
            storage_store_unlock(s);
            goto fail;
        }
    }
    if (s->drv->create(s->dstate, sl->st.id, parent, err) < 0) {
        storage_store_unlock(s);
        goto fail;
    }
    sl->created = true;
    sl->parent = dup_or_null(parent);
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
    sync_dir(s->driver_home);
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
    if (layer_read(s, id, &existing, &e2) == 0) {
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
        if (layer_read(s, parent, &pl, err) < 0) /* removed while we were applying */
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
        sl->parent = dup_or_null(parent);
    }
    /* orphan (possibly partly deleted) from a crash while we held no lock */
    s->drv->remove(s->dstate, id, &e2);
    berth_error_release(&e2);
    if (s->drv->rename(s->dstate, sl->st.id, id, err) < 0)
        return -1;
    sl->created = false;
    storage_layer_t *l = xzalloc(sizeof(*l));
    l->id = xstrdup(id);
    l->parent = dup_or_null(parent);
    l->diff_digest = xstrdup(sl->res.diff_digest);
    l->diff_size = (int64_t)sl->res.diff_size;
    l->compressed_digest = dup_or_null(sl->compressed_digest);
    l->compressed_size = sl->compressed_digest ? sl->compressed_size : -1;
    l->created = time(NULL);
    cleanup_free char *final_split = layer_split_path(s, id);
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
    cleanup_free char *rid = id ? xstrdup(id) : random_hex(32);
    if (storage_check_id(rid, err) < 0)
        return -1;
    cleanup_free char *rp = layer_record_path(s, rid);
    if (fs_exists(rp))
        return berth_error_make_status(err, EEXIST, "layer \"%s\" already exists", rid);
    if (parent) {
        cleanup_storage_layer storage_layer_t *pl = NULL;
        if (layer_read(s, parent, &pl, err) < 0)
            return -1;
    }
    if (s->drv->create(s->dstate, rid, parent, err) < 0)
        return -1;
    storage_layer_t *l = xzalloc(sizeof(*l));
    l->id = xstrdup(rid);
    l->parent = dup_or_null(parent);
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

struct usage {
    storage_layer_t **layers;
    storage_image_t **images;
    storage_container_t **containers;
};

static void usage_free(struct usage *u)
{
    storage_layer_list_free(u->layers);
    storage_image_list_free(u->images);
    storage_container_list_free(u->containers);
}

static int image_list_locked(storage_store_t *s, storage_image_t ***out, berth_error_t *err);
static int container_list_locked(storage_store_t *s, storage_container_t ***out,
                                 berth_error_t *err);

static int usage_load(storage_store_t *s, struct usage *u, berth_error_t *err)
{
    memset(u, 0, sizeof(*u));
    if (storage_layer_list(s, &u->layers, err) < 0 || image_list_locked(s, &u->images, err) < 0 ||
        container_list_locked(s, &u->containers, err) < 0) {
        usage_free(u);
        return -1;
    }
    return 0;
}

static storage_layer_t *usage_layer(struct usage *u, const char *id)
{
    for (size_t i = 0; id && u->layers[i]; i++)
        if (strcmp(u->layers[i]->id, id) == 0)
            return u->layers[i];
    return NULL;
}

/* Why `id` is in use (a static description), or NULL. Ignores image `skip_image`. */
static const char *layer_user(struct usage *u, const char *id, const char *skip_image)
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
            storage_layer_t *ly = usage_layer(u, l);
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
    cleanup_free char *rp = layer_record_path(s, id);
    cleanup_free char *sp = layer_split_path(s, id);
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

static int layer_remove_locked(storage_store_t *s, const char *id, berth_error_t *err)
{
    int lfd = layer_lock(s, id, err);
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
    if (layer_read(s, id, &l, err) < 0)
        return -1;
    struct usage u;
    if (usage_load(s, &u, err) < 0)
        return -1;
    const char *user = layer_user(&u, id, NULL);
    usage_free(&u);
    if (user)
        return berth_error_make_status(err, EBUSY, "layer \"%s\" is used by %s", id, user);
    return layer_remove_locked(s, id, err);
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
        struct usage u;
        if (usage_load(s, &u, err) < 0)
            return -1;
        int r = 0;
        for (size_t i = 0; u.layers[i] && r == 0; i++) {
            storage_layer_t *l = u.layers[i];
            if (l->rw || layer_user(&u, l->id, NULL))
                continue;
            if (busy && now - l->created < busy_min_age)
                continue;
            if (layer_remove_locked(s, l->id, err) < 0) {
                r = -1;
                break;
            }
            strv_add(removed, l->id);
            again = true;
        }
        usage_free(&u);
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
    if (layer_read(s, id, &l, err) < 0)
        return -1;
    int64_t clamp = opts ? opts->clamp_mtime : -1;
    if (l->has_tar_split && !l->rw && clamp < 0) {
        cleanup_free char *sp = layer_split_path(s, id);
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
    if (layer_read(s, id, &l, err) < 0)
        return -1;
    int lfd = layer_lock(s, id, err);
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
    int lfd = layer_lock(s, id, err);
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

/* ------------------------------------------------------------------ images */

void storage_image_free(storage_image_t *i)
{
    if (!i)
        return;
    free(i->id);
    strv_free(i->names);
    free(i->top_layer);
    free(i->digest);
    strv_free(i->big_data);
    free(i);
}

void storage_image_list_free(storage_image_t **v)
{
    for (size_t i = 0; v && v[i]; i++)
        storage_image_free(v[i]);
    free(v);
}

static int check_key(const char *key, berth_error_t *err)
{
    size_t n = key ? strlen(key) : 0;
    bool ok = n > 0 && n <= 128 && strcmp(key, "image.json") != 0 && key[0] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char c = key[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             strchr("_.:@+-", c);
    }
    return ok ? 0
              : berth_error_make_status(err, EINVAL, "invalid big-data key \"%s\"", key ? key : "");
}

static int image_read(storage_store_t *s, const char *id, storage_image_t **out, berth_error_t *err)
{
    if (!is_hex64(id))
        return berth_error_make_status(err, ENOENT, "image \"%s\" not known", id);
    cleanup_free char *p = xasprintf("%s/images/%s/image.json", s->root, id);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "image \"%s\" not known", id);
    cleanup_json json_t *j = NULL;
    if (json_load_file_bounded(p, RECORD_MAX, &j, err) < 0)
        return berth_error_wrap(err, "image \"%s\"", id);
    const char *rid = json_get_string(j, "id");
    if (!rid || strcmp(rid, id) != 0)
        return berth_error_make_status(err, EINVAL, "image record \"%s\" is corrupt", p);
    storage_image_t *i = xzalloc(sizeof(*i));
    i->id = xstrdup(id);
    i->top_layer = dup_or_null(json_get_string(j, "top_layer"));
    i->digest = dup_or_null(json_get_string(j, "digest"));
    json_get_int(j, "created", &i->created);
    json_t *names = json_get_array(j, "names");
    json_t *bd = json_get_array(j, "big_data");
    i->names = xzalloc(sizeof(char *));
    i->big_data = xzalloc(sizeof(char *));
    size_t k;
    json_t *v;
    json_array_foreach(names, k, v) if (json_is_string(v))
        strv_add(&i->names, json_string_value(v));
    json_array_foreach(bd, k, v) if (json_is_string(v))
        strv_add(&i->big_data, json_string_value(v));
    if (i->top_layer && storage_check_id(i->top_layer, NULL) < 0) {
        storage_image_free(i);
        return berth_error_make_status(err, EINVAL, "image record \"%s\" is corrupt", p);
    }
    *out = i;
    return 0;
}

static int image_write_at(const char *dir, const storage_image_t *i, berth_error_t *err)
{
    cleanup_json json_t *j = json_object();
    json_object_set_new(j, "id", json_string(i->id));
    json_object_set_new(j, "names", json_from_strv(i->names));
    if (i->top_layer)
        json_object_set_new(j, "top_layer", json_string(i->top_layer));
    if (i->digest)
        json_object_set_new(j, "digest", json_string(i->digest));
    json_object_set_new(j, "created", json_integer(i->created));
    json_object_set_new(j, "big_data", json_from_strv(i->big_data));
    cleanup_free char *p = xasprintf("%s/image.json", dir);
    return json_write_file_atomic(p, j, 0600, err);
}

static int image_write(storage_store_t *s, const storage_image_t *i, berth_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/images/%s", s->root, i->id);
    return image_write_at(dir, i, err);
}

static int image_list_locked(storage_store_t *s, storage_image_t ***out, berth_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/images", s->root);
    char **names = NULL;
    if (list_names(dir, NULL, &names, err) < 0)
        return -1;
    size_t n = strv_len(names);
    storage_image_t **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        berth_error_t e2 = NULL;
        if (image_read(s, names[i], &v[k], &e2) == 0)
            k++;
        else
            log_debug("skipping image: %s", berth_error_msg(e2));
        berth_error_release(&e2);
    }
    strv_free(names);
    *out = v;
    return 0;
}

int storage_image_list(storage_store_t *s, storage_image_t ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return image_list_locked(s, out, err);
}

/* Moves `name` to image `id`: removes it from every other image. */
static int take_name(storage_store_t *s, storage_image_t **all, const char *id, const char *name,
                     berth_error_t *err)
{
    for (size_t i = 0; all[i]; i++) {
        if (strcmp(all[i]->id, id) == 0)
            continue;
        if (strv_remove(all[i]->names, name) && image_write(s, all[i], err) < 0)
            return -1;
    }
    return 0;
}

static int write_big(const char *dir, const char *key, const void *data, size_t len,
                     berth_error_t *err)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, key);
    return fs_write_file_atomic(p, data, len, 0600, err);
}

int storage_image_create(storage_store_t *s, const struct storage_image_options *o,
                         storage_image_t **out, berth_error_t *err)
{
    if (!o || !o->manifest || !o->config)
        return berth_error_make_status(err, EINVAL, "image needs a manifest and a config");
    for (size_t i = 0; i < o->n_extra; i++)
        if (check_key(o->extra[i].key, err) < 0)
            return -1;
    cleanup_free char *cfg_digest = digest_buffer(DIGEST_SHA256, o->config, o->config_len);
    cleanup_free char *man_digest =
        o->digest ? xstrdup(o->digest) : digest_buffer(DIGEST_SHA256, o->manifest, o->manifest_len);
    if (digest_validate(man_digest, err) < 0)
        return -1;
    const char *id = digest_hex(cfg_digest);
    LOCK_OR_FAIL(s, true, err);
    if (o->top_layer) {
        cleanup_storage_layer storage_layer_t *l = NULL;
        if (layer_read(s, o->top_layer, &l, err) < 0)
            return berth_error_wrap(err, "image top layer");
    }
    storage_image_t **all = NULL;
    if (image_list_locked(s, &all, err) < 0)
        return -1;
    storage_image_t *img = NULL;
    int ret = -1;
    berth_error_t e2 = NULL;
    if (image_read(s, id, &img, &e2) == 0) {
        /* already there (another pull won): merge names */
        for (size_t i = 0; o->names && o->names[i]; i++) {
            if (take_name(s, all, id, o->names[i], err) < 0)
                goto out;
            if (!strv_contains(img->names, o->names[i]))
                strv_add(&img->names, o->names[i]);
        }
        if (image_write(s, img, err) < 0)
            goto out;
    } else {
        berth_error_release(&e2);
        cleanup_free char *rnd = random_hex(6);
        cleanup_free char *tmp = xasprintf("%s/images/.tmp-%s-%s", s->root, id, rnd);
        cleanup_free char *final = xasprintf("%s/images/%s", s->root, id);
        if (mkdir(tmp, 0700) < 0) {
            berth_error_make(err, errno, "create \"%s\"", tmp);
            goto out;
        }
        img = xzalloc(sizeof(*img));
        img->id = xstrdup(id);
        img->names = xzalloc(sizeof(char *));
        img->big_data = xzalloc(sizeof(char *));
        img->top_layer = dup_or_null(o->top_layer);
        img->digest = xstrdup(man_digest);
        img->created = time(NULL);
        if (write_big(tmp, "manifest", o->manifest, o->manifest_len, err) < 0 ||
            write_big(tmp, "config", o->config, o->config_len, err) < 0)
            goto fail_tmp;
        strv_add(&img->big_data, "manifest");
        strv_add(&img->big_data, "config");
        for (size_t i = 0; i < o->n_extra; i++) {
            if (write_big(tmp, o->extra[i].key, o->extra[i].data, o->extra[i].len, err) < 0)
                goto fail_tmp;
            if (!strv_contains(img->big_data, o->extra[i].key))
                strv_add(&img->big_data, o->extra[i].key);
        }
        for (size_t i = 0; o->names && o->names[i]; i++)
            if (!strv_contains(img->names, o->names[i]))
                strv_add(&img->names, o->names[i]);
        if (image_write_at(tmp, img, err) < 0)
            goto fail_tmp;
        if (rename(tmp, final) < 0) {
            berth_error_make(err, errno, "commit image \"%s\"", id);
            goto fail_tmp;
        }
        {
            cleanup_free char *images = xasprintf("%s/images", s->root);
            fs_fsync_dir(images, NULL);
        }
        for (size_t i = 0; o->names && o->names[i]; i++)
            if (take_name(s, all, id, o->names[i], err) < 0)
                goto out;
        goto done;
    fail_tmp:
        fs_rm_rf(tmp, &e2);
        berth_error_release(&e2);
        goto out;
    }
done:
    *out = img;
    img = NULL;
    ret = 0;
out:
    storage_image_free(img);
    storage_image_list_free(all);
    return ret;
}

/* Does image name `have` match the user's `want`? */
static bool name_matches(const char *have, const char *want)
{
    if (strcmp(have, want) == 0)
        return true;
    /* want without tag/digest means :latest */
    const char *slash = strrchr(want, '/');
    const char *last = slash ? slash + 1 : want;
    cleanup_free char *w =
        strchr(last, ':') || strchr(want, '@') ? xstrdup(want) : xasprintf("%s:latest", want);
    if (strcmp(have, w) == 0)
        return true;
    /* short name: have = "<domain>/<w>" or "<domain>/library/<w>" */
    size_t hl = strlen(have), wl = strlen(w);
    if (hl > wl + 1 && strcmp(have + hl - wl, w) == 0 && have[hl - wl - 1] == '/') {
        const char *prefix_end = have + hl - wl - 1;
        const char *first_slash = strchr(have, '/');
        if (first_slash == prefix_end)
            return true; /* domain/w */
        cleanup_free char *lib = xasprintf("/library/%s", w);
        if (hl > strlen(lib) && strcmp(have + hl - strlen(lib), lib) == 0 &&
            strchr(have, '/') == have + hl - strlen(lib))
            return true;
    }
    return false;
}

int storage_image_lookup(storage_store_t *s, const char *ref, storage_image_t **out,
                         berth_error_t *err)
{
    if (!ref || !*ref)
        return berth_error_make_status(err, EINVAL, "empty image reference");
    LOCK_OR_FAIL(s, false, err);
    const char *r = strncmp(ref, "sha256:", 7) == 0 && is_hex64(ref + 7) ? ref + 7 : ref;
    if (is_hex64(r)) {
        berth_error_t e2 = NULL;
        if (image_read(s, r, out, &e2) == 0)
            return 0;
        berth_error_release(&e2);
    }
    storage_image_t **all = NULL;
    if (image_list_locked(s, &all, err) < 0)
        return -1;
    storage_image_t *found = NULL;
    int nfound = 0;
    /* 1. exact name or manifest digest, 2. name rules, 3. id prefix */
    for (int pass = 0; pass < 3 && nfound == 0; pass++) {
        for (size_t i = 0; all[i]; i++) {
            bool m = false;
            if (pass == 0) {
                m = strv_contains(all[i]->names, ref) ||
                    (all[i]->digest && strcmp(all[i]->digest, ref) == 0);
                /* name@digest */
                const char *at = strchr(ref, '@');
                if (!m && at && all[i]->digest && strcmp(at + 1, all[i]->digest) == 0)
                    m = true;
            } else if (pass == 1) {
                for (size_t k = 0; !m && all[i]->names[k]; k++)
                    m = name_matches(all[i]->names[k], ref);
            } else {
                size_t n = strlen(r);
                m = n >= 3 && n <= 64 && strspn(r, "0123456789abcdef") == n &&
                    strncmp(all[i]->id, r, n) == 0;
            }
            if (m && found != all[i]) {
                found = all[i];
                nfound++;
            }
        }
    }
    int ret;
    if (nfound == 1) {
        ret = image_read(s, found->id, out, err);
    } else if (nfound == 0) {
        ret = berth_error_make_status(err, ENOENT, "image \"%s\" not known", ref);
    } else {
        ret = berth_error_make_status(err, EINVAL, "image reference \"%s\" is ambiguous", ref);
    }
    storage_image_list_free(all);
    return ret;
}

int storage_image_add_name(storage_store_t *s, const char *id, const char *name, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (image_read(s, id, &img, err) < 0)
        return -1;
    storage_image_t **all = NULL;
    if (image_list_locked(s, &all, err) < 0)
        return -1;
    int r = take_name(s, all, id, name, err);
    storage_image_list_free(all);
    if (r < 0)
        return -1;
    if (strv_contains(img->names, name))
        return 0;
    strv_add(&img->names, name);
    return image_write(s, img, err);
}

int storage_image_remove_name(storage_store_t *s, const char *id, const char *name,
                              berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (image_read(s, id, &img, err) < 0)
        return -1;
    if (!strv_remove(img->names, name))
        return berth_error_make_status(err, ENOENT, "image %.12s has no name \"%s\"", id, name);
    return image_write(s, img, err);
}

static int container_remove_locked(storage_store_t *s, const char *id, berth_error_t *err);

int storage_image_remove(storage_store_t *s, const char *id, bool force, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (image_read(s, id, &img, err) < 0)
        return -1;
    struct usage u;
    if (usage_load(s, &u, err) < 0)
        return -1;
    int ret = -1;
    for (size_t i = 0; u.containers[i]; i++) {
        if (!u.containers[i]->image_id || strcmp(u.containers[i]->image_id, id) != 0)
            continue;
        if (!force) {
            berth_error_make_status(err, EBUSY, "image %.12s is used by container %.12s (%s)", id,
                                    u.containers[i]->id, u.containers[i]->name);
            goto out;
        }
        if (container_remove_locked(s, u.containers[i]->id, err) < 0)
            goto out;
    }
    {
        cleanup_free char *dir = xasprintf("%s/images/%s", s->root, id);
        cleanup_free char *rnd = random_hex(6);
        cleanup_free char *tmp = xasprintf("%s/images/.tmp-del-%s", s->root, rnd);
        if (rename(dir, tmp) < 0) {
            berth_error_make(err, errno, "remove image \"%s\"", id);
            goto out;
        }
        berth_error_t e2 = NULL;
        fs_rm_rf(tmp, &e2);
        berth_error_release(&e2);
    }
    usage_free(&u);
    if (usage_load(s, &u, err) < 0)
        return -1;
    /* drop the image's layers that nothing else uses, top down */
    for (char *l = img->top_layer ? xstrdup(img->top_layer) : NULL; l;) {
        storage_layer_t *ly = usage_layer(&u, l);
        char *next = ly && ly->parent ? xstrdup(ly->parent) : NULL;
        bool used = layer_user(&u, l, NULL) != NULL;
        if (!used && ly) {
            berth_error_t e2 = NULL;
            if (layer_remove_locked(s, l, &e2) < 0)
                log_warn("%s", berth_error_msg(e2));
            berth_error_release(&e2);
            /* forget it so its parent no longer counts as used by "another layer" */
            for (size_t i = 0; u.layers[i]; i++)
                if (u.layers[i] == ly) {
                    storage_layer_free(ly);
                    for (size_t k = i; u.layers[k]; k++)
                        u.layers[k] = u.layers[k + 1];
                    break;
                }
        }
        free(l);
        l = used ? (free(next), NULL) : next;
    }
    ret = 0;
out:
    usage_free(&u);
    return ret;
}

int storage_image_get_big_data(storage_store_t *s, const char *id, const char *key, size_t max,
                               char **out, size_t *len, berth_error_t *err)
{
    if (check_key(key, err) < 0 || !is_hex64(id))
        return berth_error_make_status(err, ENOENT, "image \"%s\" not known", id);
    LOCK_OR_FAIL(s, false, err);
    cleanup_free char *p = xasprintf("%s/images/%s/%s", s->root, id, key);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "image %.12s has no \"%s\"", id, key);
    return fs_read_file(p, max, out, len, err);
}

int storage_image_set_big_data(storage_store_t *s, const char *id, const char *key,
                               const void *data, size_t len, berth_error_t *err)
{
    if (check_key(key, err) < 0)
        return -1;
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (image_read(s, id, &img, err) < 0)
        return -1;
    cleanup_free char *dir = xasprintf("%s/images/%s", s->root, id);
    if (write_big(dir, key, data, len, err) < 0)
        return -1;
    if (strv_contains(img->big_data, key))
        return 0;
    strv_add(&img->big_data, key);
    return image_write(s, img, err);
}

int storage_image_layers(storage_store_t *s, const char *id, char ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (image_read(s, id, &img, err) < 0)
        return -1;
    char **v = xzalloc(sizeof(char *));
    for (char *l = dup_or_null(img->top_layer); l;) {
        storage_layer_t *ly = NULL;
        if (strv_len(v) > 1024 || layer_read(s, l, &ly, err) < 0) {
            free(l);
            strv_free(v);
            if (!*err)
                berth_error_make_status(err, ELOOP, "image %.12s: layer chain too long", id);
            return -1;
        }
        strv_add(&v, l);
        free(l);
        l = dup_or_null(ly->parent);
        storage_layer_free(ly);
    }
    /* reverse to base-first */
    size_t n = strv_len(v);
    for (size_t i = 0; i < n / 2; i++) {
        char *t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ containers */

void storage_container_free(storage_container_t *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->name);
    free(c->image_id);
    free(c->layer);
    free(c->metadata);
    free(c);
}

void storage_container_list_free(storage_container_t **v)
{
    for (size_t i = 0; v && v[i]; i++)
        storage_container_free(v[i]);
    free(v);
}

static int container_read(storage_store_t *s, const char *id, storage_container_t **out,
                          berth_error_t *err)
{
    if (!is_hex64(id))
        return berth_error_make_status(err, ENOENT, "container \"%s\" not known", id);
    cleanup_free char *p = xasprintf("%s/containers/%s/container.json", s->root, id);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "container \"%s\" not known", id);
    cleanup_json json_t *j = NULL;
    if (json_load_file_bounded(p, RECORD_MAX, &j, err) < 0)
        return berth_error_wrap(err, "container \"%s\"", id);
    const char *rid = json_get_string(j, "id");
    const char *layer = json_get_string(j, "layer");
    if (!rid || strcmp(rid, id) != 0 || !layer || storage_check_id(layer, NULL) < 0)
        return berth_error_make_status(err, EINVAL, "container record \"%s\" is corrupt", p);
    storage_container_t *c = xzalloc(sizeof(*c));
    c->id = xstrdup(id);
    c->name = dup_or_null(json_get_string(j, "name"));
    c->image_id = dup_or_null(json_get_string(j, "image"));
    c->layer = xstrdup(layer);
    c->metadata = dup_or_null(json_get_string(j, "metadata"));
    json_get_int(j, "created", &c->created);
    *out = c;
    return 0;
}

static int container_write(storage_store_t *s, const storage_container_t *c, berth_error_t *err)
{
    cleanup_json json_t *j = json_object();
    json_object_set_new(j, "id", json_string(c->id));
    if (c->name)
        json_object_set_new(j, "name", json_string(c->name));
    if (c->image_id)
        json_object_set_new(j, "image", json_string(c->image_id));
    json_object_set_new(j, "layer", json_string(c->layer));
    if (c->metadata)
        json_object_set_new(j, "metadata", json_string(c->metadata));
    json_object_set_new(j, "created", json_integer(c->created));
    cleanup_free char *p = xasprintf("%s/containers/%s/container.json", s->root, c->id);
    return json_write_file_atomic(p, j, 0600, err);
}

static int container_list_locked(storage_store_t *s, storage_container_t ***out, berth_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/containers", s->root);
    char **names = NULL;
    if (list_names(dir, NULL, &names, err) < 0)
        return -1;
    size_t n = strv_len(names);
    storage_container_t **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        berth_error_t e2 = NULL;
        if (container_read(s, names[i], &v[k], &e2) == 0)
            k++;
        berth_error_release(&e2);
    }
    strv_free(names);
    *out = v;
    return 0;
}

int storage_container_list(storage_store_t *s, storage_container_t ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return container_list_locked(s, out, err);
}

static int container_find(storage_store_t *s, const char *ref, storage_container_t **out,
                          berth_error_t *err)
{
    berth_error_t e2 = NULL;
    if (is_hex64(ref) && container_read(s, ref, out, &e2) == 0)
        return 0;
    berth_error_release(&e2);
    storage_container_t **all = NULL;
    if (container_list_locked(s, &all, err) < 0)
        return -1;
    const char *found = NULL;
    int n = 0;
    for (size_t i = 0; all[i]; i++)
        if (all[i]->name && strcmp(all[i]->name, ref) == 0) {
            found = all[i]->id;
            n = 1;
            break;
        }
    size_t rl = strlen(ref);
    if (!found && rl >= 3 && strspn(ref, "0123456789abcdef") == rl)
        for (size_t i = 0; all[i]; i++)
            if (strncmp(all[i]->id, ref, rl) == 0) {
                found = all[i]->id;
                n++;
            }
    int ret;
    if (n == 1)
        ret = container_read(s, found, out, err);
    else if (n == 0)
        ret = berth_error_make_status(err, ENOENT, "container \"%s\" not known", ref);
    else
        ret = berth_error_make_status(err, EINVAL, "container reference \"%s\" is ambiguous", ref);
    storage_container_list_free(all);
    return ret;
}

int storage_container_get(storage_store_t *s, const char *id_or_name, storage_container_t **out,
                          berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return container_find(s, id_or_name, out, err);
}

int storage_container_create(storage_store_t *s, const struct storage_container_options *o,
                             storage_container_t **out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_free char *id = o && o->id ? xstrdup(o->id) : random_hex(32);
    if (!is_hex64(id))
        return berth_error_make_status(err, EINVAL, "invalid container id \"%s\"", id);
    cleanup_free char *name = o && o->name ? xstrdup(o->name) : xasprintf("berth-%.12s", id);
    storage_container_t **all = NULL;
    if (container_list_locked(s, &all, err) < 0)
        return -1;
    for (size_t i = 0; all[i]; i++) {
        if (strcmp(all[i]->id, id) == 0 || (all[i]->name && strcmp(all[i]->name, name) == 0)) {
            storage_container_list_free(all);
            return berth_error_make_status(err, EEXIST, "container name \"%s\" is already in use",
                                           name);
        }
    }
    storage_container_list_free(all);
    cleanup_storage_image storage_image_t *img = NULL;
    if (o && o->image_id && storage_image_lookup(s, o->image_id, &img, err) < 0)
        return -1;
    cleanup_storage_layer storage_layer_t *rw = NULL;
    if (storage_layer_create_rw(s, NULL, img ? img->top_layer : NULL, &rw, err) < 0)
        return -1;
    cleanup_free char *dir = xasprintf("%s/containers/%s", s->root, id);
    cleanup_free char *ud = xasprintf("%s/userdata", dir);
    storage_container_t *c = xzalloc(sizeof(*c));
    c->id = xstrdup(id);
    c->name = xstrdup(name);
    c->image_id = img ? xstrdup(img->id) : NULL;
    c->layer = xstrdup(rw->id);
    c->metadata = o ? dup_or_null(o->metadata) : NULL;
    c->created = time(NULL);
    if (fs_mkdir_p(ud, 0700, err) < 0 || container_write(s, c, err) < 0) {
        berth_error_t e2 = NULL;
        fs_rm_rf(dir, &e2);
        berth_error_release(&e2);
        layer_remove_locked(s, rw->id, &e2);
        berth_error_release(&e2);
        storage_container_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int storage_container_set_metadata(storage_store_t *s, const char *id, const char *metadata,
                                   berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    free(c->metadata);
    c->metadata = dup_or_null(metadata);
    return container_write(s, c, err);
}

static int container_remove_locked(storage_store_t *s, const char *id, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    /* record first: a crash afterwards leaves an orphan layer, which check --repair removes */
    cleanup_free char *dir = xasprintf("%s/containers/%s", s->root, c->id);
    cleanup_free char *rundir = xasprintf("%s/containers/%s", s->runroot, c->id);
    if (fs_rm_rf(dir, err) < 0)
        return -1;
    berth_error_t e2 = NULL;
    fs_rm_rf(rundir, &e2);
    berth_error_release(&e2);
    if (layer_remove_locked(s, c->layer, &e2) < 0)
        log_warn("%s", berth_error_msg(e2));
    berth_error_release(&e2);
    return 0;
}

int storage_container_remove(storage_store_t *s, const char *id, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    return container_remove_locked(s, id, err);
}

int storage_container_mount(storage_store_t *s, const char *id, char **dir, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    return storage_layer_mount(s, c->layer, dir, err);
}

int storage_container_unmount(storage_store_t *s, const char *id, bool force, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    return storage_layer_unmount(s, c->layer, force, err);
}

int storage_container_dirs(storage_store_t *s, const char *id, char **userdata, char **rundir,
                           berth_error_t *err)
{
    if (!is_hex64(id))
        return berth_error_make_status(err, EINVAL, "invalid container id \"%s\"", id);
    cleanup_free char *ud = xasprintf("%s/containers/%s/userdata", s->root, id);
    cleanup_free char *rd = xasprintf("%s/containers/%s/userdata", s->runroot, id);
    if (fs_mkdir_p(ud, 0700, err) < 0 || fs_mkdir_p(rd, 0700, err) < 0)
        return -1;
    if (userdata)
        *userdata = steal_pointer(&ud);
    if (rundir)
        *rundir = steal_pointer(&rd);
    return 0;
}

/* ------------------------------------------------------------------ check */

void storage_check_report_clear(struct storage_check_report *r)
{
    strv_free(r->problems);
    r->problems = NULL;
    r->n_problems = 0;
    r->n_repaired = 0;
}

static void report(struct storage_check_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(struct storage_check_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *m = xvasprintf(fmt, ap);
    va_end(ap);
    if (!r->problems)
        r->problems = xzalloc(sizeof(char *));
    strv_add(&r->problems, m);
    r->n_problems++;
}

int storage_check(storage_store_t *s, bool repair, struct storage_check_report *out,
                  berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->problems = xzalloc(sizeof(char *));
    LOCK_OR_FAIL(s, true, err);
    cleanup_incomplete(s);
    berth_error_t e = NULL;
    /* unreadable records */
    const struct {
        const char *sub, *suffix;
    } kinds[] = {{"layers", ".json"}, {"images", NULL}, {"containers", NULL}};
    for (size_t k = 0; k < 3; k++) {
        cleanup_free char *dir = xasprintf("%s/%s", s->root, kinds[k].sub);
        char **names = NULL;
        if (list_names(dir, kinds[k].suffix, &names, err) < 0)
            return -1;
        for (char **p = names; *p; p++) {
            int r;
            if (k == 0) {
                storage_layer_t *l = NULL;
                r = layer_read(s, *p, &l, &e);
                storage_layer_free(l);
            } else if (k == 1) {
                storage_image_t *i = NULL;
                r = image_read(s, *p, &i, &e);
                storage_image_free(i);
            } else {
                storage_container_t *c = NULL;
                r = container_read(s, *p, &c, &e);
                storage_container_free(c);
            }
            if (r < 0) {
                report(out, "bad %s record %s: %s", kinds[k].sub, *p, berth_error_msg(e));
                berth_error_release(&e);
                if (repair) {
                    cleanup_free char *path =
                        k == 0 ? layer_record_path(s, *p) : xasprintf("%s/%s", dir, *p);
                    if (k == 0) {
                        s->drv->remove(s->dstate, *p, &e);
                        berth_error_release(&e);
                        unlink(path);
                    } else {
                        fs_rm_rf(path, &e);
                        berth_error_release(&e);
                    }
                    out->n_repaired++;
                }
            }
        }
        strv_free(names);
    }
    /* layers whose files or parent are missing (repeat: removals may break children) */
    for (bool again = true; again;) {
        again = false;
        struct usage u;
        if (usage_load(s, &u, err) < 0)
            return -1;
        for (size_t i = 0; u.layers[i]; i++) {
            storage_layer_t *l = u.layers[i];
            const char *why = NULL;
            if (!s->drv->exists(s->dstate, l->id))
                why = "its files are missing or incomplete";
            else if (l->parent && !usage_layer(&u, l->parent))
                why = "its parent layer is missing";
            if (!why)
                continue;
            report(out, "layer %.12s: %s", l->id, why);
            if (repair) {
                layer_remove_locked(s, l->id, &e);
                berth_error_release(&e);
                out->n_repaired++;
                again = true;
            }
        }
        for (size_t i = 0; u.images[i]; i++) {
            storage_image_t *im = u.images[i];
            const char *why = NULL;
            if (im->top_layer && !usage_layer(&u, im->top_layer))
                why = "its top layer is missing";
            for (const char *l = im->top_layer; !why && l;) {
                storage_layer_t *ly = usage_layer(&u, l);
                if (!ly)
                    why = "a layer of it is missing";
                l = ly ? ly->parent : NULL;
            }
            if (!why)
                continue;
            report(out, "image %.12s: %s", im->id, why);
            if (repair) {
                cleanup_free char *p = xasprintf("%s/images/%s", s->root, im->id);
                fs_rm_rf(p, &e);
                berth_error_release(&e);
                out->n_repaired++;
            }
        }
        for (size_t i = 0; u.containers[i]; i++) {
            storage_container_t *c = u.containers[i];
            if (usage_layer(&u, c->layer))
                continue;
            report(out, "container %.12s: its layer is missing", c->id);
            if (repair) {
                cleanup_free char *p = xasprintf("%s/containers/%s", s->root, c->id);
                fs_rm_rf(p, &e);
                berth_error_release(&e);
                out->n_repaired++;
            }
        }
        /* rw layers no container owns */
        for (size_t i = 0; u.layers[i]; i++) {
            storage_layer_t *l = u.layers[i];
            if (!l->rw || layer_user(&u, l->id, NULL))
                continue;
            report(out, "layer %.12s: read-write layer without a container", l->id);
            if (repair) {
                layer_remove_locked(s, l->id, &e);
                berth_error_release(&e);
                out->n_repaired++;
                again = true;
            }
        }
        usage_free(&u);
        if (!repair)
            break;
    }
    return 0;
}
