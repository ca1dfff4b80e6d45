/* Containerfile / Dockerfile parser, behaving as docker's (buildkit's dockerfile/parser plus the
 * per-instruction checks of dockerfile/instructions).
 *
 * Lines: parser directives (`# syntax=`, `# escape=`, `# check=`; case-insensitive names) are
 * recognised only at the very top, before any instruction, comment or blank line; each at most
 * once.  The escape character (`\` or `` ` ``) at the end of a line (trailing spaces/tabs
 * allowed) continues the instruction unless it is itself escaped (`a \\` ends the line);
 * comment lines and whitespace-only lines inside a continuation are dropped (the latter with a
 * warning, as docker).  `#` starts a comment only as the first non-blank character of a line.
 * RUN/COPY/ADD (also under ONBUILD) in shell form take heredocs: `<<EOF`, `<<-EOF` (leading
 * tabs stripped from the body and the terminator), `<<"EOF"`/`<<'EOF'` (body not expanded),
 * several per instruction, read in order after the instruction line.
 *
 * Arguments (args[]) are stored unexpanded, as docker's parser gives them:
 *   FROM, EXPOSE:                     whitespace-separated words
 *   RUN, CMD, ENTRYPOINT, SHELL:      JSON array (json_form) or the rest of the line as one arg
 *   ADD, COPY, VOLUME:                JSON array or whitespace-separated words
 *   ENV, LABEL:                       pairs: args[2k] = name, args[2k+1] = value (quotes and
 *                                     escapes still in place; expand with expand_word)
 *   ARG:                              words "name" or "name=default"
 *   USER, WORKDIR, STOPSIGNAL, MAINTAINER: the rest of the line as one arg
 *   HEALTHCHECK:                      args[0] = "NONE" or "CMD" (upper-cased), then the command
 *                                     as for CMD (json_form tells which form)
 *   ONBUILD:                          args[0] = the trigger's text (with its heredoc bodies
 *                                     and terminators appended, as docker stores it);
 *                                     onbuild_inner = the trigger parsed as an instruction
 * Flags are validated per instruction (names, duplicates, boolean values, RUN --network and
 * --security values, HEALTHCHECK durations and retries, RUN --mount from= without variables).
 * Accepted flags: FROM --platform; RUN --mount (repeatable) --network --security; ADD --chown
 * --chmod --link --keep-git-dir --checksum --exclude (repeatable) --unpack; COPY --from --chown
 * --chmod --link --parents --exclude (repeatable); HEALTHCHECK --interval --timeout
 * --start-period --start-interval --retries.  Other instructions take none.
 *
 * Expansion of variables is not done here: see build/expand.h (stage_env_expand_instruction).
 *
 * Errors: "FILE:LINE: message", LINE being the first line of the instruction at fault.
 */
#ifndef BERTH_BUILD_CONTAINERFILE_H
#define BERTH_BUILD_CONTAINERFILE_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTAINERFILE_MAX_SIZE (16u << 20)

struct cf_flag {
    char *name;  /* without "--" */
    char *value; /* "true"/"false" for boolean flags */
};

struct cf_heredoc {
    char *name;    /* delimiter, quotes removed */
    char *content; /* body as written, each line with its "\n"; see cf_heredoc_body() */
    bool expand;   /* delimiter was not quoted: the builder expands variables in COPY/ADD */
    bool chomp;    /* <<-: leading tabs are stripped from each body line */
    int fd;        /* "3<<EOF" -> 3, default 0 */
};

struct cf_instruction {
    char *keyword;            /* upper-case: "RUN" */
    char *original;           /* the instruction line as written, continuations joined */
    int start_line, end_line; /* 1-based, end includes heredoc bodies */
    struct cf_flag *flags;
    size_t nflags;
    char **args; /* NULL-terminated, never NULL */
    size_t nargs;
    bool json_form;
    char escape; /* the file's escape character ('\\' or '`'), for expanding this instruction */
    struct cf_heredoc *heredocs;
    size_t nheredocs;
    struct cf_instruction *onbuild_inner; /* ONBUILD only */
};

struct containerfile {
    char *filename;
    char escape;  /* '\\' or '`' */
    char *syntax; /* "# syntax=" value or NULL */
    char *check;  /* "# check=" value or NULL */
    struct cf_instruction *insts;
    size_t n;
    char **warnings; /* NULL-terminated, e.g. empty continuation lines */
    size_t nwarnings;
};

/* JSON-form arguments can hold NUL characters (`CMD ["\u0000"]` is valid exec form, as in
 * Docker): in args they are written as the two bytes 0xC0 0x80 (never valid UTF-8 otherwise).
 * cf_arg_from_json makes such an arg (owned) from a parsed JSON string (standin: U+FDD0 stands
 * for NUL, see containerfile.c); cf_arg_to_json turns one back into a JSON string with the
 * NULs. */
char *cf_arg_from_json(const char *s, size_t len, bool standin);
json_t *cf_arg_to_json(const char *arg);

/* Parses buf (len bytes, need not be NUL-terminated).  filename is used in messages. */
BERTH_MUST_CHECK int containerfile_parse(const char *buf, size_t len, const char *filename,
                                         struct containerfile **out, berth_error_t *err);
/* Reads and parses path (at most CONTAINERFILE_MAX_SIZE bytes).  "-" reads stdin. */
BERTH_MUST_CHECK int containerfile_parse_file(const char *path, struct containerfile **out,
                                              berth_error_t *err);
