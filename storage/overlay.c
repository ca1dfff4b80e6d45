/* The overlay driver: each layer is <home>/<id>/{diff,work,merged} plus
 *     link   its short name: <home>/l/<link> -> ../<id>/diff
 *     lower  the parents' short links, nearest first ("l/AAA:l/BBB")
 * Mount options use the short links relative to <home> (the mount is done with <home> as the
 * working directory), so 128 layers of "l/" + 26 chars stay far below the page-size limit.
 * Rootless (inside a user namespace) the mount uses `userxattr` and opaque dirs carry
 * user.overlay.opaque; as real root, trusted.overlay.opaque.  Whiteouts are 0/0 char devices,
 * which the kernel lets an unprivileged user create. */
#include "storage/driver.h"
#include "storage/driver_util.h"
#include "storage/tar.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LINK_LEN  26
#define LOWER_MAX (64 * 1024)

struct overlay {
    char *home;
    bool rootless;
    const char *xattr_ns;
};

static int ovl_init(const char *home, bool rootless, void **state, berth_error_t *err)
{
    cleanup_free char *l = xasprintf("%s/l", home);
    cleanup_free char *empty = xasprintf("%s/empty", home);
    if (fs_mkdir_p(l, 0700, err) < 0 || fs_mkdir_p(empty, 0755, err) < 0)
        return -1;
    struct overlay *o = xzalloc(sizeof(*o));
    o->home = xstrdup(home);
    o->rootless = rootless;
    o->xattr_ns = rootless ? "user" : "trusted";
    *state = o;
    return 0;
}

static void ovl_fini(void *state)
{
    struct overlay *o = state;
    if (!o)
        return;
    free(o->home);
    free(o);
}

static void random_link(char out[LINK_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char r[LINK_LEN];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        for (int i = 0; i < LINK_LEN; i++)
            r[i] = (unsigned char)(rand() ^ getpid() ^ i);
    }
    for (int i = 0; i < LINK_LEN; i++)
        out[i] = alphabet[r[i] % 32];
    out[LINK_LEN] = '\0';
}

static int read_small(struct overlay *o, const char *id, const char *name, char **out,
                      berth_error_t *err)
{
    cleanup_free char *p = driver_path(o->home, id, name);
    size_t len;
    if (fs_read_file(p, LOWER_MAX, out, &len, err) < 0)
        return -1;
    while (len > 0 && ((*out)[len - 1] == '\n'))
        (*out)[--len] = '\0';
    return 0;
}

/* The "lower" value of a layer on `parent`: the parent's link, then the parent's lowers. */
static int lower_for_parent(struct overlay *o, const char *parent, char **out, berth_error_t *err)
{
    cleanup_free char *plink = NULL;
    cleanup_free char *plower = NULL;
    if (read_small(o, parent, "link", &plink, err) < 0)
        return berth_error_wrap(err, "parent layer \"%s\"", parent);
    berth_error_t e2 = NULL;
    if (read_small(o, parent, "lower", &plower, &e2) < 0)
        berth_error_release(&e2);
    *out = plower && *plower ? xasprintf("l/%s:%s", plink, plower) : xasprintf("l/%s", plink);
    return 0;
}

static int ovl_create(void *state, const char *id, const char *parent, berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(id, err) < 0 || (parent && storage_check_id(parent, err) < 0))
        return -1;
    cleanup_free char *top = driver_path(o->home, id, NULL);
    cleanup_free char *lower = NULL;
    char link[LINK_LEN + 1] = "";
    if (parent && lower_for_parent(o, parent, &lower, err) < 0)
        return -1;
    if (mkdir(top, 0700) < 0)
        return berth_error_make(err, errno, "create layer \"%s\"", id);
    const char *subs[] = {"diff", "work", "merged"};
    for (size_t i = 0; i < 3; i++) {
        cleanup_free char *p = driver_path(o->home, id, subs[i]);
        if (mkdir(p, i == 0 ? 0755 : 0700) < 0) {
            berth_error_make(err, errno, "create \"%s\"", p);
            goto fail;
        }
    }
    random_link(link);
    {
        cleanup_free char *lpath = xasprintf("%s/l/%s", o->home, link);
        cleanup_free char *target = xasprintf("../%s/diff", id);
        if (symlink(target, lpath) < 0) {
            berth_error_make(err, errno, "create link \"%s\"", lpath);
            goto fail;
        }
        cleanup_free char *lf = driver_path(o->home, id, "link");
        if (fs_write_file_atomic(lf, link, LINK_LEN, 0600, err) < 0)
            goto fail;
        if (lower) {
            cleanup_free char *lw = driver_path(o->home, id, "lower");
            if (fs_write_file_atomic(lw, lower, strlen(lower), 0600, err) < 0)
                goto fail;
        }
    }
    return 0;
