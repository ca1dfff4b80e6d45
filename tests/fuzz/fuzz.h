/* Shared by the libFuzzer targets in tests/fuzz/: each defines LLVMFuzzerTestOneInput.  Built
 * with clang -fsanitize=fuzzer (BERTH_FUZZ=ON) they are libFuzzer binaries; otherwise they are
 * linked with driver.c, which replays the files and directories given on the command line (the
 * seed corpus and the crashers kept in fixtures/fuzz/<target>/) so every build checks them. */
#ifndef BERTH_TESTS_FUZZ_H
#define BERTH_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input, for APIs taking C strings (stops at an embedded NUL). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
