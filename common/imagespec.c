#include "common/imagespec.h"
#include "common/json.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/utsname.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * small helpers
 */

static char *sdup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static json_t *jcopy(const json_t *j)
{
    return j ? json_deep_copy(j) : NULL;
}

static void set_str(char **dst, const char *val)
{
    free(*dst);
    *dst = sdup(val);
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Error locations: `where` is either a document prefix ending in ':' ("manifest:") or a field
 * path ("manifest: layers[2]"); field() appends a key in the right form. */
static char *field(const char *where, const char *key)
{
    size_t n = strlen(where);
    if (n > 0 && where[n - 1] == ':')
        return xasprintf("%s %s", where, key);
    return xasprintf("%s.%s", where, key);
}

static char *item(const char *where, const char *key, size_t i)
{
    cleanup_free char *f = field(where, key);
    return xasprintf("%s[%zu]", f, i);
}

static int type_error(const char *where, const char *key, const char *want, const json_t *got,
                      berth_error_t *err)
{
    cleanup_free char *f = field(where, key);
    return berth_error_make(err, 0, "%s: must be %s, got %s", f, want, type_name(got));
}

static int parse_json(const void *buf, size_t len, size_t max, const char *what, json_t **out,
                      berth_error_t *err)
{
    json_t *j = NULL;
    if (json_parse_bounded(buf, len, max, what, &j, err) < 0)
        return -1;
    if (!json_is_object(j)) {
        json_decref(j);
        return berth_error_make_status(err, EINVAL, "%s: must be a JSON object", what);
    }
    *out = j;
    return 0;
}

/* Optional getters: a missing key or JSON null leaves the output NULL/unchanged. */
static int get_str(const json_t *o, const char *where, const char *key, char **out,
                   berth_error_t *err)
{
    json_t *j = json_object_get(o, key);
    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_string(j))
        return type_error(where, key, "a string", j, err);
    set_str(out, json_string_value(j));
    return 0;
}

static int get_int(const json_t *o, const char *where, const char *key, int64_t *out, bool *present,
                   berth_error_t *err)
{
    json_t *j = json_object_get(o, key);
    if (present)
        *present = false;
    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_integer(j))
        return type_error(where, key, "an integer", j, err);
    *out = json_integer_value(j);
    if (present)
        *present = true;
    return 0;
}

static int get_bool(const json_t *o, const char *where, const char *key, bool *out,
                    berth_error_t *err)
{
    json_t *j = json_object_get(o, key);
    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_boolean(j))
        return type_error(where, key, "a boolean", j, err);
    *out = json_is_true(j);
    return 0;
}

static int get_strv(const json_t *o, const char *where, const char *key, char ***out,
                    berth_error_t *err)
{
    json_t *j = json_object_get(o, key);
    size_t i;
    json_t *v;
    char **r;
    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_array(j))
        return type_error(where, key, "an array of strings", j, err);
    r = xcalloc(json_array_size(j) + 1, sizeof(char *));
    json_array_foreach(j, i, v)
    {
        if (!json_is_string(v)) {
            cleanup_free char *f = item(where, key, i);
            strv_free(r);
            return berth_error_make(err, 0, "%s: must be a string, got %s", f, type_name(v));
        }
        r[i] = xstrdup(json_string_value(v));
    }
    strv_free(*out);
    *out = r;
    return 0;
}

/* An object whose values are strings (annotations, labels): deep copy. */
static int get_strmap(const json_t *o, const char *where, const char *key, json_t **out,
                      berth_error_t *err)
{
    json_t *j = json_object_get(o, key);
    const char *k;
    json_t *v;
    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return type_error(where, key, "an object of strings", j, err);
    json_object_foreach(j, k, v)
    {
        if (!json_is_string(v)) {
            cleanup_free char *f = field(where, key);
            return berth_error_make(err, 0, "%s[\"%s\"]: must be a string, got %s", f, k,
                                    type_name(v));
        }
    }
    if (*out)
        json_decref(*out);
    *out = json_deep_copy(j);
    return 0;
}

/* An object used as a set (ExposedPorts, Volumes): its keys. */
static int get_keyset(const json_t *o, const char *where, const char *key, char ***out,
                      berth_error_t *err)
{
    json_t *j = json_object_get(o, key);
    const char *k;
    json_t *v;
    size_t i = 0;
    char **r;
    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return type_error(where, key, "an object", j, err);
    r = xcalloc(json_object_size(j) + 1, sizeof(char *));
    json_object_foreach(j, k, v) r[i++] = xstrdup(k);
    strv_free(*out);
    *out = r;
    return 0;
}

/* Serialisation: a builder that remembers strings jansson refused (invalid UTF-8). */
struct ser {
    bool bad;
    const char *bad_key;
};

static void put_str(struct ser *s, json_t *o, const char *key, const char *val)
{
    json_t *v;
    if (val == NULL)
        return;
    v = json_string(val);
    if (v == NULL) {
        s->bad = true;
        s->bad_key = key;
        return;
    }
    json_object_set_new(o, key, v);
}

static json_t *strv_json(struct ser *s, char *const *v, const char *key)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++) {
        json_t *e = json_string(v[i]);
        if (e == NULL) {
            s->bad = true;
            s->bad_key = key;
            continue;
        }
        json_array_append_new(a, e);
    }
    return a;
}

static void put_strv(struct ser *s, json_t *o, const char *key, char *const *v)
{
    if (v)
        json_object_set_new(o, key, strv_json(s, v, key));
}

static void put_keyset(struct ser *s, json_t *o, const char *key, char *const *v)
{
    json_t *m;
    if (v == NULL || v[0] == NULL)
        return;
    m = json_object();
    for (size_t i = 0; v[i]; i++)
        if (json_object_set_new(m, v[i], json_object()) < 0) {
            s->bad = true;
            s->bad_key = key;
        }
    json_object_set_new(o, key, m);
}

static void put_map(json_t *o, const char *key, const json_t *m)
{
    if (m && json_object_size(m) > 0)
        json_object_set_new(o, key, json_deep_copy(m));
}

