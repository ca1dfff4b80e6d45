#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_parse_ok(void **state)
{
    (void)state;
    const char *doc = "{\"schemaVersion\": 2, \"mediaType\": \"x\", \"layers\": [1,2]}  \n";
    cleanup_json json_t *j = NULL;
    cleanup_error berth_error_t err = NULL;
    /* not NUL-terminated: pass a length that cuts before trailing whitespace */
    assert_int_equal(json_parse_bounded(doc, strlen(doc), 1024, "manifest", &j, &err), 0);
    int64_t v = 0;
    assert_true(json_get_int(j, "schemaVersion", &v));
    assert_int_equal(v, 2);
    assert_string_equal(json_get_string(j, "mediaType"), "x");
    assert_null(json_get_string(j, "schemaVersion"));
    assert_null(json_get_object(j, "layers"));
    assert_non_null(json_get_array(j, "layers"));
    assert_null(json_get_string(j, "nope"));
    bool b;
    assert_false(json_get_bool(j, "mediaType", &b));
}

static void test_parse_not_nul_terminated(void **state)
{
    (void)state;
    char buf[16];
    memcpy(buf, "[1,2]XXXXXXXXXXX", 16);
    cleanup_json json_t *j = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(json_parse_bounded(buf, 5, 100, "array", &j, &err), 0);
    assert_int_equal(json_array_size(j), 2);
}

static void test_too_big(void **state)
{
    (void)state;
    const char *doc = "{\"a\": \"0123456789\"}";
    cleanup_json json_t *j = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_true(json_parse_bounded(doc, strlen(doc), 10, "manifest", &j, &err) < 0);
    assert_null(j);
    assert_int_equal(berth_error_status(err), EFBIG);
    assert_non_null(strstr(berth_error_msg(err), "manifest too large"));
}

static void test_errors(void **state)
{
    (void)state;
    struct {
        const char *doc;
        const char *part;
    } cases[] = {
        {"{\"a\": 1} garbage", "line 1"},
        {"{\n\"a\": 1,\n\"b\": }\n", "line 3"},
        {"", "line"},
        {"{\"a\": 1, \"a\": 2}", "duplicate"},
        {"{\"a\": \"\\u0000\"}", "line 1"},
        {"[1,2", "line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_json json_t *j = NULL;
        cleanup_error berth_error_t err = NULL;
        int r = json_parse_bounded(cases[i].doc, strlen(cases[i].doc), 1024, "config", &j, &err);
        if (r == 0)
            fail_msg("case %zu parsed", i);
        const char *m = berth_error_msg(err);
        if (strstr(m, cases[i].part) == NULL || strstr(m, "invalid config") == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, m, cases[i].part);
    }
}

static void test_canonical(void **state)
{
    (void)state;
    cleanup_json json_t *j = json_pack("{s:i, s:s, s:{s:b, s:n}, s:[s,s]}", "zeta", 1, "alpha",
                                       "h\xc3\xa9/x", "mid", "y", 1, "b", "arr", "b", "a");
    assert_non_null(j);
    size_t len = 0;
    cleanup_free char *s = json_dump_canonical(j, &len);
    assert_string_equal(s, "{\"alpha\":\"h\xc3\xa9/"
                           "x\",\"arr\":[\"b\",\"a\"],\"mid\":{\"b\":null,\"y\":true},\"zeta\":1}");
    assert_int_equal(len, strlen(s));
    cleanup_free char *p = json_dump_pretty(j);
    assert_non_null(strstr(p, "\n  \"zeta\": 1"));
}

static void test_required_and_strv(void **state)
{
    (void)state;
    cleanup_json json_t *j = json_pack("{s:s, s:i, s:[s,s], s:[s,i]}", "name", "n", "size", 42,
                                       "cmd", "a", "b", "bad", "x", 1);
    cleanup_error berth_error_t err = NULL;
    const char *s = NULL;
    int64_t i = 0;
    assert_int_equal(json_require_string(j, "image", "name", &s, &err), 0);
    assert_string_equal(s, "n");
    assert_int_equal(json_require_int(j, "image", "size", &i, &err), 0);
    assert_int_equal(i, 42);
    assert_true(json_require_string(j, "image", "size", &s, &err) < 0);
    assert_string_equal(berth_error_msg(err), "image.size: not a string");
    assert_true(json_require_int(j, "image", "missing", &i, &err) < 0);
    assert_string_equal(berth_error_msg(err), "image.missing: missing");

    cleanup_strv char **v = NULL;
    assert_int_equal(json_to_strv(json_object_get(j, "cmd"), "cmd", &v, &err), 0);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "b");
    assert_null(v[2]);
    cleanup_json json_t *back = json_from_strv(v);
    assert_true(json_equal(back, json_object_get(j, "cmd")));
    cleanup_strv char **w = NULL;
    assert_true(json_to_strv(json_object_get(j, "bad"), "bad", &w, &err) < 0);
    assert_string_equal(berth_error_msg(err), "bad[1]: not a string");
}

static void test_file_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/berth-json-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *path = fs_join(dir, "doc.json");
    cleanup_json json_t *j = json_pack("{s:s}", "k", "v");
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(json_write_file_atomic(path, j, 0600, &err), 0);
    cleanup_json json_t *r = NULL;
    assert_int_equal(json_load_file_bounded(path, 1024, &r, &err), 0);
    assert_true(json_equal(j, r));
    cleanup_json json_t *r2 = NULL;
    assert_true(json_load_file_bounded(path, 3, &r2, &err) < 0);
    assert_int_equal(berth_error_status(err), EFBIG);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),       cmocka_unit_test(test_parse_not_nul_terminated),
        cmocka_unit_test(test_too_big),        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_canonical),      cmocka_unit_test(test_required_and_strv),
        cmocka_unit_test(test_file_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
