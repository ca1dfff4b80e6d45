/* Signature payloads ("simple signing" JSON) and sigstore signature blobs, as fetched from
 * lookaside servers, registries and signature stores before any key has checked them. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "transport/signature.h"
#include "transport/sigstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    cleanup_error berth_error_t err = NULL;
    struct signature_info si = {0};
    if (signature_payload_parse(buf, size, 1u << 20, "atomic container signature", false,
                                "signature payload", &si, &err) == 0)
        signature_info_clear(&si);
    berth_error_release(&err);
    if (signature_payload_parse(buf, size, 1u << 20, "cosign container image signature", true,
                                "sigstore payload", &si, &err) == 0)
        signature_info_clear(&si);
    berth_error_release(&err);
    struct sigstore_sig sig = {0};
    if (sigstore_blob_parse(buf, size, &sig, &err) == 0)
        sigstore_sig_clear(&sig);
    berth_error_release(&err);
    char *dec = NULL;
    size_t dlen = 0;
    if (sigstore_base64_decode(buf, size, &dec, &dlen) == 0)
        free(dec);
    return 0;
}
