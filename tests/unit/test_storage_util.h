/* Helpers for the storage unit tests: building tar streams in memory with libarchive's writer,
 * temp dirs, digests of readers. */
#ifndef BERTH_TEST_STORAGE_UTIL_H
#define BERTH_TEST_STORAGE_UTIL_H

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/stream.h"
#include "storage/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <unistd.h>

struct tbuf {
    char *data;
    size_t len, cap;
};

static la_ssize_t tbuf_write(struct archive *a, void *p, const void *buf, size_t len)
{
    struct tbuf *t = p;
    if (t->len + len > t->cap) {
        t->cap = (t->len + len) * 2;
        t->data = xrealloc(t->data, t->cap);
    }
    memcpy(t->data + t->len, buf, len);
    t->len += len;
    return (la_ssize_t)len;
}

struct tentry {
    char type; /* 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c' char dev, 'p' fifo */
    const char *path;
    const char *data; /* file content or link target */
    int mode;         /* 0 = default */
    int uid, gid;
    const char *xattr; /* "name=value" or NULL */
};

/* Builds a tar (format: ARCHIVE_FORMAT_TAR_PAX_RESTRICTED or _GNUTAR ...) of entries. */
__attribute__((unused)) static struct tbuf tar_build(int format, const struct tentry *e, size_t n)
{
    struct tbuf t = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format(a, format);
    archive_write_open(a, &t, NULL, tbuf_write, NULL);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_uid(ae, e[i].uid);
        archive_entry_set_gid(ae, e[i].gid);
        archive_entry_set_mtime(ae, 1600000000 + (time_t)i, 0);
        switch (e[i].type) {
        case 'f':
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0644);
            archive_entry_set_size(ae, e[i].data ? (la_int64_t)strlen(e[i].data) : 0);
            break;
        case 'd':
            archive_entry_set_filetype(ae, AE_IFDIR);
            archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0755);
            break;
        case 'l':
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_perm(ae, 0777);
            archive_entry_set_symlink(ae, e[i].data);
            break;
        case 'h':
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, 0644);
            archive_entry_set_hardlink(ae, e[i].data);
            archive_entry_set_size(ae, 0);
            break;
        case 'c':
            archive_entry_set_filetype(ae, AE_IFCHR);
            archive_entry_set_perm(ae, 0666);
            archive_entry_set_rdev(ae, makedev(1, 3));
            break;
        case 'p':
            archive_entry_set_filetype(ae, AE_IFIFO);
            archive_entry_set_perm(ae, 0600);
            break;
        }
        if (e[i].xattr) {
            const char *eq = strchr(e[i].xattr, '=');
            char *name = xstrndup(e[i].xattr, (size_t)(eq - e[i].xattr));
            archive_entry_xattr_add_entry(ae, name, eq + 1, strlen(eq + 1));
            free(name);
        }
        archive_write_header(a, ae);
        if (e[i].type == 'f' && e[i].data)
            archive_write_data(a, e[i].data, strlen(e[i].data));
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return t;
}

__attribute__((unused)) static char *tmpdir_new(const char *tag)
{
    char *d = xasprintf("/var/tmp/berth-%s-XXXXXX", tag);
    if (!mkdtemp(d))
        abort();
    return d;
}

__attribute__((unused)) static void tmpdir_remove(char *d)
{
    berth_error_t err = NULL;
    IGNORE_RESULT(fs_rm_rf(d, &err));
    berth_error_release(&err);
    free(d);
}

/* Reads a reader to EOF, returns its sha256 (owned) and size; NULL on read error. */
__attribute__((unused)) static char *reader_sha256(berth_reader_t *r, uint64_t *size)
{
    digester_t *d = digester_new(DIGEST_SHA256);
    char buf[65536];
    uint64_t total = 0;
    berth_error_t err = NULL;
    for (;;) {
        ssize_t n = reader_read(r, buf, sizeof(buf), &err);
        if (n < 0) {
            berth_error_release(&err);
            digester_free(d);
            return NULL;
        }
        if (n == 0)
            break;
        digester_update(d, buf, (size_t)n);
        total += (uint64_t)n;
    }
    char *s = digester_finish(d);
    digester_free(d);
    if (size)
        *size = total;
    return s;
}

__attribute__((unused)) static char *file_content(const char *path)
{
    char *out = NULL;
    berth_error_t err = NULL;
    if (fs_read_file(path, 1 << 20, &out, NULL, &err) < 0) {
        berth_error_release(&err);
        return NULL;
    }
    return out;
}

/* A store in a fresh temp dir (cmocka must be included before this header). */
struct store_fx {
    char *top;
    struct storage_options o;
    char *root, *run;
    storage_store_t *s;
};

__attribute__((unused)) static struct store_fx *store_fx_new(const char *tag, const char *driver)
{
    struct store_fx *f = xzalloc(sizeof(*f));
    f->top = tmpdir_new(tag);
    f->root = xasprintf("%s/root", f->top);
    f->run = xasprintf("%s/run", f->top);
    f->o = (struct storage_options){.root = f->root, .runroot = f->run, .driver = driver};
    berth_error_t err = NULL;
    if (storage_store_open(&f->o, &f->s, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    return f;
}

__attribute__((unused)) static void store_fx_free(struct store_fx *f)
{
    storage_store_close(f->s);
    tmpdir_remove(f->top);
    free(f->root);
    free(f->run);
    free(f);
}

/* Closes and opens the store again, as the next command would. */
__attribute__((unused)) static void store_fx_reopen(struct store_fx *f)
{
    storage_store_close(f->s);
    f->s = NULL;
    berth_error_t err = NULL;
    if (storage_store_open(&f->o, &f->s, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
}

#endif
