/* Variable expansion as docker's Dockerfile shell lexer does it, and ARG/ENV scoping.
 *
 * Lexer (expand_word / expand_words): `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`,
 * `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`,
 * `${VAR%%pat}`, `${VAR/pat/repl}`, `${VAR//pat/repl}`; the escape character (`\` or the
 * Containerfile's `# escape=` token) makes the next character literal; single quotes keep
 * everything literal; double quotes expand `$` and are removed.  expand_word returns one string
 * (whitespace kept, as for ENV/LABEL/WORKDIR...); expand_words splits into words on unquoted
 * whitespace (as for EXPOSE), where whitespace produced by an expansion also splits.
 *
 * Which instructions expand (docker's list): ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER
 * VOLUME WORKDIR ARG (and the --chown/--chmod/--checksum/--from flags of ADD/COPY, the --platform
 * of FROM, RUN --mount values).  RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and
 * ONBUILD are not expanded by the builder (the shell does it at run time).  See
 * expand_instruction_kind().
 *
 * Scoping: struct build_args holds the --build-arg values, the automatic platform args and the
 * global ARGs (declared before the first FROM), which are visible in FROM lines only.  struct
 * stage_env is one stage's scope: ENV values (from the base image and ENV instructions) and the
 * ARGs declared in the stage.  A lookup checks ENV first, then ARG: an ENV always wins over an
 * ARG of the same name, whatever their order (docker's documented rule).
 */
#ifndef BERTH_BUILD_EXPAND_H
#define BERTH_BUILD_EXPAND_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

/* Returns the value of `name`, or NULL when the variable is unset.  The string must stay valid
 * until the expansion call returns. */
typedef const char *(*expand_lookup_fn)(void *ctx, const char *name);

struct expand_opts {
    char escape;       /* escape character: '\\' (default when 0) or '`' */
    bool skip_unset;   /* leave unset variables as written ("$X", "${X:-y}") */
    bool skip_quotes;  /* quotes are ordinary characters (heredoc bodies) */
    bool raw_quotes;   /* keep quote characters in the output */
    bool raw_escapes;  /* keep escape characters in the output */
    size_t max_output; /* 0 = 1 MiB; longer results are an error */
};

/* Full lexer: *result (may be NULL) gets the single-string result, *words and *nwords (may be NULL)
 * the split words (NULL-terminated array, caller frees each and the array).  Errors name the
 * word: `failed to process "${X:?}": X: is not allowed to be unset`. */
BERTH_MUST_CHECK int expand_process(const char *word, const struct expand_opts *opts,
                                    expand_lookup_fn lookup, void *ctx, char **result,
                                    char ***words, size_t *nwords, berth_error_t *err);

/* ProcessWord: the word with variables expanded and quotes/escapes removed. */
BERTH_MUST_CHECK int expand_word(const char *word, char escape, expand_lookup_fn lookup, void *ctx,
                                 char **out, berth_error_t *err);
/* ProcessWords: the same, split into words. *out is NULL-terminated. */
BERTH_MUST_CHECK int expand_words(const char *word, char escape, expand_lookup_fn lookup, void *ctx,
                                  char ***out, size_t *n, berth_error_t *err);
/* Expansion of a heredoc body whose delimiter was not quoted (COPY/ADD <<EOF): `$` expands,
 * backslash escapes, quotes are kept as they are. */
BERTH_MUST_CHECK int expand_heredoc(const char *content, expand_lookup_fn lookup, void *ctx,
                                    char **out, berth_error_t *err);

/* How the builder expands an instruction's arguments. */
enum expand_kind {
    EXPAND_NONE,  /* RUN CMD ENTRYPOINT SHELL HEALTHCHECK MAINTAINER ONBUILD */
    EXPAND_WORD,  /* each argument with expand_word: ADD COPY ENV LABEL ARG STOPSIGNAL USER
                     VOLUME WORKDIR FROM */
    EXPAND_WORDS, /* each argument with expand_words, results concatenated: EXPOSE */
};
enum expand_kind expand_instruction_kind(const char *keyword);

/* ---- ordered variable lists ---- */

/* An ordered list of NAME -> value (value NULL = declared without a value, i.e. unset). */
struct expand_env {
    char **names;
    char **values;
    size_t n, cap;
};

void expand_env_init(struct expand_env *e);
void expand_env_clear(struct expand_env *e);
/* Sets (replacing in place, keeping the first position) name to value (copied; NULL allowed). */
void expand_env_set(struct expand_env *e, const char *name, const char *value);
/* Returns the index of name or -1. */
long expand_env_find(const struct expand_env *e, const char *name);
/* Value of name, NULL if absent or unset; *declared (may be NULL) says whether it is listed. */
const char *expand_env_get(const struct expand_env *e, const char *name, bool *declared);
void expand_env_copy(struct expand_env *dst, const struct expand_env *src);
/* Loads "K=V" strings (an image config's Env); entries without '=' are skipped. */
void expand_env_load(struct expand_env *e, const char *const *kv, size_t n);
/* "K=V" strings of the entries with values, NULL-terminated, caller frees (cleanup_strv). */
char **expand_env_to_strv(const struct expand_env *e);
/* expand_lookup_fn over a struct expand_env */
const char *expand_env_lookup(void *env, const char *name);

/* ---- build args ---- */

/* Predefined args docker accepts from --build-arg without an ARG line (proxy settings).  They
 * reach RUN's environment but are left out of history unless the Containerfile declares them. */
bool build_arg_is_predefined(const char *name);
/* Automatic platform args (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM,
 * BUILDOS, BUILDARCH, BUILDVARIANT): global by default, visible in a stage once redeclared. */
bool build_arg_is_automatic(const char *name);

