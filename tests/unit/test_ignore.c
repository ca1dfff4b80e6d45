/* .containerignore / .dockerignore matching (moby patternmatcher semantics) and loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "build/ignore.h"
#include "common/cleanup.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One pattern against one path: the pattern alone decides (no exceptions). */
struct pat_case {
    const char *pattern, *path;
    bool match;
};

static const struct pat_case pat_cases[] = {
    {"**", "file", true},
    {"**", "file/", true},
    {"**/", "file", true},
    {"**/", "dir/file", true},
    {"**/**", "dir/file", true},
    {"**/file", "dir/file", true},
    {"/**/file", "dir/file", true},
    {"**/file", "dir/dir/file", true},
    {"**/file", "file", true},
    {"**/file*", "dir/dir/file", true},
    {"**/file*", "dir/dir/file.txt", true},
    {"**/file*txt", "dir/dir/file.txt", true},
    {"**/file*.txt", "dir/dir/file.txt", true},
    {"**/file*.txt*", "dir/dir/file.txt", true},
    {"**/**/*.txt", "dir/dir/file.txt", true},
    {"**/**/*.txt2", "dir/dir/file.txt", false},
    {"**/*.txt", "file.txt", true},
    {"**/**/*.txt", "file.txt", true},
    {"a**/*.txt", "a/file.txt", true},
    {"a**/*.txt", "a/dir/file.txt", true},
    {"a**/*.txt", "a/dir/dir/file.txt", true},
    {"a/*.txt", "a/dir/file.txt", false},
    {"a/*.txt", "a/file.txt", true},
    {"a/*.txt**", "a/file.txt", true},
    {"a[b-d]e", "ae", false},
    {"a[b-d]e", "ace", true},
    {"a[b-d]e", "aae", false},
    {"a[^b-d]e", "aze", true},
    {"a[\\]]e", "a]e", true},
    {".*", ".foo", true},
    {".*", "foo", false},
    {"abc.def", "abcdef", false},
    {"abc.def", "abc.def", true},
    {"abc.def", "abcZdef", false},
    {"abc?def", "abcZdef", true},
    {"abc?def", "abcdef", false},
    {"abc?def", "abc/def", false},
    {"a\\\\", "a\\", true},
    {"a\\*b", "a*b", true},
    {"a\\*b", "axb", false},
    {"**/foo/bar", "foo/bar", true},
    {"**/foo/bar", "dir/foo/bar", true},
    {"**/foo/bar", "dir/dir2/foo/bar", true},
    {"abc/**", "abc", false}, /* the pattern does not match "abc" itself */
    {"abc/**", "abc/def", true},
    {"abc/**", "abc/def/ghi", true},
    {"**/.foo", ".foo", true},
    {"**/.foo", "bar.foo", false},
    {"a(b)c/def", "a(b)c/def", true},
    {"a(b)c/def", "a(b)c/xyz", false},
    {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
    {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    /* docker's "**x" suffix quirk: a leading ** followed only by literals is a suffix test */
    {"**foo", "barfoo", true},
    {"*", "a", true},
    {"*", "a/b", true}, /* via the parent "a" */
    {"*/b", "a/b", true},
    {"*/b", "a/c/b", false},
    {"a/b", "a/b/c/d", true}, /* parent directories match */
    {"a/b", "a/bc", false},
    {"/a", "a", true},
    {"./a", "a", true},
    {"a/../b", "b", true},
    {"a//b/", "a/b", true},
    {"b", "a/b", false},
    {"node_modules", "node_modules/x/y.js", true},
    {"*.log", "x.log", true},
    {"*.log", "sub/x.log", false},
    {"**/*.log", "sub/x.log", true},
    {"?", "ab", false},
    {"[a-c]*", "bz", true},
    /* '?' and classes take whole UTF-8 characters */
    {"a?b",
     "a\xc3\xa9"
     "b",
     true},
    {"a??b",
     "a\xc3\xa9"
     "b",
     false},
    {"a[^x]b",
     "a\xe2\x82\xac"
     "b",
     true},
    {"[\xc3\xa0-\xc3\xbc]x", "\xc3\xa9x", true},
    {"*[\xc3\xa0-\xc3\xbc]", "e", false},
    {"[x\\-]", "-", true},
    {"[\\-x]", "a", false},
};

static void test_pattern_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(pat_cases) / sizeof(pat_cases[0]); i++) {
        const struct pat_case *c = &pat_cases[i];
        cleanup_error berth_error_t err = NULL;
        struct ignore *ign = NULL;
        const char *pats[] = {c->pattern};
        assert_int_equal(ignore_new(pats, 1, &ign, &err), 0);
        bool ex = !c->match;
        assert_int_equal(ignore_matches(ign, c->path, &ex, &err), 0);
        if (ex != c->match) {
            fprintf(stderr, "pattern case %zu: \"%s\" vs \"%s\": got %d want %d\n", i, c->pattern,
                    c->path, ex, c->match);
            failures++;
        }
        ignore_free(ign);
    }
    assert_int_equal(failures, 0);
}

