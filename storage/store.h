/* The layer store: layers, images and containers on disk, shared by every berth process.
 *
 * Layout under the root (default /var/lib/berth/storage, rootless
 * $XDG_DATA_HOME/berth/storage = ~/.local/share/berth/storage):
 *     storage.lock                 flock: shared for reads, exclusive for writes
 *     driver.json                  {"driver": "overlay"|"vfs", "overlay_probe": "ok"|reason}
 *     layers/<id>.json             layer records;  layers/<id>.tar-split.gz  exact-tar records
 *     layers/<id>.lock             per-layer flock (held by its writer / mounter)
 *     images/<id>/image.json       image record; images/<id>/<key> big-data items
 *                                  ("manifest", "config", others by key, base64url names)
 *     containers/<id>/container.json, containers/<id>/userdata/   container record and files
 *     staging/<pid>-<rand>.lock    held (flock) by a live writer while it builds a layer
 *     <driver>/                    the driver's files (storage/driver.h)
 * and under the runroot (default /run/berth, rootless $XDG_RUNTIME_DIR/berth or /tmp/berth-$UID):
 *     mounts/<id>.count            mount reference counts
 *     containers/<id>/userdata/    per-container runtime files
 *
 * Ids: layers created from a tar get id = hex of their chain id (sha256 of the parent's chain id,
 * " ", and the diff digest; the diff digest alone for a base layer), so two processes applying the
 * same layer end with one copy.  Images: id = hex of the config digest.  Containers and rw layers:
 * random 64-hex ids.
 *
 * Crash safety: a layer is built under a staging id whose lock file is held by its writer; at
 * commit the driver dir is renamed to the final id, then the record is written atomically.  A
 * record is the commit point: a driver dir without a record and without a live staging lock is
 * garbage, removed by storage_store_open() (and reported/repaired by storage_check()).
 *
 * Locking: every function below takes the store lock itself (shared for lookups, exclusive for
 * changes).  Callers doing check-then-act sequences may hold it across calls with
 * storage_store_lock()/storage_store_unlock(); nested use is allowed.  Applying a layer's tar
 * happens WITHOUT the store lock held (only the staging lock), so long pulls don't block others.
 *
 * Ownership: returned structs belong to the caller and are released with their _free function
 * (or cleanup_* attributes); strings inside them are owned by the struct.  Returned lists are
 * NULL-terminated arrays released with the matching _list_free.
 *
 * Errors: < 0 with *err set; status ENOENT for "no such layer/image/container", EEXIST for a
 * duplicate name, EBUSY for something still in use (image used by a container, layer with
 * children), EINVAL for bad arguments (ids, names).
 */
#ifndef BERTH_STORAGE_STORE_H
#define BERTH_STORAGE_STORE_H

#include "common/error.h"
#include "common/stream.h"
#include "storage/driver.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct storage_store storage_store_t;

struct storage_options {
    const char *root;    /* NULL = default for this user (see above) */
    const char *runroot; /* NULL = default for this user */
    /* NULL = the driver recorded in the store, else overlay if the probe succeeds, else vfs
     * (with a warning that says why).  A driver different from the recorded one is an error
     * when the store already has layers. */
    const char *driver;
};

/* Default root and runroot for the current effective user (owned by caller). For a rootless user
 * running inside berth's user namespace (uid 0 there) the defaults are still the user's: the
 * decision uses the real user (see userns_is_rootless()). */
BERTH_MUST_CHECK int storage_default_paths(char **root, char **runroot, berth_error_t *err);

/* Opens (creating if needed) the store; removes incomplete layers left by crashed writers. */
BERTH_MUST_CHECK int storage_store_open(const struct storage_options *opts, storage_store_t **out,
                                        berth_error_t *err);
void storage_store_close(storage_store_t *s); /* NULL-safe; does not unmount anything */
static inline void cleanup_storage_storep(storage_store_t **s)
{
    storage_store_close(*s);
    *s = (storage_store_t *)0;
}
#define cleanup_storage_store __attribute__((cleanup(cleanup_storage_storep)))

