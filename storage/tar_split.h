/* Internal to storage/: the "tar-split" record of a layer, i.e. every byte of its original
 * uncompressed tar except regular-file contents, plus which file each content run came from.
 *
 * File format (gzip'd): "BERTHTS1" then records
 *     'R' u32 len, len raw bytes        (headers, pax data, padding, end blocks)
 *     'F' u64 size, u32 entry           (size bytes of content of tar entry #entry)
 *     'N' u32 entry, u32 len, path      (entry #entry's file, relative to the layer root)
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

int tar_split_recorder_open(const char *path, struct tar_split_recorder **out, berth_error_t *err);
/* Feeds raw tar bytes in stream order. */
void tar_split_recorder_feed(struct tar_split_recorder *r, const void *buf, size_t len);
/* Names the file of entry #idx (only entries with content need names). */
void tar_split_recorder_name(struct tar_split_recorder *r, uint32_t idx, const char *path);
/* Writes the end marker and closes; on error (or if the stream could not be described, e.g. GNU
 * sparse files) the record file is removed and an error returned. */
int tar_split_recorder_finish(struct tar_split_recorder *r, berth_error_t *err);
void tar_split_recorder_abort(struct tar_split_recorder *r);

/* Used by tar_apply.c and tar_split.c */
int tar_openat_in_root(int root_fd, const char *path, int flags, mode_t mode);
char *tar_clean_path(const char *p);

#endif
