/* Applying a tar stream into a layer directory.
 *
 * The stream flows: caller's reader -> sha256 (DiffID) -> tar-split recorder -> libarchive.  The
 * recorder keeps every byte that is not regular-file content (headers, pax records, padding, the
 * end-of-archive blocks) in a gzip'd sidecar so the exact tar can be rebuilt later from the
 * sidecar plus the files (tar_split.c).  Every path is resolved inside the layer root with
 * openat2(RESOLVE_IN_ROOT), so no `..`, symlink or hardlink can reach outside it. */
#include "storage/tar.h"
#include "storage/tar_split.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/log.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

int tar_openat_in_root(int root_fd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    if (*path == '\0')
        path = ".";
    int fd;
    do
        fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
    while (fd < 0 && errno == EAGAIN);
    return fd;
}

/* Lexically cleans a tar path: drops leading '/', "." components; ".." pops (never above the
 * root).  Returns "" for the root itself. */
char *tar_clean_path(const char *p)
{
    size_t n = strlen(p);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 1 && s[0] == '.') {
        } else if (len == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, s, len);
            o += len;
        }
        s += len;
    }
    out[o] = '\0';
    return out;
}

/* Opens the directory `rel` (cleaned, may be "") inside the root, creating missing components
 * (0755) when create is true.  Symlinks met on the way are followed inside the root. */
static int open_dir_in_root(int root_fd, const char *rel, bool create, berth_error_t *err)
{
    int fd = tar_openat_in_root(root_fd, rel, O_RDONLY | O_DIRECTORY, 0);
    if (fd >= 0 || errno != ENOENT || !create) {
        if (fd < 0)
            return berth_error_make(err, errno, "open directory \"%s\" in layer", rel);
        return fd;
    }
    /* Walk component by component, creating what is missing. */
    cleanup_free char *buf = xstrdup(rel);
    cleanup_close int cur = tar_openat_in_root(root_fd, "", O_RDONLY | O_DIRECTORY, 0);
    if (cur < 0)
        return berth_error_make(err, errno, "open layer root");
    char *save = NULL;
    size_t done = 0;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        /* resolve the prefix up to and including c inside the root each time */
        const char *prefix_end = c + strlen(c);
        size_t plen = (size_t)(prefix_end - buf);
        cleanup_free char *prefix = xstrndup(rel, plen);
        int nfd = tar_openat_in_root(root_fd, prefix, O_RDONLY | O_DIRECTORY, 0);
        if (nfd < 0 && errno == ENOENT) {
            /* parent of prefix is `cur` (already resolved in root); create c in it */
            if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "mkdir \"%s\" in layer", prefix);
            nfd = tar_openat_in_root(root_fd, prefix, O_RDONLY | O_DIRECTORY, 0);
        }
        if (nfd < 0)
            return berth_error_make(err, errno, "open directory \"%s\" in layer", prefix);
        close(cur);
        cur = nfd;
        done = plen;
    }
    (void)done;
    return steal_fd(&cur);
}

/* ------------------------------------------------------------------ input stream */

struct input {
    berth_reader_t *lower;
    digester_t *dig;
    uint64_t bytes;
    struct tar_split_recorder *rec; /* may be NULL */
    berth_error_t *err;             /* where a read error is stored */
    bool failed;
    char buf[READ_CHUNK];
};

static la_ssize_t input_read(struct archive *a, void *data, const void **buf)
{
    struct input *in = data;
    ssize_t n = reader_read(in->lower, in->buf, sizeof(in->buf), in->err);
    if (n < 0) {
        in->failed = true;
        archive_set_error(a, EIO, "%s", berth_error_msg(*in->err));
        return -1;
    }
    if (n > 0) {
        digester_update(in->dig, in->buf, (size_t)n);
        in->bytes += (uint64_t)n;
        if (in->rec)
            tar_split_recorder_feed(in->rec, in->buf, (size_t)n);
    }
    *buf = in->buf;
    return n;
}

/* ------------------------------------------------------------------ apply state */

struct dir_time {
    char *path;
    struct timespec ts[2];
};

/* Inodes of the files whose content the tar-split record points at, with the entry each holds:
 * when one of them is about to be removed or replaced later in the same stream (duplicate
 * entries, a whiteout in vfs), its content is first kept in the record itself, so the exact tar
 * can still be rebuilt and its DiffID exported. */
