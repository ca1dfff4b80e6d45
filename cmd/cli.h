/* The CLI: global options, command registration and shared output helpers.
 *
 * A command registers itself from its own file, with no central table to edit:
 *
 *     static int cmd_images(struct berth_globals *g, int argc, char **argv);
 *     BERTH_COMMAND(images, "images", "List images in local storage", cmd_images);
 *
 * Two-word commands ("system df", "image prune") are registered with a space in the name; the
 * dispatcher tries the two-word form first.  A command receives argv with argv[0] set to its own
 * name ("berth images"), ready for getopt_long, and returns the process exit code: 0, or
 * BERTH_EXIT_ERROR (125) for berth's own errors, or whatever the command defines (e.g. a
 * container's exit status for run).
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include "common/error.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define BERTH_EXIT_ERROR 125

struct berth_globals {
    const char *root;            /* --root, NULL = default for this user */
    const char *runroot;         /* --runroot */
    const char *storage_driver;  /* --storage-driver */
    const char *registries_conf; /* --registries-conf */
    const char *policy;          /* --policy */
    const char *argv0;           /* the binary's path, for re-exec */
};

typedef int (*berth_command_fn)(struct berth_globals *g, int argc, char **argv);

struct berth_command {
    const char *name;
    const char *summary;
    berth_command_fn fn;
};

#define BERTH_COMMAND(id, name_, summary_, fn_)                                                    \
    static const struct berth_command berth_command_##id                                           \
        __attribute__((used, section("berth_cmds"), aligned(sizeof(void *)))) = {name_, summary_,  \
                                                                                 fn_}

/* Prints "Error: <msg>" to stderr, releases err, returns BERTH_EXIT_ERROR. */
BERTH_MUST_CHECK int cli_fail(berth_error_t *err);
/* Prints "Error: <formatted>" to stderr, returns BERTH_EXIT_ERROR. */
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Standard getopt_long loop handling for a command: call after getopt_long returned '?' or ':'
 * (opterr must be 0 — cli_getopt does that).  Prints a clear message naming the bad flag. */
int cli_bad_option(const char *cmd, int argc, char **argv);

/* getopt_long wrapper: resets optind, sets opterr=0, uses "+" ordering only if stop_at_nonopt.
 * Returns like getopt_long. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               bool stop_at_nonopt);

/* Parses a boolean flag value such as --tls-verify=false: "true"/"false"/"1"/"0". */
int cli_parse_bool(const char *flag, const char *value, bool *out);

/* Parses an integer flag value in [min, max] ("--jobs 4"); otherwise prints
 * 'Error: invalid FLAG "VALUE": expected MIN..MAX' and returns cli_failf's status. */
int cli_parse_int(const char *flag, const char *value, long min, long max, int *out);

/* --timestamp and SOURCE_DATE_EPOCH: seconds since the epoch, >= 0; "" is refused (the one
 * timestamp parser of build and commit). */
int cli_parse_timestamp(const char *value, int64_t *out);

/* --isolation VALUE (NULL when not given: $BUILDAH_ISOLATION, else auto) checked and stored in
 * *out; prints the error and returns BERTH_EXIT_ERROR for an unknown mode. */
int cli_isolation(const char *value, const char **out);

/* Prints a command's usage text (multi-line string) to stdout and returns 0. */
int cli_usage(const char *text);

/* Reports a missing/extra positional argument count; returns BERTH_EXIT_ERROR. */
int cli_nargs_error(const char *cmd, const char *expect);

/* --format TEMPLATE as podman runs it (common/template.h): the Go template over `items` (a JSON
 * array), preceded in table mode by the header line from `headers` (field name -> column title)
 * unless noheading; prints the output.  Returns 0, or BERTH_EXIT_ERROR after printing the error
 * (nothing of the output is printed then). */
struct json_t;
int cli_print_template(const char *format, const struct json_t *items, const struct json_t *headers,
                       bool noheading);
/* The same, returning the output in *out (caller frees) instead of printing; -1 with *err set. */
BERTH_MUST_CHECK int cli_render_template(const char *format, const struct json_t *items,
                                         const struct json_t *headers, bool noheading, char **out,
                                         berth_error_t *err);
/* go-units' HumanDuration of a number of seconds ("Less than a second", "About a minute",
 * "3 hours" ...), as podman words ages. */
void cli_human_duration(long long seconds, char *buf, size_t len);
/* Go's time.Time String() of unix seconds, in local time ("2006-01-02 15:04:05 -0700 MST"). */
void cli_go_time(long long t, char *buf, size_t len);
/* The header map of a table template (field name -> column title) from n {field, title} pairs;
 * caller decrefs. */
struct json_t *cli_template_headers(const char *const pairs[][2], size_t n);

#endif
