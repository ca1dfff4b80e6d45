/* The OCI runtime core: executes a runtime-spec config.json directly (no external runtime).
 *
 * Containers live as a state directory under a runtime root (runc's --root): <root>/<id>/ holds
 * state.json, the spec the container was created with (config.json) and, between create and
 * start, exec.fifo on which the container's init blocks just before exec'ing the user process.
 *
 * Process model: runtime_create() clones the container init with the requested namespaces,
 * writes the user namespace maps (directly, or through newuidmap/newgidmap for subordinate
 * ranges), places it in a cgroup when resource limits are asked for, and waits until the child
 * has prepared the rootfs (mounts, pivot_root, ...) and either exec'd (no fifo) or is blocked on
 * exec.fifo.  Errors of the child are reported back through a socket and returned as berth
 * errors.  Nothing here prints to stdout. */
#ifndef BERTH_RUN_RUNTIME_H
#define BERTH_RUN_RUNTIME_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* Default runtime root: /run/berth-runtime for root, $XDG_RUNTIME_DIR/berth-runtime otherwise
 * (owned). */
char *runtime_default_root(void);

struct runtime_create_opts {
    const char *root;           /* state root (required unless no_state) */
    const char *id;             /* container id: [A-Za-z0-9][A-Za-z0-9_.-]* */
    const char *bundle;         /* absolute directory; root.path is relative to it */
    const json_t *spec;         /* parsed config.json */
    bool no_state;              /* transient run: no state dir (berth run in the foreground) */
    bool wait_start;            /* create: init blocks on exec.fifo until runtime_start() */
    const char *console_socket; /* terminal: send the pty master to this unix socket */
    int *pty_master;            /* terminal without console_socket: receives the master */
    const char *pid_file;
    bool setsid_no_tty; /* put the init in its own session even without a terminal */
    /* the caller waits for the init (runtime_run sets it itself): SIGKILL the container if the
     * caller dies, so it never runs on as an orphan */
    bool die_with_parent;
    /* chroot isolation (run/isolation.h): a spec without pid (or even mount) namespace is
     * accepted, and a /proc, devpts, mqueue, hostname or masking the environment refuses is
     * bound from the host or left out instead of failing */
    bool chroot;
    /* called once the init exists (namespaces made, ids mapped) and before it prepares its
     * rootfs: networking attaches to the init's network namespace here (run/net) */
    int (*on_init)(pid_t pid, void *arg, berth_error_t *err);
    void *on_init_arg;
};

/* Creates (and, without wait_start, starts) a container.  *pid gets the init's host pid. */
BERTH_MUST_CHECK int runtime_create(const struct runtime_create_opts *o, pid_t *pid,
                                    berth_error_t *err);

/* create + wait: runs the spec in the foreground with berth's stdio (or a pty pumped to it when
 * process.terminal), forwards signals, cleans up, and returns the exit status
 * (128+signal for signal deaths) in *status. */
BERTH_MUST_CHECK int runtime_run(const struct runtime_create_opts *o, int *status,
                                 berth_error_t *err);

typedef enum {
    RUNTIME_CREATING,
    RUNTIME_CREATED,
    RUNTIME_RUNNING,
    RUNTIME_STOPPED,
} runtime_status_t;
const char *runtime_status_name(runtime_status_t s);

struct runtime_state {
    char *id, *bundle, *rootfs, *created, *owner;
    pid_t pid;
    runtime_status_t status;
    json_t *annotations; /* may be NULL */
};
void runtime_state_free(struct runtime_state *s);

BERTH_MUST_CHECK int runtime_state(const char *root, const char *id, struct runtime_state *out,
                                   berth_error_t *err);
/* The runc-format state document ({ociVersion,id,pid,status,bundle,rootfs,created,owner}). */
json_t *runtime_state_json(const struct runtime_state *s);
/* Ids of all containers under root (NULL-terminated, owned). */
BERTH_MUST_CHECK int runtime_list(const char *root, char ***ids, berth_error_t *err);

/* Lets a created container exec its process. */
BERTH_MUST_CHECK int runtime_start(const char *root, const char *id, berth_error_t *err);
BERTH_MUST_CHECK int runtime_kill(const char *root, const char *id, int sig, bool all,
                                  berth_error_t *err);
/* Removes the state (and cgroup); EBUSY when not stopped unless force (then SIGKILL first). */
BERTH_MUST_CHECK int runtime_delete(const char *root, const char *id, bool force,
                                    berth_error_t *err);

/* A process to run inside an existing container (runc exec). */
struct runtime_exec_opts {
    const char *root, *id;
    const json_t *process;  /* runtime-spec "process" object; NULL = from args below */
    char **args;            /* used when process is NULL */
    char **env;             /* extra KEY=VALUE */
    const char *cwd, *user; /* NULL = the container's */
    bool terminal;
    const char *console_socket; /* as for create */
    const char *pid_file;
    bool detach; /* return once started (status not waited for) */
};
/* Runs the process; without detach waits and returns its exit status in *status. */
BERTH_MUST_CHECK int runtime_exec(const struct runtime_exec_opts *o, int *status,
                                  berth_error_t *err);

/* Parses a signal name or number ("KILL", "SIGTERM", "9"); -1 if unknown. */
int runtime_parse_signal(const char *s);

#endif
