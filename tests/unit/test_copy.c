/* The copy engine: a good copy, then each bad input (truncated blob, wrong digest, missing blob,
 * malformed index.json, a config that lies about DiffIDs) fails with a clear error and leaves no
 * partial image — neither a new destination nor a change to an existing one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fs.h"
#include "transport/copy.h"
#include "transport/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];
static char layer_hex[65], cfg_hex[65], man_hex[65];

static void put_file(const char *dir, const char *name, const void *data, size_t len)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, name);
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_write_file_atomic(p, data, len, 0644, &err), 0);
}

/* Builds tmpdir/NAME: an OCI layout with one gzip layer (a one-file tar holding content),
 * tagged "t". */
static void make_source(const char *name, const char *content, const char *diff_id_override)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *src = xasprintf("%s/%s", tmpdir, name);
    cleanup_free char *blobs = xasprintf("%s/blobs/sha256", src);
    assert_int_equal(fs_mkdir_p(blobs, 0755, &err), 0);
    /* an uncompressed tar with one file, made by tar(1) */
    cleanup_free char *cmd = xasprintf("mkdir -p %s/c && echo %s > %s/c/f && tar -C %s/c "
                                       "--mtime=@0 --owner=0 --group=0 -cf %s/l.tar f",
                                       tmpdir, content, tmpdir, tmpdir, tmpdir);
    assert_int_equal(system(cmd), 0);
    cleanup_free char *tarp = xasprintf("%s/l.tar", tmpdir);
    cleanup_free char *tar = NULL;
    size_t tlen;
    assert_int_equal(fs_read_file(tarp, 1 << 20, &tar, &tlen, &err), 0);
    cleanup_free char *diff_id = digest_buffer(DIGEST_SHA256, tar, tlen);
    berth_reader_t *gz =
        reader_compress(reader_from_buffer(tar, tlen, false), true, COMPRESSION_GZIP, -1);
    cleanup_free char *layer = NULL;
    size_t llen;
    assert_int_equal(reader_read_all(gz, 1 << 20, &layer, &llen, &err), 0);
    reader_close(gz);
    cleanup_free char *ld = digest_buffer(DIGEST_SHA256, layer, llen);
    snprintf(layer_hex, sizeof(layer_hex), "%s", digest_hex(ld));
    put_file(blobs, layer_hex, layer, llen);
    cleanup_free char *cfg =
        xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                  "\"diff_ids\":[\"%s\"]}}",
                  diff_id_override ? diff_id_override : diff_id);
    cleanup_free char *cd = digest_buffer(DIGEST_SHA256, cfg, strlen(cfg));
    snprintf(cfg_hex, sizeof(cfg_hex), "%s", digest_hex(cd));
    put_file(blobs, cfg_hex, cfg, strlen(cfg));
    cleanup_free char *m = xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
        "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
        "\"digest\":\"%s\",\"size\":%zu}]}",
        cd, strlen(cfg), ld, llen);
    cleanup_free char *md = digest_buffer(DIGEST_SHA256, m, strlen(m));
    snprintf(man_hex, sizeof(man_hex), "%s", digest_hex(md));
    put_file(blobs, man_hex, m, strlen(m));
    put_file(src, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
    cleanup_free char *ix = xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
        "v1+json\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image."
        "ref.name\":\"t\"}}]}",
        md, strlen(m));
    put_file(src, "index.json", ix, strlen(ix));
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/berth-test-copy-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    make_source("src", "hello", NULL);
    return 0;
}

static int teardown(void **state)
{
    cleanup_error berth_error_t e = NULL;
    IGNORE_RESULT(fs_rm_rf(tmpdir, &e));
    return 0;
}

static int do_copy(const char *src, const char *dst, char **digest, berth_error_t *err)
{
    struct copy_options o = {.quiet = true, .compression_level = -1};
    struct copy_result res = {0};
    cleanup_free char *s = xasprintf(src, tmpdir);
    cleanup_free char *d = xasprintf(dst, tmpdir);
    int r = copy_image_refs(s, d, &o, &res, err);
    if (digest)
        *digest = res.manifest_digest ? xstrdup(res.manifest_digest) : NULL;
    copy_result_clear(&res);
    return r;
}

