/* Resource limits (linux.resources memory/pids/cpu) through cgroups.
 *
 * cgroup v2 is used when the unified hierarchy offers the controllers (pure v2 or hybrid with
 * controllers moved to v2); on hybrid hosts whose controllers are still bound to v1 (like a
 * stock Debian with systemd.unified_cgroup_hierarchy=0) root uses the v1 memory, pids and cpu
 * hierarchies.  Rootless users rarely own a writable cgroup: then limits are ignored with a
 * warning, as podman does on such systems.  A container without resources gets no cgroup of its
 * own (it stays in berth's), which keeps `berth run` fast. */
#include "run/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* /proc files have no size ahead; mountinfo on a host with thousands of mounts (containers,
 * snap, kubelet) runs to MiBs: a generous bound, and an error past it, never a silent cut (a cut
 * mountinfo would hide the cgroup mounts listed after the cut). */
#define MAX_PROC_FILE (64u << 20)

static int read_proc(const char *path, char **out, berth_error_t *err)
{
    return fs_read_file(path, MAX_PROC_FILE, out, NULL, err);
}

/* The file's text, or NULL when it cannot be read (optional knowledge: the caller copes). */
static char *read_optional(const char *path)
{
    char *s = NULL;
    berth_error_t e = NULL;
    if (read_proc(path, &s, &e) < 0)
        log_debug("%s", berth_error_msg(e));
    berth_error_release(&e);
    return s;
}

static int write_str(const char *dir, const char *file, const char *val, berth_error_t *err)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, file);
    cleanup_close int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, val, strlen(val)) < 0)
        return berth_error_make(err, errno, "write \"%s\" to \"%s\"", val, p);
    return 0;
}

/* Mount point of a cgroup hierarchy: cgroup2 when controller is NULL, else the v1 hierarchy
 * with that controller option. */
static int find_mount(const char *controller, char **out, berth_error_t *err)
{
    *out = NULL;
    cleanup_free char *mi = NULL;
    if (read_proc("/proc/self/mountinfo", &mi, err) < 0)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char fstype[32], src[64], opts[512];
        if (sscanf(sep + 3, "%31s %63s %511s", fstype, src, opts) != 3)
            continue;
        char *f[6];
        int n = 0;
        char *lsave = NULL;
        for (char *t = strtok_r(line, " ", &lsave); t && n < 6; t = strtok_r(NULL, " ", &lsave))
            f[n++] = t;
        if (n < 5)
            continue;
        if (controller == NULL) {
            if (strcmp(fstype, "cgroup2") == 0) {
                *out = xstrdup(f[4]);
                return 0;
            }
            continue;
        }
        if (strcmp(fstype, "cgroup") != 0)
            continue;
        char *osave = NULL;
        for (char *o = strtok_r(opts, ",", &osave); o; o = strtok_r(NULL, ",", &osave))
            if (strcmp(o, controller) == 0) {
                *out = xstrdup(f[4]);
                return 0;
            }
    }
    return 0;
}

/* Our own cgroup path in a hierarchy ("" for v2 when controller is NULL). */
static int self_path(const char *controller, char **out, berth_error_t *err)
{
    *out = NULL;
    cleanup_free char *c = NULL;
    if (read_proc("/proc/self/cgroup", &c, err) < 0)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(c, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *a = strchr(line, ':');
        char *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        const char *ctrls = a + 1;
        if (controller == NULL) {
            if (*ctrls == '\0') {
                *out = xstrdup(b + 1);
                return 0;
            }
            continue;
        }
        cleanup_free char *cp = xstrdup(ctrls);
        char *csave = NULL;
        for (char *t = strtok_r(cp, ",", &csave); t; t = strtok_r(NULL, ",", &csave))
            if (strcmp(t, controller) == 0) {
                *out = xstrdup(b + 1);
                return 0;
            }
    }
    return 0;
}

