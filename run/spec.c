/* OCI runtime spec generation: see spec.h. */
#include "run/spec.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/path.h"
#include "common/strutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PATH  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ETC_FILE  (4u << 20) /* /etc/passwd, /etc/group, env files */
#define MAX_USER_NAME 256

static const char *const cap_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
#define N_CAPS ((int)(sizeof(cap_names) / sizeof(cap_names[0])))

/* podman's default capability set (containers.conf default_capabilities) */
static const char *const default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE",     "CAP_FOWNER",     "CAP_FSETID",
    "CAP_KILL",    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP",    "CAP_SETGID",
    "CAP_SETPCAP", "CAP_SETUID",           "CAP_SYS_CHROOT",
};

static const char *const masked_paths[] = {
    "/proc/acpi",       "/proc/kcore",       "/proc/keys",        "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware",    "/sys/fs/selinux",   "/sys/dev/block",
};
static const char *const readonly_paths[] = {
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* Syscalls refused with EPERM by the default profile, modelled on the docker/podman default
 * profile's intent: kernel modules, kexec, keyrings, clock and swap changes, accounting, raw
 * handle access, BPF and perf. */
static const char *const seccomp_denied[] = {
    "acct",          "add_key",        "bpf",          "clock_adjtime",     "clock_settime",
    "create_module", "delete_module",  "finit_module", "get_kernel_syms",   "init_module",
    "ioperm",        "iopl",           "kcmp",         "kexec_file_load",   "kexec_load",
    "keyctl",        "lookup_dcookie", "nfsservctl",   "open_by_handle_at", "perf_event_open",
    "query_module",  "quotactl",       "reboot",       "request_key",       "settimeofday",
    "stime",         "swapoff",        "swapon",       "_sysctl",           "syslog",
    "uselib",        "userfaultfd",    "vhangup",
};
/* Refused unless CAP_SYS_ADMIN was granted.  mount, unshare and friends are not here: podman's
 * default allows them, so that berth and buildah can make nested (user) namespaces in a
 * container; without CAP_SYS_ADMIN in a namespace of its own the kernel refuses them anyway. */
static const char *const seccomp_denied_no_admin[] = {
    "setns",
};

int spec_cap_last(void)
{
    return N_CAPS - 1;
}

const char *spec_cap_name(int cap)
{
    return cap >= 0 && cap < N_CAPS ? cap_names[cap] : NULL;
}

int spec_cap_from_name(const char *name)
{
    const char *n = name;
    if (strncasecmp(n, "CAP_", 4) == 0)
        n += 4;
    for (int i = 0; i < N_CAPS; i++)
        if (strcasecmp(cap_names[i] + 4, n) == 0)
            return i;
    return -1;
}

/* ---- args ---- */

static int json_strings(const json_t *arr, char ***s)
{
    size_t i;
    json_t *e;
    if (!json_is_array(arr))
        return 0;
    json_array_foreach(arr, i, e)
    {
        if (!json_is_string(e))
            return -1;
        strv_add_take(s, xstrdup(json_string_value(e)));
    }
    return 0;
}

int spec_process_args(const json_t *image_config, const struct spec_options *o, char ***out,
                      berth_error_t *err)
{
    char **s = NULL;
    if (o->entrypoint_set) {
        if (o->entrypoint && *o->entrypoint)
            strv_add_take(&s, xstrdup(o->entrypoint));
    } else if (image_config) {
        if (json_strings(json_object_get(image_config, "Entrypoint"), &s) < 0)
            goto bad;
    }
    if (o->args && o->args[0]) {
        for (char **a = o->args; *a; a++)
            strv_add_take(&s, xstrdup(*a));
    } else if (!o->entrypoint_set && image_config) {
        if (json_strings(json_object_get(image_config, "Cmd"), &s) < 0)
            goto bad;
    }
    if (s == NULL) {
        return berth_error_make_status(err, EINVAL,
                                       "no command specified: the image has no Entrypoint or Cmd "
                                       "and no command was given");
    }
    *out = strv_or_empty(s);
    return 0;
bad:
    strv_free(s);
    return berth_error_make_status(err, EINVAL,
                                   "image config: Entrypoint/Cmd is not an array "
                                   "of strings");
}

/* ---- env ---- */

static void env_set(char ***s, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; *s && (*s)[i]; i++) {
        if (strncmp((*s)[i], kv, klen) == 0 && (*s)[i][klen] == '=') {
            free((*s)[i]);
            (*s)[i] = xstrdup(kv);
            return;
        }
    }
    strv_add_take(s, xstrdup(kv));
}

static bool env_has(char *const *s, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; s && s[i]; i++)
        if (strncmp(s[i], key, klen) == 0 && s[i][klen] == '=')
            return true;
    return false;
}

