/* OCI runtime spec (config.json, runtime-spec 1.x) generation.
 *
 * spec_generate() builds a complete config.json document from an image's config (the "config"
 * object of an OCI image config: Entrypoint, Cmd, Env, WorkingDir, User) and the run options a
 * user gives on the command line (podman/docker semantics).  The result is a jansson object owned
 * by the caller; it is executed by run/runtime.h or handed to an external runtime such as runc.
 *
 * Everything read from the rootfs (/etc/passwd, /etc/group) is opened inside the rootfs with
 * common/path.h, so a symlink in the image can never make berth read a host file. */
#ifndef BERTH_RUN_SPEC_H
#define BERTH_RUN_SPEC_H

#include "common/error.h"
#include "run/isolation.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One uid/gid mapping range, as in linux.uidMappings. */
struct spec_idmap {
    uint32_t container_id, host_id, size;
};

struct spec_options {
    /* --entrypoint: when entrypoint_set, the image's Entrypoint AND Cmd are replaced; an empty
     * string clears the entrypoint. */
    bool entrypoint_set;
    const char *entrypoint;
    char **args;      /* NULL-terminated command line after the image, may be NULL/empty */
    char **env;       /* -e values: KEY=VALUE, or KEY (taken from berth's own environment) */
    char **env_files; /* --env-file paths (host files) */
    const char *workdir;
    const char *user; /* -u: name, uid, name:group, uid:gid */
    const char *hostname;
    char **volumes;             /* -v HOST:CTR[:ro|rw] */
    char **tmpfs;               /* --tmpfs CTR[:options] */
    char **cap_add, **cap_drop; /* names with or without CAP_, case-insensitive, or ALL */
    bool read_only;
    bool terminal;
    bool rootless;       /* generate a spec runnable without root: user namespace, /sys bind, ... */
    const char *network; /* "host", or anything else: a private net namespace (run/net) */
    bool no_seccomp;     /* --security-opt seccomp=unconfined */
    bool no_new_privs_off;
    /* uid/gid mappings for the user namespace (rootless); NULL = map the caller's own ids to 0 */
    const struct spec_idmap *uid_maps, *gid_maps;
    size_t n_uid_maps, n_gid_maps;
    /* resource limits (0 = unset): bytes, max pids, CPUs (e.g. 1.5) */
    int64_t memory;
    int64_t pids_limit;
    double cpus;
    const char *init_path; /* --init: host path of an init binary bind-mounted at /run/berth-init */
    /* chroot isolation (run/isolation.h): only the namespaces the probe allows, no pid
     * namespace, /proc and /sys bound read-only from the host; NULL = full isolation */
    const struct run_probe *chroot;
    /* --privileged: every capability, no seccomp, nothing masked or read-only in /proc and
     * /sys, and the host's /dev/fuse and /dev/net/tun (what nested builds need) */
    bool privileged;
    /* --security-opt seccomp=FILE: a podman/docker-format (or runtime-spec) profile */
    const char *seccomp_profile;
    /* --security-opt mask=P1:P2 / unmask=ALL|P1:P2 (colon-separated lists, may repeat) */
    char **mask, **unmask;
};

/* Builds the spec.  image_config may be NULL (no image defaults).  rootfs is the path written
 * into root.path and the directory whose /etc/passwd is consulted for -u (may be NULL to skip
 * name resolution: then only numeric users are accepted). */
BERTH_MUST_CHECK int spec_generate(const json_t *image_config, const char *rootfs,
                                   const struct spec_options *o, json_t **out, berth_error_t *err);

/* A default spec like `runc spec` (args ["sh"], terminal true, rootfs "rootfs"); with rootless
 * it maps the caller's uid/gid to 0 and binds /sys instead of mounting sysfs. */
json_t *spec_default(bool rootless);

/* Docker's Entrypoint/Cmd rules: returns the NULL-terminated argv (owned) or an error when the
 * result would be empty. */
BERTH_MUST_CHECK int spec_process_args(const json_t *image_config, const struct spec_options *o,
                                       char ***out, berth_error_t *err);

/* Image Env, then PATH default, then TERM/HOSTNAME, then env files, then -e (later wins, order
 * of first appearance kept).  Returns a NULL-terminated owned array. */
BERTH_MUST_CHECK int spec_merge_env(const json_t *image_config, const struct spec_options *o,
                                    const char *hostname, char ***out, berth_error_t *err);

/* Resolves a user spec ("name", "uid", "name:group", "uid:gid", "" = root) against the
 * /etc/passwd and /etc/group found inside rootfs_fd (-1: numeric only).  Supplementary groups
 * are the groups listing the user as member.  home gets the passwd home or "/" (owned). */
struct spec_user {
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t n_groups;
    char *home;
};
BERTH_MUST_CHECK int spec_resolve_user(int rootfs_fd, const char *user, struct spec_user *out,
                                       berth_error_t *err);
void spec_user_free(struct spec_user *u);

/* Capability set after --cap-add/--cap-drop over podman's defaults; NULL-terminated array of
 * "CAP_X" names (owned). */
BERTH_MUST_CHECK int spec_capabilities(char **cap_add, char **cap_drop, char ***out,
                                       berth_error_t *err);

/* Capability number for a name ("CAP_CHOWN", "chown"), -1 if unknown. */
int spec_cap_from_name(const char *name);
const char *spec_cap_name(int cap);
int spec_cap_last(void);

/* Reads a seccomp profile in podman's/docker's format (includes/excludes by capability and
 * architecture, archMap, defaultErrnoRet) or the runtime-spec's, as a linux.seccomp object for
 * a process with capabilities caps (NULL-terminated "CAP_X" names). */
BERTH_MUST_CHECK int spec_seccomp_load_file(const char *path, char *const *caps, json_t **out,
                                            berth_error_t *err);

/* Parses "512m", "1g", "1024" (bytes). */
BERTH_MUST_CHECK int spec_parse_size(const char *s, int64_t *out, berth_error_t *err);

/* The default seccomp profile (runtime-spec linux.seccomp object): allow by default, EPERM for
 * dangerous syscalls.  As in podman's default, mount, unshare and pivot_root are allowed (the
 * capabilities decide; nested user namespaces need them), setns only with CAP_SYS_ADMIN. */
json_t *spec_seccomp_default(bool have_sys_admin);

#endif