static bool has_word(const char *list, const char *w)
{
    size_t l = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p += l)
        if ((p == list || p[-1] == ' ') && (p[l] == '\0' || p[l] == ' ' || p[l] == '\n'))
            return true;
    return false;
}

static bool in_user_namespace(void)
{
    cleanup_free char *um = read_optional("/proc/self/uid_map");
    unsigned long a, b, c;
    if (!um || sscanf(um, "%lu %lu %lu", &a, &b, &c) != 3)
        return false;
    return !(a == 0 && b == 0 && c == 4294967295UL);
}

struct limits {
    int64_t memory, pids, quota, period;
};

static int try_v2(const char *id, const struct limits *l, pid_t pid, json_t *paths,
                  berth_error_t *err)
{
    cleanup_free char *mnt = NULL, *self = NULL;
    if (find_mount(NULL, &mnt, err) < 0 || self_path(NULL, &self, err) < 0)
        return -1;
    if (!mnt || !self)
        return berth_error_make_status(err, ENOENT, "no cgroup v2 hierarchy");
    cleanup_free char *parent = xasprintf("%s%s", mnt, strcmp(self, "/") == 0 ? "" : self);
    cleanup_free char *cf = xasprintf("%s/cgroup.controllers", parent);
    cleanup_free char *ctrls = read_optional(cf);
    const char *need[3] = {l->memory ? "memory" : NULL, l->pids ? "pids" : NULL,
                           l->quota ? "cpu" : NULL};
    for (int i = 0; i < 3; i++)
        if (need[i] && (!ctrls || !has_word(ctrls, need[i])))
            return berth_error_make_status(err, ENOTSUP,
                                           "cgroup v2 controller \"%s\" is not available in \"%s\"",
                                           need[i], parent);
    for (int i = 0; i < 3; i++) {
        if (!need[i])
            continue;
        cleanup_free char *v = xasprintf("+%s", need[i]);
        if (write_str(parent, "cgroup.subtree_control", v, err) < 0)
            return -1;
    }
    cleanup_free char *dir = xasprintf("%s/berth-%s", parent, id);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create cgroup \"%s\"", dir);
    char v[64];
    int r = 0;
    if (l->memory) {
        snprintf(v, sizeof(v), "%lld", (long long)l->memory);
        r |= write_str(dir, "memory.max", v, err);
    }
    if (r == 0 && l->pids) {
        snprintf(v, sizeof(v), "%lld", (long long)l->pids);
        r |= write_str(dir, "pids.max", v, err);
    }
    if (r == 0 && l->quota) {
        snprintf(v, sizeof(v), "%lld %lld", (long long)l->quota, (long long)l->period);
        r |= write_str(dir, "cpu.max", v, err);
    }
    snprintf(v, sizeof(v), "%d", (int)pid);
    if (r == 0)
        r = write_str(dir, "cgroup.procs", v, err);
    if (r < 0) {
        rmdir(dir);
        return -1;
    }
    json_array_append_new(paths, json_string(dir));
    return 0;
}

static int v1_one(const char *id, const char *ctrl, const char *files[][2], pid_t pid,
                  json_t *paths, berth_error_t *err)
{
    cleanup_free char *mnt = NULL, *self = NULL;
    if (find_mount(ctrl, &mnt, err) < 0 || self_path(ctrl, &self, err) < 0)
        return -1;
    if (!mnt || !self)
        return berth_error_make_status(err, ENOENT, "no cgroup v1 \"%s\" hierarchy", ctrl);
    cleanup_free char *dir =
        xasprintf("%s%s/berth-%s", mnt, strcmp(self, "/") == 0 ? "" : self, id);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create cgroup \"%s\"", dir);
    json_array_append_new(paths, json_string(dir));
    for (int i = 0; files[i][0]; i++)
        if (write_str(dir, files[i][0], files[i][1], err) < 0)
            return -1;
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    return write_str(dir, "cgroup.procs", v, err);
}