/* "KEY=VALUE" as given, "KEY" from berth's environment (skipped when unset). */
static int env_add_user(char ***s, const char *item, const char *what, berth_error_t *err)
{
    if (item[0] == '=' || item[0] == '\0')
        return berth_error_make_status(err, EINVAL, "%s: invalid environment variable \"%s\"", what,
                                       item);
    if (strchr(item, '=')) {
        env_set(s, item);
        return 0;
    }
    const char *v = getenv(item);
    if (v) {
        cleanup_free char *kv = xasprintf("%s=%s", item, v);
        env_set(s, kv);
    }
    return 0;
}

static int env_file_load(char ***s, const char *path, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open env file \"%s\"", path);
    cleanup_free char *data = NULL;
    if (fs_read_fd(fd, MAX_ETC_FILE, path, &data, NULL, err) < 0)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*line))
            line++;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        if (env_add_user(s, line, path, err) < 0)
            return -1;
    }
    return 0;
}

int spec_merge_env(const json_t *image_config, const struct spec_options *o, const char *hostname,
                   char ***out, berth_error_t *err)
{
    char **s = NULL;
    json_t *ienv = image_config ? json_object_get(image_config, "Env") : NULL;
    size_t i;
    json_t *e;
    if (json_is_array(ienv)) {
        json_array_foreach(ienv, i, e)
        {
            if (json_is_string(e) && strchr(json_string_value(e), '='))
                env_set(&s, json_string_value(e));
        }
    }
    if (!env_has(s, "PATH"))
        env_set(&s, "PATH=" DEFAULT_PATH);
    if (o->terminal && !env_has(s, "TERM"))
        env_set(&s, "TERM=xterm");
    env_set(&s, "container=berth");
    if (hostname && *hostname) {
        cleanup_free char *h = xasprintf("HOSTNAME=%s", hostname);
        env_set(&s, h);
    }
    for (char **f = o->env_files; f && *f; f++)
        if (env_file_load(&s, *f, err) < 0)
            goto fail;
    for (char **v = o->env; v && *v; v++)
        if (env_add_user(&s, *v, "-e", err) < 0)
            goto fail;
    *out = strv_or_empty(s);
    return 0;
fail:
    strv_free(s);
    return -1;
}

/* ---- users ---- */

void spec_user_free(struct spec_user *u)
{
    free(u->groups);
    free(u->home);
    u->groups = NULL;
    u->home = NULL;
}

static bool parse_id(const char *s, uint32_t *out)
{
    if (*s == '\0' || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT32_MAX - 1)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Reads /etc/<name> inside the rootfs; a missing file yields "" (no entries). */
static int read_etc(int rootfs_fd, const char *name, char **out, berth_error_t *err)
{
    *out = NULL;
    if (rootfs_fd < 0) {
        *out = xstrdup("");
        return 0;
    }
    cleanup_free char *rel = xasprintf("/etc/%s", name);
    berth_error_t e2 = NULL;
    /* O_NONBLOCK: a FIFO (or a device) planted there must not block the open; it is refused by
     * the fstat below.  Symlinks resolve inside the rootfs only. */
    cleanup_close int fd =
        path_openat_in_root(rootfs_fd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0, &e2);
    if (fd < 0) {
        if (berth_error_status(e2) == ENOENT) {
            berth_error_release(&e2);
            *out = xstrdup("");
            return 0;
        }
        *err = e2;
        return berth_error_wrap(err, "read the image's /etc/%s", name);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat the image's /etc/%s", name);
    if (!S_ISREG(st.st_mode))
        return berth_error_make_status(err, EINVAL, "the image's /etc/%s is not a regular file",
                                       name);
    return fs_read_fd(fd, MAX_ETC_FILE, rel, out, NULL, err);
}

/* Splits a colon-separated line into at most max fields (in place). */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == ':') {
            *p = '\0';
            f[n++] = p + 1;
        }
    }
    return n;
}

struct pwent {
    bool found;
    char name[MAX_USER_NAME];
    uint32_t uid, gid;
    char *home;
};

static void passwd_lookup(char *data, const char *name, bool by_uid, uint32_t uid, struct pwent *pw)
{
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        if (split_fields(line, f, 7) < 7)
            continue;
        uint32_t u, g;
        if (!parse_id(f[2], &u) || !parse_id(f[3], &g))
            continue;
        if (by_uid ? u != uid : strcmp(f[0], name) != 0)
            continue;
        pw->found = true;
        snprintf(pw->name, sizeof(pw->name), "%s", f[0]);
        pw->uid = u;
        pw->gid = g;
        pw->home = xstrdup(f[5]);
        return;
    }
}

/* Looks up group `group` (name or numeric) and collects the groups listing `member`. */
static int group_scan(char *data, const char *group, bool *group_found, uint32_t *gid,
                      const char *member, gid_t **groups, size_t *n_groups)
{
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        if (split_fields(line, f, 4) < 4)
            continue;
        uint32_t g;
        if (!parse_id(f[2], &g))
            continue;
        if (group && !*group_found && strcmp(f[0], group) == 0) {
            *group_found = true;
            *gid = g;
        }
        if (member && *member) {
            char *msave = NULL;
            for (char *m = strtok_r(f[3], ",", &msave); m; m = strtok_r(NULL, ",", &msave)) {
                if (strcmp(m, member) == 0) {
                    *groups = xreallocarray(*groups, *n_groups + 1, sizeof(gid_t));
                    (*groups)[(*n_groups)++] = g;
                    break;
                }
            }
        }
    }
    return 0;
}

