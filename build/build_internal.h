/* Internal to build/: shared pieces of the builder (config documents, layer commits, COPY/ADD
 * plans, RUN, cache).  Not used outside build/. */
#ifndef BERTH_BUILD_INTERNAL_H
#define BERTH_BUILD_INTERNAL_H

#include "build/ignore.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/stream.h"
#include "storage/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

/* ---- image config documents (commit.c) ---- */

/* A new config for a scratch image (this machine's os/architecture, empty rootfs). */
json_t *bld_config_scratch(void);
/* The config document of an image in the store (a deep copy the caller owns). */
BERTH_MUST_CHECK int bld_config_from_image(storage_store_t *s, const char *image_id, json_t **out,
                                           berth_error_t *err);
/* The "config" object inside the document (created when missing). */
json_t *bld_exec_config(json_t *doc);
void bld_history_add(json_t *doc, const char *created_by, bool empty_layer, int64_t ts);
void bld_diff_id_add(json_t *doc, const char *diff_id);
/* Writes the image record: manifest (OCI or Docker, uncompressed layer descriptors) over the
 * layer chain ending at top_layer, config with "created" = ts.  names: NULL-terminated
 * references already normalised, may be NULL.  annotations: object of strings for the OCI
 * manifest, or NULL.  *image_id (optional) gets the id. */
BERTH_MUST_CHECK int bld_image_write(storage_store_t *s, json_t *doc, const char *top_layer,
                                     bool docker, const json_t *annotations, int64_t ts,
                                     char **names, char **image_id, berth_error_t *err);
/* "localhost/x:latest" form of a user-given name. */
BERTH_MUST_CHECK int bld_local_name(const char *s, char **out, berth_error_t *err);

/* ---- working layers (commit.c) ---- */

/* A read-write layer over parent, mounted. */
struct bld_rw {
    char *id;  /* rw layer id */
    char *dir; /* mount point */
    int root_fd;
};
BERTH_MUST_CHECK int bld_rw_open(storage_store_t *s, const char *parent, struct bld_rw *rw,
                                 berth_error_t *err);
/* Unmounts, turns the changes into a layer on parent (clamp >= 0 clamps mtimes), removes the
 * rw layer.  *out gets the new layer (NULL when nothing changed? never: an empty diff still makes
 * a layer). */
BERTH_MUST_CHECK int bld_rw_commit(storage_store_t *s, struct bld_rw *rw, const char *parent,
                                   int64_t clamp, storage_layer_t **out, berth_error_t *err);
/* Unmounts and removes without committing (safe on a zeroed struct). */
void bld_rw_abort(storage_store_t *s, struct bld_rw *rw);
/* Working layers of builds are named BLD_RW_PREFIX "<pid>-<random>". */
#define BLD_RW_PREFIX "berth-build-"
/* Removes the working layers and temporary files of builds that no longer run (killed). */
void bld_cleanup_stale(storage_store_t *s, const char *cache_dir);
/* A layer holding the whole filesystem of top (for --squash): new base layer. */
BERTH_MUST_CHECK int bld_squash(storage_store_t *s, const char *top, int64_t clamp,
                                storage_layer_t **out, berth_error_t *err);

/* ---- file digests with a stat memo (cache.c) ---- */

struct bld_memo;
/* Loads <dir>/filehash.memo (missing = empty). */
struct bld_memo *bld_memo_open(const char *dir);
/* Saves (atomically) when changed, frees. */
void bld_memo_close(struct bld_memo *m);
/* sha256 of the content of the regular file fd (st its fstat), memoised by
 * (dev, ino, size, mtime_ns, ctime_ns).  m may be NULL. */
BERTH_MUST_CHECK int bld_memo_file_digest(struct bld_memo *m, int fd, const struct stat *st,
                                          char **out, berth_error_t *err);
/* The memoised digest for st (an lstat/fstat of the file) without opening it; false if none. */
bool bld_memo_lookup(struct bld_memo *m, const struct stat *st, char **out);

/* ---- the step cache (cache.c) ---- */

/* Step cache entries: <dir>/keys/<hex>.json = {"layer": id|null}. */
BERTH_MUST_CHECK int bld_cache_lookup(const char *dir, const char *key, bool *found, char **layer,
                                      berth_error_t *err);
BERTH_MUST_CHECK int bld_cache_store(const char *dir, const char *key, const char *layer,
                                     berth_error_t *err);
/* Next key: sha256(prev "\n" text "\n" inputs). */
char *bld_cache_key(const char *prev, const char *text, const char *inputs);
/* Exports/imports cache entries (and their layers) to/from an OCI layout ("oci:DIR" or "DIR")
 * or a registry ("docker://REPO:TAG", with sys for TLS and credentials; may be NULL). */
