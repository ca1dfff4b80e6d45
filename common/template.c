/* Go text/template over jansson values (see template.h).  Lexing makes one token array for the
 * whole template; a recursive-descent parser builds a small tree; execution walks it with a
 * variable stack, a step budget and an output limit. */
#include "common/template.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/strutil.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ tokens */

enum tok {
    T_EOF,
    T_TEXT,
    T_LEFT,
    T_RIGHT,
    T_PIPE,
    T_LPAREN,
    T_RPAREN,
    T_DECLARE,
    T_ASSIGN,
    T_COMMA,
    T_STRING,
    T_CHAR,
    T_NUMBER,
    T_BOOL,
    T_NIL,
    T_DOT,
    T_FIELD,
    T_VAR,
    T_IDENT,
    T_KEYWORD,
};

struct token {
    enum tok type;
    size_t pos, len; /* in the source text */
    bool space_before;
    char *val; /* decoded string / name; owned */
    size_t val_len;
};

struct lexer {
    const char *src;
    size_t len, pos;
    struct token *toks;
    size_t n, cap;
    const int *posmap; /* byte offset in src -> offset in the user's text (NULL: identity) */
    const char *user_text;
    berth_error_t *err;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum_(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (unsigned char)c >= 0x80;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* line:col (1-based) of offset pos of the text the user wrote */
static void location(const char *text, const int *posmap, size_t pos, int *line, int *col)
{
    size_t p = posmap ? (size_t)posmap[pos] : pos;
    int l = 1;
    size_t start = 0;
    for (size_t i = 0; i < p; i++)
        if (text[i] == '\n') {
            l++;
            start = i + 1;
        }
    *line = l;
    *col = (int)(p - start) + 1;
}

static int errat(berth_error_t *err, const char *text, const int *posmap, size_t pos,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int errat(berth_error_t *err, const char *text, const int *posmap, size_t pos,
                 const char *fmt, ...)
{
    int line, col;
    location(text, posmap, pos, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    berth_error_make_status(err, EINVAL, "template: %d:%d: %s", line, col, m);
    free(m);
    return -1;
}

static struct token *push(struct lexer *lx, enum tok t, size_t pos, size_t len, bool sp)
{
    if (lx->n == lx->cap) {
        lx->cap = lx->cap ? lx->cap * 2 : 32;
        lx->toks = xrealloc(lx->toks, lx->cap * sizeof(*lx->toks));
    }
    struct token *k = &lx->toks[lx->n++];
    *k = (struct token){.type = t, .pos = pos, .len = len, .space_before = sp};
    return k;
}

static void utf8_put(struct strbuf *b, uint32_t c)
{
    char o[4];
    if (c < 0x80) {
        strbuf_putc(b, (char)c);
        return;
    }
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        c = 0xFFFD;
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        strbuf_append_len(b, o, 2);
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        strbuf_append_len(b, o, 3);
    } else {
        o[0] = (char)(0xF0 | (c >> 18));
        o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[3] = (char)(0x80 | (c & 0x3F));
        strbuf_append_len(b, o, 4);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a Go quoted string or char literal body s[0..n) (without quotes). */
static int unquote(const char *s, size_t n, char quote, struct strbuf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            strbuf_putc(b, s[i]);
            continue;
        }
        if (++i >= n)
            return -1;
        char c = s[i];
        switch (c) {
        case 'a':
            strbuf_putc(b, '\a');
            break;
        case 'b':
            strbuf_putc(b, '\b');
            break;
        case 'f':
            strbuf_putc(b, '\f');
            break;
        case 'n':
            strbuf_putc(b, '\n');
            break;
        case 'r':
            strbuf_putc(b, '\r');
            break;
        case 't':
            strbuf_putc(b, '\t');
            break;
        case 'v':
            strbuf_putc(b, '\v');
            break;
        case '\\':
            strbuf_putc(b, '\\');
            break;
        case '"':
        case '\'':
            if (c != quote)
                return -1;
            strbuf_putc(b, c);
            break;
        case 'x':
        case 'u':
        case 'U': {
            size_t k = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (size_t j = 1; j <= k; j++) {
                if (i + j >= n)
                    return -1;
                int h = hexval(s[i + j]);
                if (h < 0)
                    return -1;
                v = v * 16 + (uint32_t)h;
            }
            i += k;
            if (c == 'x')
                strbuf_putc(b, (char)v);
            else
                utf8_put(b, v);
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = 0;
                for (size_t j = 0; j < 3; j++) {
                    if (i + j >= n || s[i + j] < '0' || s[i + j] > '7')
                        return -1;
                    v = v * 8 + (uint32_t)(s[i + j] - '0');
                }
                if (v > 255)
                    return -1;
                i += 2;
                strbuf_putc(b, (char)v);
                break;
            }
            return -1;
        }
    }
    return 0;
}

static const char *const keywords[] = {"if",       "else",  "end",    "range", "with",
                                       "template", "block", "define", "break", "continue"};

static int lex_error(struct lexer *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lex_error(struct lexer *lx, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    errat(lx->err, lx->user_text, lx->posmap, pos, "%s", m);
    free(m);
    return -1;
}

/* Lexes one action starting after "{{" (and its trim marker) at lx->pos; stops after "}}". */
static int lex_action(struct lexer *lx, bool *trim_after)
{
    const char *s = lx->src;
    size_t n = lx->len;
    int paren = 0;
    bool sp = false;
    for (;;) {
        size_t p = lx->pos;
        if (p >= n)
            return lex_error(lx, p, "unclosed action");
        if (p + 4 <= n && is_space(s[p]) && s[p + 1] == '-' && s[p + 2] == '}' && s[p + 3] == '}') {
            push(lx, T_RIGHT, p, 4, true);
            lx->pos = p + 4;
            *trim_after = true;
            return paren ? lex_error(lx, p, "unclosed left paren") : 0;
        }
        if (p + 2 <= n && s[p] == '}' && s[p + 1] == '}') {
            push(lx, T_RIGHT, p, 2, sp);
            lx->pos = p + 2;
            *trim_after = false;
            return paren ? lex_error(lx, p, "unclosed left paren") : 0;
        }
        char c = s[p];
        if (is_space(c)) {
            while (lx->pos < n && is_space(s[lx->pos]) &&
                   !(lx->pos + 4 <= n && s[lx->pos + 1] == '-' && s[lx->pos + 2] == '}' &&
                     s[lx->pos + 3] == '}'))
                lx->pos++;
            if (lx->pos == p) /* a " -}}" follows */
                continue;
            sp = true;
            continue;
        }
        struct token *t;
        switch (c) {
        case '|':
            push(lx, T_PIPE, p, 1, sp);
            lx->pos++;
            break;
        case '(':
            if (++paren > TMPL_MAX_DEPTH)
                return lex_error(lx, p, "parentheses nested too deeply");
            push(lx, T_LPAREN, p, 1, sp);
            lx->pos++;
            break;
        case ')':
            if (--paren < 0)
                return lex_error(lx, p, "unexpected right paren");
            push(lx, T_RPAREN, p, 1, sp);
            lx->pos++;
            break;
        case ',':
            push(lx, T_COMMA, p, 1, sp);
            lx->pos++;
            break;
        case '=':
            push(lx, T_ASSIGN, p, 1, sp);
            lx->pos++;
            break;
        case ':':
            if (p + 1 >= n || s[p + 1] != '=')
                return lex_error(lx, p, "expected :=");
            push(lx, T_DECLARE, p, 2, sp);
            lx->pos += 2;
            break;
        case '"':
        case '`':
        case '\'': {
            size_t i = p + 1;
            while (i < n && s[i] != c) {
                if (c != '`' && s[i] == '\\')
                    i++;
                else if (c != '`' && s[i] == '\n')
                    break;
                i++;
            }
            if (i >= n || s[i] != c)
                return lex_error(lx, p,
                                 c == '"'   ? "unterminated quoted string"
                                 : c == '`' ? "unterminated raw quoted string"
                                            : "unterminated character constant");
            struct strbuf b = STRBUF_INIT;
            if (c == '`') {
                strbuf_append_len(&b, s + p + 1, i - p - 1);
            } else if (unquote(s + p + 1, i - p - 1, c, &b) < 0) {
                strbuf_release(&b);
                return lex_error(lx, p, "invalid syntax: %.*s", (int)(i - p + 1), s + p);
            }
            size_t bl = b.len;
            t = push(lx, c == '\'' ? T_CHAR : T_STRING, p, i + 1 - p, sp);
            t->val = strbuf_steal(&b);
            t->val_len = bl;
            lx->pos = i + 1;
            break;
        }
        case '$': {
            size_t i = p + 1;
            while (i < n && is_alnum_(s[i]))
                i++;
            t = push(lx, T_VAR, p, i - p, sp);
            t->val = xstrndup(s + p, i - p);
            lx->pos = i;
            break;
        }
        case '.':
            if (p + 1 < n && is_digit(s[p + 1]))
                goto number;
            if (p + 1 < n && is_alnum_(s[p + 1])) {
                size_t i = p + 1;
                while (i < n && is_alnum_(s[i]))
                    i++;
                t = push(lx, T_FIELD, p, i - p, sp);
                t->val = xstrndup(s + p + 1, i - p - 1);
                lx->pos = i;
            } else {
                push(lx, T_DOT, p, 1, sp);
                lx->pos++;
            }
            break;
        default:
            if (is_digit(c) ||
                ((c == '-' || c == '+') && p + 1 < n && (is_digit(s[p + 1]) || s[p + 1] == '.'))) {
            number:;
                size_t i = p + 1;
                while (i < n &&
                       (is_alnum_(s[i]) || s[i] == '.' ||
                        ((s[i] == '-' || s[i] == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E' ||
                                                          s[i - 1] == 'p' || s[i - 1] == 'P'))))
                    i++;
                t = push(lx, T_NUMBER, p, i - p, sp);
                t->val = xstrndup(s + p, i - p);
                lx->pos = i;
                break;
            }
            if (is_alnum_(c)) {
                size_t i = p;
                while (i < n && is_alnum_(s[i]))
                    i++;
                enum tok ty = T_IDENT;
                size_t l = i - p;
                for (size_t k = 0; k < sizeof(keywords) / sizeof(*keywords); k++)
                    if (strlen(keywords[k]) == l && memcmp(keywords[k], s + p, l) == 0)
                        ty = T_KEYWORD;
                if ((l == 4 && memcmp(s + p, "true", 4) == 0) ||
                    (l == 5 && memcmp(s + p, "false", 5) == 0))
                    ty = T_BOOL;
                if (l == 3 && memcmp(s + p, "nil", 3) == 0)
                    ty = T_NIL;
                t = push(lx, ty, p, l, sp);
                t->val = xstrndup(s + p, l);
                lx->pos = i;
                break;
            }
            {
                unsigned char u = (unsigned char)c;
                if (u < 0x80)
                    return lex_error(lx, p, "bad character U+%04X '%c'", u, c);
                return lex_error(lx, p, "bad character in action");
            }
        }
        sp = false;
    }
}

static int lex_all(struct lexer *lx)
{
    const char *s = lx->src;
    size_t n = lx->len;
    bool trim_next = false;
    while (lx->pos < n) {
        const char *lb = NULL;
        for (size_t i = lx->pos; i + 1 < n; i++)
            if (s[i] == '{' && s[i + 1] == '{') {
                lb = s + i;
                break;
            }
        size_t tstart = lx->pos, tend = lb ? (size_t)(lb - s) : n;
        if (trim_next)
            while (tstart < tend && is_space(s[tstart]))
                tstart++;
        if (!lb) {
            if (tend > tstart)
                push(lx, T_TEXT, tstart, tend - tstart, false);
            lx->pos = n;
            break;
        }
        size_t a = tend + 2;
        bool trim_before = a + 1 < n && s[a] == '-' && is_space(s[a + 1]);
        if (trim_before)
            while (tend > tstart && is_space(s[tend - 1]))
                tend--;
        if (tend > tstart)
            push(lx, T_TEXT, tstart, tend - tstart, false);
        if (trim_before)
            a += 2;
        /* comment */
        size_t c = a;
        if (c + 1 < n && s[c] == '/' && s[c + 1] == '*') {
            const char *e = NULL;
            for (size_t i = c + 2; i + 1 < n; i++)
                if (s[i] == '*' && s[i + 1] == '/') {
                    e = s + i;
                    break;
                }
            if (!e)
                return lex_error(lx, tend, "unclosed comment");
            size_t q = (size_t)(e - s) + 2;
            if (q + 4 <= n && is_space(s[q]) && s[q + 1] == '-' && s[q + 2] == '}' &&
                s[q + 3] == '}') {
                trim_next = true;
                lx->pos = q + 4;
            } else if (q + 2 <= n && s[q] == '}' && s[q + 1] == '}') {
                trim_next = false;
                lx->pos = q + 2;
            } else {
                return lex_error(lx, tend, "comment ends before closing delimiter");
            }
            continue;
        }
        push(lx, T_LEFT, tend, a - tend, false);
        lx->pos = a;
        if (lex_action(lx, &trim_next) < 0)
            return -1;
    }
    push(lx, T_EOF, n, 0, false);
    return 0;
}

/* ------------------------------------------------------------------ tree */

enum nkind {
    N_LIST,
    N_TEXT,
    N_ACTION,
    N_IF,
    N_RANGE,
    N_WITH,
    N_BREAK,
    N_CONTINUE,
    N_PIPE,
    N_CMD,
    N_FIELD, /* .A.B: names */
    N_VAR,   /* $x.A.B: names[0] = "$x" */
    N_CHAIN, /* (pipe).A.B: kids[0], names */
    N_IDENT, /* function name */
    N_DOT,
    N_NIL,
    N_BOOL,
    N_NUMBER,
    N_STRING,
};

struct node {
    enum nkind kind;
    size_t pos, end;    /* source span [pos, end) for error context; end 0 when unknown */
    struct node **kids; /* list items, pipeline commands, command args, chain operand */
    size_t nkids;
    char **names; /* field chain; for N_VAR names[0] is the variable */
    size_t nnames;
    char *text; /* N_TEXT, N_STRING, N_IDENT, N_NUMBER (source) */
    size_t text_len;
    /* N_PIPE */
    char *decl[2];
    int ndecl;
    bool assign;
    /* control */
    struct node *pipe, *list, *else_list;
    /* literals */
    bool b;
    bool is_int;
    long long ival;
    double fval;
};

struct tmpl {
    struct node *root;
    char *text; /* the user's text, for error positions */
    int *posmap;
};

static struct node *node_new(enum nkind k, size_t pos)
{
    struct node *n = xcalloc(1, sizeof(*n));
    n->kind = k;
    n->pos = pos;
    return n;
}

static void node_add(struct node *n, struct node *kid)
{
    n->kids = xrealloc(n->kids, (n->nkids + 1) * sizeof(*n->kids));
    n->kids[n->nkids++] = kid;
}

static void node_add_name(struct node *n, const char *name)
{
    n->names = xrealloc(n->names, (n->nnames + 1) * sizeof(*n->names));
    n->names[n->nnames++] = xstrdup(name);
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    for (size_t i = 0; i < n->nnames; i++)
        free(n->names[i]);
    free(n->names);
    free(n->text);
    free(n->decl[0]);
    free(n->decl[1]);
    node_free(n->pipe);
    node_free(n->list);
    node_free(n->else_list);
    free(n);
}

/* ------------------------------------------------------------------ functions (names) */

struct exec;
typedef int (*tfunc)(struct exec *s, const struct node *at, json_t **argv, size_t argc,
                     json_t **out);

struct func {
    const char *name;
    tfunc fn;
};
static const struct func *find_func(const char *name);

/* ------------------------------------------------------------------ parser */

struct parser {
    struct token *t;
    size_t i, n;
    const char *src;
    const char *user_text;
    const int *posmap;
    berth_error_t *err;
    char **vars;
    size_t nvars;
    int depth;
    int range_depth;
};

static struct token *peek(struct parser *p)
{
    return &p->t[p->i];
}

static struct token *next(struct parser *p)
{
    struct token *t = &p->t[p->i];
    if (t->type != T_EOF)
        p->i++;
    return t;
}

static int perr(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct parser *p, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    errat(p->err, p->user_text, p->posmap, pos, "%s", m);
    free(m);
    return -1;
}

static const char *tok_desc(struct parser *p, const struct token *t, char *buf, size_t len)
{
    switch (t->type) {
    case T_EOF:
        return "EOF";
    case T_RIGHT:
        return "}}";
    case T_LEFT:
        return "{{";
    default:
        snprintf(buf, len, "%s%.*s%s", t->type == T_STRING ? "" : "\"", (int)t->len,
                 p->src + t->pos, t->type == T_STRING ? "" : "\"");
        return buf;
    }
}

static int unexpected(struct parser *p, const struct token *t, const char *ctx)
{
    char buf[128];
    if (t->type == T_EOF)
        return perr(p, t->pos, "unexpected EOF");
    return perr(p, t->pos, "unexpected %s in %s", tok_desc(p, t, buf, sizeof(buf)), ctx);
}

static bool var_known(struct parser *p, const char *name)
{
    if (strcmp(name, "$") == 0)
        return true;
    for (size_t i = p->nvars; i > 0; i--)
        if (strcmp(p->vars[i - 1], name) == 0)
            return true;
    return false;
}

static void var_push(struct parser *p, const char *name)
{
    p->vars = xrealloc(p->vars, (p->nvars + 1) * sizeof(*p->vars));
    p->vars[p->nvars++] = xstrdup(name);
}

static void vars_pop(struct parser *p, size_t mark)
{
    while (p->nvars > mark)
        free(p->vars[--p->nvars]);
}

static int parse_pipeline(struct parser *p, bool decl_ok, bool range, enum tok end,
                          struct node **out);

static int parse_number(struct parser *p, const struct token *t, struct node *n)
{
    const char *s = t->val;
    char *clean = xstrdup(s);
    size_t w = 0;
    for (size_t r = 0; clean[r]; r++)
        if (clean[r] != '_')
            clean[w++] = clean[r];
    clean[w] = '\0';
    n->text = xstrdup(s);
    errno = 0;
    char *end;
    const char *d = clean;
    bool neg = false;
    if (*d == '+' || *d == '-') {
        neg = *d == '-';
        d++;
    }
    int base = 10;
    const char *digits = d;
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
        base = 16;
        digits = d + 2;
    } else if (d[0] == '0' && (d[1] == 'o' || d[1] == 'O')) {
        base = 8;
        digits = d + 2;
    } else if (d[0] == '0' && (d[1] == 'b' || d[1] == 'B')) {
        base = 2;
        digits = d + 2;
    } else if (d[0] == '0' && d[1] && is_digit(d[1])) {
        base = 8;
        digits = d + 1;
    }
    unsigned long long u = strtoull(digits, &end, base);
    if (*digits && *end == '\0' && errno == 0 && u <= (unsigned long long)INT64_MAX + neg) {
        n->is_int = true;
        n->ival = neg ? (long long)(0 - u) : (long long)u;
        free(clean);
        return 0;
    }
    errno = 0;
    double f = strtod(clean, &end);
    bool ok = *end == '\0' && errno == 0 && base != 2;
    free(clean);
    if (!ok)
        return perr(p, t->pos, "illegal number syntax: \"%s\"", s);
    n->fval = f;
    return 0;
}

/* term: literal, function, dot, field, variable or (pipeline) */
static int parse_term(struct parser *p, struct node **out)
{
    struct token *t = peek(p);
    struct node *n = NULL;
    switch (t->type) {
    case T_IDENT:
        next(p);
        if (!find_func(t->val))
            return perr(p, t->pos, "function \"%s\" not defined", t->val);
        n = node_new(N_IDENT, t->pos);
        n->text = xstrdup(t->val);
        break;
    case T_DOT:
        next(p);
        n = node_new(N_DOT, t->pos);
        break;
    case T_NIL:
        next(p);
        n = node_new(N_NIL, t->pos);
        break;
    case T_BOOL:
        next(p);
        n = node_new(N_BOOL, t->pos);
        n->b = strcmp(t->val, "true") == 0;
        break;
    case T_VAR:
        next(p);
        if (!var_known(p, t->val))
            return perr(p, t->pos, "undefined variable \"%s\"", t->val);
        n = node_new(N_VAR, t->pos);
        node_add_name(n, t->val);
        break;
    case T_FIELD:
        next(p);
        n = node_new(N_FIELD, t->pos);
        node_add_name(n, t->val);
        break;
    case T_CHAR: {
        next(p);
        /* a character constant is the integer of its rune */
        const unsigned char *c = (const unsigned char *)t->val;
        uint32_t r = c[0];
        size_t l = 1;
        if (r >= 0xF0 && t->val_len >= 4) {
            r = ((r & 7u) << 18) | ((c[1] & 0x3Fu) << 12) | ((c[2] & 0x3Fu) << 6) | (c[3] & 0x3Fu);
            l = 4;
        } else if (r >= 0xE0 && t->val_len >= 3) {
            r = ((r & 15u) << 12) | ((c[1] & 0x3Fu) << 6) | (c[2] & 0x3Fu);
            l = 3;
        } else if (r >= 0xC0 && t->val_len >= 2) {
            r = ((r & 31u) << 6) | (c[1] & 0x3Fu);
            l = 2;
        }
        if (t->val_len != l)
            return perr(p, t->pos, "malformed character constant: %.*s", (int)t->len,
                        p->src + t->pos);
        n = node_new(N_NUMBER, t->pos);
        n->is_int = true;
        n->ival = r;
        n->text = xstrndup(p->src + t->pos, t->len);
        break;
    }
    case T_NUMBER:
        next(p);
        n = node_new(N_NUMBER, t->pos);
        if (parse_number(p, t, n) < 0) {
            node_free(n);
            return -1;
        }
        break;
    case T_STRING:
        next(p);
        n = node_new(N_STRING, t->pos);
        n->text = xmalloc(t->val_len + 1);
        memcpy(n->text, t->val, t->val_len + 1);
        n->text_len = t->val_len;
        break;
    case T_LPAREN: {
        next(p);
        if (++p->depth > TMPL_MAX_DEPTH)
            return perr(p, t->pos, "nesting too deep (more than %d levels)", TMPL_MAX_DEPTH);
        struct node *pipe = NULL;
        if (parse_pipeline(p, false, false, T_RPAREN, &pipe) < 0)
            return -1;
        p->depth--;
        n = node_new(N_CHAIN, t->pos);
        node_add(n, pipe);
        break;
    }
    default:
        *out = NULL;
        return 0;
    }
    /* the span ends after the last token read (")" for a parenthesised pipeline) */
    n->end = p->t[p->i - 1].pos + p->t[p->i - 1].len;
    *out = n;
    return 0;
}

/* operand: term followed by .Field chain */
static int parse_operand(struct parser *p, struct node **out)
{
    struct node *n = NULL;
    if (parse_term(p, &n) < 0)
        return -1;
    if (!n) {
        *out = NULL;
        return 0;
    }
    while (peek(p)->type == T_FIELD && !peek(p)->space_before) {
        struct token *f = next(p);
        size_t fend = f->pos + f->len;
        switch (n->kind) {
        case N_FIELD:
        case N_VAR:
        case N_CHAIN:
            node_add_name(n, f->val);
            n->end = fend;
            break;
        case N_NIL:
        case N_BOOL:
        case N_STRING:
        case N_NUMBER:
        case N_DOT: {
            char buf[128];
            node_free(n);
            return perr(p, f->pos, "unexpected %s in operand", tok_desc(p, f, buf, sizeof(buf)));
        }
        default: {
            /* function result's field: a chain over a one-command pipeline */
            struct node *cmd = node_new(N_CMD, n->pos);
            node_add(cmd, n);
            struct node *pipe = node_new(N_PIPE, n->pos);
            node_add(pipe, cmd);
            n = node_new(N_CHAIN, cmd->pos);
            node_add(n, pipe);
            node_add_name(n, f->val);
            n->end = fend;
        }
        }
    }
    *out = n;
    return 0;
}

static int parse_command(struct parser *p, enum tok end, struct node **out)
{
    struct node *cmd = node_new(N_CMD, peek(p)->pos);
    for (;;) {
        struct node *op = NULL;
        if (parse_operand(p, &op) < 0) {
            node_free(cmd);
            return -1;
        }
        if (op) {
            node_add(cmd, op);
            cmd->end = op->end;
        }
        struct token *t = peek(p);
        if (t->type == end || t->type == T_PIPE)
            break;
        if (!op || !t->space_before) {
            node_free(cmd);
            return unexpected(p, t, "operand");
        }
    }
    if (cmd->nkids == 0) {
        node_free(cmd);
        return perr(p, peek(p)->pos, "empty command");
    }
    *out = cmd;
    return 0;
}

static int parse_pipeline(struct parser *p, bool decl_ok, bool range, enum tok end,
                          struct node **out)
{
    struct node *pipe = node_new(N_PIPE, peek(p)->pos);
    /* declarations: $x := / $x = / $i, $e := */
    if (decl_ok && peek(p)->type == T_VAR) {
        size_t save = p->i;
        struct token *v = next(p);
        struct token *op = peek(p);
        if (op->type == T_DECLARE || op->type == T_ASSIGN) {
            next(p);
            pipe->decl[0] = xstrdup(v->val);
            pipe->ndecl = 1;
            pipe->assign = op->type == T_ASSIGN;
        } else if (op->type == T_COMMA && range) {
            next(p);
            struct token *v2 = next(p);
            struct token *op2 = next(p);
            if (v2->type != T_VAR || (op2->type != T_DECLARE && op2->type != T_ASSIGN)) {
                node_free(pipe);
                return perr(p, v2->pos, "range can only initialize variables");
            }
            pipe->decl[0] = xstrdup(v->val);
            pipe->decl[1] = xstrdup(v2->val);
            pipe->ndecl = 2;
            pipe->assign = op2->type == T_ASSIGN;
        } else if (op->type == T_COMMA) {
            node_free(pipe);
            return perr(p, op->pos, "too many declarations in command");
        } else {
            p->i = save;
        }
        for (int k = 0; k < pipe->ndecl; k++) {
            if (pipe->assign && !var_known(p, pipe->decl[k])) {
                int r = perr(p, v->pos, "undefined variable \"%s\"", pipe->decl[k]);
                node_free(pipe);
                return r;
            }
        }
    }
    for (;;) {
        struct node *cmd = NULL;
        struct token *t = peek(p);
        if (t->type == end) {
            if (pipe->nkids == 0) {
                node_free(pipe);
                return perr(p, t->pos, "missing value for command");
            }
            next(p);
            break;
        }
        if (t->type == T_PIPE) {
            node_free(pipe);
            return unexpected(p, t, "command");
        }
        if (parse_command(p, end, &cmd) < 0) {
            node_free(pipe);
            return -1;
        }
        node_add(pipe, cmd);
        if (pipe->nkids > 1) {
            enum nkind k = cmd->kids[0]->kind;
            if (k == N_BOOL || k == N_DOT || k == N_NIL || k == N_NUMBER || k == N_STRING) {
                int r =
                    perr(p, cmd->pos, "non executable command in pipeline stage %zu", pipe->nkids);
                node_free(pipe);
                return r;
            }
        }
        if (peek(p)->type == T_PIPE)
            next(p); /* Go 1.19 accepts a trailing "|" */
    }
    if (!pipe->assign)
        for (int k = 0; k < pipe->ndecl; k++)
            var_push(p, pipe->decl[k]);
    *out = pipe;
    return 0;
}

enum list_end { END_EOF, END_END, END_ELSE };

static int parse_list(struct parser *p, struct node **out, enum list_end *how, size_t *how_pos);

static int parse_control(struct parser *p, enum nkind kind, const char *kw, size_t pos,
                         struct node **out)
{
    if (++p->depth > TMPL_MAX_DEPTH)
        return perr(p, pos, "nesting too deep (more than %d levels)", TMPL_MAX_DEPTH);
    size_t mark = p->nvars;
    struct node *n = node_new(kind, pos);
    if (peek(p)->type == T_RIGHT) {
        vars_pop(p, mark);
        node_free(n);
        return perr(p, peek(p)->pos, "missing value for %s", kw);
    }
    if (parse_pipeline(p, true, kind == N_RANGE, T_RIGHT, &n->pipe) < 0)
        goto fail;
    if (kind == N_RANGE)
        p->range_depth++;
    enum list_end how;
    size_t hp;
    int r = parse_list(p, &n->list, &how, &hp);
    if (kind == N_RANGE)
        p->range_depth--;
    if (r < 0)
        goto fail;
    if (how == END_EOF) {
        perr(p, hp, "unexpected EOF");
        goto fail;
    }
    if (how == END_ELSE) {
        /* "else if ..." (and else with) nests a control in the else branch */
        struct token *t = peek(p);
        if (t->type == T_KEYWORD && (strcmp(t->val, "if") == 0 || strcmp(t->val, "with") == 0)) {
            next(p);
            struct node *inner = NULL;
            bool isif = strcmp(t->val, "if") == 0;
            if (parse_control(p, isif ? N_IF : N_WITH, t->val, t->pos, &inner) < 0)
                goto fail;
            n->else_list = node_new(N_LIST, t->pos);
            node_add(n->else_list, inner);
        } else {
            if (t->type != T_RIGHT) {
                unexpected(p, t, "else");
                goto fail;
            }
            next(p);
            if (parse_list(p, &n->else_list, &how, &hp) < 0)
                goto fail;
            if (how == END_EOF) {
                perr(p, hp, "unexpected EOF");
                goto fail;
            }
            if (how == END_ELSE) {
                perr(p, hp, "expected end; found {{else}}");
                goto fail;
            }
        }
    }
    vars_pop(p, mark);
    p->depth--;
    *out = n;
    return 0;
fail:
    vars_pop(p, mark);
    node_free(n);
    return -1;
}

/* Parses items until EOF, {{end}} or {{else}} (the closing action is consumed, except the
 * rest of an else action: the caller reads "}}" or "if ...}}"). */
static int parse_list(struct parser *p, struct node **out, enum list_end *how, size_t *how_pos)
{
    struct node *list = node_new(N_LIST, peek(p)->pos);
    for (;;) {
        struct token *t = next(p);
        if (t->type == T_EOF) {
            *how = END_EOF;
            *how_pos = t->pos;
            break;
        }
        if (t->type == T_TEXT) {
            struct node *x = node_new(N_TEXT, t->pos);
            x->text = xstrndup(p->src + t->pos, t->len);
            x->text_len = t->len;
            node_add(list, x);
            continue;
        }
        /* T_LEFT */
        struct token *k = next(p);
        if (k->type == T_KEYWORD) {
            const char *w = k->val;
            if (strcmp(w, "end") == 0) {
                struct token *r = next(p);
                if (r->type != T_RIGHT) {
                    node_free(list);
                    return unexpected(p, r, "end");
                }
                *how = END_END;
                *how_pos = k->pos;
                *out = list;
                return 0;
            }
            if (strcmp(w, "else") == 0) {
                *how = END_ELSE;
                *how_pos = k->pos;
                *out = list;
                return 0;
            }
            struct node *c = NULL;
            int r;
            if (strcmp(w, "if") == 0)
                r = parse_control(p, N_IF, w, k->pos, &c);
            else if (strcmp(w, "range") == 0)
                r = parse_control(p, N_RANGE, w, k->pos, &c);
            else if (strcmp(w, "with") == 0)
                r = parse_control(p, N_WITH, w, k->pos, &c);
            else if (strcmp(w, "break") == 0 || strcmp(w, "continue") == 0) {
                if (p->range_depth == 0)
                    r = perr(p, k->pos, "{{%s}} outside {{range}}", w);
                else if (peek(p)->type != T_RIGHT)
                    r = unexpected(p, peek(p), w);
                else {
                    next(p);
                    c = node_new(w[0] == 'b' ? N_BREAK : N_CONTINUE, k->pos);
                    r = 0;
                }
            } else
                r = perr(p, k->pos, "{{%s}} is not supported", w);
            if (r < 0) {
                node_free(list);
                return -1;
            }
            node_add(list, c);
            continue;
        }
        p->i--; /* k belongs to the pipeline */
        struct node *a = node_new(N_ACTION, k->pos);
        if (parse_pipeline(p, true, false, T_RIGHT, &a->pipe) < 0) {
            node_free(a);
            node_free(list);
            return -1;
        }
        node_add(list, a);
    }
    *out = list;
    return 0;
}

static void tokens_free(struct token *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i].val);
    free(t);
}

static int parse_mapped(const char *src, size_t len, const char *user, int *posmap, tmpl_t **out,
                        berth_error_t *err)
{
    struct lexer lx = {.src = src, .len = len, .posmap = posmap, .user_text = user, .err = err};
    if (lex_all(&lx) < 0) {
        tokens_free(lx.toks, lx.n);
        return -1;
    }
    struct parser p = {
        .t = lx.toks, .n = lx.n, .src = src, .user_text = user, .posmap = posmap, .err = err};
    struct node *root = NULL;
    enum list_end how;
    size_t hp;
    int r = parse_list(&p, &root, &how, &hp);
    if (r == 0 && how != END_EOF) {
        r = perr(&p, hp, "unexpected {{%s}}", how == END_END ? "end" : "else");
        node_free(root);
    }
    vars_pop(&p, 0);
    free(p.vars);
    tokens_free(lx.toks, lx.n);
    if (r < 0)
        return -1;
    tmpl_t *t = xcalloc(1, sizeof(*t));
    t->root = root;
    t->text = xstrdup(user);
    t->posmap = posmap;
    *out = t;
    return 0;
}

static int check_text(const char *text, size_t len, berth_error_t *err)
{
    if (len > TMPL_MAX_TEXT)
        return berth_error_make_status(err, EFBIG, "template: longer than %d bytes", TMPL_MAX_TEXT);
    if (memchr(text, '\0', len))
        return berth_error_make_status(err, EINVAL, "template: contains a NUL byte");
    return 0;
}

int tmpl_parse(const char *text, size_t len, tmpl_t **out, berth_error_t *err)
{
    if (check_text(text, len, err) < 0)
        return -1;
    cleanup_free char *copy = xstrndup(text, len);
    return parse_mapped(copy, len, copy, NULL, out, err);
}

void tmpl_free(tmpl_t *t)
{
    if (!t)
        return;
    node_free(t->root);
    free(t->text);
    free(t->posmap);
    free(t);
}

json_t *tmpl_struct_new(const char *type_name)
{
    json_t *o = json_object();
    json_object_set_new(o, TMPL_STRUCT_KEY, json_string(type_name));
    return o;
}

/* ------------------------------------------------------------------ values */

static bool is_struct(const json_t *v)
{
    const char *t =
        json_is_object(v) ? json_string_value(json_object_get(v, TMPL_STRUCT_KEY)) : NULL;
    return t && *t;
}

/* a Go nil map: prints map[], encodes as null */
static bool is_nil_map(const json_t *v)
{
    const char *t =
        json_is_object(v) ? json_string_value(json_object_get(v, TMPL_STRUCT_KEY)) : NULL;
    return t && !*t;
}

json_t *tmpl_nil_map(void)
{
    return tmpl_struct_new("");
}

static size_t visible_size(const json_t *o)
{
    return json_object_size(o) - (json_object_get(o, TMPL_STRUCT_KEY) ? 1 : 0);
}

static bool hidden_key(const char *k)
{
    return strcmp(k, TMPL_STRUCT_KEY) == 0;
}

static const char *type_name(const json_t *v)
{
    if (!v)
        return "<nil>";
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "int";
    case JSON_REAL:
        return "float64";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    case JSON_ARRAY: {
        /* podman's lists are mostly []string */
        bool strs = json_array_size(v) > 0;
        for (size_t i = 0; strs && i < json_array_size(v); i++)
            strs = json_is_string(json_array_get(v, i));
        return strs ? "[]string" : "[]interface {}";
    }
    case JSON_OBJECT: {
        const char *t = json_string_value(json_object_get(v, TMPL_STRUCT_KEY));
        if (t && *t)
            return t;
        const char *k;
        json_t *e;
        bool strs = true;
        json_object_foreach((json_t *)v, k, e)
        {
            if (!hidden_key(k) && !json_is_string(e))
                strs = false;
        }
        return strs ? "map[string]string" : "map[string]interface {}";
    }
    default:
        return "<nil>";
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* sorted visible keys of a map, or insertion-ordered fields of a struct; caller frees array */
static const char **object_keys(const json_t *o, size_t *n)
{
    size_t cnt = json_object_size(o);
    const char **k = xcalloc(cnt + 1, sizeof(*k));
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)o, key, val)
    {
        (void)val;
        if (!hidden_key(key))
            k[i++] = key;
    }
    if (!is_struct(o))
        qsort(k, i, sizeof(*k), cmp_str);
    *n = i;
    return k;
}

