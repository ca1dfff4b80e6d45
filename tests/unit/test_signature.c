/* Simple signing with real GPG keys generated for the test in a temporary GNUPGHOME, and the
 * policy's signedBy decisions over those signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "transport/policy.h"
#include "transport/signature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char home[] = "/tmp/test_signature_XXXXXX";
static char *gnupghome, *fpr_a, *fpr_b, *pub_a, *pub_b;

static const char MANIFEST[] = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
                               "manifest.v1+json\",\"layers\":[]}";
static const char OTHER[] = "{\"schemaVersion\":2}";

static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int r = system(cmd);
    free(cmd);
    return r;
}

static char *fingerprint_of(const char *email)
{
    cleanup_free char *out = xasprintf("%s/fpr", home);
    if (sh("gpg --batch --with-colons --list-keys '%s' | awk -F: '/^fpr/{print $10; exit}' > %s",
           email, out) != 0)
        return NULL;
    char *buf = NULL;
    size_t len;
    berth_error_t e = NULL;
    if (fs_read_file(out, 1024, &buf, &len, &e) < 0) {
        berth_error_release(&e);
        return NULL;
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(home))
        return -1;
    gnupghome = xasprintf("%s/gnupg", home);
    setenv("GNUPGHOME", gnupghome, 1);
    if (sh("mkdir -m 700 %s", gnupghome) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (sh("gpg --batch --quiet --passphrase '' --quick-gen-key 'Test %c <%c@example.com>' "
               "default default never 2>/dev/null",
               'A' + i, 'a' + i) != 0)
            return -1;
    fpr_a = fingerprint_of("a@example.com");
    fpr_b = fingerprint_of("b@example.com");
    pub_a = xasprintf("%s/a.gpg", home);
    pub_b = xasprintf("%s/b.gpg", home);
    if (!fpr_a || !fpr_b || sh("gpg --batch --export %s > %s", fpr_a, pub_a) != 0 ||
        sh("gpg --batch --armor --export %s > %s", fpr_b, pub_b) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sh("gpgconf --homedir %s --kill gpg-agent 2>/dev/null", gnupghome);
    sh("rm -rf %s", home);
    free(gnupghome);
    free(fpr_a);
    free(fpr_b);
    free(pub_a);
    free(pub_b);
    return 0;
}

static void sign(const char *manifest, const char *ref, const char *fpr, char **sig, size_t *len)
{
    cleanup_error berth_error_t err = NULL;
    if (signature_sign(manifest, strlen(manifest), ref, fpr, NULL, sig, len, &err) < 0)
        fail_msg("sign: %s", berth_error_msg(err));
}

static void test_sign_verify_user_keyring(void **state)
{
    (void)state;
    cleanup_free char *sig = NULL;
    size_t len;
    sign(MANIFEST, "busybox:1", fpr_a, &sig, &len);
    char *fprs[] = {fpr_a, NULL};
    struct signature_info si;
    cleanup_error berth_error_t err = NULL;
    if (signature_verify(NULL, fprs, sig, len, &si, &err) < 0)
        fail_msg("verify: %s", berth_error_msg(err));
    assert_string_equal(si.docker_reference, "docker.io/library/busybox:1");
    assert_string_equal(si.fingerprint, fpr_a);
    cleanup_free char *d = digest_buffer(DIGEST_SHA256, MANIFEST, strlen(MANIFEST));
    assert_string_equal(si.manifest_digest, d);
    assert_int_equal(signature_check_manifest(&si, MANIFEST, strlen(MANIFEST), &err), 0);
    /* another manifest: refused */
    assert_int_equal(signature_check_manifest(&si, OTHER, strlen(OTHER), &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "but the manifest is"));
    berth_error_release(&err);
    signature_info_clear(&si);
    /* a fingerprint that is not accepted */
    char *only_b[] = {fpr_b, NULL};
    assert_int_equal(signature_verify(NULL, only_b, sig, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "not an accepted key"));
    berth_error_release(&err);
    /* a flipped byte in the signed data: refused */
    sig[len / 2] ^= 0x20;
    assert_int_equal(signature_verify(NULL, fprs, sig, len, &si, &err), -1);
    berth_error_release(&err);
    /* not a signature at all */
    assert_int_equal(signature_verify(NULL, fprs, "hello", 5, &si, &err), -1);
}

