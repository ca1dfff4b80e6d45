#include "common/stream.h"
#include "common/alloc.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* Fixed buffer size for every stage that needs one: memory stays flat whatever the stream size. */
#define CHUNK (128 * 1024)

/* ---- generic ---- */

ssize_t reader_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    if (len == 0)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    return r->ops->read(r, buf, len, err);
}

ssize_t reader_read_full(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = reader_read(r, (char *)buf + got, len - got, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

void reader_close(berth_reader_t *r)
{
    if (r)
        r->ops->close(r);
}

int reader_read_all(berth_reader_t *r, size_t max, char **out, size_t *len, berth_error_t *err)
{
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4; /* keeps max + 1 and doubling from overflowing */
    size_t cap = max < 4096 ? max + 1 : 4096;
    size_t used = 0;
    cleanup_free char *buf = xmalloc(cap + 1);
    for (;;) {
        if (used == cap) {
            if (cap > max)
                return berth_error_make_status(err, EFBIG, "stream exceeds the %zu byte limit",
                                               max);
            size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            buf = xrealloc(buf, ncap + 1);
            cap = ncap;
        }
        ssize_t n = reader_read(r, buf + used, cap - used, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used > max)
        return berth_error_make_status(err, EFBIG, "stream exceeds the %zu byte limit", max);
    buf[used] = '\0';
    if (len)
        *len = used;
    *out = steal_pointer(&buf);
    return 0;
}

static int write_all(int fd, const void *buf, size_t len, berth_error_t *err)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "write");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int64_t reader_copy_to_fd(berth_reader_t *r, int fd, berth_error_t *err)
{
    cleanup_free char *buf = xmalloc(CHUNK);
    int64_t total = 0;
    for (;;) {
        ssize_t n = reader_read(r, buf, CHUNK, err);
        if (n < 0)
            return -1;
        if (n == 0)
            return total;
        if (write_all(fd, buf, (size_t)n, err) < 0)
            return -1;
        total += n;
    }
}

/* ---- fd reader ---- */

struct fd_reader {
    berth_reader_t base;
    int fd;
    bool own;
};

static ssize_t fd_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct fd_reader *f = (struct fd_reader *)r;
    for (;;) {
        ssize_t n = read(f->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return berth_error_make(err, errno, "read");
    }
}

static void fd_close(berth_reader_t *r)
{
    struct fd_reader *f = (struct fd_reader *)r;
    if (f->own && f->fd >= 0)
        close(f->fd);
    free(f);
}

static const struct berth_reader_ops fd_reader_ops = {.read = fd_read, .close = fd_close};

berth_reader_t *reader_from_fd(int fd, bool own_fd)
{
    struct fd_reader *f = xzalloc(sizeof(*f));
    f->base.ops = &fd_reader_ops;
    f->fd = fd;
    f->own = own_fd;
    return &f->base;
}

int reader_open_file(const char *path, berth_reader_t **out, berth_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    *out = reader_from_fd(fd, true);
    return 0;
}

/* ---- buffer reader ---- */

struct buf_reader {
    berth_reader_t base;
    const char *data;
    size_t len, pos;
    char *owned;
};

static ssize_t buf_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct buf_reader *b = (struct buf_reader *)r;
    size_t n = b->len - b->pos;
    if (n > len)
        n = len;
    memcpy(buf, b->data + b->pos, n);
    b->pos += n;
    return (ssize_t)n;
}

static void buf_close(berth_reader_t *r)
{
    struct buf_reader *b = (struct buf_reader *)r;
    free(b->owned);
    free(b);
}

static const struct berth_reader_ops buf_reader_ops = {.read = buf_read, .close = buf_close};

berth_reader_t *reader_from_buffer(const void *buf, size_t len, bool copy)
{
    struct buf_reader *b = xzalloc(sizeof(*b));
    b->base.ops = &buf_reader_ops;
    if (copy && len > 0) {
        b->owned = xmalloc(len);
        memcpy(b->owned, buf, len);
        b->data = b->owned;
    } else {
        b->data = buf;
    }
    b->len = len;
    return &b->base;
}

/* ---- prefix reader: bytes already peeked, then the lower reader ---- */

struct prefix_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    unsigned char prefix[16];
    size_t plen, ppos;
};

