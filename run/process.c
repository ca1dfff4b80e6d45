/* Applying a runtime-spec "process" in the current process and exec'ing it: rlimits, terminal,
 * cwd, seccomp, user and groups, capabilities, no_new_privs.  Shared by the container init and
 * by exec into a running container. */
#include "run/internal.h"
#include "run/spec.h"

#include "common/alloc.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
    const char *name;
    int res;
} rlimit_names[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void set_rlimits(int sync_fd, const json_t *arr)
{
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        const char *t = json_string_value(json_object_get(r, "type"));
        int res = -1;
        for (size_t k = 0; t && k < sizeof(rlimit_names) / sizeof(rlimit_names[0]); k++)
            if (strcmp(t, rlimit_names[k].name) == 0)
                res = rlimit_names[k].res;
        if (res < 0)
            child_fail(sync_fd, 1, "unknown rlimit \"%s\"", t ? t : "?");
        struct rlimit rl = {
            .rlim_cur = (rlim_t)json_integer_value(json_object_get(r, "soft")),
            .rlim_max = (rlim_t)json_integer_value(json_object_get(r, "hard")),
        };
        if (setrlimit(res, &rl) < 0)
            child_fail(sync_fd, 1, "setrlimit %s: %s", t, strerror(errno));
    }
}

static int cap_last(void)
{
    static int last = -1;
    if (last >= 0)
        return last;
    char buf[16] = {0};
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, buf, sizeof(buf) - 1) > 0)
            last = (int)strtol(buf, NULL, 10); /* a number the kernel wrote; <= 0 below */
        close(fd);
    }
    if (last <= 0)
        last = spec_cap_last();
    return last;
}

/* Capability numbers named in a spec array; unknown names fail. */
static void cap_list(int sync_fd, const json_t *arr, bool set[64])
{
    memset(set, 0, 64);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *n = json_string_value(v);
        int c = n ? spec_cap_from_name(n) : -1;
        if (c < 0)
            child_fail(sync_fd, 1, "unknown capability \"%s\"", n ? n : "?");
        set[c] = true;
    }
}

static void set_caps(int sync_fd, const json_t *caps, bool after_user)
{
    bool b[64], e[64], p[64], in[64], a[64];
    cap_list(sync_fd, json_object_get(caps, "bounding"), b);
    cap_list(sync_fd, json_object_get(caps, "effective"), e);
    cap_list(sync_fd, json_object_get(caps, "permitted"), p);
    cap_list(sync_fd, json_object_get(caps, "inheritable"), in);
    cap_list(sync_fd, json_object_get(caps, "ambient"), a);
    int last = cap_last();
    if (!after_user) {
        for (int c = 0; c <= last && c < 64; c++) {
            if (!b[c] && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                child_fail(sync_fd, 1, "drop capability %d from the bounding set: %s", c,
                           strerror(errno));
        }
        return;
    }
    /* as far as allowed: a capability we don't hold (a confined environment, chroot
     * isolation without a user namespace) can't be given, the rest still is */
    cap_t cur = cap_get_proc();
    for (int c = 0; cur && c <= last && c < 64; c++) {
        cap_flag_value_t have = CAP_CLEAR;
        if (cap_get_flag(cur, (cap_value_t)c, CAP_PERMITTED, &have) == 0 && have == CAP_CLEAR)
            e[c] = p[c] = in[c] = a[c] = false;
    }
    if (cur)
        cap_free(cur);
    cap_t ct = cap_init();
    for (int c = 0; c <= last && c < 64; c++) {
        cap_value_t v = c;
        if (e[c])
            cap_set_flag(ct, CAP_EFFECTIVE, 1, &v, CAP_SET);
        if (p[c] || e[c] || a[c])
            cap_set_flag(ct, CAP_PERMITTED, 1, &v, CAP_SET);
        if (in[c] || a[c])
            cap_set_flag(ct, CAP_INHERITABLE, 1, &v, CAP_SET);
    }
    if (cap_set_proc(ct) < 0) {
        int er = errno;
        cap_free(ct);
        child_fail(sync_fd, 1, "set capabilities: %s", strerror(er));
    }
    cap_free(ct);
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int c = 0; c <= last && c < 64; c++)
        if (a[c] && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
            child_fail(sync_fd, 1, "raise ambient capability %d: %s", c, strerror(errno));
}

static void set_user(int sync_fd, const json_t *user)
{
    uid_t uid = (uid_t)json_integer_value(json_object_get(user, "uid"));
    gid_t gid = (gid_t)json_integer_value(json_object_get(user, "gid"));
    json_t *ag = json_object_get(user, "additionalGids");
    size_t n = json_array_size(ag);
    gid_t *groups = xcalloc(n + 1, sizeof(gid_t));
    for (size_t i = 0; i < n; i++)
        groups[i] = (gid_t)json_integer_value(json_array_get(ag, i));
    if (setgroups(n, groups) < 0) {
        /* setgroups is denied in a user namespace whose gid map was written without newgidmap:
         * only fatal when the spec really asks for supplementary groups */
        if (!(errno == EPERM && n == 0))
            child_fail(sync_fd, 1, "setgroups: %s", strerror(errno));
    }
    free(groups);
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        child_fail(sync_fd, 1, "keep capabilities: %s", strerror(errno));
    if (setresgid(gid, gid, gid) < 0)
        child_fail(sync_fd, 1, "setgid %u: %s", (unsigned)gid, strerror(errno));
    if (setresuid(uid, uid, uid) < 0)
        child_fail(sync_fd, 1, "setuid %u: %s", (unsigned)uid, strerror(errno));
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

/* A spec string array as a NULL-terminated vector (owned; lives until exec). */
static int borrow_string_array(const json_t *arr, char ***out)
{
    if (arr == NULL) {
        *out = xcalloc(1, sizeof(char *));
        return 0;
    }
    if (!json_is_array(arr))
        return -1;
    size_t n = json_array_size(arr);
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s) {
            free(v);
            return -1;
        }
        v[i] = (char *)s;
    }
    *out = v;
    return 0;
}

