/* Tar apply against hostile input: every case fails cleanly or stays inside the layer root.
 * The tars are generated here with libarchive's writer (and by hand where libarchive refuses to
 * write something broken). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/tar.h"
#include "storage/userns.h"
#include "test_storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

struct sandbox {
    char *top;  /* contains only "root" and "outside" */
    char *root; /* the layer root */
};

static int sb_setup(void **state)
{
    struct sandbox *s = xzalloc(sizeof(*s));
    s->top = tmpdir_new("tar");
    s->root = xasprintf("%s/root", s->top);
    assert_int_equal(mkdir(s->root, 0755), 0);
    cleanup_free char *o = xasprintf("%s/outside", s->top);
    assert_int_equal(mkdir(o, 0755), 0);
    *state = s;
    return 0;
}

static int sb_teardown(void **state)
{
    struct sandbox *s = *state;
    tmpdir_remove(s->top);
    free(s->root);
    free(s);
    return 0;
}

/* Nothing may appear beside root/ or inside outside/. */
static void assert_contained(struct sandbox *s)
{
    DIR *d = opendir(s->top);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (strcmp(de->d_name, "root") != 0 && strcmp(de->d_name, "outside") != 0)
            fail_msg("escaped: %s", de->d_name);
    }
    closedir(d);
    cleanup_free char *o = xasprintf("%s/outside", s->top);
    d = opendir(o);
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            fail_msg("escaped into outside/: %s", de->d_name);
    closedir(d);
}

static int apply_buf(struct sandbox *s, const void *buf, size_t len, berth_error_t *err)
{
    int fd = open(s->root, O_RDONLY | O_DIRECTORY);
    berth_reader_t *r = reader_from_buffer(buf, len, false);
    struct tar_apply_options o = {.whiteouts = TAR_WHITEOUT_DELETE,
                                  .rootless = userns_is_rootless()};
    struct storage_apply_result res = {0};
    int rc = tar_apply(fd, r, &o, &res, err);
    storage_apply_result_clear(&res);
    reader_close(r);
    close(fd);
    return rc;
}

static int apply_entries(struct sandbox *s, const struct tentry *e, size_t n, berth_error_t *err)
{
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, n);
    int rc = apply_buf(s, t.data, t.len, err);
    free(t.data);
    return rc;
}

static char *at(struct sandbox *s, const char *rel)
{
    return xasprintf("%s/%s", s->root, rel);
}

static void test_dotdot(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e[] = {{'f', "../outside/x", "x", 0, 0, 0, NULL},
                               {'f', "a/../../../outside/y", "y", 0, 0, 0, NULL},
                               {'f', "/abs", "z", 0, 0, 0, NULL}};
    berth_error_t err = NULL;
    assert_int_equal(apply_entries(s, e, 3, &err), 0);
    assert_contained(s);
    cleanup_free char *x = at(s, "outside/x");
    cleanup_free char *z = at(s, "abs");
    assert_true(fs_exists(x)); /* ".." stopped at the root */
    assert_true(fs_exists(z));
}

static void test_symlink_escape(void **state)
{
    struct sandbox *s = *state;
    cleanup_free char *outside = xasprintf("%s/outside", s->top);
    const struct tentry e[] = {
        {'l', "up", "../../..", 0, 0, 0, NULL}, {'f', "up/outside/f1", "1", 0, 0, 0, NULL},
        {'l', "abs", outside, 0, 0, 0, NULL},   {'f', "abs/f2", "2", 0, 0, 0, NULL},
        {'l', "etc", "/etc", 0, 0, 0, NULL},    {'f', "etc/passwd", "owned\n", 0, 0, 0, NULL}};
    struct stat before, after;
    assert_int_equal(stat("/etc/passwd", &before), 0);
    berth_error_t err = NULL;
    int rc = apply_entries(s, e, 6, &err);
    berth_error_release(&err);
    (void)rc; /* either outcome is fine as long as nothing escaped */
    assert_contained(s);
    assert_int_equal(stat("/etc/passwd", &after), 0);
    assert_int_equal(before.st_mtime, after.st_mtime);
    assert_int_equal(before.st_size, after.st_size);
    /* the writes through symlinks landed inside the root */
    cleanup_free char *p = xasprintf("%s/etc/passwd", s->root);
    cleanup_free char *c = file_content(p);
    if (c)
        assert_string_equal(c, "owned\n");
}

