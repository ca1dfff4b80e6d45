/* berth info / berth system doctor: what this environment allows berth to do, and for each
 * missing piece the exact fix (the podman/docker flag, the sysctl, the /etc/subuid line). */
#include "cmd/cli.h"
#include "cmd/store_open.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "run/isolation.h"
#include "storage/userns.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static const char info_usage[] =
    "Usage: berth info [--format json]\n"
    "       berth system doctor\n\n"
    "What this environment allows berth to do: user namespaces, subordinate id ranges,\n"
    "newuidmap, the storage driver (overlay or vfs), mounting /proc, cgroups, seccomp,\n"
    "/dev/fuse and /dev/net/tun, the RUN isolation `--isolation auto` picks, and for each\n"
    "missing piece the fix.  `system doctor` prints only the problems and their fixes and\n"
    "exits 1 when there are any.\n";

struct check {
    const char *name;
    bool ok;
    char *value; /* what was found */
    char *fix;   /* NULL when ok or nothing to do */
};

struct report {
    struct check v[16];
    size_t n;
};

static void add(struct report *r, const char *name, bool ok, char *value, char *fix)
{
    if (r->n < sizeof(r->v) / sizeof(r->v[0]))
        r->v[r->n++] = (struct check){name, ok, value, ok ? (free(fix), NULL) : fix};
    else {
        free(value);
        free(fix);
    }
}

static bool subid_ranges(const char *file, const char *name, uid_t uid, char **found)
{
    cleanup_free char *d = NULL;
    *found = NULL;
    if (fs_read_file(file, 1 << 20, &d, NULL, NULL) < 0)
        return false;
    char idstr[32];
    snprintf(idstr, sizeof(idstr), "%u", (unsigned)uid);
    for (char *line = d; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *c = strchr(line, ':');
        if (c &&
            ((name && (size_t)(c - line) == strlen(name) &&
              strncmp(line, name, strlen(name)) == 0) ||
             ((size_t)(c - line) == strlen(idstr) && strncmp(line, idstr, strlen(idstr)) == 0))) {
            *found = xstrdup(line);
            return true;
        }
        line = nl ? nl + 1 : NULL;
    }
    return false;
}

static char *status_field(const char *key)
{
    cleanup_free char *d = NULL;
    if (fs_read_file("/proc/self/status", 64 * 1024, &d, NULL, NULL) < 0)
        return xstrdup("?");
    char *p = strstr(d, key);
    if (!p)
        return xstrdup("?");
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    return xstrndup(p, strcspn(p, "\n"));
}

