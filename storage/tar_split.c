/* Recording and replaying the exact bytes of a layer's tar (see tar_split.h). */
#include "storage/tar_split.h"
#include "storage/tar.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define RAW_FLUSH   (64 * 1024)
#define PAX_MAX     (64 * 1024)
#define MAX_RECORD  (16u * 1024 * 1024) /* a single raw record or name when replaying */
#define MAX_NAMELEN 65536

enum rec_state { ST_HEADER, ST_META_DATA, ST_FILE_DATA, ST_PAD, ST_TAIL };

struct tar_split_recorder {
    char *path;
    char *tmp_path;
    gzFile gz;
    bool broken; /* stream not representable: discard at finish */
    bool write_failed;
    enum rec_state st;
    unsigned char hdr[512];
    size_t hdr_len;
    uint64_t remaining; /* bytes left in current data/padding segment */
    uint64_t pad_after;
    int64_t pax_size; /* size= from a pax 'x' header for the next entry, -1 none */
    bool collecting_pax;
    char *pax;
    size_t pax_len;
    uint32_t entry;
    char *raw;
    size_t raw_len;
    /* contents kept for entries whose files the stream replaced (written out at finish) */
    int spill_fd;
    uint64_t spill_len;
    struct kept {
        uint32_t idx;
        uint64_t off, size;
    } * kept;
    size_t n_kept, cap_kept;
};

static void put_bytes(struct tar_split_recorder *r, const void *p, size_t n)
{
    if (r->write_failed || n == 0)
        return;
    if (gzwrite(r->gz, p, (unsigned)n) != (int)n)
        r->write_failed = true;
}

static void put_u32(struct tar_split_recorder *r, uint32_t v)
{
    unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
    put_bytes(r, b, 4);
}

static void put_u64(struct tar_split_recorder *r, uint64_t v)
{
    put_u32(r, (uint32_t)v);
    put_u32(r, (uint32_t)(v >> 32));
}

static void flush_raw(struct tar_split_recorder *r)
{
    if (r->raw_len == 0)
        return;
    put_bytes(r, "R", 1);
    put_u32(r, (uint32_t)r->raw_len);
    put_bytes(r, r->raw, r->raw_len);
    r->raw_len = 0;
}

static void add_raw(struct tar_split_recorder *r, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        size_t room = RAW_FLUSH - r->raw_len;
        size_t k = n < room ? n : room;
        memcpy(r->raw + r->raw_len, c, k);
        r->raw_len += k;
        c += k;
        n -= k;
        if (r->raw_len == RAW_FLUSH)
            flush_raw(r);
    }
}

int tar_split_recorder_open(const char *path, struct tar_split_recorder **out, berth_error_t *err)
{
    struct tar_split_recorder *r = xzalloc(sizeof(*r));
    r->path = xstrdup(path);
    r->tmp_path = xasprintf("%s.tmp", path);
    int fd = open(r->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        berth_error_make(err, errno, "create \"%s\"", r->tmp_path);
        free(r->path);
        free(r->tmp_path);
        free(r);
        return -1;
    }
    r->gz = gzdopen(fd, "wb1");
    r->raw = xmalloc(RAW_FLUSH);
    r->spill_fd = -1;
    r->pax_size = -1;
    put_bytes(r, "BERTHTS1", 8);
    *out = r;
    return 0;
}

