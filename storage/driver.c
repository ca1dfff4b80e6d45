/* Driver lookup and helpers shared by the drivers. */
#include "storage/driver.h"
#include "storage/driver_util.h"

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int storage_driver_lookup(const char *name, const struct storage_driver_ops **out,
                          berth_error_t *err)
{
    static const struct storage_driver_ops *const all[] = {&storage_driver_overlay,
                                                           &storage_driver_vfs};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (name && strcmp(name, all[i]->name) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return berth_error_make_status(
        err, EINVAL, "unknown storage driver \"%s\": use \"overlay\" or \"vfs\"", name ? name : "");
}

int storage_check_id(const char *id, berth_error_t *err)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 128 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return berth_error_make_status(err, EINVAL, "invalid layer id \"%s\"", id ? id : "");
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return berth_error_make_status(err, EINVAL, "invalid layer id \"%s\"", id);
    }
    return 0;
}

char *driver_path(const char *home, const char *id, const char *sub)
{
    return sub ? xasprintf("%s/%s/%s", home, id, sub) : xasprintf("%s/%s", home, id);
}

/* A mount count file's number; a damaged file counts as 0 (no mounts), as before. */
static int count_parse(const char *data)
{
    char *end;
    errno = 0;
    long v = strtol(data, &end, 10);
    if (errno || end == data || (*end && *end != '\n') || v < 0 || v > INT_MAX)
        return 0;
    return (int)v;
}

int driver_count_update(const char *count_dir, const char *id, int delta, bool reset, int *now,
                        berth_error_t *err)
{
    if (fs_mkdir_p(count_dir, 0700, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/%s.count", count_dir, id);
    int count = 0;
    cleanup_free char *data = NULL;
    if (fs_read_file(path, 64, &data, NULL, NULL) == 0)
        count = count_parse(data);
    if (reset)
        count = 0;
    count += delta;
    if (count < 0)
        count = 0;
    if (count == 0) {
        if (unlink(path) < 0 && errno != ENOENT)
            return berth_error_make(err, errno, "remove \"%s\"", path);
    } else {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%d\n", count);
        if (fs_write_file_atomic(path, buf, (size_t)len, 0600, err) < 0)
            return -1;
    }
    *now = count;
    return 0;
}

int driver_count_get(const char *count_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/%s.count", count_dir, id);
    cleanup_free char *data = NULL;
    if (fs_read_file(path, 64, &data, NULL, NULL) < 0)
        return 0;
    return count_parse(data);
}
