/* Resolving untrusted paths inside a root directory.
 *
 * Every path that comes from an image, a tarball, a Containerfile or a build context is resolved
 * with these functions: ".." cannot climb above the root and symlinks (absolute or relative) are
 * resolved as if the root were "/".  The kernel's openat2(RESOLVE_IN_ROOT) is used when
 * available; otherwise a component-by-component walk with O_NOFOLLOW and readlinkat gives the
 * same semantics (with a limit of 40 symlinks, ELOOP beyond). */
#ifndef BERTH_PATH_H
#define BERTH_PATH_H

#include "common/error.h"

#include <stdbool.h>
#include <sys/types.h>

/* Opens `path` (absolute or relative, both taken relative to the root) inside root_fd.
 * flags/mode as for openat; O_CREAT creates the final component inside the root (the parent
 * must exist).  With O_NOFOLLOW the final component is not followed. */
BERTH_MUST_CHECK int path_openat_in_root(int root_fd, const char *path, int flags, mode_t mode,
                                         berth_error_t *err);

/* Opens the parent directory of `path` inside the root (O_PATH|O_DIRECTORY semantics are not
 * required: returns an O_RDONLY|O_DIRECTORY fd) and stores the final component in *base (owned).
 * The final component is never "..", "." or empty: such paths are an error (EINVAL).  When
 * create_parents is true, missing intermediate directories are created with mode 0755. */
BERTH_MUST_CHECK int path_open_parent_in_root(int root_fd, const char *path, bool create_parents,
                                              char **base, berth_error_t *err);

/* Lexical clean, as Go's filepath.Clean but always relative to the root: returns a path without
 * leading '/', without "." or ".." components, "" for the root itself.  Never escapes. */
char *path_clean_relative(const char *path);

/* Resolves `path` inside the root and returns the resulting path relative to the root
 * (following symlinks like path_openat_in_root, final component followed if follow_last).
 * Components that do not exist are kept lexically. */
BERTH_MUST_CHECK int path_resolve_in_root(int root_fd, const char *path, bool follow_last,
                                          char **out, berth_error_t *err);

/* For tests: force the fallback walk even when openat2 is available. */
void path_force_fallback(bool on);

#endif
