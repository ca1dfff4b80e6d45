/* Containers from the store: see container.h. */
#include "run/container.h"
#include "run/internal.h"
#include "run/runtime.h"

#include "common/proc.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_IMAGE_CONFIG   (4u << 20)
#define MAX_CONTAINER_META (1u << 20) /* the store's record limit */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int load_meta(storage_store_t *s, const char *id_or_name, storage_container_t **ctr,
                     json_t **meta, berth_error_t *err)
{
    if (storage_container_get(s, id_or_name, ctr, err) < 0)
        return -1;
    const char *m = (*ctr)->metadata;
    *meta = NULL;
    berth_error_t jerr = NULL;
    if (m &&
        json_parse_bounded(m, strlen(m), MAX_CONTAINER_META, "container metadata", meta, &jerr) < 0)
        berth_error_release(&jerr);
    if (!*meta) {
        storage_container_free(*ctr);
        *ctr = NULL;
        return berth_error_make_status(
            err, EINVAL, "container \"%s\" was not created by berth run/create", id_or_name);
    }
    return 0;
}

static int save_meta(storage_store_t *s, const char *id, const json_t *meta, berth_error_t *err)
{
    cleanup_free char *txt = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    return storage_container_set_metadata(s, id, txt, err);
}

static int write_text(const char *path, const char *text, berth_error_t *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return berth_error_make(err, errno, "create \"%s\"", path);
    size_t l = strlen(text);
    if (write(fd, text, l) != (ssize_t)l)
        return berth_error_make(err, errno, "write \"%s\"", path);
    return 0;
}

static char *join_args(const json_t *args)
{
    size_t i;
    json_t *a;
    size_t len = 1;
    json_array_foreach(args, i, a) len += strlen(json_string_value(a) ?: "") + 1;
    char *s = xzalloc(len), *end = s;
    json_array_foreach(args, i, a)
    {
        const char *v = json_string_value(a) ?: "";
        if (i)
            *end++ = ' ';
        end = mempcpy(end, v, strlen(v));
    }
    return s;
}

/* Container names as podman accepts them: [a-zA-Z0-9][a-zA-Z0-9_.-]*.  Names are looked up
 * next to ids and printed in tables; "..", "a/b", spaces or control characters have no
 * business there. */
static bool valid_container_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 255 || !isalnum((unsigned char)n[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char ch = (unsigned char)n[i];
        if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
            return false;
    }
    return true;
}