const char *storage_store_root(const storage_store_t *s);
const char *storage_store_runroot(const storage_store_t *s);
const char *storage_store_driver_name(const storage_store_t *s);

/* Store-wide lock held across several calls (nested calls inside are fine). */
BERTH_MUST_CHECK int storage_store_lock(storage_store_t *s, bool exclusive, berth_error_t *err);
void storage_store_unlock(storage_store_t *s);

/* ---------------------------------------------------------------- layers */

typedef struct storage_layer {
    char *id;
    char *parent;            /* parent layer id, NULL for a base layer */
    char *diff_digest;       /* uncompressed tar digest (DiffID); NULL for rw/empty layers */
    int64_t diff_size;       /* -1 when unknown */
    char *compressed_digest; /* as pulled, NULL when unknown */
    int64_t compressed_size; /* -1 when unknown */
    int64_t created;         /* unix seconds */
    bool has_tar_split;      /* exact original tar can be reproduced */
    bool rw;                 /* a container's read-write layer */
} storage_layer_t;

void storage_layer_free(storage_layer_t *l);
void storage_layer_list_free(storage_layer_t **v);
static inline void cleanup_storage_layerp(storage_layer_t **l)
{
    storage_layer_free(*l);
    *l = (storage_layer_t *)0;
}
#define cleanup_storage_layer __attribute__((cleanup(cleanup_storage_layerp)))

struct storage_layer_options {
    const char *parent;               /* parent layer id or NULL */
    const char *compressed_digest;    /* optional, recorded as given (caller verified it) */
    int64_t compressed_size;          /* -1 when unknown */
    const char *expected_diff_digest; /* optional: fail (and keep nothing) if it differs */
};

/* "sha256:<hex>" chain id of a layer with this diff digest on top of parent_chain_id (NULL for a
 * base layer). Owned by caller. */
char *storage_chain_id(const char *parent_chain_id, const char *diff_digest);

/* Creates a layer from a tar stream.  The stream may be gzip/zstd compressed (detected) or plain;
 * it is read to EOF and not closed.  Memory stays constant whatever its size.  If a layer with the
 * same chain id already exists (another process got there first) that layer is returned and the
 * new copy discarded. */
BERTH_MUST_CHECK int storage_layer_create_from_tar(storage_store_t *s,
                                                   const struct storage_layer_options *opts,
                                                   berth_reader_t *tar, storage_layer_t **out,
                                                   berth_error_t *err);
/* Staged layers: a tar applied into an invisible staging layer before its parent is known or
 * committed, so several layers of one image can be applied at once (one thread each) and then
 * committed in order.  Only drivers whose layer contents do not depend on the parent can stage
 * (overlay); storage_store_can_stage() tells.  A staged layer keeps a staging lock, so other
 * processes' cleanup leaves it alone; after a crash it is removed as an incomplete layer.
 * Thread safety: a store handle may be used from several threads for these calls and the
 * lookups (the store lock is also a recursive mutex). */
typedef struct storage_staged_layer storage_staged_layer_t;
bool storage_store_can_stage(storage_store_t *s);
/* Applies `tar` (compressed or not, read to EOF, not closed) into a new staged layer, verifying
 * opts->expected_diff_digest; opts->parent is ignored.  ENOTSUP when the driver can't stage. */
BERTH_MUST_CHECK int storage_layer_stage_from_tar(storage_store_t *s,
                                                  const struct storage_layer_options *opts,
                                                  berth_reader_t *tar, storage_staged_layer_t **out,
                                                  berth_error_t *err);
/* "sha256:..." digest of the staged layer's uncompressed tar (borrowed). */
const char *storage_staged_layer_diff_digest(const storage_staged_layer_t *sl);
/* Makes the staged layer visible on top of `parent` (a committed layer id, or NULL): its id is
 * the chain id; returns 0.  If that layer already exists it is returned with 1 and the staged
 * copy stays for discard.  The staged layer must still be discarded afterwards (frees it). */
