/* Containerfile parser: line handling as buildkit's dockerfile/parser, per-instruction checks as
 * its dockerfile/instructions package. */
#include "build/containerfile.h"
#include "build/expand.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/strutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small string helpers ---- */

/* a counted vector with amortised growth (strutil's strv_add rescans the vector on every add,
 * too slow for the words of a 16 MiB line) */
struct wordv {
    char **v;
    size_t n, cap;
};

static void wordv_add(struct wordv *s, char *owned)
{
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xreallocarray(s->v, s->cap, sizeof(char *));
    }
    s->v[s->n++] = owned;
    s->v[s->n] = NULL;
}

static void wordv_free(struct wordv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* reWhitespace in buildkit: [\t\v\f\r ]+ */
static bool is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static char *upper(const char *s)
{
    char *r = xstrdup(s);
    for (char *p = r; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return r;
}

static char *trim_dup(const char *s)
{
    while (*s && is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space((unsigned char)s[n - 1]))
        n--;
    return xstrndup(s, n);
}

/* ---- instruction memory ---- */

static void heredoc_clear(struct cf_heredoc *h)
{
    free(h->name);
    free(h->content);
}

static void inst_clear(struct cf_instruction *in)
{
    free(in->keyword);
    free(in->original);
    for (size_t i = 0; i < in->nflags; i++) {
        free(in->flags[i].name);
        free(in->flags[i].value);
    }
    free(in->flags);
    for (size_t i = 0; i < in->nargs; i++)
        free(in->args[i]);
    free(in->args);
    for (size_t i = 0; i < in->nheredocs; i++)
        heredoc_clear(&in->heredocs[i]);
    free(in->heredocs);
    if (in->onbuild_inner) {
        inst_clear(in->onbuild_inner);
        free(in->onbuild_inner);
    }
    memset(in, 0, sizeof(*in));
}

static void inst_add_arg(struct cf_instruction *in, char *owned)
{
    in->args = xreallocarray(in->args, in->nargs + 2, sizeof(char *));
    in->args[in->nargs++] = owned;
    in->args[in->nargs] = NULL;
}

static void inst_add_flag(struct cf_instruction *in, const char *name, const char *value)
{
    in->flags = xreallocarray(in->flags, in->nflags + 1, sizeof(*in->flags));
    in->flags[in->nflags].name = xstrdup(name);
    in->flags[in->nflags].value = xstrdup(value);
    in->nflags++;
}

static void inst_add_heredoc(struct cf_instruction *in, const struct cf_heredoc *h)
{
    in->heredocs = xreallocarray(in->heredocs, in->nheredocs + 1, sizeof(*in->heredocs));
    struct cf_heredoc *d = &in->heredocs[in->nheredocs++];
    *d = *h;
    d->name = xstrdup(h->name);
    d->content = xstrdup(h->content ? h->content : "");
}

struct cf_instruction *cf_instruction_dup(const struct cf_instruction *in)
{
    struct cf_instruction *d = xzalloc(sizeof(*d));
    d->keyword = xstrdup(in->keyword);
    d->original = xstrdup(in->original);
    d->start_line = in->start_line;
    d->end_line = in->end_line;
    d->json_form = in->json_form;
    d->escape = in->escape;
    for (size_t i = 0; i < in->nflags; i++)
        inst_add_flag(d, in->flags[i].name, in->flags[i].value);
    for (size_t i = 0; i < in->nargs; i++)
        inst_add_arg(d, xstrdup(in->args[i]));
    if (!d->args)
        d->args = xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < in->nheredocs; i++)
        inst_add_heredoc(d, &in->heredocs[i]);
    if (in->onbuild_inner)
        d->onbuild_inner = cf_instruction_dup(in->onbuild_inner);
    return d;
}

void cf_instruction_free(struct cf_instruction *in)
{
    if (!in)
        return;
    inst_clear(in);
    free(in);
}

void containerfile_free(struct containerfile *cf)
{
    if (!cf)
        return;
    for (size_t i = 0; i < cf->n; i++)
        inst_clear(&cf->insts[i]);
    free(cf->insts);
    free(cf->filename);
    free(cf->syntax);
    free(cf->check);
    for (size_t i = 0; i < cf->nwarnings; i++)
        free(cf->warnings[i]);
    free(cf->warnings);
    free(cf);
}

/* ---- parser state ---- */

struct parser {
    const char *buf;
    size_t len, pos;
    int line; /* lines consumed so far */
    const char *file;
    char escape;
    /* directive parser */
    bool directives_done;
    bool seen_escape, seen_syntax, seen_check;
    struct containerfile *cf;
    berth_error_t *err;
};

static int perr(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    return berth_error_make_status(p->err, EINVAL, "%s:%d: %s", p->file, line, msg);
}

/* Next raw line including its "\n" (scanLines that keeps line endings). */
static bool next_line(struct parser *p, const char **s, size_t *n)
{
    if (p->pos >= p->len)
        return false;
    const char *start = p->buf + p->pos;
    const char *nl = memchr(start, '\n', p->len - p->pos);
    size_t l = nl ? (size_t)(nl - start) + 1 : p->len - p->pos;
    p->pos += l;
    *s = start;
    *n = l;
    return true;
}

/* trimNewline: strip every trailing \r and \n */
static size_t trim_newline_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    return n;
}

static bool line_is_comment(const char *s, size_t n)
{
    n = trim_newline_len(s, n);
    size_t i = 0;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    return i < n && s[i] == '#';
}

static bool line_is_empty(const char *s, size_t n)
{
    n = trim_newline_len(s, n);
    for (size_t i = 0; i < n; i++)
        if (!is_space((unsigned char)s[i]))
            return false;
    return true;
}

static int set_directive(struct parser *p, const char *key, const char *value, int line)
{
    if (strcmp(key, "escape") == 0) {
        if (p->seen_escape)
            return perr(p, line, "only one escape parser directive can be used");
        p->seen_escape = true;
        if (strcmp(value, "\\") != 0 && strcmp(value, "`") != 0)
            return perr(p, line, "invalid escape token '%s' does not match ` or \\", value);
        p->escape = value[0];
        return 0;
    }
    if (strcmp(key, "syntax") == 0) {
        if (p->seen_syntax)
            return perr(p, line, "only one syntax parser directive can be used");
        p->seen_syntax = true;
        free(p->cf->syntax);
        p->cf->syntax = xstrdup(value);
        return 0;
    }
    if (p->seen_check)
        return perr(p, line, "only one check parser directive can be used");
    p->seen_check = true;
    free(p->cf->check);
    p->cf->check = xstrdup(value);
    return 0;
}

/* DirectiveParser.ParseLine: `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`; the first line
 * that is not a known directive ends directive processing for good. */
static int possible_directive(struct parser *p, const char *s, size_t n, int line)
{
    if (p->directives_done)
        return 0;
    cleanup_free char *key = NULL;
    cleanup_free char *value = NULL;
    size_t i = 0;
    if (n == 0 || s[0] != '#')
        goto done;
    i = 1;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    size_t ks = i;
    if (i >= n || !isalpha((unsigned char)s[i]))
        goto done;
    while (i < n && isalnum((unsigned char)s[i]))
        i++;
    size_t ke = i;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    if (i >= n || s[i] != '=')
        goto done;
    i++;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    size_t vs = i, ve = n;
    while (ve > vs && is_space((unsigned char)s[ve - 1]))
        ve--;
    if (ve == vs)
        goto done;
    key = xstrndup(s + ks, ke - ks);
    for (char *c = key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strcmp(key, "escape") != 0 && strcmp(key, "syntax") != 0 && strcmp(key, "check") != 0)
        goto done;
    value = xstrndup(s + vs, ve - vs);
    return set_directive(p, key, value, line);
done:
    p->directives_done = true;
    return 0;
}

/* processLine: strip the newline (and leading whitespace if asked), feed the directive parser,
 * and return the line, or an empty string for a comment line.  *out is malloc'd. */
