/* The layer store: container records and their rw layers. */
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

/* ------------------------------------------------------------------ containers */

void storage_container_free(storage_container_t *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->name);
    free(c->image_id);
    free(c->layer);
    free(c->metadata);
    free(c);
}

void storage_container_list_free(storage_container_t **v)
{
    for (size_t i = 0; v && v[i]; i++)
        storage_container_free(v[i]);
    free(v);
}

int store_container_read(storage_store_t *s, const char *id, storage_container_t **out,
                         berth_error_t *err)
{
    if (!store_is_hex64(id))
        return berth_error_make_status(err, ENOENT, "container \"%s\" not known", id);
    cleanup_free char *p = xasprintf("%s/containers/%s/container.json", s->root, id);
    if (!fs_exists(p))
        return berth_error_make_status(err, ENOENT, "container \"%s\" not known", id);
    cleanup_json json_t *j = NULL;
    if (json_load_file_bounded(p, RECORD_MAX, &j, err) < 0)
        return berth_error_wrap(err, "container \"%s\"", id);
    const char *rid = json_get_string(j, "id");
    const char *layer = json_get_string(j, "layer");
    if (!rid || strcmp(rid, id) != 0 || !layer || storage_check_id(layer, NULL) < 0)
        return berth_error_make_status(err, EINVAL, "container record \"%s\" is corrupt", p);
    storage_container_t *c = xzalloc(sizeof(*c));
    c->id = xstrdup(id);
    c->name = store_strdup_or_null(json_get_string(j, "name"));
    c->image_id = store_strdup_or_null(json_get_string(j, "image"));
    c->layer = xstrdup(layer);
    c->metadata = store_strdup_or_null(json_get_string(j, "metadata"));
    json_get_int(j, "created", &c->created);
    *out = c;
    return 0;
}

static int container_write(storage_store_t *s, const storage_container_t *c, berth_error_t *err)
{
    cleanup_json json_t *j = json_object();
    json_object_set_new(j, "id", json_string(c->id));
    if (c->name)
        json_object_set_new(j, "name", json_string(c->name));
    if (c->image_id)
        json_object_set_new(j, "image", json_string(c->image_id));
    json_object_set_new(j, "layer", json_string(c->layer));
    if (c->metadata)
        json_object_set_new(j, "metadata", json_string(c->metadata));
    json_object_set_new(j, "created", json_integer(c->created));
    cleanup_free char *p = xasprintf("%s/containers/%s/container.json", s->root, c->id);
    return json_write_file_atomic(p, j, 0600, err);
}

int store_container_list_locked(storage_store_t *s, storage_container_t ***out, berth_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/containers", s->root);
    char **names = NULL;
    if (store_list_names(dir, NULL, &names, err) < 0)
        return -1;
    size_t n = strv_len(names);
    storage_container_t **v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        berth_error_t e2 = NULL;
        if (store_container_read(s, names[i], &v[k], &e2) == 0)
            k++;
        berth_error_release(&e2);
    }
    strv_free(names);
    *out = v;
    return 0;
}

int storage_container_list(storage_store_t *s, storage_container_t ***out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return store_container_list_locked(s, out, err);
}

static int container_find(storage_store_t *s, const char *ref, storage_container_t **out,
                          berth_error_t *err)
{
    berth_error_t e2 = NULL;
    if (store_is_hex64(ref) && store_container_read(s, ref, out, &e2) == 0)
        return 0;
    berth_error_release(&e2);
    storage_container_t **all = NULL;
    if (store_container_list_locked(s, &all, err) < 0)
        return -1;
    const char *found = NULL;
    int n = 0;
    for (size_t i = 0; all[i]; i++)
        if (all[i]->name && strcmp(all[i]->name, ref) == 0) {
            found = all[i]->id;
            n = 1;
            break;
        }
    size_t rl = strlen(ref);
    if (!found && rl >= 3 && strspn(ref, "0123456789abcdef") == rl)
        for (size_t i = 0; all[i]; i++)
            if (strncmp(all[i]->id, ref, rl) == 0) {
                found = all[i]->id;
                n++;
            }
    int ret;
    if (n == 1)
        ret = store_container_read(s, found, out, err);
    else if (n == 0)
        ret = berth_error_make_status(err, ENOENT, "container \"%s\" not known", ref);
    else
        ret = berth_error_make_status(err, EINVAL, "container reference \"%s\" is ambiguous", ref);
    storage_container_list_free(all);
    return ret;
}

int storage_container_get(storage_store_t *s, const char *id_or_name, storage_container_t **out,
                          berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    return container_find(s, id_or_name, out, err);
}

