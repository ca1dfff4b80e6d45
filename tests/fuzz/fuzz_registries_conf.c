/* registries.conf (v2 TOML subset, v1 tables, aliases) and the lookups made with its result. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "transport/registries_conf.h"

static const char *const names[] = {
    "busybox", "library/alpine:3",
    "quay.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "localhost:5000/a/b", "example.com/ns/repo:tag"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_registries_conf registries_conf_t *conf = registries_conf_new();
    if (registries_conf_parse(conf, (const char *)data, size, "registries.conf", &err) < 0)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct registry_entry *e = registries_conf_find(conf, names[i]);
        if (e)
            free(registries_conf_rewrite(e, names[i]));
        char **cands = NULL;
        bool alias = false;
        cleanup_error berth_error_t rerr = NULL;
        if (registries_conf_resolve_short_name(conf, names[i], &cands, &alias, &rerr) == 0) {
            for (char **p = cands; *p; p++)
                free(*p);
            free(cands);
        }
    }
    return 0;
}