static int process_line(struct parser *p, const char *s, size_t n, bool strip_left, int line,
                        char **out)
{
    n = trim_newline_len(s, n);
    if (strip_left) {
        while (n > 0 && is_space((unsigned char)*s)) {
            s++;
            n--;
        }
    }
    if (memchr(s, '\0', n))
        return perr(p, line, "NUL byte in file");
    if (possible_directive(p, s, n, line) < 0)
        return -1;
    if (line_is_comment(s, n))
        *out = xstrdup("");
    else
        *out = xstrndup(s, n);
    return 0;
}

/* trimContinuationCharacter: the escape character as the last non-blank character continues the
 * line, unless it is itself preceded by the escape character ("foo \\" does not continue), as
 * docker's `([^E])E[ \t]*$|^E[ \t]*$`.  Returns true at the end of the instruction; modifies
 * line. */
static bool trim_continuation(char *line, char escape)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n == 0 || line[n - 1] != escape)
        return true;
    if (n >= 2 && line[n - 2] == escape)
        return true;
    line[n - 1] = '\0';
    return false;
}

/* ---- flags (extractBuilderFlags and BFlags) ---- */

/* Leading "--flag" words of line; returns the rest of the line. Escape is always '\\' here. */
static const char *extract_flags(const char *line, struct wordv *words)
{
    enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
    struct strbuf word = STRBUF_INIT;
    char quote = 0;
    bool blank_ok = false;
    size_t len = strlen(line);
    char ch = 0;
    for (size_t pos = 0; pos <= len; pos++) {
        if (pos != len)
            ch = line[pos];
        if (phase == IN_SPACES) {
            if (pos == len)
                break;
            if (is_space((unsigned char)ch))
                continue;
            if (ch != '-' || pos + 1 == len || line[pos + 1] != '-') {
                strbuf_release(&word);
                return line + pos;
            }
            phase = IN_WORD;
        }
        if (pos == len) {
            const char *w = word.buf ? word.buf : "";
            if (strcmp(w, "--") != 0 && (blank_ok || word.len > 0))
                wordv_add(words, strbuf_steal(&word));
            break;
        }
        if (phase == IN_WORD) {
            if (is_space((unsigned char)ch)) {
                phase = IN_SPACES;
                if (word.buf && strcmp(word.buf, "--") == 0) {
                    strbuf_release(&word);
                    return line + pos;
                }
                if (blank_ok || word.len > 0)
                    wordv_add(words, strbuf_steal(&word));
                strbuf_release(&word);
                blank_ok = false;
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote = ch;
                blank_ok = true;
                phase = IN_QUOTE;
                continue;
            }
            if (ch == '\\') {
                if (pos + 1 == len)
                    continue;
                ch = line[++pos];
            }
            strbuf_putc(&word, ch);
            continue;
        }
        /* IN_QUOTE */
        if (ch == quote) {
            phase = IN_WORD;
            continue;
        }
        if (ch == '\\') {
            if (pos + 1 == len) {
                phase = IN_WORD;
                continue;
            }
            ch = line[++pos];
        }
        strbuf_putc(&word, ch);
    }
    strbuf_release(&word);
    return line + len;
}

enum flag_type { F_BOOL, F_STRING, F_STRINGS };

struct flag_spec {
    const char *name;
    enum flag_type type;
};

struct inst_spec {
    const char *keyword;
    struct flag_spec flags[8];
};

static const struct inst_spec inst_specs[] = {
    {"ADD",
     {{"chown", F_STRING},
      {"chmod", F_STRING},
      {"link", F_BOOL},
      {"keep-git-dir", F_BOOL},
      {"checksum", F_STRING},
      {"exclude", F_STRINGS},
      {"unpack", F_BOOL}}},
    {"ARG", {{0}}},
    {"CMD", {{0}}},
    {"COPY",
     {{"from", F_STRING},
      {"chown", F_STRING},
      {"chmod", F_STRING},
      {"link", F_BOOL},
      {"parents", F_BOOL},
      {"exclude", F_STRINGS}}},
    {"ENTRYPOINT", {{0}}},
    {"ENV", {{0}}},
    {"EXPOSE", {{0}}},
    {"FROM", {{"platform", F_STRING}}},
    {"HEALTHCHECK",
     {{"interval", F_STRING},
      {"timeout", F_STRING},
      {"start-period", F_STRING},
      {"start-interval", F_STRING},
      {"retries", F_STRING}}},
    {"LABEL", {{0}}},
    {"MAINTAINER", {{0}}},
    {"ONBUILD", {{0}}},
    {"RUN", {{"mount", F_STRINGS}, {"network", F_STRING}, {"security", F_STRING}}},
    {"SHELL", {{0}}},
    {"STOPSIGNAL", {{0}}},
    {"USER", {{0}}},
    {"VOLUME", {{0}}},
    {"WORKDIR", {{0}}},
};

static const struct inst_spec *find_spec(const char *kw)
{
    for (size_t i = 0; i < sizeof(inst_specs) / sizeof(inst_specs[0]); i++)
        if (strcmp(inst_specs[i].keyword, kw) == 0)
            return &inst_specs[i];
    return NULL;
}

static int parse_flags(struct parser *p, int line, const struct inst_spec *spec,
                       struct wordv *words, struct cf_instruction *in)
{
    for (size_t i = 0; i < words->n; i++) {
        const char *arg = words->v[i];
        if (strncmp(arg, "--", 2) != 0)
            return perr(p, line, "%s: flag should start with --: %s", spec->keyword, arg);
        if (strcmp(arg, "--") == 0)
            return 0;
        arg += 2;
        const char *eq = strchr(arg, '=');
        cleanup_free char *name = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
        const char *value = eq ? eq + 1 : NULL;
        const struct flag_spec *fs = NULL;
        for (size_t k = 0; k < 8 && spec->flags[k].name; k++)
            if (strcmp(spec->flags[k].name, name) == 0)
                fs = &spec->flags[k];
        if (!fs)
            return perr(p, line, "unknown flag --%s for %s", name, spec->keyword);
        if (fs->type != F_STRINGS && cf_flag_get(in, name))
            return perr(p, line, "duplicate flag specified: --%s for %s", name, spec->keyword);
        if (fs->type == F_BOOL) {
            if (value && value[0] == '\0')
                return perr(p, line, "missing a value on flag: --%s", name);
            if (!value || strcasecmp(value, "true") == 0)
                value = "true";
            else if (strcasecmp(value, "false") == 0)
                value = "false";
            else
                return perr(p, line, "expecting boolean value for flag --%s, not: %s", name, value);
        } else if (!value) {
            return perr(p, line, "missing a value on flag: --%s", name);
        }
        inst_add_flag(in, name, value);
    }
    return 0;
}

/* ---- argument parsers (line_parsers.go) ---- */

/* parseWords: quotes and escapes kept, split on unquoted whitespace. */
static void parse_words(const char *rest, char escape, struct wordv *out)
{
    enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
    struct strbuf word = STRBUF_INIT;
    char quote = 0;
    bool blank_ok = false;
    size_t len = strlen(rest);
    char ch = 0;
    for (size_t pos = 0; pos <= len; pos++) {
        if (pos != len)
            ch = rest[pos];
        if (phase == IN_SPACES) {
            if (pos == len)
                break;
            if (is_space((unsigned char)ch))
                continue;
            phase = IN_WORD;
        }
        if (pos == len) {
            if (blank_ok || word.len > 0)
                wordv_add(out, strbuf_steal(&word));
            break;
        }
        if (phase == IN_WORD) {
            if (is_space((unsigned char)ch)) {
                phase = IN_SPACES;
                if (blank_ok || word.len > 0)
                    wordv_add(out, strbuf_steal(&word));
                strbuf_release(&word);
                blank_ok = false;
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote = ch;
                blank_ok = true;
                phase = IN_QUOTE;
            }
            if (ch == escape) {
                if (pos + 1 == len)
                    continue;
                strbuf_putc(&word, ch);
                ch = rest[++pos];
            }
            strbuf_putc(&word, ch);
            continue;
        }
        if (ch == quote)
            phase = IN_WORD;
        if (ch == escape && quote != '\'') {
            if (pos + 1 == len) {
                phase = IN_WORD;
                continue;
            }
            strbuf_putc(&word, ch);
            ch = rest[++pos];
        }
        strbuf_putc(&word, ch);
    }
    strbuf_release(&word);
}

