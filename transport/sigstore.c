/* Sigstore (cosign-format) signatures: blob format, public keys, verification; see sigstore.h. */
#include "transport/sigstore.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

enum signature_format signature_blob_format(const char *blob, size_t len, const char **body,
                                            size_t *body_len)
{
    const char *b = blob;
    size_t bl = len;
    enum signature_format f = SIGNATURE_FORMAT_SIMPLE;
    if (len > 0 && blob[0] == '\0') {
        if (len >= SIGSTORE_BLOB_PREFIX_LEN &&
            memcmp(blob, SIGSTORE_BLOB_PREFIX, SIGSTORE_BLOB_PREFIX_LEN) == 0) {
            f = SIGNATURE_FORMAT_SIGSTORE;
            b += SIGSTORE_BLOB_PREFIX_LEN;
            bl -= SIGSTORE_BLOB_PREFIX_LEN;
        } else if (len >= SIMPLE_BLOB_PREFIX_LEN &&
                   memcmp(blob, SIMPLE_BLOB_PREFIX, SIMPLE_BLOB_PREFIX_LEN) == 0) {
            b += SIMPLE_BLOB_PREFIX_LEN;
            bl -= SIMPLE_BLOB_PREFIX_LEN;
        } else {
            f = SIGNATURE_FORMAT_UNKNOWN;
        }
    }
    if (body)
        *body = b;
    if (body_len)
        *body_len = bl;
    return f;
}

void sigstore_sig_clear(struct sigstore_sig *s)
{
    free(s->mime_type);
    free(s->payload);
    if (s->annotations)
        json_decref(s->annotations);
    memset(s, 0, sizeof(*s));
}

/* ---- base64 ---- */

static int b64_val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int sigstore_base64_decode(const char *s, size_t n, char **out, size_t *len)
{
    if (n % 4)
        return -1;
    char *buf = xmalloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = -2;
                continue;
            }
            v[k] = b64_val((unsigned char)s[i + k]);
            if (v[k] < 0 || (k == 3 && v[2] == -2)) {
                free(buf);
                return -1;
            }
        }
        buf[o++] = (char)((v[0] << 2) | (v[1] >> 4));
        if (v[2] >= 0)
            buf[o++] = (char)(((v[1] & 15) << 4) | (v[2] >> 2));
        if (v[3] >= 0)
            buf[o++] = (char)(((v[2] & 3) << 6) | v[3]);
    }
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return 0;
}

char *sigstore_base64_encode(const void *buf, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = buf;
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* ---- blobs ---- */

int sigstore_blob_parse(const char *blob, size_t len, struct sigstore_sig *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *body;
    size_t bl;
    if (signature_blob_format(blob, len, &body, &bl) != SIGNATURE_FORMAT_SIGSTORE)
        return berth_error_make_status(err, EINVAL, "not a sigstore signature");
    cleanup_json json_t *doc = NULL;
    /* base64 makes the payload 4/3 larger; annotations are bounded by what is left */
    if (json_parse_bounded(body, bl, SIGSTORE_PAYLOAD_MAX / 3 * 4 + 256 * 1024,
                           "sigstore signature", &doc, err) < 0)
        return -1;
    if (!json_is_object(doc))
        return berth_error_make_status(err, EINVAL, "sigstore signature: not a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "mimeType") != 0 && strcmp(key, "payload") != 0 &&
            strcmp(key, "annotations") != 0)
            return berth_error_make_status(err, EINVAL, "sigstore signature: unknown field \"%s\"",
                                           key);
    }
    const char *mt = json_get_string(doc, "mimeType");
    const char *pl = json_get_string(doc, "payload");
    json_t *ann = json_object_get(doc, "annotations");
    if (!mt || !pl)
        return berth_error_make_status(err, EINVAL,
                                       "sigstore signature: mimeType or payload is missing or not "
                                       "a string");
    if (ann && !json_is_object(ann) && !json_is_null(ann))
        return berth_error_make_status(err, EINVAL,
                                       "sigstore signature: annotations is not an object");
    if (json_is_object(ann)) {
        json_object_foreach(ann, key, v)
        {
            if (!json_is_string(v))
                return berth_error_make_status(
                    err, EINVAL, "sigstore signature: annotation \"%s\" is not a string", key);
        }
    }
    char *payload;
    size_t plen;
    if (sigstore_base64_decode(pl, strlen(pl), &payload, &plen) < 0)
        return berth_error_make_status(err, EINVAL, "sigstore signature: payload is not base64");
    out->mime_type = xstrdup(mt);
    out->payload = payload;
    out->payload_len = plen;
    out->annotations = json_is_object(ann) ? json_incref(ann) : json_object();
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sigstore_blob_make(const char *mime_type, const char *payload, size_t payload_len,
                       const json_t *annotations, char **out, size_t *len, berth_error_t *err)
{
    if (payload_len > SIGSTORE_PAYLOAD_MAX)
        return berth_error_make_status(err, EFBIG, "sigstore payload larger than %u bytes",
                                       SIGSTORE_PAYLOAD_MAX);
    /* the field order and the sorted annotations are those of skopeo's dir: files */
    cleanup_free char *b64 = sigstore_base64_encode(payload, payload_len);
    cleanup_json json_t *ann = json_object();
    if (annotations) {
        const char **keys = xcalloc(json_object_size(annotations) + 1, sizeof(char *));
        size_t n = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)annotations, k, v) keys[n++] = k;
        qsort(keys, n, sizeof(char *), key_cmp);
        for (size_t i = 0; i < n; i++)
            json_object_set(ann, keys[i], json_object_get(annotations, keys[i]));
        free(keys);
    }
    cleanup_json json_t *doc =
        json_pack("{s:s,s:s,s:O}", "mimeType", mime_type, "payload", b64, "annotations", ann);
    if (!doc)
        return berth_error_make_status(err, EINVAL, "sigstore signature: cannot build the JSON");
    char *j = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!j)
        return berth_error_make_status(err, ENOMEM, "sigstore signature: cannot serialize");
    size_t jl = strlen(j);
    char *buf = xmalloc(SIGSTORE_BLOB_PREFIX_LEN + jl);
    memcpy(buf, SIGSTORE_BLOB_PREFIX, SIGSTORE_BLOB_PREFIX_LEN);
    memcpy(buf + SIGSTORE_BLOB_PREFIX_LEN, j, jl);
    free(j);
    *out = buf;
    *len = SIGSTORE_BLOB_PREFIX_LEN + jl;
    return 0;
}

