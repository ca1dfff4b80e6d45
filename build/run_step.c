/* RUN: executes a command in a mounted working layer through the run core (run/).
 *
 * Rootless: berth already runs inside its user namespace (uid 0 there, the user's subordinate ids
 * mapped); the RUN container gets a nested user namespace with the identity mapping of ours, so
 * the process sees the same ids and files it creates keep the ownership it gives them. */
#include "build/build_internal.h"

#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/path.h"
#include "run/isolation.h"
#include "run/runtime.h"
#include "run/spec.h"
#include "storage/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Paths (relative to the rootfs) created only to serve as mount targets, removed after the
 * RUN so they don't end up in the layer. */
struct created {
    char *v[64];
    size_t n;
};

/* Records the components of path that don't exist yet (shallowest first). */
static void note_missing(int root_fd, const char *path, struct created *c)
{
    cleanup_free char *rel = path_clean_relative(path);
    char *p = rel;
    while (*p && c->n < 64) {
        char *sl = strchr(p, '/');
        size_t len = sl ? (size_t)(sl - rel) : strlen(rel);
        cleanup_free char *prefix = xstrndup(rel, len);
        berth_error_t e = NULL;
        int fd = path_openat_in_root(root_fd, prefix, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, &e);
        berth_error_release(&e);
        if (fd < 0) {
            c->v[c->n++] = xstrdup(prefix);
            if (!sl)
                break;
        } else {
            close(fd);
        }
        if (!sl)
            break;
        p = sl + 1;
    }
}

static void remove_created(int root_fd, struct created *c)
{
    for (size_t i = c->n; i-- > 0;) {
        berth_error_t e = NULL;
        cleanup_free char *base = NULL;
        int pfd = path_open_parent_in_root(root_fd, c->v[i], false, &base, &e);
        berth_error_release(&e);
        if (pfd >= 0) {
            struct stat st;
            if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(st.st_mode))
                    unlinkat(pfd, base, AT_REMOVEDIR);
                else if (S_ISREG(st.st_mode) && st.st_size == 0)
                    unlinkat(pfd, base, 0);
            }
            close(pfd);
        }
        free(c->v[i]);
    }
    c->n = 0;
}

static int mkdir_in_root(int root_fd, const char *path, berth_error_t *err)
{
    cleanup_free char *rel = path_clean_relative(path);
    if (!*rel)
        return 0;
    cleanup_free char *base = NULL;
    cleanup_close int pfd = path_open_parent_in_root(root_fd, rel, true, &base, err);
    if (pfd < 0)
        return -1;
    if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "mkdir \"%s\"", path);
    return 0;
}

/* RUN steps get no `container=` variable of their own (buildah sets none there; `berth run`
 * keeps podman's): only one that the build's environment sets stays. */
static void drop_container_env(json_t *spec, char *const *env)
{
    for (char *const *e = env; e && *e; e++)
        if (strncmp(*e, "container=", 10) == 0)
            return;
    json_t *penv = json_object_get(json_object_get(spec, "process"), "env");
    for (size_t i = json_array_size(penv); i-- > 0;) {
        const char *v = json_string_value(json_array_get(penv, i));
        if (v && strncmp(v, "container=", 10) == 0)
            json_array_remove(penv, i);
    }
}

/* --isolation (or auto: the probe's choice, said once per process on stderr when it is not
 * full isolation). */
static int choose_isolation(const struct bld_run *r, run_isolation_t *mode, struct run_probe *p,
                            berth_error_t *err)
{
    static bool said;
    run_isolation_t req;
    if (run_isolation_parse(r->isolation, &req, err) < 0)
        return -1;
    run_isolation_probe(r->runroot, p);
    const char *why;
    *mode = run_isolation_resolve(req, p, &why);
    if (req == RUN_ISOLATION_AUTO && *mode == RUN_ISOLATION_CHROOT && !said) {
        said = true;
        log_warn("RUN steps use --isolation chroot (%s)", why);
    }
    return 0;
}

