/* Tar archives for oci-archive: and docker-archive:.
 *
 * Reading: tar_index_open() scans the archive's headers once (ustar, pax and GNU long names)
 * and remembers where each member's data lives; members are then read in place with pread, so
 * several blobs can be read at once and nothing is extracted.  A compressed archive is first
 * decompressed into an unlinked temporary file.  Every member name is cleaned; a name with a
 * ".." component or an absolute symlink target makes the whole archive invalid.
 *
 * Writing: tar_writer writes "<final>.tmp-XXXXXX" beside the final path and renames it at
 * commit (fsync first); abort/free without commit unlinks it.  Entries whose name is known only
 * after their data (a blob named by its digest) are streamed first and named afterwards. */
#ifndef BERTH_TRANSPORT_ARCHIVE_H
#define BERTH_TRANSPORT_ARCHIVE_H

#include "common/error.h"
#include "common/stream.h"

#include <stdbool.h>
#include <stdint.h>

struct tar_index;
BERTH_MUST_CHECK int tar_index_open(const char *path, const char *tmpdir, struct tar_index **out,
                                    berth_error_t *err);
/* Opens a regular member (following symlinks and hard links inside the archive). ENOENT status
 * when absent.  The reader may be used from any thread. */
BERTH_MUST_CHECK int tar_index_open_member(struct tar_index *t, const char *name,
                                           berth_reader_t **out, int64_t *size, berth_error_t *err);
BERTH_MUST_CHECK int tar_index_read_member(struct tar_index *t, const char *name, size_t max,
                                           char **out, size_t *len, berth_error_t *err);
bool tar_index_has(struct tar_index *t, const char *name);
void tar_index_free(struct tar_index *t);

/* A reader of [off, off+len) of fd using pread (fd not owned). */
berth_reader_t *reader_fd_range(int fd, uint64_t off, uint64_t len);

struct tar_writer;
BERTH_MUST_CHECK int tar_writer_open(const char *final_path, struct tar_writer **out,
                                     berth_error_t *err);
BERTH_MUST_CHECK int tar_writer_add_dir(struct tar_writer *tw, const char *name,
                                        berth_error_t *err);
BERTH_MUST_CHECK int tar_writer_add_buffer(struct tar_writer *tw, const char *name,
                                           const void *data, size_t len, berth_error_t *err);
/* Streams r into a pending entry while hashing it (sha256); *digest (owned by caller) and *size
 * receive what was written.  The entry must then be named (tar_writer_name_pending) or dropped
 * (tar_writer_drop_pending).  On error the pending data is already dropped. */
BERTH_MUST_CHECK int tar_writer_stream(struct tar_writer *tw, berth_reader_t *r, char **digest,
                                       int64_t *size, berth_error_t *err);
BERTH_MUST_CHECK int tar_writer_name_pending(struct tar_writer *tw, const char *name,
                                             berth_error_t *err);
void tar_writer_drop_pending(struct tar_writer *tw);
/* Whether a streamed entry of that name has been named. */
bool tar_writer_has(struct tar_writer *tw, const char *name);
/* Names the pending entry, or drops it when a streamed entry already has that name (blobs are
 * named by their digest: same name, same content).  On error the pending data is dropped. */
BERTH_MUST_CHECK int tar_writer_name_pending_once(struct tar_writer *tw, const char *name,
                                                  berth_error_t *err);
BERTH_MUST_CHECK int tar_writer_commit(struct tar_writer *tw, berth_error_t *err);
/* Frees; removes the temporary file unless committed. */
void tar_writer_free(struct tar_writer *tw);

#endif