int spec_resolve_user(int rootfs_fd, const char *user, struct spec_user *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (user == NULL || *user == '\0')
        user = "0";
    if (strlen(user) >= MAX_USER_NAME * 2)
        return berth_error_make_status(err, EINVAL, "user \"%.40s...\" is too long", user);
    cleanup_free char *u = xstrdup(user);
    char *g = strchr(u, ':');
    if (g)
        *g++ = '\0';
    if (*u == '\0')
        return berth_error_make_status(err, EINVAL, "invalid user \"%s\"", user);

    cleanup_free char *passwd = NULL;
    if (read_etc(rootfs_fd, "passwd", &passwd, err) < 0)
        return -1;
    uint32_t uid = 0;
    bool numeric = parse_id(u, &uid);
    if (!numeric && rootfs_fd < 0)
        return berth_error_make_status(
            err, EINVAL, "user \"%s\" is not numeric and no rootfs to resolve it", user);
    struct pwent pw = {0};
    passwd_lookup(passwd, u, numeric, uid, &pw);
    if (!numeric && !pw.found) {
        free(pw.home);
        return berth_error_make_status(
            err, ENOENT, "unable to find user %s: no matching entries in passwd file", u);
    }
    out->uid = pw.found ? pw.uid : uid;
    out->gid = pw.found ? pw.gid : 0;
    out->home = pw.home ? pw.home : xstrdup("/");
    if (*out->home == '\0') {
        free(out->home);
        out->home = xstrdup("/");
    }

    cleanup_free char *group = NULL;
    if (read_etc(rootfs_fd, "group", &group, err) < 0) {
        spec_user_free(out);
        return -1;
    }
    uint32_t gid = 0;
    bool gnumeric = g && parse_id(g, &gid);
    bool gfound = false;
    group_scan(group, (g && !gnumeric) ? g : NULL, &gfound, &gid, pw.found ? pw.name : NULL,
               &out->groups, &out->n_groups);
    if (g) {
        if (*g == '\0' || (!gnumeric && !gfound)) {
            spec_user_free(out);
            return berth_error_make_status(
                err, ENOENT, "unable to find group %s: no matching entries in group file", g);
        }
        out->gid = gid;
    }
    return 0;
}

/* ---- capabilities ---- */

int spec_capabilities(char **cap_add, char **cap_drop, char ***out, berth_error_t *err)
{
    bool set[64] = {0};
    for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
        set[spec_cap_from_name(default_caps[i])] = true;
    /* as podman: drops apply first, then adds, so "--cap-drop ALL --cap-add X" keeps only X */
    for (char **d = cap_drop; d && *d; d++) {
        if (strcasecmp(*d, "ALL") == 0) {
            memset(set, 0, sizeof(set));
            continue;
        }
        int c = spec_cap_from_name(*d);
        if (c < 0)
            return berth_error_make_status(err, EINVAL, "unknown capability \"%s\"", *d);
        set[c] = false;
    }
    for (char **a = cap_add; a && *a; a++) {
        if (strcasecmp(*a, "ALL") == 0) {
            for (int i = 0; i < N_CAPS; i++)
                set[i] = true;
            continue;
        }
        int c = spec_cap_from_name(*a);
        if (c < 0)
            return berth_error_make_status(err, EINVAL, "unknown capability \"%s\"", *a);
        set[c] = true;
    }
    char **s = NULL;
    for (int i = 0; i < N_CAPS; i++)
        if (set[i])
            strv_add_take(&s, xstrdup(cap_names[i]));
    *out = strv_or_empty(s);
    return 0;
}

/* ---- sizes ---- */

int spec_parse_size(const char *s, int64_t *out, berth_error_t *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return berth_error_make_status(err, EINVAL, "invalid size \"%s\"", s);
    double mul = 1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'b':
        break;
    case 'k':
        mul = 1024.0;
        break;
    case 'm':
        mul = 1024.0 * 1024;
        break;
    case 'g':
        mul = 1024.0 * 1024 * 1024;
        break;
    default:
        return berth_error_make_status(err, EINVAL, "invalid size \"%s\"", s);
    }
    if (*end && end[1] && !(tolower((unsigned char)end[1]) == 'b' && end[2] == '\0'))
        return berth_error_make_status(err, EINVAL, "invalid size \"%s\"", s);
    if (v * mul > 9.0e18)
        return berth_error_make_status(err, ERANGE, "size \"%s\" is too large", s);
    *out = (int64_t)(v * mul);
    return 0;
}

/* ---- json building ---- */

