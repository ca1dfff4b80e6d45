/* Docker-compatible variable expansion (the Dockerfile shell lexer) and ARG/ENV scopes. */
#include "build/expand.h"
#include "build/containerfile.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/strutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define LEX_EOF (-1)
/* pattern operations are quadratic in the value: keep them bounded */
#define PATTERN_MAX_VALUE (64u << 10)

/* ---- word collection (ProcessWords) ---- */

struct wordlist {
    struct strbuf word;
    bool in_word;
    char **v;
    size_t n, cap;
};

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void wl_push(struct wordlist *w)
{
    if (w->n + 2 > w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->v = xreallocarray(w->v, w->cap, sizeof(char *));
    }
    w->v[w->n++] = strbuf_steal(&w->word);
    w->v[w->n] = NULL;
}

static void wl_raw_char(struct wordlist *w, char c)
{
    strbuf_putc(&w->word, c);
    w->in_word = true;
}

static void wl_char(struct wordlist *w, char c)
{
    if (is_space((unsigned char)c)) {
        if (w->in_word && w->word.len != 0) {
            wl_push(w);
            w->in_word = false;
        }
    } else {
        wl_raw_char(w, c);
    }
}

static void wl_string(struct wordlist *w, const char *s)
{
    for (; *s; s++)
        wl_char(w, *s);
}

static void wl_raw_string(struct wordlist *w, const char *s)
{
    strbuf_append(&w->word, s);
    w->in_word = true;
}

static void wl_finish(struct wordlist *w)
{
    if (w->word.len > 0)
        wl_push(w);
    if (!w->v) {
        w->v = xcalloc(1, sizeof(char *));
    }
}

static void wl_free(struct wordlist *w)
{
    strbuf_release(&w->word);
    if (w->v) {
        for (size_t i = 0; i < w->n; i++)
            free(w->v[i]);
        free(w->v);
    }
    memset(w, 0, sizeof(*w));
}

/* ---- the lexer ---- */

struct lex {
    const char *s;
    size_t len, pos;
    char escape;
    bool raw_quotes, raw_escapes, skip_quotes, skip_unset;
    size_t max_output;
    int depth;
    expand_lookup_fn lookup;
    void *ctx;
    berth_error_t *err;
};

static int peek(struct lex *l)
{
    return l->pos < l->len ? (unsigned char)l->s[l->pos] : LEX_EOF;
}

static int next(struct lex *l)
{
    return l->pos < l->len ? (unsigned char)l->s[l->pos++] : LEX_EOF;
}

static const char *getenv_l(struct lex *l, const char *name)
{
    return l->lookup ? l->lookup(l->ctx, name) : NULL;
}

static int process_dollar(struct lex *l, struct strbuf *out);

static int check_size(struct lex *l, const struct strbuf *b)
{
    if (b->len > l->max_output)
        return berth_error_make_status(l->err, E2BIG, "expansion result longer than %zu bytes",
                                       l->max_output);
    return 0;
}

/* processStopOn: reads until stop (LEX_EOF = end of input).  Appends the string result to *res
 * and, when words != NULL, the split words. */
