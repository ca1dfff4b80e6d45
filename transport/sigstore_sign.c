/* Sigstore signing with cosign-format private keys; see sigstore.h.
 *
 * cosign encrypts its private keys with NaCl's secretbox (XSalsa20 + Poly1305) under a key
 * derived with scrypt.  OpenSSL has scrypt and Poly1305 but no XSalsa20, so the Salsa20 core
 * (and HSalsa20, for the extended nonce) are written here after D. J. Bernstein's
 * specifications; only decryption of the local key file uses them.
 */
#include "transport/sigstore.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Salsa20 ---- */

static uint32_t rotl(uint32_t v, int c)
{
    return (v << c) | (v >> (32 - c));
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#define QR(a, b, c, d)                                                                             \
    do {                                                                                           \
        x[b] ^= rotl(x[a] + x[d], 7);                                                              \
        x[c] ^= rotl(x[b] + x[a], 9);                                                              \
        x[d] ^= rotl(x[c] + x[b], 13);                                                             \
        x[a] ^= rotl(x[d] + x[c], 18);                                                             \
    } while (0)

/* The 20-round Salsa20 permutation of the 16 words of x. */
static void salsa20_rounds(uint32_t x[16])
{
    for (int i = 0; i < 10; i++) {
        QR(0, 4, 8, 12); /* columns */
        QR(5, 9, 13, 1);
        QR(10, 14, 2, 6);
        QR(15, 3, 7, 11);
        QR(0, 1, 2, 3); /* rows */
        QR(5, 6, 7, 4);
        QR(10, 11, 8, 9);
        QR(15, 12, 13, 14);
    }
}

/* The input block: "expand 32-byte k" constants, the key, and 16 bytes of nonce/counter. */
static void salsa20_setup(uint32_t s[16], const uint8_t key[32], const uint8_t in[16])
{
    s[0] = 0x61707865;
    s[5] = 0x3320646e;
    s[10] = 0x79622d32;
    s[15] = 0x6b206574;
    for (int i = 0; i < 4; i++) {
        s[1 + i] = ld32(key + 4 * i);
        s[11 + i] = ld32(key + 16 + 4 * i);
        s[6 + i] = ld32(in + 4 * i);
    }
}

static void hsalsa20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce[16])
{
    uint32_t x[16];
    salsa20_setup(x, key, nonce);
    salsa20_rounds(x);
    static const int pick[8] = {0, 5, 10, 15, 6, 7, 8, 9};
    for (int i = 0; i < 8; i++)
        st32(out + 4 * i, x[pick[i]]);
    OPENSSL_cleanse(x, sizeof(x));
}

/* XSalsa20 keystream XORed into buf, from stream byte `skip` on (skip < 64). */
static void xsalsa20_xor(uint8_t *buf, size_t len, const uint8_t key[32], const uint8_t nonce[24],
                         size_t skip)
{
    uint8_t sub[32], in[16] = {0}, block[64];
    hsalsa20(sub, key, nonce);
    memcpy(in, nonce + 16, 8);
    uint64_t counter = 0;
    size_t pos = 0;
    while (pos < len) {
        uint32_t s[16], x[16];
        for (int i = 0; i < 8; i++)
            in[8 + i] = (uint8_t)(counter >> (8 * i));
        salsa20_setup(s, sub, in);
        memcpy(x, s, sizeof(x));
        salsa20_rounds(x);
        for (int i = 0; i < 16; i++)
            st32(block + 4 * i, x[i] + s[i]);
        for (size_t i = skip; i < 64 && pos < len; i++)
            buf[pos++] ^= block[i];
        skip = 0;
        counter++;
    }
    OPENSSL_cleanse(sub, sizeof(sub));
    OPENSSL_cleanse(block, sizeof(block));
}

