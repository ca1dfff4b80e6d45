#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "transport/lookaside.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEX    "1111111111111111111111111111111111111111111111111111111111111111"
#define DIGEST "sha256:" HEX

static char root[] = "/tmp/test_lookaside_XXXXXX";

static void write_conf(const char *name, const char *text)
{
    cleanup_free char *d = xasprintf("%s/registries.d", root);
    cleanup_free char *p = xasprintf("%s/%s", d, name);
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_mkdir_p(d, 0755, &err), 0);
    assert_int_equal(fs_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(root))
        return -1;
    cleanup_free char *d = xasprintf("%s/registries.d", root);
    setenv("BERTH_REGISTRIES_D", d, 1);
    cleanup_free char *conf = xasprintf("# comment\n"
                                        "default-docker:\n"
                                        "  lookaside: file://%s/default\n"
                                        "docker:\n"
                                        "  \"q.io/team\":\n"
                                        "    lookaside: 'file://%s/team'    # reads\n"
                                        "    lookaside-staging: file://%s/staging\n"
                                        "  q.io/team/special:\n"
                                        "    sigstore: file://%s/special/\n"
                                        "  web.io:\n"
                                        "    lookaside: https://127.0.0.1:1/sigs/\n"
                                        "  creds.io:\n"
                                        "    lookaside: https://u:p@creds.io/sigs\n"
                                        "  query.io:\n"
                                        "    lookaside: http://query.io/sigs?x=1\n"
                                        "  ftp.io:\n"
                                        "    lookaside: ftp://ftp.io/sigs\n",
                                        root, root, root, root);
    write_conf("a.yaml", conf);
    write_conf("ignored.txt", "this: [is not read\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    IGNORE_RESULT(fs_rm_rf(root, &err));
    return 0;
}

static void put(const char *ref, size_t n)
{
    char *sigs[3] = {"one", "two", "three"};
    size_t lens[3] = {3, 3, 5};
    cleanup_error berth_error_t err = NULL;
    if (lookaside_put_signatures(ref, DIGEST, sigs, lens, n, &err) < 0)
        fail_msg("put %s: %s", ref, berth_error_msg(err));
}

static bool exists(const char *rel)
{
    cleanup_free char *p = xasprintf("%s/%s", root, rel);
    return access(p, F_OK) == 0;
}

static void test_locations(void **state)
{
    (void)state;
    /* default-docker; the repository path without the registry */
    put("docker.io/library/busybox:1", 2);
    assert_true(exists("default/library/busybox@sha256=" HEX "/signature-1"));
    assert_true(exists("default/library/busybox@sha256=" HEX "/signature-2"));
    /* the namespace scope writes to its staging location */
    put("q.io/team/app:1", 1);
    assert_true(exists("staging/team/app@sha256=" HEX "/signature-1"));
    assert_false(exists("team/team/app@sha256=" HEX));
    /* a longer scope wins; the old "sigstore" key; a trailing slash */
    put("q.io/team/special:2", 1);
    assert_true(exists("special/team/special@sha256=" HEX "/signature-1"));
    /* reading: the namespace's lookaside, not its staging */
    char **sigs = NULL;
    size_t *lens = NULL, n = 9;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(lookaside_get_signatures("q.io/team/app:1", DIGEST, &sigs, &lens, &n, &err),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(
        lookaside_get_signatures("docker.io/library/busybox:7", DIGEST, &sigs, &lens, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(sigs[1], "two", 3);
    assert_int_equal(lens[1], 3);
    for (size_t i = 0; i < n; i++)
        free(sigs[i]);
    free(sigs);
    free(lens);
    /* fewer signatures replace more: no stale signature-2 */
    put("docker.io/library/busybox:1", 1);
    assert_false(exists("default/library/busybox@sha256=" HEX "/signature-2"));
    /* http(s): a server that cannot be reached is an error naming the URL, not "unsigned" */
    assert_int_equal(lookaside_get_signatures("web.io/a:1", DIGEST, &sigs, &lens, &n, &err), -1);
    assert_non_null(strstr(berth_error_msg(err),
                           "signatures of web.io/a:1: GET "
                           "https://127.0.0.1:1/sigs/a@sha256=" HEX "/signature-1: "));
    assert_null(sigs);
    assert_int_equal(n, 0);
    berth_error_release(&err);
    /* writing there is refused: that is what lookaside-staging is for */
    char *one[] = {"x"};
    size_t l1[] = {1};
    assert_int_equal(lookaside_put_signatures("web.io/a:1", DIGEST, one, l1, 1, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "writing needs a file://"));
    berth_error_release(&err);
    /* no credentials in lookaside URLs; no query that would swallow the path */
    assert_int_equal(lookaside_get_signatures("creds.io/a:1", DIGEST, &sigs, &lens, &n, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "credentials"));
    berth_error_release(&err);
    assert_int_equal(lookaside_get_signatures("query.io/a:1", DIGEST, &sigs, &lens, &n, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "a query or fragment"));
    berth_error_release(&err);
    /* other schemes: nothing read (warned), writing refused */
    assert_int_equal(lookaside_get_signatures("ftp.io/a:1", DIGEST, &sigs, &lens, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lookaside_put_signatures("ftp.io/a:1", DIGEST, one, l1, 1, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "only file://"));
    berth_error_release(&err);
    /* a bad digest never becomes a path */
    assert_int_equal(lookaside_put_signatures("q.io/a:1", "sha256:../../x", one, l1, 1, &err), -1);
}

static void test_bad_yaml(void **state)
{
    (void)state;
    write_conf("b.yaml", "docker:\n\tq.io:\n");
    char **sigs = NULL;
    size_t *lens = NULL, n = 0;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(lookaside_get_signatures("q.io/a:1", DIGEST, &sigs, &lens, &n, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "b.yaml:2"));
    cleanup_free char *p = xasprintf("%s/registries.d/b.yaml", root);
    unlink(p);
}

static void test_sigstore_attachments(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    bool on = true;
    /* nothing sets it: off */
    assert_int_equal(lookaside_use_sigstore_attachments("q.io/a:1", &on, &err), 0);
    assert_false(on);
    write_conf("c.yaml", "default-docker:\n"
                         "  use-sigstore-attachments: true\n"
                         "docker:\n"
                         "  q.io/team:\n"
                         "    use-sigstore-attachments: false\n"
                         "  q.io/team/special:\n"
                         "    use-sigstore-attachments: True   # on again\n"
                         "  q.io/team/other:\n"
                         "    lookaside: file:///x\n");
    assert_int_equal(lookaside_use_sigstore_attachments("q.io/a:1", &on, &err), 0);
    assert_true(on);
    assert_int_equal(lookaside_use_sigstore_attachments("q.io/team/x:1", &on, &err), 0);
    assert_false(on);
    assert_int_equal(lookaside_use_sigstore_attachments("q.io/team/special:1", &on, &err), 0);
    assert_true(on);
    /* a more specific scope that does not set it inherits the enclosing one */
    assert_int_equal(lookaside_use_sigstore_attachments("q.io/team/other:1", &on, &err), 0);
    assert_false(on);
    assert_int_equal(lookaside_use_sigstore_attachments(NULL, &on, &err), 0);
    assert_false(on);
    write_conf("c.yaml", "docker:\n  q.io:\n    use-sigstore-attachments: yes\n");
    assert_int_equal(lookaside_use_sigstore_attachments("q.io/a:1", &on, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "c.yaml:3: use-sigstore-attachments"));
    cleanup_free char *p = xasprintf("%s/registries.d/c.yaml", root);
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_bad_yaml),
        cmocka_unit_test(test_sigstore_attachments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
