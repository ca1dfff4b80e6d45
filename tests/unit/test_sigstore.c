#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "transport/policy.h"
#include "transport/sigstore.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys are made here with OpenSSL; signatures like cosign makes them (SHA-256, DER ECDSA). */

static const char MANIFEST[] = "{\"schemaVersion\":2,\"mediaType\":\"x\"}";

static EVP_PKEY *make_key(const char *type)
{
    EVP_PKEY *k = NULL;
    if (strcmp(type, "P-256") == 0 || strcmp(type, "P-384") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
    else if (strcmp(type, "RSA") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

static char *pub_pem(EVP_PKEY *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

static char *sign_b64(EVP_PKEY *k, const char *data, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
    size_t sl = 0;
    assert_int_equal(EVP_DigestSign(ctx, NULL, &sl, (const unsigned char *)data, len), 1);
    unsigned char *sig = malloc(sl);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)data, len), 1);
    EVP_MD_CTX_free(ctx);
    char *b64 = sigstore_base64_encode(sig, sl);
    free(sig);
    return b64;
}

static char *payload_for(const char *digest, const char *ref)
{
    char *p = NULL;
    assert_true(asprintf(&p,
                         "{\"critical\":{\"identity\":{\"docker-reference\":\"%s\"},\"image\":{"
                         "\"docker-manifest-digest\":\"%s\"},\"type\":\"cosign container image "
                         "signature\"},\"optional\":null}",
                         ref, digest) > 0);
    return p;
}

/* A blob with the payload signed by k (sig_b64 overrides the signature annotation). */
static char *make_sig(EVP_PKEY *k, const char *payload, const char *sig_b64, const char *mime,
                      size_t *len)
{
    char *s = sig_b64 ? strdup(sig_b64) : sign_b64(k, payload, strlen(payload));
    json_t *ann = json_pack("{s:s,s:s}", SIGSTORE_SIGNATURE_ANN, s, "other", "x");
    char *blob;
    berth_error_t err = NULL;
    assert_int_equal(sigstore_blob_make(mime ? mime : SIGSTORE_MIME_TYPE, payload, strlen(payload),
                                        ann, &blob, len, &err),
                     0);
    json_decref(ann);
    free(s);
    return blob;
}

static struct sigstore_pubkey *load_pub(EVP_PKEY *k)
{
    size_t pl;
    char *pem = pub_pem(k, &pl);
    struct sigstore_pubkey *pk = NULL;
    berth_error_t err = NULL;
    assert_int_equal(sigstore_pubkey_load(NULL, pem, pl, &pk, &err), 0);
    free(pem);
    return pk;
}

static void test_base64_and_format(void **state)
{
    (void)state;
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *exp[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = sigstore_base64_encode(in[i], strlen(in[i]));
        assert_string_equal(e, exp[i]);
        char *d;
        size_t dl;
        assert_int_equal(sigstore_base64_decode(e, strlen(e), &d, &dl), 0);
        assert_int_equal(dl, strlen(in[i]));
        assert_memory_equal(d, in[i], dl);
        free(d);
        free(e);
    }
    const char *bad[] = {"Zg=", "Zm9v\n", "Z===", "Zg==Zg==", "Zm9*", "=Zg="};
    for (size_t i = 0; i < 6; i++) {
        char *d;
        size_t dl;
        assert_int_equal(sigstore_base64_decode(bad[i], strlen(bad[i]), &d, &dl), -1);
    }
    const char *body;
    size_t bl;
    assert_int_equal(signature_blob_format("\xa3\x01", 2, &body, &bl), SIGNATURE_FORMAT_SIMPLE);
    assert_int_equal(bl, 2);
    assert_int_equal(signature_blob_format("\0simple-signing\nAB", 18, &body, &bl),
                     SIGNATURE_FORMAT_SIMPLE);
    assert_int_equal(bl, 2);
    assert_memory_equal(body, "AB", 2);
    assert_int_equal(signature_blob_format("\0sigstore-json\n{}", 17, &body, &bl),
                     SIGNATURE_FORMAT_SIGSTORE);
    assert_int_equal(bl, 2);
    assert_int_equal(signature_blob_format("\0cosign\n{}", 10, NULL, NULL),
                     SIGNATURE_FORMAT_UNKNOWN);
}

static void test_blob_roundtrip(void **state)
{
    (void)state;
    json_t *ann = json_pack("{s:s,s:s}", "z", "1", "a", "2");
    char *blob;
    size_t len;
    berth_error_t err = NULL;
    assert_int_equal(sigstore_blob_make(SIGSTORE_MIME_TYPE, "hi", 2, ann, &blob, &len, &err), 0);
    /* skopeo's dir: form: prefix, fields in this order, annotations sorted */
    const char exp[] = "\0sigstore-json\n{\"mimeType\":\"" SIGSTORE_MIME_TYPE
                       "\",\"payload\":\"aGk=\",\"annotations\":{\"a\":\"2\",\"z\":\"1\"}}";
    assert_int_equal(len, sizeof(exp) - 1);
    assert_memory_equal(blob, exp, len);
    struct sigstore_sig s;
    assert_int_equal(sigstore_blob_parse(blob, len, &s, &err), 0);
    assert_string_equal(s.mime_type, SIGSTORE_MIME_TYPE);
    assert_int_equal(s.payload_len, 2);
    assert_true(json_equal(s.annotations, ann));
    sigstore_sig_clear(&s);
    free(blob);
    json_decref(ann);
    /* malformed blobs */
    static const struct {
        const char *json, *error;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"mimeType\":\"x\"}", "missing"},
        {"{\"mimeType\":\"x\",\"payload\":\"!!\"}", "not base64"},
        {"{\"mimeType\":\"x\",\"payload\":\"\",\"annotations\":[]}", "not an object"},
        {"{\"mimeType\":\"x\",\"payload\":\"\",\"annotations\":{\"a\":1}}", "not a string"},
        {"{\"mimeType\":\"x\",\"payload\":\"\",\"extra\":1}", "unknown field"},
        {"{\"mimeType\":\"x\"", "invalid"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[256];
        memcpy(buf, SIGSTORE_BLOB_PREFIX, SIGSTORE_BLOB_PREFIX_LEN);
        size_t bl = SIGSTORE_BLOB_PREFIX_LEN;
        memcpy(buf + bl, bad[i].json, strlen(bad[i].json));
        bl += strlen(bad[i].json);
        assert_int_equal(sigstore_blob_parse(buf, bl, &s, &err), -1);
        if (!strstr(berth_error_msg(err), bad[i].error))
            fail_msg("case %zu: %s", i, berth_error_msg(err));
        berth_error_release(&err);
    }
    assert_int_equal(sigstore_blob_parse("\xa3zz", 3, &s, &err), -1);
    berth_error_release(&err);
}

static void test_payload_parse(void **state)
{
    (void)state;
    static const struct {
        const char *json, *error;
    } cases[] = {
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"busybox:1\"},\"image\":{\"docker-"
         "manifest-digest\":\"sha256:"
         "0000000000000000000000000000000000000000000000000000000000000000\"},\"type\":\"cosign "
         "container image signature\"},\"optional\":{\"creator\":\"x\",\"timestamp\":1,\"k\":[]}}",
         NULL},
        {"{\"critical\":{}}", "optional is missing"},
        {"{\"critical\":{},\"optional\":null,\"x\":1}", "unknown field"},
        {"{\"critical\":{\"identity\":{},\"image\":{},\"type\":\"cosign container image "
         "signature\"},\"optional\":null}",
         "docker-manifest-digest is missing"},
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"a:1\"},\"image\":{\"docker-manifest-"
         "digest\":\"sha256:00\"},\"type\":\"cosign container image signature\"},\"optional\":"
         "null}",
         "sha256"},
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"a:1\"},\"image\":{\"docker-manifest-"
         "digest\":\"sha256:"
         "0000000000000000000000000000000000000000000000000000000000000000\"},\"type\":\"atomic "
         "container signature\"},\"optional\":null}",
         "critical.type"},
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"a:1\"},\"image\":{\"docker-manifest-"
         "digest\":\"sha256:"
         "0000000000000000000000000000000000000000000000000000000000000000\"},\"type\":\"cosign "
         "container image signature\",\"more\":1},\"optional\":null}",
         "unknown field critical"},
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"a:1\"},\"image\":{\"docker-manifest-"
         "digest\":\"sha256:"
         "0000000000000000000000000000000000000000000000000000000000000000\"},\"type\":\"cosign "
         "container image signature\"},\"optional\":{\"timestamp\":\"now\"}}",
         "timestamp"},
        {"{\"critical\":{\"identity\":{\"docker-reference\":\"A B\"},\"image\":{\"docker-manifest-"
         "digest\":\"sha256:"
         "0000000000000000000000000000000000000000000000000000000000000000\"},\"type\":\"cosign "
         "container image signature\"},\"optional\":null}",
         "docker-reference"},
        {"{\"critical\":", "sigstore payload"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct signature_info si;
        berth_error_t err = NULL;
        int r = sigstore_payload_parse(cases[i].json, strlen(cases[i].json), &si, &err);
        if (!cases[i].error) {
            if (r != 0)
                fail_msg("case %zu: %s", i, berth_error_msg(err));
            assert_string_equal(si.docker_reference, "docker.io/library/busybox:1");
            signature_info_clear(&si);
            continue;
        }
        assert_int_equal(r, -1);
        if (!strstr(berth_error_msg(err), cases[i].error))
            fail_msg("case %zu: %s", i, berth_error_msg(err));
        berth_error_release(&err);
    }
}

