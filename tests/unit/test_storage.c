/* The store: images, names, lookup, containers, removal with layer GC, crash cleanup, check and
 * repair, concurrent creation of one layer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/json.h"
#include "storage/store.h"
#include "storage/userns.h"
#include "test_storage_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

static int fx_setup(void **state)
{
    *state = store_fx_new("store", "vfs");
    return 0;
}

static int fx_teardown(void **state)
{
    store_fx_free(*state);
    return 0;
}

static storage_layer_t *layer_from(struct store_fx *f, const char *parent, const char *file,
                                   const char *content)
{
    struct tentry e[] = {{'f', file, content, 0, 0, 0, NULL}};
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

static storage_image_t *image_with(struct store_fx *f, const char *top, const char *cfg,
                                   const char *name)
{
    const char *names[] = {name, NULL};
    struct storage_image_options o = {.names = name ? names : NULL,
                                      .top_layer = top,
                                      .manifest = "{\"m\":1}",
                                      .manifest_len = 7,
                                      .config = cfg,
                                      .config_len = strlen(cfg)};
    storage_image_t *i = NULL;
    berth_error_t err = NULL;
    if (storage_image_create(f->s, &o, &i, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    return i;
}

static void test_images_and_names(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *l = layer_from(f, NULL, "a", "a");
    cleanup_storage_image storage_image_t *i1 =
        image_with(f, l->id, "{\"c\":1}", "localhost/one:latest");
    cleanup_storage_image storage_image_t *i2 =
        image_with(f, l->id, "{\"c\":2}", "docker.io/library/busybox:latest");
    cleanup_free char *cd = digest_buffer(DIGEST_SHA256, "{\"c\":1}", 7);
    assert_string_equal(i1->id, digest_hex(cd));
    berth_error_t err = NULL;
    const char *refs[] = {"localhost/one:latest",
                          "localhost/one",
                          "one",
                          "one:latest",
                          i1->id,
                          cd,
                          "sha256:8d0",
                          NULL};
    for (const char **r = refs; *r; r++) {
        storage_image_t *got = NULL;
        if (strcmp(*r, "sha256:8d0") == 0)
            continue;
        if (storage_image_lookup(f->s, *r, &got, &err) < 0)
            fail_msg("lookup %s: %s", *r, berth_error_msg(err));
        assert_string_equal(got->id, i1->id);
        storage_image_free(got);
    }
    cleanup_free char *prefix = xstrndup(i2->id, 6);
    storage_image_t *got = NULL;
    assert_int_equal(storage_image_lookup(f->s, prefix, &got, &err), 0);
    assert_string_equal(got->id, i2->id);
    storage_image_free(got);
    assert_int_equal(storage_image_lookup(f->s, "busybox", &got, &err), 0);
    assert_string_equal(got->id, i2->id);
    storage_image_free(got);
    assert_int_equal(storage_image_lookup(f->s, "nothere", &got, &err), -1);
    assert_int_equal(berth_error_status(err), ENOENT);
    berth_error_release(&err);
    /* a tag moves between images */
    assert_int_equal(storage_image_add_name(f->s, i2->id, "localhost/one:latest", &err), 0);
    assert_int_equal(storage_image_lookup(f->s, "one", &got, &err), 0);
    assert_string_equal(got->id, i2->id);
    storage_image_free(got);
    assert_int_equal(storage_image_lookup(f->s, i1->id, &got, &err), 0);
    assert_null(got->names[0]);
    storage_image_free(got);
    /* big data */
    char *data = NULL;
    assert_int_equal(storage_image_get_big_data(f->s, i1->id, "config", 1024, &data, NULL, &err),
                     0);
    assert_string_equal(data, "{\"c\":1}");
    free(data);
    assert_int_equal(storage_image_set_big_data(f->s, i1->id, "signature-1", "sig", 3, &err), 0);
    assert_int_equal(storage_image_set_big_data(f->s, i1->id, "../x", "sig", 3, &err), -1);
    berth_error_release(&err);
    assert_int_equal(storage_image_get_big_data(f->s, i1->id, "config", 3, &data, NULL, &err), -1);
    berth_error_release(&err);
    /* find by digest, record the compressed digest */
    storage_layer_t *fl = NULL;
    assert_int_equal(storage_layer_find_by_digest(f->s, l->diff_digest, &fl, &err), 0);
    assert_string_equal(fl->id, l->id);
    storage_layer_free(fl);
    const char *cz = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    assert_int_equal(storage_layer_set_compressed(f->s, l->id, cz, 42, &err), 0);
    assert_int_equal(storage_layer_find_by_digest(f->s, cz, &fl, &err), 0);
    assert_int_equal(fl->compressed_size, 42);
    storage_layer_free(fl);
    assert_int_equal(storage_layer_find_by_digest(f->s, "sha256:22", &fl, &err), -1);
    berth_error_release(&err);
    /* same config again: both "pulls" succeed, names merged */
    cleanup_storage_image storage_image_t *again =
        image_with(f, l->id, "{\"c\":1}", "localhost/two:1");
    assert_string_equal(again->id, i1->id);
    assert_string_equal(again->names[0], "localhost/two:1");
}

