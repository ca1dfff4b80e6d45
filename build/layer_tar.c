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
#include <time.h>
#include <unistd.h>

enum job_kind { JOB_ENTRY, JOB_ARCHIVE };

struct job {
    enum job_kind kind;
    char *name; /* path in the layer ("a/b"); for archives the destination dir */
    struct stat st;
    char *link;
    int src_root;   /* for files and archives */
    char *src_path; /* for files and archives */
};

struct ltar {
    berth_reader_t base;
    struct archive *a;
    struct job *jobs;
    size_t njobs, next;
    char *buf;
    size_t len, off, cap;
    int cur_fd;          /* file being streamed */
    int64_t cur_left;    /* bytes still owed for the current entry */
    struct archive *in;  /* archive being re-emitted */
    bool in_data;        /* reading the current archive entry's data */
    const char *in_dest; /* destination dir of the archive */
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

static int write_header(struct ltar *t, const struct job *j, berth_error_t *err)
{
    struct archive_entry *e = archive_entry_new();
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
    if (write_header(t, j, err) < 0)
        return -1;
    if (S_ISREG(j->st.st_mode) && j->st.st_size > 0) {
        t->cur_fd = path_openat_in_root(j->src_root, j->src_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
                                        0, err);
        if (t->cur_fd < 0)
            return -1;
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
            if (S_ISREG(st->st_mode)) {
                j->src_root = tv.fd;
                j->src_path = join2(tv.src, rel);
            }
        }
    }
    *out = &t->base;
    return 0;
bad_root:
    ltar_close(&t->base);
    return berth_error_make_status(err, EINVAL, "cannot copy a file onto \"/\"");
}
