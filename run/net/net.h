/* Container networking: podman's parts, driven by berth.
 *
 * Modes (--network): "none" (a private namespace with only lo), "host", "bridge" / NAME[,NAME]
 * (rootful: netavark + aardvark-dns on podman-format network definitions), "pasta[:OPTS]" and
 * "slirp4netns[:OPTS]" (rootless user-mode networking), "container:ID" and "ns:PATH" (join an
 * existing network namespace).  The default is "bridge" for root and "pasta" otherwise.
 *
 * Life cycle of a container's network:
 *  - net_config_create() (at create) validates the flags and returns the container's "net"
 *    record (JSON, stored in the container metadata);
 *  - net_attach() (at start, from the runtime's on_init hook: the container init exists, its
 *    network namespace too, and it waits before setting up its rootfs) connects that namespace:
 *    netavark setup on a bind-mounted netns file, or a pasta/slirp4netns child of the calling
 *    process (killed with it: PR_SET_PDEATHSIG).  What was set up is written to
 *    <rundir>/net.state *before* it is set up, so an interrupted setup is undone later;
 *  - net_detach() (at exit, rm -f, next start, system check --repair) undoes whatever
 *    net.state names.  It is idempotent and never fails hard.
 *
 * /etc/hosts and /etc/resolv.conf are generated per container in the run dir and bind-mounted;
 * net_attach() rewrites them with the addresses it got.  Nothing here prints to stdout. */
#ifndef BERTH_RUN_NET_H
#define BERTH_RUN_NET_H

#include "common/error.h"
#include "storage/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* Where networks live.  config_dir: definitions (podman's format, one NAME.json each);
 * run_dir: netavark's --config (aardvark-dns state) and berth's address leases. */
struct net_dirs {
    char *config_dir, *run_dir;
    bool rootless;
};
/* Defaults: $BERTH_NETWORK_CONFIG_DIR, else /etc/containers/networks for root (as podman) or
 * <store root>/networks rootless (as podman); run_dir /run/containers/networks for root (shared
 * with podman so both use one aardvark-dns), <runroot>/networks rootless. */
void net_dirs_init(struct net_dirs *d, const char *store_root, const char *store_runroot);
void net_dirs_clear(struct net_dirs *d); /* idempotent */
#define cleanup_net_dirs __attribute__((cleanup(net_dirs_clear)))

/* ---- network definitions (podman's JSON) ---- */

#define NET_DEFAULT_NAME "podman"

struct net_create_opts {
    const char *name;      /* NULL = next free "podmanN" */
    const char *driver;    /* "bridge" (default) or "macvlan" */
    char **subnets;        /* CIDRs; NULL = next free 10.89.N.0/24 */
    char **gateways;       /* per subnet, optional */
    char **ip_ranges;      /* per subnet, optional: CIDR or START-END */
    char **labels;         /* KEY=VALUE */
    char **options;        /* KEY=VALUE (driver options, e.g. parent=eth0 for macvlan) */
    const char *interface; /* bridge name, NULL = next free podmanN */
    bool internal, disable_dns, ipv6;
};

/* Loads a network by name (or full/short id).  The default network exists even without a
 * file.  ENOENT when unknown. */
BERTH_MUST_CHECK int net_network_get(const struct net_dirs *d, const char *name, json_t **out,
                                     berth_error_t *err);
/* All networks, default first, then by name (a JSON array, owned). */
BERTH_MUST_CHECK int net_network_list(const struct net_dirs *d, json_t **out, berth_error_t *err);
BERTH_MUST_CHECK int net_network_create(const struct net_dirs *d, const struct net_create_opts *o,
                                        json_t **out, berth_error_t *err);
/* Removes a definition; EBUSY for the default network. */
BERTH_MUST_CHECK int net_network_remove(const struct net_dirs *d, const char *name,
                                        berth_error_t *err);

/* ---- per container ---- */

struct net_options {
    const char *mode; /* --network, NULL = default */
    char **aliases;   /* --network-alias */
    char **publish;   /* -p specs */
    bool publish_all; /* -P: the image's ExposedPorts on random host ports */
    const char *ip, *mac;
    char **dns, **dns_search, **dns_option, **add_host;
    bool no_hosts;
};

