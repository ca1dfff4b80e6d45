#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The outside world a hostile image tries to reach: a directory next to the rootfs. */
static char outside[] = "/tmp/berth-path-outside-XXXXXX";

static void put(int dfd, const char *name, const char *content)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

/* Builds a hostile rootfs in a new temp dir; returns its path. */
static char *make_rootfs(void)
{
    char *root = xstrdup("/tmp/berth-path-root-XXXXXX");
    assert_non_null(mkdtemp(root));
    cleanup_close int r = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(r >= 0);
    assert_int_equal(mkdirat(r, "etc", 0755), 0);
    put(r, "etc/passwd", "inside");
    put(r, "file", "plain");
    assert_int_equal(mkdirat(r, "dir", 0755), 0);
    assert_int_equal(symlinkat("/etc/passwd", r, "abs_link"), 0);
    assert_int_equal(symlinkat("../../../../etc", r, "rel_escape"), 0);
    assert_int_equal(symlinkat("../../../..", r, "dir/up"), 0);
    assert_int_equal(symlinkat("loop2", r, "loop1"), 0);
    assert_int_equal(symlinkat("loop1", r, "loop2"), 0);
    assert_int_equal(symlinkat("self", r, "self"), 0);
    assert_int_equal(symlinkat("/dir", r, "parentlink"), 0);
    assert_int_equal(symlinkat("../dir", r, "dir/relparent"), 0);
    assert_int_equal(symlinkat("/etc/passwd", r, "dir/abs_in_sub"), 0);
    assert_int_equal(symlinkat("/etc", r, "dir/absdir_in_sub"), 0);
    assert_int_equal(symlinkat("/newfile", r, "dangling"), 0);
    assert_int_equal(symlinkat("/made/here", r, "abs_to_missing"), 0);
    assert_int_equal(symlinkat(outside, r, "escape_dir"), 0);
    cleanup_free char *outside_file = xasprintf("%s/secret", outside);
    assert_int_equal(symlinkat(outside_file, r, "escape_file"), 0);
    /* chains: chainN resolves through N symlinks to etc/passwd */
    for (int n = 1; n <= 41; n++) {
        char name[32], target[32];
        snprintf(name, sizeof(name), "chain%d", n);
        if (n == 1)
            snprintf(target, sizeof(target), "/etc/passwd");
        else
            snprintf(target, sizeof(target), "chain%d", n - 1);
        assert_int_equal(symlinkat(target, r, name), 0);
    }
    return root;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(outside) == NULL)
        return -1;
    cleanup_free char *secret = xasprintf("%s/secret", outside);
    FILE *f = fopen(secret, "w");
    if (f == NULL)
        return -1;
    fputs("outside", f);
    fclose(f);
    return 0;
}

/* Nothing outside the root may ever be created or changed. */
static void check_outside_untouched(void)
{
    DIR *d = opendir(outside);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "secret"))
            fail_msg("created outside the root: %s", de->d_name);
    }
    closedir(d);
    assert_int_equal(n, 1);
    cleanup_free char *secret = xasprintf("%s/secret", outside);
    cleanup_free char *buf = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_read_file(secret, 100, &buf, NULL, &err), 0);
    assert_string_equal(buf, "outside");
    assert_int_equal(access("/newfile", F_OK), -1);
    assert_int_equal(access("/made", F_OK), -1);
}

static int teardown(void **state)
{
    (void)state;
    berth_error_t err = NULL;
    IGNORE_RESULT(fs_rm_rf(outside, &err));
    berth_error_release(&err);
    return 0;
}

struct open_case {
    const char *path;
    int flags;
    const char *expect; /* relative path (inside root) of what must be opened, or NULL */
    int expect_errno;
};

