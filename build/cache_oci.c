/* --cache-from / --cache-to: exchanging build cache entries through an OCI layout. */
#include "build/build_internal.h"

#include <errno.h>

int bld_cache_export(storage_store_t *s, const char *dir, const char *layout, char *const *keys,
                     berth_error_t *err)
{
    (void)s, (void)dir, (void)keys;
    return berth_error_make_status(err, ENOTSUP, "--cache-to %s: not implemented yet", layout);
}

int bld_cache_import(storage_store_t *s, const char *dir, const char *layout, berth_error_t *err)
{
    (void)s, (void)dir;
    return berth_error_make_status(err, ENOTSUP, "--cache-from %s: not implemented yet", layout);
}
