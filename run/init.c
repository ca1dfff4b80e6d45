/* The container init: runs in the cloned child, inside the new namespaces.  It prepares the
 * rootfs (mounts in spec order, /dev, pivot_root, masked and read-only paths), sets hostname,
 * sysctls and then hands over to process_exec().  Every mount target is resolved inside the
 * rootfs (common/path.h) and mounted through /proc/self/fd, so a symlink in the image can never
 * redirect a mount outside the container. */
#include "run/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void child_fail(int sync_fd, int code, const char *fmt, ...)
{
    char buf[SYNC_MAX_MSG];
    int l = snprintf(buf, sizeof(buf), "%d:", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, sizeof(buf) - (size_t)l, fmt, ap);
    va_end(ap);
    if (sync_fd >= 0)
        sync_send(sync_fd, SYNC_ERROR, buf, strlen(buf), -1);
    else
        dprintf(2, "berth: %s\n", buf + l);
    _exit(code);
}

static void fail_err(struct init_ctx *c, berth_error_t *err, const char *ctx)
{
    child_fail(c->sync_fd, 1, "%s: %s", ctx, berth_error_msg(*err));
}

struct flag_def {
    const char *name;
    bool clear;
    unsigned long flag;
};
static const struct flag_def mount_flags[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"dirsync", false, MS_DIRSYNC},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"defaults", false, 0},
};
static const struct flag_def prop_flags[] = {
    {"private", false, MS_PRIVATE},       {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},         {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},           {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

/* Splits options into mount flags, propagation flags and the data string (owned). */
static void parse_options(const json_t *opts, unsigned long *flags, unsigned long *prop,
                          char **data)
{
    *flags = 0;
    *prop = 0;
    size_t dlen = 0;
    char *d = xstrdup("");
    size_t i;
    json_t *o;
    json_array_foreach(opts, i, o)
    {
        const char *s = json_string_value(o);
        if (!s)
            continue;
        bool known = false;
        for (size_t k = 0; k < sizeof(mount_flags) / sizeof(mount_flags[0]); k++) {
            if (strcmp(s, mount_flags[k].name) == 0) {
                if (mount_flags[k].clear)
                    *flags &= ~mount_flags[k].flag;
                else
                    *flags |= mount_flags[k].flag;
                known = true;
                break;
            }
        }
        for (size_t k = 0; !known && k < sizeof(prop_flags) / sizeof(prop_flags[0]); k++) {
            if (strcmp(s, prop_flags[k].name) == 0) {
                *prop |= prop_flags[k].flag;
                known = true;
            }
        }
        if (known)
            continue;
        if (strcmp(s, "tmpcopyup") == 0 || strcmp(s, "z") == 0 || strcmp(s, "Z") == 0)
            continue;
        size_t l = strlen(s);
        d = xrealloc(d, dlen + l + 2);
        if (dlen)
            d[dlen++] = ',';
        memcpy(d + dlen, s, l + 1);
        dlen += l;
    }
    *data = d;
}

/* Flags a remount must keep: in a user namespace the kernel refuses to clear locked flags. */
static unsigned long locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    if (sv.f_flag & ST_RDONLY)
        f |= MS_RDONLY;
    return f;
}

/* System mount points whose destination must not be a symlink in the image. */
static bool is_system_dest(const char *rel)
{
    static const char *const sys[] = {"proc", "dev", "sys", "dev/pts", "dev/shm", "dev/mqueue"};
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
        if (strcmp(rel, sys[i]) == 0)
            return true;
    return false;
}

/* Creates the mount point (dir, or file when the source is not a directory) inside the root
 * and returns an O_PATH fd for it.  The final component is resolved inside the root too. */
static int open_mount_target(struct init_ctx *c, int rootfd, const char *dest, bool is_dir)
{
    berth_error_t err = NULL;
    cleanup_free char *rel = path_clean_relative(dest);
    if (*rel == '\0')
        child_fail(c->sync_fd, 1, "mount destination \"%s\" is the container root", dest);
    cleanup_free char *resolved = NULL;
    if (path_resolve_in_root(rootfd, rel, true, &resolved, &err) < 0)
        fail_err(c, &err, "resolve mount destination");
    if (is_system_dest(rel) && strcmp(resolved, rel) != 0)
        child_fail(c->sync_fd, 1,
                   "mount destination \"%s\" is a symlink in the image (to \"/%s\"): refusing",
                   dest, resolved);
    int fd = path_openat_in_root(rootfd, resolved, O_PATH | O_CLOEXEC, 0, &err);
    if (fd >= 0)
        return fd;
    if (berth_error_status(err) != ENOENT)
        fail_err(c, &err, "open mount destination");
    berth_error_release(&err);
    cleanup_free char *base = NULL;
    cleanup_close int pfd = path_open_parent_in_root(rootfd, resolved, true, &base, &err);
    if (pfd < 0)
        fail_err(c, &err, "create mount destination");
    if (is_dir) {
        if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
            child_fail(c->sync_fd, 1, "mkdir mount destination \"%s\": %s", dest, strerror(errno));
    } else {
        int f = openat(pfd, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST)
            child_fail(c->sync_fd, 1, "create mount destination \"%s\": %s", dest, strerror(errno));
        if (f >= 0)
            close(f);
    }
    fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        child_fail(c->sync_fd, 1, "open mount destination \"%s\": %s", dest, strerror(errno));
    return fd;
}

/* chroot isolation: a filesystem the environment won't let us mount (devpts, mqueue, sysfs in
 * someone else's namespaces) is bound from the host's same path, or left out. */
static bool chroot_fallback(int tfd, const char *dest, int e)
{
    if (e != EPERM && e != EACCES && e != EINVAL)
        return false;
    char target[64];
    snprintf(target, sizeof(target), "/proc/self/fd/%d", tfd);
    struct stat st;
    if (dest[0] == '/' && stat(dest, &st) == 0 && S_ISDIR(st.st_mode) &&
        mount(dest, target, NULL, MS_BIND | MS_REC, NULL) == 0)
        return true;
    return true; /* left out: the directory stays as the image has it */
}

/* A filesystem mount (not a bind) on the target *tfd, with the fallbacks a user namespace or
 * chroot isolation needs; *tfd may be reopened.  Fails the child when nothing works. */
static void mount_fs(struct init_ctx *c, int rootfd, const char *dest, const char *type,
                     const char *src, unsigned long flags, char *data, int *tfd)
{
    char target[64];
    snprintf(target, sizeof(target), "/proc/self/fd/%d", *tfd);
    if (mount(src, target, type, flags & ~MS_REMOUNT, data) == 0)
        return;
    int e = errno;
    /* rootless: the devpts gid= option may name an unmapped group */
    char *g = type && strcmp(type, "devpts") == 0 ? strstr(data, "gid=") : NULL;
    if (g) {
        char *end = strchr(g, ',');
        if (end)
            memmove(g, end + 1, strlen(end + 1) + 1);
        else
            *(g > data ? g - 1 : g) = '\0';
        if (mount(src, target, type, flags, data) == 0)
            return;
    }
    if (type && strcmp(type, "sysfs") == 0 && (e == EPERM || e == EACCES) &&
        mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) == 0) {
        /* not the owner of the network namespace: the host's /sys, read-only */
        close(*tfd);
        *tfd = open_mount_target(c, rootfd, dest, true);
        snprintf(target, sizeof(target), "/proc/self/fd/%d", *tfd);
        mount(NULL, target, NULL,
              MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        return;
    }
    if (c->chroot && chroot_fallback(*tfd, dest, e))
        return;
    child_fail(c->sync_fd, 1, "mount %s on \"%s\": %s", type ? type : "?", dest, strerror(e));
}

static void do_mount(struct init_ctx *c, int rootfd, const json_t *m, bool *dev_tmpfs,
                     bool *have_pts)
{
    const char *dest = json_string_value(json_object_get(m, "destination"));
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *src = json_string_value(json_object_get(m, "source"));
    if (!dest)
        child_fail(c->sync_fd, 1, "mount without destination in config.json");
    if (!src)
        src = type ? type : "none";
    unsigned long flags, prop;
    cleanup_free char *data = NULL;
    parse_options(json_object_get(m, "options"), &flags, &prop, &data);
    bool bind = (flags & MS_BIND) || (type && strcmp(type, "bind") == 0);
    if (bind)
        flags |= MS_BIND;
    if (type && strcmp(type, "cgroup") == 0) {
        /* a cgroup mount (runc's default spec): show the host hierarchy read-only */
        src = "/sys/fs/cgroup";
        flags |= MS_BIND | MS_REC;
        bind = true;
        free(data);
        data = xstrdup("");
    }
    bool is_dir = true;
    if (bind) {
        struct stat st;
        if (stat(src, &st) < 0)
            child_fail(c->sync_fd, 1, "bind mount source \"%s\": %s", src, strerror(errno));
        is_dir = S_ISDIR(st.st_mode);
    }
    cleanup_close int tfd = open_mount_target(c, rootfd, dest, is_dir);
    char target[64];
    snprintf(target, sizeof(target), "/proc/self/fd/%d", tfd);
    if (bind) {
        if (mount(src, target, NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
            child_fail(c->sync_fd, 1, "bind mount \"%s\" on \"%s\": %s", src, dest,
                       strerror(errno));
        unsigned long want = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
        if (want) {
            /* reopen: the fd still points at the covered directory */
            close(tfd);
            tfd = open_mount_target(c, rootfd, dest, is_dir);
            snprintf(target, sizeof(target), "/proc/self/fd/%d", tfd);
            unsigned long keep = locked_flags(target) & ~MS_RDONLY;
            if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | want | keep, NULL) < 0)
                child_fail(c->sync_fd, 1, "remount \"%s\": %s", dest, strerror(errno));
        }
    } else {
        mount_fs(c, rootfd, dest, type, src, flags, data, &tfd);
        if (type && strcmp(type, "devpts") == 0)
            *have_pts = true;
    }
    if (prop) {
        close(tfd);
        tfd = open_mount_target(c, rootfd, dest, is_dir);
        snprintf(target, sizeof(target), "/proc/self/fd/%d", tfd);
        if (mount(NULL, target, NULL, prop, NULL) < 0)
            child_fail(c->sync_fd, 1, "set propagation of \"%s\": %s", dest, strerror(errno));
    }
    cleanup_free char *rel = path_clean_relative(dest);
    if (strcmp(rel, "dev") == 0 && type && strcmp(type, "tmpfs") == 0)
        *dev_tmpfs = true;
}

static const struct {
    const char *name;
    unsigned maj, min;
} dev_nodes[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

/* /dev on a tmpfs: device nodes (mknod as root, bind-mounted from the host in a user
 * namespace) and the usual symlinks. */
static void setup_dev(struct init_ctx *c, int rootfd, bool have_pts)
{
    berth_error_t err = NULL;
    cleanup_close int dfd =
        path_openat_in_root(rootfd, "dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &err);
    if (dfd < 0)
        fail_err(c, &err, "open /dev");
    bool use_bind = c->userns;
    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
        const char *n = dev_nodes[i].name;
        if (!use_bind) {
            if (mknodat(dfd, n, S_IFCHR | 0666, makedev(dev_nodes[i].maj, dev_nodes[i].min)) == 0) {
                fchmodat(dfd, n, 0666, 0);
                continue;
            }
            if (errno == EEXIST)
                continue;
            use_bind = true; /* EPERM: we are in someone's user namespace */
        }
        int f = openat(dfd, n, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (f < 0)
            child_fail(c->sync_fd, 1, "create /dev/%s: %s", n, strerror(errno));
        close(f);
        cleanup_close int tfd = openat(dfd, n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        char src[64], target[64];
        snprintf(src, sizeof(src), "/dev/%s", n);
        snprintf(target, sizeof(target), "/proc/self/fd/%d", tfd);
        if (mount(src, target, NULL, MS_BIND, NULL) < 0)
            child_fail(c->sync_fd, 1, "bind /dev/%s: %s", n, strerror(errno));
    }
    static const char *const links[][2] = {
        {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        if (symlinkat(links[i][0], dfd, links[i][1]) < 0 && errno != EEXIST)
            child_fail(c->sync_fd, 1, "symlink /dev/%s: %s", links[i][1], strerror(errno));
    if (have_pts) {
        unlinkat(dfd, "ptmx", 0);
        if (symlinkat("pts/ptmx", dfd, "ptmx") < 0)
            child_fail(c->sync_fd, 1, "symlink /dev/ptmx: %s", strerror(errno));
    }
}

static void mask_paths(struct init_ctx *c, const json_t *arr)
{
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p)
    {
        const char *path = json_string_value(p);
        struct stat st;
        if (!path || lstat(path, &st) < 0)
            continue;
        int r;
        if (S_ISDIR(st.st_mode))
            r = mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k");
        else
            r = mount("/dev/null", path, NULL, MS_BIND, NULL);
        if (r < 0 && errno != ENOENT && !c->chroot)
            child_fail(c->sync_fd, 1, "mask \"%s\": %s", path, strerror(errno));
    }
}

static void readonly_paths(struct init_ctx *c, const json_t *arr)
{
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p)
    {
        const char *path = json_string_value(p);
        if (!path)
            continue;
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT || c->chroot)
                continue;
            child_fail(c->sync_fd, 1, "bind read-only path \"%s\": %s", path, strerror(errno));
        }
        unsigned long keep = locked_flags(path);
        if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0 &&
            !c->chroot)
            child_fail(c->sync_fd, 1, "remount \"%s\" read-only: %s", path, strerror(errno));
    }
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
}

static void write_sysctls(struct init_ctx *c, const json_t *sysctl)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sysctl, k, v)
    {
        if (!json_is_string(v) || strstr(k, "..") || strchr(k, '/'))
            child_fail(c->sync_fd, 1, "invalid sysctl \"%s\"", k);
        char path[512];
        snprintf(path, sizeof(path), "/proc/sys/%s", k);
        for (char *p = path + 10; *p; p++)
            if (*p == '.')
                *p = '/';
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        const char *s = json_string_value(v);
        if (fd < 0 || write(fd, s, strlen(s)) < 0)
            child_fail(c->sync_fd, 1, "sysctl %s: %s", k, strerror(errno));
        close(fd);
    }
}

