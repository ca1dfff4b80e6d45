/* Table-driven tests of the image reference grammar, normalisation, formatting and the
 * transport:reference split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/reference.h"

#include <stdio.h>
#include <string.h>

#define H64  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D256 "sha256:" H64

typedef struct {
    const char *in;
    bool normalize;
    /* expected on success (NULL = absent); err_sub != NULL means failure expected */
    const char *domain, *path, *tag, *digest;
    const char *err_sub;
} ref_case_t;

#define OK(in, d, p, t, g)                                                                         \
    {                                                                                              \
        in, false, d, p, t, g, NULL                                                                \
    }
#define OKN(in, d, p, t, g)                                                                        \
    {                                                                                              \
        in, true, d, p, t, g, NULL                                                                 \
    }
#define BAD(in, sub)                                                                               \
    {                                                                                              \
        in, false, NULL, NULL, NULL, NULL, sub                                                     \
    }
#define BADN(in, sub)                                                                              \
    {                                                                                              \
        in, true, NULL, NULL, NULL, NULL, sub                                                      \
    }

static char long_tag[200]; /* "a:" + 129-character tag */
static char max_tag[200];  /* "a:" + 128-character tag */
static char long_name[300];
static char max_name[300];
static char long_norm[300];

static const ref_case_t *cases_ptr;
static size_t n_cases;

static void build_long_inputs(void)
{
    memset(long_tag, 0, sizeof(long_tag));
    memset(max_tag, 0, sizeof(max_tag));
    long_tag[0] = 'a';
    long_tag[1] = ':';
    memset(long_tag + 2, 't', IMAGE_REF_TAG_MAX + 1);
    max_tag[0] = 'a';
    max_tag[1] = ':';
    memset(max_tag + 2, 't', IMAGE_REF_TAG_MAX);
    /* names: 256 and 255 characters */
    memset(long_name, 0, sizeof(long_name));
    memset(long_name, 'a', 256);
    long_name[100] = '/';
    memset(max_name, 0, sizeof(max_name));
    memset(max_name, 'a', 255);
    max_name[100] = '/';
    /* 250 chars, valid unnormalised, but "docker.io/library/" pushes it over */
    memset(long_norm, 0, sizeof(long_norm));
    memset(long_norm, 'b', 250);
}