/* Go's strconv.FormatFloat(f, 'g' or JSON style, -1): shortest round-trip digits. */
static void format_float(struct strbuf *b, double f, bool json)
{
    if (isnan(f)) {
        strbuf_append(b, "NaN");
        return;
    }
    if (isinf(f)) {
        strbuf_append(b, f > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[64];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*e", prec, f);
    /* buf: [-]d[.ddd]e[+-]XX */
    char *e = strchr(buf, 'e');
    int exp = (int)strtol(e + 1, NULL, 10);
    *e = '\0';
    bool neg = buf[0] == '-';
    char digits[40];
    size_t nd = 0;
    for (char *c = buf + neg; *c; c++)
        if (is_digit(*c))
            digits[nd++] = *c;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    double a = fabs(f);
    /* Go: fmt's %v switches to %e below 1e-4 and from 1e6 (shortest 'g'); encoding/json below
     * 1e-6 and from 1e21 */
    bool sci = json ? (a != 0 && (a < 1e-6 || a >= 1e21)) : (exp < -4 || exp >= 6);
    if (neg)
        strbuf_putc(b, '-');
    if (sci) {
        strbuf_putc(b, digits[0]);
        if (nd > 1) {
            strbuf_putc(b, '.');
            strbuf_append(b, digits + 1);
        }
        if (json)
            strbuf_appendf(b, "e%c%d", exp < 0 ? '-' : '+', abs(exp));
        else
            strbuf_appendf(b, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
        return;
    }
    if (exp < 0) {
        strbuf_append(b, "0.");
        for (int i = -1; i > exp; i--)
            strbuf_putc(b, '0');
        strbuf_append(b, digits);
        return;
    }
    for (int i = 0; i <= exp || (size_t)i < nd; i++) {
        if (i == exp + 1)
            strbuf_putc(b, '.');
        strbuf_putc(b, (size_t)i < nd ? digits[i] : '0');
    }
}

struct spec;
static void fmt_one(struct strbuf *b, const struct spec *sp, const json_t *v, int depth);
static const struct spec *spec_v(void);

/* Go's fmt %v; a missing value prints <no value> as templates do */
static void print_value(struct strbuf *b, const json_t *v, int depth)
{
    if (!v)
        strbuf_append(b, "<no value>");
    else
        fmt_one(b, spec_v(), v, depth);
}

void tmpl_print_value(struct strbuf *out, const json_t *v)
{
    print_value(out, v, 0);
}

static void json_string_go(struct strbuf *b, const char *s, size_t n)
{
    strbuf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            strbuf_putc(b, '\\');
            strbuf_putc(b, (char)c);
        } else if (c == '\n') {
            strbuf_append(b, "\\n");
        } else if (c == '\r') {
            strbuf_append(b, "\\r");
        } else if (c == '\t') {
            strbuf_append(b, "\\t");
        } else if (c < 0x20) {
            strbuf_appendf(b, "\\u%04x", c);
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            strbuf_appendf(b, "\\u202%c", (unsigned char)s[i + 2] == 0xA8 ? '8' : '9');
            i += 2;
        } else {
            strbuf_putc(b, (char)c);
        }
    }
    strbuf_putc(b, '"');
}

/* Go's encoding/json (SetEscapeHTML(false)), compact */
static void json_encode(struct strbuf *b, const json_t *v)
{
    if (!v) {
        strbuf_append(b, "null");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        json_string_go(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        strbuf_appendf(b, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        format_float(b, json_real_value(v), true);
        break;
    case JSON_TRUE:
        strbuf_append(b, "true");
        break;
    case JSON_FALSE:
        strbuf_append(b, "false");
        break;
    case JSON_NULL:
        strbuf_append(b, "null");
        break;
    case JSON_ARRAY:
        strbuf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                strbuf_putc(b, ',');
            json_encode(b, json_array_get(v, i));
        }
        strbuf_putc(b, ']');
        break;
    case JSON_OBJECT: {
        if (is_nil_map(v)) {
            strbuf_append(b, "null");
            break;
        }
        size_t n;
        const char **k = object_keys(v, &n);
        strbuf_putc(b, '{');
        for (size_t i = 0; i < n; i++) {
            if (i)
                strbuf_putc(b, ',');
            json_string_go(b, k[i], strlen(k[i]));
            strbuf_putc(b, ':');
            json_encode(b, json_object_get(v, k[i]));
        }
        strbuf_putc(b, '}');
        free(k);
        break;
    }
    }
}

/* Go's truth: false, 0, nil, empty string/array/map are false; structs are true */
static bool truth(const json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_TRUE:
        return true;
    case JSON_FALSE:
    case JSON_NULL:
        return false;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return is_struct(v) || visible_size(v) > 0;
    }
    return false;
}

/* ------------------------------------------------------------------ execution */

struct var {
    char *name;
    json_t *val;
};

struct exec {
    const tmpl_t *t;
    struct strbuf *out;
    berth_error_t *err;
    struct var *vars;
    size_t nvars, cap;
    long steps;
    int flow; /* 1 break, 2 continue */
    const char *src;
};

static int xerr(struct exec *s, const struct node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int xerr(struct exec *s, const struct node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    int line, col;
    location(s->t->text, s->t->posmap, at->pos, &line, &col);
    if (at->end > at->pos) {
        /* Go names the node it was executing: "executing at <.Foo>" */
        const int *map = s->t->posmap;
        size_t a = map ? (size_t)map[at->pos] : at->pos;
        size_t b = map ? (size_t)map[at->end - 1] + 1 : at->end;
        if (b > a && b <= strlen(s->t->text))
            berth_error_make_status(s->err, EINVAL, "template: %d:%d: executing at <%.*s>: %s",
                                    line, col, (int)(b - a), s->t->text + a, m);
        else
            berth_error_make_status(s->err, EINVAL, "template: %d:%d: %s", line, col, m);
    } else {
        berth_error_make_status(s->err, EINVAL, "template: %d:%d: %s", line, col, m);
    }
    free(m);
    return -1;
}

static void vpush(struct exec *s, const char *name, json_t *val /* takes */)
{
    if (s->nvars == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->vars = xrealloc(s->vars, s->cap * sizeof(*s->vars));
    }
    s->vars[s->nvars++] = (struct var){xstrdup(name), val};
}

static void vpop(struct exec *s, size_t mark)
{
    while (s->nvars > mark) {
        s->nvars--;
        free(s->vars[s->nvars].name);
        json_decref(s->vars[s->nvars].val);
    }
}

static struct var *vfind(struct exec *s, const char *name)
{
    for (size_t i = s->nvars; i > 0; i--)
        if (strcmp(s->vars[i - 1].name, name) == 0)
            return &s->vars[i - 1];
    return NULL;
}

static int step(struct exec *s, const struct node *at)
{
    if (++s->steps > TMPL_MAX_STEPS)
        return xerr(s, at, "template too expensive: more than %d steps", TMPL_MAX_STEPS);
    return 0;
}

static int emit(struct exec *s, const struct node *at, const char *p, size_t n)
{
    if (s->out->len + n > TMPL_MAX_OUTPUT)
        return xerr(s, at, "output larger than %d bytes", TMPL_MAX_OUTPUT);
    strbuf_append_len(s->out, p, n);
    return 0;
}

static json_t *ref(const json_t *v)
{
    return v ? json_incref((json_t *)v) : NULL;
}

static int eval_pipeline(struct exec *s, const json_t *dot, const struct node *pipe, json_t **out);

/* Evaluates a field chain on receiver (borrowed) → *out (new ref, NULL = no value). */
static int eval_fields(struct exec *s, const struct node *at, json_t *recv /* takes */,
                       char *const *names, size_t n, bool has_args, json_t **out)
{
    json_t *cur = recv;
    for (size_t i = 0; i < n; i++) {
        const char *f = names[i];
        if (!cur) {
            /* a missing key's value: the chain stays <no value> */
            continue;
        }
        if (json_is_object(cur)) {
            if (hidden_key(f)) {
                json_decref(cur);
                return xerr(s, at, "can't evaluate field %s", f);
            }
            json_t *v = json_object_get(cur, f);
            if (!v && is_struct(cur)) {
                int r = xerr(s, at, "can't evaluate field %s in type %s", f, type_name(cur));
                json_decref(cur);
                return r;
            }
            if (has_args && i + 1 == n) {
                json_decref(cur);
                return xerr(s, at, "%s has arguments but cannot be invoked as function", f);
            }
            json_t *nv = ref(v);
            json_decref(cur);
            cur = nv;
            continue;
        }
        if (json_is_null(cur)) {
            json_decref(cur);
            return xerr(s, at, "nil pointer evaluating interface {}.%s", f);
        }
        int r = xerr(s, at, "can't evaluate field %s in type %s", f, type_name(cur));
        json_decref(cur);
        return r;
    }
    *out = cur;
    return 0;
}

static int eval_arg(struct exec *s, const json_t *dot, const struct node *n, json_t **out);
static int call_func(struct exec *s, const json_t *dot, const struct node *cmd, const json_t *final,
                     bool has_final, json_t **out);

static const char *node_kind_word(const struct node *n)
{
    switch (n->kind) {
    case N_NIL:
        return "nil";
    case N_BOOL:
        return n->b ? "true" : "false";
    case N_DOT:
        return ".";
    default:
        return n->text ? n->text : "?";
    }
}

static int eval_command(struct exec *s, const json_t *dot, const struct node *cmd,
                        const json_t *final, bool has_final, json_t **out)
{
    const struct node *first = cmd->kids[0];
    bool has_args = cmd->nkids > 1 || has_final;
    if (step(s, cmd) < 0)
        return -1;
    switch (first->kind) {
    case N_IDENT:
        return call_func(s, dot, cmd, final, has_final, out);
    case N_FIELD:
        return eval_fields(s, first, ref(dot), first->names, first->nnames, has_args, out);
    case N_VAR: {
        struct var *v = vfind(s, first->names[0]);
        if (!v)
            return xerr(s, first, "undefined variable: %s", first->names[0]);
        json_t *root = ref(v->val);
        if (first->nnames == 1 && has_args) {
            json_decref(root);
            return xerr(s, first, "can't give argument to non-function %s", first->names[0]);
        }
        return eval_fields(s, first, root, first->names + 1, first->nnames - 1, has_args, out);
    }
    case N_CHAIN: {
        json_t *v = NULL;
        if (eval_pipeline(s, dot, first->kids[0], &v) < 0)
            return -1;
        if (first->nnames == 0 && has_args) {
            json_decref(v);
            return xerr(s, first, "can't give argument to non-function");
        }
        return eval_fields(s, first, v, first->names, first->nnames, has_args, out);
    }
    case N_NIL:
        return xerr(s, first, "nil is not a command");
    default:
        if (has_args)
            return xerr(s, first, "can't give argument to non-function %s", node_kind_word(first));
        return eval_arg(s, dot, first, out);
    }
}

static int eval_arg(struct exec *s, const json_t *dot, const struct node *n, json_t **out)
{
    if (step(s, n) < 0)
        return -1;
    switch (n->kind) {
    case N_DOT:
        *out = ref(dot);
        return 0;
    case N_NIL:
        *out = json_null();
        return 0;
    case N_BOOL:
        *out = json_boolean(n->b);
        return 0;
    case N_NUMBER:
        *out = n->is_int ? json_integer(n->ival) : json_real(n->fval);
        return 0;
    case N_STRING:
        *out = json_stringn_nocheck(n->text, n->text_len);
        return 0;
    case N_FIELD:
    case N_VAR:
    case N_CHAIN: {
        struct node cmd = {
            .kind = N_CMD, .pos = n->pos, .end = n->end, .kids = (struct node **)&n, .nkids = 1};
        return eval_command(s, dot, &cmd, NULL, false, out);
    }
    case N_IDENT: {
        struct node cmd = {
            .kind = N_CMD, .pos = n->pos, .end = n->end, .kids = (struct node **)&n, .nkids = 1};
        return call_func(s, dot, &cmd, NULL, false, out);
    }
    default:
        return xerr(s, n, "can't handle argument");
    }
}

static int eval_pipeline(struct exec *s, const json_t *dot, const struct node *pipe, json_t **out)
{
    json_t *val = NULL;
    bool have = false;
    for (size_t i = 0; i < pipe->nkids; i++) {
        json_t *nv = NULL;
        if (eval_command(s, dot, pipe->kids[i], val, have, &nv) < 0) {
            json_decref(val);
            return -1;
        }
        json_decref(val);
        val = nv;
        have = true;
    }
    for (int k = 0; k < pipe->ndecl; k++) {
        if (pipe->assign) {
            struct var *v = vfind(s, pipe->decl[k]);
            if (v) {
                json_decref(v->val);
                v->val = ref(val);
            }
        } else if (pipe->ndecl == 1) {
            vpush(s, pipe->decl[k], ref(val));
        }
    }
    *out = val;
    return 0;
}

static int walk(struct exec *s, const json_t *dot, const struct node *n);

static int walk_list(struct exec *s, const json_t *dot, const struct node *list)
{
    if (!list)
        return 0;
    for (size_t i = 0; i < list->nkids; i++) {
        if (walk(s, dot, list->kids[i]) < 0)
            return -1;
        if (s->flow)
            return 0;
    }
    return 0;
}

static int range_body(struct exec *s, const struct node *n, json_t *key, json_t *elem)
{
    if (step(s, n) < 0)
        return -1;
    size_t mark = s->nvars;
    if (n->pipe->ndecl == 1) {
        if (n->pipe->assign) {
            struct var *v = vfind(s, n->pipe->decl[0]);
            json_decref(v->val);
            v->val = ref(elem);
        } else
            vpush(s, n->pipe->decl[0], ref(elem));
    } else if (n->pipe->ndecl == 2) {
        if (n->pipe->assign) {
            struct var *v = vfind(s, n->pipe->decl[0]);
            json_decref(v->val);
            v->val = ref(key);
            v = vfind(s, n->pipe->decl[1]);
            json_decref(v->val);
            v->val = ref(elem);
        } else {
            vpush(s, n->pipe->decl[0], ref(key));
            vpush(s, n->pipe->decl[1], ref(elem));
        }
    }
    int r = walk_list(s, elem, n->list);
    vpop(s, mark);
    return r;
}

static int walk_range(struct exec *s, const json_t *dot, const struct node *n)
{
    size_t mark = s->nvars;
    json_t *v = NULL;
    /* the range's own declarations are bound per element, not to the pipeline's value */
    struct node pipe = *n->pipe;
    pipe.ndecl = 0;
    if (eval_pipeline(s, dot, &pipe, &v) < 0)
        return -1;
    int r = 0;
    bool any = false;
    if (v && json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && r == 0; i++) {
            any = true;
            json_t *k = json_integer((json_int_t)i);
            r = range_body(s, n, k, json_array_get(v, i));
            json_decref(k);
            if (s->flow == 1) {
                s->flow = 0;
                break;
            }
            s->flow = 0;
        }
    } else if (v && json_is_object(v) && !is_struct(v)) {
        size_t cnt;
        const char **keys = object_keys(v, &cnt);
        for (size_t i = 0; i < cnt && r == 0; i++) {
            any = true;
            json_t *k = json_string(keys[i]);
            r = range_body(s, n, k, json_object_get(v, keys[i]));
            json_decref(k);
            if (s->flow == 1) {
                s->flow = 0;
                break;
            }
            s->flow = 0;
        }
        free(keys);
    } else if (v && !json_is_null(v)) {
        struct strbuf b = STRBUF_INIT;
        print_value(&b, v, 0);
        r = xerr(s, n, "range can't iterate over %s", b.buf ? b.buf : "");
        strbuf_release(&b);
    }
    if (r == 0 && !any && n->else_list)
        r = walk_list(s, dot, n->else_list);
    json_decref(v);
    vpop(s, mark);
    return r;
}

static int walk(struct exec *s, const json_t *dot, const struct node *n)
{
    if (step(s, n) < 0)
        return -1;
    switch (n->kind) {
    case N_TEXT:
        return emit(s, n, n->text, n->text_len);
    case N_ACTION: {
        json_t *v = NULL;
        if (eval_pipeline(s, dot, n->pipe, &v) < 0)
            return -1;
        int r = 0;
        if (n->pipe->ndecl == 0) {
            size_t before = s->out->len;
            print_value(s->out, v, 0);
            if (s->out->len > TMPL_MAX_OUTPUT) {
                s->out->len = before;
                s->out->buf[before] = '\0';
                r = xerr(s, n, "output larger than %d bytes", TMPL_MAX_OUTPUT);
            }
        }
        json_decref(v);
        return r;
    }
    case N_IF:
    case N_WITH: {
        size_t mark = s->nvars;
        json_t *v = NULL;
        if (eval_pipeline(s, dot, n->pipe, &v) < 0)
            return -1;
        int r;
        if (truth(v))
            r = walk_list(s, n->kind == N_WITH ? v : dot, n->list);
        else
            r = walk_list(s, dot, n->else_list);
        json_decref(v);
        vpop(s, mark);
        return r;
    }
    case N_RANGE:
        return walk_range(s, dot, n);
    case N_BREAK:
        s->flow = 1;
        return 0;
    case N_CONTINUE:
        s->flow = 2;
        return 0;
    case N_LIST:
        return walk_list(s, dot, n);
    default:
        return xerr(s, n, "unexpected node");
    }
}

int tmpl_execute(const tmpl_t *t, const json_t *data, struct strbuf *out, berth_error_t *err)
{
    struct exec s = {.t = t, .out = out, .err = err};
    vpush(&s, "$", ref(data));
    int r = walk_list(&s, data, t->root);
    vpop(&s, 0);
    free(s.vars);
    if (out->buf == NULL)
        strbuf_append(out, "");
    return r;
}

int tmpl_go_time(const char *t, char *buf, size_t len)
{
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm) */
    if (!t || strlen(t) < 20)
        return -1;
    for (int i = 0; i < 19; i++) {
        bool digit = is_digit(t[i]);
        bool want_digit = !(i == 4 || i == 7 || i == 10 || i == 13 || i == 16);
        if (digit != want_digit)
            return -1;
    }
    if (t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') ||
        t[13] != ':' || t[16] != ':')
        return -1;
    const char *p = t + 19;
    char frac[16] = "";
    if (*p == '.') {
        size_t n = 0;
        p++;
        while (is_digit(*p)) {
            if (n < 9)
                frac[n++] = *p;
            p++;
        }
        while (n > 0 && frac[n - 1] == '0')
            n--;
        frac[n] = '\0';
    }
    char zone[32];
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        snprintf(zone, sizeof(zone), "+0000 UTC");
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && is_digit(p[1]) && is_digit(p[2]) &&
               p[3] == ':' && is_digit(p[4]) && is_digit(p[5])) {
        if (memcmp(p + 1, "00:00", 5) == 0)
            snprintf(zone, sizeof(zone), "+0000 +0000");
        else
            snprintf(zone, sizeof(zone), "%c%.2s%.2s %c%.2s%.2s", p[0], p + 1, p + 4, p[0], p + 1,
                     p + 4);
    } else {
        return -1;
    }
    snprintf(buf, len, "%.10s %.8s%s%s %s", t, t + 11, frac[0] ? "." : "", frac, zone);
    return 0;
}