static int process_stop_on(struct lex *l, int stop, bool raw_escapes, struct strbuf *res,
                           struct wordlist *words)
{
    bool saved_raw = l->raw_escapes;
    int ret = 0;
    l->raw_escapes = raw_escapes;
    if (++l->depth > 64) {
        ret = berth_error_make_status(l->err, EINVAL, "expansion nested too deeply");
        goto out;
    }
    while (peek(l) != LEX_EOF) {
        int ch = peek(l);
        if (stop != LEX_EOF && ch == stop) {
            next(l);
            goto out;
        }
        if (ch == '<') {
            /* processPossibleHeredoc: "<<" keeps the blanks after it, so that "<<  EOF" stays
             * one word when splitting */
            next(l);
            struct strbuf tmp = STRBUF_INIT;
            strbuf_putc(&tmp, '<');
            if (peek(l) == '<') {
                strbuf_putc(&tmp, (char)next(l));
                while (peek(l) == ' ' || peek(l) == '\t')
                    strbuf_putc(&tmp, (char)next(l));
            }
            strbuf_append_len(res, tmp.buf, tmp.len);
            if (words)
                wl_raw_string(words, tmp.buf);
            strbuf_release(&tmp);
        } else if (ch == '$' || (!l->skip_quotes && (ch == '\'' || ch == '"'))) {
            struct strbuf tmp = STRBUF_INIT;
            if (ch == '$') {
                ret = process_dollar(l, &tmp);
            } else if (ch == '\'') {
                /* single quotes: everything literal, no escapes at all */
                next(l);
                if (l->raw_quotes)
                    strbuf_putc(&tmp, '\'');
                for (;;) {
                    int c = next(l);
                    if (c == LEX_EOF) {
                        ret = berth_error_make_status(l->err, EINVAL,
                                                      "unexpected end of statement while looking "
                                                      "for matching single-quote");
                        break;
                    }
                    if (c == '\'') {
                        if (l->raw_quotes)
                            strbuf_putc(&tmp, '\'');
                        break;
                    }
                    strbuf_putc(&tmp, (char)c);
                }
            } else {
                /* double quotes: $ expands; the escape char escapes only " $ and itself */
                next(l);
                if (l->raw_quotes)
                    strbuf_putc(&tmp, '"');
                for (;;) {
                    int c = peek(l);
                    if (c == LEX_EOF) {
                        ret = berth_error_make_status(l->err, EINVAL,
                                                      "unexpected end of statement while looking "
                                                      "for matching double-quote");
                        break;
                    }
                    if (c == '"') {
                        next(l);
                        if (l->raw_quotes)
                            strbuf_putc(&tmp, '"');
                        break;
                    }
                    if (c == '$') {
                        if ((ret = process_dollar(l, &tmp)) < 0)
                            break;
                        continue;
                    }
                    next(l);
                    if (c == (unsigned char)l->escape) {
                        int n = peek(l);
                        if (n == LEX_EOF) {
                            if (l->raw_escapes)
                                strbuf_putc(&tmp, (char)c);
                            continue;
                        }
                        if (n == '"' || n == '$' || n == (unsigned char)l->escape) {
                            if (l->raw_escapes)
                                strbuf_putc(&tmp, (char)c);
                            strbuf_putc(&tmp, (char)next(l));
                            continue;
                        }
                        /* not an escape sequence: the escape char stays */
                    }
                    strbuf_putc(&tmp, (char)c);
                }
            }
            if (ret < 0) {
                strbuf_release(&tmp);
                goto out;
            }
            strbuf_append_len(res, tmp.buf ? tmp.buf : "", tmp.len);
            if (words) {
                if (ch == '$')
                    wl_string(words, tmp.buf ? tmp.buf : "");
                else
                    wl_raw_string(words, tmp.buf ? tmp.buf : "");
            }
            strbuf_release(&tmp);
        } else {
            ch = next(l);
            if (ch == (unsigned char)l->escape) {
                if (l->raw_escapes) {
                    if (words)
                        wl_raw_char(words, (char)ch);
                    strbuf_putc(res, (char)ch);
                }
                ch = next(l);
                if (ch == LEX_EOF)
                    break;
                if (words)
                    wl_raw_char(words, (char)ch);
            } else if (words) {
                wl_char(words, (char)ch);
            }
            strbuf_putc(res, (char)ch);
        }
        if ((ret = check_size(l, res)) < 0)
            goto out;
    }
    if (stop != LEX_EOF)
        ret = berth_error_make_status(
            l->err, EINVAL, "unexpected end of statement while looking for matching %c", stop);
out:
    l->depth--;
    l->raw_escapes = saved_raw;
    return ret;
}

static bool is_special_param(int c)
{
    return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
           c == '0';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c >= 0x80; /* non-ASCII letters (UTF-8 bytes) */
}

static char *process_name(struct lex *l)
{
    struct strbuf name = STRBUF_INIT;
    while (peek(l) != LEX_EOF) {
        int ch = peek(l);
        if (name.len == 0 && is_digit(ch)) {
            while (peek(l) != LEX_EOF && is_digit(peek(l)))
                strbuf_putc(&name, (char)next(l));
            return strbuf_steal(&name);
        }
        if (name.len == 0 && is_special_param(ch)) {
            strbuf_putc(&name, (char)next(l));
            return strbuf_steal(&name);
        }
        if (!is_name_char(ch))
            break;
        strbuf_putc(&name, (char)next(l));
    }
    return strbuf_steal(&name);
}

/* ${VAR#pattern} patterns as docker's convertShellPatternToRegex: '*' any run of characters
 * (including '/'), '?' any one character, everything else literal (no bracket expressions);
 * a backslash escapes '*', '?' and itself, is dropped before '}' and '/', and is an error before
 * anything else. */
struct pat {
    char *kind; /* 'l' literal, '*', '?' */
    char *ch;
    size_t n;
};

static void pat_free(struct pat *p)
{
    free(p->kind);
    free(p->ch);
}

static int pat_compile(struct lex *l, const char *src, struct pat *p)
{
    size_t len = strlen(src);
    p->kind = xmalloc(len + 1);
    p->ch = xmalloc(len + 1);
    p->n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '*' || c == '?') {
            p->kind[p->n] = c;
            p->ch[p->n++] = c;
            continue;
        }
        if (c == '\\') {
            char nx = src[i + 1];
            if (nx == '}' || nx == '/')
                continue;
            if (nx != '*' && nx != '?' && nx != '\\') {
                pat_free(p);
                return berth_error_make_status(l->err, EINVAL,
                                               "invalid pattern (%s) in substitution: invalid "
                                               "escape '\\%c'",
                                               src, nx ? nx : ' ');
            }
            c = nx;
            i++;
        }
        p->kind[p->n] = 'l';
        p->ch[p->n++] = c;
    }
    return 0;
}

/* Does all of s[0..n) match?  One kind of star only, so the classic backtrack-to-last-star
 * walk is exact and O(n * m). */
/* Go's regexp works on runes: '?' takes one UTF-8 character and matches start and end on
 * character boundaries. */
static bool boundary(const char *s, size_t i, size_t n)
{
    return i >= n || ((unsigned char)s[i] & 0xc0) != 0x80;
}