static bool all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static bool parse_size(const unsigned char *f, uint64_t *out)
{
    if (f[0] & 0x80) { /* base-256 */
        if (f[0] != 0x80)
            return false; /* negative or huge */
        uint64_t v = 0;
        for (int i = 1; i < 12; i++) {
            if (v >> 56)
                return false;
            v = (v << 8) | f[i];
        }
        *out = v;
        return true;
    }
    uint64_t v = 0;
    int i = 0;
    while (i < 12 && (f[i] == ' ' || f[i] == 0))
        i++;
    for (; i < 12 && f[i] >= '0' && f[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(f[i] - '0');
    *out = v;
    return true;
}

static void parse_pax_size(struct tar_split_recorder *r)
{
    size_t i = 0;
    while (i < r->pax_len) {
        size_t len = 0, j = i;
        while (j < r->pax_len && r->pax[j] >= '0' && r->pax[j] <= '9')
            len = len * 10 + (size_t)(r->pax[j++] - '0');
        if (len == 0 || i + len > r->pax_len)
            return;
        const char *kv = r->pax + j + 1;
        size_t kvlen = i + len - (j + 1);
        if (kvlen > 5 && memcmp(kv, "size=", 5) == 0) {
            uint64_t v = 0;
            for (size_t k = 5; k < kvlen && kv[k] >= '0' && kv[k] <= '9'; k++)
                v = v * 10 + (uint64_t)(kv[k] - '0');
            r->pax_size = (int64_t)v;
        }
        i += len;
    }
}

static void on_header(struct tar_split_recorder *r)
{
    add_raw(r, r->hdr, 512);
    if (all_zero(r->hdr, 512)) {
        r->st = ST_TAIL; /* end-of-archive: everything after is raw */
        return;
    }
    char type = (char)r->hdr[156];
    uint64_t size;
    if (!parse_size(r->hdr + 124, &size)) {
        r->broken = true;
        r->st = ST_TAIL;
        return;
    }
    bool meta = type == 'x' || type == 'g' || type == 'L' || type == 'K';
    if (!meta && r->pax_size >= 0) {
        size = (uint64_t)r->pax_size;
        r->pax_size = -1;
    }
    if (type == 'S')
        r->broken = true; /* GNU sparse: content isn't the file's bytes */
    r->pad_after = (512 - size % 512) % 512;
    r->remaining = size;
    r->collecting_pax = false;
    if (meta) {
        r->st = ST_META_DATA;
        if (type == 'x') {
            r->collecting_pax = true;
            r->pax_len = 0;
        }
    } else {
        uint32_t idx = r->entry++;
        bool content = (type == '0' || type == '\0' || type == '7') && size > 0;
        if (content) {
            flush_raw(r);
            put_bytes(r, "F", 1);
            put_u64(r, size);
            put_u32(r, idx);
            r->st = ST_FILE_DATA;
        } else {
            r->st = ST_META_DATA; /* e.g. a hardlink with a size: keep raw */
        }
    }
    if (r->remaining == 0) {
        if (r->collecting_pax)
            parse_pax_size(r);
        r->remaining = r->pad_after;
        r->st = r->remaining ? ST_PAD : ST_HEADER;
    }
}

void tar_split_recorder_feed(struct tar_split_recorder *r, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        switch (r->st) {
        case ST_TAIL:
            add_raw(r, p, len);
            return;
        case ST_HEADER: {
            size_t k = 512 - r->hdr_len;
            if (k > len)
                k = len;
            memcpy(r->hdr + r->hdr_len, p, k);
            r->hdr_len += k;
            p += k;
            len -= k;
            if (r->hdr_len == 512) {
                r->hdr_len = 0;
                on_header(r);
            }
            break;
        }
        case ST_META_DATA:
        case ST_FILE_DATA:
        case ST_PAD: {
            size_t k = r->remaining < len ? (size_t)r->remaining : len;
            if (r->st != ST_FILE_DATA)
                add_raw(r, p, k);
            if (r->st == ST_META_DATA && r->collecting_pax) {
                if (r->pax_len + k <= PAX_MAX) {
                    if (!r->pax)
                        r->pax = xmalloc(PAX_MAX);
                    memcpy(r->pax + r->pax_len, p, k);
                    r->pax_len += k;
                } else {
                    r->collecting_pax = false;
                }
            }
            p += k;
            len -= k;
            r->remaining -= k;
            if (r->remaining == 0) {
                if (r->st == ST_PAD) {
                    r->st = ST_HEADER;
                } else {
                    if (r->collecting_pax)
                        parse_pax_size(r);
                    r->collecting_pax = false;
                    r->remaining = r->pad_after;
                    r->st = r->remaining ? ST_PAD : ST_HEADER;
                }
            }
            break;
        }
        }
    }
}

void tar_split_recorder_name(struct tar_split_recorder *r, uint32_t idx, const char *path)
{
    flush_raw(r);
    put_bytes(r, "N", 1);
    put_u32(r, idx);
    put_u32(r, (uint32_t)strlen(path));
    put_bytes(r, path, strlen(path));
}

int tar_split_recorder_keep(struct tar_split_recorder *r, uint32_t idx, int fd, uint64_t size,
                            berth_error_t *err)
{
    if (r->spill_fd < 0) {
        /* an unnamed file beside the record: nothing to clean up after a crash */
        cleanup_free char *dir = xstrdup(r->path);
        char *sl = strrchr(dir, '/');
        if (sl)
            *sl = 0;
        r->spill_fd = open(sl ? dir : ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (r->spill_fd < 0)
            return berth_error_make(err, errno, "create a spill file beside \"%s\"", r->path);
    }
    char buf[65536];
    uint64_t done = 0;
    while (done < size) {
        size_t want = size - done < sizeof(buf) ? (size_t)(size - done) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return berth_error_make(err, n < 0 ? errno : EIO, "read a replaced file");
        if (pwrite(r->spill_fd, buf, (size_t)n, (off_t)(r->spill_len + done)) != n)
            return berth_error_make(err, errno ? errno : EIO, "write the spill file");
        done += (uint64_t)n;
    }
    if (r->n_kept == r->cap_kept) {
        r->cap_kept = r->cap_kept ? r->cap_kept * 2 : 8;
        r->kept = xreallocarray(r->kept, r->cap_kept, sizeof(*r->kept));
    }
    r->kept[r->n_kept++] = (struct kept){.idx = idx, .off = r->spill_len, .size = size};
    r->spill_len += size;
    return 0;
}

/* The 'C' records, from the spill file. */
static void put_kept(struct tar_split_recorder *r)
{
    char buf[65536];
    for (size_t i = 0; i < r->n_kept && !r->write_failed; i++) {
        put_bytes(r, "C", 1);
        put_u32(r, r->kept[i].idx);
        put_u64(r, r->kept[i].size);
        uint64_t done = 0;
        while (done < r->kept[i].size && !r->write_failed) {
            uint64_t left = r->kept[i].size - done;
            size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
            ssize_t n = pread(r->spill_fd, buf, want, (off_t)(r->kept[i].off + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r->write_failed = true;
                break;
            }
            put_bytes(r, buf, (size_t)n);
            done += (uint64_t)n;
        }
    }
}

static void recorder_free(struct tar_split_recorder *r)
{
    if (r->spill_fd >= 0)
        close(r->spill_fd);
    free(r->kept);
    free(r->path);
    free(r->tmp_path);
    free(r->raw);
    free(r->pax);
    free(r);
}

void tar_split_recorder_abort(struct tar_split_recorder *r)
{
    if (!r)
        return;
    gzclose(r->gz);
    unlink(r->tmp_path);
    recorder_free(r);
}

int tar_split_recorder_finish(struct tar_split_recorder *r, berth_error_t *err)
{
    flush_raw(r);
    put_kept(r);
    put_bytes(r, "E", 1);
    bool broken = r->broken || r->write_failed || r->st == ST_FILE_DATA;
    int rc = gzclose(r->gz);
    r->gz = NULL;
    if (broken || rc != Z_OK) {
        unlink(r->tmp_path);
        berth_error_make_status(err, EINVAL,
                                broken && !r->write_failed
                                    ? "tar stream can't be recorded exactly (sparse/odd entries)"
                                    : "write tar-split record \"%s\"",
                                r->path);
        recorder_free(r);
        return -1;
    }
    if (rename(r->tmp_path, r->path) < 0) {
        berth_error_make(err, errno, "rename \"%s\"", r->tmp_path);
        unlink(r->tmp_path);
        recorder_free(r);
        return -1;
    }
    recorder_free(r);
    return 0;
}

/* ------------------------------------------------------------------ replay */

struct name_ent {
    uint32_t idx;
    char *path;
};

struct kept_ent {
    uint32_t idx;
    uint64_t size;
    z_off_t off; /* of the content in the uncompressed record */
};

struct split_reader {
    berth_reader_t base;
    gzFile gz;
    char *record_path;
    gzFile cgz; /* second handle on the record, for kept contents */
    bool from_cgz;
    struct kept_ent *kept;
    size_t n_kept;
    int root_fd;
    struct name_ent *names;
    size_t n_names;
    digester_t *dig;
    char *expected;
    int64_t expected_size;
    uint64_t total;
    /* current segment */
    uint64_t raw_left;  /* raw bytes left to copy from gz */
    uint64_t file_left; /* file bytes left to copy from fd */
    int file_fd;
    char *file_path;
    bool done;
    bool verified;
};

static bool gz_get(gzFile gz, void *buf, size_t n)
{
    return n == 0 || gzread(gz, buf, (unsigned)n) == (int)n;
}

static bool gz_u32(gzFile gz, uint32_t *v)
{
    unsigned char b[4];
    if (!gz_get(gz, b, 4))
        return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

static bool gz_u64(gzFile gz, uint64_t *v)
{
    uint32_t lo, hi;
    if (!gz_u32(gz, &lo) || !gz_u32(gz, &hi))
        return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

static const struct kept_ent *find_kept(const struct split_reader *sr, uint32_t idx)
{
    for (size_t i = 0; i < sr->n_kept; i++)
        if (sr->kept[i].idx == idx)
            return &sr->kept[i];
    return NULL;
}

static const char *find_name(struct split_reader *sr, uint32_t idx)
{
    size_t lo = 0, hi = sr->n_names;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sr->names[mid].idx == idx)
            return sr->names[mid].path;
        if (sr->names[mid].idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Reads the next record header; sets up raw/file segment or done. */
static int next_record(struct split_reader *sr, berth_error_t *err)
{
    for (;;) {
        char t;
        if (!gz_get(sr->gz, &t, 1))
            return berth_error_make_status(err, EIO, "tar-split record truncated");
        if (t == 'E') {
            sr->done = true;
            return 0;
        }
        if (t == 'R') {
            uint32_t len;
            if (!gz_u32(sr->gz, &len) || len > MAX_RECORD)
                return berth_error_make_status(err, EIO, "tar-split record corrupt");
            sr->raw_left = len;
            return 0;
        }
        if (t == 'N') {
            uint32_t idx, len;
            if (!gz_u32(sr->gz, &idx) || !gz_u32(sr->gz, &len) || len > MAX_NAMELEN)
                return berth_error_make_status(err, EIO, "tar-split record corrupt");
            gzseek(sr->gz, len, SEEK_CUR);
            continue;
        }
        if (t == 'C') {
            uint32_t idx;
            uint64_t size;
            if (!gz_u32(sr->gz, &idx) || !gz_u64(sr->gz, &size) ||
                gzseek(sr->gz, (z_off_t)size, SEEK_CUR) < 0)
                return berth_error_make_status(err, EIO, "tar-split record corrupt");
            continue;
        }
        if (t == 'F') {
            uint64_t size;
            uint32_t idx;
            if (!gz_u64(sr->gz, &size) || !gz_u32(sr->gz, &idx))
                return berth_error_make_status(err, EIO, "tar-split record corrupt");
            const struct kept_ent *k = find_kept(sr, idx);
            if (k) {
                if (k->size != size)
                    return berth_error_make_status(err, EIO, "tar-split record corrupt");
                if (!sr->cgz)
                    sr->cgz = gzopen(sr->record_path, "rb");
                if (!sr->cgz || gzseek(sr->cgz, k->off, SEEK_SET) != k->off)
                    return berth_error_make_status(err, EIO, "tar-split record: entry %u", idx);
                sr->from_cgz = true;
                free(sr->file_path);
                sr->file_path = xasprintf("entry %u of the record", idx);
                sr->file_left = size;
                return 0;
            }
            sr->from_cgz = false;
            const char *path = find_name(sr, idx);
            if (!path)
                return berth_error_make_status(err, EIO, "tar-split record: entry %u unnamed", idx);
            if (sr->file_fd >= 0)
                close(sr->file_fd);
            sr->file_fd = tar_openat_in_root(sr->root_fd, path, O_RDONLY | O_NOFOLLOW, 0);
            if (sr->file_fd < 0)
                return berth_error_make(err, errno, "open \"%s\" in layer", path);
            free(sr->file_path);
            sr->file_path = xstrdup(path);
            sr->file_left = size;
            return 0;
        }
        return berth_error_make_status(err, EIO, "tar-split record corrupt (tag 0x%02x)",
                                       (unsigned char)t);
    }
}

static ssize_t split_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct split_reader *sr = (struct split_reader *)r;
    for (;;) {
        if (sr->raw_left > 0) {
            size_t k = sr->raw_left < len ? (size_t)sr->raw_left : len;
            int n = gzread(sr->gz, buf, (unsigned)k);
            if (n <= 0)
                return berth_error_make_status(err, EIO, "tar-split record truncated");
            sr->raw_left -= (uint64_t)n;
            digester_update(sr->dig, buf, (size_t)n);
            sr->total += (uint64_t)n;
            return n;
        }
        if (sr->file_left > 0) {
            size_t k = sr->file_left < len ? (size_t)sr->file_left : len;
            ssize_t n;
            if (sr->from_cgz) {
                n = gzread(sr->cgz, buf, (unsigned)k);
                if (n <= 0)
                    return berth_error_make_status(err, EIO, "tar-split record truncated");
            } else {
                n = read(sr->file_fd, buf, k);
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return berth_error_make(err, errno, "read \"%s\"", sr->file_path);
            }
            if (n == 0)
                return berth_error_make_status(
                    err, EIO, "\"%s\" is shorter than when the layer was applied", sr->file_path);
            sr->file_left -= (uint64_t)n;
            digester_update(sr->dig, buf, (size_t)n);
            sr->total += (uint64_t)n;
            return n;
        }
        if (sr->done) {
            if (!sr->verified) {
                cleanup_free char *got = digester_finish(sr->dig);
                digester_free(sr->dig);
                sr->dig = digester_new(DIGEST_SHA256);
                if (sr->expected && !digest_equal(got, sr->expected))
                    return berth_error_make_status(err, EIO,
                                                   "layer contents changed: rebuilt tar has "
                                                   "digest %s, expected %s",
                                                   got, sr->expected);
                if (sr->expected_size >= 0 && (int64_t)sr->total != sr->expected_size)
                    return berth_error_make_status(err, EIO,
                                                   "rebuilt tar has size %llu, "
                                                   "expected %lld",
                                                   (unsigned long long)sr->total,
                                                   (long long)sr->expected_size);
                sr->verified = true;
            }
            return 0;
        }
        if (next_record(sr, err) < 0)
            return -1;
    }
}

static void split_close(berth_reader_t *r)
{
    struct split_reader *sr = (struct split_reader *)r;
    if (sr->gz)
        gzclose(sr->gz);
    if (sr->cgz)
        gzclose(sr->cgz);
    free(sr->kept);
    free(sr->record_path);
    if (sr->file_fd >= 0)
        close(sr->file_fd);
    if (sr->root_fd >= 0)
        close(sr->root_fd);
    for (size_t i = 0; i < sr->n_names; i++)
        free(sr->names[i].path);
    free(sr->names);
    free(sr->file_path);
    free(sr->expected);
    digester_free(sr->dig);
    free(sr);
}

static const struct berth_reader_ops split_ops = {.read = split_read, .close = split_close};

static int load_names(gzFile gz, struct name_ent **out, size_t *n_out, struct kept_ent **kout,
                      size_t *nk_out, berth_error_t *err)
{
    struct name_ent *v = NULL;
    size_t n = 0, cap = 0;
    struct kept_ent *kv = NULL;
    size_t nk = 0, kcap = 0;
    for (;;) {
        char t;
        if (!gz_get(gz, &t, 1))
            goto corrupt;
        if (t == 'E')
            break;
        if (t == 'R') {
            uint32_t len;
            if (!gz_u32(gz, &len) || len > MAX_RECORD || gzseek(gz, len, SEEK_CUR) < 0)
                goto corrupt;
        } else if (t == 'F') {
            uint64_t s;
            uint32_t i;
            if (!gz_u64(gz, &s) || !gz_u32(gz, &i))
                goto corrupt;
        } else if (t == 'C') {
            uint32_t i;
            uint64_t s;
            if (!gz_u32(gz, &i) || !gz_u64(gz, &s) || s > (uint64_t)INT64_MAX / 2)
                goto corrupt;
            z_off_t off = gztell(gz);
            if (off < 0 || gzseek(gz, (z_off_t)s, SEEK_CUR) != off + (z_off_t)s)
                goto corrupt;
            if (nk == kcap) {
                kcap = kcap ? kcap * 2 : 8;
                kv = xreallocarray(kv, kcap, sizeof(*kv));
            }
            kv[nk++] = (struct kept_ent){.idx = i, .size = s, .off = off};
        } else if (t == 'N') {
            uint32_t idx, len;
            if (!gz_u32(gz, &idx) || !gz_u32(gz, &len) || len > MAX_NAMELEN)
                goto corrupt;
            char *p = xmalloc(len + 1);
            if (!gz_get(gz, p, len)) {
                free(p);
                goto corrupt;
            }
            p[len] = '\0';
            if (n > 0 && v[n - 1].idx >= idx) {
                free(p);
                goto corrupt;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                v = xreallocarray(v, cap, sizeof(*v));
            }
            v[n].idx = idx;
            v[n].path = p;
            n++;
        } else {
            goto corrupt;
        }
    }
    *out = v;
    *n_out = n;
    *kout = kv;
    *nk_out = nk;
    return 0;
corrupt:
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
    free(kv);
    return berth_error_make_status(err, EIO, "tar-split record corrupt");
}

int tar_split_reader(const char *record_path, const char *dir, const char *expected_digest,
                     int64_t expected_size, berth_reader_t **out, berth_error_t *err)
{
    struct split_reader *sr = xzalloc(sizeof(*sr));
    sr->base.ops = &split_ops;
    sr->file_fd = -1;
    sr->record_path = xstrdup(record_path);
    sr->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    sr->expected = expected_digest ? xstrdup(expected_digest) : NULL;
    sr->expected_size = expected_size;
    sr->dig = digester_new(DIGEST_SHA256);
    if (sr->root_fd < 0) {
        berth_error_make(err, errno, "open \"%s\"", dir);
        goto fail;
    }
    sr->gz = gzopen(record_path, "rb");
    if (!sr->gz) {
        berth_error_make(err, errno ? errno : EIO, "open \"%s\"", record_path);
        goto fail;
    }
    char magic[8];
    if (!gz_get(sr->gz, magic, 8) || memcmp(magic, "BERTHTS1", 8) != 0) {
        berth_error_make_status(err, EIO, "\"%s\" is not a tar-split record", record_path);
        goto fail;
    }
    if (load_names(sr->gz, &sr->names, &sr->n_names, &sr->kept, &sr->n_kept, err) < 0)
        goto fail;
    if (gzrewind(sr->gz) < 0 || !gz_get(sr->gz, magic, 8)) {
        berth_error_make_status(err, EIO, "rewind \"%s\"", record_path);
        goto fail;
    }
    *out = &sr->base;
    return 0;
fail:
    split_close(&sr->base);
    return -1;
}
