/* .containerignore / .dockerignore matching as docker does it (moby's patternmatcher and
 * ignorefile packages).
 *
 * File format: one pattern a line; a line starting with '#' is a comment; blank lines are
 * skipped; surrounding whitespace is trimmed; patterns are cleaned like Go's filepath.Clean and a
 * leading '/' is dropped ("/a" == "a"); '!' marks an exception that re-includes what an earlier
 * pattern excluded.  Syntax: '*' any run of characters except '/', '?' one character except '/',
 * "[...]" a character class ('^' negates, ranges, '\' escapes), '\' escapes the next character,
 * "**" any number of directories (also none).  A path is excluded when the last pattern that
 * matches it or one of its parent directories is not an exception.
 */
#ifndef BERTH_BUILD_IGNORE_H
#define BERTH_BUILD_IGNORE_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

#define IGNORE_FILE_MAX_SIZE (4u << 20)

struct ignore;

/* Parses the content of an ignore file (ReadAll + NewPatternMatcher).  A malformed pattern
 * ("[a", "!", trailing '\') is an error naming the pattern. */
BERTH_MUST_CHECK int ignore_parse(const char *buf, size_t len, struct ignore **out,
                                  berth_error_t *err);
/* Builds a matcher from patterns already split into lines (each cleaned as in a file). */
BERTH_MUST_CHECK int ignore_new(const char *const *patterns, size_t n, struct ignore **out,
                                berth_error_t *err);
/* Loads the ignore file of a build context.  Looks, in order, for
 * "<containerfile>.containerignore" and "<containerfile>.dockerignore" next to the Containerfile
 * (if containerfile is not NULL; path relative to the current directory), then ".containerignore"
 * and ".dockerignore" in the context directory (resolved inside it).  If none exists, *out is an
 * empty matcher (nothing excluded).  *source (may be NULL) gets the file used, or NULL. */
BERTH_MUST_CHECK int ignore_load(int context_dirfd, const char *containerfile, struct ignore **out,
                                 char **source, berth_error_t *err);
void ignore_free(struct ignore *ign);
static inline void cleanup_ignorep(struct ignore **p)
{
    if (*p)
        ignore_free(*p);
    *p = NULL;
}
#define cleanup_ignore __attribute__((cleanup(cleanup_ignorep)))

size_t ignore_count(const struct ignore *ign);
/* The cleaned patterns, "!" kept on exceptions (borrowed). */
const char *ignore_pattern(const struct ignore *ign, size_t i);
bool ignore_has_exceptions(const struct ignore *ign);

/* Is relpath (relative to the context, '/'-separated; "./" and leading '/' ignored) excluded?
 * Matches the path and its parent directories (MatchesOrParentMatches). */
BERTH_MUST_CHECK int ignore_matches(const struct ignore *ign, const char *relpath, bool *excluded,
                                    berth_error_t *err);
/* For a directory that is excluded: could an exception pattern re-include something below it?
 * If false the walk can skip the whole directory.  Conservative (may say true needlessly). */
bool ignore_dir_may_reinclude(const struct ignore *ign, const char *reldir);

#endif
