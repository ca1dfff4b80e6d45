/* transport/auth: WWW-Authenticate parsing, token answers, base64, auth.json and docker
 * config.json lookup, store/remove with modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "transport/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_challenges(void **state)
{
    static const struct {
        const char *hdr;
        int ok;
        enum auth_scheme scheme;
        const char *realm, *service, *scope;
    } cases[] = {
        {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\"", 1,
         AUTH_SCHEME_BEARER, "https://auth.docker.io/token", "registry.docker.io", NULL},
        {"Bearer realm=\"https://a/t\",service=\"s\",scope=\"repository:x/y:pull,push\"", 1,
         AUTH_SCHEME_BEARER, "https://a/t", "s", "repository:x/y:pull,push"},
        {"bearer REALM=\"https://a/t\" , Service=\"s\"", 1, AUTH_SCHEME_BEARER, "https://a/t", "s",
         NULL},
        {"Basic realm=\"Registry Realm\"", 1, AUTH_SCHEME_BASIC, "Registry Realm", NULL, NULL},
        {"Basic realm=\"x\", Bearer realm=\"https://t\",service=\"svc\"", 1, AUTH_SCHEME_BEARER,
         "https://t", "svc", NULL},
        {"Bearer realm=\"https://t\",service=\"svc\", Basic realm=\"x\"", 1, AUTH_SCHEME_BEARER,
         "https://t", "svc", NULL},
        {"Bearer realm=\"https://t/q\\\"x\"", 1, AUTH_SCHEME_BEARER, "https://t/q\"x", NULL, NULL},
        {"Bearer realm=https://t,service=unquoted", 1, AUTH_SCHEME_BEARER, "https://t", "unquoted",
         NULL},
        {"Negotiate abc", 0, AUTH_SCHEME_NONE, NULL, NULL, NULL},
        {"", 0, AUTH_SCHEME_NONE, NULL, NULL, NULL},
        {"Bearer service=\"s\"", 0, AUTH_SCHEME_NONE, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct auth_challenge ch;
        berth_error_t err = NULL;
        int r = auth_challenge_parse(cases[i].hdr, &ch, &err);
        if (!cases[i].ok) {
            assert_int_equal(r, -1);
            assert_non_null(err);
            berth_error_release(&err);
            continue;
        }
        if (r < 0)
            fail_msg("case %zu: %s", i, berth_error_msg(err));
        assert_int_equal(ch.scheme, cases[i].scheme);
        if (cases[i].realm)
            assert_string_equal(ch.realm, cases[i].realm);
        if (cases[i].service)
            assert_string_equal(ch.service, cases[i].service);
        else
            assert_null(ch.service);
        if (cases[i].scope)
            assert_string_equal(ch.scope, cases[i].scope);
        auth_challenge_clear(&ch);
    }
}

static void test_token_response(void **state)
{
    berth_error_t err = NULL;
    char *tok = NULL;
    int64_t exp = 0;
    const char *a = "{\"token\":\"abc\",\"expires_in\":300}";
    assert_int_equal(auth_parse_token_response(a, strlen(a), &tok, &exp, &err), 0);
    assert_string_equal(tok, "abc");
    assert_int_equal(exp, 300);
    free(tok);
    const char *b = "{\"access_token\":\"xyz\"}";
    assert_int_equal(auth_parse_token_response(b, strlen(b), &tok, &exp, &err), 0);
    assert_string_equal(tok, "xyz");
    assert_int_equal(exp, 60);
    free(tok);
    const char *c = "{\"expires_in\":3}";
    assert_int_equal(auth_parse_token_response(c, strlen(c), &tok, &exp, &err), -1);
    berth_error_release(&err);
    /* bounded: larger than the token limit */
    size_t n = AUTH_TOKEN_MAX + 100;
    char *big = xmalloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"token\":\"", 10);
    memcpy(big + n - 3, "\"}", 2);
    big[n] = '\0';
    for (size_t i = 10; i < n - 3; i++)
        big[i] = 'a';
    assert_int_equal(auth_parse_token_response(big, n, &tok, &exp, &err), -1);
    berth_error_release(&err);
    free(big);
}