static void test_good_copy(void **state)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *dg = NULL;
    if (do_copy("oci:%s/src:t", "oci:%s/dst:x", &dg, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    cleanup_free char *want = xasprintf("sha256:%s", man_hex);
    assert_string_equal(dg, want);
    free(dg);
    dg = NULL;
    /* to docker-archive: the layer is decompressed and its digest checked against the DiffID */
    if (do_copy("oci:%s/src:t", "docker-archive:%s/a.tar:x:1", &dg, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    free(dg);
    dg = NULL;
    if (do_copy("docker-archive:%s/a.tar", "dir:%s/d", &dg, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
}

/* Asserts that copying src to each kind of destination fails with `substr` in the message and
 * that no destination was left behind. */
static void expect_failure(const char *substr)
{
    static const char *dsts[] = {"oci:%s/out/o:x", "dir:%s/out/d", "oci-archive:%s/out/a.tar",
                                 "docker-archive:%s/out/da.tar", NULL};
    cleanup_free char *out = xasprintf("%s/out", tmpdir);
    for (size_t i = 0; dsts[i]; i++) {
        cleanup_error berth_error_t err = NULL;
        cleanup_error berth_error_t e2 = NULL;
        IGNORE_RESULT(fs_rm_rf(out, &e2));
        assert_int_equal(mkdir(out, 0755), 0);
        assert_int_equal(do_copy("oci:%s/src:t", dsts[i], NULL, &err), -1);
        if (!strstr(berth_error_msg(err), substr))
            fail_msg("%s: \"%s\" lacks \"%s\"", dsts[i], berth_error_msg(err), substr);
        cleanup_dir DIR *d = opendir(out);
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                fail_msg("%s: left %s behind", dsts[i], de->d_name);
    }
}

static char *layer_path(void)
{
    return xasprintf("%s/src/blobs/sha256/%s", tmpdir, layer_hex);
}

static void test_truncated_blob(void **state)
{
    cleanup_free char *p = layer_path();
    assert_int_equal(truncate(p, 10), 0);
    expect_failure("size is 10");
}

static void test_wrong_digest(void **state)
{
    cleanup_free char *p = layer_path();
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    FILE *f = fopen(p, "r+");
    assert_non_null(f);
    fseek(f, st.st_size / 2, SEEK_SET);
    fputc('Z', f);
    fclose(f);
    /* the same size: detected by the digest (or by the decompressor's own check, for
     * destinations that decompress) */
    static const char *dsts[] = {"oci:%s/out/o:x", "dir:%s/out/d", "oci-archive:%s/out/a.tar",
                                 NULL};
    cleanup_free char *out = xasprintf("%s/out", tmpdir);
    for (size_t i = 0; dsts[i]; i++) {
        cleanup_error berth_error_t err = NULL;
        assert_int_equal(mkdir(out, 0755), 0);
        assert_int_equal(do_copy("oci:%s/src:t", dsts[i], NULL, &err), -1);
        if (!strstr(berth_error_msg(err), "digest mismatch"))
            fail_msg("%s", berth_error_msg(err));
        assert_int_equal(rmdir(out), 0); /* empty: nothing left behind */
    }
}

static void test_missing_blob(void **state)
{
    cleanup_free char *p = layer_path();
    assert_int_equal(unlink(p), 0);
    expect_failure("No such file");
}

static void test_malformed_index(void **state)
{
    cleanup_free char *dir = xasprintf("%s/src", tmpdir);
    put_file(dir, "index.json", "{\"manifests\": [", 15);
    expect_failure("index.json");
    const char *evil = "{\"manifests\": [{\"digest\": \"sha256:../../x\", \"annotations\": "
                       "{\"org.opencontainers.image.ref.name\": \"t\"}}]}";
    put_file(dir, "index.json", evil, strlen(evil));
    expect_failure("index.json");
}

static void test_diffid_mismatch(void **state)
{
    /* a config whose DiffID is wrong: converting to docker-archive (which decompresses) must
     * notice, and leave nothing */
    cleanup_error berth_error_t e = NULL;
    cleanup_free char *src = xasprintf("%s/src", tmpdir);
    IGNORE_RESULT(fs_rm_rf(src, &e));
    make_source("src", "hello",
                "sha256:0000000000000000000000000000000000000000000000000000000000000000");
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(do_copy("oci:%s/src:t", "docker-archive:%s/a.tar", NULL, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "DiffID"));
    cleanup_free char *a = xasprintf("%s/a.tar", tmpdir);
    assert_false(fs_exists(a));
}

static void test_existing_layout_untouched(void **state)
{
    /* a failed copy into an existing layout changes neither index.json nor blobs/ */
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(do_copy("oci:%s/src:t", "oci:%s/dst:keep", NULL, &err), 0);
    cleanup_free char *ixp = xasprintf("%s/dst/index.json", tmpdir);
    cleanup_free char *before = NULL, *after = NULL;
    size_t l1, l2;
    assert_int_equal(fs_read_file(ixp, 1 << 20, &before, &l1, &err), 0);
    /* another image whose layer is corrupt (same size): streamed, rejected, removed */
    make_source("src2", "other content", NULL);
    cleanup_free char *lp = xasprintf("%s/src2/blobs/sha256/%s", tmpdir, layer_hex);
    FILE *lf = fopen(lp, "r+");
    assert_non_null(lf);
    fseek(lf, 20, SEEK_SET);
    fputc('Z', lf);
    fclose(lf);
    assert_int_equal(do_copy("oci:%s/src2:t", "oci:%s/dst:new", NULL, &err), -1);
    berth_error_release(&err);
    assert_int_equal(fs_read_file(ixp, 1 << 20, &after, &l2, &err), 0);
    assert_string_equal(before, after);
    cleanup_free char *bd = xasprintf("ls %s/dst/blobs/sha256 | wc -l", tmpdir);
    FILE *f = popen(bd, "r");
    int n = 0;
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    assert_int_equal(n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diffid_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_layout_untouched, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