static const ref_case_t cases[] = {
    /* plain names */
    OK("busybox", NULL, "busybox", NULL, NULL),
    OK("busybox:latest", NULL, "busybox", "latest", NULL),
    OK("user/app", NULL, "user/app", NULL, NULL),
    OK("a/b/c/d:1.0", NULL, "a/b/c/d", "1.0", NULL),
    OK("a", NULL, "a", NULL, NULL),
    OK("0", NULL, "0", NULL, NULL),
    OK("my-app", NULL, "my-app", NULL, NULL),
    OK("my--app", NULL, "my--app", NULL, NULL),
    OK("my_app", NULL, "my_app", NULL, NULL),
    OK("my__app", NULL, "my__app", NULL, NULL),
    OK("my.app", NULL, "my.app", NULL, NULL),
    OK("a.b-c_d__e", NULL, "a.b-c_d__e", NULL, NULL),
    /* domains */
    OK("quay.io/org/app:v1", "quay.io", "org/app", "v1", NULL),
    OK("localhost/app", "localhost", "app", NULL, NULL),
    OK("localhost:5000/app", "localhost:5000", "app", NULL, NULL),
    OK("localhost:5000/app:5000", "localhost:5000", "app", "5000", NULL),
    OK("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", NULL, NULL),
    OK("registry:5000/x", "registry:5000", "x", NULL, NULL),
    OK("my-registry.example.com/x", "my-registry.example.com", "x", NULL, NULL),
    OK("Registry.Example.COM/x", "Registry.Example.COM", "x", NULL, NULL),
    OK("Foo/bar", "Foo", "bar", NULL, NULL),
    OK("[::1]:5000/x", "[::1]:5000", "x", NULL, NULL),
    OK("[fe80::1]/x:t", "[fe80::1]", "x", "t", NULL),
    OK("index.docker.io/library/busybox", "index.docker.io", "library/busybox", NULL, NULL),
    OK("localhost", NULL, "localhost", NULL, NULL),
    OK("localhost:5000", NULL, "localhost", "5000", NULL),
    /* tags */
    OK("a:_t", NULL, "a", "_t", NULL),
    OK("a:T.1-x_y", NULL, "a", "T.1-x_y", NULL),
    OK("a:1", NULL, "a", "1", NULL),
    /* digests */
    OK("a@" D256, NULL, "a", NULL, D256),
    OK("quay.io/a:t@" D256, "quay.io", "a", "t", D256),
    OK("localhost:5000/a@" D256, "localhost:5000", "a", NULL, D256),
    /* normalisation */
    OKN("busybox", "docker.io", "library/busybox", "latest", NULL),
    OKN("busybox:1.36", "docker.io", "library/busybox", "1.36", NULL),
    OKN("user/x", "docker.io", "user/x", "latest", NULL),
    OKN("user/x/y", "docker.io", "user/x/y", "latest", NULL),
    OKN("index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL),
    OKN("index.docker.io/u/x:1", "docker.io", "u/x", "1", NULL),
    OKN("docker.io/busybox", "docker.io", "library/busybox", "latest", NULL),
    OKN("docker.io/library/busybox", "docker.io", "library/busybox", "latest", NULL),
    OKN("busybox@" D256, "docker.io", "library/busybox", NULL, D256),
    OKN("busybox:t@" D256, "docker.io", "library/busybox", "t", D256),
    OKN("quay.io/x", "quay.io", "x", "latest", NULL),
    OKN("localhost/x", "localhost", "x", "latest", NULL),
    OKN("localhost:5000/x", "localhost:5000", "x", "latest", NULL),
    /* invalid names */
    BAD("", "at least one component"),
    BAD("Busybox", "must be lowercase"),
    BAD("user/Busybox", "must be lowercase"),
    BAD("quay.io/Org/app", "must be lowercase"),
    BAD("a//b", "double '/'"),
    BAD("a/", "trailing"),
    BAD("/a", "leading"),
    BAD("quay.io/", "trailing"),
    BAD("quay.io//a", "double '/'"),
    BAD("-a", "invalid path component \"-a\""),
    BAD("a-", "invalid path component \"a-\""),
    BAD("a/-b", "invalid path component \"-b\""),
    BAD("_a", "invalid path component"),
    BAD("a..b", "invalid path component"),
    BAD("a___b", "invalid path component"),
    BAD("a.", "invalid path component"),
    BAD("a b", "whitespace"),
    BAD("a\tb", "whitespace"),
    BAD("caf\xc3\xa9", "non-ASCII"),
    BAD("a$b", "invalid path component"),
    BAD(":tag", "at least one component"),
    BAD("@" D256, "at least one component"),
    BAD(H64, "image ID"),
    BAD(long_name, "not be more than 255"),
    /* invalid domains */
    BAD("-quay.io/a", "invalid domain"),
    BAD("quay-.io/a", "invalid domain"),
    BAD("quay..io/a", "invalid domain"),
    BAD("quay.io:/a", "empty port"),
    BAD("quay.io:50a0/a", "invalid port"),
    BAD(":5000/a", "missing host"),
    BAD("qu_ay.io/a", "invalid domain"),
    BAD("[::g]/a", "IPv6"),
    BAD("[::1/a", "IPv6"),
    /* invalid tags */
    BAD("a:", "invalid tag \"\""),
    BAD("a:-t", "invalid tag \"-t\""),
    BAD("a:.t", "invalid tag"),
    BAD("a:t/x", "invalid port"), /* a ':' before the first '/' makes a domain */
    BAD("a:t+x", "invalid tag"),
    BAD("a:t:x", "invalid path component \"a:t\""), /* the last ':' starts the tag */
    BAD(long_tag, "longer than 128"),
    /* invalid digests */
    BAD("a@", "invalid digest"),
    BAD("a@sha256:abc", "invalid digest"),
    BAD("a@sha256:" H64 "0", "invalid digest"),
    BAD("a@md5:0123456789abcdef0123456789abcdef", "invalid digest"),
    BAD("a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "invalid digest"),
    BAD("a@" H64, "invalid digest"),
    BAD("a@sha256:" H64 "@sha256:" H64, "invalid digest"),
    BAD("a:t@sha256:zz", "invalid digest"),
    /* normalisation-specific */
    BADN("Busybox", "must be lowercase"),
    BADN(long_norm, "not be more than 255"),
};

static void test_cases(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const ref_case_t *c = &cases_ptr[i];
        cleanup_image_ref image_ref_t *r = NULL;
        cleanup_error berth_error_t err = NULL;
        int rc = c->normalize ? image_ref_parse_normalized(c->in, &r, &err)
                              : image_ref_parse(c->in, &r, &err);
        bool ok = true;
        if (c->err_sub) {
            if (rc == 0) {
                ok = false;
                fprintf(stderr, "case %zu \"%s\": expected error containing \"%s\", got success\n",
                        i, c->in, c->err_sub);
            } else if (strstr(berth_error_msg(err), c->err_sub) == NULL) {
                ok = false;
                fprintf(stderr, "case %zu \"%s\": error \"%s\" lacks \"%s\"\n", i, c->in,
                        berth_error_msg(err), c->err_sub);
            }
        } else if (rc != 0) {
            ok = false;
            fprintf(stderr, "case %zu \"%s\": unexpected error: %s\n", i, c->in,
                    berth_error_msg(err));
        } else {
#define CHECK_FIELD(f)                                                                             \
    if ((c->f == NULL) != (r->f == NULL) || (c->f && strcmp(c->f, r->f) != 0)) {                   \
        ok = false;                                                                                \
        fprintf(stderr, "case %zu \"%s\": " #f " = \"%s\", want \"%s\"\n", i, c->in,               \
                r->f ? r->f : "(null)", c->f ? c->f : "(null)");                                   \
    }
            CHECK_FIELD(domain)
            CHECK_FIELD(path)
            CHECK_FIELD(tag)
            CHECK_FIELD(digest)
#undef CHECK_FIELD
            /* the string form of an unnormalised reference is the input */
            if (!c->normalize) {
                cleanup_free char *s = image_ref_string(r);
                if (strcmp(s, c->in) != 0) {
                    ok = false;
                    fprintf(stderr, "case %zu: string \"%s\" != input \"%s\"\n", i, s, c->in);
                }
            }
        }
        if (!ok)
            failures++;
    }
    fprintf(stderr, "%zu reference cases, %zu failures\n", n_cases, failures);
    assert_int_equal(failures, 0);
    assert_true(n_cases >= 60);
}

static void test_max_lengths(void **state)
{
    (void)state;
    cleanup_image_ref image_ref_t *r = NULL;
    cleanup_image_ref image_ref_t *r2 = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_ref_parse(max_tag, &r, &err), 0);
    assert_int_equal(strlen(r->tag), IMAGE_REF_TAG_MAX);
    assert_int_equal(image_ref_set_tag(r, long_tag + 2, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "longer than"));
    /* exactly 128 is fine */
    char t128[IMAGE_REF_TAG_MAX + 1];
    memset(t128, 'x', IMAGE_REF_TAG_MAX);
    t128[IMAGE_REF_TAG_MAX] = '\0';
    assert_int_equal(image_ref_set_tag(r, t128, NULL), 0);
    /* name of exactly 255 */
    assert_int_equal(image_ref_parse(max_name, &r2, NULL), 0);
}