/* ------------------------------------------------------------------ printf */

struct spec {
    bool minus, plus, sharp, zero, space;
    int width, prec; /* -1: none */
    char verb;
};

static const struct spec *spec_v(void)
{
    static const struct spec v = {.width = -1, .prec = -1, .verb = 'v'};
    return &v;
}

static size_t rune_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

static void pad_out(struct strbuf *b, const struct spec *sp, const char *s, size_t n, bool numeric)
{
    size_t w = rune_count(s, n);
    size_t pad = sp->width > 0 && (size_t)sp->width > w ? (size_t)sp->width - w : 0;
    if (sp->minus) {
        strbuf_append_len(b, s, n);
        for (size_t i = 0; i < pad; i++)
            strbuf_putc(b, ' ');
        return;
    }
    if (sp->zero && pad) {
        size_t skip = 0;
        if (numeric && n > 0 && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) {
            strbuf_putc(b, s[0]);
            skip = 1;
        }
        for (size_t i = 0; i < pad; i++)
            strbuf_putc(b, '0');
        strbuf_append_len(b, s + skip, n - skip);
        return;
    }
    for (size_t i = 0; i < pad; i++)
        strbuf_putc(b, ' ');
    strbuf_append_len(b, s, n);
}

static void quote_go(struct strbuf *b, const char *s, size_t n, char q)
{
    strbuf_putc(b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\a':
            strbuf_append(b, "\\a");
            continue;
        case '\b':
            strbuf_append(b, "\\b");
            continue;
        case '\f':
            strbuf_append(b, "\\f");
            continue;
        case '\n':
            strbuf_append(b, "\\n");
            continue;
        case '\r':
            strbuf_append(b, "\\r");
            continue;
        case '\t':
            strbuf_append(b, "\\t");
            continue;
        case '\v':
            strbuf_append(b, "\\v");
            continue;
        case '\\':
            strbuf_append(b, "\\\\");
            continue;
        default:
            break;
        }
        if (c == (unsigned char)q) {
            strbuf_putc(b, '\\');
            strbuf_putc(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            strbuf_appendf(b, "\\x%02x", c);
        } else {
            strbuf_putc(b, (char)c);
        }
    }
    strbuf_putc(b, q);
}

