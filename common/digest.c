#include "common/digest.h"
#include "common/alloc.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct digester {
    digest_algo_t algo;
    EVP_MD_CTX *ctx;
    bool finished;
};

static const EVP_MD *algo_md(digest_algo_t algo)
{
    return algo == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

static size_t algo_hexlen(digest_algo_t algo)
{
    return algo == DIGEST_SHA512 ? 128 : 64;
}

digester_t *digester_new(digest_algo_t algo)
{
    digester_t *d = xzalloc(sizeof(*d));
    d->algo = algo;
    d->ctx = EVP_MD_CTX_new();
    if (d->ctx == NULL || EVP_DigestInit_ex(d->ctx, algo_md(algo), NULL) != 1) {
        /* Only fails on allocation failure or a broken OpenSSL; nobody can recover. */
        abort();
    }
    return d;
}

void digester_update(digester_t *d, const void *buf, size_t len)
{
    if (len == 0 || d->finished)
        return;
    if (EVP_DigestUpdate(d->ctx, buf, len) != 1)
        abort();
}

char *digester_finish(digester_t *d)
{
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (d->finished)
        abort(); /* programming error: finish twice */
    if (EVP_DigestFinal_ex(d->ctx, md, &mdlen) != 1)
        abort();
    d->finished = true;
    const char *name = digest_algo_name(d->algo);
    size_t nlen = strlen(name);
    char *out = xmalloc(nlen + 1 + 2 * mdlen + 1);
    memcpy(out, name, nlen);
    out[nlen] = ':';
    char *p = out + nlen + 1;
    for (unsigned int i = 0; i < mdlen; i++) {
        *p++ = hexdigits[md[i] >> 4];
        *p++ = hexdigits[md[i] & 0xf];
    }
    *p = '\0';
    return out;
}

void digester_free(digester_t *d)
{
    if (d == NULL)
        return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

int digest_algo_from_name(const char *name, digest_algo_t *out, berth_error_t *err)
{
    if (name && strcmp(name, "sha256") == 0) {
        *out = DIGEST_SHA256;
        return 0;
    }
    if (name && strcmp(name, "sha512") == 0) {
        *out = DIGEST_SHA512;
        return 0;
    }
    return berth_error_make_status(err, EINVAL, "unsupported digest algorithm \"%.32s\"",
                                   name ? name : "");
}

const char *digest_algo_name(digest_algo_t algo)
{
    return algo == DIGEST_SHA512 ? "sha512" : "sha256";
}

/* Digests in messages are truncated so a hostile multi-megabyte "digest" cannot flood logs. */
#define SHOWN 140

int digest_parse(const char *digest, digest_algo_t *algo, const char **hex, berth_error_t *err)
{
    if (digest == NULL || *digest == '\0')
        return berth_error_make_status(err, EINVAL, "invalid digest \"\": empty");
    size_t total = strlen(digest);
    const char *ell = total > SHOWN ? "..." : "";
    const char *colon = strchr(digest, ':');
    if (colon == NULL)
        return berth_error_make_status(err, EINVAL,
                                       "invalid digest \"%.*s%s\": missing \"algorithm:\" prefix",
                                       SHOWN, digest, ell);
    size_t alen = (size_t)(colon - digest);
    digest_algo_t a;
    if (alen == 6 && strncmp(digest, "sha256", 6) == 0)
        a = DIGEST_SHA256;
    else if (alen == 6 && strncmp(digest, "sha512", 6) == 0)
        a = DIGEST_SHA512;
    else
        return berth_error_make_status(err, EINVAL,
                                       "invalid digest \"%.*s%s\": unsupported algorithm \"%.*s\"",
                                       SHOWN, digest, ell, (int)(alen > 32 ? 32 : alen), digest);
    const char *h = colon + 1;
    size_t hlen = strlen(h);
    size_t want = algo_hexlen(a);
    for (size_t i = 0; i < hlen; i++) {
        char c = h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return berth_error_make_status(
                err, EINVAL,
                "invalid digest \"%.*s%s\": encoded part must be lowercase hex, found '%c' at "
                "offset %zu",
                SHOWN, digest, ell, (c >= 0x20 && c < 0x7f) ? c : '?', i);
    }
    if (hlen != want)
        return berth_error_make_status(
            err, EINVAL, "invalid digest \"%.*s%s\": %s needs %zu hex characters, got %zu", SHOWN,
            digest, ell, digest_algo_name(a), want, hlen);
    if (algo)
        *algo = a;
    if (hex)
        *hex = h;
    return 0;
}

int digest_validate(const char *digest, berth_error_t *err)
{
    return digest_parse(digest, NULL, NULL, err);
}

const char *digest_hex(const char *digest)
{
    const char *hex = NULL;
    if (digest_parse(digest, NULL, &hex, NULL) < 0)
        return NULL;
    return hex;
}

char *digest_buffer(digest_algo_t algo, const void *buf, size_t len)
{
    cleanup_digester digester_t *d = digester_new(algo);
    digester_update(d, buf, len);
    return digester_finish(d);
}

int digest_file(const char *path, digest_algo_t algo, char **out, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    cleanup_digester digester_t *d = digester_new(algo);
    cleanup_free char *buf = xmalloc(128 * 1024);
    for (;;) {
        ssize_t n = read(fd, buf, 128 * 1024);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "read \"%s\"", path);
        }
        if (n == 0)
            break;
        digester_update(d, buf, (size_t)n);
    }
    *out = digester_finish(d);
    return 0;
}

bool digest_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    return strcmp(a, b) == 0;
}
