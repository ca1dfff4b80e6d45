/* Variable expansion (docker's shell lexer) and ARG/ENV scoping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "build/containerfile.h"
#include "build/expand.h"
#include "common/cleanup.h"
#include "common/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *test_lookup(void *ctx, const char *name)
{
    static const char *const vars[][2] = {
        {"X", "x"},
        {"HOME", "/root"},
        {"EMPTY", ""},
        {"SPACE", "a b  c"},
        {"PATHV", "/usr/local/bin"},
        {"FILE", "archive.tar.gz"},
        {"Q", "it's"},
        {"_u1", "under"},
        {"U", "\xc3\xa9"
              "a\xc3\xa9"},
        {"1", "one"},
    };
    (void)ctx;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (strcmp(vars[i][0], name) == 0)
            return vars[i][1];
    return NULL;
}

struct word_case {
    const char *in;
    const char *want; /* NULL: an error whose message contains err */
    const char *err;
};

static const struct word_case word_cases[] = {
    /* plain words, quotes, escapes */
    {"hello", "hello", NULL},
    {"he'll'o", "hello", NULL},
    {"he'llo", NULL, "matching single-quote"},
    {"he\\'llo", "he'llo", NULL},
    {"he\\\\'llo", NULL, "matching single-quote"},
    {"abc\\", "abc", NULL},
    {"abc\\\\", "abc\\", NULL},
    {"\"hello\"", "hello", NULL},
    {"\"hel'lo\"", "hel'lo", NULL},
    {"'hel\"lo'", "hel\"lo", NULL},
    {"\"he\\\"llo\"", "he\"llo", NULL},
    {"\"he\\llo\"", "he\\llo", NULL},
    {"\"he\\\\llo\"", "he\\llo", NULL},
    {"\"a\\$X\"", "a$X", NULL},
    {"\"unterminated", NULL, "matching double-quote"},
    {"'\\n'", "\\n", NULL},
    {"a  b", "a  b", NULL},
    {"\"\"", "", NULL},
    {"''", "", NULL},
    {"", "", NULL},
    /* $VAR and ${VAR} */
    {"$X", "x", NULL},
    {"${X}", "x", NULL},
    {"${X}y", "xy", NULL},
    {"$Xy", "", NULL},
    {"$X-y", "x-y", NULL},
    {"$X.y", "x.y", NULL},
    {"$_u1", "under", NULL},
    {"$1", "one", NULL},
    {"$12", "", NULL},
    {"$", "$", NULL},
    {"a$", "a$", NULL},
    {"$ x", "$ x", NULL},
    {"$/", "$/", NULL},
    {"\\$X", "$X", NULL},
    {"'$X'", "$X", NULL},
    {"\"$X\"", "x", NULL},
    {"\"${X}\"", "x", NULL},
    {"$UNSET", "", NULL},
    {"${UNSET}", "", NULL},
    {"${HOME}/x", "/root/x", NULL},
    {"\"$Q\"", "it's", NULL},
    {"$Q", "it's", NULL},
    /* defaults and alternatives */
    {"${UNSET:-def}", "def", NULL},
    {"${EMPTY:-def}", "def", NULL},
    {"${EMPTY-def}", "", NULL},
    {"${X:-def}", "x", NULL},
    {"${X-def}", "x", NULL},
    {"${UNSET-def}", "def", NULL},
    {"${UNSET:-}", "", NULL},
    {"${X:+alt}", "alt", NULL},
    {"${X+alt}", "alt", NULL},
    {"${EMPTY:+alt}", "", NULL},
    {"${EMPTY+alt}", "alt", NULL},
    {"${UNSET+alt}", "", NULL},
    {"${UNSET:+alt}", "", NULL},
    {"${UNSET:-${X}}", "x", NULL},
    {"${UNSET:-${UNSET2:-deep}}", "deep", NULL},
    {"${UNSET:-'q w'}", "q w", NULL},
    {"${UNSET:-\"$X y\"}", "x y", NULL},
    {"${UNSET:-a\\}b}", "a}b", NULL},
    {"${X:+$HOME}", "/root", NULL},
    {"pre${UNSET:-mid}post", "premidpost", NULL},
    /* required */
    {"${X:?must}", "x", NULL},
    {"${X?must}", "x", NULL},
    {"${UNSET:?must be set}", NULL, "UNSET: must be set"},
    {"${UNSET?}", NULL, "UNSET: is not allowed to be unset"},
    {"${UNSET:?}", NULL, "UNSET: is not allowed to be unset"},
    {"${EMPTY:?}", NULL, "EMPTY: is not allowed to be empty"},
    {"${EMPTY?}", "", NULL},
    /* pattern removal and replacement */
    {"${PATHV#*/}", "usr/local/bin", NULL},
    {"${PATHV##*/}", "bin", NULL},
    {"${PATHV%/*}", "/usr/local", NULL},
    {"${PATHV%%/*}", "", NULL},
    {"${FILE%.*}", "archive.tar", NULL},
    {"${FILE%%.*}", "archive", NULL},
    {"${FILE#*.}", "tar.gz", NULL},
    {"${FILE##*.}", "gz", NULL},
    {"${FILE#nomatch}", "archive.tar.gz", NULL},
    {"${UNSET#x}", "", NULL},
    {"${PATHV/local/opt}", "/usr/opt/bin", NULL},
    {"${SPACE/ /_}", "a_b  c", NULL},
    {"${SPACE// /_}", "a_b__c", NULL},
    {"${PATHV/\\//-}", "-usr/local/bin", NULL},
    {"${PATHV//\\//-}", "-usr-local-bin", NULL},
    {"${FILE/.t*/}", "archive", NULL},
    {"${PATHV#*}", "/usr/local/bin", NULL},
    {"${PATHV##*}", "", NULL},
    {"${FILE#?}", "rchive.tar.gz", NULL},
    {"${FILE#[a]}", "archive.tar.gz", NULL}, /* no bracket expressions: literal */
    {"${FILE#\\a}", NULL, "invalid escape"},
    {"${X/?/Y}", "Y", NULL},
    {"${U#?}", "a\xc3\xa9", NULL}, /* '?' is one character, not one byte */
    {"${U%?}",
     "\xc3\xa9"
     "a",
     NULL},
    {"${U//?/.}", "...", NULL},
    {"${FILE//a/}", "rchive.tr.gz", NULL},
    {"${UNSET/a/b}", "", NULL},
    {"${X:=y", NULL, "missing '}'"},
    {"${X:#x}", NULL, "unsupported modifier (:#)"},
    {"${X:%x}", NULL, "unsupported modifier (:%)"},
    /* syntax errors */
    {"${X", NULL, "missing '}'"},
    {"${X:-abc", NULL, "missing '}'"},
    {"${", NULL, "missing '}'"},
    {"${}", NULL, "bad substitution"},
    {"${:}", NULL, "bad substitution"},
    {"${{X}}", NULL, "bad substitution"},
    {"${X:=y}", NULL, "unsupported modifier (:=)"},
    {"${X^}", NULL, "unsupported modifier (^)"},
    {"${PATHV/x", NULL, "missing '/'"},
};

