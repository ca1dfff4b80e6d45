/* Isolation modes and the environment probe (see isolation.h). */
#include "run/isolation.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "storage/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define CACHE_FILE    "isolation-probe"
#define CACHE_VERSION 1

static const char *const names[] = {"auto", "oci", "rootless", "chroot"};

int run_isolation_parse(const char *s, run_isolation_t *out, berth_error_t *err)
{
    if (!s || !*s) {
        *out = RUN_ISOLATION_AUTO;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (run_isolation_t)i;
            return 0;
        }
    return berth_error_make_status(
        err, EINVAL, "unknown isolation \"%s\": use auto, oci, rootless or chroot", s);
}

const char *run_isolation_name(run_isolation_t i)
{
    return (size_t)i < sizeof(names) / sizeof(names[0]) ? names[i] : "?";
}

/* ---- the probe: runs in a child, reports one line on a pipe ---- */

enum {
    P_USERNS = 1,
    P_MOUNTNS = 2,
    P_PROC = 4,
    P_UTS = 8,
    P_NET = 16,
};

static void report(int fd, unsigned bits, const char *why)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%u %s", bits, why ? why : "");
    if (n > 0 && write(fd, line, (size_t)n) < 0)
        _exit(2);
    _exit(0);
}

/* In the grandchild: pid 1 of a new pid namespace mounts a fresh proc. */
static int probe_proc(char *why, size_t cap)
{
    if (unshare(CLONE_NEWPID) < 0) {
        snprintf(why, cap, "create a pid namespace: %s", strerror(errno));
        return -1;
    }
    pid_t p = fork();
    if (p < 0) {
        snprintf(why, cap, "fork: %s", strerror(errno));
        return -1;
    }
    if (p == 0)
        _exit(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0 ? 0
                                                                                          : errno);
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    int e = WIFEXITED(st) ? WEXITSTATUS(st) : EIO;
    if (e) {
        snprintf(why, cap, "mount proc: %s", strerror(e));
        return -1;
    }
    return 0;
}

static void probe_child(bool need_userns, int fd)
{
    unsigned bits = 0;
    char why[192] = "";
    if (need_userns) {
        if (unshare(CLONE_NEWUSER) < 0) {
            snprintf(why, sizeof(why), "create a user namespace: %s", strerror(errno));
            report(fd, bits, why);
        }
        bits |= P_USERNS;
    }
    if (unshare(CLONE_NEWUTS) == 0) {
        if (sethostname("berth-probe", 11) == 0)
            bits |= P_UTS;
        else
            snprintf(why, sizeof(why), "sethostname: %s", strerror(errno));
    } else {
        snprintf(why, sizeof(why), "create a uts namespace: %s", strerror(errno));
    }
    if (unshare(CLONE_NEWNET) == 0)
        bits |= P_NET;
    else if (!*why)
        snprintf(why, sizeof(why), "create a network namespace: %s", strerror(errno));
    if (unshare(CLONE_NEWNS) < 0) {
        snprintf(why, sizeof(why), "create a mount namespace: %s", strerror(errno));
        report(fd, bits, why);
    }
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
        snprintf(why, sizeof(why), "make / rslave: %s", strerror(errno));
        report(fd, bits, why);
    }
    bits |= P_MOUNTNS;
    char pwhy[192] = "";
    if (probe_proc(pwhy, sizeof(pwhy)) == 0)
        bits |= P_PROC;
    else
        snprintf(why, sizeof(why), "%s", pwhy);
    report(fd, bits, why);
}

static void probe_now(struct run_probe *out)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(out->why, sizeof(out->why), "pipe: %s", strerror(errno));
        return;
    }
    fflush(stderr);
    pid_t c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        snprintf(out->why, sizeof(out->why), "fork: %s", strerror(errno));
        return;
    }
    if (c == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        probe_child(out->need_userns, p[1]);
    }
    close(p[1]);
    char buf[256];
    ssize_t n;
    size_t len = 0;
    while (len < sizeof(buf) - 1 &&
           ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    int st;
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    char *end;
    unsigned long bits = strtoul(buf, &end, 10);
    if (end == buf) {
        snprintf(out->why, sizeof(out->why), "the probe failed");
        return;
    }
    out->userns = bits & P_USERNS;
    out->mountns = bits & P_MOUNTNS;
    out->proc = bits & P_PROC;
    out->uts = bits & P_UTS;
    out->net = bits & P_NET;
    snprintf(out->why, sizeof(out->why), "%s", *end == ' ' ? end + 1 : end);
}

