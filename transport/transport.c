/* The table of transports, reference parsing and helpers shared by berth's own transports. */
#include "transport/transport.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/reference.h"
#include "common/strutil.h"
#include "transport/docker.h"
#include "transport/internal.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const struct transport_ops oci_transport;
extern const struct transport_ops oci_archive_transport;
extern const struct transport_ops dir_transport;
extern const struct transport_ops docker_archive_transport;
extern const struct transport_ops storage_transport;

/* The one table of transport names (common/reference.c had a second one that drifted). */
static const struct transport_ops *const transports[] = {
    &docker_transport,
    &oci_transport,
    &oci_archive_transport,
    &dir_transport,
    &docker_archive_transport,
    &storage_transport,
    NULL,
};

/* Names recognised (so the error can say "not supported") but not implemented. */
static const char *const unsupported[] = {"ostree", "docker-daemon", NULL};

const struct transport_ops *transport_lookup(const char *name)
{
    for (size_t i = 0; transports[i]; i++)
        if (strcmp(transports[i]->name, name) == 0)
            return transports[i];
    return NULL;
}

bool transport_name_is_known(const char *name)
{
    if (!name)
        return false;
    if (transport_lookup(name))
        return true;
    for (size_t i = 0; unsupported[i]; i++)
        if (strcmp(unsupported[i], name) == 0)
            return true;
    return false;
}

/* "docker://, oci:, ...": every implemented transport as it is written, whatever their number. */
static char *known_list(void)
{
    struct strbuf b = STRBUF_INIT;
    for (size_t i = 0; transports[i]; i++)
        (void)strbuf_appendf(&b, "%s%s%s", i ? ", " : "", transports[i]->name,
                             transports[i] == &docker_transport ? "://" : ":");
    return strbuf_steal(&b);
}

int transport_parse_reference(const char *s, struct image_reference **out, berth_error_t *err)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s) {
        cleanup_free char *k = known_list();
        return berth_error_make_status(err, EINVAL,
                                       "invalid image reference \"%s\": expected transport:name, "
                                       "known transports: %s",
                                       s, k);
    }
    cleanup_free char *name = xstrndup(s, (size_t)(colon - s));
    const char *within = colon + 1;
    const struct transport_ops *t = transport_lookup(name);
    if (!t) {
        for (size_t i = 0; unsupported[i]; i++)
            if (strcmp(unsupported[i], name) == 0)
                return berth_error_make_status(err, ENOTSUP,
                                               "transport \"%s\" is not supported by berth", name);
        cleanup_free char *k = known_list();
        return berth_error_make_status(err, EINVAL,
                                       "invalid image reference \"%s\": unknown transport \"%s\" "
                                       "(known transports: %s)",
                                       s, name, k);
    }
    if (t->parse_reference(within, out, err) < 0)
        return berth_error_wrap(err, "invalid image reference \"%s\"", s);
    return 0;
}

void image_reference_free(struct image_reference *ref)
{
    if (ref && ref->ops && ref->ops->free)
        ref->ops->free(ref);
}

char *image_reference_string(const struct image_reference *ref)
{
    return ref->ops->string(ref);
}

void image_source_close(struct image_source *src)
{
    if (src)
        src->ops->close(src);
}

void image_destination_close(struct image_destination *dst)
{
    if (dst)
        dst->ops->close(dst);
}

void blob_info_clear(struct blob_info *b)
{
    if (!b)
        return;
    free(b->digest);
    free(b->media_type);
    strv_free(b->urls);
    b->digest = NULL;
    b->media_type = NULL;
    b->urls = NULL;
    b->size = -1;
}

void blob_info_copy(struct blob_info *dst, const struct blob_info *src)
{
    dst->digest = src->digest ? xstrdup(src->digest) : NULL;
    dst->media_type = src->media_type ? xstrdup(src->media_type) : NULL;
    dst->size = src->size;
    dst->urls = strv_dup(src->urls);
}