static int try_v1(const char *id, const struct limits *l, pid_t pid, json_t *paths,
                  berth_error_t *err)
{
    char mem[32], pids[32], quota[32], period[32];
    snprintf(mem, sizeof(mem), "%lld", (long long)l->memory);
    snprintf(pids, sizeof(pids), "%lld", (long long)l->pids);
    snprintf(quota, sizeof(quota), "%lld", (long long)l->quota);
    snprintf(period, sizeof(period), "%lld", (long long)l->period);
    if (l->memory) {
        const char *f[][2] = {{"memory.limit_in_bytes", mem}, {NULL, NULL}};
        if (v1_one(id, "memory", f, pid, paths, err) < 0)
            return -1;
    }
    if (l->pids) {
        const char *f[][2] = {{"pids.max", pids}, {NULL, NULL}};
        if (v1_one(id, "pids", f, pid, paths, err) < 0)
            return -1;
    }
    if (l->quota) {
        const char *f[][2] = {
            {"cpu.cfs_period_us", period}, {"cpu.cfs_quota_us", quota}, {NULL, NULL}};
        if (v1_one(id, "cpu", f, pid, paths, err) < 0)
            return -1;
    }
    return 0;
}

int cgroup_setup(const char *id, const json_t *resources, pid_t pid, json_t **out,
                 berth_error_t *err)
{
    *out = NULL;
    struct limits l = {0};
    l.memory = json_integer_value(json_object_get(json_object_get(resources, "memory"), "limit"));
    l.pids = json_integer_value(json_object_get(json_object_get(resources, "pids"), "limit"));
    json_t *cpu = json_object_get(resources, "cpu");
    l.quota = json_integer_value(json_object_get(cpu, "quota"));
    l.period = json_integer_value(json_object_get(cpu, "period"));
    if (l.quota > 0 && l.period <= 0)
        l.period = 100000;
    if (l.memory <= 0 && l.pids <= 0 && l.quota <= 0)
        return 0;
    if (l.memory < 0)
        l.memory = 0;
    if (l.pids < 0)
        l.pids = 0;
    if (l.quota < 0)
        l.quota = 0;
    json_t *paths = json_array();
    berth_error_t e2 = NULL;
    if (try_v2(id, &l, pid, paths, &e2) == 0) {
        *out = json_pack("{s:s,s:o}", "version", "v2", "paths", paths);
        return 0;
    }
    log_debug("cgroup v2 limits unavailable: %s", berth_error_msg(e2));
    json_t *v1paths = json_array();
    berth_error_t e1 = NULL;
    if (try_v1(id, &l, pid, v1paths, &e1) == 0) {
        berth_error_release(&e2);
        json_decref(paths);
        *out = json_pack("{s:s,s:o}", "version", "v1", "paths", v1paths);
        return 0;
    }
    json_t *tmp = json_pack("{s:o}", "paths", v1paths);
    cgroup_destroy(tmp);
    json_decref(tmp);
    json_decref(paths);
    if (geteuid() != 0 || in_user_namespace()) {
        log_warn("resource limits (--memory/--pids-limit/--cpus) are ignored: no writable "
                 "cgroup for rootless containers on this system (%s; %s)",
                 berth_error_msg(e2), berth_error_msg(e1));
        berth_error_release(&e1);
        berth_error_release(&e2);
        return 0;
    }
    berth_error_release(&e2);
    *err = e1;
    return berth_error_wrap(err, "apply resource limits");
}

int cgroup_enter(const json_t *cg, pid_t pid, berth_error_t *err)
{
    size_t i;
    json_t *p;
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    json_array_foreach(json_object_get(cg, "paths"), i, p)
    {
        const char *dir = json_string_value(p);
        if (dir && write_str(dir, "cgroup.procs", v, err) < 0)
            return -1;
    }
    return 0;
}

void cgroup_destroy(const json_t *cg)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(cg, "paths"), i, p)
    {
        const char *dir = json_string_value(p);
        if (!dir)
            continue;
        for (int t = 0; t < 50; t++) {
            if (rmdir(dir) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY)
                break;
            usleep(10000);
        }
    }
}
