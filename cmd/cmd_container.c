/* Container commands: berth run, create, start, stop, kill, rm, ps, logs, exec, wait. */
#include "cmd/cli.h"
#include "cmd/store_open.h"
#include "build/builder.h"

#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/imagespec.h"
#include "common/log.h"
#include "common/json.h"
#include "common/template.h"
#include "run/container.h"
#include "run/isolation.h"
#include "run/runtime.h"
#include "run/spec.h"
#include "storage/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char run_usage[] =
    "Usage: berth run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
    "       berth create [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
    "\n"
    "Run a command in a new container (create only prepares it).\n"
    "\n"
    "Options:\n"
    "  -d, --detach               run in the background and print the container id\n"
    "  -i, --interactive          keep stdin attached\n"
    "  -t, --tty                  allocate a pseudo-terminal\n"
    "      --rm                   remove the container when it exits\n"
    "      --name NAME            name of the container\n"
    "  -e, --env KEY[=VALUE]      set an environment variable\n"
    "      --env-file FILE        read environment variables from FILE\n"
    "  -v, --volume HOST:CTR[:ro] bind mount a host path\n"
    "      --tmpfs CTR[:OPTS]     mount a tmpfs\n"
    "  -w, --workdir DIR          working directory inside the container\n"
    "  -u, --user USER[:GROUP]    user (name or id) to run as\n"
    "      --entrypoint CMD       override the image's entrypoint\n"
    "  -h, --hostname NAME        container host name\n"
    "      --read-only            mount the root filesystem read-only\n"
    "      --cap-add CAP          add a capability (or ALL)\n"
    "      --cap-drop CAP         drop a capability (or ALL)\n"
    "      --network MODE         bridge, NAME[,NAME...], none, host, pasta[:OPTS],\n"
    "                             slirp4netns[:OPTS], container:ID, ns:PATH (default: bridge\n"
    "                             as root, pasta rootless)\n"
    "  -p, --publish [IP:][HOSTPORT:]CTRPORT[/tcp|udp|sctp]  publish ports (ranges: 80-82)\n"
    "  -P, --publish-all          publish the image's exposed ports on free host ports\n"
    "      --network-alias NAME   extra DNS name on the container's networks\n"
    "      --ip ADDR              static IP address on the (first) network\n"
    "      --mac-address MAC      static MAC address\n"
    "      --dns ADDR             DNS server for /etc/resolv.conf\n"
    "      --dns-search DOMAIN    DNS search domain\n"
    "      --dns-option OPT       resolv.conf option\n"
    "      --add-host HOST:IP     add a line to /etc/hosts\n"
    "      --no-hosts             do not generate /etc/hosts\n"
    "      --pull missing|always|never  pull policy (default missing)\n"
    "      --init                 run an init (catatonit/tini) as PID 1\n"
    "      --runtime PATH         use an external OCI runtime (e.g. runc)\n"
    "  -m, --memory SIZE          memory limit (e.g. 512m)\n"
    "      --pids-limit N         maximum number of processes\n"
    "      --cpus N               CPU limit (e.g. 1.5)\n"
    "      --device HOST[:CTR]    bind a host device node (e.g. /dev/fuse)\n"
    "      --isolation MODE       auto (default), oci, rootless or chroot (what a CI container\n"
    "                             allows: see berth info)\n"
    "      --privileged           every capability, no seccomp, no masked paths, /dev/fuse\n"
    "      --security-opt OPT     seccomp=unconfined|FILE, mask=P[:P], unmask=ALL|P[:P],\n"
    "                             no-new-privileges[=false], label=..., apparmor=...\n";

enum {
    O_RM = 300,
    O_NAME,
    O_ENVFILE,
    O_TMPFS,
    O_ENTRY,
    O_RO,
    O_CAPADD,
    O_CAPDROP,
    O_NET,
    O_PULL,
    O_INIT,
    O_RUNTIME,
    O_PIDS,
    O_CPUS,
    O_SECOPT,
    O_PRIVILEGED,
    O_ISOLATION,
    O_DEVICE,
    O_IGNORE_ARG,
    O_IGNORE,
    O_HELP,
    O_NOHEADING,
    O_NETALIAS,
    O_IP,
    O_MAC,
    O_DNS,
    O_DNSSEARCH,
    O_DNSOPT,
    O_ADDHOST,
    O_NOHOSTS,
};

struct vec {
    char **v;
    size_t n;
};

static void vpush(struct vec *v, char *s)
{
    v->v = xreallocarray(v->v, v->n + 2, sizeof(char *));
    v->v[v->n++] = s;
    v->v[v->n] = NULL;
}

/* One --security-opt (podman's names).  label= and apparmor= are accepted: berth applies
 * neither SELinux labels nor AppArmor profiles. */