struct ino_ent {
    uint64_t ino;
    uint32_t idx;
    bool kept;
};

struct ino_set {
    struct ino_ent *v;
    size_t n, cap; /* cap is a power of two; ino 0 marks a free slot */
};

static size_t ino_slot(uint64_t ino, size_t cap)
{
    return (size_t)(ino * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static void ino_add(struct ino_set *s, uint64_t ino, uint32_t idx)
{
    if (ino == 0)
        return;
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        struct ino_ent *nv = xcalloc(ncap, sizeof(*nv));
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->v[i].ino)
                continue;
            size_t h = ino_slot(s->v[i].ino, ncap);
            while (nv[h].ino)
                h = (h + 1) & (ncap - 1);
            nv[h] = s->v[i];
        }
        free(s->v);
        s->v = nv;
        s->cap = ncap;
    }
    size_t h = ino_slot(ino, s->cap);
    while (s->v[h].ino) {
        if (s->v[h].ino == ino) {
            s->v[h] = (struct ino_ent){.ino = ino, .idx = idx};
            return;
        }
        h = (h + 1) & (s->cap - 1);
    }
    s->v[h] = (struct ino_ent){.ino = ino, .idx = idx};
    s->n++;
}

static struct ino_ent *ino_find(const struct ino_set *s, uint64_t ino)
{
    if (!s->cap || ino == 0)
        return NULL;
    size_t h = ino_slot(ino, s->cap);
    while (s->v[h].ino) {
        if (s->v[h].ino == ino)
            return &s->v[h];
        h = (h + 1) & (s->cap - 1);
    }
    return NULL;
}

/* Keeps the content of every recorded file in the tree at dfd/name; false when one could not
 * be kept (the record is then dropped and diffs are generated). */
static bool keep_recorded(const struct ino_set *s, struct tar_split_recorder *rec, int dfd,
                          const char *name, int depth)
{
    struct stat st;
    if (s->n == 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return true;
    if (depth > 256)
        return false;
    if (S_ISREG(st.st_mode)) {
        struct ino_ent *ie = ino_find(s, st.st_ino);
        if (!ie || ie->kept)
            return true;
        cleanup_close int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        berth_error_t e = NULL;
        if (fd < 0 || tar_split_recorder_keep(rec, ie->idx, fd, (uint64_t)st.st_size, &e) < 0) {
            berth_error_release(&e);
            return false;
        }
        ie->kept = true;
        return true;
    }
    if (!S_ISDIR(st.st_mode))
        return true;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        ok = keep_recorded(s, rec, dirfd(d), de->d_name, depth + 1);
    }
    closedir(d);
    return ok;
}

struct apply {
    int root_fd;
    struct ino_set recorded;
    struct tar_split_recorder *rec; /* NULL: no record */
    bool record_broken;
    const struct tar_apply_options *opts;
    /* cached parent directory fd for consecutive entries in one directory */
    char *cached_rel;
    int cached_fd;
    struct dir_time *dirs;
    size_t n_dirs, cap_dirs;
    uint64_t written;
    size_t skipped_devices, failed_chowns, failed_xattrs;
    uint32_t entry_index;
};

static void before_removal(struct apply *ap, int dfd, const char *name)
{
    if (ap->rec && !ap->record_broken && !keep_recorded(&ap->recorded, ap->rec, dfd, name, 0))
        ap->record_broken = true;
}

static void cache_drop(struct apply *ap)
{
    free(ap->cached_rel);
    ap->cached_rel = NULL;
    if (ap->cached_fd >= 0)
        close(ap->cached_fd);
    ap->cached_fd = -1;
}

/* Returns a borrowed fd for the parent directory `rel` (cleaned). */
static int parent_fd(struct apply *ap, const char *rel, berth_error_t *err)
{
    if (ap->cached_rel && strcmp(ap->cached_rel, rel) == 0)
        return ap->cached_fd;
    cache_drop(ap);
    int fd = open_dir_in_root(ap->root_fd, rel, true, err);
    if (fd < 0)
        return -1;
    ap->cached_rel = xstrdup(rel);
    ap->cached_fd = fd;
    return fd;
}

static void split_path(char *path, const char **dir, const char **base)
{
    char *slash = strrchr(path, '/');
    if (slash) {
        *slash = '\0';
        *dir = path;
        *base = slash + 1;
    } else {
        *dir = "";
        *base = path;
    }
}

