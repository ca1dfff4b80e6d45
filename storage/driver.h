/* Storage drivers: how a layer's files are kept on disk.
 *
 * A driver owns one directory, `<store root>/<driver name>/` (its `home`), and keeps one entry per
 * layer id inside it.  The store (storage/store.h) decides ids, keeps the JSON records, takes the
 * locks and calls the driver; the driver never locks anything itself.  Callers outside storage/
 * normally use the store API instead of these functions.
 *
 * Instances: `storage_driver_overlay` (kernel overlayfs; rootless inside a user namespace, with
 * the `userxattr` mount option) and `storage_driver_vfs` (each layer a full copy of its parent plus
 * its own changes).  storage_driver_lookup() picks one by name.
 *
 * Ids are what the store passes: [A-Za-z0-9_.-]{1,128}, never "", "." or "..": drivers check.
 *
 * Errors: every op returns < 0 with *err set (status ENOENT when the layer does not exist).
 */
#ifndef BERTH_STORAGE_DRIVER_H
#define BERTH_STORAGE_DRIVER_H

#include "common/error.h"
#include "common/stream.h"

#include <stdbool.h>
#include <stdint.h>

struct storage_driver;

/* Options for producing a diff. */
struct storage_diff_options {
    /* When >= 0, mtimes (and atimes/ctimes in pax headers) later than this are clamped to it
     * (SOURCE_DATE_EPOCH style). -1 keeps the files' own times. */
    int64_t clamp_mtime;
};

/* Result of applying a tar stream. */
struct storage_apply_result {
    uint64_t size;      /* bytes of file content written (apparent size of the layer's own data) */
    char *diff_digest;  /* sha256 of the uncompressed tar as read ("sha256:..."), owned */
    uint64_t diff_size; /* bytes of uncompressed tar read */
};
void storage_apply_result_clear(struct storage_apply_result *r);

/* Options for applying a tar stream. */
struct storage_apply_options {
    /* Where to write the "tar-split" record (raw headers + layout) so diff() can later reproduce
     * the exact input bytes; NULL = don't record. */
    const char *record_path;
};

struct storage_driver_ops {
    const char *name; /* "overlay", "vfs" */

    /* Prepares the driver home (mkdir, probes).  `rootless` is true when running in a user
     * namespace that is not the initial one.  Returns the driver's private state in *state. */
    int (*init)(const char *home, bool rootless, void **state, berth_error_t *err);
    void (*fini)(void *state);

    /* Creates an empty layer `id` whose lower layers are parent's (parent may be NULL). For vfs the
     * parent's contents are copied.  EEXIST if `id` exists. */
    int (*create)(void *state, const char *id, const char *parent, berth_error_t *err);
    /* Removes the layer's files (unmounting first if mounted).  ENOENT is not an error. */
    int (*remove)(void *state, const char *id, berth_error_t *err);
    /* Renames a layer (staging id -> final id).  EEXIST if `to` exists. Not listed in DESIGN.md:
     * the store builds each layer under a staging id and commits it with this rename. */
    int (*rename)(void *state, const char *from, const char *to, berth_error_t *err);
    bool (*exists)(void *state, const char *id);
    /* Re-parents a layer that is not committed yet (its own files were applied without the
     * parent): afterwards it is as if created on `parent` (NULL = none).  Only for drivers whose
     * layer directory does not depend on the parent's contents; NULL otherwise (vfs). */
    int (*set_parent)(void *state, const char *id, const char *parent, berth_error_t *err);

    /* Makes the layer's full filesystem (its chain of parents + its own changes) available as a
     * directory and returns its path (owned by the caller).  For overlay this mounts; the mount
     * is refcounted in `count_dir` (a runroot directory) so nested mount/unmount pairs from
     * several processes balance.  readonly: a committed layer is mounted read-only from its
     * lower dirs only (its files can't change, so its exact tar stays reproducible); a
     * container's rw layer is mounted with its diff dir as the writable upper dir.  vfs returns
     * the layer dir (readonly is not enforced there). */
    int (*mount)(void *state, const char *id, const char *count_dir, bool readonly, char **dir,
                 berth_error_t *err);
    /* Drops one reference (all of them when force) and unmounts at zero. */
    int (*unmount)(void *state, const char *id, const char *count_dir, bool force,
                   berth_error_t *err);

    /* Applies a tar stream (uncompressed) to the layer's own directory, translating OCI whiteouts
     * to the driver's form.  Paths are confined to the layer.  The layer must not be mounted. */
    int (*apply_diff)(void *state, const char *id, berth_reader_t *tar,
                      const struct storage_apply_options *opts, struct storage_apply_result *res,
                      berth_error_t *err);
    /* Returns an uncompressed tar stream of the layer's changes against its parent (whiteouts as
     * `.wh.` entries), deterministic order.  The reader is owned by the caller and is valid while
     * the layer exists. */
    int (*diff)(void *state, const char *id, const struct storage_diff_options *opts,
                berth_reader_t **out, berth_error_t *err);
    /* Directory holding the layer's own files (overlay: upper "diff" dir; vfs: the full copy).
     * Owned by caller. */
    char *(*layer_dir)(void *state, const char *id);

    /* Unmounts whatever is still mounted (best effort). */
    int (*cleanup)(void *state, berth_error_t *err);
};

extern const struct storage_driver_ops storage_driver_overlay;
extern const struct storage_driver_ops storage_driver_vfs;

/* Returns the driver named `name` ("overlay" or "vfs"); error (EINVAL) naming the valid choices
 * for anything else. */
BERTH_MUST_CHECK int storage_driver_lookup(const char *name, const struct storage_driver_ops **out,
                                           berth_error_t *err);

/* Checks whether overlay can be mounted here (in the current user namespace) using a scratch
 * directory under `home`; on failure returns false and stores the reason (owned) in *why. */
bool storage_overlay_probe(const char *home, bool rootless, char **why);
/* Removes probe-* directories (unmounting first) that an interrupted probe left under `home`.
 * The store runs probes and this cleanup only under its exclusive lock, so none is live. */
void storage_overlay_probe_cleanup(const char *home);

/* Checks a layer id (see above). */
BERTH_MUST_CHECK int storage_check_id(const char *id, berth_error_t *err);

#endif
