/* The runtime core, parent side: clone the container init, id maps, cgroups, the sync protocol,
 * container state (runc-like), start/kill/delete and exec into a running container. */
#include "run/runtime.h"
#include "run/internal.h"
#include "run/isolation.h"
#include "run/spec.h"

#include "common/imagespec.h"
#include "common/proc.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_STATE_FILE  (1u << 20)
#define MAX_CONFIG_FILE (4u << 20)

static bool in_initial_userns(void)
{
    FILE *f = fopen("/proc/self/uid_map", "re");
    unsigned long a = 0, b = 0, c = 0;
    bool init =
        !f || (fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295UL);
    if (f)
        fclose(f);
    return init;
}

char *runtime_default_root(void)
{
    /* uid 0 inside a rootless engine's user namespace (podman) is still the user: like runc,
     * keep the state in the user's runtime dir */
    if (geteuid() == 0 && in_initial_userns())
        return xstrdup("/run/berth-runtime");
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (x && *x)
        return xasprintf("%s/berth-runtime", x);
    return xasprintf("/tmp/berth-runtime-%u", (unsigned)geteuid());
}

const char *runtime_status_name(runtime_status_t s)
{
    switch (s) {
    case RUNTIME_CREATING:
        return "creating";
    case RUNTIME_CREATED:
        return "created";
    case RUNTIME_RUNNING:
        return "running";
    default:
        return "stopped";
    }
}

static int check_id(const char *id, berth_error_t *err)
{
    if (!id || !*id || strlen(id) > 1024 || !isalnum((unsigned char)id[0]))
        goto bad;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            goto bad;
    return 0;
bad:
    return berth_error_make_status(err, EINVAL, "invalid container id \"%s\"", id ? id : "");
}

static char *state_dir(const char *root, const char *id)
{
    return xasprintf("%s/%s", root, id);
}

static int read_json_file(const char *path, size_t max, json_t **out, berth_error_t *err)
{
    return json_load_file_bounded(path, max, out, err);
}

