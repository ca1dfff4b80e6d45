/* Unit tests for common/error, common/log and common/alloc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <string.h>

static int fail_open(const char *path, berth_error_t *err)
{
    return berth_error_make(err, ENOENT, "open \"%s\"", path);
}

static void test_make_appends_strerror(void **state)
{
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fail_open("/nope", &err), -1);
    assert_non_null(err);
    assert_string_equal(berth_error_msg(err), "open \"/nope\": No such file or directory");
    assert_int_equal(berth_error_status(err), ENOENT);
}

static void test_wrap_prefixes_context(void **state)
{
    cleanup_error berth_error_t err = NULL;
    fail_open("/a/b", &err);
    assert_int_equal(berth_error_wrap(&err, "pull \"%s\"", "x"), -1);
    assert_int_equal(berth_error_wrap(&err, "copy"), -1);
    assert_string_equal(berth_error_msg(err),
                        "copy: pull \"x\": open \"/a/b\": No such file or directory");
    /* status survives wrapping: callers test for "not found" after adding context */
    assert_int_equal(berth_error_status(err), ENOENT);
}

static void test_wrap_without_error_creates_one(void **state)
{
    cleanup_error berth_error_t err = NULL;
    berth_error_wrap(&err, "context only");
    assert_string_equal(berth_error_msg(err), "context only");
    assert_int_equal(berth_error_status(err), 0);
}

static void test_make_status_and_replace(void **state)
{
    cleanup_error berth_error_t err = NULL;
    berth_error_make(&err, 0, "first");
    berth_error_make_status(&err, EEXIST, "second %d", 2);
    assert_string_equal(berth_error_msg(err), "second 2");
    assert_int_equal(berth_error_status(err), EEXIST);
    berth_error_release(&err);
    assert_null(err);
    berth_error_release(&err); /* double release is harmless */
    assert_string_equal(berth_error_msg(NULL), "unknown error");
}

static void test_null_err_pointer_is_allowed(void **state)
{
    /* callers that do not care about the message may pass NULL */
    assert_int_equal(berth_error_make(NULL, EIO, "ignored"), -1);
    assert_int_equal(berth_error_wrap(NULL, "ignored"), -1);
}

static void test_log_levels(void **state)
{
    berth_log_level_t l;
    const struct {
        const char *name;
        int ok;
        berth_log_level_t level;
    } cases[] = {
        {"error", 1, LOG_LEVEL_ERROR},
        {"warn", 1, LOG_LEVEL_WARN},
        {"warning", 1, LOG_LEVEL_WARN},
        {"info", 1, LOG_LEVEL_INFO},
        {"debug", 1, LOG_LEVEL_DEBUG},
        {"trace", 1, LOG_LEVEL_TRACE},
        {"fatal", 1, LOG_LEVEL_ERROR},
        {"panic", 1, LOG_LEVEL_ERROR},
        {"", 0, 0},
        {"DEBUG", 0, 0},
        {"verbose", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = berth_log_parse_level(cases[i].name, &l);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(l, cases[i].level);
        } else {
            assert_int_equal(rc, -1);
        }
    }
    berth_log_set_level(LOG_LEVEL_DEBUG);
    assert_int_equal(berth_log_get_level(), LOG_LEVEL_DEBUG);
    berth_log_set_level(LOG_LEVEL_WARN);
}

static void test_alloc_helpers(void **state)
{
    cleanup_free char *s = xasprintf("%s-%d", "a", 7);
    assert_string_equal(s, "a-7");
    cleanup_free char *d = xstrndup("abcdef", 3);
    assert_string_equal(d, "abc");
    cleanup_free int *z = xzalloc(16 * sizeof(int));
    for (int i = 0; i < 16; i++)
        assert_int_equal(z[i], 0);
    cleanup_free char *e = xstrdup(NULL);
    assert_string_equal(e, "");
    char *p = xmalloc(4);
    char *q = steal_pointer(&p);
    assert_null(p);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_appends_strerror),
        cmocka_unit_test(test_wrap_prefixes_context),
        cmocka_unit_test(test_wrap_without_error_creates_one),
        cmocka_unit_test(test_make_status_and_replace),
        cmocka_unit_test(test_null_err_pointer_is_allowed),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_alloc_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
