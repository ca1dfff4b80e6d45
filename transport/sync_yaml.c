/* The small YAML subset skopeo-sync files use (see sync.h), read into JSON. */
#include "transport/sync.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct yline {
    int indent;
    int lineno;
    char *text; /* without indentation and comments */
};

static int yerr(berth_error_t *err, const char *what, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int yerr(berth_error_t *err, const char *what, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *m = xvasprintf(fmt, ap);
    va_end(ap);
    return berth_error_make_status(err, EINVAL, "%s:%d: %s", what, line, m);
}

static char *unquote(const char *s, size_t n, bool *ok)
{
    *ok = true;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        char *o = xmalloc(n);
        size_t k = 0;
        for (size_t i = 1; i + 1 < n; i++) {
            if (s[i] == '\\' && i + 2 < n) {
                i++;
                o[k++] = s[i] == 'n' ? '\n' : s[i] == 't' ? '\t' : s[i];
            } else {
                o[k++] = s[i];
            }
        }
        o[k] = '\0';
        return o;
    }
    if (n >= 2 && s[0] == '\'' && s[n - 1] == '\'') {
        char *o = xmalloc(n);
        size_t k = 0;
        for (size_t i = 1; i + 1 < n; i++) {
            o[k++] = s[i];
            if (s[i] == '\'' && s[i + 1] == '\'')
                i++;
        }
        o[k] = '\0';
        return o;
    }
    if (n > 0 && (s[0] == '"' || s[0] == '\'' || s[0] == '&' || s[0] == '*' || s[0] == '!' ||
                  s[0] == '|' || s[0] == '>'))
        *ok = false;
    return xstrndup(s, n);
}

static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

static int inline_value(const char *s, const char *what, int line, json_t **out, berth_error_t *err)
{
    size_t n = strlen(s);
    s = trim(s, &n);
    bool ok;
    if (n > 0 && s[0] == '[') {
        if (s[n - 1] != ']')
            return yerr(err, what, line, "unterminated flow sequence");
        json_t *arr = json_array();
        const char *p = s + 1, *end = s + n - 1;
        while (p < end) {
            const char *q = p;
            char quote = 0;
            while (q < end && (quote || *q != ',')) {
                if (!quote && (*q == '"' || *q == '\''))
                    quote = *q;
                else if (quote && *q == quote)
                    quote = 0;
                q++;
            }
            size_t l = (size_t)(q - p);
            const char *t = trim(p, &l);
            if (l > 0) {
                if (t[0] == '[' || t[0] == '{') {
                    json_decref(arr);
                    return yerr(err, what, line, "nested flow collections are not supported");
                }
                char *v = unquote(t, l, &ok);
                json_array_append_new(arr, json_string(v));
                free(v);
            }
            p = q + 1;
        }
        *out = arr;
        return 0;
    }
    if (n > 0 && s[0] == '{') {
        size_t l = n;
        if (n >= 2 && s[n - 1] == '}') {
            l = n - 2;
            const char *t = s + 1;
            trim(t, &l);
            if (l == 0) {
                *out = json_object();
                return 0;
            }
        }
        return yerr(err, what, line, "flow mappings are not supported; use block style");
    }
    if (n == 0 || (n == 1 && s[0] == '~') || (n == 4 && strncmp(s, "null", 4) == 0)) {
        *out = json_null();
        return 0;
    }
    char *v = unquote(s, n, &ok);
    if (!ok) {
        free(v);
        return yerr(err, what, line, "unsupported YAML value \"%.*s\"", (int)n, s);
    }
    *out = json_string(v);
    free(v);
    return 0;
}

static int parse_block(struct yline *L, size_t n, size_t *i, int indent, const char *what,
                       json_t **out, berth_error_t *err);

static bool is_seq_item(const char *t)
{
    return t[0] == '-' && (t[1] == ' ' || t[1] == '\0');
}

/* Finds the ':' that ends a mapping key (followed by space or end), outside quotes. */
static const char *key_colon(const char *t)
{
    char quote = 0;
    for (const char *p = t; *p; p++) {
        if (!quote && (*p == '"' || *p == '\'') && p == t)
            quote = *p;
        else if (quote && *p == quote)
            quote = 0;
        else if (!quote && *p == ':' && (p[1] == ' ' || p[1] == '\0'))
            return p;
    }
    return NULL;
}

