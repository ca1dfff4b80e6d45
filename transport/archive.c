/* Tar reading in place (index of member offsets) and tar writing for the archive transports. */
#include "transport/archive.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/path.h"
#include "common/strutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAR_BLOCK        512
#define TAR_MAX_MEMBERS  100000
#define TAR_MAX_LONGNAME 65536
#define COPY_BUF         (1024 * 1024)

/* ---- fd range reader ---- */

struct range_reader {
    berth_reader_t base;
    int fd;
    uint64_t off, end;
};

static ssize_t range_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct range_reader *rr = (struct range_reader *)r;
    if (rr->off >= rr->end)
        return 0;
    if (len > rr->end - rr->off)
        len = (size_t)(rr->end - rr->off);
    for (;;) {
        ssize_t n = pread(rr->fd, buf, len, (off_t)rr->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "read archive member");
        if (n == 0)
            return berth_error_make_status(err, EIO, "archive member truncated");
        rr->off += (uint64_t)n;
        return n;
    }
}

static void range_close(berth_reader_t *r)
{
    free(r);
}

static const struct berth_reader_ops range_ops = {.read = range_read, .close = range_close};

berth_reader_t *reader_fd_range(int fd, uint64_t off, uint64_t len)
{
    struct range_reader *rr = xzalloc(sizeof(*rr));
    rr->base.ops = &range_ops;
    rr->fd = fd;
    rr->off = off;
    rr->end = off + len;
    return &rr->base;
}

/* ---- index ---- */

struct tar_member {
    char *name;
    char type; /* '0' regular, '1' hard link, '2' symlink, '5' dir */
    char *link;
    uint64_t off, size;
};

struct tar_index {
    int fd;
    struct tar_member *m;
    size_t n, cap;
};

static uint64_t parse_num(const unsigned char *p, size_t n, bool *ok)
{
    uint64_t v = 0;
    if (p[0] & 0x80) { /* base-256 */
        if (p[0] != 0x80) {
            *ok = false;
            return 0;
        }
        for (size_t i = 1; i < n; i++) {
            if (v >> 56) {
                *ok = false;
                return 0;
            }
            v = (v << 8) | p[i];
        }
        return v;
    }
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == 0))
        i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v >> 60) {
            *ok = false;
            return 0;
        }
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != 0) {
            *ok = false;
            return 0;
        }
    return v;
}

static bool checksum_ok(const unsigned char *h)
{
    bool ok = true;
    uint64_t want = parse_num(h + 148, 8, &ok);
    if (!ok)
        return false;
    uint64_t sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == want;
}

/* Cleans a member name; fails on ".." components (the archive is then refused). */
static int clean_name(const char *raw, char **out, berth_error_t *err)
{
    for (const char *p = raw; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return berth_error_make_status(err, EINVAL,
                                           "archive member \"%s\" escapes the archive ('..')", raw);
        p += l;
        while (*p == '/')
            p++;
    }
    *out = path_clean_relative(raw);
    return 0;
}

static int read_exact_at(int fd, void *buf, size_t len, uint64_t off, berth_error_t *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "read archive");
        if (n == 0)
            return 0;
        done += (size_t)n;
    }
    return 1;
}

static char *pax_get(const char *buf, size_t len, const char *key)
{
    size_t kl = strlen(key);
    size_t i = 0;
    char *found = NULL;
    while (i < len) {
        char *end;
        unsigned long rl = strtoul(buf + i, &end, 10);
        if (end == buf + i || *end != ' ' || rl == 0 || rl > len - i)
            break;
        const char *kv = end + 1;
        const char *rec_end = buf + i + rl; /* points after '\n' */
        if ((size_t)(rec_end - kv) > kl + 1 && memcmp(kv, key, kl) == 0 && kv[kl] == '=') {
            free(found);
            found = xstrndup(kv + kl + 1, (size_t)(rec_end - (kv + kl + 1)) - 1);
        }
        i += rl;
    }
    return found;
}