static const struct open_case open_cases[] = {
    {"etc/passwd", O_RDONLY, "etc/passwd", 0},
    {"/etc/passwd", O_RDONLY, "etc/passwd", 0},
    {"abs_link", O_RDONLY, "etc/passwd", 0},
    {"/abs_link", O_RDONLY, "etc/passwd", 0},
    {"rel_escape/passwd", O_RDONLY, "etc/passwd", 0},
    {"../../../etc/passwd", O_RDONLY, "etc/passwd", 0},
    {"/etc/../../../etc/./passwd", O_RDONLY, "etc/passwd", 0},
    {"dir/up/etc/passwd", O_RDONLY, "etc/passwd", 0},
    {"dir/up/dir/up/rel_escape/passwd", O_RDONLY, "etc/passwd", 0},
    {"dir/relparent/../file", O_RDONLY, "file", 0},
    {"dir/abs_in_sub", O_RDONLY, "etc/passwd", 0},
    {"dir/absdir_in_sub/passwd", O_RDONLY, "etc/passwd", 0},
    {"dir/absdir_in_sub/../file", O_RDONLY, "file", 0},
    {"parentlink/../file", O_RDONLY, "file", 0},
    {"", O_RDONLY | O_DIRECTORY, ".", 0},
    {"/", O_RDONLY | O_DIRECTORY, ".", 0},
    {"..", O_RDONLY | O_DIRECTORY, ".", 0},
    {"dir/up", O_RDONLY | O_DIRECTORY, ".", 0},
    {"loop1", O_RDONLY, NULL, ELOOP},
    {"self", O_RDONLY, NULL, ELOOP},
    {"loop1/x", O_RDONLY, NULL, ELOOP},
    {"chain39", O_RDONLY, "etc/passwd", 0},
    {"chain40", O_RDONLY, "etc/passwd", 0},
    {"chain41", O_RDONLY, NULL, ELOOP},
    {"escape_dir/secret", O_RDONLY, NULL, ENOENT},
    {"escape_file", O_RDONLY, NULL, ENOENT},
    {"file/x", O_RDONLY, NULL, ENOTDIR},
    {"missing/x", O_RDONLY, NULL, ENOENT},
    {"abs_link", O_RDONLY | O_NOFOLLOW, NULL, ELOOP},
    {"abs_link", O_PATH | O_NOFOLLOW, "abs_link", 0},
    {"parentlink/../etc/passwd", O_RDONLY | O_NOFOLLOW, "etc/passwd", 0},
    /* creation */
    {"parentlink/created", O_WRONLY | O_CREAT, "dir/created", 0},
    {"dir/up/dir/up/made-at-root", O_WRONLY | O_CREAT, "made-at-root", 0},
    {"rel_escape/../created2", O_WRONLY | O_CREAT, "created2", 0},
    {"dangling", O_WRONLY | O_CREAT, "newfile", 0},
    {"abs_link", O_WRONLY | O_CREAT | O_EXCL, NULL, EEXIST},
    {"self", O_WRONLY | O_CREAT | O_EXCL, NULL, EEXIST},
    {"escape_dir/new", O_WRONLY | O_CREAT, NULL, ENOENT},
    {"missing/new", O_WRONLY | O_CREAT, NULL, ENOENT},
    {"/", O_WRONLY | O_CREAT, NULL, EISDIR},
};

#define NCASES (sizeof(open_cases) / sizeof(open_cases[0]))

/* Runs all open cases on a fresh rootfs; results[i] is errno (> 0) or 0 for "opened expected". */
static void run_open_cases(bool fallback, int *results)
{
    path_force_fallback(fallback);
    cleanup_free char *root = make_rootfs();
    cleanup_close int rfd = open(root, O_PATH | O_DIRECTORY);
    assert_true(rfd >= 0);
    for (size_t i = 0; i < NCASES; i++) {
        const struct open_case *c = &open_cases[i];
        cleanup_error berth_error_t err = NULL;
        int fd = path_openat_in_root(rfd, c->path, c->flags, 0644, &err);
        if (fd < 0) {
            results[i] = berth_error_status(err);
            assert_non_null(strstr(berth_error_msg(err), c->path));
            if (c->expect)
                fail_msg("%s case %zu \"%s\": %s", fallback ? "fallback" : "openat2", i, c->path,
                         berth_error_msg(err));
            if (results[i] != c->expect_errno)
                fail_msg("%s case %zu \"%s\": got \"%s\", want errno %d",
                         fallback ? "fallback" : "openat2", i, c->path, berth_error_msg(err),
                         c->expect_errno);
            continue;
        }
        results[i] = 0;
        struct stat got, want;
        assert_int_equal(fstat(fd, &got), 0);
        close(fd);
        if (c->expect == NULL)
            fail_msg("%s case %zu \"%s\": opened, want errno %d", fallback ? "fallback" : "openat2",
                     i, c->path, c->expect_errno);
        assert_int_equal(fstatat(rfd, c->expect, &want, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), 0);
        if (got.st_ino != want.st_ino || got.st_dev != want.st_dev)
            fail_msg("%s case %zu \"%s\": opened the wrong file", fallback ? "fallback" : "openat2",
                     i, c->path);
    }
    check_outside_untouched();
    path_force_fallback(false);
    berth_error_t err = NULL;
    assert_int_equal(fs_rm_rf(root, &err), 0);
}

