/* Internal to storage/: applying tar streams into a layer directory and producing tar streams
 * from one.  Drivers call these with their own whiteout form. */
#ifndef BERTH_STORAGE_TAR_H
#define BERTH_STORAGE_TAR_H

#include "common/error.h"
#include "common/stream.h"
#include "storage/driver.h"

#include <stdbool.h>
#include <stdint.h>

enum tar_whiteout_mode {
    /* overlay: `.wh.x` becomes a 0/0 char device x, `.wh..wh..opq` sets <ns>.overlay.opaque=y */
    TAR_WHITEOUT_OVERLAY,
    /* vfs: `.wh.x` deletes x, `.wh..wh..opq` empties the directory (as seen at that point) */
    TAR_WHITEOUT_DELETE,
};

struct tar_apply_options {
    enum tar_whiteout_mode whiteouts;
    /* "user" (rootless overlay with userxattr) or "trusted" */
    const char *overlay_xattr_ns;
    /* device nodes skipped with a warning, failed chowns warned about instead of fatal */
    bool rootless;
    /* write a tar-split record of the raw stream here (NULL = none) */
    const char *record_path;
};

/* Applies an uncompressed tar stream into the directory root_fd.  Reads `tar` to EOF.  Computes
 * the sha256 and size of the stream into res. */
BERTH_MUST_CHECK int tar_apply(int root_fd, berth_reader_t *tar,
                               const struct tar_apply_options *opts,
                               struct storage_apply_result *res, berth_error_t *err);

/* How tar_generate reads changes. */
enum tar_generate_mode {
    TAR_GEN_PLAIN,   /* everything under dir */
    TAR_GEN_OVERLAY, /* dir is an overlay upper dir: whiteout devices / opaque xattrs to .wh. */
    TAR_GEN_COMPARE, /* dir compared against parent_dir (vfs): only changes, deletions as .wh. */
};

struct tar_generate_options {
    enum tar_generate_mode mode;
    const char *overlay_xattr_ns; /* for TAR_GEN_OVERLAY */
    const char *parent_dir;       /* for TAR_GEN_COMPARE; NULL = compare against nothing */
    int64_t clamp_mtime;          /* -1 = none */
    const char *tmp_dir;          /* unused (the tar is streamed) */
};

/* Produces a deterministic tar (pax format, sorted names) of dir as a reader (owned by caller).
 * A producer thread writes it into a pipe: constant memory, no temp file; the directories must
 * stay in place until the reader is closed. */
BERTH_MUST_CHECK int tar_generate(const char *dir, const struct tar_generate_options *opts,
                                  berth_reader_t **out, berth_error_t *err);

/* Rebuilds the exact original tar from a tar-split record and the layer's files in dir,
 * verifying the result against expected_digest as it is read. */
BERTH_MUST_CHECK int tar_split_reader(const char *record_path, const char *dir,
                                      const char *expected_digest, int64_t expected_size,
                                      berth_reader_t **out, berth_error_t *err);

/* Copies a tree (ownership, modes, times, xattrs, hardlinks, devices) from src to dst (which must
 * not exist).  Used by vfs. */
BERTH_MUST_CHECK int tar_copy_tree(const char *src, const char *dst, berth_error_t *err);

#endif
