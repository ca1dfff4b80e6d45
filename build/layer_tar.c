/* COPY/ADD straight to a layer: the plan's files are streamed as a tar (pax, deterministic for
 * the same inputs) that storage_layer_create_from_tar() applies on the parent layer.  Compared
 * with writing into a working layer and diffing it, every file is written once instead of twice
 * (creating files dominates the cost of a large COPY).
 *
 * The tar holds what the working-layer route would produce: the destination's ancestor
 * directories (with the parent's metadata when they exist there, 0755 root:root when they are
 * created), then the copied entries; archives of ADD re-emitted below the destination.
 * Destinations are resolved through the parent rootfs (a symlinked /lib leads to /usr/lib), and
 * every name written is relative and cleaned, so the tar can't point outside the layer. */
#include "build/build_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/path.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

enum job_kind { JOB_ENTRY, JOB_ARCHIVE };

struct job {
    enum job_kind kind;
    char *name; /* path in the layer ("a/b"); for archives the destination dir */
    struct stat st;
    char *link;
    int src_root;   /* for files, directories and archives of the plan */
    char *src_path; /* for files, directories and archives of the plan */
    bool existing;  /* an ancestor directory as it is in the parent layer */
};

/* Names (the archive's directories seen so far), open addressing. */
struct nameset {
    char **v;
    size_t n, cap;
};

static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* true when s was already there */
static bool nameset_add(struct nameset *ns, const char *s)
{
    if ((ns->n + 1) * 2 > ns->cap) {
        size_t ncap = ns->cap ? ns->cap * 2 : 256;
        char **nv = xcalloc(ncap, sizeof(char *));
        for (size_t i = 0; i < ns->cap; i++) {
            if (!ns->v[i])
                continue;
            size_t h = name_hash(ns->v[i]) & (ncap - 1);
            while (nv[h])
                h = (h + 1) & (ncap - 1);
            nv[h] = ns->v[i];
        }
        free(ns->v);
        ns->v = nv;
        ns->cap = ncap;
    }
    size_t h = name_hash(s) & (ns->cap - 1);
    while (ns->v[h]) {
        if (strcmp(ns->v[h], s) == 0)
            return true;
        h = (h + 1) & (ns->cap - 1);
    }
    ns->v[h] = xstrdup(s);
    ns->n++;
    return false;
}

static void nameset_clear(struct nameset *ns)
{
    for (size_t i = 0; i < ns->cap; i++)
        free(ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof(*ns));
}

struct ltar {
    berth_reader_t base;
    struct archive *a;
    struct job *jobs;
    size_t njobs, next;
    char *buf;
    size_t len, off, cap;
    int cur_fd;             /* file being streamed */
    int64_t cur_left;       /* bytes still owed for the current entry */
    struct archive *in;     /* archive being re-emitted */
    bool in_data;           /* reading the current archive entry's data */
    const char *in_dest;    /* destination dir of the archive */
    struct nameset in_dirs; /* directories of the archive written so far */
    const struct copy_owner *own;
    int64_t clamp;
    bool closed;
    char *error; /* first write-side error */
};

static la_ssize_t sink(struct archive *a, void *ud, const void *data, size_t n)
{
    (void)a;
    struct ltar *t = ud;
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2;
        t->buf = xrealloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    return (la_ssize_t)n;
}

static void fill_times(struct archive_entry *e, const struct timespec *ts, int64_t clamp)
{
    int64_t s = ts->tv_sec;
    long ns = ts->tv_nsec;
    if (clamp >= 0 && s >= clamp) {
        s = clamp;
        ns = 0;
    }
    (void)ns;
    /* whole seconds: a pax header per entry just for nanoseconds would double small layers */
    archive_entry_set_mtime(e, s, 0);
}

/* user.* extended attributes of the open file fd (other namespaces are not the image's) */
static void add_user_xattrs(struct archive_entry *e, int fd)
{
    char list[8192];
    ssize_t n = flistxattr(fd, list, sizeof(list));
    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(list + off) + 1) {
        const char *name = list + off;
        if (strncmp(name, "user.", 5) != 0)
            continue;
        char val[8192];
        ssize_t vl = fgetxattr(fd, name, val, sizeof(val));
        if (vl >= 0)
            archive_entry_xattr_add_entry(e, name, val, (size_t)vl);
    }
}