static int decompress_to_temp(int fd, const char *tmpdir, int *out, berth_error_t *err)
{
    cleanup_free char *tpl = xasprintf("%s/berth-archive-XXXXXX", tmpdir);
    cleanup_close int tfd = mkostemp(tpl, O_CLOEXEC);
    if (tfd < 0)
        return berth_error_make(err, errno, "create temporary file in \"%s\"", tmpdir);
    unlink(tpl);
    berth_reader_t *raw = reader_from_fd(fd, false);
    cleanup_reader berth_reader_t *dec = NULL;
    if (reader_decompress(raw, true, NULL, &dec, err) < 0)
        return -1;
    if (reader_copy_to_fd(dec, tfd, err) < 0)
        return berth_error_wrap(err, "decompress archive");
    *out = steal_fd(&tfd);
    return 0;
}

int tar_index_open(const char *path, const char *tmpdir, struct tar_index **out, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    unsigned char magic[6];
    ssize_t mn = pread(fd, magic, sizeof(magic), 0);
    if (mn < 0)
        return berth_error_make(err, errno, "read \"%s\"", path);
    if (compression_detect(magic, (size_t)mn) != COMPRESSION_NONE) {
        int tfd = -1;
        if (!tmpdir)
            tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
        if (decompress_to_temp(fd, tmpdir, &tfd, err) < 0)
            return berth_error_wrap(err, "\"%s\"", path);
        close(fd);
        fd = tfd;
    }
    struct tar_index *t = xzalloc(sizeof(*t));
    t->fd = -1;
    unsigned char h[TAR_BLOCK];
    uint64_t off = 0;
    cleanup_free char *longname = NULL, *longlink = NULL;
    int zero_blocks = 0;
    uint64_t pax_size = 0;
    bool have_pax_size = false;
    for (;;) {
        int r = read_exact_at(fd, h, TAR_BLOCK, off, err);
        if (r < 0)
            goto fail;
        if (r == 0)
            break; /* EOF without end marker: accepted like GNU tar */
        bool zero = true;
        for (int i = 0; i < TAR_BLOCK && zero; i++)
            zero = h[i] == 0;
        if (zero) {
            if (++zero_blocks == 2)
                break;
            off += TAR_BLOCK;
            continue;
        }
        zero_blocks = 0;
        if (!checksum_ok(h)) {
            berth_error_make_status(err, EINVAL,
                                    "\"%s\" is not a valid tar archive (bad header at offset %llu)",
                                    path, (unsigned long long)off);
            goto fail;
        }
        bool ok = true;
        uint64_t size = parse_num(h + 124, 12, &ok);
        if (!ok) {
            berth_error_make_status(err, EINVAL, "\"%s\": bad size field at offset %llu", path,
                                    (unsigned long long)off);
            goto fail;
        }
        char type = (char)h[156];
        if (have_pax_size && type != 'x' && type != 'L' && type != 'K' && type != 'g') {
            size = pax_size;
            have_pax_size = false;
        }
        uint64_t data = off + TAR_BLOCK;
        uint64_t next = data + ((size + TAR_BLOCK - 1) / TAR_BLOCK) * TAR_BLOCK;
        if (type == 'x' || type == 'L' || type == 'K') {
            if (size > TAR_MAX_LONGNAME) {
                berth_error_make_status(err, EINVAL, "\"%s\": extended header too large", path);
                goto fail;
            }
            cleanup_free char *buf = xmalloc(size + 1);
            int rr = read_exact_at(fd, buf, size, data, err);
            if (rr <= 0) {
                if (rr == 0)
                    berth_error_make_status(err, EINVAL, "\"%s\": truncated archive", path);
                goto fail;
            }
            buf[size] = 0;
            if (type == 'x') {
                char *p = pax_get(buf, size, "path");
                if (p) {
                    free(longname);
                    longname = p;
                }
                char *l = pax_get(buf, size, "linkpath");
                if (l) {
                    free(longlink);
                    longlink = l;
                }
                char *s = pax_get(buf, size, "size");
                if (s) {
                    /* sizes beyond the ustar field (> 8 GiB) */
                    char *end;
                    unsigned long long v = strtoull(s, &end, 10);
                    if (*s && !*end) {
                        pax_size = v;
                        have_pax_size = true;
                    }
                    free(s);
                }
            } else if (type == 'L') {
                free(longname);
                longname = xstrndup(buf, size);
            } else {
                free(longlink);
                longlink = xstrndup(buf, size);
            }
            off = next;
            continue;
        }
        if (type == 'g') {
            off = next;
            continue;
        }
        char name[256 + 2];
        if (longname) {
            snprintf(name, sizeof(name), "%s", "");
        } else if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
            snprintf(name, sizeof(name), "%.155s/%.100s", (char *)h + 345, (char *)h);
        } else {
            snprintf(name, sizeof(name), "%.100s", (char *)h);
        }
        const char *rawname = longname ? longname : name;
        char linkbuf[101];
        snprintf(linkbuf, sizeof(linkbuf), "%.100s", (char *)h + 157);
        const char *rawlink = longlink ? longlink : linkbuf;
        struct tar_member m = {0};
        if (clean_name(rawname, &m.name, err) < 0)
            goto fail;
        m.type = type == 0 ? '0' : type;
        if (m.type == '7')
            m.type = '0';
        m.off = data;
        m.size = (m.type == '0') ? size : 0;
        if (m.type == '1' || m.type == '2') {
            if (m.type == '2' && rawlink[0] == '/') {
                berth_error_make_status(
                    err, EINVAL, "archive member \"%s\" is a symlink to an absolute path", rawname);
                free(m.name);
                goto fail;
            }
            if (m.type == '1' && clean_name(rawlink, &m.link, err) < 0) {
                free(m.name);
                goto fail;
            }
            if (m.type == '2')
                m.link = xstrdup(rawlink);
        }
        if (t->n == TAR_MAX_MEMBERS) {
            free(m.name);
            free(m.link);
            berth_error_make_status(err, EFBIG, "\"%s\": too many members", path);
            goto fail;
        }
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 64;
            t->m = xreallocarray(t->m, t->cap, sizeof(*t->m));
        }
        t->m[t->n++] = m;
        free(longname);
        free(longlink);
        longname = longlink = NULL;
        off = next;
    }
    t->fd = steal_fd(&fd);
    *out = t;
    return 0;