static int write_json_atomic(const char *path, const json_t *j, berth_error_t *err)
{
    cleanup_free char *tmp = xasprintf("%s.tmp", path);
    cleanup_free char *s = json_dumps(j, JSON_COMPACT);
    cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return berth_error_make(err, errno, "create \"%s\"", tmp);
    size_t len = strlen(s);
    if (write(fd, s, len) != (ssize_t)len) {
        unlink(tmp);
        return berth_error_make(err, errno, "write \"%s\"", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return berth_error_make(err, errno, "rename \"%s\"", tmp);
    }
    return 0;
}

static void remove_state_dir(const char *dir)
{
    cleanup_dir DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    rmdir(dir);
}

static const struct {
    const char *name;
    int flag;
} ns_types[] = {
    {"user", CLONE_NEWUSER},     {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
    {"uts", CLONE_NEWUTS},       {"ipc", CLONE_NEWIPC},  {"network", CLONE_NEWNET},
    {"cgroup", CLONE_NEWCGROUP},
};

/* Error messages from the child start with "<exit code>:". */
static int child_error(const char *msg, int *code, berth_error_t *err)
{
    char *end;
    long c = strtol(msg, &end, 10);
    if (end != msg && *end == ':') {
        if (code)
            *code = (int)c;
        msg = end + 1;
    }
    return berth_error_make_status(err, c == 127 ? ENOENT : (c == 126 ? EACCES : EIO), "%s", msg);
}

/* --pid-file names the caller's file: written as every user-named output (common/fs.h). */
static int write_pid_file(const char *path, pid_t pid, berth_error_t *err)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
    if (fs_write_output(path, buf, (size_t)n, 0644, err) < 0)
        return berth_error_wrap(err, "pid file");
    return 0;
}

/* ---- create: each step owns what it made until the next step takes it over ---- */

/* A started container init owned by a scope: killed and reaped on every early return, handed
 * over by resetting the variable (crun's cleanup_pid). */
static void kill_and_reap(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
        ;
}
#define cleanup_pid __attribute__((cleanup(kill_and_reap)))

/* A state directory owned by a scope: removed unless handed over. */
static void state_dir_release(char **dir)
{
    if (*dir) {
        remove_state_dir(*dir);
        free(*dir);
        *dir = NULL;
    }
}
#define cleanup_state_dir __attribute__((cleanup(state_dir_release)))

/* The cgroups made for a container: destroyed unless handed over. */
static void cgroup_release(json_t **cg)
{
    if (*cg) {
        cgroup_destroy(*cg);
        json_decref(*cg);
        *cg = NULL;
    }
}
#define cleanup_cgroup __attribute__((cleanup(cgroup_release)))

/* linux.namespaces: clone flags for the new ones, setns paths for the given ones. */
static int parse_namespaces(const json_t *linux_, bool chroot, int *flags, struct init_ctx *ic,
                            berth_error_t *err)
{
    int npaths = 0;
    size_t i;
    json_t *n;
    *flags = 0;
    json_array_foreach(json_object_get(linux_, "namespaces"), i, n)
    {
        const char *t = json_string_value(json_object_get(n, "type"));
        const char *p = json_string_value(json_object_get(n, "path"));
        int f = 0;
        for (size_t k = 0; t && k < sizeof(ns_types) / sizeof(ns_types[0]); k++)
            if (strcmp(t, ns_types[k].name) == 0)
                f = ns_types[k].flag;
        if (!f)
            return berth_error_make_status(err, EINVAL, "unknown namespace type \"%s\"",
                                           t ? t : "");
        if (p && *p) {
            if (f == CLONE_NEWUSER || f == CLONE_NEWPID || npaths >= 7)
                return berth_error_make_status(
                    err, ENOTSUP, "joining an existing %s namespace is not supported", t);
            ic->ns_paths[npaths] = p;
            ic->ns_types[npaths++] = f;
        } else {
            *flags |= f;
        }
    }
    if (!(*flags & CLONE_NEWNS) && !chroot)
        return berth_error_make_status(err, EINVAL, "a mount namespace is required");
    ic->userns = (*flags & CLONE_NEWUSER) != 0;
    ic->mountns = (*flags & CLONE_NEWNS) != 0;
    if (chroot && geteuid() != 0 && !ic->userns)
        return berth_error_make_status(err, EPERM,
                                       "a non-root user needs a user namespace to chroot, and "
                                       "none can be made here (see `berth info`)");
    if (geteuid() != 0 && !ic->userns && in_initial_userns())
        return berth_error_make_status(
            err, EPERM,
            "rootless containers need a user namespace in config.json "
            "(linux.namespaces \"user\" with uidMappings; `runtime spec --rootless`)");
    return 0;
}

/* The state dir with config.json (and exec.fifo when the init waits for start); *sdir NULL for
 * a transient run. */
static int state_dir_create(const struct runtime_create_opts *o, char **sdir, int *fifo_fd,
                            berth_error_t *err)
{
    *sdir = NULL;
    if (o->no_state)
        return 0;
    if (mkdir(o->root, 0700) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create runtime root \"%s\"", o->root);
    cleanup_free char *dir = state_dir(o->root, o->id);
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST)
            return berth_error_make_status(err, EEXIST, "container \"%s\" already exists", o->id);
        return berth_error_make(err, errno, "create state dir \"%s\"", dir);
    }
    cleanup_state_dir char *made = xstrdup(dir);
    cleanup_free char *cfg = xasprintf("%s/config.json", dir);
    if (write_json_atomic(cfg, o->spec, err) < 0)
        return -1;
    if (o->wait_start) {
        cleanup_free char *fifo = xasprintf("%s/exec.fifo", dir);
        if (mkfifo(fifo, 0600) < 0)
            return berth_error_make(err, errno, "mkfifo \"%s\"", fifo);
        *fifo_fd = open(fifo, O_PATH | O_CLOEXEC);
        if (*fifo_fd < 0)
            return berth_error_make(err, errno, "open \"%s\"", fifo);
    }
    *sdir = steal_pointer(&made);
    return 0;
}

/* Clones the init (which runs init_main and never returns here); *sync gets our end of the
 * sync socket. */
