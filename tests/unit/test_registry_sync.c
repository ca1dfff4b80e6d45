/* transport/sync: the YAML subset used for skopeo-sync files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "transport/sync.h"

#include <string.h>

static json_t *parse_ok(const char *y)
{
    json_t *j = NULL;
    berth_error_t err = NULL;
    if (sync_yaml_parse(y, strlen(y), "t.yaml", &j, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    return j;
}

static void parse_fails(const char *y, const char *expect)
{
    json_t *j = NULL;
    berth_error_t err = NULL;
    assert_int_equal(sync_yaml_parse(y, strlen(y), "t.yaml", &j, &err), -1);
    if (!strstr(berth_error_msg(err), expect))
        fail_msg("error \"%s\" lacks \"%s\"", berth_error_msg(err), expect);
    berth_error_release(&err);
}

static void test_skopeo_example(void **state)
{
    const char *y =
        "---\n"
        "# comment\n"
        "registry.example.com:\n"
        "    images:\n"
        "        busybox: []\n"
        "        redis:\n"
        "            - \"1.0\"\n"
        "            - '2.0'   # trailing comment\n"
        "            - sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
        "    images-by-tag-regex:\n"
        "        nginx: ^1\\.13\\.[12]-alpine-perl$\n"
        "    credentials:\n"
        "        username: john\n"
        "        password: \"this is # not a comment\"\n"
        "    tls-verify: true\n"
        "    cert-dir: /home/john/certs\n"
        "quay.io:\n"
        "    tls-verify: false\n"
        "    images:\n"
        "        coreos/etcd:\n"
        "        - latest\n"
        "localhost:5000:\n"
        "  images: {}\n";
    cleanup_json json_t *j = parse_ok(y);
    json_t *r = json_object_get(j, "registry.example.com");
    assert_non_null(r);
    json_t *images = json_object_get(r, "images");
    assert_int_equal(json_array_size(json_object_get(images, "busybox")), 0);
    json_t *redis = json_object_get(images, "redis");
    assert_int_equal(json_array_size(redis), 3);
    assert_string_equal(json_string_value(json_array_get(redis, 0)), "1.0");
    assert_string_equal(json_string_value(json_array_get(redis, 1)), "2.0");
    assert_non_null(strstr(json_string_value(json_array_get(redis, 2)), "sha256:"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "images-by-tag-regex"), "nginx")),
        "^1\\.13\\.[12]-alpine-perl$");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "credentials"), "password")),
        "this is # not a comment");
    assert_string_equal(json_string_value(json_object_get(r, "tls-verify")), "true");
    json_t *q = json_object_get(j, "quay.io");
    json_t *etcd = json_object_get(json_object_get(q, "images"), "coreos/etcd");
    assert_string_equal(json_string_value(json_array_get(etcd, 0)), "latest");
    /* a registry name with a port is a key */
    assert_non_null(json_object_get(j, "localhost:5000"));
}

static void test_flow_and_nulls(void **state)
{
    cleanup_json json_t *j = parse_ok("a:\n  images:\n    x: [\"1\", 2, 'three']\n    y:\n");
    json_t *images = json_object_get(json_object_get(j, "a"), "images");
    assert_int_equal(json_array_size(json_object_get(images, "x")), 3);
    assert_true(json_is_null(json_object_get(images, "y")));
    cleanup_json json_t *e = parse_ok("# nothing\n\n");
    assert_int_equal(json_object_size(e), 0);
}

static void test_errors(void **state)
{
    parse_fails("a:\n\tb: 1\n", "t.yaml:2: tabs");
    parse_fails("a:\n  b: 1\n  b: 2\n", "t.yaml:3: duplicate key \"b\"");
    parse_fails("a:\n  b: 1\n    c: 2\n", "t.yaml:3: unexpected indentation");
    parse_fails("a:\n  - x: 1\n", "mappings inside sequences");
    parse_fails("a: {b: 1}\n", "flow mappings");
    parse_fails("a: [1, [2]]\n", "nested flow");
    parse_fails("just text\n", "t.yaml:1: expected \"key: value\"");
    parse_fails("a: &anchor x\n", "unsupported YAML value");
    parse_fails("a: [1, 2\n", "unterminated flow sequence");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skopeo_example),
        cmocka_unit_test(test_flow_and_nulls),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