/* Removes whatever is at dfd/name (tree for a directory). */
static int remove_existing(struct apply *ap, int dfd, const char *name, const char *path,
                           berth_error_t *err)
{
    before_removal(ap, dfd, name);
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return berth_error_make(err, errno, "stat \"%s\"", path);
    }
    if (S_ISDIR(st.st_mode)) {
        /* the cached fd may live below this directory */
        if (ap->cached_rel && ap->cached_fd != dfd)
            cache_drop(ap);
        if (fs_rm_rf_at(dfd, name, err) < 0)
            return berth_error_wrap(err, "replace \"%s\"", path);
        return 0;
    }
    if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "unlink \"%s\"", path);
    return 0;
}

/* Removes what is at dir/base so an entry can take its place; *dfd is re-resolved (removing a
 * directory may drop the cached parent fd). */
static int make_room(struct apply *ap, int *dfd, const char *dir, const char *base, const char *rel,
                     berth_error_t *err)
{
    if (remove_existing(ap, *dfd, base, rel, err) < 0)
        return -1;
    *dfd = parent_fd(ap, dir, err);
    return *dfd < 0 ? -1 : 0;
}

static bool skip_xattr(const char *name)
{
    /* A tar must not be able to plant overlay metadata (opaque, redirect, metacopy). */
    return strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0;
}

/* `known`: the file's state right after creation (fd >= 0 only): the chown and chmod that would
 * not change anything are skipped (most files are created with their final owner and mode). */
static int set_metadata(struct apply *ap, int dfd, const char *name, int fd,
                        const struct stat *known, struct archive_entry *e, const char *path,
                        berth_error_t *err)
{
    mode_t type = archive_entry_filetype(e);
    uid_t uid = (uid_t)archive_entry_uid(e);
    gid_t gid = (gid_t)archive_entry_gid(e);
    int r = 0;
    if (!known || known->st_uid != uid || known->st_gid != gid)
        r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0) {
        if (ap->opts->rootless && (errno == EINVAL || errno == EPERM)) {
            ap->failed_chowns++;
            if (ap->failed_chowns == 1)
                log_warn("cannot chown \"%s\" to %u:%u (id not mapped in the user namespace); "
                         "keeping the current owner",
                         path, (unsigned)uid, (unsigned)gid);
        } else {
            return berth_error_make(err, errno, "chown \"%s\"", path);
        }
    }
    /* xattrs (not on symlinks) */
    if (type != AE_IFLNK && archive_entry_xattr_reset(e) > 0) {
        const char *xname;
        const void *xval;
        size_t xlen;
        while (archive_entry_xattr_next(e, &xname, &xval, &xlen) == ARCHIVE_OK) {
            if (skip_xattr(xname))
                continue;
            int xr;
            if (fd >= 0) {
                xr = fsetxattr(fd, xname, xval, xlen, 0);
            } else {
                char p[64];
                snprintf(p, sizeof(p), "/proc/self/fd/%d", dfd);
                cleanup_free char *full = xasprintf("%s/%s", p, name);
                xr = lsetxattr(full, xname, xval, xlen, 0);
            }
            if (xr < 0) {
                ap->failed_xattrs++;
                if (ap->failed_xattrs == 1)
                    log_warn("cannot set xattr %s on \"%s\": %s", xname, path, strerror(errno));
            }
        }
    }
    if (type != AE_IFLNK) {
        mode_t mode = archive_entry_perm(e) & 07777;
        /* a chown above may have cleared set-id bits: then `known` is stale and chmod runs */
        bool same = known && r == 0 && known->st_uid == uid && known->st_gid == gid &&
                    (known->st_mode & 07777) == mode;
        r = same ? 0 : fd >= 0 ? fchmod(fd, mode) : fchmodat(dfd, name, mode, 0);
        if (r < 0)
            return berth_error_make(err, errno, "chmod \"%s\"", path);
    }
    struct timespec ts[2];
    ts[0].tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
    ts[0].tv_nsec =
        archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e);
    ts[1].tv_sec = archive_entry_mtime(e);
    ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (type == AE_IFDIR) {
        /* children change a directory's mtime: set it at the end */
        if (ap->n_dirs == ap->cap_dirs) {
            ap->cap_dirs = ap->cap_dirs ? ap->cap_dirs * 2 : 64;
            ap->dirs = xreallocarray(ap->dirs, ap->cap_dirs, sizeof(*ap->dirs));
        }
        ap->dirs[ap->n_dirs].path = xstrdup(path);
        memcpy(ap->dirs[ap->n_dirs].ts, ts, sizeof(ts));
        ap->n_dirs++;
        return 0;
    }
    r = fd >= 0 ? futimens(fd, ts) : utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
    if (r < 0)
        return berth_error_make(err, errno, "set times of \"%s\"", path);
    return 0;
}

