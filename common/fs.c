#include "common/fs.h"
#include "common/alloc.h"
#include "common/cleanup.h"

#include <dirent.h>
#include <linux/magic.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- reading ---- */

int fs_read_fd(int fd, size_t max, const char *what, char **out, size_t *len, berth_error_t *err)
{
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4; /* keeps max + 1 and doubling from overflowing */
    struct stat st;
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat \"%s\"", what);
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        return berth_error_make_status(err, EFBIG,
                                       "read \"%s\": file too large (%jd bytes, limit %zu)", what,
                                       (intmax_t)st.st_size, max);
    /* a regular file's size is a hint (it may grow while we read); others start small */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    if (cap > max + 1)
        cap = max + 1;
    size_t used = 0;
    cleanup_free char *buf = xmalloc(cap + 1);
    for (;;) {
        if (used == cap) {
            if (cap > max) /* read max+1 bytes: too large */
                return berth_error_make_status(
                    err, EFBIG, "read \"%s\": file too large (limit %zu bytes)", what, max);
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            if (ncap <= cap)
                ncap = cap + 1;
            buf = xrealloc(buf, ncap + 1);
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "read \"%s\"", what);
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used > max)
        return berth_error_make_status(err, EFBIG, "read \"%s\": file too large (limit %zu bytes)",
                                       what, max);
    buf[used] = '\0';
    if (len)
        *len = used;
    *out = steal_pointer(&buf);
    return 0;
}

int fs_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                    berth_error_t *err)
{
    cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    return fs_read_fd(fd, max, path, out, len, err);
}

int fs_read_file(const char *path, size_t max, char **out, size_t *len, berth_error_t *err)
{
    return fs_read_file_at(AT_FDCWD, path, max, out, len, err);
}

/* ---- atomic writes ---- */

static void random_suffix(char out[7])
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16) ^
                          (unsigned long)(uintptr_t)out;
        for (int i = 0; i < 6; i++) {
            r[i] = (unsigned char)x;
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            x ^= x >> 29;
        }
    }
    for (int i = 0; i < 6; i++)
        out[i] = chars[r[i] % (sizeof(chars) - 1)];
    out[6] = '\0';
}

bool fs_temp_is_stale(int dirfd, const char *entry, long pid)
{
    struct stat st;
    return pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) < 0 && errno == ESRCH &&
           fstatat(dirfd, entry, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           st.st_mtime < time(NULL) - FS_STALE_TEMP_AGE;
}

/* "<base>.tmp-<pid>-XXXXXX" -> pid, or -1 when entry is not such a name (with base, when given) */
static long temp_name_pid(const char *entry, const char *base)
{
    const char *t = strstr(entry, ".tmp-");
    if (!t || t == entry ||
        (base && ((size_t)(t - entry) != strlen(base) || strncmp(entry, base, strlen(base)) != 0)))
        return -1;
    char *end;
    errno = 0;
    long pid = strtol(t + 5, &end, 10);
    if (errno || end == t + 5 || *end != '-' || strlen(end + 1) != 6)
        return -1;
    return pid;
}

void fs_remove_stale_temps_at(int dirfd, const char *name)
{
    const char *slash = name ? strrchr(name, '/') : NULL;
    cleanup_free char *dir = slash ? xstrndup(name, (size_t)(slash - name + 1)) : xstrdup(".");
    const char *base = slash ? slash + 1 : name;
    int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    cleanup_dir DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = temp_name_pid(de->d_name, base);
        if (pid > 0 && fs_temp_is_stale(fd, de->d_name, pid))
            unlinkat(fd, de->d_name, 0);
    }
}

/* Creates "<name>.tmp-<pid>-XXXXXX" relative to dirfd with O_EXCL; returns fd, *tmp owned.  The
 * pid lets fs_remove_stale_temps_at tell a dead writer's leftover from a live writer's file. */