static void test_hardlink_escape(void **state)
{
    struct sandbox *s = *state;
    struct stat host;
    assert_int_equal(stat("/etc/passwd", &host), 0);
    const struct tentry cases[][2] = {
        {{'h', "h1", "/etc/passwd", 0, 0, 0, NULL}, {0}},
        {{'h', "h2", "../../../../etc/passwd", 0, 0, 0, NULL}, {0}},
        {{'l', "s", "/etc", 0, 0, 0, NULL}, {'h', "h3", "s/passwd", 0, 0, 0, NULL}},
    };
    for (size_t i = 0; i < 3; i++) {
        berth_error_t err = NULL;
        int rc = apply_entries(s, cases[i], cases[i][1].path ? 2 : 1, &err);
        assert_int_equal(rc, -1); /* the target does not exist inside the root */
        assert_non_null(strstr(berth_error_msg(err), "hardlink"));
        berth_error_release(&err);
    }
    DIR *d = opendir(s->root);
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        cleanup_free char *p = at(s, de->d_name);
        if (lstat(p, &st) == 0)
            assert_false(st.st_ino == host.st_ino && st.st_dev == host.st_dev);
    }
    closedir(d);
    assert_contained(s);
}

static void test_symlink_loop(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e[] = {{'l', "a", "b", 0, 0, 0, NULL},
                               {'l', "b", "a", 0, 0, 0, NULL},
                               {'f', "a/x", "x", 0, 0, 0, NULL}};
    berth_error_t err = NULL;
    assert_int_equal(apply_entries(s, e, 3, &err), -1);
    berth_error_release(&err);
    assert_contained(s);
}

