/* The layer store: image records, names, big data and lookup. */
#include "storage/store_internal.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ images */

void storage_image_free(storage_image_t *i)
{
    if (!i)
        return;
    free(i->id);
    strv_free(i->names);
    free(i->top_layer);
    free(i->digest);
    strv_free(i->big_data);
    free(i);
}

void storage_image_list_free(storage_image_t **v)
{
    for (size_t i = 0; v && v[i]; i++)
        storage_image_free(v[i]);
    free(v);
}

static int check_key(const char *key, berth_error_t *err)
{
    size_t n = key ? strlen(key) : 0;
    bool ok = n > 0 && n <= 128 && strcmp(key, "image.json") != 0 && key[0] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char c = key[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             strchr("_.:@+-", c);
    }
    return ok ? 0
              : berth_error_make_status(err, EINVAL, "invalid big-data key \"%s\"", key ? key : "");
}

int store_image_read(storage_store_t *s, const char *id, storage_image_t **out, berth_error_t *err)
{
    if (!store_is_hex64(id))
        return berth_error_make_status(err, ENOENT, "image \"%s\" not known", id);
    cleanup_free char *p = xasprintf("%s/images/%s/image.json", s->root, id);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "image \"%s\" not known", id);
    cleanup_json json_t *j = NULL;
    if (json_load_file_bounded(p, RECORD_MAX, &j, err) < 0)
        return berth_error_wrap(err, "image \"%s\"", id);
    const char *rid = json_get_string(j, "id");
    if (!rid || strcmp(rid, id) != 0)
        return berth_error_make_status(err, EINVAL, "image record \"%s\" is corrupt", p);
    storage_image_t *i = xzalloc(sizeof(*i));
    i->id = xstrdup(id);
    i->top_layer = store_strdup_or_null(json_get_string(j, "top_layer"));
    i->digest = store_strdup_or_null(json_get_string(j, "digest"));
    json_get_int(j, "created", &i->created);
    json_t *names = json_get_array(j, "names");
    json_t *bd = json_get_array(j, "big_data");
    i->names = xzalloc(sizeof(char *));
    i->big_data = xzalloc(sizeof(char *));
    size_t k;
    json_t *v;
    json_array_foreach(names, k, v) if (json_is_string(v))
        strv_add(&i->names, json_string_value(v));
    json_array_foreach(bd, k, v) if (json_is_string(v))
        strv_add(&i->big_data, json_string_value(v));
    if (i->top_layer && storage_check_id(i->top_layer, NULL) < 0) {
        storage_image_free(i);
        return berth_error_make_status(err, EINVAL, "image record \"%s\" is corrupt", p);
    }
    *out = i;
    return 0;
}

static int image_write_at(const char *dir, const storage_image_t *i, berth_error_t *err)
{
    cleanup_json json_t *j = json_object();
    json_object_set_new(j, "id", json_string(i->id));
    json_object_set_new(j, "names", json_from_strv(i->names));
    if (i->top_layer)
        json_object_set_new(j, "top_layer", json_string(i->top_layer));
    if (i->digest)
        json_object_set_new(j, "digest", json_string(i->digest));
    json_object_set_new(j, "created", json_integer(i->created));
    json_object_set_new(j, "big_data", json_from_strv(i->big_data));
    cleanup_free char *p = xasprintf("%s/image.json", dir);
    return json_write_file_atomic(p, j, 0600, err);
}

static int image_write(storage_store_t *s, const storage_image_t *i, berth_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/images/%s", s->root, i->id);
    return image_write_at(dir, i, err);
}

int store_image_list_locked(storage_store_t *s, storage_image_t ***out, berth_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/images", s->root);
    char **names = NULL;
    if (store_list_names(dir, NULL, &names, err) < 0)
        return -1;
    size_t n = strv_len(names);
    storage_image_t **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        berth_error_t e2 = NULL;
        if (store_image_read(s, names[i], &v[k], &e2) == 0)
            k++;
        else
            log_debug("skipping image: %s", berth_error_msg(e2));
        berth_error_release(&e2);
    }
    strv_free(names);
    *out = v;
    return 0;
}

int storage_image_list(storage_store_t *s, storage_image_t ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return store_image_list_locked(s, out, err);
}