struct system_context;
BERTH_MUST_CHECK int bld_cache_export(storage_store_t *s, const char *dir, const char *ref,
                                      char *const *keys, const struct system_context *sys,
                                      berth_error_t *err);
BERTH_MUST_CHECK int bld_cache_import(storage_store_t *s, const char *dir, const char *ref,
                                      const struct system_context *sys, berth_error_t *err);

/* ---- COPY / ADD (copy_in.c) ---- */

struct copy_top;
struct copy_item;
struct copy_plan {
    struct copy_top *tops;
    size_t ntops;
    struct copy_item *items;
    size_t nitems;
    char *dest;       /* absolute, cleaned, with a trailing '/' kept as dest_dir */
    bool dest_dir;    /* dest ended with '/' or several sources */
    char **tmp_files; /* downloaded URLs, removed by copy_plan_clear */
    int tmp_dir_fd;
};
void copy_plan_clear(struct copy_plan *p);

struct copy_source {
    int fd;                   /* root of the sources (context dir or a stage rootfs) */
    const struct ignore *ign; /* NULL = no filtering */
    bool is_context;          /* paths escaping it are an error; ownership reset to 0:0 */
};

/* Resolves srcs (wildcards, dirs walked) into a plan.  add: URLs downloaded into tmpdir
 * (checksum verified when given) and local archives marked for extraction. */
BERTH_MUST_CHECK int copy_plan_make(const struct copy_source *src, char *const *srcs, size_t nsrcs,
                                    const char *dest_abs, bool add, const char *checksum,
                                    const char *tmpdir, struct copy_plan *p, berth_error_t *err);
/* Decides which ADD sources are archives to extract (reads their first bytes).  Call before
 * copy_plan_apply / copy_plan_layer; not needed for the digest. */
void copy_plan_detect_archives(struct copy_plan *p);
/* Feeds every input (names, modes, link targets, content digests) to d. */
BERTH_MUST_CHECK int copy_plan_digest(const struct copy_plan *p, struct bld_memo *m, digester_t *d,
                                      berth_error_t *err);

struct copy_owner {
    bool set; /* --chown given (else 0:0 for the context, kept for other sources) */
    uid_t uid;
    gid_t gid;
    int chmod;        /* -1 = keep */
    bool reset_owner; /* context: 0:0 unless set */
};
BERTH_MUST_CHECK int copy_plan_apply(const struct copy_plan *p, int root_fd,
                                     const struct copy_owner *own, berth_error_t *err);
/* Read access to a plan's parts (for layer_tar.c). */
struct copy_top_view {
    int fd;
    const char *src, *name;
    bool is_dir, extract, url;
    int64_t mtime;
};
void copy_plan_top(const struct copy_plan *p, size_t i, struct copy_top_view *out);
void copy_plan_item(const struct copy_plan *p, size_t i, size_t *top, const char **rel,
                    const struct stat **st, const char **link);
/* The layer a plan makes, as a tar stream (layer_tar.c): parent_fd is the mounted parent rootfs
 * (-1 for scratch), used to resolve the destination and to describe its existing ancestors;
 * mtimes later than clamp (>= 0) are clamped.  Reader owned by the caller; the plan, the owner
 * and the source fds must stay valid until it is closed. */
BERTH_MUST_CHECK int copy_plan_layer(const struct copy_plan *p, int parent_fd,
                                     const struct copy_owner *own, int64_t clamp,
                                     berth_reader_t **out, berth_error_t *err);
/* Parses --chown against the rootfs's /etc/passwd and /etc/group. */
BERTH_MUST_CHECK int copy_parse_chown(int root_fd, const char *spec, uid_t *uid, gid_t *gid,
                                      berth_error_t *err);
/* Cleans a relative path lexically; fails (EPERM) when it climbs out with "..". */
BERTH_MUST_CHECK int copy_clean_inside(const char *path, char **out, berth_error_t *err);

/* ---- RUN (run_step.c) ---- */

struct bld_run {
    char **argv;
    char **env;
    const char *workdir; /* absolute, created if missing */
    const char *user;
    const char *network; /* "none" (default) or "host" */
    const char *hostname;
    json_t *mounts; /* extra runtime-spec mounts (array) or NULL, borrowed */
    bool terminal;
    bool stdout_to_stderr; /* the process's stdout goes to our stderr (build -q) */
    const char *isolation; /* --isolation: auto (NULL), oci, rootless, chroot */
    const char *runroot;   /* where the isolation probe is cached (NULL: not cached) */
};
/* Runs argv inside rootfs (a mounted rw layer) with the run core; *status = exit status. */
BERTH_MUST_CHECK int bld_run(const char *rootfs, const struct bld_run *r, int *status,
                             berth_error_t *err);

#endif