static size_t char_len(const char *s, size_t n)
{
    size_t l = 1;
    while (l < n && !boundary(s, l, n))
        l++;
    return l;
}

static bool pat_match(const struct pat *p, const char *s, size_t n)
{
    size_t ti = 0, si = 0, star_ti = (size_t)-1, star_si = 0;
    while (si < n) {
        if (ti < p->n && p->kind[ti] == '*') {
            star_ti = ti++;
            star_si = si;
        } else if (ti < p->n && p->kind[ti] == '?') {
            ti++;
            si += char_len(s + si, n - si);
        } else if (ti < p->n && p->ch[ti] == s[si]) {
            ti++;
            si++;
        } else if (star_ti != (size_t)-1) {
            ti = star_ti + 1;
            star_si += char_len(s + star_si, n - star_si);
            si = star_si;
        } else {
            return false;
        }
    }
    while (ti < p->n && p->kind[ti] == '*')
        ti++;
    return ti == p->n;
}

static char *trim_prefix(const struct pat *pat, const char *value, bool greedy)
{
    size_t len = strlen(value);
    if (greedy) {
        for (size_t i = len + 1; i-- > 0;)
            if (boundary(value, i, len) && pat_match(pat, value, i))
                return xstrdup(value + i);
    } else {
        for (size_t i = 0; i <= len; i++)
            if (boundary(value, i, len) && pat_match(pat, value, i))
                return xstrdup(value + i);
    }
    return xstrdup(value);
}

static char *trim_suffix(const struct pat *pat, const char *value, bool greedy)
{
    size_t len = strlen(value);
    if (greedy) {
        for (size_t i = 0; i <= len; i++)
            if (boundary(value, i, len) && pat_match(pat, value + i, len - i))
                return xstrndup(value, i);
    } else {
        for (size_t i = len + 1; i-- > 0;)
            if (boundary(value, i, len) && pat_match(pat, value + i, len - i))
                return xstrndup(value, i);
    }
    return xstrdup(value);
}

/* leftmost match, the longest one at that position (greedy '*'), as Go's regexp */
static char *replace_pattern(const struct pat *pat, const char *repl, const char *value, bool all)
{
    struct strbuf out = STRBUF_INIT;
    size_t len = strlen(value), i = 0;
    bool done = false;
    while (i <= len) {
        size_t end = 0;
        bool found = false;
        if (!done) {
            for (size_t e = len + 1; e-- > i;) {
                if (boundary(value, e, len) && pat_match(pat, value + i, e - i)) {
                    end = e;
                    found = true;
                    break;
                }
            }
        }
        if (found) {
            strbuf_append(&out, repl);
            if (!all)
                done = true;
            if (end > i) {
                i = end;
                continue;
            }
        }
        if (i < len) {
            size_t cl = char_len(value + i, len - i);
            strbuf_append_len(&out, value + i, cl);
            i += cl;
        } else {
            i++;
        }
    }
    return strbuf_steal(&out);
}

