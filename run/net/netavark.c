/* Rootful bridge networks through netavark (and aardvark-dns, which netavark starts), fed the
 * same JSON network options podman passes: netavark does no address management, so berth
 * leases addresses itself (one O_EXCL file per address).  berth hands out addresses from the top
 * of a range downwards while podman starts at the bottom, so containers of both tools can share
 * a network without colliding in practice. */
#include "run/net/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int net_run_helper(char *const argv[], const char *stdin_data, char **out, berth_error_t *err)
{
    int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
        int er = errno;
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0)
                close(in[i]);
            if (o[i] >= 0)
                close(o[i]);
        }
        return berth_error_make(err, er, "pipe");
    }
    pid_t p = fork();
    if (p < 0) {
        int er = errno;
        close(in[0]), close(in[1]), close(o[0]), close(o[1]), close(e[0]), close(e[1]);
        return berth_error_make(err, er, "fork");
    }
    if (p == 0) {
        /* killed with berth: a setup that went on alone could finish after the teardown that
         * the next command does for the killed run */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    close(e[1]);
    signal(SIGPIPE, SIG_IGN);
    size_t inlen = stdin_data ? strlen(stdin_data) : 0, inoff = 0;
    if (!inlen) {
        close(in[1]);
        in[1] = -1;
    }
    struct strbuf ob = {0}, eb = {0};
    bool o_open = true, e_open = true;
    while (o_open || e_open || in[1] >= 0) {
        struct pollfd pf[3] = {{.fd = o_open ? o[0] : -1, .events = POLLIN},
                               {.fd = e_open ? e[0] : -1, .events = POLLIN},
                               {.fd = in[1], .events = POLLOUT}};
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        char buf[8192];
        if (pf[0].revents) {
            ssize_t r = read(o[0], buf, sizeof(buf));
            if (r <= 0)
                o_open = false;
            else if (ob.len < MAX_HELPER_OUT)
                strbuf_append_len(&ob, buf, (size_t)r);
        }
        if (pf[1].revents) {
            ssize_t r = read(e[0], buf, sizeof(buf));
            if (r <= 0)
                e_open = false;
            else if (eb.len < 65536)
                strbuf_append_len(&eb, buf, (size_t)r);
        }
        if (in[1] >= 0 && pf[2].revents) {
            ssize_t w = write(in[1], stdin_data + inoff, inlen - inoff);
            if (w > 0)
                inoff += (size_t)w;
            if (w < 0 || inoff == inlen) {
                close(in[1]);
                in[1] = -1;
            }
        }
    }
    if (in[1] >= 0)
        close(in[1]);
    close(o[0]);
    close(e[0]);
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    cleanup_free char *emsg = strbuf_steal(&eb);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        strbuf_release(&ob);
        char *m = emsg ? emsg : (char *)"";
        size_t l = strlen(m);
        while (l && (m[l - 1] == '\n' || m[l - 1] == ' '))
            m[--l] = '\0';
        return berth_error_make_status(
            err, EIO, "%s failed (%s %d): %s", argv[0], WIFEXITED(st) ? "status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), *m ? m : "no message");
    }
    if (out)
        *out = strbuf_steal(&ob);
    else
        strbuf_release(&ob);
    return 0;
}

/* ---- address leases ---- */

static char *lease_dir(const struct net_dirs *d, const char *network)
{
    return xasprintf("%s/berth-ipam/%s", d->run_dir, network);
}

/* A lease whose owner container no longer has state is stale: its file says
 * "<id> <rundir-state-path>". */
static bool lease_stale(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *sp = strchr(buf, ' ');
    if (!sp)
        return false;
    char *nl = strchr(sp + 1, '\n');
    if (nl)
        *nl = '\0';
    return access(sp + 1, F_OK) != 0;
}

static int take_lease(const char *dir, const char *ip, const char *owner)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, ip);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (write(fd, owner, strlen(owner)) < 0) {
                close(fd);
                unlink(p);
                return -1;
            }
            close(fd);
            return 0;
        }
        if (errno != EEXIST || !lease_stale(p))
            return -1;
        unlink(p);
    }
    return -1;
}

