/* Durability of commits: a failed fsync of the directory that an image commit (or a blob write
 * of the oci/dir destinations) renamed into must fail it.  storage_image_create ignored that
 * fsync's result (fs_fsync_dir(..., NULL)) and blob_write_into_dir did not look at it, so an
 * image or blob could be reported as stored while a crash could still lose it.
 *
 * The test defines fsync itself: the executable's definition takes the place of libc's for
 * every call in the statically linked store code, and fails only for the chosen directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store.h"
#include "transport/internal.h"
#include "test_storage_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char fail_dir[PATH_MAX]; /* fsync of this directory fails with EIO; "" = none */
static int failed_syncs;

int fsync(int fd)
{
    if (fail_dir[0]) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, fail_dir) == 0) {
                failed_syncs++;
                errno = EIO;
                return -1;
            }
        }
    }
    return (int)syscall(SYS_fsync, fd);
}

static void test_image_commit_fails_when_its_rename_cannot_be_synced(void **state)
{
    struct store_fx *f = store_fx_new("durability", "vfs");
    char *images = xasprintf("%s/images", f->root);
    if (!realpath(images, fail_dir))
        fail_msg("realpath %s", images);
    struct storage_image_options io = {
        .manifest = "{}", .manifest_len = 2, .config = "{\"a\":1}", .config_len = 7};
    storage_image_t *img = NULL;
    cleanup_error berth_error_t err = NULL;
    int r = storage_image_create(f->s, &io, &img, &err);
    fail_dir[0] = '\0';
    assert_true(failed_syncs > 0);
    assert_int_equal(r, -1);
    assert_null(img);
    assert_non_null(strstr(berth_error_msg(err), "fsync directory"));
    /* once the disk is back, the same commit succeeds */
    berth_error_release(&err);
    if (storage_image_create(f->s, &io, &img, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    storage_image_free(img);
    free(images);
    store_fx_free(f);
}

static void test_blob_write_fails_when_its_rename_cannot_be_synced(void **state)
{
    char *top = tmpdir_new("durability-blob");
    int dirfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dirfd >= 0);
    if (!realpath(top, fail_dir))
        fail_msg("realpath %s", top);
    failed_syncs = 0;
    berth_reader_t *r = reader_from_buffer("hello\n", 6, false);
    char *digest = NULL;
    int64_t size = 0;
    bool created = false;
    cleanup_error berth_error_t err = NULL;
    int rc = blob_write_into_dir(dirfd, r, NULL, -1, &digest, &size, &created, &err);
    fail_dir[0] = '\0';
    reader_close(r);
    assert_true(failed_syncs > 0);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(berth_error_msg(err), "fsync blob directory"));
    free(digest);
    close(dirfd);
    free(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_commit_fails_when_its_rename_cannot_be_synced),
        cmocka_unit_test(test_blob_write_fails_when_its_rename_cannot_be_synced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
