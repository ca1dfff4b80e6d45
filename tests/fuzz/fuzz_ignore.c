/* .containerignore / .dockerignore patterns and matching. */
#include "fuzz.h"

#include "build/ignore.h"
#include "common/cleanup.h"

static const char *const paths[] = {"a",           "a/b",           "src/main.c", ".git/config",
                                    "x/y/z/w.txt", "Containerfile", "!odd",       "a b/c"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_ignore struct ignore *ign = NULL;
    if (ignore_parse((const char *)data, size, &ign, &err) < 0)
        return 0;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        bool ex = false;
        cleanup_error berth_error_t merr = NULL;
        IGNORE_RESULT(ignore_matches(ign, paths[i], &ex, &merr));
        (void)ignore_dir_may_reinclude(ign, paths[i]);
    }
    return 0;
}