/* Whole ignore files against paths. */
struct file_case {
    const char *file;
    const char *path;
    bool excluded;
};

static const struct file_case file_cases[] = {
    {"docs\n!docs/README.md\n", "docs/README.md", false},
    {"docs\n!docs/README.md\n", "docs/other.md", true},
    {"docs\n!docs/README.md\n", "docs", true},
    {"*.md\n!README.md\n", "README.md", false},
    {"*.md\n!README.md\n", "CHANGES.md", true},
    {"*.md\n!README.md\n", "sub/a.md", false},
    {"!README.md\n*.md\n", "README.md", true}, /* the last match wins */
    {"**\n!keep\n", "keep", false},
    {"**\n!keep\n", "keep/inner", false},
    {"**\n!keep\n", "other", true},
    {"a\n!a/b\na/b/c\n", "a/b/c", true},
    {"a\n!a/b\na/b/c\n", "a/b/d", false},
    {"a\n!a/b\na/b/c\n", "a/x", true},
    {"# comment\n\n  *.tmp  \n", "x.tmp", true},
    {"# comment\n", "# comment", false},
    {" # not a comment\n", "# not a comment", true},
    {"/abs\n", "abs", true},
    {"!  spaced\n*\n!  spaced\n", "spaced", false},
    {"\xef\xbb\xbf"
     "bom\n",
     "bom", true},
    {"crlf\r\nother\r\n", "crlf", true},
    {"crlf\r\nother\r\n", "other", true},
    {"vendor/**\n!vendor/keep/**\n", "vendor/keep/a.go", false},
    {"vendor/**\n!vendor/keep/**\n", "vendor/drop/a.go", true},
    {"Dockerfile\n.git\n", ".git/config", true},
    {"Dockerfile\n.git\n", "src/.git", false},
    {"", "anything", false},
    {"**\n", ".", false}, /* the context root itself is never excluded */
    {"**\n", "./", false},
};

static void test_file_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
        const struct file_case *c = &file_cases[i];
        cleanup_error berth_error_t err = NULL;
        struct ignore *ign = NULL;
        if (ignore_parse(c->file, strlen(c->file), &ign, &err) < 0)
            fail_msg("file case %zu: %s", i, berth_error_msg(err));
        bool ex = !c->excluded;
        assert_int_equal(ignore_matches(ign, c->path, &ex, &err), 0);
        if (ex != c->excluded) {
            fprintf(stderr, "file case %zu: [%s] vs \"%s\": got %d want %d\n", i, c->file, c->path,
                    ex, c->excluded);
            failures++;
        }
        ignore_free(ign);
    }
    assert_int_equal(failures, 0);
}

static void test_bad_patterns(void **state)
{
    (void)state;
    static const char *const bad[] = {"!\n",  "[a\n",   "a\\\n",  "[]\n",      "x/[a-]\n",
                                      "[^\n", "[]a]\n", "[-x]\n", "[a-b-c]\n", "[^bc\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cleanup_error berth_error_t err = NULL;
        struct ignore *ign = NULL;
        if (ignore_parse(bad[i], strlen(bad[i]), &ign, &err) == 0) {
            ignore_free(ign);
            fail_msg("pattern %s must be rejected", bad[i]);
        }
    }
}

static void test_normalised_patterns(void **state)
{
    (void)state;
    const char *file = "/a/b/\n!/c/./d\n  e/../f  \n# x\n../up\n";
    cleanup_error berth_error_t err = NULL;
    struct ignore *ign = NULL;
    assert_int_equal(ignore_parse(file, strlen(file), &ign, &err), 0);
    assert_int_equal(ignore_count(ign), 4);
    assert_string_equal(ignore_pattern(ign, 0), "a/b");
    assert_string_equal(ignore_pattern(ign, 1), "!c/d");
    assert_string_equal(ignore_pattern(ign, 2), "f");
    assert_string_equal(ignore_pattern(ign, 3), "../up");
    assert_null(ignore_pattern(ign, 4));
    assert_true(ignore_has_exceptions(ign));
    ignore_free(ign);
}

struct dir_case {
    const char *file, *dir;
    bool may;
};

static const struct dir_case dir_cases[] = {
    {"docs\n!docs/README.md\n", "docs", true},
    {"docs\n!docs/README.md\n", "other", false},
    {"build\n", "build", false},
    {"build\n!src/x\n", "build", false},
    {"build\n!*.keep\n", "build", true},
    {"build\n!**/keep\n", "build", true},
    {"a\n!a/b/c\n", "a/b", true},
    {"a\n!a/b/c\n", "a/x", false},
    {"a\n!a\n", "a", true},
    {"ab\n!abc/x\n", "ab", false},
};