static int create_temp_at(int dirfd, const char *name, mode_t mode, char **tmp, berth_error_t *err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        char sfx[7];
        random_suffix(sfx);
        char *t = xasprintf("%s.tmp-%d-%s", name, (int)getpid(), sfx);
        int fd = openat(dirfd, t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
        if (fd >= 0) {
            *tmp = t;
            return fd;
        }
        int e = errno;
        if (e != EEXIST) {
            berth_error_make(err, e, "create temporary file \"%s\"", t);
            free(t);
            return -1;
        }
        free(t);
    }
    return berth_error_make_status(err, EEXIST,
                                   "create temporary file for \"%s\": too many collisions", name);
}

/* fsyncs the directory that contains `name` (relative to dirfd). */
static int fsync_parent_at(int dirfd, const char *name, berth_error_t *err)
{
    const char *slash = strrchr(name, '/');
    cleanup_free char *dir = NULL;
    if (slash == NULL)
        dir = xstrdup(".");
    else if (slash == name)
        dir = xstrdup("/");
    else
        dir = xstrndup(name, (size_t)(slash - name));
    cleanup_close int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory \"%s\"", dir);
    if (fsync(fd) < 0 && errno != EINVAL)
        return berth_error_make(err, errno, "fsync directory \"%s\"", dir);
    return 0;
}

static int write_all_fd(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                            berth_error_t *err)
{
    cleanup_free char *tmp = NULL;
    int fd = create_temp_at(dirfd, name, mode, &tmp, err);
    if (fd < 0)
        return berth_error_wrap(err, "write \"%s\"", name);
    int e = 0;
    const char *op = NULL;
    if (write_all_fd(fd, data, len) < 0) {
        e = errno;
        op = "write";
    } else if (fsync(fd) < 0) {
        e = errno;
        op = "fsync";
    }
    if (close(fd) < 0 && op == NULL) {
        e = errno;
        op = "close";
    }
    if (op == NULL && renameat(dirfd, tmp, dirfd, name) < 0) {
        e = errno;
        op = "rename";
    }
    if (op != NULL) {
        unlinkat(dirfd, tmp, 0);
        return berth_error_make(err, e, "write \"%s\": %s \"%s\"", name, op, tmp);
    }
    if (fsync_parent_at(dirfd, name, err) < 0)
        return berth_error_wrap(err, "write \"%s\"", name);
    return 0;
}

int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         berth_error_t *err)
{
    return fs_write_file_atomic_at(AT_FDCWD, path, data, len, mode, err);
}

int fs_atomic_open(const char *final_path, mode_t mode, struct fs_atomic_file *out,
                   berth_error_t *err)
{
    out->fd = -1;
    out->tmp_path = NULL;
    out->final_path = NULL;
    char *tmp = NULL;
    /* large outputs (archives): a killed earlier writer's temp file is worth reclaiming */
    fs_remove_stale_temps_at(AT_FDCWD, final_path);
    int fd = create_temp_at(AT_FDCWD, final_path, mode, &tmp, err);
    if (fd < 0)
        return -1;
    out->fd = fd;
    out->tmp_path = tmp;
    out->final_path = xstrdup(final_path);
    return 0;
}

int fs_atomic_commit(struct fs_atomic_file *f, berth_error_t *err)
{
    if (f->tmp_path == NULL)
        return berth_error_make_status(err, EINVAL, "commit: no open temporary file");
    if (fsync(f->fd) < 0)
        return berth_error_make(err, errno, "fsync \"%s\"", f->tmp_path);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) < 0)
        return berth_error_make(err, errno, "close \"%s\"", f->tmp_path);
    if (rename(f->tmp_path, f->final_path) < 0)
        return berth_error_make(err, errno, "rename \"%s\" to \"%s\"", f->tmp_path, f->final_path);
    /* Committed: from here nothing is unlinked. */
    free(f->tmp_path);
    f->tmp_path = NULL;
    int r = fsync_parent_at(AT_FDCWD, f->final_path, err);
    free(f->final_path);
    f->final_path = NULL;
    return r;
}

