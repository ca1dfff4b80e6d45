/* The YAML subset of `sync --src yaml` files. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/json.h"
#include "transport/sync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    json_t *doc = NULL;
    if (sync_yaml_parse((const char *)data, size, "sync.yaml", &doc, &err) == 0)
        json_decref(doc);
    return 0;
}
