/* A layer's tar-split record (storage/tar_split.h), read back to rebuild the layer's tar: the
 * record is a file in the store, so a damaged or crafted one must fail cleanly. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/fs.h"
#include "storage/tar.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/berth-fuzz-split-XXXXXX";
static char record[sizeof(base) + 16], layer[sizeof(base) + 16];

static void cleanup_base(void)
{
    berth_error_t err = NULL;
    if (fs_rm_rf(base, &err) < 0)
        berth_error_release(&err);
}

static void setup(void)
{
    if (!mkdtemp(base))
        abort();
    atexit(cleanup_base);
    snprintf(record, sizeof(record), "%s/record", base);
    snprintf(layer, sizeof(layer), "%s/layer", base);
    if (mkdir(layer, 0755) < 0)
        abort();
    /* Files the record's entries can name. */
    static const char *const files[][2] = {{"a", "hello\n"}, {"b", ""}, {"d/c", "0123456789"}};
    char p[sizeof(layer) + 16];
    snprintf(p, sizeof(p), "%s/d", layer);
    if (mkdir(p, 0755) < 0)
        abort();
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", layer, files[i][0]);
        FILE *f = fopen(p, "w");
        if (!f || fputs(files[i][1], f) < 0 || fclose(f) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    /* zlib's gzread passes data without a gzip header through as is. */
    FILE *f = fopen(record, "w");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    cleanup_error berth_error_t err = NULL;
    cleanup_reader berth_reader_t *r = NULL;
    if (tar_split_reader(record, layer, NULL, -1, &r, &err) < 0)
        return 0;
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = reader_read(r, buf, sizeof(buf), &err)) > 0 && total < (64u << 20))
        total += (size_t)n;
    return 0;
}