static json_t *jstrv(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *jmount(const char *dst, const char *type, const char *src, const char *const *opts,
                      size_t nopts)
{
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(dst));
    json_object_set_new(m, "type", json_string(type));
    json_object_set_new(m, "source", json_string(src));
    if (nopts)
        json_object_set_new(m, "options", jstrv(opts, nopts));
    return m;
}
#define JMOUNT(dst, type, src, ...)                                                                \
    jmount(dst, type, src, (const char *const[]){__VA_ARGS__},                                     \
           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static json_t *default_mounts(bool rootless, bool private_net)
{
    json_t *a = json_array();
    json_array_append_new(a, JMOUNT("/proc", "proc", "proc", "nosuid", "noexec", "nodev"));
    json_array_append_new(
        a, JMOUNT("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"));
    if (rootless)
        json_array_append_new(a, JMOUNT("/dev/pts", "devpts", "devpts", "nosuid", "noexec",
                                        "newinstance", "ptmxmode=0666", "mode=0620"));
    else
        json_array_append_new(a, JMOUNT("/dev/pts", "devpts", "devpts", "nosuid", "noexec",
                                        "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"));
    json_array_append_new(a, JMOUNT("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev",
                                    "mode=1777", "size=65536k"));
    json_array_append_new(a,
                          JMOUNT("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"));
    /* sysfs can only be mounted by the owner of the network namespace: rootless or with the
     * host's network, bind the host's /sys read-only instead (as runc spec --rootless does) */
    if (rootless || !private_net)
        json_array_append_new(
            a, JMOUNT("/sys", "none", "/sys", "rbind", "nosuid", "noexec", "nodev", "ro"));
    else
        json_array_append_new(a,
                              JMOUNT("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"));
    return a;
}

/* Removes path from a JSON array of strings. */
static void jstrv_remove(json_t *a, const char *path)
{
    for (size_t i = json_array_size(a); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(a, i)), path) == 0)
            json_array_remove(a, i);
}

/* --privileged and --security-opt mask=/unmask=: colon-separated lists, unmask=ALL. */
static void apply_masks(const struct spec_options *o, json_t *masked, json_t *ro)
{
    if (o->privileged) {
        json_array_clear(masked);
        json_array_clear(ro);
    }
    for (char **u = o->unmask; u && *u; u++) {
        cleanup_free char *l = xstrdup(*u);
        char *save = NULL;
        for (char *p = strtok_r(l, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            if (strcmp(p, "ALL") == 0) {
                json_array_clear(masked);
                json_array_clear(ro);
            } else {
                jstrv_remove(masked, p);
                jstrv_remove(ro, p);
            }
        }
    }
    for (char **m = o->mask; m && *m; m++) {
        cleanup_free char *l = xstrdup(*m);
        char *save = NULL;
        for (char *p = strtok_r(l, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            jstrv_remove(masked, p);
            json_array_append_new(masked, json_string(p));
        }
    }
}

static bool has_cap(char *const *caps, const char *name)
{
    if (!name)
        return false;
    for (char *const *c = caps; c && *c; c++)
        if (strcmp(*c, name) == 0)
            return true;
    return false;
}

/* A rule's includes/excludes (podman/docker format): does it apply to this process? */
static bool arch_listed(const json_t *arr, const char *arch)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strcmp(s, arch) == 0)
            return true;
    }
    return false;
}

static bool any_cap(const json_t *arr, char *const *caps, bool want_all)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        bool have = has_cap(caps, json_string_value(v));
        if (want_all && !have)
            return false;
        if (!want_all && have)
            return true;
    }
    return want_all;
}

/* A rule's includes/excludes (podman/docker format): does it apply to this process? */
static bool rule_applies(const json_t *rule, char *const *caps, const char *arch)
{
    const json_t *inc = json_object_get(rule, "includes"), *exc = json_object_get(rule, "excludes");
    if (!any_cap(json_object_get(inc, "caps"), caps, true) ||
        any_cap(json_object_get(exc, "caps"), caps, false))
        return false;
    const json_t *arches = json_object_get(inc, "arches");
    if (json_array_size(arches) && !arch_listed(arches, arch))
        return false;
    return !arch_listed(json_object_get(exc, "arches"), arch);
}

int spec_seccomp_load_file(const char *path, char *const *caps, json_t **out, berth_error_t *err)
{
    cleanup_json json_t *p = NULL;
    if (json_load_file_bounded(path, 4u << 20, &p, err) < 0)
        return berth_error_wrap(err, "seccomp profile");
    if (!json_is_string(json_object_get(p, "defaultAction")))
        return berth_error_make_status(err, EINVAL, "seccomp profile \"%s\": no defaultAction",
                                       path);
#if defined(__x86_64__)
    const char *arch = "amd64", *scmp_arch = "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
    const char *arch = "arm64", *scmp_arch = "SCMP_ARCH_AARCH64";
#else
    const char *arch = "", *scmp_arch = "";
#endif
    json_t *sc = json_object();
    json_object_set(sc, "defaultAction", json_object_get(p, "defaultAction"));
    json_t *der = json_object_get(p, "defaultErrnoRet");
    if (!der)
        der = json_object_get(p, "errnoRet");
    if (json_is_integer(der))
        json_object_set(sc, "errnoRet", der);
    json_t *archs = json_array();
    size_t i, j;
    json_t *v, *m;
    json_array_foreach(json_object_get(p, "archMap"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "architecture")) ?: "", scmp_arch) != 0)
            continue;
        json_array_append(archs, json_object_get(m, "architecture"));
        json_array_foreach(json_object_get(m, "subArchitectures"), j, v)
            json_array_append(archs, v);
    }
    json_array_foreach(json_object_get(p, "architectures"), i, v) json_array_append(archs, v);
    json_object_set_new(sc, "architectures", archs);
    json_t *rules = json_array();
    json_array_foreach(json_object_get(p, "syscalls"), i, v)
    {
        if (!rule_applies(v, caps, arch))
            continue;
        json_t *r = json_deep_copy(v);
        json_object_del(r, "includes");
        json_object_del(r, "excludes");
        json_array_append_new(rules, r);
    }
    json_object_set_new(sc, "syscalls", rules);
    *out = sc;
    return 0;
}

