/* transport/registries_conf: the TOML subset, registries.conf semantics, errors with file:line,
 * prefix matching, mirrors, aliases and short-name resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "transport/registries_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static registries_conf_t *parse_ok(const char *text)
{
    registries_conf_t *c = registries_conf_new();
    berth_error_t err = NULL;
    if (registries_conf_parse(c, text, strlen(text), "test.conf", &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    return c;
}

static void parse_fails(const char *text, const char *expect)
{
    cleanup_registries_conf registries_conf_t *c = registries_conf_new();
    berth_error_t err = NULL;
    assert_int_equal(registries_conf_parse(c, text, strlen(text), "test.conf", &err), -1);
    if (!strstr(berth_error_msg(err), expect))
        fail_msg("error \"%s\" lacks \"%s\"", berth_error_msg(err), expect);
    berth_error_release(&err);
}

static const char full[] =
    "# comment\n"
    "unqualified-search-registries = [\"registry.fedoraproject.org\", 'quay.io',\n"
    "    \"docker.io\", ]  # trailing comma\n"
    "short-name-mode = \"enforcing\"\n"
    "\n"
    "[[registry]]\n"
    "prefix = \"example.com/foo\"\n"
    "location = \"internal.example.com/bar\"\n"
    "insecure = true\n"
    "\n"
    "[[registry.mirror]]\n"
    "location = \"mirror-1.example.com\"\n"
    "\n"
    "[[registry.mirror]]\n"
    "location = \"mirror-2.example.com\"\n"
    "insecure = true\n"
    "pull-from-mirror = \"digest-only\"\n"
    "\n"
    "[[registry]]\n"
    "location = \"blocked.example.com\"\n"
    "blocked = true\n"
    "\n"
    "[[registry]]\n"
    "prefix = \"*.wild.example\"\n"
    "insecure = true\n"
    "\n"
    "[aliases]\n"
    "\"fedora\" = \"registry.fedoraproject.org/fedora\"\n"
    "busybox = \"docker.io/library/busybox\"\n"
    "\"team/app\" = \"quay.io/team/app\"\n";

static void test_full(void **state)
{
    cleanup_registries_conf registries_conf_t *c = parse_ok(full);
    assert_non_null(c->unqualified_search);
    assert_string_equal(c->unqualified_search[0], "registry.fedoraproject.org");
    assert_string_equal(c->unqualified_search[1], "quay.io");
    assert_string_equal(c->unqualified_search[2], "docker.io");
    assert_null(c->unqualified_search[3]);
    assert_string_equal(c->short_name_mode, "enforcing");
    assert_int_equal(c->nregistries, 3);
    const struct registry_entry *e = &c->registries[0];
    assert_string_equal(e->prefix, "example.com/foo");
    assert_string_equal(e->location, "internal.example.com/bar");
    assert_true(e->insecure);
    assert_int_equal(e->nmirrors, 2);
    assert_string_equal(e->mirrors[0].location, "mirror-1.example.com");
    assert_false(e->mirrors[0].insecure);
    assert_int_equal(e->mirrors[0].pull_from, PULL_FROM_MIRROR_ALL);
    assert_true(e->mirrors[1].insecure);
    assert_int_equal(e->mirrors[1].pull_from, PULL_FROM_MIRROR_DIGEST);
    /* prefix defaults to location */
    assert_string_equal(c->registries[1].prefix, "blocked.example.com");
    assert_true(c->registries[1].blocked);
    assert_int_equal(c->naliases, 3);
}

static void test_find_and_rewrite(void **state)
{
    cleanup_registries_conf registries_conf_t *c = parse_ok(full);
    const struct registry_entry *e = registries_conf_find(c, "example.com/foo/app");
    assert_non_null(e);
    cleanup_free char *rw = registries_conf_rewrite(e, "example.com/foo/app");
    assert_string_equal(rw, "internal.example.com/bar/app");
    /* component boundary: foobar is not below foo */
    assert_null(registries_conf_find(c, "example.com/foobar/app"));
    e = registries_conf_find(c, "blocked.example.com/x");
    assert_non_null(e);
    assert_true(e->blocked);
    e = registries_conf_find(c, "a.wild.example/x/y");
    assert_non_null(e);
    assert_true(e->insecure);
    assert_null(registries_conf_find(c, "wild.example/x"));
    assert_null(registries_conf_find(c, "quay.io/x"));
}

static void test_errors(void **state)
{
    parse_fails("unqualified-search-registries = [\"a\"]\nbogus = 1\n", "test.conf:2: unknown key "
                                                                        "\"bogus\"");
    parse_fails("[[registry]]\nlocation = \"x\"\n\ninsecur = true\n",
                "test.conf:4: unknown key \"insecur\" in [[registry]]");
    parse_fails("[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\nloc = \"y\"\n",
                "test.conf:4: unknown key \"loc\" in [[registry.mirror]]");
    parse_fails("[registry]\n", "unknown table [registry]");
    parse_fails("[[registry.mirror]]\nlocation = \"m\"\n", "must follow a [[registry]]");
    parse_fails("[[registry]]\ninsecure = \"yes\"\n", "\"insecure\" must be a boolean");
    parse_fails("short-name-mode = \"sometimes\"\n", "invalid short-name-mode");
    parse_fails("unqualified-search-registries = [\"a\"\n", "test.conf:");
    parse_fails("x = \"unterminated\n", "unterminated string");
    parse_fails("[[registry]]\ninsecure = true\n", "neither prefix nor location");
    parse_fails("[aliases]\n\"docker.io/x\" = \"quay.io/x\"\n", "not a short name");
    parse_fails("[aliases]\nfoo = \"bar\"\n", "fully-qualified");
    parse_fails("[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\nlocation = \"m\"\n"
                "pull-from-mirror = \"never\"\n",
                "invalid pull-from-mirror");
    parse_fails("a = { b = 1 }\n", "inline tables");
    parse_fails("[registries.search]\nregistries = [\"a\"]\n[[registry]]\nlocation = \"x\"\n",
                "mixes version 1");
}