/* Moves `name` to image `id`: removes it from every other image. */
static int take_name(storage_store_t *s, storage_image_t **all, const char *id, const char *name,
                     berth_error_t *err)
{
    for (size_t i = 0; all[i]; i++) {
        if (strcmp(all[i]->id, id) == 0)
            continue;
        if (strv_remove(all[i]->names, name) && image_write(s, all[i], err) < 0)
            return -1;
    }
    return 0;
}

static int write_big(const char *dir, const char *key, const void *data, size_t len,
                     berth_error_t *err)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, key);
    return fs_write_file_atomic(p, data, len, 0600, err);
}

int storage_image_create(storage_store_t *s, const struct storage_image_options *o,
                         storage_image_t **out, berth_error_t *err)
{
    if (!o || !o->manifest || !o->config)
        return berth_error_make_status(err, EINVAL, "image needs a manifest and a config");
    for (size_t i = 0; i < o->n_extra; i++)
        if (check_key(o->extra[i].key, err) < 0)
            return -1;
    cleanup_free char *cfg_digest = digest_buffer(DIGEST_SHA256, o->config, o->config_len);
    cleanup_free char *man_digest =
        o->digest ? xstrdup(o->digest) : digest_buffer(DIGEST_SHA256, o->manifest, o->manifest_len);
    if (digest_validate(man_digest, err) < 0)
        return -1;
    const char *id = digest_hex(cfg_digest);
    LOCK_OR_FAIL(s, true, err);
    if (o->top_layer) {
        cleanup_storage_layer storage_layer_t *l = NULL;
        if (store_layer_read(s, o->top_layer, &l, err) < 0)
            return berth_error_wrap(err, "image top layer");
    }
    storage_image_t **all = NULL;
    if (store_image_list_locked(s, &all, err) < 0)
        return -1;
    storage_image_t *img = NULL;
    int ret = -1;
    berth_error_t e2 = NULL;
    if (store_image_read(s, id, &img, &e2) == 0) {
        /* already there (another pull won): merge names */
        for (size_t i = 0; o->names && o->names[i]; i++) {
            if (take_name(s, all, id, o->names[i], err) < 0)
                goto out;
            if (!strv_contains(img->names, o->names[i]))
                strv_add(&img->names, o->names[i]);
        }
        if (image_write(s, img, err) < 0)
            goto out;
    } else {
        berth_error_release(&e2);
        cleanup_free char *rnd = store_random_hex(6);
        cleanup_free char *tmp = xasprintf("%s/images/.tmp-%s-%s", s->root, id, rnd);
        cleanup_free char *final = xasprintf("%s/images/%s", s->root, id);
        if (mkdir(tmp, 0700) < 0) {
            berth_error_make(err, errno, "create \"%s\"", tmp);
            goto out;
        }
        img = xzalloc(sizeof(*img));
        img->id = xstrdup(id);
        img->names = xzalloc(sizeof(char *));
        img->big_data = xzalloc(sizeof(char *));
        img->top_layer = store_strdup_or_null(o->top_layer);
        img->digest = xstrdup(man_digest);
        img->created = time(NULL);
        if (write_big(tmp, "manifest", o->manifest, o->manifest_len, err) < 0 ||
            write_big(tmp, "config", o->config, o->config_len, err) < 0)
            goto fail_tmp;
        strv_add(&img->big_data, "manifest");
        strv_add(&img->big_data, "config");
        for (size_t i = 0; i < o->n_extra; i++) {
            if (write_big(tmp, o->extra[i].key, o->extra[i].data, o->extra[i].len, err) < 0)
                goto fail_tmp;
            if (!strv_contains(img->big_data, o->extra[i].key))
                strv_add(&img->big_data, o->extra[i].key);
        }
        for (size_t i = 0; o->names && o->names[i]; i++)
            if (!strv_contains(img->names, o->names[i]))
                strv_add(&img->names, o->names[i]);
        if (image_write_at(tmp, img, err) < 0)
            goto fail_tmp;
        if (rename(tmp, final) < 0) {
            berth_error_make(err, errno, "commit image \"%s\"", id);
            goto fail_tmp;
        }
        {
            /* The rename is what makes the image exist; until the directory is synced a crash
             * can lose it, so a failed sync fails the commit (a retry finds the same id). */
            cleanup_free char *images = xasprintf("%s/images", s->root);
            if (fs_fsync_dir(images, err) < 0)
                goto out;
        }
        for (size_t i = 0; o->names && o->names[i]; i++)
            if (take_name(s, all, id, o->names[i], err) < 0)
                goto out;
        goto done;
    fail_tmp:
        IGNORE_RESULT(fs_rm_rf(tmp, &e2));
        berth_error_release(&e2);
        goto out;
    }
done:
    *out = img;
    img = NULL;
    ret = 0;
out:
    storage_image_free(img);
    storage_image_list_free(all);
    return ret;
}

