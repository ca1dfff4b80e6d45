#include "common/json.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int json_parse_bounded(const char *buf, size_t len, size_t max, const char *what, json_t **out,
                       berth_error_t *err)
{
    if (what == NULL)
        what = "JSON document";
    if (len > max)
        return berth_error_make_status(err, EFBIG, "%s too large: %zu bytes, limit %zu", what, len,
                                       max);
    json_error_t jerr;
    /* Duplicate keys are rejected: two parsers picking different values for the same key is how
     * a signed manifest gets read differently from what was verified. */
    json_t *j = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return berth_error_make_status(err, EINVAL, "invalid %s: line %d column %d: %s", what,
                                       jerr.line, jerr.column, jerr.text);
    *out = j;
    return 0;
}

int json_load_file_bounded(const char *path, size_t max, json_t **out, berth_error_t *err)
{
    cleanup_free char *buf = NULL;
    size_t len = 0;
    if (fs_read_file(path, max, &buf, &len, err) < 0)
        return -1;
    cleanup_free char *what = xasprintf("JSON in \"%s\"", path);
    return json_parse_bounded(buf, len, max, what, out, err);
}

const char *json_get_string(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_integer(v))
        return false;
    if (out)
        *out = (int64_t)json_integer_value(v);
    return true;
}

bool json_get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_boolean(v))
        return false;
    if (out)
        *out = json_is_true(v);
    return true;
}

json_t *json_get_object(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_object(v) ? v : NULL;
}

json_t *json_get_array(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_array(v) ? v : NULL;
}

int json_require_string(const json_t *obj, const char *what, const char *key, const char **out,
                        berth_error_t *err)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (v == NULL)
        return berth_error_make_status(err, EINVAL, "%s.%s: missing", what ? what : "", key);
    if (!json_is_string(v))
        return berth_error_make_status(err, EINVAL, "%s.%s: not a string", what ? what : "", key);
    *out = json_string_value(v);
    return 0;
}

int json_require_int(const json_t *obj, const char *what, const char *key, int64_t *out,
                     berth_error_t *err)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (v == NULL)
        return berth_error_make_status(err, EINVAL, "%s.%s: missing", what ? what : "", key);
    if (!json_is_integer(v))
        return berth_error_make_status(err, EINVAL, "%s.%s: not an integer", what ? what : "", key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

char *json_dump_canonical(const json_t *j, size_t *len)
{
    /* No JSON_ENSURE_ASCII: non-ASCII stays UTF-8 as Go's encoding/json writes it. */
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s == NULL)
        abort(); /* only on allocation failure or an invalid json_t */
    if (len)
        *len = strlen(s);
    return s;
}

char *json_dump_pretty(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s == NULL)
        abort();
    return s;
}

int json_write_file_atomic(const char *path, const json_t *j, mode_t mode, berth_error_t *err)
{
    size_t len = 0;
    cleanup_free char *s = json_dump_canonical(j, &len);
    return fs_write_file_atomic(path, s, len, mode, err);
}

json_t *json_from_strv(char *const *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(arr, json_string(v[i]));
    return arr;
}

int json_to_strv(const json_t *arr, const char *what, char ***out, berth_error_t *err)
{
    if (!json_is_array(arr))
        return berth_error_make_status(err, EINVAL, "%s: not an array", what ? what : "value");
    size_t n = json_array_size(arr);
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        if (!json_is_string(e)) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return berth_error_make_status(err, EINVAL, "%s[%zu]: not a string",
                                           what ? what : "value", i);
        }
        v[i] = xstrndup(json_string_value(e), json_string_length(e));
    }
    *out = v;
    return 0;
}