static void test_base64_and_creds(void **state)
{
    berth_error_t err = NULL;
    cleanup_free char *e = auth_base64_encode("testuser:testpass", 17);
    assert_string_equal(e, "dGVzdHVzZXI6dGVzdHBhc3M=");
    char *u = NULL, *p = NULL;
    assert_int_equal(auth_decode_entry(e, &u, &p, &err), 0);
    assert_string_equal(u, "testuser");
    assert_string_equal(p, "testpass");
    free(u);
    free(p);
    /* passwords may contain ':' */
    cleanup_free char *e2 = auth_base64_encode("a:b:c", 5);
    assert_int_equal(auth_decode_entry(e2, &u, &p, &err), 0);
    assert_string_equal(u, "a");
    assert_string_equal(p, "b:c");
    free(u);
    free(p);
    assert_int_equal(auth_decode_entry("!!!", &u, &p, &err), -1);
    berth_error_release(&err);
    cleanup_free char *e3 = auth_base64_encode("nocolon", 7);
    assert_int_equal(auth_decode_entry(e3, &u, &p, &err), -1);
    berth_error_release(&err);

    assert_int_equal(auth_parse_creds("me:se:cret", &u, &p, &err), 0);
    assert_string_equal(u, "me");
    assert_string_equal(p, "se:cret");
    free(u);
    free(p);
    assert_int_equal(auth_parse_creds("me", &u, &p, &err), 0);
    assert_null(p);
    free(u);
    assert_int_equal(auth_parse_creds(":x", &u, &p, &err), -1);
    berth_error_release(&err);
}

static char tmp[] = "/tmp/berth-test-auth-XXXXXX";

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static void test_lookup(void **state)
{
    assert_non_null(mkdtemp(tmp));
    berth_error_t err = NULL;
    cleanup_free char *path = xasprintf("%s/auth.json", tmp);
    write_file(path, "{\"auths\":{"
                     "\"reg.example:5000\":{\"auth\":\"dGVzdHVzZXI6dGVzdHBhc3M=\"},"
                     "\"reg.example:5000/team\":{\"auth\":\"dGVhbTp0ZWFtcHc=\"},"
                     "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
                     "\"plain.example\":{\"username\":\"pu\",\"password\":\"pp\"}}}");
    char *u = NULL, *p = NULL;
    bool found = false;
    assert_int_equal(auth_lookup_in_file(path, "reg.example:5000", "other/x", &u, &p, &found, &err),
                     0);
    assert_true(found);
    assert_string_equal(u, "testuser");
    free(u);
    free(p);
    /* the longest repository prefix wins */
    assert_int_equal(
        auth_lookup_in_file(path, "reg.example:5000", "team/app", &u, &p, &found, &err), 0);
    assert_true(found);
    assert_string_equal(u, "team");
    assert_string_equal(p, "teampw");
    free(u);
    free(p);
    /* "team" must not match "teams/x" */
    assert_int_equal(
        auth_lookup_in_file(path, "reg.example:5000", "teams/app", &u, &p, &found, &err), 0);
    assert_string_equal(u, "testuser");
    free(u);
    free(p);
    /* docker's legacy key for Docker Hub */
    assert_int_equal(auth_lookup_in_file(path, "docker.io", NULL, &u, &p, &found, &err), 0);
    assert_true(found);
    assert_string_equal(u, "hub");
    free(u);
    free(p);
    assert_int_equal(auth_lookup_in_file(path, "plain.example", NULL, &u, &p, &found, &err), 0);
    assert_string_equal(p, "pp");
    free(u);
    free(p);
    /* identity tokens come back as the "<token>" user with the token as password */
    cleanup_free char *idt = xasprintf("%s/idt.json", tmp);
    write_file(idt, "{\"auths\":{\"acr.example\":{\"auth\":\"MDAwOg==\","
                    "\"identitytoken\":\"refresh-me\"}}}");
    assert_int_equal(auth_lookup_in_file(idt, "acr.example", NULL, &u, &p, &found, &err), 0);
    assert_true(found);
    assert_string_equal(u, AUTH_IDENTITY_TOKEN_USER);
    assert_string_equal(p, "refresh-me");
    free(u);
    free(p);
    assert_int_equal(auth_lookup_in_file(path, "unknown:1", NULL, &u, &p, &found, &err), 0);
    assert_false(found);
    /* missing file: not found, no error */
    cleanup_free char *missing = xasprintf("%s/none.json", tmp);
    assert_int_equal(auth_lookup_in_file(missing, "reg.example:5000", NULL, &u, &p, &found, &err),
                     0);
    assert_false(found);
    /* malformed file: error naming it */
    cleanup_free char *bad = xasprintf("%s/bad.json", tmp);
    write_file(bad, "{\"auths\": {");
    assert_int_equal(auth_lookup_in_file(bad, "x", NULL, &u, &p, &found, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "bad.json"));
    berth_error_release(&err);
    /* bad base64 entry */
    write_file(bad, "{\"auths\":{\"x\":{\"auth\":\"@@@@\"}}}");
    assert_int_equal(auth_lookup_in_file(bad, "x", NULL, &u, &p, &found, &err), -1);
    berth_error_release(&err);

    /* docker config.json found through HOME, REGISTRY_AUTH_FILE first */
    cleanup_free char *home = xasprintf("%s/home", tmp);
    cleanup_free char *dockerdir = xasprintf("%s/.docker", home);
    mkdir(home, 0700);
    mkdir(dockerdir, 0700);
    cleanup_free char *dcfg = xasprintf("%s/config.json", dockerdir);
    write_file(dcfg, "{\"auths\":{\"d.example\":{\"auth\":\"ZDpkcHc=\"}}}");
    setenv("HOME", home, 1);
    unsetenv("XDG_RUNTIME_DIR");
    setenv("REGISTRY_AUTH_FILE", path, 1);
    assert_int_equal(auth_lookup(NULL, "d.example", NULL, &u, &p, &found, &err), 0);
    assert_true(found);
    assert_string_equal(u, "d");
    assert_string_equal(p, "dpw");
    free(u);
    free(p);
    assert_int_equal(auth_lookup(NULL, "reg.example:5000", NULL, &u, &p, &found, &err), 0);
    assert_string_equal(u, "testuser");
    free(u);
    free(p);
    /* --authfile restricts the lookup to that file */
    assert_int_equal(auth_lookup(path, "d.example", NULL, &u, &p, &found, &err), 0);
    assert_false(found);
}