int sigstore_secretbox_open(const uint8_t *box, size_t len, const uint8_t nonce[24],
                            const uint8_t key[32], uint8_t **out, size_t *out_len,
                            berth_error_t *err)
{
    if (len < 16)
        return berth_error_make_status(err, EINVAL, "secretbox: shorter than its tag");
    /* the first 32 bytes of the stream are the Poly1305 key; the message starts at byte 32 */
    uint8_t pk[32] = {0};
    xsalsa20_xor(pk, sizeof(pk), key, nonce, 0);
    uint8_t tag[16];
    size_t tl = 0;
    int ok = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (ctx && EVP_MAC_init(ctx, pk, sizeof(pk), NULL) == 1 &&
        EVP_MAC_update(ctx, box + 16, len - 16) == 1 &&
        EVP_MAC_final(ctx, tag, &tl, sizeof(tag)) == 1 && tl == 16)
        ok = 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    OPENSSL_cleanse(pk, sizeof(pk));
    if (!ok)
        return berth_error_make_status(err, ENOTSUP, "secretbox: Poly1305 is not available");
    if (CRYPTO_memcmp(tag, box, 16) != 0)
        return berth_error_make_status(err, EACCES,
                                       "cannot decrypt the key (wrong passphrase or damaged "
                                       "key)");
    uint8_t *m = xmalloc(len - 16 + 1);
    memcpy(m, box + 16, len - 16);
    xsalsa20_xor(m, len - 16, key, nonce, 32);
    *out = m;
    *out_len = len - 16;
    return 0;
}

/* ---- private keys ---- */

/* A base64 field of the key envelope, of exactly want bytes (0: any length). */
static int b64_field(const json_t *obj, const char *key, size_t want, char **out, size_t *len,
                     berth_error_t *err)
{
    const char *s = json_get_string(obj, key);
    if (!s || sigstore_base64_decode(s, strlen(s), out, len) < 0)
        return berth_error_make_status(err, EINVAL, "%s is missing or not base64", key);
    if (want && *len != want) {
        free(*out);
        *out = NULL;
        return berth_error_make_status(err, EINVAL, "%s is not %zu bytes", key, want);
    }
    return 0;
}

static int decrypt_key(const json_t *env, const char *pass, EVP_PKEY **out, berth_error_t *err)
{
    json_t *kdf = json_get_object(env, "kdf"), *cipher = json_get_object(env, "cipher");
    json_t *params = kdf ? json_get_object(kdf, "params") : NULL;
    const char *kn = kdf ? json_get_string(kdf, "name") : NULL;
    const char *cn = cipher ? json_get_string(cipher, "name") : NULL;
    if (!kn || strcmp(kn, "scrypt") != 0 || !cn || strcmp(cn, "nacl/secretbox") != 0 || !params)
        return berth_error_make_status(err, ENOTSUP,
                                       "unsupported encryption (expected scrypt and "
                                       "nacl/secretbox)");
    int64_t N, r, p;
    if (!json_get_int(params, "N", &N) || !json_get_int(params, "r", &r) ||
        !json_get_int(params, "p", &p))
        return berth_error_make_status(err, EINVAL, "kdf.params needs N, r and p");
    /* cosign uses N=32768 r=8 p=1 (32 MiB); anything much costlier is refused, not run */
    if (N < 2 || (N & (N - 1)) != 0 || N > (1 << 20) || r < 1 || r > 32 || p < 1 || p > 16 ||
        (uint64_t)N * (uint64_t)r * 128 > (256u << 20))
        return berth_error_make_status(err, EINVAL, "kdf parameters N=%lld r=%lld p=%lld refused",
                                       (long long)N, (long long)r, (long long)p);
    cleanup_free char *salt = NULL, *nonce = NULL, *box = NULL;
    size_t sl, nl, bl;
    if (b64_field(kdf, "salt", 0, &salt, &sl, err) < 0 ||
        b64_field(cipher, "nonce", 24, &nonce, &nl, err) < 0 ||
        b64_field(env, "ciphertext", 0, &box, &bl, err) < 0)
        return -1;
    uint8_t secret[32];
    if (EVP_PBE_scrypt(pass, strlen(pass), (const unsigned char *)salt, sl, (uint64_t)N,
                       (uint64_t)r, (uint64_t)p, 512u << 20, secret, sizeof(secret)) != 1) {
        ERR_clear_error();
        return berth_error_make_status(err, EINVAL, "scrypt failed");
    }
    uint8_t *der = NULL;
    size_t dl = 0;
    int rc = sigstore_secretbox_open((const uint8_t *)box, bl, (const uint8_t *)nonce, secret, &der,
                                     &dl, err);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc < 0)
        return -1;
    const unsigned char *q = der;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &q, (long)dl);
    OPENSSL_cleanse(der, dl);
    free(der);
    ERR_clear_error();
    if (!k)
        return berth_error_make_status(err, EINVAL, "the decrypted key is not a PKCS#8 key");
    int id = EVP_PKEY_get_base_id(k);
    if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        return berth_error_make_status(err, ENOTSUP, "unsupported key type");
    }
    *out = k;
    return 0;
}