BERTH_MUST_CHECK int storage_layer_commit_staged(storage_store_t *s, storage_staged_layer_t *sl,
                                                 const char *parent, storage_layer_t **out,
                                                 berth_error_t *err);
/* Removes the staged layer unless committed, and frees it.  NULL is a no-op. */
void storage_staged_layer_discard(storage_store_t *s, storage_staged_layer_t *sl);

/* Creates an empty read-write layer over parent (NULL = empty), random id unless id given. */
BERTH_MUST_CHECK int storage_layer_create_rw(storage_store_t *s, const char *id, const char *parent,
                                             storage_layer_t **out, berth_error_t *err);
/* Looks up by full id. */
BERTH_MUST_CHECK int storage_layer_get(storage_store_t *s, const char *id, storage_layer_t **out,
                                       berth_error_t *err);
BERTH_MUST_CHECK int storage_layer_list(storage_store_t *s, storage_layer_t ***out,
                                        berth_error_t *err);
/* Finds a layer whose diff digest or compressed digest is `digest` (any parent), e.g. to skip a
 * blob a pull already has.  ENOENT if none; the first match (lowest id) when several. */
BERTH_MUST_CHECK int storage_layer_find_by_digest(storage_store_t *s, const char *digest,
                                                  storage_layer_t **out, berth_error_t *err);
/* Records the compressed digest/size of a layer (e.g. after a push compressed it). */
BERTH_MUST_CHECK int storage_layer_set_compressed(storage_store_t *s, const char *id,
                                                  const char *digest, int64_t size,
                                                  berth_error_t *err);
/* Fails with EBUSY if another layer, an image or a container uses it. */
BERTH_MUST_CHECK int storage_layer_remove(storage_store_t *s, const char *id, berth_error_t *err);
/* Removes "dangling" layers: committed read-only layers that no image, container or other
 * layer uses (e.g. what a killed pull committed before it could create its image).  A layer
 * a live writer (another open handle that staged or reused layers: a pull in progress) may be
 * about to use is kept when it is younger than busy_min_age seconds.  *removed: the removed ids
 * (NULL-terminated, owned; set even on error). */
BERTH_MUST_CHECK int storage_layer_prune(storage_store_t *s, int64_t busy_min_age, char ***removed,
                                         berth_error_t *err);
/* First step of a layer removal, exposed so tests can simulate a crash right after it: durably
 * removes the layer's record (the layer is gone for every reader; its files are an orphan that
 * the next store open removes).  Callers hold the store lock exclusively. */
BERTH_MUST_CHECK int storage_layer_remove_record_step(storage_store_t *s, const char *id,
                                                      berth_error_t *err);
/* Tar stream of the layer's changes.  For an unmodified layer applied from a tar (has_tar_split,
 * clamp_mtime < 0) the stream is byte-identical to the original uncompressed tar and is verified
 * against diff_digest while it is read.  Reader owned by caller; opts may be NULL. */
BERTH_MUST_CHECK int storage_layer_diff(storage_store_t *s, const char *id,
                                        const struct storage_diff_options *opts,
                                        berth_reader_t **out, berth_error_t *err);
/* Mounts the layer (with its parents) and returns the directory (owned): read-only for a layer
 * from a tar (its files must not change: the exact tar is rebuilt from them), writable for a
 * container's rw layer (storage_layer_create_rw).  Refcounted across
 * processes via the runroot.  Rootless overlay mounts live in berth's mount namespace, so they
 * vanish when the process exits unless it runs inside `berth unshare`. */
BERTH_MUST_CHECK int storage_layer_mount(storage_store_t *s, const char *id, char **dir,
                                         berth_error_t *err);
BERTH_MUST_CHECK int storage_layer_unmount(storage_store_t *s, const char *id, bool force,
                                           berth_error_t *err);