/* Writes the entry's data blocks; *end is the offset after the last byte written (a sparse file
 * whose last block is a hole ends before its size). */
static int write_data(struct apply *ap, struct archive *a, int fd, const char *path, int64_t *end,
                      berth_error_t *err)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    la_int64_t pos = 0;
    for (;;) {
        int r = archive_read_data_block(a, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return berth_error_make(err, 0, "read data of \"%s\" from tar: %s", path,
                                    archive_error_string(a));
        if (offset != pos && lseek(fd, offset, SEEK_SET) < 0)
            return berth_error_make(err, errno, "seek in \"%s\"", path);
        const char *p = buf;
        size_t left = size;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return berth_error_make(err, errno, "write \"%s\"", path);
            }
            p += w;
            left -= (size_t)w;
        }
        pos = offset + (la_int64_t)size;
        ap->written += size;
    }
    *end = pos;
    return 0;
}

static int apply_whiteout(struct apply *ap, const char *dir, const char *base, berth_error_t *err)
{
    const char *target = base + 4; /* after ".wh." */
    bool opaque = strcmp(base, ".wh..wh..opq") == 0;
    if (!opaque && (*target == '\0' || strcmp(target, ".") == 0 || strcmp(target, "..") == 0 ||
                    strchr(target, '/')))
        return berth_error_make_status(err, EINVAL, "invalid whiteout \"%s/%s\"", dir, base);
    if (ap->opts->whiteouts == TAR_WHITEOUT_OVERLAY) {
        int dfd = parent_fd(ap, dir, err);
        if (dfd < 0)
            return -1;
        if (opaque) {
            cleanup_free char *xname = xasprintf("%s.overlay.opaque", ap->opts->overlay_xattr_ns);
            if (fsetxattr(dfd, xname, "y", 1, 0) < 0)
                return berth_error_make(err, errno, "set %s on \"%s\"", xname, dir);
            return 0;
        }
        if (remove_existing(ap, dfd, target, target, err) < 0)
            return -1;
        if (mknodat(dfd, target, S_IFCHR | 0, makedev(0, 0)) < 0)
            return berth_error_make(err, errno, "create whiteout for \"%s/%s\"", dir, target);
        return 0;
    }
    /* delete mode: only act if the directory exists */
    cache_drop(ap);
    cleanup_close int dfd = tar_openat_in_root(ap->root_fd, dir, O_RDONLY | O_DIRECTORY, 0);
    if (dfd < 0)
        return 0;
    if (!opaque) {
        before_removal(ap, dfd, target);
        return fs_rm_rf_at(dfd, target, err) < 0 ? berth_error_wrap(err, "apply whiteout") : 0;
    }
    cleanup_dir DIR *d = fdopendir(dup(dfd));
    if (!d)
        return berth_error_make(err, errno, "opendir \"%s\"", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        before_removal(ap, dfd, de->d_name);
        if (fs_rm_rf_at(dfd, de->d_name, err) < 0)
            return berth_error_wrap(err, "apply opaque whiteout in \"%s\"", dir);
    }
    return 0;
}