static void test_format(void **state)
{
    (void)state;
    struct {
        const char *in, *full, *name, *familiar, *familiar_name;
    } t[] = {
        {"busybox", "docker.io/library/busybox:latest", "docker.io/library/busybox",
         "busybox:latest", "busybox"},
        {"user/x:1", "docker.io/user/x:1", "docker.io/user/x", "user/x:1", "user/x"},
        {"docker.io/library/a/b", "docker.io/library/a/b:latest", "docker.io/library/a/b",
         "library/a/b:latest", "library/a/b"},
        {"quay.io/x@" D256, "quay.io/x@" D256, "quay.io/x", "quay.io/x@" D256, "quay.io/x"},
        {"localhost:5000/library/x:t", "localhost:5000/library/x:t", "localhost:5000/library/x",
         "localhost:5000/library/x:t", "localhost:5000/library/x"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cleanup_image_ref image_ref_t *r = NULL;
        cleanup_free char *full = NULL, *name = NULL, *fam = NULL, *famname = NULL;
        assert_int_equal(image_ref_parse_normalized(t[i].in, &r, NULL), 0);
        full = image_ref_string(r);
        name = image_ref_name(r);
        fam = image_ref_familiar(r);
        famname = image_ref_familiar_name(r);
        assert_string_equal(full, t[i].full);
        assert_string_equal(name, t[i].name);
        assert_string_equal(fam, t[i].familiar);
        assert_string_equal(famname, t[i].familiar_name);
        assert_true(image_ref_has_domain(r));
    }
}

static void test_short_names(void **state)
{
    (void)state;
    assert_true(image_ref_is_short_name("busybox"));
    assert_true(image_ref_is_short_name("user/app:1"));
    assert_true(image_ref_is_short_name("busybox@" D256));
    assert_false(image_ref_is_short_name("docker.io/busybox"));
    assert_false(image_ref_is_short_name("localhost/busybox"));
    assert_false(image_ref_is_short_name("reg:5000/busybox"));
    assert_false(image_ref_is_short_name("Busybox"));
    assert_false(image_ref_is_short_name(""));

    cleanup_image_ref image_ref_t *r = NULL;
    cleanup_image_ref image_ref_t *q1 = NULL, *q2 = NULL, *q3 = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_ref_parse("busybox:1", &r, NULL), 0);
    assert_false(image_ref_has_domain(r));
    assert_int_equal(image_ref_qualify(r, "docker.io", &q1, NULL), 0);
    assert_string_equal(q1->domain, "docker.io");
    assert_string_equal(q1->path, "library/busybox");
    assert_string_equal(q1->tag, "1");
    assert_int_equal(image_ref_qualify(r, "quay.io", &q2, NULL), 0);
    assert_string_equal(q2->path, "busybox");
    assert_int_equal(image_ref_qualify(r, "bad_domain", &q3, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "invalid domain"));
    assert_int_equal(image_ref_qualify(q2, "quay.io", &q3, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "already qualified"));
}