static int spawn_init(const struct runtime_create_opts *o, int flags, struct init_ctx *ic,
                      pid_t *pidp, int *sync, berth_error_t *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    pid_t self = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), NULL, NULL, NULL, 0);
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        if (e == EPERM || e == ENOSPC || e == EUSERS)
            return berth_error_make(err, e,
                                    "create the container namespaces (are unprivileged user "
                                    "namespaces enabled? --isolation chroot needs fewer)");
        return berth_error_make(err, e, "clone");
    }
    if (pid == 0) {
        close(sv[0]);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        if (o->die_with_parent) {
            /* set now for the setup, and again before exec (id changes clear it) */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            ic->pdeath_parent = (flags & CLONE_NEWPID) ? -1 : self;
            if (!(flags & CLONE_NEWPID) && getppid() != self)
                _exit(1);
        } else {
            prctl(PR_SET_PDEATHSIG, 0);
        }
        ic->sync_fd = sv[1];
        init_main(ic);
    }
    close(sv[1]);
    *pidp = pid;
    *sync = sv[0];
    return 0;
}

/* A terminal sent by the init goes to the console socket or to the caller. */
static int take_terminal(const struct runtime_create_opts *o, int fd, berth_error_t *err)
{
    if (fd < 0)
        return berth_error_make_status(err, EIO, "no terminal received from the container");
    if (o->console_socket) {
        int r = console_socket_send(o->console_socket, fd, err);
        close(fd);
        return r;
    }
    tty_copy_winsize(fd);
    *o->pty_master = fd;
    return 0;
}

/* Maps and cgroup for the init, then the sync protocol until it exec'd (or waits on
 * exec.fifo).  *cg gets the cgroups made (NULL when none). */
static int setup_init(const struct runtime_create_opts *o, const struct init_ctx *ic, pid_t pid,
                      int sync, json_t **cg, int *exit_code, berth_error_t *err)
{
    const json_t *linux_ = json_object_get(o->spec, "linux");
    if (ic->userns && idmap_write(pid, linux_, err) < 0)
        return -1;
    if (cgroup_setup(o->id, json_object_get(linux_, "resources"), pid, cg, err) < 0)
        return -1;
    if (o->on_init && o->on_init(pid, o->on_init_arg, err) < 0)
        return -1;
    if (sync_send(sync, SYNC_GO, NULL, 0, -1) < 0)
        return berth_error_make(err, errno, "signal the container init");
    for (;;) {
        char tag;
        char msg[SYNC_MAX_MSG];
        int fd = -1;
        if (sync_recv(sync, &tag, msg, sizeof(msg), &fd) < 0)
            return berth_error_make(err, errno, "read from the container init");
        if (tag == 0 || tag == SYNC_READY)
            return 0; /* EOF: the init exec'd the process (the socket is close-on-exec) */
        if (tag == SYNC_ERROR)
            return child_error(msg, exit_code, err);
        if (tag == SYNC_TERMINAL) {
            if (take_terminal(o, fd, err) < 0)
                return -1;
            sync_send(sync, SYNC_GO, NULL, 0, -1);
        } else if (fd >= 0) {
            close(fd);
        }
    }
}

static int write_state(const struct runtime_create_opts *o, const char *sdir, const char *rootfs,
                       pid_t pid, const json_t *cg, berth_error_t *err)
{
    bool alive;
    unsigned long long st = proc_start_time(pid, &alive);
    cleanup_free char *created = image_time_format(-1);
    struct passwd *pw = getpwuid(geteuid());
    cleanup_json json_t *state =
        json_pack("{s:s,s:s,s:i,s:I,s:s,s:s,s:s,s:s}", "ociVersion", "1.0.2", "id", o->id, "pid",
                  (int)pid, "starttime", (json_int_t)st, "bundle", o->bundle, "rootfs", rootfs,
                  "created", created, "owner", pw ? pw->pw_name : "");
    if (cg)
        json_object_set(state, "cgroup", (json_t *)cg);
    json_t *ann = json_object_get(o->spec, "annotations");
    if (json_is_object(ann))
        json_object_set(state, "annotations", ann);
    cleanup_free char *sp = xasprintf("%s/state.json", sdir);
    return write_json_atomic(sp, state, err);
}

/* root.path (relative to the bundle) resolved into rootfs (PATH_MAX bytes). */
static int resolve_rootfs(const struct runtime_create_opts *o, char *rootfs, berth_error_t *err)
{
    const char *rp = json_string_value(json_object_get(json_object_get(o->spec, "root"), "path"));
    if (!rp)
        return berth_error_make_status(err, EINVAL, "config.json: root.path is missing");
    cleanup_free char *rjoined = rp[0] == '/' ? xstrdup(rp) : xasprintf("%s/%s", o->bundle, rp);
    if (!realpath(rjoined, rootfs))
        return berth_error_make(err, errno, "rootfs \"%s\"", rjoined);
    return 0;
}

