/* Unit tests for run/spec.c: Entrypoint/Cmd rules, env merging, user resolution inside a
 * (hostile) rootfs, capabilities, mounts and namespaces of generated specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "run/spec.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *join(char **v)
{
    size_t len = 1;
    for (char **p = v; *p; p++)
        len += strlen(*p) + 1;
    char *s = xzalloc(len);
    for (char **p = v; *p; p++) {
        if (p != v)
            strcat(s, "|");
        strcat(s, *p);
    }
    return s;
}

static json_t *image_config(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    assert_non_null(j);
    return j;
}

static void test_entrypoint_cmd_rules(void **state)
{
    (void)state;
    struct {
        const char *config;
        bool ep_set;
        const char *ep;
        const char *args[3];
        const char *want; /* NULL = error */
    } cases[] = {
        {"{\"Cmd\":[\"sh\"]}", false, NULL, {NULL}, "sh"},
        {"{\"Cmd\":[\"sh\"]}", false, NULL, {"echo", "hi", NULL}, "echo|hi"},
        {"{\"Entrypoint\":[\"/ep\",\"-x\"],\"Cmd\":[\"def\"]}", false, NULL, {NULL}, "/ep|-x|def"},
        {"{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"def\"]}", false, NULL, {"a", NULL}, "/ep|a"},
        /* --entrypoint replaces the entrypoint and clears the image's Cmd */
        {"{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"def\"]}", true, "/bin/other", {NULL}, "/bin/other"},
        {"{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"def\"]}",
         true,
         "/bin/other",
         {"x", NULL},
         "/bin/other|x"},
        /* --entrypoint "" clears it: the arguments are the command */
        {"{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"def\"]}", true, "", {"ls", NULL}, "ls"},
        {"{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"def\"]}", true, "", {NULL}, NULL},
        {"{}", false, NULL, {NULL}, NULL},
        {"{\"Cmd\":\"notalist\"}", false, NULL, {"x", NULL}, "x"},
        {"{\"Entrypoint\":[1]}", false, NULL, {NULL}, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_json json_t *cfg = image_config(cases[i].config);
        struct spec_options o = {.entrypoint_set = cases[i].ep_set,
                                 .entrypoint = cases[i].ep,
                                 .args = (char **)cases[i].args};
        cleanup_strv char **out = NULL;
        cleanup_error berth_error_t err = NULL;
        int r = spec_process_args(cfg, &o, &out, &err);
        if (cases[i].want == NULL) {
            assert_int_equal(r, -1);
            assert_non_null(err);
            continue;
        }
        assert_int_equal(r, 0);
        cleanup_free char *j = join(out);
        if (strcmp(j, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, j, cases[i].want);
    }
}

static const char *env_get(char **env, const char *key)
{
    size_t l = strlen(key);
    for (char **e = env; *e; e++)
        if (strncmp(*e, key, l) == 0 && (*e)[l] == '=')
            return *e + l + 1;
    return NULL;
}

static void test_env_merge(void **state)
{
    (void)state;
    char dir[] = "/tmp/berth-test-spec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *envfile = xasprintf("%s/env", dir);
    FILE *f = fopen(envfile, "w");
    fputs("# comment\n\nFROMFILE=1\nA=file\n  SPACED=yes  \nBERTH_TEST_HOSTVAR\n", f);
    fclose(f);
    setenv("BERTH_TEST_HOSTVAR", "host-value", 1);
    unsetenv("BERTH_TEST_UNSET");

    cleanup_json json_t *cfg =
        image_config("{\"Env\":[\"PATH=/custom/bin\",\"A=image\",\"B=image\",\"bogus\"]}");
    char *env_files[] = {envfile, NULL};
    char *env_flags[] = {"A=flag", "C=x=y", "BERTH_TEST_UNSET", NULL};
    struct spec_options o = {.env = env_flags, .env_files = env_files, .terminal = true};
    cleanup_strv char **env = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(spec_merge_env(cfg, &o, "myhost", &env, &err), 0);
    assert_string_equal(env_get(env, "PATH"), "/custom/bin");
    assert_string_equal(env_get(env, "A"), "flag");
    assert_string_equal(env_get(env, "B"), "image");
    assert_string_equal(env_get(env, "C"), "x=y");
    assert_string_equal(env_get(env, "FROMFILE"), "1");
    assert_string_equal(env_get(env, "SPACED"), "yes");
    assert_string_equal(env_get(env, "BERTH_TEST_HOSTVAR"), "host-value");
    assert_string_equal(env_get(env, "TERM"), "xterm");
    assert_string_equal(env_get(env, "HOSTNAME"), "myhost");
    assert_null(env_get(env, "BERTH_TEST_UNSET"));
    assert_null(env_get(env, "bogus"));
    /* A appears once: later sources replace, not append */
    int count = 0;
    for (char **e = env; *e; e++)
        if (strncmp(*e, "A=", 2) == 0)
            count++;
    assert_int_equal(count, 1);

    /* no image env: the default PATH */
    cleanup_strv char **env2 = NULL;
    struct spec_options o2 = {0};
    assert_int_equal(spec_merge_env(NULL, &o2, NULL, &env2, &err), 0);
    assert_non_null(env_get(env2, "PATH"));
    assert_null(env_get(env2, "TERM"));

    /* invalid -e */
    char *bad[] = {"=x", NULL};
    struct spec_options o3 = {.env = bad};
    cleanup_strv char **env3 = NULL;
    assert_int_equal(spec_merge_env(NULL, &o3, NULL, &env3, &err), -1);
    berth_error_release(&err);

    /* missing env file */
    char *missing[] = {"/nonexistent/berth/env", NULL};
    struct spec_options o4 = {.env_files = missing};
    cleanup_strv char **env4 = NULL;
    assert_int_equal(spec_merge_env(NULL, &o4, NULL, &env4, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "/nonexistent/berth/env"));

    unlink(envfile);
    rmdir(dir);
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static char *make_rootfs(void)
{
    char tmpl[] = "/tmp/berth-test-rootfs-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *root = xstrdup(tmpl);
    cleanup_free char *etc = xasprintf("%s/etc", root);
    mkdir(etc, 0755);
    return root;
}

static void rm_tree(const char *p)
{
    cleanup_free char *cmd = xasprintf("rm -rf '%s'", p);
    assert_int_equal(system(cmd), 0);
}

static void test_user_resolution(void **state)
{
    (void)state;
    cleanup_free char *root = make_rootfs();
    cleanup_free char *pw = xasprintf("%s/etc/passwd", root);
    cleanup_free char *gr = xasprintf("%s/etc/group", root);
    write_file(pw, "root:x:0:0:root:/root:/bin/sh\n"
                   "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
                   "broken line\n"
                   "bob:x:1001:1001::/home/bob:/bin/sh\n");
    write_file(gr, "root:x:0:\nwheel:x:10:alice,bob\nalice:x:1000:\nstaff:x:50:alice\n");
    cleanup_close int fd = open(root, O_PATH | O_DIRECTORY);
    assert_true(fd >= 0);
    cleanup_error berth_error_t err = NULL;
    struct spec_user u;

    assert_int_equal(spec_resolve_user(fd, "alice", &u, &err), 0);
    assert_int_equal(u.uid, 1000);
    assert_int_equal(u.gid, 1000);
    assert_string_equal(u.home, "/home/alice");
    assert_int_equal(u.n_groups, 2);
    assert_int_equal(u.groups[0], 10);
    assert_int_equal(u.groups[1], 50);
    spec_user_free(&u);

    assert_int_equal(spec_resolve_user(fd, "bob:staff", &u, &err), 0);
    assert_int_equal(u.uid, 1001);
    assert_int_equal(u.gid, 50);
    spec_user_free(&u);

    assert_int_equal(spec_resolve_user(fd, "1001", &u, &err), 0);
    assert_int_equal(u.gid, 1001);
    assert_string_equal(u.home, "/home/bob");
    spec_user_free(&u);

    /* numeric uid not in passwd: gid 0, home / */
    assert_int_equal(spec_resolve_user(fd, "4242:77", &u, &err), 0);
    assert_int_equal(u.uid, 4242);
    assert_int_equal(u.gid, 77);
    assert_string_equal(u.home, "/");
    spec_user_free(&u);

    assert_int_equal(spec_resolve_user(fd, "", &u, &err), 0);
    assert_int_equal(u.uid, 0);
    spec_user_free(&u);

    assert_int_equal(spec_resolve_user(fd, "nobody-here", &u, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "nobody-here"));
    berth_error_release(&err);
    assert_int_equal(spec_resolve_user(fd, "alice:nogroup", &u, &err), -1);
    berth_error_release(&err);
    assert_int_equal(spec_resolve_user(fd, "alice:", &u, &err), -1);
    berth_error_release(&err);
    /* names need a rootfs */
    assert_int_equal(spec_resolve_user(-1, "alice", &u, &err), -1);
    berth_error_release(&err);
    assert_int_equal(spec_resolve_user(-1, "5:6", &u, &err), 0);
    spec_user_free(&u);
    rm_tree(root);
}

/* /etc/passwd in the image is a symlink to an absolute path (and another rootfs uses "../"s):
 * it must be resolved inside the rootfs, never reading the host's file of that name. */
static void test_user_hostile_symlink(void **state)
{
    (void)state;
    /* a decoy "host" passwd */
    char decoy_dir[] = "/tmp/berth-test-decoy-XXXXXX";
    assert_non_null(mkdtemp(decoy_dir));
    cleanup_free char *decoy = xasprintf("%s/passwd", decoy_dir);
    write_file(decoy, "alice:x:6666:6666::/host:/bin/sh\n");

    cleanup_free char *root = make_rootfs();
    /* same path inside the rootfs, with the container's alice */
    cleanup_free char *inner_dir = xasprintf("%s%s", root, decoy_dir);
    cleanup_free char *cmd = xasprintf("mkdir -p '%s'", inner_dir);
    assert_int_equal(system(cmd), 0);
    cleanup_free char *inner = xasprintf("%s/passwd", inner_dir);
    write_file(inner, "alice:x:1234:1234::/inside:/bin/sh\n");
    cleanup_free char *pw = xasprintf("%s/etc/passwd", root);
    assert_int_equal(symlink(decoy, pw), 0);

    cleanup_close int fd = open(root, O_PATH | O_DIRECTORY);
    cleanup_error berth_error_t err = NULL;
    struct spec_user u;
    assert_int_equal(spec_resolve_user(fd, "alice", &u, &err), 0);
    assert_int_equal(u.uid, 1234);
    assert_string_equal(u.home, "/inside");
    spec_user_free(&u);

    /* relative escape: ../../../../..<decoy>: clamps at the rootfs root */
    unlink(pw);
    cleanup_free char *rel = xasprintf("../../../../../../..%s", decoy);
    assert_int_equal(symlink(rel, pw), 0);
    assert_int_equal(spec_resolve_user(fd, "alice", &u, &err), 0);
    assert_int_equal(u.uid, 1234);
    spec_user_free(&u);

    /* a symlink to a missing file: no entries, a name fails, not the host's passwd */
    unlink(pw);
    assert_int_equal(symlink("/etc/shadow-does-not-exist", pw), 0);
    assert_int_equal(spec_resolve_user(fd, "root", &u, &err), -1);
    berth_error_release(&err);

    /* a directory is refused */
    unlink(pw);
    assert_int_equal(mkdir(pw, 0755), 0);
    assert_int_equal(spec_resolve_user(fd, "alice", &u, &err), -1);
    berth_error_release(&err);

    rm_tree(root);
    unlink(decoy);
    rmdir(decoy_dir);
}

static bool strv_has(char **v, const char *s)
{
    for (; *v; v++)
        if (strcmp(*v, s) == 0)
            return true;
    return false;
}

static void test_capabilities(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_strv char **def = NULL;
    assert_int_equal(spec_capabilities(NULL, NULL, &def, &err), 0);
    size_t n = 0;
    while (def[n])
        n++;
    assert_int_equal(n, 11);
    assert_true(strv_has(def, "CAP_CHOWN"));
    assert_true(strv_has(def, "CAP_SYS_CHROOT"));
    assert_false(strv_has(def, "CAP_NET_RAW"));
    assert_false(strv_has(def, "CAP_SYS_ADMIN"));

    char *add[] = {"net_raw", "CAP_SYS_ADMIN", NULL};
    char *drop[] = {"chown", NULL};
    cleanup_strv char **c1 = NULL;
    assert_int_equal(spec_capabilities(add, drop, &c1, &err), 0);
    assert_true(strv_has(c1, "CAP_NET_RAW"));
    assert_true(strv_has(c1, "CAP_SYS_ADMIN"));
    assert_false(strv_has(c1, "CAP_CHOWN"));

    char *dropall[] = {"ALL", NULL};
    char *add1[] = {"NET_BIND_SERVICE", NULL};
    cleanup_strv char **c2 = NULL;
    assert_int_equal(spec_capabilities(add1, dropall, &c2, &err), 0);
    assert_string_equal(c2[0], "CAP_NET_BIND_SERVICE");
    assert_null(c2[1]);

    char *addall[] = {"all", NULL};
    cleanup_strv char **c3 = NULL;
    assert_int_equal(spec_capabilities(addall, NULL, &c3, &err), 0);
    n = 0;
    while (c3[n])
        n++;
    assert_int_equal((int)n, spec_cap_last() + 1);

    char *bogus[] = {"CAP_FLY", NULL};
    cleanup_strv char **c4 = NULL;
    assert_int_equal(spec_capabilities(bogus, NULL, &c4, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "CAP_FLY"));
    assert_int_equal(spec_cap_from_name("sys_admin"), 21);
    assert_int_equal(spec_cap_from_name("nope"), -1);
}

static json_t *find_mount(json_t *spec, const char *dst)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "destination")), dst) == 0)
            return m;
    }
    return NULL;
}

