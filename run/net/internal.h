/* Private interfaces between run/net's files. */
#ifndef BERTH_RUN_NET_INTERNAL_H
#define BERTH_RUN_NET_INTERNAL_H

#include "run/net/net.h"

#include <stdint.h>

#define NETAVARK_BIN   "/usr/lib/podman/netavark"
#define AARDVARK_BIN   "/usr/lib/podman/aardvark-dns"
#define MAX_HELPER_OUT (1u << 20)
#define NET_STATE_FILE "net.state"

struct net_cidr {
    unsigned char addr[16];
    int prefix;
    bool v6;
};
int net_parse_cidr(const char *s, struct net_cidr *out);
bool net_cidr_contains(const struct net_cidr *c, const unsigned char *addr, bool v6);
void net_addr_add(unsigned char *addr, bool v6, uint32_t n);
char *net_addr_str(const unsigned char *addr, bool v6); /* owned */
bool net_valid_name(const char *n);
int net_strcmp_p(const void *a, const void *b);

/* True for a non-root user (or berth inside its rootless user namespace). */
bool net_rootless(void);

/* <rundir>/net.state */
int net_state_load(const char *rundir, json_t **out);
BERTH_MUST_CHECK int net_state_save(const char *rundir, const json_t *st, berth_error_t *err);

/* Runs argv with stdin_data on stdin; stdout collected into *out (owned, may be NULL);
 * stderr's last part becomes the error message on failure. */
BERTH_MUST_CHECK int net_run_helper(char *const argv[], const char *stdin_data, char **out,
                                    berth_error_t *err);

/* netavark (rootful bridges): sets up the bridge networks of the record in netns_path;
 * *result gets netavark's status block.  st is the state being built (netns, options,
 * leases are recorded in it and saved before netavark runs). */
BERTH_MUST_CHECK int netavark_attach(const struct net_attach_ctx *c, const char *netns_path,
                                     const json_t *names, const char *extra, json_t *st,
                                     json_t **result, berth_error_t *err);
/* extra: NULL = the start's networks (st.netavark), else a connected network (st.extra[NAME]). */
BERTH_MUST_CHECK int netavark_teardown(const struct net_dirs *d, const char *netns,
                                       const char *options, berth_error_t *err);
BERTH_MUST_CHECK int netavark_setup(const struct net_dirs *d, const char *netns,
                                    const char *options, berth_error_t *err);
/* Addresses, DNS servers, search domains and the first gateway of netavark status blocks. */
void net_parse_status(const json_t *res, json_t *addrs, json_t *dns, json_t *search, char **gw);
/* Tears down what st describes (best effort). */
void netavark_detach(const struct net_dirs *d, json_t *st);
/* Address allocation: a lease file per address under run_dir/berth-ipam/NETWORK. */
BERTH_MUST_CHECK int ipam_allocate(const struct net_dirs *d, const json_t *network, const char *id,
                                   const char *want, json_t *leases, json_t **ips,
                                   berth_error_t *err);
void ipam_release(const struct net_dirs *d, const json_t *leases);

/* pasta / slirp4netns on the bind-mounted namespace netns, children of the calling process
 * (die with it). */
BERTH_MUST_CHECK int pasta_attach(const struct net_attach_ctx *c, const char *netns,
                                  const char *opts, json_t *st, berth_error_t *err);
BERTH_MUST_CHECK int slirp_attach(const struct net_attach_ctx *c, const char *netns,
                                  const char *opts, json_t *st, berth_error_t *err);
/* Kills a helper recorded as {pid, start} in st[key]. */
void helper_kill(const json_t *st, const char *key);

/* The host's IPv4 default gateway (what pasta maps to the host's loopback), owned or NULL. */
char *net_host_gateway(void);

/* Rewrites <rundir>/hosts and resolv.conf with what attach learned (status: per network
 * results {ips:[...], dns:[...], search:[...]}; host_gw: host.containers.internal). */
BERTH_MUST_CHECK int net_etc_update(const char *rundir, const json_t *net, const char *hostname,
                                    const char *name, const json_t *addrs, const json_t *dns,
                                    const json_t *search, const char *host_gw, berth_error_t *err);

#endif