int container_create(storage_store_t *s, const struct container_create_opts *o,
                     storage_container_t **out, berth_error_t *err)
{
    if (o->name && *o->name && !valid_container_name(o->name))
        return berth_error_make_status(err, EINVAL,
                                       "invalid container name \"%s\": names are letters, digits, "
                                       "'_', '.' and '-', starting with a letter or digit",
                                       o->name);
    cleanup_storage_image storage_image_t *img = NULL;
    if (storage_image_lookup(s, o->image, &img, err) < 0)
        return -1;
    cleanup_free char *cfgtxt = NULL;
    size_t cfglen = 0;
    if (storage_image_get_big_data(s, img->id, "config", MAX_IMAGE_CONFIG, &cfgtxt, &cfglen, err) <
        0)
        return berth_error_wrap(err, "image \"%s\"", o->image);
    cleanup_json json_t *cfg = NULL;
    if (json_parse_bounded(cfgtxt, cfglen, MAX_IMAGE_CONFIG, "image config", &cfg, err) < 0)
        return berth_error_wrap(err, "image \"%s\"", o->image);
    const json_t *icfg = json_object_get(cfg, "config");

    struct storage_container_options co = {.name = o->name, .image_id = img->id};
    cleanup_storage_container storage_container_t *c = NULL;
    if (storage_container_create(s, &co, &c, err) < 0)
        return -1;
    cleanup_free char *rootfs = NULL;
    cleanup_free char *userdata = NULL, *rundir = NULL;
    cleanup_json json_t *spec = NULL;
    cleanup_free char *cmd = NULL;
    cleanup_free char *cid = NULL;
    cleanup_json json_t *netrec = NULL;
    if (storage_container_mount(s, c->id, &rootfs, err) < 0)
        goto fail;
    if (storage_container_dirs(s, c->id, &userdata, &rundir, err) < 0)
        goto fail;
    struct spec_options so = *o->spec;
    char hostname[13];
    if (!so.hostname) {
        snprintf(hostname, sizeof(hostname), "%s", c->id);
        so.hostname = hostname;
    }
    if (spec_generate(icfg, rootfs, &so, &spec, err) < 0)
        goto fail;
    {
        struct net_dirs nd;
        net_dirs_init(&nd, storage_store_root(s), storage_store_runroot(s));
        struct net_options no = {.mode = so.network};
        int nr = net_config_create(&nd, o->net ? o->net : &no, icfg, &netrec, err);
        net_dirs_clear(&nd);
        if (nr < 0 || net_etc_files(spec, rootfs, rundir, netrec, so.hostname, c->name, err) < 0)
            goto fail;
    }
    /* image's StopSignal for berth stop */
    const char *stopsig = json_string_value(json_object_get(icfg, "StopSignal"));
    cmd = join_args(json_object_get(json_object_get(spec, "process"), "args"));
    json_t *meta =
        json_pack("{s:O,s:s,s:s,s:s,s:s,s:I,s:b,s:b,s:b}", "spec", spec, "image",
                  img->names && img->names[0] ? img->names[0] : o->image, "image_id", img->id,
                  "command", cmd, "status", "created", "created", (json_int_t)now_s(), "rm", o->rm,
                  "interactive", o->interactive, "tty", so.terminal);
    if (o->runtime)
        json_object_set_new(meta, "runtime", json_string(o->runtime));
    if (stopsig)
        json_object_set_new(meta, "stop_signal", json_string(stopsig));
    json_object_set(meta, "net", netrec);
    int r = save_meta(s, c->id, meta, err);
    json_decref(meta);
    if (r < 0)
        goto fail;
    /* reload so the record carries the metadata */
    cid = xstrdup(c->id);
    storage_container_free(c);
    c = NULL;
    if (storage_container_get(s, cid, &c, err) < 0)
        return -1;
    *out = steal_pointer(&c);
    return 0;
fail:;
    berth_error_t e2 = NULL;
    IGNORE_RESULT(storage_container_unmount(s, c->id, true, &e2));
    berth_error_release(&e2);
    IGNORE_RESULT(storage_container_remove(s, c->id, &e2));
    berth_error_release(&e2);
    return -1;
}

static char *rt_root(const char *rundir)
{
    return xasprintf("%s/rt", rundir);
}

/* The process that records the container's exit (foreground berth or the -d monitor) notes
 * itself in the run dir: a container whose recorder was killed (kill -9) would otherwise show
 * "stopping" forever, and wait/stop would wait for a code that never comes. */
static void write_owner(const char *rundir)
{
    cleanup_free char *path = xasprintf("%s/owner", rundir);
    cleanup_free char *tmp = xasprintf("%s/owner.tmp", rundir);
    cleanup_free char *text =
        xasprintf("%d %llu\n", (int)getpid(), proc_start_time(getpid(), NULL));
    berth_error_t e = NULL;
    if (write_text(tmp, text, &e) < 0 || rename(tmp, path) < 0)
        log_debug("record the container's owner: %s", e ? berth_error_msg(e) : strerror(errno));
    berth_error_release(&e);
}

/* True when the recorded owner process no longer exists (a missing record: unknown, false). */
static bool owner_gone(const char *rundir)
{
    cleanup_free char *path = xasprintf("%s/owner", rundir);
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    int pid;
    unsigned long long start;
    if (sscanf(buf, "%d %llu", &pid, &start) != 2 || pid <= 0)
        return false;
    unsigned long long now = proc_start_time(pid, NULL);
    return now == 0 || now != start;
}

