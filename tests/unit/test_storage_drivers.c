/* Driver conformance: the same cases run against overlay and vfs, through the store API and the
 * driver vtable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store.h"
#include "storage/userns.h"
#include "test_storage_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *driver_name;

struct fx {
    char *root;
    storage_store_t *s;
};

static int fx_setup(void **state)
{
    struct fx *f = xzalloc(sizeof(*f));
    f->root = tmpdir_new("drv");
    cleanup_free char *run = xasprintf("%s/run", f->root);
    cleanup_free char *root = xasprintf("%s/root", f->root);
    struct storage_options o = {.root = root, .runroot = run, .driver = driver_name};
    berth_error_t err = NULL;
    if (storage_store_open(&o, &f->s, &err) < 0)
        fail_msg("open: %s", berth_error_msg(err));
    assert_string_equal(storage_store_driver_name(f->s), driver_name);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    /* unmount everything still mounted */
    storage_layer_t **ls = NULL;
    berth_error_t err = NULL;
    if (storage_layer_list(f->s, &ls, &err) == 0) {
        for (size_t i = 0; ls[i]; i++)
            IGNORE_RESULT(storage_layer_unmount(f->s, ls[i]->id, true, &err)),
                berth_error_release(&err);
        storage_layer_list_free(ls);
    }
    berth_error_release(&err);
    storage_store_close(f->s);
    tmpdir_remove(f->root);
    free(f);
    return 0;
}

static storage_layer_t *apply(struct fx *f, const char *parent, struct tbuf *t)
{
    berth_reader_t *r = reader_from_buffer(t->data, t->len, false);
    struct storage_layer_options o = {.parent = parent, .compressed_size = -1};
    storage_layer_t *l = NULL;
    berth_error_t err = NULL;
    if (storage_layer_create_from_tar(f->s, &o, r, &l, &err) < 0)
        fail_msg("apply: %s", berth_error_msg(err));
    reader_close(r);
    return l;
}

static char *mount_layer(struct fx *f, const char *id)
{
    char *dir = NULL;
    berth_error_t err = NULL;
    if (storage_layer_mount(f->s, id, &dir, &err) < 0)
        fail_msg("mount: %s", berth_error_msg(err));
    return dir;
}

static void unmount_layer(struct fx *f, const char *id)
{
    berth_error_t err = NULL;
    if (storage_layer_unmount(f->s, id, false, &err) < 0)
        fail_msg("unmount: %s", berth_error_msg(err));
}

static const struct tentry base_entries[] = {
    {'d', "etc", NULL, 0755, 0, 0, NULL},
    {'f', "etc/hello", "hello\n", 0644, 0, 0, NULL},
    {'f', "etc/owned", "x", 0640, 1000, 1001, NULL},
    {'f', "etc/xattr", "x", 0644, 0, 0, "user.berth=yes"},
    {'d', "bin", NULL, 0755, 0, 0, NULL},
    {'f', "bin/tool", "#!/bin/sh\n", 04755, 0, 0, NULL},
    {'l', "bin/sh", "tool", 0, 0, 0, NULL},
    {'h', "bin/tool2", "bin/tool", 0, 0, 0, NULL},
    {'d', "dir", NULL, 0755, 0, 0, NULL},
    {'f', "dir/a", "a", 0644, 0, 0, NULL},
    {'f', "dir/b", "b", 0644, 0, 0, NULL},
    {'p', "fifo", NULL, 0, 0, 0, NULL},
    {'c', "null", NULL, 0, 0, 0, NULL},
};

