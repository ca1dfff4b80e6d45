/* berth network create/ls/inspect/rm/prune/exists/connect/disconnect/reload, and berth port.
 * Network definitions are podman's files (run/net), so podman and berth share them. */
#include "cmd/cli.h"
#include "cmd/store_open.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/strutil.h"
#include "run/container.h"
#include "run/net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    O_HELP = 400,
    O_SUBNET,
    O_GATEWAY,
    O_RANGE,
    O_INTERNAL,
    O_NODNS,
    O_IPV6,
    O_LABEL,
    O_ALIAS,
    O_IP,
    O_IFNAME
};

/* Opening the store plainly (no user namespace for read-only commands) keeps podman's
 * rootless paths: the network dir sits under the store root either way. */
static int open_store(struct berth_globals *g, storage_store_t **s, berth_error_t *err)
{
    return cli_store_open(g, s, err);
}

static void dirs_for(storage_store_t *s, struct net_dirs *d)
{
    net_dirs_init(d, storage_store_root(s), storage_store_runroot(s));
}

static const char create_usage[] =
    "Usage: berth network create [OPTIONS] [NAME]\n\n"
    "Create a network (podman's format, shared with podman).\n\n"
    "Options:\n"
    "  -d, --driver bridge|macvlan  network driver (default bridge)\n"
    "      --subnet CIDR            subnet (repeatable; default: a free 10.89.N.0/24)\n"
    "      --gateway IP             gateway of the subnet (default: its first address)\n"
    "      --ip-range RANGE         allocate container addresses from CIDR or START-END\n"
    "      --internal               no route out of the network\n"
    "      --disable-dns            no aardvark-dns name resolution on the network\n"
    "      --ipv6                   add an IPv6 subnet\n"
    "      --label KEY=VALUE        label (repeatable)\n"
    "  -o, --opt KEY=VALUE          driver option (e.g. parent=eth0 for macvlan)\n"
    "      --interface-name NAME    bridge interface name\n";

static int cmd_network_create(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"driver", required_argument, NULL, 'd'},
                                         {"subnet", required_argument, NULL, O_SUBNET},
                                         {"gateway", required_argument, NULL, O_GATEWAY},
                                         {"ip-range", required_argument, NULL, O_RANGE},
                                         {"internal", no_argument, NULL, O_INTERNAL},
                                         {"disable-dns", no_argument, NULL, O_NODNS},
                                         {"ipv6", no_argument, NULL, O_IPV6},
                                         {"label", required_argument, NULL, O_LABEL},
                                         {"opt", required_argument, NULL, 'o'},
                                         {"interface-name", required_argument, NULL, O_IFNAME},
                                         {"help", no_argument, NULL, O_HELP},
                                         {0}};
    struct net_create_opts o = {0};
    cleanup_strv char **sub = NULL, **gw = NULL, **rg = NULL, **lab = NULL, **op = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "d:o:", opts, false)) != -1) {
        switch (c) {
        case 'd':
            o.driver = optarg;
            break;
        case O_SUBNET:
            strv_add(&sub, optarg);
            break;
        case O_GATEWAY:
            strv_add(&gw, optarg);
            break;
        case O_RANGE:
            strv_add(&rg, optarg);
            break;
        case O_INTERNAL:
            o.internal = true;
            break;
        case O_NODNS:
            o.disable_dns = true;
            break;
        case O_IPV6:
            o.ipv6 = true;
            break;
        case O_LABEL:
            strv_add(&lab, optarg);
            break;
        case 'o':
            strv_add(&op, optarg);
            break;
        case O_IFNAME:
            o.interface = optarg;
            break;
        case O_HELP:
            return cli_usage(create_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind > 1)
        return cli_nargs_error(argv[0], "at most one NAME");
    o.name = optind < argc ? argv[optind] : NULL;
    o.subnets = sub;
    o.gateways = gw;
    o.ip_ranges = rg;
    o.labels = lab;
    o.options = op;
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_net_dirs struct net_dirs d = {0};
    dirs_for(s, &d);
    cleanup_json json_t *net = NULL;
    if (net_network_create(&d, &o, &net, &err) < 0)
        return cli_fail(&err);
    printf("%s\n", json_get_string(net, "name"));
    return 0;
}

/* Go-template subset for --format: {{.Name}} {{.ID}} {{.Driver}} {{.NetworkInterface}}... */
static void print_format(const char *fmt, const json_t *n)
{
    static const struct {
        const char *field, *key;
    } map[] = {{".Name", "name"},
               {".ID", "id"},
               {".Id", "id"},
               {".Driver", "driver"},
               {".NetworkInterface", "network_interface"},
               {".Created", "created"}};
    for (const char *p = fmt; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            const char *e = strstr(p, "}}");
            if (e) {
                cleanup_free char *f = xstrndup(p + 2, (size_t)(e - p - 2));
                char *t = f;
                while (*t == ' ')
                    t++;
                size_t l = strlen(t);
                while (l && t[l - 1] == ' ')
                    t[--l] = '\0';
                const char *v = "";
                for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                    if (strcmp(t, map[i].field) == 0)
                        v = json_get_string(n, map[i].key) ?: "";
                if (strcmp(t, ".Internal") == 0)
                    v = json_is_true(json_object_get(n, "internal")) ? "true" : "false";
                if (strcmp(t, ".DNSEnabled") == 0)
                    v = json_is_true(json_object_get(n, "dns_enabled")) ? "true" : "false";
                fputs(v, stdout);
                p = e + 2;
                continue;
            }
        }
        if (p[0] == '\\' && p[1] == 't') {
            putchar('\t');
            p += 2;
            continue;
        }
        putchar(*p++);
    }
    putchar('\n');
}

