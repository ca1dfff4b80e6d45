/* Simple signing with gpgme: see signature.h. */
#include "transport/signature.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/reference.h"

#include <errno.h>
#include <gpgme.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define PAYLOAD_MAX (64u * 1024)

struct signature_keyring {
    char *home;
    char **fingerprints; /* NULL-terminated primary fingerprints imported */
};

static pthread_once_t gpgme_once = PTHREAD_ONCE_INIT;
static void gpgme_init(void)
{
    gpgme_check_version(NULL);
}

static int gpg_fail(berth_error_t *err, gpgme_error_t e, const char *what)
{
    return berth_error_make_status(err, EINVAL, "%s: %s", what, gpgme_strerror(e));
}

static void cleanup_ctxp(gpgme_ctx_t *c)
{
    if (*c)
        gpgme_release(*c);
    *c = NULL;
}
static void cleanup_datap(gpgme_data_t *d)
{
    if (*d)
        gpgme_data_release(*d);
    *d = NULL;
}
static void cleanup_keyp(gpgme_key_t *k)
{
    if (*k)
        gpgme_key_unref(*k);
    *k = NULL;
}
#define cleanup_ctx  __attribute__((cleanup(cleanup_ctxp)))
#define cleanup_data __attribute__((cleanup(cleanup_datap)))
#define cleanup_key  __attribute__((cleanup(cleanup_keyp)))

/* home NULL: the user's GNUPGHOME. */
static int new_ctx(const char *home, gpgme_ctx_t *out, berth_error_t *err)
{
    pthread_once(&gpgme_once, gpgme_init);
    gpgme_ctx_t ctx = NULL;
    gpgme_error_t e = gpgme_new(&ctx);
    if (e)
        return gpg_fail(err, e, "gpgme");
    e = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
    if (!e && home)
        e = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, home);
    if (e) {
        gpgme_release(ctx);
        return gpg_fail(err, e, "gpgme OpenPGP engine");
    }
    gpgme_set_armor(ctx, 0);
    *out = ctx;
    return 0;
}

/* Copies a gpgme data buffer out (bounded) and releases it. */
static int data_take(gpgme_data_t *d, size_t max, const char *what, char **out, size_t *len,
                     berth_error_t *err)
{
    size_t n = 0;
    char *mem = gpgme_data_release_and_get_mem(*d, &n);
    *d = NULL;
    if (n > max) {
        gpgme_free(mem);
        return berth_error_make_status(err, EFBIG, "%s is larger than %zu bytes", what, max);
    }
    char *buf = xmalloc(n + 1);
    if (n)
        memcpy(buf, mem, n);
    buf[n] = '\0';
    gpgme_free(mem);
    *out = buf;
    *len = n;
    return 0;
}

int signature_normalize_reference(const char *ref, char **out, berth_error_t *err)
{
    cleanup_image_ref image_ref_t *plain = NULL, *norm = NULL;
    if (image_ref_parse(ref, &plain, err) < 0 || image_ref_parse_normalized(ref, &norm, err) < 0)
        return -1;
    /* signatures name what was given: no ":latest" added to a bare name */
    if (!plain->tag && !plain->digest && image_ref_set_tag(norm, NULL, err) < 0)
        return -1;
    *out = image_ref_string(norm);
    return 0;
}

static gpgme_error_t passphrase_cb(void *hook, const char *uid_hint, const char *info,
                                   int prev_was_bad, int fd)
{
    const char *pass = hook;
    if (prev_was_bad)
        return gpgme_error(GPG_ERR_BAD_PASSPHRASE);
    if (gpgme_io_writen(fd, pass, strlen(pass)) < 0 || gpgme_io_writen(fd, "\n", 1) < 0)
        return gpgme_error_from_syserror();
    return 0;
}