/* Writes the exit code into the record (not for --rm containers, which go away). */
static void record_exit(storage_store_t *s, const char *id, int status)
{
    berth_error_t err = NULL;
    storage_container_t *c = NULL;
    json_t *meta = NULL;
    if (load_meta(s, id, &c, &meta, &err) == 0 && !json_is_true(json_object_get(meta, "rm"))) {
        json_object_set_new(meta, "status", json_string("exited"));
        json_object_set_new(meta, "exit_code", json_integer(status));
        json_object_set_new(meta, "finished", json_integer(now_s()));
        save_meta(s, id, meta, &err);
    }
    berth_error_release(&err);
    storage_container_free(c);
    json_decref(meta);
}

/* Records the end of a run: exit code, times; unmounts; removes the container for --rm. */
static void finish(storage_store_t *s, const char *id, int status)
{
    berth_error_t err = NULL;
    storage_container_t *c = NULL;
    json_t *meta = NULL;
    if (load_meta(s, id, &c, &meta, &err) == 0) {
        json_object_set_new(meta, "status", json_string("exited"));
        json_object_set_new(meta, "exit_code", json_integer(status));
        json_object_set_new(meta, "finished", json_integer(now_s()));
        bool rm = json_is_true(json_object_get(meta, "rm"));
        /* an --rm container's record goes away below: no need to write it first */
        if (!rm && save_meta(s, id, meta, &err) < 0) {
            log_warn("container %.12s: record the exit code: %s", id, berth_error_msg(err));
            berth_error_release(&err);
        }
        if (storage_container_unmount(s, id, false, &err) < 0) {
            log_debug("unmount container %.12s: %s", id, berth_error_msg(err));
            berth_error_release(&err);
        }
        if (rm && storage_container_remove(s, id, &err) < 0) {
            log_warn("remove container %.12s: %s", id, berth_error_msg(err));
            berth_error_release(&err);
        }
    }
    berth_error_release(&err);
    storage_container_free(c);
    json_decref(meta);
}

