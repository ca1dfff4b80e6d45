/* Registry authentication inputs: WWW-Authenticate challenges, token endpoint answers,
 * auth.json / config.json files and their base64 entries.  The first byte picks the parser. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "transport/auth.h"

#include <unistd.h>

static char auth_path[] = "/tmp/berth-fuzz-auth-XXXXXX";
static int auth_fd = -1;

static void cleanup_auth_file(void)
{
    unlink(auth_path);
}

static void auth_file(const uint8_t *data, size_t size)
{
    /* credHelpers/credsStore would run docker-credential-NAME with NAME from the input. */
    if (memmem(data, size, "cred", 4) || memmem(data, size, "\\u", 2))
        return;
    if (auth_fd < 0) {
        auth_fd = mkstemp(auth_path);
        if (auth_fd < 0)
            abort();
        atexit(cleanup_auth_file);
    }
    if (ftruncate(auth_fd, 0) < 0 || pwrite(auth_fd, data, size, 0) != (ssize_t)size)
        abort();
    static const char *const regs[][2] = {
        {"localhost:5000", NULL}, {"quay.io", "ns/repo"}, {"docker.io", "library/busybox"}};
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        cleanup_free char *user = NULL, *pass = NULL;
        bool found = false;
        cleanup_error berth_error_t err = NULL;
        IGNORE_RESULT(
            auth_lookup_in_file(auth_path, regs[i][0], regs[i][1], &user, &pass, &found, &err));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0] % 4;
    data++;
    size--;
    cleanup_error berth_error_t err = NULL;
    if (sel == 2) {
        auth_file(data, size);
        return 0;
    }
    if (sel == 1) {
        cleanup_free char *token = NULL;
        int64_t exp = 0;
        IGNORE_RESULT(auth_parse_token_response((const char *)data, size, &token, &exp, &err));
        return 0;
    }
    cleanup_free char *s = fuzz_strndup(data, size);
    if (sel == 0) {
        struct auth_challenge c = {0};
        IGNORE_RESULT(auth_challenge_parse(s, &c, &err));
        auth_challenge_clear(&c);
        return 0;
    }
    cleanup_free char *user = NULL, *pass = NULL;
    if (auth_decode_entry(s, &user, &pass, &err) < 0)
        berth_error_release(&err);
    cleanup_free char *u2 = NULL, *p2 = NULL;
    IGNORE_RESULT(auth_parse_creds(s, &u2, &p2, &err));
    return 0;
}
