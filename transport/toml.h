/* The TOML subset registries.conf uses: comments, [table] and [[array-of-tables]] headers,
 * bare, quoted and dotted keys, basic and literal one-line strings (escapes \n \t \r \" \\),
 * booleans, integers and arrays of strings.  Not supported (an error that says so): multi-line
 * strings, inline tables, floats, dates.
 *
 * A lexer the caller drives: the caller sees a table header or a key at the start of a line and
 * decides what it means; errors name the file and line ("FILE:LINE: message", status EINVAL). */
#ifndef BERTH_TOML_H
#define BERTH_TOML_H

#include "common/error.h"

#include <stdbool.h>

enum toml_type { TOML_STRING, TOML_BOOL, TOML_INT, TOML_ARRAY };
struct toml_value {
    enum toml_type type;
    char *s;
    bool b;
    long long i;
    char **arr; /* NULL-terminated strings */
};

void toml_value_clear(struct toml_value *v);
const char *toml_type_name(enum toml_type t); /* "a string", "a boolean", ... */

struct toml_lexer {
    const char *p, *end; /* the unread text */
    const char *file;    /* for messages */
    int line;            /* current line, from 1 */
};

BERTH_MUST_CHECK int toml_error(struct toml_lexer *lx, berth_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Skips spaces, tabs, comments; newlines too when nl. */
void toml_skip(struct toml_lexer *lx, bool nl);
/* At a quote: the string (owned). */
BERTH_MUST_CHECK int toml_parse_string(struct toml_lexer *lx, char **out, berth_error_t *err);
/* A key, possibly dotted ("a.b" or "registries.search"), returned joined with '.' (owned);
 * quoted: some part was quoted. */
BERTH_MUST_CHECK int toml_parse_key(struct toml_lexer *lx, char **out, bool *quoted,
                                    berth_error_t *err);
/* After '=': one value (clear it with toml_value_clear, also after an error). */
BERTH_MUST_CHECK int toml_parse_value(struct toml_lexer *lx, struct toml_value *v,
                                      berth_error_t *err);

#endif
