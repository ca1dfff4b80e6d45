/* Rootless user-mode networking: pasta (default) and slirp4netns.
 *
 * The helper is a child of the process that started the container (foreground berth or the -d
 * monitor) with PR_SET_PDEATHSIG, in the foreground (no daemonizing), so it dies with its owner
 * even after a kill -9; the owner kills it when the container ends.  Its pid and start time are
 * recorded in net.state so any later command can reap a leftover. */
#include "run/net/internal.h"

#include "common/proc.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASTA_BIN "/usr/bin/pasta"
#define SLIRP_BIN "/usr/bin/slirp4netns"

char *net_host_gateway(void)
{
    cleanup_file FILE *f = fopen("/proc/net/route", "re");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        char ifn[64];
        unsigned dst, gw, flags;
        if (sscanf(line, "%63s %x %x %x", ifn, &dst, &gw, &flags) != 4)
            continue;
        if (dst == 0 && gw != 0) {
            unsigned char a[4];
            memcpy(a, &gw, 4);
            return net_addr_str(a, false);
        }
    }
    return NULL;
}

void helper_kill(const json_t *st, const char *key)
{
    json_t *h = json_get_object(st, key);
    int64_t pid = 0, start = 0;
    if (!json_get_int(h, "pid", &pid) || !json_get_int(h, "start", &start) || pid <= 0)
        return;
    /* only the process we started: pids are reused */
    if (proc_start_time((pid_t)pid, NULL) != (unsigned long long)start)
        return;
    kill((pid_t)pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid((pid_t)pid, NULL, WNOHANG) == (pid_t)pid)
            return;
        if (proc_start_time((pid_t)pid, NULL) != (unsigned long long)start)
            return;
        usleep(5000);
    }
    kill((pid_t)pid, SIGKILL);
    waitpid((pid_t)pid, NULL, WNOHANG);
}

/* Forks argv as a child that dies with us; stderr to logpath. */
static pid_t spawn_helper(char *const argv[], const char *logpath, const char *cwd, int keep1,
                          int keep2, berth_error_t *err)
{
    pid_t self = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0) {
        berth_error_make(err, errno, "fork %s", argv[0]);
        return -1;
    }
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(1);
        setsid();
        if (cwd && chdir(cwd) < 0)
            _exit(127);
        int nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (nfd >= 0) {
            dup2(nfd, 0);
            dup2(nfd, 1);
        }
        if (lfd >= 0)
            dup2(lfd, 2);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != keep1 && fd != keep2)
                close(fd);
        if (keep1 >= 0)
            fcntl(keep1, F_SETFD, 0);
        if (keep2 >= 0)
            fcntl(keep2, F_SETFD, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return p;
}

static char *log_tail(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    berth_error_t e = NULL;
    if (fs_read_file(path, 1 << 20, &data, &len, &e) < 0) {
        berth_error_release(&e);
        return xstrdup("no message");
    }
    /* last non-empty lines, without pasta's syslog noise */
    struct strbuf b = {0};
    char *save = NULL;
    for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strstr(l, "syslog") || !*l)
            continue;
        if (b.len)
            strbuf_append(&b, "; ");
        strbuf_append(&b, l);
    }
    free(data);
    char *s = strbuf_steal(&b);
    return s ? s : xstrdup("no message");
}

static void record_helper(json_t *st, const char *key, pid_t p)
{
    json_object_set_new(
        st, key,
        json_pack("{s:i,s:I}", "pid", (int)p, "start", (json_int_t)proc_start_time(p, NULL)));
}

/* pasta's port spec for one mapping: [ADDR/]HOST[-HOSTEND]:CTR[-CTREND] */
static void pasta_ports(const json_t *ports, const char *proto, struct strbuf *b)
{
    size_t i;
    json_t *m;
    json_array_foreach(ports, i, m)
    {
        const char *pr = json_get_string(m, "protocol");
        if (!pr || strcmp(pr, proto) != 0)
            continue;
        int64_t hp = 0, cp = 0, range = 1;
        json_get_int(m, "host_port", &hp);
        json_get_int(m, "container_port", &cp);
        json_get_int(m, "range", &range);
        const char *ip = json_get_string(m, "host_ip");
        if (b->len)
            strbuf_putc(b, ',');
        if (ip && *ip)
            strbuf_appendf(b, "%s/", ip);
        if (range > 1)
            strbuf_appendf(b, "%lld-%lld:%lld-%lld", (long long)hp, (long long)(hp + range - 1),
                           (long long)cp, (long long)(cp + range - 1));
        else
            strbuf_appendf(b, "%lld:%lld", (long long)hp, (long long)cp);
    }
}