fail : {
    berth_error_t e2 = NULL;
    if (link[0]) {
        cleanup_free char *lpath = xasprintf("%s/l/%s", o->home, link);
        unlink(lpath);
    }
    IGNORE_RESULT(fs_rm_rf(top, &e2));
    berth_error_release(&e2);
    return -1;
}
}

/* A layer's diff dir holds only its own changes (whiteouts are devices and xattrs, not
 * deletions): the parent is just the "lower" file, written atomically. */
static int ovl_set_parent(void *state, const char *id, const char *parent, berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(id, err) < 0 || (parent && storage_check_id(parent, err) < 0))
        return -1;
    cleanup_free char *lw = driver_path(o->home, id, "lower");
    if (!parent) {
        if (unlink(lw) < 0 && errno != ENOENT)
            return berth_error_make(err, errno, "remove \"%s\"", lw);
        return 0;
    }
    cleanup_free char *lower = NULL;
    if (lower_for_parent(o, parent, &lower, err) < 0)
        return -1;
    return fs_write_file_atomic(lw, lower, strlen(lower), 0600, err);
}

static bool is_mounted(struct overlay *o, const char *id)
{
    cleanup_free char *top = driver_path(o->home, id, NULL);
    cleanup_free char *merged = driver_path(o->home, id, "merged");
    struct stat a, b;
    if (stat(top, &a) < 0 || stat(merged, &b) < 0)
        return false;
    return a.st_dev != b.st_dev;
}

static int ovl_remove(void *state, const char *id, berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *merged = driver_path(o->home, id, "merged");
    while (is_mounted(o, id))
        if (umount2(merged, MNT_DETACH) < 0)
            break;
    cleanup_free char *link = NULL;
    berth_error_t e2 = NULL;
    if (read_small(o, id, "link", &link, &e2) == 0 && strlen(link) == LINK_LEN &&
        !strchr(link, '/')) {
        cleanup_free char *lpath = xasprintf("%s/l/%s", o->home, link);
        unlink(lpath);
    }
    berth_error_release(&e2);
    cleanup_free char *top = driver_path(o->home, id, NULL);
    return fs_rm_rf(top, err);
}

static int ovl_rename(void *state, const char *from, const char *to, berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(from, err) < 0 || storage_check_id(to, err) < 0)
        return -1;
    cleanup_free char *a = driver_path(o->home, from, NULL);
    cleanup_free char *b = driver_path(o->home, to, NULL);
    if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) < 0)
        return berth_error_make(err, errno, "rename layer \"%s\" to \"%s\"", from, to);
    cleanup_free char *link = NULL;
    if (read_small(o, to, "link", &link, err) < 0)
        return -1;
    cleanup_free char *lpath = xasprintf("%s/l/%s", o->home, link);
    cleanup_free char *tmp = xasprintf("%s/l/.%s.tmp", o->home, link);
    cleanup_free char *target = xasprintf("../%s/diff", to);
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, lpath) < 0)
        return berth_error_make(err, errno, "update link \"%s\"", lpath);
    return 0;
}

/* A layer is complete when both its diff dir and its short link name exist (a layer whose
 * files were partly deleted by an interrupted removal must not count as present). */
static bool ovl_exists(void *state, const char *id)
{
    struct overlay *o = state;
    if (storage_check_id(id, NULL) < 0)
        return false;
    cleanup_free char *d = driver_path(o->home, id, "diff");
    cleanup_free char *lf = driver_path(o->home, id, "link");
    return fs_exists(d) && fs_exists(lf);
}

