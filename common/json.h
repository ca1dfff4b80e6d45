/* JSON helpers over jansson.  Every document read from outside is parsed with a size limit. */
#ifndef BERTH_JSON_H
#define BERTH_JSON_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void cleanup_jsonp(json_t **j)
{
    if (*j) {
        json_decref(*j);
        *j = NULL;
    }
}
#define cleanup_json __attribute__((cleanup(cleanup_jsonp)))

/* The one JSON parser of berth: every document (manifests, configs, records, API bodies, files
 * the user names) is read here, with one flag set, so no two readers can see the same bytes
 * differently.  One status convention for its errors: EFBIG "<what> too large: N bytes, limit M"
 * when the input passes max, EINVAL "invalid <what>: line L column C: ..." for anything that is
 * not one JSON value (duplicate keys, NUL in strings, trailing bytes); callers that then find
 * the wrong shape report EINVAL too.
 *
 * Parses buf (len bytes, need not be NUL-terminated).  Fails if len > max (EFBIG), if it is not
 * valid JSON (EINVAL; the error says line/column and `what`, e.g. "manifest"), has trailing
 * garbage, or repeats a key in an object.  Any JSON value is accepted at the top level: callers
 * check the type they expect. */
BERTH_MUST_CHECK int json_parse_bounded(const char *buf, size_t len, size_t max, const char *what,
                                        json_t **out, berth_error_t *err);
BERTH_MUST_CHECK int json_load_file_bounded(const char *path, size_t max, json_t **out,
                                            berth_error_t *err);

/* Typed getters: return NULL/false/-1 when missing or of the wrong type. */
const char *json_get_string(const json_t *obj, const char *key);
bool json_get_int(const json_t *obj, const char *key, int64_t *out);
bool json_get_bool(const json_t *obj, const char *key, bool *out);
json_t *json_get_object(const json_t *obj, const char *key);
json_t *json_get_array(const json_t *obj, const char *key);

/* Required-field variants with errors naming the field path ("<what>.<key>"). */
BERTH_MUST_CHECK int json_require_string(const json_t *obj, const char *what, const char *key,
                                         const char **out, berth_error_t *err);
BERTH_MUST_CHECK int json_require_int(const json_t *obj, const char *what, const char *key,
                                      int64_t *out, berth_error_t *err);

/* Serialises compactly with sorted keys (deterministic); caller frees.  *len optional. */
char *json_dump_canonical(const json_t *j, size_t *len);
/* Serialises with 2-space indentation for humans (CLI output); caller frees. */
char *json_dump_pretty(const json_t *j);
/* Writes a JSON document atomically to path (fs_write_file_atomic), compact sorted keys. */
BERTH_MUST_CHECK int json_write_file_atomic(const char *path, const json_t *j, mode_t mode,
                                            berth_error_t *err);

/* NULL-terminated string array <-> JSON array of strings. */
json_t *json_from_strv(char *const *v);
BERTH_MUST_CHECK int json_to_strv(const json_t *arr, const char *what, char ***out,
                                  berth_error_t *err);

#endif