static int ser_finish(struct ser *s, json_t *doc, const char *what, char **out, size_t *len,
                      berth_error_t *err)
{
    char *txt;
    if (s->bad) {
        json_decref(doc);
        return berth_error_make(err, 0, "%s: %s: value is not valid UTF-8", what,
                                s->bad_key ? s->bad_key : "?");
    }
    txt = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (txt == NULL)
        return berth_error_make(err, 0, "%s: cannot serialise", what);
    *out = txt;
    if (len)
        *len = strlen(txt);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * media types
 */

static const struct {
    const char *media_type;
    manifest_kind_t kind;
} manifest_types[] = {
    {MEDIA_TYPE_OCI_MANIFEST, MANIFEST_KIND_OCI_MANIFEST},
    {MEDIA_TYPE_OCI_INDEX, MANIFEST_KIND_OCI_INDEX},
    {MEDIA_TYPE_DOCKER_MANIFEST, MANIFEST_KIND_DOCKER_V2},
    {MEDIA_TYPE_DOCKER_MANIFEST_LIST, MANIFEST_KIND_DOCKER_LIST},
    {MEDIA_TYPE_DOCKER_SCHEMA1, MANIFEST_KIND_DOCKER_V1},
    {MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, MANIFEST_KIND_DOCKER_V1},
};

manifest_kind_t manifest_kind_from_media_type(const char *media_type)
{
    if (media_type == NULL)
        return MANIFEST_KIND_UNKNOWN;
    for (size_t i = 0; i < sizeof(manifest_types) / sizeof(manifest_types[0]); i++)
        if (strcmp(media_type, manifest_types[i].media_type) == 0)
            return manifest_types[i].kind;
    return MANIFEST_KIND_UNKNOWN;
}

const char *manifest_kind_media_type(manifest_kind_t kind)
{
    for (size_t i = 0; i < sizeof(manifest_types) / sizeof(manifest_types[0]); i++)
        if (manifest_types[i].kind == kind)
            return manifest_types[i].media_type;
    return NULL;
}

bool manifest_kind_is_index(manifest_kind_t kind)
{
    return kind == MANIFEST_KIND_OCI_INDEX || kind == MANIFEST_KIND_DOCKER_LIST;
}

bool manifest_kind_is_docker(manifest_kind_t kind)
{
    return kind == MANIFEST_KIND_DOCKER_V2 || kind == MANIFEST_KIND_DOCKER_LIST ||
           kind == MANIFEST_KIND_DOCKER_V1;
}

const char *manifest_kind_config_media_type(manifest_kind_t kind)
{
    switch (kind) {
    case MANIFEST_KIND_OCI_MANIFEST:
        return MEDIA_TYPE_OCI_CONFIG;
    case MANIFEST_KIND_DOCKER_V2:
        return MEDIA_TYPE_DOCKER_CONFIG;
    default:
        return NULL;
    }
}

static const struct {
    const char *media_type;
    compression_t compression;
    bool nondistributable;
    bool docker;
} layer_types[] = {
    {MEDIA_TYPE_OCI_LAYER_TAR, COMPRESSION_NONE, false, false},
    {MEDIA_TYPE_OCI_LAYER_GZIP, COMPRESSION_GZIP, false, false},
    {MEDIA_TYPE_OCI_LAYER_ZSTD, COMPRESSION_ZSTD, false, false},
    {MEDIA_TYPE_OCI_LAYER_ND_TAR, COMPRESSION_NONE, true, false},
    {MEDIA_TYPE_OCI_LAYER_ND_GZIP, COMPRESSION_GZIP, true, false},
    {MEDIA_TYPE_OCI_LAYER_ND_ZSTD, COMPRESSION_ZSTD, true, false},
    {MEDIA_TYPE_DOCKER_LAYER_TAR, COMPRESSION_NONE, false, true},
    {MEDIA_TYPE_DOCKER_LAYER_GZIP, COMPRESSION_GZIP, false, true},
    {MEDIA_TYPE_DOCKER_FOREIGN_TAR, COMPRESSION_NONE, true, true},
    {MEDIA_TYPE_DOCKER_FOREIGN_GZIP, COMPRESSION_GZIP, true, true},
};
#define N_LAYER_TYPES (sizeof(layer_types) / sizeof(layer_types[0]))

bool image_layer_media_type_info(const char *media_type, compression_t *compression,
                                 bool *nondistributable)
{
    if (media_type == NULL)
        return false;
    for (size_t i = 0; i < N_LAYER_TYPES; i++)
        if (strcmp(media_type, layer_types[i].media_type) == 0) {
            if (compression)
                *compression = layer_types[i].compression;
            if (nondistributable)
                *nondistributable = layer_types[i].nondistributable;
            return true;
        }
    return false;
}

static const char *layer_type_for(bool docker, compression_t c, bool nondistributable)
{
    for (size_t i = 0; i < N_LAYER_TYPES; i++)
        if (layer_types[i].docker == docker && layer_types[i].compression == c &&
            layer_types[i].nondistributable == nondistributable)
            return layer_types[i].media_type;
    return NULL;
}

const char *image_layer_media_type(manifest_kind_t kind, compression_t compression)
{
    if (kind != MANIFEST_KIND_OCI_MANIFEST && kind != MANIFEST_KIND_DOCKER_V2)
        return NULL;
    return layer_type_for(kind == MANIFEST_KIND_DOCKER_V2, compression, false);
}

manifest_kind_t image_manifest_kind(const json_t *j)
{
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    json_t *sv = json_object_get(j, "schemaVersion");
    json_t *cfg;
    if (mt)
        return manifest_kind_from_media_type(mt);
    if (json_is_integer(sv) && json_integer_value(sv) == 1 &&
        (json_object_get(j, "fsLayers") ||
         !(json_object_get(j, "manifests") || json_object_get(j, "config"))))
        return MANIFEST_KIND_DOCKER_V1;
    if (json_is_array(json_object_get(j, "manifests")))
        return MANIFEST_KIND_OCI_INDEX;
    cfg = json_object_get(j, "config");
    if (json_is_object(cfg)) {
        const char *cmt = json_string_value(json_object_get(cfg, "mediaType"));
        if (cmt && strcmp(cmt, MEDIA_TYPE_DOCKER_CONFIG) == 0)
            return MANIFEST_KIND_DOCKER_V2;
        return MANIFEST_KIND_OCI_MANIFEST;
    }
    if (json_is_array(json_object_get(j, "layers")))
        return MANIFEST_KIND_OCI_MANIFEST;
    return MANIFEST_KIND_UNKNOWN;
}

/* ---------------------------------------------------------------------------------------------
 * platform
 */

image_platform_t *image_platform_new(const char *os, const char *architecture, const char *variant)
{
    image_platform_t *p = xzalloc(sizeof(*p));
    p->os = sdup(os);
    p->architecture = sdup(architecture);
    p->variant = variant && *variant ? xstrdup(variant) : NULL;
    return p;
}

image_platform_t *image_platform_dup(const image_platform_t *p)
{
    image_platform_t *r;
    if (p == NULL)
        return NULL;
    r = image_platform_new(p->os, p->architecture, p->variant);
    r->os_version = sdup(p->os_version);
    r->os_features = strv_dup(p->os_features);
    return r;
}

void image_platform_free(image_platform_t *p)
{
    if (p == NULL)
        return;
    free(p->architecture);
    free(p->os);
    free(p->variant);
    free(p->os_version);
    strv_free(p->os_features);
    free(p);
}

static void lower_in_place(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

void image_platform_normalize(image_platform_t *p)
{
    const char *v;
    lower_in_place(p->os);
    lower_in_place(p->architecture);
    lower_in_place(p->variant);
    if (p->os && strcmp(p->os, "macos") == 0)
        set_str(&p->os, "darwin");
    if (p->architecture == NULL)
        return;
    v = p->variant ? p->variant : "";
    if (!strcmp(p->architecture, "x86_64") || !strcmp(p->architecture, "x86-64") ||
        !strcmp(p->architecture, "amd64")) {
        set_str(&p->architecture, "amd64");
        if (strcmp(v, "v1") == 0)
            set_str(&p->variant, NULL);
    } else if (!strcmp(p->architecture, "i386") || !strcmp(p->architecture, "i686") ||
               !strcmp(p->architecture, "x86") || !strcmp(p->architecture, "386")) {
        set_str(&p->architecture, "386");
    } else if (!strcmp(p->architecture, "aarch64") || !strcmp(p->architecture, "arm64")) {
        set_str(&p->architecture, "arm64");
        if (!*v || !strcmp(v, "8") || !strcmp(v, "v8.0"))
            set_str(&p->variant, "v8");
    } else if (!strcmp(p->architecture, "armhf")) {
        set_str(&p->architecture, "arm");
        set_str(&p->variant, "v7");
    } else if (!strcmp(p->architecture, "armel")) {
        set_str(&p->architecture, "arm");
        set_str(&p->variant, "v6");
    } else if (!strcmp(p->architecture, "arm")) {
        if (!*v)
            set_str(&p->variant, "v7");
        else if (strlen(v) == 1 && v[0] >= '5' && v[0] <= '8') {
            char buf[3] = {'v', v[0], '\0'};
            set_str(&p->variant, buf);
        }
    }
    if (p->variant && !*p->variant)
        set_str(&p->variant, NULL);
}

static bool streq0(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

bool image_platform_match(const image_platform_t *want, const image_platform_t *have)
{
    cleanup_image_platform image_platform_t *w = NULL;
    cleanup_image_platform image_platform_t *h = NULL;
    if (want == NULL || have == NULL)
        return false;
    w = image_platform_dup(want);
    h = image_platform_dup(have);
    image_platform_normalize(w);
    image_platform_normalize(h);
    if (!streq0(w->os, h->os) || !streq0(w->architecture, h->architecture))
        return false;
    /* a variant the caller did not ask for (not even as an architecture default) matches any */
    if (w->variant == NULL)
        return true;
    return streq0(w->variant, h->variant);
}

image_platform_t *image_platform_host(void)
{
    struct utsname u;
    const char *arch = NULL, *variant = NULL;
    char armv[3] = {'v', '7', '\0'};
    image_platform_t *p;
    if (uname(&u) < 0)
        snprintf(u.machine, sizeof(u.machine), "unknown");
    if (!strcmp(u.machine, "x86_64"))
        arch = "amd64";
    else if (!strcmp(u.machine, "aarch64") || !strcmp(u.machine, "arm64"))
        arch = "arm64", variant = "v8";
    else if (!strncmp(u.machine, "armv", 4) && isdigit((unsigned char)u.machine[4])) {
        arch = "arm";
        armv[1] = u.machine[4];
        variant = armv;
    } else if (u.machine[0] == 'i' && !strcmp(u.machine + 2, "86"))
        arch = "386";
    else
        arch = u.machine; /* ppc64le, s390x, riscv64... are already GOARCH names */
    p = image_platform_new("linux", arch, variant);
    image_platform_normalize(p);
    return p;
}

int image_platform_parse(const char *s, image_platform_t **out, berth_error_t *err)
{
    cleanup_free char *copy = xstrdup(s);
    char *parts[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 3)
            return berth_error_make(err, 0, "invalid platform \"%s\": expected OS/ARCH[/VARIANT]",
                                    s);
        parts[n++] = t;
    }
    if (n < 2 || s[0] == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
        return berth_error_make(err, 0, "invalid platform \"%s\": expected OS/ARCH[/VARIANT]", s);
    for (size_t i = 0; i < n; i++)
        for (const char *c = parts[i]; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
                return berth_error_make(err, 0, "invalid platform \"%s\": bad character '%c'", s,
                                        *c);
    *out = image_platform_new(parts[0], parts[1], parts[2]);
    return 0;
}

char *image_platform_string(const image_platform_t *p)
{
    return xasprintf("%s/%s%s%s", p->os ? p->os : "", p->architecture ? p->architecture : "",
                     p->variant ? "/" : "", p->variant ? p->variant : "");
}

static int platform_from_json(const json_t *j, const char *where, image_platform_t **out,
                              berth_error_t *err)
{
    cleanup_image_platform image_platform_t *p = xzalloc(sizeof(*p));
    if (!json_is_object(j))
        return berth_error_make(err, 0, "%s: must be an object, got %s", where, type_name(j));
    if (get_str(j, where, "architecture", &p->architecture, err) < 0 ||
        get_str(j, where, "os", &p->os, err) < 0 ||
        get_str(j, where, "os.version", &p->os_version, err) < 0 ||
        get_strv(j, where, "os.features", &p->os_features, err) < 0 ||
        get_str(j, where, "variant", &p->variant, err) < 0)
        return -1;
    *out = steal_pointer(&p);
    return 0;
}

static int platform_validate(const image_platform_t *p, const char *where, berth_error_t *err)
{
    if (p->architecture == NULL || !*p->architecture) {
        cleanup_free char *f = field(where, "architecture");
        return berth_error_make(err, 0, "%s: missing", f);
    }
    if (p->os == NULL || !*p->os) {
        cleanup_free char *f = field(where, "os");
        return berth_error_make(err, 0, "%s: missing", f);
    }
    return 0;
}

static json_t *platform_to_json(struct ser *s, const image_platform_t *p)
{
    json_t *o = json_object();
    put_str(s, o, "architecture", p->architecture);
    put_str(s, o, "os", p->os);
    put_str(s, o, "os.version", p->os_version);
    put_strv(s, o, "os.features", p->os_features);
    put_str(s, o, "variant", p->variant);
    return o;
}

/* ---------------------------------------------------------------------------------------------
 * descriptor
 */

void image_descriptor_copy(image_descriptor_t *dst, const image_descriptor_t *src)
{
    dst->media_type = sdup(src->media_type);
    dst->digest = sdup(src->digest);
    dst->size = src->size;
    dst->urls = strv_dup(src->urls);
    dst->annotations = jcopy(src->annotations);
    dst->platform = image_platform_dup(src->platform);
    dst->artifact_type = sdup(src->artifact_type);
    dst->data = sdup(src->data);
}

void image_descriptor_clear(image_descriptor_t *d)
{
    if (d == NULL)
        return;
    free(d->media_type);
    free(d->digest);
    strv_free(d->urls);
    json_decref(d->annotations);
    image_platform_free(d->platform);
    free(d->artifact_type);
    free(d->data);
    memset(d, 0, sizeof(*d));
}

static void descriptors_free(image_descriptor_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        image_descriptor_clear(&v[i]);
    free(v);
}

static image_descriptor_t *descriptors_dup(const image_descriptor_t *v, size_t n)
{
    image_descriptor_t *r = xcalloc(n ? n : 1, sizeof(*r));
    for (size_t i = 0; i < n; i++)
        image_descriptor_copy(&r[i], &v[i]);
    return r;
}

/* RFC 6838 type/subtype, loosely: restricted-name characters on both sides of one '/'. */
static bool media_type_valid(const char *mt)
{
    const char *slash = strchr(mt, '/');
    if (slash == NULL || slash == mt || slash[1] == '\0' || strchr(slash + 1, '/'))
        return false;
    for (const char *c = mt; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("/!#$&-^_.+", *c))
            return false;
    return true;
}

int image_descriptor_validate(const image_descriptor_t *d, const char *where, berth_error_t *err)
{
    if (d->media_type == NULL || !*d->media_type) {
        cleanup_free char *f = field(where, "mediaType");
        return berth_error_make(err, 0, "%s: missing", f);
    }
    if (!media_type_valid(d->media_type)) {
        cleanup_free char *f = field(where, "mediaType");
        return berth_error_make(err, 0, "%s: invalid media type \"%s\"", f, d->media_type);
    }
    if (d->digest == NULL) {
        cleanup_free char *f = field(where, "digest");
        return berth_error_make(err, 0, "%s: missing", f);
    }
    if (digest_validate(d->digest, err) < 0) {
        cleanup_free char *f = field(where, "digest");
        return berth_error_wrap(err, "%s", f);
    }
    if (d->size < 0) {
        cleanup_free char *f = field(where, "size");
        return berth_error_make(err, 0, "%s: must not be negative, got %lld", f,
                                (long long)d->size);
    }
    if (d->platform) {
        cleanup_free char *f = field(where, "platform");
        if (platform_validate(d->platform, f, err) < 0)
            return -1;
    }
    return 0;
}

static int descriptor_from_json(const json_t *j, const char *where, image_descriptor_t *d,
                                berth_error_t *err)
{
    bool has_size = false;
    json_t *pj;
    if (!json_is_object(j))
        return berth_error_make(err, 0, "%s: must be an object, got %s", where, type_name(j));
    if (get_str(j, where, "mediaType", &d->media_type, err) < 0 ||
        get_str(j, where, "digest", &d->digest, err) < 0 ||
        get_int(j, where, "size", &d->size, &has_size, err) < 0 ||
        get_strv(j, where, "urls", &d->urls, err) < 0 ||
        get_strmap(j, where, "annotations", &d->annotations, err) < 0 ||
        get_str(j, where, "artifactType", &d->artifact_type, err) < 0 ||
        get_str(j, where, "data", &d->data, err) < 0)
        return -1;
    if (!has_size) {
        cleanup_free char *f = field(where, "size");
        return berth_error_make(err, 0, "%s: missing", f);
    }
    pj = json_object_get(j, "platform");
    if (pj && !json_is_null(pj)) {
        cleanup_free char *f = field(where, "platform");
        if (platform_from_json(pj, f, &d->platform, err) < 0)
            return -1;
    }
    return 0;
}

static json_t *descriptor_to_json(struct ser *s, const image_descriptor_t *d, bool oci)
{
    json_t *o = json_object();
    put_str(s, o, "mediaType", d->media_type);
    put_str(s, o, "digest", d->digest);
    json_object_set_new(o, "size", json_integer(d->size));
    if (d->urls && d->urls[0])
        put_strv(s, o, "urls", d->urls);
    if (oci)
        put_map(o, "annotations", d->annotations);
    if (oci)
        put_str(s, o, "data", d->data);
    if (d->platform)
        json_object_set_new(o, "platform", platform_to_json(s, d->platform));
    if (oci)
        put_str(s, o, "artifactType", d->artifact_type);
    return o;
}

static int descriptors_from_json(const json_t *doc, const char *where, const char *key,
                                 bool required, image_descriptor_t **out, size_t *n_out,
                                 berth_error_t *err)
{
    json_t *a = json_object_get(doc, key);
    image_descriptor_t *v;
    size_t i;
    json_t *e;
    if (a == NULL || json_is_null(a)) {
        if (required) {
            cleanup_free char *f = field(where, key);
            return berth_error_make(err, 0, "%s: missing", f);
        }
        *out = xcalloc(1, sizeof(**out));
        *n_out = 0;
        return 0;
    }
    if (!json_is_array(a))
        return type_error(where, key, "an array", a, err);
    v = xcalloc(json_array_size(a) + 1, sizeof(*v));
    json_array_foreach(a, i, e)
    {
        cleanup_free char *f = item(where, key, i);
        if (descriptor_from_json(e, f, &v[i], err) < 0) {
            descriptors_free(v, json_array_size(a));
            return -1;
        }
    }
    *out = v;
    *n_out = json_array_size(a);
    return 0;
}

static int descriptors_validate(const image_descriptor_t *v, size_t n, const char *where,
                                const char *key, berth_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *f = item(where, key, i);
        if (image_descriptor_validate(&v[i], f, err) < 0)
            return -1;
    }
    return 0;
}

static int schema_version_check(int sv, const char *what, berth_error_t *err)
{
    if (sv == 1)
        return berth_error_make(err, 0,
                                "%s: schemaVersion 1 (Docker schema1) is not supported; only "
                                "schemaVersion 2 documents are",
                                what);
    if (sv != 2)
        return berth_error_make(err, 0, "%s: schemaVersion: must be 2, got %d", what, sv);
    return 0;
}

static int get_schema_version(const json_t *doc, const char *what, int *out, berth_error_t *err)
{
    json_t *j = json_object_get(doc, "schemaVersion");
    cleanup_free char *where = xasprintf("%s:", what);
    if (j == NULL)
        return berth_error_make(err, 0, "%s: schemaVersion: missing", what);
    if (!json_is_integer(j))
        return type_error(where, "schemaVersion", "an integer", j, err);
    if (json_integer_value(j) < -1000 || json_integer_value(j) > 1000)
        return berth_error_make(err, 0, "%s: schemaVersion: must be 2, got %lld", what,
                                (long long)json_integer_value(j));
    *out = (int)json_integer_value(j);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * manifest
 */

void image_manifest_free(image_manifest_t *m)
{
    if (m == NULL)
        return;
    image_descriptor_clear(&m->config);
    descriptors_free(m->layers, m->n_layers);
    if (m->subject) {
        image_descriptor_clear(m->subject);
        free(m->subject);
    }
    free(m->artifact_type);
    json_decref(m->annotations);
    json_decref(m->raw);
    free(m);
}

image_manifest_t *image_manifest_dup(const image_manifest_t *m)
{
    image_manifest_t *r = xzalloc(sizeof(*r));
    r->kind = m->kind;
    r->schema_version = m->schema_version;
    image_descriptor_copy(&r->config, &m->config);
    r->layers = descriptors_dup(m->layers, m->n_layers);
    r->n_layers = m->n_layers;
    if (m->subject) {
        r->subject = xzalloc(sizeof(*r->subject));
        image_descriptor_copy(r->subject, m->subject);
    }
    r->artifact_type = sdup(m->artifact_type);
    r->annotations = jcopy(m->annotations);
    r->raw = jcopy(m->raw);
    return r;
}

/* mediaType of a document parsed as `what`: its kind, or a clear refusal. */
static int doc_kind(const json_t *doc, const char *what, bool want_index, manifest_kind_t *kind,
                    berth_error_t *err)
{
    json_t *mt = json_object_get(doc, "mediaType");
    cleanup_free char *where = xasprintf("%s:", what);
    manifest_kind_t k;
    if (mt && !json_is_string(mt) && !json_is_null(mt))
        return type_error(where, "mediaType", "a string", mt, err);
    k = image_manifest_kind(doc);
    if (k == MANIFEST_KIND_DOCKER_V1)
        return berth_error_make(err, 0, "%s: Docker schema1 manifests are not supported", what);
    if (k == MANIFEST_KIND_UNKNOWN) {
        if (json_is_string(mt))
            return berth_error_make(err, 0, "%s: mediaType: unsupported media type \"%s\"", what,
                                    json_string_value(mt));
        k = want_index ? MANIFEST_KIND_OCI_INDEX : MANIFEST_KIND_OCI_MANIFEST;
    }
    if (manifest_kind_is_index(k) != want_index) {
        const char *is = want_index ? "an image manifest" : "an image index";
        const char *not = want_index ? "an index" : "a manifest";
        if (json_is_string(mt))
            return berth_error_make(err, 0, "%s: mediaType \"%s\" is %s, not %s", what,
                                    json_string_value(mt), is, not );
        return berth_error_make(err, 0, "%s: the document is %s (by its structure), not %s", what,
                                is, not );
    }
    *kind = k;
    return 0;
}

int image_manifest_parse(const void *buf, size_t len, image_manifest_t **out, berth_error_t *err)
{
    cleanup_image_manifest image_manifest_t *m = NULL;
    cleanup_json json_t *doc = NULL;
    json_t *cfg, *subj;
    if (parse_json(buf, len, IMAGE_MANIFEST_MAX_SIZE, "manifest", &doc, err) < 0)
        return -1;
    m = xzalloc(sizeof(*m));
    if (doc_kind(doc, "manifest", false, &m->kind, err) < 0 ||
        get_schema_version(doc, "manifest", &m->schema_version, err) < 0 ||
        schema_version_check(m->schema_version, "manifest", err) < 0)
        return -1;
    cfg = json_object_get(doc, "config");
    if (cfg == NULL || json_is_null(cfg))
        return berth_error_make(err, 0, "manifest: config: missing");
    if (descriptor_from_json(cfg, "manifest: config", &m->config, err) < 0)
        return -1;
    if (descriptors_from_json(doc, "manifest:", "layers", true, &m->layers, &m->n_layers, err) < 0)
        return -1;
    subj = json_object_get(doc, "subject");
    if (subj && !json_is_null(subj)) {
        m->subject = xzalloc(sizeof(*m->subject));
        if (descriptor_from_json(subj, "manifest: subject", m->subject, err) < 0)
            return -1;
    }
    if (get_str(doc, "manifest:", "artifactType", &m->artifact_type, err) < 0 ||
        get_strmap(doc, "manifest:", "annotations", &m->annotations, err) < 0)
        return -1;
    if (image_manifest_validate(m, err) < 0)
        return -1;
    m->raw = steal_pointer(&doc);
    *out = steal_pointer(&m);
    return 0;
}

int image_manifest_validate(const image_manifest_t *m, berth_error_t *err)
{
    if (m->kind != MANIFEST_KIND_OCI_MANIFEST && m->kind != MANIFEST_KIND_DOCKER_V2)
        return berth_error_make(err, 0, "manifest: kind is not an image manifest");
    if (schema_version_check(m->schema_version, "manifest", err) < 0)
        return -1;
    if (image_descriptor_validate(&m->config, "manifest: config", err) < 0)
        return -1;
    if (m->n_layers > 0 && m->layers == NULL)
        return berth_error_make(err, 0, "manifest: layers: missing");
    if (descriptors_validate(m->layers, m->n_layers, "manifest:", "layers", err) < 0)
        return -1;
    if (m->subject && image_descriptor_validate(m->subject, "manifest: subject", err) < 0)
        return -1;
    return 0;
}

int image_manifest_serialize(const image_manifest_t *m, char **out, size_t *len, berth_error_t *err)
{
    struct ser s = {0};
    bool oci = m->kind == MANIFEST_KIND_OCI_MANIFEST;
    json_t *doc, *layers;
    if (image_manifest_validate(m, err) < 0)
        return -1;
    doc = json_object();
    json_object_set_new(doc, "schemaVersion", json_integer(m->schema_version));
    put_str(&s, doc, "mediaType", manifest_kind_media_type(m->kind));
    if (oci)
        put_str(&s, doc, "artifactType", m->artifact_type);
    json_object_set_new(doc, "config", descriptor_to_json(&s, &m->config, oci));
    layers = json_array();
    for (size_t i = 0; i < m->n_layers; i++)
        json_array_append_new(layers, descriptor_to_json(&s, &m->layers[i], oci));
    json_object_set_new(doc, "layers", layers);
    if (oci && m->subject)
        json_object_set_new(doc, "subject", descriptor_to_json(&s, m->subject, oci));
    if (oci)
        put_map(doc, "annotations", m->annotations);
    return ser_finish(&s, doc, "manifest", out, len, err);
}

int image_manifest_convert(const image_manifest_t *m, manifest_kind_t to, image_manifest_t **out,
                           berth_error_t *err)
{
    cleanup_image_manifest image_manifest_t *r = NULL;
    bool docker = to == MANIFEST_KIND_DOCKER_V2;
    if (to != MANIFEST_KIND_OCI_MANIFEST && to != MANIFEST_KIND_DOCKER_V2)
        return berth_error_make(err, 0, "convert manifest: target is not an image manifest type");
    if (image_manifest_validate(m, err) < 0)
        return -1;
    r = image_manifest_dup(m);
    json_decref(r->raw);
    r->raw = NULL;
    if (m->kind == to) {
        *out = steal_pointer(&r);
        return 0;
    }
    if (docker) {
        if (m->subject)
            return berth_error_make(err, 0,
                                    "convert manifest to Docker schema2: a subject (referrer) "
                                    "cannot be represented");
        if (m->artifact_type)
            return berth_error_make(err, 0,
                                    "convert manifest to Docker schema2: artifact manifests "
                                    "(artifactType \"%s\") cannot be represented",
                                    m->artifact_type);
        json_decref(r->annotations);
        r->annotations = NULL;
    }
    /* config */
    {
        const char *from_cfg = manifest_kind_config_media_type(m->kind);
        if (strcmp(m->config.media_type, from_cfg) != 0)
            return berth_error_make(err, 0,
                                    "convert manifest: config media type \"%s\" is not an image "
                                    "config",
                                    m->config.media_type);
        set_str(&r->config.media_type, manifest_kind_config_media_type(to));
        if (docker) {
            json_decref(r->config.annotations);
            r->config.annotations = NULL;
        }
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        compression_t c;
        bool nd;
        const char *mt;
        if (!image_layer_media_type_info(m->layers[i].media_type, &c, &nd))
            return berth_error_make(err, 0,
                                    "convert manifest: layers[%zu]: unknown layer media type "
                                    "\"%s\"",
                                    i, m->layers[i].media_type);
        mt = layer_type_for(docker, c, nd);
        if (mt == NULL)
            return berth_error_make(err, 0,
                                    "convert manifest: layers[%zu]: %s-compressed layers cannot "
                                    "be represented in a Docker schema2 manifest (recompress "
                                    "them as gzip)",
                                    i, c == COMPRESSION_ZSTD ? "zstd" : "these");
        set_str(&r->layers[i].media_type, mt);
        if (docker) {
            json_decref(r->layers[i].annotations);
            r->layers[i].annotations = NULL;
        }
    }
    r->kind = to;
    *out = steal_pointer(&r);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * index
 */

void image_index_free(image_index_t *ix)
{
    if (ix == NULL)
        return;
    descriptors_free(ix->manifests, ix->n_manifests);
    if (ix->subject) {
        image_descriptor_clear(ix->subject);
        free(ix->subject);
    }
    free(ix->artifact_type);
    json_decref(ix->annotations);
    json_decref(ix->raw);
    free(ix);
}

image_index_t *image_index_dup(const image_index_t *ix)
{
    image_index_t *r = xzalloc(sizeof(*r));
    r->kind = ix->kind;
    r->schema_version = ix->schema_version;
    r->manifests = descriptors_dup(ix->manifests, ix->n_manifests);
    r->n_manifests = ix->n_manifests;
    if (ix->subject) {
        r->subject = xzalloc(sizeof(*r->subject));
        image_descriptor_copy(r->subject, ix->subject);
    }
    r->artifact_type = sdup(ix->artifact_type);
    r->annotations = jcopy(ix->annotations);
    r->raw = jcopy(ix->raw);
    return r;
}

int image_index_parse(const void *buf, size_t len, image_index_t **out, berth_error_t *err)
{
    cleanup_image_index image_index_t *ix = NULL;
    cleanup_json json_t *doc = NULL;
    json_t *subj;
    if (parse_json(buf, len, IMAGE_MANIFEST_MAX_SIZE, "index", &doc, err) < 0)
        return -1;
    ix = xzalloc(sizeof(*ix));
    if (doc_kind(doc, "index", true, &ix->kind, err) < 0 ||
        get_schema_version(doc, "index", &ix->schema_version, err) < 0 ||
        schema_version_check(ix->schema_version, "index", err) < 0)
        return -1;
    if (descriptors_from_json(doc, "index:", "manifests", true, &ix->manifests, &ix->n_manifests,
                              err) < 0)
        return -1;
    subj = json_object_get(doc, "subject");
    if (subj && !json_is_null(subj)) {
        ix->subject = xzalloc(sizeof(*ix->subject));
        if (descriptor_from_json(subj, "index: subject", ix->subject, err) < 0)
            return -1;
    }
    if (get_str(doc, "index:", "artifactType", &ix->artifact_type, err) < 0 ||
        get_strmap(doc, "index:", "annotations", &ix->annotations, err) < 0)
        return -1;
    if (image_index_validate(ix, err) < 0)
        return -1;
    ix->raw = steal_pointer(&doc);
    *out = steal_pointer(&ix);
    return 0;
}

int image_index_validate(const image_index_t *ix, berth_error_t *err)
{
    if (!manifest_kind_is_index(ix->kind))
        return berth_error_make(err, 0, "index: kind is not an image index");
    if (schema_version_check(ix->schema_version, "index", err) < 0)
        return -1;
    if (ix->n_manifests > 0 && ix->manifests == NULL)
        return berth_error_make(err, 0, "index: manifests: missing");
    if (descriptors_validate(ix->manifests, ix->n_manifests, "index:", "manifests", err) < 0)
        return -1;
    if (ix->subject && image_descriptor_validate(ix->subject, "index: subject", err) < 0)
        return -1;
    return 0;
}

int image_index_serialize(const image_index_t *ix, char **out, size_t *len, berth_error_t *err)
{
    struct ser s = {0};
    bool oci = ix->kind == MANIFEST_KIND_OCI_INDEX;
    json_t *doc, *arr;
    if (image_index_validate(ix, err) < 0)
        return -1;
    doc = json_object();
    json_object_set_new(doc, "schemaVersion", json_integer(ix->schema_version));
    put_str(&s, doc, "mediaType", manifest_kind_media_type(ix->kind));
    if (oci)
        put_str(&s, doc, "artifactType", ix->artifact_type);
    arr = json_array();
    for (size_t i = 0; i < ix->n_manifests; i++)
        json_array_append_new(arr, descriptor_to_json(&s, &ix->manifests[i], oci));
    json_object_set_new(doc, "manifests", arr);
    if (oci && ix->subject)
        json_object_set_new(doc, "subject", descriptor_to_json(&s, ix->subject, oci));
    if (oci)
        put_map(doc, "annotations", ix->annotations);
    return ser_finish(&s, doc, "index", out, len, err);
}

static manifest_kind_t counterpart(manifest_kind_t k)
{
    switch (k) {
    case MANIFEST_KIND_OCI_MANIFEST:
        return MANIFEST_KIND_DOCKER_V2;
    case MANIFEST_KIND_DOCKER_V2:
        return MANIFEST_KIND_OCI_MANIFEST;
    case MANIFEST_KIND_OCI_INDEX:
        return MANIFEST_KIND_DOCKER_LIST;
    case MANIFEST_KIND_DOCKER_LIST:
        return MANIFEST_KIND_OCI_INDEX;
    default:
        return MANIFEST_KIND_UNKNOWN;
    }
}

int image_index_convert(const image_index_t *ix, manifest_kind_t to, image_index_t **out,
                        berth_error_t *err)
{
    cleanup_image_index image_index_t *r = NULL;
    bool docker = to == MANIFEST_KIND_DOCKER_LIST;
    if (!manifest_kind_is_index(to))
        return berth_error_make(err, 0, "convert index: target is not an index type");
    if (image_index_validate(ix, err) < 0)
        return -1;
    r = image_index_dup(ix);
    json_decref(r->raw);
    r->raw = NULL;
    if (ix->kind == to) {
        *out = steal_pointer(&r);
        return 0;
    }
    if (docker) {
        if (ix->subject)
            return berth_error_make(err, 0,
                                    "convert index to Docker manifest list: a subject "
                                    "(referrer) cannot be represented");
        if (ix->artifact_type)
            return berth_error_make(err, 0,
                                    "convert index to Docker manifest list: artifactType cannot "
                                    "be represented");
        json_decref(r->annotations);
        r->annotations = NULL;
    }
    for (size_t i = 0; i < ix->n_manifests; i++) {
        manifest_kind_t k = manifest_kind_from_media_type(ix->manifests[i].media_type);
        manifest_kind_t nk = counterpart(k);
        if (k == MANIFEST_KIND_DOCKER_V1 || nk == MANIFEST_KIND_UNKNOWN)
            return berth_error_make(err, 0,
                                    "convert index: manifests[%zu]: media type \"%s\" cannot be "
                                    "converted",
                                    i, ix->manifests[i].media_type);
        if (manifest_kind_is_docker(k) != docker)
            set_str(&r->manifests[i].media_type, manifest_kind_media_type(nk));
        if (docker) {
            json_decref(r->manifests[i].annotations);
            r->manifests[i].annotations = NULL;
            free(r->manifests[i].artifact_type);
            r->manifests[i].artifact_type = NULL;
        }
    }
    r->kind = to;
    *out = steal_pointer(&r);
    return 0;
}

const image_descriptor_t *image_index_find_platform(const image_index_t *ix,
                                                    const image_platform_t *want)
{
    for (size_t i = 0; i < ix->n_manifests; i++) {
        const image_descriptor_t *d = &ix->manifests[i];
        if (d->platform && image_platform_match(want, d->platform))
            return d;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * config
 */

static void healthcheck_free(image_healthcheck_t *h)
{
    if (h == NULL)
        return;
    strv_free(h->test);
    free(h);
}

static void exec_config_clear(image_exec_config_t *e)
{
    free(e->user);
    strv_free(e->exposed_ports);
    strv_free(e->env);
    strv_free(e->entrypoint);
    strv_free(e->cmd);
    strv_free(e->volumes);
    free(e->working_dir);
    json_decref(e->labels);
    free(e->stop_signal);
    healthcheck_free(e->healthcheck);
    strv_free(e->onbuild);
    strv_free(e->shell);
    memset(e, 0, sizeof(*e));
}

static void exec_config_copy(image_exec_config_t *d, const image_exec_config_t *s)
{
    d->user = sdup(s->user);
    d->exposed_ports = strv_dup(s->exposed_ports);
    d->env = strv_dup(s->env);
    d->entrypoint = strv_dup(s->entrypoint);
    d->cmd = strv_dup(s->cmd);
    d->volumes = strv_dup(s->volumes);
    d->working_dir = sdup(s->working_dir);
    d->labels = jcopy(s->labels);
    d->stop_signal = sdup(s->stop_signal);
    d->args_escaped = s->args_escaped;
    if (s->healthcheck) {
        d->healthcheck = xzalloc(sizeof(*d->healthcheck));
        *d->healthcheck = *s->healthcheck;
        d->healthcheck->test = strv_dup(s->healthcheck->test);
    }
    d->onbuild = strv_dup(s->onbuild);
    d->shell = strv_dup(s->shell);
}

static void history_clear(image_history_t *h)
{
    free(h->created);
    free(h->created_by);
    free(h->author);
    free(h->comment);
}

void image_config_free(image_config_t *c)
{
    if (c == NULL)
        return;
    free(c->created);
    free(c->author);
    free(c->architecture);
    free(c->os);
    free(c->variant);
    free(c->os_version);
    strv_free(c->os_features);
    exec_config_clear(&c->config);
    free(c->rootfs_type);
    strv_free(c->diff_ids);
    for (size_t i = 0; c->history && i < c->n_history; i++)
        history_clear(&c->history[i]);
    free(c->history);
    free(c->docker_version);
    free(c->container);
    json_decref(c->container_config);
    json_decref(c->raw);
    free(c);
}

image_config_t *image_config_dup(const image_config_t *c)
{
    image_config_t *r = xzalloc(sizeof(*r));
    r->created = sdup(c->created);
    r->author = sdup(c->author);
    r->architecture = sdup(c->architecture);
    r->os = sdup(c->os);
    r->variant = sdup(c->variant);
    r->os_version = sdup(c->os_version);
    r->os_features = strv_dup(c->os_features);
    r->has_config = c->has_config;
    exec_config_copy(&r->config, &c->config);
    r->rootfs_type = sdup(c->rootfs_type);
    r->diff_ids = strv_dup(c->diff_ids);
    r->history = xcalloc(c->n_history ? c->n_history : 1, sizeof(*r->history));
    r->n_history = c->n_history;
    for (size_t i = 0; i < c->n_history; i++) {
        r->history[i].created = sdup(c->history[i].created);
        r->history[i].created_by = sdup(c->history[i].created_by);
        r->history[i].author = sdup(c->history[i].author);
        r->history[i].comment = sdup(c->history[i].comment);
        r->history[i].empty_layer = c->history[i].empty_layer;
    }
    r->docker_version = sdup(c->docker_version);
    r->container = sdup(c->container);
    r->container_config = jcopy(c->container_config);
    r->raw = jcopy(c->raw);
    return r;
}

size_t image_config_history_layers(const image_config_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_history; i++)
        if (!c->history[i].empty_layer)
            n++;
    return n;
}

static int healthcheck_from_json(const json_t *j, const char *where, image_healthcheck_t **out,
                                 berth_error_t *err)
{
    image_healthcheck_t *h;
    if (!json_is_object(j))
        return berth_error_make(err, 0, "%s: must be an object, got %s", where, type_name(j));
    h = xzalloc(sizeof(*h));
    if (get_strv(j, where, "Test", &h->test, err) < 0 ||
        get_int(j, where, "Interval", &h->interval, NULL, err) < 0 ||
        get_int(j, where, "Timeout", &h->timeout, NULL, err) < 0 ||
        get_int(j, where, "StartPeriod", &h->start_period, NULL, err) < 0 ||
        get_int(j, where, "StartInterval", &h->start_interval, NULL, err) < 0 ||
        get_int(j, where, "Retries", &h->retries, NULL, err) < 0) {
        healthcheck_free(h);
        return -1;
    }
    *out = h;
    return 0;
}

static int exec_config_from_json(const json_t *j, image_exec_config_t *e, berth_error_t *err)
{
    const char *w = "config: config";
    json_t *hc;
    if (!json_is_object(j))
        return berth_error_make(err, 0, "%s: must be an object, got %s", w, type_name(j));
    if (get_str(j, w, "User", &e->user, err) < 0 ||
        get_keyset(j, w, "ExposedPorts", &e->exposed_ports, err) < 0 ||
        get_strv(j, w, "Env", &e->env, err) < 0 ||
        get_strv(j, w, "Entrypoint", &e->entrypoint, err) < 0 ||
        get_strv(j, w, "Cmd", &e->cmd, err) < 0 ||
        get_keyset(j, w, "Volumes", &e->volumes, err) < 0 ||
        get_str(j, w, "WorkingDir", &e->working_dir, err) < 0 ||
        get_strmap(j, w, "Labels", &e->labels, err) < 0 ||
        get_str(j, w, "StopSignal", &e->stop_signal, err) < 0 ||
        get_bool(j, w, "ArgsEscaped", &e->args_escaped, err) < 0 ||
        get_strv(j, w, "OnBuild", &e->onbuild, err) < 0 ||
        get_strv(j, w, "Shell", &e->shell, err) < 0)
        return -1;
    hc = json_object_get(j, "Healthcheck");
    if (hc && !json_is_null(hc) &&
        healthcheck_from_json(hc, "config: config.Healthcheck", &e->healthcheck, err) < 0)
        return -1;
    return 0;
}

static int history_from_json(const json_t *doc, image_config_t *c, berth_error_t *err)
{
    json_t *a = json_object_get(doc, "history");
    size_t i;
    json_t *e;
    c->history = xcalloc(a && json_is_array(a) ? json_array_size(a) + 1 : 1, sizeof(*c->history));
    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return type_error("config:", "history", "an array", a, err);
    json_array_foreach(a, i, e)
    {
        cleanup_free char *w = xasprintf("config: history[%zu]", i);
        image_history_t *h = &c->history[i];
        if (!json_is_object(e))
            return berth_error_make(err, 0, "%s: must be an object, got %s", w, type_name(e));
        c->n_history = i + 1;
        if (get_str(e, w, "created", &h->created, err) < 0 ||
            get_str(e, w, "created_by", &h->created_by, err) < 0 ||
            get_str(e, w, "author", &h->author, err) < 0 ||
            get_str(e, w, "comment", &h->comment, err) < 0 ||
            get_bool(e, w, "empty_layer", &h->empty_layer, err) < 0)
            return -1;
    }
    return 0;
}

int image_config_parse(const void *buf, size_t len, image_config_t **out, berth_error_t *err)
{
    cleanup_image_config image_config_t *c = NULL;
    cleanup_json json_t *doc = NULL;
    json_t *cfg, *rootfs, *cc;
    if (parse_json(buf, len, IMAGE_CONFIG_MAX_SIZE, "config", &doc, err) < 0)
        return -1;
    c = xzalloc(sizeof(*c));
    if (get_str(doc, "config:", "created", &c->created, err) < 0 ||
        get_str(doc, "config:", "author", &c->author, err) < 0 ||
        get_str(doc, "config:", "architecture", &c->architecture, err) < 0 ||
        get_str(doc, "config:", "os", &c->os, err) < 0 ||
        get_str(doc, "config:", "variant", &c->variant, err) < 0 ||
        get_str(doc, "config:", "os.version", &c->os_version, err) < 0 ||
        get_strv(doc, "config:", "os.features", &c->os_features, err) < 0 ||
        get_str(doc, "config:", "docker_version", &c->docker_version, err) < 0 ||
        get_str(doc, "config:", "container", &c->container, err) < 0)
        return -1;
    cfg = json_object_get(doc, "config");
    if (cfg && !json_is_null(cfg)) {
        c->has_config = true;
        if (exec_config_from_json(cfg, &c->config, err) < 0)
            return -1;
    }
    cc = json_object_get(doc, "container_config");
    if (cc && !json_is_null(cc)) {
        if (!json_is_object(cc))
            return type_error("config:", "container_config", "an object", cc, err);
        c->container_config = json_deep_copy(cc);
    }
    rootfs = json_object_get(doc, "rootfs");
    if (rootfs == NULL || json_is_null(rootfs))
        return berth_error_make(err, 0, "config: rootfs: missing");
    if (!json_is_object(rootfs))
        return type_error("config:", "rootfs", "an object", rootfs, err);
    if (get_str(rootfs, "config: rootfs", "type", &c->rootfs_type, err) < 0 ||
        get_strv(rootfs, "config: rootfs", "diff_ids", &c->diff_ids, err) < 0)
        return -1;
    if (c->diff_ids == NULL)
        c->diff_ids = xcalloc(1, sizeof(char *));
    if (history_from_json(doc, c, err) < 0)
        return -1;
    if (image_config_validate(c, err) < 0)
        return -1;
    c->raw = steal_pointer(&doc);
    *out = steal_pointer(&c);
    return 0;
}

int image_config_validate(const image_config_t *c, berth_error_t *err)
{
    if (c->architecture == NULL || !*c->architecture)
        return berth_error_make(err, 0, "config: architecture: missing");
    if (c->os == NULL || !*c->os)
        return berth_error_make(err, 0, "config: os: missing");
    if (c->rootfs_type == NULL)
        return berth_error_make(err, 0, "config: rootfs.type: missing");
    if (strcmp(c->rootfs_type, "layers") != 0)
        return berth_error_make(err, 0, "config: rootfs.type: must be \"layers\", got \"%s\"",
                                c->rootfs_type);
    for (size_t i = 0; c->diff_ids && c->diff_ids[i]; i++)
        if (digest_validate(c->diff_ids[i], err) < 0)
            return berth_error_wrap(err, "config: rootfs.diff_ids[%zu]", i);
    if (c->n_history > 0 && c->history == NULL)
        return berth_error_make(err, 0, "config: history: missing");
    if (c->config.healthcheck && c->config.healthcheck->retries < 0)
        return berth_error_make(err, 0, "config: config.Healthcheck.Retries: must not be negative");
    return 0;
}

static json_t *exec_config_to_json(struct ser *s, const image_exec_config_t *e)
{
    json_t *o = json_object();
    if (e->user && *e->user)
        put_str(s, o, "User", e->user);
    put_keyset(s, o, "ExposedPorts", e->exposed_ports);
    if (e->env && e->env[0])
        put_strv(s, o, "Env", e->env);
    put_strv(s, o, "Entrypoint", e->entrypoint);
    put_strv(s, o, "Cmd", e->cmd);
    put_keyset(s, o, "Volumes", e->volumes);
    if (e->working_dir && *e->working_dir)
        put_str(s, o, "WorkingDir", e->working_dir);
    put_map(o, "Labels", e->labels);
    if (e->stop_signal && *e->stop_signal)
        put_str(s, o, "StopSignal", e->stop_signal);
    if (e->args_escaped)
        json_object_set_new(o, "ArgsEscaped", json_true());
    if (e->healthcheck) {
        const image_healthcheck_t *h = e->healthcheck;
        json_t *hj = json_object();
        put_strv(s, hj, "Test", h->test);
        if (h->interval)
            json_object_set_new(hj, "Interval", json_integer(h->interval));
        if (h->timeout)
            json_object_set_new(hj, "Timeout", json_integer(h->timeout));
        if (h->start_period)
            json_object_set_new(hj, "StartPeriod", json_integer(h->start_period));
        if (h->start_interval)
            json_object_set_new(hj, "StartInterval", json_integer(h->start_interval));
        if (h->retries)
            json_object_set_new(hj, "Retries", json_integer(h->retries));
        json_object_set_new(o, "Healthcheck", hj);
    }
    if (e->onbuild && e->onbuild[0])
        put_strv(s, o, "OnBuild", e->onbuild);
    if (e->shell && e->shell[0])
        put_strv(s, o, "Shell", e->shell);
    return o;
}

int image_config_serialize(const image_config_t *c, char **out, size_t *len, berth_error_t *err)
{
    struct ser s = {0};
    json_t *doc, *rootfs;
    if (image_config_validate(c, err) < 0)
        return -1;
    doc = json_object();
    put_str(&s, doc, "created", c->created);
    put_str(&s, doc, "author", c->author);
    put_str(&s, doc, "architecture", c->architecture);
    put_str(&s, doc, "variant", c->variant);
    put_str(&s, doc, "os", c->os);
    put_str(&s, doc, "os.version", c->os_version);
    if (c->os_features && c->os_features[0])
        put_strv(&s, doc, "os.features", c->os_features);
    if (c->has_config)
        json_object_set_new(doc, "config", exec_config_to_json(&s, &c->config));
    rootfs = json_object();
    put_str(&s, rootfs, "type", c->rootfs_type);
    json_object_set_new(rootfs, "diff_ids", strv_json(&s, c->diff_ids, "rootfs.diff_ids"));
    json_object_set_new(doc, "rootfs", rootfs);
    if (c->n_history > 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < c->n_history; i++) {
            const image_history_t *h = &c->history[i];
            json_t *o = json_object();
            put_str(&s, o, "created", h->created);
            put_str(&s, o, "created_by", h->created_by);
            put_str(&s, o, "author", h->author);
            put_str(&s, o, "comment", h->comment);
            if (h->empty_layer)
                json_object_set_new(o, "empty_layer", json_true());
            json_array_append_new(a, o);
        }
        json_object_set_new(doc, "history", a);
    }
    put_str(&s, doc, "container", c->container);
    if (c->container_config)
        json_object_set_new(doc, "container_config", json_deep_copy(c->container_config));
    put_str(&s, doc, "docker_version", c->docker_version);
    return ser_finish(&s, doc, "config", out, len, err);
}

int image_config_convert(const image_config_t *c, manifest_kind_t to, image_config_t **out,
                         berth_error_t *err)
{
    image_config_t *r;
    if (to != MANIFEST_KIND_OCI_MANIFEST && to != MANIFEST_KIND_DOCKER_V2)
        return berth_error_make(err, 0,
                                "convert config: target must be an OCI or Docker image manifest "
                                "kind");
    if (image_config_validate(c, err) < 0)
        return -1;
    r = image_config_dup(c);
    json_decref(r->raw);
    r->raw = NULL;
    if (to == MANIFEST_KIND_OCI_MANIFEST) {
        /* The OCI config has no place for these; dropping them is the documented conversion. */
        healthcheck_free(r->config.healthcheck);
        r->config.healthcheck = NULL;
        strv_free(r->config.onbuild);
        r->config.onbuild = NULL;
        strv_free(r->config.shell);
        r->config.shell = NULL;
        set_str(&r->docker_version, NULL);
        set_str(&r->container, NULL);
        json_decref(r->container_config);
        r->container_config = NULL;
    }
    *out = r;
    return 0;
}

/* ---- times ---- */

static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

char *image_time_format(int64_t ts)
{
    struct timespec now;
    struct tm tm;
    if (ts >= 0) {
        time_t t = (time_t)ts;
        gmtime_r(&t, &tm);
        char b[64];
        strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return xstrdup(b);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    char b[64];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    return xasprintf("%s.%09ldZ", b, now.tv_nsec);
}

int image_time_parse(const char *s, int64_t *out)
{
    int Y, M, D, h, m, sec;
    if (!s || strlen(s) < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) ||
        s[7] != '-' || !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    /* days from the civil date (proleptic Gregorian), independent of the local time zone */
    int y = M <= 2 ? Y - 1 : Y;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    *out = days * 86400 + h * 3600 + m * 60 + sec - off;
    return 0;
}