static void verify_with(const char *type)
{
    EVP_PKEY *k = make_key(type), *other = make_key(type);
    cleanup_free char *d = digest_buffer(DIGEST_SHA256, MANIFEST, strlen(MANIFEST));
    cleanup_free char *payload = payload_for(d, "quay.io/a/b:1");
    size_t len;
    cleanup_free char *blob = make_sig(k, payload, NULL, NULL, &len);
    struct sigstore_pubkey *pk = load_pub(k), *opk = load_pub(other);
    struct signature_info si;
    berth_error_t err = NULL;
    if (sigstore_verify(pk, blob, len, &si, &err) != 0)
        fail_msg("%s: %s", type, berth_error_msg(err));
    assert_string_equal(si.manifest_digest, d);
    assert_string_equal(si.docker_reference, "quay.io/a/b:1");
    assert_int_equal(signature_check_manifest(&si, MANIFEST, strlen(MANIFEST), &err), 0);
    signature_info_clear(&si);
    /* another key */
    assert_int_equal(sigstore_verify(opk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "does not verify"));
    berth_error_release(&err);
    sigstore_pubkey_free(pk);
    sigstore_pubkey_free(opk);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void test_verify_key_types(void **state)
{
    (void)state;
    verify_with("P-256");
    verify_with("P-384");
    verify_with("RSA");
    verify_with("ED25519");
}

static void test_verify_rejects(void **state)
{
    (void)state;
    EVP_PKEY *k = make_key("P-256");
    struct sigstore_pubkey *pk = load_pub(k);
    cleanup_free char *d = digest_buffer(DIGEST_SHA256, MANIFEST, strlen(MANIFEST));
    cleanup_free char *payload = payload_for(d, "quay.io/a/b:1");
    cleanup_free char *good = sign_b64(k, payload, strlen(payload));
    struct signature_info si;
    berth_error_t err = NULL;
    size_t len;
    char *blob;

    /* payload altered after signing */
    cleanup_free char *other = payload_for(d, "quay.io/a/c:1");
    blob = make_sig(k, other, good, NULL, &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "does not verify"));
    berth_error_release(&err);
    free(blob);

    /* signature bytes altered */
    cleanup_free char *flipped = strdup(good);
    flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
    blob = make_sig(k, payload, flipped, NULL, &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    berth_error_release(&err);
    free(blob);

    /* not base64, empty */
    blob = make_sig(k, payload, "MEUC!!==", NULL, &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "not base64"));
    berth_error_release(&err);
    free(blob);
    blob = make_sig(k, payload, "", NULL, &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    berth_error_release(&err);
    free(blob);

    /* a huge annotation is refused before decoding */
    size_t huge = SIGSTORE_SIGNATURE_MAX + 4;
    char *big = malloc(huge + 1);
    memset(big, 'A', huge);
    big[huge] = '\0';
    blob = make_sig(k, payload, big, NULL, &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "larger than"));
    berth_error_release(&err);
    free(blob);
    free(big);

    /* another media type */
    blob = make_sig(k, payload, NULL, "text/plain", &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "media type"));
    berth_error_release(&err);
    free(blob);

    /* no signature annotation */
    json_t *ann = json_pack("{s:s}", "x", "y");
    assert_int_equal(
        sigstore_blob_make(SIGSTORE_MIME_TYPE, payload, strlen(payload), ann, &blob, &len, &err),
        0);
    json_decref(ann);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "no " SIGSTORE_SIGNATURE_ANN));
    berth_error_release(&err);
    free(blob);

    /* a validly signed payload that is not a cosign payload */
    const char *junk = "{\"critical\":{}}";
    blob = make_sig(k, junk, NULL, NULL, &len);
    assert_int_equal(sigstore_verify(pk, blob, len, &si, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "optional is missing"));
    berth_error_release(&err);
    free(blob);

    /* keys that are not public key PEM */
    struct sigstore_pubkey *x = NULL;
    assert_int_equal(sigstore_pubkey_load(NULL, "junk", 4, &x, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "PUBLIC KEY"));
    berth_error_release(&err);
    assert_int_equal(sigstore_pubkey_load("/nonexistent/k.pub", NULL, 0, &x, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "/nonexistent/k.pub"));
    berth_error_release(&err);

    sigstore_pubkey_free(pk);
    EVP_PKEY_free(k);
}