fail:
    tar_index_free(t);
    return -1;
}

static const struct tar_member *find(struct tar_index *t, const char *name)
{
    /* last one wins, as when extracting */
    for (size_t i = t->n; i > 0; i--)
        if (strcmp(t->m[i - 1].name, name) == 0)
            return &t->m[i - 1];
    return NULL;
}

/* Resolves a symlink target relative to the member's directory, lexically, inside the root. */
static char *resolve_link(const char *member, const char *target)
{
    const char *slash = strrchr(member, '/');
    cleanup_free char *joined =
        slash ? xasprintf("%.*s/%s", (int)(slash - member), member, target) : xstrdup(target);
    return path_clean_relative(joined);
}

static int lookup(struct tar_index *t, const char *name, const struct tar_member **out,
                  berth_error_t *err)
{
    cleanup_free char *cur = path_clean_relative(name);
    for (int depth = 0; depth < 16; depth++) {
        const struct tar_member *m = find(t, cur);
        if (!m)
            return berth_error_make_status(err, ENOENT, "archive has no member \"%s\"", name);
        if (m->type == '0') {
            *out = m;
            return 0;
        }
        if (m->type == '1') {
            free(cur);
            cur = xstrdup(m->link);
        } else if (m->type == '2') {
            char *n = resolve_link(m->name, m->link);
            free(cur);
            cur = n;
        } else {
            return berth_error_make_status(err, EINVAL, "archive member \"%s\" is not a file",
                                           name);
        }
    }
    return berth_error_make_status(err, ELOOP, "archive member \"%s\": too many links", name);
}

bool tar_index_has(struct tar_index *t, const char *name)
{
    cleanup_error berth_error_t e = NULL;
    const struct tar_member *m;
    return lookup(t, name, &m, &e) == 0;
}

int tar_index_open_member(struct tar_index *t, const char *name, berth_reader_t **out,
                          int64_t *size, berth_error_t *err)
{
    const struct tar_member *m;
    if (lookup(t, name, &m, err) < 0)
        return -1;
    *out = reader_fd_range(t->fd, m->off, m->size);
    if (size)
        *size = (int64_t)m->size;
    return 0;
}

