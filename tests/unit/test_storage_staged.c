/* Staged layers (overlay): layers applied in parallel threads before their parents exist,
 * committed in order, give the same chain ids and the same mounted view as layers applied one
 * after another; discarding leaves nothing behind; vfs refuses to stage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store.h"
#include "storage/userns.h"
#include "test_storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
    char *top;
    storage_store_t *s;
};

static int open_with(void **state, const char *driver)
{
    struct fx *f = xzalloc(sizeof(*f));
    f->top = tmpdir_new("staged");
    cleanup_free char *root = xasprintf("%s/root", f->top);
    cleanup_free char *run = xasprintf("%s/run", f->top);
    struct storage_options o = {.root = root, .runroot = run, .driver = driver};
    berth_error_t err = NULL;
    if (storage_store_open(&o, &f->s, &err) < 0)
        fail_msg("open: %s", berth_error_msg(err));
    *state = f;
    return 0;
}

static int setup_overlay(void **state)
{
    return open_with(state, "overlay");
}

static int setup_vfs(void **state)
{
    return open_with(state, "vfs");
}

static int teardown(void **state)
{
    struct fx *f = *state;
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
    tmpdir_remove(f->top);
    free(f);
    return 0;
}

/* Three layers: base files, then a whiteout + an opaque dir, then one more file. */
static struct tbuf layer_tar(int i)
{
    static const struct tentry l0[] = {
        {'d', "etc", NULL, 0755, 0, 0, NULL},    {'f', "etc/a", "a0", 0644, 0, 0, NULL},
        {'f', "etc/b", "b0", 0644, 0, 0, NULL},  {'d', "opq", NULL, 0755, 0, 0, NULL},
        {'f', "opq/old", "o", 0644, 0, 0, NULL},
    };
    static const struct tentry l1[] = {
        {'d', "etc", NULL, 0755, 0, 0, NULL},
        {'f', "etc/.wh.a", "", 0644, 0, 0, NULL},
        {'f', "etc/b", "b1", 0644, 0, 0, NULL},
        {'d', "opq", NULL, 0755, 0, 0, NULL},
        {'f', "opq/.wh..wh..opq", "", 0644, 0, 0, NULL},
        {'f', "opq/new", "n", 0644, 0, 0, NULL},
    };
    static const struct tentry l2[] = {
        {'f', "top", "t", 0600, 0, 0, NULL},
    };
    const struct tentry *e[] = {l0, l1, l2};
    size_t n[] = {sizeof(l0) / sizeof(l0[0]), sizeof(l1) / sizeof(l1[0]),
                  sizeof(l2) / sizeof(l2[0])};
    return tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e[i], n[i]);
}

struct job {
    storage_store_t *s;
    struct tbuf t;
    const char *expect; /* expected diff digest or NULL */
    storage_staged_layer_t *sl;
    int rc;
    char msg[256];
};

