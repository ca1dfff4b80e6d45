/* String vectors (NULL-terminated arrays of owned strings) and a growable string buffer. */
#ifndef BERTH_STRUTIL_H
#define BERTH_STRUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

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

/* A growing string that knows its limit (curl's dynbuf shape): the limit is set at init, an
 * append that would pass it fails (-1), frees what was collected and leaves the buffer failed, so
 * every later append fails too and the collected text can only be taken with strbuf_finish,
 * which reports the overflow.  No caller can get a silently cut string.
 *
 * STRBUF_INIT has no limit of its own (STRBUF_NO_LIMIT: appends never fail, like xmalloc they
 * abort on exhaustion); text read from outside is collected with strbuf_init(&b, max). */
#define STRBUF_NO_LIMIT ((size_t)-1 / 2)
struct strbuf {
    char *buf; /* NUL-terminated, NULL until something is appended */
    size_t len;
    size_t cap;
    size_t max;  /* limit on len; 0 (STRBUF_INIT) = STRBUF_NO_LIMIT */
    bool failed; /* an append passed max: buf was freed */
};
#define STRBUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0, false                                                                       \
    }
void strbuf_init(struct strbuf *b, size_t max);
/* 0, or -1 when the result would be longer than the limit (see above). */
int strbuf_append_len(struct strbuf *b, const char *s, size_t n);
int strbuf_append(struct strbuf *b, const char *s);
int strbuf_putc(struct strbuf *b, char c);
int strbuf_appendf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The collected string (owned; "" when empty; *len optional) and the buffer reset; EFBIG naming
 * `what` when an append passed the limit. */
BERTH_MUST_CHECK int strbuf_finish(struct strbuf *b, const char *what, char **out, size_t *len,
                                   berth_error_t *err);
/* Returns the string (never NULL: "" when empty) and resets the buffer.  Only for buffers that
 * cannot fail (STRBUF_INIT); a failed bounded buffer aborts here: use strbuf_finish. */
char *strbuf_steal(struct strbuf *b);
void strbuf_release(struct strbuf *b);
static inline void cleanup_strbufp(struct strbuf *b)
{
    strbuf_release(b);
}
#define cleanup_strbuf __attribute__((cleanup(cleanup_strbufp)))

#endif
