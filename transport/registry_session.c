/* A copy's or a sync's registry state (see registry_session.h): three string-keyed hash maps
 * under one mutex. */
#include "transport/registry_session.h"

#include "common/alloc.h"
#include "common/strutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------- a string-keyed hash map (chained, doubling) ---------- */

struct entry {
    char *key;
    uint64_t hash;
    void *value;
    struct entry *next;
};

struct smap {
    struct entry **b;
    size_t nb, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct entry **slot_of(struct smap *m, const char *key, uint64_t h)
{
    if (!m->nb)
        return NULL;
    struct entry **p = &m->b[h & (m->nb - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->next;
    return p;
}

static void *map_get(struct smap *m, const char *key)
{
    struct entry **p = slot_of(m, key, hash_str(key));
    return p && *p ? (*p)->value : NULL;
}

static void grow(struct smap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct entry **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nb; i++) {
        for (struct entry *e = m->b[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

/* Inserts key (it must not be there). */
static void map_put(struct smap *m, const char *key, void *value)
{
    if (m->n + 1 > m->nb * 3 / 4) /* load factor 3/4; nb 0 grows too */
        grow(m);
    struct entry *e = xzalloc(sizeof(*e));
    e->key = xstrdup(key);
    e->hash = hash_str(key);
    e->value = value;
    e->next = m->b[e->hash & (m->nb - 1)];
    m->b[e->hash & (m->nb - 1)] = e;
    m->n++;
}

/* Removes key; returns its value (NULL when absent). */
static void *map_del(struct smap *m, const char *key)
{
    struct entry **p = slot_of(m, key, hash_str(key));
    if (!p || !*p)
        return NULL;
    struct entry *e = *p;
    void *v = e->value;
    *p = e->next;
    free(e->key);
    free(e);
    m->n--;
    return v;
}

static void map_clear(struct smap *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        for (struct entry *e = m->b[i], *next; e; e = next) {
            next = e->next;
            if (free_value)
                free_value(e->value);
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ---------- the session ---------- */

struct registry_session {
    pthread_mutex_t lock;
    pthread_cond_t upload_done;
    struct smap clients; /* settings key -> registry_client_t */
    struct smap blobs;   /* "registry\ndigest" -> char ** repositories */
    size_t nblobs;       /* locations kept (<= REGISTRY_SESSION_BLOBS_MAX) */
    struct smap uploads; /* "registry/repo@digest" -> owner */
};

registry_session_t *registry_session_new(void)
{
    registry_session_t *s = xzalloc(sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->upload_done, NULL);
    return s;
}

static void free_client(void *c)
{
    registry_client_free(c);
}

static void free_repos(void *v)
{
    strv_free(v);
}

void registry_session_free(registry_session_t *s)
{
    if (!s)
        return;
    map_clear(&s->clients, free_client);
    map_clear(&s->blobs, free_repos);
    map_clear(&s->uploads, NULL);
    pthread_cond_destroy(&s->upload_done);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

registry_client_t *registry_session_client(registry_session_t *s, const char *key)
{
    pthread_mutex_lock(&s->lock);
    registry_client_t *c = map_get(&s->clients, key);
    pthread_mutex_unlock(&s->lock);
    return c;
}

registry_client_t *registry_session_add_client(registry_session_t *s, const char *key,
                                               registry_client_t *c)
{
    pthread_mutex_lock(&s->lock);
    registry_client_t *have = map_get(&s->clients, key);
    if (have) {
        pthread_mutex_unlock(&s->lock);
        registry_client_free(c);
        return have;
    }
    map_put(&s->clients, key, c);
    pthread_mutex_unlock(&s->lock);
    return c;
}

void registry_session_remember_blob(registry_session_t *s, const char *registry, const char *repo,
                                    const char *digest)
{
    char *key = xasprintf("%s\n%s", registry, digest);
    pthread_mutex_lock(&s->lock);
    struct entry **p = slot_of(&s->blobs, key, hash_str(key));
    char **repos = p && *p ? (*p)->value : NULL;
    if (!strv_contains(repos, repo) && s->nblobs < REGISTRY_SESSION_BLOBS_MAX) {
        if (repos) {
            strv_add(&repos, repo);
            (*p)->value = repos;
        } else {
            strv_add(&repos, repo);
            map_put(&s->blobs, key, repos);
        }
        s->nblobs++;
    }
    pthread_mutex_unlock(&s->lock);
    free(key);
}

char *registry_session_blob_repo(registry_session_t *s, const char *registry, const char *repo,
                                 const char *digest)
{
    char *key = xasprintf("%s\n%s", registry, digest);
    char *r = NULL;
    pthread_mutex_lock(&s->lock);
    char **repos = map_get(&s->blobs, key);
    for (size_t i = 0; repos && repos[i] && !r; i++)
        if (strcmp(repos[i], repo) != 0)
            r = xstrdup(repos[i]);
    pthread_mutex_unlock(&s->lock);
    free(key);
    return r;
}

size_t registry_session_blob_count(registry_session_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->nblobs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void registry_session_upload_claim(registry_session_t *s, const char *key, const void *owner)
{
    pthread_mutex_lock(&s->lock);
    for (;;) {
        const void *have = map_get(&s->uploads, key);
        if (!have || have == owner)
            break;
        pthread_cond_wait(&s->upload_done, &s->lock);
    }
    if (!map_get(&s->uploads, key))
        map_put(&s->uploads, key, (void *)owner);
    pthread_mutex_unlock(&s->lock);
}

void registry_session_upload_release(registry_session_t *s, const char *key, const void *owner)
{
    pthread_mutex_lock(&s->lock);
    if (key) {
        if (map_get(&s->uploads, key) == owner)
            map_del(&s->uploads, key);
    } else {
        /* every key of owner: collect first, the map changes while deleting */
        char **mine = NULL;
        for (size_t i = 0; i < s->uploads.nb; i++)
            for (struct entry *e = s->uploads.b[i]; e; e = e->next)
                if (e->value == owner)
                    strv_add(&mine, e->key);
        for (size_t i = 0; mine && mine[i]; i++)
            map_del(&s->uploads, mine[i]);
        strv_free(mine);
    }
    pthread_cond_broadcast(&s->upload_done);
    pthread_mutex_unlock(&s->lock);
}
