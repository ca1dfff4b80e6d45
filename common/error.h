/* berth error type.
 *
 * Every function that can fail takes `berth_error_t *err` as its last argument and returns a
 * negative value on failure, having stored an error in *err.  On success *err is untouched.
 * The caller owns the error and releases it with berth_error_release() (or declares the variable
 * with `cleanup_error`).  To add context while propagating, use berth_error_wrap(), which
 * prefixes the existing message: `pull "x": open "/a/b": No such file or directory`.
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include <stdarg.h>

/* On the declaration of every function that can fail (it takes a berth_error_t *): a caller
 * that drops the result gets a warning (an error under -Werror, as in CI; make lint checks the
 * headers carry it).  A deliberate ignore is written IGNORE_RESULT(call) so the reader sees it
 * is one; gcc does not accept a plain (void) cast for this attribute, `!` uses the value. */
#define BERTH_MUST_CHECK __attribute__((warn_unused_result))
#define IGNORE_RESULT(x) ((void)!(x))

struct berth_error_s {
    int status; /* errno-style cause (0 if none); ENOENT means "not found" across modules */
    char *msg;  /* full message, owned */
};
typedef struct berth_error_s *berth_error_t;

/* Sets *err to a new error; returns -1.  If errno_val != 0, ": strerror(errno_val)" is appended
 * and the status is errno_val.  If *err already holds an error it is replaced. */
int berth_error_make(berth_error_t *err, int errno_val, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same with status set but no strerror suffix (e.g. ENOENT for a missing manifest whose cause
 * is described by fmt). */
int berth_error_make_status(berth_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes context to the error in *err ("context: old"); returns -1.  If *err is NULL it creates
 * an error with just the context. */
int berth_error_wrap(berth_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int berth_error_vmake(berth_error_t *err, int errno_val, const char *fmt, va_list ap);

void berth_error_release(berth_error_t *err);
const char *berth_error_msg(const berth_error_t err);
int berth_error_status(const berth_error_t err);

static inline void berth_error_cleanup(berth_error_t *err)
{
    berth_error_release(err);
}
#define cleanup_error __attribute__((cleanup(berth_error_cleanup)))

#endif