static ssize_t prefix_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct prefix_reader *p = (struct prefix_reader *)r;
    if (p->ppos < p->plen) {
        size_t n = p->plen - p->ppos;
        if (n > len)
            n = len;
        memcpy(buf, p->prefix + p->ppos, n);
        p->ppos += n;
        return (ssize_t)n;
    }
    return reader_read(p->lower, buf, len, err);
}

static void prefix_close(berth_reader_t *r)
{
    struct prefix_reader *p = (struct prefix_reader *)r;
    if (p->own)
        reader_close(p->lower);
    free(p);
}

static const struct berth_reader_ops prefix_reader_ops = {.read = prefix_read,
                                                          .close = prefix_close};

static struct prefix_reader *prefix_new(berth_reader_t *lower, bool own)
{
    struct prefix_reader *p = xzalloc(sizeof(*p));
    p->base.ops = &prefix_reader_ops;
    p->lower = lower;
    p->own = own;
    return p;
}

/* ---- digest reader ---- */

struct digest_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    digester_t *d;
    char *result;
    uint64_t size;
};

static ssize_t hashing_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct digest_reader *dr = (struct digest_reader *)r;
    if (dr->result)
        return 0;
    ssize_t n = reader_read(dr->lower, buf, len, err);
    if (n < 0)
        return n;
    if (n == 0) {
        dr->result = digester_finish(dr->d);
        return 0;
    }
    digester_update(dr->d, buf, (size_t)n);
    dr->size += (uint64_t)n;
    return n;
}

static void hashing_close(berth_reader_t *r)
{
    struct digest_reader *dr = (struct digest_reader *)r;
    if (dr->own)
        reader_close(dr->lower);
    digester_free(dr->d);
    free(dr->result);
    free(dr);
}

static const struct berth_reader_ops digest_reader_ops = {.read = hashing_read,
                                                          .close = hashing_close};

berth_reader_t *reader_digest(berth_reader_t *lower, bool own, digest_algo_t algo)
{
    struct digest_reader *dr = xzalloc(sizeof(*dr));
    dr->base.ops = &digest_reader_ops;
    dr->lower = lower;
    dr->own = own;
    dr->d = digester_new(algo);
    return &dr->base;
}

const char *reader_digest_result(berth_reader_t *r)
{
    if (r == NULL || r->ops != &digest_reader_ops)
        return NULL;
    return ((struct digest_reader *)r)->result;
}

uint64_t reader_digest_size(berth_reader_t *r)
{
    if (r == NULL || r->ops != &digest_reader_ops)
        return 0;
    return ((struct digest_reader *)r)->size;
}

/* ---- verify reader ---- */

struct verify_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    char *expected;
    int64_t expected_size;
    digester_t *d; /* NULL when the expected digest is invalid */
    uint64_t size;
    bool verified;
    berth_error_t failure; /* sticky: every later read fails the same way */
};

/* Expected digests come from manifests: never print an absurdly long one whole. */
#define SHOWN 140

static ssize_t verify_fail(struct verify_reader *v, berth_error_t *err)
{
    return berth_error_make_status(err, berth_error_status(v->failure), "%s",
                                   berth_error_msg(v->failure));
}

