/* Rootless operation: a non-root user's berth runs inside a user namespace (plus a private
 * mount namespace) in which it is uid/gid 0, with the user's /etc/subuid and /etc/subgid ranges
 * mapped via the setuid helpers newuidmap/newgidmap (berth has no setuid code of its own), so layer
 * files get the image's ownership.
 *
 * Mapping (as podman's): container id 0 -> the user's own uid/gid, container ids 1..N -> the
 * subordinate range(s) in file order.  When the user has no ranges (or the helpers are missing),
 * a single-id mapping (0 -> uid) is written directly after "deny" to setgroups, with a warning:
 * files owned by other ids in images then can't be represented and are stored as root.
 *
 * Call userns_ensure() early in main, before any thread is started: unshare(CLONE_NEWUSER)
 * fails in a multi-threaded process.
 */
#ifndef BERTH_STORAGE_USERNS_H
#define BERTH_STORAGE_USERNS_H

#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define USERNS_MAX_RANGES 16

struct userns_range {
    uint32_t container; /* first id inside the namespace */
    uint32_t host;      /* first id outside */
    uint32_t size;
};

struct userns_mapping {
    struct userns_range uids[USERNS_MAX_RANGES];
    size_t n_uids;
    struct userns_range gids[USERNS_MAX_RANGES];
    size_t n_gids;
    bool single_id; /* no subordinate ranges: only 0 -> the user's id */
};

/* The mapping berth would use for the user `name` (NULL: looked up from uid) with ids uid/gid,
 * built from /etc/subuid and /etc/subgid (entries by name or numeric id).  Never fails for a
 * missing file or entry: the result is then single_id. */
BERTH_MUST_CHECK int userns_get_mapping(const char *name, uid_t uid, gid_t gid,
                                        struct userns_mapping *out, berth_error_t *err);

/* The mapping of the current process's user namespace, read from /proc/self/{uid,gid}_map. */
BERTH_MUST_CHECK int userns_current_mapping(struct userns_mapping *out, berth_error_t *err);

/* True when the current process is in a user namespace other than the initial one. */
bool userns_in_namespace(void);

/* True when berth runs for a non-root user: euid != 0, or we are inside a (berth-made) user
 * namespace. */
bool userns_is_rootless(void);

/* The real (outside) uid of the user, also once inside the namespace (from the uid map, or the
 * BERTH_ROOTLESS_UID variable that userns_ensure exports). */
uid_t userns_host_uid(void);

/* If euid != 0 and not yet inside a user namespace: enters one as described above and becomes
 * uid/gid 0 in it (with all capabilities in it).  Returns 0 when already root or once inside;
 * < 0 with *err set when the namespace can't be created (e.g. unprivileged user namespaces
 * disabled).  The process must be single-threaded.  Also unshares the mount namespace and makes
 * "/" a slave so berth's mounts stay private to it. */
BERTH_MUST_CHECK int userns_ensure(berth_error_t *err);

#endif
