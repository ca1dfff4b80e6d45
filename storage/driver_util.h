/* Internal to storage/: helpers shared by the drivers. */
#ifndef BERTH_STORAGE_DRIVER_UTIL_H
#define BERTH_STORAGE_DRIVER_UTIL_H

#include "common/error.h"

#include <stdbool.h>

/* "<home>/<id>[/<sub>]", owned by caller. */
char *driver_path(const char *home, const char *id, const char *sub);
/* Adjusts the mount count file <count_dir>/<id>.count by delta (after zeroing when reset) and
 * returns the new count in *now; the file is removed at 0.  Caller holds the layer lock. */
BERTH_MUST_CHECK int driver_count_update(const char *count_dir, const char *id, int delta,
                                         bool reset, int *now, berth_error_t *err);
int driver_count_get(const char *count_dir, const char *id);

#endif