void fs_atomic_abort(struct fs_atomic_file *f)
{
    /* tmp_path is the ownership marker, so a zero-initialised struct is safe to abort. */
    if (f->tmp_path != NULL) {
        if (f->fd >= 0)
            close(f->fd);
        unlink(f->tmp_path);
    }
    f->fd = -1;
    free(f->tmp_path);
    f->tmp_path = NULL;
    free(f->final_path);
    f->final_path = NULL;
}

/* ---- output files named by the user ---- */

/* Follows the symlinks at the end of path; *magic when one of them lives on procfs (/dev/stdout,
 * /dev/fd/N, /proc/self/fd/N): those name open files, not paths to rename over. */
static int resolve_output(const char *path, char **out, bool *magic, berth_error_t *err)
{
    *magic = false;
    if (path == NULL || *path == '\0')
        return berth_error_make_status(err, EINVAL, "output: empty path");
    cleanup_free char *cur = xstrdup(path);
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(cur, &st) < 0) {
            if (errno == ENOENT)
                break; /* lands here (a dangling link's target is created) */
            return berth_error_make(err, errno, "stat \"%s\"", cur);
        }
        if (!S_ISLNK(st.st_mode))
            break;
        const char *slash = strrchr(cur, '/');
        cleanup_free char *dir = slash == NULL  ? xstrdup(".")
                                 : slash == cur ? xstrdup("/")
                                                : xstrndup(cur, (size_t)(slash - cur));
        struct statfs sf;
        if (statfs(dir, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC) {
            *magic = true;
            break;
        }
        if (hops >= 40)
            return berth_error_make_status(err, ELOOP, "output \"%s\": too many symlinks", path);
        char target[PATH_MAX];
        ssize_t n = readlink(cur, target, sizeof(target) - 1);
        if (n < 0)
            return berth_error_make(err, errno, "readlink \"%s\"", cur);
        target[n] = '\0';
        char *next;
        if (target[0] == '/' || slash == NULL)
            next = xstrdup(target);
        else
            next = xasprintf("%.*s/%s", (int)(slash - cur), cur, target);
        free(cur);
        cur = next;
    }
    *out = steal_pointer(&cur);
    return 0;
}

int fs_output_resolve(const char *path, char **out, berth_error_t *err)
{
    bool magic;
    return resolve_output(path, out, &magic, err);
}

static int connect_unix(const char *path, berth_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return berth_error_make_status(err, ENAMETOOLONG, "connect \"%s\": path too long", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berth_error_make(err, errno, "socket for \"%s\"", path);
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return berth_error_make(err, e, "connect \"%s\"", path);
    }
    return fd;
}

/* An unlinked temporary file for a seekable stand-in. */
static int anonymous_temp(berth_error_t *err)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/var/tmp";
    int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    cleanup_free char *t = xasprintf("%s/berth-output-XXXXXX", dir);
    fd = mkostemp(t, O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "create a temporary file in \"%s\"", dir);
    unlink(t);
    return fd;
}

