#include "common/reference.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static bool has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return true;
    return false;
}

/* path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool component_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        /* separator */
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n || !is_lower_alnum(s[i]))
            return false;
    }
    return true;
}

static bool is_64_hex(const char *s)
{
    size_t n = strlen(s);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* host label: [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9] */
static bool host_label_valid(const char *s, size_t n)
{
    if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

static int domain_check(const char *d, size_t n, berth_error_t *err)
{
    size_t hostlen = n;
    const char *colon = NULL;

    if (n == 0)
        return berth_error_make(err, 0, "invalid reference format: empty domain");
    if (d[0] == '[') {
        /* bracketed IPv6 literal: hex digits and colons (and dots for embedded IPv4) */
        const char *close = memchr(d, ']', n);
        if (close == NULL || close == d + 1)
            return berth_error_make(err, 0,
                                    "invalid reference format: invalid IPv6 address in domain "
                                    "\"%.*s\"",
                                    (int)n, d);
        for (const char *p = d + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return berth_error_make(err, 0,
                                        "invalid reference format: invalid IPv6 address in "
                                        "domain \"%.*s\"",
                                        (int)n, d);
        hostlen = (size_t)(close - d) + 1;
        if (hostlen < n && d[hostlen] != ':')
            return berth_error_make(err, 0, "invalid reference format: invalid domain \"%.*s\"",
                                    (int)n, d);
        if (hostlen < n)
            colon = d + hostlen;
    } else {
        colon = memchr(d, ':', n);
        if (colon)
            hostlen = (size_t)(colon - d);
        /* dot-separated labels */
        size_t start = 0;
        if (hostlen == 0)
            return berth_error_make(
                err, 0, "invalid reference format: missing host in domain \"%.*s\"", (int)n, d);
        for (size_t i = 0; i <= hostlen; i++) {
            if (i == hostlen || d[i] == '.') {
                if (!host_label_valid(d + start, i - start))
                    return berth_error_make(
                        err, 0, "invalid reference format: invalid domain \"%.*s\"", (int)n, d);
                start = i + 1;
            }
        }
    }
    if (colon) {
        size_t plen = n - (size_t)(colon - d) - 1;
        if (plen == 0)
            return berth_error_make(
                err, 0, "invalid reference format: empty port in domain \"%.*s\"", (int)n, d);
        for (size_t i = 0; i < plen; i++)
            if (!isdigit((unsigned char)colon[1 + i]))
                return berth_error_make(err, 0,
                                        "invalid reference format: invalid port in domain "
                                        "\"%.*s\"",
                                        (int)n, d);
    }
    return 0;
}

/* Checks the path part of `name`, which starts at offset off (after "domain/" or 0). */
static int check_path_component(const char *name, size_t off, berth_error_t *err)
{
    const char *p = name + off;
    size_t n = strlen(p);
    size_t start = 0;
    if (n == 0 && off == 0)
        return berth_error_make(err, 0,
                                "invalid reference format: repository name must have at least "
                                "one component");
    if (has_upper(p, n))
        return berth_error_make(err, 0,
                                "invalid reference format: repository name (%s) must be "
                                "lowercase",
                                p);
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t clen = i - start;
            if (clen == 0) {
                const char *what = i == n             ? "a trailing '/'"
                                   : off + start == 0 ? "a leading '/'"
                                                      : "a double '/'";
                return berth_error_make(err, 0,
                                        "invalid reference format: repository name \"%s\" has "
                                        "%s (empty path component)",
                                        name, what);
            }
            if (!component_valid(p + start, clen))
                return berth_error_make(err, 0,
                                        "invalid reference format: invalid path component "
                                        "\"%.*s\" in repository name \"%s\" (components are "
                                        "lowercase letters and digits separated by '.', '_', "
                                        "'__' or '-')",
                                        (int)clen, p + start, name);
            start = i + 1;
        }
    }
    return 0;
}

int image_ref_validate_tag(const char *tag, berth_error_t *err)
{
    size_t n = strlen(tag);
    if (n == 0)
        return berth_error_make(err, 0, "invalid tag \"\": tag is empty");
    if (n > IMAGE_REF_TAG_MAX)
        return berth_error_make(err, 0, "invalid tag \"%.20s...\": longer than %d characters", tag,
                                IMAGE_REF_TAG_MAX);
    if (!is_word(tag[0]))
        return berth_error_make(err, 0,
                                "invalid tag \"%s\": must start with a letter, digit or '_'", tag);
    for (size_t i = 1; i < n; i++)
        if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-')
            return berth_error_make(err, 0,
                                    "invalid tag \"%s\": character '%c' not allowed (letters, "
                                    "digits, '_', '.' and '-' only)",
                                    tag, tag[i]);
    return 0;
}

int image_ref_validate_domain(const char *domain, berth_error_t *err)
{
    return domain_check(domain, strlen(domain), err);
}

static int name_length_check(const image_ref_t *r, berth_error_t *err)
{
    size_t len = strlen(r->path) + (r->domain ? strlen(r->domain) + 1 : 0);
    if (len > IMAGE_REF_NAME_MAX)
        return berth_error_make(err, 0,
                                "invalid reference format: repository name must not be more "
                                "than %d characters (it has %zu)",
                                IMAGE_REF_NAME_MAX, len);
    return 0;
}

/* True when the first component of a name (before the first '/') is a registry domain. */
static bool first_is_domain(const char *c, size_t n)
{
    if (memchr(c, '.', n) || memchr(c, ':', n))
        return true;
    if (n == 9 && memcmp(c, "localhost", 9) == 0)
        return true;
    return has_upper(c, n);
}

int image_ref_parse(const char *s, image_ref_t **out, berth_error_t *err)
{
    cleanup_free char *name = NULL;
    image_ref_t *r;
    const char *at, *slash, *colon;
    char *lastslash;

    if (s == NULL || *s == '\0')
        return berth_error_make(err, 0,
                                "invalid reference format: repository name must have at least "
                                "one component");
    if (is_64_hex(s))
        return berth_error_make(err, 0,
                                "invalid reference format: repository name \"%s\" cannot be a "
                                "64-character hexadecimal string (it looks like an image ID)",
                                s);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return berth_error_make(err, 0,
                                    "invalid reference format: \"%s\" contains whitespace or a "
                                    "non-ASCII character",
                                    s);

    r = xzalloc(sizeof(*r));
    at = strchr(s, '@');
    if (at) {
        if (digest_validate(at + 1, err) < 0)
            goto fail;
        r->digest = xstrdup(at + 1);
        name = xstrndup(s, (size_t)(at - s));
    } else {
        name = xstrdup(s);
    }

    /* A ':' after the last '/' starts the tag; one before it is a port. */
    lastslash = strrchr(name, '/');
    colon = strrchr(lastslash ? lastslash : name, ':');
    if (colon) {
        if (image_ref_validate_tag(colon + 1, err) < 0)
            goto fail;
        r->tag = xstrdup(colon + 1);
        name[colon - name] = '\0';
    }
    if (name[0] == '\0') {
        berth_error_make(err, 0,
                         "invalid reference format: repository name must have at least one "
                         "component");
        goto fail;
    }

    slash = strchr(name, '/');
    if (slash && first_is_domain(name, (size_t)(slash - name))) {
        if (domain_check(name, (size_t)(slash - name), err) < 0)
            goto fail;
        r->domain = xstrndup(name, (size_t)(slash - name));
        if (check_path_component(name, (size_t)(slash - name) + 1, err) < 0)
            goto fail;
        r->path = xstrdup(slash + 1);
    } else {
        if (check_path_component(name, 0, err) < 0)
            goto fail;
        r->path = xstrdup(name);
    }
    if (name_length_check(r, err) < 0)
        goto fail;
    *out = r;
    return 0;

fail:
    image_ref_free(r);
    return -1;
}

int image_ref_normalize(image_ref_t *ref, berth_error_t *err)
{
    if (ref->domain == NULL || strcmp(ref->domain, IMAGE_REF_LEGACY_DOMAIN) == 0) {
        free(ref->domain);
        ref->domain = xstrdup(IMAGE_REF_DEFAULT_DOMAIN);
    }
    if (strcmp(ref->domain, IMAGE_REF_DEFAULT_DOMAIN) == 0 && strchr(ref->path, '/') == NULL) {
        char *p = xasprintf(IMAGE_REF_OFFICIAL_REPO "/%s", ref->path);
        free(ref->path);
        ref->path = p;
    }
    if (ref->tag == NULL && ref->digest == NULL)
        ref->tag = xstrdup(IMAGE_REF_DEFAULT_TAG);
    return name_length_check(ref, err);
}

int image_ref_parse_normalized(const char *s, image_ref_t **out, berth_error_t *err)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(s, &r, err) < 0)
        return -1;
    if (image_ref_normalize(r, err) < 0)
        return -1;
    *out = steal_pointer(&r);
    return 0;
}