/* Every range of our own user namespace mapped to itself (a nested namespace with our ids). */
static json_t *identity_maps(const char *file)
{
    json_t *a = json_array();
    cleanup_free char *d = NULL;
    if (fs_read_file(file, 64 * 1024, &d, NULL, NULL) < 0)
        return a;
    for (char *line = d; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        unsigned long c, h, n;
        if (sscanf(line, "%lu %lu %lu", &c, &h, &n) == 3)
            json_array_append_new(a, json_pack("{s:I,s:I,s:I}", "containerID", (json_int_t)c,
                                               "hostID", (json_int_t)c, "size", (json_int_t)n));
        line = nl ? nl + 1 : NULL;
    }
    return a;
}

/* chroot isolation: the host's /proc and /sys read-only (a new proc needs a pid namespace of
 * our own), the rest as usual; no mounts at all without a mount namespace. */
static json_t *chroot_mounts(bool rootless, const struct run_probe *p)
{
    if (!p->mountns)
        return json_array();
    json_t *a = default_mounts(rootless, false);
    json_array_set_new(
        a, 0, JMOUNT("/proc", "bind", "/proc", "rbind", "nosuid", "noexec", "nodev", "ro"));
    return a;
}

static json_t *idmaps_json(const struct spec_idmap *m, size_t n, uint32_t self)
{
    json_t *a = json_array();
    if (m == NULL || n == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "containerID", json_integer(0));
        json_object_set_new(o, "hostID", json_integer(self));
        json_object_set_new(o, "size", json_integer(1));
        json_array_append_new(a, o);
        return a;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "containerID", json_integer(m[i].container_id));
        json_object_set_new(o, "hostID", json_integer(m[i].host_id));
        json_object_set_new(o, "size", json_integer(m[i].size));
        json_array_append_new(a, o);
    }
    return a;
}

json_t *spec_seccomp_default(bool have_sys_admin)
{
    json_t *s = json_object();
    json_object_set_new(s, "defaultAction", json_string("SCMP_ACT_ALLOW"));
    json_t *names = jstrv(seccomp_denied, sizeof(seccomp_denied) / sizeof(seccomp_denied[0]));
    if (!have_sys_admin)
        for (size_t i = 0; i < sizeof(seccomp_denied_no_admin) / sizeof(char *); i++)
            json_array_append_new(names, json_string(seccomp_denied_no_admin[i]));
    json_t *rule = json_object();
    json_object_set_new(rule, "names", names);
    json_object_set_new(rule, "action", json_string("SCMP_ACT_ERRNO"));
    json_object_set_new(rule, "errnoRet", json_integer(EPERM));
    json_t *rules = json_array();
    json_array_append_new(rules, rule);
    json_object_set_new(s, "syscalls", rules);
    return s;
}

static json_t *namespaces_json(bool user, bool net, const struct run_probe *chroot)
{
    const char *types[] = {"pid", "ipc", "uts", "mount", "network", "user"};
    /* chroot: no pid namespace (the host's /proc is bound), the rest as far as allowed */
    bool skip[6] = {chroot != NULL,
                    chroot && !chroot->mountns,
                    chroot && !chroot->uts,
                    chroot && !chroot->mountns,
                    !net || (chroot && !chroot->net),
                    !user || (chroot && !chroot->userns)};
    json_t *a = json_array();
    for (size_t i = 0; i < 6; i++) {
        if (skip[i])
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(types[i]));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *rlimits_json(bool rootless)
{
    struct rlimit rl;
    uint64_t nofile = 1048576;
    /* never above what we hold: raising needs CAP_SYS_RESOURCE, which a rootless user (or a
     * confined root) lacks */
    (void)rootless;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < nofile)
        nofile = rl.rlim_max;
    json_t *a = json_array();
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("RLIMIT_NOFILE"));
    json_object_set_new(o, "hard", json_integer((json_int_t)nofile));
    json_object_set_new(o, "soft", json_integer((json_int_t)nofile));
    json_array_append_new(a, o);
    return a;
}

