#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "transport/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char MANIFEST[] = "{\"schemaVersion\":2}";

struct parse_case {
    const char *json;
    const char *error; /* NULL: must parse; else a substring of the error */
};

static const struct parse_case parse_cases[] = {
    {"{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}", NULL},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"\":[{\"type\":"
     "\"insecureAcceptAnything\"}],\"quay.io/a\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\","
     "\"keyPath\":\"/k.gpg\"}]}}}",
     NULL},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[\"/a\",\"/b\"],"
     "\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"a.io\",\"signedPrefix\":"
     "\"b.io\"}}]}",
     NULL},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"AAEC\","
     "\"signedIdentity\":{\"type\":\"exactReference\",\"dockerReference\":\"busybox:1\"}}]}",
     NULL},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
     "\"signedIdentity\":{\"type\":\"exactRepository\",\"dockerRepository\":\"quay.io/x\"}}]}",
     NULL},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
     "\"signedIdentity\":{\"type\":\"matchExact\"}}]}",
     NULL},
    {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\","
     "\"signedIdentity\":{\"type\":\"matchRepository\"}}]}",
     NULL},
    /* errors */
    {"", "invalid"},
    {"[]", "not a JSON object"},
    {"{}", "default: is missing"},
    {"{\"default\":[]}", "must not be empty"},
    {"{\"default\":[{\"type\":\"insecureAcceptAnything\"}],\"extra\":1}",
     "unknown field \"extra\""},
    {"{\"default\":[{\"type\":\"bogus\"}]}", "default[0]: unknown requirement type \"bogus\""},
    {"{\"default\":[{\"type\":\"reject\",\"keyPath\":\"/x\"}]}", "unknown field \"keyPath\""},
    {"{\"default\":[{\"type\":\"sigstoreSigned\",\"fulcio\":{}}]}", "not supported"},
    {"{\"default\":[{\"type\":\"sigstoreSigned\"}]}", "exactly one of keyPath and keyData"},
    {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"keyData\":\"AA==\"}]}",
     "exactly one of keyPath and keyData"},
    {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"!!\"}]}",
     "keyData is not non-empty base64"},
    {"{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"keyType\":\"GPGKeys\"}]}",
     "unknown field \"keyType\""},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"X509Certificates\",\"keyPath\":\"/k\"}]}",
     "keyType \"X509Certificates\" is not supported"},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\"}]}", "exactly one of keyPath"},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
     "\"keyData\":\"AA==\"}]}",
     "exactly one of keyPath"},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"!!\"}]}",
     "keyData is not non-empty base64"},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
     "\"signedIdentity\":{\"type\":\"nope\"}}]}",
     "default[0].signedIdentity: unknown signedIdentity type"},
    {"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
     "\"signedIdentity\":{\"type\":\"exactReference\",\"dockerReference\":\"busybox\"}}]}",
     "reference with a tag or digest"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"q.io\":[{\"type\":"
     "\"foo\"}]}}}",
     "transports.docker[\"q.io\"][0]: unknown requirement type"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"dir\":{\"rel/path\":[{\"type\":"
     "\"reject\"}]}}}",
     "scope must be an absolute path"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":[]}}", "not an object"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"busybox\":[{\"type\":"
     "\"reject\"}]}}}",
     "neither a registry host nor"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"docker.io/busybox\":[{"
     "\"type\":\"reject\"}]}}}",
     "not a fully qualified image name"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"*.a/b\":[{\"type\":"
     "\"reject\"}]}}}",
     "invalid wildcard scope"},
    {"{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"localhost:5000\":[{"
     "\"type\":\"reject\"}],\"docker.io/library/busybox:1\":[{\"type\":\"reject\"}],\"*.a.io\":"
     "[{\"type\":\"reject\"}],\"q.io/ns\":[{\"type\":\"reject\"}]}}}",
     NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        cleanup_policy struct policy *p = NULL;
        cleanup_error berth_error_t err = NULL;
        int r = policy_parse(c->json, strlen(c->json), "test", &p, &err);
        if (!c->error) {
            if (r != 0)
                fail_msg("case %zu: %s", i, berth_error_msg(err));
            assert_non_null(p);
        } else {
            if (r == 0)
                fail_msg("case %zu parsed but should fail with %s", i, c->error);
            if (!strstr(berth_error_msg(err), c->error))
                fail_msg("case %zu: \"%s\" lacks \"%s\"", i, berth_error_msg(err), c->error);
        }
    }
}

