/* The image builder: executes a Containerfile (berth build) and scripted builds on working
 * containers (berth from / build-exec / cp / config / commit).
 *
 * Build model: each stage starts from an image of the store (or scratch, or an earlier stage).
 * Metadata instructions (ENV, CMD, LABEL, ...) only change the image config and add an
 * empty_layer history entry.  COPY/ADD/RUN create a read-write layer over the current top layer,
 * mount it, apply the change, and turn the rw layer's diff into a new layer (storage/) whose id
 * is its chain id; the rw layer is then removed.  Every step has a cache key (build/cache.h);
 * with layers enabled a key already seen reuses its layer ("Using cache").
 *
 * Output: progress lines like buildah's go to opts->progress (a FILE the CLI chooses; nothing
 * here writes to stdout by itself).  RUN processes inherit the caller's stdio.
 *
 * Errors: < 0 with *err set; messages name the Containerfile line ("Containerfile:7: COPY ...").
 */
#ifndef BERTH_BUILD_BUILDER_H
#define BERTH_BUILD_BUILDER_H

#include "common/error.h"
#include "storage/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct system_context;

struct builder_options {
    const char *context;       /* context directory (required) */
    const char *containerfile; /* path of the Containerfile (required; "-" = stdin) */
    char **build_args;         /* NULL-terminated "K=V"/"K" or NULL */
    char **tags;               /* NULL-terminated names or NULL */
    const char *target;        /* --target stage name/index or NULL (last stage) */
    bool layers;               /* --layers: cache and reuse per-step layers */
    bool no_cache;             /* --no-cache: never reuse, still record */
    bool squash;               /* --squash: the new image has a single layer */
    bool docker_format;        /* --format docker */
    int64_t timestamp;         /* --timestamp / SOURCE_DATE_EPOCH; -1 = now, times kept */
    const char *platform;      /* --platform (must be this machine's) or NULL */
    char **secrets;            /* --secret id=ID,src=PATH values or NULL */
    char **volumes;            /* -v HOST:CTR[:OPTS]: bind mounts of every RUN step, or NULL */
    const char *network;       /* RUN default network: "none" (default) or "host" */
    const char *isolation;     /* RUN isolation: auto (NULL), oci, rootless, chroot */
    char **cache_from;         /* oci:DIR layouts or docker://REPO:TAG to import cache from */
    const char *cache_to;      /* oci:DIR layout or docker://REPO:TAG to export cache to */
    /* policy.json for base images pulled by FROM (NULL: the default lookup, as pull does) */
    const char *policy_path;
    const struct system_context *cache_sys; /* registry settings (cache refs, base image
                                               pulls), or NULL */
    bool pull_never;    /* --pull=never: a FROM image missing from the store is an error */
    char **labels;      /* --label K=V for the final image, or NULL */
    char **annotations; /* --annotation K=V for the manifest (OCI), or NULL */
    bool quiet;         /* no step lines */
    FILE *progress;     /* where step lines go (NULL = stderr) */
};

/* Builds the image; *image_id gets the new image's id (hex, owned). */
BERTH_MUST_CHECK int builder_build(storage_store_t *s, const struct builder_options *o,
                                   char **image_id, berth_error_t *err);

/* ---- scripted builds (buildah from / run / copy / config / commit) ---- */

/* Creates a working container from image ("scratch" allowed); *name gets its name (owned).
 * name_hint NULL = "<image basename>-working-container[-N]". */
BERTH_MUST_CHECK int working_from(storage_store_t *s, const char *image, const char *name_hint,
                                  char **name, berth_error_t *err);
/* True when ctr names a working container made by working_from (not a `berth run` one). */
bool working_is_container(storage_store_t *s, const char *ctr);

struct working_exec_options {
    char **argv;         /* command (required, NULL-terminated) */
    char **env;          /* extra K=V or NULL */
    const char *workdir; /* NULL = the container's */
    const char *user;    /* NULL = the container's */
    const char *network; /* NULL = "none" */
    bool terminal;
    const char *isolation; /* auto (NULL), oci, rootless, chroot */
};
/* Runs a command in the working container's rootfs; *status gets its exit status. */
BERTH_MUST_CHECK int working_exec(storage_store_t *s, const char *ctr,
                                  const struct working_exec_options *o, int *status,
                                  berth_error_t *err);
/* Copies host paths (files, dirs: contents, tarballs not extracted unless extract) into the
 * container at dest (relative to its WorkingDir).  chown "user[:group]" or NULL. */
BERTH_MUST_CHECK int working_copy(storage_store_t *s, const char *ctr, char **srcs,
                                  const char *dest, const char *chown, const char *chmod,
                                  bool extract, berth_error_t *err);

struct working_config_options {
    char **env;      /* K=V (K- removes) */
    const char *cmd; /* JSON array or shell string; "" clears */
    const char *entrypoint;
    char **labels;      /* K=V (K- removes) */
    char **annotations; /* K=V */
    const char *workingdir;
    const char *user;
    char **ports; /* "80", "80/udp" */
    char **volumes;
    const char *stop_signal;
    const char *author;
};
BERTH_MUST_CHECK int working_config(storage_store_t *s, const char *ctr,
                                    const struct working_config_options *o, berth_error_t *err);
/* Commits the container's changes as a new image named name (may be NULL). */
BERTH_MUST_CHECK int working_commit(storage_store_t *s, const char *ctr, const char *name,
                                    bool docker_format, int64_t timestamp, bool squash,
                                    char **image_id, berth_error_t *err);
/* Unmounts and removes a working container. */
BERTH_MUST_CHECK int working_remove(storage_store_t *s, const char *ctr, berth_error_t *err);

#endif