/* reWhitespace.Split(s, -1) semantics for already-trimmed strings */
static void split_ws(const char *s, struct wordv *out)
{
    while (*s) {
        while (*s && is_ws((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *e = s;
        while (*e && !is_ws((unsigned char)*e))
            e++;
        wordv_add(out, xstrndup(s, (size_t)(e - s)));
        s = e;
    }
}

/* The one JSON parser refuses NUL in strings; an exec form may hold one (`CMD ["\u0000"]` is
 * valid JSON, kept by Docker and buildah).  Its \u0000 escapes are handed to the parser as the
 * noncharacter U+FDD0 (when the text has none of its own) and turned back here. */
#define NUL_STANDIN "\xef\xb7\x90"

static char *nul_escapes_to_standin(const char *text)
{
    if (!strstr(text, "\\u0000") || strstr(text, NUL_STANDIN) || strcasestr(text, "\\ufdd0"))
        return NULL;
    size_t n = strlen(text);
    char *o = xmalloc(n + 1), *w = o;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!in_str) {
            in_str = c == '"';
            *w++ = c;
            continue;
        }
        if (c == '"') {
            in_str = false;
        } else if (c == '\\' && i + 1 < n) {
            if (strncmp(text + i + 1, "u0000", 5) == 0) {
                memcpy(w, "\\ufdd0", 6);
                w += 6;
                i += 5;
                continue;
            }
            *w++ = c;
            c = text[++i];
        }
        *w++ = c;
    }
    *w = 0;
    return o;
}

char *cf_arg_from_json(const char *s, size_t len, bool standin)
{
    size_t nul = 0;
    for (size_t i = 0; i < len; i++)
        nul += s[i] == 0;
    char *o = xmalloc(len + nul + 1), *w = o;
    for (size_t i = 0; i < len; i++) {
        if (standin && i + 3 <= len && memcmp(s + i, NUL_STANDIN, 3) == 0) {
            *w++ = (char)0xc0;
            *w++ = (char)0x80;
            i += 2;
        } else if (s[i]) {
            *w++ = s[i];
        } else {
            *w++ = (char)0xc0;
            *w++ = (char)0x80;
        }
    }
    *w = 0;
    return o;
}

json_t *cf_arg_to_json(const char *arg)
{
    if (!strstr(arg, "\xc0\x80"))
        return json_string(arg);
    size_t n = strlen(arg);
    cleanup_free char *b = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)arg[i] == 0xc0 && (unsigned char)arg[i + 1] == 0x80) {
            b[o++] = 0;
            i++;
        } else {
            b[o++] = arg[i];
        }
    }
    return json_stringn(b, o);
}

enum json_result { JSON_OK, JSON_NOT_JSON, JSON_NOT_STRINGS };

static enum json_result parse_json_array(const char *rest, struct wordv *out)
{
    while (*rest && is_space((unsigned char)*rest))
        rest++;
    if (*rest != '[')
        return JSON_NOT_JSON;
    cleanup_json json_t *j = NULL;
    berth_error_t jerr = NULL;
    cleanup_free char *standin = nul_escapes_to_standin(rest);
    const char *text = standin ? standin : rest;
    /* the one JSON parser (bounded, one rule set); not JSON means shell form */
    if (json_parse_bounded(text, strlen(text), CONTAINERFILE_MAX_SIZE, "exec form", &j, &jerr) <
            0 ||
        !json_is_array(j)) {
        berth_error_release(&jerr);
        return JSON_NOT_JSON;
    }
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        if (!json_is_string(v))
            return JSON_NOT_STRINGS;
    }
    json_array_foreach(j, i, v)
    {
        wordv_add(out,
                  cf_arg_from_json(json_string_value(v), json_string_length(v), standin != NULL));
    }
    return JSON_OK;
}

static const char not_strings_msg[] =
    "when using JSON array syntax, arrays must be comprised of strings only";

/* ---- heredocs ---- */

/* parseHeredoc on one word of the line; returns 1 and fills h if it is one. */
static int parse_heredoc_word(struct parser *p, int line, const char *word, struct cf_heredoc *h)
{
    size_t i = 0;
    int fd = 0;
    while (isdigit((unsigned char)word[i])) {
        if (fd < 100000)
            fd = fd * 10 + (word[i] - '0');
        i++;
    }
    if (word[i] != '<' || word[i + 1] != '<')
        return 0;
    i += 2;
    bool chomp = false;
    if (word[i] == '-') {
        chomp = true;
        i++;
    }
    /* buildkit's `^(\d*)<<(-?)\s*([^<]*)$`: blanks may follow the operator */
    while (word[i] && is_space((unsigned char)word[i]))
        i++;
    const char *rest = word + i;
    if (strchr(rest, '<') || rest[0] == '\0')
        return 0;
    struct expand_opts o = {.escape = '\\', .skip_unset = true};
    char **w1 = NULL, **w2 = NULL;
    size_t n1 = 0, n2 = 0;
    berth_error_t lerr = NULL;
    if (expand_process(rest, &o, NULL, NULL, NULL, &w1, &n1, &lerr) < 0) {
        perr(p, line, "%s", berth_error_msg(lerr));
        berth_error_release(&lerr);
        return -1;
    }
    struct wordv s1 = {.v = w1, .n = n1}, s2 = {0};
    if (n1 != 1) {
        wordv_free(&s1);
        return 0;
    }
    o.raw_quotes = true;
    if (expand_process(rest, &o, NULL, NULL, NULL, &w2, &n2, &lerr) < 0) {
        wordv_free(&s1);
        perr(p, line, "%s", berth_error_msg(lerr));
        berth_error_release(&lerr);
        return -1;
    }
    s2.v = w2;
    s2.n = n2;
    if (n2 != 1) {
        wordv_free(&s1);
        wordv_free(&s2);
        return perr(p, line, "internal lexing of heredoc produced inconsistent results: %s", rest);
    }
    size_t q1 = 0, q2 = 0;
    for (const char *c = w1[0]; *c; c++)
        q1 += (*c == '\'' || *c == '"');
    for (const char *c = w2[0]; *c; c++)
        q2 += (*c == '\'' || *c == '"');
    h->name = xstrdup(w1[0]);
    h->content = NULL;
    h->expand = q1 == q2;
    h->chomp = chomp;
    h->fd = fd;
    wordv_free(&s1);
    wordv_free(&s2);
    return 1;
}

static bool can_contain_heredoc(const struct cf_instruction *in)
{
    if (strcmp(in->keyword, "ONBUILD") == 0 && in->onbuild_inner)
        in = in->onbuild_inner;
    if (strcmp(in->keyword, "RUN") != 0 && strcmp(in->keyword, "COPY") != 0 &&
        strcmp(in->keyword, "ADD") != 0)
        return false;
    return !in->json_form;
}

