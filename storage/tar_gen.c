/* Producing a layer tar from a directory (deterministic: sorted names, no user/group names,
 * optional mtime clamp) and copying trees for vfs. */
#include "storage/tar.h"
#include "storage/tar_split.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define XATTR_LIST_MAX_ (64 * 1024)
#define COPY_CHUNK      (256 * 1024)

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory (without . and ..), NULL-terminated. */
static int list_dir(int dfd, char ***out, berth_error_t *err)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory");
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return berth_error_make(err, errno, "opendir");
    }
    char **v = xzalloc(sizeof(char *));
    size_t n = 0, cap = 1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n + 1 >= cap) {
            cap *= 2;
            v = xreallocarray(v, cap, sizeof(char *));
        }
        v[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    v[n] = NULL;
    qsort(v, n, sizeof(char *), cmp_str);
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ generation */

struct link_ent {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct pend {
    char *rel;
    int fd; /* O_RDONLY dir fd */
    struct stat st;
    bool emitted;
    bool opaque; /* overlay: emit .wh..wh..opq after it */
};

struct gen {
    struct archive *a;
    const struct tar_generate_options *opts;
    struct link_ent *links;
    size_t n_links, cap_links;
    struct pend *stack;
    size_t depth, cap_stack;
    char *buf;
    char *opaque_xattr;
};

static int64_t clamp(const struct gen *g, int64_t t)
{
    if (g->opts->clamp_mtime >= 0 && t > g->opts->clamp_mtime)
        return g->opts->clamp_mtime;
    return t;
}

static void add_xattrs(struct gen *g, struct archive_entry *e, int fd, int dfd, const char *name,
                       bool is_link)
{
    if (is_link)
        return;
    char path[64];
    cleanup_free char *full = NULL;
    cleanup_free char *list = xmalloc(XATTR_LIST_MAX_);
    ssize_t n;
    if (fd >= 0) {
        n = flistxattr(fd, list, XATTR_LIST_MAX_);
    } else {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", dfd);
        full = xasprintf("%s/%s", path, name);
        n = llistxattr(full, list, XATTR_LIST_MAX_);
    }
    if (n <= 0)
        return;
    /* sort names for determinism */
    size_t cnt = 0;
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
        cnt++;
    cleanup_free const char **names = xcalloc(cnt + 1, sizeof(char *));
    size_t k = 0;
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
        names[k++] = list + i;
    qsort(names, cnt, sizeof(char *), cmp_str);
    for (size_t i = 0; i < cnt; i++) {
        const char *x = names[i];
        if (strncmp(x, "trusted.overlay.", 16) == 0 || strncmp(x, "user.overlay.", 13) == 0)
            continue;
        ssize_t vl =
            fd >= 0 ? fgetxattr(fd, x, g->buf, COPY_CHUNK) : lgetxattr(full, x, g->buf, COPY_CHUNK);
        if (vl < 0)
            continue;
        archive_entry_xattr_add_entry(e, x, g->buf, (size_t)vl);
    }
}

static int write_header(struct gen *g, struct archive_entry *e, const char *rel, berth_error_t *err)
{
    if (archive_write_header(g->a, e) < ARCHIVE_WARN)
        return berth_error_make(err, 0, "write tar header for \"%s\": %s", rel,
                                archive_error_string(g->a));
    return 0;
}

static int emit_whiteout(struct gen *g, const char *dir_rel, const char *name, berth_error_t *err)
{
    cleanup_free char *rel =
        *dir_rel ? xasprintf("%s/.wh.%s", dir_rel, name) : xasprintf(".wh.%s", name);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, rel);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0);
    archive_entry_set_size(e, 0);
    archive_entry_set_mtime(e, 0, 0);
    int r = write_header(g, e, rel, err);
    archive_entry_free(e);
    return r;
}