static void test_apply_and_mount(void **state)
{
    struct fx *f = *state;
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, base_entries,
                              sizeof(base_entries) / sizeof(base_entries[0]));
    storage_layer_t *l = apply(f, NULL, &t);
    assert_non_null(l->diff_digest);
    cleanup_free char *want = digest_buffer(DIGEST_SHA256, t.data, t.len);
    assert_string_equal(l->diff_digest, want);
    assert_int_equal(l->diff_size, (int64_t)t.len);
    char *dir = mount_layer(f, l->id);
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/etc/hello", dir);
    cleanup_free char *c = file_content(p);
    assert_string_equal(c, "hello\n");
    snprintf(p, sizeof(p), "%s/etc/owned", dir);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_gid, 1001);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_mtime, 1600000002);
    snprintf(p, sizeof(p), "%s/bin/tool", dir);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 04755);
    struct stat st2;
    snprintf(p, sizeof(p), "%s/bin/tool2", dir);
    assert_int_equal(lstat(p, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino); /* hardlink kept */
    snprintf(p, sizeof(p), "%s/bin/sh", dir);
    char target[64] = {0};
    assert_int_equal(readlink(p, target, sizeof(target)), 4);
    assert_string_equal(target, "tool");
    snprintf(p, sizeof(p), "%s/etc/xattr", dir);
    char xv[16] = {0};
    assert_int_equal(getxattr(p, "user.berth", xv, sizeof(xv)), 3);
    assert_string_equal(xv, "yes");
    snprintf(p, sizeof(p), "%s/fifo", dir);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    snprintf(p, sizeof(p), "%s/null", dir);
    if (userns_is_rootless()) {
        assert_int_equal(lstat(p, &st), -1); /* skipped with a warning */
    } else {
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(1, 3));
    }
    unmount_layer(f, l->id);
    free(dir);
    storage_layer_free(l);
    free(t.data);
}

static void test_whiteouts(void **state)
{
    struct fx *f = *state;
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, base_entries,
                              sizeof(base_entries) / sizeof(base_entries[0]));
    storage_layer_t *base = apply(f, NULL, &t);
    const struct tentry child[] = {
        {'f', "etc/.wh.hello", "", 0, 0, 0, NULL},    {'d', "dir", NULL, 0755, 0, 0, NULL},
        {'f', "dir/.wh..wh..opq", "", 0, 0, 0, NULL}, {'f', "dir/c", "c", 0644, 0, 0, NULL},
        {'f', "etc/new", "new", 0644, 0, 0, NULL},
    };
    struct tbuf t2 = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, child, 5);
    storage_layer_t *top = apply(f, base->id, &t2);
    assert_string_equal(top->parent, base->id);
    char *dir = mount_layer(f, top->id);
    char p[4096];
    snprintf(p, sizeof(p), "%s/etc/hello", dir);
    assert_false(fs_exists(p));
    snprintf(p, sizeof(p), "%s/etc/new", dir);
    assert_true(fs_exists(p));
    snprintf(p, sizeof(p), "%s/etc/owned", dir);
    assert_true(fs_exists(p));
    snprintf(p, sizeof(p), "%s/dir/a", dir);
    assert_false(fs_exists(p));
    snprintf(p, sizeof(p), "%s/dir/c", dir);
    assert_true(fs_exists(p));
    unmount_layer(f, top->id);
    free(dir);

    /* the generated diff turns the driver's whiteouts back into .wh. entries */
    struct storage_diff_options d = {.clamp_mtime = 1000};
    berth_reader_t *r = NULL;
    berth_error_t err = NULL;
    if (storage_layer_diff(f->s, top->id, &d, &r, &err) < 0)
        fail_msg("diff: %s", berth_error_msg(err));
    char *all = NULL;
    size_t len = 0;
    assert_int_equal(reader_read_all(r, 1 << 20, &all, &len, &err), 0);
    reader_close(r);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, all, len), ARCHIVE_OK);
    struct archive_entry *e;
    bool wh = false, opq = false, newf = false, dir_a = false;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *n = archive_entry_pathname(e);
        if (strcmp(n, "etc/.wh.hello") == 0)
            wh = true;
        if (strcmp(n, "etc/new") == 0) {
            newf = true;
            assert_true(archive_entry_mtime(e) <= 1000);
        }
        if (strcmp(n, "dir/a") == 0)
            dir_a = true;
        if (strcmp(n, "dir/.wh..wh..opq") == 0 || strcmp(n, "dir/.wh.a") == 0)
            opq = true;
    }
    archive_read_free(a);
    assert_true(wh);
    assert_true(newf);
    assert_true(opq);
    assert_false(dir_a);
    free(all);
    storage_layer_free(top);
    storage_layer_free(base);
    free(t.data);
    free(t2.data);
}