/* ---- the cache ---- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Everything that decides the probe's outcome, hashed. */
static uint64_t environment_key(bool need_userns)
{
    uint64_t h = 1469598103934665603ULL;
    struct utsname u;
    if (uname(&u) == 0)
        h = fnv1a(h, u.release);
    char ids[64];
    snprintf(ids, sizeof(ids), "v%d %d %u", CACHE_VERSION, need_userns, (unsigned)geteuid());
    h = fnv1a(h, ids);
    static const char *const files[] = {"/proc/self/uid_map", "/proc/self/gid_map",
                                        "/proc/sys/user/max_user_namespaces"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cleanup_free char *d = NULL;
        if (fs_read_file(files[i], 64 * 1024, &d, NULL, NULL) == 0)
            h = fnv1a(h, d);
    }
    cleanup_free char *status = NULL;
    if (fs_read_file("/proc/self/status", 64 * 1024, &status, NULL, NULL) == 0) {
        static const char *const keys[] = {
            "CapBnd:", "Seccomp:", "Seccomp_filters:", "NoNewPrivs:"};
        for (char *line = status; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (strncmp(line, keys[i], strlen(keys[i])) == 0)
                    h = fnv1a(h, line);
            line = nl ? nl + 1 : NULL;
        }
    }
    return h;
}

static bool cache_read(const char *path, uint64_t key, struct run_probe *out)
{
    cleanup_free char *d = NULL;
    if (fs_read_file(path, 4096, &d, NULL, NULL) < 0)
        return false;
    unsigned long long k = 0;
    unsigned bits = 0;
    int off = 0;
    if (sscanf(d, "%llx %u %n", &k, &bits, &off) < 2 || k != key)
        return false;
    out->userns = bits & P_USERNS;
    out->mountns = bits & P_MOUNTNS;
    out->proc = bits & P_PROC;
    out->uts = bits & P_UTS;
    out->net = bits & P_NET;
    char *why = d + off;
    why[strcspn(why, "\n")] = '\0';
    snprintf(out->why, sizeof(out->why), "%s", why);
    return true;
}

static void cache_write(const char *dir, const char *path, uint64_t key, const struct run_probe *p)
{
    unsigned bits = (p->userns ? P_USERNS : 0) | (p->mountns ? P_MOUNTNS : 0) |
                    (p->proc ? P_PROC : 0) | (p->uts ? P_UTS : 0) | (p->net ? P_NET : 0);
    cleanup_free char *s = xasprintf("%llx %u %s\n", (unsigned long long)key, bits, p->why);
    berth_error_t e = NULL;
    if (fs_mkdir_p(dir, 0700, &e) < 0 ||
        fs_write_file_atomic(path, s, strlen(s), 0600, &e) < 0) /* a cache: best effort */
        berth_error_release(&e);
}

void run_isolation_probe(const char *cache_dir, struct run_probe *out)
{
    memset(out, 0, sizeof(*out));
    out->need_userns = userns_is_rootless();
    uint64_t key = environment_key(out->need_userns);
    cleanup_free char *path = cache_dir ? xasprintf("%s/%s", cache_dir, CACHE_FILE) : NULL;
    if (path && cache_read(path, key, out))
        return;
    probe_now(out);
    if (path)
        cache_write(cache_dir, path, key, out);
}

run_isolation_t run_isolation_resolve(run_isolation_t requested, const struct run_probe *p,
                                      const char **why)
{
    *why = "";
    run_isolation_t full = p->need_userns ? RUN_ISOLATION_ROOTLESS : RUN_ISOLATION_OCI;
    switch (requested) {
    case RUN_ISOLATION_OCI:
    case RUN_ISOLATION_ROOTLESS:
        return full;
    case RUN_ISOLATION_CHROOT:
        return RUN_ISOLATION_CHROOT;
    default:
        break;
    }
    if ((!p->need_userns || p->userns) && p->mountns && p->proc && p->uts)
        return full;
    *why = p->why[0] ? p->why : "the probe failed";
    return RUN_ISOLATION_CHROOT;
}