int tar_index_read_member(struct tar_index *t, const char *name, size_t max, char **out,
                          size_t *len, berth_error_t *err)
{
    cleanup_reader berth_reader_t *r = NULL;
    if (tar_index_open_member(t, name, &r, NULL, err) < 0)
        return -1;
    if (reader_read_all(r, max, out, len, err) < 0)
        return berth_error_wrap(err, "archive member \"%s\"", name);
    return 0;
}

void tar_index_free(struct tar_index *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->m[i].name);
        free(t->m[i].link);
    }
    free(t->m);
    if (t->fd >= 0)
        close(t->fd);
    free(t);
}

/* ---- writer ---- */

struct tar_writer {
    struct fs_output f; /* the user's file: in place for a device or FIFO */
    uint64_t off;       /* end of committed entries */
    bool pending;       /* a streamed entry awaits its name */
    uint64_t pending_size;
    bool committed, opened;
    unsigned char *buf;
    char **names; /* streamed entries named so far */
};

int tar_writer_open(const char *final_path, struct tar_writer **out, berth_error_t *err)
{
    struct tar_writer *tw = xzalloc(sizeof(*tw));
    tw->f = (struct fs_output){.fd = -1, .target_fd = -1};
    if (fs_output_open(final_path, 0644, FS_OUTPUT_SEEKABLE, &tw->f, err) < 0) {
        free(tw);
        return -1;
    }
    tw->opened = true;
    *out = tw;
    return 0;
}

static void put_octal(unsigned char *p, size_t n, uint64_t v)
{
    if (n == 12 && v >= 077777777777ULL) { /* base-256 for large sizes */
        memset(p, 0, n);
        p[0] = 0x80;
        for (size_t i = n - 1; i > 0 && v; i--, v >>= 8)
            p[i] = (unsigned char)(v & 0xff);
        return;
    }
    snprintf((char *)p, n, "%0*llo", (int)n - 1, (unsigned long long)v);
}

static int make_header(unsigned char *h, const char *name, char type, uint64_t size,
                       berth_error_t *err)
{
    memset(h, 0, TAR_BLOCK);
    size_t nl = strlen(name);
    if (nl > 100) {
        /* split into prefix/name at a '/' */
        const char *s = NULL;
        for (const char *p = name; (p = strchr(p, '/')); p++)
            if ((size_t)(p - name) <= 155 && nl - (size_t)(p - name) - 1 <= 100)
                s = p;
        if (!s)
            return berth_error_make_status(err, ENAMETOOLONG, "tar member name too long: %s", name);
        memcpy(h + 345, name, (size_t)(s - name));
        memcpy(h, s + 1, nl - (size_t)(s - name) - 1);
    } else {
        memcpy(h, name, nl);
    }
    put_octal(h + 100, 8, type == '5' ? 0755 : 0644);
    put_octal(h + 108, 8, 0);
    put_octal(h + 116, 8, 0);
    put_octal(h + 124, 12, size);
    put_octal(h + 136, 12, 0);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off, berth_error_t *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "write archive");
        done += (size_t)n;
    }
    return 0;
}

static int add_entry(struct tar_writer *tw, const char *name, char type, const void *data,
                     size_t len, berth_error_t *err)
{
    if (tw->pending)
        return berth_error_make_status(err, EINVAL, "tar writer: entry pending");
    unsigned char h[TAR_BLOCK];
    if (make_header(h, name, type, len, err) < 0)
        return -1;
    if (pwrite_all(tw->f.fd, h, TAR_BLOCK, tw->off, err) < 0)
        return -1;
    if (len && pwrite_all(tw->f.fd, data, len, tw->off + TAR_BLOCK, err) < 0)
        return -1;
    uint64_t padded = ((len + TAR_BLOCK - 1) / TAR_BLOCK) * TAR_BLOCK;
    static const unsigned char zeros[TAR_BLOCK];
    if (padded > len &&
        pwrite_all(tw->f.fd, zeros, padded - len, tw->off + TAR_BLOCK + len, err) < 0)
        return -1;
    tw->off += TAR_BLOCK + padded;
    return 0;
}