static void check_exact_diff(struct fx *f, struct tbuf *t)
{
    storage_layer_t *l = apply(f, NULL, t);
    assert_true(l->has_tar_split);
    berth_reader_t *r = NULL;
    berth_error_t err = NULL;
    if (storage_layer_diff(f->s, l->id, NULL, &r, &err) < 0)
        fail_msg("diff: %s", berth_error_msg(err));
    uint64_t size = 0;
    cleanup_free char *got = reader_sha256(r, &size);
    reader_close(r);
    cleanup_free char *want = digest_buffer(DIGEST_SHA256, t->data, t->len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(size, t->len);
    storage_layer_free(l);
}

static void test_exact_diff(void **state)
{
    struct fx *f = *state;
    const int formats[] = {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FORMAT_TAR_GNUTAR,
                           ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE};
    for (size_t i = 0; i < 4; i++) {
        struct tbuf t =
            tar_build(formats[i], base_entries, sizeof(base_entries) / sizeof(base_entries[0]));
        check_exact_diff(f, &t);
        berth_error_t err = NULL;
        storage_layer_t **ls = NULL;
        assert_int_equal(storage_layer_list(f->s, &ls, &err), 0);
        for (size_t k = 0; ls[k]; k++)
            assert_int_equal(storage_layer_remove(f->s, ls[k]->id, &err), 0);
        storage_layer_list_free(ls);
        free(t.data);
    }
    /* a long name (pax / GNU longname records) and a larger file */
    char longname[300];
    memset(longname, 'n', sizeof(longname));
    memcpy(longname, "deep/", 5);
    longname[150] = '/'; /* components stay below NAME_MAX, the path above 100/155 chars */
    longname[299] = '\0';
    char *big = xmalloc(200001);
    for (int i = 0; i < 200000; i++)
        big[i] = (char)('a' + i % 26);
    big[200000] = '\0';
    struct tentry e[] = {{'d', "deep", NULL, 0, 0, 0, NULL},
                         {'f', longname, "long", 0, 0, 0, NULL},
                         {'f', "big", big, 0, 0, 0, NULL}};
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_GNUTAR, e, 3);
    check_exact_diff(f, &t);
    free(t.data);
    free(big);
}

static void test_exact_diff_detects_change(void **state)
{
    struct fx *f = *state;
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, base_entries,
                              sizeof(base_entries) / sizeof(base_entries[0]));
    storage_layer_t *l = apply(f, NULL, &t);
    char *dir = mount_layer(f, l->id);
    char p[4096];
    snprintf(p, sizeof(p), "%s/etc/hello", dir);
    if (strcmp(driver_name, "overlay") == 0) {
        assert_null(fopen(p, "w")); /* committed layers mount read-only */
        assert_int_equal(errno, EROFS);
        /* change the file behind the store's back */
        snprintf(p, sizeof(p), "%s/root/overlay/%s/diff/etc/hello", f->root, l->id);
    }
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("HELLO\n", fp); /* same size, other bytes */
    fclose(fp);
    unmount_layer(f, l->id);
    free(dir);
    berth_reader_t *r = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_layer_diff(f->s, l->id, NULL, &r, &err), 0);
    char *got = reader_sha256(r, NULL);
    assert_null(got); /* the rebuilt stream fails verification instead of lying */
    reader_close(r);
    storage_layer_free(l);
    free(t.data);
}

/* A tar that rewrites or deletes its own files (duplicate entries, a hardlinked file replaced,
 * a whiteout of its own file in vfs) still rebuilds exactly: the replaced contents are kept in
 * the record, so the DiffID of such a layer can be exported (issue 11 item 2). */