static int read_heredocs(struct parser *p, const char *line, int start, struct cf_instruction *in)
{
    struct expand_opts o = {
        .escape = '\\', .raw_quotes = true, .raw_escapes = true, .skip_unset = true};
    char **words = NULL;
    size_t nw = 0;
    berth_error_t lerr = NULL;
    /* docker ignores lexing errors here: such a line simply has no heredocs */
    if (expand_process(line, &o, NULL, NULL, NULL, &words, &nw, &lerr) < 0) {
        berth_error_release(&lerr);
        return 0;
    }
    struct wordv ws = {.v = words, .n = nw};
    int ret = 0;
    for (size_t i = 0; i < nw; i++) {
        struct cf_heredoc h = {0};
        int r = parse_heredoc_word(p, start, words[i], &h);
        if (r < 0) {
            ret = -1;
            break;
        }
        if (r == 0)
            continue;
        struct strbuf content = STRBUF_INIT;
        bool terminated = false;
        const char *s;
        size_t n;
        while (next_line(p, &s, &n)) {
            p->line++;
            size_t tn = trim_newline_len(s, n);
            const char *t = s;
            if (h.chomp) {
                while (tn > 0 && *t == '\t') {
                    t++;
                    tn--;
                }
            }
            if (tn == strlen(h.name) && memcmp(t, h.name, tn) == 0) {
                terminated = true;
                break;
            }
            if (memchr(s, '\0', n)) {
                strbuf_release(&content);
                heredoc_clear(&h);
                ret = perr(p, p->line, "NUL byte in file");
                goto out;
            }
            strbuf_append_len(&content, s, n);
        }
        if (!terminated) {
            strbuf_release(&content);
            ret = perr(p, start,
                       "unterminated heredoc %s (no line \"%s\" before the end of the "
                       "file)",
                       h.name, h.name);
            heredoc_clear(&h);
            goto out;
        }
        h.content = strbuf_steal(&content);
        inst_add_heredoc(in, &h);
        if (in->onbuild_inner) {
            inst_add_heredoc(in->onbuild_inner, &h);
            /* the stored trigger carries its heredocs, as docker's ONBUILD expression */
            char *t = xasprintf("%s\n%s%s", in->args[0], h.content, h.name);
            free(in->args[0]);
            in->args[0] = t;
        }
        heredoc_clear(&h);
    }
out:
    wordv_free(&ws);
    return ret;
}

/* ---- durations ---- */

