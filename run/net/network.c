/* Network definitions in podman's format: one NAME.json per network in the config dir, the
 * default network "podman" built in (a file of that name overrides it). */
#include "run/net/internal.h"

#include "common/imagespec.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NETWORK_FILE (1u << 20)
#define DEFAULT_ID       "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"

void net_dirs_init(struct net_dirs *d, const char *store_root, const char *store_runroot)
{
    memset(d, 0, sizeof(*d));
    d->rootless = net_rootless();
    const char *env = getenv("BERTH_NETWORK_CONFIG_DIR");
    if (env && *env)
        d->config_dir = xstrdup(env);
    else if (!d->rootless)
        d->config_dir = xstrdup("/etc/containers/networks");
    else
        d->config_dir = xasprintf("%s/networks", store_root);
    if (!d->rootless)
        d->run_dir = xstrdup("/run/containers/networks");
    else
        d->run_dir = xasprintf("%s/networks", store_runroot);
}

void net_dirs_clear(struct net_dirs *d)
{
    free(d->config_dir);
    free(d->run_dir);
    memset(d, 0, sizeof(*d));
}

static json_t *default_network(void)
{
    cleanup_free char *created = image_time_format(-1);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:b,s:b,s:b,s:{s:s}}", "name",
                     NET_DEFAULT_NAME, "id", DEFAULT_ID, "driver", "bridge", "network_interface",
                     "podman0", "created", created, "subnets", "subnet", "10.88.0.0/16", "gateway",
                     "10.88.0.1", "ipv6_enabled", false, "internal", false, "dns_enabled", false,
                     "ipam_options", "driver", "host-local");
}

bool net_valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 200 || !isalnum((unsigned char)n[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char ch = (unsigned char)n[i];
        if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
            return false;
    }
    return true;
}

static int load_file(const char *path, json_t **out, berth_error_t *err)
{
    json_t *j = NULL;
    if (json_load_file_bounded(path, MAX_NETWORK_FILE, &j, err) < 0)
        return -1;
    if (!json_is_object(j) || !json_get_string(j, "name")) {
        json_decref(j);
        return berth_error_make_status(err, EINVAL, "network file \"%s\": not a network", path);
    }
    *out = j;
    return 0;
}

int net_network_list(const struct net_dirs *d, json_t **out, berth_error_t *err)
{
    (void)err;
    json_t *arr = json_array();
    bool have_default = false;
    cleanup_dir DIR *dir = opendir(d->config_dir);
    cleanup_strv char **names = NULL;
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            size_t l = strlen(de->d_name);
            if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
                continue;
            strv_add(&names, de->d_name);
        }
    }
    size_t n = strv_len(names);
    if (n)
        qsort(names, n, sizeof(char *), net_strcmp_p);
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *p = xasprintf("%s/%s", d->config_dir, names[i]);
        json_t *j = NULL;
        berth_error_t e = NULL;
        if (load_file(p, &j, &e) < 0) {
            log_warn("skip network file: %s", berth_error_msg(e));
            berth_error_release(&e);
            continue;
        }
        if (strcmp(json_get_string(j, "name"), NET_DEFAULT_NAME) == 0) {
            have_default = true;
            json_array_insert_new(arr, 0, j);
        } else {
            json_array_append_new(arr, j);
        }
    }
    if (!have_default)
        json_array_insert_new(arr, 0, default_network());
    *out = arr;
    return 0;
}

int net_network_get(const struct net_dirs *d, const char *name, json_t **out, berth_error_t *err)
{
    if (net_valid_name(name)) {
        cleanup_free char *p = xasprintf("%s/%s.json", d->config_dir, name);
        if (access(p, F_OK) == 0)
            return load_file(p, out, err);
        if (strcmp(name, NET_DEFAULT_NAME) == 0) {
            *out = default_network();
            return 0;
        }
    }
    /* by id or unique id prefix */
    cleanup_json json_t *all = NULL;
    if (net_network_list(d, &all, err) < 0)
        return -1;
    size_t i, l = strlen(name);
    json_t *n, *found = NULL;
    json_array_foreach(all, i, n)
    {
        const char *id = json_get_string(n, "id");
        if (l >= 3 && id && strncmp(id, name, l) == 0) {
            if (found)
                return berth_error_make_status(err, EINVAL, "network id \"%s\" is ambiguous", name);
            found = n;
        }
    }
    if (!found)
        return berth_error_make_status(err, ENOENT, "network \"%s\" not found", name);
    *out = json_incref(found);
    return 0;
}

/* ---- addresses ---- */