static int load_private_key(const char *path, const char *passphrase_file, EVP_PKEY **out,
                            berth_error_t *err)
{
    cleanup_free char *buf = NULL, *pass = NULL;
    size_t len, plen = 0;
    if (fs_read_file(path, SIGSTORE_KEY_MAX, &buf, &len, err) < 0)
        return -1;
    if (passphrase_file) {
        if (fs_read_file(passphrase_file, 64 * 1024, &pass, &plen, err) < 0)
            return berth_error_wrap(err, "passphrase file");
        pass[strcspn(pass, "\r\n")] = '\0';
    } else {
        pass = xstrdup(""); /* cosign keys made with an empty password */
    }
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    int ok = bio && PEM_read_bio(bio, &name, &header, &data, &dlen) == 1;
    BIO_free(bio);
    ERR_clear_error();
    int ret = -1;
    if (!ok) {
        berth_error_make_status(err, EINVAL, "not a PEM file");
    } else if (strcmp(name, "ENCRYPTED COSIGN PRIVATE KEY") != 0 &&
               strcmp(name, "ENCRYPTED SIGSTORE PRIVATE KEY") != 0) {
        berth_error_make_status(err, EINVAL,
                                "PEM \"%s\" is not a cosign private key (\"ENCRYPTED SIGSTORE "
                                "PRIVATE KEY\" or \"ENCRYPTED COSIGN PRIVATE KEY\")",
                                name);
    } else {
        cleanup_json json_t *env = NULL;
        if (json_parse_bounded((const char *)data, (size_t)dlen, SIGSTORE_KEY_MAX, "key envelope",
                               &env, err) == 0) {
            if (!json_is_object(env))
                berth_error_make_status(err, EINVAL, "the key envelope is not a JSON object");
            else
                ret = decrypt_key(env, pass, out, err);
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (data)
        OPENSSL_clear_free(data, (size_t)dlen);
    if (pass)
        OPENSSL_cleanse(pass, strlen(pass));
    return ret;
}

/* ---- signing ---- */

int sigstore_sign(const char *manifest, size_t manifest_len, const char *docker_ref,
                  const char *key_path, const char *passphrase_file, char **out, size_t *len,
                  berth_error_t *err)
{
    cleanup_free char *ref = NULL;
    if (signature_normalize_reference(docker_ref, &ref, err) < 0)
        return berth_error_wrap(err, "signing identity");
    EVP_PKEY *key = NULL;
    if (load_private_key(key_path, passphrase_file, &key, err) < 0)
        return berth_error_wrap(err, "sigstore private key \"%s\"", key_path);
    cleanup_free char *digest = digest_buffer(DIGEST_SHA256, manifest, manifest_len);
    cleanup_json json_t *doc = json_pack(
        "{s:{s:{s:s},s:{s:s},s:s},s:{s:s,s:I}}", "critical", "identity", "docker-reference", ref,
        "image", "docker-manifest-digest", digest, "type", SIGSTORE_TYPE, "optional", "creator",
        "berth version " BERTH_VERSION, "timestamp", (json_int_t)time(NULL));
    cleanup_free char *payload = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!payload) {
        EVP_PKEY_free(key);
        return berth_error_make_status(err, ENOMEM, "sigstore payload: cannot serialize");
    }
    size_t pl = strlen(payload);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    size_t sl = 0;
    unsigned char *sig = NULL;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestSign(ctx, NULL, &sl, (const unsigned char *)payload, pl) == 1;
    if (ok) {
        sig = xmalloc(sl);
        ok = EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)payload, pl) == 1;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (!ok) {
        free(sig);
        return berth_error_make_status(err, EIO, "sigstore signing failed");
    }
    cleanup_free char *b64 = sigstore_base64_encode(sig, sl);
    free(sig);
    cleanup_json json_t *ann = json_pack("{s:s}", SIGSTORE_SIGNATURE_ANN, b64);
    return sigstore_blob_make(SIGSTORE_MIME_TYPE, payload, pl, ann, out, len, err);
}