static int process_dollar(struct lex *l, struct strbuf *out)
{
    next(l); /* '$' */
    if (peek(l) != '{') {
        cleanup_free char *name = process_name(l);
        if (name[0] == '\0') {
            strbuf_putc(out, '$');
            return 0;
        }
        const char *v = getenv_l(l, name);
        if (!v && l->skip_unset) {
            strbuf_putc(out, '$');
            strbuf_append(out, name);
            return 0;
        }
        strbuf_append(out, v ? v : "");
        return 0;
    }
    next(l); /* '{' */
    int c = peek(l);
    if (c == LEX_EOF)
        return berth_error_make_status(l->err, EINVAL, "syntax error: missing '}'");
    if (c == '{' || c == '}' || c == ':')
        return berth_error_make_status(l->err, EINVAL, "syntax error: bad substitution");
    cleanup_free char *name = process_name(l);
    int ch = next(l);
    char chs[3] = {0};
    chs[0] = ch == LEX_EOF ? '\0' : (char)ch;
    bool null_is_unset = false;
    switch (ch) {
    case '}': {
        const char *v = getenv_l(l, name);
        if (!v && l->skip_unset) {
            strbuf_append(out, "${");
            strbuf_append(out, name);
            strbuf_putc(out, '}');
            return 0;
        }
        strbuf_append(out, v ? v : "");
        return 0;
    }
    case ':':
        null_is_unset = true;
        ch = next(l);
        chs[1] = ch == LEX_EOF ? '\0' : (char)ch;
        /* fallthrough */
    case '+':
    case '-':
    case '?':
    case '#':
    case '%': {
        bool raw = ch == '#' || ch == '%';
        if (null_is_unset && raw)
            return berth_error_make_status(l->err, EINVAL,
                                           "unsupported modifier (%s) in substitution", chs);
        struct strbuf w = STRBUF_INIT;
        if (process_stop_on(l, '}', raw, &w, NULL) < 0) {
            strbuf_release(&w);
            if (peek(l) == LEX_EOF)
                return berth_error_make_status(l->err, EINVAL, "syntax error: missing '}'");
            return -1;
        }
        cleanup_free char *word = strbuf_steal(&w);
        const char *v = getenv_l(l, name);
        bool set = v != NULL;
        if (l->skip_unset && !set) {
            strbuf_append(out, "${");
            strbuf_append(out, name);
            strbuf_append(out, chs);
            strbuf_append(out, word);
            strbuf_putc(out, '}');
            return 0;
        }
        switch (ch) {
        case '-':
            strbuf_append(out, (!set || (null_is_unset && v[0] == '\0')) ? word : v);
            return 0;
        case '+':
            if (!(!set || (null_is_unset && v[0] == '\0')))
                strbuf_append(out, word);
            return 0;
        case '?':
            if (!set)
                return berth_error_make_status(l->err, EINVAL, "%s: %s", name,
                                               word[0] ? word : "is not allowed to be unset");
            if (null_is_unset && v[0] == '\0')
                return berth_error_make_status(l->err, EINVAL, "%s: %s", name,
                                               word[0] ? word : "is not allowed to be empty");
            strbuf_append(out, v);
            return 0;
        case '#':
        case '%': {
            const char *ptext = word;
            bool greedy = false;
            if (ptext[0] == ch) {
                greedy = true;
                ptext++;
            }
            if (v && strlen(v) > PATTERN_MAX_VALUE)
                return berth_error_make_status(l->err, E2BIG,
                                               "value of %s too long for pattern removal", name);
            struct pat pt;
            if (pat_compile(l, ptext, &pt) < 0)
                return -1;
            char *r = ch == '%' ? trim_suffix(&pt, v ? v : "", greedy)
                                : trim_prefix(&pt, v ? v : "", greedy);
            pat_free(&pt);
            strbuf_append(out, r);
            free(r);
            return 0;
        }
        default:
            return berth_error_make_status(l->err, EINVAL,
                                           "unsupported modifier (%s) in substitution", chs);
        }
    }
    case '/': {
        bool all = peek(l) == '/';
        if (all)
            next(l);
        struct strbuf p = STRBUF_INIT, r = STRBUF_INIT;
        if (process_stop_on(l, '/', true, &p, NULL) < 0) {
            strbuf_release(&p);
            if (peek(l) == LEX_EOF)
                return berth_error_make_status(l->err, EINVAL, "syntax error: missing '/' in ${}");
            return -1;
        }
        if (process_stop_on(l, '}', true, &r, NULL) < 0) {
            strbuf_release(&p);
            strbuf_release(&r);
            if (peek(l) == LEX_EOF)
                return berth_error_make_status(l->err, EINVAL, "syntax error: missing '}'");
            return -1;
        }
        cleanup_free char *pat = strbuf_steal(&p);
        cleanup_free char *repl = strbuf_steal(&r);
        const char *v = getenv_l(l, name);
        if (!v && l->skip_unset) {
            strbuf_append(out, "${");
            strbuf_append(out, name);
            strbuf_append(out, all ? "//" : "/");
            strbuf_append(out, pat);
            strbuf_putc(out, '/');
            strbuf_append(out, repl);
            strbuf_putc(out, '}');
            return 0;
        }
        if (v && strlen(v) > PATTERN_MAX_VALUE)
            return berth_error_make_status(l->err, E2BIG,
                                           "value of %s too long for pattern substitution", name);
        struct pat pt;
        if (pat_compile(l, pat, &pt) < 0)
            return -1;
        char *res = replace_pattern(&pt, repl, v ? v : "", all);
        pat_free(&pt);
        strbuf_append(out, res);
        free(res);
        return 0;
    }
    case LEX_EOF:
        return berth_error_make_status(l->err, EINVAL, "syntax error: missing '}'");
    default:
        return berth_error_make_status(l->err, EINVAL, "unsupported modifier (%s) in substitution",
                                       chs);
    }
}

int expand_process(const char *word, const struct expand_opts *opts, expand_lookup_fn lookup,
                   void *ctx, char **result, char ***words, size_t *nwords, berth_error_t *err)
{
    static const struct expand_opts defaults = {.escape = '\\'};
    if (!opts)
        opts = &defaults;
    struct lex l = {
        .s = word,
        .len = strlen(word),
        .escape = opts->escape ? opts->escape : '\\',
        .raw_quotes = opts->raw_quotes,
        .raw_escapes = opts->raw_escapes,
        .skip_quotes = opts->skip_quotes,
        .skip_unset = opts->skip_unset,
        .max_output = opts->max_output ? opts->max_output : (1u << 20),
        .lookup = lookup,
        .ctx = ctx,
        .err = err,
    };
    struct strbuf res = STRBUF_INIT;
    struct wordlist wl = {0};
    if (process_stop_on(&l, LEX_EOF, opts->raw_escapes, &res, words ? &wl : NULL) < 0) {
        strbuf_release(&res);
        wl_free(&wl);
        return berth_error_wrap(err, "failed to process \"%s\"", word);
    }
    if (result)
        *result = strbuf_steal(&res);
    strbuf_release(&res);
    if (words) {
        wl_finish(&wl);
        *words = wl.v;
        if (nwords)
            *nwords = wl.n;
        wl.v = NULL;
        wl.n = 0;
        wl_free(&wl);
    }
    return 0;
}

