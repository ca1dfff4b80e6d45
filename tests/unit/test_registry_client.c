/* The registry client against a real docker-registry (distribution) on a loopback port: ping,
 * blob upload/HEAD/GET/mount, manifests PUT/GET/HEAD/DELETE with digest checks, tag pagination,
 * error messages.  Skipped when docker-registry is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/stream.h"
#include "transport/manifest.h"
#include "transport/registry_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/berth-test-registry-XXXXXX";
static pid_t registry_pid = -1;
static char addr[64];

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &l);
    int p = ntohs(a.sin_port);
    close(s);
    return p;
}

static int start_registry(void **state)
{
    if (access("/usr/bin/docker-registry", X_OK) != 0)
        return 0;
    if (!mkdtemp(tmpdir))
        return -1;
    int port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s/config.yml", tmpdir);
    FILE *f = fopen(cfg, "w");
    fprintf(f,
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
            "%s/storage\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
            tmpdir, addr);
    fclose(f);
    registry_pid = fork();
    if (registry_pid == 0) {
        char logp[512];
        snprintf(logp, sizeof(logp), "%s/log", tmpdir);
        freopen(logp, "w", stdout);
        freopen(logp, "a", stderr);
        char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
        execle("/usr/bin/docker-registry", "docker-registry", "serve", cfg, (char *)NULL, envp);
        _exit(127);
    }
    /* wait until it listens */
    for (int i = 0; i < 100; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = connect(s, (struct sockaddr *)&a, sizeof(a));
        close(s);
        if (r == 0)
            return 0;
        usleep(50000);
    }
    return -1;
}

static int stop_registry(void **state)
{
    if (registry_pid > 0) {
        kill(registry_pid, SIGTERM);
        waitpid(registry_pid, NULL, 0);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static registry_client_t *client(void)
{
    struct registry_options o = {.registry = addr,
                                 .tls_verify = 0,
                                 .no_creds = true,
                                 .retry_times = 1,
                                 .retry_delay_ms = 10};
    registry_client_t *c = NULL;
    berth_error_t err = NULL;
    int r = registry_client_new(&o, &c, &err);
    if (r < 0)
        fail_msg("%s", berth_error_msg(err));
    return c;
}

#define SKIP_IF_NO_REGISTRY()                                                                      \
    do {                                                                                           \
        if (registry_pid <= 0)                                                                     \
            skip();                                                                                \
    } while (0)

static void check(int r, berth_error_t *err)
{
    if (r < 0)
        fail_msg("%s", berth_error_msg(*err));
}

static char *push_blob(registry_client_t *c, const char *repo, const char *data, size_t len)
{
    berth_error_t err = NULL;
    berth_reader_t *rd = reader_from_buffer(data, len, false);
    char *d = NULL;
    int64_t sz = -1;
    check(registry_put_blob(c, repo, rd, NULL, -1, false, &d, &sz, &err), &err);
    reader_close(rd);
    assert_int_equal(sz, (int64_t)len);
    return d;
}

static char *make_manifest(const char *cfg_d, size_t cfg_len, const char *layer_d, size_t layer_len)
{
    return xasprintf("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST
                     "\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                     "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
                     "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
                     cfg_d, cfg_len, layer_d, layer_len);
}

static void test_roundtrip(void **state)
{
    SKIP_IF_NO_REGISTRY();
    cleanup_registry_client registry_client_t *c = client();
    berth_error_t err = NULL;
    check(registry_ping(c, &err), &err);

    const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    size_t big_len = 3 * 1024 * 1024 + 17;
    char *big = xmalloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7 + (i >> 9));
    cleanup_free char *cd = push_blob(c, "test/a", cfg, strlen(cfg));
    cleanup_free char *ld = push_blob(c, "test/a", big, big_len);
    cleanup_free char *expect = digest_buffer(DIGEST_SHA256, big, big_len);
    assert_string_equal(ld, expect);

    int64_t sz = 0;
    check(registry_head_blob(c, "test/a", ld, &sz, &err), &err);
    assert_int_equal(sz, (int64_t)big_len);

    /* absent blob: ENOENT */
    cleanup_free char *absent = digest_buffer(DIGEST_SHA256, "nope", 4);
    assert_int_equal(registry_head_blob(c, "test/a", absent, &sz, &err), -1);
    assert_int_equal(berth_error_status(err), ENOENT);
    berth_error_release(&err);

    /* streaming GET returns the same bytes */
    berth_reader_t *rd = NULL;
    check(registry_get_blob(c, "test/a", ld, &rd, &sz, &err), &err);
    assert_int_equal(sz, (int64_t)big_len);
    char *got = NULL;
    size_t gl = 0;
    check(reader_read_all(rd, big_len + 10, &got, &gl, &err), &err);
    reader_close(rd);
    assert_int_equal(gl, big_len);
    assert_memory_equal(got, big, big_len);
    free(got);

    /* GET of an absent blob fails with ENOENT and the registry's message */
    assert_int_equal(registry_get_blob(c, "test/a", absent, &rd, &sz, &err), -1);
    assert_int_equal(berth_error_status(err), ENOENT);
    assert_non_null(strstr(berth_error_msg(err), "BLOB_UNKNOWN"));
    berth_error_release(&err);

    /* a wrong expected digest is refused and nothing is stored */
    rd = reader_from_buffer("hello", 5, false);
    assert_int_equal(registry_put_blob(c, "test/a", rd, absent, 5, false, NULL, NULL, &err), -1);
    reader_close(rd);
    assert_non_null(strstr(berth_error_msg(err), "digest"));
    berth_error_release(&err);
    cleanup_free char *hello_d = digest_buffer(DIGEST_SHA256, "hello", 5);
    assert_int_equal(registry_head_blob(c, "test/a", hello_d, &sz, &err), -1);
    berth_error_release(&err);

    /* monolithic upload */
    rd = reader_from_buffer("hello", 5, false);
    check(registry_put_blob(c, "test/a", rd, hello_d, 5, true, NULL, NULL, &err), &err);
    reader_close(rd);
    check(registry_head_blob(c, "test/a", hello_d, &sz, &err), &err);

    /* manifest by tag, then by digest */
    cleanup_free char *m = make_manifest(cd, strlen(cfg), ld, big_len);
    cleanup_free char *md = NULL;
    check(registry_put_manifest(c, "test/a", "v1", m, strlen(m), NULL, &md, &err), &err);
    cleanup_free char *body = NULL, *mime = NULL, *gd = NULL;
    size_t blen = 0;
    check(registry_get_manifest(c, "test/a", "v1", &body, &blen, &mime, &gd, &err), &err);
    assert_string_equal(body, m);
    assert_string_equal(mime, MEDIA_OCI_MANIFEST);
    assert_string_equal(gd, md);
    cleanup_free char *hd = NULL;
    check(registry_head_manifest(c, "test/a", "v1", &hd, NULL, NULL, &err), &err);
    assert_string_equal(hd, md);
    free(body);
    body = NULL;
    check(registry_get_manifest(c, "test/a", md, &body, &blen, NULL, NULL, &err), &err);

    /* a manifest referring to a missing blob: the registry's error is shown */
    cleanup_free char *bad = make_manifest(cd, strlen(cfg), absent, 4);
    assert_int_equal(registry_put_manifest(c, "test/a", "bad", bad, strlen(bad), NULL, NULL, &err),
                     -1);
    assert_non_null(strstr(berth_error_msg(err), "MANIFEST_BLOB_UNKNOWN"));
    berth_error_release(&err);

    /* cross-repository mount */
    bool mounted = false;
    check(registry_mount_blob(c, "test/b", ld, "test/a", &mounted, &err), &err);
    assert_true(mounted);
    check(registry_head_blob(c, "test/b", ld, &sz, &err), &err);

    /* tags with pagination */
    for (int i = 0; i < 12; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "t%02d", i);
        check(registry_put_manifest(c, "test/a", tag, m, strlen(m), NULL, NULL, &err), &err);
    }
    char **tags = NULL;
    size_t nt = 0;
    check(registry_list_tags(c, "test/a", 5, &tags, &nt, &err), &err);
    assert_int_equal(nt, 13);
    for (size_t i = 0; i < nt; i++)
        free(tags[i]);
    free(tags);
    struct registry_stats st;
    registry_client_stats(c, &st);
    assert_true(st.get >= 3);

    char **repos = NULL;
    size_t nr = 0;
    check(registry_catalog(c, 1, &repos, &nr, &err), &err);
    assert_int_equal(nr, 2);
    for (size_t i = 0; i < nr; i++)
        free(repos[i]);
    free(repos);

    /* delete by digest; then the tag is gone */
    check(registry_delete_manifest(c, "test/a", md, &err), &err);
    assert_int_equal(registry_get_manifest(c, "test/a", "v1", &body, &blen, NULL, NULL, &err), -1);
    assert_int_equal(berth_error_status(err), ENOENT);
    assert_non_null(strstr(berth_error_msg(err), "HTTP 404"));
    berth_error_release(&err);
    free(big);
}