static int parse_block(struct yline *L, size_t n, size_t *i, int indent, const char *what,
                       json_t **out, berth_error_t *err)
{
    if (is_seq_item(L[*i].text)) {
        json_t *arr = json_array();
        while (*i < n && L[*i].indent == indent && is_seq_item(L[*i].text)) {
            const char *item = L[*i].text + 1;
            int line = L[*i].lineno;
            if (key_colon(item)) {
                json_decref(arr);
                return yerr(err, what, line, "mappings inside sequences are not supported");
            }
            json_t *v = NULL;
            if (inline_value(item, what, line, &v, err) < 0) {
                json_decref(arr);
                return -1;
            }
            json_array_append_new(arr, v);
            (*i)++;
        }
        if (*i < n && L[*i].indent > indent) {
            json_decref(arr);
            return yerr(err, what, L[*i].lineno, "unexpected indentation");
        }
        *out = arr;
        return 0;
    }
    json_t *obj = json_object();
    while (*i < n && L[*i].indent == indent) {
        const char *t = L[*i].text;
        int line = L[*i].lineno;
        if (is_seq_item(t)) {
            json_decref(obj);
            return yerr(err, what, line, "a sequence item where a mapping key was expected");
        }
        const char *colon = key_colon(t);
        if (!colon) {
            json_decref(obj);
            return yerr(err, what, line, "expected \"key: value\"");
        }
        size_t kl = (size_t)(colon - t);
        const char *k = trim(t, &kl);
        bool ok;
        cleanup_free char *key = unquote(k, kl, &ok);
        if (json_object_get(obj, key)) {
            json_decref(obj);
            return yerr(err, what, line, "duplicate key \"%s\"", key);
        }
        (*i)++;
        json_t *v = NULL;
        const char *rest = colon + 1;
        while (*rest == ' ')
            rest++;
        if (*rest == '\0' && *i < n &&
            (L[*i].indent > indent || (L[*i].indent == indent && is_seq_item(L[*i].text)))) {
            if (parse_block(L, n, i, L[*i].indent, what, &v, err) < 0) {
                json_decref(obj);
                return -1;
            }
        } else if (inline_value(rest, what, line, &v, err) < 0) {
            json_decref(obj);
            return -1;
        }
        json_object_set_new(obj, key, v);
    }
    if (*i < n && L[*i].indent > indent) {
        json_decref(obj);
        return yerr(err, what, L[*i].lineno, "unexpected indentation");
    }
    *out = obj;
    return 0;
}

int sync_yaml_parse(const char *text, size_t len, const char *what, json_t **out,
                    berth_error_t *err)
{
    struct yline *L = NULL;
    size_t n = 0;
    int lineno = 0;
    int ret = -1;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        int ind = 0;
        const char *s = p;
        while (s < le && *s == ' ') {
            s++;
            ind++;
        }
        if (s < le && *s == '\t') {
            yerr(err, what, lineno, "tabs are not allowed for indentation");
            goto out;
        }
        /* strip a comment outside quotes */
        const char *c = s;
        char quote = 0;
        const char *cut = le;
        for (; c < le; c++) {
            if (!quote && (*c == '"' || *c == '\''))
                quote = *c;
            else if (quote && *c == quote)
                quote = 0;
            else if (!quote && *c == '#' && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
                cut = c;
                break;
            }
        }
        size_t l = (size_t)(cut - s);
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\r' || s[l - 1] == '\t'))
            l--;
        if (l > 0 && !(l == 3 && strncmp(s, "---", 3) == 0)) {
            L = xreallocarray(L, n + 1, sizeof(*L));
            L[n].indent = ind;
            L[n].lineno = lineno;
            L[n].text = xstrndup(s, l);
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    if (n == 0) {
        *out = json_object();
        ret = 0;
        goto out;
    }
    size_t i = 0;
    json_t *root = NULL;
    if (parse_block(L, n, &i, L[0].indent, what, &root, err) < 0)
        goto out;
    if (i < n) {
        json_decref(root);
        yerr(err, what, L[i].lineno, "unexpected indentation");
        goto out;
    }
    *out = root;
    ret = 0;
out:
    for (size_t k = 0; k < n; k++)
        free(L[k].text);
    free(L);
    return ret;
}
