/* User namespace helpers: mappings from /etc/subuid and /etc/subgid, and entering the namespace
 * as an unprivileged user (the test user, when it exists and we are root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/userns.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_mapping_without_ranges(void **state)
{
    struct userns_mapping m;
    berth_error_t err = NULL;
    assert_int_equal(userns_get_mapping("berth-no-such-user", 54321, 54322, &m, &err), 0);
    assert_true(m.single_id);
    assert_int_equal(m.n_uids, 1);
    assert_int_equal(m.uids[0].container, 0);
    assert_int_equal(m.uids[0].host, 54321);
    assert_int_equal(m.uids[0].size, 1);
    assert_int_equal(m.gids[0].host, 54322);
}

static void test_mapping_from_subuid(void **state)
{
    struct passwd *pw = getpwnam("berthtest");
    if (!pw)
        skip();
    struct userns_mapping m;
    berth_error_t err = NULL;
    assert_int_equal(userns_get_mapping(pw->pw_name, pw->pw_uid, pw->pw_gid, &m, &err), 0);
    assert_false(m.single_id);
    assert_true(m.n_uids >= 2);
    assert_int_equal(m.uids[0].host, pw->pw_uid);
    assert_int_equal(m.uids[1].container, 1);
    assert_true(m.uids[1].size >= 1);
    /* by numeric id too */
    struct userns_mapping m2;
    assert_int_equal(userns_get_mapping(NULL, pw->pw_uid, pw->pw_gid, &m2, &err), 0);
    assert_int_equal(m2.uids[1].host, m.uids[1].host);
}

static void test_current_mapping(void **state)
{
    struct userns_mapping m;
    berth_error_t err = NULL;
    assert_int_equal(userns_current_mapping(&m, &err), 0);
    assert_true(m.n_uids >= 1);
    if (geteuid() == 0 && !userns_in_namespace())
        assert_false(userns_is_rootless());
}

/* A child drops to the test user and enters the namespace: uid 0 inside, the subordinate range
 * mapped, and the host uid remembered. */
static void test_enter_as_user(void **state)
{
    struct passwd *pw = getpwnam("berthtest");
    if (!pw || geteuid() != 0 || userns_in_namespace())
        skip();
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
            _exit(10);
        berth_error_t err = NULL;
        if (userns_ensure(&err) < 0) {
            fprintf(stderr, "%s\n", berth_error_msg(err));
            _exit(11);
        }
        if (geteuid() != 0 || !userns_in_namespace() || !userns_is_rootless())
            _exit(12);
        if (userns_host_uid() != pw->pw_uid)
            _exit(13);
        struct userns_mapping m;
        if (userns_current_mapping(&m, &err) < 0 || m.n_uids < 2)
            _exit(14);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A uid without subordinate ranges gets the single-id mapping (with a warning). */
static void test_enter_single_id(void **state)
{
    if (geteuid() != 0 || userns_in_namespace())
        skip();
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(54321, 54321, 54321) < 0 ||
            setresuid(54321, 54321, 54321) < 0)
            _exit(10);
        /* changing uids made us non-dumpable (unlike an exec'd berth): /proc/self/uid_map would
         * belong to root */
        prctl(PR_SET_DUMPABLE, 1);
        berth_error_t err = NULL;
        if (userns_ensure(&err) < 0) {
            fprintf(stderr, "%s\n", berth_error_msg(err));
            _exit(11);
        }
        struct userns_mapping m;
        if (geteuid() != 0 || userns_current_mapping(&m, &err) < 0)
            _exit(12);
        if (!m.single_id || m.uids[0].host != 54321 || userns_host_uid() != 54321)
            _exit(13);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_without_ranges), cmocka_unit_test(test_mapping_from_subuid),
        cmocka_unit_test(test_current_mapping),        cmocka_unit_test(test_enter_as_user),
        cmocka_unit_test(test_enter_single_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