static void test_scope_candidates(void **state)
{
    (void)state;
    cleanup_strv char **v = policy_scope_candidates("docker", "reg.example.com:5000/a/b:1");
    const char *want[] = {"reg.example.com:5000/a/b:1", "reg.example.com:5000/a/b",
                          "reg.example.com:5000/a", "reg.example.com:5000", NULL};
    for (size_t i = 0; want[i]; i++) {
        assert_non_null(v[i]);
        assert_string_equal(v[i], want[i]);
    }
    assert_null(v[4]);
    cleanup_strv char **w = policy_scope_candidates("docker", "a.b.io/x@sha256:"
                                                              "0000000000000000000000000000000000"
                                                              "000000000000000000000000000000");
    assert_string_equal(w[1], "a.b.io/x");
    assert_string_equal(w[2], "a.b.io");
    assert_string_equal(w[3], "*.b.io");
    assert_string_equal(w[4], "*.io");
    assert_null(w[5]);
    cleanup_strv char **d = policy_scope_candidates("dir", "/a/b/c");
    assert_string_equal(d[0], "/a/b/c");
    assert_string_equal(d[1], "/a/b");
    assert_string_equal(d[2], "/a");
    assert_string_equal(d[3], "/");
    assert_null(d[4]);
    assert_null(policy_scope_candidates("docker", ""));
}

static int check(const struct policy *p, const char *transport, const char *ref, berth_error_t *err)
{
    return policy_check_image(p, transport, ref, MANIFEST, strlen(MANIFEST), NULL, NULL, 0, err);
}

static void test_decisions(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{"
        "\"\":[{\"type\":\"insecureAcceptAnything\"}],"
        "\"bad.io\":[{\"type\":\"reject\"}],"
        "\"bad.io/ok\":[{\"type\":\"insecureAcceptAnything\"}],"
        "\"bad.io/ok/no:1\":[{\"type\":\"reject\"}],"
        "\"*.evil.io\":[{\"type\":\"reject\"}],"
        "\"signed.io\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/none\"}]},"
        "\"dir\":{\"/trusted\":[{\"type\":\"insecureAcceptAnything\"}]}}}";
    cleanup_policy struct policy *p = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(policy_parse(doc, strlen(doc), "t", &p, &err), 0);
    struct {
        const char *transport, *ref;
        bool ok;
    } cases[] = {
        {"docker", "quay.io/x/y:1", true},         /* transport default "" */
        {"docker", "bad.io/x:1", false},           /* host scope */
        {"docker", "bad.io/ok/x:1", true},         /* longer namespace wins */
        {"docker", "bad.io/ok/no:1", false},       /* exact reference */
        {"docker", "bad.io/ok/no:2", true},        /* other tag: namespace */
        {"docker", "a.b.evil.io/x:1", false},      /* wildcard */
        {"docker", "signed.io/x:1", false},        /* signedBy without signatures */
        {"dir", "/trusted/sub/img", true},         /* parent directory */
        {"dir", "/trustedness/img", false},        /* not a parent: global default */
        {"oci", "/anything", false},               /* no transport entry: global default */
        {"containers-storage", "x.io/a:1", false}, /* idem */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        berth_error_t e = NULL;
        int r = check(p, cases[i].transport, cases[i].ref, &e);
        if ((r == 0) != cases[i].ok)
            fail_msg("case %zu (%s %s): got %d %s", i, cases[i].transport, cases[i].ref, r,
                     e ? berth_error_msg(e) : "");
        if (r < 0)
            assert_non_null(strstr(berth_error_msg(e), "rejected by policy"));
        berth_error_release(&e);
    }
    berth_error_t e = NULL;
    assert_int_equal(check(p, "docker", "signed.io/x:1", &e), -1);
    assert_non_null(strstr(berth_error_msg(e), "no signature exists"));
    assert_non_null(strstr(berth_error_msg(e), "signedBy"));
    berth_error_release(&e);
}

static void test_find_path(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_policy_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    cleanup_free char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", tmpl, 1);
    cleanup_free char *p = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(policy_find_path("/given.json", &p, &err), 0);
    assert_string_equal(p, "/given.json");
    free(p);
    p = NULL;
    char dir[512], file[600];
    snprintf(dir, sizeof(dir), "%s/.config/containers", tmpl);
    snprintf(file, sizeof(file), "%s/policy.json", dir);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && echo '{\"default\":[{\"type\":\"reject\"}]}' > %s",
             dir, file);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(policy_find_path(NULL, &p, &err), 0);
    assert_string_equal(p, file);
    cleanup_policy struct policy *pol = NULL;
    assert_int_equal(policy_load_default(NULL, &pol, &err), 0);
    assert_int_equal(check(pol, "docker", "x.io/a:1", &err), -1);
    berth_error_release(&err);
    assert_int_equal(policy_load_default("/nonexistent/policy.json", &pol, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "/nonexistent/policy.json"));
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
    assert_int_equal(system(cmd), 0);
    if (saved_home)
        setenv("HOME", saved_home, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_scope_candidates),
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_find_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