static void test_open_both_ways(void **state)
{
    (void)state;
    int a[NCASES], b[NCASES];
    run_open_cases(false, a);
    run_open_cases(true, b);
    for (size_t i = 0; i < NCASES; i++)
        if (a[i] != b[i])
            fail_msg("case %zu \"%s\": openat2 %d vs fallback %d", i, open_cases[i].path, a[i],
                     b[i]);
}

static void test_read_content(void **state)
{
    (void)state;
    for (int fb = 0; fb < 2; fb++) {
        path_force_fallback(fb);
        cleanup_free char *root = make_rootfs();
        cleanup_close int rfd = open(root, O_RDONLY | O_DIRECTORY);
        cleanup_error berth_error_t err = NULL;
        int fd = path_openat_in_root(rfd, "/dir/up/rel_escape/../abs_link", O_RDONLY, 0, &err);
        assert_true(fd >= 0);
        char buf[32] = {0};
        assert_int_equal(read(fd, buf, sizeof(buf) - 1), 6);
        assert_string_equal(buf, "inside");
        close(fd);
        path_force_fallback(false);
        assert_int_equal(fs_rm_rf(root, &err), 0);
    }
}

struct parent_case {
    const char *path;
    bool create;
    const char *expect_dir; /* relative to root, or NULL */
    const char *expect_base;
    int expect_errno;
};

static const struct parent_case parent_cases[] = {
    {"x", false, ".", "x", 0},
    {"/x", false, ".", "x", 0},
    {"etc/passwd", false, "etc", "passwd", 0},
    {"dir/absdir_in_sub/x", false, "etc", "x", 0},
    {"parentlink/x", false, "dir", "x", 0},
    {"rel_escape/passwd", false, "etc", "passwd", 0},
    {"dir/up/../../etc/new/", false, "etc", "new", 0},
    {"abs_link", false, ".", "abs_link", 0},
    {"a/b/c/file", true, "a/b/c", "file", 0},
    {"a/b/c/file2", false, "a/b/c", "file2", 0},
    {"abs_to_missing/sub/f", true, "made/here/sub", "f", 0},
    {"escape_dir/f", true, "tmp", NULL, 0}, /* created inside: checked below */
    {"missing/x", false, NULL, NULL, ENOENT},
    {"file/x", false, NULL, NULL, ENOTDIR},
    {"file/x", true, NULL, NULL, ENOTDIR},
    {"loop1/x", false, NULL, NULL, ELOOP},
    {"loop1/x", true, NULL, NULL, ELOOP},
    {"/", false, NULL, NULL, EINVAL},
    {"", true, NULL, NULL, EINVAL},
    {".", false, NULL, NULL, EINVAL},
    {"x/..", false, NULL, NULL, EINVAL},
    {"x/.", false, NULL, NULL, EINVAL},
};

#define NPCASES (sizeof(parent_cases) / sizeof(parent_cases[0]))

