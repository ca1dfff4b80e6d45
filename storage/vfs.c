/* The vfs driver: every layer is a full copy of its parent plus its own changes, in
 * <home>/<id>/dir, with the parent's id in <home>/<id>/parent.  Works everywhere, costs space. */
#include "storage/driver.h"
#include "storage/driver_util.h"
#include "storage/tar.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vfs {
    char *home;
    bool rootless;
};

static int vfs_init(const char *home, bool rootless, void **state, berth_error_t *err)
{
    if (fs_mkdir_p(home, 0700, err) < 0)
        return -1;
    struct vfs *v = xzalloc(sizeof(*v));
    v->home = xstrdup(home);
    v->rootless = rootless;
    *state = v;
    return 0;
}

static void vfs_fini(void *state)
{
    struct vfs *v = state;
    if (!v)
        return;
    free(v->home);
    free(v);
}

static int vfs_create(void *state, const char *id, const char *parent, berth_error_t *err)
{
    struct vfs *v = state;
    if (storage_check_id(id, err) < 0 || (parent && storage_check_id(parent, err) < 0))
        return -1;
    cleanup_free char *top = driver_path(v->home, id, NULL);
    cleanup_free char *dir = driver_path(v->home, id, "dir");
    if (mkdir(top, 0700) < 0)
        return berth_error_make(err, errno, "create layer \"%s\"", id);
    if (parent) {
        cleanup_free char *pdir = driver_path(v->home, parent, "dir");
        cleanup_free char *pfile = driver_path(v->home, id, "parent");
        if (tar_copy_tree(pdir, dir, err) < 0 ||
            fs_write_file_atomic(pfile, parent, strlen(parent), 0600, err) < 0) {
            berth_error_t e2 = NULL;
            IGNORE_RESULT(fs_rm_rf(top, &e2));
            berth_error_release(&e2);
            return berth_error_wrap(err, "create layer \"%s\" from \"%s\"", id, parent);
        }
    } else if (mkdir(dir, 0755) < 0) {
        return berth_error_make(err, errno, "create layer \"%s\"", id);
    }
    return 0;
}

static int vfs_remove(void *state, const char *id, berth_error_t *err)
{
    struct vfs *v = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *top = driver_path(v->home, id, NULL);
    return fs_rm_rf(top, err);
}

static int vfs_rename(void *state, const char *from, const char *to, berth_error_t *err)
{
    struct vfs *v = state;
    if (storage_check_id(from, err) < 0 || storage_check_id(to, err) < 0)
        return -1;
    cleanup_free char *a = driver_path(v->home, from, NULL);
    cleanup_free char *b = driver_path(v->home, to, NULL);
    if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) < 0)
        return berth_error_make(err, errno, "rename layer \"%s\" to \"%s\"", from, to);
    return 0;
}

static bool vfs_exists(void *state, const char *id)
{
    struct vfs *v = state;
    if (storage_check_id(id, NULL) < 0)
        return false;
    cleanup_free char *dir = driver_path(v->home, id, "dir");
    return fs_exists(dir);
}

static int vfs_mount(void *state, const char *id, const char *count_dir, bool readonly, char **dir,
                     berth_error_t *err)
{
    struct vfs *v = state;
    if (!vfs_exists(v, id))
        return berth_error_make_status(err, ENOENT, "layer \"%s\" does not exist", id);
    int now;
    if (driver_count_update(count_dir, id, 1, false, &now, err) < 0)
        return -1;
    *dir = driver_path(v->home, id, "dir");
    return 0;
}

static int vfs_unmount(void *state, const char *id, const char *count_dir, bool force,
                       berth_error_t *err)
{
    int now;
    return driver_count_update(count_dir, id, -1, force, &now, err);
}

static int vfs_apply_diff(void *state, const char *id, berth_reader_t *tar,
                          const struct storage_apply_options *opts,
                          struct storage_apply_result *res, berth_error_t *err)
{
    struct vfs *v = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *dir = driver_path(v->home, id, "dir");
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open layer \"%s\"", id);
    struct tar_apply_options o = {
        .whiteouts = TAR_WHITEOUT_DELETE,
        .rootless = v->rootless,
        .record_path = opts ? opts->record_path : NULL,
    };
    return tar_apply(fd, tar, &o, res, err);
}

static int vfs_diff(void *state, const char *id, const struct storage_diff_options *opts,
                    berth_reader_t **out, berth_error_t *err)
{
    struct vfs *v = state;
    if (storage_check_id(id, err) < 0)
        return -1;
    cleanup_free char *dir = driver_path(v->home, id, "dir");
    cleanup_free char *pfile = driver_path(v->home, id, "parent");
    cleanup_free char *parent = NULL;
    cleanup_free char *pdir = NULL;
    if (fs_read_file(pfile, 256, &parent, NULL, NULL) == 0) {
        if (storage_check_id(parent, err) < 0)
            return -1;
        pdir = driver_path(v->home, parent, "dir");
    }
    struct tar_generate_options o = {
        .mode = TAR_GEN_COMPARE,
        .parent_dir = pdir,
        .clamp_mtime = opts ? opts->clamp_mtime : -1,
        .tmp_dir = v->home,
    };
    return tar_generate(dir, &o, out, err);
}

static char *vfs_layer_dir(void *state, const char *id)
{
    struct vfs *v = state;
    return driver_path(v->home, id, "dir");
}

static int vfs_cleanup(void *state, berth_error_t *err)
{
    return 0;
}

const struct storage_driver_ops storage_driver_vfs = {
    .name = "vfs",
    .init = vfs_init,
    .fini = vfs_fini,
    .create = vfs_create,
    .remove = vfs_remove,
    .rename = vfs_rename,
    .exists = vfs_exists,
    .mount = vfs_mount,
    .unmount = vfs_unmount,
    .apply_diff = vfs_apply_diff,
    .diff = vfs_diff,
    .layer_dir = vfs_layer_dir,
    .cleanup = vfs_cleanup,
};