int cf_parse_duration(const char *s, int64_t *ns, berth_error_t *err)
{
    const char *orig = s;
    bool neg = false;
    double total = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return berth_error_make_status(err, EINVAL, "time: invalid duration \"%s\"", orig);
    while (*s) {
        if (!(isdigit((unsigned char)*s) || *s == '.'))
            return berth_error_make_status(err, EINVAL, "time: invalid duration \"%s\"", orig);
        const char *numstart = s;
        double v = 0, scale = 1;
        bool digits = false, dot = false;
        while (isdigit((unsigned char)*s) || (*s == '.' && !dot)) {
            if (*s == '.') {
                dot = true;
            } else {
                digits = true;
                if (dot) {
                    scale /= 10;
                    v += (*s - '0') * scale;
                } else {
                    v = v * 10 + (*s - '0');
                }
            }
            s++;
        }
        if (!digits || s == numstart)
            return berth_error_make_status(err, EINVAL, "time: invalid duration \"%s\"", orig);
        const char *us = s;
        while (*s && !isdigit((unsigned char)*s) && *s != '.')
            s++;
        size_t ul = (size_t)(s - us);
        if (ul == 0)
            return berth_error_make_status(err, EINVAL, "time: missing unit in duration \"%s\"",
                                           orig);
        static const struct {
            const char *u;
            double mult;
        } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                     {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
        double mult = 0;
        for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
            if (strlen(units[k].u) == ul && memcmp(units[k].u, us, ul) == 0)
                mult = units[k].mult;
        if (mult == 0) {
            cleanup_free char *u = xstrndup(us, ul);
            return berth_error_make_status(err, EINVAL,
                                           "time: unknown unit \"%s\" in duration \"%s\"", u, orig);
        }
        total += v * mult;
        if (total > (double)INT64_MAX)
            return berth_error_make_status(err, EINVAL, "time: invalid duration \"%s\"", orig);
    }
    *ns = (int64_t)(neg ? -total : total);
    return 0;
}

/* ---- per-instruction parsing ---- */

static int parse_instruction(struct parser *p, const char *line, int start,
                             struct cf_instruction *in, bool nested);
static int csv_fields(const char *s, struct wordv *out);

/* At parse time docker checks only one thing in a --mount: from= cannot use variables. */
static int check_mount_from(struct parser *p, int line, const char *spec)
{
    struct wordv f = {0};
    int ret = 0;
    if (csv_fields(spec, &f) < 0) {
        wordv_free(&f);
        return perr(p, line, "invalid --mount \"%s\": bad CSV quoting", spec);
    }
    for (size_t i = 0; i < f.n && ret == 0; i++) {
        if (strncasecmp(f.v[i], "from=", 5) != 0)
            continue;
        const char *d = strchr(f.v[i] + 5, '$');
        if (d && d[1] != '\0')
            ret = perr(p, line,
                       "--mount: 'from' doesn't support variable expansion, define alias stage "
                       "instead");
    }
    wordv_free(&f);
    return ret;
}

static int check_interval(struct parser *p, int line, const struct cf_instruction *in,
                          const char *name)
{
    const char *v = cf_flag_get(in, name);
    if (!v || !v[0])
        return 0;
    int64_t ns;
    berth_error_t lerr = NULL;
    if (cf_parse_duration(v, &ns, &lerr) < 0) {
        perr(p, line, "HEALTHCHECK --%s: %s", name, berth_error_msg(lerr));
        berth_error_release(&lerr);
        return -1;
    }
    if (ns != 0 && ns < 1000000)
        return perr(p, line, "Interval \"%s\" cannot be less than 1ms", name);
    return 0;
}

static bool valid_stage_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || isdigit((unsigned char)*s) || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

static int parse_name_val(struct parser *p, int line, const char *kw, const char *rest,
                          struct cf_instruction *in)
{
    struct wordv words = {0};
    parse_words(rest, p->escape, &words);
    int ret = 0;
    if (words.n == 0)
        goto out;
    if (!strchr(words.v[0], '=')) {
        /* legacy "KEY name value": the rest of the line is the value */
        const char *e = rest;
        while (*e && !is_ws((unsigned char)*e))
            e++;
        const char *v = e;
        while (*v && is_ws((unsigned char)*v))
            v++;
        if (*v == '\0') {
            ret = perr(p, line, "%s must have two arguments", kw);
            goto out;
        }
        inst_add_arg(in, xstrndup(rest, (size_t)(e - rest)));
        inst_add_arg(in, xstrdup(v));
        goto out;
    }
    for (size_t i = 0; i < words.n; i++) {
        const char *eq = strchr(words.v[i], '=');
        if (!eq) {
            ret = perr(p, line,
                       "Syntax error - can't find = in \"%s\". Must be of the form: name=value",
                       words.v[i]);
            goto out;
        }
        if (eq == words.v[i]) {
            ret = perr(p, line, "%s names can not be blank", kw);
            goto out;
        }
        inst_add_arg(in, xstrndup(words.v[i], (size_t)(eq - words.v[i])));
        inst_add_arg(in, xstrdup(eq + 1));
    }
out:
    wordv_free(&words);
    return ret;
}

/* parseMaybeJSON / parseMaybeJSONToList */
static int maybe_json(struct parser *p, int line, const char *rest, bool to_list,
                      struct cf_instruction *in)
{
    struct wordv v = {0};
    enum json_result r = parse_json_array(rest, &v);
    if (r == JSON_NOT_STRINGS)
        return perr(p, line, "%s", not_strings_msg);
    if (r == JSON_OK) {
        in->json_form = true;
        for (size_t i = 0; i < v.n; i++)
            inst_add_arg(in, steal_pointer(&v.v[i]));
        wordv_free(&v);
        return 0;
    }
    if (to_list) {
        struct wordv w = {0};
        split_ws(rest, &w);
        for (size_t i = 0; i < w.n; i++)
            inst_add_arg(in, steal_pointer(&w.v[i]));
        wordv_free(&w);
    } else if (rest[0]) {
        inst_add_arg(in, xstrdup(rest));
    }
    return 0;
}

static bool is_heredoc_ref(const char *arg)
{
    const char *s = arg;
    while (isdigit((unsigned char)*s))
        s++;
    if (s[0] != '<' || s[1] != '<')
        return false;
    s += 2;
    if (*s == '-')
        s++;
    while (*s && is_space((unsigned char)*s))
        s++;
    return *s && !strchr(s, '<');
}

static int parse_instruction(struct parser *p, const char *line, int start,
                             struct cf_instruction *in, bool nested)
{
    /* splitCommand: keyword, then flags, then the rest */
    cleanup_free char *trimmed = trim_dup(line);
    const char *sp = trimmed;
    while (*sp && !is_ws((unsigned char)*sp))
        sp++;
    cleanup_free char *cmd = xstrndup(trimmed, (size_t)(sp - trimmed));
    while (*sp && is_ws((unsigned char)*sp))
        sp++;
    struct wordv flagwords = {0};
    cleanup_free char *rest = NULL;
    if (*sp) {
        const char *r = extract_flags(sp, &flagwords);
        rest = trim_dup(r);
    } else {
        rest = xstrdup("");
    }
    in->keyword = upper(cmd);
    in->original = xstrdup(line);
    in->start_line = start;
    const char *kw = in->keyword;
    const struct inst_spec *spec = find_spec(kw);
    if (!spec) {
        wordv_free(&flagwords);
        return perr(p, start, "unknown instruction: %s", cmd);
    }
    int r = parse_flags(p, start, spec, &flagwords, in);
    wordv_free(&flagwords);
    if (r < 0)
        return -1;

    if (strcmp(kw, "FROM") == 0) {
        struct wordv w = {0};
        split_ws(rest, &w);
        if (w.n == 3 && strcasecmp(w.v[1], "as") == 0) {
            cleanup_free char *name = xstrdup(w.v[2]);
            for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            if (!valid_stage_name(name)) {
                r = perr(p, start,
                         "invalid name for build stage: \"%s\", name can't start with a number "
                         "or contain symbols",
                         w.v[2]);
            }
        } else if (w.n != 1) {
            r = perr(p, start, "FROM requires either one or three arguments");
        }
        for (size_t i = 0; i < w.n; i++)
            inst_add_arg(in, steal_pointer(&w.v[i]));
        wordv_free(&w);
        return r;
    }
    if (strcmp(kw, "EXPOSE") == 0) {
        struct wordv w = {0};
        split_ws(rest, &w);
        for (size_t i = 0; i < w.n; i++)
            inst_add_arg(in, steal_pointer(&w.v[i]));
        wordv_free(&w);
        if (in->nargs == 0)
            return perr(p, start, "EXPOSE requires at least one argument");
        return 0;
    }
    if (strcmp(kw, "RUN") == 0 || strcmp(kw, "CMD") == 0 || strcmp(kw, "ENTRYPOINT") == 0 ||
        strcmp(kw, "SHELL") == 0) {
        if (maybe_json(p, start, rest, false, in) < 0)
            return -1;
        if (strcmp(kw, "SHELL") == 0) {
            if (in->nargs == 0)
                return perr(p, start, "SHELL requires at least one argument");
            if (!in->json_form)
                return perr(p, start, "SHELL requires the arguments to be in JSON form");
        }
        if (strcmp(kw, "RUN") == 0) {
            const char *net = cf_flag_get(in, "network");
            if (net && strcmp(net, "default") != 0 && strcmp(net, "none") != 0 &&
                strcmp(net, "host") != 0)
                return perr(p, start, "unsupported network mode \"%s\": use none, host or default",
                            net);
            const char *sec = cf_flag_get(in, "security");
            if (sec && strcmp(sec, "sandbox") != 0 && strcmp(sec, "insecure") != 0)
                return perr(p, start, "unsupported security mode \"%s\": use sandbox or insecure",
                            sec);
            if (in->nargs == 0)
                return perr(p, start, "RUN requires at least one argument");
            for (size_t i = 0; i < in->nflags; i++)
                if (strcmp(in->flags[i].name, "mount") == 0 &&
                    check_mount_from(p, start, in->flags[i].value) < 0)
                    return -1;
        }
        return 0;
    }
    if (strcmp(kw, "ADD") == 0 || strcmp(kw, "COPY") == 0 || strcmp(kw, "VOLUME") == 0) {
        if (maybe_json(p, start, rest, true, in) < 0)
            return -1;
        if (strcmp(kw, "VOLUME") == 0) {
            if (in->nargs == 0)
                return perr(p, start, "VOLUME requires at least one argument");
            for (size_t i = 0; i < in->nargs; i++) {
                char *t = trim_dup(in->args[i]);
                free(in->args[i]);
                in->args[i] = t;
                if (t[0] == '\0')
                    return perr(p, start, "VOLUME specified can not be an empty string");
            }
            return 0;
        }
        if (in->nargs < 2)
            return perr(p, start,
                        "%s requires at least two arguments, but only one was provided. "
                        "Destination could not be determined",
                        kw);
        if (!in->json_form && is_heredoc_ref(in->args[in->nargs - 1]))
            return perr(p, start, "%s cannot accept a heredoc as a destination", kw);
        return 0;
    }
    if (strcmp(kw, "ENV") == 0 || strcmp(kw, "LABEL") == 0) {
        if (parse_name_val(p, start, kw, rest, in) < 0)
            return -1;
        if (in->nargs == 0)
            return perr(p, start, "%s requires at least one argument", kw);
        return 0;
    }
    if (strcmp(kw, "ARG") == 0) {
        struct wordv w = {0};
        parse_words(rest, p->escape, &w);
        for (size_t i = 0; i < w.n; i++)
            inst_add_arg(in, steal_pointer(&w.v[i]));
        wordv_free(&w);
        if (in->nargs == 0)
            return perr(p, start, "ARG requires at least one argument");
        for (size_t i = 0; i < in->nargs; i++)
            if (in->args[i][0] == '=')
                return perr(p, start, "ARG names can not be blank");
        return 0;
    }
    if (strcmp(kw, "USER") == 0 || strcmp(kw, "WORKDIR") == 0 || strcmp(kw, "STOPSIGNAL") == 0 ||
        strcmp(kw, "MAINTAINER") == 0) {
        if (rest[0] == '\0')
            return perr(p, start, "%s requires exactly one argument", kw);
        inst_add_arg(in, xstrdup(rest));
        return 0;
    }
    if (strcmp(kw, "ONBUILD") == 0) {
        if (rest[0] == '\0')
            return perr(p, start, "ONBUILD requires at least one argument");
        if (nested)
            return perr(p, start, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        /* the trigger: the original text without the ONBUILD keyword */
        const char *t = line;
        while (*t && is_space((unsigned char)*t))
            t++;
        t += strlen(cmd);
        while (*t && is_space((unsigned char)*t))
            t++;
        inst_add_arg(in, xstrdup(t));
        cleanup_free char *trig = xstrdup(rest);
        char *e = trig;
        while (*e && !is_ws((unsigned char)*e))
            e++;
        *e = '\0';
        cleanup_free char *tkw = upper(trig);
        if (strcmp(tkw, "ONBUILD") == 0)
            return perr(p, start, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (strcmp(tkw, "MAINTAINER") == 0 || strcmp(tkw, "FROM") == 0)
            return perr(p, start, "%s isn't allowed as an ONBUILD trigger", tkw);
        in->onbuild_inner = xzalloc(sizeof(*in->onbuild_inner));
        if (parse_instruction(p, rest, start, in->onbuild_inner, true) < 0)
            return -1;
        if (!in->onbuild_inner->args)
            in->onbuild_inner->args = xcalloc(1, sizeof(char *));
        return 0;
    }
    if (strcmp(kw, "HEALTHCHECK") == 0) {
        const char *e = rest;
        while (*e && !is_space((unsigned char)*e))
            e++;
        if (e == rest)
            return perr(p, start, "HEALTHCHECK requires at least one argument");
        cleanup_free char *typ0 = xstrndup(rest, (size_t)(e - rest));
        cleanup_free char *typ = upper(typ0);
        while (*e && is_space((unsigned char)*e))
            e++;
        inst_add_arg(in, xstrdup(typ));
        if (maybe_json(p, start, e, false, in) < 0)
            return -1;
        if (strcmp(typ, "NONE") == 0) {
            if (in->nargs > 1)
                return perr(p, start, "HEALTHCHECK NONE takes no arguments");
            return 0;
        }
        if (strcmp(typ, "CMD") != 0)
            return perr(p, start, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", typ);
        if (in->nargs < 2)
            return perr(p, start, "Missing command after HEALTHCHECK CMD");
        static const char *const iv[] = {"interval", "timeout", "start-period", "start-interval"};
        for (size_t i = 0; i < 4; i++)
            if (check_interval(p, start, in, iv[i]) < 0)
                return -1;
        const char *retries = cf_flag_get(in, "retries");
        if (retries && retries[0]) {
            char *end;
            errno = 0;
            long long v = strtoll(retries, &end, 10);
            if (errno || *end || end == retries || v > INT32_MAX || v < INT32_MIN)
                return perr(p, start, "HEALTHCHECK --retries: invalid number \"%s\"", retries);
            if (v < 0)
                return perr(p, start, "--retries cannot be negative (%lld)", v);
        }
        return 0;
    }
    return perr(p, start, "unknown instruction: %s", cmd);
}

/* ---- the main loop (parser.Parse) ---- */

static void add_warning(struct containerfile *cf, char *owned)
{
    cf->warnings = xreallocarray(cf->warnings, cf->nwarnings + 2, sizeof(char *));
    cf->warnings[cf->nwarnings++] = owned;
    cf->warnings[cf->nwarnings] = NULL;
}

static int parse_all(struct parser *p)
{
    const char *s;
    size_t n;
    while (next_line(p, &s, &n)) {
        if (p->line == 0 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            n -= 3;
        }
        cleanup_free char *first = NULL;
        if (process_line(p, s, n, true, p->line + 1, &first) < 0)
            return -1;
        p->line++;
        int start = p->line;
        bool eol = trim_continuation(first, p->escape);
        if (eol && first[0] == '\0')
            continue;
        struct strbuf line = STRBUF_INIT;
        strbuf_append(&line, first);
        bool empty_cont = false;
        while (!eol && next_line(p, &s, &n)) {
            cleanup_free char *cont = NULL;
            if (process_line(p, s, n, false, p->line + 1, &cont) < 0) {
                strbuf_release(&line);
                return -1;
            }
            p->line++;
            if (line_is_comment(s, n))
                continue;
            if (line_is_empty(cont, strlen(cont))) {
                empty_cont = true;
                continue;
            }
            eol = trim_continuation(cont, p->escape);
            strbuf_append(&line, cont);
            if (line.len > CONTAINERFILE_MAX_SIZE) {
                strbuf_release(&line);
                return perr(p, start, "instruction too long");
            }
        }
        cleanup_free char *text = strbuf_steal(&line);
        if (empty_cont)
            add_warning(p->cf, xasprintf("%s:%d: empty continuation line found in: %s", p->file,
                                         start, text));
        struct containerfile *cf = p->cf;
        cf->insts = xreallocarray(cf->insts, cf->n + 1, sizeof(*cf->insts));
        struct cf_instruction *in = &cf->insts[cf->n];
        memset(in, 0, sizeof(*in));
        cf->n++;
        if (parse_instruction(p, text, start, in, false) < 0)
            return -1;
        if (!in->args)
            in->args = xcalloc(1, sizeof(char *));
        if (can_contain_heredoc(in) && strstr(text, "<<")) {
            if (read_heredocs(p, text, start, in) < 0)
                return -1;
        }
        in->end_line = p->line;
        in->escape = p->escape;
        if (in->onbuild_inner) {
            in->onbuild_inner->escape = p->escape;
            in->onbuild_inner->start_line = in->start_line;
            in->onbuild_inner->end_line = in->end_line;
        }
    }
    if (p->cf->n == 0)
        return berth_error_make_status(p->err, EINVAL, "%s: file with no instructions", p->file);
    return 0;
}

int containerfile_parse(const char *buf, size_t len, const char *filename,
                        struct containerfile **out, berth_error_t *err)
{
    if (!filename)
        filename = "Containerfile";
    if (len > CONTAINERFILE_MAX_SIZE)
        return berth_error_make_status(err, EFBIG, "%s: larger than %u bytes", filename,
                                       CONTAINERFILE_MAX_SIZE);
    cleanup_containerfile struct containerfile *cf = xzalloc(sizeof(*cf));
    cf->filename = xstrdup(filename);
    struct parser p = {
        .buf = buf,
        .len = len,
        .file = filename,
        .escape = '\\',
        .cf = cf,
        .err = err,
    };
    if (parse_all(&p) < 0)
        return -1;
    cf->escape = p.escape;
    *out = steal_pointer(&cf);
    return 0;
}

int containerfile_parse_file(const char *path, struct containerfile **out, berth_error_t *err)
{
    cleanup_close int fd = -1;
    if (strcmp(path, "-") == 0)
        fd = dup(STDIN_FILENO);
    else
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat \"%s\"", path);
    if (S_ISDIR(st.st_mode))
        return berth_error_make_status(err, EISDIR, "\"%s\" is a directory", path);
    cleanup_free char *buf = NULL;
    size_t len = 0;
    if (fs_read_fd(fd, CONTAINERFILE_MAX_SIZE, path, &buf, &len, err) < 0)
        return -1;
    return containerfile_parse(buf, len, path, out, err);
}

/* ---- accessors ---- */

const char *cf_flag_get(const struct cf_instruction *in, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < in->nflags; i++)
        if (strcmp(in->flags[i].name, name) == 0)
            v = in->flags[i].value;
    return v;
}

const char **cf_flag_get_all(const struct cf_instruction *in, const char *name, size_t *n)
{
    const char **v = xcalloc(in->nflags + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < in->nflags; i++)
        if (strcmp(in->flags[i].name, name) == 0)
            v[k++] = in->flags[i].value;
    if (n)
        *n = k;
    return v;
}

bool cf_flag_bool(const struct cf_instruction *in, const char *name)
{
    const char *v = cf_flag_get(in, name);
    return v && strcmp(v, "true") == 0;
}

char *cf_heredoc_body(const struct cf_heredoc *h)
{
    if (!h->chomp)
        return xstrdup(h->content ? h->content : "");
    struct strbuf b = STRBUF_INIT;
    const char *s = h->content ? h->content : "";
    bool at_start = true;
    for (; *s; s++) {
        if (at_start && *s == '\t')
            continue;
        at_start = *s == '\n';
        strbuf_putc(&b, *s);
    }
    return strbuf_steal(&b);
}

const struct cf_heredoc *cf_heredoc_for_arg(const struct cf_instruction *in, const char *arg)
{
    if (in->json_form || !is_heredoc_ref(arg))
        return NULL;
    const char *s = arg;
    while (isdigit((unsigned char)*s))
        s++;
    s += 2;
    if (*s == '-')
        s++;
    while (*s && is_space((unsigned char)*s))
        s++;
    struct expand_opts o = {.escape = '\\', .skip_unset = true};
    cleanup_free char *name = NULL;
    if (expand_process(s, &o, NULL, NULL, &name, NULL, NULL, NULL) < 0)
        return NULL;
    for (size_t i = 0; i < in->nheredocs; i++)
        if (strcmp(in->heredocs[i].name, name) == 0)
            return &in->heredocs[i];
    return NULL;
}

/* ---- JSON AST ---- */

static json_t *inst_to_json(const struct cf_instruction *in)
{
    json_t *o = json_object();
    json_object_set_new(o, "instruction", json_string(in->keyword));
    json_object_set_new(o, "original", json_string(in->original));
    json_object_set_new(o, "start_line", json_integer(in->start_line));
    json_object_set_new(o, "end_line", json_integer(in->end_line));
    json_t *flags = json_array();
    for (size_t i = 0; i < in->nflags; i++) {
        json_t *f = json_object();
        json_object_set_new(f, "name", json_string(in->flags[i].name));
        json_object_set_new(f, "value", json_string(in->flags[i].value));
        json_array_append_new(flags, f);
    }
    json_object_set_new(o, "flags", flags);
    json_t *args = json_array();
    for (size_t i = 0; i < in->nargs; i++)
        json_array_append_new(args, json_string(in->args[i]));
    json_object_set_new(o, "arguments", args);
    json_object_set_new(o, "json", json_boolean(in->json_form));
    json_t *hd = json_array();
    for (size_t i = 0; i < in->nheredocs; i++) {
        const struct cf_heredoc *h = &in->heredocs[i];
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(h->name));
        json_object_set_new(j, "content", json_string(h->content ? h->content : ""));
        json_object_set_new(j, "expand", json_boolean(h->expand));
        json_object_set_new(j, "chomp", json_boolean(h->chomp));
        if (h->fd)
            json_object_set_new(j, "fd", json_integer(h->fd));
        json_array_append_new(hd, j);
    }
    json_object_set_new(o, "heredocs", hd);
    if (in->onbuild_inner)
        json_object_set_new(o, "trigger", inst_to_json(in->onbuild_inner));
    return o;
}

json_t *containerfile_to_json(const struct containerfile *cf)
{
    json_t *o = json_object();
    char esc[2] = {cf->escape ? cf->escape : '\\', 0};
    json_object_set_new(o, "file", json_string(cf->filename ? cf->filename : ""));
    json_object_set_new(o, "escape", json_string(esc));
    json_object_set_new(o, "syntax", cf->syntax ? json_string(cf->syntax) : json_null());
    if (cf->check)
        json_object_set_new(o, "check", json_string(cf->check));
    json_t *arr = json_array();
    for (size_t i = 0; i < cf->n; i++)
        json_array_append_new(arr, inst_to_json(&cf->insts[i]));
    json_object_set_new(o, "instructions", arr);
    json_t *w = json_array();
    for (size_t i = 0; i < cf->nwarnings; i++)
        json_array_append_new(w, json_string(cf->warnings[i]));
    json_object_set_new(o, "warnings", w);
    return o;
}

/* ---- stages ---- */

void cf_stages_free(struct cf_stages *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->stages[i].name);
        free(s->stages[i].base);
        free(s->stages[i].platform);
    }
    free(s->stages);
    free(s->global_args);
    free(s);
}