/* Runs an external OCI runtime (runc) on the bundle in the foreground. */
static int run_external(const char *runtime, const char *rundir, const char *id, int *status,
                        berth_error_t *err)
{
    cleanup_free char *root = xasprintf("%s/ext", rundir);
    /* sig-proxy to the runtime, which passes the signals on to the container */
    sigset_t old;
    runtime_hold_signals(&old);
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return berth_error_make(err, e, "fork");
    }
    if (p == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execl(runtime, runtime, "--root", root, "run", "--bundle", rundir, id, (char *)NULL);
        dprintf(2, "Error: exec runtime \"%s\": %s\n", runtime, strerror(errno));
        _exit(127);
    }
    runtime_forward_signals(p);
    sigprocmask(SIG_SETMASK, &old, NULL);
    int st;
    while (waitpid(p, &st, 0) < 0) {
        if (errno != EINTR) {
            int e = errno;
            runtime_forward_signals(0);
            return berth_error_make(err, e, "wait for \"%s\"", runtime);
        }
    }
    runtime_forward_signals(0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

/* The detached container's monitor: owns the container process, keeps the log, records the
 * exit code.  Reports readiness (or an error) on ready_fd, then never returns. */
__attribute__((noreturn)) static void monitor_main(const struct container_start_opts *o,
                                                   const char *id, const char *rundir,
                                                   const json_t *spec, struct net_attach_ctx *net,
                                                   int ready_fd)
{
    berth_error_t err = NULL;
    cleanup_free char *log = xasprintf("%s/ctr.log", rundir);
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    int nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (lfd < 0 || nfd < 0) {
        dprintf(ready_fd, "open log \"%s\": %s", log, strerror(errno));
        _exit(1);
    }
    dup2(nfd, 0);
    dup2(lfd, 1);
    dup2(lfd, 2);
    /* nothing of the caller's (the store's lock fds, a test harness's pipes) stays open here */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != ready_fd)
            close(fd);
    write_owner(rundir);
    cleanup_free char *root = rt_root(rundir);
    bool terminal = json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"));
    int master = -1;
    struct runtime_create_opts ro = {.root = root,
                                     .id = id,
                                     .bundle = rundir,
                                     .spec = spec,
                                     .pty_master = terminal ? &master : NULL,
                                     /* killing the monitor must not leave the container
                                      * running unrecorded */
                                     .die_with_parent = true};
    if (net) {
        ro.on_init = net_attach;
        ro.on_init_arg = net;
    }
    pid_t pid;
    if (runtime_create(&ro, &pid, &err) < 0) {
        net_detach(rundir);
        dprintf(ready_fd, "%s", berth_error_msg(err));
        _exit(1);
    }
    close(ready_fd);
    if (master >= 0) {
        /* -d -t: the terminal's output goes to the log; input stays open but empty */
        char buf[8192];
        for (;;) {
            ssize_t r = read(master, buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            if (write(1, buf, (size_t)r) < 0)
                break;
        }
        close(master);
    }
    int st, status = 255;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            break;
    }
    if (WIFEXITED(st))
        status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        status = 128 + WTERMSIG(st);
    /* the network goes before the exit is recorded: once `stop` returns nothing is left */
    net_detach(rundir);
    storage_store_t *s = NULL;
    if (storage_store_open(o->store_opts, &s, &err) < 0) {
        dprintf(2, "berth monitor: reopen the store: %s\n", berth_error_msg(err));
        berth_error_release(&err);
    }
    /* the exit code is recorded before the runtime state goes, so `wait` never sees a stopped
     * container without its code */
    if (s)
        record_exit(s, id, status);
    IGNORE_RESULT(runtime_delete(root, id, true, &err));
    berth_error_release(&err);
    if (s) {
        finish(s, id, status);
        storage_store_close(s);
    }
    _exit(0);
}

static pid_t running_pid(const char *name, void *arg)
{
    struct container_info ci;
    berth_error_t e = NULL;
    if (container_inspect(arg, name, &ci, &e) < 0) {
        berth_error_release(&e);
        return -1;
    }
    pid_t p = strcmp(ci.status, "running") == 0 ? ci.pid : -1;
    container_info_clear(&ci);
    return p;
}

/* --network container:ID / ns:PATH: the spec's network namespace gets the path to join. */
static int set_join_netns(storage_store_t *s, json_t *spec, const json_t *netrec,
                          berth_error_t *err)
{
    cleanup_free char *path = NULL;
    if (net_join_path(netrec, running_pid, s, &path, err) < 0)
        return -1;
    if (!path)
        return 0;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(json_object_get(spec, "linux"), "namespaces"), i, n)
    {
        const char *t = json_string_value(json_object_get(n, "type"));
        if (t && strcmp(t, "network") == 0)
            json_object_set_new(n, "path", json_string(path));
    }
    return 0;
}