static int security_opt(const char *v, struct spec_options *so, struct vec *masks,
                        struct vec *unmasks)
{
    if (strcmp(v, "seccomp=unconfined") == 0)
        so->no_seccomp = true;
    else if (strncmp(v, "seccomp=", 8) == 0 && v[8])
        so->seccomp_profile = v + 8;
    else if (strcmp(v, "no-new-privileges=false") == 0)
        so->no_new_privs_off = true;
    else if (strncmp(v, "mask=", 5) == 0 && v[5])
        vpush(masks, (char *)v + 5);
    else if (strncmp(v, "unmask=", 7) == 0 && v[7])
        vpush(unmasks, (char *)v + 7);
    else if (strncmp(v, "no-new-privileges", 17) != 0 && strncmp(v, "label=", 6) != 0 &&
             strncmp(v, "apparmor=", 9) != 0)
        return cli_failf("unsupported --security-opt \"%s\"", v);
    return 0;
}

/* --isolation (default auto): chroot where the probe says full isolation can't work here. */
static int choose_isolation(const char *flag, const char *runroot, struct run_probe *p,
                            struct spec_options *so)
{
    run_isolation_t req;
    berth_error_t err = NULL;
    if (run_isolation_parse(flag, &req, &err) < 0)
        return cli_fail(&err);
    run_isolation_probe(runroot, p);
    const char *why;
    if (run_isolation_resolve(req, p, &why) == RUN_ISOLATION_CHROOT) {
        so->chroot = p;
        if (req == RUN_ISOLATION_AUTO)
            log_warn("the container uses --isolation chroot (%s)", why);
    }
    return 0;
}