static void test_word_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(word_cases) / sizeof(word_cases[0]); i++) {
        const struct word_case *c = &word_cases[i];
        cleanup_error berth_error_t err = NULL;
        cleanup_free char *out = NULL;
        int r = expand_word(c->in, '\\', test_lookup, NULL, &out, &err);
        if (c->want) {
            if (r < 0 || strcmp(out, c->want) != 0) {
                fprintf(stderr, "case %zu %s: got %s%s want \"%s\"\n", i, c->in,
                        r < 0 ? "error " : "", r < 0 ? berth_error_msg(err) : out, c->want);
                failures++;
            }
        } else if (r == 0 || !strstr(berth_error_msg(err), c->err) ||
                   !strstr(berth_error_msg(err), "failed to process")) {
            fprintf(stderr, "case %zu %s: got %s want error containing \"%s\"\n", i, c->in,
                    r == 0 ? out : berth_error_msg(err), c->err);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

struct words_case {
    const char *in;
    const char *want[6]; /* NULL-terminated */
};

static const struct words_case words_cases[] = {
    {"a b  c", {"a", "b", "c"}},
    {"  a  ", {"a"}},
    {"", {NULL}},
    {"   ", {NULL}},
    {"$SPACE", {"a", "b", "c"}},
    {"\"$SPACE\"", {"a b  c"}},
    {"x$SPACE", {"xa", "b", "c"}},
    {"'a b' c", {"a b", "c"}},
    {"a\\ b", {"a b"}},
    {"\"\"", {NULL}},
    {"\"\" x", {"x"}},
    {"80/tcp ${UNSET:-443}", {"80/tcp", "443"}},
    {"$EMPTY", {NULL}},
    {"a${X}b c", {"axb", "c"}},
    {"'$X' \"$X\"", {"$X", "x"}},
    {"\\$X", {"$X"}},
};

static void test_words_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(words_cases) / sizeof(words_cases[0]); i++) {
        const struct words_case *c = &words_cases[i];
        cleanup_error berth_error_t err = NULL;
        cleanup_strv char **out = NULL;
        size_t n = 99;
        if (expand_words(c->in, '\\', test_lookup, NULL, &out, &n, &err) < 0) {
            fprintf(stderr, "words case %zu %s: error %s\n", i, c->in, berth_error_msg(err));
            failures++;
            continue;
        }
        size_t want_n = 0;
        while (want_n < 6 && c->want[want_n])
            want_n++;
        bool ok = n == want_n && out[n] == NULL;
        for (size_t k = 0; ok && k < n; k++)
            ok = strcmp(out[k], c->want[k]) == 0;
        if (!ok) {
            fprintf(stderr, "words case %zu [%s]: got %zu words:", i, c->in, n);
            for (size_t k = 0; k < n; k++)
                fprintf(stderr, " [%s]", out[k]);
            fprintf(stderr, "\n");
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_backtick_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"`$X", "$X"},         {"\\$X", "\\x"},      {"C:\\path\\$X", "C:\\path\\x"},
        {"\"a`\"b\"", "a\"b"}, {"\"a\\b\"", "a\\b"}, {"a``b", "a`b"},
        {"`'x`'", "'x'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_error berth_error_t err = NULL;
        cleanup_free char *out = NULL;
        assert_int_equal(expand_word(cases[i].in, '`', test_lookup, NULL, &out, &err), 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("backtick case %zu %s: got %s want %s", i, cases[i].in, out, cases[i].want);
    }
}

static void test_skip_unset_and_raw(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
        bool skip_unset, raw_quotes, raw_escapes;
    } cases[] = {
        {"$UNSET/$X", "$UNSET/x", true, false, false},
        {"${UNSET}", "${UNSET}", true, false, false},
        {"${UNSET:-d}", "${UNSET:-d}", true, false, false},
        {"${UNSET/a/b}", "${UNSET/a/b}", true, false, false},
        {"'a' \"b\"", "'a' \"b\"", false, true, false},
        {"a\\ b", "a\\ b", false, false, true},
        {"\"a\\\"b\"", "\"a\\\"b\"", false, true, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct expand_opts o = {.escape = '\\',
                                .skip_unset = cases[i].skip_unset,
                                .raw_quotes = cases[i].raw_quotes,
                                .raw_escapes = cases[i].raw_escapes};
        cleanup_error berth_error_t err = NULL;
        cleanup_free char *out = NULL;
        assert_int_equal(expand_process(cases[i].in, &o, test_lookup, NULL, &out, NULL, NULL, &err),
                         0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("opts case %zu %s: got %s want %s", i, cases[i].in, out, cases[i].want);
    }
}

static void test_heredoc_expansion(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *out = NULL;
    assert_int_equal(expand_heredoc("echo \"$X\" 'y$X' \\$HOME ${UNSET:-d}\nline2\n", test_lookup,
                                    NULL, &out, &err),
                     0);
    assert_string_equal(out, "echo \"x\" 'yx' $HOME d\nline2\n");
}

static void test_instruction_kind(void **state)
{
    (void)state;
    const char *word[] = {"ADD",  "COPY",       "ENV",    "LABEL",   "ARG",
                          "USER", "STOPSIGNAL", "VOLUME", "WORKDIR", "FROM"};
    for (size_t i = 0; i < sizeof(word) / sizeof(word[0]); i++)
        assert_int_equal(expand_instruction_kind(word[i]), EXPAND_WORD);
    assert_int_equal(expand_instruction_kind("EXPOSE"), EXPAND_WORDS);
    const char *none[] = {"RUN",         "CMD",        "ENTRYPOINT", "SHELL",
                          "HEALTHCHECK", "MAINTAINER", "ONBUILD"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        assert_int_equal(expand_instruction_kind(none[i]), EXPAND_NONE);
}

static void test_env_list(void **state)
{
    (void)state;
    struct expand_env e;
    expand_env_init(&e);
    const char *kv[] = {"PATH=/bin", "A=1=2", "NOEQ", "=bad", "B="};
    expand_env_load(&e, kv, 5);
    assert_int_equal(e.n, 3);
    assert_string_equal(expand_env_get(&e, "A", NULL), "1=2");
    assert_string_equal(expand_env_get(&e, "B", NULL), "");
    expand_env_set(&e, "PATH", "/usr/bin");
    expand_env_set(&e, "U", NULL);
    bool declared = false;
    assert_null(expand_env_get(&e, "U", &declared));
    assert_true(declared);
    assert_null(expand_env_get(&e, "NOPE", &declared));
    assert_false(declared);
    cleanup_strv char **v = expand_env_to_strv(&e);
    assert_string_equal(v[0], "PATH=/usr/bin");
    assert_string_equal(v[1], "A=1=2");
    assert_string_equal(v[2], "B=");
    assert_null(v[3]);
    expand_env_clear(&e);
}

/* ---- ARG scope table ---- */

static char *stage_lookup_dup(struct stage_env *se, const char *name)
{
    const char *v = stage_env_lookup(se, name);
    return v ? strdup(v) : NULL;
}

static void test_global_arg_in_from(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_build_args struct build_args *ba = NULL;
    assert_int_equal(build_args_new(NULL, "linux/arm64", "linux/amd64", &ba, &err), 0);
    assert_int_equal(build_args_declare_global(ba, "VERSION", "1.0", &err), 0);
    assert_int_equal(build_args_declare_global(ba, "IMG", "busybox:${VERSION}", &err), 0);
    cleanup_free char *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(build_args_expand_global(ba, "$IMG", &a, &err), 0);
    assert_string_equal(a, "busybox:1.0");
    assert_int_equal(
        build_args_expand_global(ba, "x-$TARGETARCH-$BUILDARCH-$TARGETPLATFORM", &b, &err), 0);
    assert_string_equal(b, "x-arm64-amd64-linux/arm64");
    /* an undeclared name is empty */
    assert_int_equal(build_args_expand_global(ba, "[${NOPE:-none}]", &c, &err), 0);
    assert_string_equal(c, "[none]");
}

static void test_global_arg_scope_in_stage(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_build_args struct build_args *ba = NULL;
    const char *cli[] = {"VERSION=2.0", "UNUSED=1", "HTTP_PROXY=http://proxy:3128", NULL};
    assert_int_equal(build_args_new(cli, "linux/amd64", "linux/amd64", &ba, &err), 0);
    assert_int_equal(build_args_declare_global(ba, "VERSION", "1.0", &err), 0);
    assert_int_equal(build_args_declare_global(ba, "OTHER", "o", &err), 0);
    cleanup_free char *from = NULL;
    assert_int_equal(build_args_expand_global(ba, "img:$VERSION", &from, &err), 0);
    assert_string_equal(from, "img:2.0"); /* --build-arg overrides the global default */

    struct stage_env se;
    stage_env_init(&se, ba, NULL, 0);
    /* global args are not visible in the stage until redeclared */
    assert_null(stage_env_lookup(&se, "VERSION"));
    assert_null(stage_env_lookup(&se, "OTHER"));
    assert_null(stage_env_lookup(&se, "TARGETARCH"));
    assert_int_equal(stage_env_declare_arg(&se, "VERSION", NULL, &err), 0);
    assert_int_equal(stage_env_declare_arg(&se, "OTHER", NULL, &err), 0);
    assert_int_equal(stage_env_declare_arg(&se, "TARGETARCH", NULL, &err), 0);
    cleanup_free char *v = stage_lookup_dup(&se, "VERSION");
    cleanup_free char *o = stage_lookup_dup(&se, "OTHER");
    cleanup_free char *t = stage_lookup_dup(&se, "TARGETARCH");
    assert_string_equal(v, "2.0");
    assert_string_equal(o, "o");
    assert_string_equal(t, "amd64");
    /* proxy args reach RUN's environment but not history */
    cleanup_strv char **run = stage_env_run_env(&se);
    cleanup_strv char **hist = stage_env_history_args(&se);
    assert_true(strv_contains(run, "HTTP_PROXY=http://proxy:3128"));
    assert_false(strv_contains(hist, "HTTP_PROXY=http://proxy:3128"));
    assert_true(strv_contains(hist, "VERSION=2.0"));
    /* UNUSED was never declared: reported; the proxy arg is not */
    cleanup_strv char **unused = build_args_unused(ba);
    assert_non_null(unused[0]);
    assert_string_equal(unused[0], "UNUSED");
    assert_null(unused[1]);
    stage_env_clear(&se);
}

static void test_declared_proxy_in_history(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_build_args struct build_args *ba = NULL;
    const char *cli[] = {"http_proxy=p", NULL};
    assert_int_equal(build_args_new(cli, NULL, NULL, &ba, &err), 0);
    struct stage_env se;
    stage_env_init(&se, ba, NULL, 0);
    cleanup_strv char **h1 = stage_env_history_args(&se);
    assert_null(h1[0]);
    assert_int_equal(stage_env_declare_arg(&se, "http_proxy", NULL, &err), 0);
    cleanup_strv char **h2 = stage_env_history_args(&se);
    assert_true(strv_contains(h2, "http_proxy=p"));
    cleanup_strv char **run = stage_env_run_env(&se);
    assert_true(strv_contains(run, "http_proxy=p"));
    assert_null(run[1]); /* not listed twice */
    stage_env_clear(&se);
}

struct scope_case {
    const char *cli;       /* one --build-arg or NULL */
    const char *global;    /* global ARG default ("-" = no global ARG, NULL = ARG X) */
    const char *stage_arg; /* stage ARG X default ("-" = not declared, NULL = ARG X) */
    const char *env;       /* ENV X value or NULL */
    const char *want;      /* value of $X in the stage, NULL = unset */
};

static const struct scope_case scope_cases[] = {
    {NULL, "g", "-", NULL, NULL},   /* global not visible without redeclaration */
    {NULL, "g", NULL, NULL, "g"},   /* redeclared: global default */
    {NULL, "g", "s", NULL, "s"},    /* stage default wins over global */
    {"X=c", "g", NULL, NULL, "c"},  /* --build-arg wins */
    {"X=c", "g", "s", NULL, "c"},   /* --build-arg wins over stage default */
    {"X=c", "-", "-", NULL, NULL},  /* --build-arg alone declares nothing */
    {"X=c", "-", NULL, NULL, "c"},  /* declared without default */
    {NULL, "-", NULL, NULL, NULL},  /* declared, no value: unset */
    {NULL, "-", "s", "e", "e"},     /* ENV wins over ARG */
    {"X=c", "g", "s", "e", "e"},    /* ENV wins over --build-arg too */
    {NULL, "-", "-", "e", "e"},     /* plain ENV */
    {NULL, NULL, NULL, NULL, NULL}, /* global declared without value */
    {"X=", "g", NULL, NULL, ""},    /* empty --build-arg is a value */
};

static void test_scope_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scope_cases) / sizeof(scope_cases[0]); i++) {
        const struct scope_case *c = &scope_cases[i];
        cleanup_error berth_error_t err = NULL;
        cleanup_build_args struct build_args *ba = NULL;
        const char *cli[] = {c->cli, NULL};
        assert_int_equal(build_args_new(cli, NULL, NULL, &ba, &err), 0);
        if (!c->global || strcmp(c->global, "-") != 0)
            assert_int_equal(build_args_declare_global(ba, "X", c->global, &err), 0);
        struct stage_env se;
        stage_env_init(&se, ba, NULL, 0);
        /* ENV first, then ARG: order must not matter for the ENV-over-ARG rule */
        if (c->env)
            stage_env_set_env(&se, "X", c->env);
        if (!c->stage_arg || strcmp(c->stage_arg, "-") != 0)
            assert_int_equal(stage_env_declare_arg(&se, "X", c->stage_arg, &err), 0);
        const char *got = stage_env_lookup(&se, "X");
        if ((got == NULL) != (c->want == NULL) || (got && strcmp(got, c->want) != 0))
            fail_msg("scope case %zu: got %s want %s", i, got ? got : "(unset)",
                     c->want ? c->want : "(unset)");
        cleanup_free char *w = NULL;
        assert_int_equal(stage_env_expand_word(&se, "[${X-unset}]", &w, &err), 0);
        char want[64];
        snprintf(want, sizeof(want), "[%s]", c->want ? c->want : "unset");
        assert_string_equal(w, want);
        stage_env_clear(&se);
    }
}

static void test_env_after_arg_and_defaults(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_build_args struct build_args *ba = NULL;
    assert_int_equal(build_args_new(NULL, NULL, NULL, &ba, &err), 0);
    const char *base[] = {"PATH=/usr/bin:/bin", "B=base"};
    struct stage_env se;
    stage_env_init(&se, ba, base, 2);
    assert_int_equal(stage_env_declare_arg(&se, "A", "arg", &err), 0);
    stage_env_set_env(&se, "A", "env");
    cleanup_free char *a = stage_lookup_dup(&se, "A");
    assert_string_equal(a, "env");
    /* an ARG default is expanded in the stage scope (ENV from the base image included) */
    assert_int_equal(stage_env_declare_arg(&se, "C", "${B}-${A}", &err), 0);
    cleanup_free char *c = stage_lookup_dup(&se, "C");
    assert_string_equal(c, "base-env");
    /* RUN environment: ENV first, ARGs not shadowed by ENV after */
    cleanup_strv char **run = stage_env_run_env(&se);
    assert_string_equal(run[0], "PATH=/usr/bin:/bin");
    assert_true(strv_contains(run, "A=env"));
    assert_false(strv_contains(run, "A=arg"));
    assert_true(strv_contains(run, "C=base-env"));
    cleanup_strv char **words = NULL;
    size_t n = 0;
    stage_env_set_env(&se, "PORTS", "80 443");
    assert_int_equal(stage_env_expand_words(&se, "$PORTS 8080/udp", &words, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(words[1], "443");
    /* an erroring default */
    assert_int_equal(stage_env_declare_arg(&se, "D", "${NOPE:?required}", &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "NOPE: required"));
    stage_env_clear(&se);
}

static void test_build_args_parsing(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    struct build_args *ba = NULL;
    const char *bad[] = {"=x", NULL};
    assert_int_equal(build_args_new(bad, NULL, NULL, &ba, &err), -1);
    berth_error_release(&err);
    assert_int_equal(build_args_new(NULL, "linux", NULL, &ba, &err), -1);
    berth_error_release(&err);
    assert_int_equal(build_args_new(NULL, "linux/arm/v7/x", NULL, &ba, &err), -1);
    berth_error_release(&err);
    setenv("BERTH_TEST_FROM_ENV", "from-env", 1);
    const char *cli[] = {"BERTH_TEST_FROM_ENV", "BERTH_TEST_NOT_IN_ENV", "K=a=b", NULL};
    assert_int_equal(build_args_new(cli, "linux/arm/v7", NULL, &ba, &err), 0);
    bool given;
    assert_string_equal(build_args_cli(ba, "BERTH_TEST_FROM_ENV", &given), "from-env");
    assert_true(given);
    assert_null(build_args_cli(ba, "BERTH_TEST_NOT_IN_ENV", &given));
    assert_false(given);
    assert_string_equal(build_args_cli(ba, "K", &given), "a=b");
    assert_string_equal(expand_env_get(&ba->global, "TARGETVARIANT", NULL), "v7");
    assert_string_equal(expand_env_get(&ba->global, "TARGETPLATFORM", NULL), "linux/arm/v7");
    assert_true(build_arg_is_predefined("no_proxy"));
    assert_true(build_arg_is_predefined("ALL_PROXY"));
    assert_false(build_arg_is_predefined("PROXY"));
    assert_true(build_arg_is_automatic("BUILDOS"));
    assert_false(build_arg_is_automatic("TARGETSTAGE"));
    build_args_free(ba);
}

/* ---- whole instructions, as the builder uses them ---- */

static void test_expand_instructions(void **state)
{
    (void)state;
    static const char text[] =
        "ARG BASE=busybox TAG=${BASE}-1\n"
        "FROM --platform=$TARGETPLATFORM $BASE:$TAG AS b\n"
        "ARG TAG\n"
        "ENV A=1\n"
        "ENV A=2 B=$A C=\"${A} x\" PORTS=\"80 443/udp\"\n"
        "LABEL \"l $A\"=\"v $B\"\n"
        "COPY --chown=$A:$B --from=${STAGE:-b} <<EOF <<'RAW' src-$A /dst/$B/\n"
        "x=$A\n"
        "EOF\n"
        "y=$A\n"
        "RAW\n"
        "EXPOSE ${PORTS} 8080\n"
        "USER $A\n"
        "WORKDIR /w/${B}\n"
        "RUN --mount=type=cache,id=$A,target=/c echo $A\n"
        "ARG X=1 Y=$X\n"
        "ADD --checksum=sha256:${UNSET:-0} <<-EOT /t\n"
        "\tv=$A\n"
        "\tEOT\n"
        "WORKDIR ${NOPE:?must be set}\n";
    cleanup_error berth_error_t err = NULL;
    cleanup_containerfile struct containerfile *cf = NULL;
    assert_int_equal(containerfile_parse(text, strlen(text), "Containerfile", &cf, &err), 0);
    cleanup_build_args struct build_args *ba = NULL;
    assert_int_equal(build_args_new(NULL, "linux/arm64", "linux/amd64", &ba, &err), 0);
    ba->escape = cf->escape;
    assert_int_equal(build_args_apply_global(ba, &cf->insts[0], &err), 0);
    assert_string_equal(expand_env_get(&ba->global, "TAG", NULL), "busybox-1");

    struct stage_env se;
    stage_env_init(&se, ba, NULL, 0);
    struct cf_instruction *x = NULL;
    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[1], &x, &err), 0);
    assert_string_equal(x->args[0], "busybox:busybox-1");
    assert_string_equal(cf_flag_get(x, "platform"), "linux/arm64");
    cf_instruction_free(x);

    assert_int_equal(stage_env_apply_arg(&se, &cf->insts[2], &err), 0);
    assert_string_equal(stage_env_lookup(&se, "TAG"), "busybox-1");
    assert_int_equal(stage_env_apply_env(&se, &cf->insts[3], &err), 0);
    assert_int_equal(stage_env_apply_env(&se, &cf->insts[4], &err), 0);
    assert_string_equal(stage_env_lookup(&se, "A"), "2");
    assert_string_equal(stage_env_lookup(&se, "B"), "1"); /* the A before the instruction */
    assert_string_equal(stage_env_lookup(&se, "C"), "1 x");

    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[5], &x, &err), 0);
    assert_string_equal(x->args[0], "l 2");
    assert_string_equal(x->args[1], "v 1");
    cf_instruction_free(x);

    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[6], &x, &err), 0);
    assert_string_equal(cf_flag_get(x, "chown"), "2:1");
    assert_string_equal(cf_flag_get(x, "from"), "b");
    assert_string_equal(x->args[0], "<<EOF");
    assert_string_equal(x->args[1], "<<'RAW'");
    assert_string_equal(x->args[2], "src-2");
    assert_string_equal(x->args[3], "/dst/1/");
    assert_string_equal(x->heredocs[0].content, "x=2\n");
    assert_string_equal(x->heredocs[1].content, "y=$A\n");
    cf_instruction_free(x);

    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[7], &x, &err), 0);
    assert_int_equal(x->nargs, 3);
    assert_string_equal(x->args[0], "80");
    assert_string_equal(x->args[1], "443/udp");
    assert_string_equal(x->args[2], "8080");
    assert_null(x->args[3]);
    cf_instruction_free(x);

    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[8], &x, &err), 0);
    assert_string_equal(x->args[0], "2");
    cf_instruction_free(x);
    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[9], &x, &err), 0);
    assert_string_equal(x->args[0], "/w/1");
    cf_instruction_free(x);
    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[10], &x, &err), 0);
    assert_string_equal(cf_flag_get(x, "mount"), "type=cache,id=2,target=/c");
    assert_string_equal(x->args[0], "echo $A"); /* RUN is left to the shell */
    cf_instruction_free(x);

    assert_int_equal(stage_env_apply_arg(&se, &cf->insts[11], &err), 0);
    assert_string_equal(stage_env_lookup(&se, "Y"), "1");

    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[12], &x, &err), 0);
    assert_string_equal(cf_flag_get(x, "checksum"), "sha256:0");
    assert_string_equal(x->heredocs[0].content, "v=2\n");
    assert_false(x->heredocs[0].chomp);
    cf_instruction_free(x);

    assert_int_equal(stage_env_expand_instruction(&se, &cf->insts[13], &x, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "line 20: WORKDIR"));
    assert_non_null(strstr(berth_error_msg(err), "NOPE: must be set"));
    stage_env_clear(&se);
}

