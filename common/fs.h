/* Filesystem helpers.  Everything that makes a file visible to other processes does it with an
 * atomic rename after fsync, so a crash leaves either the old or the new file, never half. */
#ifndef BERTH_FS_H
#define BERTH_FS_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The one bounded read: everything fd has until EOF, NUL-terminated (*out owned, *len optional),
 * or EFBIG when it holds more than max bytes (never a silent cut).  `what` names the source in
 * messages ("read \"<what>\": ...").  Works on pipes and /proc files (no size known ahead). */
BERTH_MUST_CHECK int fs_read_fd(int fd, size_t max, const char *what, char **out, size_t *len,
                                berth_error_t *err);
/* Reads a whole file (NUL-terminated) refusing anything larger than max (EFBIG). */
BERTH_MUST_CHECK int fs_read_file(const char *path, size_t max, char **out, size_t *len,
                                  berth_error_t *err);
BERTH_MUST_CHECK int fs_read_file_at(int dirfd, const char *path, size_t max, char **out,
                                     size_t *len, berth_error_t *err);

/* Writes data to "<path>.tmp-XXXXXX" in the same directory, fsyncs, renames over path, fsyncs
 * the directory.  On failure the temp file is removed.  mode is subject to the umask, as with
 * open(2).  In the _at variant, name is relative to dirfd (AT_FDCWD allowed). */
BERTH_MUST_CHECK int fs_write_file_atomic(const char *path, const void *data, size_t len,
                                          mode_t mode, berth_error_t *err);
BERTH_MUST_CHECK int fs_write_file_atomic_at(int dirfd, const char *name, const void *data,
                                             size_t len, mode_t mode, berth_error_t *err);

/* A temp file beside a final path, to be filled by the caller then committed.  commit fsyncs,
 * renames and fsyncs the dir; abort (or cleanup_atomic_file on an uncommitted file) unlinks.
 * abort is safe on a zero-initialised struct, after a failed open and after commit (then it
 * does nothing).  If commit fails before the rename the file is still uncommitted. */
struct fs_atomic_file {
    int fd;
    char *tmp_path;
    char *final_path;
};
BERTH_MUST_CHECK int fs_atomic_open(const char *final_path, mode_t mode, struct fs_atomic_file *out,
                                    berth_error_t *err);
BERTH_MUST_CHECK int fs_atomic_commit(struct fs_atomic_file *f, berth_error_t *err);
void fs_atomic_abort(struct fs_atomic_file *f);
static inline void cleanup_atomic_filep(struct fs_atomic_file *f)
{
    fs_atomic_abort(f);
}
#define cleanup_atomic_file __attribute__((cleanup(cleanup_atomic_filep)))

/* Output files the user named (-o, --iidfile, --digestfile, auth files, archives).  The rule,
 * as skopeo and cp apply it:
 *  - a symlink the user named is followed (the link stays a link, its target gets the content);
 *  - an existing character/block device, FIFO or socket is opened and written in place (a FIFO
 *    open waits for a reader, as cp's does; a socket is connected to, AF_UNIX stream);
 *  - a regular file, or a missing one, is written atomically: temp "<name>.tmp-<pid>-XXXXXX"
 *    beside the (resolved) target, fsync, rename;
 *  - a directory is an error (EISDIR).
 * Never use this for paths inside the store: those must not follow symlinks (fs_atomic_*).
 *
 * FS_OUTPUT_SEEKABLE: the caller needs pwrite/ftruncate (the archive writer).  For an in-place
 * target, fd is then an unlinked temporary file (in $TMPDIR, else /var/tmp) that commit copies
 * to the target in one sequential pass.  Without it, fd is the target itself.
 *
 * commit finishes the output (rename, or the copy); abort (or cleanup_output on an uncommitted
 * output) removes the temp; for an in-place target it only closes (bytes already written to a
 * device or FIFO cannot be taken back).  abort is safe on a zero-initialised struct with fd -1,
 * after a failed open and after commit. */
#define FS_OUTPUT_SEEKABLE 1u
struct fs_output {
    int fd;                       /* write here */
    struct fs_atomic_file atomic; /* regular target */
    int target_fd;                /* in-place target; -1 otherwise */
    char *path;                   /* the resolved target, for messages */
    bool in_place, done;
};
BERTH_MUST_CHECK int fs_output_open(const char *path, mode_t mode, unsigned flags,
                                    struct fs_output *out, berth_error_t *err);
BERTH_MUST_CHECK int fs_output_commit(struct fs_output *o, berth_error_t *err);
void fs_output_abort(struct fs_output *o);
static inline void cleanup_outputp(struct fs_output *o)
{
    fs_output_abort(o);
}
#define cleanup_output __attribute__((cleanup(cleanup_outputp)))
/* The whole output in one call. */
BERTH_MUST_CHECK int fs_write_output(const char *path, const void *data, size_t len, mode_t mode,
                                     berth_error_t *err);
/* Follows symlinks at the end of `path` (up to 40) to the name the output lands on (*out owned;
 * the final name need not exist).  For callers that lock or read beside the output. */
BERTH_MUST_CHECK int fs_output_resolve(const char *path, char **out, berth_error_t *err);

/* Temp files of the atomic writers above are "<name>.tmp-<pid>-XXXXXX".  A writer killed with
 * kill -9 leaves its temp file; these reclaim such leftovers.  stale: the pid is gone and the file
 * has not been written for FS_STALE_TEMP_AGE seconds (the age guards live writers in another pid
 * namespace).  remove_stale_temps_at removes stale temps of `name` (relative to dirfd), or with
 * name NULL those of every file in dirfd. */
#define FS_STALE_TEMP_AGE 600
bool fs_temp_is_stale(int dirfd, const char *entry, long pid);
void fs_remove_stale_temps_at(int dirfd, const char *name);

BERTH_MUST_CHECK int fs_mkdir_p(const char *path, mode_t mode, berth_error_t *err);
/* Removes a tree without following symlinks and without crossing mount points (a mount point
 * inside, or the path itself being one, is an EBUSY error and the mounted tree is untouched).
 * Read-only directories (0555, 0000) are made writable first.  ENOENT is ok. */
BERTH_MUST_CHECK int fs_rm_rf(const char *path, berth_error_t *err);
BERTH_MUST_CHECK int fs_rm_rf_at(int dirfd, const char *name, berth_error_t *err);
BERTH_MUST_CHECK int fs_fsync_dir(const char *path, berth_error_t *err);
/* Early writeback for a large file being written sequentially: once `written` has moved
 * FS_WRITEBACK_STEP past the last call's mark, asks the kernel to start (not wait for) writing
 * those pages, so that the fsync before a commit finds little left to do and disk writes
 * overlap the producer (a download, a decompression).  Durability still comes from fsync. */
#define FS_WRITEBACK_STEP (8LL * 1024 * 1024)
void fs_writeback_progress(int fd, int64_t *mark, int64_t written);
bool fs_exists(const char *path);
/* Joins with exactly one '/' between; result owned by caller. */
char *fs_join(const char *a, const char *b);
/* Sum of st_blocks*512 (disk usage) and apparent size of a tree, not following symlinks; an
 * inode with several hard links counts once, as du does.  A missing path gives 0. */
BERTH_MUST_CHECK int fs_tree_size(const char *path, uint64_t *disk, uint64_t *apparent,
                                  berth_error_t *err);

#endif