/* ---- helpers for berth's transports ---- */

void blob_info_set_written(struct blob_info *out, char *digest, int64_t size,
                           const char *media_type)
{
    if (!out) {
        free(digest);
        return;
    }
    memset(out, 0, sizeof(*out));
    out->digest = digest;
    out->size = size;
    out->media_type = media_type ? xstrdup(media_type) : NULL;
}

int dest_dir_open(const char *path, int *fd, bool *created, berth_error_t *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno != ENOENT)
            return berth_error_make(err, errno, "stat \"%s\"", path);
        if (fs_mkdir_p(path, 0755, err) < 0)
            return -1;
        *created = true;
    } else if (!S_ISDIR(st.st_mode)) {
        return berth_error_make_status(err, ENOTDIR, "\"%s\" is not a directory", path);
    }
    *fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return berth_error_make(err, errno, "open \"%s\"", path);
    return 0;
}

bool blob_file_reusable(int dirfd, const char *name, const struct blob_info *info,
                        struct blob_info *out)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
        (info->size >= 0 && st.st_size != info->size))
        return false;
    if (out) {
        blob_info_copy(out, info);
        out->size = st.st_size;
    }
    return true;
}

void file_list_init(struct file_list *l)
{
    pthread_mutex_init(&l->lock, NULL);
    l->names = NULL;
}

void file_list_add(struct file_list *l, const char *name)
{
    pthread_mutex_lock(&l->lock);
    strv_add(&l->names, name);
    pthread_mutex_unlock(&l->lock);
}

bool file_list_has(struct file_list *l, const char *name)
{
    pthread_mutex_lock(&l->lock);
    bool r = strv_contains(l->names, name);
    pthread_mutex_unlock(&l->lock);
    return r;
}

void file_list_unlink_all(struct file_list *l, int dirfd)
{
    for (size_t i = 0; l->names && l->names[i]; i++)
        unlinkat(dirfd, l->names[i], 0);
}

void file_list_destroy(struct file_list *l)
{
    strv_free(l->names);
    l->names = NULL;
    pthread_mutex_destroy(&l->lock);
}

void oci_top_manifest_put(struct oci_top_manifest *t, const char *instance, char *digest,
                          const char *media_type, int64_t size)
{
    if (instance) {
        free(digest);
        return;
    }
    oci_top_manifest_clear(t);
    t->digest = digest;
    t->media_type = xstrdup(media_type);
    t->size = size;
}

void oci_top_manifest_clear(struct oci_top_manifest *t)
{
    free(t->digest);
    free(t->media_type);
    memset(t, 0, sizeof(*t));
}

struct writer_ref {
    const struct transport_ops *transport;
    const char *path;
    void *writer;
    char *name;
    archive_writer_dst_fn new_dst;
};

static char *writer_ref_string(const struct image_reference *ref)
{
    const struct writer_ref *r = ref->priv;
    return xasprintf("%s:%s", r->transport->name, r->path);
}

static int writer_ref_new_source(struct image_reference *ref, const struct system_context *sys,
                                 struct image_source **out, berth_error_t *err)
{
    return berth_error_make_status(err, ENOTSUP, "an archive being written cannot be read");
}

static int writer_ref_new_destination(struct image_reference *ref, const struct system_context *sys,
                                      struct image_destination **out, berth_error_t *err)
{
    struct writer_ref *r = ref->priv;
    *out = r->new_dst(ref, r->writer, r->name);
    return 0;
}

static void writer_ref_free(struct image_reference *ref)
{
    struct writer_ref *r = ref->priv;
    free(r->name);
    free(r);
    free(ref->docker_name);
    free(ref);
}

static const struct reference_ops writer_ref_ops = {
    .string = writer_ref_string,
    .new_source = writer_ref_new_source,
    .new_destination = writer_ref_new_destination,
    .free = writer_ref_free,
};