static void bad_verb(struct strbuf *b, char verb, const json_t *v)
{
    strbuf_appendf(b, "%%!%c(", verb);
    if (!v || json_is_null(v)) {
        strbuf_append(b, "<nil>");
    } else {
        strbuf_append(b, type_name(v));
        strbuf_putc(b, '=');
        print_value(b, v, 0);
    }
    strbuf_putc(b, ')');
}

static void fmt_int(struct strbuf *b, const struct spec *sp, long long v)
{
    char digits[80];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int base = 10;
    bool upper = false;
    switch (sp->verb) {
    case 'x':
        base = 16;
        break;
    case 'X':
        base = 16;
        upper = true;
        break;
    case 'o':
    case 'O':
        base = 8;
        break;
    case 'b':
        base = 2;
        break;
    default:
        break;
    }
    size_t n = 0;
    char tmp[80];
    do {
        int d = (int)(u % (unsigned)base);
        tmp[n++] = (char)(d < 10 ? '0' + d : (upper ? 'A' : 'a') + d - 10);
        u /= (unsigned)base;
    } while (u);
    while (sp->prec >= 0 && n < (size_t)sp->prec && n < 70)
        tmp[n++] = '0';
    if (sp->prec == 0 && v == 0)
        n = 0;
    size_t k = 0;
    if (v < 0)
        digits[k++] = '-';
    else if (sp->plus)
        digits[k++] = '+';
    else if (sp->space)
        digits[k++] = ' ';
    if (sp->verb == 'O') {
        digits[k++] = '0';
        digits[k++] = 'o';
    } else if (sp->sharp) {
        if (base == 16) {
            digits[k++] = '0';
            digits[k++] = upper ? 'X' : 'x';
        } else if (base == 8 && !(n && tmp[n - 1] == '0')) {
            digits[k++] = '0';
        } else if (base == 2) {
            digits[k++] = '0';
            digits[k++] = 'b';
        }
    }
    while (n)
        digits[k++] = tmp[--n];
    struct spec s2 = *sp;
    if (sp->prec >= 0)
        s2.zero = false;
    pad_out(b, &s2, digits, k, true);
}

