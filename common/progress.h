/* Progress output for copies and pulls.  On a terminal (stderr is a tty and not quiet) it draws
 * a bar per line; otherwise it prints plain one-line messages like skopeo's
 * ("Copying blob sha256:..."), and with quiet nothing at all.  Thread-safe: several blob copies
 * may report at once. */
#ifndef BERTH_PROGRESS_H
#define BERTH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct progress progress_t;
typedef struct progress_bar progress_bar_t;

/* out is the stream to write to (stderr normally; skopeo writes progress to stdout for copy,
 * callers choose).  quiet suppresses everything. */
progress_t *progress_new(FILE *out, bool quiet);
void progress_free(progress_t *p);
/* Prints one line (message), e.g. "Writing manifest to image destination". */
void progress_message(progress_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts a bar: label like "Copying blob sha256:abc…", total < 0 when unknown.  Every function
 * accepts a NULL progress/bar and then does nothing, so callers without output pass NULL.
 * Bars must be finished with progress_bar_done() (which frees them) before progress_free(). */
progress_bar_t *progress_bar_start(progress_t *p, const char *label, int64_t total);
void progress_bar_add(progress_bar_t *b, uint64_t n);
/* Ends the bar with a final word ("done", "skipped: already exists", "failed"). */
void progress_bar_done(progress_bar_t *b, const char *final_word);
bool progress_is_tty(const progress_t *p);

#endif
