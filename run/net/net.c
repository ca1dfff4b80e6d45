/* Container networking: modes, the container's "net" record, attach/detach, generated
 * /etc/hosts and /etc/resolv.conf, published ports.  See net.h. */
#include "run/net/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"
#include "storage/userns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STATE (4u << 20)

bool net_rootless(void)
{
    return userns_is_rootless();
}

int net_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- state ---- */

int net_state_load(const char *rundir, json_t **out)
{
    cleanup_free char *p = xasprintf("%s/%s", rundir, NET_STATE_FILE);
    berth_error_t e = NULL;
    if (json_load_file_bounded(p, MAX_STATE, out, &e) < 0) {
        berth_error_release(&e);
        return -1;
    }
    return 0;
}

int net_state_save(const char *rundir, const json_t *st, berth_error_t *err)
{
    cleanup_free char *p = xasprintf("%s/%s", rundir, NET_STATE_FILE);
    return json_write_file_atomic(p, st, 0600, err);
}

bool net_has_state(const char *rundir)
{
    cleanup_free char *p = xasprintf("%s/%s", rundir, NET_STATE_FILE);
    return access(p, F_OK) == 0;
}

/* ---- -p ---- */

static int parse_range(const char *s, size_t len, long *lo, long *n)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    long a = strtol(buf, &end, 10), b = a;
    if (end == buf)
        return -1;
    if (*end == '-') {
        char *e2;
        b = strtol(end + 1, &e2, 10);
        if (e2 == end + 1 || *e2)
            return -1;
    } else if (*end) {
        return -1;
    }
    if (a < 0 || a > 65535 || b < a || b > 65535)
        return -1;
    *lo = a;
    *n = b - a + 1;
    return 0;
}