int pasta_attach(const struct net_attach_ctx *c, const char *netns, const char *opts, json_t *st,
                 berth_error_t *err)
{
    cleanup_free char *pidfile = xasprintf("%s/pasta.pid", c->rundir);
    cleanup_free char *logp = xasprintf("%s/pasta.log", c->rundir);
    unlink(pidfile);
    cleanup_strv char **argv = NULL;
    strv_add(&argv, PASTA_BIN);
    strv_add(&argv, "--config-net");
    strv_add(&argv, "-f");
    strv_add(&argv, "-q");
    /* inside berth's rootless user namespace we are "root": pasta would switch to nobody,
     * who may not enter the container's namespaces */
    if (geteuid() == 0)
        strv_add(&argv, "--runas=0:0");
    struct strbuf t = {0}, u = {0};
    pasta_ports(json_get_array(c->net, "ports"), "tcp", &t);
    pasta_ports(json_get_array(c->net, "ports"), "udp", &u);
    strv_add(&argv, "-t");
    strv_add(&argv, t.len ? t.buf : "none");
    strv_add(&argv, "-u");
    strv_add(&argv, u.len ? u.buf : "none");
    strbuf_release(&t);
    strbuf_release(&u);
    strv_add(&argv, "-T");
    strv_add(&argv, "none");
    strv_add(&argv, "-U");
    strv_add(&argv, "none");
    if (opts && *opts) {
        cleanup_free char *copy = xstrdup(opts);
        char *save = NULL;
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
            strv_add(&argv, o);
    }
    strv_add(&argv, "-P");
    strv_add(&argv, pidfile);
    strv_add(&argv, "--netns");
    strv_add(&argv, netns);
    pid_t p = spawn_helper(argv, logp, NULL, -1, -1, err);
    if (p < 0)
        return -1;
    /* pasta writes its pid file once the namespace is configured */
    for (int ms = 0;; ms++) {
        struct stat sb;
        if (stat(pidfile, &sb) == 0 && sb.st_size > 0)
            break;
        int ws;
        if (waitpid(p, &ws, WNOHANG) == p) {
            cleanup_free char *m = log_tail(logp);
            return berth_error_make_status(err, EIO, "pasta failed: %s", m);
        }
        if (ms > 20000) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            return berth_error_make_status(err, ETIMEDOUT, "pasta did not start in time");
        }
        usleep(ms < 100 ? 200 : 1000);
    }
    record_helper(st, "pasta", p);
    return net_state_save(c->rundir, st, err);
}

/* slirp4netns: --ready-fd for readiness, --exit-fd bound to our lifetime, port forwards
 * through its API socket. */
static int slirp_api(const char *rundir, const char *req, berth_error_t *err)
{
    cleanup_close int dfd = open(rundir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "open \"%s\"", rundir);
    char sock[64];
    snprintf(sock, sizeof(sock), "/proc/self/fd/%d/slirp4netns.sock", dfd);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berth_error_make(err, errno, "socket");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        close(fd);
        return berth_error_make(err, e, "connect to slirp4netns API \"%s\"", sock);
    }
    if (write(fd, req, strlen(req)) < 0) {
        int e = errno;
        close(fd);
        return berth_error_make(err, e, "slirp4netns API");
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    if (strstr(buf, "\"error\""))
        return berth_error_make_status(err, EIO, "slirp4netns: %s", buf);
    return 0;
}

int slirp_attach(const struct net_attach_ctx *c, const char *netns, const char *opts, json_t *st,
                 berth_error_t *err)
{
    cleanup_free char *logp = xasprintf("%s/slirp4netns.log", c->rundir);
    cleanup_free char *sock = xasprintf("%s/slirp4netns.sock", c->rundir);
    unlink(sock);
    int ready[2], ex[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    if (pipe2(ex, O_CLOEXEC) < 0) {
        close(ready[0]);
        close(ready[1]);
        return berth_error_make(err, errno, "pipe");
    }
    cleanup_strv char **argv = NULL;
    strv_add(&argv, SLIRP_BIN);
    strv_add(&argv, "--configure");
    strv_add(&argv, "--mtu=65520");
    strv_add_take(&argv, xasprintf("--ready-fd=%d", ready[1]));
    strv_add_take(&argv, xasprintf("--exit-fd=%d", ex[0]));
    /* relative to the run dir (its cwd): a unix socket path has at most 107 bytes */
    strv_add(&argv, "--api-socket=slirp4netns.sock");
    strv_add(&argv, "--netns-type=path");
    if (opts && *opts) {
        cleanup_free char *copy = xstrdup(opts);
        char *save = NULL;
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
            strv_add_take(&argv, xasprintf("--%s", o));
    }
    strv_add(&argv, netns);
    strv_add(&argv, "tap0");
    /* host loopback stays enabled: 10.0.2.2 reaches the host's 127.0.0.1 */
    pid_t p = spawn_helper(argv, logp, c->rundir, ready[1], ex[0], err);
    close(ready[1]);
    close(ex[0]);
    if (p < 0) {
        close(ready[0]);
        close(ex[1]);
        return -1;
    }
    char b;
    ssize_t r;
    while ((r = read(ready[0], &b, 1)) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    if (r != 1) {
        close(ex[1]);
        waitpid(p, NULL, 0);
        cleanup_free char *m = log_tail(logp);
        return berth_error_make_status(err, EIO, "slirp4netns failed: %s", m);
    }
    /* the write end of exit-fd stays open (close-on-exec) for as long as this process lives:
     * slirp4netns exits when we do */
    record_helper(st, "slirp4netns", p);
    if (net_state_save(c->rundir, st, err) < 0)
        return -1;
    size_t i;
    json_t *m;
    json_array_foreach(json_get_array(c->net, "ports"), i, m)
    {
        int64_t hp = 0, cp = 0, range = 1;
        json_get_int(m, "host_port", &hp);
        json_get_int(m, "container_port", &cp);
        json_get_int(m, "range", &range);
        const char *ip = json_get_string(m, "host_ip");
        const char *pr = json_get_string(m, "protocol");
        for (int64_t k = 0; k < range; k++) {
            cleanup_free char *req = xasprintf(
                "{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"%s\",\"host_addr\":"
                "\"%s\",\"host_port\":%lld,\"guest_port\":%lld}}",
                pr ? pr : "tcp", ip && *ip ? ip : "0.0.0.0", (long long)(hp + k),
                (long long)(cp + k));
            if (slirp_api(c->rundir, req, err) < 0)
                return -1;
        }
    }
    return 0;
}
