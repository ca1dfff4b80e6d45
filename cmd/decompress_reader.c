/* A reader over libarchive's filters with the "raw" format (see decompress_reader.h). */
#include "cmd/decompress_reader.h"

#include "common/alloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct archive_reader {
    berth_reader_t base;
    struct archive *a;
    char *path;
    bool empty; /* an empty input: an empty stream, as a plain read would give */
};

static ssize_t ar_read(berth_reader_t *r, void *buf, size_t len, berth_error_t *err)
{
    struct archive_reader *ar = (struct archive_reader *)r;
    if (ar->empty)
        return 0;
    la_ssize_t n = archive_read_data(ar->a, buf, len);
    if (n < 0)
        return berth_error_make_status(err, EIO, "decompress \"%s\": %s", ar->path,
                                       archive_error_string(ar->a));
    return (ssize_t)n;
}

static void ar_close(berth_reader_t *r)
{
    struct archive_reader *ar = (struct archive_reader *)r;
    archive_read_free(ar->a);
    free(ar->path);
    free(ar);
}

static const struct berth_reader_ops ar_ops = {.read = ar_read, .close = ar_close};

int cli_open_decompressed(const char *path, berth_reader_t **out, berth_error_t *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    archive_read_support_format_empty(a);
    int r = strcmp(path, "-") == 0 ? archive_read_open_fd(a, 0, 64 * 1024)
                                   : archive_read_open_filename(a, path, 64 * 1024);
    struct archive_entry *e;
    if (r == ARCHIVE_OK)
        r = archive_read_next_header(a, &e);
    if (r != ARCHIVE_OK && r != ARCHIVE_EOF) {
        int e2 = archive_errno(a) > 0 ? archive_errno(a) : EIO;
        berth_error_make_status(err, e2, "open \"%s\": %s", path,
                                archive_error_string(a) ? archive_error_string(a) : "empty input");
        archive_read_free(a);
        return -1;
    }
    struct archive_reader *ar = xcalloc(1, sizeof(*ar));
    ar->base.ops = &ar_ops;
    ar->a = a;
    ar->path = xstrdup(path);
    ar->empty = r == ARCHIVE_EOF;
    *out = &ar->base;
    return 0;
}
