/* Go text/template for --format, over jansson values.
 *
 * The engine follows Go's text/template as podman, buildah and skopeo use it: fields (.A.B),
 * variables ($x := ..., $x = ..., range $i, $e := ...), pipelines, parenthesised pipelines,
 * if/else if/else, range/else (with break/continue), with/else, comments, trim markers
 * ({{- and -}}), the builtins (and or not eq ne lt le gt ge len index print printf println) and
 * podman's functions (json join lower upper title split truncate pad, plus trim).
 *
 * Values are jansson values; a JSON object is a Go map (a missing key gives "<no value>") unless
 * it was made with tmpl_struct_new(), which marks it as a Go struct: a missing field is then an
 * error naming the type, and %v prints it as {v1 v2 ...} in insertion order.  Printing follows
 * Go's fmt %v: null is <nil>, arrays [a b], maps map[k:v] with sorted keys.
 *
 * Everything is bounded: the template's length (TMPL_MAX_TEXT), the nesting of control structures
 * and parentheses (TMPL_MAX_DEPTH), the output of one execution (TMPL_MAX_OUTPUT) and the number
 * of evaluation steps (TMPL_MAX_STEPS, so nested ranges over large data stop).
 *
 * Errors read "template: LINE:COL: message" with LINE and COL (1-based) in the text the user gave.
 */
#ifndef BERTH_TEMPLATE_H
#define BERTH_TEMPLATE_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TMPL_MAX_TEXT   (64 * 1024)
#define TMPL_MAX_DEPTH  64
#define TMPL_MAX_OUTPUT (16 * 1024 * 1024)
#define TMPL_MAX_STEPS  (10 * 1000 * 1000)

/* The hidden key that marks an object as a Go struct; its value is the type name. */
#define TMPL_STRUCT_KEY "\x01type"

typedef struct tmpl tmpl_t;

/* A new empty object marked as a Go struct of type `type_name` (e.g. "images.imageReporter"). */
json_t *tmpl_struct_new(const char *type_name);
/* A Go nil map (e.g. podman's Labels when there are none): {{.}} prints map[], json null. */
json_t *tmpl_nil_map(void);

/* Parses text (len bytes; NUL bytes are rejected).  Fails with EINVAL and a positioned message. */
BERTH_MUST_CHECK int tmpl_parse(const char *text, size_t len, tmpl_t **out, berth_error_t *err);
void tmpl_free(tmpl_t *t);
static inline void tmpl_cleanup(tmpl_t **t)
{
    tmpl_free(*t);
}
#define cleanup_tmpl __attribute__((cleanup(tmpl_cleanup)))

/* Executes t with dot = data, appending to *out (a strbuf-like growing buffer, see strutil.h).
 * On error, what was written so far stays in *out. */
struct strbuf;
BERTH_MUST_CHECK int tmpl_execute(const tmpl_t *t, const json_t *data, struct strbuf *out,
                                  berth_error_t *err);

/* Go's time.Time String() ("2006-01-02 15:04:05.999999999 -0700 MST") of an RFC 3339 time as
 * image configs write it; "Z" becomes "+0000 UTC", an offset names itself ("+0200 +0200").
 * Returns -1 if rfc3339 is not such a time. */
int tmpl_go_time(const char *rfc3339, char *buf, size_t len);

/* Go's %v of a value (what {{.}} prints), appended to out. */
void tmpl_print_value(struct strbuf *out, const json_t *v);

/* --format as podman reads it (containers/common report): "json" or {{json .}} means JSON
 * output, which the caller renders itself. */
bool tmpl_format_is_json(const char *format);

/* A report: the template run over a list of items, as podman's --format does (containers/common
 * report): "table X" strips "table ", turns spaces and \t into column separators and aligns the
 * columns (tabwriter with minwidth 12, padding 2); otherwise the two-character sequences \t and
 * \n become a tab and a newline.  A newline ends the template unless it ends with one, and the
 * text runs inside {{range .}}...{{end -}} (so $ is the whole list), as podman does.  When the
 * normalised text does not parse (a \n inside a quoted string), the text as given is used. */
typedef struct tmpl_report tmpl_report_t;
BERTH_MUST_CHECK int tmpl_report_new(const char *format, tmpl_report_t **out, berth_error_t *err);
bool tmpl_report_is_table(const tmpl_report_t *r);
/* The header line of a table: the template over the one-element list [headers], where headers
 * maps field names to column titles (podman: the field name upper-cased, words split). */
BERTH_MUST_CHECK int tmpl_report_headers(tmpl_report_t *r, const json_t *headers,
                                         berth_error_t *err);
/* Runs the template over `items` (an array). */
BERTH_MUST_CHECK int tmpl_report_run(tmpl_report_t *r, const json_t *items, berth_error_t *err);
/* The whole output (aligned in table mode) in *out; caller frees.  Fails (EFBIG) when aligning
 * would make it larger than TMPL_MAX_OUTPUT. */
BERTH_MUST_CHECK int tmpl_report_finish(tmpl_report_t *r, char **out, berth_error_t *err);
void tmpl_report_free(tmpl_report_t *r);
static inline void tmpl_report_cleanup(tmpl_report_t **r)
{
    tmpl_report_free(*r);
}
#define cleanup_tmpl_report __attribute__((cleanup(tmpl_report_cleanup)))

/* Go's text/tabwriter (flags 0, pad char ' ') over text; caller frees.  NULL when the result
 * would be longer than max bytes. */
char *tmpl_tabwrite(const char *text, size_t minwidth, size_t padding, size_t max);

#endif
