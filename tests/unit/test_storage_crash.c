/* Crash safety of the store, against overlay and vfs: a layer removal killed at any moment
 * never leaves a record whose files are partly deleted; a removal interrupted after its first
 * step is finished by the next open; `check` flags records whose files are incomplete; an
 * interrupted overlay probe and stray staging files are cleaned at open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store.h"
#include "storage/userns.h"
#include "common/strutil.h"
#include "test_storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *driver_name = "vfs";

static int fx_setup(void **state)
{
    *state = store_fx_new("crash", driver_name);
    return 0;
}

static int fx_teardown(void **state)
{
    store_fx_free(*state);
    return 0;
}

#define NFILES 600

/* A layer of NFILES small files (with content `tag`) on `parent`. */
static storage_layer_t *big_layer(struct store_fx *f, const char *parent, const char *tag)
{
    struct tentry *e = xcalloc(NFILES + 1, sizeof(*e));
    char **names = xcalloc(NFILES, sizeof(char *));
    e[0] = (struct tentry){'d', "d", NULL, 0, 0, 0, NULL};
    for (size_t i = 0; i < NFILES; i++) {
        names[i] = xasprintf("d/f%05zu", i);
        e[i + 1] = (struct tentry){'f', names[i], tag, 0, 0, 0, NULL};
    }
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, NFILES + 1);
    berth_reader_t *r = reader_from_buffer(t.data, t.len, false);
    struct storage_layer_options o = {.parent = parent, .compressed_size = -1};
    storage_layer_t *l = NULL;
    berth_error_t err = NULL;
    if (storage_layer_create_from_tar(f->s, &o, r, &l, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    reader_close(r);
    free(t.data);
    for (size_t i = 0; i < NFILES; i++)
        free(names[i]);
    free(names);
    free(e);
    return l;
}

static char *layer_files_dir(struct store_fx *f, const char *id)
{
    if (strcmp(driver_name, "overlay") == 0)
        return xasprintf("%s/overlay/%s/diff/d", f->root, id);
    return xasprintf("%s/vfs/%s/dir/d", f->root, id);
}

static char *layer_top_dir(struct store_fx *f, const char *id)
{
    return xasprintf("%s/%s/%s", f->root, driver_name, id);
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static bool layer_recorded(struct store_fx *f, const char *id)
{
    storage_layer_t *l = NULL;
    berth_error_t err = NULL;
    int r = storage_layer_get(f->s, id, &l, &err);
    storage_layer_free(l);
    berth_error_release(&err);
    return r == 0;
}

static void assert_check_clean(struct store_fx *f)
{
    struct storage_check_report r;
    berth_error_t err = NULL;
    assert_int_equal(storage_check(f->s, false, &r, &err), 0);
    for (size_t i = 0; i < r.n_problems; i++)
        fprintf(stderr, "problem: %s\n", r.problems[i]);
    assert_int_equal(r.n_problems, 0);
    storage_check_report_clear(&r);
}

/* A removal killed at many moments: afterwards the layer either is still recorded with all of its
 * files, or is gone entirely (record and, after the next open, its directory). */
static void test_kill_during_remove(void **state)
{
    struct store_fx *f = *state;
    int partial_seen = 0, gone = 0;
    for (int round = 0; round < 8; round++) {
        cleanup_storage_layer storage_layer_t *l = big_layer(f, NULL, "x");
        pid_t child = fork();
        if (child == 0) {
            storage_store_t *s = NULL;
            berth_error_t err = NULL;
            if (storage_store_open(&f->o, &s, &err) < 0)
                _exit(2);
            _exit(storage_layer_remove(s, l->id, &err) < 0 ? 1 : 0);
        }
        struct timespec ts = {0, 1000000L + round * 1000000L};
        nanosleep(&ts, NULL);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        cleanup_free char *files = layer_files_dir(f, l->id);
        cleanup_free char *top = layer_top_dir(f, l->id);
        size_t n_before = count_entries(files);
        if (n_before > 0 && n_before < NFILES)
            partial_seen++;
        store_fx_reopen(f);
        if (layer_recorded(f, l->id)) {
            assert_int_equal(count_entries(files), NFILES);
        } else {
            assert_false(fs_exists(top));
            gone++;
        }
        assert_check_clean(f);
        if (layer_recorded(f, l->id)) {
            berth_error_t err = NULL;
            assert_int_equal(storage_layer_remove(f->s, l->id, &err), 0);
        }
    }
    fprintf(stderr, "%s: %d of 8 removals interrupted midway, %d finished or cleaned\n",
            driver_name, partial_seen, gone);
}

/* A removal that died right after its first step, while deleting files: the record is gone and
 * the next open removes the rest (and overlay's short-name link). */
static void test_remove_interrupted_after_record(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *base = big_layer(f, NULL, "a");
    cleanup_storage_layer storage_layer_t *top = big_layer(f, base->id, "b");
    berth_error_t err = NULL;
    assert_int_equal(storage_store_lock(f->s, true, &err), 0);
    assert_int_equal(storage_layer_remove_record_step(f->s, top->id, &err), 0);
    storage_store_unlock(f->s);
    /* the crash: part of the files and the link file already deleted */
    cleanup_free char *files = layer_files_dir(f, top->id);
    for (int i = 0; i < NFILES / 2; i++) {
        cleanup_free char *p = xasprintf("%s/f%05d", files, i);
        assert_int_equal(unlink(p), 0);
    }
    cleanup_free char *link_name = NULL;
    if (strcmp(driver_name, "overlay") == 0) {
        cleanup_free char *lf = xasprintf("%s/overlay/%s/link", f->root, top->id);
        size_t len = 0;
        assert_int_equal(fs_read_file(lf, 64, &link_name, &len, &err), 0);
        assert_int_equal(unlink(lf), 0);
    }
    assert_false(layer_recorded(f, top->id));
    store_fx_reopen(f);
    cleanup_free char *topdir = layer_top_dir(f, top->id);
    assert_false(fs_exists(topdir));
    if (link_name) {
        cleanup_free char *lp = xasprintf("%s/overlay/l/%s", f->root, link_name);
        struct stat st;
        assert_int_not_equal(lstat(lp, &st), 0);
    }
    assert_true(layer_recorded(f, base->id));
    cleanup_free char *bfiles = layer_files_dir(f, base->id);
    assert_int_equal(count_entries(bfiles), NFILES);
    assert_check_clean(f);
    /* the layer can be created again and used */
    cleanup_storage_layer storage_layer_t *again = big_layer(f, base->id, "b");
    assert_string_equal(again->id, top->id);
    char *dir = NULL;
    assert_int_equal(storage_layer_mount(f->s, again->id, &dir, &err), 0);
    free(dir);
    assert_int_equal(storage_layer_unmount(f->s, again->id, true, &err), 0);
}

/* A record whose directory is missing its essential parts (what the old removal order left) is
 * reported by check and removed by repair. */
static void test_check_incomplete_layer(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *l = big_layer(f, NULL, "c");
    berth_error_t err = NULL;
    if (strcmp(driver_name, "overlay") == 0) {
        cleanup_free char *lf = xasprintf("%s/overlay/%s/link", f->root, l->id);
        assert_int_equal(unlink(lf), 0);
    } else {
        cleanup_free char *d = xasprintf("%s/vfs/%s/dir", f->root, l->id);
        assert_int_equal(fs_rm_rf(d, &err), 0);
    }
    struct storage_check_report r;
    assert_int_equal(storage_check(f->s, false, &r, &err), 0);
    assert_int_equal(r.n_problems, 1);
    assert_non_null(strstr(r.problems[0], "incomplete"));
    storage_check_report_clear(&r);
    assert_int_equal(storage_check(f->s, true, &r, &err), 0);
    assert_int_equal(r.n_repaired, 1);
    storage_check_report_clear(&r);
    assert_false(layer_recorded(f, l->id));
    cleanup_free char *top = layer_top_dir(f, l->id);
    assert_false(fs_exists(top));
    assert_check_clean(f);
}

/* Committing a layer whose record exists but whose files are incomplete replaces the files. */
static void test_recreate_incomplete_layer(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *l = big_layer(f, NULL, "e");
    berth_error_t err = NULL;
    cleanup_free char *files = layer_files_dir(f, l->id);
    for (int i = 0; i < NFILES / 2; i++) {
        cleanup_free char *p = xasprintf("%s/f%05d", files, i);
        assert_int_equal(unlink(p), 0);
    }
    if (strcmp(driver_name, "overlay") == 0) {
        cleanup_free char *lf = xasprintf("%s/overlay/%s/link", f->root, l->id);
        assert_int_equal(unlink(lf), 0);
    } else {
        cleanup_free char *d = xasprintf("%s/vfs/%s/dir", f->root, l->id);
        assert_int_equal(fs_rm_rf(d, &err), 0);
    }
    cleanup_storage_layer storage_layer_t *again = big_layer(f, NULL, "e");
    assert_string_equal(again->id, l->id);
    assert_int_equal(count_entries(files), NFILES);
    assert_check_clean(f);
    char *dir = NULL;
    assert_int_equal(storage_layer_mount(f->s, again->id, &dir, &err), 0);
    free(dir);
    assert_int_equal(storage_layer_unmount(f->s, again->id, true, &err), 0);
}

/* A probe directory of a killed overlay probe (no driver recorded yet) is removed at open. */
static void test_probe_leftover(void **state)
{
    struct store_fx *f = *state;
    cleanup_free char *root2 = xasprintf("%s/fresh", f->top);
    cleanup_free char *run2 = xasprintf("%s/fresh-run", f->top);
    cleanup_free char *probe = xasprintf("%s/overlay/probe-%d", root2, 999999);
    const char *subs[] = {"lower", "upper", "work", "merged"};
    berth_error_t err = NULL;
    for (size_t i = 0; i < 4; i++) {
        cleanup_free char *p = xasprintf("%s/%s", probe, subs[i]);
        assert_int_equal(fs_mkdir_p(p, 0755, &err), 0);
    }
    cleanup_free char *lf = xasprintf("%s/lower/f", probe);
    assert_int_equal(fs_write_file_atomic(lf, "x", 1, 0644, &err), 0);
    struct storage_options o = {.root = root2, .runroot = run2, .driver = NULL};
    storage_store_t *s = NULL;
    if (storage_store_open(&o, &s, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    assert_false(fs_exists(probe));
    storage_store_close(s);
    /* and again once the store exists (the driver is recorded) */
    for (size_t i = 0; i < 4; i++) {
        cleanup_free char *p = xasprintf("%s/%s", probe, subs[i]);
        assert_int_equal(fs_mkdir_p(p, 0755, &err), 0);
    }
    if (storage_store_open(&o, &s, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    assert_false(fs_exists(probe));
    storage_store_close(s);
}

static storage_layer_t *small_layer(struct store_fx *f, const char *parent, const char *content)
{
    struct tentry e[] = {{'f', "f", content, 0, 0, 0, NULL}};
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, 1);
    berth_reader_t *r = reader_from_buffer(t.data, t.len, false);
    struct storage_layer_options o = {.parent = parent, .compressed_size = -1};
    storage_layer_t *l = NULL;
    berth_error_t err = NULL;
    if (storage_layer_create_from_tar(f->s, &o, r, &l, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    reader_close(r);
    free(t.data);
    return l;
}

static size_t prune(struct store_fx *f, int64_t min_age)
{
    char **removed = NULL;
    berth_error_t err = NULL;
    if (storage_layer_prune(f->s, min_age, &removed, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    size_t n = 0;
    while (removed[n])
        n++;
    strv_free(removed);
    return n;
}

/* Layers no image or container uses (a killed pull's) are pruned, children before parents;
 * used ones stay; while another handle that creates layers is open, young ones stay. */
static void test_prune_dangling_layers(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *base = small_layer(f, NULL, "base");
    cleanup_storage_layer storage_layer_t *top = small_layer(f, base->id, "top");
    const char *names[] = {"localhost/keep:1", NULL};
    struct storage_image_options io = {.names = names,
                                       .top_layer = top->id,
                                       .manifest = "{}",
                                       .manifest_len = 2,
                                       .config = "{}",
                                       .config_len = 2};
    storage_image_t *img = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_image_create(f->s, &io, &img, &err), 0);
    cleanup_free char *img_id = xstrdup(img->id);
    storage_image_free(img);
    /* a killed pull's chain on the shared base, and one of its own */
    cleanup_storage_layer storage_layer_t *d1 = small_layer(f, base->id, "d1");
    cleanup_storage_layer storage_layer_t *d2 = small_layer(f, d1->id, "d2");
    cleanup_storage_layer storage_layer_t *d3 = small_layer(f, NULL, "d3");
    /* a container's read-write layer stays too */
    struct storage_container_options co = {.name = "c1", .image_id = img_id};
    storage_container_t *ctr = NULL;
    if (storage_container_create(f->s, &co, &ctr, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    storage_container_free(ctr);
    store_fx_reopen(f); /* this handle created layers: a fresh one holds no writer lease */
    /* a live writer (another process that staged or reused layers) keeps young layers */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
        /* a failed assertion in the parent must not leave us holding ctest's output pipe */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        storage_store_t *s = NULL;
        berth_error_t e = NULL;
        storage_layer_t *l = NULL;
        if (storage_store_open(&f->o, &s, &e) < 0)
            _exit(2);
        IGNORE_RESULT(
            storage_layer_find_by_digest(s,
                                         "sha256:0000000000000000000000000000000000000000000000"
                                         "000000000000000000",
                                         &l, &e));
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    /* our copy of the write end closed first: a child that dies before writing gives EOF (a
     * failed assertion) instead of a read that blocks until ctest's timeout */
    close(p[1]);
    char c;
    ssize_t got = read(p[0], &c, 1);
    close(p[0]);
    if (got != 1) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        fail_msg("the writer child died before taking its lease");
    }
    assert_int_equal(prune(f, 600), 0);
    assert_true(layer_recorded(f, d2->id));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* no writer: every dangling layer goes, used ones stay */
    assert_int_equal(prune(f, 600), 3);
    assert_false(layer_recorded(f, d1->id));
    assert_false(layer_recorded(f, d2->id));
    assert_false(layer_recorded(f, d3->id));
    cleanup_free char *d3dir = layer_top_dir(f, d3->id);
    assert_false(fs_exists(d3dir));
    assert_true(layer_recorded(f, base->id));
    assert_true(layer_recorded(f, top->id));
    assert_int_equal(prune(f, 600), 0);
    assert_check_clean(f);
    /* the image still mounts */
    char *dir = NULL;
    assert_int_equal(storage_layer_mount(f->s, top->id, &dir, &err), 0);
    free(dir);
    assert_int_equal(storage_layer_unmount(f->s, top->id, true, &err), 0);
}

/* Staging files whose writer is gone are removed at open, a live writer's stay. */
static void test_staging_strays(void **state)
{
    struct store_fx *f = *state;
    berth_error_t err = NULL;
    cleanup_free char *split = xasprintf("%s/staging/stg-1-aa.tar-split.gz", f->root);
    cleanup_free char *splittmp = xasprintf("%s/staging/stg-1-bb.tar-split.gz.tmp", f->root);
    /* a .lock.new is stale only when its writer (pid in the name) is gone: a live writer's is
     * unlocked between its creation and its flock */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    cleanup_free char *lnew = xasprintf("%s/staging/stg-%d-cc.lock.new", f->root, (int)dead);
    cleanup_free char *live_new =
        xasprintf("%s/staging/stg-%d-ee.lock.new", f->root, (int)getpid());
    cleanup_free char *live_lock = xasprintf("%s/staging/stg-3-dd.lock", f->root);
    cleanup_free char *live_split = xasprintf("%s/staging/stg-3-dd.tar-split.gz", f->root);
    assert_int_equal(fs_write_file_atomic(split, "x", 1, 0600, &err), 0);
    assert_int_equal(fs_write_file_atomic(splittmp, "x", 1, 0600, &err), 0);
    assert_int_equal(fs_write_file_atomic(lnew, "", 0, 0600, &err), 0);
    assert_int_equal(fs_write_file_atomic(live_new, "", 0, 0600, &err), 0);
    assert_int_equal(fs_write_file_atomic(live_lock, "", 0, 0600, &err), 0);
    assert_int_equal(fs_write_file_atomic(live_split, "x", 1, 0600, &err), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* as above */
        int fd = open(live_lock, O_RDWR);
        flock(fd, LOCK_EX);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(p[1]); /* as above: EOF, not a hang, if the child dies first */
    char c;
    ssize_t got = read(p[0], &c, 1);
    close(p[0]);
    if (got != 1) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        fail_msg("the lock-holding child died before locking");
    }
    store_fx_reopen(f);
    assert_false(fs_exists(split));
    assert_false(fs_exists(splittmp));
    assert_false(fs_exists(lnew));
    assert_true(fs_exists(live_new));
    assert_true(fs_exists(live_lock));
    assert_true(fs_exists(live_split));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    store_fx_reopen(f);
    assert_false(fs_exists(live_lock));
    assert_false(fs_exists(live_split));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
int main(void)
{
    berth_error_t err = NULL;
    if (userns_ensure(&err) < 0) {
        fprintf(stderr, "%s\n", berth_error_msg(err));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_kill_during_remove),        T(test_remove_interrupted_after_record),
        T(test_check_incomplete_layer),    T(test_probe_leftover),
        T(test_prune_dangling_layers),     T(test_staging_strays),
        T(test_recreate_incomplete_layer),
    };
    int rc = cmocka_run_group_tests_name("vfs", tests, NULL, NULL);
    char *why = NULL;
    cleanup_free char *home = tmpdir_new("probe");
    bool ok = storage_overlay_probe(home, userns_is_rootless(), &why);
    tmpdir_remove(xstrdup(home));
    if (!ok) {
        fprintf(stderr, "overlay not usable here (%s): overlay cases skipped\n", why);
        free(why);
        return rc;
    }
    driver_name = "overlay";
    rc |= cmocka_run_group_tests_name("overlay", tests, NULL, NULL);
    return rc;
}