static void test_setters(void **state)
{
    (void)state;
    cleanup_image_ref image_ref_t *r = NULL;
    cleanup_image_ref image_ref_t *d = NULL;
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *s1 = NULL, *s2 = NULL;
    assert_int_equal(image_ref_parse("quay.io/x:1", &r, NULL), 0);
    assert_int_equal(image_ref_set_digest(r, D256, NULL), 0);
    assert_int_equal(image_ref_set_tag(r, NULL, NULL), 0);
    s1 = image_ref_string(r);
    assert_string_equal(s1, "quay.io/x@" D256);
    assert_int_equal(image_ref_set_digest(r, "sha256:nothex", &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "invalid digest"));
    assert_int_equal(image_ref_set_tag(r, "bad tag", &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "invalid tag"));
    d = image_ref_dup(r);
    s2 = image_ref_string(d);
    assert_string_equal(s1, s2);
    assert_int_equal(image_ref_validate_domain("a.b:1", NULL), 0);
    assert_int_equal(image_ref_validate_domain("a.b:", NULL), -1);
}

static void test_random(void **state)
{
    (void)state;
    const char alpha[] = "ab0.-_/:@Z";
    uint32_t seed = 42;
    size_t accepted = 0;
    for (int i = 0; i < 20000; i++) {
        char buf[24];
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % (sizeof(buf) - 1);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = alpha[(seed >> 8) % (sizeof(alpha) - 1)];
        }
        buf[n] = '\0';
        cleanup_image_ref image_ref_t *r = NULL;
        cleanup_image_ref image_ref_t *r2 = NULL;
        cleanup_error berth_error_t err = NULL;
        if (image_ref_parse(buf, &r, &err) < 0) {
            assert_non_null(err);
            continue;
        }
        accepted++;
        cleanup_free char *s1 = image_ref_string(r);
        assert_string_equal(s1, buf);
        assert_int_equal(image_ref_normalize(r, NULL), 0);
        cleanup_free char *s2 = image_ref_string(r);
        assert_int_equal(image_ref_parse_normalized(s2, &r2, NULL), 0);
        cleanup_free char *s3 = image_ref_string(r2);
        assert_string_equal(s2, s3);
    }
    assert_true(accepted > 100);
}

int main(void)
{
    build_long_inputs();
    cases_ptr = cases;
    n_cases = sizeof(cases) / sizeof(cases[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),   cmocka_unit_test(test_max_lengths),
        cmocka_unit_test(test_format),  cmocka_unit_test(test_short_names),
        cmocka_unit_test(test_setters), cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