int bld_run(const char *rootfs, const struct bld_run *r, int *status, berth_error_t *err)
{
    cleanup_close int root_fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", rootfs);
    if (r->workdir && mkdir_in_root(root_fd, r->workdir, err) < 0)
        return berth_error_wrap(err, "create the working directory");

    run_isolation_t mode;
    struct run_probe probe;
    if (choose_isolation(r, &mode, &probe, err) < 0)
        return -1;
    bool chroot = mode == RUN_ISOLATION_CHROOT;
    if (chroot && !probe.mountns && r->mounts && json_array_size(r->mounts))
        return berth_error_make_status(err, EPERM,
                                       "RUN --mount needs a mount namespace, which this "
                                       "environment does not allow (%s)",
                                       probe.why);
    bool rootless = userns_is_rootless();
    struct spec_idmap um[USERNS_MAX_RANGES], gm[USERNS_MAX_RANGES];
    size_t nu = 0, ng = 0;
    if (rootless && geteuid() == 0) {
        struct userns_mapping m;
        if (userns_current_mapping(&m, err) < 0)
            return -1;
        for (size_t i = 0; i < m.n_uids; i++)
            um[nu++] =
                (struct spec_idmap){m.uids[i].container, m.uids[i].container, m.uids[i].size};
        for (size_t i = 0; i < m.n_gids; i++)
            gm[ng++] =
                (struct spec_idmap){m.gids[i].container, m.gids[i].container, m.gids[i].size};
    }
    struct spec_options so = {
        .args = r->argv,
        .env = r->env,
        .workdir = r->workdir,
        .user = r->user,
        .hostname = r->hostname ? r->hostname : "berth-build",
        .rootless = rootless,
        .network = r->network,
        .terminal = r->terminal,
        .uid_maps = nu ? um : NULL,
        .gid_maps = ng ? gm : NULL,
        .n_uid_maps = nu,
        .n_gid_maps = ng,
        .chroot = chroot ? &probe : NULL,
    };
    cleanup_json json_t *spec = NULL;
    if (spec_generate(NULL, rootfs, &so, &spec, err) < 0)
        return berth_error_wrap(err, "generate the RUN spec");
    drop_container_env(spec, r->env);
    json_t *mounts = json_object_get(spec, "mounts");
    if (json_is_array(mounts) && r->network && strcmp(r->network, "host") == 0) {
        /* name resolution as on the host, without writing into the layer */
        static const char *const files[] = {"/etc/resolv.conf", "/etc/hosts"};
        for (size_t i = 0; i < 2; i++) {
            struct stat st;
            if (stat(files[i], &st) < 0)
                continue;
            berth_error_t e2 = NULL;
            int fd =
                path_openat_in_root(root_fd, files[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, &e2);
            berth_error_release(&e2);
            if (fd < 0)
                continue;
            close(fd);
            json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:[s,s]}", "destination",
                                                    files[i], "type", "bind", "source", files[i],
                                                    "options", "rbind", "ro"));
        }
    }
    struct created made = {.n = 0};
    if (json_is_array(mounts) && r->mounts) {
        size_t i;
        json_t *m;
        json_array_foreach(r->mounts, i, m)
        {
            /* targets must exist: create directories (files for file binds) in the rootfs */
            const char *dst = json_string_value(json_object_get(m, "destination"));
            const char *src = json_string_value(json_object_get(m, "source"));
            struct stat st;
            bool file = src && stat(src, &st) == 0 && !S_ISDIR(st.st_mode) &&
                        strcmp(json_string_value(json_object_get(m, "type")), "bind") == 0;
            /* build -v targets stay in the image (buildah keeps them), --mount ones do not */
            bool keep = json_is_true(json_object_get(m, "berth-keep-target"));
            if (dst && !keep)
                note_missing(root_fd, dst, &made);
            if (dst && !file && mkdir_in_root(root_fd, dst, err) < 0) {
                remove_created(root_fd, &made);
                return berth_error_wrap(err, "RUN --mount target \"%s\"", dst);
            }
            if (dst && file) {
                cleanup_free char *rel = path_clean_relative(dst);
                cleanup_free char *dir = xstrdup(rel);
                char *sl = strrchr(dir, '/');
                if (sl) {
                    *sl = 0;
                    if (mkdir_in_root(root_fd, dir, err) < 0) {
                        remove_created(root_fd, &made);
                        return -1;
                    }
                }
                cleanup_free char *base = NULL;
                cleanup_close int pfd = path_open_parent_in_root(root_fd, rel, true, &base, err);
                if (pfd < 0) {
                    remove_created(root_fd, &made);
                    return -1;
                }
                int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd >= 0)
                    close(fd);
            }
            json_t *mc = json_copy(m);
            json_object_del(mc, "berth-keep-target");
            json_array_append_new(mounts, mc);
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    cleanup_free char *id = xasprintf("berth-build-%d-%ld", (int)getpid(), (long)ts.tv_nsec);
    cleanup_free char *rtroot = runtime_default_root();
    struct runtime_create_opts ro = {
        .root = rtroot,
        .id = id,
        .bundle = rootfs,
        .spec = spec,
        .no_state = true,
        .chroot = chroot,
    };
    fflush(stdout);
    fflush(stderr);
    /* build -q: keep standard output for the image id alone */
    int saved = -1;
    if (r->stdout_to_stderr) {
        saved = fcntl(1, F_DUPFD_CLOEXEC, 3);
        if (saved >= 0)
            dup2(2, 1);
    }
    int rc = runtime_run(&ro, status, err);
    if (saved >= 0) {
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
    }
    remove_created(root_fd, &made);
    if (rc < 0)
        return berth_error_wrap(err, "run (isolation %s%s)", run_isolation_name(mode),
                                chroot ? "" : "; --isolation chroot needs less of the environment");
    return 0;
}