int fs_output_open(const char *path, mode_t mode, unsigned flags, struct fs_output *out,
                   berth_error_t *err)
{
    *out = (struct fs_output){.fd = -1, .target_fd = -1, .atomic = {.fd = -1}};
    cleanup_free char *final = NULL;
    bool magic = false;
    if (resolve_output(path, &final, &magic, err) < 0)
        return -1;
    /* stat follows every link, /proc's magic ones too */
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode))
        return berth_error_make_status(err, EISDIR, "output \"%s\": is a directory", path);
    if ((exists && !S_ISREG(st.st_mode)) || magic) {
        /* opened by the name the user gave: the kernel follows a /proc link to the open file
         * it stands for (a pipe, a terminal); a regular file that way is truncated, as cp does */
        int tfd;
        if (exists && S_ISSOCK(st.st_mode))
            tfd = connect_unix(path, err);
        else if ((tfd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC |
                                       (exists && S_ISREG(st.st_mode) ? O_TRUNC : 0))) < 0)
            berth_error_make(err, errno, "open \"%s\"", path);
        if (tfd < 0)
            return -1;
        free(final);
        final = xstrdup(path);
        out->target_fd = tfd;
        out->in_place = true;
        if (flags & FS_OUTPUT_SEEKABLE) {
            out->fd = anonymous_temp(err);
            if (out->fd < 0) {
                close(tfd);
                out->target_fd = -1;
                return berth_error_wrap(err, "output \"%s\"", path);
            }
        } else {
            out->fd = tfd;
        }
    } else {
        if (fs_atomic_open(final, mode, &out->atomic, err) < 0)
            return -1;
        out->fd = out->atomic.fd;
    }
    out->path = steal_pointer(&final);
    return 0;
}

int fs_output_commit(struct fs_output *o, berth_error_t *err)
{
    if (o->path == NULL || o->done)
        return berth_error_make_status(err, EINVAL, "commit: no open output");
    /* from here on a failure leaves the output for abort to clean up */
    if (!o->in_place) {
        if (fs_atomic_commit(&o->atomic, err) < 0)
            return -1;
        o->fd = -1;
        o->done = true;
        free(o->path);
        o->path = NULL;
        return 0;
    }
    if (o->fd != o->target_fd) {
        /* the seekable stand-in, copied out sequentially */
        off_t end = lseek(o->fd, 0, SEEK_END);
        if (end < 0 || lseek(o->fd, 0, SEEK_SET) < 0)
            return berth_error_make(err, errno, "output \"%s\": seek", o->path);
        cleanup_free char *buf = xmalloc(1 << 20);
        for (off_t left = end; left > 0;) {
            ssize_t n = read(o->fd, buf, left < (1 << 20) ? (size_t)left : (1 << 20));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return berth_error_make(err, n < 0 ? errno : EIO, "output \"%s\": read back",
                                        o->path);
            if (write_all_fd(o->target_fd, buf, (size_t)n) < 0)
                return berth_error_make(err, errno, "write \"%s\"", o->path);
            left -= n;
        }
        close(o->fd);
    }
    o->fd = -1;
    int tfd = o->target_fd;
    o->target_fd = -1;
    o->done = true;
    int r = 0;
    if (close(tfd) < 0 && errno != EINTR)
        r = berth_error_make(err, errno, "close \"%s\"", o->path);
    free(o->path);
    o->path = NULL;
    return r;
}

void fs_output_abort(struct fs_output *o)
{
    if (!o->done) {
        if (o->in_place) {
            if (o->fd >= 0 && o->fd != o->target_fd)
                close(o->fd);
            if (o->target_fd >= 0)
                close(o->target_fd);
        } else {
            fs_atomic_abort(&o->atomic);
        }
    }
    o->fd = -1;
    o->target_fd = -1;
    o->done = true;
    free(o->path);
    o->path = NULL;
}

int fs_write_output(const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err)
{
    struct fs_output o cleanup_output = {.fd = -1, .target_fd = -1};
    if (fs_output_open(path, mode, 0, &o, err) < 0)
        return berth_error_wrap(err, "write \"%s\"", path);
    if (write_all_fd(o.fd, data, len) < 0)
        return berth_error_make(err, errno, "write \"%s\"", path);
    if (fs_output_commit(&o, err) < 0)
        return berth_error_wrap(err, "write \"%s\"", path);
    return 0;
}

/* ---- directories ---- */

int fs_mkdir_p(const char *path, mode_t mode, berth_error_t *err)
{
    if (path == NULL || *path == '\0')
        return berth_error_make_status(err, EINVAL, "mkdir: empty path");
    cleanup_free char *p = xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char saved = *s;
            *s = '\0';
            if (mkdir(p, mode) < 0) {
                int e = errno;
                struct stat st;
                if (e != EEXIST || stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
                    return berth_error_make(err, e == EEXIST ? ENOTDIR : e, "mkdir \"%s\"", p);
                }
            }
            *s = saved;
            if (saved == '\0')
                break;
        }
    }
    return 0;
}