int image_ref_qualify(const image_ref_t *ref, const char *domain, image_ref_t **out,
                      berth_error_t *err)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (ref->domain)
        return berth_error_make(err, 0, "reference \"%s/%s\" is already qualified", ref->domain,
                                ref->path);
    if (domain_check(domain, strlen(domain), err) < 0)
        return -1;
    r = image_ref_dup(ref);
    r->domain =
        xstrdup(strcmp(domain, IMAGE_REF_LEGACY_DOMAIN) == 0 ? IMAGE_REF_DEFAULT_DOMAIN : domain);
    if (strcmp(r->domain, IMAGE_REF_DEFAULT_DOMAIN) == 0 && strchr(r->path, '/') == NULL) {
        char *p = xasprintf(IMAGE_REF_OFFICIAL_REPO "/%s", r->path);
        free(r->path);
        r->path = p;
    }
    if (name_length_check(r, err) < 0)
        return -1;
    *out = steal_pointer(&r);
    return 0;
}

bool image_ref_is_short_name(const char *s)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(s, &r, NULL) < 0)
        return false;
    return r->domain == NULL;
}

image_ref_t *image_ref_dup(const image_ref_t *ref)
{
    image_ref_t *r = xzalloc(sizeof(*r));
    r->domain = ref->domain ? xstrdup(ref->domain) : NULL;
    r->path = xstrdup(ref->path);
    r->tag = ref->tag ? xstrdup(ref->tag) : NULL;
    r->digest = ref->digest ? xstrdup(ref->digest) : NULL;
    return r;
}