static void test_keyring(void **state)
{
    (void)state;
    cleanup_free char *sig = NULL;
    size_t len;
    sign(MANIFEST, "quay.io/x/y:2", fpr_a, &sig, &len);
    cleanup_error berth_error_t err = NULL;
    struct signature_keyring *kr = NULL;
    char *paths_a[] = {pub_a, NULL};
    assert_int_equal(signature_keyring_new(paths_a, NULL, 0, &kr, &err), 0);
    struct signature_info si;
    if (signature_verify(kr, NULL, sig, len, &si, &err) < 0)
        fail_msg("verify: %s", berth_error_msg(err));
    assert_string_equal(si.docker_reference, "quay.io/x/y:2");
    signature_info_clear(&si);
    signature_keyring_free(kr);
    /* only B's key (armored) trusted: A's signature is refused */
    char *paths_b[] = {pub_b, NULL};
    assert_int_equal(signature_keyring_new(paths_b, NULL, 0, &kr, &err), 0);
    assert_int_equal(signature_verify(kr, NULL, sig, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "not trusted"));
    berth_error_release(&err);
    signature_keyring_free(kr);
    /* a key file without keys */
    char *bad[] = {"/dev/null", NULL};
    assert_int_equal(signature_keyring_new(bad, NULL, 0, &kr, &err), -1);
}

static void test_payload_strict(void **state)
{
    (void)state;
    /* a payload with an unknown critical field, signed by a trusted key, is still refused */
    cleanup_free char *in = xasprintf("%s/payload", home), *out = xasprintf("%s/payload.sig", home);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fprintf(f, "{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-"
               "manifest-digest\":\"sha256:0000000000000000000000000000000000000000000000000000"
               "000000000000\"},\"identity\":{\"docker-reference\":\"a.io/b:1\"},\"extra\":1},"
               "\"optional\":{}}");
    fclose(f);
    assert_int_equal(sh("gpg --batch --quiet -u %s --sign -o %s %s", fpr_a, out, in), 0);
    cleanup_free char *sig = NULL;
    size_t len;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_read_file(out, SIGNATURE_MAX_SIZE, &sig, &len, &err), 0);
    char *fprs[] = {fpr_a, NULL};
    struct signature_info si;
    assert_int_equal(signature_verify(NULL, fprs, sig, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "unknown field critical.\"extra\""));
}

/* signedBy decisions: (identity JSON, image reference, signed reference, accepted?) */
static void test_policy_identities(void **state)
{
    (void)state;
    static const char digest_ref[] =
        "reg.io/app@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    struct {
        const char *identity; /* NULL: default */
        const char *image, *signed_as;
        bool ok;
    } cases[] = {
        {NULL, "reg.io/app:1", "reg.io/app:1", true},
        {NULL, "reg.io/app:2", "reg.io/app:1", false},
        {NULL, digest_ref, "reg.io/app:1", true}, /* by digest: repository must match */
        {NULL, digest_ref, "reg.io/other:1", false},
        {"{\"type\":\"matchExact\"}", "reg.io/app:1", "reg.io/app:1", true},
        {"{\"type\":\"matchExact\"}", digest_ref, "reg.io/app:1", false},
        {"{\"type\":\"matchRepository\"}", "reg.io/app:2", "reg.io/app:1", true},
        {"{\"type\":\"matchRepository\"}", "reg.io/app2:1", "reg.io/app:1", false},
        {"{\"type\":\"exactReference\",\"dockerReference\":\"pub.io/app:9\"}", "reg.io/x:1",
         "pub.io/app:9", true},
        {"{\"type\":\"exactReference\",\"dockerReference\":\"pub.io/app:9\"}", "reg.io/x:1",
         "pub.io/app:8", false},
        {"{\"type\":\"exactRepository\",\"dockerRepository\":\"pub.io/app\"}", "reg.io/x:1",
         "pub.io/app:8", true},
        {"{\"type\":\"exactRepository\",\"dockerRepository\":\"pub.io/app\"}", "reg.io/x:1",
         "pub.io/ap:8", false},
        {"{\"type\":\"remapIdentity\",\"prefix\":\"mirror.io/m\",\"signedPrefix\":\"pub.io\"}",
         "mirror.io/m/app:1", "pub.io/app:1", true},
        {"{\"type\":\"remapIdentity\",\"prefix\":\"mirror.io/m\",\"signedPrefix\":\"pub.io\"}",
         "mirror.io/m/app:1", "mirror.io/m/app:1", false},
        {"{\"type\":\"remapIdentity\",\"prefix\":\"mirror.io/m\",\"signedPrefix\":\"pub.io\"}",
         "other.io/app:1", "other.io/app:1", true}, /* prefix not matching: as the default */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_free char *doc = xasprintf("{\"default\":[{\"type\":\"signedBy\",\"keyType\":"
                                           "\"GPGKeys\",\"keyPath\":\"%s\"%s%s}]}",
                                           pub_a, cases[i].identity ? ",\"signedIdentity\":" : "",
                                           cases[i].identity ? cases[i].identity : "");
        cleanup_policy struct policy *p = NULL;
        cleanup_error berth_error_t err = NULL;
        if (policy_parse(doc, strlen(doc), "t", &p, &err) < 0)
            fail_msg("case %zu: %s", i, berth_error_msg(err));
        cleanup_free char *sig = NULL;
        size_t len;
        sign(MANIFEST, cases[i].signed_as, fpr_a, &sig, &len);
        char *sigs[] = {sig};
        size_t lens[] = {len};
        int r = policy_check_image(p, "docker", cases[i].image, MANIFEST, strlen(MANIFEST), sigs,
                                   lens, 1, &err);
        if ((r == 0) != cases[i].ok)
            fail_msg("case %zu (%s signed as %s): got %d %s", i, cases[i].image, cases[i].signed_as,
                     r, err ? berth_error_msg(err) : "");
    }
}