/* Emits one non-whiteout entry at dfd/name. */
static int emit(struct gen *g, int dfd, const char *name, const char *rel, const struct stat *st,
                int fd_dir, berth_error_t *err)
{
    struct archive_entry *e = archive_entry_new();
    int ret = -1;
    cleanup_close int fd = -1;
    archive_entry_set_pathname(e, rel);
    archive_entry_set_uid(e, st->st_uid);
    archive_entry_set_gid(e, st->st_gid);
    archive_entry_set_perm(e, st->st_mode & 07777);
    archive_entry_set_mtime(e, clamp(g, st->st_mtim.tv_sec),
                            clamp(g, st->st_mtim.tv_sec) == st->st_mtim.tv_sec ? st->st_mtim.tv_nsec
                                                                               : 0);
    if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
        for (size_t i = 0; i < g->n_links; i++) {
            if (g->links[i].dev == st->st_dev && g->links[i].ino == st->st_ino) {
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_hardlink(e, g->links[i].path);
                archive_entry_set_size(e, 0);
                ret = write_header(g, e, rel, err);
                goto out;
            }
        }
        if (g->n_links == g->cap_links) {
            g->cap_links = g->cap_links ? g->cap_links * 2 : 16;
            g->links = xreallocarray(g->links, g->cap_links, sizeof(*g->links));
        }
        g->links[g->n_links++] = (struct link_ent){st->st_dev, st->st_ino, xstrdup(rel)};
    }
    if (S_ISREG(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, st->st_size);
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            berth_error_make(err, errno, "open \"%s\"", rel);
            goto out;
        }
    } else if (S_ISDIR(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFDIR);
    } else if (S_ISLNK(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFLNK);
        ssize_t n = readlinkat(dfd, name, g->buf, COPY_CHUNK - 1);
        if (n < 0) {
            berth_error_make(err, errno, "readlink \"%s\"", rel);
            goto out;
        }
        g->buf[n] = '\0';
        archive_entry_set_symlink(e, g->buf);
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        archive_entry_set_filetype(e, S_ISCHR(st->st_mode) ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdev(e, st->st_rdev);
    } else if (S_ISFIFO(st->st_mode)) {
        archive_entry_set_filetype(e, AE_IFIFO);
    } else {
        ret = 0; /* sockets: not representable */
        goto out;
    }
    add_xattrs(g, e, fd >= 0 ? fd : fd_dir, dfd, name, S_ISLNK(st->st_mode));
    if (write_header(g, e, rel, err) < 0)
        goto out;
    if (fd >= 0) {
        for (;;) {
            ssize_t n = read(fd, g->buf, COPY_CHUNK);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                berth_error_make(err, errno, "read \"%s\"", rel);
                goto out;
            }
            if (n == 0)
                break;
            if (archive_write_data(g->a, g->buf, (size_t)n) != n) {
                berth_error_make(err, 0, "write tar data for \"%s\": %s", rel,
                                 archive_error_string(g->a));
                goto out;
            }
        }
    }
    ret = 0;
out:
    archive_entry_free(e);
    return ret;
}

/* Emits every pending ancestor directory not yet written. */
static int flush_pending(struct gen *g, berth_error_t *err)
{
    for (size_t i = 0; i < g->depth; i++) {
        struct pend *p = &g->stack[i];
        if (p->emitted || !p->rel)
            continue;
        const char *slash = strrchr(p->rel, '/');
        const char *name = slash ? slash + 1 : p->rel;
        (void)name;
        /* p->fd is the dir itself: emit using "." relative to it */
        if (emit(g, p->fd, ".", p->rel, &p->st, p->fd, err) < 0)
            return -1;
        p->emitted = true;
        if (p->opaque) {
            cleanup_free char *wrel = xasprintf("%s/.wh..wh..opq", p->rel);
            struct archive_entry *e = archive_entry_new();
            archive_entry_set_pathname(e, wrel);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0);
            archive_entry_set_size(e, 0);
            archive_entry_set_mtime(e, 0, 0);
            int r = write_header(g, e, wrel, err);
            archive_entry_free(e);
            if (r < 0)
                return -1;
        }
    }
    return 0;
}