static void *stage_job(void *arg)
{
    struct job *j = arg;
    berth_reader_t *r = reader_from_buffer(j->t.data, j->t.len, false);
    struct storage_layer_options o = {.compressed_size = -1, .expected_diff_digest = j->expect};
    berth_error_t err = NULL;
    j->rc = storage_layer_stage_from_tar(j->s, &o, r, &j->sl, &err);
    if (j->rc < 0)
        snprintf(j->msg, sizeof(j->msg), "%s", berth_error_msg(err));
    berth_error_release(&err);
    reader_close(r);
    return NULL;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_parallel_then_in_order(void **state)
{
    struct fx *f = *state;
    assert_true(storage_store_can_stage(f->s));
    struct job jobs[3];
    pthread_t th[3];
    /* start with the top layer: staging must not need the parent */
    for (int i = 2; i >= 0; i--) {
        jobs[i] = (struct job){.s = f->s, .t = layer_tar(i)};
        assert_int_equal(pthread_create(&th[i], NULL, stage_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc < 0)
            fail_msg("stage %d: %s", i, jobs[i].msg);
    }
    /* the same layers applied serially on a second store give the reference chain ids */
    char *ids[3] = {NULL};
    const char *parent = NULL;
    for (int i = 0; i < 3; i++) {
        storage_layer_t *l = NULL;
        berth_error_t err = NULL;
        int r = storage_layer_commit_staged(f->s, jobs[i].sl, parent, &l, &err);
        if (r < 0)
            fail_msg("commit %d: %s", i, berth_error_msg(err));
        assert_int_equal(r, 0);
        cleanup_free char *pc = parent ? xasprintf("sha256:%s", parent) : NULL;
        cleanup_free char *chain =
            storage_chain_id(pc, storage_staged_layer_diff_digest(jobs[i].sl));
        assert_string_equal(l->id, digest_hex(chain));
        if (parent)
            assert_string_equal(l->parent, parent);
        assert_true(l->has_tar_split);
        ids[i] = xstrdup(l->id);
        parent = ids[i];
        storage_layer_free(l);
        storage_staged_layer_discard(f->s, jobs[i].sl); /* committed: only frees */
        free(jobs[i].t.data);
    }
    cleanup_free char *dir = NULL;
    berth_error_t err = NULL;
    if (storage_layer_mount(f->s, ids[2], &dir, &err) < 0)
        fail_msg("mount: %s", berth_error_msg(err));
    cleanup_free char *a = xasprintf("%s/etc/a", dir);
    cleanup_free char *b = xasprintf("%s/etc/b", dir);
    cleanup_free char *old = xasprintf("%s/opq/old", dir);
    cleanup_free char *nw = xasprintf("%s/opq/new", dir);
    cleanup_free char *top = xasprintf("%s/top", dir);
    assert_false(fs_exists(a));   /* whiteout from layer 1 */
    assert_false(fs_exists(old)); /* opaque dir from layer 1 */
    assert_true(fs_exists(nw));
    assert_true(fs_exists(top));
    cleanup_free char *bc = file_content(b);
    assert_string_equal(bc, "b1");
    assert_int_equal(storage_layer_unmount(f->s, ids[2], false, &err), 0);
    /* the exact tar comes back from the committed staged layer */
    berth_reader_t *r = NULL;
    if (storage_layer_diff(f->s, ids[1], NULL, &r, &err) < 0)
        fail_msg("diff: %s", berth_error_msg(err));
    struct tbuf t1 = layer_tar(1);
    cleanup_free char *want = digest_buffer(DIGEST_SHA256, t1.data, t1.len);
    cleanup_free char *got = reader_sha256(r, NULL);
    reader_close(r);
    free(t1.data);
    assert_non_null(got);
    assert_string_equal(got, want);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    /* nothing left in staging but (no) lock files */
    cleanup_free char *staging = xasprintf("%s/root/staging", f->top);
    assert_int_equal(count_entries(staging), 0);
}

static void test_discard_and_existing(void **state)
{
    struct fx *f = *state;
    struct job j = {.s = f->s, .t = layer_tar(0)};
    stage_job(&j);
    assert_int_equal(j.rc, 0);
    cleanup_free char *staging = xasprintf("%s/root/staging", f->top);
    cleanup_free char *home = xasprintf("%s/root/overlay", f->top);
    size_t home_before = count_entries(home);
    assert_true(count_entries(staging) > 0);
    storage_staged_layer_discard(f->s, j.sl);
    assert_int_equal(count_entries(staging), 0);
    assert_int_equal(count_entries(home), home_before - 1);

    /* the same layer twice: the second commit finds the first and returns it with 1 */
    struct job k[2] = {{.s = f->s, .t = j.t}, {.s = f->s, .t = j.t}};
    stage_job(&k[0]);
    stage_job(&k[1]);
    assert_int_equal(k[0].rc, 0);
    assert_int_equal(k[1].rc, 0);
    storage_layer_t *l0 = NULL, *l1 = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_layer_commit_staged(f->s, k[0].sl, NULL, &l0, &err), 0);
    assert_int_equal(storage_layer_commit_staged(f->s, k[1].sl, NULL, &l1, &err), 1);
    assert_string_equal(l0->id, l1->id);
    storage_staged_layer_discard(f->s, k[0].sl);
    storage_staged_layer_discard(f->s, k[1].sl);
    storage_layer_free(l0);
    storage_layer_free(l1);
    assert_int_equal(count_entries(staging), 0);
    /* home: empty, l, and one layer */
    assert_int_equal(count_entries(home), home_before);

    /* a wrong expected digest keeps nothing */
    struct job bad = {
        .s = f->s,
        .t = j.t,
        .expect = "sha256:0000000000000000000000000000000000000000000000000000000000000000"};
    stage_job(&bad);
    assert_int_equal(bad.rc, -1);
    assert_non_null(strstr(bad.msg, "expected"));
    assert_int_equal(count_entries(staging), 0);
    assert_int_equal(count_entries(home), home_before);
    free(j.t.data);
}

static void test_vfs_refuses(void **state)
{
    struct fx *f = *state;
    assert_false(storage_store_can_stage(f->s));
    struct job j = {.s = f->s, .t = layer_tar(0)};
    stage_job(&j);
    assert_int_equal(j.rc, -1);
    assert_null(j.sl);
    free(j.t.data);
}

int main(void)
{
    berth_error_t err = NULL;
    if (userns_ensure(&err) < 0) {
        fprintf(stderr, "%s\n", berth_error_msg(err));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parallel_then_in_order, setup_overlay, teardown),
        cmocka_unit_test_setup_teardown(test_discard_and_existing, setup_overlay, teardown),
        cmocka_unit_test_setup_teardown(test_vfs_refuses, setup_vfs, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