static void test_policy_signatures(void **state)
{
    (void)state;
    cleanup_free char *doc = xasprintf(
        "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[\"%s\"]}]}",
        pub_b);
    cleanup_policy struct policy *p = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(policy_parse(doc, strlen(doc), "t", &p, &err), 0);
    cleanup_free char *sa = NULL, *sb = NULL, *sother = NULL;
    size_t la, lb, lo;
    sign(MANIFEST, "r.io/a:1", fpr_a, &sa, &la);
    sign(MANIFEST, "r.io/a:1", fpr_b, &sb, &lb);
    sign(OTHER, "r.io/a:1", fpr_b, &sother, &lo);
    /* A's signature alone: wrong key */
    char *s1[] = {sa};
    size_t l1[] = {la};
    assert_int_equal(
        policy_check_image(p, "docker", "r.io/a:1", MANIFEST, strlen(MANIFEST), s1, l1, 1, &err),
        -1);
    assert_non_null(strstr(berth_error_msg(err), "signature 1: signed by key"));
    berth_error_release(&err);
    /* B's signature of another manifest: tampered manifest */
    char *s2[] = {sa, sother};
    size_t l2[] = {la, lo};
    assert_int_equal(
        policy_check_image(p, "docker", "r.io/a:1", MANIFEST, strlen(MANIFEST), s2, l2, 2, &err),
        -1);
    assert_non_null(strstr(berth_error_msg(err), "signature 2: signature is for manifest"));
    berth_error_release(&err);
    /* one good signature among bad ones is enough */
    char *s3[] = {sa, sother, sb};
    size_t l3[] = {la, lo, lb};
    if (policy_check_image(p, "docker", "r.io/a:1", MANIFEST, strlen(MANIFEST), s3, l3, 3, &err) <
        0)
        fail_msg("%s", berth_error_msg(err));
    /* the signed manifest changed by one byte */
    cleanup_free char *tampered = xstrdup(MANIFEST);
    tampered[5] = 'S';
    char *s4[] = {sb};
    size_t l4[] = {lb};
    assert_int_equal(
        policy_check_image(p, "docker", "r.io/a:1", tampered, strlen(tampered), s4, l4, 1, &err),
        -1);
    berth_error_release(&err);
    /* keyData (base64 of the binary export of B) works like keyPath */
    cleanup_free char *b64 = xasprintf("%s/b.b64", home);
    assert_int_equal(sh("gpg --batch --export %s | base64 -w0 > %s", fpr_b, b64), 0);
    cleanup_free char *kd = NULL;
    size_t kdl;
    assert_int_equal(fs_read_file(b64, 1 << 20, &kd, &kdl, &err), 0);
    cleanup_free char *doc2 = xasprintf(
        "{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"%s\"}]}", kd);
    cleanup_policy struct policy *p2 = NULL;
    assert_int_equal(policy_parse(doc2, strlen(doc2), "t", &p2, &err), 0);
    if (policy_check_image(p2, "docker", "r.io/a:1", MANIFEST, strlen(MANIFEST), s4, l4, 1, &err) <
        0)
        fail_msg("%s", berth_error_msg(err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_user_keyring), cmocka_unit_test(test_keyring),
        cmocka_unit_test(test_payload_strict),           cmocka_unit_test(test_policy_identities),
        cmocka_unit_test(test_policy_signatures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