static void fmt_float(struct strbuf *b, const struct spec *sp, double f)
{
    char fmt[32], buf[512];
    char verb = sp->verb == 'v' ? 'g' : sp->verb;
    if (verb == 'F')
        verb = 'f';
    struct strbuf t = STRBUF_INIT;
    if ((verb == 'g' || verb == 'G') && sp->prec < 0) {
        if (f >= 0 && sp->plus)
            strbuf_putc(&t, '+');
        else if (f >= 0 && sp->space)
            strbuf_putc(&t, ' ');
        /* shortest representation; %v switches to exponent form at 1e21 */
        struct strbuf g = STRBUF_INIT;
        format_float(&g, f, false);
        strbuf_append(&t, g.buf);
        strbuf_release(&g);
    } else {
        int prec = sp->prec < 0 ? 6 : sp->prec;
        snprintf(fmt, sizeof(fmt), "%%%s%s.%d%c", sp->plus ? "+" : "", sp->space ? " " : "",
                 prec > 100 ? 100 : prec, verb);
        snprintf(buf, sizeof(buf), fmt, f);
        strbuf_append(&t, buf);
    }
    pad_out(b, sp, t.buf, t.len, true);
    strbuf_release(&t);
}

static void fmt_compound(struct strbuf *b, const struct spec *sp, const json_t *v, int depth)
{
    if (json_is_array(v)) {
        strbuf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                strbuf_putc(b, ' ');
            fmt_one(b, sp, json_array_get(v, i), depth + 1);
        }
        strbuf_putc(b, ']');
        return;
    }
    size_t n;
    const char **k = object_keys(v, &n);
    bool st = is_struct(v);
    strbuf_append(b, st ? "{" : "map[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(b, ' ');
        if (!st) {
            json_t *ks = json_string(k[i]);
            fmt_one(b, sp, ks, depth + 1);
            json_decref(ks);
            strbuf_putc(b, ':');
        }
        fmt_one(b, sp, json_object_get(v, k[i]), depth + 1);
    }
    strbuf_append(b, st ? "}" : "]");
    free(k);
}

