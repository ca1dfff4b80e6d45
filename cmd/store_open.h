/* Opening the layer store from the CLI's global options, for every command that needs it.
 *
 * cli_store_open() enters berth's user namespace first when running as a non-root user
 * (storage/userns.h: userns_ensure, so call it before starting threads), then opens the store
 * with --root / --runroot / --storage-driver (NULL = defaults for the user).  The store is owned
 * by the caller (storage_store_close or cleanup_storage_store).  Errors are returned in *err
 * (print with cli_fail). */
#ifndef BERTH_CMD_STORE_OPEN_H
#define BERTH_CMD_STORE_OPEN_H

#include "cmd/cli.h"
#include "storage/store.h"

BERTH_MUST_CHECK int cli_store_open(struct berth_globals *g, storage_store_t **out,
                                    berth_error_t *err);

#endif