int signature_sign(const char *manifest, size_t manifest_len, const char *docker_ref,
                   const char *key_id, const char *passphrase_file, char **out, size_t *len,
                   berth_error_t *err)
{
    cleanup_free char *ref = NULL, *pass = NULL, *payload = NULL;
    if (signature_normalize_reference(docker_ref, &ref, err) < 0)
        return berth_error_wrap(err, "signing identity");
    if (passphrase_file) {
        size_t plen;
        if (fs_read_file(passphrase_file, 64 * 1024, &pass, &plen, err) < 0)
            return berth_error_wrap(err, "passphrase file");
        pass[strcspn(pass, "\r\n")] = '\0';
    }
    cleanup_free char *digest = digest_buffer(DIGEST_SHA256, manifest, manifest_len);
    cleanup_json json_t *doc = json_pack(
        "{s:{s:s,s:{s:s},s:{s:s}},s:{s:s,s:I}}", "critical", "type", SIGNATURE_TYPE, "image",
        "docker-manifest-digest", digest, "identity", "docker-reference", ref, "optional",
        "creator", "berth version " BERTH_VERSION, "timestamp", (json_int_t)time(NULL));
    if (!doc)
        return berth_error_make_status(err, EINVAL, "cannot build the signature payload");
    payload = json_dumps(doc, JSON_COMPACT);

    cleanup_ctx gpgme_ctx_t ctx = NULL;
    if (new_ctx(NULL, &ctx, err) < 0)
        return -1;
    cleanup_key gpgme_key_t key = NULL;
    gpgme_error_t e = gpgme_get_key(ctx, key_id, &key, 1);
    if (gpgme_err_code(e) == GPG_ERR_INV_VALUE) {
        /* not a fingerprint or key id: a user id pattern naming exactly one secret key */
        e = gpgme_op_keylist_start(ctx, key_id, 1);
        if (!e)
            e = gpgme_op_keylist_next(ctx, &key);
        gpgme_key_t more = NULL;
        if (!e && gpgme_op_keylist_next(ctx, &more) == 0) {
            gpgme_key_unref(more);
            gpgme_op_keylist_end(ctx);
            return berth_error_make_status(err, EINVAL,
                                           "signing key \"%s\" names several secret keys: use "
                                           "a fingerprint",
                                           key_id);
        }
        gpgme_op_keylist_end(ctx);
    }
    if (gpgme_err_code(e) == GPG_ERR_EOF)
        return berth_error_make_status(err, ENOENT, "signing key \"%s\": no such secret key",
                                       key_id);
    if (e)
        return berth_error_make_status(err, ENOENT, "signing key \"%s\": %s", key_id,
                                       gpgme_strerror(e));
    gpgme_signers_clear(ctx);
    if ((e = gpgme_signers_add(ctx, key)))
        return gpg_fail(err, e, "signing key");
    if (pass) {
        gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK);
        gpgme_set_passphrase_cb(ctx, passphrase_cb, pass);
    }
    cleanup_data gpgme_data_t in = NULL;
    cleanup_data gpgme_data_t sig = NULL;
    if ((e = gpgme_data_new_from_mem(&in, payload, strlen(payload), 0)) ||
        (e = gpgme_data_new(&sig)))
        return gpg_fail(err, e, "gpgme data");
    e = gpgme_op_sign(ctx, in, sig, GPGME_SIG_MODE_NORMAL);
    if (e)
        return berth_error_make_status(err, EINVAL, "signing with key \"%s\": %s", key_id,
                                       gpgme_strerror(e));
    gpgme_sign_result_t sr = gpgme_op_sign_result(ctx);
    if (!sr || !sr->signatures || sr->invalid_signers)
        return berth_error_make_status(err, EINVAL, "signing with key \"%s\" produced no signature",
                                       key_id);
    return data_take(&sig, SIGNATURE_MAX_SIZE, "signature", out, len, err);
}

void signature_info_clear(struct signature_info *si)
{
    free(si->manifest_digest);
    free(si->docker_reference);
    free(si->fingerprint);
    memset(si, 0, sizeof(*si));
}

/* Checks that obj has exactly the keys listed (NULL-terminated), all present. */
static int exact_fields(const char *fmt, const json_t *obj, const char *what,
                        const char *const *keys, berth_error_t *err)
{
    if (!json_is_object(obj))
        return berth_error_make_status(err, EINVAL, "%s: %s is not an object", fmt, what);
    size_t n = 0;
    for (const char *const *k = keys; *k; k++, n++)
        if (!json_object_get(obj, *k))
            return berth_error_make_status(err, EINVAL, "%s: %s.%s is missing", fmt, what, *k);
    if (json_object_size(obj) != n) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
            bool known = false;
            for (const char *const *k = keys; *k; k++)
                known = known || strcmp(*k, key) == 0;
            if (!known)
                return berth_error_make_status(err, EINVAL, "%s: unknown field %s.\"%s\"", fmt,
                                               what, key);
        }
    }
    return 0;
}

