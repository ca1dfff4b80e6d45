/* CLI glue shared by the image-moving commands. */
#include "cmd/transport_cli.h"

#include "cmd/store_open.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/reference.h"

#include <string.h>

void cli_system_context_init(struct berth_globals *g, struct system_context *sys)
{
    memset(sys, 0, sizeof(*sys));
    sys->storage_root = g->root;
    sys->storage_runroot = g->runroot;
    sys->storage_driver = g->storage_driver;
    sys->registries_conf = g->registries_conf;
    sys->tls_verify = -1;
    sys->retry_times = -1;
    sys->retry_delay_ms = -1;
}

int cli_parse_image_ref(const char *s, const char *default_transport, struct image_reference **out,
                        berth_error_t *err)
{
    const char *colon = strchr(s, ':');
    if (colon) {
        cleanup_free char *name = xstrndup(s, (size_t)(colon - s));
        if (transport_name_is_known(name))
            return transport_parse_reference(s, out, err);
    }
    cleanup_free char *full = strcmp(default_transport, "docker") == 0
                                  ? xasprintf("docker://%s", s)
                                  : xasprintf("%s:%s", default_transport, s);
    return transport_parse_reference(full, out, err);
}

static bool is_storage(const struct image_reference *r)
{
    return r && strcmp(r->transport->name, "containers-storage") == 0;
}

int cli_store_for_refs(struct berth_globals *g, struct cli_store_holder *h,
                       const struct image_reference *a, const struct image_reference *b,
                       struct system_context *sa, struct system_context *sb, berth_error_t *err)
{
    h->store = NULL;
    if (!is_storage(a) && !is_storage(b))
        return 0;
    if (cli_store_for_sys(g, h, sa, err) < 0)
        return -1;
    if (sb)
        sb->store = h->store;
    return 0;
}

int cli_store_for_sys(struct berth_globals *g, struct cli_store_holder *h,
                      struct system_context *sys, berth_error_t *err)
{
    /* opened here, not by the transport, so that a rootless user enters berth's user namespace
     * first (cli_store_open) */
    h->store = NULL;
    storage_store_t *st = NULL;
    if (cli_store_open(g, &st, err) < 0)
        return -1;
    h->store = (struct storage_store *)st;
    if (sys)
        sys->store = h->store;
    return 0;
}

void cli_store_release(struct cli_store_holder *h)
{
    storage_store_close((storage_store_t *)h->store);
    h->store = NULL;
}

int cli_copy_image(struct berth_globals *g, struct image_reference *src,
                   struct image_reference *dst, struct system_context *src_sys,
                   struct system_context *dst_sys, const struct copy_options *o,
                   struct copy_result *res, berth_error_t *err)
{
    struct cli_store_holder h = {0};
    if (cli_store_for_refs(g, &h, src, dst, src_sys, dst_sys, err) < 0)
        return -1;
    int r = copy_image(src, dst, o, res, err);
    cli_store_release(&h);
    return r;
}

struct copy_options cli_plain_copy_options(const struct system_context *sys, bool quiet)
{
    return (struct copy_options){.src_sys = sys,
                                 .dst_sys = sys,
                                 .quiet = quiet,
                                 .progress_out = stderr,
                                 .compression_level = -1};
}

int cli_name_from_source(struct image_reference *ref, const struct system_context *sys,
                         berth_error_t *err)
{
    struct image_source *probe = NULL;
    if (ref->ops->new_source(ref, sys, &probe, err) < 0)
        return -1;
    image_source_close(probe);
    return 0;
}
