/* network connect / disconnect / reload on a container's bridge networks. */
#include "run/net/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <string.h>

static bool in_array(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* /etc/hosts and resolv.conf from everything the state says is attached. */
static int refresh_etc(const struct net_attach_ctx *c, const json_t *st, berth_error_t *err)
{
    cleanup_json json_t *all = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_get_object(st, "status"), k, v) json_object_set(all, k, v);
    json_object_foreach(json_get_object(st, "extra_status"), k, v)
    {
        json_t *kv;
        const char *kk;
        json_object_foreach(v, kk, kv) json_object_set(all, kk, kv);
    }
    cleanup_json json_t *addrs = json_array(), *dns = json_array(), *search = json_array();
    cleanup_free char *gw = NULL;
    net_parse_status(all, addrs, dns, search, &gw);
    return net_etc_update(c->rundir, c->net, c->hostname, c->name, addrs, dns, search, gw, err);
}

int net_connect(const struct net_attach_ctx *c, json_t *net, const char *network, char **aliases,
                const char *ip, berth_error_t *err)
{
    const char *mode = json_get_string(net, "mode");
    if (!mode || strcmp(mode, "bridge") != 0)
        return berth_error_make_status(err, EINVAL,
                                       "network connect: the container's network mode is %s, "
                                       "not bridge",
                                       mode ? mode : "none");
    cleanup_json json_t *def = NULL;
    if (net_network_get(c->dirs, network, &def, err) < 0)
        return -1;
    const char *name = json_get_string(def, "name");
    json_t *names = json_get_array(net, "networks");
    if (in_array(names, name))
        return berth_error_make_status(err, EEXIST, "container is already connected to network %s",
                                       name);
    json_t *na = json_get_object(net, "net_aliases");
    if (!na) {
        na = json_object();
        json_object_set_new(net, "net_aliases", na);
    }
    json_object_set_new(na, name, json_from_strv(aliases ? aliases : (char *[]){NULL}));
    if (ip) {
        json_t *si = json_get_object(net, "static_ips");
        if (!si) {
            si = json_object();
            json_object_set_new(net, "static_ips", si);
        }
        json_object_set_new(si, name, json_string(ip));
    }
    cleanup_json json_t *st = NULL;
    if (net_state_load(c->rundir, &st) == 0 && json_get_string(st, "netns")) {
        /* running: set it up now, in its own netavark call (as podman) */
        struct net_attach_ctx c2 = *c;
        c2.net = net;
        cleanup_json json_t *one = json_pack("[s]", name);
        cleanup_json json_t *res = NULL;
        /* the interface is the next ethN */
        json_t *ifs = json_get_object(net, "interfaces");
        if (!ifs) {
            ifs = json_object();
            json_object_set_new(net, "interfaces", ifs);
        }
        size_t n = json_array_size(names);
        cleanup_free char *ifn = NULL;
        for (size_t k = n;; k++) {
            free(ifn);
            ifn = xasprintf("eth%zu", k);
            bool used = false;
            const char *kk;
            json_t *vv;
            json_object_foreach(ifs, kk, vv) used |= strcmp(json_string_value(vv) ?: "", ifn) == 0;
            if (!used)
                break;
        }
        json_object_set_new(ifs, name, json_string(ifn));
        if (netavark_attach(&c2, json_get_string(st, "netns"), one, name, st, &res, err) < 0) {
            IGNORE_RESULT(net_state_save(c->rundir, st, NULL));
            return -1;
        }
        json_t *es = json_get_object(st, "extra_status");
        if (!es) {
            es = json_object();
            json_object_set_new(st, "extra_status", es);
        }
        json_object_set(es, name, res);
        if (net_state_save(c->rundir, st, err) < 0)
            return -1;
        json_array_append_new(names, json_string(name));
        return refresh_etc(&c2, st, err);
    }
    json_array_append_new(names, json_string(name));
    return 0;
}

/* options JSON restricted to one network (keep) or without it (!keep); NULL when empty. */
static char *options_subset(const char *txt, const char *name, bool keep)
{
    json_t *o = NULL;
    if (!txt || json_parse_bounded(txt, strlen(txt), MAX_HELPER_OUT, "options", &o, NULL) < 0)
        return NULL;
    const char *keys[] = {"networks", "network_info"};
    for (int i = 0; i < 2; i++) {
        json_t *m = json_get_object(o, keys[i]);
        if (keep) {
            json_t *v = json_incref(json_object_get(m, name));
            json_object_clear(m);
            if (v)
                json_object_set_new(m, name, v);
        } else {
            json_object_del(m, name);
        }
    }
    char *r = json_object_size(json_get_object(o, "networks")) ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return r;
}