int signature_payload_parse(const char *buf, size_t len, size_t max, const char *type, bool cosign,
                            const char *fmt, struct signature_info *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cleanup_json json_t *doc = NULL;
    if (json_parse_bounded(buf, len, max, fmt, &doc, err) < 0)
        return -1;
    static const char *const top[] = {"critical", "optional", NULL};
    static const char *const crit[] = {"type", "image", "identity", NULL};
    static const char *const img[] = {"docker-manifest-digest", NULL};
    static const char *const id[] = {"docker-reference", NULL};
    if (exact_fields(fmt, doc, "(top level)", top, err) < 0)
        return -1;
    json_t *opt = json_object_get(doc, "optional");
    if (!json_is_object(opt) && !(cosign && json_is_null(opt)))
        return berth_error_make_status(err, EINVAL, "%s: optional is not an object%s", fmt,
                                       cosign ? " (nor null)" : "");
    if (cosign && json_is_object(opt)) {
        json_t *cr = json_object_get(opt, "creator"), *ts = json_object_get(opt, "timestamp");
        if (cr && !json_is_string(cr))
            return berth_error_make_status(err, EINVAL, "%s: optional.creator is not a string",
                                           fmt);
        if (ts && !json_is_integer(ts))
            return berth_error_make_status(err, EINVAL, "%s: optional.timestamp is not an integer",
                                           fmt);
    }
    json_t *c = json_object_get(doc, "critical");
    if (exact_fields(fmt, c, "critical", crit, err) < 0)
        return -1;
    const char *t = json_get_string(c, "type");
    if (!t || strcmp(t, type) != 0)
        return berth_error_make_status(err, EINVAL, "%s: critical.type is not \"%s\"", fmt, type);
    json_t *im = json_object_get(c, "image"), *ide = json_object_get(c, "identity");
    if (exact_fields(fmt, im, "critical.image", img, err) < 0 ||
        exact_fields(fmt, ide, "critical.identity", id, err) < 0)
        return -1;
    const char *d = json_get_string(im, "docker-manifest-digest");
    const char *r = json_get_string(ide, "docker-reference");
    if (!d || !r)
        return berth_error_make_status(err, EINVAL, "%s: digest or reference is not a string", fmt);
    if (digest_validate(d, err) < 0)
        return berth_error_wrap(err, "%s", fmt);
    cleanup_free char *nr = NULL;
    if (signature_normalize_reference(r, &nr, err) < 0)
        return berth_error_wrap(err, "%s docker-reference", fmt);
    out->manifest_digest = xstrdup(d);
    out->docker_reference = steal_pointer(&nr);
    return 0;
}

static bool fpr_in(const char *fpr, char *const *list)
{
    for (char *const *p = list; fpr && p && *p; p++)
        if (strcasecmp(fpr, *p) == 0)
            return true;
    return false;
}

int signature_verify(struct signature_keyring *kr, char *const *fingerprints, const char *blob,
                     size_t len, struct signature_info *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (len > SIGNATURE_MAX_SIZE)
        return berth_error_make_status(err, EFBIG, "signature is larger than %u bytes",
                                       SIGNATURE_MAX_SIZE);
    cleanup_ctx gpgme_ctx_t ctx = NULL;
    if (new_ctx(kr ? kr->home : NULL, &ctx, err) < 0)
        return -1;
    cleanup_data gpgme_data_t sigd = NULL;
    cleanup_data gpgme_data_t plain = NULL;
    gpgme_error_t e;
    if ((e = gpgme_data_new_from_mem(&sigd, blob, len, 0)) || (e = gpgme_data_new(&plain)))
        return gpg_fail(err, e, "gpgme data");
    e = gpgme_op_verify(ctx, sigd, NULL, plain);
    if (e)
        return berth_error_make_status(err, EINVAL, "not a valid signature: %s", gpgme_strerror(e));
    gpgme_verify_result_t res = gpgme_op_verify_result(ctx);
    size_t n = 0;
    for (gpgme_signature_t s = res ? res->signatures : NULL; s; s = s->next)
        n++;
    if (n != 1)
        return berth_error_make_status(err, EINVAL,
                                       "signature holds %zu OpenPGP signatures, "
                                       "expected 1",
                                       n);
    gpgme_signature_t s = res->signatures;
    if (gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY)
        return berth_error_make_status(err, EACCES, "signed by key %s, which is not trusted",
                                       s->fpr ? s->fpr : "(unknown)");
    if (s->status || s->validity == GPGME_VALIDITY_NEVER || s->validity_reason ||
        s->wrong_key_usage)
        return berth_error_make_status(err, EACCES, "invalid signature by key %s: %s",
                                       s->fpr ? s->fpr : "(unknown)",
                                       gpgme_strerror(s->status ? s->status : s->validity_reason));
    /* the signing key may be a subkey: accept by its primary key's fingerprint too */
    cleanup_free char *primary = NULL;
    {
        gpgme_key_t key = NULL;
        if (s->fpr && gpgme_get_key(ctx, s->fpr, &key, 0) == 0 && key) {
            if (key->subkeys && key->subkeys->fpr)
                primary = xstrdup(key->subkeys->fpr);
            gpgme_key_unref(key);
        }
    }
    char *const *accepted = kr ? kr->fingerprints : fingerprints;
    if (!fpr_in(s->fpr, accepted) && !fpr_in(primary, accepted))
        return berth_error_make_status(err, EACCES,
                                       "signature by key %s, which is not an accepted key",
                                       primary ? primary : s->fpr);
    char *pbuf = NULL;
    size_t plen = 0;
    if (data_take(&plain, PAYLOAD_MAX, "signature payload", &pbuf, &plen, err) < 0)
        return -1;
    int r = signature_payload_parse(pbuf, plen, PAYLOAD_MAX, SIGNATURE_TYPE, false,
                                    "signature payload", out, err);
    free(pbuf);
    if (r < 0) {
        signature_info_clear(out);
        return -1;
    }
    out->fingerprint = xstrdup(primary ? primary : s->fpr);
    return 0;
}