static void test_duplicates_keep_record(void **state)
{
    struct fx *f = *state;
    const struct tentry e[] = {{'f', "dup", "first", 0, 0, 0, NULL},
                               {'f', "keep", "keep", 0, 0, 0, NULL},
                               {'f', "dup", "second", 0, 0, 0, NULL}};
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, 3);
    check_exact_diff(f, &t);
    free(t.data);
    /* a directory replaced by a file: every file below it kept */
    const struct tentry e1[] = {{'d', "d", NULL, 0, 0, 0, NULL},
                                {'f', "d/x", "x", 0, 0, 0, NULL},
                                {'d', "d/sub", NULL, 0, 0, 0, NULL},
                                {'f', "d/sub/y", "yy", 0, 0, 0, NULL},
                                {'f', "d", "now a file", 0, 0, 0, NULL}};
    struct tbuf t1 = tar_build(ARCHIVE_FORMAT_TAR_GNUTAR, e1, 5);
    check_exact_diff(f, &t1);
    free(t1.data);
    /* a file with a hardlink, then the file's name written again */
    const struct tentry e3[] = {{'f', "a", "old", 0, 0, 0, NULL},
                                {'h', "b", "a", 0, 0, 0, NULL},
                                {'f', "a", "new!", 0, 0, 0, NULL}};
    struct tbuf t3 = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e3, 3);
    check_exact_diff(f, &t3);
    free(t3.data);
    /* a file written then deleted by a whiteout in the same tar */
    const struct tentry e2[] = {{'d', "d", NULL, 0, 0, 0, NULL},
                                {'f', "d/x", "x", 0, 0, 0, NULL},
                                {'f', ".wh.d", "", 0, 0, 0, NULL}};
    struct tbuf t2 = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e2, 3);
    check_exact_diff(f, &t2);
    free(t2.data);
}

static void test_rw_layer_diff(void **state)
{
    struct fx *f = *state;
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, base_entries,
                              sizeof(base_entries) / sizeof(base_entries[0]));
    storage_layer_t *base = apply(f, NULL, &t);
    storage_layer_t *rw = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_layer_create_rw(f->s, NULL, base->id, &rw, &err), 0);
    assert_true(rw->rw);
    char *dir = mount_layer(f, rw->id);
    char p[4096];
    snprintf(p, sizeof(p), "%s/etc/added", dir);
    FILE *fp = fopen(p, "w");
    fputs("added", fp);
    fclose(fp);
    snprintf(p, sizeof(p), "%s/etc/hello", dir);
    assert_int_equal(unlink(p), 0);
    unmount_layer(f, rw->id);
    free(dir);
    berth_reader_t *r = NULL;
    assert_int_equal(storage_layer_diff(f->s, rw->id, NULL, &r, &err), 0);
    char *all = NULL;
    size_t len = 0;
    assert_int_equal(reader_read_all(r, 1 << 20, &all, &len, &err), 0);
    reader_close(r);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, all, len), ARCHIVE_OK);
    struct archive_entry *e;
    bool added = false, wh = false, unchanged = false;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *n = archive_entry_pathname(e);
        added |= strcmp(n, "etc/added") == 0;
        wh |= strcmp(n, "etc/.wh.hello") == 0;
        unchanged |= strcmp(n, "bin/tool") == 0;
    }
    archive_read_free(a);
    assert_true(added);
    assert_true(wh);
    assert_false(unchanged);
    free(all);
    /* a layer with a child can't be removed */
    assert_int_equal(storage_layer_remove(f->s, base->id, &err), -1);
    assert_int_equal(berth_error_status(err), EBUSY);
    berth_error_release(&err);
    assert_int_equal(storage_layer_remove(f->s, rw->id, &err), 0);
    assert_int_equal(storage_layer_remove(f->s, base->id, &err), 0);
    storage_layer_free(rw);
    storage_layer_free(base);
    free(t.data);
}

static void test_mount_refcount(void **state)
{
    struct fx *f = *state;
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, base_entries, 2);
    storage_layer_t *l = apply(f, NULL, &t);
    char *d1 = mount_layer(f, l->id);
    char *d2 = mount_layer(f, l->id);
    assert_string_equal(d1, d2);
    char p[4096];
    snprintf(p, sizeof(p), "%s/etc/hello", d1);
    unmount_layer(f, l->id);
    assert_true(fs_exists(p)); /* still mounted (vfs: always there) */
    unmount_layer(f, l->id);
    if (strcmp(driver_name, "overlay") == 0)
        assert_false(fs_exists(p));
    free(d1);
    free(d2);
    storage_layer_free(l);
    free(t.data);
}