/* Validates "/abs/path" mount destinations (cleaned later, inside the rootfs, by the runtime). */
static int check_dest(const char *d, const char *what, berth_error_t *err)
{
    if (d[0] != '/')
        return berth_error_make_status(err, EINVAL, "%s: container path \"%s\" is not absolute",
                                       what, d);
    return 0;
}

static int add_volume(json_t *mounts, const char *spec, berth_error_t *err)
{
    cleanup_free char *s = xstrdup(spec);
    char *parts[3] = {0};
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(s, ":", &save); p && n < 3; p = strtok_r(NULL, ":", &save))
        parts[n++] = p;
    if (n < 2 || strtok_r(NULL, ":", &save))
        return berth_error_make_status(err, EINVAL, "invalid volume \"%s\": use HOST:CTR[:ro]",
                                       spec);
    if (parts[0][0] != '/')
        return berth_error_make_status(
            err, EINVAL,
            "invalid volume \"%s\": named volumes are not supported, use an absolute "
            "host path",
            spec);
    if (check_dest(parts[1], "volume", err) < 0)
        return -1;
    struct stat st;
    if (stat(parts[0], &st) < 0)
        return berth_error_make(err, errno, "volume source \"%s\"", parts[0]);
    json_t *opts = json_array();
    json_array_append_new(opts, json_string("rbind"));
    bool ro = false;
    if (n == 3) {
        char *osave = NULL;
        for (char *o = strtok_r(parts[2], ",", &osave); o; o = strtok_r(NULL, ",", &osave)) {
            if (strcmp(o, "ro") == 0)
                ro = true;
            else if (strcmp(o, "rw") == 0)
                ro = false;
            else if (strcmp(o, "z") == 0 || strcmp(o, "Z") == 0)
                continue; /* SELinux relabel: not applicable */
            else if (strcmp(o, "nosuid") == 0 || strcmp(o, "nodev") == 0 ||
                     strcmp(o, "noexec") == 0 || strcmp(o, "rprivate") == 0 ||
                     strcmp(o, "private") == 0 || strcmp(o, "rslave") == 0 ||
                     strcmp(o, "slave") == 0 || strcmp(o, "rshared") == 0 ||
                     strcmp(o, "shared") == 0)
                json_array_append_new(opts, json_string(o));
            else {
                json_decref(opts);
                return berth_error_make_status(err, EINVAL,
                                               "invalid volume option \"%s\" in \"%s\"", o, spec);
            }
        }
    }
    json_array_append_new(opts, json_string(ro ? "ro" : "rw"));
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(parts[1]));
    json_object_set_new(m, "type", json_string("bind"));
    json_object_set_new(m, "source", json_string(parts[0]));
    json_object_set_new(m, "options", opts);
    json_array_append_new(mounts, m);
    return 0;
}

static int add_tmpfs(json_t *mounts, const char *spec, berth_error_t *err)
{
    cleanup_free char *s = xstrdup(spec);
    char *opts = strchr(s, ':');
    if (opts)
        *opts++ = '\0';
    if (check_dest(s, "--tmpfs", err) < 0)
        return -1;
    json_t *o = json_array();
    const char *defs[] = {"rw", "noexec", "nosuid", "nodev"};
    for (size_t i = 0; i < 4; i++)
        json_array_append_new(o, json_string(defs[i]));
    if (opts) {
        char *save = NULL;
        for (char *p = strtok_r(opts, ",", &save); p; p = strtok_r(NULL, ",", &save))
            json_array_append_new(o, json_string(p));
    }
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(s));
    json_object_set_new(m, "type", json_string("tmpfs"));
    json_object_set_new(m, "source", json_string("tmpfs"));
    json_object_set_new(m, "options", o);
    json_array_append_new(mounts, m);
    return 0;
}

/* Drops default mounts that a user mount replaces (same destination). */
static void drop_mount(json_t *mounts, const char *dst)
{
    for (size_t i = 0; i < json_array_size(mounts);) {
        const char *d =
            json_string_value(json_object_get(json_array_get(mounts, i), "destination"));
        if (d && strcmp(d, dst) == 0)
            json_array_remove(mounts, i);
        else
            i++;
    }
}

