/* The build cache: step keys, cache entries, and a stat memo of file digests.
 *
 * Step keys chain: key(n) = sha256(key(n-1) "\n" expanded instruction "\n" input digests), with
 * key(0) derived from the base image id.  An entry <cache>/keys/<key>.json records the layer the
 * step produced (null for metadata-only steps).  Entries are only hints: a layer that no longer
 * exists is a miss.
 *
 * Memo: hashing a large context on every build would read every byte again, so file digests are
 * remembered in <cache>/filehash.memo by (st_dev, st_ino, st_size, st_mtim ns, st_ctim ns).  Any
 * write to a file changes its ctime (even when the mtime is put back with touch -d), so a
 * matching entry means the same content; a miss just re-hashes.  One line per file:
 * "dev ino size mtime_ns ctime_ns sha256:hex".  The file is rewritten atomically after a build. */
#include "build/build_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMO_MAX_SIZE (256u << 20)

struct memo_ent {
    uint64_t dev, ino, size;
    int64_t mtime, ctime;
    char digest[72];
};

struct bld_memo {
    char *path;
    struct memo_ent *v; /* sorted (loaded) */
    size_t n;
    struct memo_ent *add; /* new this run */
    size_t nadd, capadd;
};

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int ent_cmp(const void *a, const void *b)
{
    const struct memo_ent *x = a, *y = b;
    int r = cmp_u64(x->dev, y->dev);
    if (!r)
        r = cmp_u64(x->ino, y->ino);
    if (!r)
        r = cmp_u64(x->size, y->size);
    if (!r)
        r = x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
    if (!r)
        r = x->ctime < y->ctime ? -1 : x->ctime > y->ctime;
    return r;
}

struct bld_memo *bld_memo_open(const char *dir)
{
    struct bld_memo *m = xzalloc(sizeof(*m));
    m->path = fs_join(dir, "filehash.memo");
    cleanup_free char *buf = NULL;
    size_t len = 0;
    berth_error_t err = NULL;
    if (fs_read_file(m->path, MEMO_MAX_SIZE, &buf, &len, &err) < 0) {
        berth_error_release(&err);
        return m;
    }
    size_t cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct memo_ent e;
        char d[80];
        if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %79s", &e.dev,
                   &e.ino, &e.size, &e.mtime, &e.ctime, d) != 6)
            continue;
        if (strlen(d) != 71 || strncmp(d, "sha256:", 7) != 0)
            continue;
        memcpy(e.digest, d, 72);
        if (m->n == cap) {
            cap = cap ? cap * 2 : 256;
            m->v = xreallocarray(m->v, cap, sizeof(*m->v));
        }
        m->v[m->n++] = e;
    }
    if (m->n)
        qsort(m->v, m->n, sizeof(*m->v), ent_cmp);
    return m;
}

void bld_memo_close(struct bld_memo *m)
{
    if (!m)
        return;
    if (m->nadd) {
        /* merge: keep old entries (they may describe files of other contexts), newest wins */
        size_t tot = m->n + m->nadd;
        struct memo_ent *all = xreallocarray(NULL, tot, sizeof(*all));
        memcpy(all, m->add, m->nadd * sizeof(*all));
        if (m->n)
            memcpy(all + m->nadd, m->v, m->n * sizeof(*all));
        /* cap the memo's growth: drop the oldest entries beyond 1M */
        if (tot > (1u << 20))
            tot = 1u << 20;
        size_t cap = tot * 200 + 1; /* 5 numbers of at most 20 digits, a digest, separators */
        char *out = xmalloc(cap);
        size_t off = 0;
        for (size_t i = 0; i < tot; i++)
            off += (size_t)snprintf(
                out + off, cap - off,
                "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s\n", all[i].dev,
                all[i].ino, all[i].size, all[i].mtime, all[i].ctime, all[i].digest);
        berth_error_t err = NULL;
        if (fs_write_file_atomic(m->path, out, off, 0600, &err) < 0) {
            log_debug("save the file digest memo: %s", berth_error_msg(err));
            berth_error_release(&err);
        }
        free(out);
        free(all);
    }
    free(m->path);
    free(m->v);
    free(m->add);
    free(m);
}