/* Validates the options and builds the container's "net" record (owned).  image_config: the
 * image's "config" object (ExposedPorts for -P), may be NULL.  Host ports left open in -p are
 * chosen here. */
BERTH_MUST_CHECK int net_config_create(const struct net_dirs *d, const struct net_options *o,
                                       const json_t *image_config, json_t **out,
                                       berth_error_t *err);

/* The network namespace to join for container:/ns: modes (owned), NULL otherwise.  For
 * container:, lookup returns the other container's init pid (or -1 if it is not running). */
typedef pid_t (*net_pid_lookup_fn)(const char *name, void *arg);
BERTH_MUST_CHECK int net_join_path(const json_t *net, net_pid_lookup_fn lookup, void *arg,
                                   char **out, berth_error_t *err);

/* True when the container shares the host's network (spec without a network namespace). */
bool net_is_host(const json_t *net);

/* Writes <rundir>/hosts and <rundir>/resolv.conf for the record (initial content, without the
 * container's own addresses) and adds their bind mounts to spec (unless the user mounted
 * them).  hostname/name: the container's. */
BERTH_MUST_CHECK int net_etc_files(json_t *spec, const char *rootfs, const char *rundir,
                                   const json_t *net, const char *hostname, const char *name,
                                   berth_error_t *err);

struct net_attach_ctx {
    const struct net_dirs *dirs;
    const char *rundir;
    const char *id, *name, *hostname;
    const json_t *net;
};
/* Connects the network namespace of pid (the container init).  Matches the runtime's on_init
 * hook signature with arg = struct net_attach_ctx. */
BERTH_MUST_CHECK int net_attach(pid_t pid, void *arg, berth_error_t *err);
/* Undoes net_attach (see above); everything it needs is in <rundir>/net.state. */
void net_detach(const char *rundir);
/* True when rundir holds network state (a container whose network was not torn down). */
bool net_has_state(const char *rundir);

/* Published ports of a record as podman prints them in ps ("0.0.0.0:8080->80/tcp, ..."),
 * owned; "" when none. */
char *net_ports_string(const json_t *net);
/* One line per port mapping as `port` prints it ("80/tcp -> 0.0.0.0:8080"), owned. */
char *net_port_lines(const json_t *net, const char *filter);

/* network connect/disconnect: net (the container's record) is updated in place, the caller
 * saves it.  A running container (rundir has network state) gets the change at once, in its own
 * netavark call, and its /etc/hosts follows; a stopped one on its next start.  c->net is
 * ignored (net is used). */
BERTH_MUST_CHECK int net_connect(const struct net_attach_ctx *c, json_t *net, const char *network,
                                 char **aliases, const char *ip, berth_error_t *err);
BERTH_MUST_CHECK int net_disconnect(const struct net_attach_ctx *c, json_t *net,
                                    const char *network, berth_error_t *err);
/* network reload: sets a running container's bridge networks up again (firewall rules that
 * were flushed come back). */
BERTH_MUST_CHECK int net_reload(const char *rundir, berth_error_t *err);

/* The same by container name or id, on the store's record (saved). */
BERTH_MUST_CHECK int net_container_connect(storage_store_t *s, const char *ctr, const char *network,
                                           char **aliases, const char *ip, berth_error_t *err);
BERTH_MUST_CHECK int net_container_disconnect(storage_store_t *s, const char *ctr,
                                              const char *network, berth_error_t *err);
BERTH_MUST_CHECK int net_container_reload(storage_store_t *s, const char *ctr, berth_error_t *err);
/* The container's "net" record (owned; an empty object for records from before networking). */
BERTH_MUST_CHECK int net_container_record(storage_store_t *s, const char *ctr, json_t **net,
                                          berth_error_t *err);

/* system check: containers that are not running but still hold network state (their run
 * crashed) are reported in *problems; with repair, their network is torn down. */
void net_check(storage_store_t *s, bool repair, char ***problems, size_t *n_problems,
               size_t *n_repaired);

/* Parses one -p spec and appends podman-style port mappings to arr. */
BERTH_MUST_CHECK int net_parse_publish(const char *spec, json_t *arr, berth_error_t *err);

#endif