static ssize_t verify_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct verify_reader *v = (struct verify_reader *)r;
    if (v->failure)
        return verify_fail(v, err);
    if (v->verified)
        return 0;
    if (v->d == NULL) {
        berth_error_t e = NULL;
        IGNORE_RESULT(digest_validate(v->expected, &e));
        berth_error_make_status(&v->failure, EINVAL, "blob %.*s: %s", SHOWN, v->expected,
                                berth_error_msg(e));
        berth_error_release(&e);
        return verify_fail(v, err);
    }
    /* Ask for one byte more than may come, so an oversized blob is caught right away. */
    if (v->expected_size >= 0) {
        uint64_t room = (uint64_t)v->expected_size - v->size + 1;
        if (len > room)
            len = (size_t)room;
    }
    ssize_t n = reader_read(v->lower, buf, len, err);
    if (n < 0)
        return n;
    if (n > 0) {
        v->size += (uint64_t)n;
        if (v->expected_size >= 0 && v->size > (uint64_t)v->expected_size) {
            berth_error_make_status(
                &v->failure, EIO, "blob %.*s: size mismatch: expected %" PRId64 " bytes, got more",
                SHOWN, v->expected, v->expected_size);
            return verify_fail(v, err);
        }
        digester_update(v->d, buf, (size_t)n);
        return n;
    }
    if (v->expected_size >= 0 && v->size != (uint64_t)v->expected_size) {
        berth_error_make_status(
            &v->failure, EIO, "blob %.*s: size mismatch: expected %" PRId64 " bytes, got %" PRIu64,
            SHOWN, v->expected, v->expected_size, v->size);
        return verify_fail(v, err);
    }
    cleanup_free char *got = digester_finish(v->d);
    if (strcmp(got, v->expected) != 0) {
        berth_error_make_status(&v->failure, EIO,
                                "blob %.*s: digest mismatch: expected %.*s, got %s", SHOWN,
                                v->expected, SHOWN, v->expected, got);
        return verify_fail(v, err);
    }
    v->verified = true;
    return 0;
}

static void verify_close(berth_reader_t *r)
{
    struct verify_reader *v = (struct verify_reader *)r;
    if (v->own)
        reader_close(v->lower);
    digester_free(v->d);
    free(v->expected);
    berth_error_release(&v->failure);
    free(v);
}

static const char *verify_digest(berth_reader_t *r, int64_t *size)
{
    struct verify_reader *v = (struct verify_reader *)r;
    if (v->d == NULL) /* an invalid expected digest fails every read */
        return NULL;
    *size = v->expected_size;
    return v->expected;
}

static const struct berth_reader_ops verify_reader_ops = {
    .read = verify_read, .close = verify_close, .verified_digest = verify_digest};

const char *reader_verified_digest(berth_reader_t *r, int64_t *size)
{
    *size = -1;
    if (r == NULL || r->ops->verified_digest == NULL)
        return NULL;
    return r->ops->verified_digest(r, size);
}

berth_reader_t *reader_verify(berth_reader_t *lower, bool own, const char *expected_digest,
                              int64_t expected_size)
{
    struct verify_reader *v = xzalloc(sizeof(*v));
    v->base.ops = &verify_reader_ops;
    v->lower = lower;
    v->own = own;
    v->expected = xstrdup(expected_digest ? expected_digest : "");
    v->expected_size = expected_size;
    digest_algo_t algo;
    if (digest_parse(v->expected, &algo, NULL, NULL) == 0)
        v->d = digester_new(algo);
    return &v->base;
}

/* ---- limit reader ---- */

struct limit_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    uint64_t max, size;
};

static ssize_t limit_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct limit_reader *l = (struct limit_reader *)r;
    if (l->size > l->max)
        return berth_error_make_status(err, EFBIG, "stream exceeds the %" PRIu64 " byte limit",
                                       l->max);
    uint64_t room = l->max - l->size + 1;
    if (len > room)
        len = (size_t)room;
    ssize_t n = reader_read(l->lower, buf, len, err);
    if (n <= 0)
        return n;
    l->size += (uint64_t)n;
    if (l->size > l->max)
        return berth_error_make_status(err, EFBIG, "stream exceeds the %" PRIu64 " byte limit",
                                       l->max);
    return n;
}

static void limit_close(berth_reader_t *r)
{
    struct limit_reader *l = (struct limit_reader *)r;
    if (l->own)
        reader_close(l->lower);
    free(l);
}

static const struct berth_reader_ops limit_reader_ops = {.read = limit_read, .close = limit_close};

berth_reader_t *reader_limit(berth_reader_t *lower, bool own, uint64_t max)
{
    struct limit_reader *l = xzalloc(sizeof(*l));
    l->base.ops = &limit_reader_ops;
    l->lower = lower;
    l->own = own;
    l->max = max;
    return &l->base;
}

/* ---- compression names and detection ---- */

const char *compression_name(compression_t c)
{
    switch (c) {
    case COMPRESSION_GZIP:
        return "gzip";
    case COMPRESSION_ZSTD:
        return "zstd";
    default:
        return "none";
    }
}

