/* Helpers shared by berth's own transports (oci, oci-archive, dir, docker-archive,
 * containers-storage).  Not part of the transport interface. */
#ifndef BERTH_TRANSPORT_INTERNAL_H
#define BERTH_TRANSPORT_INTERNAL_H

#include "common/error.h"
#include "common/stream.h"
#include "transport/transport.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define OCI_REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define OCI_LAYOUT_CONTENT      "{\"imageLayoutVersion\":\"1.0.0\"}"
#define OCI_INDEX_MAX           (4u * 1024 * 1024)

/* Directory for staging files: sys->tmpdir, $TMPDIR or /var/tmp (static or sys-owned). */
const char *transport_tmpdir(const struct system_context *sys);

/* "blobs/<algo>/<hex>" for a validated digest; NULL with error otherwise. */
BERTH_MUST_CHECK char *oci_blob_path(const char *digest, berth_error_t *err);

/* Splits "PATH[:TAG]" (and "@INDEX" when allow_index): the tag is what follows the last ':'
 * when it contains no '/'; "@<digits>" at the end selects an image by position (sources only).
 * *index is -1 when absent. */
BERTH_MUST_CHECK int oci_split_within(const char *within, bool allow_index, char **path, char **tag,
                                      int *index, berth_error_t *err);

/* oci: and oci-archive: references ("PATH[:TAG][@INDEX]"), implemented in oci.c. */
BERTH_MUST_CHECK int oci_ref_new(const struct transport_ops *t, const struct reference_ops *ops,
                                 const char *within, struct image_reference **out,
                                 berth_error_t *err);
void oci_ref_parts(const struct image_reference *ref, const char **path, const char **tag,
                   int *index);
char *oci_ref_string(const struct image_reference *ref);
void oci_ref_free(struct image_reference *ref);
/* What an OCI layout (directory or archive) holds: OCI manifests and indexes. */
const char *const *oci_supported_manifest_types(struct image_destination *d);

/* A reference to one image of an archive being written (archive_multi.h), named
 * "<transport>:<path>": it cannot be read; new_dst makes its destinations over the writer.
 * path and writer are borrowed and must outlive the reference; name is copied (may be NULL). */
typedef struct image_destination *(*archive_writer_dst_fn)(struct image_reference *ref,
                                                           void *writer, const char *name);
struct image_reference *archive_writer_reference(const struct transport_ops *transport,
                                                 const char *path, void *writer, const char *name,
                                                 archive_writer_dst_fn new_dst);

/* What put_blob reports: fills *out (when out is not NULL) with digest (taken), size and a copy
 * of media_type; frees digest when out is NULL. */
void blob_info_set_written(struct blob_info *out, char *digest, int64_t size,
                           const char *media_type);

/* Read access to an OCI layout: a directory or an archive index. */
struct layout_access {
    int (*open)(void *ctx, const char *rel, berth_reader_t **out, int64_t *size,
                berth_error_t *err);
    void (*free)(void *ctx);
    void *ctx;
    bool thread_safe;
};
/* Opens an image source over a layout: selects by tag, by index (>= 0), or the only image.
 * Takes ownership of acc (frees it on failure too). */
BERTH_MUST_CHECK int oci_source_from_layout(struct image_reference *ref, struct layout_access acc,
                                            const char *tag, int index, struct image_source **out,
                                            berth_error_t *err);

/* Adds a manifest descriptor to index.json's document (created when index is NULL): a tagged
 * image replaces the descriptor with the same ref.name; an untagged one replaces an untagged
 * descriptor of the same digest.  Returns the new reference to the document. */
json_t *oci_index_add(json_t *index, const char *media_type, const char *digest, int64_t size,
                      const char *tag);

/* The top-level manifest an OCI destination (layout or archive) adds to index.json at commit. */
struct oci_top_manifest {
    char *digest; /* NULL until put_manifest */
    char *media_type;
    int64_t size;
};
/* put_manifest's bookkeeping: digest (taken) becomes the top-level manifest, replacing an
 * earlier one, unless instance is set (then it is freed). */
void oci_top_manifest_put(struct oci_top_manifest *t, const char *instance, char *digest,
                          const char *media_type, int64_t size);
void oci_top_manifest_clear(struct oci_top_manifest *t);

/* Reads the whole reader with a limit, closing it. */
BERTH_MUST_CHECK int read_all_close(berth_reader_t *r, size_t max, char **out, size_t *len,
                                    berth_error_t *err);

/* Streams r into a temp file in dirfd, hashing (sha256); verifies expected digest/size when
 * given; fsyncs; renames to "<hex>" in dirfd unless it exists.  *digest (owned) and *size
 * receive the result; *created tells whether a new file appeared.  Nothing is left on error. */
BERTH_MUST_CHECK int blob_write_into_dir(int dirfd, berth_reader_t *r, const char *expected_digest,
                                         int64_t expected_size, char **digest, int64_t *size,
                                         bool *created, berth_error_t *err);

/* Removes temp blob files left by writers that died (their pid no longer exists). */
void blob_dir_remove_stale_temps(int dirfd);

/* Opens the directory a destination writes into, creating it (and its parents) when missing;
 * *created tells whether it did, also when opening then fails.  An existing non-directory is
 * refused. */
BERTH_MUST_CHECK int dest_dir_open(const char *path, int *fd, bool *created, berth_error_t *err);

/* Whether dirfd holds a regular file name of info's size (any size when unknown); if so and
 * out is not NULL, *out becomes a copy of info with the file's size. */
bool blob_file_reusable(int dirfd, const char *name, const struct blob_info *info,
                        struct blob_info *out);

/* Names of files in one directory (those a destination created, or kept); thread-safe. */
struct file_list {
    pthread_mutex_t lock;
    char **names; /* NULL-terminated, or NULL */
};
void file_list_init(struct file_list *l);
void file_list_add(struct file_list *l, const char *name);
bool file_list_has(struct file_list *l, const char *name);
/* Unlinks every listed file from dirfd (a destination closed without commit). */
void file_list_unlink_all(struct file_list *l, int dirfd);
void file_list_destroy(struct file_list *l);

#endif