static int apply_entry(struct apply *ap, struct archive *a, struct archive_entry *e,
                       berth_error_t *err)
{
    const char *raw = archive_entry_pathname(e);
    if (!raw)
        return berth_error_make_status(err, EINVAL, "tar entry without a name");
    cleanup_free char *rel = tar_clean_path(raw);
    if (*rel == '\0')
        return 0; /* the root itself: keep the layer root's own metadata */
    cleanup_free char *work = xstrdup(rel);
    const char *dir, *base;
    split_path(work, &dir, &base);

    if (strncmp(base, ".wh.", 4) == 0)
        return apply_whiteout(ap, dir, base, err);

    int dfd = parent_fd(ap, dir, err);
    if (dfd < 0)
        return -1;
    mode_t type = archive_entry_filetype(e);
    const char *hardlink = archive_entry_hardlink(e);

    /* Each kind is created first and only on EEXIST is the old entry removed and the creation
     * retried: no stat per entry in the common case of a fresh layer. */
    if (hardlink) {
        cleanup_free char *trel = tar_clean_path(hardlink);
        if (*trel == '\0')
            return berth_error_make_status(err, EINVAL, "hardlink \"%s\" to the layer root", rel);
        cleanup_free char *twork = xstrdup(trel);
        const char *tdir, *tbase;
        split_path(twork, &tdir, &tbase);
        cleanup_close int tfd = open_dir_in_root(ap->root_fd, tdir, false, err);
        if (tfd < 0)
            return berth_error_wrap(err, "hardlink \"%s\" -> \"%s\"", rel, trel);
        /* flags 0: the final component is linked itself, never followed */
        int r = linkat(tfd, tbase, dfd, base, 0);
        if (r < 0 && errno == EEXIST) {
            if (make_room(ap, &dfd, dir, base, rel, err) < 0)
                return -1;
            r = linkat(tfd, tbase, dfd, base, 0);
        }
        if (r < 0)
            return berth_error_make(err, errno, "hardlink \"%s\" -> \"%s\"", rel, trel);
        return 0;
    }

    switch (type) {
    case AE_IFREG: {
        /* created with its final permission bits (set-id bits come after the chown, which
         * would clear them): set_metadata's chmod is then skipped when the umask kept them */
        const int oflags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
        mode_t cmode = archive_entry_perm(e) & 0777;
        cleanup_close int fd = openat(dfd, base, oflags, cmode);
        if (fd < 0 && errno == EEXIST) {
            if (make_room(ap, &dfd, dir, base, rel, err) < 0)
                return -1;
            fd = openat(dfd, base, oflags, cmode);
        }
        if (fd < 0)
            return berth_error_make(err, errno, "create \"%s\"", rel);
        struct stat fst;
        if (fstat(fd, &fst) < 0)
            return berth_error_make(err, errno, "stat \"%s\"", rel);
        int64_t end = 0;
        if (write_data(ap, a, fd, rel, &end, err) < 0)
            return -1;
        /* only a sparse file ending in a hole needs its size set */
        if (archive_entry_size_is_set(e) && end < archive_entry_size(e) &&
            ftruncate(fd, archive_entry_size(e)) < 0)
            return berth_error_make(err, errno, "truncate \"%s\"", rel);
        if (ap->rec && archive_entry_size(e) > 0)
            ino_add(&ap->recorded, fst.st_ino, ap->entry_index - 1);
        return set_metadata(ap, dfd, base, fd, &fst, e, rel, err);
    }
    case AE_IFDIR:
        if (mkdirat(dfd, base, 0700) < 0) {
            if (errno != EEXIST)
                return berth_error_make(err, errno, "mkdir \"%s\"", rel);
            struct stat st;
            /* an existing directory is kept (and gets this entry's metadata) */
            if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
                if (make_room(ap, &dfd, dir, base, rel, err) < 0)
                    return -1;
                if (mkdirat(dfd, base, 0700) < 0)
                    return berth_error_make(err, errno, "mkdir \"%s\"", rel);
            }
        }
        return set_metadata(ap, dfd, base, -1, NULL, e, rel, err);
    case AE_IFLNK: {
        const char *target = archive_entry_symlink(e);
        if (!target)
            return berth_error_make_status(err, EINVAL, "symlink \"%s\" without target", rel);
        int r = symlinkat(target, dfd, base);
        if (r < 0 && errno == EEXIST) {
            if (make_room(ap, &dfd, dir, base, rel, err) < 0)
                return -1;
            r = symlinkat(target, dfd, base);
        }
        if (r < 0)
            return berth_error_make(err, errno, "symlink \"%s\"", rel);
        return set_metadata(ap, dfd, base, -1, NULL, e, rel, err);
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(e);
        int r = mknodat(dfd, base, type | 0600, dev);
        if (r < 0 && errno == EEXIST) {
            if (make_room(ap, &dfd, dir, base, rel, err) < 0)
                return -1;
            r = mknodat(dfd, base, type | 0600, dev);
        }
        if (r < 0) {
            if (type != AE_IFIFO && ap->opts->rootless && errno == EPERM) {
                ap->skipped_devices++;
                return 0;
            }
            return berth_error_make(err, errno, "mknod \"%s\"", rel);
        }
        return set_metadata(ap, dfd, base, -1, NULL, e, rel, err);
    }
    default:
        if (make_room(ap, &dfd, dir, base, rel, err) < 0)
            return -1;
        log_warn("skipping \"%s\": unsupported tar entry type 0%o", rel, (unsigned)type);
        return 0;
    }
}

