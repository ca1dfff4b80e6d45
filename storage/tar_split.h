/* Internal to storage/: the "tar-split" record of a layer, i.e. every byte of its original
 * uncompressed tar except regular-file contents, plus which file each content run came from.
 *
 * File format (gzip'd): "BERTHTS1" then records
 *     'R' u32 len, len raw bytes        (headers, pax data, padding, end blocks)
 *     'F' u64 size, u32 entry           (size bytes of content of tar entry #entry)
 *     'N' u32 entry, u32 len, path      (entry #entry's file, relative to the layer root)
 *     'C' u32 entry, u64 size, bytes     (entry #entry's content itself: a later entry of the
 *                                        same stream replaced or deleted its file)
 *     'E'                               end
 * integers little-endian.  Entries are counted as libarchive yields them (pax 'x'/'g' and GNU
 * 'L'/'K' meta headers are not entries). */
#ifndef BERTH_STORAGE_TAR_SPLIT_H
#define BERTH_STORAGE_TAR_SPLIT_H

#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tar_split_recorder;

BERTH_MUST_CHECK int tar_split_recorder_open(const char *path, struct tar_split_recorder **out,
                                             berth_error_t *err);
/* Feeds raw tar bytes in stream order. */
void tar_split_recorder_feed(struct tar_split_recorder *r, const void *buf, size_t len);
/* Names the file of entry #idx (only entries with content need names). */
void tar_split_recorder_name(struct tar_split_recorder *r, uint32_t idx, const char *path);
/* Keeps the content of entry #idx (size bytes read from fd, an open file of the layer that the
 * stream is about to replace or delete) in the record itself. */
BERTH_MUST_CHECK int tar_split_recorder_keep(struct tar_split_recorder *r, uint32_t idx, int fd,
                                             uint64_t size, berth_error_t *err);
/* Writes the end marker and closes; on error (or if the stream could not be described, e.g. GNU
 * sparse files) the record file is removed and an error returned. */
BERTH_MUST_CHECK int tar_split_recorder_finish(struct tar_split_recorder *r, berth_error_t *err);
void tar_split_recorder_abort(struct tar_split_recorder *r);

/* Used by tar_apply.c and tar_split.c */
int tar_openat_in_root(int root_fd, const char *path, int flags, mode_t mode);
char *tar_clean_path(const char *p);

#endif
