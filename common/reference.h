/* Image references ("quay.io/org/app:1.2@sha256:...") following the docker reference grammar,
 * ("transport:reference" on the command line is transport/transport.h's: one table, one splitter).
 *
 * Grammar (distribution/reference):
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component { "/" path-component }
 *   domain     := host [ ":" port ]     host: dot-separated [A-Za-z0-9-] labels (no leading or
 *                                       trailing '-') or a bracketed IPv6 address; port: digits
 *   path-component := [a-z0-9]+ { separator [a-z0-9]+ }     separator := "." | "_" | "__" | "-"+
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     := algorithm ":" hex   (validated with digest_validate: sha256 / sha512)
 * The name (domain "/" path, after normalisation when normalising) is at most 255 characters.
 *
 * Domain detection is docker's: the part before the first '/' is a domain when it contains '.'
 * or ':', is "localhost", or contains an uppercase letter (so "Foo/bar" names registry "Foo");
 * otherwise the whole name is a path on the default registry.
 *
 * Ownership: an image_ref_t and all its strings belong to whoever received it from a
 * constructor (image_ref_parse*, image_ref_dup, image_ref_qualify) and are released with
 * image_ref_free() or the cleanup_image_ref attribute.  Strings returned by the formatting
 * functions are owned by the caller (free()).
 *
 * Errors: parse failures return -1 with a message that starts with "invalid reference format"
 * (name problems), "invalid tag" or "invalid digest", names the input and says what is wrong.
 */
#ifndef BERTH_REFERENCE_H
#define BERTH_REFERENCE_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>

#define IMAGE_REF_NAME_MAX       255
#define IMAGE_REF_TAG_MAX        128
#define IMAGE_REF_DEFAULT_DOMAIN "docker.io"
#define IMAGE_REF_LEGACY_DOMAIN  "index.docker.io"
#define IMAGE_REF_OFFICIAL_REPO  "library"
#define IMAGE_REF_DEFAULT_TAG    "latest"

typedef struct image_ref {
    char *domain; /* "quay.io", "localhost:5000"; NULL when the input named no domain */
    char *path;   /* "org/app"; never NULL */
    char *tag;    /* NULL when absent */
    char *digest; /* "sha256:<hex>"; NULL when absent */
} image_ref_t;

/* Parses without normalisation: "busybox" gives domain NULL, path "busybox", no tag.
 * "index.docker.io" is not rewritten either.  A 64-hex-character string alone is rejected as
 * ambiguous with an image ID (callers that accept IDs check for them first). */
BERTH_MUST_CHECK int image_ref_parse(const char *s, image_ref_t **out, berth_error_t *err);

/* Parses and normalises like docker: missing domain -> docker.io, "index.docker.io" ->
 * docker.io, a single-component path on docker.io gets "library/", and the tag "latest" is
 * added when neither tag nor digest is given. */
BERTH_MUST_CHECK int image_ref_parse_normalized(const char *s, image_ref_t **out,
                                                berth_error_t *err);

/* Applies the normalisation above to an already parsed reference, in place.  Fails only if the
 * normalised name exceeds IMAGE_REF_NAME_MAX. */
BERTH_MUST_CHECK int image_ref_normalize(image_ref_t *ref, berth_error_t *err);

/* For short-name resolution (registries.conf unqualified-search-registries): returns a new
 * reference naming `domain` (validated), with "library/" added for docker.io one-component
 * paths; tag/digest copied.  `ref` must have no domain (else error). */
BERTH_MUST_CHECK int image_ref_qualify(const image_ref_t *ref, const char *domain,
                                       image_ref_t **out, berth_error_t *err);

/* True when the string parses and names no domain ("busybox", "user/app:1").  Strings that do
 * not parse are not short names. */
bool image_ref_is_short_name(const char *s);

image_ref_t *image_ref_dup(const image_ref_t *ref);

/* Replaces the tag (NULL removes it); validates the new tag. */
BERTH_MUST_CHECK int image_ref_set_tag(image_ref_t *ref, const char *tag, berth_error_t *err);
/* Replaces the digest (NULL removes it); validates the new digest. */
BERTH_MUST_CHECK int image_ref_set_digest(image_ref_t *ref, const char *digest, berth_error_t *err);

/* Validators for single parts, for callers that take them separately (e.g. `tag` commands). */
BERTH_MUST_CHECK int image_ref_validate_tag(const char *tag, berth_error_t *err);
BERTH_MUST_CHECK int image_ref_validate_domain(const char *domain, berth_error_t *err);

/* "[domain/]path[:tag][@digest]" */
char *image_ref_string(const image_ref_t *ref);
/* "[domain/]path" */
char *image_ref_name(const image_ref_t *ref);
/* docker's familiar form: docker.io/ and docker.io's library/ removed, tag and digest kept:
 * docker.io/library/busybox:latest -> "busybox:latest", docker.io/u/x -> "u/x". */
char *image_ref_familiar(const image_ref_t *ref);
/* familiar form of the name only ("busybox", "quay.io/x") */
char *image_ref_familiar_name(const image_ref_t *ref);

static inline bool image_ref_has_domain(const image_ref_t *ref)
{
    return ref->domain != NULL;
}

void image_ref_free(image_ref_t *ref);
static inline void cleanup_image_refp(image_ref_t **r)
{
    image_ref_free(*r);
    *r = NULL;
}
#define cleanup_image_ref __attribute__((cleanup(cleanup_image_refp)))

#endif