static void test_unreachable(void **state)
{
    struct registry_options o = {.registry = "127.0.0.1:1",
                                 .tls_verify = 0,
                                 .no_creds = true,
                                 .retry_times = 1,
                                 .retry_delay_ms = 1};
    cleanup_registry_client registry_client_t *c = NULL;
    berth_error_t err = NULL;
    check(registry_client_new(&o, &c, &err), &err);
    assert_int_equal(registry_ping(c, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "127.0.0.1:1"));
    berth_error_release(&err);
}

/* The registry client detects manifest types with the one detector (mf_detect): the
 * registry_manifest_mime copy it had is gone; what it answered is pinned here on the kept one. */
static void test_manifest_mime(void **state)
{
    const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
    assert_string_equal(mf_detect(idx, strlen(idx), NULL), MEDIA_OCI_INDEX);
    /* schema 1: detected as such (registry_get_manifest refuses it with ENOTSUP) */
    const char *s1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";
    assert_string_equal(mf_detect(s1, strlen(s1), NULL), MT_DOCKER_V2S1);
    assert_false(mf_is_image(MT_DOCKER_V2S1) || mf_is_index(MT_DOCKER_V2S1));
    const char *dl = "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_DOCKER_LIST "\"}";
    assert_string_equal(mf_detect(dl, strlen(dl), NULL), MEDIA_DOCKER_LIST);
    const char *om = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
    assert_string_equal(mf_detect(om, strlen(om), NULL), MEDIA_OCI_MANIFEST);
    /* duplicate keys: not a manifest for any reader */
    const char *dup = "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_DOCKER_LIST
                      "\",\"mediaType\":\"" MEDIA_OCI_INDEX "\"}";
    assert_null(mf_detect(dup, strlen(dup), NULL));
    assert_null(mf_detect("not json", 8, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_manifest_mime),
    };
    return cmocka_run_group_tests(tests, start_registry, stop_registry);
}