static const char ls_usage[] = "Usage: berth network ls [-q] [--format FORMAT]\n\nList networks.\n";

static int cmd_network_ls(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"quiet", no_argument, NULL, 'q'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"noheading", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, O_HELP},
                                         {0}};
    bool quiet = false, noheading = false;
    const char *format = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "qf:n", opts, false)) != -1) {
        if (c == 'q')
            quiet = true;
        else if (c == 'f')
            format = optarg;
        else if (c == 'n')
            noheading = true;
        else if (c == O_HELP)
            return cli_usage(ls_usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_net_dirs struct net_dirs d = {0};
    dirs_for(s, &d);
    cleanup_json json_t *all = NULL;
    if (net_network_list(&d, &all, &err) < 0)
        return cli_fail(&err);
    if (format && strcmp(format, "json") == 0) {
        cleanup_free char *t = json_dump_pretty(all);
        printf("%s\n", t);
        return 0;
    }
    if (!quiet && !format && !noheading)
        printf("%-12s  %-20s  %s\n", "NETWORK ID", "NAME", "DRIVER");
    size_t i;
    json_t *n;
    json_array_foreach(all, i, n)
    {
        if (quiet)
            printf("%s\n", json_get_string(n, "name"));
        else if (format)
            print_format(format, n);
        else
            printf("%-12.12s  %-20s  %s\n", json_get_string(n, "id") ?: "",
                   json_get_string(n, "name"), json_get_string(n, "driver") ?: "");
    }
    return 0;
}

static const char inspect_usage[] =
    "Usage: berth network inspect [--format FORMAT] NETWORK...\n\nShow networks as JSON.\n";

static int cmd_network_inspect(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, O_HELP}, {0}};
    const char *format = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "f:", opts, false)) != -1) {
        if (c == 'f')
            format = optarg;
        else if (c == O_HELP)
            return cli_usage(inspect_usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (optind >= argc)
        return cli_nargs_error(argv[0], "at least one NETWORK");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_net_dirs struct net_dirs d = {0};
    dirs_for(s, &d);
    cleanup_json json_t *out = json_array();
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        json_t *n = NULL;
        if (net_network_get(&d, argv[i], &n, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        if (format && strcmp(format, "json") != 0)
            print_format(format, n);
        json_array_append_new(out, n);
    }
    if (!format || strcmp(format, "json") == 0) {
        cleanup_free char *t = json_dump_pretty(out);
        printf("%s\n", t);
    }
    return rc;
}

/* Names of containers whose record lists the network. */
static char **users_of(storage_store_t *s, const char *network)
{
    char **v = NULL;
    storage_container_t **all = NULL;
    berth_error_t e = NULL;
    if (storage_container_list(s, &all, &e) < 0) {
        berth_error_release(&e);
        return NULL;
    }
    for (size_t i = 0; all[i]; i++) {
        json_t *net = NULL;
        if (net_container_record(s, all[i]->id, &net, &e) < 0) {
            berth_error_release(&e);
            continue;
        }
        size_t k;
        json_t *x;
        json_array_foreach(json_get_array(net, "networks"), k, x)
        {
            if (strcmp(json_string_value(x) ?: "", network) == 0)
                strv_add(&v, all[i]->id);
        }
        json_decref(net);
    }
    storage_container_list_free(all);
    return v;
}

static const char rm_usage[] =
    "Usage: berth network rm [-f] NETWORK...\n\nRemove networks (-f: and the containers using "
    "them).\n";

static int cmd_network_rm(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                         {"time", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, O_HELP},
                                         {0}};
    bool force = false;
    int c;
    while ((c = cli_getopt(argc, argv, "ft:", opts, false)) != -1) {
        if (c == 'f')
            force = true;
        else if (c == 't')
            ;
        else if (c == O_HELP)
            return cli_usage(rm_usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (optind >= argc)
        return cli_nargs_error(argv[0], "at least one NETWORK");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_net_dirs struct net_dirs d = {0};
    dirs_for(s, &d);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        cleanup_json json_t *n = NULL;
        if (net_network_get(&d, argv[i], &n, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        const char *name = json_get_string(n, "name");
        cleanup_strv char **users = users_of(s, name);
        if (users && !force) {
            rc = cli_failf("network %s is used by %zu container(s): use -f to remove them", name,
                           strv_len(users));
            continue;
        }
        for (char **u = users; u && *u; u++)
            if (container_remove(s, *u, true, &err) < 0)
                berth_error_release(&err);
        if (net_network_remove(&d, name, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        printf("%s\n", name);
    }
    return rc;
}

static int cmd_network_prune(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, O_HELP}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "f", opts, false)) != -1) {
        if (c == O_HELP)
            return cli_usage("Usage: berth network prune [-f]\n\nRemove networks no container "
                             "uses (the default network stays).\n");
        if (c != 'f')
            return cli_bad_option(argv[0], argc, argv);
    }
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_net_dirs struct net_dirs d = {0};
    dirs_for(s, &d);
    cleanup_json json_t *all = NULL;
    if (net_network_list(&d, &all, &err) < 0)
        return cli_fail(&err);
    size_t i;
    json_t *n;
    json_array_foreach(all, i, n)
    {
        const char *name = json_get_string(n, "name");
        if (strcmp(name, NET_DEFAULT_NAME) == 0)
            continue;
        cleanup_strv char **users = users_of(s, name);
        if (users)
            continue;
        if (net_network_remove(&d, name, &err) < 0)
            return cli_fail(&err);
        printf("%s\n", name);
    }
    return 0;
}

static int cmd_network_exists(struct berth_globals *g, int argc, char **argv)
{
    if (argc != 2)
        return cli_nargs_error(argv[0], "one NETWORK");
    if (strcmp(argv[1], "--help") == 0)
        return cli_usage("Usage: berth network exists NETWORK\n\nExit 0 if the network exists, "
                         "1 if not.\n");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_net_dirs struct net_dirs d = {0};
    dirs_for(s, &d);
    cleanup_json json_t *n = NULL;
    if (net_network_get(&d, argv[1], &n, &err) < 0) {
        if (berth_error_status(err) == ENOENT)
            return 1;
        return cli_fail(&err);
    }
    return 0;
}

static const char connect_usage[] =
    "Usage: berth network connect [--alias NAME] [--ip IP] NETWORK CONTAINER\n\n"
    "Connect a container to a network (a running one at once).\n";

static int cmd_network_connect(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"alias", required_argument, NULL, O_ALIAS},
                                         {"ip", required_argument, NULL, O_IP},
                                         {"help", no_argument, NULL, O_HELP},
                                         {0}};
    cleanup_strv char **aliases = NULL;
    const char *ip = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "", opts, false)) != -1) {
        if (c == O_ALIAS)
            strv_add(&aliases, optarg);
        else if (c == O_IP)
            ip = optarg;
        else if (c == O_HELP)
            return cli_usage(connect_usage);
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (argc - optind != 2)
        return cli_nargs_error(argv[0], "a NETWORK and a CONTAINER");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    if (net_container_connect(s, argv[optind + 1], argv[optind], aliases, ip, &err) < 0)
        return cli_fail(&err);
    return 0;
}