static int do_mount(struct overlay *o, const char *id, bool readonly, berth_error_t *err)
{
    cleanup_free char *lower = NULL;
    berth_error_t e2 = NULL;
    if (read_small(o, id, "lower", &lower, &e2) < 0) {
        berth_error_release(&e2);
        lower = xstrdup("empty");
    }
    cleanup_free char *opts = NULL;
    if (readonly) {
        /* without an upper dir overlay wants two lower dirs: "empty" pads a base layer */
        cleanup_free char *link = NULL;
        if (read_small(o, id, "link", &link, err) < 0)
            return -1;
        opts = xasprintf("lowerdir=l/%s:%s%s", link, lower, o->rootless ? ",userxattr" : "");
    } else {
        opts = xasprintf("lowerdir=%s,upperdir=%s/diff,workdir=%s/work%s", lower, id, id,
                         o->rootless ? ",userxattr" : "");
    }
    if (strlen(opts) >= 4096)
        return berth_error_make_status(err, E2BIG, "overlay mount options for \"%s\" too long", id);
    cleanup_free char *merged = driver_path(o->home, id, "merged");
    cleanup_close int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (chdir(o->home) < 0)
        return berth_error_make(err, errno, "chdir \"%s\"", o->home);
    int r = mount("overlay", merged, "overlay", readonly ? MS_RDONLY : 0, opts);
    int saved = errno;
    if (cwd >= 0 && fchdir(cwd) < 0)
        log_debug("fchdir back: %s", strerror(errno));
    if (r < 0)
        return berth_error_make(err, saved, "mount overlay for layer \"%s\"", id);
    return 0;
}

static int ovl_mount(void *state, const char *id, const char *count_dir, bool readonly, char **dir,
                     berth_error_t *err)
{
    struct overlay *o = state;
    if (!ovl_exists(o, id))
        return berth_error_make_status(err, ENOENT, "layer \"%s\" does not exist", id);
    int now;
    if (is_mounted(o, id)) {
        if (driver_count_update(count_dir, id, 1, false, &now, err) < 0)
            return -1;
    } else {
        if (do_mount(o, id, readonly, err) < 0)
            return -1;
        /* a stale count (reboot, other mount namespace) restarts at 1 */
        if (driver_count_update(count_dir, id, 1, true, &now, err) < 0)
            return -1;
    }
    *dir = driver_path(o->home, id, "merged");
    return 0;
}

static int ovl_unmount(void *state, const char *id, const char *count_dir, bool force,
                       berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    int now;
    if (driver_count_update(count_dir, id, -1, force, &now, err) < 0)
        return -1;
    if (now > 0 && is_mounted(o, id))
        return 0;
    cleanup_free char *merged = driver_path(o->home, id, "merged");
    while (is_mounted(o, id)) {
        if (umount2(merged, MNT_DETACH) < 0)
            return berth_error_make(err, errno, "unmount \"%s\"", merged);
    }
    return 0;
}

static int ovl_apply_diff(void *state, const char *id, berth_reader_t *tar,
                          const struct storage_apply_options *opts,
                          struct storage_apply_result *res, berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *dir = driver_path(o->home, id, "diff");
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open layer \"%s\"", id);
    struct tar_apply_options to = {
        .whiteouts = TAR_WHITEOUT_OVERLAY,
        .overlay_xattr_ns = o->xattr_ns,
        .rootless = o->rootless,
        .record_path = opts ? opts->record_path : NULL,
    };
    return tar_apply(fd, tar, &to, res, err);
}

static int ovl_diff(void *state, const char *id, const struct storage_diff_options *opts,
                    berth_reader_t **out, berth_error_t *err)
{
    struct overlay *o = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *dir = driver_path(o->home, id, "diff");
    struct tar_generate_options to = {
        .mode = TAR_GEN_OVERLAY,
        .overlay_xattr_ns = o->xattr_ns,
        .clamp_mtime = opts ? opts->clamp_mtime : -1,
        .tmp_dir = o->home,
    };
    return tar_generate(dir, &to, out, err);
}

