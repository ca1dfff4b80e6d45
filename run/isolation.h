/* How strongly a RUN step (or `berth run`) can be isolated in the environment berth runs in.
 *
 * Names are buildah's: "oci" and "rootless" run the process in its own user (rootless), mount,
 * pid, uts, ipc and network namespaces with a fresh /proc, as the runtime core always did;
 * "chroot" runs it with only what the environment allows: a user and mount namespace when they
 * can be made, /proc and /sys bound read-only from the host when a new proc can't be mounted,
 * /dev from bound device nodes, no pid namespace, no new hostname when sethostname is denied, and
 * a plain chroot when not even a mount namespace can be made.  That is what works inside an
 * ordinary (rootless) podman or docker container.
 *
 * "auto" (the default) probes once what works and picks the strongest mode; the probe result is
 * cached in the runroot, keyed by everything that decides it (kernel, id maps, capability bounding
 * set, seccomp state), so one environment probes once. */
#ifndef BERTH_RUN_ISOLATION_H
#define BERTH_RUN_ISOLATION_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

/* The annotation a chroot-isolation spec carries, so that a container created now is started
 * (by `berth start`, the monitor, `berth runtime`) the same way. */
#define RUN_ISOLATION_ANNOTATION "run.berth.isolation"

typedef enum {
    RUN_ISOLATION_AUTO,
    RUN_ISOLATION_OCI,
    RUN_ISOLATION_ROOTLESS,
    RUN_ISOLATION_CHROOT,
} run_isolation_t;

/* "auto", "oci", "rootless", "chroot" (NULL or "" = auto); EINVAL names the choices. */
BERTH_MUST_CHECK int run_isolation_parse(const char *s, run_isolation_t *out, berth_error_t *err);
const char *run_isolation_name(run_isolation_t i);

/* What the environment allows, as found by the probe. */
struct run_probe {
    bool need_userns; /* berth runs rootless: containers need a (nested) user namespace */
    bool userns;      /* a new user namespace can be made */
    bool mountns;     /* a new mount namespace, in which mounts can be made */
    bool proc;        /* a new pid namespace with a fresh proc mounted */
    bool uts;         /* a new uts namespace with sethostname */
    bool net;         /* a new network namespace */
    char why[192];    /* the first thing that failed ("" when everything works) */
};

/* Probes (or reads the cached result from cache_dir, NULL = no cache). Never fails: a probe that
 * cannot run reports nothing allowed. */
void run_isolation_probe(const char *cache_dir, struct run_probe *out);

/* The mode to use for `requested`: explicit modes stay (rootless and oci are the same full
 * isolation, named by whether berth is rootless); auto becomes full isolation when the probe
 * allows it, else chroot.  *why gets a one-line reason for chroot ("" otherwise). */
run_isolation_t run_isolation_resolve(run_isolation_t requested, const struct run_probe *p,
                                      const char **why);

#endif