/* A hand-made ustar header claiming an absurd size, followed by a few bytes. */
static void test_absurd_size(void **state)
{
    struct sandbox *s = *state;
    unsigned char block[1024] = {0};
    strcpy((char *)block, "huge");
    memcpy(block + 100, "0000644", 7);
    memcpy(block + 108, "0000000", 7);
    memcpy(block + 116, "0000000", 7);
    memcpy(block + 124, "77777777777", 11); /* 8 GiB */
    memcpy(block + 136, "00000000000", 11);
    block[156] = '0';
    memcpy(block + 257, "ustar", 6);
    memcpy(block + 263, "00", 2);
    memset(block + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += block[i];
    snprintf((char *)block + 148, 8, "%06o", sum);
    memcpy(block + 512, "data", 4);
    berth_error_t err = NULL;
    assert_int_equal(apply_buf(s, block, sizeof(block), &err), -1);
    assert_non_null(err);
    berth_error_release(&err);
    assert_contained(s);
    /* base-256 negative size */
    block[124] = 0xff;
    sum = 0;
    memset(block + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += block[i];
    snprintf((char *)block + 148, 8, "%06o", sum);
    assert_int_equal(apply_buf(s, block, sizeof(block), &err), -1);
    berth_error_release(&err);
    /* garbage */
    memset(block, 'A', sizeof(block));
    assert_int_equal(apply_buf(s, block, sizeof(block), &err), -1);
    berth_error_release(&err);
    assert_contained(s);
}

static void test_duplicates_and_replacement(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e[] = {
        {'f', "dup", "first", 0, 0, 0, NULL},    {'f', "dup", "second", 0, 0, 0, NULL},
        {'d', "d", NULL, 0, 0, 0, NULL},         {'f', "d/child", "c", 0, 0, 0, NULL},
        {'f', "d", "now a file", 0, 0, 0, NULL}, {'f', "f", "file", 0, 0, 0, NULL},
        {'d', "f", NULL, 0, 0, 0, NULL},         {'f', "f/inside", "i", 0, 0, 0, NULL},
        {'l', "l", "dup", 0, 0, 0, NULL},        {'f', "l", "replaced link", 0, 0, 0, NULL},
    };
    berth_error_t err = NULL;
    if (apply_entries(s, e, sizeof(e) / sizeof(e[0]), &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    cleanup_free char *dup = at(s, "dup");
    cleanup_free char *c = file_content(dup);
    assert_string_equal(c, "second");
    cleanup_free char *d = at(s, "d");
    struct stat st;
    assert_int_equal(lstat(d, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    cleanup_free char *fi = at(s, "f/inside");
    assert_true(fs_exists(fi));
    cleanup_free char *l = at(s, "l");
    assert_int_equal(lstat(l, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    cleanup_free char *c2 = file_content(dup);
    assert_string_equal(c2, "second"); /* writing "l" did not follow the old symlink */
    assert_contained(s);
}

static void test_bad_whiteouts(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e1[] = {{'f', "a/.wh...", "", 0, 0, 0, NULL}};
    const struct tentry e2[] = {{'f', ".wh.", "", 0, 0, 0, NULL}};
    const struct tentry e3[] = {{'f', "../.wh.outside", "", 0, 0, 0, NULL}};
    berth_error_t err = NULL;
    assert_int_equal(apply_entries(s, e1, 1, &err), -1);
    berth_error_release(&err);
    assert_int_equal(apply_entries(s, e2, 1, &err), -1);
    berth_error_release(&err);
    /* "../.wh.outside" is cleaned to ".wh.outside" inside the root: deletes nothing outside */
    apply_entries(s, e3, 1, &err);
    berth_error_release(&err);
    cleanup_free char *o = xasprintf("%s/outside", s->top);
    assert_true(fs_exists(o));
    assert_contained(s);
}

static void test_overlay_xattrs_filtered(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e[] = {{'d', "d", NULL, 0, 0, 0, "trusted.overlay.opaque=y"},
                               {'f', "f", "x", 0, 0, 0, "user.overlay.redirect=/etc"}};
    berth_error_t err = NULL;
    if (apply_entries(s, e, 2, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    char v[8];
    cleanup_free char *d = at(s, "d");
    cleanup_free char *f = at(s, "f");
    assert_true(getxattr(d, "trusted.overlay.opaque", v, sizeof(v)) < 0);
    assert_true(getxattr(f, "user.overlay.redirect", v, sizeof(v)) < 0);
}

static void test_generate_deterministic(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e[] = {{'d', "z", NULL, 0, 0, 0, NULL},
                               {'f', "z/b", "b", 0, 0, 0, NULL},
                               {'f', "z/a", "a", 0, 0, 0, NULL},
                               {'f', "y", "y", 0, 0, 0, NULL},
                               {'h', "x", "y", 0, 0, 0, NULL}};
    berth_error_t err = NULL;
    assert_int_equal(apply_entries(s, e, 5, &err), 0);
    struct tar_generate_options o = {.mode = TAR_GEN_PLAIN, .clamp_mtime = 5, .tmp_dir = s->top};
    char *d[2];
    for (int i = 0; i < 2; i++) {
        berth_reader_t *r = NULL;
        assert_int_equal(tar_generate(s->root, &o, &r, &err), 0);
        d[i] = reader_sha256(r, NULL);
        reader_close(r);
        /* touching times past the clamp must not change the output */
        cleanup_free char *p = at(s, "z/a");
        utimes(p, NULL);
    }
    assert_string_equal(d[0], d[1]);
    free(d[0]);
    free(d[1]);
    /* order: x y z z/a z/b, x a hardlink to y */
    berth_reader_t *r = NULL;
    assert_int_equal(tar_generate(s->root, &o, &r, &err), 0);
    char *all = NULL;
    size_t len = 0;
    assert_int_equal(reader_read_all(r, 1 << 20, &all, &len, &err), 0);
    reader_close(r);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_open_memory(a, all, len);
    struct archive_entry *ae;
    const char *want[] = {"x", "y", "z/", "z/a", "z/b"}; /* dirs end in "/" as with GNU tar */
    int i = 0;
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        assert_true(i < 5);
        assert_string_equal(archive_entry_pathname(ae), want[i]);
        assert_true(archive_entry_mtime(ae) <= 5);
        if (i == 1)
            assert_string_equal(archive_entry_hardlink(ae), "x");
        i++;
    }
    assert_int_equal(i, 5);
    archive_read_free(a);
    free(all);
}

/* Closing the reader before the end stops the producer (no hang, no leak). */
static void test_generate_close_early(void **state)
{
    struct sandbox *s = *state;
    cleanup_free char *big = at(s, "big");
    FILE *fp = fopen(big, "w");
    assert_non_null(fp);
    for (int i = 0; i < 8 * 1024; i++)
        fprintf(fp, "%01023d\n", i);
    fclose(fp);
    struct tar_generate_options o = {.mode = TAR_GEN_PLAIN, .clamp_mtime = -1};
    berth_error_t err = NULL;
    for (int i = 0; i < 20; i++) {
        berth_reader_t *r = NULL;
        assert_int_equal(tar_generate(s->root, &o, &r, &err), 0);
        char buf[100];
        assert_true(reader_read(r, buf, sizeof(buf), &err) > 0);
        reader_close(r);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, sb_setup, sb_teardown)
int main(void)
{
    berth_error_t err = NULL;
    if (userns_ensure(&err) < 0) {
        fprintf(stderr, "%s\n", berth_error_msg(err));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_dotdot),
        T(test_symlink_escape),
        T(test_hardlink_escape),
        T(test_symlink_loop),
        T(test_absurd_size),
        T(test_duplicates_and_replacement),
        T(test_bad_whiteouts),
        T(test_overlay_xattrs_filtered),
        T(test_generate_deterministic),
        T(test_generate_close_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