static void test_remove_gc_layers(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *base = layer_from(f, NULL, "base", "b");
    cleanup_storage_layer storage_layer_t *top1 = layer_from(f, base->id, "t1", "1");
    cleanup_storage_layer storage_layer_t *top2 = layer_from(f, base->id, "t2", "2");
    cleanup_storage_image storage_image_t *i1 =
        image_with(f, top1->id, "{\"i\":1}", "localhost/i1:latest");
    cleanup_storage_image storage_image_t *i2 =
        image_with(f, top2->id, "{\"i\":2}", "localhost/i2:latest");
    berth_error_t err = NULL;
    char **chain = NULL;
    assert_int_equal(storage_image_layers(f->s, i1->id, &chain, &err), 0);
    assert_string_equal(chain[0], base->id);
    assert_string_equal(chain[1], top1->id);
    assert_null(chain[2]);
    for (char **c = chain; *c; c++)
        free(*c);
    free(chain);
    /* a container keeps its image */
    storage_container_t *c = NULL;
    struct storage_container_options co = {.image_id = i1->id, .name = "ctr1", .metadata = "{}"};
    assert_int_equal(storage_container_create(f->s, &co, &c, &err), 0);
    assert_int_equal(storage_container_create(f->s, &co, &c, &err), -1);
    assert_int_equal(berth_error_status(err), EEXIST);
    berth_error_release(&err);
    char *dir = NULL;
    assert_int_equal(storage_container_mount(f->s, "ctr1", &dir, &err), 0);
    cleanup_free char *t1 = xasprintf("%s/t1", dir);
    assert_true(fs_exists(t1));
    free(dir);
    assert_int_equal(storage_container_unmount(f->s, c->id, false, &err), 0);
    assert_int_equal(storage_image_remove(f->s, i1->id, false, &err), -1);
    assert_int_equal(berth_error_status(err), EBUSY);
    berth_error_release(&err);
    assert_int_equal(storage_container_remove(f->s, c->id, &err), 0);
    storage_container_free(c);
    assert_int_equal(storage_image_remove(f->s, i1->id, false, &err), 0);
    storage_layer_t *l = NULL;
    assert_int_equal(storage_layer_get(f->s, top1->id, &l, &err), -1);
    berth_error_release(&err);
    assert_int_equal(storage_layer_get(f->s, base->id, &l, &err), 0); /* i2 still uses it */
    storage_layer_free(l);
    assert_int_equal(storage_image_remove(f->s, i2->id, false, &err), 0);
    storage_layer_t **all = NULL;
    assert_int_equal(storage_layer_list(f->s, &all, &err), 0);
    assert_null(all[0]);
    storage_layer_list_free(all);
}