int containerfile_stages(const struct containerfile *cf, struct cf_stages **out, berth_error_t *err)
{
    cleanup_cf_stages struct cf_stages *s = xzalloc(sizeof(*s));
    const char *file = cf->filename ? cf->filename : "Containerfile";
    for (size_t i = 0; i < cf->n; i++) {
        const struct cf_instruction *in = &cf->insts[i];
        if (strcmp(in->keyword, "FROM") == 0) {
            if (s->n > 0)
                s->stages[s->n - 1].end = i;
            s->stages = xreallocarray(s->stages, s->n + 1, sizeof(*s->stages));
            struct cf_stage *st = &s->stages[s->n];
            memset(st, 0, sizeof(*st));
            st->index = s->n;
            st->from = i;
            st->first = i + 1;
            st->end = cf->n;
            st->base = xstrdup(in->nargs > 0 ? in->args[0] : "");
            if (in->nargs == 3) {
                st->name = xstrdup(in->args[2]);
                for (char *c = st->name; *c; c++)
                    *c = (char)tolower((unsigned char)*c);
            }
            const char *plat = cf_flag_get(in, "platform");
            st->platform = plat ? xstrdup(plat) : NULL;
            s->n++;
            if (st->name) {
                for (size_t k = 0; k + 1 < s->n; k++)
                    if (s->stages[k].name && strcmp(s->stages[k].name, st->name) == 0)
                        return berth_error_make_status(err, EINVAL,
                                                       "%s:%d: duplicate stage name \"%s\"", file,
                                                       in->start_line, st->name);
            }
            continue;
        }
        if (s->n == 0) {
            if (strcmp(in->keyword, "ARG") != 0)
                return berth_error_make_status(err, EINVAL,
                                               "%s:%d: no build stage in current context: %s "
                                               "before the first FROM",
                                               file, in->start_line, in->keyword);
            s->global_args = xreallocarray(s->global_args, s->nglobal_args + 1, sizeof(size_t));
            s->global_args[s->nglobal_args++] = i;
        }
    }
    if (s->n == 0)
        return berth_error_make_status(err, EINVAL, "%s: no build stage: the file has no FROM",
                                       file);
    *out = steal_pointer(&s);
    return 0;
}

