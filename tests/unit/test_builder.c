/* Unit tests for the builder's helpers: context path cleaning, cache keys and entries, the file
 * digest memo, and COPY plans over a small context (wildcards, ignore files, escapes). */
#include "build/build_internal.h"
#include "build/ignore.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char *tmpdir_new(void)
{
    char *t = xstrdup("/tmp/berth-test-builder-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void rm_tree(const char *p)
{
    berth_error_t e = NULL;
    IGNORE_RESULT(fs_rm_rf(p, &e));
    berth_error_release(&e);
}

static void write_file(const char *dir, const char *name, const char *content)
{
    cleanup_free char *p = fs_join(dir, name);
    cleanup_free char *d = xstrdup(p);
    *strrchr(d, '/') = 0;
    berth_error_t e = NULL;
    assert_int_equal(fs_mkdir_p(d, 0755, &e), 0);
    assert_int_equal(fs_write_file_atomic(p, content, strlen(content), 0644, &e), 0);
}

static void test_clean_inside(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: escape error */
    } cases[] = {
        {"a/b", "a/b"},       {"./a/./b/", "a/b"}, {"a/../b", "b"},
        {"/abs/x", "abs/x"},  {".", ""},           {"", ""},
        {"a/b/../../c", "c"}, {"..", NULL},        {"../x", NULL},
        {"a/../../x", NULL},  {"/../x", NULL},     {"a//b", "a/b"},
        {"a/b/c/../..", "a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        berth_error_t err = NULL;
        int r = copy_clean_inside(cases[i].in, &out, &err);
        if (cases[i].out) {
            assert_int_equal(r, 0);
            assert_string_equal(out, cases[i].out);
            free(out);
        } else {
            assert_true(r < 0);
            assert_non_null(strstr(berth_error_msg(err), "outside the build context"));
            berth_error_release(&err);
        }
    }
}

static void test_cache_keys(void **state)
{
    (void)state;
    cleanup_free char *a = bld_cache_key(NULL, "FROM x", NULL);
    cleanup_free char *b = bld_cache_key(NULL, "FROM x", NULL);
    cleanup_free char *c = bld_cache_key(a, "RUN true", "in");
    cleanup_free char *d = bld_cache_key(a, "RUN true", "in2");
    cleanup_free char *e = bld_cache_key(b, "RUN true", "in");
    assert_string_equal(a, b);
    assert_string_equal(c, e);
    assert_string_not_equal(c, d);
    assert_int_equal(strlen(a), 64);
    /* the text and the inputs can't be confused by moving bytes between them */
    cleanup_free char *f = bld_cache_key(a, "RUN true\nin", "");
    assert_string_not_equal(c, f);

    cleanup_free char *dir = tmpdir_new();
    berth_error_t err = NULL;
    bool found = true;
    char *layer = NULL;
    assert_int_equal(bld_cache_lookup(dir, c, &found, &layer, &err), 0);
    assert_false(found);
    assert_int_equal(bld_cache_store(dir, c, "abc", &err), 0);
    assert_int_equal(bld_cache_store(dir, d, NULL, &err), 0);
    assert_int_equal(bld_cache_lookup(dir, c, &found, &layer, &err), 0);
    assert_true(found);
    assert_string_equal(layer, "abc");
    free(layer);
    assert_int_equal(bld_cache_lookup(dir, d, &found, &layer, &err), 0);
    assert_true(found);
    assert_null(layer);
    /* keys are never paths */
    assert_true(bld_cache_store(dir, "../../etc/x", NULL, &err) < 0);
    berth_error_release(&err);
    assert_true(bld_cache_lookup(dir, "../x", &found, &layer, &err) < 0);
    berth_error_release(&err);
    rm_tree(dir);
}

static void test_memo(void **state)
{
    (void)state;
    cleanup_free char *dir = tmpdir_new();
    write_file(dir, "f", "hello\n");
    cleanup_free char *p = fs_join(dir, "f");
    berth_error_t err = NULL;
    struct bld_memo *m = bld_memo_open(dir);
    cleanup_close int fd = open(p, O_RDONLY);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *d1 = NULL;
    assert_int_equal(bld_memo_file_digest(m, fd, &st, &d1, &err), 0);
    assert_string_equal(d1,
                        "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    bld_memo_close(m);
    /* a second memo answers from the file without reading: prove it with a lying stat of the
     * same identity and a closed-then-reused descriptor pointing at other content */
    m = bld_memo_open(dir);
    write_file(dir, "g", "other\n");
    cleanup_free char *g = fs_join(dir, "g");
    cleanup_close int gfd = open(g, O_RDONLY);
    char *d2 = NULL;
    assert_int_equal(bld_memo_file_digest(m, gfd, &st, &d2, &err), 0);
    assert_string_equal(d1, d2);
    /* a changed identity (ctime) is hashed again */
    struct stat st2 = st;
    st2.st_ctim.tv_nsec ^= 1;
    char *d3 = NULL;
    assert_int_equal(bld_memo_file_digest(m, gfd, &st2, &d3, &err), 0);
    assert_string_not_equal(d1, d3);
    bld_memo_close(m);
    free(d1);
    free(d2);
    free(d3);
    rm_tree(dir);
}

static void test_copy_plan(void **state)
{
    (void)state;
    cleanup_free char *dir = tmpdir_new();
    write_file(dir, "a.txt", "a");
    write_file(dir, "b.txt", "b");
    write_file(dir, "c.log", "c");
    write_file(dir, "sub/x", "x");
    write_file(dir, "sub/y.log", "y");
    cleanup_free char *link = fs_join(dir, "shadow");
    assert_int_equal(symlink("/etc/shadow", link), 0);
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY);
    berth_error_t err = NULL;
    struct ignore *ign = NULL;
    const char *pats[] = {"*.log", "!sub/y.log"};
    assert_int_equal(ignore_new(pats, 2, &ign, &err), 0);
    struct copy_source src = {.fd = fd, .ign = ign, .is_context = true};

    /* wildcards expand in order; ignored files drop out */
    struct copy_plan p = {.tmp_dir_fd = -1};
    char *w[] = {(char *)"*.txt", (char *)"*.log", NULL};
    assert_int_equal(copy_plan_make(&src, w, 1, "/dst/", false, NULL, NULL, &p, &err), 0);
    assert_int_equal(p.nitems, 2);
    copy_plan_clear(&p);
    /* everything *.log matches is excluded: buildah's "no items matching" */
    assert_true(copy_plan_make(&src, w + 1, 1, "/dst/", false, NULL, NULL, &p, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "no items matching"));
    berth_error_release(&err);
    copy_plan_clear(&p);
    /* a wildcard matching nothing is skipped beside sources that match; alone it fails */
    char *wm[] = {(char *)"a.txt", (char *)"missing*", NULL};
    assert_int_equal(copy_plan_make(&src, wm, 2, "/dst/", false, NULL, NULL, &p, &err), 0);
    assert_int_equal(p.nitems, 1);
    copy_plan_clear(&p);
    assert_true(copy_plan_make(&src, wm + 1, 1, "/dst/", false, NULL, NULL, &p, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "no source files"));
    berth_error_release(&err);
    copy_plan_clear(&p);
    /* a missing name without a wildcard is an error even beside others */
    char *wn[] = {(char *)"a.txt", (char *)"missing", NULL};
    assert_true(copy_plan_make(&src, wn, 2, "/dst/", false, NULL, NULL, &p, &err) < 0);
    berth_error_release(&err);
    copy_plan_clear(&p);

    /* a directory: its contents, with the exception re-included */
    char *s[] = {(char *)"sub", NULL};
    assert_int_equal(copy_plan_make(&src, s, 1, "/d", false, NULL, NULL, &p, &err), 0);
    assert_int_equal(p.nitems, 2);
    cleanup_digester digester_t *d1 = digester_new(DIGEST_SHA256);
    assert_int_equal(copy_plan_digest(&p, NULL, d1, &err), 0);
    cleanup_free char *k1 = digester_finish(d1);
    copy_plan_clear(&p);
    /* the same inputs digest the same; changed content differs */
    write_file(dir, "sub/x", "changed");
    assert_int_equal(copy_plan_make(&src, s, 1, "/d", false, NULL, NULL, &p, &err), 0);
    cleanup_digester digester_t *d2 = digester_new(DIGEST_SHA256);
    assert_int_equal(copy_plan_digest(&p, NULL, d2, &err), 0);
    cleanup_free char *k2 = digester_finish(d2);
    assert_string_not_equal(k1, k2);
    copy_plan_clear(&p);

    /* escapes */
    char *esc[] = {(char *)"../x", NULL};
    assert_true(copy_plan_make(&src, esc, 1, "/d", false, NULL, NULL, &p, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "outside the build context"));
    berth_error_release(&err);
    copy_plan_clear(&p);
    char *sh[] = {(char *)"shadow", NULL};
    assert_true(copy_plan_make(&src, sh, 1, "/d", false, NULL, NULL, &p, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "not found in build context"));
    berth_error_release(&err);
    copy_plan_clear(&p);
    /* several sources need a directory destination */
    char *two[] = {(char *)"a.txt", (char *)"b.txt", NULL};
    assert_true(copy_plan_make(&src, two, 2, "/file", false, NULL, NULL, &p, &err) < 0);
    berth_error_release(&err);
    copy_plan_clear(&p);
    ignore_free(ign);
    rm_tree(dir);
}

/* Lists a tar stream as "name type mode uid gid size mtime [-> link]" lines. */
static char *list_tar(berth_reader_t *r)
{
    char *data = NULL;
    size_t len = 0;
    berth_error_t err = NULL;
    assert_int_equal(reader_read_all(r, 64 << 20, &data, &len, &err), 0);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, data, len), ARCHIVE_OK);
    char *out = xstrdup("");
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *l = archive_entry_symlink(e);
        char *n = xasprintf("%s%s %o %u %u %lld %lld%s%s\n", out, archive_entry_pathname(e),
                            (unsigned)archive_entry_mode(e), (unsigned)archive_entry_uid(e),
                            (unsigned)archive_entry_gid(e), (long long)archive_entry_size(e),
                            (long long)archive_entry_mtime(e), l ? " -> " : "", l ? l : "");
        free(out);
        out = n;
    }
    archive_read_free(a);
    free(data);
    return out;
}

