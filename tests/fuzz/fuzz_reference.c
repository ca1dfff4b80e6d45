/* Image references and "transport:reference" strings, as given on the command line, in sync
 * YAML, in registries.conf rewrites and in registry answers. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/reference.h"
#include "transport/policy.h"
#include "transport/transport.h"

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    cleanup_free char *s = fuzz_strndup(data, size);
    cleanup_error berth_error_t err = NULL;

    (void)image_ref_is_short_name(s);
    cleanup_image_ref image_ref_t *ref = NULL;
    if (image_ref_parse(s, &ref, &err) == 0) {
        free(image_ref_string(ref));
        free(image_ref_name(ref));
        free(image_ref_familiar(ref));
        cleanup_image_ref image_ref_t *q = NULL;
        if (image_ref_qualify(ref, "localhost:5000", &q, &err) == 0)
            free(image_ref_string(q));
        cleanup_image_ref image_ref_t *d = image_ref_dup(ref);
        if (image_ref_normalize(d, &err) == 0) {
            free(image_ref_familiar_name(d));
            cleanup_free char *id = image_ref_string(d);
            free_strv(policy_scope_candidates("docker", id));
        }
    }
    berth_error_release(&err);
    IGNORE_RESULT(image_ref_validate_tag(s, &err));
    berth_error_release(&err);
    IGNORE_RESULT(image_ref_validate_domain(s, &err));
    berth_error_release(&err);

    if (strncmp(s, "docker:", 7) == 0) {
        /* Only docker: the path transports look at the filesystem. */
        cleanup_image_reference struct image_reference *r = NULL;
        if (transport_parse_reference(s, &r, &err) == 0)
            free(image_reference_string(r));
    }
    free_strv(policy_scope_candidates("dir", s));
    return 0;
}