static void test_dir_reinclude(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(dir_cases) / sizeof(dir_cases[0]); i++) {
        cleanup_error berth_error_t err = NULL;
        struct ignore *ign = NULL;
        assert_int_equal(ignore_parse(dir_cases[i].file, strlen(dir_cases[i].file), &ign, &err), 0);
        if (ignore_dir_may_reinclude(ign, dir_cases[i].dir) != dir_cases[i].may)
            fail_msg("dir case %zu: [%s] dir %s want %d", i, dir_cases[i].file, dir_cases[i].dir,
                     dir_cases[i].may);
        ignore_free(ign);
    }
}

/* Patterns with many stars must not backtrack exponentially (docker's matcher is RE2). */
static void test_pathological_pattern(void **state)
{
    (void)state;
    char path[400];
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    const char *pats[] = {"*a*a*a*a*a*a*a*a*a*a*a*a*b", "**/**/**/**/**/**/x"};
    struct ignore *ign = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(ignore_new(pats, 2, &ign, &err), 0);
    bool ex = true;
    assert_int_equal(ignore_matches(ign, path, &ex, &err), 0);
    assert_false(ex);
    for (size_t i = 1; i < 200; i += 2)
        path[i] = '/';
    assert_int_equal(ignore_matches(ign, path, &ex, &err), 0);
    assert_false(ex);
    ignore_free(ign);
}

/* ---- loading ---- */

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static bool excluded(struct ignore *ign, const char *path)
{
    bool ex = false;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(ignore_matches(ign, path, &ex, &err), 0);
    return ex;
}

static void test_load(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/berth-ignore-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    cleanup_error berth_error_t err = NULL;
    struct ignore *ign = NULL;
    char *src = NULL;

    /* nothing: empty matcher */
    assert_int_equal(ignore_load(dfd, NULL, &ign, &src, &err), 0);
    assert_null(src);
    assert_int_equal(ignore_count(ign), 0);
    assert_false(excluded(ign, "x"));
    ignore_free(ign);

    /* .dockerignore alone, then .containerignore preferred */
    write_file(dir, ".dockerignore", "from-docker\n");
    assert_int_equal(ignore_load(dfd, NULL, &ign, &src, &err), 0);
    assert_string_equal(src, ".dockerignore");
    free(src);
    assert_true(excluded(ign, "from-docker"));
    ignore_free(ign);
    write_file(dir, ".containerignore", "from-container\n");
    assert_int_equal(ignore_load(dfd, NULL, &ign, &src, &err), 0);
    assert_string_equal(src, ".containerignore");
    free(src);
    assert_true(excluded(ign, "from-container"));
    assert_false(excluded(ign, "from-docker"));
    ignore_free(ign);

    /* <Containerfile>.dockerignore next to the Containerfile wins */
    char cfpath[4096];
    snprintf(cfpath, sizeof(cfpath), "%s/Special.Containerfile", dir);
    write_file(dir, "Special.Containerfile.dockerignore", "from-special\n");
    assert_int_equal(ignore_load(dfd, cfpath, &ign, &src, &err), 0);
    assert_non_null(strstr(src, "Special.Containerfile.dockerignore"));
    free(src);
    assert_true(excluded(ign, "from-special"));
    ignore_free(ign);

    /* a malformed file is an error naming it */
    write_file(dir, ".containerignore", "ok\n[bad\n");
    assert_int_equal(ignore_load(dfd, NULL, &ign, NULL, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), ".containerignore"));
    berth_error_release(&err);

    /* a symlink pointing outside the context is resolved inside it, never read from outside */
    char p1[4096], p2[4096];
    snprintf(p1, sizeof(p1), "%s/.containerignore", dir);
    snprintf(p2, sizeof(p2), "%s/.dockerignore", dir);
    unlink(p1);
    unlink(p2);
    assert_int_equal(symlink("/etc/passwd", p1), 0);
    int r = ignore_load(dfd, NULL, &ign, &src, &err);
    if (r == 0) {
        /* /etc/passwd resolved inside the context does not exist: no patterns */
        assert_int_equal(ignore_count(ign), 0);
        assert_null(src);
        ignore_free(ign);
    } else {
        berth_error_release(&err);
    }
    unlink(p1);
    snprintf(p1, sizeof(p1), "%s/Special.Containerfile.dockerignore", dir);
    unlink(p1);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_table),        cmocka_unit_test(test_file_table),
        cmocka_unit_test(test_bad_patterns),         cmocka_unit_test(test_normalised_patterns),
        cmocka_unit_test(test_dir_reinclude),        cmocka_unit_test(test_load),
        cmocka_unit_test(test_pathological_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
