#include "common/path.h"
#include "common/alloc.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SYMLINKS 40 /* the kernel's limit too */

static atomic_bool force_fallback;
/* 0: not probed yet, 1: openat2 works, -1: unavailable (old kernel, seccomp filter). */
static atomic_int openat2_state;

void path_force_fallback(bool on)
{
    atomic_store(&force_fallback, on);
}

static long sys_openat2(int dirfd, const char *path, struct open_how *how)
{
    return syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

static bool use_openat2(void)
{
    if (atomic_load(&force_fallback))
        return false;
    int st = atomic_load(&openat2_state);
    if (st == 0) {
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
        long fd = sys_openat2(AT_FDCWD, "/", &how);
        if (fd >= 0) {
            close((int)fd);
            st = 1;
        } else {
            st = -1;
        }
        atomic_store(&openat2_state, st);
    }
    return st > 0;
}

/* openat2 inside the root; returns fd, or -1 with errno.  EAGAIN (a concurrent rename or mount
 * during resolution) is retried a few times. */
static int openat2_in_root(int root_fd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        /* O_TMPFILE includes O_DIRECTORY's bit, so test it whole */
        .mode =
            ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? (uint64_t)(mode & 07777) : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    for (int i = 0; i < 32; i++) {
        long fd = sys_openat2(root_fd, *path ? path : ".", &how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN)
            return -1;
    }
    errno = EAGAIN;
    return -1;
}

/* ---- lexical cleaning ---- */

char *path_clean_relative(const char *path)
{
    size_t len = strlen(path);
    char *out = xmalloc(len + 1);
    size_t o = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - s);
        if (n == 1 && s[0] == '.')
            continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            /* pop the last component; at the root ".." stays at the root */
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, s, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

/* ---- the fallback walk ---- */

enum walk_mode {
    WALK_OPEN,    /* resolve all but the final component; the caller opens it */
    WALK_DIR,     /* every component must be a directory (optionally created) */
    WALK_RESOLVE, /* produce the resolved path; missing components kept lexically */
};

struct walker {
    int root_fd;
    enum walk_mode mode;
    bool follow_last;
    bool create_dirs;
    int cur_fd;     /* O_PATH fd of the directory comps[0..exist_n) */
    char **comps;   /* resolved components */
    size_t n, cap;  /* comps in use */
    size_t exist_n; /* leading comps that exist as real directories (cur_fd) */
    int links;
    char *final; /* WALK_OPEN: final component to open in cur_fd */
};

static void walker_free(struct walker *w)
{
    if (w->cur_fd >= 0)
        close(w->cur_fd);
    for (size_t i = 0; i < w->n; i++)
        free(w->comps[i]);
    free(w->comps);
    free(w->final);
}

static void push_comp(struct walker *w, char *c)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->comps = xreallocarray(w->comps, w->cap, sizeof(char *));
    }
    w->comps[w->n++] = c;
}

/* Reopens cur_fd for comps[0..n) from the root: never follows ".." on the real filesystem, so
 * a directory moved out of the root concurrently cannot take us with it. */