static bool is_whiteout_dev(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(struct gen *g, int fd)
{
    if (g->opts->mode != TAR_GEN_OVERLAY)
        return false;
    char v[4];
    ssize_t n = fgetxattr(fd, g->opaque_xattr, v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

static bool same_entry(int dfd, int pfd, const char *name, const struct stat *a,
                       const struct stat *b)
{
    if ((a->st_mode & S_IFMT) != (b->st_mode & S_IFMT) || a->st_mode != b->st_mode ||
        a->st_uid != b->st_uid || a->st_gid != b->st_gid)
        return false;
    if (S_ISDIR(a->st_mode))
        return true; /* directory contents are compared entry by entry */
    if (a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
        a->st_mtim.tv_nsec != b->st_mtim.tv_nsec)
        return false;
    if ((S_ISCHR(a->st_mode) || S_ISBLK(a->st_mode)) && a->st_rdev != b->st_rdev)
        return false;
    if (S_ISLNK(a->st_mode)) {
        char x[4096], y[4096];
        ssize_t n = readlinkat(dfd, name, x, sizeof(x));
        ssize_t m = readlinkat(pfd, name, y, sizeof(y));
        return n == m && n >= 0 && memcmp(x, y, (size_t)n) == 0;
    }
    return true;
}

static int walk(struct gen *g, int dfd, int pfd, const char *rel, berth_error_t *err);

static int descend(struct gen *g, int dfd, int pfd, const char *name, const char *rel,
                   const struct stat *st, bool emit_now, berth_error_t *err)
{
    int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0)
        return berth_error_make(err, errno, "open \"%s\"", rel);
    int cpfd = -1;
    bool opaque = is_opaque(g, cfd);
    if (pfd >= 0 && !opaque)
        cpfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (g->depth == g->cap_stack) {
        g->cap_stack = g->cap_stack ? g->cap_stack * 2 : 16;
        g->stack = xreallocarray(g->stack, g->cap_stack, sizeof(*g->stack));
    }
    g->stack[g->depth++] = (struct pend){
        .rel = xstrdup(rel), .fd = cfd, .st = *st, .emitted = false, .opaque = opaque};
    int r = 0;
    if (emit_now || opaque)
        r = flush_pending(g, err);
    if (r == 0)
        r = walk(g, cfd, cpfd, rel, err);
    g->depth--;
    free(g->stack[g->depth].rel);
    close(cfd);
    if (cpfd >= 0)
        close(cpfd);
    return r;
}

static int walk(struct gen *g, int dfd, int pfd, const char *rel, berth_error_t *err)
{
    cleanup_strv char **names = NULL;
    cleanup_strv char **pnames = NULL;
    if (list_dir(dfd, &names, err) < 0)
        return berth_error_wrap(err, "list \"%s\"", *rel ? rel : ".");
    if (pfd >= 0 && list_dir(pfd, &pnames, err) < 0)
        return berth_error_wrap(err, "list parent's \"%s\"", *rel ? rel : ".");
    size_t i = 0, j = 0;
    for (;;) {
        const char *n = names[i];
        const char *p = pnames ? pnames[j] : NULL;
        if (!n && !p)
            break;
        int c = !n ? 1 : !p ? -1 : strcmp(n, p);
        if (c > 0) { /* only in parent: deleted */
            if (flush_pending(g, err) < 0 || emit_whiteout(g, rel, p, err) < 0)
                return -1;
            j++;
            continue;
        }
        cleanup_free char *crel = *rel ? xasprintf("%s/%s", rel, n) : xstrdup(n);
        struct stat st;
        if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return berth_error_make(err, errno, "stat \"%s\"", crel);
        bool in_parent = c == 0;
        struct stat pst;
        if (in_parent && fstatat(pfd, p, &pst, AT_SYMLINK_NOFOLLOW) < 0)
            in_parent = false;
        if (c == 0)
            j++;
        i++;
        if (g->opts->mode == TAR_GEN_OVERLAY && is_whiteout_dev(&st)) {
            if (flush_pending(g, err) < 0 || emit_whiteout(g, rel, n, err) < 0)
                return -1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            bool parent_dir = in_parent && S_ISDIR(pst.st_mode);
            bool changed = !parent_dir || !same_entry(dfd, pfd, n, &st, &pst);
            if (descend(g, dfd, parent_dir ? pfd : -1, n, crel, &st, changed, err) < 0)
                return -1;
            continue;
        }
        if (in_parent && same_entry(dfd, pfd, n, &st, &pst))
            continue;
        if (flush_pending(g, err) < 0 || emit(g, dfd, n, crel, &st, -1, err) < 0)
            return -1;
    }
    return 0;
}

static la_ssize_t gen_write_cb(struct archive *a, void *data, const void *buf, size_t len)
{
    int fd = *(int *)data;
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            archive_set_error(a, errno, "write spooled tar: %s", strerror(errno));
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    return (la_ssize_t)len;
}

/* Writes the whole tar of dfd (against pfd) to out_fd. */
static int gen_run(const struct tar_generate_options *opts, int dfd, int pfd, int out_fd,
                   berth_error_t *err)
{
    int ret = -1;
    struct gen g = {.opts = opts};
    g.buf = xmalloc(COPY_CHUNK);
    g.opaque_xattr =
        xasprintf("%s.overlay.opaque", opts->overlay_xattr_ns ? opts->overlay_xattr_ns : "trusted");
    g.a = archive_write_new();
    archive_write_set_format_pax_restricted(g.a);
    archive_write_set_bytes_per_block(g.a, 10240);
    if (archive_write_open(g.a, &out_fd, NULL, gen_write_cb, NULL) != ARCHIVE_OK) {
        berth_error_make(err, 0, "open tar writer: %s", archive_error_string(g.a));
        goto out;
    }
    if (walk(&g, dfd, pfd, "", err) < 0)
        goto out;
    if (archive_write_close(g.a) != ARCHIVE_OK) {
        berth_error_make(err, 0, "finish tar: %s", archive_error_string(g.a));
        goto out;
    }
    ret = 0;
out:
    archive_write_free(g.a);
    for (size_t i = 0; i < g.n_links; i++)
        free(g.links[i].path);
    free(g.links);
    for (size_t i = 0; i < g.depth; i++) {
        free(g.stack[i].rel);
        close(g.stack[i].fd);
    }
    free(g.stack);
    free(g.buf);
    free(g.opaque_xattr);
    return ret;
}

/* The tar is produced by a thread writing into a pipe, so the reader streams it with constant
 * memory and no temporary file.  An error of the producer is returned by the read that sees the
 * end of the pipe; closing the reader early breaks the pipe and the producer stops. */
struct gen_stream {
    berth_reader_t base;
    int rfd, wfd, dfd, pfd;
    struct tar_generate_options opts;
    char *xattr_ns, *parent_dir;
    pthread_t thread;
    bool joined;
    int rc;
    berth_error_t terr;
};

static void *gen_thread(void *p)
{
    struct gen_stream *gs = p;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    gs->rc = gen_run(&gs->opts, gs->dfd, gs->pfd, gs->wfd, &gs->terr);
    close(gs->wfd);
    gs->wfd = -1;
    return NULL;
}

static void gen_join(struct gen_stream *gs)
{
    if (!gs->joined) {
        pthread_join(gs->thread, NULL);
        gs->joined = true;
    }
}

static ssize_t gen_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct gen_stream *gs = (struct gen_stream *)r;
    for (;;) {
        ssize_t n = read(gs->rfd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "read generated tar");
        if (n > 0)
            return n;
        gen_join(gs);
        if (gs->rc < 0) {
            berth_error_make_status(err, berth_error_status(gs->terr), "%s",
                                    berth_error_msg(gs->terr));
            return -1;
        }
        return 0;
    }
}

static void gen_close(berth_reader_t *r)
{
    struct gen_stream *gs = (struct gen_stream *)r;
    close(gs->rfd); /* a producer still writing gets EPIPE */
    gen_join(gs);
    berth_error_release(&gs->terr);
    if (gs->dfd >= 0)
        close(gs->dfd);
    if (gs->pfd >= 0)
        close(gs->pfd);
    free(gs->xattr_ns);
    free(gs->parent_dir);
    free(gs);
}

static const struct berth_reader_ops gen_ops = {.read = gen_read, .close = gen_close};

int tar_generate(const char *dir, const struct tar_generate_options *opts, berth_reader_t **out,
                 berth_error_t *err)
{
    cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "open \"%s\"", dir);
    cleanup_close int pfd = -1;
    if (opts->mode == TAR_GEN_COMPARE && opts->parent_dir) {
        pfd = open(opts->parent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            return berth_error_make(err, errno, "open \"%s\"", opts->parent_dir);
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    fcntl(p[0], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups; best effort */
    struct gen_stream *gs = xzalloc(sizeof(*gs));
    gs->base.ops = &gen_ops;
    gs->rfd = p[0];
    gs->wfd = p[1];
    gs->dfd = steal_fd(&dfd);
    gs->pfd = steal_fd(&pfd);
    gs->opts = *opts;
    gs->xattr_ns = opts->overlay_xattr_ns ? xstrdup(opts->overlay_xattr_ns) : NULL;
    gs->parent_dir = opts->parent_dir ? xstrdup(opts->parent_dir) : NULL;
    gs->opts.overlay_xattr_ns = gs->xattr_ns;
    gs->opts.parent_dir = gs->parent_dir;
    gs->opts.tmp_dir = NULL;
    int e = pthread_create(&gs->thread, NULL, gen_thread, gs);
    if (e != 0) {
        close(gs->wfd);
        gs->joined = true;
        gen_close(&gs->base);
        return berth_error_make(err, e, "start tar producer");
    }
    *out = &gs->base;
    return 0;
}

/* ------------------------------------------------------------------ tree copy (vfs) */

struct copy {
    int root;
    struct link_ent *links;
    size_t n, cap;
    char *buf;
};

static int copy_xattrs(int sfd, int dfd, const char *rel)
{
    char list[XATTR_LIST_MAX_];
    ssize_t n = flistxattr(sfd, list, sizeof(list));
    for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(list + i) + 1) {
        char val[4096];
        ssize_t vl = fgetxattr(sfd, list + i, val, sizeof(val));
        if (vl >= 0 && fsetxattr(dfd, list + i, val, (size_t)vl, 0) < 0)
            log_debug("copy xattr %s of \"%s\": %s", list + i, rel, strerror(errno));
    }
    return 0;
}

static int copy_data(int sfd, int dfd, const char *rel, berth_error_t *err)
{
    if (ioctl(dfd, FICLONE, sfd) == 0)
        return 0;
    for (;;) {
        ssize_t n = copy_file_range(sfd, NULL, dfd, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)
                break;
            return berth_error_make(err, errno, "copy \"%s\"", rel);
        }
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(sfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "read \"%s\"", rel);
        if (n == 0)
            return 0;
        if (write(dfd, buf, (size_t)n) != n)
            return berth_error_make(err, errno, "write \"%s\"", rel);
    }
}

static int copy_dir(struct copy *c, int sdir, int ddir, const char *rel, berth_error_t *err);

static int copy_entry(struct copy *c, int sdir, int ddir, const char *name, const char *rel,
                      berth_error_t *err)
{
    struct stat st;
    if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return berth_error_make(err, errno, "stat \"%s\"", rel);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        /* every component of a recorded path is a directory we created: linkat can't wander */
        for (size_t i = 0; i < c->n; i++)
            if (c->links[i].dev == st.st_dev && c->links[i].ino == st.st_ino)
                return linkat(c->root, c->links[i].path, ddir, name, 0) < 0
                           ? berth_error_make(err, errno, "link \"%s\"", rel)
                           : 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdirat(ddir, name, 0700) < 0)
            return berth_error_make(err, errno, "mkdir \"%s\"", rel);
        cleanup_close int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        cleanup_close int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0 || d < 0)
            return berth_error_make(err, errno, "open \"%s\"", rel);
        if (copy_dir(c, s, d, rel, err) < 0)
            return -1;
        copy_xattrs(s, d, rel);
        if (fchown(d, st.st_uid, st.st_gid) < 0 || fchmod(d, st.st_mode & 07777) < 0 ||
            futimens(d, ts) < 0)
            return berth_error_make(err, errno, "set metadata of \"%s\"", rel);
        return 0;
    }
    if (S_ISREG(st.st_mode)) {
        cleanup_close int s = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        cleanup_close int d =
            openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (s < 0 || d < 0)
            return berth_error_make(err, errno, "copy \"%s\"", rel);
        if (copy_data(s, d, rel, err) < 0)
            return -1;
        copy_xattrs(s, d, rel);
        if (fchown(d, st.st_uid, st.st_gid) < 0 || fchmod(d, st.st_mode & 07777) < 0 ||
            futimens(d, ts) < 0)
            return berth_error_make(err, errno, "set metadata of \"%s\"", rel);
        if (st.st_nlink > 1) {
            if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 16;
                c->links = xreallocarray(c->links, c->cap, sizeof(*c->links));
            }
            c->links[c->n++] = (struct link_ent){st.st_dev, st.st_ino, xstrdup(rel)};
        }
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
        if (n < 0)
            return berth_error_make(err, errno, "readlink \"%s\"", rel);
        target[n] = '\0';
        if (symlinkat(target, ddir, name) < 0)
            return berth_error_make(err, errno, "symlink \"%s\"", rel);
    } else {
        if (mknodat(ddir, name, st.st_mode, st.st_rdev) < 0)
            return berth_error_make(err, errno, "mknod \"%s\"", rel);
        if (fchmodat(ddir, name, st.st_mode & 07777, 0) < 0)
            return berth_error_make(err, errno, "chmod \"%s\"", rel);
    }
    if (fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
        utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return berth_error_make(err, errno, "set metadata of \"%s\"", rel);
    return 0;
}