static int finish_dirs(struct apply *ap, berth_error_t *err)
{
    /* deepest first is not needed: setting times doesn't touch the parent's mtime */
    for (size_t i = 0; i < ap->n_dirs; i++) {
        cleanup_close int fd =
            tar_openat_in_root(ap->root_fd, ap->dirs[i].path, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
            continue; /* removed later in the stream */
        if (futimens(fd, ap->dirs[i].ts) < 0)
            return berth_error_make(err, errno, "set times of \"%s\"", ap->dirs[i].path);
    }
    return 0;
}

static void apply_free(struct apply *ap)
{
    cache_drop(ap);
    free(ap->recorded.v);
    for (size_t i = 0; i < ap->n_dirs; i++)
        free(ap->dirs[i].path);
    free(ap->dirs);
}

int tar_apply(int root_fd, berth_reader_t *tar, const struct tar_apply_options *opts,
              struct storage_apply_result *res, berth_error_t *err)
{
    struct input *in = xzalloc(sizeof(*in));
    in->lower = tar;
    in->dig = digester_new(DIGEST_SHA256);
    in->err = err;
    struct apply ap = {.root_fd = root_fd, .opts = opts, .cached_fd = -1};
    struct archive *a = archive_read_new();
    int ret = -1;
    if (opts->record_path) {
        if (tar_split_recorder_open(opts->record_path, &in->rec, err) < 0)
            goto out;
        ap.rec = in->rec;
    }
    archive_read_support_format_tar(a);
    archive_read_support_format_empty(a);
    if (archive_read_open(a, in, NULL, input_read, NULL) != ARCHIVE_OK) {
        if (!in->failed)
            berth_error_make(err, 0, "read tar: %s", archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            if (!in->failed)
                berth_error_make(err, 0, "read tar: %s", archive_error_string(a));
            goto out;
        }
        uint32_t idx = ap.entry_index++;
        if (apply_entry(&ap, a, e, err) < 0) {
            if (in->failed)
                goto out;
            goto out;
        }
        if (in->rec && archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e) &&
            archive_entry_size(e) > 0) {
            cleanup_free char *rel = tar_clean_path(archive_entry_pathname(e));
            tar_split_recorder_name(in->rec, idx, rel);
        }
    }
    /* libarchive stops at the end-of-archive marker: the rest (second zero block, record
     * padding) is part of the DiffID and of the exact tar, so read it through as well. */
    {
        const void *b;
        la_ssize_t n;
        while ((n = input_read(a, in, &b)) > 0)
            ;
        if (n < 0)
            goto out;
    }
    if (finish_dirs(&ap, err) < 0)
        goto out;
    if (ap.skipped_devices)
        log_warn("skipped %zu device node(s): they can't be created without root",
                 ap.skipped_devices);
    if (ap.failed_chowns > 1)
        log_warn("%zu file(s) kept their current owner (ids not mapped)", ap.failed_chowns);
    if (ap.failed_xattrs > 1)
        log_warn("%zu extended attribute(s) could not be set", ap.failed_xattrs);
    if (in->rec) {
        /* without a usable record the layer still applies: diffs are then generated */
        if (ap.record_broken) {
            log_debug("a replaced file of the layer could not be kept: no exact tar record");
            tar_split_recorder_abort(in->rec);
        } else {
            berth_error_t e2 = NULL;
            if (tar_split_recorder_finish(in->rec, &e2) < 0)
                log_debug("no exact tar record kept: %s", berth_error_msg(e2));
            berth_error_release(&e2);
        }
        in->rec = NULL;
    }
    res->diff_digest = digester_finish(in->dig);
    res->diff_size = in->bytes;
    res->size = ap.written;
    ret = 0;
out:
    if (in->rec)
        tar_split_recorder_abort(in->rec);
    archive_read_free(a);
    apply_free(&ap);
    digester_free(in->dig);
    free(in);
    return ret;
}

void storage_apply_result_clear(struct storage_apply_result *r)
{
    free(r->diff_digest);
    r->diff_digest = NULL;
}