int net_parse_cidr(const char *s, struct net_cidr *out)
{
    memset(out, 0, sizeof(*out));
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, strlen(s) + 1); /* length checked above */
    char *slash = strchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    char *end;
    long pfx = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1)
        return -1;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->v6 = false;
        if (pfx < 1 || pfx > 30)
            return -1;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->v6 = true;
        if (pfx < 1 || pfx > 126)
            return -1;
    } else {
        return -1;
    }
    out->prefix = (int)pfx;
    /* normalise: clear host bits */
    int len = out->v6 ? 16 : 4;
    for (int i = 0; i < len; i++) {
        int bits = out->prefix - i * 8;
        unsigned char mask =
            bits >= 8 ? 0xff : (bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits)));
        out->addr[i] &= mask;
    }
    return 0;
}

bool net_cidr_contains(const struct net_cidr *c, const unsigned char *addr, bool v6)
{
    if (c->v6 != v6)
        return false;
    for (int i = 0; i < (v6 ? 16 : 4); i++) {
        int bits = c->prefix - i * 8;
        unsigned char mask =
            bits >= 8 ? 0xff : (bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits)));
        if ((addr[i] & mask) != c->addr[i])
            return false;
    }
    return true;
}

static bool cidr_overlap(const struct net_cidr *a, const struct net_cidr *b)
{
    return net_cidr_contains(a, b->addr, b->v6) || net_cidr_contains(b, a->addr, a->v6);
}

/* Adds n to the low 32 bits of an address (host part offsets within a subnet). */
void net_addr_add(unsigned char *addr, bool v6, uint32_t n)
{
    int len = v6 ? 16 : 4;
    uint64_t carry = n;
    for (int i = len - 1; i >= 0 && carry; i--) {
        uint64_t v = addr[i] + (carry & 0xff);
        addr[i] = (unsigned char)v;
        carry = (carry >> 8) + (v >> 8);
    }
}

char *net_addr_str(const unsigned char *addr, bool v6)
{
    char b[INET6_ADDRSTRLEN];
    inet_ntop(v6 ? AF_INET6 : AF_INET, addr, b, sizeof(b));
    return xstrdup(b);
}

/* Subnets of all known networks (and of the host's own addresses) overlap-checked. */
static bool subnet_in_use(const json_t *all, const struct net_cidr *c)
{
    size_t i, k;
    json_t *n, *s;
    json_array_foreach(all, i, n)
    {
        json_array_foreach(json_get_array(n, "subnets"), k, s)
        {
            struct net_cidr o;
            const char *t = json_get_string(s, "subnet");
            if (t && net_parse_cidr(t, &o) == 0 && cidr_overlap(&o, c))
                return true;
        }
    }
    /* routes of the host (IPv4) */
    cleanup_file FILE *f = fopen("/proc/net/route", "re");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        char ifn[64];
        unsigned dst, gw, flags, mask;
        if (sscanf(line, "%63s %x %x %x %*d %*d %*d %x", ifn, &dst, &gw, &flags, &mask) != 5)
            continue;
        if (dst == 0 || c->v6)
            continue;
        struct net_cidr r = {.v6 = false, .prefix = __builtin_popcount(mask)};
        memcpy(r.addr, &dst, 4);
        if (cidr_overlap(&r, c))
            return true;
    }
    return false;
}

static bool interface_in_use(const json_t *all, const char *ifname)
{
    size_t i;
    json_t *n;
    json_array_foreach(all, i, n)
    {
        const char *x = json_get_string(n, "network_interface");
        if (x && strcmp(x, ifname) == 0)
            return true;
    }
    cleanup_free char *p = xasprintf("/sys/class/net/%s", ifname);
    return access(p, F_OK) == 0;
}

static char *random_hex(size_t bytes)
{
    unsigned char b[64];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, bytes) != (ssize_t)bytes) {
        for (size_t i = 0; i < bytes; i++)
            b[i] = (unsigned char)(rand() ^ (int)time(NULL));
    }
    if (fd >= 0)
        close(fd);
    char *s = xzalloc(bytes * 2 + 1);
    for (size_t i = 0; i < bytes; i++)
        snprintf(s + i * 2, 3, "%02x", b[i]);
    return s;
}