int container_start(storage_store_t *s, const char *id_or_name,
                    const struct container_start_opts *o, int *status, berth_error_t *err)
{
    *status = 0;
    cleanup_net_dirs struct net_dirs nd = {0};
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (load_meta(s, id_or_name, &c, &meta, err) < 0)
        return -1;
    cleanup_free char *userdata = NULL, *rundir = NULL;
    if (storage_container_dirs(s, c->id, &userdata, &rundir, err) < 0)
        return -1;
    cleanup_free char *root = rt_root(rundir);
    struct runtime_state rs;
    berth_error_t e2 = NULL;
    if (runtime_state(root, c->id, &rs, &e2) == 0) {
        runtime_status_t st = rs.status;
        runtime_state_free(&rs);
        if (st != RUNTIME_STOPPED)
            return berth_error_make_status(err, EBUSY, "container \"%s\" is already running",
                                           id_or_name);
        IGNORE_RESULT(runtime_delete(root, c->id, true, &e2));
    }
    berth_error_release(&e2);

    cleanup_free char *rootfs = NULL;
    if (storage_container_mount(s, c->id, &rootfs, err) < 0)
        return -1;
    json_t *spec = json_object_get(meta, "spec");
    json_object_set_new(json_object_get(spec, "root"), "path", json_string(rootfs));
    /* the network: what a crashed previous run left is undone first */
    json_t *netrec = json_object_get(meta, "net");
    if (net_has_state(rundir))
        net_detach(rundir);
    net_dirs_init(&nd, storage_store_root(s), storage_store_runroot(s));
    struct net_attach_ctx nc = {.dirs = &nd,
                                .rundir = rundir,
                                .id = c->id,
                                .name = c->name,
                                .hostname = json_string_value(json_object_get(spec, "hostname")),
                                .net = netrec};
    bool attach = netrec && !net_is_host(netrec);
    if (set_join_netns(s, spec, netrec, err) < 0) {
        berth_error_t e4 = NULL;
        IGNORE_RESULT(storage_container_unmount(s, c->id, false, &e4));
        berth_error_release(&e4);
        return -1;
    }
    cleanup_free char *cfgpath = xasprintf("%s/config.json", rundir);
    cleanup_free char *spectxt = json_dumps(spec, JSON_INDENT(1));
    if (write_text(cfgpath, spectxt, err) < 0)
        goto fail_unmount;
    /* a foreground --rm container is never seen stopped: skip recording "running" (one atomic
     * write less on the hot path); `ps` finds it running from its runtime state */
    bool transient = !o->detach && json_is_true(json_object_get(meta, "rm"));
    /* a previous run's owner is not this one's (the -d monitor writes its own below) */
    if (o->detach) {
        cleanup_free char *owner = xasprintf("%s/owner", rundir);
        unlink(owner);
    } else {
        write_owner(rundir);
    }
    json_object_set_new(meta, "status", json_string("running"));
    json_object_set_new(meta, "started", json_integer(now_s()));
    json_object_del(meta, "exit_code");
    if (!transient && save_meta(s, c->id, meta, err) < 0)
        goto fail_unmount;
    const char *ext = json_string_value(json_object_get(meta, "runtime"));
    bool interactive = json_is_true(json_object_get(meta, "interactive"));

    if (!o->detach) {
        if (!interactive) {
            int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (nfd >= 0) {
                dup2(nfd, 0);
                close(nfd);
            }
        }
        int r;
        if (ext) {
            r = run_external(ext, rundir, c->id, status, err);
        } else {
            struct runtime_create_opts ro = {.root = root,
                                             .id = c->id,
                                             .bundle = rundir,
                                             .spec = spec,
                                             .on_init = attach ? net_attach : NULL,
                                             .on_init_arg = &nc};
            r = runtime_run(&ro, status, err);
        }
        net_detach(rundir);
        if (r < 0) {
            if (*status <= 0)
                *status = BERTH_RUN_FAILED_STATUS;
            finish(s, c->id, *status);
            return -1;
        }
        finish(s, c->id, *status);
        return 0;
    }
    if (ext) {
        berth_error_make_status(err, ENOTSUP, "--runtime with -d is not supported yet");
        goto fail_unmount;
    }
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0) {
        berth_error_make(err, errno, "pipe");
        goto fail_unmount;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0) {
        berth_error_make(err, errno, "fork");
        close(pp[0]);
        close(pp[1]);
        goto fail_unmount;
    }
    if (p == 0) {
        close(pp[0]);
        setsid();
        signal(SIGHUP, SIG_IGN);
        pid_t m = fork();
        if (m != 0)
            _exit(m < 0 ? 1 : 0);
        monitor_main(o, c->id, rundir, spec, attach ? &nc : NULL, pp[1]);
    }
    close(pp[1]);
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    char msg[4096];
    ssize_t n, total = 0;
    while ((n = read(pp[0], msg + total, sizeof(msg) - 1 - (size_t)total)) > 0)
        total += n;
    close(pp[0]);
    msg[total > 0 ? total : 0] = '\0';
    if (total > 0) {
        berth_error_make_status(err, EIO, "%s", msg);
        /* the monitor has exited without starting anything */
        finish(s, c->id, BERTH_RUN_FAILED_STATUS);
        return -1;
    }
    return 0;