int compression_from_name(const char *name, compression_t *out, berth_error_t *err)
{
    if (name == NULL)
        name = "";
    if (strcmp(name, "gzip") == 0)
        *out = COMPRESSION_GZIP;
    else if (strcmp(name, "zstd") == 0)
        *out = COMPRESSION_ZSTD;
    else if (strcmp(name, "none") == 0 || strcmp(name, "uncompressed") == 0)
        *out = COMPRESSION_NONE;
    else
        return berth_error_make_status(
            err, EINVAL, "unknown compression format \"%.64s\" (known: gzip, zstd, none)", name);
    return 0;
}

compression_t compression_detect(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return COMPRESSION_GZIP;
    if (len >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
        return COMPRESSION_ZSTD;
    return COMPRESSION_NONE;
}

/* ---- gzip decompression ---- */

struct gunzip_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    z_stream zs;
    bool initialised, lower_eof, member_ended, done;
    unsigned char *in;
};

static ssize_t gunzip_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct gunzip_reader *g = (struct gunzip_reader *)r;
    if (g->done)
        return 0;
    if (len > UINT_MAX)
        len = UINT_MAX;
    g->zs.next_out = buf;
    g->zs.avail_out = (uInt)len;
    while (g->zs.avail_out == len) {
        if (g->zs.avail_in == 0 && !g->lower_eof) {
            ssize_t n = reader_read(g->lower, g->in, CHUNK, err);
            if (n < 0)
                return -1;
            if (n == 0)
                g->lower_eof = true;
            g->zs.next_in = g->in;
            g->zs.avail_in = (uInt)n;
        }
        if (g->member_ended) {
            /* Concatenated members form one stream (RFC 1952 2.2). */
            if (g->zs.avail_in == 0) {
                if (g->lower_eof) {
                    g->done = true;
                    break;
                }
                continue;
            }
            if (inflateReset(&g->zs) != Z_OK)
                return berth_error_make_status(err, EIO, "gzip: cannot reset decompressor");
            g->member_ended = false;
        }
        int ret = inflate(&g->zs, Z_NO_FLUSH);
        if (ret == Z_STREAM_END) {
            g->member_ended = true;
        } else if (ret == Z_BUF_ERROR) {
            if (g->zs.avail_in == 0 && g->lower_eof)
                return berth_error_make_status(err, EIO, "gzip: unexpected end of compressed data");
        } else if (ret != Z_OK) {
            return berth_error_make_status(err, EIO, "gzip: invalid compressed data: %s",
                                           g->zs.msg ? g->zs.msg : "error");
        }
    }
    return (ssize_t)(len - g->zs.avail_out);
}

static void gunzip_close(berth_reader_t *r)
{
    struct gunzip_reader *g = (struct gunzip_reader *)r;
    if (g->initialised)
        inflateEnd(&g->zs);
    if (g->own)
        reader_close(g->lower);
    free(g->in);
    free(g);
}

static const struct berth_reader_ops gunzip_reader_ops = {.read = gunzip_read,
                                                          .close = gunzip_close};

berth_reader_t *reader_gzip_decompress(berth_reader_t *lower, bool own)
{
    struct gunzip_reader *g = xzalloc(sizeof(*g));
    g->base.ops = &gunzip_reader_ops;
    g->lower = lower;
    g->own = own;
    g->in = xmalloc(CHUNK);
    /* 16 + 15: gzip wrapper only, full window. */
    if (inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK)
        abort(); /* only fails on memory exhaustion */
    g->initialised = true;
    return &g->base;
}

/* ---- zstd decompression ---- */

struct unzstd_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    ZSTD_DCtx *dctx;
    ZSTD_inBuffer in;
    unsigned char *inbuf;
    bool lower_eof, frame_done, done, any_input;
};