struct build_args {
    struct expand_env cli;       /* --build-arg values (NULL value: not given and not in env) */
    bool *cli_used;              /* parallel to cli.names: consumed by an ARG */
    struct expand_env automatic; /* platform args */
    struct expand_env global;    /* global scope: automatic args + ARGs before the first FROM */
    char escape; /* the Containerfile's escape character (default '\\'); the instruction-level
                    functions below set it from the instruction they are given */
};

/* cli_args: NULL-terminated "K=V" or "K" (value taken from the process environment if set, as
 * docker does) list, may be NULL.  target_platform/build_platform: "os/arch[/variant]", NULL =
 * this host.  Fails on an empty name or a bad platform string. */
BERTH_MUST_CHECK int build_args_new(const char *const *cli_args, const char *target_platform,
                                    const char *build_platform, struct build_args **out,
                                    berth_error_t *err);
void build_args_free(struct build_args *ba);
static inline void cleanup_build_argsp(struct build_args **p)
{
    if (*p)
        build_args_free(*p);
    *p = NULL;
}
#define cleanup_build_args __attribute__((cleanup(cleanup_build_argsp)))

/* Value of a --build-arg and whether it was given (marks it used). */
const char *build_args_cli(struct build_args *ba, const char *name, bool *given);

/* Declares one global ARG (before the first FROM): name, default (raw, unexpanded, NULL for
 * none).  The default is expanded with the earlier global args; a --build-arg overrides it. */
BERTH_MUST_CHECK int build_args_declare_global(struct build_args *ba, const char *name,
                                               const char *raw_default, berth_error_t *err);
/* Expands a FROM word (image name, --platform value, COPY --from) in the global scope. */
BERTH_MUST_CHECK int build_args_expand_global(struct build_args *ba, const char *word, char **out,
                                              berth_error_t *err);
/* Names of --build-arg values never consumed by any ARG (and not predefined); NULL-terminated,
 * caller frees.  Docker warns about them. */
char **build_args_unused(const struct build_args *ba);

struct cf_instruction;

/* A global ARG instruction (before the first FROM): each name[=default] in order, a default
 * expanded with the global args declared before it ("ARG A=1 B=$A" gives B=1). */
BERTH_MUST_CHECK int build_args_apply_global(struct build_args *ba,
                                             const struct cf_instruction *arg, berth_error_t *err);

/* ---- one stage's scope ---- */

struct stage_env {
    struct build_args *ba;  /* not owned */
    struct expand_env env;  /* ENV: base image config Env, then ENV instructions */
    struct expand_env args; /* ARGs declared in this stage (value NULL: declared, unset) */
};

/* base_env: the base image's config Env ("K=V"), may be NULL. */
void stage_env_init(struct stage_env *se, struct build_args *ba, const char *const *base_env,
                    size_t nbase);
void stage_env_clear(struct stage_env *se);
/* ARG inside a stage.  raw_default NULL = no default.  Value resolution as docker:
 * --build-arg if given, else the default (expanded in this stage's scope), else the global ARG
 * of the same name (or automatic platform arg), else unset. */
BERTH_MUST_CHECK int stage_env_declare_arg(struct stage_env *se, const char *name,
                                           const char *raw_default, berth_error_t *err);
/* An ARG instruction inside a stage: each name[=default] in order with stage_env_declare_arg
 * (so a later default sees an earlier one, as buildkit). */
BERTH_MUST_CHECK int stage_env_apply_arg(struct stage_env *se, const struct cf_instruction *arg,
                                         berth_error_t *err);
/* An ENV instruction: every name and value is expanded first, in the scope before the
 * instruction, then set ("ENV a=bye b=$a" gives b the previous $a, as docker documents). */
BERTH_MUST_CHECK int stage_env_apply_env(struct stage_env *se, const struct cf_instruction *env,
                                         berth_error_t *err);
/* A copy of `in` with what docker expands expanded, for the builder to execute:
 *   ADD/COPY: every argument except heredoc references ("<<EOF"), flags --chown --chmod --from
 *     --checksum --exclude, and the bodies of heredocs whose delimiter was not quoted (in the copy
 *     heredoc content is the final body: tabs already stripped for <<-, chomp=false);
 *   ENV/LABEL: names and values; EXPOSE: split into words; USER WORKDIR STOPSIGNAL VOLUME: each
 *   argument; RUN: --mount values; FROM: image and --platform in the global scope;
 *   ARG: names and defaults are returned unexpanded (use stage_env_apply_arg);
 *   others unchanged.
 * Quotes and escapes are removed from expanded words. */
BERTH_MUST_CHECK int stage_env_expand_instruction(struct stage_env *se,
                                                  const struct cf_instruction *in,
                                                  struct cf_instruction **out, berth_error_t *err);
/* ENV name=value with value already expanded. */
void stage_env_set_env(struct stage_env *se, const char *name, const char *value);
/* expand_lookup_fn over a struct stage_env: ENV first, then the stage's ARGs. */
const char *stage_env_lookup(void *se, const char *name);
BERTH_MUST_CHECK int stage_env_expand_word(struct stage_env *se, const char *word, char **out,
                                           berth_error_t *err);
BERTH_MUST_CHECK int stage_env_expand_words(struct stage_env *se, const char *word, char ***out,
                                            size_t *n, berth_error_t *err);
/* Environment for a RUN: ENV entries, then ARGs with values not shadowed by ENV, then
 * predefined proxy args given with --build-arg.  NULL-terminated "K=V", caller frees. */
char **stage_env_run_env(const struct stage_env *se);
/* ARGs to record in history for a RUN (declared args with a value, not shadowed by ENV), as
 * "K=V", NULL-terminated, caller frees.  Undeclared proxy args never appear. */
char **stage_env_history_args(const struct stage_env *se);

#endif