/* Disk usage (bytes) of the layer's own files. */
BERTH_MUST_CHECK int storage_layer_disk_usage(storage_store_t *s, const char *id, uint64_t *bytes,
                                              berth_error_t *err);

/* ---------------------------------------------------------------- images */

typedef struct storage_image {
    char *id;        /* hex of the config digest */
    char **names;    /* NULL-terminated, e.g. "localhost/busybox:latest" */
    char *top_layer; /* NULL for an image without layers */
    char *digest;    /* manifest digest "sha256:..." */
    char **big_data; /* NULL-terminated keys ("manifest", "config", ...) */
    int64_t created; /* unix seconds (record creation) */
} storage_image_t;

void storage_image_free(storage_image_t *i);
void storage_image_list_free(storage_image_t **v);
static inline void cleanup_storage_imagep(storage_image_t **i)
{
    storage_image_free(*i);
    *i = (storage_image_t *)0;
}
#define cleanup_storage_image __attribute__((cleanup(cleanup_storage_imagep)))

struct storage_big_data {
    const char *key; /* [A-Za-z0-9_.:@+-]{1,128}; not "image.json" */
    const void *data;
    size_t len;
};

struct storage_image_options {
    const char *const *names; /* NULL-terminated or NULL; must be valid references (normalised
                                 by the caller, e.g. "localhost/x:latest") */
    const char *top_layer;    /* may be NULL */
    const void *manifest;     /* required */
    size_t manifest_len;
    const void *config; /* required; id = sha256 of these bytes */
    size_t config_len;
    const char *digest;                   /* manifest digest; NULL = sha256 of manifest */
    const struct storage_big_data *extra; /* optional, n_extra items */
    size_t n_extra;
};

/* Creates an image record.  The top layer must exist (ENOENT otherwise: a concurrent rmi may have
 * collected a fresh layer nobody referenced yet; callers retry).  If the image exists already, its
 * names are merged (and moved from other images) and it is returned: concurrent pulls of one image
 * both succeed. */
BERTH_MUST_CHECK int storage_image_create(storage_store_t *s,
                                          const struct storage_image_options *opts,
                                          storage_image_t **out, berth_error_t *err);
/* Finds an image by: full id, "sha256:<id>", manifest digest, a unique id prefix (>= 3 hex
 * chars), or a name ("localhost/busybox:latest"; a name without tag means ":latest"; a short
 * name like "busybox" matches "<any domain>/busybox:latest" or ".../library/busybox:latest" if
 * exactly one image matches).  ENOENT when nothing matches, EINVAL when ambiguous. */
BERTH_MUST_CHECK int storage_image_lookup(storage_store_t *s, const char *ref,
                                          storage_image_t **out, berth_error_t *err);
BERTH_MUST_CHECK int storage_image_list(storage_store_t *s, storage_image_t ***out,
                                        berth_error_t *err);
/* Adds a name (tag), removing it from any other image. */
BERTH_MUST_CHECK int storage_image_add_name(storage_store_t *s, const char *id, const char *name,
                                            berth_error_t *err);
/* Removes a name; ENOENT if the image doesn't have it. */
BERTH_MUST_CHECK int storage_image_remove_name(storage_store_t *s, const char *id, const char *name,
                                               berth_error_t *err);
/* Removes the image record and then every layer of its chain that no other image, container or
 * layer uses.  EBUSY if a container uses it (unless force: then those containers are removed). */
BERTH_MUST_CHECK int storage_image_remove(storage_store_t *s, const char *id, bool force,
                                          berth_error_t *err);
/* Reads a big-data item (at most max bytes, EFBIG beyond); NUL-terminated, *len optional. */
BERTH_MUST_CHECK int storage_image_get_big_data(storage_store_t *s, const char *id, const char *key,
                                                size_t max, char **out, size_t *len,
                                                berth_error_t *err);
BERTH_MUST_CHECK int storage_image_set_big_data(storage_store_t *s, const char *id, const char *key,
                                                const void *data, size_t len, berth_error_t *err);