int net_disconnect(const struct net_attach_ctx *c, json_t *net, const char *network,
                   berth_error_t *err)
{
    cleanup_json json_t *def = NULL;
    const char *name = network;
    if (net_network_get(c->dirs, network, &def, NULL) == 0)
        name = json_get_string(def, "name");
    json_t *names = json_get_array(net, "networks");
    if (!in_array(names, name))
        return berth_error_make_status(err, ENOENT, "container is not connected to network %s",
                                       name);
    cleanup_json json_t *st = NULL;
    if (net_state_load(c->rundir, &st) == 0 && json_get_string(st, "netns")) {
        struct net_dirs d = {.run_dir = (char *)json_get_string(st, "run_dir"),
                             .config_dir = (char *)json_get_string(st, "config_dir")};
        const char *ns = json_get_string(st, "netns");
        json_t *extra = json_get_object(st, "extra");
        berth_error_t e = NULL;
        if (json_get_string(extra, name)) {
            if (netavark_teardown(&d, ns, json_get_string(extra, name), &e) < 0) {
                log_warn("netavark teardown: %s", berth_error_msg(e));
                berth_error_release(&e);
            }
            json_object_del(extra, name);
            json_object_del(json_get_object(st, "extra_status"), name);
        } else {
            cleanup_free char *one = options_subset(json_get_string(st, "netavark"), name, true);
            cleanup_free char *rest = options_subset(json_get_string(st, "netavark"), name, false);
            if (one && netavark_teardown(&d, ns, one, &e) < 0) {
                log_warn("netavark teardown: %s", berth_error_msg(e));
                berth_error_release(&e);
            }
            if (rest)
                json_object_set_new(st, "netavark", json_string(rest));
            else
                json_object_del(st, "netavark");
            json_object_del(json_get_object(st, "status"), name);
        }
        /* the addresses go back to the pool */
        json_t *leases = json_get_array(st, "leases");
        cleanup_json json_t *gone = json_array();
        for (size_t i = json_array_size(leases); i-- > 0;) {
            json_t *l = json_array_get(leases, i);
            if (strcmp(json_get_string(l, "network") ?: "", name) == 0) {
                json_array_append(gone, l);
                json_array_remove(leases, i);
            }
        }
        ipam_release(&d, gone);
        if (net_state_save(c->rundir, st, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < json_array_size(names); i++)
        if (strcmp(json_string_value(json_array_get(names, i)) ?: "", name) == 0)
            json_array_remove(names, i--);
    json_object_del(json_get_object(net, "interfaces"), name);
    json_object_del(json_get_object(net, "net_aliases"), name);
    json_object_del(json_get_object(net, "static_ips"), name);
    if (st && json_get_string(st, "netns")) {
        struct net_attach_ctx c2 = *c;
        c2.net = net;
        return refresh_etc(&c2, st, err);
    }
    return 0;
}

int net_reload(const char *rundir, berth_error_t *err)
{
    cleanup_json json_t *st = NULL;
    if (net_state_load(rundir, &st) < 0 || !json_get_string(st, "netavark"))
        return 0;
    struct net_dirs d = {.run_dir = (char *)json_get_string(st, "run_dir"),
                         .config_dir = (char *)json_get_string(st, "config_dir")};
    const char *ns = json_get_string(st, "netns");
    /* teardown + setup with the same options (addresses are static in them) */
    berth_error_t e = NULL;
    if (netavark_teardown(&d, ns, json_get_string(st, "netavark"), &e) < 0)
        berth_error_release(&e);
    if (netavark_setup(&d, ns, json_get_string(st, "netavark"), err) < 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(json_get_object(st, "extra"), k, v)
    {
        if (netavark_teardown(&d, ns, json_string_value(v), &e) < 0)
            berth_error_release(&e);
        if (netavark_setup(&d, ns, json_string_value(v), err) < 0)
            return -1;
    }
    return 0;
}