static ssize_t unzstd_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct unzstd_reader *z = (struct unzstd_reader *)r;
    if (z->done)
        return 0;
    ZSTD_outBuffer out = {.dst = buf, .size = len, .pos = 0};
    while (out.pos == 0) {
        if (z->in.pos == z->in.size && !z->lower_eof) {
            ssize_t n = reader_read(z->lower, z->inbuf, CHUNK, err);
            if (n < 0)
                return -1;
            if (n == 0)
                z->lower_eof = true;
            else
                z->any_input = true;
            z->in.src = z->inbuf;
            z->in.size = (size_t)n;
            z->in.pos = 0;
        }
        bool no_input = z->in.pos == z->in.size && z->lower_eof;
        if (no_input && z->frame_done && z->any_input) {
            z->done = true;
            break;
        }
        size_t in_before = z->in.pos;
        size_t ret = ZSTD_decompressStream(z->dctx, &out, &z->in);
        if (ZSTD_isError(ret))
            return berth_error_make_status(err, EIO, "zstd: invalid compressed data: %s",
                                           ZSTD_getErrorName(ret));
        /* 0: a frame is completely decoded and flushed; a new one may follow. */
        z->frame_done = ret == 0;
        if (no_input && out.pos == 0 && z->in.pos == in_before && !z->frame_done)
            return berth_error_make_status(err, EIO, "zstd: unexpected end of compressed data");
    }
    return (ssize_t)out.pos;
}

static void unzstd_close(berth_reader_t *r)
{
    struct unzstd_reader *z = (struct unzstd_reader *)r;
    ZSTD_freeDCtx(z->dctx);
    if (z->own)
        reader_close(z->lower);
    free(z->inbuf);
    free(z);
}

static const struct berth_reader_ops unzstd_reader_ops = {.read = unzstd_read,
                                                          .close = unzstd_close};

berth_reader_t *reader_zstd_decompress(berth_reader_t *lower, bool own)
{
    struct unzstd_reader *z = xzalloc(sizeof(*z));
    z->base.ops = &unzstd_reader_ops;
    z->lower = lower;
    z->own = own;
    z->inbuf = xmalloc(CHUNK);
    z->dctx = ZSTD_createDCtx();
    if (z->dctx == NULL)
        abort();
    /* Bound the window so a hostile frame header cannot make us allocate gigabytes
     * (2^27 = 128 MiB is zstd's default limit too; --long=31 archives need more). */
    ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, 27);
    return &z->base;
}

int reader_decompress(berth_reader_t *lower, bool own, compression_t *detected,
                      berth_reader_t **out, berth_error_t *err)
{
    struct prefix_reader *p = prefix_new(lower, own);
    ssize_t n = reader_read_full(lower, p->prefix, 4, err);
    if (n < 0) {
        p->own = false; /* on failure the caller keeps ownership of lower */
        prefix_close(&p->base);
        return -1;
    }
    p->plen = (size_t)n;
    compression_t c = compression_detect(p->prefix, p->plen);
    if (detected)
        *detected = c;
    switch (c) {
    case COMPRESSION_GZIP:
        *out = reader_gzip_decompress(&p->base, true);
        break;
    case COMPRESSION_ZSTD:
        *out = reader_zstd_decompress(&p->base, true);
        break;
    default:
        *out = &p->base;
        break;
    }
    return 0;
}

/* ---- compression engines shared by the decompressing and the compressing readers ---- */

struct compressor {
    compression_t c;
    z_stream zs;
    gz_header hdr; /* zlib keeps a pointer to it until the header is written */
    ZSTD_CCtx *cctx;
};