static int create_impl(const struct runtime_create_opts *o, pid_t *pidp, int *exit_code,
                       berth_error_t *err)
{
    const json_t *spec = o->spec;
    if (check_id(o->id, err) < 0)
        return -1;
    char rootfs[PATH_MAX];
    if (resolve_rootfs(o, rootfs, err) < 0)
        return -1;
    const json_t *process = json_object_get(spec, "process");
    if (!json_is_object(process))
        return berth_error_make_status(err, EINVAL, "config.json: process is missing");
    if (json_is_true(json_object_get(process, "terminal")) && !o->console_socket && !o->pty_master)
        return berth_error_make_status(err, EINVAL,
                                       "process.terminal is set: use --console-socket (or -t)");
    const char *iso = json_string_value(
        json_object_get(json_object_get(spec, "annotations"), RUN_ISOLATION_ANNOTATION));
    bool chroot = o->chroot || (iso && strcmp(iso, "chroot") == 0);
    struct init_ctx ic = {.spec = spec,
                          .rootfs = rootfs,
                          .fifo_fd = -1,
                          .setsid_no_tty = o->setsid_no_tty,
                          .chroot = chroot};
    int flags;
    if (parse_namespaces(json_object_get(spec, "linux"), chroot, &flags, &ic, err) < 0)
        return -1;

    cleanup_state_dir char *sdir = NULL;
    cleanup_close int fifo_fd = -1;
    if (state_dir_create(o, &sdir, &fifo_fd, err) < 0)
        return -1;
    ic.fifo_fd = fifo_fd;
    /* declared before the pid: on an early return the init is killed before its cgroups go */
    cleanup_cgroup json_t *cg = NULL;
    cleanup_pid pid_t pid = -1;
    cleanup_close int sync = -1;
    if (spawn_init(o, flags, &ic, &pid, &sync, err) < 0)
        return -1;
    close(steal_fd(&fifo_fd));
    if (setup_init(o, &ic, pid, sync, &cg, exit_code, err) < 0)
        return -1;
    close(steal_fd(&sync));
    if (sdir && write_state(o, sdir, rootfs, pid, cg, err) < 0)
        return -1;
    if (o->pid_file && write_pid_file(o->pid_file, pid, err) < 0)
        return -1;
    /* the container exists: the caller owns the init, its cgroups (recorded in state.json) and
     * its state dir from here on */
    json_decref(steal_pointer(&cg));
    free(steal_pointer(&sdir));
    *pidp = pid;
    pid = -1;
    return 0;
}

int runtime_create(const struct runtime_create_opts *o, pid_t *pid, berth_error_t *err)
{
    return create_impl(o, pid, NULL, err);
}

/* ---- waiting and signal forwarding ---- */

static volatile pid_t forward_pid;