static const char *find_init(void)
{
    static const char *const paths[] = {
        "/usr/libexec/podman/catatonit", "/usr/bin/catatonit", "/usr/libexec/catatonit/catatonit",
        "/usr/bin/tini-static",          "/usr/bin/tini",      NULL};
    for (int i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* Pulls IMAGE with `berth pull` (re-exec): the transports stay in their own command.  *id gets
 * the pulled image's id (what `berth pull -q` prints), so references that name no local image
 * (oci:DIR, docker-archive:FILE) can be run too. */
static int pull_image(struct berth_globals *g, const char *image, char **id)
{
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) {
        close(pp[0]);
        close(pp[1]);
        return -1;
    }
    if (p == 0) {
        char *argv[16];
        int a = 0;
        argv[a++] = (char *)g->argv0;
        if (g->root) {
            argv[a++] = "--root";
            argv[a++] = (char *)g->root;
        }
        if (g->runroot) {
            argv[a++] = "--runroot";
            argv[a++] = (char *)g->runroot;
        }
        if (g->storage_driver) {
            argv[a++] = "--storage-driver";
            argv[a++] = (char *)g->storage_driver;
        }
        if (g->registries_conf) {
            argv[a++] = "--registries-conf";
            argv[a++] = (char *)g->registries_conf;
        }
        argv[a++] = "pull";
        argv[a++] = "-q";
        argv[a++] = (char *)image;
        argv[a] = NULL;
        dup2(pp[1], 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(pp[1]);
    char buf[256];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(pp[0], buf + n, sizeof(buf) - 1 - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        n += (size_t)r;
    }
    close(pp[0]);
    buf[n] = '\0';
    int st;
    while (waitpid(p, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    /* the id is the last line */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *last = strrchr(buf, '\n');
    *id = xstrdup(last ? last + 1 : buf);
    return 0;
}

static int run_or_create(struct berth_globals *g, int argc, char **argv, bool create)
{
    static const struct option opts[] = {
        {"detach", no_argument, NULL, 'd'},
        {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},
        {"rm", no_argument, NULL, O_RM},
        {"name", required_argument, NULL, O_NAME},
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, O_ENVFILE},
        {"volume", required_argument, NULL, 'v'},
        {"tmpfs", required_argument, NULL, O_TMPFS},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"entrypoint", required_argument, NULL, O_ENTRY},
        {"hostname", required_argument, NULL, 'h'},
        {"read-only", no_argument, NULL, O_RO},
        {"cap-add", required_argument, NULL, O_CAPADD},
        {"cap-drop", required_argument, NULL, O_CAPDROP},
        {"network", required_argument, NULL, O_NET},
        {"net", required_argument, NULL, O_NET},
        {"pull", required_argument, NULL, O_PULL},
        {"init", no_argument, NULL, O_INIT},
        {"runtime", required_argument, NULL, O_RUNTIME},
        {"memory", required_argument, NULL, 'm'},
        {"pids-limit", required_argument, NULL, O_PIDS},
        {"cpus", required_argument, NULL, O_CPUS},
        {"security-opt", required_argument, NULL, O_SECOPT},
        {"privileged", no_argument, NULL, O_PRIVILEGED},
        {"isolation", required_argument, NULL, O_ISOLATION},
        {"device", required_argument, NULL, O_DEVICE},
        {"sig-proxy", optional_argument, NULL, O_IGNORE_ARG},
        {"log-driver", required_argument, NULL, O_IGNORE_ARG},
        {"quiet", no_argument, NULL, 'q'},
        {"publish", required_argument, NULL, 'p'},
        {"publish-all", no_argument, NULL, 'P'},
        {"network-alias", required_argument, NULL, O_NETALIAS},
        {"ip", required_argument, NULL, O_IP},
        {"mac-address", required_argument, NULL, O_MAC},
        {"dns", required_argument, NULL, O_DNS},
        {"dns-search", required_argument, NULL, O_DNSSEARCH},
        {"dns-option", required_argument, NULL, O_DNSOPT},
        {"add-host", required_argument, NULL, O_ADDHOST},
        {"no-hosts", no_argument, NULL, O_NOHOSTS},
        {"help", no_argument, NULL, O_HELP},
        {0},
    };
    struct spec_options so = {0};
    struct net_options no = {0};
    struct vec pub = {0}, alias = {0}, dns = {0}, dsearch = {0}, dopt = {0}, addh = {0};
    struct vec env = {0}, envf = {0}, vols = {0}, tmpfs = {0}, capa = {0}, capd = {0};
    struct vec masks = {0}, unmasks = {0}, devs = {0};
    const char *isolation = NULL;
    const char *name = NULL, *pull = "missing", *runtime = NULL;
    bool detach = false, interactive = false, rm = false, init = false;
    int c;
    int rc = BERTH_EXIT_ERROR;
    cleanup_error berth_error_t err = NULL;
    while ((c = cli_getopt(argc, argv, "ditqe:v:w:u:h:m:p:P", opts, true)) != -1) {
        switch (c) {
        case 'p':
            vpush(&pub, optarg);
            break;
        case 'P':
            no.publish_all = true;
            break;
        case O_NETALIAS:
            vpush(&alias, optarg);
            break;
        case O_IP:
            no.ip = optarg;
            break;
        case O_MAC:
            no.mac = optarg;
            break;
        case O_DNS:
            vpush(&dns, optarg);
            break;
        case O_DNSSEARCH:
            vpush(&dsearch, optarg);
            break;
        case O_DNSOPT:
            vpush(&dopt, optarg);
            break;
        case O_ADDHOST:
            vpush(&addh, optarg);
            break;
        case O_NOHOSTS:
            no.no_hosts = true;
            break;
        case 'd':
            detach = true;
            break;
        case 'i':
            interactive = true;
            break;
        case 't':
            so.terminal = true;
            break;
        case 'q':
            break;
        case O_RM:
            rm = true;
            break;
        case O_NAME:
            name = optarg;
            break;
        case 'e':
            vpush(&env, optarg);
            break;
        case O_ENVFILE:
            vpush(&envf, optarg);
            break;
        case 'v':
            vpush(&vols, optarg);
            break;
        case O_TMPFS:
            vpush(&tmpfs, optarg);
            break;
        case 'w':
            so.workdir = optarg;
            break;
        case 'u':
            so.user = optarg;
            break;
        case O_ENTRY:
            so.entrypoint_set = true;
            so.entrypoint = optarg;
            break;
        case 'h':
            so.hostname = optarg;
            break;
        case O_RO:
            so.read_only = true;
            break;
        case O_CAPADD:
            vpush(&capa, optarg);
            break;
        case O_CAPDROP:
            vpush(&capd, optarg);
            break;
        case O_NET:
            so.network = optarg;
            break;
        case O_PULL:
            pull = optarg;
            if (strcmp(pull, "missing") && strcmp(pull, "always") && strcmp(pull, "never") &&
                strcmp(pull, "newer")) {
                rc = cli_failf("invalid --pull \"%s\": use missing, always or never", pull);
                goto out;
            }
            break;
        case O_INIT:
            init = true;
            break;
        case O_RUNTIME:
            runtime = optarg;
            break;
        case 'm':
            if (spec_parse_size(optarg, &so.memory, &err) < 0) {
                rc = cli_fail(&err);
                goto out;
            }
            break;
        case O_PIDS: {
            int pids = 0;
            if ((rc = cli_parse_int("--pids-limit", optarg, -1, INT_MAX, &pids)) != 0)
                goto out;
            so.pids_limit = pids;
            break;
        }
        case O_CPUS: {
            char *end;
            errno = 0;
            so.cpus = strtod(optarg, &end);
            if (end == optarg || *end || errno || !(so.cpus > 0)) {
                rc = cli_failf("invalid --cpus \"%s\"", optarg);
                goto out;
            }
            break;
        }
        case O_SECOPT:
            if ((rc = security_opt(optarg, &so, &masks, &unmasks)) != 0)
                goto out;
            break;
        case O_PRIVILEGED:
            so.privileged = true;
            break;
        case O_ISOLATION:
            isolation = optarg;
            break;
        case O_DEVICE: {
            /* HOST[:CTR[:PERMS]]: the node bound in (permissions are the host node's) */
            cleanup_free char *d = xstrdup(optarg);
            char *ctr = strchr(d, ':');
            if (ctr)
                *ctr++ = '\0';
            char *perm = ctr ? strchr(ctr, ':') : NULL;
            if (perm)
                *perm = '\0';
            vpush(&devs, xasprintf("%s:%s", d, ctr && *ctr ? ctr : d));
            break;
        }
        case O_IGNORE_ARG:
        case O_IGNORE:
            break;
        case O_HELP:
            rc = cli_usage(run_usage);
            goto out;
        default:
            rc = cli_bad_option(argv[0], argc, argv);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = cli_nargs_error(argv[0], "an IMAGE");
        goto out;
    }
    if (rm && create) {
        /* allowed as in podman: the container is removed after its first run */
    }
    if (init) {
        so.init_path = find_init();
        if (!so.init_path) {
            rc = cli_failf("--init: no init binary found (install catatonit or tini)");
            goto out;
        }
    }
    if (runtime && access(runtime, X_OK) < 0) {
        rc = cli_failf("--runtime \"%s\": %s", runtime, strerror(errno));
        goto out;
    }
    const char *image = argv[optind];
    so.args = argv + optind + 1;
    so.env = env.v;
    so.env_files = envf.v;
    so.volumes = vols.v;
    so.tmpfs = tmpfs.v;
    so.cap_add = capa.v;
    so.cap_drop = capd.v;
    so.mask = masks.v;
    for (size_t i = 0; i < devs.n; i++)
        vpush(&vols, devs.v[i]);
    so.volumes = vols.v;
    so.unmask = unmasks.v;
    no.mode = so.network;
    no.publish = pub.v;
    no.aliases = alias.v;
    no.dns = dns.v;
    no.dns_search = dsearch.v;
    no.dns_option = dopt.v;
    no.add_host = addh.v;

    {
        cleanup_storage_store storage_store_t *s = NULL;
        if (cli_store_open(g, &s, &err) < 0) {
            rc = cli_fail(&err);
            goto out;
        }
        struct run_probe probe;
        if ((rc = choose_isolation(isolation, storage_store_runroot(s), &probe, &so)) != 0)
            goto out;
        /* chroot isolation makes no network of its own (as buildah's chroot): unless one was
         * asked for, the container uses the host's, where a bridge or pasta could not start */
        if (so.chroot && (!so.network || !*so.network))
            no.mode = so.network = "host";
        bool have = false;
        {
            storage_image_t *img = NULL;
            berth_error_t e2 = NULL;
            have = storage_image_lookup(s, image, &img, &e2) == 0;
            storage_image_free(img);
            berth_error_release(&e2);
        }
        cleanup_free char *pulled = NULL;
        if (strcmp(pull, "always") == 0 || (!have && strcmp(pull, "never") != 0)) {
            if (pull_image(g, image, &pulled) < 0) {
                rc = cli_failf("%s: image not known and could not be pulled", image);
                goto out;
            }
            /* a transport reference (oci:DIR) names no local image: run what was pulled */
            if (!have && *pulled)
                image = pulled;
        } else if (!have) {
            rc = cli_failf("%s: image not known (--pull never)", image);
            goto out;
        }
        struct container_create_opts co = {.image = image,
                                           .name = name,
                                           .spec = &so,
                                           .rm = rm,
                                           .interactive = interactive,
                                           .runtime = runtime,
                                           .net = &no};
        cleanup_storage_container storage_container_t *ctr = NULL;
        if (container_create(s, &co, &ctr, &err) < 0) {
            rc = cli_fail(&err);
            goto out;
        }
        if (create) {
            berth_error_t e2 = NULL;
            IGNORE_RESULT(storage_container_unmount(s, ctr->id, false, &e2));
            berth_error_release(&e2);
            printf("%s\n", ctr->id);
            rc = 0;
            goto out;
        }
        struct storage_options sopt = {
            .root = g->root, .runroot = g->runroot, .driver = g->storage_driver};
        struct container_start_opts st = {.detach = detach, .store_opts = &sopt};
        int status = 0;
        if (container_start(s, ctr->id, &st, &status, &err) < 0) {
            fprintf(stderr, "Error: %s\n", berth_error_msg(err));
            rc = status > 0 ? status : BERTH_EXIT_ERROR;
            goto out;
        }
        if (detach)
            printf("%s\n", ctr->id);
        rc = detach ? 0 : status;
    }
out:
    free(env.v);
    free(envf.v);
    free(vols.v);
    free(tmpfs.v);
    free(capa.v);
    free(capd.v);
    free(masks.v);
    free(unmasks.v);
    for (size_t i = 0; i < devs.n; i++)
        free(devs.v[i]);
    free(devs.v);
    free(pub.v);
    free(alias.v);
    free(dns.v);
    free(dsearch.v);
    free(dopt.v);
    free(addh.v);
    return rc;
}

static int cmd_run(struct berth_globals *g, int argc, char **argv)
{
    return run_or_create(g, argc, argv, false);
}

static int cmd_create(struct berth_globals *g, int argc, char **argv)
{
    return run_or_create(g, argc, argv, true);
}

/* Commands that only read records and signal processes open the store without entering the
 * user namespace, so setns into a rootless container's namespaces stays possible. */
static int store_open_plain(struct berth_globals *g, storage_store_t **s, berth_error_t *err)
{
    struct storage_options o = {
        .root = g->root, .runroot = g->runroot, .driver = g->storage_driver};
    return storage_store_open(&o, s, err);
}

static int simple_flags(int argc, char **argv, const char *usage, const char *shortopts,
                        const struct option *opts, int (*on)(int c, void *ctx), void *ctx)
{
    int c;
    while ((c = cli_getopt(argc, argv, shortopts, opts, false)) != -1) {
        if (c == O_HELP)
            return cli_usage(usage);
        int r = on ? on(c, ctx) : -1;
        if (r < 0)
            return cli_bad_option(argv[0], argc, argv);
        if (r > 0) /* the flag's value was bad and reported: r is the exit code */
            return r;
    }
    return -1;
}

static const char start_usage[] = "Usage: berth start CONTAINER...\n\nStart containers "
                                  "(detached).\n";

static int cmd_start(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, O_HELP}, {"attach", no_argument, NULL, 'a'}, {0}};
    int r = simple_flags(argc, argv, start_usage, "", opts, NULL, NULL);
    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_nargs_error(argv[0], "at least one CONTAINER");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    struct storage_options sopt = {
        .root = g->root, .runroot = g->runroot, .driver = g->storage_driver};
    struct container_start_opts st = {.detach = true, .store_opts = &sopt};
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        int status;
        if (container_start(s, argv[i], &st, &status, &err) < 0) {
            rc = cli_fail(&err);
            continue;
        }
        printf("%s\n", argv[i]);
    }
    return rc;
}

static int stop_timeout = 10;
static int stop_flag(int c, void *ctx)
{
    (void)ctx;
    if (c == 't')
        return cli_parse_int("--time", optarg, 0, INT_MAX, &stop_timeout);
    return -1;
}

static const char stop_usage[] = "Usage: berth stop [-t SECONDS] CONTAINER...\n\nStop containers: "
                                 "SIGTERM, then SIGKILL after the timeout (default 10).\n";

static int cmd_stop(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"time", required_argument, NULL, 't'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, O_HELP},
                                         {0}};
    stop_timeout = 10;
    int r = simple_flags(argc, argv, stop_usage, "t:", opts, stop_flag, NULL);
    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_nargs_error(argv[0], "at least one CONTAINER");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        if (container_stop(s, argv[i], stop_timeout, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

static const char *kill_signal = "KILL";
static int kill_flag(int c, void *ctx)
{
    (void)ctx;
    if (c == 's') {
        kill_signal = optarg;
        return 0;
    }
    return -1;
}

static const char kill_usage[] = "Usage: berth kill [-s SIGNAL] CONTAINER...\n\nSend a signal "
                                 "(default KILL) to containers.\n";

static int cmd_kill(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"signal", required_argument, NULL, 's'}, {"help", no_argument, NULL, O_HELP}, {0}};
    kill_signal = "KILL";
    int r = simple_flags(argc, argv, kill_usage, "s:", opts, kill_flag, NULL);
    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_nargs_error(argv[0], "at least one CONTAINER");
    int sig = runtime_parse_signal(kill_signal);
    if (sig < 0)
        return cli_failf("unknown signal \"%s\"", kill_signal);
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        if (container_kill(s, argv[i], sig, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%s\n", argv[i]);
    }
    return rc;
}

struct rm_flags {
    bool force, all;
};
static int rm_flag(int c, void *ctx)
{
    struct rm_flags *f = ctx;
    if (c == 'f')
        f->force = true;
    else if (c == 'a')
        f->all = true;
    else
        return -1;
    return 0;
}

static const char rm_usage[] = "Usage: berth rm [-f] [-a] CONTAINER...\n\nRemove containers "
                               "(-f kills running ones first).\n";

static int cmd_rm(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, O_HELP},
                                         {0}};
    struct rm_flags f = {0};
    int r = simple_flags(argc, argv, rm_usage, "fa", opts, rm_flag, &f);
    if (r >= 0)
        return r;
    if (optind >= argc && !f.all)
        return cli_nargs_error(argv[0], "at least one CONTAINER (or --all)");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) < 0)
        return cli_fail(&err);
    int rc = 0;
    struct vec ids = {0};
    storage_container_t **all = NULL;
    if (f.all) {
        if (storage_container_list(s, &all, &err) < 0)
            return cli_fail(&err);
        for (size_t i = 0; all[i]; i++)
            vpush(&ids, all[i]->id);
    }
    for (int i = optind; i < argc; i++)
        vpush(&ids, argv[i]);
    for (size_t i = 0; i < ids.n; i++) {
        if (container_remove(s, ids.v[i], f.force, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%s\n", ids.v[i]);
    }
    free(ids.v);
    storage_container_list_free(all);
    return rc;
}

static void ago(int64_t t, char *buf, size_t len)
{
    int64_t d = (int64_t)time(NULL) - t;
    if (d < 0)
        d = 0;
    if (d < 60)
        snprintf(buf, len, "%lld seconds", (long long)d);
    else if (d < 3600)
        snprintf(buf, len, "%lld minutes", (long long)(d / 60));
    else if (d < 86400)
        snprintf(buf, len, "%lld hours", (long long)(d / 3600));
    else
        snprintf(buf, len, "%lld days", (long long)(d / 86400));
}

struct ps_flags {
    bool all, quiet, noheading;
    const char *format;
};
static int ps_flag(int c, void *ctx)
{
    struct ps_flags *f = ctx;
    if (c == 'a')
        f->all = true;
    else if (c == 'q')
        f->quiet = true;
    else if (c == 'f')
        f->format = optarg;
    else if (c == O_NOHEADING)
        f->noheading = true;
    else
        return -1;
    return 0;
}

static const char ps_usage[] =
    "Usage: berth ps [-a] [-q] [--format TEMPLATE] [--noheading]\n\nList containers (running "
    "ones unless -a).\n"
    "  --format T   a Go template per container (.ID .Image .Command .CreatedAt .Status .State\n"
    "               .Names .ExitCode ...); \"table T\" aligns columns under a header\n";

/* The labels a container gets from its image (podman copies them into the container). */
static json_t *image_labels(storage_store_t *s, const char *image_id)
{
    cleanup_free char *buf = NULL;
    size_t len = 0;
    cleanup_error berth_error_t err = NULL;
    cleanup_json json_t *cfg = NULL;
    if (!image_id ||
        storage_image_get_big_data(s, image_id, "config", IMAGE_CONFIG_MAX_SIZE, &buf, &len, &err) <
            0 ||
        json_parse_bounded(buf, len, IMAGE_CONFIG_MAX_SIZE, "config", &cfg, &err) < 0)
        return tmpl_nil_map();
    json_t *l = json_get_object(json_get_object(cfg, "config"), "Labels");
    return l ? json_deep_copy(l) : tmpl_nil_map();
}

static json_t *ps_template_row(storage_store_t *s, const struct container_info *ci,
                               const storage_container_t *sc)
{
    json_t *o = tmpl_struct_new("containers.psReporter");
    char b[96], state[128], human[64];
    int64_t now = (int64_t)time(NULL);
    snprintf(b, sizeof(b), "%.12s", ci->id);
    json_object_set_new(o, "ID", json_string(b));
    json_object_set_new(o, "Image", json_string(ci->image ? ci->image : ""));
    snprintf(b, sizeof(b), "%.12s", sc->image_id ? sc->image_id : "");
    json_object_set_new(o, "ImageID", json_string(b));
    json_object_set_new(o, "Command", json_string(ci->command ? ci->command : ""));
    cli_go_time(ci->created, b, sizeof(b));
    json_object_set_new(o, "CreatedAt", json_string(b));
    json_object_set_new(o, "Created", json_string(b));
    cli_human_duration(now - ci->created, human, sizeof(human));
    snprintf(b, sizeof(b), "%s ago", human);
    json_object_set_new(o, "CreatedHuman", json_string(b));
    json_object_set_new(o, "RunningFor", json_string(b));
    bool running = strcmp(ci->status, "running") == 0, exited = strcmp(ci->status, "exited") == 0;
    if (running) {
        cli_human_duration(now - ci->started, b, sizeof(b));
        snprintf(state, sizeof(state), "Up %s", b);
    } else if (exited) {
        cli_human_duration(now - (ci->finished ? ci->finished : ci->created), b, sizeof(b));
        snprintf(state, sizeof(state), "Exited (%d) %s ago", ci->exit_code, b);
    } else {
        snprintf(state, sizeof(state), "%c%s", ci->status[0] ? ci->status[0] - 32 : ' ',
                 ci->status[0] ? ci->status + 1 : "");
    }
    json_object_set_new(o, "Status", json_string(state));
    json_object_set_new(o, "State", json_string(state));
    json_object_set_new(o, "Ports", json_string(ci->ports ? ci->ports : ""));
    json_object_set_new(o, "Names", json_string(ci->name ? ci->name : ""));
    json_object_set_new(o, "Labels", image_labels(s, sc->image_id));
    json_object_set_new(o, "Mounts", json_array());
    json_object_set_new(o, "Networks", json_string(""));
    json_object_set_new(o, "Pod", json_string(""));
    json_object_set_new(o, "PodName", json_string(""));
    json_object_set_new(o, "ExitCode", json_integer(exited ? ci->exit_code : 0));
    json_object_set_new(o, "Exited", json_boolean(exited));
    /* Go's zero time as unix seconds, as podman prints a time that never was */
    const json_int_t never = -62135596800LL;
    json_object_set_new(o, "ExitedAt", json_integer(ci->finished ? ci->finished : never));
    json_object_set_new(o, "StartedAt", json_integer(ci->started ? ci->started : never));
    json_object_set_new(o, "AutoRemove", json_false());
    json_object_set_new(o, "IsInfra", json_false());
    json_object_set_new(o, "Pid", json_integer(running ? ci->pid : 0));
    return o;
}

static json_t *ps_template_headers(void)
{
    static const char *const h[][2] = {
        {"ID", "CONTAINER ID"},
        {"Image", "IMAGE"},
        {"ImageID", "IMAGE ID"},
        {"Command", "COMMAND"},
        {"CreatedAt", "CREATED AT"},
        {"Created", "CREATED"},
        {"CreatedHuman", "CREATED"},
        {"RunningFor", "RUNNING FOR"},
        {"Status", "STATUS"},
        {"State", "STATE"},
        {"Ports", "PORTS"},
        {"Names", "NAMES"},
        {"Labels", "LABELS"},
        {"Mounts", "MOUNTS"},
        {"Networks", "NETWORKS"},
        {"Pod", "POD ID"},
        {"PodName", "PODNAME"},
        {"ExitCode", "EXIT CODE"},
        {"Exited", "EXITED"},
        {"ExitedAt", "EXITED AT"},
        {"StartedAt", "STARTED AT"},
        {"AutoRemove", "AUTO REMOVE"},
        {"IsInfra", "IS INFRA"},
        {"Pid", "PID"},
        {"Size", "SIZE"},
    };
    return cli_template_headers(h, sizeof(h) / sizeof(h[0]));
}

static int cmd_ps(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},          {"quiet", no_argument, NULL, 'q'},
        {"format", required_argument, NULL, 'f'}, {"noheading", no_argument, NULL, O_NOHEADING},
        {"help", no_argument, NULL, O_HELP},      {0}};
    struct ps_flags f = {0};
    int r = simple_flags(argc, argv, ps_usage, "aqf:", opts, ps_flag, &f);
    if (r >= 0)
        return r;
    if (optind != argc)
        return cli_nargs_error(argv[0], "no arguments");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (store_open_plain(g, &s, &err) < 0)
        return cli_fail(&err);
    storage_container_t **all = NULL;
    if (storage_container_list(s, &all, &err) < 0)
        return cli_fail(&err);
    /* a Go template as podman runs it ("table" alone keeps the default table) */
    bool tmpl = f.format && strcmp(f.format, "table") != 0 && !f.quiet;
    cleanup_json json_t *rows = tmpl ? json_array() : NULL;
    if (!f.quiet && !tmpl)
        printf("%-12s  %-28s  %-20s  %-16s  %-22s  %-20s  %s\n", "CONTAINER ID", "IMAGE", "COMMAND",
               "CREATED", "STATUS", "PORTS", "NAMES");
    for (size_t i = 0; all[i]; i++) {
        struct container_info ci;
        berth_error_t e2 = NULL;
        if (container_inspect(s, all[i]->id, &ci, &e2) < 0) {
            berth_error_release(&e2);
            continue;
        }
        bool running = strcmp(ci.status, "running") == 0;
        if (!running && !f.all) {
            container_info_clear(&ci);
            continue;
        }
        if (f.quiet) {
            printf("%.12s\n", ci.id);
            container_info_clear(&ci);
            continue;
        }
        if (tmpl) {
            json_array_append_new(rows, ps_template_row(s, &ci, all[i]));
            container_info_clear(&ci);
            continue;
        }
        char created[64], st[64], a[48];
        ago(ci.created, a, sizeof(a));
        snprintf(created, sizeof(created), "%s ago", a);
        if (running) {
            ago(ci.started, a, sizeof(a));
            snprintf(st, sizeof(st), "Up %s", a);
        } else if (strcmp(ci.status, "exited") == 0) {
            ago(ci.finished ? ci.finished : ci.created, a, sizeof(a));
            snprintf(st, sizeof(st), "Exited (%d) %s ago", ci.exit_code, a);
        } else {
            snprintf(st, sizeof(st), "%s",
                     strcmp(ci.status, "created") == 0 ? "Created" : ci.status);
        }
        printf("%-12.12s  %-28.28s  %-20.20s  %-16s  %-22s  %-20s  %s\n", ci.id, ci.image,
               ci.command, created, st, ci.ports ? ci.ports : "", ci.name);
        container_info_clear(&ci);
    }
    storage_container_list_free(all);
    if (tmpl) {
        cleanup_json json_t *hdrs = ps_template_headers();
        return cli_print_template(f.format, rows, hdrs, f.noheading);
    }
    return 0;
}