int storage_container_create(storage_store_t *s, const struct storage_container_options *o,
                             storage_container_t **out, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_free char *id = o && o->id ? xstrdup(o->id) : store_random_hex(32);
    if (!store_is_hex64(id))
        return berth_error_make_status(err, EINVAL, "invalid container id \"%s\"", id);
    cleanup_free char *name = o && o->name ? xstrdup(o->name) : xasprintf("berth-%.12s", id);
    storage_container_t **all = NULL;
    if (store_container_list_locked(s, &all, err) < 0)
        return -1;
    for (size_t i = 0; all[i]; i++) {
        if (strcmp(all[i]->id, id) == 0 || (all[i]->name && strcmp(all[i]->name, name) == 0)) {
            storage_container_list_free(all);
            return berth_error_make_status(err, EEXIST, "container name \"%s\" is already in use",
                                           name);
        }
    }
    storage_container_list_free(all);
    cleanup_storage_image storage_image_t *img = NULL;
    if (o && o->image_id && storage_image_lookup(s, o->image_id, &img, err) < 0)
        return -1;
    cleanup_storage_layer storage_layer_t *rw = NULL;
    if (storage_layer_create_rw(s, NULL, img ? img->top_layer : NULL, &rw, err) < 0)
        return -1;
    cleanup_free char *dir = xasprintf("%s/containers/%s", s->root, id);
    cleanup_free char *ud = xasprintf("%s/userdata", dir);
    storage_container_t *c = xzalloc(sizeof(*c));
    c->id = xstrdup(id);
    c->name = xstrdup(name);
    c->image_id = img ? xstrdup(img->id) : NULL;
    c->layer = xstrdup(rw->id);
    c->metadata = o ? store_strdup_or_null(o->metadata) : NULL;
    c->created = time(NULL);
    if (fs_mkdir_p(ud, 0700, err) < 0 || container_write(s, c, err) < 0) {
        berth_error_t e2 = NULL;
        IGNORE_RESULT(fs_rm_rf(dir, &e2));
        berth_error_release(&e2);
        IGNORE_RESULT(store_layer_remove_locked(s, rw->id, &e2));
        berth_error_release(&e2);
        storage_container_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int storage_container_set_metadata(storage_store_t *s, const char *id, const char *metadata,
                                   berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    free(c->metadata);
    c->metadata = store_strdup_or_null(metadata);
    return container_write(s, c, err);
}

int store_container_remove_locked(storage_store_t *s, const char *id, berth_error_t *err)
{
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    /* record first: a crash afterwards leaves an orphan layer, which check --repair removes */
    cleanup_free char *dir = xasprintf("%s/containers/%s", s->root, c->id);
    cleanup_free char *rundir = xasprintf("%s/containers/%s", s->runroot, c->id);
    if (fs_rm_rf(dir, err) < 0)
        return -1;
    berth_error_t e2 = NULL;
    IGNORE_RESULT(fs_rm_rf(rundir, &e2));
    berth_error_release(&e2);
    if (store_layer_remove_locked(s, c->layer, &e2) < 0)
        log_warn("%s", berth_error_msg(e2));
    berth_error_release(&e2);
    return 0;
}

int storage_container_remove(storage_store_t *s, const char *id, berth_error_t *err)
{
    LOCK_OR_FAIL(s, true, err);
    return store_container_remove_locked(s, id, err);
}

int storage_container_mount(storage_store_t *s, const char *id, char **dir, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    return storage_layer_mount(s, c->layer, dir, err);
}

int storage_container_unmount(storage_store_t *s, const char *id, bool force, berth_error_t *err)
{
    LOCK_OR_FAIL(s, false, err);
    cleanup_storage_container storage_container_t *c = NULL;
    if (container_find(s, id, &c, err) < 0)
        return -1;
    return storage_layer_unmount(s, c->layer, force, err);
}

int storage_container_dirs(storage_store_t *s, const char *id, char **userdata, char **rundir,
                           berth_error_t *err)
{
    if (!store_is_hex64(id))
        return berth_error_make_status(err, EINVAL, "invalid container id \"%s\"", id);
    cleanup_free char *ud = xasprintf("%s/containers/%s/userdata", s->root, id);
    cleanup_free char *rd = xasprintf("%s/containers/%s/userdata", s->runroot, id);
    if (fs_mkdir_p(ud, 0700, err) < 0 || fs_mkdir_p(rd, 0700, err) < 0)
        return -1;
    if (userdata)
        *userdata = steal_pointer(&ud);
    if (rundir)
        *rundir = steal_pointer(&rd);
    return 0;
}