/* ---- keys ---- */

struct sigstore_pubkey {
    EVP_PKEY *pkey;
};

static const char *ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

int sigstore_pubkey_load(const char *path, const char *data, size_t data_len,
                         struct sigstore_pubkey **out, berth_error_t *err)
{
    cleanup_free char *buf = NULL;
    size_t len = data_len;
    if (path) {
        if (fs_read_file(path, SIGSTORE_KEY_MAX, &buf, &len, err) < 0)
            return berth_error_wrap(err, "sigstore public key");
        data = buf;
    } else if (data_len > SIGSTORE_KEY_MAX) {
        return berth_error_make_status(err, EFBIG, "sigstore public key larger than %u bytes",
                                       SIGSTORE_KEY_MAX);
    }
    const char *what = path ? path : "keyData";
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (!bio)
        return berth_error_make_status(err, ENOMEM, "sigstore public key: out of memory");
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk)
        return berth_error_make_status(err, EINVAL,
                                       "sigstore public key %s: not a PEM \"PUBLIC KEY\" (%s)",
                                       what, ssl_reason());
    int id = EVP_PKEY_get_base_id(pk);
    if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pk);
        return berth_error_make_status(err, ENOTSUP,
                                       "sigstore public key %s: unsupported key type (ECDSA, RSA "
                                       "and Ed25519 are)",
                                       what);
    }
    struct sigstore_pubkey *k = xzalloc(sizeof(*k));
    k->pkey = pk;
    *out = k;
    return 0;
}

void sigstore_pubkey_free(struct sigstore_pubkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* ---- payload ---- */

int sigstore_payload_parse(const char *payload, size_t len, struct signature_info *out,
                           berth_error_t *err)
{
    return signature_payload_parse(payload, len, SIGSTORE_PAYLOAD_MAX, SIGSTORE_TYPE, true,
                                   "sigstore payload", out, err);
}

/* ---- verification ---- */

static int verify_bytes(const struct sigstore_pubkey *key, const char *data, size_t len,
                        const char *sig, size_t sig_len, berth_error_t *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return berth_error_make_status(err, ENOMEM, "out of memory");
    /* cosign hashes with SHA-256 whatever the key; Ed25519 signs the message itself */
    const EVP_MD *md = EVP_PKEY_get_base_id(key->pkey) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    int ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, (const unsigned char *)sig, sig_len, (const unsigned char *)data,
                              len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return berth_error_make_status(err, EACCES,
                                       "the cryptographic signature does not verify with the "
                                       "key (wrong key, or signature or payload altered)");
    return 0;
}

int sigstore_verify(const struct sigstore_pubkey *key, const char *blob, size_t len,
                    struct signature_info *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    struct sigstore_sig s;
    if (sigstore_blob_parse(blob, len, &s, err) < 0)
        return -1;
    int ret = -1;
    const char *b64 = json_get_string(s.annotations, SIGSTORE_SIGNATURE_ANN);
    cleanup_free char *sig = NULL;
    size_t sig_len = 0;
    if (strcmp(s.mime_type, SIGSTORE_MIME_TYPE) != 0)
        berth_error_make_status(err, EINVAL, "unexpected sigstore signature media type \"%s\"",
                                s.mime_type);
    else if (!b64)
        berth_error_make_status(err, EINVAL, "the sigstore signature has no %s annotation",
                                SIGSTORE_SIGNATURE_ANN);
    else if (strlen(b64) > SIGSTORE_SIGNATURE_MAX)
        berth_error_make_status(err, EFBIG, "the %s annotation is larger than %u bytes",
                                SIGSTORE_SIGNATURE_ANN, SIGSTORE_SIGNATURE_MAX);
    else if (sigstore_base64_decode(b64, strlen(b64), &sig, &sig_len) < 0 || sig_len == 0)
        berth_error_make_status(err, EINVAL, "the %s annotation is not base64",
                                SIGSTORE_SIGNATURE_ANN);
    else if (verify_bytes(key, s.payload, s.payload_len, sig, sig_len, err) == 0 &&
             sigstore_payload_parse(s.payload, s.payload_len, out, err) == 0)
        ret = 0;
    sigstore_sig_clear(&s);
    return ret;
}