fail_unmount:;
    berth_error_t e3 = NULL;
    IGNORE_RESULT(storage_container_unmount(s, c->id, false, &e3));
    berth_error_release(&e3);
    return -1;
}

void container_info_clear(struct container_info *i)
{
    free(i->id);
    free(i->name);
    free(i->image);
    free(i->command);
    free(i->status);
    free(i->ports);
    memset(i, 0, sizeof(*i));
}

int container_inspect(storage_store_t *s, const char *id_or_name, struct container_info *out,
                      berth_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (load_meta(s, id_or_name, &c, &meta, err) < 0)
        return -1;
    cleanup_free char *userdata = NULL, *rundir = NULL;
    if (storage_container_dirs(s, c->id, &userdata, &rundir, err) < 0)
        return -1;
    out->id = xstrdup(c->id);
    out->name = xstrdup(c->name ? c->name : "");
    out->image = xstrdup(json_string_value(json_object_get(meta, "image")) ?: "");
    out->command = xstrdup(json_string_value(json_object_get(meta, "command")) ?: "");
    out->created = json_integer_value(json_object_get(meta, "created"));
    out->started = json_integer_value(json_object_get(meta, "started"));
    out->finished = json_integer_value(json_object_get(meta, "finished"));
    out->tty = json_is_true(json_object_get(meta, "tty"));
    out->ports = net_ports_string(json_object_get(meta, "net"));
    const char *st = json_string_value(json_object_get(meta, "status")) ?: "created";
    json_t *ec = json_object_get(meta, "exit_code");
    out->exit_code = ec ? (int)json_integer_value(ec) : -1;
    if (strcmp(st, "running") == 0 || strcmp(st, "created") == 0) {
        bool was_created = strcmp(st, "created") == 0;
        cleanup_free char *root = rt_root(rundir);
        struct runtime_state rs;
        berth_error_t e2 = NULL;
        if (runtime_state(root, c->id, &rs, &e2) == 0) {
            if (rs.status == RUNTIME_RUNNING || rs.status == RUNTIME_CREATED) {
                out->pid = rs.pid;
                st = "running";
                if (!out->started)
                    out->started = out->created;
            } else {
                /* the monitor has yet to record the exit code, unless it was killed (a
                 * foreground --rm run never records "running": its record still says created) */
                st = owner_gone(rundir) ? "exited" : "stopping";
            }
            runtime_state_free(&rs);
        } else if (berth_error_status(e2) == EAGAIN || was_created) {
            /* being created, or never started */
        } else if (json_string_value(json_object_get(meta, "runtime")) == NULL) {
            /* the process is gone and its exit code is being recorded, or whoever ran it
             * was killed (then the code is unknown) */
            st = owner_gone(rundir) ? "exited" : "stopping";
        }
        berth_error_release(&e2);
    }
    out->status = xstrdup(st);
    return 0;
}

static int with_state(storage_store_t *s, const char *id_or_name, char **id, char **root,
                      berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    if (storage_container_get(s, id_or_name, &c, err) < 0)
        return -1;
    cleanup_free char *userdata = NULL, *rundir = NULL;
    if (storage_container_dirs(s, c->id, &userdata, &rundir, err) < 0)
        return -1;
    *root = rt_root(rundir);
    *id = xstrdup(c->id);
    return 0;
}