static void test_deep_chain(void **state)
{
    struct fx *f = *state;
    char *parent = NULL;
    char names[128][32];
    for (int i = 0; i < 128; i++) {
        snprintf(names[i], sizeof(names[i]), "file%03d", i);
        struct tentry e[] = {{'f', names[i], names[i], 0, 0, 0, NULL}};
        struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, 1);
        storage_layer_t *l = apply(f, parent, &t);
        free(parent);
        parent = xstrdup(l->id);
        storage_layer_free(l);
        free(t.data);
    }
    char *dir = mount_layer(f, parent);
    char p[4096];
    snprintf(p, sizeof(p), "%s/file000", dir);
    assert_true(fs_exists(p));
    snprintf(p, sizeof(p), "%s/file127", dir);
    assert_true(fs_exists(p));
    unmount_layer(f, parent);
    free(dir);
    free(parent);
}

static void test_same_layer_twice(void **state)
{
    struct fx *f = *state;
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, base_entries, 4);
    storage_layer_t *a = apply(f, NULL, &t);
    storage_layer_t *b = apply(f, NULL, &t);
    assert_string_equal(a->id, b->id);
    storage_layer_t **ls = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_layer_list(f->s, &ls, &err), 0);
    assert_non_null(ls[0]);
    assert_null(ls[1]);
    storage_layer_list_free(ls);
    storage_layer_free(a);
    storage_layer_free(b);
    free(t.data);
}

static void test_driver_ops(void **state)
{
    (void)state;
    const struct storage_driver_ops *ops = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_driver_lookup(driver_name, &ops, &err), 0);
    assert_int_equal(storage_driver_lookup("btrfs", &ops, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "unknown storage driver \"btrfs\""));
    berth_error_release(&err);
    assert_int_equal(storage_driver_lookup(driver_name, &ops, &err), 0);
    char *home = tmpdir_new("ops");
    void *st = NULL;
    assert_int_equal(ops->init(home, userns_is_rootless(), &st, &err), 0);
    assert_int_equal(ops->create(st, "a", NULL, &err), 0);
    assert_true(ops->exists(st, "a"));
    assert_int_equal(ops->create(st, "a", NULL, &err), -1);
    berth_error_release(&err);
    assert_int_equal(ops->create(st, "../x", NULL, &err), -1);
    berth_error_release(&err);
    assert_int_equal(ops->create(st, "b", "a", &err), 0);
    assert_int_equal(ops->rename(st, "b", "c", &err), 0);
    assert_false(ops->exists(st, "b"));
    assert_true(ops->exists(st, "c"));
    assert_int_equal(ops->remove(st, "c", &err), 0);
    assert_int_equal(ops->remove(st, "a", &err), 0);
    assert_false(ops->exists(st, "a"));
    assert_int_equal(ops->cleanup(st, &err), 0);
    ops->fini(st);
    tmpdir_remove(home);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
static const struct CMUnitTest tests[] = {
    T(test_apply_and_mount),
    T(test_whiteouts),
    T(test_exact_diff),
    T(test_exact_diff_detects_change),
    T(test_duplicates_keep_record),
    T(test_rw_layer_diff),
    T(test_mount_refcount),
    T(test_deep_chain),
    T(test_same_layer_twice),
    cmocka_unit_test(test_driver_ops),
};

int main(void)
{
    berth_error_t err = NULL;
    if (userns_ensure(&err) < 0) {
        fprintf(stderr, "%s\n", berth_error_msg(err));
        return 1;
    }
    int rc = 0;
    driver_name = "vfs";
    rc |= cmocka_run_group_tests_name("vfs", tests, NULL, NULL);
    driver_name = "overlay";
    rc |= cmocka_run_group_tests_name("overlay", tests, NULL, NULL);
    return rc;
}
