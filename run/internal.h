/* Private interfaces between the runtime core's files. */
#ifndef BERTH_RUN_INTERNAL_H
#define BERTH_RUN_INTERNAL_H

#include "common/error.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

/* Messages on the parent<->child sync socket (SOCK_SEQPACKET): one byte tag + payload. */
#define SYNC_GO    'G' /* parent -> child: maps and cgroup done */
#define SYNC_ERROR 'E' /* child -> parent: message follows; child exits */
#define SYNC_READY 'R' /* child -> parent: blocked on exec.fifo (create) */
#define SYNC_TERMINAL                                                                              \
    'T' /* child -> parent: pty master attached (SCM_RIGHTS); the child                            \
           then waits for SYNC_GO (terminal sized) before exec */
#define SYNC_MAX_MSG 4096

struct init_ctx {
    const json_t *spec;
    const char *rootfs; /* absolute */
    int sync_fd;
    int fifo_fd;  /* O_PATH fd of exec.fifo, or -1 */
    bool userns;  /* a new user namespace was created */
    bool mountns; /* a new mount namespace was created (chroot isolation may have none) */
    bool chroot;  /* chroot isolation: fall back where the environment refuses (isolation.h) */
    bool setsid_no_tty;
    /* die with the parent: 0 no; >0 the parent's pid as seen by the child; -1 the parent is
     * outside the child's new pid namespace (getppid() is 0) */
    pid_t pdeath_parent;
    const char *ns_paths[8]; /* setns targets for namespaces given by path (NULL-terminated) */
    int ns_types[8];
};

/* The container init (child of clone); never returns. */
void init_main(struct init_ctx *c) __attribute__((noreturn));

/* Applies a "process" object in the current process and execs it; used by init and exec.
 * pdeath_parent as in struct init_ctx: nonzero sets PR_SET_PDEATHSIG(SIGKILL) after the last
 * credential change, then exits if the parent already died (its end of sync_fd is closed).
 * On failure sends SYNC_ERROR on sync_fd and _exits (127 not found, 126 not executable, 1). */
void process_exec(const json_t *process, const json_t *seccomp, int sync_fd, int fifo_fd,
                  pid_t pdeath_parent) __attribute__((noreturn));

/* Sig-proxy: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 received by berth go to pid (0:
 * default actions again).  runtime_hold_signals blocks them (old mask in *old) until the
 * target exists; restore the mask after runtime_forward_signals(). */
void runtime_forward_signals(pid_t pid);
void runtime_hold_signals(sigset_t *old);

/* Sends an error on the sync socket and _exit(code). */
void child_fail(int sync_fd, int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/* Loads a runtime-spec linux.seccomp object with libseccomp. */
BERTH_MUST_CHECK int seccomp_load_spec(const json_t *seccomp, berth_error_t *err);

/* fd passing */
int sync_send(int sock, char tag, const void *data, size_t len, int fd);
/* Receives one message: *tag, payload in buf (NUL-terminated, cap bytes), *fd if one attached
 * (else -1).  Returns payload length, 0 on EOF (tag 0), -1 on error. */
ssize_t sync_recv(int sock, char *tag, char *buf, size_t cap, int *fd);
/* Sends fd to a unix socket path as runc's --console-socket protocol does. */
BERTH_MUST_CHECK int console_socket_send(const char *path, int fd, berth_error_t *err);

/* Creates a pty from the current mount namespace's /dev/ptmx, makes its slave the controlling
 * terminal and stdio of the calling process (after setsid) and returns the master. */
int tty_setup_slave(char *errbuf, size_t errlen);
/* Gives the pty the size of berth's terminal (stdin's, else stdout's), if any. */
void tty_copy_winsize(int master);
/* Pumps between berth's stdio and the pty master until the master hangs up; raw mode and
 * SIGWINCH forwarding when stdin is a terminal. */
void tty_pump(int master);

/* cgroups: creates the container's cgroup and applies linux.resources; paths recorded in *out
 * (json object, owned) for delete.  No resources asked -> *out = NULL, nothing done. */
BERTH_MUST_CHECK int cgroup_setup(const char *id, const json_t *resources, pid_t pid, json_t **out,
                                  berth_error_t *err);
/* Adds pid to the cgroups recorded by cgroup_setup. */
BERTH_MUST_CHECK int cgroup_enter(const json_t *cg, pid_t pid, berth_error_t *err);
/* Removes the recorded cgroups (best effort, after the processes are gone). */
void cgroup_destroy(const json_t *cg);

/* Writes the uid/gid maps of pid from linux.uidMappings/gidMappings: directly when possible,
 * otherwise with newuidmap/newgidmap. */
BERTH_MUST_CHECK int idmap_write(pid_t pid, const json_t *linux_, berth_error_t *err);

#endif