static bool logs_follow;
static int logs_flag(int c, void *ctx)
{
    (void)ctx;
    if (c == 'f') {
        logs_follow = true;
        return 0;
    }
    return -1;
}

static const char logs_usage[] = "Usage: berth logs [-f] CONTAINER\n\nPrint the output of a "
                                 "detached container.\n";

static int cmd_logs(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'}, {"help", no_argument, NULL, O_HELP}, {0}};
    logs_follow = false;
    int r = simple_flags(argc, argv, logs_usage, "f", opts, logs_flag, NULL);
    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_nargs_error(argv[0], "exactly one CONTAINER");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (store_open_plain(g, &s, &err) < 0)
        return cli_fail(&err);
    cleanup_free char *path = NULL;
    if (container_log_path(s, argv[optind], &path, &err) < 0)
        return cli_fail(&err);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* never ran detached: no output kept */
        return cli_failf("open \"%s\": %s", path, strerror(errno));
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            fwrite(buf, 1, (size_t)n, stdout);
            continue;
        }
        if (!logs_follow)
            break;
        fflush(stdout);
        struct container_info ci;
        if (container_inspect(s, argv[optind], &ci, &err) < 0)
            break;
        bool running = strcmp(ci.status, "running") == 0 || strcmp(ci.status, "stopping") == 0;
        container_info_clear(&ci);
        if (!running) {
            /* drain what was written before the end */
            while ((n = read(fd, buf, sizeof(buf))) > 0)
                fwrite(buf, 1, (size_t)n, stdout);
            break;
        }
        usleep(100000);
    }
    return 0;
}