int container_kill(storage_store_t *s, const char *id_or_name, int sig, berth_error_t *err)
{
    cleanup_free char *id = NULL, *root = NULL;
    if (with_state(s, id_or_name, &id, &root, err) < 0)
        return -1;
    /* a container being started has no state yet: give it a moment */
    for (int ms = 0; ms < 5000; ms += 20) {
        berth_error_t e2 = NULL;
        struct runtime_state rs;
        if (runtime_state(root, id, &rs, &e2) == 0) {
            runtime_state_free(&rs);
            break;
        }
        bool creating = berth_error_status(e2) == EAGAIN;
        berth_error_release(&e2);
        if (!creating)
            break;
        usleep(20000);
    }
    if (runtime_kill(root, id, sig, true, err) < 0) {
        if (berth_error_status(*err) == ENOENT)
            return berth_error_make_status(err, ESRCH, "container \"%s\" is not running",
                                           id_or_name);
        return -1;
    }
    return 0;
}

static bool is_running(const char *root, const char *id)
{
    struct runtime_state rs;
    berth_error_t e = NULL;
    if (runtime_state(root, id, &rs, &e) < 0) {
        bool creating = berth_error_status(e) == EAGAIN;
        berth_error_release(&e);
        if (creating) {
            /* a state dir without state: being created, unless whoever created it was killed
             * (kill -9 mid-start), which would leave it "creating" for ever */
            size_t l = strlen(root);
            cleanup_free char *rundir = l > 3 ? xstrndup(root, l - 3) : xstrdup(root);
            if (owner_gone(rundir))
                creating = false;
        }
        return creating;
    }
    bool r = rs.status != RUNTIME_STOPPED;
    runtime_state_free(&rs);
    return r;
}

/* Waits until the record no longer says running (the monitor or foreground berth recorded
 * the exit), at most ms milliseconds after the process itself is gone. */
static int wait_recorded(storage_store_t *s, const char *id, const char *root, int *code,
                         int grace_ms, berth_error_t *err)
{
    int gone_ms = 0;
    for (;;) {
        struct container_info ci;
        if (container_inspect(s, id, &ci, err) < 0)
            return -1;
        bool done = strcmp(ci.status, "exited") == 0 || strcmp(ci.status, "created") == 0;
        int ec = ci.exit_code;
        container_info_clear(&ci);
        if (done) {
            if (code)
                *code = ec;
            return 0;
        }
        if (!is_running(root, id)) {
            gone_ms += 50;
            if (gone_ms > grace_ms) {
                if (code)
                    *code = -1;
                return 0;
            }
        }
        usleep(50000);
    }
}

int container_stop(storage_store_t *s, const char *id_or_name, int timeout, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    cleanup_json json_t *meta = NULL;
    if (load_meta(s, id_or_name, &c, &meta, err) < 0)
        return -1;
    cleanup_free char *id = NULL, *root = NULL;
    if (with_state(s, c->id, &id, &root, err) < 0)
        return -1;
    if (!is_running(root, id))
        return 0;
    int sig = SIGTERM;
    const char *ss = json_string_value(json_object_get(meta, "stop_signal"));
    if (ss && runtime_parse_signal(ss) > 0)
        sig = runtime_parse_signal(ss);
    berth_error_t e2 = NULL;
    IGNORE_RESULT(runtime_kill(root, id, sig, true, &e2));
    berth_error_release(&e2);
    for (int ms = 0; ms < timeout * 1000 && is_running(root, id); ms += 50)
        usleep(50000);
    if (is_running(root, id)) {
        IGNORE_RESULT(runtime_kill(root, id, SIGKILL, true, &e2));
        berth_error_release(&e2);
        for (int ms = 0; ms < 10000 && is_running(root, id); ms += 50)
            usleep(50000);
    }
    return wait_recorded(s, id, root, NULL, 5000, err);
}