int ipam_allocate(const struct net_dirs *d, const json_t *network, const char *owner,
                  const char *want, json_t *leases, json_t **ips, berth_error_t *err)
{
    const char *name = json_get_string(network, "name");
    cleanup_free char *dir = lease_dir(d, name);
    if (fs_mkdir_p(dir, 0755, err) < 0)
        return -1;
    json_t *out = json_array();
    size_t i;
    json_t *s;
    bool want_used = false;
    json_array_foreach(json_get_array(network, "subnets"), i, s)
    {
        struct net_cidr c;
        const char *sub = json_get_string(s, "subnet");
        if (!sub || net_parse_cidr(sub, &c) < 0)
            continue;
        unsigned char gw[16] = {0};
        const char *g = json_get_string(s, "gateway");
        if (g)
            inet_pton(c.v6 ? AF_INET6 : AF_INET, g, gw);
        cleanup_free char *got = NULL;
        unsigned char w[16];
        if (want && !want_used && inet_pton(c.v6 ? AF_INET6 : AF_INET, want, w) == 1 &&
            net_cidr_contains(&c, w, c.v6)) {
            want_used = true;
            if (take_lease(dir, want, owner) < 0) {
                json_decref(out);
                return berth_error_make_status(err, EADDRINUSE,
                                               "IP address %s is already allocated on network %s",
                                               want, name);
            }
            got = xstrdup(want);
        } else {
            /* from the top of the range (or subnet) down */
            int hostbits = (c.v6 ? 128 : 32) - c.prefix;
            uint32_t size = hostbits >= 32 ? 0xffffffffu : (1u << hostbits);
            unsigned char lo[16], hi[16];
            memcpy(lo, c.addr, 16);
            net_addr_add(lo, c.v6, 1);
            memcpy(hi, c.addr, 16);
            net_addr_add(hi, c.v6, c.v6 ? (size > 65536 ? 65535 : size - 1) : size - 2);
            json_t *lr = json_get_object(s, "lease_range");
            const char *rs = json_get_string(lr, "start_ip"), *re = json_get_string(lr, "end_ip");
            if (rs)
                inet_pton(c.v6 ? AF_INET6 : AF_INET, rs, lo);
            if (re)
                inet_pton(c.v6 ? AF_INET6 : AF_INET, re, hi);
            unsigned char cur[16];
            memcpy(cur, hi, 16);
            for (uint32_t n = 0; n < 65536; n++) {
                if (memcmp(cur, lo, c.v6 ? 16 : 4) < 0)
                    break;
                if (memcmp(cur, gw, c.v6 ? 16 : 4) != 0) {
                    cleanup_free char *a = net_addr_str(cur, c.v6);
                    if (take_lease(dir, a, owner) == 0) {
                        got = steal_pointer(&a);
                        break;
                    }
                }
                /* cur -= 1 */
                for (int k = (c.v6 ? 15 : 3); k >= 0; k--)
                    if (cur[k]-- != 0)
                        break;
            }
            if (!got) {
                json_decref(out);
                return berth_error_make_status(err, ENOSPC, "no free IP address on network %s",
                                               name);
            }
        }
        json_array_append_new(leases, json_pack("{s:s,s:s}", "network", name, "ip", got));
        json_array_append_new(out, json_string(got));
    }
    if (want && !want_used) {
        json_decref(out);
        return berth_error_make_status(err, EINVAL, "IP address %s is not in network %s", want,
                                       name);
    }
    *ips = out;
    return 0;
}

void ipam_release(const struct net_dirs *d, const json_t *leases)
{
    size_t i;
    json_t *l;
    json_array_foreach(leases, i, l)
    {
        const char *n = json_get_string(l, "network"), *ip = json_get_string(l, "ip");
        if (!n || !ip || !net_valid_name(n) || strchr(ip, '/'))
            continue;
        cleanup_free char *p = xasprintf("%s/berth-ipam/%s/%s", d->run_dir, n, ip);
        unlink(p);
    }
}

/* ---- netavark ---- */

/* netavark calls are serialised: concurrent setups race on the bridge and the firewall chains.
 * Two whole-file fcntl locks: one in netavark's state dir (shared by every berth and podman
 * using it, whatever their definitions dir) and podman's own, <config dir>/netavark.lock. */
