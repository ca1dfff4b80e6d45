/* containers-storage:[NAME|ID] — berth's own layer store (placeholder until the store lands). */
#include "common/alloc.h"
#include "common/cleanup.h"
#include "transport/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern const struct transport_ops storage_transport;

static char *st_string(const struct image_reference *ref)
{
    return xasprintf("containers-storage:%s", (const char *)ref->priv);
}

static void st_free(struct image_reference *ref)
{
    free(ref->priv);
    free(ref->docker_name);
    free(ref);
}

static int st_src(struct image_reference *ref, const struct system_context *sys,
                  struct image_source **out, berth_error_t *err)
{
    return berth_error_make_status(err, ENOTSUP, "containers-storage is not available yet");
}

static int st_dst(struct image_reference *ref, const struct system_context *sys,
                  struct image_destination **out, berth_error_t *err)
{
    return berth_error_make_status(err, ENOTSUP, "containers-storage is not available yet");
}

static const struct reference_ops st_ops = {
    .string = st_string, .new_source = st_src, .new_destination = st_dst, .free = st_free};

static int st_parse(const char *within, struct image_reference **out, berth_error_t *err)
{
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = &storage_transport;
    ref->ops = &st_ops;
    ref->priv = xstrdup(within);
    *out = ref;
    return 0;
}

const struct transport_ops storage_transport = {.name = "containers-storage",
                                                .parse_reference = st_parse};
