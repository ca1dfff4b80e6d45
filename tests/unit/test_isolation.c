/* run/isolation: mode names, the auto choice from a probe, the probe cache, and the spec a
 * chroot isolation gets (no pid namespace, the host's /proc bound read-only, only the
 * namespaces the probe allows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "run/isolation.h"
#include "run/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_parse_and_names(void **state)
{
    (void)state;
    run_isolation_t i;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(run_isolation_parse(NULL, &i, &err), 0);
    assert_int_equal(i, RUN_ISOLATION_AUTO);
    assert_int_equal(run_isolation_parse("chroot", &i, &err), 0);
    assert_int_equal(i, RUN_ISOLATION_CHROOT);
    assert_string_equal(run_isolation_name(RUN_ISOLATION_ROOTLESS), "rootless");
    assert_int_equal(run_isolation_parse("vm", &i, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "auto, oci, rootless or chroot"));
}

static void test_resolve(void **state)
{
    (void)state;
    const char *why;
    struct run_probe all = {.need_userns = true,
                            .userns = true,
                            .mountns = true,
                            .proc = true,
                            .uts = true,
                            .net = true};
    assert_int_equal(run_isolation_resolve(RUN_ISOLATION_AUTO, &all, &why), RUN_ISOLATION_ROOTLESS);
    assert_string_equal(why, "");
    all.need_userns = false;
    assert_int_equal(run_isolation_resolve(RUN_ISOLATION_AUTO, &all, &why), RUN_ISOLATION_OCI);
    /* a masked /proc (rootless podman container): chroot, and why */
    struct run_probe podman = {.need_userns = true, .userns = true, .mountns = true, .uts = true};
    snprintf(podman.why, sizeof(podman.why), "mount proc: Operation not permitted");
    assert_int_equal(run_isolation_resolve(RUN_ISOLATION_AUTO, &podman, &why),
                     RUN_ISOLATION_CHROOT);
    assert_string_equal(why, "mount proc: Operation not permitted");
    /* explicit modes are kept */
    assert_int_equal(run_isolation_resolve(RUN_ISOLATION_OCI, &podman, &why),
                     RUN_ISOLATION_ROOTLESS);
    assert_int_equal(run_isolation_resolve(RUN_ISOLATION_CHROOT, &all, &why), RUN_ISOLATION_CHROOT);
}

/* The second probe of the same environment reads the cache (here edited to a result no real
 * probe gives, so reading it is visible); a cache with another key is ignored. */
static void test_probe_cache(void **state)
{
    (void)state;
    char dir[] = "/tmp/berth-isolation-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct run_probe a, b;
    run_isolation_probe(dir, &a);
    cleanup_free char *path = xasprintf("%s/isolation-probe", dir);
    cleanup_free char *d = NULL;
    assert_int_equal(fs_read_file(path, 4096, &d, NULL, NULL), 0);
    unsigned long long key;
    unsigned bits;
    assert_int_equal(sscanf(d, "%llx %u", &key, &bits), 2);
    cleanup_free char *edited = xasprintf("%llx 0 cached answer\n", key);
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_write_file_atomic(path, edited, strlen(edited), 0600, &err), 0);
    run_isolation_probe(dir, &b);
    assert_false(b.mountns);
    assert_string_equal(b.why, "cached answer");
    cleanup_free char *other = xasprintf("%llx 0 other environment\n", key + 1);
    assert_int_equal(fs_write_file_atomic(path, other, strlen(other), 0600, &err), 0);
    run_isolation_probe(dir, &b);
    assert_int_equal(b.mountns, a.mountns);
    assert_int_equal(b.proc, a.proc);
    unlink(path);
    rmdir(dir);
}

static bool has_ns(const json_t *spec, const char *type)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i,
                       n) if (strcmp(json_string_value(json_object_get(n, "type")), type) ==
                              0) return true;
    return false;
}

static const json_t *mount_at(const json_t *spec, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i,
                       m) if (strcmp(json_string_value(json_object_get(m, "destination")), dest) ==
                              0) return m;
    return NULL;
}

static void test_chroot_spec(void **state)
{
    (void)state;
    char *args[] = {"true", NULL};
    struct run_probe p = {
        .need_userns = true, .userns = true, .mountns = true, .uts = false, .net = true};
    struct spec_options o = {.args = args, .rootless = true, .chroot = &p};
    cleanup_error berth_error_t err = NULL;
    cleanup_json json_t *s = NULL;
    assert_int_equal(spec_generate(NULL, NULL, &o, &s, &err), 0);
    assert_false(has_ns(s, "pid"));
    assert_false(has_ns(s, "uts"));
    assert_true(has_ns(s, "user"));
    assert_true(has_ns(s, "mount"));
    assert_null(json_object_get(s, "hostname"));
    const json_t *proc = mount_at(s, "/proc");
    assert_non_null(proc);
    assert_string_equal(json_string_value(json_object_get(proc, "source")), "/proc");
    cleanup_free char *opts = json_dumps(json_object_get(proc, "options"), JSON_COMPACT);
    assert_non_null(strstr(opts, "\"rbind\""));
    assert_non_null(strstr(opts, "\"ro\""));
    /* no mount namespace at all: no mounts, and volumes are refused with the reason */
    struct run_probe bare = {.need_userns = false};
    snprintf(bare.why, sizeof(bare.why), "create a mount namespace: Operation not permitted");
    o.chroot = &bare;
    o.rootless = false;
    cleanup_json json_t *s2 = NULL;
    assert_int_equal(spec_generate(NULL, NULL, &o, &s2, &err), 0);
    assert_false(has_ns(s2, "mount"));
    assert_int_equal(json_array_size(json_object_get(s2, "mounts")), 0);
    char *vols[] = {"/tmp:/x", NULL};
    o.volumes = vols;
    cleanup_json json_t *s3 = NULL;
    assert_int_equal(spec_generate(NULL, NULL, &o, &s3, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "create a mount namespace"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_names),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_probe_cache),
        cmocka_unit_test(test_chroot_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
