/* COPY and ADD: sources resolved inside their root (the context directory or another stage's
 * rootfs), wildcards, docker's directory rules, .containerignore filtering, ADD of local archives
 * (extracted, any compression libarchive knows) and of URLs (libcurl, optional checksum).
 *
 * Work is split in two: copy_plan_make() lists every input without writing anything, so the
 * cache key can be computed from the inputs (copy_plan_digest); copy_plan_apply() then writes
 * into the working rootfs, every destination resolved inside it. */
#include "build/build_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "run/spec.h"
#include "storage/tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct copy_top {
    int fd;     /* source root (borrowed) */
    char *src;  /* path relative to the source root, "" = the root itself */
    char *name; /* base name used when copying a file into a directory */
    bool is_dir;
    bool extract;   /* ADD of a local archive (decided by copy_plan_detect_archives) */
    bool add_local; /* ADD of a local file: may be an archive */
    bool url;
    int64_t mtime; /* URL: Last-Modified (-1 unknown) */
};

static bool is_archive(int fd);

struct copy_item {
    size_t top;
    char *rel; /* below the top's src; "" for a file top */
    struct stat st;
    char *link;
};

void copy_plan_top(const struct copy_plan *p, size_t i, struct copy_top_view *out)
{
    const struct copy_top *t = &p->tops[i];
    *out = (struct copy_top_view){.fd = t->fd,
                                  .src = t->src,
                                  .name = t->name,
                                  .is_dir = t->is_dir,
                                  .extract = t->extract,
                                  .url = t->url,
                                  .mtime = t->mtime};
}

void copy_plan_item(const struct copy_plan *p, size_t i, size_t *top, const char **rel,
                    const struct stat **st, const char **link)
{
    const struct copy_item *it = &p->items[i];
    *top = it->top;
    *rel = it->rel;
    *st = &it->st;
    *link = it->link;
}

void copy_plan_detect_archives(struct copy_plan *p)
{
    for (size_t i = 0; i < p->ntops; i++) {
        struct copy_top *t = &p->tops[i];
        if (!t->add_local || t->extract)
            continue;
        berth_error_t e2 = NULL;
        int fd = path_openat_in_root(t->fd, t->src, O_RDONLY | O_CLOEXEC, 0, &e2);
        berth_error_release(&e2);
        if (fd >= 0) {
            t->extract = is_archive(fd);
            close(fd);
        }
    }
}

void copy_plan_clear(struct copy_plan *p)
{
    for (size_t i = 0; i < p->ntops; i++) {
        free(p->tops[i].src);
        free(p->tops[i].name);
    }
    free(p->tops);
    for (size_t i = 0; i < p->nitems; i++) {
        free(p->items[i].rel);
        free(p->items[i].link);
    }
    free(p->items);
    if (p->tmp_files) {
        for (char **f = p->tmp_files; *f; f++) {
            if (p->tmp_dir_fd >= 0)
                unlinkat(p->tmp_dir_fd, *f, 0);
            free(*f);
        }
        free(p->tmp_files);
    }
    if (p->tmp_dir_fd >= 0)
        close(p->tmp_dir_fd);
    free(p->dest);
    memset(p, 0, sizeof(*p));
    p->tmp_dir_fd = -1;
}

int copy_clean_inside(const char *path, char **out, berth_error_t *err)
{
    /* a stack of components; ".." that would pop past the root is an escape */
    cleanup_free char *copy = xstrdup(path);
    size_t cap = strlen(path) + 2;
    char *res = xmalloc(cap);
    size_t len = 0;
    res[0] = 0;
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (len == 0) {
                free(res);
                return berth_error_make_status(
                    err, EPERM, "forbidden path outside the build context: %s", path);
            }
            char *sl = strrchr(res, '/');
            len = sl ? (size_t)(sl - res) : 0;
            res[len] = 0;
            continue;
        }
        if (len)
            res[len++] = '/';
        memcpy(res + len, c, strlen(c) + 1);
        len += strlen(c);
    }
    *out = res;
    return 0;
}