static int reopen_from_root(struct walker *w)
{
    int fd = openat(w->root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (size_t i = 0; i < w->n; i++) {
        int nfd = openat(fd, w->comps[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (nfd < 0) {
            errno = e;
            return -1;
        }
        fd = nfd;
    }
    if (w->cur_fd >= 0)
        close(w->cur_fd);
    w->cur_fd = fd;
    w->exist_n = w->n;
    return 0;
}

static int pop_comp(struct walker *w)
{
    if (w->n == 0)
        return 0; /* ".." at the root stays at the root */
    free(w->comps[--w->n]);
    if (w->exist_n > w->n)
        return reopen_from_root(w);
    if (w->exist_n == w->n && w->cur_fd < 0)
        return reopen_from_root(w);
    return 0;
}

/* Opens (or with create_dirs creates) directory c inside cur_fd and descends into it. */
static int descend(struct walker *w, char *c)
{
    int fd = openat(w->cur_fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && w->create_dirs) {
        if (mkdirat(w->cur_fd, c, 0755) < 0 && errno != EEXIST)
            return -1;
        fd = openat(w->cur_fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        if (errno == ELOOP)
            errno = ENOTDIR; /* replaced by a symlink under us: refuse */
        return -1;
    }
    close(w->cur_fd);
    w->cur_fd = fd;
    push_comp(w, c);
    w->exist_n = w->n;
    return 0;
}

/* Walks `path` inside the root.  Returns 0, or -1 with errno set. */
static int walk(struct walker *w, const char *path)
{
    w->cur_fd = openat(w->root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w->cur_fd < 0)
        return -1;
    cleanup_free char *rest = xstrdup(path);
    cleanup_free char *linkbuf = xmalloc(PATH_MAX + 1);
    size_t pos = 0;
    for (;;) {
        while (rest[pos] == '/')
            pos++;
        if (rest[pos] == '\0')
            break;
        size_t start = pos;
        while (rest[pos] && rest[pos] != '/')
            pos++;
        cleanup_free char *c = xstrndup(rest + start, pos - start);
        size_t q = pos;
        while (rest[q] == '/')
            q++;
        bool is_last = rest[q] == '\0' && w->mode != WALK_DIR;
        free(w->final);
        w->final = NULL;

        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (pop_comp(w) < 0)
                return -1;
            continue;
        }
        if (w->exist_n < w->n) { /* below a missing component: purely lexical */
            push_comp(w, steal_pointer(&c));
            continue;
        }
        ssize_t l = readlinkat(w->cur_fd, c, linkbuf, PATH_MAX);
        if (l >= 0) {
            if (is_last && !w->follow_last) {
                if (w->mode == WALK_OPEN)
                    w->final = steal_pointer(&c);
                else
                    push_comp(w, steal_pointer(&c));
                break;
            }
            if (++w->links > MAX_SYMLINKS) {
                errno = ELOOP;
                return -1;
            }
            if (l == 0) {
                errno = ENOENT;
                return -1;
            }
            if (l >= PATH_MAX) {
                errno = ENAMETOOLONG;
                return -1;
            }
            linkbuf[l] = '\0';
            /* The link's target replaces the component; the rest of the path follows it. */
            char *nrest = xasprintf("%s/%s", linkbuf, rest + pos);
            free(rest);
            rest = nrest;
            pos = 0;
            if (linkbuf[0] == '/') {
                while (w->n > 0)
                    free(w->comps[--w->n]);
                if (reopen_from_root(w) < 0)
                    return -1;
            }
            continue;
        }
        if (errno == EINVAL) { /* exists and is not a symlink */
            if (is_last) {
                if (w->mode == WALK_OPEN)
                    w->final = steal_pointer(&c);
                else
                    push_comp(w, steal_pointer(&c));
                break;
            }
            if (descend(w, c) < 0)
                return -1;
            c = NULL; /* now owned by comps */
            continue;
        }
        if (errno == ENOENT) {
            if (is_last && w->mode == WALK_OPEN) {
                w->final = steal_pointer(&c);
                break;
            }
            if (w->create_dirs) {
                if (descend(w, c) < 0)
                    return -1;
                c = NULL;
                continue;
            }
            if (w->mode == WALK_RESOLVE) {
                push_comp(w, steal_pointer(&c));
                continue;
            }
            return -1;
        }
        return -1;
    }
    if (w->mode == WALK_OPEN && w->final == NULL)
        w->final = xstrdup(".");
    return 0;
}

/* ---- public API ---- */

int path_openat_in_root(int root_fd, const char *path, int flags, mode_t mode, berth_error_t *err)
{
    if (path == NULL)
        path = "";
    if (use_openat2()) {
        int fd = openat2_in_root(root_fd, path, flags, mode);
        if (fd >= 0)
            return fd;
        if (errno != ENOSYS && errno != EAGAIN)
            return berth_error_make(err, errno, "open \"%s\" in root", path);
    }
    struct walker w = {.root_fd = root_fd, .mode = WALK_OPEN, .cur_fd = -1};
    /* As open(2): O_NOFOLLOW and O_CREAT|O_EXCL do not follow a final symlink. */
    w.follow_last = !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));
    int fd = -1;
    if (walk(&w, path) == 0) {
        /* O_NOFOLLOW: if the final component became a symlink since we looked, fail (ELOOP)
         * rather than follow it out of the root.  An O_PATH|O_NOFOLLOW open of a symlink
         * opens the link itself, as the caller asked. */
        int extra = strcmp(w.final, ".") == 0 ? 0 : O_NOFOLLOW;
        fd = openat(w.cur_fd, w.final, flags | extra | O_CLOEXEC, mode);
    }
    int e = errno;
    walker_free(&w);
    if (fd < 0)
        return berth_error_make(err, e, "open \"%s\" in root", path);
    return fd;
}

/* Splits off the final component lexically; rejects "", ".", "..". */
static int split_parent(const char *path, char **parent, char **base, berth_error_t *err)
{
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/')
        b--;
    size_t blen = len - b;
    if (blen == 0 || (blen == 1 && path[b] == '.') ||
        (blen == 2 && path[b] == '.' && path[b + 1] == '.'))
        return berth_error_make_status(err, EINVAL, "\"%s\": final path component must be a name",
                                       path);
    *parent = xstrndup(path, b);
    *base = xstrndup(path + b, blen);
    return 0;
}

int path_open_parent_in_root(int root_fd, const char *path, bool create_parents, char **base,
                             berth_error_t *err)
{
    if (path == NULL)
        path = "";
    cleanup_free char *parent = NULL;
    cleanup_free char *name = NULL;
    if (split_parent(path, &parent, &name, err) < 0)
        return -1;
    int fd = -1;
    bool done = false;
    if (use_openat2()) {
        fd = openat2_in_root(root_fd, parent, O_RDONLY | O_DIRECTORY, 0);
        if (fd >= 0)
            done = true;
        else if (!(errno == ENOSYS || errno == EAGAIN || (errno == ENOENT && create_parents)))
            return berth_error_make(err, errno, "open parent directory of \"%s\" in root", path);
    }
    if (!done) {
        struct walker w = {.root_fd = root_fd,
                           .mode = WALK_DIR,
                           .follow_last = true,
                           .create_dirs = create_parents,
                           .cur_fd = -1};
        if (walk(&w, parent) == 0)
            fd = openat(w.cur_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = errno;
        walker_free(&w);
        if (fd < 0)
            return berth_error_make(err, e, "%s parent directory of \"%s\" in root",
                                    create_parents ? "create" : "open", path);
    }
    *base = steal_pointer(&name);
    return fd;
}

int path_resolve_in_root(int root_fd, const char *path, bool follow_last, char **out,
                         berth_error_t *err)
{
    if (path == NULL)
        path = "";
    struct walker w = {
        .root_fd = root_fd, .mode = WALK_RESOLVE, .follow_last = follow_last, .cur_fd = -1};
    if (walk(&w, path) < 0) {
        int e = errno;
        walker_free(&w);
        return berth_error_make(err, e, "resolve \"%s\" in root", path);
    }
    size_t len = 1;
    for (size_t i = 0; i < w.n; i++)
        len += strlen(w.comps[i]) + 1;
    char *s = xmalloc(len);
    size_t o = 0;
    for (size_t i = 0; i < w.n; i++) {
        if (i > 0)
            s[o++] = '/';
        size_t l = strlen(w.comps[i]);
        memcpy(s + o, w.comps[i], l);
        o += l;
    }
    s[o] = '\0';
    walker_free(&w);
    *out = s;
    return 0;
}
