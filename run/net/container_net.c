/* The network side of container records: connect/disconnect/reload by container name, and the
 * record for `port` and `network rm`. */
#include "run/net/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/strutil.h"
#include "run/container.h"

#include <errno.h>
#include <string.h>

#define MAX_META (16u << 20)

struct ctr_meta {
    storage_container_t *c;
    json_t *meta;
    char *userdata, *rundir;
};

static void ctr_meta_clear(struct ctr_meta *m)
{
    storage_container_free(m->c);
    json_decref(m->meta);
    free(m->userdata);
    free(m->rundir);
    memset(m, 0, sizeof(*m));
}

static int ctr_meta_load(storage_store_t *s, const char *ctr, struct ctr_meta *m,
                         berth_error_t *err)
{
    memset(m, 0, sizeof(*m));
    if (storage_container_get(s, ctr, &m->c, err) < 0)
        return -1;
    if (!m->c->metadata ||
        json_parse_bounded(m->c->metadata, strlen(m->c->metadata), MAX_META, "container record",
                           &m->meta, NULL) < 0 ||
        !json_is_object(m->meta)) {
        ctr_meta_clear(m);
        return berth_error_make_status(err, EINVAL,
                                       "container \"%s\" was not created by berth run/create", ctr);
    }
    if (storage_container_dirs(s, m->c->id, &m->userdata, &m->rundir, err) < 0) {
        ctr_meta_clear(m);
        return -1;
    }
    return 0;
}

static int ctr_meta_save(storage_store_t *s, struct ctr_meta *m, berth_error_t *err)
{
    cleanup_free char *txt = json_dumps(m->meta, JSON_COMPACT | JSON_SORT_KEYS);
    return storage_container_set_metadata(s, m->c->id, txt, err);
}

int net_container_record(storage_store_t *s, const char *ctr, json_t **net, berth_error_t *err)
{
    struct ctr_meta m;
    if (ctr_meta_load(s, ctr, &m, err) < 0)
        return -1;
    json_t *n = json_object_get(m.meta, "net");
    *net = n ? json_incref(n) : json_object();
    ctr_meta_clear(&m);
    return 0;
}

static int change(storage_store_t *s, const char *ctr, const char *network, char **aliases,
                  const char *ip, int op, berth_error_t *err)
{
    struct ctr_meta m;
    if (ctr_meta_load(s, ctr, &m, err) < 0)
        return -1;
    json_t *net = json_object_get(m.meta, "net");
    if (!net) {
        ctr_meta_clear(&m);
        return berth_error_make_status(err, EINVAL, "container \"%s\" has no network record", ctr);
    }
    struct net_dirs d;
    net_dirs_init(&d, storage_store_root(s), storage_store_runroot(s));
    const json_t *spec = json_object_get(m.meta, "spec");
    struct net_attach_ctx c = {.dirs = &d,
                               .rundir = m.rundir,
                               .id = m.c->id,
                               .name = m.c->name,
                               .hostname = json_string_value(json_object_get(spec, "hostname")),
                               .net = net};
    int r;
    if (op == 0)
        r = net_connect(&c, net, network, aliases, ip, err);
    else if (op == 1)
        r = net_disconnect(&c, net, network, err);
    else
        r = net_reload(m.rundir, err);
    if (r == 0 && op != 2)
        r = ctr_meta_save(s, &m, err);
    net_dirs_clear(&d);
    ctr_meta_clear(&m);
    return r;
}

int net_container_connect(storage_store_t *s, const char *ctr, const char *network, char **aliases,
                          const char *ip, berth_error_t *err)
{
    return change(s, ctr, network, aliases, ip, 0, err);
}

int net_container_disconnect(storage_store_t *s, const char *ctr, const char *network,
                             berth_error_t *err)
{
    return change(s, ctr, network, NULL, NULL, 1, err);
}

int net_container_reload(storage_store_t *s, const char *ctr, berth_error_t *err)
{
    return change(s, ctr, NULL, NULL, NULL, 2, err);
}

void net_check(storage_store_t *s, bool repair, char ***problems, size_t *n_problems,
               size_t *n_repaired)
{
    storage_container_t **all = NULL;
    berth_error_t e = NULL;
    if (storage_container_list(s, &all, &e) < 0) {
        berth_error_release(&e);
        return;
    }
    for (size_t i = 0; all[i]; i++) {
        cleanup_free char *ud = NULL, *rd = NULL;
        if (storage_container_dirs(s, all[i]->id, &ud, &rd, &e) < 0) {
            berth_error_release(&e);
            continue;
        }
        if (!net_has_state(rd))
            continue;
        struct container_info ci;
        if (container_inspect(s, all[i]->id, &ci, &e) < 0) {
            berth_error_release(&e);
            continue;
        }
        bool live = strcmp(ci.status, "running") == 0 || strcmp(ci.status, "stopping") == 0;
        container_info_clear(&ci);
        if (live)
            continue;
        /* a crashed run's network: netns, veth, firewall rules, address leases, helpers */
        strv_add_take(problems, xasprintf("container %.12s: network of a run that did not end "
                                          "cleanly (netns, firewall rules, helpers)",
                                          all[i]->id));
        (*n_problems)++;
        if (repair) {
            net_detach(rd);
            (*n_repaired)++;
        }
    }
    storage_container_list_free(all);
}