void fs_writeback_progress(int fd, int64_t *mark, int64_t written)
{
    if (written - *mark < FS_WRITEBACK_STEP)
        return;
    /* advisory: an error (EINVAL on a pipe, ENOSYS) only loses the head start */
    (void)sync_file_range(fd, *mark, written - *mark, SYNC_FILE_RANGE_WRITE);
    *mark = written;
}

int fs_fsync_dir(const char *path, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory \"%s\"", path);
    if (fsync(fd) < 0 && errno != EINVAL)
        return berth_error_make(err, errno, "fsync directory \"%s\"", path);
    return 0;
}

bool fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

char *fs_join(const char *a, const char *b)
{
    size_t al = strlen(a);
    while (al > 0 && a[al - 1] == '/')
        al--;
    while (*b == '/')
        b++;
    return xasprintf("%.*s/%s", (int)al, a, b);
}

/* True when the directory `name` in dirfd is the root of a mount (statx knows), or lives on a
 * different device than its parent. */
static bool is_mount_root_at(int dirfd, const char *name, dev_t parent_dev)
{
    struct statx stx;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &stx) == 0) {
        if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
            (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
            return true;
        if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != parent_dev)
            return true;
    }
    return false;
}

static int rm_rf_dir_contents(int dfd, const char *path, berth_error_t *err);

/* Removes `name` in dirfd (`path` is its display path).  parent_dev < 0: no device check. */
static int rm_rf_entry(int dirfd, const char *name, const char *path, bool check_dev,
                       dev_t parent_dev, berth_error_t *err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return berth_error_make(err, errno, "stat \"%s\"", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
            return berth_error_make(err, errno, "remove \"%s\"", path);
        return 0;
    }
    if (check_dev && is_mount_root_at(dirfd, name, parent_dev))
        return berth_error_make_status(err, EBUSY, "remove \"%s\": is a mount point", path);
    /* Layers may contain 0555 (or 0000) directories: give ourselves access first. */
    if ((st.st_mode & S_IRWXU) != S_IRWXU) {
        mode_t m = (st.st_mode & 07777) | S_IRWXU;
        if (fchmodat(dirfd, name, m, AT_SYMLINK_NOFOLLOW) < 0) {
            /* Without /proc glibc cannot do NOFOLLOW; lstat just said it is a directory. */
            if (errno == EOPNOTSUPP || errno == ENOSYS || errno == ENOENT)
                (void)fchmodat(dirfd, name, m, 0);
        }
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return berth_error_make(err, errno, "open directory \"%s\"", path);
    }
    struct stat st2;
    if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
        close(fd);
        return berth_error_make_status(err, EAGAIN, "remove \"%s\": changed while removing", path);
    }
    int r = rm_rf_dir_contents(fd, path, err); /* takes fd */
    if (r < 0)
        return r;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "remove directory \"%s\"", path);
    return 0;
}

/* Empties the directory open as dfd (closes dfd). */
static int rm_rf_dir_contents(int dfd, const char *path, berth_error_t *err)
{
    struct stat dst;
    if (fstat(dfd, &dst) < 0) {
        int e = errno;
        close(dfd);
        return berth_error_make(err, e, "stat \"%s\"", path);
    }
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        close(dfd);
        return berth_error_make(err, e, "open directory \"%s\"", path);
    }
    /* Two passes at most: removing while reading can in theory skip entries. */
    for (int pass = 0; pass < 2; pass++) {
        bool removed_any = false;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            cleanup_free char *child = fs_join(path, de->d_name);
            if (rm_rf_entry(dirfd(d), de->d_name, child, true, dst.st_dev, err) < 0) {
                closedir(d);
                return -1;
            }
            removed_any = true;
            errno = 0;
        }
        if (errno != 0) {
            int e = errno;
            closedir(d);
            return berth_error_make(err, e, "read directory \"%s\"", path);
        }
        if (!removed_any)
            break;
        rewinddir(d);
    }
    closedir(d);
    return 0;
}