static int add_subnet(json_t *subnets, const char *cidr, const char *gw, const char *range,
                      berth_error_t *err)
{
    struct net_cidr c;
    if (net_parse_cidr(cidr, &c) < 0)
        return berth_error_make_status(err, EINVAL, "invalid subnet \"%s\"", cidr);
    cleanup_free char *norm_ip = net_addr_str(c.addr, c.v6);
    cleanup_free char *norm = xasprintf("%s/%d", norm_ip, c.prefix);
    json_t *s = json_pack("{s:s}", "subnet", norm);
    unsigned char g[16];
    if (gw) {
        if (inet_pton(c.v6 ? AF_INET6 : AF_INET, gw, g) != 1 || !net_cidr_contains(&c, g, c.v6)) {
            json_decref(s);
            return berth_error_make_status(err, EINVAL, "gateway \"%s\" is not in subnet %s", gw,
                                           norm);
        }
        json_object_set_new(s, "gateway", json_string(gw));
    } else {
        memcpy(g, c.addr, 16);
        net_addr_add(g, c.v6, 1);
        cleanup_free char *gs = net_addr_str(g, c.v6);
        json_object_set_new(s, "gateway", json_string(gs));
    }
    if (range) {
        char start[64], end[64];
        struct net_cidr rc;
        if (net_parse_cidr(range, &rc) == 0 && rc.v6 == c.v6 &&
            net_cidr_contains(&c, rc.addr, c.v6)) {
            unsigned char a[16], b[16];
            memcpy(a, rc.addr, 16);
            memcpy(b, rc.addr, 16);
            int hostbits = (c.v6 ? 128 : 32) - rc.prefix;
            uint32_t size = hostbits >= 32 ? 0xffffffffu : ((1u << hostbits) - 1);
            net_addr_add(b, c.v6, size);
            cleanup_free char *sa = net_addr_str(a, c.v6), *sb = net_addr_str(b, c.v6);
            snprintf(start, sizeof(start), "%s", sa);
            snprintf(end, sizeof(end), "%s", sb);
        } else if (sscanf(range, "%63[^-]-%63s", start, end) == 2) {
            unsigned char a[16], b[16];
            if (inet_pton(c.v6 ? AF_INET6 : AF_INET, start, a) != 1 ||
                inet_pton(c.v6 ? AF_INET6 : AF_INET, end, b) != 1 ||
                !net_cidr_contains(&c, a, c.v6) || !net_cidr_contains(&c, b, c.v6)) {
                json_decref(s);
                return berth_error_make_status(err, EINVAL, "invalid --ip-range \"%s\"", range);
            }
        } else {
            json_decref(s);
            return berth_error_make_status(err, EINVAL, "invalid --ip-range \"%s\"", range);
        }
        json_object_set_new(s, "lease_range",
                            json_pack("{s:s,s:s}", "start_ip", start, "end_ip", end));
    }
    json_array_append_new(subnets, s);
    return 0;
}

