/* Scope-bound cleanup helpers.  Ownership leaves a variable with `*out = p; p = NULL;` (or
 * steal_pointer(&p)).  Each module declares a cleanup_<type> next to its type's free function
 * (cleanup_json is in common/json.h). */
#ifndef BERTH_CLEANUP_H
#define BERTH_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_freep(void *p)
{
    void **pp = (void **)p;
    free(*pp);
    *pp = NULL;
}

static inline void cleanup_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
        *fd = -1;
    }
}

static inline void cleanup_filep(FILE **f)
{
    if (*f) {
        fclose(*f);
        *f = NULL;
    }
}

static inline void cleanup_dirp(DIR **d)
{
    if (*d) {
        closedir(*d);
        *d = NULL;
    }
}

/* NULL-terminated array of strings */
static inline void cleanup_strvp(char ***v)
{
    if (*v) {
        for (char **p = *v; *p; p++)
            free(*p);
        free(*v);
        *v = NULL;
    }
}

#define cleanup_free  __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))
#define cleanup_file  __attribute__((cleanup(cleanup_filep)))
#define cleanup_dir   __attribute__((cleanup(cleanup_dirp)))
#define cleanup_strv  __attribute__((cleanup(cleanup_strvp)))

static inline void *steal_pointer_impl(void *pp)
{
    void **p = (void **)pp;
    void *r = *p;
    *p = NULL;
    return r;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))steal_pointer_impl(pp))

static inline int steal_fd(int *fd)
{
    int r = *fd;
    *fd = -1;
    return r;
}

#endif