int expand_word(const char *word, char escape, expand_lookup_fn lookup, void *ctx, char **out,
                berth_error_t *err)
{
    struct expand_opts o = {.escape = escape};
    return expand_process(word, &o, lookup, ctx, out, NULL, NULL, err);
}

int expand_words(const char *word, char escape, expand_lookup_fn lookup, void *ctx, char ***out,
                 size_t *n, berth_error_t *err)
{
    struct expand_opts o = {.escape = escape};
    return expand_process(word, &o, lookup, ctx, NULL, out, n, err);
}

int expand_heredoc(const char *content, expand_lookup_fn lookup, void *ctx, char **out,
                   berth_error_t *err)
{
    struct expand_opts o = {.escape = '\\', .skip_quotes = true, .max_output = 64u << 20};
    return expand_process(content, &o, lookup, ctx, out, NULL, NULL, err);
}

enum expand_kind expand_instruction_kind(const char *kw)
{
    static const char *const word[] = {"ADD",  "COPY",       "ENV",    "LABEL",   "ARG",
                                       "USER", "STOPSIGNAL", "VOLUME", "WORKDIR", "FROM"};
    if (strcasecmp(kw, "EXPOSE") == 0)
        return EXPAND_WORDS;
    for (size_t i = 0; i < sizeof(word) / sizeof(word[0]); i++)
        if (strcasecmp(kw, word[i]) == 0)
            return EXPAND_WORD;
    return EXPAND_NONE;
}

/* ---- ordered lists ---- */

void expand_env_init(struct expand_env *e)
{
    memset(e, 0, sizeof(*e));
}

void expand_env_clear(struct expand_env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->names[i]);
        free(e->values[i]);
    }
    free(e->names);
    free(e->values);
    memset(e, 0, sizeof(*e));
}

long expand_env_find(const struct expand_env *e, const char *name)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->names[i], name) == 0)
            return (long)i;
    return -1;
}

void expand_env_set(struct expand_env *e, const char *name, const char *value)
{
    long i = expand_env_find(e, name);
    char *v = value ? xstrdup(value) : NULL;
    if (i >= 0) {
        free(e->values[i]);
        e->values[i] = v;
        return;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->names = xreallocarray(e->names, e->cap, sizeof(char *));
        e->values = xreallocarray(e->values, e->cap, sizeof(char *));
    }
    e->names[e->n] = xstrdup(name);
    e->values[e->n] = v;
    e->n++;
}

const char *expand_env_get(const struct expand_env *e, const char *name, bool *declared)
{
    long i = expand_env_find(e, name);
    if (declared)
        *declared = i >= 0;
    return i >= 0 ? e->values[i] : NULL;
}

void expand_env_copy(struct expand_env *dst, const struct expand_env *src)
{
    for (size_t i = 0; i < src->n; i++)
        expand_env_set(dst, src->names[i], src->values[i]);
}

void expand_env_load(struct expand_env *e, const char *const *kv, size_t n)
{
    for (size_t i = 0; kv && i < n && kv[i]; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i])
            continue;
        cleanup_free char *name = xstrndup(kv[i], (size_t)(eq - kv[i]));
        expand_env_set(e, name, eq + 1);
    }
}

char **expand_env_to_strv(const struct expand_env *e)
{
    char **s = NULL;
    for (size_t i = 0; i < e->n; i++)
        if (e->values[i])
            strv_add_take(&s, xasprintf("%s=%s", e->names[i], e->values[i]));
    return strv_or_empty(s); /* the callers promise a vector */
}

const char *expand_env_lookup(void *env, const char *name)
{
    return expand_env_get(env, name, NULL);
}

/* ---- build args ---- */

static const char *const predefined_args[] = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

static const char *const automatic_args[] = {
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT",
};

bool build_arg_is_predefined(const char *name)
{
    for (size_t i = 0; i < sizeof(predefined_args) / sizeof(predefined_args[0]); i++)
        if (strcmp(name, predefined_args[i]) == 0)
            return true;
    return false;
}

bool build_arg_is_automatic(const char *name)
{
    for (size_t i = 0; i < sizeof(automatic_args) / sizeof(automatic_args[0]); i++)
        if (strcmp(name, automatic_args[i]) == 0)
            return true;
    return false;
}

static const char *host_arch(const char **variant)
{
    static struct utsname u;
    *variant = "";
    if (uname(&u) < 0)
        return "amd64";
    const char *m = u.machine;
    if (strcmp(m, "x86_64") == 0)
        return "amd64";
    if (strcmp(m, "aarch64") == 0 || strcmp(m, "arm64") == 0)
        return "arm64";
    if (strncmp(m, "armv7", 5) == 0) {
        *variant = "v7";
        return "arm";
    }
    if (strncmp(m, "armv6", 5) == 0) {
        *variant = "v6";
        return "arm";
    }
    if (strcmp(m, "i686") == 0 || strcmp(m, "i386") == 0)
        return "386";
    if (strcmp(m, "ppc64le") == 0 || strcmp(m, "s390x") == 0 || strcmp(m, "riscv64") == 0)
        return m;
    return m;
}