/* policy.json sigstoreSigned decisions with keyData */
static void test_policy_decisions(void **state)
{
    (void)state;
    EVP_PKEY *k = make_key("P-256");
    size_t pl;
    cleanup_free char *pem = pub_pem(k, &pl);
    cleanup_free char *kd = sigstore_base64_encode(pem, pl);
    cleanup_free char *json = NULL;
    assert_true(asprintf(&json,
                         "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"\":[{"
                         "\"type\":\"sigstoreSigned\",\"keyData\":\"%s\"}]}}}",
                         kd) > 0);
    cleanup_policy struct policy *p = NULL;
    berth_error_t err = NULL;
    assert_int_equal(policy_parse(json, strlen(json), "test", &p, &err), 0);
    cleanup_free char *d = digest_buffer(DIGEST_SHA256, MANIFEST, strlen(MANIFEST));
    cleanup_free char *payload = payload_for(d, "quay.io/a/b:1");
    size_t len;
    cleanup_free char *blob = make_sig(k, payload, NULL, NULL, &len);
    char *sigs[2] = {blob, NULL};
    size_t lens[2] = {len, 0};
    assert_int_equal(policy_check_image(p, "docker", "quay.io/a/b:1", MANIFEST, strlen(MANIFEST),
                                        sigs, lens, 1, &err),
                     0);
    /* another tag: matchRepoDigestOrExact refuses */
    assert_int_equal(policy_check_image(p, "docker", "quay.io/a/b:2", MANIFEST, strlen(MANIFEST),
                                        sigs, lens, 1, &err),
                     -1);
    assert_non_null(strstr(berth_error_msg(err), "matchRepoDigestOrExact"));
    berth_error_release(&err);
    /* another manifest */
    const char other[] = "{\"schemaVersion\":2}";
    assert_int_equal(
        policy_check_image(p, "docker", "quay.io/a/b:1", other, strlen(other), sigs, lens, 1, &err),
        -1);
    assert_non_null(strstr(berth_error_msg(err), "sigstore signature 1"));
    berth_error_release(&err);
    /* no signatures / only simple signing ones */
    assert_int_equal(policy_check_image(p, "docker", "quay.io/a/b:1", MANIFEST, strlen(MANIFEST),
                                        NULL, NULL, 0, &err),
                     -1);
    assert_non_null(strstr(berth_error_msg(err), "no sigstore signature exists"));
    berth_error_release(&err);
    char *simple[1] = {"\xa3junk"};
    size_t slen[1] = {5};
    assert_int_equal(policy_check_image(p, "docker", "quay.io/a/b:1", MANIFEST, strlen(MANIFEST),
                                        simple, slen, 1, &err),
                     -1);
    assert_non_null(strstr(berth_error_msg(err), "only simple signing"));
    berth_error_release(&err);
    /* a bad signature first, a good one second: accepted */
    cleanup_free char *bad = make_sig(k, payload, "AAAA", NULL, &len);
    char *two[2] = {bad, blob};
    size_t two_lens[2] = {len, lens[0]};
    assert_int_equal(policy_check_image(p, "docker", "quay.io/a/b:1", MANIFEST, strlen(MANIFEST),
                                        two, two_lens, 2, &err),
                     0);
    EVP_PKEY_free(k);
}

