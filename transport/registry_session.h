/* What one copy or sync learns about registries while it runs, owned by that copy or sync (no
 * process-wide state): the registry clients it opened (one per registry and settings, so a sync
 * over many images pings once and reuses connections and tokens), where blobs are known to be
 * (so a destination mounts a blob from another repository of the same registry instead of
 * uploading it again), and the blobs being uploaded right now (so parallel copies sharing a blob
 * upload it once).  Every lookup is by hash.
 *
 * Thread-safe: the parallel copies of a sync share one session.  The clients belong to the
 * session: they are freed with it, so nothing may use them after registry_session_free.
 */
#ifndef BERTH_TRANSPORT_REGISTRY_SESSION_H
#define BERTH_TRANSPORT_REGISTRY_SESSION_H

#include "transport/registry_client.h"

#include <stddef.h>

/* Known blob locations kept at most (a bound on memory whatever the manifests list). */
#define REGISTRY_SESSION_BLOBS_MAX 100000

typedef struct registry_session registry_session_t;

registry_session_t *registry_session_new(void);
void registry_session_free(registry_session_t *s); /* NULL-safe; frees the clients */
static inline void cleanup_registry_sessionp(registry_session_t **s)
{
    registry_session_free(*s);
    *s = (registry_session_t *)0;
}
#define cleanup_registry_session __attribute__((cleanup(cleanup_registry_sessionp)))

/* The client kept under key (borrowed), or NULL. */
registry_client_t *registry_session_client(registry_session_t *s, const char *key);
/* Keeps c under key and returns the client to use (borrowed): c itself, or, when another thread
 * kept one under key first, that one (c is then freed). */
registry_client_t *registry_session_add_client(registry_session_t *s, const char *key,
                                               registry_client_t *c);

/* digest is known to be in registry/repo. */
void registry_session_remember_blob(registry_session_t *s, const char *registry, const char *repo,
                                    const char *digest);
/* Another repository of registry known to hold digest (owned), or NULL. */
char *registry_session_blob_repo(registry_session_t *s, const char *registry, const char *repo,
                                 const char *digest);
size_t registry_session_blob_count(registry_session_t *s);

/* Waits while another owner uploads key, then claims it for owner. */
void registry_session_upload_claim(registry_session_t *s, const char *key, const void *owner);
/* Releases key, or every key of owner when key is NULL; wakes the waiters. */
void registry_session_upload_release(registry_session_t *s, const char *key, const void *owner);

#endif