static char *ovl_layer_dir(void *state, const char *id)
{
    struct overlay *o = state;
    return driver_path(o->home, id, "diff");
}

/* Removes short-name links in l/ whose layer directory is gone (a removal interrupted after
 * the layer's "link" file was deleted can't find them any more). */
static int ovl_cleanup(void *state, berth_error_t *err)
{
    struct overlay *o = state;
    (void)err;
    cleanup_free char *l = xasprintf("%s/l", o->home);
    cleanup_dir DIR *d = opendir(l);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 && errno == ENOENT)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    return 0;
}

void storage_overlay_probe_cleanup(const char *home)
{
    cleanup_dir DIR *d = opendir(home);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, "probe-", 6) != 0)
            continue;
        cleanup_free char *base = xasprintf("%s/%s", home, de->d_name);
        cleanup_free char *merged = xasprintf("%s/merged", base);
        umount2(merged, MNT_DETACH);
        berth_error_t e = NULL;
        log_info("removing \"%s\" left by an interrupted overlay probe", base);
        if (fs_rm_rf(base, &e) < 0)
            log_warn("%s", berth_error_msg(e));
        berth_error_release(&e);
    }
}

bool storage_overlay_probe(const char *home, bool rootless, char **why)
{
    berth_error_t err = NULL;
    cleanup_free char *base = xasprintf("%s/probe-%d", home, (int)getpid());
    bool ok = false;
    *why = NULL;
    const char *subs[] = {"lower", "upper", "work", "merged"};
    IGNORE_RESULT(fs_rm_rf(base, &err));
    berth_error_release(&err);
    if (fs_mkdir_p(base, 0700, &err) < 0)
        goto out;
    for (size_t i = 0; i < 4; i++) {
        cleanup_free char *p = xasprintf("%s/%s", base, subs[i]);
        if (mkdir(p, 0755) < 0) {
            berth_error_make(&err, errno, "mkdir \"%s\"", p);
            goto out;
        }
    }
    {
        cleanup_free char *f = xasprintf("%s/lower/f", base);
        cleanup_free char *g = xasprintf("%s/lower/g", base);
        cleanup_free char *wh = xasprintf("%s/upper/g", base);
        if (fs_write_file_atomic(f, "x", 1, 0644, &err) < 0 ||
            fs_write_file_atomic(g, "y", 1, 0644, &err) < 0)
            goto out;
        if (mknod(wh, S_IFCHR | 0, makedev(0, 0)) < 0) {
            berth_error_make(&err, errno, "create a whiteout device");
            goto out;
        }
        cleanup_free char *opts = xasprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work%s",
                                            base, base, base, rootless ? ",userxattr" : "");
        cleanup_free char *merged = xasprintf("%s/merged", base);
        if (mount("overlay", merged, "overlay", 0, opts) < 0) {
            berth_error_make(&err, errno, "mount overlay");
            goto out;
        }
        cleanup_free char *mf = xasprintf("%s/merged/f", base);
        cleanup_free char *mg = xasprintf("%s/merged/g", base);
        ok = fs_exists(mf) && !fs_exists(mg);
        umount2(merged, MNT_DETACH);
        if (!ok)
            berth_error_make_status(&err, EINVAL, "overlay mount does not show the lower layer");
    }
out:
    if (!ok)
        *why = xstrdup(err ? berth_error_msg(err) : "unknown error");
    berth_error_release(&err);
    IGNORE_RESULT(fs_rm_rf(base, &err));
    berth_error_release(&err);
    return ok;
}

const struct storage_driver_ops storage_driver_overlay = {
    .name = "overlay",
    .init = ovl_init,
    .fini = ovl_fini,
    .create = ovl_create,
    .remove = ovl_remove,
    .rename = ovl_rename,
    .exists = ovl_exists,
    .set_parent = ovl_set_parent,
    .mount = ovl_mount,
    .unmount = ovl_unmount,
    .apply_diff = ovl_apply_diff,
    .diff = ovl_diff,
    .layer_dir = ovl_layer_dir,
    .cleanup = ovl_cleanup,
};
