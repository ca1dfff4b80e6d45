/* Containerfile parser: directives, comments, continuations, heredocs, every instruction and
 * flag, JSON vs shell form, errors with their line numbers, stages. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "build/containerfile.h"
#include "common/cleanup.h"
#include "common/json.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static struct containerfile *parse_ok(const char *text)
{
    struct containerfile *cf = NULL;
    berth_error_t err = NULL;
    if (containerfile_parse(text, strlen(text), "Containerfile", &cf, &err) < 0)
        fail_msg("parse failed: %s\n--- input:\n%s", berth_error_msg(err), text);
    return cf;
}

/* Returns the error message (caller frees) of a parse that must fail. */
static char *parse_fail(const char *text)
{
    struct containerfile *cf = NULL;
    berth_error_t err = NULL;
    if (containerfile_parse(text, strlen(text), "Containerfile", &cf, &err) == 0) {
        containerfile_free(cf);
        fail_msg("parse succeeded but must fail:\n%s", text);
    }
    char *m = strdup(berth_error_msg(err));
    berth_error_release(&err);
    return m;
}

static void assert_args(const struct cf_instruction *in, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (in->nargs != n) {
        fprintf(stderr, "%s: got %zu args:", in->keyword, in->nargs);
        for (size_t i = 0; i < in->nargs; i++)
            fprintf(stderr, " [%s]", in->args[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(in->nargs, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(in->args[i], want[i]);
    assert_null(in->args ? in->args[n] : NULL);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- directives ---- */

static void test_directives(void **state)
{
    (void)state;
    struct containerfile *cf =
        parse_ok("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM x\nRUN a `\n  b\n");
    assert_int_equal(cf->escape, '`');
    assert_string_equal(cf->syntax, "docker/dockerfile:1.7");
    assert_int_equal(cf->n, 2);
    assert_string_equal(cf->insts[1].args[0], "a   b");
    assert_int_equal(cf->insts[1].start_line, 4);
    assert_int_equal(cf->insts[1].end_line, 5);
    containerfile_free(cf);

    /* case-insensitive, spaces around '=', leading whitespace */
    cf = parse_ok("  #  ESCAPE = `  \n# Syntax = foo\nFROM x\n");
    assert_int_equal(cf->escape, '`');
    assert_string_equal(cf->syntax, "foo");
    containerfile_free(cf);

    /* no space after '#', check directive */
    cf = parse_ok("#escape=\\\n#check=skip=all\nFROM x\n");
    assert_int_equal(cf->escape, '\\');
    assert_string_equal(cf->check, "skip=all");
    containerfile_free(cf);

    /* after a comment, a blank line, an unknown directive or an instruction: just comments */
    static const char *const ignored[] = {
        "# a comment\n# escape=`\nFROM x\n",
        "\n# escape=`\nFROM x\n",
        "# unknown=1\n# escape=`\nFROM x\n",
        "FROM x\n# escape=`\n",
        "# escape=`\n# escape is not=a directive\n# syntax=x\nFROM y\n",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        cf = parse_ok(ignored[i]);
        if (i == 4) {
            assert_int_equal(cf->escape, '`');
            assert_null(cf->syntax);
        } else {
            assert_int_equal(cf->escape, '\\');
        }
        containerfile_free(cf);
    }

    /* a BOM before the first directive */
    cf = parse_ok("\xef\xbb\xbf# escape=`\nFROM x\n");
    assert_int_equal(cf->escape, '`');
    containerfile_free(cf);
}

/* ---- comments and continuations ---- */

static void test_comments_and_continuations(void **state)
{
    (void)state;
    struct containerfile *cf = parse_ok("# comment\n"
                                        "FROM busybox\n"
                                        "   # indented comment\n"
                                        "RUN echo hello # not a comment\n"
                                        "RUN echo a \\\n"
                                        "# comment inside continuation\n"
                                        "    # indented one too\n"
                                        "  b \\   \t\n"
                                        "  c\n"
                                        "RUN x \\\n"
                                        "\n"
                                        "   \n"
                                        "  y\n"
                                        "RUN last \\\n");
    assert_int_equal(cf->n, 5);
    assert_args(&cf->insts[1], ARGS("echo hello # not a comment"));
    assert_int_equal(cf->insts[1].start_line, 4);
    assert_args(&cf->insts[2], ARGS("echo a   b   c"));
    assert_string_equal(cf->insts[2].original, "RUN echo a   b   c");
    assert_int_equal(cf->insts[2].start_line, 5);
    assert_int_equal(cf->insts[2].end_line, 9);
    assert_args(&cf->insts[3], ARGS("x   y"));
    assert_int_equal(cf->insts[3].start_line, 10);
    assert_int_equal(cf->insts[3].end_line, 13);
    /* empty continuation lines: a warning, as docker */
    assert_int_equal(cf->nwarnings, 1);
    assert_non_null(strstr(cf->warnings[0], "Containerfile:10: empty continuation line"));
    /* a continuation at the end of the file */
    assert_args(&cf->insts[4], ARGS("last"));
    assert_int_equal(cf->insts[4].end_line, 14);
    containerfile_free(cf);

    /* an escaped escape at the end does not continue (docker's regexp); CRLF line endings */
    cf = parse_ok("FROM x\r\nRUN a \\\\\r\nRUN b \\  \r\n c\r\n");
    assert_int_equal(cf->n, 3);
    assert_args(&cf->insts[1], ARGS("a \\\\"));
    assert_args(&cf->insts[2], ARGS("b  c"));
    containerfile_free(cf);

    /* with the backtick escape a backslash is an ordinary character */
    cf = parse_ok("# escape=`\nFROM x\nRUN dir c:\\ `\n  /s\nWORKDIR c:\\windows\\\n");
    assert_args(&cf->insts[1], ARGS("dir c:\\   /s"));
    assert_args(&cf->insts[2], ARGS("c:\\windows\\"));
    containerfile_free(cf);

    /* keywords are case-insensitive; leading whitespace is fine */
    cf = parse_ok("from x\n\t  run echo\ncOpY a b\n");
    assert_string_equal(cf->insts[0].keyword, "FROM");
    assert_string_equal(cf->insts[1].keyword, "RUN");
    assert_string_equal(cf->insts[2].keyword, "COPY");
    containerfile_free(cf);

    /* a continuation line that is only the escape character */
    cf = parse_ok("FROM x\nRUN a \\\n\\\nb\n");
    assert_args(&cf->insts[1], ARGS("a b"));
    containerfile_free(cf);
}

/* ---- JSON vs shell form ---- */

static void test_json_forms(void **state)
{
    (void)state;
    struct containerfile *cf = parse_ok("FROM x\n"
                                        "CMD [\"echo\", \"hi there\"]\n"
                                        "CMD [\"bad\", \n"
                                        "ENTRYPOINT [ \"a\" , \"\\u00e9\\n\" ]\n"
                                        "RUN [\"sh\", \"-c\", \"x\"] trailing\n"
                                        "CMD []\n"
                                        "RUN ['single']\n"
                                        "SHELL [\"/bin/bash\", \"-c\"]\n"
                                        "COPY [\"a b\", \"/dst dir/\"]\n"
                                        "ADD a b /c/\n"
                                        "VOLUME [\"/v1\", \"/v2\"]\n"
                                        "VOLUME /v3 /v4\n"
                                        "ENTRYPOINT echo \"$HOME\"\n");
    assert_true(cf->insts[1].json_form);
    assert_args(&cf->insts[1], ARGS("echo", "hi there"));
    assert_false(cf->insts[2].json_form);
    assert_args(&cf->insts[2], ARGS("[\"bad\","));
    assert_true(cf->insts[3].json_form);
    assert_args(&cf->insts[3], ARGS("a", "\xc3\xa9\n"));
    assert_false(cf->insts[4].json_form); /* trailing text: not JSON */
    assert_true(cf->insts[5].json_form);
    assert_int_equal(cf->insts[5].nargs, 0);
    assert_false(cf->insts[6].json_form);
    assert_args(&cf->insts[6], ARGS("['single']"));
    assert_true(cf->insts[7].json_form);
    assert_args(&cf->insts[8], ARGS("a b", "/dst dir/"));
    assert_true(cf->insts[8].json_form);
    assert_args(&cf->insts[9], ARGS("a", "b", "/c/"));
    assert_args(&cf->insts[10], ARGS("/v1", "/v2"));
    assert_args(&cf->insts[11], ARGS("/v3", "/v4"));
    assert_args(&cf->insts[12], ARGS("echo \"$HOME\""));
    containerfile_free(cf);

    /* NUL and other escapes stay exec form (Docker, buildah): NUL as 0xC0 0x80 in args, back
     * to a JSON NUL through cf_arg_to_json; \\u0000 is a backslash and text, not a NUL */
    cf = parse_ok("FROM x\n"
                  "CMD [\"\\u0000\", \"a\\u0000b\", \"\\\\u0000\", \"q\\\"\\/\"]\n"
                  "CMD [\"\\u0000\", \"\\ufdd0\"]\n");
    assert_true(cf->insts[1].json_form);
    assert_args(&cf->insts[1], ARGS("\xc0\x80",
                                    "a\xc0\x80"
                                    "b",
                                    "\\u0000", "q\"/"));
    json_t *j = cf_arg_to_json(cf->insts[1].args[1]);
    assert_int_equal(json_string_length(j), 3);
    assert_memory_equal(json_string_value(j), "a\0b", 3);
    json_decref(j);
    /* the text holds the stand-in itself: the NUL can't be told apart, so not exec form */
    assert_false(cf->insts[2].json_form);
    containerfile_free(cf);
}

/* ---- heredocs ---- */

static void test_heredocs(void **state)
{
    (void)state;
    struct containerfile *cf = parse_ok("FROM x\n"
                                        "RUN <<EOF\n"
                                        "echo $HOME\n"
                                        "  indented\n"
                                        "EOF\n"
                                        "RUN <<-EOT sh -x\n"
                                        "\techo tab\n"
                                        "\t\tEOT not the end\n"
                                        "\t\tEOT\n"
                                        "RUN cat <<\"A\" <<'B' > out\n"
                                        "a $X\n"
                                        "A\n"
                                        "b $X\n"
                                        "B\n"
                                        "COPY --chmod=644 <<conf /etc/app.conf\n"
                                        "key=${VALUE}\n"
                                        "conf\n"
                                        "RUN 3<<EOF cat <&3\n"
                                        "fd three\n"
                                        "EOF\n"
                                        "RUN echo \"<<EOF\" && cat<<EOF\n"
                                        "RUN [\"cat\", \"<<EOF\"]\n"
                                        "RUN <<EOF\n"
                                        "EOF\n"
                                        "COPY <<one <<two /dst/\n"
                                        "1\n"
                                        "one\n"
                                        "2\n"
                                        "two\n");
    assert_int_equal(cf->n, 10);
    const struct cf_instruction *r = &cf->insts[1];
    assert_args(r, ARGS("<<EOF"));
    assert_int_equal(r->nheredocs, 1);
    assert_string_equal(r->heredocs[0].name, "EOF");
    assert_string_equal(r->heredocs[0].content, "echo $HOME\n  indented\n");
    assert_true(r->heredocs[0].expand);
    assert_false(r->heredocs[0].chomp);
    assert_int_equal(r->start_line, 2);
    assert_int_equal(r->end_line, 5);

    r = &cf->insts[2];
    assert_true(r->heredocs[0].chomp);
    assert_string_equal(r->heredocs[0].content, "\techo tab\n\t\tEOT not the end\n");
    cleanup_free char *body = cf_heredoc_body(&r->heredocs[0]);
    assert_string_equal(body, "echo tab\nEOT not the end\n");
    assert_int_equal(r->end_line, 9);

    r = &cf->insts[3];
    assert_int_equal(r->nheredocs, 2);
    assert_string_equal(r->heredocs[0].name, "A");
    assert_false(r->heredocs[0].expand);
    assert_string_equal(r->heredocs[0].content, "a $X\n");
    assert_string_equal(r->heredocs[1].name, "B");
    assert_false(r->heredocs[1].expand);
    assert_string_equal(r->heredocs[1].content, "b $X\n");
    assert_int_equal(r->start_line, 10);
    assert_int_equal(r->end_line, 14);

    r = &cf->insts[4];
    assert_string_equal(r->keyword, "COPY");
    assert_args(r, ARGS("<<conf", "/etc/app.conf"));
    assert_string_equal(cf_flag_get(r, "chmod"), "644");
    assert_string_equal(r->heredocs[0].content, "key=${VALUE}\n");
    assert_ptr_equal(cf_heredoc_for_arg(r, r->args[0]), &r->heredocs[0]);
    assert_null(cf_heredoc_for_arg(r, r->args[1]));

    r = &cf->insts[5];
    assert_int_equal(r->heredocs[0].fd, 3);
    assert_string_equal(r->heredocs[0].content, "fd three\n");

    /* quoted "<<EOF" and "cat<<EOF" are not heredoc words; JSON form never has heredocs */
    assert_int_equal(cf->insts[6].nheredocs, 0);
    assert_int_equal(cf->insts[7].nheredocs, 0);

    /* empty body */
    assert_int_equal(cf->insts[8].nheredocs, 1);
    assert_string_equal(cf->insts[8].heredocs[0].content, "");

    r = &cf->insts[9];
    assert_int_equal(r->nheredocs, 2);
    assert_string_equal(r->heredocs[0].content, "1\n");
    assert_string_equal(r->heredocs[1].content, "2\n");
    assert_ptr_equal(cf_heredoc_for_arg(r, "<<two"), &r->heredocs[1]);
    assert_int_equal(r->end_line, 29);
    containerfile_free(cf);

    /* ONBUILD with a heredoc trigger */
    cf = parse_ok("FROM x\nONBUILD RUN <<EOF\nhi\nEOF\nRUN y\n");
    assert_int_equal(cf->n, 3);
    assert_int_equal(cf->insts[1].nheredocs, 1);
    assert_non_null(cf->insts[1].onbuild_inner);
    assert_int_equal(cf->insts[1].onbuild_inner->nheredocs, 1);
    assert_args(&cf->insts[1], ARGS("RUN <<EOF\nhi\nEOF"));
    assert_string_equal(cf->insts[1].onbuild_inner->heredocs[0].content, "hi\n");
    assert_int_equal(cf->insts[2].start_line, 5);
    containerfile_free(cf);

    /* heredocs are not read for other instructions */
    cf = parse_ok("FROM x\nENV A=<<EOF\nLABEL b=c\n");
    assert_int_equal(cf->n, 3);
    containerfile_free(cf);
}

/* Heredoc words as buildkit's own parser tests have them. */
static void test_heredoc_words(void **state)
{
    (void)state;
    static const struct {
        const char *line; /* instruction line, body "x\n", then the terminator */
        const char *name;
        bool expand, chomp;
        int fd;
    } cases[] = {
        {"RUN <<EOF", "EOF", true, false, 0},
        {"RUN <<'EOF'", "EOF", false, false, 0},
        {"RUN <<\"EOF\"", "EOF", false, false, 0},
        {"RUN <<-EOF", "EOF", true, true, 0},
        {"RUN <<-'EOF'", "EOF", false, true, 0},
        {"RUN <<EO\"F\"", "EOF", false, false, 0},
        {"RUN << EOF", "EOF", true, false, 0},
        {"RUN << -EOF", "-EOF", true, false, 0},
        {"RUN 4<<EOF", "EOF", true, false, 4},
        {"RUN <<eo'f'", "eof", false, false, 0},
        {"RUN <<eo\\'f", "eo'f", true, false, 0},
        {"RUN <<'e'o\\'f", "eo'f", false, false, 0},
        {"RUN <<'one two'", "one two", false, false, 0},
        {"RUN <<$EOF", "$EOF", true, false, 0},
        {"RUN <<  EOF", "EOF", true, false, 0},
        {"RUN <<  EOF  > foo", "EOF", true, false, 0},
        {"RUN <<COMPLEX python3", "COMPLEX", true, false, 0},
        {"COPY <<file.txt /dest", "file.txt", true, false, 0},
        {"RUN --mount=type=cache,target=/foo <<MOUNT", "MOUNT", true, false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "FROM x\n%s\nx\n%s\nRUN after\n", cases[i].line,
                 cases[i].name);
        struct containerfile *cf = parse_ok(text);
        const struct cf_instruction *in = &cf->insts[1];
        if (in->nheredocs != 1 || strcmp(in->heredocs[0].name, cases[i].name) != 0 ||
            in->heredocs[0].expand != cases[i].expand || in->heredocs[0].chomp != cases[i].chomp ||
            in->heredocs[0].fd != cases[i].fd)
            fail_msg("heredoc case %zu [%s]: %zu heredocs, name [%s] expand %d chomp %d fd %d", i,
                     cases[i].line, in->nheredocs, in->nheredocs ? in->heredocs[0].name : "",
                     in->nheredocs ? in->heredocs[0].expand : -1,
                     in->nheredocs ? in->heredocs[0].chomp : -1,
                     in->nheredocs ? in->heredocs[0].fd : -1);
        assert_string_equal(in->heredocs[0].content, "x\n");
        assert_int_equal(cf->n, 3);
        containerfile_free(cf);
    }
    /* not heredocs: quoted, no word, "<<<" */
    static const char *const none[] = {"RUN '<<EOF'",      "RUN \"<<EOF\"", "RUN <<",
                                       "RUN <<-",          "RUN <<<EOF",    "RUN a<<EOF",
                                       "RUN [\"<<'EOF'\"]"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "FROM x\n%s\nRUN after\n", none[i]);
        struct containerfile *cf = parse_ok(text);
        if (cf->insts[1].nheredocs != 0 || cf->n != 3)
            fail_msg("[%s] must have no heredoc", none[i]);
        containerfile_free(cf);
    }
    /* the delimiters may read each other's names */
    struct containerfile *cf = parse_ok("FROM x\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n");
    assert_string_equal(cf->insts[1].heredocs[0].content, "Y\n");
    assert_string_equal(cf->insts[1].heredocs[1].content, "X\n");
    containerfile_free(cf);
    /* comments and quotes inside a body are content */
    cf = parse_ok("FROM x\nRUN <<C\n# internal\necho \"a\" 'b' # trailing\nC\n");
    assert_string_equal(cf->insts[1].heredocs[0].content,
                        "# internal\necho \"a\" 'b' # trailing\n");
    containerfile_free(cf);
}

/* ---- instructions and flags ---- */

static void test_instructions(void **state)
{
    (void)state;
    struct containerfile *cf =
        parse_ok("ARG BASE=busybox VERSION\n"                                               /* 1 */
                 "FROM --platform=$BUILDPLATFORM ${BASE}:latest AS Builder\n"               /* 2 */
                 "RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/t " /* 3 */
                 "--network=none --security=sandbox make\n"
                 "CMD echo hi\n"                                            /* 4 */
                 "LABEL a=b \"c d\"='e f' g=h\\ i\n"                        /* 5 */
                 "LABEL legacy value with spaces\n"                         /* 6 */
                 "MAINTAINER Jane Doe <jane@example.com>\n"                 /* 7 */
                 "EXPOSE 80 443/tcp 53/udp\n"                               /* 8 */
                 "ENV A=1 B=\"two words\" C=three\\ words\n"                /* 9 */
                 "ENV OLD this is the value\n"                              /* 10 */
                 "ADD --chown=1:2 --chmod=0755 --link --keep-git-dir=true " /* 11 */
                 "--checksum=sha256:abc https://example.com/x.tgz /opt/\n"
                 "COPY --from=builder --chown=app --link=false --parents --exclude=*.md " /* 12 */
                 "--exclude=*.txt src/ /app/\n"
                 "ENTRYPOINT [\"/entry\"]\n"                                    /* 13 */
                 "VOLUME /data\n"                                               /* 14 */
                 "USER 1000:1000\n"                                             /* 15 */
                 "WORKDIR /app dir\n"                                           /* 16 */
                 "ARG X Y=2 \"Z=3 4\"\n"                                        /* 17 */
                 "ONBUILD COPY --chown=1 . /src\n"                              /* 18 */
                 "STOPSIGNAL SIGTERM\n"                                         /* 19 */
                 "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=0 " /* 20 */
                 "--start-interval=500ms --retries=3 CMD curl -f http://localhost/\n"
                 "HEALTHCHECK NONE\n"                                    /* 21 */
                 "HEALTHCHECK cmd [\"/check\", \"--fast\"]\n"            /* 22 */
                 "SHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\n" /* 23 */
                 "FROM scratch\n"                                        /* 24 */
                 "CMD\n"                                                 /* 25 */
        );
    assert_int_equal(cf->n, 25);
    for (size_t i = 0; i < cf->n; i++) {
        assert_int_equal(cf->insts[i].start_line, (int)i + 1);
        assert_int_equal(cf->insts[i].end_line, (int)i + 1);
    }
    const struct cf_instruction *in = cf->insts;
    assert_args(&in[0], ARGS("BASE=busybox", "VERSION"));
    assert_args(&in[1], ARGS("${BASE}:latest", "AS", "Builder"));
    assert_string_equal(cf_flag_get(&in[1], "platform"), "$BUILDPLATFORM");

    size_t nm = 0;
    const char **mounts = cf_flag_get_all(&in[2], "mount", &nm);
    assert_int_equal(nm, 2);
    assert_string_equal(mounts[0], "type=cache,target=/root/.cache");
    assert_string_equal(mounts[1], "type=tmpfs,target=/t");
    assert_null(mounts[2]);
    free(mounts);
    assert_string_equal(cf_flag_get(&in[2], "network"), "none");
    assert_string_equal(cf_flag_get(&in[2], "security"), "sandbox");
    assert_args(&in[2], ARGS("make"));

    assert_args(&in[3], ARGS("echo hi"));
    assert_false(in[3].json_form);
    assert_args(&in[4], ARGS("a", "b", "\"c d\"", "'e f'", "g", "h\\ i"));
    assert_args(&in[5], ARGS("legacy", "value with spaces"));
    assert_args(&in[6], ARGS("Jane Doe <jane@example.com>"));
    assert_args(&in[7], ARGS("80", "443/tcp", "53/udp"));
    assert_args(&in[8], ARGS("A", "1", "B", "\"two words\"", "C", "three\\ words"));
    assert_args(&in[9], ARGS("OLD", "this is the value"));

    assert_string_equal(cf_flag_get(&in[10], "chown"), "1:2");
    assert_string_equal(cf_flag_get(&in[10], "chmod"), "0755");
    assert_true(cf_flag_bool(&in[10], "link"));
    assert_true(cf_flag_bool(&in[10], "keep-git-dir"));
    assert_string_equal(cf_flag_get(&in[10], "checksum"), "sha256:abc");
    assert_args(&in[10], ARGS("https://example.com/x.tgz", "/opt/"));

    assert_string_equal(cf_flag_get(&in[11], "from"), "builder");
    assert_false(cf_flag_bool(&in[11], "link"));
    assert_string_equal(cf_flag_get(&in[11], "link"), "false");
    assert_true(cf_flag_bool(&in[11], "parents"));
    size_t ne = 0;
    const char **ex = cf_flag_get_all(&in[11], "exclude", &ne);
    assert_int_equal(ne, 2);
    free(ex);
    assert_args(&in[11], ARGS("src/", "/app/"));

    assert_args(&in[12], ARGS("/entry"));
    assert_true(in[12].json_form);
    assert_args(&in[13], ARGS("/data"));
    assert_args(&in[14], ARGS("1000:1000"));
    assert_args(&in[15], ARGS("/app dir"));
    assert_args(&in[16], ARGS("X", "Y=2", "\"Z=3 4\""));

    assert_args(&in[17], ARGS("COPY --chown=1 . /src"));
    assert_non_null(in[17].onbuild_inner);
    assert_string_equal(in[17].onbuild_inner->keyword, "COPY");
    assert_string_equal(cf_flag_get(in[17].onbuild_inner, "chown"), "1");
    assert_args(in[17].onbuild_inner, ARGS(".", "/src"));
    assert_int_equal(in[17].nflags, 0);

    assert_args(&in[18], ARGS("SIGTERM"));
    assert_args(&in[19], ARGS("CMD", "curl -f http://localhost/"));
    assert_string_equal(cf_flag_get(&in[19], "timeout"), "1m30s");
    assert_string_equal(cf_flag_get(&in[19], "retries"), "3");
    assert_args(&in[20], ARGS("NONE"));
    assert_args(&in[21], ARGS("CMD", "/check", "--fast"));
    assert_true(in[21].json_form);
    assert_args(&in[22], ARGS("/bin/ash", "-eo", "pipefail", "-c"));
    assert_args(&in[23], ARGS("scratch"));
    assert_int_equal(in[24].nargs, 0);
    containerfile_free(cf);
}

static void test_flag_syntax(void **state)
{
    (void)state;
    struct containerfile *cf = parse_ok("FROM x\n"
                                        "COPY --chown=\"a b\" --chmod='7 55' --link=TRUE a b\n"
                                        "COPY -- --notaflag b\n"
                                        "COPY --from=x\\ y a b\n"
                                        "RUN --network=host -x\n"
                                        "RUN --mount=type=secret,id=a,target=/s -- --x\n");
    assert_string_equal(cf_flag_get(&cf->insts[1], "chown"), "a b");
    assert_string_equal(cf_flag_get(&cf->insts[1], "chmod"), "7 55");
    assert_string_equal(cf_flag_get(&cf->insts[1], "link"), "true");
    assert_int_equal(cf->insts[2].nflags, 0);
    assert_args(&cf->insts[2], ARGS("--notaflag", "b"));
    assert_string_equal(cf_flag_get(&cf->insts[3], "from"), "x y");
    assert_args(&cf->insts[4], ARGS("-x"));
    assert_args(&cf->insts[5], ARGS("--x"));
    containerfile_free(cf);
}

/* ---- errors with their lines ---- */

struct err_case {
    const char *text;
    const char *want; /* substring of the message, starting with "Containerfile:LINE: " */
};

static const struct err_case err_cases[] = {
    {"", "Containerfile: file with no instructions"},
    {"# only a comment\n\n", "file with no instructions"},
    {"FROM x\nFOO bar\n", "Containerfile:2: unknown instruction: FOO"},
    {"FROM x\nCOPY --x a b\n", "Containerfile:2: unknown flag --x for COPY"},
    {"FROM x\nCOPY --checksum=sha256:x a b\n", "Containerfile:2: unknown flag --checksum for COPY"},
    {"FROM x\nADD --from=y a b\n", "Containerfile:2: unknown flag --from for ADD"},
    {"FROM x\nCMD --help\n", "Containerfile:2: unknown flag --help for CMD"},
    {"FROM --plat=x y\n", "Containerfile:1: unknown flag --plat for FROM"},
    {"FROM x\nRUN --mount=a \\\n --bogus=1 y\n", "Containerfile:2: unknown flag --bogus for RUN"},
    {"FROM x\nCOPY --from=a --from=b c d\n", "Containerfile:2: duplicate flag specified: --from"},
    {"FROM x\nCOPY --link=maybe a b\n", "Containerfile:2: expecting boolean value for flag --link"},
    {"FROM x\nCOPY --link= a b\n", "Containerfile:2: missing a value on flag: --link"},
    {"FROM x\nCOPY --from a b\n", "Containerfile:2: missing a value on flag: --from"},
    {"FROM x\nRUN --network=bridge y\n", "Containerfile:2: unsupported network mode \"bridge\""},
    {"FROM x\nRUN --security=root y\n", "Containerfile:2: unsupported security mode"},
    {"FROM\n", "Containerfile:1: FROM requires either one or three arguments"},
    {"FROM a b\n", "Containerfile:1: FROM requires either one or three arguments"},
    {"FROM a AS b c\n", "Containerfile:1: FROM requires either one or three arguments"},
    {"FROM a AS 1st\n", "Containerfile:1: invalid name for build stage: \"1st\""},
    {"FROM a AS b/c\n", "Containerfile:1: invalid name for build stage"},
    {"FROM a AS $NAME\n", "Containerfile:1: invalid name for build stage: \"$NAME\""},
    {"FROM x\nRUN\n", "Containerfile:2: RUN requires at least one argument"},
    {"FROM x\nCMD [\"a\", 1]\n", "Containerfile:2: when using JSON array syntax, arrays must be "
                                 "comprised of strings only"},
    {"FROM x\nSHELL /bin/sh -c\n", "Containerfile:2: SHELL requires the arguments to be in JSON "
                                   "form"},
    {"FROM x\nSHELL []\n", "Containerfile:2: SHELL requires at least one argument"},
    {"FROM x\nEXPOSE\n", "Containerfile:2: EXPOSE requires at least one argument"},
    {"FROM x\nENV\n", "Containerfile:2: ENV requires at least one argument"},
    {"FROM x\nENV A\n", "Containerfile:2: ENV must have two arguments"},
    {"FROM x\nENV A=1 B\n", "Containerfile:2: Syntax error - can't find = in \"B\""},
    {"FROM x\nENV =1\n", "Containerfile:2: ENV names can not be blank"},
    {"FROM x\nLABEL\n", "Containerfile:2: LABEL requires at least one argument"},
    {"FROM x\nLABEL k\n", "Containerfile:2: LABEL must have two arguments"},
    {"FROM x\nARG\n", "Containerfile:2: ARG requires at least one argument"},
    {"FROM x\nARG =v\n", "Containerfile:2: ARG names can not be blank"},
    {"FROM x\nCOPY a\n", "Containerfile:2: COPY requires at least two arguments"},
    {"FROM x\nADD [\"a\"]\n", "Containerfile:2: ADD requires at least two arguments"},
    {"FROM x\nCOPY a <<EOF\nEOF\n", "Containerfile:2: COPY cannot accept a heredoc as a "
                                    "destination"},
    {"FROM x\nVOLUME\n", "Containerfile:2: VOLUME requires at least one argument"},
    {"FROM x\nVOLUME [\"\"]\n", "Containerfile:2: VOLUME specified can not be an empty string"},
    {"FROM x\nVOLUME [\"/a\", \"  \"]\n", "Containerfile:2: VOLUME specified can not be an empty "},
    {"FROM x\nSHELL\n", "Containerfile:2: SHELL requires at least one argument"},
    {"FROM x\nUSER\n", "Containerfile:2: USER requires exactly one argument"},
    {"FROM x\nWORKDIR   \n", "Containerfile:2: WORKDIR requires exactly one argument"},
    {"FROM x\nSTOPSIGNAL\n", "Containerfile:2: STOPSIGNAL requires exactly one argument"},
    {"FROM x\nMAINTAINER\n", "Containerfile:2: MAINTAINER requires exactly one argument"},
    {"FROM x\nONBUILD\n", "Containerfile:2: ONBUILD requires at least one argument"},
    {"FROM x\nONBUILD ONBUILD RUN x\n", "Containerfile:2: Chaining ONBUILD via `ONBUILD "
                                        "ONBUILD` isn't allowed"},
    {"FROM x\nONBUILD FROM y\n", "Containerfile:2: FROM isn't allowed as an ONBUILD trigger"},
    {"FROM x\nONBUILD maintainer y\n", "Containerfile:2: MAINTAINER isn't allowed as an ONBUILD "
                                       "trigger"},
    {"FROM x\nONBUILD BOGUS y\n", "Containerfile:2: unknown instruction: BOGUS"},
    {"FROM x\nONBUILD COPY --nope a b\n", "Containerfile:2: unknown flag --nope for COPY"},
    {"FROM x\nONBUILD --x RUN y\n", "Containerfile:2: unknown flag --x for ONBUILD"},
    {"FROM x\nHEALTHCHECK\n", "Containerfile:2: HEALTHCHECK requires at least one argument"},
    {"FROM x\nHEALTHCHECK NONE x\n", "Containerfile:2: HEALTHCHECK NONE takes no arguments"},
    {"FROM x\nHEALTHCHECK CMD\n", "Containerfile:2: Missing command after HEALTHCHECK CMD"},
    {"FROM x\nHEALTHCHECK TEST x\n", "Containerfile:2: Unknown type \"TEST\" in HEALTHCHECK"},
    {"FROM x\nHEALTHCHECK --interval=10 CMD x\n", "Containerfile:2: HEALTHCHECK --interval: "
                                                  "time: missing unit in duration \"10\""},
    {"FROM x\nHEALTHCHECK --timeout=5parsecs CMD x\n", "time: unknown unit \"parsecs\""},
    {"FROM x\nHEALTHCHECK --start-period=500us CMD x\n", "Containerfile:2: Interval "
                                                         "\"start-period\" cannot be less than "
                                                         "1ms"},
    {"FROM x\nHEALTHCHECK --retries=-1 CMD x\n", "Containerfile:2: --retries cannot be negative "
                                                 "(-1)"},
    {"FROM x\nHEALTHCHECK --retries=x CMD x\n", "Containerfile:2: HEALTHCHECK --retries"},
    {"FROM x\nHEALTHCHECK --bogus=1 CMD x\n", "Containerfile:2: unknown flag --bogus for "
                                              "HEALTHCHECK"},
    {"FROM x\nRUN <<EOF\nno end\n", "Containerfile:2: unterminated heredoc EOF"},
    {"FROM x\nRUN a\nRUN <<A <<B\nA\nno B end\n", "Containerfile:3: unterminated heredoc B"},
    {"FROM x\nRUN <<-EOF\n  EOF\n", "Containerfile:2: unterminated heredoc"},
    {"# escape=`\n# escape=\\\nFROM x\n", "Containerfile:2: only one escape parser directive"},
    {"# syntax=a\n# syntax=b\nFROM x\n", "Containerfile:2: only one syntax parser directive"},
    {"# escape=x\nFROM x\n", "Containerfile:1: invalid escape token 'x' does not match ` or \\"},
    {"FROM x\n\n\n\nRUN a \\\n b\nWHAT\n", "Containerfile:7: unknown instruction: WHAT"},
    {"FROM x\nRUN <<EOF\n1\n2\nEOF\nCOPY\n", "Containerfile:6: COPY requires at least two "},
};

static void test_errors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        cleanup_free char *msg = parse_fail(err_cases[i].text);
        if (!strstr(msg, err_cases[i].want)) {
            fprintf(stderr, "error case %zu: got \"%s\"\n  want \"%s\"\n", i, msg,
                    err_cases[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ns;
    } ok[] = {
        {"0", 0},
        {"1ns", 1},
        {"1us", 1000},
        {"1\xc2\xb5s", 1000},
        {"2ms", 2000000},
        {"30s", 30000000000},
        {"1m30s", 90000000000},
        {"1.5h", 5400000000000},
        {"-1s", -1000000000},
        {".5s", 500000000},
        {"1h2m3s4ms", 3723004000000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -42;
        cleanup_error berth_error_t err = NULL;
        if (cf_parse_duration(ok[i].in, &v, &err) < 0)
            fail_msg("%s: %s", ok[i].in, berth_error_msg(err));
        assert_int_equal(v, ok[i].ns);
    }
    static const char *const bad[] = {"", "s", "10", "1x", "1.s.", "--1s", "1s2", "."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v;
        cleanup_error berth_error_t err = NULL;
        if (cf_parse_duration(bad[i], &v, &err) == 0)
            fail_msg("duration \"%s\" must be rejected", bad[i]);
    }
}

/* ---- stages ---- */

static void test_stages(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    struct containerfile *cf = parse_ok("ARG A=1\n"
                                        "# comment\n"
                                        "ARG B\n"
                                        "FROM --platform=linux/arm64 busybox:$A AS Build\n"
                                        "RUN x\n"
                                        "COPY a b\n"
                                        "FROM build\n"
                                        "FROM scratch AS final\n"
                                        "COPY --from=build /x /y\n");
    cleanup_cf_stages struct cf_stages *st = NULL;
    assert_int_equal(containerfile_stages(cf, &st, &err), 0);
    assert_int_equal(st->nglobal_args, 2);
    assert_int_equal(st->global_args[0], 0);
    assert_int_equal(st->global_args[1], 1);
    assert_int_equal(st->n, 3);
    assert_string_equal(st->stages[0].name, "build");
    assert_string_equal(st->stages[0].base, "busybox:$A");
    assert_string_equal(st->stages[0].platform, "linux/arm64");
    assert_int_equal(st->stages[0].from, 2);
    assert_int_equal(st->stages[0].first, 3);
    assert_int_equal(st->stages[0].end, 5);
    assert_null(st->stages[1].name);
    assert_null(st->stages[1].platform);
    assert_int_equal(st->stages[1].first, 6);
    assert_int_equal(st->stages[1].end, 6);
    assert_string_equal(st->stages[2].name, "final");
    assert_int_equal(st->stages[2].end, 8);
    assert_ptr_equal(cf_stages_find(st, "BUILD"), &st->stages[0]);
    assert_ptr_equal(cf_stages_find(st, "1"), &st->stages[1]);
    assert_ptr_equal(cf_stages_find(st, "final"), &st->stages[2]);
    assert_null(cf_stages_find(st, "3"));
    assert_null(cf_stages_find(st, "nope"));
    containerfile_free(cf);

    static const struct err_case bad[] = {
        {"RUN x\nFROM y\n", "Containerfile:1: no build stage in current context"},
        {"ARG x\n# c\nENV a=b\nFROM y\n", "Containerfile:3: no build stage in current context"},
        {"ARG x\n", "no build stage: the file has no FROM"},
        {"FROM a AS x\nFROM b AS X\n", "Containerfile:2: duplicate stage name \"x\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cf = parse_ok(bad[i].text);
        cleanup_cf_stages struct cf_stages *s2 = NULL;
        cleanup_error berth_error_t e2 = NULL;
        assert_int_equal(containerfile_stages(cf, &s2, &e2), -1);
        if (!strstr(berth_error_msg(e2), bad[i].want))
            fail_msg("stage error %zu: got %s", i, berth_error_msg(e2));
        containerfile_free(cf);
    }
}

/* ---- JSON AST ---- */

static void test_json_ast(void **state)
{
    (void)state;
    struct containerfile *cf = parse_ok("# syntax=x\nFROM a AS b\nCOPY --link <<EOF /f\nhi\nEOF\n"
                                        "ONBUILD RUN [\"x\"]\n");
    cleanup_json json_t *j = containerfile_to_json(cf);
    containerfile_free(cf);
    assert_string_equal(json_string_value(json_object_get(j, "syntax")), "x");
    assert_string_equal(json_string_value(json_object_get(j, "escape")), "\\");
    json_t *insts = json_object_get(j, "instructions");
    assert_int_equal(json_array_size(insts), 3);
    json_t *copy = json_array_get(insts, 1);
    assert_string_equal(json_string_value(json_object_get(copy, "instruction")), "COPY");
    assert_int_equal(json_integer_value(json_object_get(copy, "start_line")), 3);
    assert_int_equal(json_integer_value(json_object_get(copy, "end_line")), 5);
    json_t *flag = json_array_get(json_object_get(copy, "flags"), 0);
    assert_string_equal(json_string_value(json_object_get(flag, "name")), "link");
    assert_string_equal(json_string_value(json_object_get(flag, "value")), "true");
    json_t *args = json_object_get(copy, "arguments");
    assert_string_equal(json_string_value(json_array_get(args, 0)), "<<EOF");
    json_t *hd = json_array_get(json_object_get(copy, "heredocs"), 0);
    assert_string_equal(json_string_value(json_object_get(hd, "content")), "hi\n");
    assert_true(json_is_true(json_object_get(hd, "expand")));
    json_t *onb = json_array_get(insts, 2);
    json_t *trig = json_object_get(onb, "trigger");
    assert_non_null(trig);
    assert_true(json_is_true(json_object_get(trig, "json")));
    assert_string_equal(json_string_value(json_object_get(trig, "instruction")), "RUN");
}

/* ---- files ---- */

static void test_fixture_files(void **state)
{
    (void)state;
    DIR *d = opendir(FIXTURES_DIR "/containerfiles");
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        const char *ext = strrchr(de->d_name, '.');
        if (!ext || strcmp(ext, ".Containerfile") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/containerfiles/%s", FIXTURES_DIR, de->d_name);
        struct containerfile *cf = NULL;
        cleanup_error berth_error_t err = NULL;
        bool must_fail = strncmp(de->d_name, "bad-", 4) == 0;
        int r = containerfile_parse_file(path, &cf, &err);
        if (must_fail) {
            if (r == 0) {
                /* may fail when split into stages instead */
                cleanup_cf_stages struct cf_stages *st = NULL;
                r = containerfile_stages(cf, &st, &err);
                containerfile_free(cf);
            }
            if (r == 0)
                fail_msg("%s parsed but must fail", path);
            /* bad-*.Containerfile name the expected line in their first comment */
            FILE *f = fopen(path, "r");
            char first[256] = "";
            assert_non_null(fgets(first, sizeof(first), f));
            fclose(f);
            char *want = strstr(first, "error: ");
            assert_non_null(want);
            want += 7;
            want[strcspn(want, "\n")] = '\0';
            if (!strstr(berth_error_msg(err), want))
                fail_msg("%s: got \"%s\", want \"%s\"", path, berth_error_msg(err), want);
        } else {
            if (r < 0)
                fail_msg("%s: %s", path, berth_error_msg(err));
            cleanup_cf_stages struct cf_stages *st = NULL;
            if (containerfile_stages(cf, &st, &err) < 0)
                fail_msg("%s: %s", path, berth_error_msg(err));
            containerfile_free(cf);
        }
        n++;
    }
    closedir(d);
    assert_true(n >= 4);

    struct containerfile *cf = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(containerfile_parse_file(FIXTURES_DIR "/containerfiles/nope", &cf, &err), -1);
    assert_int_equal(berth_error_status(err), ENOENT);
    berth_error_release(&err);
    assert_int_equal(containerfile_parse_file(FIXTURES_DIR "/containerfiles", &cf, &err), -1);

    /* the size limit */
    size_t big = CONTAINERFILE_MAX_SIZE + 1;
    char *buf = malloc(big);
    memset(buf, '#', big);
    berth_error_release(&err);
    assert_int_equal(containerfile_parse(buf, big, "big", &cf, &err), -1);
    free(buf);
}

/* ---- RUN --mount ---- */

static int upper_value(void *ud, const char *in, char **out, berth_error_t *err)
{
    (void)ud;
    (void)err;
    char *o = strdup(in);
    for (char *c = o; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    *out = o;
    return 0;
}

static void test_mounts(void **state)
{
    (void)state;
    struct cf_mount m;
    cleanup_error berth_error_t err = NULL;

    assert_int_equal(cf_parse_mount("target=/src", &m, &err), 0);
    assert_int_equal(m.type, CF_MOUNT_BIND);
    assert_string_equal(m.target, "/src");
    assert_true(m.readonly); /* bind mounts are read-only by default */
    cf_mount_clear(&m);

    assert_int_equal(cf_parse_mount("type=bind,from=build,source=/out,dst=/in,rw", &m, &err), 0);
    assert_string_equal(m.from, "build");
    assert_string_equal(m.source, "/out");
    assert_string_equal(m.target, "/in");
    assert_false(m.readonly);
    cf_mount_clear(&m);

    assert_int_equal(cf_parse_mount("type=cache,target=/root/.cache,id=pip,sharing=LOCKED,"
                                    "uid=1000,gid=1000,mode=0700",
                                    &m, &err),
                     0);
    assert_int_equal(m.type, CF_MOUNT_CACHE);
    assert_string_equal(m.id, "pip");
    assert_string_equal(m.sharing, "locked");
    assert_false(m.readonly);
    assert_true(m.has_uid && m.uid == 1000 && m.has_gid && m.gid == 1000);
    assert_int_equal(m.mode, 0700);
    cf_mount_clear(&m);

    assert_int_equal(cf_parse_mount("type=tmpfs,target=/t,size=64m", &m, &err), 0);
    assert_int_equal(m.size, 64ull << 20);
    assert_false(m.readonly);
    cf_mount_clear(&m);

    assert_int_equal(cf_parse_mount("type=secret,id=token,required,env=TOKEN", &m, &err), 0);
    assert_int_equal(m.type, CF_MOUNT_SECRET);
    assert_true(m.required);
    assert_true(m.readonly);
    assert_null(m.target);
    assert_string_equal(m.env, "TOKEN");
    cf_mount_clear(&m);

    assert_int_equal(cf_parse_mount("type=ssh", &m, &err), 0);
    cf_mount_clear(&m);

    assert_int_equal(cf_parse_mount("\"target=/a,b\",type=bind,ro=false", &m, &err), 0);
    assert_string_equal(m.target, "/a,b");
    assert_false(m.readonly);
    cf_mount_clear(&m);

    static const struct {
        const char *spec, *want;
    } bad[] = {
        {"type=volume,target=/x", "unsupported mount type \"volume\""},
        {"type=bind", "mount target must be set"},
        {"target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"},
        {"target=/x,bogus", "invalid field 'bogus' must be a key=value pair"},
        {"target=/x,required", "unexpected key 'required' for mount type 'bind'"},
        {"target=/x,sharing=locked", "invalid cache sharing set for bind mount"},
        {"type=cache,target=/x,sharing=sometimes", "unsupported sharing value"},
        {"type=tmpfs,target=/x,mode=0755", "mode not allowed for \"tmpfs\" type mounts"},
        {"type=bind,target=/x,uid=0", "uid not allowed"},
        {"type=cache,target=/x,uid=-1", "invalid value for uid"},
        {"type=cache,target=/x,mode=999", "invalid value 999 for mode"},
        {"type=tmpfs,target=/x,size=lots", "invalid size value lots"},
        {"type=secret", "one of source, target required"},
        {"type=secret,id=a,source=b", "both source and id can't be set"},
        {"type=secret,id=a,from=x", "secret mount should not have a from"},
        {"target=/x,ro=maybe", "invalid value for ro: maybe"},
        {"\"target=/x", "bad CSV quoting"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        berth_error_release(&err);
        if (cf_parse_mount(bad[i].spec, &m, &err) == 0) {
            cf_mount_clear(&m);
            fail_msg("mount %s must be rejected", bad[i].spec);
        }
        if (!strstr(berth_error_msg(err), bad[i].want))
            fail_msg("mount %s: got \"%s\" want \"%s\"", bad[i].spec, berth_error_msg(err),
                     bad[i].want);
    }

    /* values mapped field by field, re-encoded so that cf_parse_mount reads them back */
    cleanup_free char *mapped = NULL;
    assert_int_equal(cf_mount_map_values("type=bind,\"target=/a,b\",ro,source=x", upper_value, NULL,
                                         &mapped, &err),
                     0);
    assert_string_equal(mapped, "type=BIND,\"target=/A,B\",ro,source=X");
    assert_int_equal(cf_parse_mount("\"target=/a,\"\"q\"\"\"", &m, &err), 0);
    cleanup_free char *again = NULL;
    assert_int_equal(
        cf_mount_map_values("\"target=/a,\"\"q\"\"\"", upper_value, NULL, &again, &err), 0);
    assert_string_equal(again, "\"target=/A,\"\"Q\"\"\"");
    cf_mount_clear(&m);

    /* at parse time only from= is checked */
    cleanup_free char *msg =
        parse_fail("FROM x\nRUN --mount=type=bind,from=$STAGE,target=/x true\n");
    assert_non_null(strstr(msg, "Containerfile:2: --mount: 'from' doesn't support variable "
                                "expansion"));
    struct containerfile *cf = parse_ok("FROM x\nRUN --mount=type=$T,target=$D true\n");
    containerfile_free(cf);
}

/* ---- berth build --print-ast (the real binary, when it has been built) ---- */

static int run_cmd(const char *cmd, char **out)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(f);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_print_ast(void **state)
{
    (void)state;
    if (access(BERTH_BIN, X_OK) != 0)
        skip();
    char cmd[8192];
    cleanup_free char *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s build --print-ast -f %s/containerfiles/heredoc.Containerfile",
             BERTH_BIN, FIXTURES_DIR);
    assert_int_equal(run_cmd(cmd, &out), 0);
    json_error_t jerr;
    cleanup_json json_t *j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    json_t *insts = json_object_get(j, "instructions");
    assert_int_equal(json_array_size(insts), 4);
    json_t *run = json_array_get(insts, 1);
    assert_string_equal(json_string_value(json_object_get(run, "instruction")), "RUN");
    assert_int_equal(json_integer_value(json_object_get(run, "start_line")), 3);
    assert_int_equal(json_integer_value(json_object_get(run, "end_line")), 6);

    /* CONTEXT/Containerfile, then CONTEXT/Dockerfile, by default */
    free(out);
    char tmpl[] = "/tmp/berth-ast-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    snprintf(cmd, sizeof(cmd),
             "printf 'FROM a\\nRUN b\\n' > %s/Dockerfile && %s build --print-ast %s", tmpl,
             BERTH_BIN, tmpl);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "\"instruction\": \"RUN\""));
    free(out);
    snprintf(cmd, sizeof(cmd),
             "printf 'FROM a\\nCMD c\\n' > %s/Containerfile && %s build --print-ast %s", tmpl,
             BERTH_BIN, tmpl);
    assert_int_equal(run_cmd(cmd, &out), 0);
    assert_non_null(strstr(out, "\"instruction\": \"CMD\""));
    free(out);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
    assert_int_equal(run_cmd(cmd, &out), 0);

    /* parse errors name file and line; errors exit with 125 */
    free(out);
    snprintf(cmd, sizeof(cmd),
             "%s build --print-ast -f %s/containerfiles/bad-unknown-flag."
             "Containerfile 2>&1",
             BERTH_BIN, FIXTURES_DIR);
    assert_int_equal(run_cmd(cmd, &out), 125);
    assert_non_null(strstr(out, "bad-unknown-flag.Containerfile:4: unknown flag --owner for COPY"));
    free(out);
    snprintf(cmd, sizeof(cmd), "%s build --print-ast --tag x . 2>&1", BERTH_BIN);
    assert_int_equal(run_cmd(cmd, &out), 125);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directives),    cmocka_unit_test(test_comments_and_continuations),
        cmocka_unit_test(test_json_forms),    cmocka_unit_test(test_heredocs),
        cmocka_unit_test(test_heredoc_words), cmocka_unit_test(test_instructions),
        cmocka_unit_test(test_flag_syntax),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_durations),     cmocka_unit_test(test_stages),
        cmocka_unit_test(test_json_ast),      cmocka_unit_test(test_fixture_files),
        cmocka_unit_test(test_mounts),        cmocka_unit_test(test_cli_print_ast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