static void run_parent_cases(bool fallback, int *results)
{
    path_force_fallback(fallback);
    cleanup_free char *root = make_rootfs();
    cleanup_close int rfd = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(rfd >= 0);
    for (size_t i = 0; i < NPCASES; i++) {
        const struct parent_case *c = &parent_cases[i];
        cleanup_error berth_error_t err = NULL;
        cleanup_free char *base = NULL;
        int fd = path_open_parent_in_root(rfd, c->path, c->create, &base, &err);
        const char *mode = fallback ? "fallback" : "openat2";
        if (fd < 0) {
            results[i] = berth_error_status(err);
            if (c->expect_dir || results[i] != c->expect_errno)
                fail_msg("%s parent case %zu \"%s\": %s", mode, i, c->path, berth_error_msg(err));
            continue;
        }
        results[i] = 0;
        if (c->expect_dir == NULL)
            fail_msg("%s parent case %zu \"%s\": succeeded", mode, i, c->path);
        /* must be a real readable directory fd */
        assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
        struct stat got, want;
        assert_int_equal(fstat(fd, &got), 0);
        assert_true(S_ISDIR(got.st_mode));
        close(fd);
        if (c->expect_base == NULL) {
            /* escape_dir/f with create: the absolute host path is recreated inside the root */
            cleanup_free char *inside = path_clean_relative(outside);
            assert_int_equal(fstatat(rfd, inside, &want, 0), 0);
        } else {
            assert_string_equal(base, c->expect_base);
            assert_int_equal(fstatat(rfd, c->expect_dir, &want, 0), 0);
        }
        if (got.st_ino != want.st_ino)
            fail_msg("%s parent case %zu \"%s\": wrong directory", mode, i, c->path);
    }
    check_outside_untouched();
    path_force_fallback(false);
    berth_error_t err = NULL;
    assert_int_equal(fs_rm_rf(root, &err), 0);
}

static void test_parent_both_ways(void **state)
{
    (void)state;
    int a[NPCASES], b[NPCASES];
    run_parent_cases(false, a);
    run_parent_cases(true, b);
    for (size_t i = 0; i < NPCASES; i++)
        if (a[i] != b[i])
            fail_msg("parent case %zu \"%s\": openat2 %d vs fallback %d", i, parent_cases[i].path,
                     a[i], b[i]);
}

static void test_resolve(void **state)
{
    (void)state;
    struct {
        const char *path;
        bool follow;
        const char *want; /* NULL: error */
    } cases[] = {
        {"abs_link", true, "etc/passwd"},
        {"abs_link", false, "abs_link"},
        {"/dir/up/abs_link", false, "abs_link"},
        {"rel_escape/passwd", true, "etc/passwd"},
        {"missing/../etc", true, "etc"},
        {"missing/a/../../../..", true, ""},
        {"dir/up/missing/x", true, "missing/x"},
        {"dangling", true, "newfile"},
        {"dir/abs_in_sub", true, "etc/passwd"},
        {"dir/absdir_in_sub/../x", true, "x"},
        {"dangling", false, "dangling"},
        {"parentlink/relparent/relparent", true, "dir"},
        {"escape_dir/secret", true, NULL}, /* fills below */
        {"", true, ""},
        {"/..", true, ""},
        {"loop1", true, NULL},
        {"loop1", false, "loop1"},
    };
    cleanup_free char *root = make_rootfs();
    cleanup_close int rfd = open(root, O_PATH | O_DIRECTORY);
    cleanup_free char *escaped = xasprintf("%s/secret", outside + 1);
    cases[12].want = escaped;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_error berth_error_t err = NULL;
        cleanup_free char *out = NULL;
        int r = path_resolve_in_root(rfd, cases[i].path, cases[i].follow, &out, &err);
        if (cases[i].want == NULL) {
            if (r == 0)
                fail_msg("resolve case %zu \"%s\": got \"%s\"", i, cases[i].path, out);
            assert_int_equal(berth_error_status(err), ELOOP);
            continue;
        }
        if (r < 0)
            fail_msg("resolve case %zu \"%s\": %s", i, cases[i].path, berth_error_msg(err));
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("resolve case %zu \"%s\": got \"%s\", want \"%s\"", i, cases[i].path, out,
                     cases[i].want);
    }
    check_outside_untouched();
    berth_error_t err = NULL;
    assert_int_equal(fs_rm_rf(root, &err), 0);
}

static void test_clean_relative(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"", ""},
        {"/", ""},
        {".", ""},
        {"..", ""},
        {"../../a", "a"},
        {"/a/b/../c", "a/c"},
        {"a//b///c/", "a/b/c"},
        {"./a/./b/.", "a/b"},
        {"a/../../..", ""},
        {"a/b/../../../x", "x"},
        {"..a/b..", "..a/b.."},
        {"/etc/passwd", "etc/passwd"},
        {"a/.../b", "a/.../b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_free char *got = path_clean_relative(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            fail_msg("clean \"%s\": got \"%s\", want \"%s\"", cases[i][0], got, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_both_ways),   cmocka_unit_test(test_read_content),
        cmocka_unit_test(test_parent_both_ways), cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_clean_relative),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