static void compressor_init(struct compressor *k, compression_t c, int level)
{
    k->c = c;
    if (c == COMPRESSION_GZIP) {
        if (level < 0)
            level = 6;
        if (level > 9)
            level = 9;
        /* 16 + 15: gzip wrapper.  zlib writes mtime 0, no name, fixed OS byte (set below). */
        if (deflateInit2(&k->zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            abort();
        memset(&k->hdr, 0, sizeof(k->hdr)); /* no name, no comment, mtime 0 */
        k->hdr.os = 255;                    /* "unknown", as Go's compress/gzip writes */
        deflateSetHeader(&k->zs, &k->hdr);
    } else if (c == COMPRESSION_ZSTD) {
        if (level < 0)
            level = 3;
        if (level == 0)
            level = 1;
        if (level > ZSTD_maxCLevel())
            level = ZSTD_maxCLevel();
        k->cctx = ZSTD_createCCtx();
        if (k->cctx == NULL)
            abort();
        ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_checksumFlag, 1);
    }
}

static void compressor_end(struct compressor *k)
{
    if (k->c == COMPRESSION_GZIP)
        deflateEnd(&k->zs);
    else if (k->c == COMPRESSION_ZSTD)
        ZSTD_freeCCtx(k->cctx);
    k->c = COMPRESSION_NONE;
}

/* Consumes from *in (in_len bytes) and produces into out/out_cap; sets *produced, *finished (only
 * when finish is true and everything is flushed).  Returns < 0 on error. */
static int compressor_step(struct compressor *k, const unsigned char **in, size_t *in_len,
                           unsigned char *out, size_t out_cap, bool finish, size_t *produced,
                           bool *finished, berth_error_t *err)
{
    *finished = false;
    if (k->c == COMPRESSION_GZIP) {
        uInt ia = *in_len > UINT_MAX ? UINT_MAX : (uInt)*in_len;
        uInt oa = out_cap > UINT_MAX ? UINT_MAX : (uInt)out_cap;
        k->zs.next_in = (Bytef *)*in;
        k->zs.avail_in = ia;
        k->zs.next_out = out;
        k->zs.avail_out = oa;
        int ret = deflate(&k->zs, finish && ia == *in_len ? Z_FINISH : Z_NO_FLUSH);
        if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
            return berth_error_make_status(err, EIO, "gzip: compression failed: %s",
                                           k->zs.msg ? k->zs.msg : "error");
        size_t used = ia - k->zs.avail_in;
        *in += used;
        *in_len -= used;
        *produced = oa - k->zs.avail_out;
        *finished = ret == Z_STREAM_END;
        return 0;
    }
    ZSTD_inBuffer ib = {.src = *in, .size = *in_len, .pos = 0};
    ZSTD_outBuffer ob = {.dst = out, .size = out_cap, .pos = 0};
    size_t ret = ZSTD_compressStream2(k->cctx, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(ret))
        return berth_error_make_status(err, EIO, "zstd: compression failed: %s",
                                       ZSTD_getErrorName(ret));
    *in += ib.pos;
    *in_len -= ib.pos;
    *produced = ob.pos;
    *finished = finish && ret == 0;
    return 0;
}

/* ---- compressing reader ---- */

struct compress_reader {
    berth_reader_t base;
    berth_reader_t *lower;
    bool own;
    struct compressor k;
    unsigned char *inbuf;
    const unsigned char *in;
    size_t in_len;
    bool lower_eof, done;
};

static ssize_t compress_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct compress_reader *c = (struct compress_reader *)r;
    size_t produced = 0;
    while (produced == 0 && !c->done) {
        if (c->in_len == 0 && !c->lower_eof) {
            ssize_t n = reader_read(c->lower, c->inbuf, CHUNK, err);
            if (n < 0)
                return -1;
            if (n == 0)
                c->lower_eof = true;
            c->in = c->inbuf;
            c->in_len = (size_t)n;
        }
        bool finished = false;
        if (compressor_step(&c->k, &c->in, &c->in_len, buf, len, c->lower_eof, &produced, &finished,
                            err) < 0)
            return -1;
        if (finished)
            c->done = true;
    }
    return (ssize_t)produced;
}

static void compress_close(berth_reader_t *r)
{
    struct compress_reader *c = (struct compress_reader *)r;
    compressor_end(&c->k);
    if (c->own)
        reader_close(c->lower);
    free(c->inbuf);
    free(c);
}

static const struct berth_reader_ops compress_reader_ops = {.read = compress_read,
                                                            .close = compress_close};

berth_reader_t *reader_compress(berth_reader_t *lower, bool own, compression_t c, int level)
{
    if (c != COMPRESSION_GZIP && c != COMPRESSION_ZSTD)
        return &prefix_new(lower, own)->base; /* pass-through */
    struct compress_reader *cr = xzalloc(sizeof(*cr));
    cr->base.ops = &compress_reader_ops;
    cr->lower = lower;
    cr->own = own;
    cr->inbuf = xmalloc(CHUNK);
    compressor_init(&cr->k, c, level);
    return &cr->base;
}