static int lock_file(const char *dir, const char *name)
{
    if (!dir || fs_mkdir_p(dir, 0755, NULL) < 0)
        return -1;
    cleanup_free char *p = xasprintf("%s/%s", dir, name);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int run_netavark(const struct net_dirs *d, const char *cmd, const char *netns,
                        const char *options, char **out, berth_error_t *err)
{
    char *argv[] = {NETAVARK_BIN,        "--config",   d->run_dir,  "--rootless",  "false",
                    "--aardvark-binary", AARDVARK_BIN, (char *)cmd, (char *)netns, NULL};
    cleanup_close int lock1 = lock_file(d->run_dir, "berth-netavark.lock");
    cleanup_close int lock2 = lock_file(d->config_dir, "netavark.lock");
    return net_run_helper(argv, options, out, err);
}

int netavark_attach(const struct net_attach_ctx *c, const char *netns_path, const json_t *names,
                    const char *extra, json_t *st, json_t **result, berth_error_t *err)
{
    const json_t *net = c->net;
    json_t *networks = json_object(), *info = json_object();
    cleanup_json json_t *opts = json_pack("{s:s,s:s,s:o,s:o}", "container_id", c->id,
                                          "container_name", c->name && *c->name ? c->name : c->id,
                                          "networks", networks, "network_info", info);
    json_t *ports = json_get_array(net, "ports");
    if (json_array_size(ports))
        json_object_set(opts, "port_mappings", ports);
    json_t *leases = json_object_get(st, "leases");
    if (!leases) {
        leases = json_array();
        json_object_set_new(st, "leases", leases);
    }
    cleanup_free char *owner = xasprintf("%s %s/%s\n", c->id, c->rundir, NET_STATE_FILE);
    size_t i;
    json_t *nm;
    json_array_foreach(names, i, nm)
    {
        const char *name = json_string_value(nm);
        cleanup_json json_t *def = NULL;
        if (net_network_get(c->dirs, name, &def, err) < 0)
            return -1;
        const char *drv = json_get_string(def, "driver");
        if (drv && strcmp(drv, "bridge") != 0 && strcmp(drv, "macvlan") != 0)
            return berth_error_make_status(err, ENOTSUP, "network %s: driver %s is not supported",
                                           name, drv);
        json_t *per = json_object();
        json_t *ips = NULL;
        const char *want = i == 0 ? json_get_string(net, "ip") : NULL;
        json_t *wants = json_get_object(net, "static_ips");
        if (json_get_string(wants, name))
            want = json_get_string(wants, name);
        if (ipam_allocate(c->dirs, def, owner, want, leases, &ips, err) < 0) {
            json_decref(per);
            return -1;
        }
        json_object_set_new(per, "static_ips", ips);
        json_t *aliases = json_get_object(net, "net_aliases");
        json_t *al = json_get_array(aliases, name);
        if (!al)
            al = json_get_array(net, "aliases");
        json_object_set_new(per, "aliases", al ? json_deep_copy(al) : json_array());
        json_t *ifaces = json_get_object(net, "interfaces");
        const char *ifn = json_get_string(ifaces, name);
        cleanup_free char *ifdef = xasprintf("eth%zu", i);
        json_object_set_new(per, "interface_name", json_string(ifn ? ifn : ifdef));
        const char *mac = json_get_string(net, "mac");
        if (mac && i == 0)
            json_object_set_new(per, "static_mac", json_string(mac));
        json_object_set_new(networks, name, per);
        json_object_set(info, name, def);
    }
    cleanup_free char *txt = json_dumps(opts, JSON_COMPACT);
    if (extra) {
        json_t *ex = json_object_get(st, "extra");
        if (!ex) {
            ex = json_object();
            json_object_set_new(st, "extra", ex);
        }
        json_object_set_new(ex, extra, json_string(txt));
    } else {
        json_object_set_new(st, "netavark", json_string(txt));
    }
    /* netns_path may be st's own string: copy before replacing it */
    cleanup_free char *ns = xstrdup(netns_path);
    json_object_set_new(st, "netns", json_string(ns));
    if (net_state_save(c->rundir, st, err) < 0)
        return -1;
    cleanup_free char *out = NULL;
    if (run_netavark(c->dirs, "setup", ns, txt, &out, err) < 0)
        return -1;
    json_t *res = NULL;
    if (json_parse_bounded(out, strlen(out), MAX_HELPER_OUT, "netavark setup output", &res, err) <
        0)
        return -1;
    *result = res;
    return 0;
}

int netavark_setup(const struct net_dirs *d, const char *netns, const char *options,
                   berth_error_t *err)
{
    return run_netavark(d, "setup", netns, options, NULL, err);
}

int netavark_teardown(const struct net_dirs *d, const char *netns, const char *options,
                      berth_error_t *err)
{
    return run_netavark(d, "teardown", netns, options, NULL, err);
}

void netavark_detach(const struct net_dirs *d, json_t *st)
{
    const char *netns = json_get_string(st, "netns");
    const char *opts = json_get_string(st, "netavark");
    berth_error_t e = NULL;
    if (netns && opts && netavark_teardown(d, netns, opts, &e) < 0) {
        log_debug("netavark teardown: %s", berth_error_msg(e));
        berth_error_release(&e);
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_get_object(st, "extra"), k, v)
    {
        if (netns && json_string_value(v) &&
            netavark_teardown(d, netns, json_string_value(v), &e) < 0) {
            log_debug("netavark teardown (%s): %s", k, berth_error_msg(e));
            berth_error_release(&e);
        }
    }
    ipam_release(d, json_object_get(st, "leases"));
}