const struct cf_stage *cf_stages_find(const struct cf_stages *s, const char *name_or_index)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->stages[i].name && strcasecmp(s->stages[i].name, name_or_index) == 0)
            return &s->stages[i];
    char *end;
    errno = 0;
    unsigned long v = strtoul(name_or_index, &end, 10);
    if (name_or_index[0] >= '0' && name_or_index[0] <= '9' && *end == '\0' && errno == 0 &&
        v < s->n)
        return &s->stages[v];
    return NULL;
}

/* ---- RUN --mount ---- */

const char *cf_mount_type_name(enum cf_mount_type t)
{
    static const char *const names[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
    return (unsigned)t < 5 ? names[t] : "?";
}

void cf_mount_clear(struct cf_mount *m)
{
    free(m->from);
    free(m->source);
    free(m->target);
    free(m->id);
    free(m->sharing);
    free(m->env);
    memset(m, 0, sizeof(*m));
}

/* Go's strconv.ParseBool */
static int parse_go_bool(const char *v, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(v, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_ulong(const char *v, int base, unsigned long max, unsigned long *out)
{
    if (!*v || *v == '-' || *v == '+' || isspace((unsigned char)*v))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, base);
    if (errno || *end || x > max)
        return -1;
    *out = (unsigned long)x;
    return 0;
}

/* tmpfs size: bytes with an optional unit (k, m, g, t; case-insensitive, optional "b"/"ib") */
static int parse_size(const char *v, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*v))
        return -1;
    double x = strtod(v, &end);
    if (errno || x < 0)
        return -1;
    unsigned long long mult = 1;
    char u = (char)tolower((unsigned char)*end);
    if (u) {
        static const char units[] = "kmgtp";
        const char *k = strchr(units, u);
        if (!k)
            return -1;
        for (const char *c = units; c <= k; c++)
            mult *= 1024;
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
            return -1;
    }
    double r = x * (double)mult;
    if (r > 1.8e19)
        return -1;
    *out = (unsigned long long)r;
    return 0;
}

/* encoding/csv fields of one record: comma-separated, a field may be "quoted" with "" inside */
static int csv_fields(const char *s, struct wordv *out)
{
    for (;;) {
        struct strbuf f = STRBUF_INIT;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '\0') {
                    strbuf_release(&f);
                    return -1;
                }
                if (*s == '"') {
                    if (s[1] == '"') {
                        strbuf_putc(&f, '"');
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                strbuf_putc(&f, *s++);
            }
            if (*s != ',' && *s != '\0') {
                strbuf_release(&f);
                return -1;
            }
        } else {
            const char *e = strchr(s, ',');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (memchr(s, '"', n)) {
                strbuf_release(&f);
                return -1;
            }
            strbuf_append_len(&f, s, n);
            s += n;
        }
        wordv_add(out, strbuf_steal(&f));
        if (*s == '\0')
            return 0;
        s++; /* ',' */
    }
}