/* Layer ids of the image from the base to the top (NULL-terminated, owned); see
 * storage_layer_chain. */
BERTH_MUST_CHECK int storage_image_layers(storage_store_t *s, const char *id, char ***out,
                                          berth_error_t *err);

/* The one layer-chain walker: the layers from the base up to `top` (NULL: none), NULL-terminated
 * and owned (storage_layer_list_free), *n their number.  A chain longer than
 * STORAGE_LAYER_CHAIN_MAX (a parent loop in damaged records) is an error (ELOOP), never a silent
 * cut; a missing layer is ENOENT. */
#define STORAGE_LAYER_CHAIN_MAX 4096
BERTH_MUST_CHECK int storage_layer_chain(storage_store_t *s, const char *top,
                                         storage_layer_t ***out, size_t *n, berth_error_t *err);

/* ---------------------------------------------------------------- containers */

typedef struct storage_container {
    char *id;
    char *name;
    char *image_id; /* NULL for a container from scratch */
    char *layer;    /* its rw layer id */
    char *metadata; /* opaque JSON text owned by run/, may be NULL */
    int64_t created;
} storage_container_t;

void storage_container_free(storage_container_t *c);
void storage_container_list_free(storage_container_t **v);
static inline void cleanup_storage_containerp(storage_container_t **c)
{
    storage_container_free(*c);
    *c = (storage_container_t *)0;
}
#define cleanup_storage_container __attribute__((cleanup(cleanup_storage_containerp)))

struct storage_container_options {
    const char *id;       /* NULL = random */
    const char *name;     /* NULL = id's first 12 chars prefixed "berth-"; EEXIST if taken */
    const char *image_id; /* NULL = scratch */
    const char *metadata; /* JSON text or NULL */
};

BERTH_MUST_CHECK int storage_container_create(storage_store_t *s,
                                              const struct storage_container_options *opts,
                                              storage_container_t **out, berth_error_t *err);
/* By id, name, or unique id prefix. */
BERTH_MUST_CHECK int storage_container_get(storage_store_t *s, const char *id_or_name,
                                           storage_container_t **out, berth_error_t *err);
BERTH_MUST_CHECK int storage_container_list(storage_store_t *s, storage_container_t ***out,
                                            berth_error_t *err);
BERTH_MUST_CHECK int storage_container_set_metadata(storage_store_t *s, const char *id,
                                                    const char *metadata, berth_error_t *err);
/* Unmounts and removes the rw layer, record and directories. */
BERTH_MUST_CHECK int storage_container_remove(storage_store_t *s, const char *id,
                                              berth_error_t *err);
/* Mounts the container's rootfs (rw layer over the image) and returns it (owned). */
BERTH_MUST_CHECK int storage_container_mount(storage_store_t *s, const char *id, char **dir,
                                             berth_error_t *err);
BERTH_MUST_CHECK int storage_container_unmount(storage_store_t *s, const char *id, bool force,
                                               berth_error_t *err);
/* Per-container persistent dir (<root>/containers/<id>/userdata) and runtime dir
 * (<runroot>/containers/<id>/userdata), created if missing; owned by caller. */
BERTH_MUST_CHECK int storage_container_dirs(storage_store_t *s, const char *id, char **userdata,
                                            char **rundir, berth_error_t *err);

/* ---------------------------------------------------------------- maintenance */

struct storage_check_report {
    char **problems; /* NULL-terminated human-readable lines (owned) */
    size_t n_problems;
    size_t n_repaired;
};
void storage_check_report_clear(struct storage_check_report *r);
/* Finds orphaned driver dirs, stale staging dirs, records naming missing layers/parents, unreadable
 * records.  With repair, removes what is broken (images whose layers are gone, orphan dirs). */
BERTH_MUST_CHECK int storage_check(storage_store_t *s, bool repair,
                                   struct storage_check_report *out, berth_error_t *err);

#endif
