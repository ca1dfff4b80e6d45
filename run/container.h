/* Containers from the store: the glue between the layer store's container records (rw layer over
 * an image) and the runtime core.
 *
 * A container's record carries run/'s metadata (JSON): the generated OCI spec, the image name,
 * the command, status (created / running / exited), exit code and times.  Its runtime dir
 * (<runroot>/containers/<id>/userdata) is the OCI bundle (config.json), the runtime state root
 * (rt/<id>/state.json) and, for detached containers, the log (ctr.log).
 *
 * Foreground containers are children of the berth process; detached ones of a small monitor
 * process (double fork) that writes the log and, when the container ends, the exit code into the
 * record (and removes the container for --rm).  Nothing here prints to stdout. */
#ifndef BERTH_RUN_CONTAINER_H
#define BERTH_RUN_CONTAINER_H

#include "common/error.h"
#include "run/net/net.h"
#include "run/spec.h"
#include "storage/store.h"

#include <jansson.h>
#include <stdbool.h>

struct container_create_opts {
    const char *image;               /* image reference as looked up in the store */
    const char *name;                /* NULL = generated */
    const struct spec_options *spec; /* flags */
    bool rm;                         /* remove when it exits */
    bool interactive;                /* -i: stdin attached */
    const char *runtime;             /* --runtime: external OCI runtime binary, NULL = built in */
    const struct net_options *net;   /* network flags; NULL = spec->network only */
};

/* Creates the record and rw layer and generates the spec (the rootfs is mounted to resolve
 * -u names; it is left mounted).  *out gets the record. */
BERTH_MUST_CHECK int container_create(storage_store_t *s, const struct container_create_opts *o,
                                      storage_container_t **out, berth_error_t *err);

/* Exit status of `berth run` when berth itself failed (podman's 125). */
#define BERTH_RUN_FAILED_STATUS 125

struct container_start_opts {
    bool detach;
    /* store options, so a detached monitor can reopen the store on its own */
    const struct storage_options *store_opts;
};

/* Runs the container.  Foreground: waits, *status = exit status (128+signal), records it.
 * Detached: returns once the container runs (*status = 0). */
BERTH_MUST_CHECK int container_start(storage_store_t *s, const char *id,
                                     const struct container_start_opts *o, int *status,
                                     berth_error_t *err);

struct container_info {
    char *id, *name, *image, *command;
    char *status;                       /* "created", "running", "exited" */
    int exit_code;                      /* valid when exited */
    int64_t created, started, finished; /* unix seconds, 0 = never */
    pid_t pid;                          /* init's host pid when running */
    bool tty;
    char *ports; /* published ports as ps prints them ("" when none) */
};
void container_info_clear(struct container_info *i);
BERTH_MUST_CHECK int container_inspect(storage_store_t *s, const char *id_or_name,
                                       struct container_info *out, berth_error_t *err);

BERTH_MUST_CHECK int container_kill(storage_store_t *s, const char *id_or_name, int sig,
                                    berth_error_t *err);
/* SIGTERM (or the image's StopSignal), then SIGKILL after timeout seconds. */
BERTH_MUST_CHECK int container_stop(storage_store_t *s, const char *id_or_name, int timeout,
                                    berth_error_t *err);
/* Waits until the container is not running; *code = its exit code. */
BERTH_MUST_CHECK int container_wait(storage_store_t *s, const char *id_or_name, int *code,
                                    berth_error_t *err);
/* Removes the container; EBUSY when running unless force (then killed first). */
BERTH_MUST_CHECK int container_remove(storage_store_t *s, const char *id_or_name, bool force,
                                      berth_error_t *err);
/* Path of the detached container's log (owned). */
BERTH_MUST_CHECK int container_log_path(storage_store_t *s, const char *id_or_name, char **out,
                                        berth_error_t *err);

/* Runs a process in a running container (setns). */
BERTH_MUST_CHECK int container_exec(storage_store_t *s, const char *id_or_name, char **args,
                                    char **env, const char *cwd, const char *user, bool tty,
                                    bool interactive, bool detach, int *status, berth_error_t *err);

#endif