static const char *long_lookup(void *ctx, const char *name)
{
    return strcmp(name, "L") == 0 ? ctx : NULL;
}

/* ${VAR%%pattern} with many stars stays fast; huge values are refused, not ground through. */
static void test_pattern_cost(void **state)
{
    (void)state;
    static char val[4001];
    memset(val, 'a', sizeof(val) - 1);
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *out = NULL;
    assert_int_equal(expand_word("${L%%*a*a*a*a*a*a*a*b}", '\\', long_lookup, val, &out, &err), 0);
    assert_int_equal(strlen(out), 4000);
    char *big = malloc((64u << 10) + 2);
    memset(big, 'a', (64u << 10) + 1);
    big[(64u << 10) + 1] = '\0';
    cleanup_free char *o2 = NULL;
    assert_int_equal(expand_word("${L#a}", '\\', long_lookup, big, &o2, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "too long"));
    free(big);
}

/* The file's escape directive governs expansion, without the caller having to pass it on. */
static void test_backtick_file(void **state)
{
    (void)state;
    static const char text[] = "# escape=`\n"
                               "ARG A=x`$y\n"
                               "FROM b\n"
                               "ARG A\n"
                               "ENV E=`$A F=\\$A\n";
    cleanup_error berth_error_t err = NULL;
    cleanup_containerfile struct containerfile *cf = NULL;
    assert_int_equal(containerfile_parse(text, strlen(text), "Containerfile", &cf, &err), 0);
    assert_int_equal(cf->insts[0].escape, '`');
    cleanup_build_args struct build_args *ba = NULL;
    assert_int_equal(build_args_new(NULL, NULL, NULL, &ba, &err), 0);
    assert_int_equal(build_args_apply_global(ba, &cf->insts[0], &err), 0);
    assert_string_equal(expand_env_get(&ba->global, "A", NULL), "x$y");
    struct stage_env se;
    stage_env_init(&se, ba, NULL, 0);
    assert_int_equal(stage_env_apply_arg(&se, &cf->insts[2], &err), 0);
    assert_int_equal(stage_env_apply_env(&se, &cf->insts[3], &err), 0);
    assert_string_equal(stage_env_lookup(&se, "E"), "$A");
    assert_string_equal(stage_env_lookup(&se, "F"), "\\x$y");
    stage_env_clear(&se);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_word_table),
        cmocka_unit_test(test_words_table),
        cmocka_unit_test(test_backtick_escape),
        cmocka_unit_test(test_skip_unset_and_raw),
        cmocka_unit_test(test_heredoc_expansion),
        cmocka_unit_test(test_instruction_kind),
        cmocka_unit_test(test_env_list),
        cmocka_unit_test(test_global_arg_in_from),
        cmocka_unit_test(test_global_arg_scope_in_stage),
        cmocka_unit_test(test_declared_proxy_in_history),
        cmocka_unit_test(test_scope_table),
        cmocka_unit_test(test_env_after_arg_and_defaults),
        cmocka_unit_test(test_build_args_parsing),
        cmocka_unit_test(test_expand_instructions),
        cmocka_unit_test(test_pattern_cost),
        cmocka_unit_test(test_backtick_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