static void memo_key(const struct stat *st, struct memo_ent *key)
{
    *key = (struct memo_ent){
        .dev = (uint64_t)st->st_dev,
        .ino = (uint64_t)st->st_ino,
        .size = (uint64_t)st->st_size,
        .mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        .ctime = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
    };
}

bool bld_memo_lookup(struct bld_memo *m, const struct stat *st, char **out)
{
    if (!m || !m->n)
        return false;
    struct memo_ent key;
    memo_key(st, &key);
    struct memo_ent *f = bsearch(&key, m->v, m->n, sizeof(key), ent_cmp);
    if (!f)
        return false;
    *out = xstrdup(f->digest);
    return true;
}

int bld_memo_file_digest(struct bld_memo *m, int fd, const struct stat *st, char **out,
                         berth_error_t *err)
{
    struct memo_ent key = {
        .dev = (uint64_t)st->st_dev,
        .ino = (uint64_t)st->st_ino,
        .size = (uint64_t)st->st_size,
        .mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        .ctime = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
    };
    if (m && m->n) {
        struct memo_ent *f = bsearch(&key, m->v, m->n, sizeof(key), ent_cmp);
        if (f) {
            *out = xstrdup(f->digest);
            return 0;
        }
    }
    cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
    static __thread char buf[1 << 17];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof(buf), off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "read");
        }
        if (r == 0)
            break;
        digester_update(d, buf, (size_t)r);
        off += r;
    }
    char *dg = digester_finish(d);
    if (m && strlen(dg) == 71) {
        if (m->nadd == m->capadd) {
            m->capadd = m->capadd ? m->capadd * 2 : 64;
            m->add = xreallocarray(m->add, m->capadd, sizeof(*m->add));
        }
        memcpy(key.digest, dg, 72);
        m->add[m->nadd++] = key;
    }
    *out = dg;
    return 0;
}

/* ---- step cache ---- */

static bool key_ok(const char *key)
{
    if (strlen(key) != 64)
        return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

char *bld_cache_key(const char *prev, const char *text, const char *inputs)
{
    cleanup_digester digester_t *d = digester_new(DIGEST_SHA256);
    digester_update(d, "berth-build-v1\n", 15);
    if (prev)
        digester_update(d, prev, strlen(prev));
    digester_update(d, "\n", 1);
    digester_update(d, text, strlen(text));
    digester_update(d, "\n", 1);
    if (inputs)
        digester_update(d, inputs, strlen(inputs));
    cleanup_free char *dg = digester_finish(d);
    return xstrdup(dg + 7);
}

int bld_cache_lookup(const char *dir, const char *key, bool *found, char **layer,
                     berth_error_t *err)
{
    *found = false;
    *layer = NULL;
    if (!key_ok(key))
        return berth_error_make_status(err, EINVAL, "bad cache key \"%s\"", key);
    cleanup_free char *p = xasprintf("%s/keys/%s.json", dir, key);
    cleanup_json json_t *j = NULL;
    berth_error_t e2 = NULL;
    if (json_load_file_bounded(p, 1 << 16, &j, &e2) < 0) {
        berth_error_release(&e2);
        return 0;
    }
    const char *l = json_get_string(j, "layer");
    *found = true;
    if (l)
        *layer = xstrdup(l);
    return 0;
}

int bld_cache_store(const char *dir, const char *key, const char *layer, berth_error_t *err)
{
    if (!key_ok(key))
        return berth_error_make_status(err, EINVAL, "bad cache key \"%s\"", key);
    cleanup_free char *kd = fs_join(dir, "keys");
    if (fs_mkdir_p(kd, 0700, err) < 0)
        return -1;
    cleanup_free char *p = xasprintf("%s/%s.json", kd, key);
    cleanup_json json_t *j = json_object();
    json_object_set_new(j, "layer", layer ? json_string(layer) : json_null());
    return json_write_file_atomic(p, j, 0600, err);
}