/* A free host port (the kernel's choice), for -P and -p CTRPORT. */
static int free_port(const char *proto)
{
    int type = strcmp(proto, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t l = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int net_parse_publish(const char *spec, json_t *arr, berth_error_t *err)
{
    cleanup_free char *s = xstrdup(spec);
    const char *proto = "tcp";
    char *slash = strrchr(s, '/');
    if (slash && !strchr(slash, ']')) {
        *slash = '\0';
        proto = slash + 1;
    }
    cleanup_free char *protos = xstrdup(proto);
    /* [IP:][HOST:]CTR; IPv6 addresses in brackets */
    char *ip = NULL;
    char *rest = s;
    if (s[0] == '[') {
        char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return berth_error_make_status(err, EINVAL, "invalid -p \"%s\"", spec);
        *rb = '\0';
        ip = s + 1;
        rest = rb + 2;
    }
    char *parts[3];
    int np = 0;
    for (char *p = rest; np < 3;) {
        parts[np++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    if (strchr(parts[np - 1], ':'))
        return berth_error_make_status(err, EINVAL, "invalid -p \"%s\"", spec);
    const char *host = NULL, *ctr = parts[np - 1];
    if (np == 3) {
        if (ip)
            return berth_error_make_status(err, EINVAL, "invalid -p \"%s\"", spec);
        ip = parts[0];
        host = parts[1];
    } else if (np == 2) {
        if (ip)
            host = parts[0];
        else
            host = parts[0];
    }
    if (ip && *ip) {
        unsigned char b[16];
        if (inet_pton(AF_INET, ip, b) != 1 && inet_pton(AF_INET6, ip, b) != 1)
            return berth_error_make_status(err, EINVAL, "invalid -p \"%s\": bad IP \"%s\"", spec,
                                           ip);
    }
    long clo, cn, hlo = 0, hn = 0;
    if (parse_range(ctr, strlen(ctr), &clo, &cn) < 0 || clo == 0)
        return berth_error_make_status(err, EINVAL, "invalid -p \"%s\": bad container port", spec);
    if (host && *host) {
        if (parse_range(host, strlen(host), &hlo, &hn) < 0 || hlo == 0)
            return berth_error_make_status(err, EINVAL, "invalid -p \"%s\": bad host port", spec);
        if (hn != cn)
            return berth_error_make_status(
                err, EINVAL, "invalid -p \"%s\": host and container port ranges differ in size",
                spec);
    }
    char *save = NULL;
    for (char *pr = strtok_r(protos, ",", &save); pr; pr = strtok_r(NULL, ",", &save)) {
        if (strcmp(pr, "tcp") != 0 && strcmp(pr, "udp") != 0 && strcmp(pr, "sctp") != 0)
            return berth_error_make_status(
                err, EINVAL, "invalid -p \"%s\": protocol must be tcp, udp or sctp", spec);
        long h = hlo;
        if (!h) {
            if (cn > 1)
                return berth_error_make_status(
                    err, EINVAL, "invalid -p \"%s\": a port range needs host ports", spec);
            h = free_port(pr);
            if (h <= 0)
                return berth_error_make_status(err, EADDRNOTAVAIL, "no free host port for -p %s",
                                               spec);
        }
        json_array_append_new(arr, json_pack("{s:s,s:i,s:i,s:i,s:s}", "host_ip", ip ? ip : "",
                                             "container_port", (int)clo, "host_port", (int)h,
                                             "range", (int)cn, "protocol", pr));
    }
    return 0;
}

/* ---- the record ---- */

static json_t *strv_json(char **v)
{
    return json_from_strv(v ? v : (char *[]){NULL});
}

int net_config_create(const struct net_dirs *d, const struct net_options *o,
                      const json_t *image_config, json_t **out, berth_error_t *err)
{
    const char *m = o->mode;
    if (!m || !*m || strcmp(m, "private") == 0 || strcmp(m, "default") == 0)
        m = d->rootless ? "pasta" : "bridge";
    cleanup_json json_t *net = json_object();
    const char *colon = strchr(m, ':');
    size_t kl = colon ? (size_t)(colon - m) : strlen(m);
    const char *arg = colon ? colon + 1 : NULL;
    json_t *names = NULL;
    if (strcmp(m, "none") == 0 || strcmp(m, "host") == 0) {
        json_object_set_new(net, "mode", json_string(m));
    } else if ((kl == 5 && strncmp(m, "pasta", 5) == 0) ||
               (kl == 11 && strncmp(m, "slirp4netns", 11) == 0)) {
        json_object_set_new(net, "mode", json_stringn(m, kl));
        if (arg)
            json_object_set_new(net, "opts", json_string(arg));
        if (access(kl == 5 ? "/usr/bin/pasta" : "/usr/bin/slirp4netns", X_OK) < 0)
            return berth_error_make_status(err, ENOENT, "--network %.*s: %s is not installed",
                                           (int)kl, m,
                                           kl == 5 ? "pasta (package passt)" : "slirp4netns");
    } else if ((kl == 9 && strncmp(m, "container", 9) == 0) ||
               (kl == 2 && strncmp(m, "ns", 2) == 0)) {
        if (!arg || !*arg)
            return berth_error_make_status(err, EINVAL, "--network %s needs a value", m);
        if (kl == 9 && d->rootless)
            return berth_error_make_status(
                err, ENOTSUP,
                "--network container: is not supported for rootless containers yet (each berth "
                "process has a user namespace of its own)");
        json_object_set_new(net, "mode", json_stringn(m, kl));
        json_object_set_new(net, "target", json_string(arg));
        if (kl == 2 && arg[0] != '/')
            return berth_error_make_status(err, EINVAL, "--network ns:PATH needs an absolute path");
    } else {
        /* bridge, or named networks */
        names = json_array();
        json_object_set_new(net, "mode", json_string("bridge"));
        json_object_set_new(net, "networks", names);
        if (kl == 6 && strncmp(m, "bridge", 6) == 0) {
            json_array_append_new(names, json_string(NET_DEFAULT_NAME));
        } else {
            cleanup_free char *copy = xstrdup(m);
            char *save = NULL;
            for (char *n = strtok_r(copy, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
                /* NAME:ip=...,alias=... per-network options are not supported yet */
                cleanup_json json_t *def = NULL;
                if (net_network_get(d, n, &def, err) < 0)
                    return berth_error_wrap(err, "--network");
                json_array_append_new(names, json_string(json_get_string(def, "name")));
            }
        }
        if (d->rootless)
            return berth_error_make_status(
                err, ENOTSUP,
                "--network %s: bridge networks need root; rootless containers use pasta or "
                "slirp4netns",
                m);
        if (access(NETAVARK_BIN, X_OK) < 0)
            return berth_error_make_status(err, ENOENT, "netavark is not installed (%s)",
                                           NETAVARK_BIN);
    }
    const char *mode = json_get_string(net, "mode");
    bool private_stack = strcmp(mode, "bridge") == 0 || strcmp(mode, "pasta") == 0 ||
                         strcmp(mode, "slirp4netns") == 0;
    json_t *ports = json_array();
    json_object_set_new(net, "ports", ports);
    for (char **p = o->publish; p && *p; p++)
        if (net_parse_publish(*p, ports, err) < 0)
            return -1;
    if (o->publish_all) {
        const char *k;
        json_t *v;
        json_object_foreach(json_get_object(image_config, "ExposedPorts"), k, v)
        {
            if (net_parse_publish(k, ports, err) < 0)
                return -1;
        }
    }
    if (json_array_size(ports) && !private_stack)
        return berth_error_make_status(err, EINVAL,
                                       "-p/-P need a network of its own (bridge, pasta or "
                                       "slirp4netns), not --network %s",
                                       mode);
    if ((o->aliases || o->ip || o->mac) && strcmp(mode, "bridge") != 0)
        return berth_error_make_status(err, EINVAL,
                                       "--network-alias, --ip and --mac-address need a bridge "
                                       "network");
    if (o->ip) {
        unsigned char b[16];
        if (inet_pton(AF_INET, o->ip, b) != 1 && inet_pton(AF_INET6, o->ip, b) != 1)
            return berth_error_make_status(err, EINVAL, "invalid --ip \"%s\"", o->ip);
        json_object_set_new(net, "ip", json_string(o->ip));
    }
    if (o->mac) {
        unsigned int x[6];
        if (sscanf(o->mac, "%x:%x:%x:%x:%x:%x", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5]) != 6)
            return berth_error_make_status(err, EINVAL, "invalid --mac-address \"%s\"", o->mac);
        json_object_set_new(net, "mac", json_string(o->mac));
    }
    for (char **a = o->add_host; a && *a; a++) {
        const char *c = strchr(*a, ':');
        if (!c || c == *a || !c[1])
            return berth_error_make_status(err, EINVAL, "invalid --add-host \"%s\": use HOST:IP",
                                           *a);
    }
    for (char **a = o->dns; a && *a; a++) {
        unsigned char b[16];
        if (inet_pton(AF_INET, *a, b) != 1 && inet_pton(AF_INET6, *a, b) != 1 &&
            strcmp(*a, "none") != 0)
            return berth_error_make_status(err, EINVAL, "invalid --dns \"%s\"", *a);
    }
    json_object_set_new(net, "aliases", strv_json(o->aliases));
    json_object_set_new(net, "dns", strv_json(o->dns));
    json_object_set_new(net, "dns_search", strv_json(o->dns_search));
    json_object_set_new(net, "dns_option", strv_json(o->dns_option));
    json_object_set_new(net, "add_host", strv_json(o->add_host));
    json_object_set_new(net, "no_hosts", json_boolean(o->no_hosts));
    *out = steal_pointer(&net);
    return 0;
}

bool net_is_host(const json_t *net)
{
    const char *m = json_get_string(net, "mode");
    return m && strcmp(m, "host") == 0;
}

int net_join_path(const json_t *net, net_pid_lookup_fn lookup, void *arg, char **out,
                  berth_error_t *err)
{
    *out = NULL;
    const char *m = json_get_string(net, "mode"), *t = json_get_string(net, "target");
    if (!m || !t)
        return 0;
    if (strcmp(m, "ns") == 0) {
        *out = xstrdup(t);
        return 0;
    }
    if (strcmp(m, "container") == 0) {
        pid_t p = lookup ? lookup(t, arg) : -1;
        if (p <= 0)
            return berth_error_make_status(
                err, EINVAL, "--network container:%s: that container is not running", t);
        *out = xasprintf("/proc/%d/ns/net", (int)p);
    }
    return 0;
}

/* ---- /etc/hosts, /etc/resolv.conf ---- */

static char *read_host_file(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    berth_error_t e = NULL;
    if (fs_read_file(path, 1 << 20, &data, &len, &e) < 0) {
        berth_error_release(&e);
        return xstrdup("");
    }
    return data;
}

static char *hosts_text(const json_t *net, const char *hostname, const char *name,
                        const json_t *addrs, const char *host_gw)
{
    struct strbuf b = {0};
    if (net_is_host(net)) {
        cleanup_free char *h = read_host_file("/etc/hosts");
        strbuf_append(&b, h);
        if (b.len && b.buf[b.len - 1] != '\n')
            strbuf_putc(&b, '\n');
    } else {
        strbuf_append(&b, "127.0.0.1\tlocalhost localhost.localdomain localhost4 "
                          "localhost4.localdomain4\n"
                          "::1\tlocalhost localhost.localdomain localhost6 "
                          "localhost6.localdomain6\n");
    }
    size_t i;
    json_t *a;
    json_array_foreach(json_get_array(net, "add_host"), i, a)
    {
        const char *s = json_string_value(a);
        const char *c = s ? strchr(s, ':') : NULL;
        if (!c)
            continue;
        strbuf_appendf(&b, "%s\t%.*s\n", c + 1, (int)(c - s), s);
    }
    if (!net_is_host(net)) {
        bool any = false;
        json_array_foreach(addrs, i, a)
        {
            const char *ip = json_string_value(a);
            if (!ip)
                continue;
            any = true;
            if (name && *name && strcmp(name, hostname) != 0)
                strbuf_appendf(&b, "%s\t%s %s\n", ip, hostname, name);
            else
                strbuf_appendf(&b, "%s\t%s\n", ip, hostname);
        }
        if (!any) {
            if (name && *name && strcmp(name, hostname) != 0)
                strbuf_appendf(&b, "127.0.1.1\t%s %s\n", hostname, name);
            else
                strbuf_appendf(&b, "127.0.1.1\t%s\n", hostname);
        }
        if (host_gw)
            strbuf_appendf(&b, "%s\thost.containers.internal\n", host_gw);
    }
    return strbuf_steal(&b);
}

/* podman's rule: the user's --dns/--dns-search/--dns-option replace the host's; the network's
 * DNS server (aardvark-dns) replaces the host's nameservers. */
static char *resolv_text(const json_t *net, const json_t *dns, const json_t *search)
{
    cleanup_free char *host = read_host_file("/etc/resolv.conf");
    cleanup_strv char **ns = NULL, **srch = NULL, **opts = NULL;
    char *save = NULL;
    bool hostnet = net_is_host(net);
    for (char *l = strtok_r(host, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *p = l;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "nameserver", 10) == 0 && (p[10] == ' ' || p[10] == '\t')) {
            char *v = p + 11;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, " \t#")] = '\0';
            /* the host's loopback resolver is not reachable from a network of its own */
            if (!hostnet && (strncmp(v, "127.", 4) == 0 || strcmp(v, "::1") == 0))
                continue;
            strv_add(&ns, v);
        } else if ((strncmp(p, "search", 6) == 0 || strncmp(p, "domain", 6) == 0) &&
                   (p[6] == ' ' || p[6] == '\t')) {
            char *s2 = NULL;
            for (char *t = strtok_r(p + 7, " \t", &s2); t; t = strtok_r(NULL, " \t", &s2))
                if (!strv_contains(srch, t))
                    strv_add(&srch, t);
        } else if (strncmp(p, "options", 7) == 0 && (p[7] == ' ' || p[7] == '\t')) {
            char *s2 = NULL;
            for (char *t = strtok_r(p + 8, " \t", &s2); t; t = strtok_r(NULL, " \t", &s2))
                strv_add(&opts, t);
        }
    }
    size_t i;
    json_t *a;
    if (json_array_size(dns)) {
        strv_free(ns);
        ns = NULL;
        json_array_foreach(dns, i, a) strv_add(&ns, json_string_value(a));
    }
    if (json_array_size(search)) {
        cleanup_strv char **old = srch;
        srch = NULL;
        json_array_foreach(search, i, a) strv_add(&srch, json_string_value(a));
        for (char **o = old; o && *o; o++)
            if (!strv_contains(srch, *o))
                strv_add(&srch, *o);
    }
    json_t *ud = json_get_array(net, "dns");
    if (json_array_size(ud)) {
        strv_free(ns);
        ns = NULL;
        json_array_foreach(ud, i, a)
        {
            if (strcmp(json_string_value(a), "none") != 0)
                strv_add(&ns, json_string_value(a));
        }
    }
    json_t *us = json_get_array(net, "dns_search");
    if (json_array_size(us)) {
        strv_free(srch);
        srch = NULL;
        json_array_foreach(us, i, a)
        {
            if (strcmp(json_string_value(a), ".") != 0)
                strv_add(&srch, json_string_value(a));
        }
    }
    json_t *uo = json_get_array(net, "dns_option");
    if (json_array_size(uo)) {
        strv_free(opts);
        opts = NULL;
        json_array_foreach(uo, i, a) strv_add(&opts, json_string_value(a));
    }
    struct strbuf b = {0};
    if (srch) {
        strbuf_append(&b, "search");
        for (char **s = srch; *s; s++)
            strbuf_appendf(&b, " %s", *s);
        strbuf_putc(&b, '\n');
    }
    for (char **s = ns; s && *s; s++)
        strbuf_appendf(&b, "nameserver %s\n", *s);
    if (opts) {
        strbuf_append(&b, "options");
        for (char **s = opts; *s; s++)
            strbuf_appendf(&b, " %s", *s);
        strbuf_putc(&b, '\n');
    }
    return strbuf_steal(&b);
}

/* Rewrites in place: the file is bind-mounted into a possibly running container. */
static int write_in_place(const char *path, const char *text, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return berth_error_make(err, errno, "create \"%s\"", path);
    size_t l = strlen(text);
    if (write(fd, text, l) != (ssize_t)l)
        return berth_error_make(err, errno, "write \"%s\"", path);
    return 0;
}

static bool has_mount(const json_t *spec, const char *dst)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m)
    {
        const char *d = json_string_value(json_object_get(m, "destination"));
        if (d && strcmp(d, dst) == 0)
            return true;
    }
    return false;
}

