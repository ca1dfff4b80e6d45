/* berth standalone-sign / standalone-verify: skopeo's commands for "simple signing"
 * signatures of a manifest file, with the user's GPG keyring. */
#include "cmd/cli.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/strutil.h"
#include "transport/manifest.h"
#include "transport/signature.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char sign_usage[] =
    "Usage: berth standalone-sign [OPTIONS] MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT -o "
    "SIGNATURE\n\n"
    "Create a signature of MANIFEST claiming it is DOCKER-REFERENCE, with the GPG key\n"
    "KEY-FINGERPRINT of the user's keyring ($GNUPGHOME or ~/.gnupg).\n\n"
    "Options:\n"
    "  -o, --output FILE            where to write the signature (required)\n"
    "      --passphrase-file FILE   the key's passphrase (first line of FILE)\n";

static int cmd_standalone_sign(struct berth_globals *g, int argc, char **argv)
{
    enum { OPT_PASS = 1000 };
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"passphrase-file", required_argument, NULL, OPT_PASS},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *output = NULL, *pass = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "o:h", opts, false)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case OPT_PASS:
            pass = optarg;
            break;
        case 'h':
            return cli_usage(sign_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 3)
        return cli_nargs_error(argv[0], "MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT");
    if (!output)
        return cli_failf("--output (-o) must be given");
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *manifest = NULL, *sig = NULL;
    size_t mlen, slen;
    if (fs_read_file(argv[optind], MF_MAX_MANIFEST, &manifest, &mlen, &err) < 0)
        return cli_fail(&err);
    if (signature_sign(manifest, mlen, argv[optind + 1], argv[optind + 2], pass, &sig, &slen,
                       &err) < 0 ||
        fs_write_output(output, sig, slen, 0644, &err) < 0)
        return cli_fail(&err);
    return 0;
}

BERTH_COMMAND(standalone_sign, "standalone-sign",
              "Sign a manifest file with a GPG key (simple signing)", cmd_standalone_sign);

static const char verify_usage[] =
    "Usage: berth standalone-verify [OPTIONS] MANIFEST DOCKER-REFERENCE KEY-FINGERPRINTS "
    "SIGNATURE\n\n"
    "Verify that SIGNATURE, made by one of KEY-FINGERPRINTS (comma-separated) of the user's\n"
    "keyring, signs MANIFEST as DOCKER-REFERENCE.  Prints the signer and the digest.\n\n"
    "Options:\n"
    "      --public-key-file FILE   trust the keys of FILE instead of the user's keyring\n"
    "                               (repeatable; KEY-FINGERPRINTS may then be \"any\")\n";

static int cmd_standalone_verify(struct berth_globals *g, int argc, char **argv)
{
    enum { OPT_PUBKEY = 1000 };
    static const struct option opts[] = {{"public-key-file", required_argument, NULL, OPT_PUBKEY},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    cleanup_strv char **keyfiles = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts, false)) != -1) {
        switch (c) {
        case OPT_PUBKEY:
            strv_add(&keyfiles, optarg);
            break;
        case 'h':
            return cli_usage(verify_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind != 4)
        return cli_nargs_error(argv[0], "MANIFEST DOCKER-REFERENCE KEY-FINGERPRINTS SIGNATURE");
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *manifest = NULL, *sig = NULL, *want = NULL;
    size_t mlen, slen;
    if (fs_read_file(argv[optind], MF_MAX_MANIFEST, &manifest, &mlen, &err) < 0 ||
        fs_read_file(argv[optind + 3], SIGNATURE_MAX_SIZE, &sig, &slen, &err) < 0)
        return cli_fail(&err);
    if (signature_normalize_reference(argv[optind + 1], &want, &err) < 0)
        return cli_fail(&err);
    cleanup_strv char **fprs = NULL;
    cleanup_free char *list = xstrdup(argv[optind + 2]);
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t)
            strv_add(&fprs, t);
    if (!fprs)
        return cli_failf("no key fingerprint given");
    bool any = strv_len(fprs) == 1 && strcmp(fprs[0], "any") == 0;
    if (any && !keyfiles)
        return cli_failf("\"any\" key is only possible with --public-key-file");
    struct signature_keyring *kr = NULL;
    if (keyfiles && signature_keyring_new(keyfiles, NULL, 0, &kr, &err) < 0)
        return cli_fail(&err);
    struct signature_info si;
    int vr = signature_verify(kr, fprs, sig, slen, &si, &err);
    signature_keyring_free(kr);
    if (vr < 0)
        return cli_fail(&err);
    if (keyfiles && !any && !strv_contains_nocase(fprs, si.fingerprint)) {
        int r = cli_failf("signature by key %s, which is not among %s", si.fingerprint,
                          argv[optind + 2]);
        signature_info_clear(&si);
        return r;
    }
    int r = 0;
    if (signature_check_manifest(&si, manifest, mlen, &err) < 0)
        r = cli_fail(&err);
    else if (strcmp(si.docker_reference, want) != 0)
        r = cli_failf("signature is for docker reference \"%s\", not \"%s\"", si.docker_reference,
                      want);
    else
        printf("Signature verified using fingerprint %s, digest %s\n", si.fingerprint,
               si.manifest_digest);
    signature_info_clear(&si);
    return r;
}

BERTH_COMMAND(standalone_verify, "standalone-verify",
              "Verify a simple-signing signature of a manifest file", cmd_standalone_verify);