/* Does image name `have` match the user's `want`? */
static bool name_matches(const char *have, const char *want)
{
    if (strcmp(have, want) == 0)
        return true;
    /* want without tag/digest means :latest */
    const char *slash = strrchr(want, '/');
    const char *last = slash ? slash + 1 : want;
    cleanup_free char *w =
        strchr(last, ':') || strchr(want, '@') ? xstrdup(want) : xasprintf("%s:latest", want);
    if (strcmp(have, w) == 0)
        return true;
    /* short name: have = "<domain>/<w>" or "<domain>/library/<w>" */
    size_t hl = strlen(have), wl = strlen(w);
    if (hl > wl + 1 && strcmp(have + hl - wl, w) == 0 && have[hl - wl - 1] == '/') {
        const char *prefix_end = have + hl - wl - 1;
        const char *first_slash = strchr(have, '/');
        if (first_slash == prefix_end)
            return true; /* domain/w */
        cleanup_free char *lib = xasprintf("/library/%s", w);
        if (hl > strlen(lib) && strcmp(have + hl - strlen(lib), lib) == 0 &&
            strchr(have, '/') == have + hl - strlen(lib))
            return true;
    }
    return false;
}

int storage_image_lookup(storage_store_t *s, const char *ref, storage_image_t **out,
                         berth_error_t *err)
{
    if (!ref || !*ref)
        return berth_error_make_status(err, EINVAL, "empty image reference");
    LOCK_OR_FAIL(s, false, err);
    const char *r = strncmp(ref, "sha256:", 7) == 0 && store_is_hex64(ref + 7) ? ref + 7 : ref;
    if (store_is_hex64(r)) {
        berth_error_t e2 = NULL;
        if (store_image_read(s, r, out, &e2) == 0)
            return 0;
        berth_error_release(&e2);
    }
    storage_image_t **all = NULL;
    if (store_image_list_locked(s, &all, err) < 0)
        return -1;
    storage_image_t *found = NULL;
    int nfound = 0;
    /* 1. exact name or manifest digest, 2. name rules, 3. id prefix */
    for (int pass = 0; pass < 3 && nfound == 0; pass++) {
        for (size_t i = 0; all[i]; i++) {
            bool m = false;
            if (pass == 0) {
                m = strv_contains(all[i]->names, ref) ||
                    (all[i]->digest && strcmp(all[i]->digest, ref) == 0);
                /* name@digest */
                const char *at = strchr(ref, '@');
                if (!m && at && all[i]->digest && strcmp(at + 1, all[i]->digest) == 0)
                    m = true;
            } else if (pass == 1) {
                for (size_t k = 0; !m && all[i]->names[k]; k++)
                    m = name_matches(all[i]->names[k], ref);
            } else {
                size_t n = strlen(r);
                m = n >= 3 && n <= 64 && strspn(r, "0123456789abcdef") == n &&
                    strncmp(all[i]->id, r, n) == 0;
            }
            if (m && found != all[i]) {
                found = all[i];
                nfound++;
            }
        }
    }
    int ret;
    if (nfound == 1) {
        ret = store_image_read(s, found->id, out, err);
    } else if (nfound == 0) {
        ret = berth_error_make_status(err, ENOENT, "image \"%s\" not known", ref);
    } else {
        ret = berth_error_make_status(err, EINVAL, "image reference \"%s\" is ambiguous", ref);
    }
    storage_image_list_free(all);
    return ret;
}

int storage_image_add_name(storage_store_t *s, const char *id, const char *name, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (store_image_read(s, id, &img, err) < 0)
        return -1;
    storage_image_t **all = NULL;
    if (store_image_list_locked(s, &all, err) < 0)
        return -1;
    int r = take_name(s, all, id, name, err);
    storage_image_list_free(all);
    if (r < 0)
        return -1;
    if (strv_contains(img->names, name))
        return 0;
    strv_add(&img->names, name);
    return image_write(s, img, err);
}