static int set_platform_args(struct build_args *ba, const char *prefix, const char *platform,
                             berth_error_t *err)
{
    cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
    if (platform && platform[0]) {
        const char *s1 = strchr(platform, '/');
        if (!s1 || s1 == platform || s1[1] == '\0' || s1[1] == '/')
            return berth_error_make_status(
                err, EINVAL, "invalid platform \"%s\": want os/arch[/variant]", platform);
        const char *s2 = strchr(s1 + 1, '/');
        if (s2 && (s2[1] == '\0' || strchr(s2 + 1, '/')))
            return berth_error_make_status(
                err, EINVAL, "invalid platform \"%s\": want os/arch[/variant]", platform);
        os = xstrndup(platform, (size_t)(s1 - platform));
        arch = s2 ? xstrndup(s1 + 1, (size_t)(s2 - s1 - 1)) : xstrdup(s1 + 1);
        variant = xstrdup(s2 ? s2 + 1 : "");
    } else {
        const char *v;
        os = xstrdup("linux");
        arch = xstrdup(host_arch(&v));
        variant = xstrdup(v);
    }
    cleanup_free char *plat =
        variant[0] ? xasprintf("%s/%s/%s", os, arch, variant) : xasprintf("%s/%s", os, arch);
    cleanup_free char *k1 = xasprintf("%sPLATFORM", prefix);
    cleanup_free char *k2 = xasprintf("%sOS", prefix);
    cleanup_free char *k3 = xasprintf("%sARCH", prefix);
    cleanup_free char *k4 = xasprintf("%sVARIANT", prefix);
    expand_env_set(&ba->automatic, k1, plat);
    expand_env_set(&ba->automatic, k2, os);
    expand_env_set(&ba->automatic, k3, arch);
    expand_env_set(&ba->automatic, k4, variant);
    return 0;
}

int build_args_new(const char *const *cli_args, const char *target_platform,
                   const char *build_platform, struct build_args **out, berth_error_t *err)
{
    cleanup_build_args struct build_args *ba = xzalloc(sizeof(*ba));
    ba->escape = '\\';
    for (size_t i = 0; cli_args && cli_args[i]; i++) {
        const char *a = cli_args[i];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen == 0)
            return berth_error_make_status(err, EINVAL, "invalid --build-arg \"%s\": empty name",
                                           a);
        cleanup_free char *name = xstrndup(a, nlen);
        /* "--build-arg NAME" takes the value from the environment, if there is one */
        expand_env_set(&ba->cli, name, eq ? eq + 1 : getenv(name));
    }
    ba->cli_used = xcalloc(ba->cli.n + 1, sizeof(bool));
    if (set_platform_args(ba, "BUILD", build_platform, err) < 0)
        return -1;
    if (set_platform_args(ba, "TARGET", target_platform ? target_platform : build_platform, err) <
        0)
        return -1;
    expand_env_copy(&ba->global, &ba->automatic);
    *out = steal_pointer(&ba);
    return 0;
}

void build_args_free(struct build_args *ba)
{
    if (!ba)
        return;
    expand_env_clear(&ba->cli);
    expand_env_clear(&ba->automatic);
    expand_env_clear(&ba->global);
    free(ba->cli_used);
    free(ba);
}

const char *build_args_cli(struct build_args *ba, const char *name, bool *given)
{
    long i = expand_env_find(&ba->cli, name);
    if (i < 0 || !ba->cli.values[i]) {
        if (given)
            *given = false;
        if (i >= 0)
            ba->cli_used[i] = true;
        return NULL;
    }
    ba->cli_used[i] = true;
    if (given)
        *given = true;
    return ba->cli.values[i];
}

int build_args_declare_global(struct build_args *ba, const char *name, const char *raw_default,
                              berth_error_t *err)
{
    bool given;
    const char *cli = build_args_cli(ba, name, &given);
    if (given) {
        expand_env_set(&ba->global, name, cli);
        return 0;
    }
    if (!raw_default) {
        /* Declared without default: keeps an automatic value, else declared but unset. */
        if (expand_env_find(&ba->global, name) < 0)
            expand_env_set(&ba->global, name, NULL);
        return 0;
    }
    cleanup_free char *v = NULL;
    if (expand_word(raw_default, ba->escape, expand_env_lookup, &ba->global, &v, err) < 0)
        return -1;
    expand_env_set(&ba->global, name, v);
    return 0;
}

int build_args_expand_global(struct build_args *ba, const char *word, char **out,
                             berth_error_t *err)
{
    return expand_word(word, ba->escape, expand_env_lookup, &ba->global, out, err);
}

char **build_args_unused(const struct build_args *ba)
{
    char **s = NULL;
    for (size_t i = 0; i < ba->cli.n; i++)
        if (!ba->cli_used[i] && !build_arg_is_predefined(ba->cli.names[i]))
            strv_add_take(&s, xstrdup(ba->cli.names[i]));
    return strv_or_empty(s);
}

/* ---- stage scope ---- */

void stage_env_init(struct stage_env *se, struct build_args *ba, const char *const *base_env,
                    size_t nbase)
{
    memset(se, 0, sizeof(*se));
    se->ba = ba;
    expand_env_load(&se->env, base_env, nbase);
}

void stage_env_clear(struct stage_env *se)
{
    expand_env_clear(&se->env);
    expand_env_clear(&se->args);
}