static bool has_namespace(const json_t *linux_, const char *type)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(linux_, "namespaces"), i, n)
    {
        const char *t = json_string_value(json_object_get(n, "type"));
        if (t && strcmp(t, type) == 0)
            return true;
    }
    return false;
}

/* Mounts in spec order, /dev, then pivot_root into the rootfs (chroot for chroot isolation);
 * the old root is stacked under "." and detached. */
static void enter_rootfs(struct init_ctx *c, const json_t *spec, const json_t *linux_)
{
    /* mounts: nothing we do may propagate back to the host */
    const char *prop = json_string_value(json_object_get(linux_, "rootfsPropagation"));
    unsigned long pflag = MS_SLAVE | MS_REC;
    if (prop && strcmp(prop, "private") == 0)
        pflag = MS_PRIVATE | MS_REC;
    if (mount(NULL, "/", NULL, pflag, NULL) < 0)
        child_fail(c->sync_fd, 1, "make / %s: %s", prop ? prop : "rslave", strerror(errno));
    if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_fail(c->sync_fd, 1, "bind rootfs \"%s\": %s", c->rootfs, strerror(errno));
    int rootfd = open(c->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        child_fail(c->sync_fd, 1, "open rootfs \"%s\": %s", c->rootfs, strerror(errno));

    bool dev_tmpfs = false, have_pts = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m)
        do_mount(c, rootfd, m, &dev_tmpfs, &have_pts);
    if (dev_tmpfs)
        setup_dev(c, rootfd, have_pts);

    if (fchdir(rootfd) < 0)
        child_fail(c->sync_fd, 1, "chdir rootfs: %s", strerror(errno));
    close(rootfd);
    if (c->chroot) {
        if (chroot(".") < 0)
            child_fail(c->sync_fd, 1, "chroot: %s", strerror(errno));
    } else {
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            child_fail(c->sync_fd, 1, "pivot_root: %s", strerror(errno));
        if (umount2(".", MNT_DETACH) < 0)
            child_fail(c->sync_fd, 1, "detach the old root: %s", strerror(errno));
    }
    if (chdir("/") < 0)
        child_fail(c->sync_fd, 1, "chdir /: %s", strerror(errno));
}

