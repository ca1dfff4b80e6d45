/* The bounded JSON parser every manifest, config, policy and auth file goes through. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    json_t *j = NULL;
    if (json_parse_bounded((const char *)data, size, 1u << 20, "input", &j, &err) < 0)
        return 0;
    size_t len = 0;
    free(json_dump_canonical(j, &len));
    char **v = NULL;
    cleanup_error berth_error_t verr = NULL;
    if (json_is_array(j) && json_to_strv(j, "input", &v, &verr) == 0) {
        for (char **p = v; *p; p++)
            free(*p);
        free(v);
    }
    json_decref(j);
    return 0;
}