static int copy_dir(struct copy *c, int sdir, int ddir, const char *rel, berth_error_t *err)
{
    cleanup_strv char **names = NULL;
    if (list_dir(sdir, &names, err) < 0)
        return -1;
    for (char **n = names; *n; n++) {
        cleanup_free char *crel = *rel ? xasprintf("%s/%s", rel, *n) : xstrdup(*n);
        if (copy_entry(c, sdir, ddir, *n, crel, err) < 0)
            return -1;
    }
    return 0;
}

int tar_copy_tree(const char *src, const char *dst, berth_error_t *err)
{
    struct stat st;
    if (stat(src, &st) < 0)
        return berth_error_make(err, errno, "stat \"%s\"", src);
    if (mkdir(dst, 0700) < 0)
        return berth_error_make(err, errno, "mkdir \"%s\"", dst);
    cleanup_close int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cleanup_close int d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s < 0 || d < 0)
        return berth_error_make(err, errno, "open \"%s\"", s < 0 ? src : dst);
    struct copy c = {.root = d};
    int r = copy_dir(&c, s, d, "", err);
    for (size_t i = 0; i < c.n; i++)
        free(c.links[i].path);
    free(c.links);
    if (r < 0)
        return r;
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    copy_xattrs(s, d, ".");
    if (fchown(d, st.st_uid, st.st_gid) < 0 || fchmod(d, st.st_mode & 07777) < 0 ||
        futimens(d, ts) < 0)
        return berth_error_make(err, errno, "set metadata of \"%s\"", dst);
    return 0;
}