static void add_bind(json_t *spec, const char *dst, const char *src)
{
    json_t *m = json_pack("{s:s,s:s,s:s,s:[s,s]}", "destination", dst, "type", "bind", "source",
                          src, "options", "rbind", "rw");
    json_array_append_new(json_object_get(spec, "mounts"), m);
}

int net_etc_files(json_t *spec, const char *rootfs, const char *rundir, const json_t *net,
                  const char *hostname, const char *name, berth_error_t *err)
{
    cleanup_free char *etc = xasprintf("%s/etc", rootfs);
    struct stat st;
    if (lstat(etc, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    char hostbuf[256] = "";
    const char *hn = hostname;
    if (net_is_host(net)) {
        gethostname(hostbuf, sizeof(hostbuf) - 1);
        hn = hostbuf;
    }
    if (!hn)
        hn = "localhost";
    if (!json_is_true(json_object_get(net, "no_hosts")) && !has_mount(spec, "/etc/hosts")) {
        cleanup_free char *p = xasprintf("%s/hosts", rundir);
        cleanup_free char *t = hosts_text(net, hn, name, NULL, NULL);
        if (write_in_place(p, t, err) < 0)
            return -1;
        add_bind(spec, "/etc/hosts", p);
    }
    if (!has_mount(spec, "/etc/hostname")) {
        cleanup_free char *p = xasprintf("%s/hostname", rundir);
        cleanup_free char *t = xasprintf("%s\n", hn);
        if (write_in_place(p, t, err) < 0)
            return -1;
        add_bind(spec, "/etc/hostname", p);
    }
    if (!has_mount(spec, "/etc/resolv.conf")) {
        cleanup_free char *p = xasprintf("%s/resolv.conf", rundir);
        cleanup_free char *t = resolv_text(net, NULL, NULL);
        if (write_in_place(p, t, err) < 0)
            return -1;
        add_bind(spec, "/etc/resolv.conf", p);
    }
    return 0;
}

int net_etc_update(const char *rundir, const json_t *net, const char *hostname, const char *name,
                   const json_t *addrs, const json_t *dns, const json_t *search,
                   const char *host_gw, berth_error_t *err)
{
    cleanup_free char *hp = xasprintf("%s/hosts", rundir);
    if (!json_is_true(json_object_get(net, "no_hosts")) && access(hp, F_OK) == 0) {
        cleanup_free char *t = hosts_text(net, hostname, name, addrs, host_gw);
        if (write_in_place(hp, t, err) < 0)
            return -1;
    }
    cleanup_free char *rp = xasprintf("%s/resolv.conf", rundir);
    if (access(rp, F_OK) == 0) {
        cleanup_free char *t = resolv_text(net, dns, search);
        if (write_in_place(rp, t, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- attach / detach ---- */

static char *netns_path_for(const char *id)
{
    return xasprintf("/run/netns/berth-%.32s", id);
}

static int bind_netns(pid_t pid, const char *path, berth_error_t *err)
{
    if (strncmp(path, "/run/netns/", 11) == 0 && fs_mkdir_p("/run/netns", 0755, err) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return berth_error_make(err, errno, "create \"%s\"", path);
    close(fd);
    cleanup_free char *src = xasprintf("/proc/%d/ns/net", (int)pid);
    if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
        int e = errno;
        unlink(path);
        return berth_error_make(err, e, "bind-mount the network namespace at \"%s\"", path);
    }
    return 0;
}

/* The addresses, DNS servers and search domains of a netavark status block; gw: the first
 * network's gateway. */
void net_parse_status(const json_t *res, json_t *addrs, json_t *dns, json_t *search, char **gw)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)res, k, v)
    {
        const char *ik;
        json_t *iv;
        json_object_foreach(json_get_object(v, "interfaces"), ik, iv)
        {
            size_t i;
            json_t *s;
            json_array_foreach(json_get_array(iv, "subnets"), i, s)
            {
                const char *ipn = json_get_string(s, "ipnet");
                if (ipn)
                    json_array_append_new(addrs, json_stringn(ipn, strcspn(ipn, "/")));
                const char *g = json_get_string(s, "gateway");
                if (g && !*gw)
                    *gw = xstrdup(g);
            }
        }
        size_t i;
        json_t *x;
        json_array_foreach(json_get_array(v, "dns_server_ips"), i, x) json_array_append(dns, x);
        json_array_foreach(json_get_array(v, "dns_search_domains"), i, x)
        {
            bool dup = false;
            size_t j;
            json_t *y;
            json_array_foreach(search, j, y) dup |= json_equal(x, y);
            if (!dup)
                json_array_append(search, x);
        }
    }
}

int net_attach(pid_t pid, void *arg, berth_error_t *err)
{
    const struct net_attach_ctx *c = arg;
    const char *mode = json_get_string(c->net, "mode");
    if (!mode || strcmp(mode, "none") == 0 || strcmp(mode, "host") == 0 ||
        strcmp(mode, "container") == 0 || strcmp(mode, "ns") == 0)
        return 0;
    cleanup_json json_t *st = json_pack("{s:s,s:s,s:s}", "mode", mode, "run_dir", c->dirs->run_dir,
                                        "config_dir", c->dirs->config_dir);
    cleanup_json json_t *addrs = json_array(), *dns = json_array(), *search = json_array();
    cleanup_free char *gw = NULL;
    /* the namespace is bind-mounted (podman does the same): netavark needs a path that outlives
     * the container for its teardown, and pasta opens a bind-mounted namespace where
     * /proc/PID/ns/net of a process in berth's rootless user namespace is refused to it; pasta
     * also quits by itself once that file is gone.  Rootless, the mount lives in berth's own
     * mount namespace (the monitor's), and goes with it. */
    bool bridge = strcmp(mode, "bridge") == 0;
    cleanup_free char *ns = bridge ? netns_path_for(c->id) : xasprintf("%s/netns", c->rundir);
    json_object_set_new(st, "netns", json_string(ns));
    json_object_set_new(st, "netns_mounted", json_true());
    if (net_state_save(c->rundir, st, err) < 0)
        return -1;
    if (bind_netns(pid, ns, err) < 0)
        return -1;
    if (bridge) {
        cleanup_json json_t *res = NULL;
        if (netavark_attach(c, ns, json_get_array(c->net, "networks"), NULL, st, &res, err) < 0)
            return -1;
        net_parse_status(res, addrs, dns, search, &gw);
        json_object_set(st, "status", res);
        if (net_state_save(c->rundir, st, err) < 0)
            return -1;
    } else if (strcmp(mode, "pasta") == 0) {
        if (pasta_attach(c, ns, json_get_string(c->net, "opts"), st, err) < 0)
            return -1;
        gw = net_host_gateway();
    } else if (strcmp(mode, "slirp4netns") == 0) {
        if (slirp_attach(c, ns, json_get_string(c->net, "opts"), st, err) < 0)
            return -1;
        gw = xstrdup("10.0.2.2");
        json_array_append_new(addrs, json_string("10.0.2.100"));
        json_array_append_new(dns, json_string("10.0.2.3"));
    } else {
        return berth_error_make_status(err, EINVAL, "unknown network mode \"%s\"", mode);
    }
    return net_etc_update(c->rundir, c->net, c->hostname, c->name, addrs, dns, search, gw, err);
}

void net_detach(const char *rundir)
{
    cleanup_json json_t *st = NULL;
    if (net_state_load(rundir, &st) < 0) {
        /* a state file that cannot be read names nothing we could undo */
        cleanup_free char *p = xasprintf("%s/%s", rundir, NET_STATE_FILE);
        unlink(p);
        return;
    }
    helper_kill(st, "pasta");
    helper_kill(st, "slirp4netns");
    struct net_dirs d = {.run_dir = (char *)json_get_string(st, "run_dir"),
                         .config_dir = (char *)json_get_string(st, "config_dir")};
    if (d.run_dir)
        netavark_detach(&d, st);
    const char *ns = json_get_string(st, "netns");
    cleanup_free char *own = xasprintf("%s/netns", rundir);
    if (ns && json_is_true(json_object_get(st, "netns_mounted")) &&
        (strncmp(ns, "/run/netns/berth-", 17) == 0 || strcmp(ns, own) == 0)) {
        umount2(ns, MNT_DETACH);
        unlink(ns);
    }
    cleanup_free char *p = xasprintf("%s/%s", rundir, NET_STATE_FILE);
    unlink(p);
    cleanup_free char *pf = xasprintf("%s/pasta.pid", rundir);
    unlink(pf);
}

/* ---- ports ---- */

char *net_ports_string(const json_t *net)
{
    struct strbuf b = {0};
    size_t i;
    json_t *m;
    json_array_foreach(json_get_array(net, "ports"), i, m)
    {
        int64_t hp = 0, cp = 0, r = 1;
        json_get_int(m, "host_port", &hp);
        json_get_int(m, "container_port", &cp);
        json_get_int(m, "range", &r);
        const char *ip = json_get_string(m, "host_ip");
        const char *pr = json_get_string(m, "protocol");
        if (b.len)
            strbuf_append(&b, ", ");
        strbuf_appendf(&b, "%s:", ip && *ip ? ip : "0.0.0.0");
        if (r > 1)
            strbuf_appendf(&b, "%lld-%lld->%lld-%lld/%s", (long long)hp, (long long)(hp + r - 1),
                           (long long)cp, (long long)(cp + r - 1), pr ? pr : "tcp");
        else
            strbuf_appendf(&b, "%lld->%lld/%s", (long long)hp, (long long)cp, pr ? pr : "tcp");
    }
    return strbuf_steal(&b);
}

char *net_port_lines(const json_t *net, const char *filter)
{
    struct strbuf b = {0};
    size_t i;
    json_t *m;
    json_array_foreach(json_get_array(net, "ports"), i, m)
    {
        int64_t hp = 0, cp = 0, r = 1;
        json_get_int(m, "host_port", &hp);
        json_get_int(m, "container_port", &cp);
        json_get_int(m, "range", &r);
        const char *ip = json_get_string(m, "host_ip");
        const char *pr = json_get_string(m, "protocol");
        for (int64_t k = 0; k < r; k++) {
            char key[32];
            snprintf(key, sizeof(key), "%lld/%s", (long long)(cp + k), pr ? pr : "tcp");
            if (filter) {
                char f2[32];
                snprintf(f2, sizeof(f2), "%s", filter);
                if (!strchr(f2, '/'))
                    strncat(f2, "/tcp", sizeof(f2) - strlen(f2) - 1);
                if (strcmp(f2, key) != 0)
                    continue;
                strbuf_appendf(&b, "%s:%lld\n", ip && *ip ? ip : "0.0.0.0", (long long)(hp + k));
                continue;
            }
            strbuf_appendf(&b, "%s -> %s:%lld\n", key, ip && *ip ? ip : "0.0.0.0",
                           (long long)(hp + k));
        }
    }
    return strbuf_steal(&b);
}
