/* Several images in one archive (berth save IMAGE...): open a writer, copy each image to the
 * reference it hands out (one per image, with the name recorded in the archive), then commit
 * the writer once.  Freeing an uncommitted writer removes the temporary archive.  A reference
 * must not outlive its writer. */
#ifndef BERTH_TRANSPORT_ARCHIVE_MULTI_H
#define BERTH_TRANSPORT_ARCHIVE_MULTI_H

#include "common/error.h"
#include "transport/transport.h"

struct da_writer;
BERTH_MUST_CHECK int docker_archive_writer_open(const char *path, struct da_writer **out,
                                                berth_error_t *err);
/* name: "domain/path:tag" for RepoTags, or NULL */
struct image_reference *docker_archive_writer_reference(struct da_writer *w, const char *name);
BERTH_MUST_CHECK int docker_archive_writer_commit(struct da_writer *w, berth_error_t *err);
void docker_archive_writer_free(struct da_writer *w);

struct oa_writer;
BERTH_MUST_CHECK int oci_archive_writer_open(const char *path, struct oa_writer **out,
                                             berth_error_t *err);
/* name: the org.opencontainers.image.ref.name of the image, or NULL */
struct image_reference *oci_archive_writer_reference(struct oa_writer *w, const char *name);
BERTH_MUST_CHECK int oci_archive_writer_commit(struct oa_writer *w, berth_error_t *err);
void oci_archive_writer_free(struct oa_writer *w);

#endif