static int write_header(struct ltar *t, const struct job *j, int xattr_fd, berth_error_t *err)
{
    struct archive_entry *e = archive_entry_new();
    if (xattr_fd >= 0)
        add_user_xattrs(e, xattr_fd);
    bool dir = S_ISDIR(j->st.st_mode);
    cleanup_free char *name = dir ? xasprintf("%s/", j->name) : xstrdup(j->name);
    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, j->st.st_mode);
    archive_entry_set_uid(e, j->st.st_uid);
    archive_entry_set_gid(e, j->st.st_gid);
    fill_times(e, &j->st.st_mtim, t->clamp);
    if (S_ISREG(j->st.st_mode))
        archive_entry_set_size(e, j->st.st_size);
    else
        archive_entry_set_size(e, 0);
    if (S_ISLNK(j->st.st_mode))
        archive_entry_set_symlink(e, j->link);
    int r = archive_write_header(t->a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return berth_error_make_status(err, EIO, "layer tar: %s: %s", j->name,
                                       archive_error_string(t->a));
    return 0;
}

/* Opens the next job; returns 1 when there are no more. */
static int start_job(struct ltar *t, berth_error_t *err)
{
    if (t->next >= t->njobs)
        return 1;
    struct job *j = &t->jobs[t->next++];
    if (j->kind == JOB_ARCHIVE) {
        int fd = path_openat_in_root(j->src_root, j->src_path, O_RDONLY | O_CLOEXEC, 0, err);
        if (fd < 0)
            return -1;
        t->in = archive_read_new();
        archive_read_support_filter_all(t->in);
        archive_read_support_format_tar(t->in);
        if (archive_read_open_fd(t->in, fd, 1 << 16) != ARCHIVE_OK) {
            int r = berth_error_make_status(err, EIO, "ADD \"%s\": %s", j->src_path,
                                            archive_error_string(t->in));
            close(fd);
            return r;
        }
        /* libarchive does not close fds it is given: keep it to close with the archive */
        t->cur_fd = fd;
        t->in_dest = j->name;
        t->in_data = false;
        return 0;
    }
    cleanup_close int fd = -1;
    if (j->src_path && (S_ISREG(j->st.st_mode) || S_ISDIR(j->st.st_mode))) {
        fd = path_openat_in_root(j->src_root, j->src_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0,
                                 err);
        if (fd < 0)
            return -1;
    }
    if (write_header(t, j, fd, err) < 0)
        return -1;
    if (S_ISREG(j->st.st_mode) && j->st.st_size > 0) {
        t->cur_fd = steal_fd(&fd);
        t->cur_left = j->st.st_size;
    }
    return 0;
}

static char *join2(const char *a, const char *b)
{
    if (!*a)
        return xstrdup(b);
    if (!*b)
        return xstrdup(a);
    return xasprintf("%s/%s", a, b);
}

/* The directories an archive implies (a/b/file without a/ and a/b/) get entries of their
 * own, 0755 root (or the --chown owner) with the build's time, as buildah writes them: a layer
 * lists every directory it creates. */
