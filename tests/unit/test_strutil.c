/* Unit tests for common/strutil: string vectors and the string buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/strutil.h"

#include <errno.h>
#include <string.h>

static void test_strv(void **state)
{
    char **v = NULL;
    assert_int_equal(strv_len(v), 0);
    assert_false(strv_contains(v, "a"));
    strv_add(&v, "a");
    strv_add(&v, "b");
    strv_add(&v, "a");
    assert_int_equal(strv_len(v), 3);
    assert_true(strv_contains(v, "b"));
    char **d = strv_dup(v);
    assert_int_equal(strv_remove(v, "a"), 2);
    assert_int_equal(strv_len(v), 1);
    assert_string_equal(v[0], "b");
    assert_null(v[1]);
    assert_int_equal(strv_len(d), 3); /* the copy is independent */
    assert_string_equal(d[2], "a");
    assert_null(strv_dup(NULL));
    strv_free(v);
    strv_free(d);
    strv_free(NULL);
}

static void test_strbuf(void **state)
{
    cleanup_strbuf struct strbuf b = STRBUF_INIT;
    cleanup_free char *empty = strbuf_steal(&b);
    assert_string_equal(empty, "");
    for (int i = 0; i < 1000; i++)
        strbuf_appendf(&b, "%d,", i % 10);
    assert_int_equal(b.len, 2000);
    assert_int_equal(strlen(b.buf), 2000);
    strbuf_putc(&b, 'x');
    strbuf_append_len(&b, "yzw", 2);
    assert_string_equal(b.buf + 2000, "xyz");
    cleanup_free char *s = strbuf_steal(&b);
    assert_null(b.buf);
    assert_int_equal(b.len, 0);
    assert_int_equal(strlen(s), 2003);
}

/* A strbuf knows its limit from init: an append past it fails, frees what was collected, and
 * the failure sticks, so the text can only be taken through strbuf_finish, which reports it
 * (the lookaside signature body is collected this way). */
static void test_strbuf_limit(void **state)
{
    struct strbuf b;
    strbuf_init(&b, 10);
    assert_int_equal(strbuf_append(&b, "12345"), 0);
    assert_int_equal(strbuf_appendf(&b, "%d", 6789), 0);
    assert_int_equal(strbuf_putc(&b, '0'), 0); /* exactly 10 */
    assert_int_equal(b.len, 10);
    char *s = NULL;
    size_t len = 0;
    berth_error_t err = NULL;
    assert_int_equal(strbuf_finish(&b, "x", &s, &len, &err), 0);
    assert_string_equal(s, "1234567890");
    assert_int_equal(len, 10);
    free(s);

    strbuf_init(&b, 10);
    assert_int_equal(strbuf_append(&b, "1234567890"), 0);
    assert_int_equal(strbuf_putc(&b, 'x'), -1);
    assert_true(b.failed);
    assert_null(b.buf);
    assert_int_equal(strbuf_append(&b, ""), -1); /* sticky */
    s = NULL;
    assert_int_equal(strbuf_finish(&b, "signature", &s, &len, &err), -1);
    assert_null(s);
    assert_int_equal(berth_error_status(err), EFBIG);
    assert_non_null(strstr(berth_error_msg(err), "signature: larger than 10 bytes"));
    berth_error_release(&err);

    /* STRBUF_INIT has no limit of its own */
    cleanup_strbuf struct strbuf u = STRBUF_INIT;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(strbuf_append(&u, "0123456789"), 0);
    assert_int_equal(u.len, 1000000);
}

/* The shared helpers that replaced policy.c's, cmd_buildah.c's and run/spec.c's strv_push, and
 * registries_conf.c's, expand.c's, builder.c's and cmd_sign.c's private vector helpers. */
static void test_strv_helpers(void **state)
{
    char **v = NULL;
    char *const add[] = {"a", "b", NULL};
    strv_extend(&v, NULL);
    assert_null(v);
    strv_extend(&v, add);
    strv_extend(&v, add);
    assert_int_equal(strv_len(v), 4);
    assert_string_equal(v[3], "b");
    assert_ptr_not_equal(v[0], add[0]); /* copies */

    cleanup_free char *j = strv_join(v, ", ");
    assert_string_equal(j, "a, b, a, b");
    cleanup_free char *j0 = strv_join(NULL, ",");
    assert_string_equal(j0, "");
    char *const one[] = {"x", NULL};
    cleanup_free char *j1 = strv_join(one, ",");
    assert_string_equal(j1, "x");

    assert_true(strv_contains_nocase(v, "A"));
    assert_false(strv_contains_nocase(v, "c"));
    assert_false(strv_contains_nocase(NULL, "a"));

    assert_ptr_equal(strv_or_empty(v), v);
    char **e = strv_or_empty(NULL);
    assert_non_null(e);
    assert_null(e[0]);
    strv_free(e);

    /* many appends (policy scopes, spec env) keep order */
    char **big = NULL;
    for (int i = 0; i < 500; i++)
        strv_add_take(&big, xasprintf("%d", i));
    assert_int_equal(strv_len(big), 500);
    assert_string_equal(big[499], "499");
    strv_free(big);
    strv_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strv),
        cmocka_unit_test(test_strbuf),
        cmocka_unit_test(test_strv_helpers),
        cmocka_unit_test(test_strbuf_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