int spec_generate(const json_t *image_config, const char *rootfs, const struct spec_options *o,
                  json_t **out, berth_error_t *err)
{
    cleanup_strv char **args = NULL;
    cleanup_strv char **env = NULL;
    cleanup_strv char **caps = NULL;
    cleanup_close int rootfs_fd = -1;
    bool private_net = !(o->network && strcmp(o->network, "host") == 0);
    /* every mode but host has a network namespace of its own; run/net validates the modes and
     * connects the namespace */

    const char *hostname = o->hostname;
    if (spec_process_args(image_config, o, &args, err) < 0)
        return -1;
    if (spec_merge_env(image_config, o, private_net ? hostname : NULL, &env, err) < 0)
        return -1;
    char *all[] = {"ALL", NULL};
    if (spec_capabilities(o->privileged ? all : o->cap_add, o->cap_drop, &caps, err) < 0)
        return -1;

    const char *user = o->user;
    if ((user == NULL || *user == '\0') && image_config)
        user = json_string_value(json_object_get(image_config, "User"));
    if (rootfs) {
        rootfs_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfs_fd < 0)
            return berth_error_make(err, errno, "open rootfs \"%s\"", rootfs);
    }
    struct spec_user pu;
    if (spec_resolve_user(rootfs_fd, user, &pu, err) < 0)
        return -1;

    const char *cwd = o->workdir;
    if ((cwd == NULL || *cwd == '\0') && image_config)
        cwd = json_string_value(json_object_get(image_config, "WorkingDir"));
    if (cwd == NULL || *cwd == '\0')
        cwd = "/";
    if (cwd[0] != '/') {
        spec_user_free(&pu);
        return berth_error_make_status(err, EINVAL, "working directory \"%s\" is not absolute",
                                       cwd);
    }

    /* HOME from passwd unless the image or the user set it */
    bool has_home = false;
    for (char **e = env; *e; e++)
        if (strncmp(*e, "HOME=", 5) == 0)
            has_home = true;
    if (!has_home) {
        size_t n = strv_len(env);
        env = xreallocarray(env, n + 2, sizeof(char *));
        env[n] = xasprintf("HOME=%s", pu.home);
        env[n + 1] = NULL;
    }

    json_t *spec = json_object();
    json_object_set_new(spec, "ociVersion", json_string("1.0.2"));

    json_t *proc = json_object();
    json_object_set_new(proc, "terminal", json_boolean(o->terminal));
    json_t *ju = json_object();
    json_object_set_new(ju, "uid", json_integer(pu.uid));
    json_object_set_new(ju, "gid", json_integer(pu.gid));
    if (pu.n_groups) {
        json_t *ag = json_array();
        for (size_t i = 0; i < pu.n_groups; i++)
            json_array_append_new(ag, json_integer(pu.groups[i]));
        json_object_set_new(ju, "additionalGids", ag);
    }
    json_object_set_new(proc, "user", ju);
    json_object_set_new(proc, "args", jstrv((const char *const *)args, strv_len(args)));
    json_object_set_new(proc, "env", jstrv((const char *const *)env, strv_len(env)));
    json_object_set_new(proc, "cwd", json_string(cwd));
    json_t *jc = json_object();
    size_t ncaps = strv_len(caps);
    json_object_set_new(jc, "bounding", jstrv((const char *const *)caps, ncaps));
    /* as docker/podman: a non-root user starts with no effective capabilities */
    size_t neff = pu.uid == 0 ? ncaps : 0;
    json_object_set_new(jc, "effective", jstrv((const char *const *)caps, neff));
    json_object_set_new(jc, "permitted", jstrv((const char *const *)caps, neff));
    json_object_set_new(proc, "capabilities", jc);
    json_object_set_new(proc, "rlimits", rlimits_json(o->rootless));
    json_object_set_new(proc, "noNewPrivileges", json_boolean(!o->no_new_privs_off));
    json_object_set_new(spec, "process", proc);

    json_t *root = json_object();
    json_object_set_new(root, "path", json_string(rootfs ? rootfs : "rootfs"));
    json_object_set_new(root, "readonly", json_boolean(o->read_only));
    json_object_set_new(spec, "root", root);
    if (private_net && (!o->chroot || o->chroot->uts))
        json_object_set_new(spec, "hostname",
                            json_string(hostname && *hostname ? hostname : "berth"));

    if (o->chroot && !o->chroot->mountns &&
        ((o->tmpfs && *o->tmpfs) || (o->volumes && *o->volumes) || o->init_path)) {
        json_decref(spec);
        spec_user_free(&pu);
        return berth_error_make_status(err, EPERM,
                                       "volumes, tmpfs and --init need a mount namespace, which "
                                       "this environment does not allow (%s)",
                                       o->chroot->why);
    }
    json_t *mounts = o->chroot ? chroot_mounts(o->rootless, o->chroot)
                               : default_mounts(o->rootless, private_net);
    for (char **t = o->tmpfs; t && *t; t++) {
        if (add_tmpfs(mounts, *t, err) < 0)
            goto fail;
    }
    for (char **v = o->volumes; v && *v; v++) {
        if (add_volume(mounts, *v, err) < 0)
            goto fail;
    }
    /* a later mount on the same destination replaces an earlier default one */
    for (size_t i = 0; i < json_array_size(mounts); i++) {
        const char *d =
            json_string_value(json_object_get(json_array_get(mounts, i), "destination"));
        for (size_t j = 0; j < i; j++) {
            const char *dj =
                json_string_value(json_object_get(json_array_get(mounts, j), "destination"));
            if (d && dj && strcmp(d, dj) == 0) {
                json_array_remove(mounts, j);
                i--;
                break;
            }
        }
    }
    if (o->read_only) {
        /* as podman's --read-only-tmpfs default: scratch space stays writable */
        const char *scratch[] = {"/tmp", "/var/tmp", "/run"};
        for (size_t i = 0; i < 3; i++) {
            bool taken = false;
            for (size_t j = 0; j < json_array_size(mounts); j++) {
                const char *d =
                    json_string_value(json_object_get(json_array_get(mounts, j), "destination"));
                if (d && strcmp(d, scratch[i]) == 0)
                    taken = true;
            }
            if (!taken)
                json_array_append_new(mounts, JMOUNT(scratch[i], "tmpfs", "tmpfs", "rw", "nosuid",
                                                     "nodev", "mode=1777"));
        }
    }
    if (o->init_path) {
        drop_mount(mounts, "/run/berth-init");
        json_array_append_new(mounts,
                              JMOUNT("/run/berth-init", "bind", o->init_path, "bind", "ro"));
        json_t *a = json_object_get(proc, "args");
        json_array_insert_new(a, 0, json_string("--"));
        json_array_insert_new(a, 0, json_string("/run/berth-init"));
    }
    if (o->privileged) {
        static const char *const devs[] = {"/dev/fuse", "/dev/net/tun"};
        for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
            if (access(devs[i], F_OK) == 0)
                json_array_append_new(mounts, JMOUNT(devs[i], "bind", devs[i], "bind"));
    }
    json_object_set_new(spec, "mounts", mounts);
    if (o->chroot)
        json_object_set_new(spec, "annotations",
                            json_pack("{s:s}", RUN_ISOLATION_ANNOTATION, "chroot"));

    json_t *linux_ = json_object();
    /* chroot isolation where berth runs in someone else's user namespace (a rootless podman
     * container, no CAP_SYS_ADMIN): a nested one with the same ids gives the mount rights */
    bool chroot_userns = o->chroot && o->chroot->need_userns && o->chroot->userns;
    bool userns = (o->rootless && (!o->chroot || o->chroot->userns)) || chroot_userns;
    json_object_set_new(linux_, "namespaces", namespaces_json(userns, private_net, o->chroot));
    if (userns && !o->uid_maps && chroot_userns && geteuid() == 0) {
        json_object_set_new(linux_, "uidMappings", identity_maps("/proc/self/uid_map"));
        json_object_set_new(linux_, "gidMappings", identity_maps("/proc/self/gid_map"));
    } else if (userns) {
        json_object_set_new(linux_, "uidMappings",
                            idmaps_json(o->uid_maps, o->n_uid_maps, (uint32_t)geteuid()));
        json_object_set_new(linux_, "gidMappings",
                            idmaps_json(o->gid_maps, o->n_gid_maps, (uint32_t)getegid()));
    }
    json_t *masked = jstrv(masked_paths, sizeof(masked_paths) / sizeof(masked_paths[0]));
    json_t *ro = jstrv(readonly_paths, sizeof(readonly_paths) / sizeof(readonly_paths[0]));
    apply_masks(o, masked, ro);
    json_object_set_new(linux_, "maskedPaths", masked);
    json_object_set_new(linux_, "readonlyPaths", ro);
    if (o->seccomp_profile && !o->no_seccomp && !o->privileged) {
        json_t *sc = NULL;
        if (spec_seccomp_load_file(o->seccomp_profile, caps, &sc, err) < 0) {
            json_decref(linux_);
            spec_user_free(&pu);
            json_decref(spec);
            return -1;
        }
        json_object_set_new(linux_, "seccomp", sc);
    } else if (!o->no_seccomp && !o->privileged) {
        bool admin = false;
        for (char **c = caps; *c; c++)
            if (strcmp(*c, "CAP_SYS_ADMIN") == 0)
                admin = true;
        json_object_set_new(linux_, "seccomp", spec_seccomp_default(admin));
    }
    if (o->memory > 0 || o->pids_limit > 0 || o->cpus > 0) {
        json_t *res = json_object();
        if (o->memory > 0) {
            json_t *m = json_object();
            json_object_set_new(m, "limit", json_integer(o->memory));
            json_object_set_new(res, "memory", m);
        }
        if (o->pids_limit > 0) {
            json_t *p = json_object();
            json_object_set_new(p, "limit", json_integer(o->pids_limit));
            json_object_set_new(res, "pids", p);
        }
        if (o->cpus > 0) {
            json_t *c = json_object();
            json_object_set_new(c, "period", json_integer(100000));
            json_object_set_new(c, "quota", json_integer((json_int_t)(o->cpus * 100000)));
            json_object_set_new(res, "cpu", c);
        }
        json_object_set_new(linux_, "resources", res);
    }
    json_object_set_new(spec, "linux", linux_);
    spec_user_free(&pu);
    *out = spec;
    return 0;
fail:
    spec_user_free(&pu);
    json_decref(spec);
    json_decref(mounts);
    return -1;
}

json_t *spec_default(bool rootless)
{
    struct spec_options o = {.rootless = rootless, .terminal = true, .hostname = "berth"};
    char *argv[] = {"sh", NULL};
    o.args = argv;
    json_t *spec = NULL;
    berth_error_t err = NULL;
    if (spec_generate(NULL, NULL, &o, &spec, &err) < 0) {
        berth_error_release(&err);
        return NULL;
    }
    json_object_set_new(json_object_get(spec, "root"), "readonly", json_true());
    return spec;
}
