/* Input files in any compression libarchive knows (xz, bzip2, lz4, gzip, zstd, lzip, ... or
 * none), detected by magic, as one decompressed byte stream: for `import`, whose README promise
 * is "any compression".  The reader is owned by the caller (reader_close). */
#ifndef BERTH_CMD_DECOMPRESS_READER_H
#define BERTH_CMD_DECOMPRESS_READER_H

#include "common/stream.h"

/* path "-" reads standard input. */
BERTH_MUST_CHECK int cli_open_decompressed(const char *path, berth_reader_t **out,
                                           berth_error_t *err);

#endif