const char *stage_env_lookup(void *p, const char *name)
{
    struct stage_env *se = p;
    bool declared;
    const char *v = expand_env_get(&se->env, name, &declared);
    if (declared)
        return v;
    return expand_env_get(&se->args, name, NULL);
}

static char stage_escape(const struct stage_env *se)
{
    return se->ba && se->ba->escape ? se->ba->escape : '\\';
}

int stage_env_declare_arg(struct stage_env *se, const char *name, const char *raw_default,
                          berth_error_t *err)
{
    bool given = false;
    const char *cli = se->ba ? build_args_cli(se->ba, name, &given) : NULL;
    if (given) {
        expand_env_set(&se->args, name, cli);
        return 0;
    }
    if (raw_default) {
        cleanup_free char *v = NULL;
        if (expand_word(raw_default, stage_escape(se), stage_env_lookup, se, &v, err) < 0)
            return -1;
        expand_env_set(&se->args, name, v);
        return 0;
    }
    const char *g = se->ba ? expand_env_get(&se->ba->global, name, NULL) : NULL;
    expand_env_set(&se->args, name, g);
    return 0;
}

void stage_env_set_env(struct stage_env *se, const char *name, const char *value)
{
    expand_env_set(&se->env, name, value ? value : "");
}

int stage_env_expand_word(struct stage_env *se, const char *word, char **out, berth_error_t *err)
{
    return expand_word(word, stage_escape(se), stage_env_lookup, se, out, err);
}

int stage_env_expand_words(struct stage_env *se, const char *word, char ***out, size_t *n,
                           berth_error_t *err)
{
    return expand_words(word, stage_escape(se), stage_env_lookup, se, out, n, err);
}

/* the stage's ARGs that have a value and no ENV of the same name, as "K=V" */
static void add_args_not_in_env(const struct stage_env *se, char ***s)
{
    for (size_t i = 0; i < se->args.n; i++)
        if (se->args.values[i] && expand_env_find(&se->env, se->args.names[i]) < 0)
            strv_add_take(s, xasprintf("%s=%s", se->args.names[i], se->args.values[i]));
}

char **stage_env_run_env(const struct stage_env *se)
{
    char **s = NULL;
    for (size_t i = 0; i < se->env.n; i++)
        if (se->env.values[i])
            strv_add_take(&s, xasprintf("%s=%s", se->env.names[i], se->env.values[i]));
    add_args_not_in_env(se, &s);
    if (se->ba) {
        for (size_t i = 0; i < se->ba->cli.n; i++) {
            const char *n = se->ba->cli.names[i];
            if (se->ba->cli.values[i] && build_arg_is_predefined(n) &&
                expand_env_find(&se->env, n) < 0 && expand_env_find(&se->args, n) < 0)
                strv_add_take(&s, xasprintf("%s=%s", n, se->ba->cli.values[i]));
        }
    }
    return strv_or_empty(s);
}

char **stage_env_history_args(const struct stage_env *se)
{
    char **s = NULL;
    add_args_not_in_env(se, &s);
    return strv_or_empty(s);
}

/* ---- whole instructions ---- */

/* Splits "name=value" (value NULL without '='); *name is malloc'd. */
static const char *split_arg_word(const char *word, char **name)
{
    const char *eq = strchr(word, '=');
    *name = eq ? xstrndup(word, (size_t)(eq - word)) : xstrdup(word);
    return eq ? eq + 1 : NULL;
}

int build_args_apply_global(struct build_args *ba, const struct cf_instruction *arg,
                            berth_error_t *err)
{
    if (arg->escape)
        ba->escape = arg->escape;
    for (size_t i = 0; i < arg->nargs; i++) {
        cleanup_free char *name = NULL;
        const char *def = split_arg_word(arg->args[i], &name);
        if (name[0] == '\0')
            return berth_error_make_status(err, EINVAL, "line %d: ARG names can not be blank",
                                           arg->start_line);
        if (build_args_declare_global(ba, name, def, err) < 0)
            return berth_error_wrap(err, "line %d: ARG %s", arg->start_line, name);
    }
    return 0;
}

int stage_env_apply_arg(struct stage_env *se, const struct cf_instruction *arg, berth_error_t *err)
{
    if (se->ba && arg->escape)
        se->ba->escape = arg->escape;
    for (size_t i = 0; i < arg->nargs; i++) {
        cleanup_free char *name = NULL;
        const char *def = split_arg_word(arg->args[i], &name);
        if (name[0] == '\0')
            return berth_error_make_status(err, EINVAL, "line %d: ARG names can not be blank",
                                           arg->start_line);
        if (stage_env_declare_arg(se, name, def, err) < 0)
            return berth_error_wrap(err, "line %d: ARG %s", arg->start_line, name);
    }
    return 0;
}

int stage_env_apply_env(struct stage_env *se, const struct cf_instruction *env, berth_error_t *err)
{
    cleanup_cf_instruction struct cf_instruction *x = NULL;
    if (stage_env_expand_instruction(se, env, &x, err) < 0)
        return -1;
    for (size_t i = 0; i + 1 < x->nargs; i += 2) {
        if (x->args[i][0] == '\0')
            return berth_error_make_status(err, EINVAL, "line %d: ENV names can not be blank",
                                           env->start_line);
        stage_env_set_env(se, x->args[i], x->args[i + 1]);
    }
    return 0;
}