int tar_writer_add_dir(struct tar_writer *tw, const char *name, berth_error_t *err)
{
    return add_entry(tw, name, '5', NULL, 0, err);
}

int tar_writer_add_buffer(struct tar_writer *tw, const char *name, const void *data, size_t len,
                          berth_error_t *err)
{
    return add_entry(tw, name, '0', data, len, err);
}

int tar_writer_stream(struct tar_writer *tw, berth_reader_t *r, char **digest, int64_t *size,
                      berth_error_t *err)
{
    if (tw->pending)
        return berth_error_make_status(err, EINVAL, "tar writer: entry pending");
    if (!tw->buf)
        tw->buf = xmalloc(COPY_BUF);
    cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
    uint64_t pos = tw->off + TAR_BLOCK, total = 0;
    for (;;) {
        ssize_t n = reader_read(r, tw->buf, COPY_BUF, err);
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        digester_update(d, tw->buf, (size_t)n);
        if (pwrite_all(tw->f.fd, tw->buf, (size_t)n, pos, err) < 0)
            goto fail;
        pos += (uint64_t)n;
        total += (uint64_t)n;
    }
    tw->pending = true;
    tw->pending_size = total;
    *digest = digester_finish(d);
    *size = (int64_t)total;
    return 0;
fail:
    if (ftruncate(tw->f.fd, (off_t)tw->off) < 0) {
        /* the space is reused by the next entry anyway */
    }
    return -1;
}

int tar_writer_name_pending(struct tar_writer *tw, const char *name, berth_error_t *err)
{
    if (!tw->pending)
        return berth_error_make_status(err, EINVAL, "tar writer: nothing pending");
    unsigned char h[TAR_BLOCK];
    if (make_header(h, name, '0', tw->pending_size, err) < 0)
        return -1;
    if (pwrite_all(tw->f.fd, h, TAR_BLOCK, tw->off, err) < 0)
        return -1;
    uint64_t len = tw->pending_size;
    uint64_t padded = ((len + TAR_BLOCK - 1) / TAR_BLOCK) * TAR_BLOCK;
    static const unsigned char zeros[TAR_BLOCK];
    if (padded > len &&
        pwrite_all(tw->f.fd, zeros, (size_t)(padded - len), tw->off + TAR_BLOCK + len, err) < 0)
        return -1;
    tw->off += TAR_BLOCK + padded;
    tw->pending = false;
    strv_add(&tw->names, name);
    return 0;
}

bool tar_writer_has(struct tar_writer *tw, const char *name)
{
    return strv_contains(tw->names, name);
}

int tar_writer_name_pending_once(struct tar_writer *tw, const char *name, berth_error_t *err)
{
    if (tar_writer_has(tw, name)) {
        tar_writer_drop_pending(tw);
        return 0;
    }
    if (tar_writer_name_pending(tw, name, err) < 0) {
        tar_writer_drop_pending(tw);
        return -1;
    }
    return 0;
}

void tar_writer_drop_pending(struct tar_writer *tw)
{
    if (!tw->pending)
        return;
    tw->pending = false;
    if (ftruncate(tw->f.fd, (off_t)tw->off) < 0) {
        /* overwritten by the next entry anyway */
    }
}

int tar_writer_commit(struct tar_writer *tw, berth_error_t *err)
{
    if (tw->pending)
        return berth_error_make_status(err, EINVAL, "tar writer: entry pending");
    static const unsigned char zeros[TAR_BLOCK * 2];
    if (pwrite_all(tw->f.fd, zeros, sizeof(zeros), tw->off, err) < 0)
        return -1;
    tw->off += sizeof(zeros);
    if (ftruncate(tw->f.fd, (off_t)tw->off) < 0)
        return berth_error_make(err, errno, "truncate archive");
    if (fs_output_commit(&tw->f, err) < 0)
        return -1;
    tw->committed = true;
    return 0;
}

void tar_writer_free(struct tar_writer *tw)
{
    if (!tw)
        return;
    if (tw->opened && !tw->committed)
        fs_output_abort(&tw->f);
    free(tw->buf);
    strv_free(tw->names);
    free(tw);
}
