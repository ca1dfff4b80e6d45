/* The TOML subset registries.conf uses (see toml.h). */
#include "transport/toml.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/strutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void toml_value_clear(struct toml_value *v)
{
    free(v->s);
    strv_free(v->arr);
    memset(v, 0, sizeof(*v));
}

int toml_error(struct toml_lexer *lx, berth_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *m = xvasprintf(fmt, ap);
    va_end(ap);
    return berth_error_make_status(err, EINVAL, "%s:%d: %s", lx->file, lx->line, m);
}

/* Skips spaces, tabs, comments; newlines too when nl. */
void toml_skip(struct toml_lexer *lx, bool nl)
{
    while (lx->p < lx->end) {
        char ch = *lx->p;
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            lx->p++;
        } else if (ch == '#') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else if (ch == '\n' && nl) {
            lx->line++;
            lx->p++;
        } else {
            break;
        }
    }
}

int toml_parse_string(struct toml_lexer *lx, char **out, berth_error_t *err)
{
    char q = *lx->p++;
    if (lx->p + 1 < lx->end && lx->p[0] == q && lx->p[1] == q)
        return toml_error(lx, err, "multi-line strings are not supported");
    size_t cap = 64, n = 0;
    char *s = xmalloc(cap);
    while (lx->p < lx->end && *lx->p != q) {
        char ch = *lx->p++;
        if (ch == '\n') {
            free(s);
            return toml_error(lx, err, "unterminated string");
        }
        if (ch == '\\' && q == '"') {
            if (lx->p >= lx->end)
                break;
            char e = *lx->p++;
            switch (e) {
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            case '"':
            case '\\':
                ch = e;
                break;
            default:
                free(s);
                return toml_error(lx, err, "unsupported escape \"\\%c\" in string", e);
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            s = xrealloc(s, cap);
        }
        s[n++] = ch;
    }
    if (lx->p >= lx->end) {
        free(s);
        return toml_error(lx, err, "unterminated string");
    }
    lx->p++;
    s[n] = '\0';
    *out = s;
    return 0;
}

static bool bare_key_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* key, possibly dotted ("a.b" or "registries.search"), returned joined with '.' */
int toml_parse_key(struct toml_lexer *lx, char **out, bool *quoted, berth_error_t *err)
{
    char *acc = NULL;
    *quoted = false;
    for (;;) {
        toml_skip(lx, false);
        char *part = NULL;
        if (lx->p < lx->end && (*lx->p == '"' || *lx->p == '\'')) {
            if (toml_parse_string(lx, &part, err) < 0) {
                free(acc);
                return -1;
            }
            *quoted = true;
        } else {
            const char *s = lx->p;
            while (lx->p < lx->end && bare_key_char(*lx->p))
                lx->p++;
            if (lx->p == s) {
                free(acc);
                return toml_error(lx, err, "expected a key");
            }
            part = xstrndup(s, (size_t)(lx->p - s));
        }
        if (acc) {
            char *t = xasprintf("%s.%s", acc, part);
            free(acc);
            free(part);
            acc = t;
        } else {
            acc = part;
        }
        toml_skip(lx, false);
        if (lx->p < lx->end && *lx->p == '.') {
            lx->p++;
            continue;
        }
        break;
    }
    *out = acc;
    return 0;
}

int toml_parse_value(struct toml_lexer *lx, struct toml_value *v, berth_error_t *err)
{
    memset(v, 0, sizeof(*v));
    toml_skip(lx, false);
    if (lx->p >= lx->end || *lx->p == '\n')
        return toml_error(lx, err, "missing value");
    char ch = *lx->p;
    if (ch == '"' || ch == '\'') {
        v->type = TOML_STRING;
        return toml_parse_string(lx, &v->s, err);
    }
    if (ch == '[') {
        lx->p++;
        v->type = TOML_ARRAY;
        size_t n = 0;
        v->arr = xcalloc(1, sizeof(char *));
        for (;;) {
            toml_skip(lx, true);
            if (lx->p >= lx->end)
                return toml_error(lx, err, "unterminated array");
            if (*lx->p == ']') {
                lx->p++;
                return 0;
            }
            if (*lx->p != '"' && *lx->p != '\'')
                return toml_error(lx, err, "only arrays of strings are supported");
            char *s;
            if (toml_parse_string(lx, &s, err) < 0)
                return -1;
            v->arr = xreallocarray(v->arr, n + 2, sizeof(char *));
            v->arr[n++] = s;
            v->arr[n] = NULL;
            toml_skip(lx, true);
            if (lx->p < lx->end && *lx->p == ',') {
                lx->p++;
                continue;
            }
            toml_skip(lx, true);
            if (lx->p < lx->end && *lx->p == ']') {
                lx->p++;
                return 0;
            }
            return toml_error(lx, err, "expected ',' or ']' in array");
        }
    }
    if (ch == '{')
        return toml_error(lx, err, "inline tables are not supported");
    const char *s = lx->p;
    while (lx->p < lx->end && (bare_key_char(*lx->p) || *lx->p == '+'))
        lx->p++;
    size_t n = (size_t)(lx->p - s);
    if (n == 4 && strncmp(s, "true", 4) == 0) {
        v->type = TOML_BOOL;
        v->b = true;
        return 0;
    }
    if (n == 5 && strncmp(s, "false", 5) == 0) {
        v->type = TOML_BOOL;
        v->b = false;
        return 0;
    }
    if (n > 0 && n < 20) {
        char buf[24];
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *e;
        long long x = strtoll(buf, &e, 10);
        if (*e == '\0') {
            v->type = TOML_INT;
            v->i = x;
            return 0;
        }
    }
    return toml_error(lx, err, "invalid value \"%.*s\"", (int)(n ? n : 1), s);
}

const char *toml_type_name(enum toml_type t)
{
    switch (t) {
    case TOML_STRING:
        return "a string";
    case TOML_BOOL:
        return "a boolean";
    case TOML_INT:
        return "an integer";
    default:
        return "an array";
    }
}