static int expand_in_place(struct stage_env *se, char **s, berth_error_t *err)
{
    char *v = NULL;
    if (stage_env_expand_word(se, *s, &v, err) < 0)
        return -1;
    free(*s);
    *s = v;
    return 0;
}

static int expand_field(void *ud, const char *in, char **out, berth_error_t *err)
{
    return stage_env_expand_word(ud, in, out, err);
}

static bool is_heredoc_word(const char *w)
{
    while (*w >= '0' && *w <= '9')
        w++;
    if (w[0] != '<' || w[1] != '<')
        return false;
    w += 2;
    if (*w == '-')
        w++;
    while (*w == ' ' || *w == '\t')
        w++;
    return *w && !strchr(w, '<');
}

int stage_env_expand_instruction(struct stage_env *se, const struct cf_instruction *in,
                                 struct cf_instruction **out, berth_error_t *err)
{
    if (se->ba && in->escape)
        se->ba->escape = in->escape;
    cleanup_cf_instruction struct cf_instruction *x = cf_instruction_dup(in);
    const char *kw = x->keyword;
    int line = in->start_line;
    if (strcmp(kw, "FROM") == 0) {
        if (se->ba && x->nargs > 0) {
            char *v = NULL;
            if (build_args_expand_global(se->ba, x->args[0], &v, err) < 0)
                goto fail;
            free(x->args[0]);
            x->args[0] = v;
        }
        goto done;
    }
    if (strcmp(kw, "EXPOSE") == 0) {
        char **all = xcalloc(1, sizeof(char *));
        size_t nall = 0;
        for (size_t i = 0; i < x->nargs; i++) {
            char **w = NULL;
            size_t n = 0;
            if (stage_env_expand_words(se, x->args[i], &w, &n, err) < 0) {
                strv_free(all);
                goto fail;
            }
            /* one realloc per argument: a line may hold millions of words */
            all = xreallocarray(all, nall + n + 1, sizeof(char *));
            memcpy(all + nall, w, n * sizeof(char *));
            nall += n;
            all[nall] = NULL;
            free(w);
        }
        for (size_t i = 0; i < x->nargs; i++)
            free(x->args[i]);
        free(x->args);
        x->args = all;
        x->nargs = nall;
        goto done;
    }
    if (strcmp(kw, "ENV") == 0 || strcmp(kw, "LABEL") == 0 || strcmp(kw, "USER") == 0 ||
        strcmp(kw, "WORKDIR") == 0 || strcmp(kw, "STOPSIGNAL") == 0 || strcmp(kw, "VOLUME") == 0) {
        for (size_t i = 0; i < x->nargs; i++)
            if (expand_in_place(se, &x->args[i], err) < 0)
                goto fail;
        goto done;
    }
    if (strcmp(kw, "ADD") == 0 || strcmp(kw, "COPY") == 0) {
        for (size_t i = 0; i < x->nargs; i++) {
            if (!x->json_form && i + 1 < x->nargs && is_heredoc_word(x->args[i]))
                continue;
            if (expand_in_place(se, &x->args[i], err) < 0)
                goto fail;
        }
        for (size_t i = 0; i < x->nflags; i++) {
            const char *n = x->flags[i].name;
            if (strcmp(n, "chown") == 0 || strcmp(n, "chmod") == 0 || strcmp(n, "from") == 0 ||
                strcmp(n, "checksum") == 0 || strcmp(n, "exclude") == 0)
                if (expand_in_place(se, &x->flags[i].value, err) < 0)
                    goto fail;
        }
        for (size_t i = 0; i < x->nheredocs; i++) {
            struct cf_heredoc *h = &x->heredocs[i];
            char *body = cf_heredoc_body(h);
            if (h->expand) {
                char *v = NULL;
                int r = expand_heredoc(body, stage_env_lookup, se, &v, err);
                free(body);
                if (r < 0)
                    goto fail;
                body = v;
            }
            free(h->content);
            h->content = body;
            h->chomp = false;
            h->expand = false;
        }
        goto done;
    }
    if (strcmp(kw, "RUN") == 0) {
        for (size_t i = 0; i < x->nflags; i++) {
            if (strcmp(x->flags[i].name, "mount") != 0)
                continue;
            char *v = NULL;
            if (cf_mount_map_values(x->flags[i].value, expand_field, se, &v, err) < 0)
                goto fail;
            free(x->flags[i].value);
            x->flags[i].value = v;
        }
        goto done;
    }
done:
    if (strcmp(kw, "FROM") == 0 && se->ba) {
        for (size_t i = 0; i < x->nflags; i++)
            if (strcmp(x->flags[i].name, "platform") == 0) {
                char *v = NULL;
                if (build_args_expand_global(se->ba, x->flags[i].value, &v, err) < 0)
                    goto fail;
                free(x->flags[i].value);
                x->flags[i].value = v;
            }
    }
    *out = steal_pointer(&x);
    return 0;
fail:
    return berth_error_wrap(err, "line %d: %s", line, kw);
}