static int implied_dirs(struct ltar *t, const char *rel, berth_error_t *err)
{
    cleanup_free char *copy = xstrdup(rel);
    for (char *p = strchr(copy, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        if (!nameset_add(&t->in_dirs, copy)) {
            struct job j = {.kind = JOB_ENTRY, .st.st_mode = S_IFDIR | 0755, .src_root = -1};
            clock_gettime(CLOCK_REALTIME, &j.st.st_mtim);
            if (t->own->set) {
                j.st.st_uid = t->own->uid;
                j.st.st_gid = t->own->gid;
            }
            cleanup_free char *name = join2(t->in_dest, copy);
            j.name = name;
            if (write_header(t, &j, -1, err) < 0)
                return -1;
        }
        *p = '/';
    }
    return 0;
}

/* One step of re-emitting an archive: a header or a chunk of data.  1 when it is exhausted. */
static int archive_step(struct ltar *t, char *chunk, size_t csize, berth_error_t *err)
{
    if (t->in_data) {
        la_ssize_t n = archive_read_data(t->in, chunk, csize);
        if (n < 0)
            return berth_error_make_status(err, EIO, "ADD: read archive: %s",
                                           archive_error_string(t->in));
        if (n == 0) {
            t->in_data = false;
            return 0;
        }
        if (archive_write_data(t->a, chunk, (size_t)n) < 0)
            return berth_error_make_status(err, EIO, "layer tar: %s", archive_error_string(t->a));
        return 0;
    }
    struct archive_entry *ie;
    int r = archive_read_next_header(t->in, &ie);
    if (r == ARCHIVE_EOF)
        return 1;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return berth_error_make_status(err, EIO, "ADD: read archive: %s",
                                       archive_error_string(t->in));
    cleanup_free char *rel = path_clean_relative(archive_entry_pathname(ie));
    const char *bn = strrchr(rel, '/');
    bn = bn ? bn + 1 : rel;
    if (!*rel || strncmp(bn, ".wh.", 4) == 0)
        return 0;
    mode_t type = archive_entry_filetype(ie);
    const char *hl = archive_entry_hardlink(ie);
    if (!hl && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return 0; /* devices, fifos: not extracted (as the working-layer route) */
    if (implied_dirs(t, rel, err) < 0)
        return -1;
    if (type == AE_IFDIR)
        nameset_add(&t->in_dirs, rel);
    struct archive_entry *e = archive_entry_new();
    cleanup_free char *name = join2(t->in_dest, rel);
    if (type == AE_IFDIR) {
        char *n2 = xasprintf("%s/", name);
        archive_entry_set_pathname(e, n2);
        free(n2);
    } else {
        archive_entry_set_pathname(e, name);
    }
    mode_t perm = archive_entry_perm(ie);
    if (t->own->chmod >= 0)
        perm = (mode_t)t->own->chmod;
    archive_entry_set_mode(e, (hl ? AE_IFREG : type) | perm);
    archive_entry_set_uid(e, t->own->set ? t->own->uid : archive_entry_uid(ie));
    archive_entry_set_gid(e, t->own->set ? t->own->gid : archive_entry_gid(ie));
    struct timespec ts = {archive_entry_mtime(ie), archive_entry_mtime_nsec(ie)};
    fill_times(e, &ts, t->clamp);
    if (archive_entry_xattr_reset(ie) > 0) {
        const char *xn;
        const void *xv;
        size_t xl;
        while (archive_entry_xattr_next(ie, &xn, &xv, &xl) == ARCHIVE_OK)
            if (strncmp(xn, "user.", 5) == 0)
                archive_entry_xattr_add_entry(e, xn, xv, xl);
    }
    if (hl) {
        cleanup_free char *target = path_clean_relative(hl);
        cleanup_free char *tn = join2(t->in_dest, target);
        archive_entry_set_hardlink(e, tn);
        archive_entry_set_size(e, 0);
    } else if (type == AE_IFLNK) {
        archive_entry_set_symlink(e, archive_entry_symlink(ie));
        archive_entry_set_size(e, 0);
    } else if (type == AE_IFREG) {
        archive_entry_set_size(e, archive_entry_size(ie));
    } else {
        archive_entry_set_size(e, 0);
    }
    r = archive_write_header(t->a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return berth_error_make_status(err, EIO, "layer tar: %s: %s", name,
                                       archive_error_string(t->a));
    t->in_data = !hl && type == AE_IFREG && archive_entry_size(ie) > 0;
    return 0;
}

static ssize_t ltar_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct ltar *t = (struct ltar *)r;
    static __thread char chunk[1 << 18];
    while (t->off == t->len) {
        t->off = t->len = 0;
        if (t->closed)
            return 0;
        if (t->cur_fd >= 0 && !t->in) {
            size_t want =
                t->cur_left < (int64_t)sizeof(chunk) ? (size_t)t->cur_left : sizeof(chunk);
            ssize_t n = want ? read(t->cur_fd, chunk, want) : 0;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return berth_error_make(err, errno, "read source file");
            }
            if (n == 0) {
                /* the file shrank since it was listed: keep the tar consistent, fail */
                if (t->cur_left > 0)
                    return berth_error_make_status(err, EIO,
                                                   "a source file changed during the build");
                close(t->cur_fd);
                t->cur_fd = -1;
                continue;
            }
            if (archive_write_data(t->a, chunk, (size_t)n) < 0)
                return berth_error_make_status(err, EIO, "layer tar: %s",
                                               archive_error_string(t->a));
            t->cur_left -= n;
            if (t->cur_left == 0) {
                close(t->cur_fd);
                t->cur_fd = -1;
            }
            continue;
        }
        if (t->in) {
            int s = archive_step(t, chunk, sizeof(chunk), err);
            if (s < 0)
                return -1;
            if (s == 1) {
                archive_read_free(t->in);
                t->in = NULL;
                nameset_clear(&t->in_dirs);
                close(t->cur_fd);
                t->cur_fd = -1;
            }
            continue;
        }
        int s = start_job(t, err);
        if (s < 0)
            return -1;
        if (s == 1) {
            if (archive_write_close(t->a) != ARCHIVE_OK)
                return berth_error_make_status(err, EIO, "layer tar: %s",
                                               archive_error_string(t->a));
            t->closed = true;
        }
    }
    size_t n = t->len - t->off;
    if (n > len)
        n = len;
    memcpy(buf, t->buf + t->off, n);
    t->off += n;
    return (ssize_t)n;
}

static void ltar_close(berth_reader_t *r)
{
    struct ltar *t = (struct ltar *)r;
    if (t->in)
        archive_read_free(t->in);
    nameset_clear(&t->in_dirs);
    if (t->cur_fd >= 0)
        close(t->cur_fd);
    archive_write_free(t->a);
    for (size_t i = 0; i < t->njobs; i++) {
        free(t->jobs[i].name);
        free(t->jobs[i].link);
        free(t->jobs[i].src_path);
    }
    free(t->jobs);
    free(t->buf);
    free(t);
}

static const struct berth_reader_ops ltar_ops = {.read = ltar_read, .close = ltar_close};

static struct job *add_job(struct ltar *t, size_t *cap)
{
    if (t->njobs == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        t->jobs = xreallocarray(t->jobs, *cap, sizeof(*t->jobs));
    }
    struct job *j = &t->jobs[t->njobs++];
    memset(j, 0, sizeof(*j));
    j->src_root = -1;
    return j;
}

static bool have_dir(const struct ltar *t, const char *name)
{
    for (size_t i = t->njobs; i-- > 0;)
        if (S_ISDIR(t->jobs[i].st.st_mode) && strcmp(t->jobs[i].name, name) == 0)
            return true;
    return false;
}

/* Emits `dir` (relative, resolved) and its ancestors as they are in the parent, or new ones.
 * owned_last: a newly created `dir` itself gets the --chown owner. */
static void add_dirs(struct ltar *t, size_t *cap, int parent_fd, const char *dir, bool owned_last)
{
    if (!*dir)
        return;
    cleanup_free char *copy = xstrdup(dir);
    for (char *p = copy;; p++) {
        bool end = *p == 0;
        if (*p == '/' || end) {
            char c = *p;
            *p = 0;
            if (!have_dir(t, copy)) {
                struct stat st;
                bool exists = false;
                if (parent_fd >= 0) {
                    berth_error_t e = NULL;
                    int fd = path_openat_in_root(
                        parent_fd, copy, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, &e);
                    berth_error_release(&e);
                    if (fd >= 0) {
                        exists = fstat(fd, &st) == 0;
                        close(fd);
                    }
                }
                if (!exists) {
                    memset(&st, 0, sizeof(st));
                    st.st_mode = S_IFDIR | 0755;
                    clock_gettime(CLOCK_REALTIME, &st.st_mtim);
                    if (end && owned_last && t->own->set) {
                        st.st_uid = t->own->uid;
                        st.st_gid = t->own->gid;
                    }
                }
                struct job *j = add_job(t, cap);
                j->kind = JOB_ENTRY;
                j->name = xstrdup(copy);
                j->st = st;
                j->existing = exists;
            }
            *p = c;
            if (end)
                break;
        }
    }
}

/* The destination resolved through the parent's symlinks, relative ("" = root). */
static char *resolve_dest(int parent_fd, const char *path)
{
    cleanup_free char *rel = path_clean_relative(path);
    if (parent_fd < 0 || !*rel)
        return steal_pointer(&rel);
    char *out = NULL;
    berth_error_t e = NULL;
    if (path_resolve_in_root(parent_fd, rel, true, &out, &e) < 0) {
        berth_error_release(&e);
        return steal_pointer(&rel);
    }
    return out;
}

static bool parent_has_dir(int parent_fd, const char *rel)
{
    if (!*rel)
        return true;
    if (parent_fd < 0)
        return false;
    berth_error_t e = NULL;
    int fd = path_openat_in_root(parent_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &e);
    berth_error_release(&e);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static char *parent_of(const char *rel)
{
    const char *sl = strrchr(rel, '/');
    return sl ? xstrndup(rel, (size_t)(sl - rel)) : xstrdup("");
}

static int cmp_job_name(const void *a, const void *b, void *ud)
{
    const struct job *jobs = ud;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(jobs[x].name, jobs[y].name);
    return c ? c : (x < y ? -1 : x > y);
}

static void drop_job(struct job *j)
{
    free(j->name);
    free(j->link);
    free(j->src_path);
    j->name = j->link = j->src_path = NULL;
}

/* A layer's tar names each path once: when sources overlap (`COPY a "" b /d/`, a dir source
 * holding a file also named alone), the later one wins as it would on disk, and a directory
 * keeps its first place (before its contents) with the last metadata.  A tar that rewrites its
 * own paths can't be reproduced from the layer's files, so its DiffID could not be exported. */
static void dedupe_jobs(struct ltar *t)
{
    if (t->njobs < 2)
        return;
    size_t *ord = xreallocarray(NULL, t->njobs, sizeof(*ord));
    for (size_t i = 0; i < t->njobs; i++)
        ord[i] = i;
    qsort_r(ord, t->njobs, sizeof(*ord), cmp_job_name, t->jobs);
    bool any = false;
    for (size_t g = 0; g < t->njobs;) {
        size_t e = g + 1;
        while (e < t->njobs && strcmp(t->jobs[ord[g]].name, t->jobs[ord[e]].name) == 0)
            e++;
        /* archives (re-emitted below their destination) are not entries of their own */
        size_t fi = e, li = e, cnt = 0;
        for (size_t k = g; k < e; k++) {
            if (t->jobs[ord[k]].kind != JOB_ENTRY)
                continue;
            if (fi == e)
                fi = k;
            li = k;
            cnt++;
        }
        if (cnt > 1) {
            struct job *last = &t->jobs[ord[li]];
            struct job *first = &t->jobs[ord[fi]];
            bool dirs = S_ISDIR(last->st.st_mode) && S_ISDIR(first->st.st_mode);
            if (dirs) {
                first->st = last->st;
                first->existing = last->existing;
            }
            for (size_t k = fi; k <= li; k++) {
                struct job *j = &t->jobs[ord[k]];
                if (j->kind == JOB_ENTRY && (dirs ? k != fi : k != li))
                    drop_job(j);
            }
            any = true;
        }
        g = e;
    }
    free(ord);
    if (!any)
        return;
    /* a directory replaced by a non-directory takes what was listed below it */
    for (size_t i = 0; i < t->njobs; i++) {
        struct job *j = &t->jobs[i];
        if (!j->name || j->kind != JOB_ENTRY || S_ISDIR(j->st.st_mode))
            continue;
        size_t n = strlen(j->name);
        for (size_t k = 0; k < i; k++) {
            struct job *c = &t->jobs[k];
            if (c->name && c->kind == JOB_ENTRY && strncmp(c->name, j->name, n) == 0 &&
                c->name[n] == '/')
                drop_job(c);
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < t->njobs; i++)
        if (t->jobs[i].name)
            t->jobs[o++] = t->jobs[i];
    t->njobs = o;
}

/* A directory of the parent layer that gets a new name in it is changed: its mtime becomes
 * the build's time, as the file system (and so buildah's and Docker's diffs) would have it. */
static void touch_changed_dirs(struct ltar *t, int parent_fd)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (size_t d = 0; d < t->njobs; d++) {
        struct job *dir = &t->jobs[d];
        if (!dir->existing)
            continue;
        size_t n = strlen(dir->name);
        bool changed = false;
        for (size_t i = 0; i < t->njobs && !changed; i++) {
            const struct job *j = &t->jobs[i];
            if (j->existing)
                continue;
            if (j->kind == JOB_ARCHIVE) {
                changed = strcmp(j->name, dir->name) == 0;
                continue;
            }
            const char *sl = strrchr(j->name, '/');
            size_t pl = sl ? (size_t)(sl - j->name) : 0;
            if (pl != n || strncmp(j->name, dir->name, n) != 0)
                continue;
            changed = parent_fd < 0;
            if (!changed) {
                berth_error_t e = NULL;
                int fd =
                    path_openat_in_root(parent_fd, j->name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, &e);
                berth_error_release(&e);
                changed = fd < 0;
                if (fd >= 0)
                    close(fd);
            }
        }
        if (changed)
            dir->st.st_mtim = now;
    }
}

int copy_plan_layer(const struct copy_plan *p, int parent_fd, const struct copy_owner *own,
                    int64_t clamp, berth_reader_t **out, berth_error_t *err)
{
    struct ltar *t = xzalloc(sizeof(*t));
    t->base.ops = &ltar_ops;
    t->cur_fd = -1;
    t->own = own;
    t->clamp = clamp;
    t->a = archive_write_new();
    archive_write_set_format_pax_restricted(t->a);
    archive_write_set_bytes_in_last_block(t->a, 1);
    if (archive_write_open2(t->a, t, NULL, sink, NULL, NULL) != ARCHIVE_OK) {
        int r = berth_error_make_status(err, EIO, "layer tar: %s", archive_error_string(t->a));
        ltar_close(&t->base);
        return r;
    }
    size_t cap = 0;
    cleanup_free char *dest = resolve_dest(parent_fd, p->dest);
    bool dest_is_dir = p->dest_dir || parent_has_dir(parent_fd, dest);
    for (size_t ti = 0, it = 0; ti < p->ntops; ti++) {
        struct copy_top_view tv;
        copy_plan_top(p, ti, &tv);
        bool is_context = !tv.url && own->reset_owner;
        if (tv.extract) {
            add_dirs(t, &cap, parent_fd, dest, true);
            struct job *j = add_job(t, &cap);
            j->kind = JOB_ARCHIVE;
            j->name = xstrdup(dest);
            j->src_root = tv.fd;
            j->src_path = xstrdup(tv.src);
            j->st.st_mode = S_IFREG;
        } else if (tv.is_dir) {
            add_dirs(t, &cap, parent_fd, dest, true);
        } else {
            if (dest_is_dir) {
                add_dirs(t, &cap, parent_fd, dest, true);
            } else {
                cleanup_free char *pd = parent_of(dest);
                add_dirs(t, &cap, parent_fd, pd, false);
            }
            if (!dest_is_dir && !*dest)
                goto bad_root;
        }
        size_t top;
        const char *rel, *link;
        const struct stat *st;
        for (; it < p->nitems; it++) {
            copy_plan_item(p, it, &top, &rel, &st, &link);
            if (top != ti)
                break;
            if (tv.extract)
                continue;
            struct job *j = add_job(t, &cap);
            j->kind = JOB_ENTRY;
            if (tv.is_dir)
                j->name = join2(dest, rel);
            else
                j->name = dest_is_dir ? join2(dest, tv.name) : xstrdup(dest);
            j->st = *st;
            if (tv.url) {
                j->st.st_mode = S_IFREG | 0600;
                j->st.st_mtim = (struct timespec){.tv_sec = tv.mtime >= 0 ? tv.mtime : 0};
            }
            if (own->chmod >= 0)
                j->st.st_mode = (j->st.st_mode & S_IFMT) | (mode_t)own->chmod;
            if (own->set) {
                j->st.st_uid = own->uid;
                j->st.st_gid = own->gid;
            } else if (is_context || own->reset_owner) {
                j->st.st_uid = 0;
                j->st.st_gid = 0;
            }
            j->link = link ? xstrdup(link) : NULL;
            if (S_ISREG(st->st_mode) || (S_ISDIR(st->st_mode) && !tv.url)) {
                j->src_root = tv.fd;
                j->src_path = join2(tv.src, rel);
            }
        }
    }
    dedupe_jobs(t);
    touch_changed_dirs(t, parent_fd);
    *out = &t->base;
    return 0;
bad_root:
    ltar_close(&t->base);
    return berth_error_make_status(err, EINVAL, "cannot copy a file onto \"/\"");
}
