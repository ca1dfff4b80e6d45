/* Tar apply: metadata comes out as the tar says even though chown/chmod/truncate are skipped
 * when creation already gives the result (set-id bits after a chown, modes under a restrictive
 * umask, owners other than the creator, sparse files ending in a hole) and entries replace what
 * is there on EEXIST (hardlinks, symlinks over directories, directories over directories). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/tar.h"
#include "storage/userns.h"
#include "test_storage_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sandbox {
    char *top;
    char *root;
};

static int sb_setup(void **state)
{
    struct sandbox *s = xzalloc(sizeof(*s));
    s->top = tmpdir_new("tarmeta");
    s->root = xasprintf("%s/root", s->top);
    assert_int_equal(mkdir(s->root, 0755), 0);
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

static void apply_ok(struct sandbox *s, const struct tentry *e, size_t n)
{
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, n);
    berth_error_t err = NULL;
    if (apply_buf(s, t.data, t.len, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    free(t.data);
}

static struct stat lstat_in(struct sandbox *s, const char *rel)
{
    cleanup_free char *p = xasprintf("%s/%s", s->root, rel);
    struct stat st;
    if (lstat(p, &st) < 0)
        fail_msg("lstat %s: %s", rel, strerror(errno));
    return st;
}

/* Can this process give files to uid/gid 1000 (root, or a user namespace mapping it)? */
static bool can_chown_1000(struct sandbox *s)
{
    cleanup_free char *p = xasprintf("%s/probe", s->top);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    bool ok = fchown(fd, 1000, 1000) == 0;
    close(fd);
    unlink(p);
    return ok;
}

static void test_modes(void **state)
{
    struct sandbox *s = *state;
    bool other_owner = can_chown_1000(s);
    int o = other_owner ? 1000 : 0;
    const struct tentry e[] = {
        {'f', "suid", "x", 04755, 0, 0, NULL},          {'f', "sgid-other", "x", 02755, o, o, NULL},
        {'f', "suid-other", "x", 04711, o, o, NULL},    {'f', "wide", "x", 0777, 0, 0, NULL},
        {'f', "readonly", "content", 0400, 0, 0, NULL}, {'f', "none", "", 01000, 0, 0, NULL},
        {'f', "owned", "x", 0640, o, o, NULL},
    };
    mode_t old = umask(077); /* the umask must not show in the layer */
    apply_ok(s, e, sizeof(e) / sizeof(e[0]));
    umask(old);
    for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
        struct stat st = lstat_in(s, e[i].path);
        if ((st.st_mode & 07777) != (mode_t)e[i].mode)
            fail_msg("%s: mode %o, want %o", e[i].path, (unsigned)(st.st_mode & 07777),
                     (unsigned)e[i].mode);
        assert_int_equal(st.st_uid, (uid_t)e[i].uid);
        assert_int_equal(st.st_gid, (gid_t)e[i].gid);
        assert_int_equal(st.st_size, (off_t)strlen(e[i].data));
    }
    cleanup_free char *ro = xasprintf("%s/readonly", s->root);
    cleanup_free char *c = file_content(ro);
    assert_string_equal(c, "content");
}

static void test_replace_on_exist(void **state)
{
    struct sandbox *s = *state;
    const struct tentry e[] = {
        {'f', "a", "A", 0, 0, 0, NULL},
        {'f', "h", "old", 0, 0, 0, NULL},
        {'h', "h", "a", 0, 0, 0, NULL}, /* hardlink over a file */
        {'d', "d", NULL, 0700, 0, 0, NULL},
        {'f', "d/keep", "k", 0, 0, 0, NULL},
        {'d', "d", NULL, 0751, 0, 0, NULL}, /* dir over dir: children stay, mode changes */
        {'d', "gone", NULL, 0, 0, 0, NULL},
        {'f', "gone/x", "x", 0, 0, 0, NULL},
        {'l', "gone", "a", 0, 0, 0, NULL}, /* symlink over a directory tree */
        {'p', "fifo", NULL, 0, 0, 0, NULL},
        {'p', "fifo", NULL, 0, 0, 0, NULL}, /* fifo over fifo */
        {'l', "sl", "nowhere", 0, 0, 0, NULL},
        {'d', "sl", NULL, 0, 0, 0, NULL}, /* dir over a dangling symlink */
    };
    apply_ok(s, e, sizeof(e) / sizeof(e[0]));
    struct stat a = lstat_in(s, "a"), h = lstat_in(s, "h");
    assert_int_equal(a.st_ino, h.st_ino);
    assert_int_equal(a.st_nlink, 2);
    struct stat d = lstat_in(s, "d");
    assert_true(S_ISDIR(d.st_mode));
    assert_int_equal(d.st_mode & 07777, 0751);
    lstat_in(s, "d/keep");
    assert_true(S_ISLNK(lstat_in(s, "gone").st_mode));
    assert_true(S_ISFIFO(lstat_in(s, "fifo").st_mode));
    assert_true(S_ISDIR(lstat_in(s, "sl").st_mode));
    cleanup_free char *outside = xasprintf("%s/nowhere", s->top);
    assert_false(fs_exists(outside));
}

/* A sparse file whose last part is a hole: its size comes from the header, not the data. */
static void test_sparse_tail_hole(void **state)
{
    struct sandbox *s = *state;
    struct tbuf t = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open(a, &t, NULL, tbuf_write, NULL);
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, "sparse");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, 1 << 20);
    archive_entry_sparse_add_entry(ae, 0, 4);
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, "abcd", 4), 4);
    archive_entry_free(ae);
    archive_write_close(a);
    archive_write_free(a);
    berth_error_t err = NULL;
    if (apply_buf(s, t.data, t.len, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    free(t.data);
    struct stat st = lstat_in(s, "sparse");
    assert_int_equal(st.st_size, 1 << 20);
    cleanup_free char *p = xasprintf("%s/sparse", s->root);
    int fd = open(p, O_RDONLY);
    char buf[8] = {0};
    assert_int_equal(pread(fd, buf, 4, 0), 4);
    assert_memory_equal(buf, "abcd", 4);
    assert_int_equal(pread(fd, buf, 4, (1 << 20) - 4), 4);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    close(fd);
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
        T(test_modes),
        T(test_replace_on_exist),
        T(test_sparse_tail_hole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
