/* Content digests ("sha256:<64 hex>", "sha512:<128 hex>") computed with OpenSSL, streaming.
 * Digest strings that come from outside are validated with digest_validate() before they are
 * used for anything, in particular before a path is built from them. */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum { DIGEST_SHA256 = 0, DIGEST_SHA512 = 1 } digest_algo_t;

#define DIGEST_MAX_STRLEN (7 + 128) /* "sha512:" + hex, without NUL */

typedef struct digester digester_t;

digester_t *digester_new(digest_algo_t algo); /* never NULL */
void digester_update(digester_t *d, const void *buf, size_t len);
/* Returns "algo:hex" (owned by caller).  The digester may not be updated afterwards. */
char *digester_finish(digester_t *d);
void digester_free(digester_t *d);
static inline void cleanup_digesterp(digester_t **d)
{
    digester_free(*d);
    *d = NULL;
}
#define cleanup_digester __attribute__((cleanup(cleanup_digesterp)))

/* "sha256"/"sha512" -> algo; -1 with error for others. */
BERTH_MUST_CHECK int digest_algo_from_name(const char *name, digest_algo_t *out,
                                           berth_error_t *err);
const char *digest_algo_name(digest_algo_t algo);

/* Checks "algo:hex": known algorithm, lowercase hex of the right length.  The error names the
 * digest and what is wrong with it. */
BERTH_MUST_CHECK int digest_validate(const char *digest, berth_error_t *err);
/* Validates, then returns the algorithm and a pointer to the hex part inside `digest`. */
BERTH_MUST_CHECK int digest_parse(const char *digest, digest_algo_t *algo, const char **hex,
                                  berth_error_t *err);
/* Returns the hex part of a digest already validated, or NULL. */
const char *digest_hex(const char *digest);

char *digest_buffer(digest_algo_t algo, const void *buf, size_t len);
BERTH_MUST_CHECK int digest_file(const char *path, digest_algo_t algo, char **out,
                                 berth_error_t *err);
/* Constant-time-irrelevant equality of two digest strings (plain strcmp with NULL checks). */
bool digest_equal(const char *a, const char *b);

#endif