static void forward_signal(int sig)
{
    if (forward_pid > 0)
        kill(forward_pid, sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void forward_signals(pid_t pid, bool on)
{
    forward_pid = pid;
    struct sigaction sa = {0};
    sa.sa_handler = on ? forward_signal : SIG_DFL;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaction(forwarded[i], &sa, NULL);
}

void runtime_forward_signals(pid_t pid)
{
    forward_signals(pid, pid > 0);
}

void runtime_hold_signals(sigset_t *old)
{
    sigset_t fw;
    sigemptyset(&fw);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaddset(&fw, forwarded[i]);
    sigprocmask(SIG_BLOCK, &fw, old);
}

static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return 255;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

int runtime_run(const struct runtime_create_opts *o, int *status, berth_error_t *err)
{
    struct runtime_create_opts c = *o;
    int master = -1;
    bool terminal = json_is_true(json_object_get(json_object_get(o->spec, "process"), "terminal"));
    if (terminal && !c.console_socket)
        c.pty_master = &master;
    c.wait_start = false;
    c.die_with_parent = true;
    /* a signal that arrives while the container is being set up is held, then forwarded */
    sigset_t old;
    runtime_hold_signals(&old);
    pid_t pid;
    int code = -1;
    if (create_impl(&c, &pid, &code, err) < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (code > 0) {
            /* the process could not be exec'd: report like podman (127/126) */
            *status = code;
        }
        return -1;
    }
    forward_signals(pid, true);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (master >= 0) {
        tty_pump(master);
        close(master);
    }
    *status = wait_status(pid);
    forward_signals(0, false);
    if (!o->no_state) {
        cleanup_free char *sdir = state_dir(o->root, o->id);
        cleanup_free char *sp = xasprintf("%s/state.json", sdir);
        json_t *st = NULL;
        berth_error_t e2 = NULL;
        if (read_json_file(sp, MAX_STATE_FILE, &st, &e2) == 0) {
            cgroup_destroy(json_object_get(st, "cgroup"));
            json_decref(st);
        }
        berth_error_release(&e2);
        remove_state_dir(sdir);
    }
    return 0;
}

/* ---- state ---- */

void runtime_state_free(struct runtime_state *s)
{
    free(s->id);
    free(s->bundle);
    free(s->rootfs);
    free(s->created);
    free(s->owner);
    json_decref(s->annotations);
    memset(s, 0, sizeof(*s));
}

static int load_state(const char *root, const char *id, json_t **out, berth_error_t *err)
{
    if (check_id(id, err) < 0)
        return -1;
    cleanup_free char *sp = xasprintf("%s/%s/state.json", root, id);
    if (access(sp, F_OK) < 0) {
        cleanup_free char *d = state_dir(root, id);
        if (access(d, F_OK) == 0)
            return berth_error_make_status(err, EAGAIN, "container \"%s\" is being created", id);
        return berth_error_make_status(err, ENOENT, "container \"%s\" does not exist", id);
    }
    return read_json_file(sp, MAX_STATE_FILE, out, err);
}

static runtime_status_t compute_status(const char *root, const char *id, const json_t *st)
{
    pid_t pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    bool alive;
    unsigned long long t = proc_start_time(pid, &alive);
    if (pid <= 0 || !alive ||
        t != (unsigned long long)json_integer_value(json_object_get(st, "starttime")))
        return RUNTIME_STOPPED;
    cleanup_free char *fifo = xasprintf("%s/%s/exec.fifo", root, id);
    return access(fifo, F_OK) == 0 ? RUNTIME_CREATED : RUNTIME_RUNNING;
}

int runtime_state(const char *root, const char *id, struct runtime_state *out, berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cleanup_json json_t *st = NULL;
    if (load_state(root, id, &st, err) < 0)
        return -1;
    out->id = xstrdup(id);
    out->pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    const char *b = json_string_value(json_object_get(st, "bundle"));
    const char *r = json_string_value(json_object_get(st, "rootfs"));
    const char *c = json_string_value(json_object_get(st, "created"));
    const char *o = json_string_value(json_object_get(st, "owner"));
    out->bundle = xstrdup(b ? b : "");
    out->rootfs = xstrdup(r ? r : "");
    out->created = xstrdup(c ? c : "");
    out->owner = xstrdup(o ? o : "");
    json_t *a = json_object_get(st, "annotations");
    out->annotations = a ? json_incref(a) : NULL;
    out->status = compute_status(root, id, st);
    return 0;
}

json_t *runtime_state_json(const struct runtime_state *s)
{
    json_t *j = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s}", "ociVersion", "1.0.2", "id", s->id,
                          "pid", s->status == RUNTIME_STOPPED ? 0 : (int)s->pid, "status",
                          runtime_status_name(s->status), "bundle", s->bundle, "rootfs", s->rootfs,
                          "created", s->created, "owner", s->owner);
    if (s->annotations)
        json_object_set(j, "annotations", s->annotations);
    return j;
}

int runtime_list(const char *root, char ***ids, berth_error_t *err)
{
    size_t n = 0;
    char **v = xcalloc(1, sizeof(char *));
    cleanup_dir DIR *d = opendir(root);
    if (!d) {
        if (errno == ENOENT) {
            *ids = v;
            return 0;
        }
        free(v);
        return berth_error_make(err, errno, "open \"%s\"", root);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        v = xreallocarray(v, n + 2, sizeof(char *));
        v[n++] = xstrdup(de->d_name);
        v[n] = NULL;
    }
    *ids = v;
    return 0;
}