static void fmt_one(struct strbuf *b, const struct spec *sp, const json_t *v, int depth)
{
    char verb = sp->verb;
    if (verb == 'T') {
        pad_out(b, sp, type_name(v), strlen(type_name(v)), false);
        return;
    }
    if (!v || json_is_null(v)) {
        if (verb == 'v')
            pad_out(b, sp, "<nil>", 5, false);
        else
            bad_verb(b, verb, v);
        return;
    }
    if (json_is_array(v) || json_is_object(v)) {
        fmt_compound(b, sp, v, depth);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (verb == 'v' || verb == 's') {
            size_t m = n;
            if (sp->prec >= 0) {
                size_t runes = 0;
                for (m = 0; m < n; m++) {
                    if (((unsigned char)s[m] & 0xC0) != 0x80) {
                        if (runes == (size_t)sp->prec)
                            break;
                        runes++;
                    }
                }
            }
            pad_out(b, sp, s, m, false);
        } else if (verb == 'q') {
            struct strbuf t = STRBUF_INIT;
            if (sp->sharp && !memchr(s, '`', n)) {
                strbuf_putc(&t, '`');
                strbuf_append_len(&t, s, n);
                strbuf_putc(&t, '`');
            } else
                quote_go(&t, s, n, '"');
            pad_out(b, sp, t.buf, t.len, false);
            strbuf_release(&t);
        } else if (verb == 'x' || verb == 'X') {
            struct strbuf t = STRBUF_INIT;
            for (size_t i = 0; i < n; i++)
                strbuf_appendf(&t, verb == 'x' ? "%02x" : "%02X", (unsigned char)s[i]);
            pad_out(b, sp, t.buf ? t.buf : "", t.len, false);
            strbuf_release(&t);
        } else
            bad_verb(b, verb, v);
        return;
    }
    case JSON_INTEGER: {
        long long i = json_integer_value(v);
        if (verb == 'v' || verb == 'd' || verb == 'x' || verb == 'X' || verb == 'o' ||
            verb == 'O' || verb == 'b') {
            struct spec s2 = *sp;
            if (verb == 'v')
                s2.verb = 'd';
            fmt_int(b, &s2, i);
        } else if (verb == 'c' || verb == 'q' || verb == 'U') {
            struct strbuf t = STRBUF_INIT;
            uint32_t r = (uint32_t)i;
            if (verb == 'U') {
                strbuf_appendf(&t, "U+%04X", r);
            } else {
                struct strbuf u = STRBUF_INIT;
                utf8_put(&u, r);
                if (verb == 'c')
                    strbuf_append_len(&t, u.buf, u.len);
                else
                    quote_go(&t, u.buf, u.len, '\'');
                strbuf_release(&u);
            }
            pad_out(b, sp, t.buf, t.len, false);
            strbuf_release(&t);
        } else
            bad_verb(b, verb, v);
        return;
    }
    case JSON_REAL:
        if (strchr("veEfFgG", verb))
            fmt_float(b, sp, json_real_value(v));
        else
            bad_verb(b, verb, v);
        return;
    case JSON_TRUE:
    case JSON_FALSE:
        if (verb == 'v' || verb == 't')
            pad_out(b, sp, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5, false);
        else
            bad_verb(b, verb, v);
        return;
    default:
        bad_verb(b, verb, v);
    }
}

/* Go's fmt.Sprintf over template values */
static void go_sprintf(struct strbuf *b, const char *f, size_t flen, json_t **argv, size_t argc)
{
    size_t a = 0;
    for (size_t i = 0; i < flen;) {
        if (f[i] != '%') {
            size_t j = i;
            while (j < flen && f[j] != '%')
                j++;
            strbuf_append_len(b, f + i, j - i);
            i = j;
            continue;
        }
        i++;
        struct spec sp = {.width = -1, .prec = -1};
        for (; i < flen; i++) {
            char c = f[i];
            if (c == '-')
                sp.minus = true;
            else if (c == '+')
                sp.plus = true;
            else if (c == '#')
                sp.sharp = true;
            else if (c == '0')
                sp.zero = !sp.minus;
            else if (c == ' ')
                sp.space = true;
            else
                break;
        }
        if (i < flen && f[i] == '*') {
            i++;
            if (a < argc && json_is_integer(argv[a])) {
                long long w = json_integer_value(argv[a++]);
                if (w < 0) {
                    sp.minus = true;
                    w = -w;
                }
                sp.width = w > 1000000 ? 1000000 : (int)w;
            } else {
                strbuf_append(b, "%!(BADWIDTH)");
                a++;
            }
        } else {
            while (i < flen && is_digit(f[i])) {
                sp.width = (sp.width < 0 ? 0 : sp.width) * 10 + (f[i] - '0');
                if (sp.width > 1000000)
                    sp.width = 1000000;
                i++;
            }
        }
        if (i < flen && f[i] == '.') {
            i++;
            sp.prec = 0;
            if (i < flen && f[i] == '*') {
                i++;
                if (a < argc && json_is_integer(argv[a])) {
                    long long pr = json_integer_value(argv[a++]);
                    sp.prec = pr < 0 ? -1 : pr > 1000000 ? 1000000 : (int)pr;
                } else {
                    strbuf_append(b, "%!(BADPREC)");
                    a++;
                }
            } else {
                while (i < flen && is_digit(f[i])) {
                    sp.prec = sp.prec * 10 + (f[i] - '0');
                    if (sp.prec > 1000000)
                        sp.prec = 1000000;
                    i++;
                }
            }
        }
        if (sp.minus)
            sp.zero = false;
        if (i >= flen) {
            strbuf_append(b, "%!(NOVERB)");
            break;
        }
        sp.verb = f[i++];
        if (sp.verb == '%') {
            strbuf_putc(b, '%');
            continue;
        }
        if (a >= argc) {
            strbuf_appendf(b, "%%!%c(MISSING)", sp.verb);
            continue;
        }
        json_t *v = argv[a++];
        if (!strchr("vTtsqxXdobcUOeEfFgG", sp.verb)) {
            bad_verb(b, sp.verb, v);
            continue;
        }
        fmt_one(b, &sp, v, 0);
    }
    if (a < argc) {
        strbuf_append(b, "%!(EXTRA ");
        for (; a < argc; a++) {
            json_t *v = argv[a];
            if (!v || json_is_null(v))
                strbuf_append(b, "<nil>");
            else {
                strbuf_append(b, type_name(v));
                strbuf_putc(b, '=');
                print_value(b, v, 0);
            }
            if (a + 1 < argc)
                strbuf_append(b, ", ");
        }
        strbuf_putc(b, ')');
    }
}

/* ------------------------------------------------------------------ builtin functions */

static int want_args(struct exec *s, const struct node *at, const char *fn, size_t argc, size_t n)
{
    if (argc != n)
        return xerr(s, at, "wrong number of args for %s: want %zu got %zu", fn, n, argc);
    return 0;
}

static int want_string(struct exec *s, const struct node *at, const json_t *v, const char **out)
{
    if (!v)
        return xerr(s, at, "invalid value; expected string");
    if (!json_is_string(v))
        return xerr(s, at, "wrong type for value; expected string; got %s", type_name(v));
    *out = json_string_value(v);
    return 0;
}

static int want_int(struct exec *s, const struct node *at, const json_t *v, long long *out)
{
    if (!v)
        return xerr(s, at, "invalid value; expected int");
    if (!json_is_integer(v))
        return xerr(s, at, "wrong type for value; expected int; got %s", type_name(v));
    *out = json_integer_value(v);
    return 0;
}

static int f_printf(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    const char *f;
    if (argc < 1)
        return xerr(s, at, "wrong number of args for printf: want at least 1 got 0");
    if (want_string(s, at, argv[0], &f) < 0)
        return -1;
    struct strbuf b = STRBUF_INIT;
    go_sprintf(&b, f, json_string_length(argv[0]), argv + 1, argc - 1);
    size_t l = b.len;
    char *r = strbuf_steal(&b);
    *out = json_stringn_nocheck(r, l);
    free(r);
    return 0;
}

static int f_print(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    (void)s;
    (void)at;
    struct strbuf b = STRBUF_INIT;
    strbuf_append(&b, "");
    for (size_t i = 0; i < argc; i++) {
        /* Sprint adds a space between operands when neither is a string */
        if (i > 0 && !json_is_string(argv[i]) && !json_is_string(argv[i - 1]))
            strbuf_putc(&b, ' ');
        print_value(&b, argv[i] ? argv[i] : json_null(), 0);
    }
    size_t l = b.len;
    char *r = strbuf_steal(&b);
    *out = json_stringn_nocheck(r, l);
    free(r);
    return 0;
}

static int f_println(struct exec *s, const struct node *at, json_t **argv, size_t argc,
                     json_t **out)
{
    (void)s;
    (void)at;
    struct strbuf b = STRBUF_INIT;
    strbuf_append(&b, "");
    for (size_t i = 0; i < argc; i++) {
        if (i > 0)
            strbuf_putc(&b, ' ');
        print_value(&b, argv[i] ? argv[i] : json_null(), 0);
    }
    strbuf_putc(&b, '\n');
    size_t l = b.len;
    char *r = strbuf_steal(&b);
    *out = json_stringn_nocheck(r, l);
    free(r);
    return 0;
}