struct image_reference *archive_writer_reference(const struct transport_ops *transport,
                                                 const char *path, void *writer, const char *name,
                                                 archive_writer_dst_fn new_dst)
{
    struct writer_ref *r = xzalloc(sizeof(*r));
    r->transport = transport;
    r->path = path;
    r->writer = writer;
    r->name = name ? xstrdup(name) : NULL;
    r->new_dst = new_dst;
    struct image_reference *ref = xzalloc(sizeof(*ref));
    ref->transport = transport;
    ref->ops = &writer_ref_ops;
    ref->priv = r;
    return ref;
}

const char *transport_tmpdir(const struct system_context *sys)
{
    if (sys && sys->tmpdir)
        return sys->tmpdir;
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/var/tmp";
}

char *oci_blob_path(const char *digest, berth_error_t *err)
{
    digest_algo_t algo;
    const char *hex;
    if (digest_parse(digest, &algo, &hex, err) < 0)
        return NULL;
    return xasprintf("blobs/%s/%s", digest_algo_name(algo), hex);
}

static bool valid_tag(const char *t)
{
    if (!*t)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool parent_exists(const char *path)
{
    cleanup_free char *p = xstrdup(path);
    char *slash = strrchr(p, '/');
    if (!slash)
        return true; /* relative to the current directory */
    if (slash == p)
        return true;
    *slash = 0;
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A full image name with a tag ("example.com/x:1"), as podman writes into ref.name. */
static bool valid_full_name(const char *s)
{
    cleanup_image_ref image_ref_t *ir = NULL;
    cleanup_error berth_error_t e = NULL;
    return strchr(s, '/') && image_ref_parse(s, &ir, &e) == 0 && ir->tag && !ir->digest;
}

int oci_split_within(const char *within, bool allow_index, char **path, char **tag, int *index,
                     berth_error_t *err)
{
    *tag = NULL;
    *index = -1;
    cleanup_free char *p = xstrdup(within);
    char *at = strrchr(p, '@');
    if (at && at[1]) {
        bool digits = true;
        for (char *q = at + 1; *q; q++)
            digits = digits && *q >= '0' && *q <= '9';
        if (digits) {
            if (!allow_index)
                return berth_error_make_status(err, EINVAL, "@INDEX is only valid for reading");
            long v = strtol(at + 1, NULL, 10);
            if (strlen(at + 1) > 9 || v < 0)
                return berth_error_make_status(err, EINVAL, "invalid image index \"%s\"", at + 1);
            *index = (int)v;
            *at = 0;
        }
    }
    if (*index < 0) {
        /* PATH may contain ':' and the name may be a tag ("latest") or a full image name
         * ("example.com/x:1"): prefer the last ':' followed by a plain tag, then the first ':'
         * followed by a full name, in both cases only where PATH's directory exists. */
        char *split = NULL;
        char *last = strrchr(p, ':');
        if (last && !strchr(last + 1, '/')) {
            *last = 0;
            if (parent_exists(p))
                split = last;
            *last = ':';
        }
        for (char *c = strchr(p, ':'); c && !split; c = strchr(c + 1, ':')) {
            *c = 0;
            if (valid_full_name(c + 1) && parent_exists(p))
                split = c;
            *c = ':';
        }
        if (!split && last && !strchr(last + 1, '/'))
            split = last; /* let the path error say what is missing */
        if (split) {
            if (!valid_tag(split + 1) && !valid_full_name(split + 1))
                return berth_error_make_status(err, EINVAL, "invalid tag \"%s\"", split + 1);
            *tag = xstrdup(split + 1);
            *split = 0;
        }
    }
    if (!*p) {
        free(*tag);
        *tag = NULL;
        return berth_error_make_status(err, EINVAL, "empty path");
    }
    *path = steal_pointer(&p);
    return 0;
}

int read_all_close(berth_reader_t *r, size_t max, char **out, size_t *len, berth_error_t *err)
{
    int ret = reader_read_all(r, max, out, len, err);
    reader_close(r);
    return ret;
}

#define COPY_BUF (256 * 1024)

void blob_dir_remove_stale_temps(int dirfd)
{
    DIR *d = fdopendir(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        int pid;
        unsigned n;
        if (sscanf(de->d_name, ".tmp-blob-%d-%u", &pid, &n) != 2 || pid <= 0)
            continue;
        /* a writer killed before it could clean up (kill -9, power loss) */
        if (fs_temp_is_stale(dirfd, de->d_name, pid))
            unlinkat(dirfd, de->d_name, 0);
    }
    closedir(d);
}

int blob_write_into_dir(int dirfd, berth_reader_t *r, const char *expected_digest,
                        int64_t expected_size, char **digest, int64_t *size, bool *created,
                        berth_error_t *err)
{
    digest_algo_t algo = DIGEST_SHA256;
    const char *hex;
    if (expected_digest && digest_parse(expected_digest, &algo, &hex, err) < 0)
        return -1;
    static atomic_uint counter;
    char tmp[64];
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, sizeof(tmp), ".tmp-blob-%d-%u", (int)getpid(), atomic_fetch_add(&counter, 1));
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            return berth_error_make(err, errno, "create temporary blob file");
    }
    if (fd < 0)
        return berth_error_make(err, EEXIST, "create temporary blob file");
    cleanup_free char *buf = xmalloc(COPY_BUF);
    /* The copy engine already verifies this digest while streaming: hashing again here would
     * only repeat its work (about 0.15 s of CPU per 264 MB). */
    int64_t vsize;
    const char *vdigest = reader_verified_digest(r, &vsize);
    bool upstream_verified = expected_digest && vdigest && digest_equal(vdigest, expected_digest) &&
                             (expected_size < 0 || vsize == expected_size);
    cleanup_digester digester_t *d = upstream_verified ? NULL : digester_new(algo);
    int64_t total = 0, wb_mark = 0;
    cleanup_free char *got = NULL;
    for (;;) {
        ssize_t n = reader_read(r, buf, COPY_BUF, err);
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        if (d)
            digester_update(d, buf, (size_t)n);
        total += n;
        if (expected_size >= 0 && total > expected_size) {
            berth_error_make_status(err, EIO, "blob %s: more than the expected %lld bytes",
                                    expected_digest ? expected_digest : "",
                                    (long long)expected_size);
            goto fail;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                berth_error_make(err, errno, "write blob");
                goto fail;
            }
            off += w;
        }
        fs_writeback_progress(fd, &wb_mark, total);
    }
    got = d ? digester_finish(d) : xstrdup(expected_digest);
    if (expected_size >= 0 && total != expected_size) {
        berth_error_make_status(err, EIO, "blob %s: size %lld, expected %lld",
                                expected_digest ? expected_digest : got, (long long)total,
                                (long long)expected_size);
        goto fail;
    }
    if (expected_digest && !digest_equal(got, expected_digest)) {
        berth_error_make_status(err, EIO, "blob digest mismatch: expected %s, got %s",
                                expected_digest, got);
        goto fail;
    }
    if (fsync(fd) < 0) {
        berth_error_make(err, errno, "fsync blob");
        goto fail;
    }
    close(fd);
    fd = -1;
    const char *gothex = digest_hex(got);
    struct stat st;
    bool exists = fstatat(dirfd, gothex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                  st.st_size == total;
    if (exists) {
        unlinkat(dirfd, tmp, 0);
    } else if (renameat(dirfd, tmp, dirfd, gothex) < 0) {
        berth_error_make(err, errno, "rename blob %s", got);
        goto fail;
    }
    /* the rename is what makes the blob exist: on disk before anyone is told so */
    if (!exists && fsync(dirfd) < 0) {
        berth_error_make(err, errno, "fsync blob directory");
        goto fail;
    }
    *created = !exists;
    *digest = steal_pointer(&got);
    *size = total;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlinkat(dirfd, tmp, 0);
    return -1;
}