/* Found by tests/fuzz/fuzz_registries_conf: a version 1 table after a [[registry]] that has
 * only a location compared the v1 names with that entry's prefix, still NULL while the file is
 * parsed (strcmp on NULL: a crash).  The mix must be refused like any other. */
static void test_fuzz_v1_table_after_registry_without_prefix(void **state)
{
    parse_fails("[[registry]]\nlocation = \"a.example.com\"\n\n[registries.insecure]\n"
                "registries = [\"b.example.com\"]\n",
                "mixes version 1");
}

static void test_v1(void **state)
{
    cleanup_registries_conf registries_conf_t *c =
        parse_ok("[registries.search]\nregistries = ['docker.io', \"quay.io\"]\n"
                 "[registries.insecure]\nregistries = [\"localhost:5000\"]\n"
                 "[registries.block]\nregistries = [\"evil.example\"]\n");
    assert_string_equal(c->unqualified_search[1], "quay.io");
    const struct registry_entry *e = registries_conf_find(c, "localhost:5000/x");
    assert_non_null(e);
    assert_true(e->insecure);
    e = registries_conf_find(c, "evil.example/x");
    assert_true(e->blocked);
}

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

static void test_short_names(void **state)
{
    cleanup_registries_conf registries_conf_t *c = parse_ok(full);
    berth_error_t err = NULL;
    char **cand = NULL;
    bool alias = false;
    assert_int_equal(registries_conf_resolve_short_name(c, "fedora:39", &cand, &alias, &err), 0);
    assert_true(alias);
    assert_string_equal(cand[0], "registry.fedoraproject.org/fedora:39");
    assert_null(cand[1]);
    free_strv(cand);
    assert_int_equal(registries_conf_resolve_short_name(c, "busybox", &cand, &alias, &err), 0);
    assert_string_equal(cand[0], "docker.io/library/busybox:latest");
    free_strv(cand);
    assert_int_equal(registries_conf_resolve_short_name(c, "team/app", &cand, &alias, &err), 0);
    assert_string_equal(cand[0], "quay.io/team/app:latest");
    free_strv(cand);
    assert_int_equal(registries_conf_resolve_short_name(c, "alpine:3", &cand, &alias, &err), 0);
    assert_false(alias);
    assert_string_equal(cand[0], "registry.fedoraproject.org/alpine:3");
    assert_string_equal(cand[1], "quay.io/alpine:3");
    assert_string_equal(cand[2], "docker.io/library/alpine:3");
    assert_null(cand[3]);
    free_strv(cand);
    /* qualified names resolve to themselves */
    assert_int_equal(registries_conf_resolve_short_name(c, "localhost:5000/x", &cand, &alias, &err),
                     0);
    assert_string_equal(cand[0], "localhost:5000/x:latest");
    free_strv(cand);
    /* nothing configured: a clear error */
    cleanup_registries_conf registries_conf_t *empty = registries_conf_new();
    assert_int_equal(registries_conf_resolve_short_name(empty, "alpine", &cand, &alias, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "unqualified-search-registries"));
    berth_error_release(&err);
}

static void test_load_files(void **state)
{
    char dir[] = "/tmp/berth-test-regconf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *p = xasprintf("%s/registries.conf", dir);
    FILE *f = fopen(p, "w");
    fputs("unqualified-search-registries = [\"example.com\"]\n\n[[registry]]\nlocation = "
          "\"example.com\"\nblocked = true\nwhat = 1\n",
          f);
    fclose(f);
    berth_error_t err = NULL;
    registries_conf_t *c = NULL;
    assert_int_equal(registries_conf_load(p, &c, &err), -1);
    /* the error names the file and the line */
    cleanup_free char *want = xasprintf("%s:6: unknown key \"what\"", p);
    assert_non_null(strstr(berth_error_msg(err), want));
    berth_error_release(&err);
    f = fopen(p, "w");
    fputs("unqualified-search-registries = [\"example.com\"]\n", f);
    fclose(f);
    setenv("CONTAINERS_REGISTRIES_CONF", p, 1);
    assert_int_equal(registries_conf_load(NULL, &c, &err), 0);
    assert_string_equal(c->unqualified_search[0], "example.com");
    registries_conf_free(c);
    unsetenv("CONTAINERS_REGISTRIES_CONF");
    cleanup_free char *missing = xasprintf("%s/nope.conf", dir);
    assert_int_equal(registries_conf_load(missing, &c, &err), -1);
    berth_error_release(&err);
    unlink(p);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_find_and_rewrite),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_v1),
        cmocka_unit_test(test_fuzz_v1_table_after_registry_without_prefix),
        cmocka_unit_test(test_short_names),
        cmocka_unit_test(test_load_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