static bool has_opt(json_t *m, const char *opt)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(m, "options"), i, o)
    {
        if (strcmp(json_string_value(o), opt) == 0)
            return true;
    }
    return false;
}

static bool has_ns(json_t *spec, const char *t)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i, n)
    {
        if (strcmp(json_string_value(json_object_get(n, "type")), t) == 0)
            return true;
    }
    return false;
}

static void test_generate(void **state)
{
    (void)state;
    cleanup_free char *root = make_rootfs();
    cleanup_free char *pw = xasprintf("%s/etc/passwd", root);
    write_file(pw, "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n");
    cleanup_json json_t *cfg = image_config("{\"Cmd\":[\"httpd\"],\"User\":\"web\","
                                            "\"WorkingDir\":\"/srv\",\"Env\":[\"X=1\"]}");
    char *vols[] = {"/tmp:/data:ro", "/etc:/hostetc", NULL};
    char *tmpfs[] = {"/scratch:size=1m", NULL};
    struct spec_options o = {.volumes = vols,
                             .tmpfs = tmpfs,
                             .hostname = "box",
                             .read_only = true,
                             .memory = 1 << 20,
                             .pids_limit = 10};
    cleanup_json json_t *spec = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(spec_generate(cfg, root, &o, &spec, &err), 0);
    json_t *proc = json_object_get(spec, "process");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")), 33);
    assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/srv");
    assert_string_equal(json_string_value(json_object_get(spec, "hostname")), "box");
    /* a non-root user has no effective capabilities, only the bounding set */
    json_t *caps = json_object_get(proc, "capabilities");
    assert_int_equal(json_array_size(json_object_get(caps, "effective")), 0);
    assert_int_equal(json_array_size(json_object_get(caps, "bounding")), 11);
    assert_true(json_is_true(json_object_get(proc, "noNewPrivileges")));
    assert_true(json_is_true(json_object_get(json_object_get(spec, "root"), "readonly")));
    json_t *m = find_mount(spec, "/data");
    assert_non_null(m);
    assert_true(has_opt(m, "ro"));
    assert_true(has_opt(m, "rbind"));
    m = find_mount(spec, "/hostetc");
    assert_true(has_opt(m, "rw"));
    m = find_mount(spec, "/scratch");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "tmpfs");
    assert_true(has_opt(m, "size=1m"));
    m = find_mount(spec, "/sys");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "sysfs");
    assert_non_null(find_mount(spec, "/proc"));
    assert_non_null(find_mount(spec, "/dev/pts"));
    assert_non_null(find_mount(spec, "/dev/shm"));
    assert_non_null(find_mount(spec, "/dev/mqueue"));
    assert_true(has_ns(spec, "network"));
    assert_true(has_ns(spec, "pid"));
    assert_false(has_ns(spec, "user"));
    json_t *lx = json_object_get(spec, "linux");
    assert_true(json_array_size(json_object_get(lx, "maskedPaths")) > 5);
    assert_true(json_array_size(json_object_get(lx, "readonlyPaths")) > 3);
    assert_non_null(json_object_get(lx, "seccomp"));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(lx, "resources"), "memory"), "limit")),
                     1 << 20);

    /* rootless + host network: user namespace with mappings, /sys bound, no network ns */
    struct spec_idmap maps[] = {{0, 1000, 1}, {1, 100000, 65536}};
    struct spec_options r = {.rootless = true,
                             .network = "host",
                             .uid_maps = maps,
                             .n_uid_maps = 2,
                             .gid_maps = maps,
                             .n_gid_maps = 2};
    char *args[] = {"true", NULL};
    r.args = args;
    cleanup_json json_t *s2 = NULL;
    assert_int_equal(spec_generate(NULL, root, &r, &s2, &err), 0);
    assert_true(has_ns(s2, "user"));
    assert_false(has_ns(s2, "network"));
    m = find_mount(s2, "/sys");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "none");
    assert_true(has_opt(m, "rbind"));
    assert_false(has_opt(find_mount(s2, "/dev/pts"), "gid=5"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(s2, "linux"), "uidMappings")),
                     2);

    /* bad inputs */
    char *badvol[] = {"relative:/x", NULL};
    struct spec_options b1 = {.volumes = badvol, .args = args};
    json_t *s3 = NULL;
    assert_int_equal(spec_generate(NULL, root, &b1, &s3, &err), -1);
    berth_error_release(&err);
    char *badvol2[] = {"/tmp:relative", NULL};
    struct spec_options b2 = {.volumes = badvol2, .args = args};
    assert_int_equal(spec_generate(NULL, root, &b2, &s3, &err), -1);
    berth_error_release(&err);
    char *badvol3[] = {"/nonexistent-berth-src:/x", NULL};
    struct spec_options b3 = {.volumes = badvol3, .args = args};
    assert_int_equal(spec_generate(NULL, root, &b3, &s3, &err), -1);
    berth_error_release(&err);
    /* modes other than host are run/net's business: the spec gets a network namespace */
    struct spec_options b4 = {.network = "bridge", .args = args};
    assert_int_equal(spec_generate(NULL, root, &b4, &s3, &err), 0);
    assert_true(has_ns(s3, "network"));
    json_decref(s3);
    s3 = NULL;
    struct spec_options b5 = {.workdir = "rel", .args = args};
    assert_int_equal(spec_generate(NULL, root, &b5, &s3, &err), -1);
    berth_error_release(&err);
    struct spec_options b6 = {.user = "ghost", .args = args};
    assert_int_equal(spec_generate(NULL, root, &b6, &s3, &err), -1);
    rm_tree(root);
}

static void test_default_and_sizes(void **state)
{
    (void)state;
    cleanup_json json_t *d = spec_default(false);
    assert_non_null(d);
    assert_true(json_is_true(json_object_get(json_object_get(d, "process"), "terminal")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "root"), "path")),
                        "rootfs");
    cleanup_json json_t *dr = spec_default(true);
    assert_true(has_ns(dr, "user"));

    int64_t v;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(spec_parse_size("512m", &v, &err), 0);
    assert_int_equal(v, 512LL << 20);
    assert_int_equal(spec_parse_size("1g", &v, &err), 0);
    assert_int_equal(v, 1LL << 30);
    assert_int_equal(spec_parse_size("1024", &v, &err), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(spec_parse_size("10kb", &v, &err), 0);
    assert_int_equal(v, 10240);
    assert_int_equal(spec_parse_size("x", &v, &err), -1);
    berth_error_release(&err);
    assert_int_equal(spec_parse_size("5q", &v, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entrypoint_cmd_rules), cmocka_unit_test(test_env_merge),
        cmocka_unit_test(test_user_resolution),      cmocka_unit_test(test_user_hostile_symlink),
        cmocka_unit_test(test_capabilities),         cmocka_unit_test(test_generate),
        cmocka_unit_test(test_default_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