int runtime_start(const char *root, const char *id, berth_error_t *err)
{
    cleanup_json json_t *st = NULL;
    if (load_state(root, id, &st, err) < 0)
        return -1;
    runtime_status_t s = compute_status(root, id, st);
    if (s != RUNTIME_CREATED)
        return berth_error_make_status(err, EINVAL, "cannot start a container that is %s",
                                       runtime_status_name(s));
    cleanup_free char *fifo = xasprintf("%s/%s/exec.fifo", root, id);
    cleanup_close int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", fifo);
    pid_t pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    for (int waited = 0;; waited += 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r > 0) {
            char b;
            if (read(fd, &b, 1) == 1)
                break;
        }
        if (r < 0 && errno != EINTR)
            return berth_error_make(err, errno, "poll exec.fifo");
        bool alive;
        proc_start_time(pid, &alive);
        if (!alive)
            return berth_error_make_status(err, ESRCH, "container \"%s\" init exited", id);
        if (waited > 30000)
            return berth_error_make_status(err, ETIMEDOUT, "container \"%s\" did not start in time",
                                           id);
    }
    unlink(fifo);
    return 0;
}

int runtime_kill(const char *root, const char *id, int sig, bool all, berth_error_t *err)
{
    cleanup_json json_t *st = NULL;
    if (load_state(root, id, &st, err) < 0)
        return -1;
    if (compute_status(root, id, st) == RUNTIME_STOPPED)
        return berth_error_make_status(err, ESRCH, "container \"%s\" is not running", id);
    pid_t pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    if (kill(pid, sig) < 0)
        return berth_error_make(err, errno, "kill container \"%s\"", id);
    (void)all; /* the init is pid 1 of its namespace: when it dies, everything in it dies */
    return 0;
}

int runtime_delete(const char *root, const char *id, bool force, berth_error_t *err)
{
    cleanup_json json_t *st = NULL;
    if (load_state(root, id, &st, err) < 0)
        return -1;
    runtime_status_t s = compute_status(root, id, st);
    pid_t pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    if (s == RUNTIME_RUNNING && !force)
        return berth_error_make_status(err, EBUSY,
                                       "cannot delete container \"%s\" that is running (use "
                                       "--force)",
                                       id);
    if (s != RUNTIME_STOPPED) {
        /* a created container (or forced delete) is killed */
        kill(pid, SIGKILL);
        for (int i = 0; i < 500; i++) {
            if (compute_status(root, id, st) == RUNTIME_STOPPED)
                break;
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break;
            usleep(10000);
        }
    }
    cgroup_destroy(json_object_get(st, "cgroup"));
    cleanup_free char *d = state_dir(root, id);
    remove_state_dir(d);
    return 0;
}

/* ---- exec ---- */