int cf_mount_map_values(const char *spec,
                        int (*fn)(void *ud, const char *in, char **out, berth_error_t *err),
                        void *ud, char **out, berth_error_t *err)
{
    struct wordv fields = {0};
    if (csv_fields(spec, &fields) < 0) {
        wordv_free(&fields);
        return berth_error_make_status(err, EINVAL, "invalid --mount \"%s\": bad CSV quoting",
                                       spec);
    }
    struct strbuf o = STRBUF_INIT;
    int ret = 0;
    for (size_t i = 0; i < fields.n && ret == 0; i++) {
        const char *f = fields.v[i];
        const char *eq = strchr(f, '=');
        cleanup_free char *mapped = NULL;
        if (eq) {
            cleanup_free char *v = NULL;
            if (fn(ud, eq + 1, &v, err) < 0) {
                ret = -1;
                break;
            }
            mapped = xasprintf("%.*s=%s", (int)(eq - f), f, v);
        } else {
            mapped = xstrdup(f);
        }
        if (i)
            strbuf_putc(&o, ',');
        if (strpbrk(mapped, ",\"") || !*mapped) {
            strbuf_putc(&o, '"');
            for (const char *c = mapped; *c; c++) {
                if (*c == '"')
                    strbuf_putc(&o, '"');
                strbuf_putc(&o, *c);
            }
            strbuf_putc(&o, '"');
        } else {
            strbuf_append_len(&o, mapped, strlen(mapped));
        }
    }
    wordv_free(&fields);
    if (ret < 0) {
        strbuf_release(&o);
        return -1;
    }
    *out = strbuf_steal(&o);
    return 0;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

int cf_parse_mount(const char *spec, struct cf_mount *out, berth_error_t *err)
{
    struct cf_mount m = {.type = CF_MOUNT_BIND};
    struct wordv fields = {0};
    bool ro_auto = true;
    int ret = -1;
    if (csv_fields(spec, &fields) < 0) {
        berth_error_make_status(err, EINVAL, "invalid --mount \"%s\": bad CSV quoting", spec);
        goto out;
    }
    for (size_t i = 0; i < fields.n; i++) {
        const char *field = fields.v[i];
        const char *eq = strchr(field, '=');
        cleanup_free char *key = eq ? xstrndup(field, (size_t)(eq - field)) : xstrdup(field);
        for (char *c = key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *value = eq ? eq + 1 : NULL;
        bool b;
        if (!value) {
            if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0) {
                m.readonly = true;
                ro_auto = false;
            } else if (strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0) {
                m.readonly = false;
                ro_auto = false;
            } else if (strcmp(key, "required") == 0) {
                if (m.type != CF_MOUNT_SECRET && m.type != CF_MOUNT_SSH) {
                    berth_error_make_status(err, EINVAL, "unexpected key '%s' for mount type '%s'",
                                            key, cf_mount_type_name(m.type));
                    goto out;
                }
                m.required = true;
            } else {
                berth_error_make_status(err, EINVAL, "invalid field '%s' must be a key=value pair",
                                        field);
                goto out;
            }
            continue;
        }
        if (strcmp(key, "type") == 0) {
            static const char *const types[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
            bool found = false;
            for (size_t k = 0; k < 5; k++)
                if (strcasecmp(value, types[k]) == 0) {
                    m.type = (enum cf_mount_type)k;
                    found = true;
                }
            if (!found) {
                berth_error_make_status(err, EINVAL, "unsupported mount type \"%s\"", value);
                goto out;
            }
        } else if (strcmp(key, "from") == 0) {
            set_str(&m.from, value);
        } else if (strcmp(key, "source") == 0 || strcmp(key, "src") == 0) {
            set_str(&m.source, value);
        } else if (strcmp(key, "target") == 0 || strcmp(key, "dst") == 0 ||
                   strcmp(key, "destination") == 0) {
            set_str(&m.target, value);
        } else if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0 ||
                   strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0) {
            if (parse_go_bool(value, &b) < 0) {
                berth_error_make_status(err, EINVAL, "invalid value for %s: %s", key, value);
                goto out;
            }
            m.readonly = (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0) ? b : !b;
            ro_auto = false;
        } else if (strcmp(key, "required") == 0) {
            if (m.type != CF_MOUNT_SECRET && m.type != CF_MOUNT_SSH) {
                berth_error_make_status(err, EINVAL, "unexpected key '%s' for mount type '%s'", key,
                                        cf_mount_type_name(m.type));
                goto out;
            }
            if (parse_go_bool(value, &b) < 0) {
                berth_error_make_status(err, EINVAL, "invalid value for %s: %s", key, value);
                goto out;
            }
            m.required = b;
        } else if (strcmp(key, "sharing") == 0) {
            if (value[0] && m.type != CF_MOUNT_CACHE) {
                berth_error_make_status(err, EINVAL, "invalid cache sharing set for %s mount",
                                        cf_mount_type_name(m.type));
                goto out;
            }
            if (strcasecmp(value, "shared") != 0 && strcasecmp(value, "private") != 0 &&
                strcasecmp(value, "locked") != 0) {
                berth_error_make_status(err, EINVAL, "unsupported sharing value \"%s\"", value);
                goto out;
            }
            set_str(&m.sharing, value);
            for (char *c = m.sharing; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        } else if (strcmp(key, "id") == 0) {
            set_str(&m.id, value);
        } else if (strcmp(key, "env") == 0) {
            set_str(&m.env, value);
        } else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
            unsigned long v;
            if (parse_ulong(value, 10, 0xffffffffUL, &v) < 0) {
                berth_error_make_status(err, EINVAL, "invalid value for %s: %s", key, value);
                goto out;
            }
            if (key[0] == 'u') {
                m.uid = v;
                m.has_uid = true;
            } else {
                m.gid = v;
                m.has_gid = true;
            }
        } else if (strcmp(key, "mode") == 0) {
            unsigned long v;
            if (parse_ulong(value, 8, 07777, &v) < 0) {
                berth_error_make_status(err, EINVAL, "invalid value %s for mode", value);
                goto out;
            }
            m.mode = v;
            m.has_mode = true;
        } else if (strcmp(key, "size") == 0) {
            if (m.type != CF_MOUNT_TMPFS) {
                berth_error_make_status(err, EINVAL, "unexpected key '%s' for mount type '%s'", key,
                                        cf_mount_type_name(m.type));
                goto out;
            }
            if (parse_size(value, &m.size) < 0) {
                berth_error_make_status(err, EINVAL, "invalid size value %s", value);
                goto out;
            }
        } else {
            berth_error_make_status(err, EINVAL, "unexpected key '%s' in '%s'", key, field);
            goto out;
        }
    }
    bool file_info =
        m.type == CF_MOUNT_SECRET || m.type == CF_MOUNT_SSH || m.type == CF_MOUNT_CACHE;
    if (!file_info && (m.has_mode || m.has_uid || m.has_gid)) {
        berth_error_make_status(err, EINVAL, "%s not allowed for \"%s\" type mounts",
                                m.has_mode  ? "mode"
                                : m.has_uid ? "uid"
                                            : "gid",
                                cf_mount_type_name(m.type));
        goto out;
    }
    if (ro_auto)
        m.readonly = !(m.type == CF_MOUNT_CACHE || m.type == CF_MOUNT_TMPFS);
    if (m.sharing && m.type != CF_MOUNT_CACHE) {
        berth_error_make_status(err, EINVAL, "invalid cache sharing set for %s mount",
                                cf_mount_type_name(m.type));
        goto out;
    }
    if (m.type == CF_MOUNT_SECRET) {
        if (m.from) {
            berth_error_make_status(err, EINVAL, "secret mount should not have a from");
            goto out;
        }
        if (!m.source && !m.target && !m.id) {
            berth_error_make_status(err, EINVAL,
                                    "invalid secret mount. one of source, target required");
            goto out;
        }
        if (m.source && m.id) {
            berth_error_make_status(err, EINVAL, "both source and id can't be set");
            goto out;
        }
    }
    if (!m.target && m.type != CF_MOUNT_SECRET && m.type != CF_MOUNT_SSH) {
        berth_error_make_status(err, EINVAL, "mount target must be set for %s mounts",
                                cf_mount_type_name(m.type));
        goto out;
    }
    *out = m;
    memset(&m, 0, sizeof(m));
    ret = 0;
out:
    if (ret < 0)
        berth_error_wrap(err, "--mount=%s", spec);
    cf_mount_clear(&m);
    wordv_free(&fields);
    return ret;
}