int fs_rm_rf_at(int dirfd, const char *name, berth_error_t *err)
{
    struct stat pst;
    bool check = false;
    dev_t pdev = 0;
    /* The top entry itself may not be a mount root either: we would empty a mounted fs. */
    cleanup_free char *parent = NULL;
    const char *slash = strrchr(name, '/');
    if (slash == NULL)
        parent = xstrdup(".");
    else if (slash == name)
        parent = xstrdup("/");
    else
        parent = xstrndup(name, (size_t)(slash - name));
    if (slash == NULL || slash[1] != '\0') {
        if (fstatat(dirfd, parent, &pst, 0) == 0) {
            check = true;
            pdev = pst.st_dev;
        }
    }
    return rm_rf_entry(dirfd, name, name, check, pdev, err);
}

int fs_rm_rf(const char *path, berth_error_t *err)
{
    if (path == NULL || *path == '\0')
        return berth_error_make_status(err, EINVAL, "remove: empty path");
    return fs_rm_rf_at(AT_FDCWD, path, err);
}

/* ---- tree size ---- */

/* Inodes with several links are counted once, as du does (busybox is one inode with hundreds of
 * names). */
struct inode_set {
    struct {
        dev_t dev;
        ino_t ino;
        bool used;
    } * slots;
    size_t cap, count;
};

static uint64_t hash_inode(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev;
    h ^= h >> 31;
    return h;
}

/* Returns true if newly inserted. */
static bool inode_set_add(struct inode_set *s, dev_t dev, ino_t ino)
{
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        __typeof__(s->slots) ns = xcalloc(ncap, sizeof(*ns));
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i].used)
                continue;
            size_t j = hash_inode(s->slots[i].dev, s->slots[i].ino) & (ncap - 1);
            while (ns[j].used)
                j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = hash_inode(dev, ino) & (s->cap - 1);
    while (s->slots[j].used) {
        if (s->slots[j].dev == dev && s->slots[j].ino == ino)
            return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j].used = true;
    s->slots[j].dev = dev;
    s->slots[j].ino = ino;
    s->count++;
    return true;
}

static int tree_size_at(int parent_fd, const char *name, const char *path, struct inode_set *seen,
                        uint64_t *disk, uint64_t *apparent, berth_error_t *err)
{
    struct stat st;
    if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0; /* vanished while walking */
        return berth_error_make(err, errno, "stat \"%s\"", path);
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !inode_set_add(seen, st.st_dev, st.st_ino))
        return 0;
    *disk += (uint64_t)st.st_blocks * 512;
    *apparent += (uint64_t)st.st_size;
    if (!S_ISDIR(st.st_mode))
        return 0;
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory \"%s\"", path);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return berth_error_make(err, e, "open directory \"%s\"", path);
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        cleanup_free char *child = fs_join(path, de->d_name);
        if (tree_size_at(dirfd(d), de->d_name, child, seen, disk, apparent, err) < 0) {
            closedir(d);
            return -1;
        }
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (e != 0)
        return berth_error_make(err, e, "read directory \"%s\"", path);
    return 0;
}

int fs_tree_size(const char *path, uint64_t *disk, uint64_t *apparent, berth_error_t *err)
{
    uint64_t dk = 0, ap = 0;
    struct inode_set seen = {0};
    int r = tree_size_at(AT_FDCWD, path, path, &seen, &dk, &ap, err);
    free(seen.slots);
    if (r < 0)
        return r;
    if (disk)
        *disk = dk;
    if (apparent)
        *apparent = ap;
    return 0;
}
