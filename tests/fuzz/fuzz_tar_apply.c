/* Applying a layer tar into a fresh root (what pull does with every layer), recording its
 * tar-split, then rebuilding the tar from the record and the applied files: the rebuilt stream
 * must have the digest of the input, or layer diffs and pushes would change an image's layers.
 *
 * Run as root, the target first drops to nobody: an escape from the root that the fuzzer finds
 * can then not write over the machine it runs on. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/stream.h"
#include "storage/tar.h"

#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/berth-fuzz-tar-XXXXXX";
static char record[sizeof(base) + 16], root[sizeof(base) + 16];

static void cleanup_base(void)
{
    berth_error_t err = NULL;
    if (fs_rm_rf(base, &err) < 0)
        berth_error_release(&err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (!mkdtemp(base))
        abort();
    if (geteuid() == 0) {
        const uid_t nobody = 65534;
        if (chown(base, nobody, nobody) < 0 || setgroups(0, NULL) < 0 || setgid(nobody) < 0 ||
            setuid(nobody) < 0)
            abort();
    }
    atexit(cleanup_base);
    snprintf(record, sizeof(record), "%s/record", base);
    snprintf(root, sizeof(root), "%s/root", base);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    if (mkdir(root, 0755) < 0)
        abort();
    int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        abort();
    const struct tar_apply_options opts = {
        .whiteouts = TAR_WHITEOUT_DELETE,
        .rootless = true,
        .record_path = record,
    };
    struct storage_apply_result res = {0};
    berth_reader_t *in = reader_from_buffer(data, size, false);
    int r = tar_apply(root_fd, in, &opts, &res, &err);
    reader_close(in);
    close(root_fd);
    if (r == 0) {
        cleanup_error berth_error_t serr = NULL;
        cleanup_reader berth_reader_t *rebuilt = NULL;
        ssize_t n = tar_split_reader(record, root, res.diff_digest, (int64_t)res.diff_size,
                                     &rebuilt, &serr);
        char buf[4096];
        while (n == 0 && (n = reader_read(rebuilt, buf, sizeof(buf), &serr)) > 0)
            n = 0;
        if (n < 0) {
            fprintf(stderr, "applied, but the tar does not rebuild: %s\n", berth_error_msg(serr));
            abort();
        }
    }
    storage_apply_result_clear(&res);
    unlink(record);
    cleanup_error berth_error_t rerr = NULL;
    if (fs_rm_rf(root, &rerr) < 0)
        abort();
    return 0;
}