static int f_len(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    if (want_args(s, at, "len", argc, 1) < 0)
        return -1;
    json_t *v = argv[0];
    if (!v || json_is_null(v))
        return xerr(s, at, "error calling len: len of nil pointer");
    if (json_is_string(v))
        *out = json_integer((json_int_t)json_string_length(v));
    else if (json_is_array(v))
        *out = json_integer((json_int_t)json_array_size(v));
    else if (json_is_object(v) && !is_struct(v)) {
        size_t n;
        free(object_keys(v, &n));
        *out = json_integer((json_int_t)n);
    } else
        return xerr(s, at, "error calling len: len of type %s", type_name(v));
    return 0;
}

static int f_index(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    if (argc < 1)
        return xerr(s, at, "wrong number of args for index: want at least 1 got 0");
    json_t *cur = argv[0];
    if (!cur || json_is_null(cur))
        return xerr(s, at, "error calling index: index of untyped nil");
    for (size_t i = 1; i < argc; i++) {
        json_t *k = argv[i];
        if (json_is_array(cur)) {
            if (!k || !json_is_integer(k))
                return xerr(s, at, "error calling index: cannot index slice/array with type %s",
                            type_name(k));
            long long x = json_integer_value(k);
            if (x < 0 || (size_t)x >= json_array_size(cur))
                return xerr(s, at, "error calling index: index out of range: %lld", x);
            cur = json_array_get(cur, (size_t)x);
        } else if (json_is_object(cur) && !is_struct(cur)) {
            if (!k || !json_is_string(k))
                return xerr(s, at, "error calling index: value has type %s; should be string",
                            type_name(k));
            json_t *v = json_object_get(cur, json_string_value(k));
            if (!v || hidden_key(json_string_value(k))) {
                /* a missing key gives the element type's zero value: "" for podman's
                 * map[string]string */
                *out = json_string("");
                return 0;
            }
            cur = v;
        } else if (json_is_null(cur)) {
            return xerr(s, at, "error calling index: index of nil pointer");
        } else {
            return xerr(s, at, "error calling index: can't index item of type %s", type_name(cur));
        }
    }
    *out = ref(cur);
    return 0;
}

static int f_not(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    if (want_args(s, at, "not", argc, 1) < 0)
        return -1;
    *out = json_boolean(!truth(argv[0]));
    return 0;
}

enum kind { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING, K_OTHER };

static enum kind basic_kind(const json_t *v)
{
    if (!v)
        return K_INVALID;
    switch (json_typeof(v)) {
    case JSON_TRUE:
    case JSON_FALSE:
        return K_BOOL;
    case JSON_INTEGER:
        return K_INT;
    case JSON_REAL:
        return K_FLOAT;
    case JSON_STRING:
        return K_STRING;
    default:
        return K_OTHER;
    }
}

/* returns 1 equal, 0 not, -1 error (message set) */
static int equal(struct exec *s, const struct node *at, const char *fn, const json_t *a,
                 const json_t *b)
{
    enum kind ka = basic_kind(a), kb = basic_kind(b);
    if (ka != kb) {
        if (a && b && !json_is_null(a) && !json_is_null(b))
            return xerr(s, at, "error calling %s: incompatible types for comparison", fn);
        return (a && json_is_null(a) && b && json_is_null(b)) ? 1 : 0;
    }
    switch (ka) {
    case K_INVALID:
        return 0;
    case K_BOOL:
        return json_is_true(a) == json_is_true(b);
    case K_INT:
        return json_integer_value(a) == json_integer_value(b);
    case K_FLOAT:
        return json_real_value(a) == json_real_value(b);
    case K_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    default:
        if (json_is_null(a) || json_is_null(b))
            return json_is_null(a) && json_is_null(b);
        if (json_is_array(a) || json_is_object(a))
            return xerr(s, at, "error calling %s: non-comparable type %s", fn, type_name(a));
        return 0;
    }
}

static int f_eq(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    if (argc < 2)
        return xerr(s, at, "error calling eq: missing argument for comparison");
    for (size_t i = 1; i < argc; i++) {
        int r = equal(s, at, "eq", argv[0], argv[i]);
        if (r < 0)
            return -1;
        if (r) {
            *out = json_true();
            return 0;
        }
    }
    *out = json_false();
    return 0;
}

static int f_ne(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    if (want_args(s, at, "ne", argc, 2) < 0)
        return -1;
    int r = equal(s, at, "ne", argv[0], argv[1]);
    if (r < 0)
        return -1;
    *out = json_boolean(!r);
    return 0;
}

/* returns 1 if a < b, 0 if not, -1 error */
static int less(struct exec *s, const struct node *at, const char *fn, const json_t *a,
                const json_t *b)
{
    enum kind ka = basic_kind(a), kb = basic_kind(b);
    if (ka == K_INVALID || ka == K_OTHER || kb == K_INVALID || kb == K_OTHER || ka == K_BOOL ||
        kb == K_BOOL)
        return xerr(s, at, "error calling %s: invalid type for comparison", fn);
    if (ka != kb)
        return xerr(s, at, "error calling %s: incompatible types for comparison", fn);
    switch (ka) {
    case K_INT:
        return json_integer_value(a) < json_integer_value(b);
    case K_FLOAT:
        return json_real_value(a) < json_real_value(b);
    default: {
        size_t la = json_string_length(a), lb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
        return c < 0 || (c == 0 && la < lb);
    }
    }
}

static int f_cmp(struct exec *s, const struct node *at, const char *fn, json_t **argv, size_t argc,
                 json_t **out)
{
    if (want_args(s, at, fn, argc, 2) < 0)
        return -1;
    int lt = less(s, at, fn, argv[0], argv[1]);
    if (lt < 0)
        return -1;
    int eq = 0;
    if (fn[1] == 'e' || fn[0] == 'g') {
        eq = equal(s, at, fn, argv[0], argv[1]);
        if (eq < 0)
            return -1;
    }
    bool r;
    if (strcmp(fn, "lt") == 0)
        r = lt;
    else if (strcmp(fn, "le") == 0)
        r = lt || eq;
    else if (strcmp(fn, "gt") == 0)
        r = !lt && !eq;
    else
        r = !lt;
    *out = json_boolean(r);
    return 0;
}

static int f_lt(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_cmp(s, at, "lt", argv, argc, out);
}
static int f_le(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_cmp(s, at, "le", argv, argc, out);
}
static int f_gt(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_cmp(s, at, "gt", argv, argc, out);
}
static int f_ge(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_cmp(s, at, "ge", argv, argc, out);
}

static int f_json(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    if (want_args(s, at, "json", argc, 1) < 0)
        return -1;
    struct strbuf b = STRBUF_INIT;
    strbuf_append(&b, "");
    json_encode(&b, argv[0]);
    size_t l = b.len;
    char *r = strbuf_steal(&b);
    *out = json_stringn_nocheck(r, l);
    free(r);
    return 0;
}

static int f_join(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    const char *sep;
    if (want_args(s, at, "join", argc, 2) < 0 || want_string(s, at, argv[1], &sep) < 0)
        return -1;
    json_t *a = argv[0];
    if (!a)
        return xerr(s, at, "invalid value; expected []string");
    bool ok = json_is_array(a) || json_is_null(a);
    for (size_t i = 0; ok && json_is_array(a) && i < json_array_size(a); i++)
        ok = json_is_string(json_array_get(a, i));
    if (!ok)
        return xerr(s, at, "wrong type for value; expected []string; got %s", type_name(a));
    struct strbuf b = STRBUF_INIT;
    strbuf_append(&b, "");
    for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++) {
        if (i)
            strbuf_append_len(&b, sep, json_string_length(argv[1]));
        json_t *e = json_array_get(a, i);
        strbuf_append_len(&b, json_string_value(e), json_string_length(e));
    }
    size_t l = b.len;
    char *r = strbuf_steal(&b);
    *out = json_stringn_nocheck(r, l);
    free(r);
    return 0;
}

static int f_split(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    const char *str, *sep;
    if (want_args(s, at, "split", argc, 2) < 0 || want_string(s, at, argv[0], &str) < 0 ||
        want_string(s, at, argv[1], &sep) < 0)
        return -1;
    size_t n = json_string_length(argv[0]), sl = json_string_length(argv[1]);
    json_t *arr = json_array();
    if (sl == 0) {
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            while (j < n && ((unsigned char)str[j] & 0xC0) == 0x80)
                j++;
            json_array_append_new(arr, json_stringn_nocheck(str + i, j - i));
            i = j;
        }
    } else {
        size_t i = 0;
        for (;;) {
            const char *hit = NULL;
            for (size_t j = i; j + sl <= n; j++)
                if (memcmp(str + j, sep, sl) == 0) {
                    hit = str + j;
                    break;
                }
            if (!hit) {
                json_array_append_new(arr, json_stringn_nocheck(str + i, n - i));
                break;
            }
            json_array_append_new(arr, json_stringn_nocheck(str + i, (size_t)(hit - str) - i));
            i = (size_t)(hit - str) + sl;
        }
    }
    *out = arr;
    return 0;
}

static int f_case(struct exec *s, const struct node *at, const char *fn, json_t **argv, size_t argc,
                  json_t **out, int mode)
{
    const char *str;
    if (want_args(s, at, fn, argc, 1) < 0 || want_string(s, at, argv[0], &str) < 0)
        return -1;
    size_t n = json_string_length(argv[0]);
    char *c = xmalloc(n + 1);
    memcpy(c, str, n + 1);
    bool prev_sep = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c[i];
        if (mode == 0 && ch >= 'A' && ch <= 'Z')
            c[i] = (char)(ch + 32);
        else if (mode == 1 && ch >= 'a' && ch <= 'z')
            c[i] = (char)(ch - 32);
        else if (mode == 2) {
            /* strings.Title: upper-case letters that start a word */
            bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80 ||
                          (ch >= '0' && ch <= '9') || ch == '_';
            if (prev_sep && ch >= 'a' && ch <= 'z')
                c[i] = (char)(ch - 32);
            prev_sep = !letter;
        }
    }
    *out = json_stringn_nocheck(c, n);
    free(c);
    return 0;
}

static int f_lower(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_case(s, at, "lower", argv, argc, out, 0);
}
static int f_upper(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_case(s, at, "upper", argv, argc, out, 1);
}
static int f_title(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    return f_case(s, at, "title", argv, argc, out, 2);
}

static int f_truncate(struct exec *s, const struct node *at, json_t **argv, size_t argc,
                      json_t **out)
{
    const char *str;
    long long n;
    if (want_args(s, at, "truncate", argc, 2) < 0 || want_string(s, at, argv[0], &str) < 0 ||
        want_int(s, at, argv[1], &n) < 0)
        return -1;
    size_t l = json_string_length(argv[0]);
    if (n < 0)
        return xerr(s, at, "error calling truncate: slice bounds out of range [:%lld]", n);
    if ((size_t)n < l)
        l = (size_t)n;
    *out = json_stringn_nocheck(str, l);
    return 0;
}

static int f_trim(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    const char *str;
    if (want_args(s, at, "trim", argc, 1) < 0 || want_string(s, at, argv[0], &str) < 0)
        return -1;
    size_t a = 0, b = json_string_length(argv[0]);
    while (a < b && (is_space(str[a]) || str[a] == '\v' || str[a] == '\f'))
        a++;
    while (b > a && (is_space(str[b - 1]) || str[b - 1] == '\v' || str[b - 1] == '\f'))
        b--;
    *out = json_stringn_nocheck(str + a, b - a);
    return 0;
}

static int f_pad(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    const char *str;
    long long pre, post;
    if (want_args(s, at, "pad", argc, 3) < 0 || want_string(s, at, argv[0], &str) < 0 ||
        want_int(s, at, argv[1], &pre) < 0 || want_int(s, at, argv[2], &post) < 0)
        return -1;
    if (pre < 0 || post < 0 || pre > TMPL_MAX_OUTPUT || post > TMPL_MAX_OUTPUT)
        return xerr(s, at, "error calling pad: negative or too large count");
    struct strbuf b = STRBUF_INIT;
    strbuf_append(&b, "");
    for (long long i = 0; i < pre; i++)
        strbuf_putc(&b, ' ');
    strbuf_append_len(&b, str, json_string_length(argv[0]));
    for (long long i = 0; i < post; i++)
        strbuf_putc(&b, ' ');
    size_t l = b.len;
    char *r = strbuf_steal(&b);
    *out = json_stringn_nocheck(r, l);
    free(r);
    return 0;
}