static void test_layer_tar(void **state)
{
    (void)state;
    cleanup_free char *ctx = tmpdir_new();
    cleanup_free char *parent = tmpdir_new();
    write_file(ctx, "dir/a", "aaa");
    write_file(ctx, "dir/sub/b", "bb");
    cleanup_free char *l = fs_join(ctx, "dir/link");
    assert_int_equal(symlink("sub/b", l), 0);
    /* the parent rootfs: /usr/lib exists, /lib is a symlink to it */
    cleanup_free char *ul = fs_join(parent, "usr/lib");
    berth_error_t err = NULL;
    assert_int_equal(fs_mkdir_p(ul, 0750, &err), 0);
    cleanup_free char *lib = fs_join(parent, "lib");
    assert_int_equal(symlink("usr/lib", lib), 0);
    cleanup_close int cfd = open(ctx, O_RDONLY | O_DIRECTORY);
    cleanup_close int pfd = open(parent, O_RDONLY | O_DIRECTORY);
    struct copy_source src = {.fd = cfd, .is_context = true};

    /* a directory into /lib/x (through the parent's symlink), clamped to 100 */
    struct copy_plan p = {.tmp_dir_fd = -1};
    char *s1[] = {(char *)"dir", NULL};
    assert_int_equal(copy_plan_make(&src, s1, 1, "/lib/x", false, NULL, NULL, &p, &err), 0);
    struct copy_owner own = {.chmod = -1, .reset_owner = true};
    berth_reader_t *r = NULL;
    assert_int_equal(copy_plan_layer(&p, pfd, &own, 100, &r, &err), 0);
    cleanup_free char *t1 = list_tar(r);
    reader_close(r);
    /* ancestors: usr and usr/lib as in the parent (0750 for lib), x created 0755 root */
    assert_non_null(strstr(t1, "usr/ 40750 "));
    assert_non_null(strstr(t1, "usr/lib/ 40750 "));
    assert_non_null(strstr(t1, "usr/lib/x/ 40755 0 0 0 100\n"));
    assert_non_null(strstr(t1, "usr/lib/x/a 100644 0 0 3 100\n"));
    assert_non_null(strstr(t1, "usr/lib/x/sub/b 100644 0 0 2 100\n"));
    assert_non_null(strstr(t1, "usr/lib/x/link 120777 0 0 0 100 -> sub/b\n"));
    assert_null(strstr(t1, "\nlib"));
    /* the same inputs give the same bytes */
    berth_reader_t *r2 = NULL, *r3 = NULL;
    assert_int_equal(copy_plan_layer(&p, pfd, &own, 100, &r2, &err), 0);
    assert_int_equal(copy_plan_layer(&p, pfd, &own, 100, &r3, &err), 0);
    char *b2 = NULL, *b3 = NULL;
    size_t n2 = 0, n3 = 0;
    assert_int_equal(reader_read_all(r2, 1 << 20, &b2, &n2, &err), 0);
    assert_int_equal(reader_read_all(r3, 1 << 20, &b3, &n3, &err), 0);
    assert_int_equal(n2, n3);
    assert_memory_equal(b2, b3, n2);
    free(b2);
    free(b3);
    reader_close(r2);
    reader_close(r3);
    copy_plan_clear(&p);

    /* a file with --chown/--chmod into a new directory of a scratch image */
    char *s2[] = {(char *)"dir/a", NULL};
    assert_int_equal(copy_plan_make(&src, s2, 1, "/new/dir/", false, NULL, NULL, &p, &err), 0);
    struct copy_owner own2 = {.set = true, .uid = 7, .gid = 8, .chmod = 0600, .reset_owner = true};
    assert_int_equal(copy_plan_layer(&p, -1, &own2, 0, &r, &err), 0);
    cleanup_free char *t2 = list_tar(r);
    reader_close(r);
    assert_string_equal(t2, "new/ 40755 0 0 0 0\nnew/dir/ 40755 7 8 0 0\n"
                            "new/dir/a 100600 7 8 3 0\n");
    copy_plan_clear(&p);

    /* overlapping sources (a file named alone and inside the context root): each path once,
     * or the layer's tar could not be reproduced from its files (issue 11 item 2) */
    char *s3[] = {(char *)"dir/a", (char *)"dir", (char *)"dir/a", NULL};
    assert_int_equal(copy_plan_make(&src, s3, 3, "/o/", false, NULL, NULL, &p, &err), 0);
    assert_int_equal(copy_plan_layer(&p, -1, &own, 0, &r, &err), 0);
    cleanup_free char *t3 = list_tar(r);
    reader_close(r);
    assert_string_equal(t3, "o/ 40755 0 0 0 0\no/link 120777 0 0 0 0 -> sub/b\n"
                            "o/sub/ 40755 0 0 0 0\no/sub/b 100644 0 0 2 0\no/a 100644 0 0 3 0\n");
    copy_plan_clear(&p);
    rm_tree(ctx);
    rm_tree(parent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_inside), cmocka_unit_test(test_cache_keys),
        cmocka_unit_test(test_memo),         cmocka_unit_test(test_copy_plan),
        cmocka_unit_test(test_layer_tar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
