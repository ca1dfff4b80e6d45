/* Unit tests for common/proc (process start times) and image_time_format, the one time
 * formatter that run/, run/net/ and build/ share (each had a copy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/imagespec.h"
#include "common/proc.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_start_time_self(void **state)
{
    bool alive = false;
    unsigned long long t = proc_start_time(getpid(), &alive);
    assert_true(alive);
    assert_true(t > 0);
    assert_true(proc_start_time(getpid(), NULL) == t); /* stable: it names this process */
}

/* A zombie is gone: a killed owner stays one until it is reaped, and must not count as alive. */
static void test_start_time_zombie_and_gone(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    /* wait until the child is a zombie (WNOWAIT keeps it one) */
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    bool alive = true;
    assert_true(proc_start_time(pid, &alive) == 0);
    assert_false(alive);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    alive = true;
    assert_true(proc_start_time(pid, &alive) == 0);
    assert_false(alive);
    assert_true(proc_start_time(-1, NULL) == 0);
}

static void test_time_format(void **state)
{
    cleanup_free char *epoch = image_time_format(0);
    assert_string_equal(epoch, "1970-01-01T00:00:00Z");
    cleanup_free char *t = image_time_format(1000000000);
    assert_string_equal(t, "2001-09-09T01:46:40Z");
    int64_t back = 0;
    assert_int_equal(image_time_parse(t, &back), 0);
    assert_true(back == 1000000000);
    /* now: nanoseconds, Z, and it parses back */
    cleanup_free char *now = image_time_format(-1);
    assert_int_equal(strlen(now), strlen("2026-01-01T00:00:00.000000000Z"));
    assert_int_equal(now[strlen(now) - 1], 'Z');
    assert_int_equal(image_time_parse(now, &back), 0);
    assert_true(back > 1000000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_time_self),
        cmocka_unit_test(test_start_time_zombie_and_gone),
        cmocka_unit_test(test_time_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
