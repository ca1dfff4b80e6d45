/* Shared by the store's own files only (store.c: open, locks, recovery and check;
 * store_layers.c, store_images.c, store_containers.c): the handle, the lock guard and the record
 * helpers.  Other modules use storage/store.h.
 *
 * The store_* functions below expect the caller to hold the store lock (see store.h) unless they
 * say otherwise; errors follow store.h's contract. */
#ifndef BERTH_STORAGE_STORE_INTERNAL_H
#define BERTH_STORAGE_STORE_INTERNAL_H

#include "storage/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define RECORD_MAX  (1024 * 1024)
#define BIGDATA_MAX (64 * 1024 * 1024)

struct storage_store {
    char *root;
    char *runroot;
    char *driver_home;
    char *mounts_dir;
    const struct storage_driver_ops *drv;
    void *dstate;
    int lock_fd;
    int lease_fd; /* shared "layer writer" lease, see writer_lease() in store_layers.c */
    int depth;
    bool excl;
    bool rootless;
    /* flock does not exclude threads sharing lock_fd: this recursive mutex is held with the
     * store lock, so threads of one process (parallel layer staging) take turns as processes do */
    pthread_mutex_t tlock;
};

/* Lock helper for scopes: LOCK_OR_FAIL(s, excl, err) takes the store lock and releases it when
 * the enclosing scope ends. */
static inline void store_unlock_cleanup(storage_store_t **s)
{
    if (*s)
        storage_store_unlock(*s);
}
#define cleanup_unlock __attribute__((cleanup(store_unlock_cleanup)))

#define LOCK_OR_FAIL(s, excl, err)                                                                 \
    cleanup_unlock storage_store_t *lock_guard_ = NULL;                                            \
    if (storage_store_lock((s), (excl), (err)) < 0)                                                \
        return -1;                                                                                 \
    lock_guard_ = (s)

/* store.c: small helpers */
char *store_random_hex(size_t nbytes); /* owned; 2*nbytes hex digits (nbytes <= 32) */
bool store_is_hex64(const char *s);
char *store_strdup_or_null(const char *s);
/* Sorted names in dir ending in suffix (suffix stripped; NULL: every name); NULL-terminated,
 * empty when dir does not exist. */
BERTH_MUST_CHECK int store_list_names(const char *dir, const char *suffix, char ***out,
                                      berth_error_t *err);
/* The per-layer flock (held by its writer / mounter): returns the locked fd. */
BERTH_MUST_CHECK int store_layer_lock(storage_store_t *s, const char *id, berth_error_t *err);

/* store_layers.c */
char *store_layer_record_path(storage_store_t *s, const char *id);
char *store_layer_split_path(storage_store_t *s, const char *id);
BERTH_MUST_CHECK int store_layer_read(storage_store_t *s, const char *id, storage_layer_t **out,
                                      berth_error_t *err);
/* Removes a layer's record, then its files (see storage_layer_remove_record_step); exclusive
 * lock held. */
BERTH_MUST_CHECK int store_layer_remove_locked(storage_store_t *s, const char *id,
                                               berth_error_t *err);

/* Every record of the store, to answer "who uses this layer". */
struct store_usage {
    storage_layer_t **layers;
    storage_image_t **images;
    storage_container_t **containers;
};
BERTH_MUST_CHECK int store_usage_load(storage_store_t *s, struct store_usage *u,
                                      berth_error_t *err);
void store_usage_free(struct store_usage *u);
storage_layer_t *store_usage_layer(struct store_usage *u, const char *id);
/* Why `id` is in use (a static description), or NULL. Ignores image `skip_image`. */
const char *store_layer_user(struct store_usage *u, const char *id, const char *skip_image);

/* store_images.c */
BERTH_MUST_CHECK int store_image_read(storage_store_t *s, const char *id, storage_image_t **out,
                                      berth_error_t *err);
BERTH_MUST_CHECK int store_image_list_locked(storage_store_t *s, storage_image_t ***out,
                                             berth_error_t *err);

/* store_containers.c */
BERTH_MUST_CHECK int store_container_read(storage_store_t *s, const char *id,
                                          storage_container_t **out, berth_error_t *err);
BERTH_MUST_CHECK int store_container_list_locked(storage_store_t *s, storage_container_t ***out,
                                                 berth_error_t *err);
BERTH_MUST_CHECK int store_container_remove_locked(storage_store_t *s, const char *id,
                                                   berth_error_t *err);

#endif
