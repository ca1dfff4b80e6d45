/* Entering a user namespace for rootless operation (see userns.h). */
#include "storage/userns.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENV_UID "BERTH_ROOTLESS_UID"

static int parse_subid(const char *file, const char *name, uid_t id, struct userns_range *out,
                       size_t *n, uint32_t next_container)
{
    cleanup_free char *data = NULL;
    if (fs_read_file(file, 1024 * 1024, &data, NULL, NULL) < 0)
        return 0;
    char idstr[32];
    snprintf(idstr, sizeof(idstr), "%u", (unsigned)id);
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        if (!c1)
            continue;
        *c1 = '\0';
        if (!((name && strcmp(line, name) == 0) || strcmp(line, idstr) == 0))
            continue;
        char *end;
        unsigned long start = strtoul(c1 + 1, &end, 10);
        if (*end != ':')
            continue;
        unsigned long count = strtoul(end + 1, &end, 10);
        if (count == 0 || *n >= USERNS_MAX_RANGES)
            continue;
        out[*n] = (struct userns_range){next_container, (uint32_t)start, (uint32_t)count};
        next_container += (uint32_t)count;
        (*n)++;
    }
    return 0;
}

int userns_get_mapping(const char *name, uid_t uid, gid_t gid, struct userns_mapping *out,
                       berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    struct passwd *pw = name ? NULL : getpwuid(uid);
    if (pw)
        name = pw->pw_name;
    out->uids[0] = (struct userns_range){0, uid, 1};
    out->gids[0] = (struct userns_range){0, gid, 1};
    out->n_uids = out->n_gids = 1;
    parse_subid("/etc/subuid", name, uid, out->uids, &out->n_uids, 1);
    parse_subid("/etc/subgid", name, uid, out->gids, &out->n_gids, 1);
    out->single_id = out->n_uids == 1 || out->n_gids == 1;
    if (out->single_id)
        out->n_uids = out->n_gids = 1;
    return 0;
}

static int read_map(const char *path, struct userns_range *r, size_t *n, berth_error_t *err)
{
    cleanup_free char *data = NULL;
    if (fs_read_file(path, 64 * 1024, &data, NULL, err) < 0)
        return -1;
    *n = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line && *n < USERNS_MAX_RANGES;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned a, b, c;
        if (sscanf(line, "%u %u %u", &a, &b, &c) == 3)
            r[(*n)++] = (struct userns_range){a, b, c};
    }
    return 0;
}

int userns_current_mapping(struct userns_mapping *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (read_map("/proc/self/uid_map", out->uids, &out->n_uids, err) < 0 ||
        read_map("/proc/self/gid_map", out->gids, &out->n_gids, err) < 0)
        return -1;
    out->single_id = out->n_uids == 1 && out->uids[0].size == 1;
    return 0;
}

bool userns_in_namespace(void)
{
    struct userns_mapping m;
    berth_error_t err = NULL;
    if (userns_current_mapping(&m, &err) < 0) {
        berth_error_release(&err);
        return false;
    }
    return !(m.n_uids == 1 && m.uids[0].container == 0 && m.uids[0].host == 0 &&
             m.uids[0].size == 4294967295u);
}

bool userns_is_rootless(void)
{
    return geteuid() != 0 || userns_in_namespace();
}

uid_t userns_host_uid(void)
{
    if (geteuid() != 0)
        return geteuid();
    const char *e = getenv(ENV_UID);
    if (e && *e)
        return (uid_t)strtoul(e, NULL, 10);
    struct userns_mapping m;
    berth_error_t err = NULL;
    if (userns_current_mapping(&m, &err) == 0) {
        for (size_t i = 0; i < m.n_uids; i++)
            if (m.uids[i].container == 0)
                return m.uids[i].host;
    }
    berth_error_release(&err);
    return 0;
}

static int write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, strlen(data));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(data) ? 0 : -1;
}

