/* Mirroring many images at once, like skopeo sync, with HEAD-first change detection.
 *
 * Sources: "docker" (a repository: every tag, filtered by the include/exclude regexes; or one
 * image when a tag/digest is given), "dir" (a directory tree written by a previous sync to dir:
 * every directory holding a manifest.json is an image named by its relative path), "yaml" (a
 * skopeo sync YAML file: registry -> images / images-by-tag-regex, tls-verify, cert-dir,
 * credentials).  Destinations: "docker" (registry/prefix) and "dir" (a directory).
 * Destination names are DST/<last path component of the source>:<tag>, or with `scoped`
 * DST/<full source name>:<tag>.
 *
 * Change detection: before copying, the source manifest's digest (a HEAD for registries) is
 * compared with the destination's (a HEAD, or the manifest.json on disk); equal means up to
 * date and nothing is written.  Blobs already present in a destination repository are not
 * uploaded again (HEAD) and blobs seen in another repository of the same registry during the
 * run are mounted, so shared blobs are transferred once per run.
 */
#ifndef BERTH_TRANSPORT_SYNC_H
#define BERTH_TRANSPORT_SYNC_H

#include "common/error.h"
#include "transport/copy.h"
#include "transport/transport.h"

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>

enum sync_kind { SYNC_DOCKER = 0, SYNC_DIR, SYNC_YAML };

struct sync_options {
    enum sync_kind src_kind, dst_kind;
    const char *src, *dst;
    const struct system_context *src_sys; /* yaml entries override tls/cert-dir/creds */
    const struct system_context *dst_sys;
    bool scoped;
    bool all;         /* every instance of an index */
    char **arches;    /* NULL-terminated subset of architectures (implies index copies) */
    regex_t *include; /* tags must match one of these (when n_include > 0) */
    size_t n_include;
    regex_t *exclude; /* tags matching any of these are skipped */
    size_t n_exclude;
    bool dry_run;
    bool keep_going;
    int jobs;      /* images copied in parallel (>= 1) */
    int blob_jobs; /* blob transfers per image (0: copy engine default) */
    copy_format_t format;
    bool preserve_digests;
    bool remove_signatures;
    const struct policy *policy; /* signature policy every source must satisfy (NULL: none) */
    /* sign every image written (as copy's --sign-by / --sign-by-sigstore-private-key; the
     * identity signed is each destination's name) */
    const char *sign_by;
    const char *sign_by_sigstore;
    const char *sign_passphrase_file;
    bool quiet;
    FILE *progress; /* messages ("Copying image ..."), NULL: stderr */
};

enum sync_status { SYNC_COPIED = 0, SYNC_UP_TO_DATE, SYNC_WOULD_COPY, SYNC_FAILED };

struct sync_item {
    char *src; /* "docker://..." or "dir:..." */
    char *dst;
    enum sync_status status;
    char *error; /* when failed */
};

struct sync_result {
    struct sync_item *items;
    size_t n;
    size_t copied, up_to_date, would_copy, failed;
};
void sync_result_clear(struct sync_result *r);
/* {"copied":N,"up_to_date":N,"failed":N,"failures":[{"source","destination","error"}]} */
json_t *sync_result_report(const struct sync_result *r);

/* Runs the sync.  Returns 0 when every image succeeded (or was up to date); -1 with *err when
 * listing failed, or when an image failed (the first failure without keep_going, a summary
 * with it).  *res is filled in both cases. */
BERTH_MUST_CHECK int sync_run(const struct sync_options *o, struct sync_result *res,
                              berth_error_t *err);

/* Minimal YAML (block maps, block and flow sequences of scalars, plain/quoted scalars,
 * comments) into JSON: maps -> objects, sequences -> arrays, scalars -> strings.  Errors name
 * `what` and the line.  Exposed for tests. */
BERTH_MUST_CHECK int sync_yaml_parse(const char *text, size_t len, const char *what, json_t **out,
                                     berth_error_t *err);

#endif
