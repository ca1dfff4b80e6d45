/* User namespace id maps for the container init: written directly when we may (root, or a
 * single mapping of our own id), otherwise with the setuid helpers newuidmap/newgidmap, which
 * check the ranges against /etc/subuid and /etc/subgid. */
#include "run/internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MAPS 64

struct map {
    unsigned long c, h, s;
};

static int parse_maps(const json_t *arr, const char *what, struct map *m, size_t *n,
                      berth_error_t *err)
{
    *n = 0;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (*n >= MAX_MAPS)
            return berth_error_make_status(err, E2BIG, "too many %s", what);
        json_t *c = json_object_get(o, "containerID"), *h = json_object_get(o, "hostID"),
               *s = json_object_get(o, "size");
        if (!json_is_integer(c) || !json_is_integer(h) || !json_is_integer(s) ||
            json_integer_value(s) <= 0)
            return berth_error_make_status(err, EINVAL, "invalid entry in linux.%s", what);
        m[*n].c = (unsigned long)json_integer_value(c);
        m[*n].h = (unsigned long)json_integer_value(h);
        m[*n].s = (unsigned long)json_integer_value(s);
        (*n)++;
    }
    return 0;
}

static int write_file(const char *path, const char *data, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    if (write(fd, data, strlen(data)) < 0)
        return berth_error_make(err, errno, "write \"%s\"", path);
    return 0;
}

static int write_direct(pid_t pid, const char *file, const struct map *m, size_t n,
                        berth_error_t *err)
{
    char buf[MAX_MAPS * 40] = "";
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off +=
            (size_t)snprintf(buf + off, sizeof(buf) - off, "%lu %lu %lu\n", m[i].c, m[i].h, m[i].s);
    cleanup_free char *path = xasprintf("/proc/%d/%s", (int)pid, file);
    return write_file(path, buf, err);
}

static int run_helper(const char *helper, pid_t pid, const struct map *m, size_t n,
                      berth_error_t *err)
{
    char **argv = xcalloc(n * 3 + 3, sizeof(char *));
    size_t a = 0;
    argv[a++] = xstrdup(helper);
    argv[a++] = xasprintf("%d", (int)pid);
    for (size_t i = 0; i < n; i++) {
        argv[a++] = xasprintf("%lu", m[i].c);
        argv[a++] = xasprintf("%lu", m[i].h);
        argv[a++] = xasprintf("%lu", m[i].s);
    }
    pid_t c = fork();
    if (c == 0) {
        execvp(helper, argv);
        dprintf(2, "berth: exec %s: %s\n", helper, strerror(errno));
        _exit(127);
    }
    for (size_t i = 0; i < a; i++)
        free(argv[i]);
    free(argv);
    if (c < 0)
        return berth_error_make(err, errno, "fork %s", helper);
    int st;
    while (waitpid(c, &st, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "wait for %s", helper);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return berth_error_make_status(err, EPERM,
                                       "%s failed (status %d): check /etc/subuid and /etc/subgid",
                                       helper, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

int idmap_write(pid_t pid, const json_t *linux_, berth_error_t *err)
{
    struct map um[MAX_MAPS], gm[MAX_MAPS];
    size_t nu, ng;
    if (parse_maps(json_object_get(linux_, "uidMappings"), "uidMappings", um, &nu, err) < 0 ||
        parse_maps(json_object_get(linux_, "gidMappings"), "gidMappings", gm, &ng, err) < 0)
        return -1;
    if (nu == 0) {
        um[0] = (struct map){0, (unsigned long)geteuid(), 1};
        nu = 1;
    }
    if (ng == 0) {
        gm[0] = (struct map){0, (unsigned long)getegid(), 1};
        ng = 1;
    }
    bool root = geteuid() == 0;
    if (root || (nu == 1 && um[0].h == geteuid() && um[0].s == 1)) {
        if (write_direct(pid, "uid_map", um, nu, err) < 0)
            return berth_error_wrap(err, "write the uid map");
    } else if (run_helper("newuidmap", pid, um, nu, err) < 0) {
        return -1;
    }
    if (root) {
        if (write_direct(pid, "gid_map", gm, ng, err) < 0)
            return berth_error_wrap(err, "write the gid map");
    } else if (ng == 1 && gm[0].h == getegid() && gm[0].s == 1) {
        /* an unprivileged process may map its own gid only after denying setgroups */
        cleanup_free char *sg = xasprintf("/proc/%d/setgroups", (int)pid);
        if (write_file(sg, "deny", err) < 0 || write_direct(pid, "gid_map", gm, ng, err) < 0)
            return berth_error_wrap(err, "write the gid map");
    } else if (run_helper("newgidmap", pid, gm, ng, err) < 0) {
        return -1;
    }
    return 0;
}