static int run_helper(const char *prog, pid_t pid, const struct userns_range *r, size_t n)
{
    char *argv[3 + 3 * USERNS_MAX_RANGES + 1];
    char bufs[1 + 3 * USERNS_MAX_RANGES][16];
    size_t a = 0;
    argv[a++] = (char *)prog;
    snprintf(bufs[0], 16, "%d", (int)pid);
    argv[a++] = bufs[0];
    for (size_t i = 0; i < n; i++) {
        snprintf(bufs[1 + 3 * i], 16, "%u", r[i].container);
        snprintf(bufs[2 + 3 * i], 16, "%u", r[i].host);
        snprintf(bufs[3 + 3 * i], 16, "%u", r[i].size);
        argv[a++] = bufs[1 + 3 * i];
        argv[a++] = bufs[2 + 3 * i];
        argv[a++] = bufs[3 + 3 * i];
    }
    argv[a] = NULL;
    pid_t c = fork();
    if (c < 0)
        return -1;
    if (c == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execvp(prog, argv);
        _exit(127);
    }
    int st;
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int userns_ensure(berth_error_t *err)
{
    if (geteuid() == 0)
        return 0;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    struct passwd *pw = getpwuid(uid);
    struct userns_mapping m;
    if (userns_get_mapping(pw ? pw->pw_name : NULL, uid, gid, &m, err) < 0)
        return -1;

    /* The helper waits until we have unshared, then writes our maps with newuidmap/newgidmap. */
    int to_child[2], to_parent[2];
    if (!m.single_id && (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(to_parent, O_CLOEXEC) < 0))
        return berth_error_make(err, errno, "pipe");
    pid_t parent = getpid();
    pid_t helper = -1;
    if (!m.single_id) {
        helper = fork();
        if (helper < 0)
            return berth_error_make(err, errno, "fork");
        if (helper == 0) {
            close(to_child[1]);
            close(to_parent[0]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            char c;
            if (read(to_child[0], &c, 1) != 1)
                _exit(1);
            int ok = run_helper("newuidmap", parent, m.uids, m.n_uids) == 0 &&
                     run_helper("newgidmap", parent, m.gids, m.n_gids) == 0;
            c = ok ? 'y' : 'n';
            if (write(to_parent[1], &c, 1) != 1)
                _exit(1);
            _exit(0);
        }
        close(to_child[0]);
        close(to_parent[1]);
    }
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
        int e = errno;
        if (helper > 0) {
            close(to_child[1]);
            close(to_parent[0]);
            waitpid(helper, NULL, 0);
        }
        return berth_error_make(err, e,
                                "create a user namespace (are unprivileged user namespaces "
                                "enabled?)");
    }
    bool mapped = false;
    if (helper > 0) {
        char c = 'x';
        if (write(to_child[1], &c, 1) == 1 && read(to_parent[0], &c, 1) == 1 && c == 'y')
            mapped = true;
        close(to_child[1]);
        close(to_parent[0]);
        waitpid(helper, NULL, 0);
        if (!mapped)
            log_warn("newuidmap/newgidmap failed: falling back to a single-id user namespace");
    }
    if (!mapped) {
        /* no ranges at all: said once per store by the caller (cmd/store_open.c) */
        char buf[64];
        snprintf(buf, sizeof(buf), "0 %u 1\n", (unsigned)uid);
        if (write_file("/proc/self/setgroups", "deny") < 0 ||
            write_file("/proc/self/uid_map", buf) < 0)
            return berth_error_make(err, errno, "write uid_map");
        snprintf(buf, sizeof(buf), "0 %u 1\n", (unsigned)gid);
        if (write_file("/proc/self/gid_map", buf) < 0)
            return berth_error_make(err, errno, "write gid_map");
    }
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return berth_error_make(err, errno, "become root in the user namespace");
    if (mapped)
        setgroups(0, NULL);
    char ubuf[32];
    snprintf(ubuf, sizeof(ubuf), "%u", (unsigned)uid);
    setenv(ENV_UID, ubuf, 1);
    /* keep our mounts to ourselves */
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        log_debug("make / a slave mount: %s", strerror(errno));
    return 0;
}
