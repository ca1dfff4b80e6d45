#include "common/error.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int berth_error_vmake(berth_error_t *err, int errno_val, const char *fmt, va_list ap)
{
    char *base = xvasprintf(fmt, ap);
    char *msg = base;
    if (errno_val != 0) {
        msg = xasprintf("%s: %s", base, strerror(errno_val));
        free(base);
    }
    if (err == NULL) {
        free(msg);
        return -1;
    }
    berth_error_release(err);
    *err = xzalloc(sizeof(**err));
    (*err)->status = errno_val;
    (*err)->msg = msg;
    return -1;
}

int berth_error_make(berth_error_t *err, int errno_val, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    berth_error_vmake(err, errno_val, fmt, ap);
    va_end(ap);
    return -1;
}

int berth_error_make_status(berth_error_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    berth_error_vmake(err, 0, fmt, ap);
    va_end(ap);
    if (err && *err)
        (*err)->status = status;
    return -1;
}

int berth_error_wrap(berth_error_t *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    if (*err == NULL) {
        *err = xzalloc(sizeof(**err));
        (*err)->msg = ctx;
        return -1;
    }
    char *msg = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = msg;
    return -1;
}

void berth_error_release(berth_error_t *err)
{
    if (err == NULL || *err == NULL)
        return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}

const char *berth_error_msg(const berth_error_t err)
{
    return err && err->msg ? err->msg : "unknown error";
}

int berth_error_status(const berth_error_t err)
{
    return err ? err->status : 0;
}
