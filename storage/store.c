/* The layer store: opening, locks and recovery (cleanup of what crashed writers left, check).
 * Layers, images and containers are in store_layers.c, store_images.c, store_containers.c. */
#include "storage/store_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"

#include "storage/userns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ small helpers */

char *store_random_hex(size_t nbytes)
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
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return out;
}

char *store_strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

bool store_is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Sorted names in dir ending in suffix (suffix stripped); NULL-terminated. */
int store_list_names(const char *dir, const char *suffix, char ***out, berth_error_t *err)
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

int store_layer_lock(storage_store_t *s, const char *id, berth_error_t *err)
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
    if (store_list_names(staging, ".lock", &locks, &e) == 0) {
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
    if (store_list_names(s->driver_home, NULL, &dirs, &e) == 0) {
        for (char **p = dirs; *p; p++) {
            const char *n = *p;
            if (strcmp(n, "l") == 0 || strcmp(n, "empty") == 0 || strncmp(n, "probe-", 6) == 0)
                continue;
            if (strncmp(n, "stg-", 4) == 0) {
                cleanup_free char *lp = xasprintf("%s/%s.lock", staging, n);
                if (!lock_is_stale(lp))
                    continue;
            } else {
                cleanup_free char *rp = store_layer_record_path(s, n);
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
        IGNORE_RESULT(fs_rm_rf(p, &e));
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
        if (store_list_names(ldir, ".json", &names, err) < 0)
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
        if (store_list_names(dir, kinds[k].suffix, &names, err) < 0)
            return -1;
        for (char **p = names; *p; p++) {
            int r;
            if (k == 0) {
                storage_layer_t *l = NULL;
                r = store_layer_read(s, *p, &l, &e);
                storage_layer_free(l);
            } else if (k == 1) {
                storage_image_t *i = NULL;
                r = store_image_read(s, *p, &i, &e);
                storage_image_free(i);
            } else {
                storage_container_t *c = NULL;
                r = store_container_read(s, *p, &c, &e);
                storage_container_free(c);
            }
            if (r < 0) {
                report(out, "bad %s record %s: %s", kinds[k].sub, *p, berth_error_msg(e));
                berth_error_release(&e);
                if (repair) {
                    cleanup_free char *path =
                        k == 0 ? store_layer_record_path(s, *p) : xasprintf("%s/%s", dir, *p);
                    if (k == 0) {
                        s->drv->remove(s->dstate, *p, &e);
                        berth_error_release(&e);
                        unlink(path);
                    } else {
                        IGNORE_RESULT(fs_rm_rf(path, &e));
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
        struct store_usage u;
        if (store_usage_load(s, &u, err) < 0)
            return -1;
        for (size_t i = 0; u.layers[i]; i++) {
            storage_layer_t *l = u.layers[i];
            const char *why = NULL;
            if (!s->drv->exists(s->dstate, l->id))
                why = "its files are missing or incomplete";
            else if (l->parent && !store_usage_layer(&u, l->parent))
                why = "its parent layer is missing";
            if (!why)
                continue;
            report(out, "layer %.12s: %s", l->id, why);
            if (repair) {
                IGNORE_RESULT(store_layer_remove_locked(s, l->id, &e));
                berth_error_release(&e);
                out->n_repaired++;
                again = true;
            }
        }
        for (size_t i = 0; u.images[i]; i++) {
            storage_image_t *im = u.images[i];
            const char *why = NULL;
            if (im->top_layer && !store_usage_layer(&u, im->top_layer))
                why = "its top layer is missing";
            for (const char *l = im->top_layer; !why && l;) {
                storage_layer_t *ly = store_usage_layer(&u, l);
                if (!ly)
                    why = "a layer of it is missing";
                l = ly ? ly->parent : NULL;
            }
            if (!why)
                continue;
            report(out, "image %.12s: %s", im->id, why);
            if (repair) {
                cleanup_free char *p = xasprintf("%s/images/%s", s->root, im->id);
                IGNORE_RESULT(fs_rm_rf(p, &e));
                berth_error_release(&e);
                out->n_repaired++;
            }
        }
        for (size_t i = 0; u.containers[i]; i++) {
            storage_container_t *c = u.containers[i];
            if (store_usage_layer(&u, c->layer))
                continue;
            report(out, "container %.12s: its layer is missing", c->id);
            if (repair) {
                cleanup_free char *p = xasprintf("%s/containers/%s", s->root, c->id);
                IGNORE_RESULT(fs_rm_rf(p, &e));
                berth_error_release(&e);
                out->n_repaired++;
            }
        }
        /* rw layers no container owns */
        for (size_t i = 0; u.layers[i]; i++) {
            storage_layer_t *l = u.layers[i];
            if (!l->rw || store_layer_user(&u, l->id, NULL))
                continue;
            report(out, "layer %.12s: read-write layer without a container", l->id);
            if (repair) {
                IGNORE_RESULT(store_layer_remove_locked(s, l->id, &e));
                berth_error_release(&e);
                out->n_repaired++;
                again = true;
            }
        }
        store_usage_free(&u);
        if (!repair)
            break;
    }
    return 0;
}
