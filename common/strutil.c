#include "common/strutil.h"
#include "common/alloc.h"

#include <stdio.h>
#include <stdint.h>
#include <stdarg.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void strv_free(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

void strv_add_take(char ***v, char *s)
{
    size_t n = strv_len(*v);
    *v = xreallocarray(*v, n + 2, sizeof(char *));
    (*v)[n] = s;
    (*v)[n + 1] = NULL;
}

void strv_add(char ***v, const char *s)
{
    strv_add_take(v, xstrdup(s));
}

bool strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

size_t strv_remove(char **v, const char *s)
{
    size_t removed = 0, j = 0;
    for (size_t i = 0; v && v[i]; i++) {
        if (strcmp(v[i], s) == 0) {
            free(v[i]);
            removed++;
        } else {
            v[j++] = v[i];
        }
    }
    if (v)
        v[j] = NULL;
    return removed;
}

char **strv_dup(char *const *v)
{
    if (v == NULL)
        return NULL;
    size_t n = strv_len(v);
    char **r = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        r[i] = xstrdup(v[i]);
    return r;
}

void strv_extend(char ***v, char *const *add)
{
    for (size_t i = 0; add && add[i]; i++)
        strv_add(v, add[i]);
}

char **strv_or_empty(char **v)
{
    return v ? v : xcalloc(1, sizeof(char *));
}

char *strv_join(char *const *v, const char *sep)
{
    struct strbuf b = STRBUF_INIT;
    for (size_t i = 0; v && v[i]; i++) {
        if (i > 0)
            strbuf_append(&b, sep);
        strbuf_append(&b, v[i]);
    }
    return strbuf_steal(&b);
}

bool strv_contains_nocase(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcasecmp(v[i], s) == 0)
            return true;
    return false;
}

void strbuf_init(struct strbuf *b, size_t max)
{
    b->buf = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->failed = false;
}

static size_t limit_of(const struct strbuf *b)
{
    return b->max ? b->max : STRBUF_NO_LIMIT;
}

int strbuf_append_len(struct strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return -1;
    if (n > limit_of(b) - b->len) {
        if (!b->max)
            abort(); /* STRBUF_NO_LIMIT is half the address space: exhaustion, as in xmalloc */
        strbuf_release(b);
        b->failed = true;
        return -1;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        b->buf = xrealloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

int strbuf_append(struct strbuf *b, const char *s)
{
    return strbuf_append_len(b, s, strlen(s));
}

int strbuf_putc(struct strbuf *b, char c)
{
    return strbuf_append_len(b, &c, 1);
}

int strbuf_appendf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    int r = strbuf_append(b, s);
    free(s);
    return r;
}

int strbuf_finish(struct strbuf *b, const char *what, char **out, size_t *len, berth_error_t *err)
{
    if (b->failed) {
        size_t max = b->max;
        strbuf_release(b);
        return berth_error_make_status(err, EFBIG, "%s: larger than %zu bytes", what, max);
    }
    if (len)
        *len = b->len;
    *out = strbuf_steal(b);
    return 0;
}

char *strbuf_steal(struct strbuf *b)
{
    if (b->failed)
        abort(); /* a bounded buffer is finished with strbuf_finish */
    char *r = b->buf ? b->buf : xstrdup("");
    b->buf = NULL;
    b->len = b->cap = 0;
    return r;
}

void strbuf_release(struct strbuf *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