/* crypto_secretbox with key 0..31, nonce 100..123, message 0..199 + "hello world" (made with
 * PyNaCl), so the XSalsa20 here is checked against libsodium's. */
static const char BOX_HEX[] =
    "22db52267e1545ed1996362fbf09664502b89bca3eb3c8eeb8f4299f3b89ad172ebb2ab4f0b35d0cbe15588f16"
    "96d797884ed63b6b12bdc3dd3f3d492c3ef34af1a19c2b26b30f683bd8693fe78fa05b03ca0e2e8c790ecdf1c655"
    "b90c8ea3dc04c6df54f3aa2d55cac2d37c24bbbb999aa88b188bbc5ca06b1215e0d031fb57085ee439a35e367e38"
    "f574d8986ca8433e818f9bb34b9b8ec5aaa1b351446edaf3ba648cb9b2e48b33903de9faa5576f21de898b79747"
    "5c03a49498df5154c484c1344ae4d5491adfdc29638f8e4a0ff70ac408e0b6bea130c1f9849211c2d820b5d10";

static void test_secretbox(void **state)
{
    (void)state;
    size_t bl = strlen(BOX_HEX) / 2;
    uint8_t *box = malloc(bl);
    for (size_t i = 0; i < bl; i++) {
        unsigned v;
        assert_int_equal(sscanf(BOX_HEX + 2 * i, "%2x", &v), 1);
        box[i] = (uint8_t)v;
    }
    uint8_t key[32], nonce[24], msg[211];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 24; i++)
        nonce[i] = (uint8_t)(100 + i);
    for (int i = 0; i < 200; i++)
        msg[i] = (uint8_t)i;
    memcpy(msg + 200, "hello world", 11);
    uint8_t *out = NULL;
    size_t ol = 0;
    berth_error_t err = NULL;
    assert_int_equal(sigstore_secretbox_open(box, bl, nonce, key, &out, &ol, &err), 0);
    assert_int_equal(ol, sizeof(msg));
    assert_memory_equal(out, msg, ol);
    free(out);
    /* any changed byte (tag or ciphertext) or another key fails the tag check */
    box[bl - 1] ^= 1;
    assert_int_equal(sigstore_secretbox_open(box, bl, nonce, key, &out, &ol, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "wrong passphrase"));
    berth_error_release(&err);
    box[bl - 1] ^= 1;
    key[0] ^= 1;
    assert_int_equal(sigstore_secretbox_open(box, bl, nonce, key, &out, &ol, &err), -1);
    berth_error_release(&err);
    assert_int_equal(sigstore_secretbox_open(box, 15, nonce, key, &out, &ol, &err), -1);
    berth_error_release(&err);
    free(box);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_and_format), cmocka_unit_test(test_blob_roundtrip),
        cmocka_unit_test(test_payload_parse),     cmocka_unit_test(test_verify_key_types),
        cmocka_unit_test(test_verify_rejects),    cmocka_unit_test(test_policy_decisions),
        cmocka_unit_test(test_secretbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
