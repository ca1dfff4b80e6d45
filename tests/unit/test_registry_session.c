/* Unit tests for transport/registry_session.c: the per-copy/per-sync registry state that replaced
 * transport/docker.c's process-wide caches (a linear scan of up to 100,000 entries freed at exit).
 * What the caches did is pinned here: blob locations per registry, a mount source other than the
 * repository itself, the bound, and one upload of a blob at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "transport/registry_session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_blob_locations(void **state)
{
    cleanup_registry_session registry_session_t *s = registry_session_new();
    const char *d = "sha256:aaaa";
    assert_null(registry_session_blob_repo(s, "r1", "a", d));
    registry_session_remember_blob(s, "r1", "a", d);
    registry_session_remember_blob(s, "r1", "a", d); /* once */
    assert_int_equal(registry_session_blob_count(s), 1);
    /* the repository itself is no mount source; another registry is not either */
    assert_null(registry_session_blob_repo(s, "r1", "a", d));
    assert_null(registry_session_blob_repo(s, "r2", "b", d));
    cleanup_free char *from = registry_session_blob_repo(s, "r1", "b", d);
    assert_string_equal(from, "a");
    registry_session_remember_blob(s, "r1", "b", d);
    cleanup_free char *from2 = registry_session_blob_repo(s, "r1", "a", d);
    assert_string_equal(from2, "b");
}

/* many entries stay cheap to find (hash, not a scan) and the bound holds */
static void test_many_and_bound(void **state)
{
    cleanup_registry_session registry_session_t *s = registry_session_new();
    char dg[80], repo[32];
    for (int i = 0; i < REGISTRY_SESSION_BLOBS_MAX + 500; i++) {
        snprintf(dg, sizeof(dg), "sha256:%064d", i);
        snprintf(repo, sizeof(repo), "repo%d", i % 7);
        registry_session_remember_blob(s, "reg", repo, dg);
    }
    assert_int_equal(registry_session_blob_count(s), REGISTRY_SESSION_BLOBS_MAX);
    snprintf(dg, sizeof(dg), "sha256:%064d", 12345);
    cleanup_free char *from = registry_session_blob_repo(s, "reg", "elsewhere", dg);
    assert_string_equal(from, "repo4"); /* 12345 % 7 */
    snprintf(dg, sizeof(dg), "sha256:%064d", REGISTRY_SESSION_BLOBS_MAX + 10);
    assert_null(registry_session_blob_repo(s, "reg", "elsewhere", dg));
}

struct uploader {
    registry_session_t *s;
    int *inside, *max_inside;
    pthread_mutex_t *m;
};

static void *upload(void *arg)
{
    struct uploader *u = arg;
    for (int k = 0; k < 50; k++) {
        registry_session_upload_claim(u->s, "reg/repo@sha256:bb", u);
        pthread_mutex_lock(u->m);
        (*u->inside)++;
        if (*u->inside > *u->max_inside)
            *u->max_inside = *u->inside;
        pthread_mutex_unlock(u->m);
        usleep(100);
        pthread_mutex_lock(u->m);
        (*u->inside)--;
        pthread_mutex_unlock(u->m);
        registry_session_upload_release(u->s, k % 2 ? "reg/repo@sha256:bb" : NULL, u);
    }
    return NULL;
}

static void test_one_upload_at_a_time(void **state)
{
    cleanup_registry_session registry_session_t *s = registry_session_new();
    int inside = 0, max_inside = 0;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    struct uploader u[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        u[i] = (struct uploader){s, &inside, &max_inside, &m};
        assert_int_equal(pthread_create(&th[i], NULL, upload, &u[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(max_inside, 1);
    /* a claim by the same owner does not wait for itself */
    registry_session_upload_claim(s, "k", &m);
    registry_session_upload_claim(s, "k", &m);
    registry_session_upload_release(s, NULL, &m);
}

static void test_two_sessions_share_nothing(void **state)
{
    cleanup_registry_session registry_session_t *a = registry_session_new();
    cleanup_registry_session registry_session_t *b = registry_session_new();
    registry_session_remember_blob(a, "r", "x", "sha256:cc");
    cleanup_free char *fa = registry_session_blob_repo(a, "r", "y", "sha256:cc");
    assert_string_equal(fa, "x");
    assert_null(registry_session_blob_repo(b, "r", "y", "sha256:cc"));
    assert_null(registry_session_client(b, "any"));
    registry_session_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_locations),
        cmocka_unit_test(test_many_and_bound),
        cmocka_unit_test(test_one_upload_at_a_time),
        cmocka_unit_test(test_two_sessions_share_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