static void test_cred_helper(void **state)
{
    /* a docker-credential-NAME helper on PATH answers "get" with JSON */
    berth_error_t err = NULL;
    cleanup_free char *bindir = xasprintf("%s/bin", tmp);
    mkdir(bindir, 0755);
    cleanup_free char *helper = xasprintf("%s/docker-credential-berthtest", bindir);
    write_file(helper, "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\n"
                       "[ \"$server\" = helped.example ] || { echo not found; exit 1; }\n"
                       "echo '{\"ServerURL\":\"helped.example\",\"Username\":\"hu\","
                       "\"Secret\":\"hs\"}'\n");
    chmod(helper, 0755);
    const char *old_path = getenv("PATH");
    cleanup_free char *path = xasprintf("%s:%s", bindir, old_path ? old_path : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    cleanup_free char *f = xasprintf("%s/helper.json", tmp);
    write_file(f, "{\"credHelpers\":{\"helped.example\":\"berthtest\"},"
                  "\"credsStore\":\"berthtest\"}");
    char *u = NULL, *p = NULL;
    bool found = false;
    if (auth_lookup_in_file(f, "helped.example", NULL, &u, &p, &found, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    assert_true(found);
    assert_string_equal(u, "hu");
    assert_string_equal(p, "hs");
    free(u);
    free(p);
    /* the helper does not know the server: not found, no error */
    assert_int_equal(auth_lookup_in_file(f, "other.example", NULL, &u, &p, &found, &err), 0);
    assert_false(found);
    /* a helper that is not installed is an error naming it */
    write_file(f, "{\"credHelpers\":{\"x.example\":\"nosuchhelper\"}}");
    assert_int_equal(auth_lookup_in_file(f, "x.example", NULL, &u, &p, &found, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "docker-credential-nosuchhelper"));
    berth_error_release(&err);
    if (old_path)
        setenv("PATH", old_path, 1);
}

static void test_store_remove(void **state)
{
    berth_error_t err = NULL;
    cleanup_free char *path = xasprintf("%s/new/dir/auth.json", tmp);
    if (auth_store(path, "r.example:5000", "user", "pa:ss", &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    cleanup_free char *dir = xasprintf("%s/new/dir", tmp);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(auth_store(path, "other.example", "o", "p", &err), 0);
    char *u = NULL, *p = NULL;
    bool found = false;
    assert_int_equal(auth_lookup_in_file(path, "r.example:5000", NULL, &u, &p, &found, &err), 0);
    assert_true(found);
    assert_string_equal(p, "pa:ss");
    free(u);
    free(p);
    bool removed = false;
    assert_int_equal(auth_remove(path, "r.example:5000", &removed, &err), 0);
    assert_true(removed);
    assert_int_equal(auth_remove(path, "r.example:5000", &removed, &err), 0);
    assert_false(removed);
    assert_int_equal(auth_lookup_in_file(path, "other.example", NULL, &u, &p, &found, &err), 0);
    assert_true(found);
    free(u);
    free(p);
    assert_int_equal(auth_remove(path, NULL, &removed, &err), 0);
    assert_true(removed);
    assert_int_equal(auth_lookup_in_file(path, "other.example", NULL, &u, &p, &found, &err), 0);
    assert_false(found);
    cleanup_free char *cmd = xasprintf("rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenges),       cmocka_unit_test(test_token_response),
        cmocka_unit_test(test_base64_and_creds), cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_cred_helper),      cmocka_unit_test(test_store_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