static int same_ns(pid_t pid, const char *name)
{
    char a[64], b[64];
    struct stat sa, sb;
    snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int)pid, name);
    snprintf(b, sizeof(b), "/proc/self/ns/%s", name);
    if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
        return -1;
    return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static json_t *build_process(const struct runtime_exec_opts *o, const json_t *spec, pid_t pid,
                             berth_error_t *err)
{
    if (o->process)
        return json_deep_copy(o->process);
    json_t *p = json_deep_copy(json_object_get(spec, "process"));
    if (!p)
        p = json_object();
    if (!o->args || !o->args[0]) {
        json_decref(p);
        berth_error_make_status(err, EINVAL, "exec: no command given");
        return NULL;
    }
    json_t *args = json_array();
    for (char **a = o->args; *a; a++)
        json_array_append_new(args, json_string(*a));
    json_object_set_new(p, "args", args);
    json_object_set_new(p, "terminal", json_boolean(o->terminal));
    if (o->cwd)
        json_object_set_new(p, "cwd", json_string(o->cwd));
    json_t *env = json_object_get(p, "env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(p, "env", env);
    }
    for (char **e = o->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t kl = eq ? (size_t)(eq - *e) : strlen(*e);
        size_t i;
        json_t *v;
        bool replaced = false;
        json_array_foreach(env, i, v)
        {
            const char *s = json_string_value(v);
            if (s && strncmp(s, *e, kl) == 0 && s[kl] == '=') {
                json_array_set_new(env, i, json_string(*e));
                replaced = true;
                break;
            }
        }
        if (!replaced)
            json_array_append_new(env, json_string(*e));
    }
    if (o->user) {
        char rootp[64];
        snprintf(rootp, sizeof(rootp), "/proc/%d/root", (int)pid);
        cleanup_close int rfd = open(rootp, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct spec_user u;
        if (spec_resolve_user(rfd, o->user, &u, err) < 0) {
            json_decref(p);
            return NULL;
        }
        json_t *ju = json_pack("{s:i,s:i}", "uid", (int)u.uid, "gid", (int)u.gid);
        if (u.n_groups) {
            json_t *ag = json_array();
            for (size_t i = 0; i < u.n_groups; i++)
                json_array_append_new(ag, json_integer(u.groups[i]));
            json_object_set_new(ju, "additionalGids", ag);
        }
        json_object_set_new(p, "user", ju);
        spec_user_free(&u);
        /* a non-root user starts without effective capabilities, as in spec_generate */
        json_t *caps = json_object_get(p, "capabilities");
        if (u.uid != 0 && caps) {
            json_object_set_new(caps, "effective", json_array());
            json_object_set_new(caps, "permitted", json_array());
            json_object_del(caps, "ambient");
        }
    }
    return p;
}

/* Namespaces to join: user first (it grants the rights for the others), mount last. */
#define EXEC_NS 7
static const char *const exec_ns_names[EXEC_NS] = {"user", "ipc",    "uts", "net",
                                                   "pid",  "cgroup", "mnt"};
static const int exec_ns_flags[EXEC_NS] = {CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS,
                                           CLONE_NEWNET,  CLONE_NEWPID, CLONE_NEWCGROUP,
                                           CLONE_NEWNS};

struct ns_fds {
    int fd[EXEC_NS]; /* -1: the same namespace as ours, nothing to join */
};

static void ns_fds_close(struct ns_fds *n)
{
    for (int i = 0; i < EXEC_NS; i++)
        if (n->fd[i] >= 0) {
            close(n->fd[i]);
            n->fd[i] = -1;
        }
}
#define cleanup_ns_fds __attribute__((cleanup(ns_fds_close)))

static int ns_fds_open(pid_t cpid, struct ns_fds *n, berth_error_t *err)
{
    for (int i = 0; i < EXEC_NS; i++) {
        n->fd[i] = -1;
        if (same_ns(cpid, exec_ns_names[i]) != 0)
            continue;
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)cpid, exec_ns_names[i]);
        n->fd[i] = open(p, O_RDONLY | O_CLOEXEC);
        if (n->fd[i] < 0)
            return berth_error_make(err, errno, "open \"%s\"", p);
    }
    return 0;
}

/* Process A of an exec: joins the container's namespaces, forks B (which execs the process,
 * pid 1's sibling in the container's pid namespace) and waits for it.  Never returns. */
static void exec_child(const struct runtime_exec_opts *o, struct ns_fds *ns, int sock,
                       const json_t *proc, const json_t *seccomp, pid_t parent)
{
    char tag;
    char buf[16];
    if (sync_recv(sock, &tag, buf, sizeof(buf), NULL) < 0 || tag != SYNC_GO)
        _exit(1);
    for (int i = 0; i < EXEC_NS; i++) {
        if (ns->fd[i] < 0)
            continue;
        if (setns(ns->fd[i], exec_ns_flags[i]) < 0)
            child_fail(sock, 1, "join the container's %s namespace: %s", exec_ns_names[i],
                       strerror(errno));
        close(ns->fd[i]);
    }
    if (ns->fd[0] >= 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        child_fail(sock, 1, "become root in the container's user namespace: %s", strerror(errno));
    if (chdir("/") < 0)
        child_fail(sock, 1, "chdir /: %s", strerror(errno));
    /* In the foreground the exec'd process must not outlive berth (kill -9 of berth exec):
     * A dies with berth, B with A.  Set after the credential change above, which clears it.
     * Detached, B is left to the caller's subreaper instead. */
    if (!o->detach) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0 && getppid() != parent)
            _exit(1);
    }
    pid_t apid = getpid();
    pid_t b = fork();
    if (b < 0)
        child_fail(sock, 1, "fork: %s", strerror(errno));
    if (b == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        /* in the container's pid namespace getppid() is 0: -1 makes process_exec watch the
         * sync socket instead */
        process_exec(proc, seccomp, sock, -1, o->detach ? 0 : (ns->fd[4] >= 0 ? -1 : apid));
    }
    char pb[32];
    int l = snprintf(pb, sizeof(pb), "%d", (int)b);
    sync_send(sock, 'P', pb, (size_t)l, -1);
    close(sock);
    /* detached (runc exec -d, as conmon uses it): leave the process to the caller's
     * subreaper, which then gets its exit status */
    if (o->detach)
        _exit(0);
    forward_signals(b, true);
    _exit(wait_status(b));
}