/* and/or are evaluated lazily in call_func; these entries only make the names known */
static int f_lazy(struct exec *s, const struct node *at, json_t **argv, size_t argc, json_t **out)
{
    (void)argv;
    (void)argc;
    (void)out;
    return xerr(s, at, "internal: lazy function called");
}

static const struct func funcs[] = {
    {"and", f_lazy},      {"or", f_lazy},         {"not", f_not},
    {"eq", f_eq},         {"ne", f_ne},           {"lt", f_lt},
    {"le", f_le},         {"gt", f_gt},           {"ge", f_ge},
    {"len", f_len},       {"index", f_index},     {"print", f_print},
    {"printf", f_printf}, {"println", f_println}, {"json", f_json},
    {"join", f_join},     {"split", f_split},     {"lower", f_lower},
    {"upper", f_upper},   {"title", f_title},     {"truncate", f_truncate},
    {"trim", f_trim},     {"pad", f_pad},
};

static const struct func *find_func(const char *name)
{
    for (size_t i = 0; i < sizeof(funcs) / sizeof(*funcs); i++)
        if (strcmp(funcs[i].name, name) == 0)
            return &funcs[i];
    return NULL;
}

static int call_func(struct exec *s, const json_t *dot, const struct node *cmd, const json_t *final,
                     bool has_final, json_t **out)
{
    const struct node *fnode = cmd->kids[0];
    const struct func *f = find_func(fnode->text);
    size_t argc = cmd->nkids - 1 + (has_final ? 1 : 0);
    bool is_and = strcmp(f->name, "and") == 0, is_or = strcmp(f->name, "or") == 0;
    if (is_and || is_or) {
        if (argc < 1)
            return xerr(s, cmd, "wrong number of args for %s: want at least 1 got 0", f->name);
        json_t *v = NULL;
        for (size_t i = 0; i < argc; i++) {
            json_decref(v);
            v = NULL;
            if (i < cmd->nkids - 1) {
                if (eval_arg(s, dot, cmd->kids[i + 1], &v) < 0)
                    return -1;
            } else
                v = ref(final);
            bool t = truth(v);
            if ((is_and && !t) || (is_or && t))
                break;
        }
        *out = v;
        return 0;
    }
    json_t **argv = xcalloc(argc + 1, sizeof(*argv));
    int r = 0;
    for (size_t i = 0; i + 1 < cmd->nkids; i++)
        if ((r = eval_arg(s, dot, cmd->kids[i + 1], &argv[i])) < 0)
            break;
    if (r == 0 && has_final)
        argv[argc - 1] = ref(final);
    if (r == 0)
        r = f->fn(s, cmd, argv, argc, out);
    for (size_t i = 0; i < argc; i++)
        json_decref(argv[i]);
    free(argv);
    if (r == 0 && *out && json_is_string(*out) && json_string_length(*out) > TMPL_MAX_OUTPUT) {
        json_decref(*out);
        *out = NULL;
        return xerr(s, fnode, "output larger than %d bytes", TMPL_MAX_OUTPUT);
    }
    return r;
}

/* ------------------------------------------------------------------ podman's report layer */

bool tmpl_format_is_json(const char *format)
{
    const char *s = format;
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_space(s[n - 1]))
        n--;
    if (n == 4 && memcmp(s, "json", 4) == 0)
        return true;
    if (n < 4 || memcmp(s, "{{", 2) != 0 || memcmp(s + n - 2, "}}", 2) != 0)
        return false;
    size_t i = 2, e = n - 2;
    while (i < e && is_space(s[i]))
        i++;
    if (e - i < 4 || memcmp(s + i, "json", 4) != 0)
        return false;
    i += 4;
    while (i < e && is_space(s[i]))
        i++;
    if (i < e && s[i] == '.')
        i++;
    while (i < e && is_space(s[i]))
        i++;
    return i == e;
}

struct tmpl_report {
    tmpl_t *t;
    bool table;
    struct strbuf out;
};

/* "{{range .}}" at the start (spaces allowed inside the action) */
static bool starts_with_range_dot(const char *s)
{
    if (strncmp(s, "{{", 2) != 0)
        return false;
    s += 2;
    while (*s == ' ')
        s++;
    if (strncmp(s, "range", 5) != 0)
        return false;
    s += 5;
    while (*s == ' ')
        s++;
    if (*s++ != '.')
        return false;
    while (*s == ' ')
        s++;
    return strncmp(s, "}}", 2) == 0;
}

/* Builds the text podman executes: containers/common's NormalizeFormat (when normalize) and
 * the {{range .}}...{{end -}} around it; map[i] is the user's offset of byte i. */
static char *report_text(const char *format, bool table, bool normalize, int **map_out,
                         size_t *len_out)
{
    static const char pre[] = "{{range .}}", post[] = "{{end -}}";
    size_t ulen = strlen(format);
    struct strbuf b = STRBUF_INIT;
    int *map = xcalloc(ulen + sizeof(pre) + sizeof(post) + 4, sizeof(int));
    bool wrap = table || !starts_with_range_dot(format);
    if (wrap)
        strbuf_append(&b, pre); /* map: 0 */
    size_t i = 0;
    while (i < ulen) {
        size_t at = b.len;
        if (normalize && format[i] == '\\' && i + 1 < ulen &&
            (format[i + 1] == 't' || format[i + 1] == 'n')) {
            strbuf_putc(&b, format[i + 1] == 't' ? '\t' : '\n');
            map[at] = (int)i;
            i += 2;
            continue;
        }
        if (normalize && table && strncmp(format + i, "table ", 6) == 0) {
            i += 6;
            continue;
        }
        strbuf_putc(&b, normalize && table && format[i] == ' ' ? '\t' : format[i]);
        map[at] = (int)i;
        i++;
    }
    if (normalize && (b.len == 0 || b.buf[b.len - 1] != '\n')) {
        map[b.len] = (int)ulen;
        strbuf_putc(&b, '\n');
    }
    if (wrap) {
        for (size_t k = 0; k < sizeof(post) - 1; k++)
            map[b.len + k] = (int)ulen;
        strbuf_append(&b, post);
    }
    map[b.len] = (int)ulen;
    *len_out = b.len;
    *map_out = map;
    return strbuf_steal(&b);
}

int tmpl_report_new(const char *format, tmpl_report_t **out, berth_error_t *err)
{
    if (check_text(format, strlen(format), err) < 0)
        return -1;
    bool table = strncmp(format, "table ", 6) == 0;
    tmpl_t *t = NULL;
    for (int pass = 0; pass < 2 && !t; pass++) {
        int *map;
        size_t len;
        char *text = report_text(format, table, pass == 0, &map, &len);
        berth_error_t e2 = NULL;
        /* podman parses the text as the user wrote it when the normalised one does not parse
         * (a "\n" inside a quoted string) */
        int r = parse_mapped(text, len, format, map, &t, pass == 0 ? err : &e2);
        berth_error_release(&e2);
        free(text);
        if (r < 0)
            free(map);
    }
    if (!t)
        return -1;
    berth_error_release(err);
    tmpl_report_t *rep = xcalloc(1, sizeof(*rep));
    rep->t = t;
    rep->table = table;
    *out = rep;
    return 0;
}

bool tmpl_report_is_table(const tmpl_report_t *r)
{
    return r->table;
}

int tmpl_report_run(tmpl_report_t *r, const json_t *items, berth_error_t *err)
{
    return tmpl_execute(r->t, items, &r->out, err);
}

int tmpl_report_headers(tmpl_report_t *r, const json_t *headers, berth_error_t *err)
{
    json_t *a = json_array();
    json_array_append(a, (json_t *)headers);
    int ret = tmpl_execute(r->t, a, &r->out, err);
    json_decref(a);
    return ret;
}

int tmpl_report_finish(tmpl_report_t *r, char **out, berth_error_t *err)
{
    const char *s = r->out.buf ? r->out.buf : "";
    char *o = r->table ? tmpl_tabwrite(s, 12, 2, TMPL_MAX_OUTPUT) : xstrdup(s);
    if (!o)
        return berth_error_make_status(err, EFBIG, "template: table larger than %d bytes",
                                       TMPL_MAX_OUTPUT);
    *out = o;
    return 0;
}

void tmpl_report_free(tmpl_report_t *r)
{
    if (!r)
        return;
    tmpl_free(r->t);
    strbuf_release(&r->out);
    free(r);
}

/* ------------------------------------------------------------------ tabwriter */

struct cell {
    size_t start, len, width;
};
struct tline {
    struct cell *cells;
    size_t n;
};

struct tw {
    const char *text;
    struct tline *lines;
    size_t nlines;
    size_t *widths;
    size_t nwidths;
    size_t minwidth, padding;
    size_t max;
    bool overflow;
    struct strbuf out;
};

static void tw_write_lines(struct tw *w, size_t l0, size_t l1)
{
    for (size_t i = l0; i < l1 && !w->overflow; i++) {
        struct tline *ln = &w->lines[i];
        size_t need = 1;
        for (size_t j = 0; j < ln->n; j++)
            need +=
                j < w->nwidths && w->widths[j] > ln->cells[j].len ? w->widths[j] : ln->cells[j].len;
        if (w->out.len + need > w->max) {
            w->overflow = true;
            return;
        }
        for (size_t j = 0; j < ln->n; j++) {
            struct cell *c = &ln->cells[j];
            strbuf_append_len(&w->out, w->text + c->start, c->len);
            if (j < w->nwidths)
                for (size_t k = c->width; k < w->widths[j]; k++)
                    strbuf_putc(&w->out, ' ');
        }
        if (i + 1 < w->nlines)
            strbuf_putc(&w->out, '\n');
    }
}

static void tw_format(struct tw *w, size_t line0, size_t line1)
{
    size_t column = w->nwidths;
    for (size_t this = line0; this < line1; this ++) {
        if (column + 1 >= w->lines[this].n)
            continue;
        tw_write_lines(w, line0, this);
        line0 = this;
        size_t width = w->minwidth;
        for (; this < line1; this ++) {
            struct tline *ln = &w->lines[this];
            if (column + 1 >= ln->n)
                break;
            size_t cw = ln->cells[column].width + w->padding;
            if (cw > width)
                width = cw;
        }
        w->widths = xrealloc(w->widths, (w->nwidths + 1) * sizeof(*w->widths));
        w->widths[w->nwidths++] = width;
        tw_format(w, line0, this);
        w->nwidths--;
        line0 = this;
    }
    tw_write_lines(w, line0, line1);
}

char *tmpl_tabwrite(const char *text, size_t minwidth, size_t padding, size_t max)
{
    struct tw w = {.text = text, .minwidth = minwidth, .padding = padding, .max = max};
    size_t n = strlen(text);
    struct tline cur = {0};
    size_t cstart = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && text[i] != '\t' && text[i] != '\n')
            continue;
        cur.cells = xrealloc(cur.cells, (cur.n + 1) * sizeof(*cur.cells));
        cur.cells[cur.n++] =
            (struct cell){cstart, i - cstart, rune_count(text + cstart, i - cstart)};
        cstart = i + 1;
        if (i == n || text[i] == '\n') {
            w.lines = xrealloc(w.lines, (w.nlines + 1) * sizeof(*w.lines));
            w.lines[w.nlines++] = cur;
            cur = (struct tline){0};
        }
    }
    tw_format(&w, 0, w.nlines);
    for (size_t i = 0; i < w.nlines; i++)
        free(w.lines[i].cells);
    free(w.lines);
    free(w.widths);
    if (w.overflow) {
        strbuf_release(&w.out);
        return NULL;
    }
    return strbuf_steal(&w.out);
}