int signature_check_manifest(const struct signature_info *si, const char *manifest, size_t len,
                             berth_error_t *err)
{
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(si->manifest_digest, &algo, &hex, err) < 0)
        return -1;
    cleanup_free char *got = digest_buffer(algo, manifest, len);
    if (!digest_equal(got, si->manifest_digest))
        return berth_error_make_status(err, EACCES,
                                       "signature is for manifest %s, but the manifest is %s",
                                       si->manifest_digest, got);
    return 0;
}

static int import_data(gpgme_ctx_t ctx, const char *buf, size_t len, const char *what, char ***fprs,
                       size_t *nfpr, berth_error_t *err)
{
    cleanup_data gpgme_data_t d = NULL;
    gpgme_error_t e = gpgme_data_new_from_mem(&d, buf, len, 0);
    if (e)
        return gpg_fail(err, e, "gpgme data");
    e = gpgme_op_import(ctx, d);
    if (e)
        return berth_error_make_status(err, EINVAL, "importing keys from %s: %s", what,
                                       gpgme_strerror(e));
    gpgme_import_result_t r = gpgme_op_import_result(ctx);
    size_t before = *nfpr;
    for (gpgme_import_status_t s = r ? r->imports : NULL; s; s = s->next) {
        if (s->result || !s->fpr)
            continue;
        *fprs = xreallocarray(*fprs, *nfpr + 2, sizeof(char *));
        (*fprs)[(*nfpr)++] = xstrdup(s->fpr);
        (*fprs)[*nfpr] = NULL;
    }
    if (*nfpr == before)
        return berth_error_make_status(err, EINVAL, "no OpenPGP key found in %s", what);
    return 0;
}

int signature_keyring_new(char *const *key_paths, const char *key_data, size_t key_data_len,
                          struct signature_keyring **out, berth_error_t *err)
{
    const char *tmp = getenv("TMPDIR");
    cleanup_free char *home = xasprintf("%s/berth-gpg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(home))
        return berth_error_make(err, errno, "creating a temporary GPG home in %s",
                                tmp && *tmp ? tmp : "/tmp");
    struct signature_keyring *kr = xzalloc(sizeof(*kr));
    kr->home = steal_pointer(&home);
    size_t n = 0;
    cleanup_ctx gpgme_ctx_t ctx = NULL;
    /* public keys need no gpg-agent: none is started for (and left behind by) this home */
    cleanup_free char *conf = xasprintf("%s/gpg.conf", kr->home);
    if (fs_write_file_atomic(conf, "no-autostart\n", 13, 0600, err) < 0)
        goto fail;
    if (new_ctx(kr->home, &ctx, err) < 0)
        goto fail;
    for (char *const *p = key_paths; p && *p; p++) {
        cleanup_free char *buf = NULL;
        size_t len;
        if (fs_read_file(*p, SIGNATURE_KEYS_MAX, &buf, &len, err) < 0) {
            berth_error_wrap(err, "reading keys");
            goto fail;
        }
        cleanup_free char *what = xasprintf("\"%s\"", *p);
        if (import_data(ctx, buf, len, what, &kr->fingerprints, &n, err) < 0)
            goto fail;
    }
    if (key_data &&
        import_data(ctx, key_data, key_data_len, "keyData", &kr->fingerprints, &n, err) < 0)
        goto fail;
    if (n == 0) {
        berth_error_make_status(err, EINVAL, "no keys given");
        goto fail;
    }
    *out = kr;
    return 0;
fail:
    signature_keyring_free(kr);
    return -1;
}

void signature_keyring_free(struct signature_keyring *kr)
{
    if (!kr)
        return;
    if (kr->home) {
        berth_error_t e = NULL;
        IGNORE_RESULT(fs_rm_rf(kr->home, &e));
        berth_error_release(&e);
        free(kr->home);
    }
    for (char **p = kr->fingerprints; p && *p; p++)
        free(*p);
    free(kr->fingerprints);
    free(kr);
}