static int cmd_network_disconnect(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, O_HELP}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "f", opts, false)) != -1) {
        if (c == O_HELP)
            return cli_usage("Usage: berth network disconnect NETWORK CONTAINER\n\n"
                             "Disconnect a container from a network.\n");
        if (c != 'f')
            return cli_bad_option(argv[0], argc, argv);
    }
    if (argc - optind != 2)
        return cli_nargs_error(argv[0], "a NETWORK and a CONTAINER");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    if (net_container_disconnect(s, argv[optind + 1], argv[optind], &err) < 0)
        return cli_fail(&err);
    return 0;
}

static int cmd_network_reload(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'}, {"help", no_argument, NULL, O_HELP}, {0}};
    bool all = false;
    int c;
    while ((c = cli_getopt(argc, argv, "a", opts, false)) != -1) {
        if (c == 'a')
            all = true;
        else if (c == O_HELP)
            return cli_usage("Usage: berth network reload [--all | CONTAINER...]\n\n"
                             "Set up running containers' firewall rules again.\n");
        else
            return cli_bad_option(argv[0], argc, argv);
    }
    if (!all && optind >= argc)
        return cli_nargs_error(argv[0], "CONTAINER... or --all");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (open_store(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_strv char **ids = NULL;
    if (all) {
        storage_container_t **list = NULL;
        if (storage_container_list(s, &list, &err) < 0)
            return cli_fail(&err);
        for (size_t i = 0; list[i]; i++)
            strv_add(&ids, list[i]->id);
        storage_container_list_free(list);
    } else {
        for (int i = optind; i < argc; i++)
            strv_add(&ids, argv[i]);
    }
    int rc = 0;
    for (char **id = ids; id && *id; id++) {
        if (net_container_reload(s, *id, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        struct container_info ci;
        if (container_inspect(s, *id, &ci, &err) == 0) {
            if (strcmp(ci.status, "running") == 0 || !all)
                printf("%s\n", ci.id);
            container_info_clear(&ci);
        } else {
            berth_error_release(&err);
        }
    }
    return rc;
}

static const char port_usage[] =
    "Usage: berth port CONTAINER [PRIVATE_PORT[/PROTO]]\n\nList a container's published "
    "ports.\n";

static int cmd_port(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, O_HELP}, {0}};
    int c;
    while ((c = cli_getopt(argc, argv, "", opts, false)) != -1) {
        if (c == O_HELP)
            return cli_usage(port_usage);
        return cli_bad_option(argv[0], argc, argv);
    }
    if (argc - optind < 1 || argc - optind > 2)
        return cli_nargs_error(argv[0], "a CONTAINER and optionally a PORT");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    struct storage_options so = {
        .root = g->root, .runroot = g->runroot, .driver = g->storage_driver};
    if (storage_store_open(&so, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_json json_t *net = NULL;
    if (net_container_record(s, argv[optind], &net, &err) < 0)
        return cli_fail(&err);
    cleanup_free char *lines = net_port_lines(net, optind + 1 < argc ? argv[optind + 1] : NULL);
    if (optind + 1 < argc && !*lines)
        return cli_failf("no public port '%s' published for %s", argv[optind + 1], argv[optind]);
    fputs(lines, stdout);
    return 0;
}

BERTH_COMMAND(network_create, "network create", "Create a network", cmd_network_create);
BERTH_COMMAND(network_ls, "network ls", "List networks", cmd_network_ls);
BERTH_COMMAND(network_list, "network list", "List networks", cmd_network_ls);
BERTH_COMMAND(network_inspect, "network inspect", "Show networks", cmd_network_inspect);
BERTH_COMMAND(network_rm, "network rm", "Remove networks", cmd_network_rm);
BERTH_COMMAND(network_prune, "network prune", "Remove unused networks", cmd_network_prune);
BERTH_COMMAND(network_exists, "network exists", "Check whether a network exists",
              cmd_network_exists);
BERTH_COMMAND(network_connect, "network connect", "Connect a container to a network",
              cmd_network_connect);
BERTH_COMMAND(network_disconnect, "network disconnect", "Disconnect a container from a network",
              cmd_network_disconnect);
BERTH_COMMAND(network_reload, "network reload", "Set up containers' networks again",
              cmd_network_reload);
BERTH_COMMAND(port, "port", "List a container's published ports", cmd_port);
