#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/digest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *SHA256_EMPTY =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *SHA256_ABC =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *SHA512_EMPTY =
    "sha512:"
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2"
    "877eec2f63b931bd47417a81a538327af927da3e";
static const char *SHA512_ABC =
    "sha512:"
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23"
    "a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

static void test_vectors(void **state)
{
    (void)state;
    cleanup_free char *a = digest_buffer(DIGEST_SHA256, "", 0);
    cleanup_free char *b = digest_buffer(DIGEST_SHA256, "abc", 3);
    cleanup_free char *c = digest_buffer(DIGEST_SHA512, "", 0);
    cleanup_free char *d = digest_buffer(DIGEST_SHA512, "abc", 3);
    assert_string_equal(a, SHA256_EMPTY);
    assert_string_equal(b, SHA256_ABC);
    assert_string_equal(c, SHA512_EMPTY);
    assert_string_equal(d, SHA512_ABC);
}

static void test_streaming(void **state)
{
    (void)state;
    cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
    digester_update(d, "a", 1);
    digester_update(d, "", 0);
    digester_update(d, "bc", 2);
    cleanup_free char *s = digester_finish(d);
    assert_string_equal(s, SHA256_ABC);
    assert_true(digest_equal(s, SHA256_ABC));
    assert_false(digest_equal(s, SHA256_EMPTY));
    assert_false(digest_equal(s, NULL));
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/berth-digest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *out = NULL;
    assert_int_equal(digest_file(path, DIGEST_SHA512, &out, &err), 0);
    assert_string_equal(out, SHA512_ABC);
    unlink(path);
    cleanup_free char *out2 = NULL;
    assert_true(digest_file(path, DIGEST_SHA256, &out2, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), path));
}

struct vcase {
    const char *digest;
    bool ok;
    const char *msg_part;
};

static void test_validate_table(void **state)
{
    (void)state;
    static char longbad[5000];
    memset(longbad, 'a', sizeof(longbad) - 1);
    memcpy(longbad, "sha256:", 7);
    const struct vcase cases[] = {
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true, NULL},
        {SHA512_ABC, true, NULL},
        {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false,
         "lowercase hex"},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", false, "64 hex"},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", false,
         "64 hex"},
        {"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false,
         "128 hex"},
        {"md5:d41d8cd98f00b204e9800998ecf8427e", false, "unsupported algorithm \"md5\""},
        {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false, "missing"},
        {"", false, "empty"},
        {"sha256:", false, "64 hex"},
        {":abc", false, "unsupported algorithm"},
        {"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false,
         "unsupported algorithm"},
        {"sha256:../../../../etc/passwd", false, "lowercase hex"},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/", false,
         "lowercase hex"},
        {longbad, false, "..."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_error berth_error_t err = NULL;
        int r = digest_validate(cases[i].digest, &err);
        if (cases[i].ok) {
            assert_int_equal(r, 0);
            assert_null(err);
            assert_non_null(digest_hex(cases[i].digest));
        } else {
            if (r == 0)
                fail_msg("case %zu accepted: %s", i, cases[i].digest);
            const char *m = berth_error_msg(err);
            if (strstr(m, cases[i].msg_part) == NULL)
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, m, cases[i].msg_part);
            assert_true(strlen(m) < 400); /* truncated, never the whole input */
            assert_null(digest_hex(cases[i].digest));
        }
    }
    cleanup_error berth_error_t err = NULL;
    assert_true(digest_validate(NULL, &err) < 0);
}

static void test_parse(void **state)
{
    (void)state;
    digest_algo_t algo;
    const char *hex = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(digest_parse(SHA512_ABC, &algo, &hex, &err), 0);
    assert_int_equal(algo, DIGEST_SHA512);
    assert_ptr_equal(hex, SHA512_ABC + 7);
    assert_int_equal(digest_algo_from_name("sha256", &algo, &err), 0);
    assert_int_equal(algo, DIGEST_SHA256);
    assert_true(digest_algo_from_name("sha1", &algo, &err) < 0);
    assert_string_equal(digest_algo_name(DIGEST_SHA512), "sha512");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors), cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_file),    cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
