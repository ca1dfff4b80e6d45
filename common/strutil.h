/* String vectors (NULL-terminated arrays of owned strings) and a growable string buffer. */
#ifndef BERTH_STRUTIL_H
#define BERTH_STRUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

size_t strv_len(char *const *v);
void strv_free(char **v);
/* Appends a copy of s; *v may be NULL. */
void strv_add(char ***v, const char *s);
/* Appends s itself (ownership moves into the vector). */
void strv_add_take(char ***v, char *s);
bool strv_contains(char *const *v, const char *s);
/* Removes every element equal to s; returns how many were removed. */
size_t strv_remove(char **v, const char *s);
char **strv_dup(char *const *v); /* NULL for NULL */
/* Appends copies of the strings of add (NULL: nothing). */
void strv_extend(char ***v, char *const *add);
/* v itself, or a new empty vector when v is NULL: for callers that promise a vector. */
char **strv_or_empty(char **v);
/* The strings joined with sep (owned; "" for an empty or NULL vector). */
char *strv_join(char *const *v, const char *sep);
/* Like strv_contains, ignoring ASCII case. */
bool strv_contains_nocase(char *const *v, const char *s);

struct strbuf {
    char *buf; /* NUL-terminated, NULL until something is appended */
    size_t len;
    size_t cap;
};
#define STRBUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void strbuf_append_len(struct strbuf *b, const char *s, size_t n);
void strbuf_append(struct strbuf *b, const char *s);
void strbuf_putc(struct strbuf *b, char c);
void strbuf_appendf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the string (never NULL: "" when empty) and resets the buffer. */
char *strbuf_steal(struct strbuf *b);
void strbuf_release(struct strbuf *b);
static inline void cleanup_strbufp(struct strbuf *b)
{
    strbuf_release(b);
}
#define cleanup_strbuf __attribute__((cleanup(cleanup_strbufp)))

#endif