int container_wait(storage_store_t *s, const char *id_or_name, int *code, berth_error_t *err)
{
    cleanup_free char *id = NULL, *root = NULL;
    if (with_state(s, id_or_name, &id, &root, err) < 0)
        return -1;
    for (;;) {
        struct container_info ci;
        if (container_inspect(s, id, &ci, err) < 0)
            return -1;
        bool running = strcmp(ci.status, "running") == 0 || strcmp(ci.status, "stopping") == 0;
        container_info_clear(&ci);
        if (!running)
            break;
        if (!is_running(root, id))
            return wait_recorded(s, id, root, code, 5000, err);
        usleep(50000);
    }
    return wait_recorded(s, id, root, code, 0, err);
}

int container_remove(storage_store_t *s, const char *id_or_name, bool force, berth_error_t *err)
{
    cleanup_free char *id = NULL, *root = NULL;
    if (with_state(s, id_or_name, &id, &root, err) < 0)
        return -1;
    if (is_running(root, id)) {
        if (!force)
            return berth_error_make_status(
                err, EBUSY, "container \"%s\" is running: stop it first or use --force",
                id_or_name);
        berth_error_t e2 = NULL;
        IGNORE_RESULT(runtime_kill(root, id, SIGKILL, true, &e2));
        berth_error_release(&e2);
        for (int ms = 0; ms < 10000 && is_running(root, id); ms += 20)
            usleep(20000);
        if (wait_recorded(s, id, root, NULL, 3000, &e2) < 0) {
            /* --rm containers remove themselves: gone is fine */
            if (berth_error_status(e2) == ENOENT) {
                berth_error_release(&e2);
                return 0;
            }
            berth_error_release(&e2);
        }
    }
    berth_error_t e3 = NULL;
    {
        /* whatever network a crashed run left behind goes with the container */
        cleanup_free char *ud = NULL, *rd = NULL;
        if (storage_container_dirs(s, id, &ud, &rd, &e3) == 0 && net_has_state(rd))
            net_detach(rd);
        berth_error_release(&e3);
    }
    if (runtime_state(root, id, &(struct runtime_state){0}, &e3) == 0)
        IGNORE_RESULT(runtime_delete(root, id, true, &e3));
    berth_error_release(&e3);
    IGNORE_RESULT(storage_container_unmount(s, id, true, &e3));
    berth_error_release(&e3);
    if (storage_container_remove(s, id, err) < 0) {
        if (berth_error_status(*err) == ENOENT && force) {
            berth_error_release(err);
            return 0;
        }
        return -1;
    }
    return 0;
}

int container_log_path(storage_store_t *s, const char *id_or_name, char **out, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    if (storage_container_get(s, id_or_name, &c, err) < 0)
        return -1;
    cleanup_free char *userdata = NULL, *rundir = NULL;
    if (storage_container_dirs(s, c->id, &userdata, &rundir, err) < 0)
        return -1;
    *out = xasprintf("%s/ctr.log", rundir);
    return 0;
}

int container_exec(storage_store_t *s, const char *id_or_name, char **args, char **env,
                   const char *cwd, const char *user, bool tty, bool interactive, bool detach,
                   int *status, berth_error_t *err)
{
    cleanup_free char *id = NULL, *root = NULL;
    if (with_state(s, id_or_name, &id, &root, err) < 0)
        return -1;
    if (!is_running(root, id))
        return berth_error_make_status(err, EINVAL, "container \"%s\" is not running", id_or_name);
    if (!interactive) {
        int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nfd >= 0) {
            dup2(nfd, 0);
            close(nfd);
        }
    }
    struct runtime_exec_opts o = {.root = root,
                                  .id = id,
                                  .args = args,
                                  .env = env,
                                  .cwd = cwd,
                                  .user = user,
                                  .terminal = tty,
                                  .detach = detach};
    return runtime_exec(&o, status, err);
}
