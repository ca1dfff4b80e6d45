/* The bounded JSON parser every manifest, config, policy and auth file goes through. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/json.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    json_t *j = NULL;
    if (json_parse_bounded((const char *)data, size, 1u << 20, "input", &j, &err) < 0)
        return 0;
    /* What berth writes (canonical form) must read back as the same document. */
    size_t len = 0;
    cleanup_free char *dump = json_dump_canonical(j, &len);
    json_t *again = NULL;
    cleanup_error berth_error_t rerr = NULL;
    if (!dump || json_parse_bounded(dump, len, 4u << 20, "dump", &again, &rerr) < 0 ||
        !json_equal(j, again)) {
        fprintf(stderr, "canonical dump does not read back: %s\n",
                rerr ? berth_error_msg(rerr) : "");
        abort();
    }
    json_decref(again);
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