static const char *env_lookup(char **env, const char *key)
{
    size_t l = strlen(key);
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, key, l) == 0 && (*e)[l] == '=')
            return *e + l + 1;
    return NULL;
}

/* execve with a PATH search in the container's environment (not berth's). */
__attribute__((noreturn)) static void exec_in_path(int sync_fd, char **argv, char **env)
{
    const char *cmd = argv[0];
    if (strchr(cmd, '/')) {
        execve(cmd, argv, env);
        int e = errno;
        child_fail(sync_fd, e == ENOENT ? 127 : 126, "exec \"%s\": %s", cmd, strerror(e));
    }
    const char *path = env_lookup(env, "PATH");
    if (!path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int saved = ENOENT;
    cleanup_free char *copy = xstrdup(path);
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        cleanup_free char *full = xasprintf("%s/%s", *dir ? dir : ".", cmd);
        struct stat st;
        if (stat(full, &st) < 0 || S_ISDIR(st.st_mode))
            continue;
        execve(full, argv, env);
        saved = errno;
        if (saved != EACCES && saved != ENOENT)
            break;
    }
    if (saved == ENOENT)
        child_fail(sync_fd, 127, "executable file \"%s\" not found in $PATH", cmd);
    child_fail(sync_fd, 126, "exec \"%s\": %s", cmd, strerror(saved));
}

/* The container must not outlive the process that waits for it (berth run, the -d monitor):
 * SIGKILL when that process dies.  Set last, because credential changes clear it; then check
 * the parent is still there, since it may have died before the prctl. */
static void die_with_parent(int sync_fd, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return; /* best effort (a seccomp profile may deny prctl) */
    if (parent > 0 && getppid() != parent)
        _exit(1);
    /* in a new pid namespace getppid() is 0 whoever the parent is: the parent holds the other
     * end of the sync socket until we exec, so a hangup means it is gone */
    struct pollfd pfd = {.fd = sync_fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)))
        _exit(1);
}

void process_exec(const json_t *process, const json_t *seccomp, int sync_fd, int fifo_fd,
                  pid_t pdeath_parent)
{
    berth_error_t err = NULL;
    if (!json_is_object(process))
        child_fail(sync_fd, 1, "config.json has no process");
    char **argv = NULL, **env = NULL;
    if (borrow_string_array(json_object_get(process, "args"), &argv) < 0 || !argv[0])
        child_fail(sync_fd, 1, "process.args must be a non-empty array of strings");
    if (borrow_string_array(json_object_get(process, "env"), &env) < 0)
        child_fail(sync_fd, 1, "process.env must be an array of strings");

    /* only stdio reaches the container process (as runc without --preserve-fds): whatever
     * else berth or its caller had open is closed at exec */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < 1024; fd++)
            if (fd != sync_fd)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    set_rlimits(sync_fd, json_object_get(process, "rlimits"));
    if (json_is_true(json_object_get(process, "terminal"))) {
        char ebuf[256];
        int master = tty_setup_slave(ebuf, sizeof(ebuf));
        if (master < 0)
            child_fail(sync_fd, 1, "%s", ebuf);
        if (sync_send(sync_fd, SYNC_TERMINAL, NULL, 0, master) < 0)
            child_fail(sync_fd, 1, "send the terminal: %s", strerror(errno));
        close(master);
        /* wait until the terminal has its size, so the first thing the process sees is right */
        char tag = 0, b[8];
        if (sync_recv(sync_fd, &tag, b, sizeof(b), NULL) < 0 || tag != SYNC_GO)
            child_fail(sync_fd, 1, "terminal setup was not acknowledged");
    }
    const char *cwd = json_string_value(json_object_get(process, "cwd"));
    if (cwd && chdir(cwd) < 0)
        child_fail(sync_fd, 1, "chdir to working directory \"%s\": %s", cwd, strerror(errno));

    if (fifo_fd >= 0) {
        /* create: report readiness, then block until `start` opens the fifo for reading */
        sync_send(sync_fd, SYNC_READY, NULL, 0, -1);
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fifo_fd);
        int w = open(p, O_WRONLY | O_CLOEXEC);
        if (w < 0)
            child_fail(sync_fd, 1, "open exec.fifo: %s", strerror(errno));
        if (write(w, "0", 1) != 1)
            child_fail(sync_fd, 1, "write exec.fifo: %s", strerror(errno));
        close(w);
        close(fifo_fd);
    }

    const json_t *caps = json_object_get(process, "capabilities");
    set_caps(sync_fd, caps, false);
    /* with all capabilities still held the filter can be loaded even without no_new_privs */
    if (seccomp && seccomp_load_spec(seccomp, &err) < 0)
        child_fail(sync_fd, 1, "seccomp: %s", berth_error_msg(err));
    set_user(sync_fd, json_object_get(process, "user"));
    set_caps(sync_fd, caps, true);
    if (json_is_true(json_object_get(process, "noNewPrivileges")) &&
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(sync_fd, 1, "set no_new_privs: %s", strerror(errno));
    if (pdeath_parent != 0)
        die_with_parent(sync_fd, pdeath_parent);
    exec_in_path(sync_fd, argv, env);
}
