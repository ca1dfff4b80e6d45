/* Byte streams.  A reader is a small vtable (read, close) that stacks:
 *     http body -> digest verifier -> gzip/zstd decompressor -> tar
 * Each stage is a reader over the one below.  A stacking constructor takes ownership of the
 * lower reader when `own` is true and closes it from its own close.
 *
 * read() returns the number of bytes read (> 0), 0 at end of stream, or < 0 with *err set.
 * Readers never return short reads as errors; a short read just means "call again".
 *
 * There is no writer stack: everything that produces data (layer diffs, compression, uploads)
 * is a reader pulled by its consumer; the writers that once mirrored these had no caller and were
 * removed (issue 22).
 */
#ifndef BERTH_STREAM_H
#define BERTH_STREAM_H

#include "common/digest.h"
#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct berth_reader berth_reader_t;

struct berth_reader_ops {
    ssize_t (*read)(berth_reader_t *r, void *buf, size_t len, berth_error_t *err);
    void (*close)(berth_reader_t *r); /* frees r and (if owned) the lower reader */
    /* optional: the digest (and size, -1 if unchecked) this stream's bytes are guaranteed to
     * have once it returned EOF — set by reader_verify, forwarded by readers that pass bytes
     * through unchanged; NULL = no guarantee */
    const char *(*verified_digest)(berth_reader_t *r, int64_t *size);
};

struct berth_reader {
    const struct berth_reader_ops *ops;
};

BERTH_MUST_CHECK ssize_t reader_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err);
/* Reads exactly len bytes unless EOF comes first; returns bytes read (< len only at EOF). */
BERTH_MUST_CHECK ssize_t reader_read_full(berth_reader_t *r, void *buf, size_t len,
                                          berth_error_t *err);
void reader_close(berth_reader_t *r); /* NULL-safe */
static inline void cleanup_readerp(berth_reader_t **r)
{
    reader_close(*r);
    *r = NULL;
}
#define cleanup_reader __attribute__((cleanup(cleanup_readerp)))

/* Sources */
berth_reader_t *reader_from_fd(int fd, bool own_fd);
BERTH_MUST_CHECK int reader_open_file(const char *path, berth_reader_t **out, berth_error_t *err);
/* Reads from memory; copies the buffer when copy is true, else the caller keeps it alive. */
berth_reader_t *reader_from_buffer(const void *buf, size_t len, bool copy);

/* Reads the whole stream into a NUL-terminated buffer; fails with a clear error (EFBIG) if more
 * than max bytes arrive.  *len excludes the terminating NUL. */
BERTH_MUST_CHECK int reader_read_all(berth_reader_t *r, size_t max, char **out, size_t *len,
                                     berth_error_t *err);
/* Copies everything to fd (handles short writes, EINTR); returns bytes copied or < 0. */
BERTH_MUST_CHECK int64_t reader_copy_to_fd(berth_reader_t *r, int fd, berth_error_t *err);

/* Digest and size accounting: passes data through unchanged while hashing it. */
berth_reader_t *reader_digest(berth_reader_t *lower, bool own, digest_algo_t algo);
/* Valid after EOF was returned: "algo:hex" (owned by the reader) and the byte count. */
const char *reader_digest_result(berth_reader_t *digest_reader);
uint64_t reader_digest_size(berth_reader_t *digest_reader);

/* Verification: fails the read (EIO-like error naming the digest) as soon as more than
 * expected_size bytes arrive (when expected_size >= 0), and at EOF if the size or the digest
 * differ.  Only a reader that returned 0 (EOF) has been verified. */
berth_reader_t *reader_verify(berth_reader_t *lower, bool own, const char *expected_digest,
                              int64_t expected_size);

/* The digest r's bytes are checked against by a reader_verify below it (NULL if none), so a
 * consumer of r need not hash them again: a read that returned EOF has been verified.  *size
 * receives the checked size or -1. */
const char *reader_verified_digest(berth_reader_t *r, int64_t *size);

/* Fails with EFBIG once more than max bytes are read. */
berth_reader_t *reader_limit(berth_reader_t *lower, bool own, uint64_t max);

typedef enum {
    COMPRESSION_NONE = 0,
    COMPRESSION_GZIP = 1,
    COMPRESSION_ZSTD = 2,
} compression_t;

const char *compression_name(compression_t c); /* "none", "gzip", "zstd" */
BERTH_MUST_CHECK int compression_from_name(const char *name, compression_t *out,
                                           berth_error_t *err);
/* Looks at the first bytes (at least 4 needed for zstd, 2 for gzip). */
compression_t compression_detect(const void *buf, size_t len);

/* Decompression: detects the format from the first bytes (peeking, nothing lost) and returns a
 * reader of the uncompressed data; for uncompressed input it passes data through. *detected
 * (optional) receives the format.  On failure (the peek read failed) lower is NOT taken over:
 * the caller still owns it.  Multi-member gzip and multi-frame zstd are read as one stream;
 * truncated or corrupt input is an EIO error, never a silent EOF. */
BERTH_MUST_CHECK int reader_decompress(berth_reader_t *lower, bool own, compression_t *detected,
                                       berth_reader_t **out, berth_error_t *err);
berth_reader_t *reader_gzip_decompress(berth_reader_t *lower, bool own);
berth_reader_t *reader_zstd_decompress(berth_reader_t *lower, bool own);
/* Compression as a pull stream: reading it yields compressed bytes of lower's data.
 * level < 0 means the format's default.  Output is deterministic for the same input+level
 * (gzip header mtime 0, no name; zstd without content-size dependency on timing). */
berth_reader_t *reader_compress(berth_reader_t *lower, bool own, compression_t c, int level);

#endif
