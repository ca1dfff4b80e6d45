/* Opening the store for CLI commands (see store_open.h). */
#include "cmd/store_open.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "storage/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* Says once per store (a marker file in its root) what a rootless store without subordinate
 * ids, or without any user namespace, cannot do. */
static void warn_once(storage_store_t *s, const char *what)
{
    cleanup_free char *marker = xasprintf("%s/.rootless-limits-warned", storage_store_root(s));
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* said before (or the store is read-only: then it is not ours to mark) */
    close(fd);
    log_warn("%s: files in images are stored with your own uid; chown to other ids and setuid "
             "files in RUN steps will not be kept, and `berth run` cannot switch users. Add a "
             "range to /etc/subuid and /etc/subgid (e.g. \"%u:100000:65536\") for full support. "
             "(said once per store)",
             what, (unsigned)userns_host_uid());
}

int cli_store_open(struct berth_globals *g, storage_store_t **out, berth_error_t *err)
{
    /* no user namespace at all (seccomp or a sysctl denies it): a non-root user still gets a
     * working store, with vfs and files owned by the user */
    cleanup_free char *no_userns = NULL;
    if (userns_ensure(err) < 0) {
        int e = berth_error_status(*err);
        if (e != EPERM && e != ENOSPC && e != EUSERS && e != EINVAL && e != ENOSYS)
            return -1;
        no_userns = xasprintf("no user namespace can be made here (%s)", berth_error_msg(*err));
        berth_error_release(err);
    }
    struct storage_options o = {
        .root = g->root,
        .runroot = g->runroot,
        .driver = g->storage_driver,
    };
    if (storage_store_open(&o, out, err) < 0)
        return -1;
    struct userns_mapping m;
    berth_error_t e2 = NULL;
    if (no_userns)
        warn_once(*out, no_userns);
    else if (userns_in_namespace() && userns_current_mapping(&m, &e2) == 0 && m.single_id)
        warn_once(*out, "no subordinate id ranges for this user in /etc/subuid and /etc/subgid");
    berth_error_release(&e2);
    return 0;
}
