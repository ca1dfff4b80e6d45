/* Durability of store commits: a failed fsync of the directory that an image commit renamed
 * into must fail the commit.  storage_image_create ignored that fsync's result (fs_fsync_dir(...,
 * NULL)), so an image could be reported as stored while a crash could still lose it.
 *
 * The test defines fsync itself: the executable's definition takes the place of libc's for
 * every call in the statically linked store code, and fails only for the chosen directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store.h"
#include "test_storage_util.h"

#include <errno.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_commit_fails_when_its_rename_cannot_be_synced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