static bool has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static char *join_rel(const char *a, const char *b)
{
    if (!*a)
        return xstrdup(b);
    if (!*b)
        return xstrdup(a);
    return xasprintf("%s/%s", a, b);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory (without . and ..). */
static int list_dir(int dfd, char ***out, size_t *n, berth_error_t *err)
{
    int fd2 = dup(dfd);
    if (fd2 < 0)
        return berth_error_make(err, errno, "dup");
    DIR *d = fdopendir(fd2);
    if (!d) {
        close(fd2);
        return berth_error_make(err, errno, "opendir");
    }
    rewinddir(d);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (cnt + 1 >= cap) {
            cap = cap ? cap * 2 : 32;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[cnt++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, cnt, sizeof(*v), cmp_strp);
    else
        v = xcalloc(1, sizeof(*v));
    v[cnt] = NULL;
    *out = v;
    *n = cnt;
    return 0;
}

static bool excluded(const struct copy_source *src, const char *rel)
{
    if (!src->ign || !*rel)
        return false;
    bool ex = false;
    berth_error_t e = NULL;
    if (ignore_matches(src->ign, rel, &ex, &e) < 0) {
        berth_error_release(&e);
        return false;
    }
    return ex;
}

/* Expands a wildcard path component by component (docker: filepath.Match per component). */
static int glob_expand(const struct copy_source *src, const char *pattern, char ***out,
                       size_t *nout, berth_error_t *err)
{
    cleanup_free char *pc = xstrdup(pattern);
    char **cur = xcalloc(2, sizeof(char *));
    size_t ncur = 1;
    cur[0] = xstrdup("");
    char *save = NULL;
    for (char *comp = strtok_r(pc, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        char **next = NULL;
        size_t nn = 0, cap = 0;
        for (size_t i = 0; i < ncur; i++) {
            if (!has_wildcard(comp)) {
                if (nn + 1 >= cap) {
                    cap = cap ? cap * 2 : 16;
                    next = xreallocarray(next, cap, sizeof(*next));
                }
                next[nn++] = join_rel(cur[i], comp);
                continue;
            }
            berth_error_t e2 = NULL;
            int dfd = path_openat_in_root(src->fd, *cur[i] ? cur[i] : ".",
                                          O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &e2);
            berth_error_release(&e2);
            if (dfd < 0)
                continue;
            char **names = NULL;
            size_t cnt = 0;
            int r = list_dir(dfd, &names, &cnt, err);
            close(dfd);
            if (r < 0) {
                for (size_t k = 0; k < nn; k++)
                    free(next[k]);
                free(next);
                for (size_t k = 0; k < ncur; k++)
                    free(cur[k]);
                free(cur);
                return -1;
            }
            for (size_t k = 0; k < cnt; k++) {
                if (fnmatch(comp, names[k], 0) == 0) {
                    if (nn + 1 >= cap) {
                        cap = cap ? cap * 2 : 16;
                        next = xreallocarray(next, cap, sizeof(*next));
                    }
                    next[nn++] = join_rel(cur[i], names[k]);
                }
                free(names[k]);
            }
            free(names);
        }
        for (size_t k = 0; k < ncur; k++)
            free(cur[k]);
        free(cur);
        cur = next ? next : xcalloc(1, sizeof(char *));
        ncur = nn;
    }
    cur = xreallocarray(cur, ncur + 1, sizeof(char *));
    cur[ncur] = NULL;
    *out = cur;
    *nout = ncur;
    return 0;
}

static void add_item(struct copy_plan *p, size_t *cap, size_t top, const char *rel,
                     const struct stat *st, const char *link)
{
    if (p->nitems == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        p->items = xreallocarray(p->items, *cap, sizeof(*p->items));
    }
    struct copy_item *it = &p->items[p->nitems++];
    it->top = top;
    it->rel = xstrdup(rel);
    it->st = *st;
    it->link = link ? xstrdup(link) : NULL;
}

/* Walks dir `path` (relative to the source root), adding its descendants below `rel`. */
static int walk(const struct copy_source *src, struct copy_plan *p, size_t *cap, size_t top,
                const char *path, const char *rel, int depth, berth_error_t *err)
{
    if (depth > 256)
        return berth_error_make_status(err, ELOOP, "\"%s\": directories nested too deeply", path);
    cleanup_close int dfd = path_openat_in_root(
        src->fd, *path ? path : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, err);
    if (dfd < 0)
        return -1;
    char **names = NULL;
    size_t n = 0;
    if (list_dir(dfd, &names, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        cleanup_free char *cp = join_rel(path, names[i]);
        cleanup_free char *cr = join_rel(rel, names[i]);
        struct stat st;
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = berth_error_make(err, errno, "stat \"%s\"", cp);
            break;
        }
        bool ex = src->is_context && excluded(src, cp);
        if (ex && !(S_ISDIR(st.st_mode) && ignore_dir_may_reinclude(src->ign, cp)))
            continue;
        if (S_ISLNK(st.st_mode)) {
            char buf[PATH_MAX];
            ssize_t l = readlinkat(dfd, names[i], buf, sizeof(buf) - 1);
            if (l < 0) {
                rc = berth_error_make(err, errno, "readlink \"%s\"", cp);
                break;
            }
            buf[l] = 0;
            add_item(p, cap, top, cr, &st, buf);
        } else if (S_ISDIR(st.st_mode) && ex) {
            /* an excluded directory brings only what is re-included below it, and is itself
             * a parent made for them (0755 root, build time) as buildah makes it */
            size_t mark = p->nitems;
            struct stat implied = {.st_mode = S_IFDIR | 0755};
            clock_gettime(CLOCK_REALTIME, &implied.st_mtim);
            add_item(p, cap, top, cr, &implied, NULL);
            rc = walk(src, p, cap, top, cp, cr, depth + 1, err);
            if (rc == 0 && p->nitems == mark + 1) {
                free(p->items[mark].rel);
                free(p->items[mark].link);
                p->nitems = mark;
            }
        } else if (S_ISDIR(st.st_mode)) {
            add_item(p, cap, top, cr, &st, NULL);
            rc = walk(src, p, cap, top, cp, cr, depth + 1, err);
        } else if (S_ISREG(st.st_mode)) {
            if (!ex)
                add_item(p, cap, top, cr, &st, NULL);
        } else {
            log_debug("COPY: skipping special file \"%s\"", cp);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* Whether the file is an archive libarchive can read (tar, any compression). */
static bool is_archive(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        return false;
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    int dfd = dup(fd);
    bool ok = false;
    if (dfd >= 0 && lseek(dfd, 0, SEEK_SET) == 0 &&
        archive_read_open_fd(a, dfd, 65536) == ARCHIVE_OK) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        ok = r == ARCHIVE_OK || r == ARCHIVE_WARN;
    }
    archive_read_free(a);
    if (dfd >= 0)
        close(dfd);
    return ok;
}

/* ADD of a URL: the most it may download (the file lands on disk, not in memory) */
#define ADD_URL_MAX_BYTES (32ull << 30)

struct dl {
    int fd;
    digester_t *d;
    berth_error_t *err;
    int failed;
    uint64_t total;
};

static size_t dl_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct dl *dl = ud;
    size_t len = size * nmemb, off = 0;
    dl->total += len;
    if (dl->total > ADD_URL_MAX_BYTES) {
        dl->failed = EFBIG;
        return 0;
    }
    while (off < len) {
        ssize_t w = write(dl->fd, ptr + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            dl->failed = errno;
            return 0;
        }
        off += (size_t)w;
    }
    digester_update(dl->d, ptr, len);
    return len;
}

static int download(const char *url, int dir_fd, const char *name, const char *checksum,
                    int64_t *mtime, berth_error_t *err)
{
    cleanup_close int fd =
        openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return berth_error_make(err, errno, "create download file");
    CURL *c = curl_easy_init();
    if (!c)
        return berth_error_make_status(err, ENOMEM, "curl init");
    cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
    struct dl dl = {.fd = fd, .d = d, .err = err};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &dl);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    long ft = -1;
    curl_easy_getinfo(c, CURLINFO_FILETIME, &ft);
    curl_easy_cleanup(c);
    if (dl.failed)
        return berth_error_make(err, dl.failed, "ADD %s: write", url);
    if (rc != CURLE_OK)
        return berth_error_make_status(err, EIO, "ADD %s: %s", url,
                                       *ebuf ? ebuf : curl_easy_strerror(rc));
    *mtime = ft >= 0 ? ft : -1;
    cleanup_free char *got = digester_finish(d);
    if (checksum && strcmp(checksum, got) != 0)
        return berth_error_make_status(
            err, EINVAL, "ADD %s: checksum mismatch: expected %s, got %s", url, checksum, got);
    return 0;
}

int copy_plan_make(const struct copy_source *src, char *const *srcs, size_t nsrcs,
                   const char *dest_abs, bool add, const char *checksum, const char *tmpdir,
                   struct copy_plan *p, berth_error_t *err)
{
    memset(p, 0, sizeof(*p));
    p->tmp_dir_fd = -1;
    size_t dl = strlen(dest_abs);
    p->dest_dir = dl > 0 && (dest_abs[dl - 1] == '/' ||
                             (dl > 1 && dest_abs[dl - 1] == '.' && dest_abs[dl - 2] == '/'));
    p->dest = xstrdup(dest_abs);
    size_t topcap = 0, itemcap = 0, ntmp = 0;
    bool wildcards = false;
    const char *nowild = NULL;
    if (checksum && (nsrcs != 1 || !is_url(srcs[0])))
        return berth_error_make_status(err, EINVAL, "ADD --checksum needs a single URL source");
    for (size_t s = 0; s < nsrcs; s++) {
        const char *arg = srcs[s];
        if (add && is_url(arg)) {
            if (p->tmp_dir_fd < 0) {
                if (fs_mkdir_p(tmpdir, 0700, err) < 0)
                    return -1;
                p->tmp_dir_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (p->tmp_dir_fd < 0)
                    return berth_error_make(err, errno, "open \"%s\"", tmpdir);
            }
            cleanup_free char *tmpname = xasprintf("dl-%d-%zu", (int)getpid(), s);
            int64_t mtime = -1;
            if (download(arg, p->tmp_dir_fd, tmpname, checksum, &mtime, err) < 0) {
                unlinkat(p->tmp_dir_fd, tmpname, 0);
                return -1;
            }
            p->tmp_files = xreallocarray(p->tmp_files, ntmp + 2, sizeof(char *));
            p->tmp_files[ntmp++] = xstrdup(tmpname);
            p->tmp_files[ntmp] = NULL;
            /* name: last path component of the URL (without query) */
            const char *u = strstr(arg, "://") + 3;
            cleanup_free char *path = xstrdup(strchr(u, '/') ? strchr(u, '/') : "/");
            char *q = strpbrk(path, "?#");
            if (q)
                *q = 0;
            char *b = strrchr(path, '/');
            const char *name = b && b[1] ? b + 1 : "index.html";
            if (p->ntops == topcap) {
                topcap = topcap ? topcap * 2 : 8;
                p->tops = xreallocarray(p->tops, topcap, sizeof(*p->tops));
            }
            struct copy_top *t = &p->tops[p->ntops];
            *t = (struct copy_top){.fd = p->tmp_dir_fd,
                                   .src = xstrdup(tmpname),
                                   .name = xstrdup(name),
                                   .url = true,
                                   .mtime = mtime};
            struct stat st;
            if (fstatat(p->tmp_dir_fd, tmpname, &st, 0) < 0)
                return berth_error_make(err, errno, "stat download");
            st.st_mode = S_IFREG | 0600;
            add_item(p, &itemcap, p->ntops, "", &st, NULL);
            p->ntops++;
            continue;
        }
        cleanup_free char *clean = NULL;
        if (src->is_context) {
            if (copy_clean_inside(arg, &clean, err) < 0)
                return -1;
        } else {
            clean = path_clean_relative(arg);
        }
        char **matches = NULL;
        size_t nm = 0;
        if (has_wildcard(clean)) {
            wildcards = true;
            if (glob_expand(src, clean, &matches, &nm, err) < 0)
                return -1;
        } else {
            matches = xcalloc(2, sizeof(char *));
            matches[0] = xstrdup(clean);
            nm = 1;
        }
        size_t found = 0, filtered = 0;
        int rc = 0;
        for (size_t m = 0; m < nm && rc == 0; m++) {
            cleanup_free char *resolved = NULL;
            if (path_resolve_in_root(src->fd, *matches[m] ? matches[m] : ".", true, &resolved,
                                     err) < 0) {
                rc = -1;
                break;
            }
            struct stat st;
            if (fstatat(src->fd, *resolved ? resolved : ".", &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT && has_wildcard(clean))
                    continue;
                rc = berth_error_make(
                    err, errno, "%s: stat \"%s\"",
                    src->is_context ? "file not found in build context" : "source not found", arg);
                break;
            }
            bool ex = src->is_context && excluded(src, resolved);
            if (ex && !S_ISDIR(st.st_mode)) {
                filtered++;
                continue;
            }
            if (p->ntops == topcap) {
                topcap = topcap ? topcap * 2 : 8;
                p->tops = xreallocarray(p->tops, topcap, sizeof(*p->tops));
            }
            size_t ti = p->ntops++;
            struct copy_top *t = &p->tops[ti];
            const char *bn = strrchr(matches[m], '/');
            *t = (struct copy_top){.fd = src->fd,
                                   .src = xstrdup(resolved),
                                   .name = xstrdup(bn ? bn + 1 : matches[m]),
                                   .is_dir = S_ISDIR(st.st_mode),
                                   .mtime = -1};
            found++;
            if (t->is_dir) {
                rc = walk(src, p, &itemcap, ti, resolved, "", 0, err);
            } else if (S_ISREG(st.st_mode)) {
                /* whether it is an archive is only looked at when the step runs: a cached
                 * step reads nothing but the memo (the content digest decides anyway) */
                t->add_local = add;
                add_item(p, &itemcap, ti, "", &st, NULL);
            } else if (S_ISLNK(st.st_mode)) {
                char buf[PATH_MAX];
                ssize_t l = readlinkat(src->fd, resolved, buf, sizeof(buf) - 1);
                if (l < 0) {
                    rc = berth_error_make(err, errno, "readlink \"%s\"", resolved);
                    break;
                }
                buf[l] = 0;
                add_item(p, &itemcap, ti, "", &st, buf);
            } else {
                rc = berth_error_make_status(err, EINVAL, "\"%s\" is not a file or directory", arg);
            }
        }
        for (size_t m = 0; m < nm; m++)
            free(matches[m]);
        free(matches);
        if (rc < 0)
            return -1;
        if (!found && filtered)
            return berth_error_make_status(err, ENOENT,
                                           "no items matching \"%s\" (%zu filtered out by the "
                                           "ignore file)",
                                           arg, filtered);
        /* a wildcard that matches nothing is skipped when other sources match (buildah) */
        if (!found && !has_wildcard(clean))
            return berth_error_make_status(
                err, ENOENT, "no source files were specified: \"%s\" matches nothing in the %s",
                arg, src->is_context ? "build context" : "source");
        if (!found)
            nowild = arg;
    }
    if (p->ntops == 0)
        return berth_error_make_status(
            err, ENOENT, "no source files were specified: \"%s\" matches nothing in the %s%s",
            nowild ? nowild : "", src->is_context ? "build context" : "source",
            src->ign && src->is_context ? " (or is excluded by an ignore file)" : "");
    if (p->ntops > 1 || wildcards) {
        /* several sources: the destination must be a directory */
        if (p->ntops > 1 && !p->dest_dir)
            return berth_error_make_status(
                err, EINVAL,
                "when using several sources, the destination must be a directory "
                "and end with a \"/\"");
    }
    return 0;
}

static const char *item_path(const struct copy_plan *p, const struct copy_item *it, char **buf)
{
    *buf = join_rel(p->tops[it->top].src, it->rel);
    return *buf;
}

int copy_plan_digest(const struct copy_plan *p, struct bld_memo *m, digester_t *d,
                     berth_error_t *err)
{
    for (size_t i = 0; i < p->ntops; i++) {
        cleanup_free char *line =
            xasprintf("top %s %d %d\n", p->tops[i].name, p->tops[i].is_dir, p->tops[i].add_local);
        digester_update(d, line, strlen(line));
    }
    for (size_t i = 0; i < p->nitems; i++) {
        const struct copy_item *it = &p->items[i];
        const struct copy_top *t = &p->tops[it->top];
        cleanup_free char *content = NULL;
        if (S_ISREG(it->st.st_mode) && !t->url && bld_memo_lookup(m, &it->st, &content)) {
            /* known content: the file is not even opened */
        } else if (S_ISREG(it->st.st_mode)) {
            cleanup_free char *path = NULL;
            item_path(p, it, &path);
            cleanup_close int fd =
                path_openat_in_root(t->fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, err);
            if (fd < 0)
                return -1;
            struct stat st;
            if (fstat(fd, &st) < 0)
                return berth_error_make(err, errno, "stat \"%s\"", path);
            if (bld_memo_file_digest(t->url ? NULL : m, fd, &st, &content, err) < 0)
                return berth_error_wrap(err, "\"%s\"", path);
        }
        cleanup_free char *line =
            xasprintf("%zu %s %o %u %u %s %s\n", it->top, it->rel, (unsigned)it->st.st_mode,
                      (unsigned)it->st.st_uid, (unsigned)it->st.st_gid, content ? content : "-",
                      it->link ? it->link : "-");
        digester_update(d, line, strlen(line));
    }
    return 0;
}

int copy_parse_chown(int root_fd, const char *spec, uid_t *uid, gid_t *gid, berth_error_t *err)
{
    struct spec_user u = {0};
    if (spec_resolve_user(root_fd, spec, &u, err) < 0)
        return berth_error_wrap(err, "--chown=%s", spec);
    *uid = u.uid;
    *gid = u.gid;
    spec_user_free(&u);
    return 0;
}

/* ---- writing ---- */

int copy_plan_apply(const struct copy_plan *p, int root_fd, const struct copy_owner *own,
                    berth_error_t *err)
{
    /* one implementation of what COPY/ADD write: the plan's layer tar (layer_tar.c), applied
     * into the working rootfs (resolved inside it like a pulled layer) */
    cleanup_reader berth_reader_t *tar = NULL;
    if (copy_plan_layer(p, root_fd, own, -1, &tar, err) < 0)
        return -1;
    struct tar_apply_options ao = {.whiteouts = TAR_WHITEOUT_DELETE};
    struct storage_apply_result res = {0};
    int rc = tar_apply(root_fd, tar, &ao, &res, err);
    storage_apply_result_clear(&res);
    return rc;
}