void containerfile_free(struct containerfile *cf);
static inline void cleanup_containerfilep(struct containerfile **p)
{
    if (*p)
        containerfile_free(*p);
    *p = NULL;
}
#define cleanup_containerfile __attribute__((cleanup(cleanup_containerfilep)))

/* The AST for --print-ast: {"escape","syntax","instructions":[{"instruction","original",
 * "start_line","end_line","flags":[{"name","value"}],"arguments":[...],"json":bool,
 * "heredocs":[{"name","content","expand","chomp"}],"trigger":{...}}], "warnings":[...]}. */
json_t *containerfile_to_json(const struct containerfile *cf);

/* Deep copy / free of one instruction (as used by stage_env_expand_instruction). */
struct cf_instruction *cf_instruction_dup(const struct cf_instruction *in);
void cf_instruction_free(struct cf_instruction *in);
static inline void cleanup_cf_instructionp(struct cf_instruction **p)
{
    if (*p)
        cf_instruction_free(*p);
    *p = NULL;
}
#define cleanup_cf_instruction __attribute__((cleanup(cleanup_cf_instructionp)))

/* Flag helpers: the last value of --name (NULL if absent); all values (NULL-terminated array
 * of borrowed strings, caller frees the array only); a boolean flag (false if absent). */
const char *cf_flag_get(const struct cf_instruction *in, const char *name);
const char **cf_flag_get_all(const struct cf_instruction *in, const char *name, size_t *n);
bool cf_flag_bool(const struct cf_instruction *in, const char *name);

/* The heredoc body as the builder uses it: content with leading tabs stripped from every line
 * if chomp.  Caller frees. */
char *cf_heredoc_body(const struct cf_heredoc *h);
/* Returns the heredoc named by an argument word such as "<<EOF" / "<<-'EOF'" (COPY sources),
 * or NULL if the word is not a heredoc reference or names none of in's heredocs. */
const struct cf_heredoc *cf_heredoc_for_arg(const struct cf_instruction *in, const char *arg);

/* Go-style duration ("30s", "1m30s", "1.5h", "100ms") to nanoseconds. */
BERTH_MUST_CHECK int cf_parse_duration(const char *s, int64_t *ns, berth_error_t *err);

/* ---- RUN --mount ---- */

enum cf_mount_type {
    CF_MOUNT_BIND,
    CF_MOUNT_CACHE,
    CF_MOUNT_TMPFS,
    CF_MOUNT_SECRET,
    CF_MOUNT_SSH,
};

struct cf_mount {
    enum cf_mount_type type; /* default bind */
    char *from;              /* stage or image (bind, cache) */
    char *source;            /* source/src */
    char *target;            /* target/dst/destination */
    char *id;                /* cache id, secret id */
    char *sharing;           /* cache: "shared" (default), "private", "locked" */
    char *env;               /* secret: environment variable to set */
    bool readonly;           /* bind/secret/ssh default true; cache/tmpfs default false */
    bool required;           /* secret/ssh */
    bool has_uid, has_gid, has_mode;
    unsigned long uid, gid, mode;
    unsigned long long size; /* tmpfs size in bytes, 0 = default */
};

/* Parses one (already expanded) --mount value as buildkit does: comma-separated CSV fields
 * key=value (type from source/src target/dst/destination readonly/ro readwrite/rw id sharing
 * required uid gid mode size env) and the bare flags ro/readonly, rw/readwrite, required.
 * Errors name the bad field. */
BERTH_MUST_CHECK int cf_parse_mount(const char *spec, struct cf_mount *out, berth_error_t *err);
void cf_mount_clear(struct cf_mount *m);
/* A --mount value with fn applied to each field's value (as buildkit expands variables: field
 * by field after the CSV split, so quoting in a value survives), re-encoded as CSV; *out owned. */
BERTH_MUST_CHECK int cf_mount_map_values(const char *spec,
                                         int (*fn)(void *ud, const char *in, char **out,
                                                   berth_error_t *err),
                                         void *ud, char **out, berth_error_t *err);
const char *cf_mount_type_name(enum cf_mount_type t);

/* ---- stages ---- */

struct cf_stage {
    char *name;        /* lower-cased "AS" name, or NULL */
    char *base;        /* FROM image (unexpanded) */
    char *platform;    /* FROM --platform (unexpanded) or NULL */
    size_t index;      /* position among stages */
    size_t from;       /* index of the FROM instruction in cf->insts */
    size_t first, end; /* instructions of the stage body: insts[first..end) */
};

struct cf_stages {
    size_t *global_args; /* indexes of ARG instructions before the first FROM */
    size_t nglobal_args;
    struct cf_stage *stages;
    size_t n;
};

/* Splits cf into stages.  Errors: an instruction other than ARG before the first FROM
 * ("no build stage in current context"), no FROM at all, duplicate stage names. */
BERTH_MUST_CHECK int containerfile_stages(const struct containerfile *cf, struct cf_stages **out,
                                          berth_error_t *err);
void cf_stages_free(struct cf_stages *s);
static inline void cleanup_cf_stagesp(struct cf_stages **p)
{
    if (*p)
        cf_stages_free(*p);
    *p = NULL;
}
#define cleanup_cf_stages __attribute__((cleanup(cleanup_cf_stagesp)))
/* Stage by name (case-insensitive) or by decimal index; NULL if none. */
const struct cf_stage *cf_stages_find(const struct cf_stages *s, const char *name_or_index);

#endif