int net_network_create(const struct net_dirs *d, const struct net_create_opts *o, json_t **out,
                       berth_error_t *err)
{
    const char *driver = o->driver ? o->driver : "bridge";
    if (strcmp(driver, "bridge") != 0 && strcmp(driver, "macvlan") != 0)
        return berth_error_make_status(
            err, EINVAL, "unsupported network driver \"%s\": use bridge or macvlan", driver);
    cleanup_json json_t *all = NULL;
    if (net_network_list(d, &all, err) < 0)
        return -1;
    cleanup_free char *name = NULL;
    if (o->name) {
        if (!net_valid_name(o->name))
            return berth_error_make_status(err, EINVAL,
                                           "invalid network name \"%s\": letters, digits, '_', "
                                           "'.' and '-', starting with a letter or digit",
                                           o->name);
        size_t i;
        json_t *n;
        json_array_foreach(all, i, n)
        {
            if (strcmp(json_get_string(n, "name"), o->name) == 0)
                return berth_error_make_status(err, EEXIST, "network name %s already used",
                                               o->name);
        }
        name = xstrdup(o->name);
    } else {
        for (int k = 1; k < 10000 && !name; k++) {
            cleanup_free char *cand = xasprintf("podman%d", k);
            cleanup_json json_t *x = NULL;
            berth_error_t e = NULL;
            if (net_network_get(d, cand, &x, &e) < 0)
                name = steal_pointer(&cand);
            berth_error_release(&e);
        }
    }
    cleanup_free char *id = random_hex(32);
    cleanup_free char *created = image_time_format(-1);
    json_t *subnets = json_array();
    cleanup_json json_t *net = json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", name, "id", id, "driver",
                                         driver, "created", created, "subnets", subnets);
    size_t nsub = strv_len(o->subnets);
    for (size_t i = 0; i < nsub; i++) {
        struct net_cidr c;
        if (net_parse_cidr(o->subnets[i], &c) < 0)
            return berth_error_make_status(err, EINVAL, "invalid subnet \"%s\"", o->subnets[i]);
        if (subnet_in_use(all, &c))
            return berth_error_make_status(err, EEXIST, "subnet %s is already used", o->subnets[i]);
        const char *gw = i < strv_len(o->gateways) ? o->gateways[i] : NULL;
        const char *rg = i < strv_len(o->ip_ranges) ? o->ip_ranges[i] : NULL;
        if (add_subnet(subnets, o->subnets[i], gw, rg, err) < 0)
            return -1;
    }
    bool have_v4 = false, have_v6 = false;
    size_t k;
    json_t *s;
    json_array_foreach(subnets, k, s)
    {
        struct net_cidr c;
        if (net_parse_cidr(json_get_string(s, "subnet"), &c) == 0)
            (c.v6 ? &have_v6 : &have_v4)[0] = true;
    }
    if (!nsub && strcmp(driver, "bridge") == 0) {
        /* podman's default pool for new networks: 10.89.0.0/24 upwards */
        for (int n = 0; n < 256 && !have_v4; n++) {
            cleanup_free char *cand = xasprintf("10.89.%d.0/24", n);
            struct net_cidr c;
            net_parse_cidr(cand, &c);
            if (subnet_in_use(all, &c))
                continue;
            if (add_subnet(subnets, cand, NULL, strv_len(o->ip_ranges) ? o->ip_ranges[0] : NULL,
                           err) < 0)
                return -1;
            have_v4 = true;
        }
        if (!have_v4)
            return berth_error_make_status(err, ENOSPC, "no free subnet in 10.89.0.0/16");
    }
    if (o->ipv6 && !have_v6) {
        for (int tries = 0; tries < 64 && !have_v6; tries++) {
            cleanup_free char *r = random_hex(5);
            cleanup_free char *cand = xasprintf("fd%.2s:%.4s:%.4s::/64", r, r + 2, r + 6);
            struct net_cidr c;
            if (net_parse_cidr(cand, &c) < 0 || subnet_in_use(all, &c))
                continue;
            if (add_subnet(subnets, cand, NULL, NULL, err) < 0)
                return -1;
            have_v6 = true;
        }
    }
    if (strcmp(driver, "bridge") == 0) {
        cleanup_free char *ifn = NULL;
        if (o->interface) {
            ifn = xstrdup(o->interface);
        } else {
            for (int n = 1; n < 10000 && !ifn; n++) {
                cleanup_free char *cand = xasprintf("podman%d", n);
                if (!interface_in_use(all, cand))
                    ifn = steal_pointer(&cand);
            }
        }
        json_object_set_new(net, "network_interface", json_string(ifn));
    } else {
        /* macvlan: the parent interface, from -o parent= or --interface-name */
        const char *parent = o->interface;
        for (char **p = o->options; p && *p && !parent; p++)
            if (strncmp(*p, "parent=", 7) == 0)
                parent = *p + 7;
        if (parent)
            json_object_set_new(net, "network_interface", json_string(parent));
    }
    json_object_set_new(net, "ipv6_enabled", json_boolean(have_v6));
    json_object_set_new(net, "internal", json_boolean(o->internal));
    json_object_set_new(net, "dns_enabled",
                        json_boolean(!o->disable_dns && strcmp(driver, "bridge") == 0));
    if (o->labels) {
        json_t *l = json_object();
        for (char **p = o->labels; *p; p++) {
            const char *eq = strchr(*p, '=');
            cleanup_free char *key = eq ? xstrndup(*p, (size_t)(eq - *p)) : xstrdup(*p);
            json_object_set_new(l, key, json_string(eq ? eq + 1 : ""));
        }
        json_object_set_new(net, "labels", l);
    }
    if (o->options) {
        json_t *l = json_object();
        for (char **p = o->options; *p; p++) {
            const char *eq = strchr(*p, '=');
            cleanup_free char *key = eq ? xstrndup(*p, (size_t)(eq - *p)) : xstrdup(*p);
            json_object_set_new(l, key, json_string(eq ? eq + 1 : ""));
        }
        json_object_set_new(net, "options", l);
    }
    json_object_set_new(
        net, "ipam_options",
        json_pack("{s:s}", "driver", json_array_size(subnets) ? "host-local" : "dhcp"));
    if (fs_mkdir_p(d->config_dir, 0755, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/%s.json", d->config_dir, name);
    cleanup_free char *txt = json_dump_pretty(net);
    if (fs_write_file_atomic(path, txt, strlen(txt), 0644, err) < 0)
        return -1;
    *out = steal_pointer(&net);
    return 0;
}

int net_network_remove(const struct net_dirs *d, const char *name, berth_error_t *err)
{
    cleanup_json json_t *n = NULL;
    if (net_network_get(d, name, &n, err) < 0)
        return -1;
    const char *nm = json_get_string(n, "name");
    if (strcmp(nm, NET_DEFAULT_NAME) == 0)
        return berth_error_make_status(err, EBUSY, "default network %s cannot be removed", nm);
    cleanup_free char *path = xasprintf("%s/%s.json", d->config_dir, nm);
    if (unlink(path) < 0)
        return berth_error_make(err, errno, "remove \"%s\"", path);
    return 0;
}