/* chroot isolation without a mount namespace: nothing can be mounted, the rootfs is used as it
 * is (no /proc, /dev as the image has it). */
static void chroot_only(struct init_ctx *c)
{
    if (chdir(c->rootfs) < 0 || chroot(".") < 0 || chdir("/") < 0)
        child_fail(c->sync_fd, 1, "chroot into \"%s\": %s", c->rootfs, strerror(errno));
}

void init_main(struct init_ctx *c)
{
    const json_t *spec = c->spec;
    const json_t *linux_ = json_object_get(spec, "linux");
    char tag = 0;
    char buf[64];
    int fd = -1;

    /* wait until the parent wrote our id maps and set up cgroups */
    if (sync_recv(c->sync_fd, &tag, buf, sizeof(buf), &fd) < 0 || tag != SYNC_GO)
        _exit(1);
    if (c->userns) {
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
            child_fail(c->sync_fd, 1, "become root in the user namespace: %s", strerror(errno));
    }
    for (int i = 0; c->ns_paths[i]; i++) {
        int nfd = open(c->ns_paths[i], O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, c->ns_types[i]) < 0)
            child_fail(c->sync_fd, 1, "join namespace \"%s\": %s", c->ns_paths[i], strerror(errno));
        close(nfd);
    }
    if (c->setsid_no_tty)
        setsid();

    if (c->mountns)
        enter_rootfs(c, spec, linux_);
    else
        chroot_only(c);

    /* as runc and podman: a missing working directory is created (inside the new root) */
    const char *cwd = json_string_value(json_object_get(json_object_get(spec, "process"), "cwd"));
    if (cwd && cwd[0] == '/' && access(cwd, F_OK) < 0 && errno == ENOENT) {
        char *p = xstrdup(cwd);
        for (char *q = p + 1;; q++) {
            if (*q == '/' || *q == '\0') {
                char saved = *q;
                *q = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                    child_fail(c->sync_fd, 1, "create working directory \"%s\": %s", cwd,
                               strerror(errno));
                *q = saved;
                if (saved == '\0')
                    break;
            }
        }
        free(p);
    }
    if (!c->chroot)
        write_sysctls(c, json_object_get(linux_, "sysctl"));
    if (c->mountns) {
        mask_paths(c, json_object_get(linux_, "maskedPaths"));
        readonly_paths(c, json_object_get(linux_, "readonlyPaths"));
    }
    if (json_is_true(json_object_get(json_object_get(spec, "root"), "readonly"))) {
        unsigned long keep = locked_flags("/");
        if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
            child_fail(c->sync_fd, 1, "remount / read-only: %s", strerror(errno));
    }
    const char *hostname = json_string_value(json_object_get(spec, "hostname"));
    if (hostname && *hostname && has_namespace(linux_, "uts")) {
        if (sethostname(hostname, strlen(hostname)) < 0 && !c->chroot)
            child_fail(c->sync_fd, 1, "sethostname: %s", strerror(errno));
    }
    if (has_namespace(linux_, "network"))
        loopback_up();

    process_exec(json_object_get(spec, "process"), json_object_get(linux_, "seccomp"), c->sync_fd,
                 c->fifo_fd, c->pdeath_parent);
}