static const char wait_usage[] = "Usage: berth wait CONTAINER...\n\nWait for containers to "
                                 "stop and print their exit codes.\n";

static int cmd_wait(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, O_HELP}, {0}};
    int r = simple_flags(argc, argv, wait_usage, "", opts, NULL, NULL);
    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_nargs_error(argv[0], "at least one CONTAINER");
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (store_open_plain(g, &s, &err) < 0)
        return cli_fail(&err);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        int code;
        if (container_wait(s, argv[i], &code, &err) < 0)
            rc = cli_fail(&err);
        else
            printf("%d\n", code);
    }
    return rc;
}

static const char exec_usage[] =
    "Usage: berth exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] CONTAINER [--] COMMAND [ARG...]\n"
    "\nRun a command in a running container, or in a scripted build's working container\n"
    "(from 'berth from'), as buildah run does.\n";

static int cmd_exec(struct berth_globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"interactive", no_argument, NULL, 'i'},   {"tty", no_argument, NULL, 't'},
        {"detach", no_argument, NULL, 'd'},        {"env", required_argument, NULL, 'e'},
        {"workdir", required_argument, NULL, 'w'}, {"user", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, O_HELP},       {0}};
    bool tty = false, interactive = false, detach = false;
    const char *cwd = NULL, *user = NULL;
    struct vec env = {0};
    int c;
    while ((c = cli_getopt(argc, argv, "itde:w:u:", opts, true)) != -1) {
        switch (c) {
        case 'i':
            interactive = true;
            break;
        case 't':
            tty = true;
            break;
        case 'd':
            detach = true;
            break;
        case 'e':
            vpush(&env, optarg);
            break;
        case 'w':
            cwd = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case O_HELP:
            free(env.v);
            return cli_usage(exec_usage);
        default:
            free(env.v);
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind < 2) {
        free(env.v);
        return cli_nargs_error(argv[0], "a CONTAINER and a COMMAND");
    }
    const char *ctr = argv[optind];
    char **cmd = argv + optind + 1;
    if (strcmp(cmd[0], "--") == 0 && cmd[1] != NULL)
        cmd++;
    cleanup_error berth_error_t err = NULL;
    cleanup_storage_store storage_store_t *s = NULL;
    if (store_open_plain(g, &s, &err) < 0) {
        free(env.v);
        return cli_fail(&err);
    }
    int status = 0;
    if (working_is_container(s, ctr)) {
        /* a scripted build's working container (berth from): run the command in its rootfs,
         * which needs the store opened inside the user namespace */
        storage_store_close(s);
        s = NULL;
        struct working_exec_options o = {
            .argv = cmd, .env = env.v, .workdir = cwd, .user = user, .terminal = tty};
        int r = cli_store_open(g, &s, &err);
        if (r == 0)
            r = working_exec(s, ctr, &o, &status, &err);
        free(env.v);
        return r < 0 ? cli_fail(&err) : status;
    }
    int r = container_exec(s, ctr, cmd, env.v, cwd, user, tty, interactive, detach, &status, &err);
    free(env.v);
    if (r < 0) {
        fprintf(stderr, "Error: %s\n", berth_error_msg(err));
        return status > 0 ? status : BERTH_EXIT_ERROR;
    }
    return status;
}

BERTH_COMMAND(run, "run", "Run a command in a new container", cmd_run);
BERTH_COMMAND(create, "create", "Create a container without starting it", cmd_create);
BERTH_COMMAND(start, "start", "Start created or stopped containers", cmd_start);
BERTH_COMMAND(stop, "stop", "Stop running containers", cmd_stop);
BERTH_COMMAND(kill, "kill", "Send a signal to running containers", cmd_kill);
BERTH_COMMAND(rm, "rm", "Remove containers", cmd_rm);
BERTH_COMMAND(ps, "ps", "List containers", cmd_ps);
BERTH_COMMAND(logs, "logs", "Print a container's output", cmd_logs);
BERTH_COMMAND(wait, "wait", "Wait for containers to stop and print their exit codes", cmd_wait);
BERTH_COMMAND(exec, "exec", "Run a command in a running container", cmd_exec);