int storage_image_remove_name(storage_store_t *s, const char *id, const char *name,
                              berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (store_image_read(s, id, &img, err) < 0)
        return -1;
    if (!strv_remove(img->names, name))
        return berth_error_make_status(err, ENOENT, "image %.12s has no name \"%s\"", id, name);
    return image_write(s, img, err);
}

int storage_image_remove(storage_store_t *s, const char *id, bool force, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (store_image_read(s, id, &img, err) < 0)
        return -1;
    struct store_usage u;
    if (store_usage_load(s, &u, err) < 0)
        return -1;
    int ret = -1;
    for (size_t i = 0; u.containers[i]; i++) {
        if (!u.containers[i]->image_id || strcmp(u.containers[i]->image_id, id) != 0)
            continue;
        if (!force) {
            berth_error_make_status(err, EBUSY, "image %.12s is used by container %.12s (%s)", id,
                                    u.containers[i]->id, u.containers[i]->name);
            goto out;
        }
        if (store_container_remove_locked(s, u.containers[i]->id, err) < 0)
            goto out;
    }
    {
        cleanup_free char *dir = xasprintf("%s/images/%s", s->root, id);
        cleanup_free char *rnd = store_random_hex(6);
        cleanup_free char *tmp = xasprintf("%s/images/.tmp-del-%s", s->root, rnd);
        if (rename(dir, tmp) < 0) {
            berth_error_make(err, errno, "remove image \"%s\"", id);
            goto out;
        }
        berth_error_t e2 = NULL;
        IGNORE_RESULT(fs_rm_rf(tmp, &e2));
        berth_error_release(&e2);
    }
    store_usage_free(&u);
    if (store_usage_load(s, &u, err) < 0)
        return -1;
    /* drop the image's layers that nothing else uses, top down */
    for (char *l = img->top_layer ? xstrdup(img->top_layer) : NULL; l;) {
        storage_layer_t *ly = store_usage_layer(&u, l);
        char *next = ly && ly->parent ? xstrdup(ly->parent) : NULL;
        bool used = store_layer_user(&u, l, NULL) != NULL;
        if (!used && ly) {
            berth_error_t e2 = NULL;
            if (store_layer_remove_locked(s, l, &e2) < 0)
                log_warn("%s", berth_error_msg(e2));
            berth_error_release(&e2);
            /* forget it so its parent no longer counts as used by "another layer" */
            for (size_t i = 0; u.layers[i]; i++)
                if (u.layers[i] == ly) {
                    storage_layer_free(ly);
                    for (size_t k = i; u.layers[k]; k++)
                        u.layers[k] = u.layers[k + 1];
                    break;
                }
        }
        free(l);
        l = used ? (free(next), NULL) : next;
    }
    ret = 0;
out:
    store_usage_free(&u);
    return ret;
}

int storage_image_get_big_data(storage_store_t *s, const char *id, const char *key, size_t max,
                               char **out, size_t *len, berth_error_t *err)
{
    if (check_key(key, err) < 0 || !store_is_hex64(id))
        return berth_error_make_status(err, ENOENT, "image \"%s\" not known", id);
    LOCK_OR_FAIL(s, false, err);
    cleanup_free char *p = xasprintf("%s/images/%s/%s", s->root, id, key);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "image %.12s has no \"%s\"", id, key);
    return fs_read_file(p, max, out, len, err);
}

int storage_image_set_big_data(storage_store_t *s, const char *id, const char *key,
                               const void *data, size_t len, berth_error_t *err)
{
    if (check_key(key, err) < 0)
        return -1;
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (store_image_read(s, id, &img, err) < 0)
        return -1;
    cleanup_free char *dir = xasprintf("%s/images/%s", s->root, id);
    if (write_big(dir, key, data, len, err) < 0)
        return -1;
    if (strv_contains(img->big_data, key))
        return 0;
    strv_add(&img->big_data, key);
    return image_write(s, img, err);
}

int storage_image_layers(storage_store_t *s, const char *id, char ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_image storage_image_t *img = NULL;
    if (store_image_read(s, id, &img, err) < 0)
        return -1;
    storage_layer_t **chain = NULL;
    size_t n = 0;
    if (storage_layer_chain(s, img->top_layer, &chain, &n, err) < 0)
        return berth_error_wrap(err, "image %.12s", id);
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(chain[i]->id);
    storage_layer_list_free(chain);
    *out = v;
    return 0;
}