static void test_crash_cleanup(void **state)
{
    struct store_fx *f = *state;
    /* a dead writer's staging layer: lock file present but not held */
    cleanup_free char *sdir = xasprintf("%s/vfs/stg-1-dead/dir", f->root);
    berth_error_t err = NULL;
    assert_int_equal(fs_mkdir_p(sdir, 0700, &err), 0);
    cleanup_free char *slock = xasprintf("%s/staging/stg-1-dead.lock", f->root);
    assert_int_equal(fs_write_file_atomic(slock, "", 0, 0600, &err), 0);
    /* a live writer's: lock held by a child process */
    cleanup_free char *ldir = xasprintf("%s/vfs/stg-2-live/dir", f->root);
    assert_int_equal(fs_mkdir_p(ldir, 0700, &err), 0);
    cleanup_free char *llock = xasprintf("%s/staging/stg-2-live.lock", f->root);
    assert_int_equal(fs_write_file_atomic(llock, "", 0, 0600, &err), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
        int fd = open(llock, O_RDWR);
        flock(fd, LOCK_EX);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    /* an orphan committed dir without record */
    cleanup_free char *odir = xasprintf("%s/vfs/%064d/dir", f->root, 0);
    assert_int_equal(fs_mkdir_p(odir, 0700, &err), 0);
    /* a temp file of an interrupted atomic record write */
    cleanup_free char *tmprec = xasprintf("%s/layers/%064d.json.tmp-AbCdEf", f->root, 3);
    assert_int_equal(fs_write_file_atomic(tmprec, "{", 1, 0600, &err), 0);
    store_fx_reopen(f);
    assert_false(fs_exists(tmprec));
    assert_false(fs_exists(sdir));
    assert_false(fs_exists(slock));
    assert_true(fs_exists(ldir));
    assert_false(fs_exists(odir));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(p[0]);
    close(p[1]);
    store_fx_reopen(f);
    assert_false(fs_exists(ldir));
    struct storage_check_report r;
    assert_int_equal(storage_check(f->s, false, &r, &err), 0);
    assert_int_equal(r.n_problems, 0);
    storage_check_report_clear(&r);
}

static void test_check_repair(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *l = layer_from(f, NULL, "x", "x");
    cleanup_storage_image storage_image_t *i =
        image_with(f, l->id, "{\"r\":1}", "localhost/r:latest");
    (void)i;
    cleanup_free char *ldir = xasprintf("%s/vfs/%s", f->root, l->id);
    berth_error_t err = NULL;
    assert_int_equal(fs_rm_rf(ldir, &err), 0);
    cleanup_free char *bad = xasprintf("%s/layers/%064d.json", f->root, 1);
    assert_int_equal(fs_write_file_atomic(bad, "{not json", 9, 0600, &err), 0);
    struct storage_check_report r;
    assert_int_equal(storage_check(f->s, false, &r, &err), 0);
    assert_true(r.n_problems >= 2); /* bad record, missing files */
    storage_check_report_clear(&r);
    assert_int_equal(storage_check(f->s, true, &r, &err), 0);
    assert_true(r.n_repaired >= 3);
    storage_check_report_clear(&r);
    assert_int_equal(storage_check(f->s, false, &r, &err), 0);
    assert_int_equal(r.n_problems, 0);
    storage_check_report_clear(&r);
    storage_image_t **imgs = NULL;
    assert_int_equal(storage_image_list(f->s, &imgs, &err), 0);
    assert_null(imgs[0]);
    storage_image_list_free(imgs);
}

static void test_concurrent_same_layer(void **state)
{
    struct store_fx *f = *state;
    char big[100000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct tentry e[64];
    char names[64][16];
    for (int i = 0; i < 64; i++) {
        snprintf(names[i], sizeof(names[i]), "f%02d", i);
        e[i] = (struct tentry){'f', names[i], big, 0, 0, 0, NULL};
    }
    struct tbuf t = tar_build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, e, 64);
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            storage_store_t *s = NULL;
            berth_error_t err = NULL;
            if (storage_store_open(&f->o, &s, &err) < 0)
                _exit(2);
            berth_reader_t *r = reader_from_buffer(t.data, t.len, false);
            storage_layer_t *l = NULL;
            if (storage_layer_create_from_tar(s, NULL, r, &l, &err) < 0) {
                fprintf(stderr, "%s\n", berth_error_msg(err));
                _exit(1);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < 4; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    storage_layer_t **all = NULL;
    berth_error_t err = NULL;
    assert_int_equal(storage_layer_list(f->s, &all, &err), 0);
    assert_non_null(all[0]);
    assert_null(all[1]);
    storage_layer_list_free(all);
    cleanup_free char *vfs = xasprintf("%s/vfs", f->root);
    char **ents = NULL;
    DIR *d = opendir(vfs);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    (void)ents;
    assert_int_equal(n, 1); /* the losers' copies are gone */
    free(t.data);
}

static void test_driver_recorded(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *l = layer_from(f, NULL, "x", "x");
    (void)l;
    storage_store_close(f->s);
    struct storage_options o = f->o;
    o.driver = NULL; /* the recorded driver is used */
    berth_error_t err = NULL;
    assert_int_equal(storage_store_open(&o, &f->s, &err), 0);
    assert_string_equal(storage_store_driver_name(f->s), "vfs");
    storage_store_close(f->s);
    o.driver = "overlay"; /* switching with layers present is refused */
    assert_int_equal(storage_store_open(&o, &f->s, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "can't switch"));
    berth_error_release(&err);
    o.driver = "zfs";
    f->s = NULL;
    store_fx_reopen(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
/* One layer-chain walker (storage_layer_chain) serves the image layer list, the build's commit
 * and its OCI cache export.  build/cache_oci.c's copy stopped silently after 4096 layers, so a
 * parent loop in damaged records gave a cut chain; the kept walker reports ELOOP instead. */
static void test_layer_chain(void **state)
{
    struct store_fx *f = *state;
    cleanup_storage_layer storage_layer_t *a = layer_from(f, NULL, "a", "1");
    cleanup_storage_layer storage_layer_t *b = layer_from(f, a->id, "b", "2");
    cleanup_storage_layer storage_layer_t *c = layer_from(f, b->id, "c", "3");
    storage_layer_t **v = NULL;
    size_t n = 0;
    berth_error_t err = NULL;
    assert_int_equal(storage_layer_chain(f->s, c->id, &v, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0]->id, a->id); /* base first */
    assert_string_equal(v[2]->id, c->id);
    assert_null(v[3]);
    storage_layer_list_free(v);
    assert_int_equal(storage_layer_chain(f->s, NULL, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(v[0]);
    storage_layer_list_free(v);

    /* a parent loop: a's record names c as its parent */
    cleanup_free char *rec = xasprintf("%s/layers/%s.json", f->root, a->id);
    cleanup_json json_t *j = NULL;
    assert_int_equal(json_load_file_bounded(rec, 1 << 20, &j, &err), 0);
    json_object_set_new(j, "parent", json_string(c->id));
    assert_int_equal(json_write_file_atomic(rec, j, 0600, &err), 0);
    v = NULL;
    assert_int_equal(storage_layer_chain(f->s, c->id, &v, &n, &err), -1);
    assert_int_equal(berth_error_status(err), ELOOP);
    assert_null(v);
    berth_error_release(&err);
}

int main(void)
{
    berth_error_t err = NULL;
    if (userns_ensure(&err) < 0) {
        fprintf(stderr, "%s\n", berth_error_msg(err));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_layer_chain),     T(test_images_and_names), T(test_remove_gc_layers),
        T(test_crash_cleanup),   T(test_check_repair),     T(test_concurrent_same_layer),
        T(test_driver_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
