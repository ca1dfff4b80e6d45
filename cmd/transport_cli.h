/* CLI glue shared by the image-moving commands (copy, inspect, pull, push, save, load). */
#ifndef BERTH_CMD_TRANSPORT_CLI_H
#define BERTH_CMD_TRANSPORT_CLI_H

#include "cmd/cli.h"
#include "transport/copy.h"
#include "transport/transport.h"

/* Fills sys from the global options (store paths, registries.conf), everything else unset. */
void cli_system_context_init(struct berth_globals *g, struct system_context *sys);

/* Parses "transport:ref"; a string without a known transport prefix is a reference of
 * default_transport ("docker" -> docker://NAME, "containers-storage" -> the store). */
BERTH_MUST_CHECK int cli_parse_image_ref(const char *s, const char *default_transport,
                                         struct image_reference **out, berth_error_t *err);

/* Opens the store once when a or b (either may be NULL) is a containers-storage reference and
 * points the system contexts (either may be NULL) at it. */
struct cli_store_holder {
    struct storage_store *store;
};
BERTH_MUST_CHECK int cli_store_for_refs(struct berth_globals *g, struct cli_store_holder *h,
                                        const struct image_reference *a,
                                        const struct image_reference *b, struct system_context *sa,
                                        struct system_context *sb, berth_error_t *err);
/* Opens the store unconditionally (save, load) and points sys at it. */
BERTH_MUST_CHECK int cli_store_for_sys(struct berth_globals *g, struct cli_store_holder *h,
                                       struct system_context *sys, berth_error_t *err);
void cli_store_release(struct cli_store_holder *h);

/* copy_image with the store open around it when src or dst is a containers-storage reference
 * (src_sys/dst_sys, either may be NULL, are pointed at it). */
BERTH_MUST_CHECK int cli_copy_image(struct berth_globals *g, struct image_reference *src,
                                    struct image_reference *dst, struct system_context *src_sys,
                                    struct system_context *dst_sys, const struct copy_options *o,
                                    struct copy_result *res, berth_error_t *err);

/* The options of a plain copy (pull, save, load): sys on both sides, default compression,
 * progress on stderr unless quiet. */
struct copy_options cli_plain_copy_options(const struct system_context *sys, bool quiet);

/* Opens and closes a source of ref: that names it (ref->docker_name from an archive's RepoTags
 * or ref.name, a stored image's name), so the name can travel with the image. */
BERTH_MUST_CHECK int cli_name_from_source(struct image_reference *ref,
                                          const struct system_context *sys, berth_error_t *err);

#endif
