/* Opening the store for CLI commands (see store_open.h). */
#include "cmd/store_open.h"

#include "storage/userns.h"

int cli_store_open(struct berth_globals *g, storage_store_t **out, berth_error_t *err)
{
    if (userns_ensure(err) < 0)
        return -1;
    struct storage_options o = {
        .root = g->root,
        .runroot = g->runroot,
        .driver = g->storage_driver,
    };
    return storage_store_open(&o, out, err);
}