static void gather(struct berth_globals *g, struct report *r)
{
    uid_t uid = geteuid();
    struct passwd *pw = getpwuid(uid);
    const char *name = pw ? pw->pw_name : NULL;
    /* uid 0, also in someone else's user namespace (a rootless podman container): berth needs
     * no namespace of its own, nor subordinate ids */
    bool root = uid == 0;
    cleanup_free char *max_ns = NULL;
    IGNORE_RESULT(fs_read_file("/proc/sys/user/max_user_namespaces", 64, &max_ns, NULL, NULL));
    if (max_ns)
        max_ns[strcspn(max_ns, "\n")] = '\0';

    /* the user namespace berth enters for a non-root user */
    berth_error_t err = NULL;
    bool userns_ok = userns_ensure(&err) == 0;
    if (root)
        add(r, "user namespace", true,
            xstrdup(userns_in_namespace() ? "not needed (uid 0 in a user namespace)"
                                          : "not needed (root)"),
            NULL);
    else
        add(r, "user namespace", userns_ok,
            userns_ok ? xstrdup(userns_in_namespace() ? "yes" : "not needed")
                      : xasprintf("no: %s", berth_error_msg(err)),
            max_ns && strcmp(max_ns, "0") == 0
                ? xstrdup("sysctl -w user.max_user_namespaces=15000 (on the host)")
                : xstrdup("in a container: run it without a seccomp profile that denies "
                          "unshare(CLONE_NEWUSER) (podman/docker --security-opt "
                          "seccomp=unconfined), or as root in it; on a host: sysctl -w "
                          "kernel.unprivileged_userns_clone=1"));
    berth_error_release(&err);

    if (!root) {
        uid_t huid = userns_host_uid();
        cleanup_free char *su = NULL, *sg = NULL;
        bool u = subid_ranges("/etc/subuid", name, huid, &su);
        bool gr = subid_ranges("/etc/subgid", name, huid, &sg);
        add(r, "subuid/subgid ranges", u && gr,
            u && gr ? xasprintf("%s, %s", su, sg) : xstrdup("none"),
            xasprintf("as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
                      "%s (or add \"%s:100000:65536\" to /etc/subuid and /etc/subgid)",
                      name ? name : "USER", name ? name : "USER"));
        bool helpers =
            access("/usr/bin/newuidmap", X_OK) == 0 && access("/usr/bin/newgidmap", X_OK) == 0;
        add(r, "newuidmap/newgidmap", helpers, xstrdup(helpers ? "yes" : "missing"),
            xstrdup("apt-get install uidmap (dnf install shadow-utils); in an image: keep "
                    "them setuid root or with file capabilities cap_setuid/cap_setgid"));
    }

    struct run_probe p;
    run_isolation_probe(NULL, &p);
    add(r, "mount namespace", p.mountns, xstrdup(p.mountns ? "yes" : "no"),
        xstrdup("podman/docker run --cap-add SYS_ADMIN, or allow user namespaces"));
    add(r, "mount /proc", p.proc,
        xstrdup(p.proc ? "yes" : "no (chroot isolation binds the host's)"),
        xstrdup("podman run --security-opt unmask=ALL (or --privileged); --isolation chroot "
                "works without it"));
    add(r, "sethostname", true,
        xstrdup(p.uts ? "yes" : "no (RUN steps keep the host name: nothing to fix)"), NULL);
    const char *why;
    run_isolation_t mode = run_isolation_resolve(RUN_ISOLATION_AUTO, &p, &why);
    add(r, "RUN isolation (auto)", true,
        *why ? xasprintf("%s (%s)", run_isolation_name(mode), why)
             : xstrdup(run_isolation_name(mode)),
        NULL);

    cleanup_storage_store storage_store_t *s = NULL;
    if (cli_store_open(g, &s, &err) == 0) {
        const char *drv = storage_store_driver_name(s);
        bool overlay = strcmp(drv, "overlay") == 0;
        add(r, "storage driver", overlay, xasprintf("%s (%s)", drv, storage_store_root(s)),
            xstrdup("overlay needs mount rights: podman run --device /dev/fuse --cap-add "
                    "SYS_ADMIN, or --privileged; vfs works everywhere but copies each layer"));
    } else {
        add(r, "storage", false, xasprintf("cannot open: %s", berth_error_msg(err)),
            xstrdup("--root DIR on a writable file system"));
        berth_error_release(&err);
    }

    struct statfs sf;
    bool v2 = statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == 0x63677270;
    bool cg_w = access("/sys/fs/cgroup", W_OK) == 0 || root;
    add(r, "cgroups", cg_w || v2,
        xasprintf("%s%s", v2 ? "v2" : "v1/hybrid", cg_w ? ", writable" : ", read-only"),
        xstrdup("resource limits (-m, --cpus, --pids-limit) are skipped with a warning; a "
                "systemd user session with cgroup v2 delegation gives them to rootless users"));
    cleanup_free char *sec = status_field("Seccomp:");
    add(r, "seccomp", true, xstrdup(strcmp(sec, "0") == 0 ? "not filtered" : "filtered (mode 2)"),
        NULL);
    bool fuse = access("/dev/fuse", R_OK | W_OK) == 0;
    add(r, "/dev/fuse", fuse, xstrdup(fuse ? "yes" : "no"),
        xstrdup("podman/docker run --device /dev/fuse (for fuse-overlayfs)"));
    bool tun = access("/dev/net/tun", R_OK | W_OK) == 0;
    add(r, "/dev/net/tun", tun, xstrdup(tun ? "yes" : "no"),
        xstrdup("podman/docker run --device /dev/net/tun (rootless networking with pasta or "
                "slirp4netns)"));
}

static int cmd_info_impl(struct berth_globals *g, int argc, char **argv, bool doctor)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool json = false;
    int c;
    while ((c = cli_getopt(argc, argv, "f:h", opts, false)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "json") != 0)
                return cli_failf("--format %s: use json", optarg);
            json = true;
            break;
        case 'h':
            return cli_usage(info_usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    struct report r = {.n = 0};
    gather(g, &r);
    size_t problems = 0;
    cleanup_json json_t *j = json_object();
    for (size_t i = 0; i < r.n; i++) {
        struct check *k = &r.v[i];
        if (!k->ok)
            problems++;
        if (json) {
            json_t *o = json_pack("{s:b,s:s}", "ok", k->ok, "value", k->value);
            if (k->fix)
                json_object_set_new(o, "fix", json_string(k->fix));
            json_object_set_new(j, k->name, o);
        } else if (!doctor || !k->ok) {
            printf("%-22s %s %s\n", k->name, k->ok ? "ok  " : "MISSING", k->value);
            if (k->fix)
                printf("%-22s      fix: %s\n", "", k->fix);
        }
    }
    if (json) {
        cleanup_free char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s);
    } else if (doctor && problems == 0) {
        printf("no problems found\n");
    }
    for (size_t i = 0; i < r.n; i++) {
        free(r.v[i].value);
        free(r.v[i].fix);
    }
    return doctor && problems ? 1 : 0;
}

static int cmd_info(struct berth_globals *g, int argc, char **argv)
{
    return cmd_info_impl(g, argc, argv, false);
}

static int cmd_doctor(struct berth_globals *g, int argc, char **argv)
{
    return cmd_info_impl(g, argc, argv, true);
}

BERTH_COMMAND(info, "info", "Show what this environment allows (user namespaces, storage, ...)",
              cmd_info);
BERTH_COMMAND(system_doctor, "system doctor", "Diagnose the environment and print the fixes",
              cmd_doctor);