int image_ref_set_tag(image_ref_t *ref, const char *tag, berth_error_t *err)
{
    if (tag && image_ref_validate_tag(tag, err) < 0)
        return -1;
    free(ref->tag);
    ref->tag = tag ? xstrdup(tag) : NULL;
    return 0;
}

int image_ref_set_digest(image_ref_t *ref, const char *digest, berth_error_t *err)
{
    if (digest && digest_validate(digest, err) < 0)
        return -1;
    free(ref->digest);
    ref->digest = digest ? xstrdup(digest) : NULL;
    return 0;
}

static char *format_ref(const char *domain, const char *path, const char *tag, const char *digest)
{
    return xasprintf("%s%s%s%s%s%s%s", domain ? domain : "", domain ? "/" : "", path,
                     tag ? ":" : "", tag ? tag : "", digest ? "@" : "", digest ? digest : "");
}

char *image_ref_string(const image_ref_t *ref)
{
    return format_ref(ref->domain, ref->path, ref->tag, ref->digest);
}

char *image_ref_name(const image_ref_t *ref)
{
    return format_ref(ref->domain, ref->path, NULL, NULL);
}

/* docker's FamiliarName: docker.io is implied, and so is library/ for one-level names on it. */
static void familiar_parts(const image_ref_t *ref, const char **domain, const char **path)
{
    *domain = ref->domain;
    *path = ref->path;
    if (ref->domain && (strcmp(ref->domain, IMAGE_REF_DEFAULT_DOMAIN) == 0 ||
                        strcmp(ref->domain, IMAGE_REF_LEGACY_DOMAIN) == 0)) {
        *domain = NULL;
        if (strncmp(ref->path, IMAGE_REF_OFFICIAL_REPO "/", sizeof(IMAGE_REF_OFFICIAL_REPO)) == 0 &&
            strchr(ref->path + sizeof(IMAGE_REF_OFFICIAL_REPO), '/') == NULL)
            *path = ref->path + sizeof(IMAGE_REF_OFFICIAL_REPO);
    }
}

char *image_ref_familiar(const image_ref_t *ref)
{
    const char *domain, *path;
    familiar_parts(ref, &domain, &path);
    return format_ref(domain, path, ref->tag, ref->digest);
}

char *image_ref_familiar_name(const image_ref_t *ref)
{
    const char *domain, *path;
    familiar_parts(ref, &domain, &path);
    return format_ref(domain, path, NULL, NULL);
}

void image_ref_free(image_ref_t *ref)
{
    if (ref == NULL)
        return;
    free(ref->domain);
    free(ref->path);
    free(ref->tag);
    free(ref->digest);
    free(ref);
}