/* The parent's side of the exec sync protocol until B exec'd: B's pid, its terminal. */
static int exec_sync(const struct runtime_exec_opts *o, int sock, bool terminal, int *master,
                     pid_t *b, int *status, berth_error_t *err)
{
    if (sync_send(sock, SYNC_GO, NULL, 0, -1) < 0)
        return berth_error_make(err, errno, "start the exec process");
    for (;;) {
        char tag;
        char msg[SYNC_MAX_MSG];
        int fd = -1;
        ssize_t r = sync_recv(sock, &tag, msg, sizeof(msg), &fd);
        if (r < 0 || tag == 0)
            return 0; /* both A's and B's copies are closed: exec'd */
        if (tag == SYNC_ERROR) {
            int code = 1;
            child_error(msg, &code, err);
            *status = code;
            return -1;
        }
        if (tag == 'P') {
            char *end;
            long v = strtol(msg, &end, 10);
            if (end != msg && *end == '\0' && v > 0)
                *b = (pid_t)v;
        }
        if (tag == SYNC_TERMINAL && fd >= 0) {
            if (o->console_socket) {
                int r2 = console_socket_send(o->console_socket, fd, err);
                close(fd);
                if (r2 < 0)
                    return -1;
            } else if (terminal) {
                tty_copy_winsize(fd);
                *master = fd;
            } else {
                close(fd);
            }
            sync_send(sock, SYNC_GO, NULL, 0, -1);
        }
    }
}

int runtime_exec(const struct runtime_exec_opts *o, int *status, berth_error_t *err)
{
    cleanup_json json_t *st = NULL;
    if (load_state(o->root, o->id, &st, err) < 0)
        return -1;
    if (compute_status(o->root, o->id, st) != RUNTIME_RUNNING)
        return berth_error_make_status(err, EINVAL, "container \"%s\" is not running", o->id);
    pid_t cpid = (pid_t)json_integer_value(json_object_get(st, "pid"));
    cleanup_free char *cfgp = xasprintf("%s/%s/config.json", o->root, o->id);
    cleanup_json json_t *spec = NULL;
    if (read_json_file(cfgp, MAX_CONFIG_FILE, &spec, err) < 0)
        return -1;
    cleanup_json json_t *proc = build_process(o, spec, cpid, err);
    if (!proc)
        return -1;
    bool terminal = json_is_true(json_object_get(proc, "terminal"));
    const json_t *seccomp = json_object_get(json_object_get(spec, "linux"), "seccomp");

    cleanup_ns_fds struct ns_fds ns;
    if (ns_fds_open(cpid, &ns, err) < 0)
        return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    cleanup_close int sock = sv[0];
    fflush(stdout);
    fflush(stderr);
    pid_t self = getpid();
    cleanup_pid pid_t a = fork();
    if (a < 0) {
        close(sv[1]);
        return berth_error_make(err, errno, "fork");
    }
    if (a == 0) {
        close(sv[0]);
        exec_child(o, &ns, sv[1], proc, seccomp, self);
    }
    close(sv[1]);
    ns_fds_close(&ns);
    json_t *cg = json_object_get(st, "cgroup");
    if (cg && cgroup_enter(cg, a, err) < 0)
        return -1;
    cleanup_close int master = -1;
    pid_t b = -1;
    if (exec_sync(o, sock, terminal, &master, &b, status, err) < 0)
        return -1;
    close(steal_fd(&sock));
    if (o->pid_file && b > 0 && write_pid_file(o->pid_file, b, err) < 0)
        return -1;
    pid_t pa = a;
    a = -1; /* waited for below, not killed */
    if (o->detach) {
        wait_status(pa);
        *status = 0;
        return 0;
    }
    forward_signals(pa, true);
    if (master >= 0)
        tty_pump(master);
    *status = wait_status(pa);
    forward_signals(0, false);
    return 0;
}

int runtime_parse_signal(const char *s)
{
    if (isdigit((unsigned char)*s)) {
        char *end;
        long v = strtol(s, &end, 10);
        return (*end || v <= 0 || v >= NSIG) ? -1 : (int)v;
    }
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (int i = 1; i < NSIG; i++) {
        const char *n = sigabbrev_np(i);
        if (n && strcasecmp(n, s) == 0)
            return i;
    }
    return -1;
}
