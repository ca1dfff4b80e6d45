#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (5 * 1024 * 1024)

static char *random_data;
static char *text_data;
static char tmpdir[] = "/tmp/berth-stream-XXXXXX";

static int setup(void **state)
{
    (void)state;
    random_data = xmalloc(BIG);
    uint64_t x = 0x243F6A8885A308D3ULL;
    for (size_t i = 0; i < BIG; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random_data[i] = (char)(x >> 24);
    }
    text_data = xmalloc(BIG);
    const char *words[] = {"layer ", "blob ", "manifest ", "sha256 ", "config\n", "tar "};
    size_t pos = 0, k = 0;
    while (pos < BIG) {
        const char *w = words[(k * 7 + k / 3) % 6];
        size_t n = strlen(w);
        if (n > BIG - pos)
            n = BIG - pos;
        memcpy(text_data + pos, w, n);
        pos += n;
        k++;
    }
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(random_data);
    free(text_data);
    berth_error_t err = NULL;
    IGNORE_RESULT(fs_rm_rf(tmpdir, &err));
    berth_error_release(&err);
    return 0;
}

/* Reads everything from r in irregular chunk sizes. */
static int drain(berth_reader_t *r, char **out, size_t *len, berth_error_t *err)
{
    size_t cap = 1 << 16, used = 0;
    char *buf = xmalloc(cap);
    size_t step = 1;
    for (;;) {
        if (cap - used < 70000) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t want = step % 65536 + 1;
        step = step * 31 + 7;
        ssize_t n = reader_read(r, buf + used, want, err);
        if (n < 0) {
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *out = buf;
    *len = used;
    return 0;
}

static void compress_buf(const void *in, size_t inlen, compression_t c, int level, char **out,
                         size_t *outlen)
{
    cleanup_error berth_error_t err = NULL;
    berth_reader_t *r = reader_compress(reader_from_buffer(in, inlen, false), true, c, level);
    assert_int_equal(reader_read_all(r, (size_t)BIG * 2, out, outlen, &err), 0);
    reader_close(r);
}

static void roundtrip(compression_t c, const char *data, size_t len)
{
    cleanup_free char *z = NULL;
    size_t zlen = 0;
    compress_buf(data, len, c, -1, &z, &zlen);
    assert_int_equal(compression_detect(z, zlen), c);
    cleanup_error berth_error_t err = NULL;
    compression_t detected = COMPRESSION_NONE;
    cleanup_reader berth_reader_t *r = NULL;
    assert_int_equal(
        reader_decompress(reader_from_buffer(z, zlen, false), true, &detected, &r, &err), 0);
    assert_int_equal(detected, c);
    cleanup_free char *back = NULL;
    size_t blen = 0;
    if (drain(r, &back, &blen, &err) < 0)
        fail_msg("%s", berth_error_msg(err));
    assert_int_equal(blen, len);
    assert_memory_equal(back, data, len);
}

static void test_roundtrip_gzip(void **state)
{
    (void)state;
    roundtrip(COMPRESSION_GZIP, random_data, BIG);
    roundtrip(COMPRESSION_GZIP, text_data, BIG);
    roundtrip(COMPRESSION_GZIP, "", 0);
}

static void test_roundtrip_zstd(void **state)
{
    (void)state;
    roundtrip(COMPRESSION_ZSTD, random_data, BIG);
    roundtrip(COMPRESSION_ZSTD, text_data, BIG);
    roundtrip(COMPRESSION_ZSTD, "", 0);
}

static void test_detect_and_passthrough(void **state)
{
    (void)state;
    assert_int_equal(compression_detect("\x1f\x8b", 2), COMPRESSION_GZIP);
    assert_int_equal(compression_detect("\x1f", 1), COMPRESSION_NONE);
    assert_int_equal(compression_detect("\x28\xb5\x2f\xfd", 4), COMPRESSION_ZSTD);
    assert_int_equal(compression_detect("\x28\xb5\x2f", 3), COMPRESSION_NONE);
    assert_int_equal(compression_detect("ustar", 5), COMPRESSION_NONE);
    const char *inputs[] = {"", "a", "ab", "abc", "abcd", "abcde plain text"};
    for (size_t i = 0; i < 6; i++) {
        cleanup_error berth_error_t err = NULL;
        cleanup_reader berth_reader_t *r = NULL;
        compression_t c = COMPRESSION_GZIP;
        assert_int_equal(reader_decompress(reader_from_buffer(inputs[i], strlen(inputs[i]), false),
                                           true, &c, &r, &err),
                         0);
        assert_int_equal(c, COMPRESSION_NONE);
        cleanup_free char *out = NULL;
        size_t len;
        assert_int_equal(reader_read_all(r, 100, &out, &len, &err), 0);
        assert_string_equal(out, inputs[i]);
    }
    compression_t c;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(compression_from_name("zstd", &c, &err), 0);
    assert_int_equal(c, COMPRESSION_ZSTD);
    assert_true(compression_from_name("bzip2", &c, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "bzip2"));
    assert_string_equal(compression_name(COMPRESSION_GZIP), "gzip");
}

static void test_multi_member(void **state)
{
    (void)state;
    for (int fmt = 0; fmt < 2; fmt++) {
        compression_t c = fmt ? COMPRESSION_ZSTD : COMPRESSION_GZIP;
        cleanup_free char *a = NULL, *b = NULL;
        size_t al, bl;
        compress_buf("hello, ", 7, c, -1, &a, &al);
        compress_buf(text_data, 300000, c, 9, &b, &bl);
        cleanup_free char *cat = xmalloc(al + bl);
        memcpy(cat, a, al);
        memcpy(cat + al, b, bl);
        cleanup_error berth_error_t err = NULL;
        cleanup_reader berth_reader_t *r = NULL;
        assert_int_equal(
            reader_decompress(reader_from_buffer(cat, al + bl, false), true, NULL, &r, &err), 0);
        cleanup_free char *out = NULL;
        size_t len;
        if (drain(r, &out, &len, &err) < 0)
            fail_msg("%s", berth_error_msg(err));
        assert_int_equal(len, 7 + 300000);
        assert_memory_equal(out, "hello, ", 7);
        assert_memory_equal(out + 7, text_data, 300000);
    }
}

static void expect_decompress_error(const char *z, size_t zlen, const char *part)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_reader berth_reader_t *r = NULL;
    assert_int_equal(reader_decompress(reader_from_buffer(z, zlen, false), true, NULL, &r, &err),
                     0);
    cleanup_free char *out = NULL;
    size_t len;
    if (drain(r, &out, &len, &err) == 0)
        fail_msg("corrupt input of %zu bytes decoded to %zu bytes without error", zlen, len);
    if (strstr(berth_error_msg(err), part) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", berth_error_msg(err), part);
    assert_int_equal(berth_error_status(err), EIO);
}

static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    for (int fmt = 0; fmt < 2; fmt++) {
        compression_t c = fmt ? COMPRESSION_ZSTD : COMPRESSION_GZIP;
        const char *name = compression_name(c);
        cleanup_free char *z = NULL;
        size_t zlen;
        compress_buf(text_data, 1 << 20, c, -1, &z, &zlen);
        /* cut anywhere: header only, middle, just before the trailer's last byte */
        size_t cuts[] = {4, 10, zlen / 2, zlen - 1};
        for (size_t i = 0; i < 4; i++)
            expect_decompress_error(z, cuts[i], name);
        /* flip a byte in the middle */
        cleanup_free char *bad = xmalloc(zlen);
        memcpy(bad, z, zlen);
        bad[zlen / 2] ^= 0x55;
        expect_decompress_error(bad, zlen, name);
        /* trailing garbage after a complete stream */
        cleanup_free char *trail = xmalloc(zlen + 8);
        memcpy(trail, z, zlen);
        memcpy(trail + zlen, "GARBAGE!", 8);
        expect_decompress_error(trail, zlen + 8, name);
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    for (int fmt = 0; fmt < 2; fmt++) {
        compression_t c = fmt ? COMPRESSION_ZSTD : COMPRESSION_GZIP;
        cleanup_free char *a = NULL, *b = NULL;
        size_t al, bl;
        compress_buf(text_data, BIG, c, -1, &a, &al);
        sleep(fmt == 0 ? 1 : 0); /* a second apart: a timestamp would show */
        compress_buf(text_data, BIG, c, -1, &b, &bl);
        assert_int_equal(al, bl);
        assert_memory_equal(a, b, al);
        assert_true(al < BIG / 10);
        if (c == COMPRESSION_GZIP) {
            /* mtime 0, no FNAME flag, OS byte fixed */
            assert_int_equal((unsigned char)a[3], 0);
            assert_memory_equal(a + 4, "\0\0\0\0", 4);
            assert_int_equal((unsigned char)a[9], 255);
        }
    }
}

/* Runs `cmd` with stdin from `in` file, returns its stdout in a buffer. */
static void run_tool(const char *cmd, const char *in_path, char **out, size_t *len)
{
    cleanup_free char *out_path = fs_join(tmpdir, "tool.out");
    cleanup_free char *full = xasprintf("%s < '%s' > '%s'", cmd, in_path, out_path);
    assert_int_equal(system(full), 0);
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_read_file(out_path, (size_t)BIG * 2, out, len, &err), 0);
}

static void test_interop_with_tools(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *plain = fs_join(tmpdir, "plain");
    assert_int_equal(fs_write_file_atomic(plain, text_data, 1 << 20, 0644, &err), 0);
    const char *tools[][2] = {{"gzip -c", "gzip -dc"}, {"zstd -q -c", "zstd -q -dc"}};
    for (int fmt = 0; fmt < 2; fmt++) {
        compression_t c = fmt ? COMPRESSION_ZSTD : COMPRESSION_GZIP;
        cleanup_free char *probe = xasprintf("command -v %.4s >/dev/null", tools[fmt][0]);
        if (system(probe) != 0)
            continue;
        /* theirs -> ours */
        cleanup_free char *z = NULL;
        size_t zlen;
        run_tool(tools[fmt][0], plain, &z, &zlen);
        cleanup_reader berth_reader_t *r = NULL;
        assert_int_equal(
            reader_decompress(reader_from_buffer(z, zlen, false), true, NULL, &r, &err), 0);
        cleanup_free char *back = NULL;
        size_t blen;
        assert_int_equal(reader_read_all(r, BIG, &back, &blen, &err), 0);
        assert_int_equal(blen, 1 << 20);
        assert_memory_equal(back, text_data, blen);
        /* ours -> theirs */
        cleanup_free char *ours = NULL;
        size_t olen;
        compress_buf(text_data, 1 << 20, c, -1, &ours, &olen);
        cleanup_free char *zpath = fs_join(tmpdir, "ours.z");
        assert_int_equal(fs_write_file_atomic(zpath, ours, olen, 0644, &err), 0);
        cleanup_free char *theirs = NULL;
        size_t tlen;
        run_tool(tools[fmt][1], zpath, &theirs, &tlen);
        assert_int_equal(tlen, 1 << 20);
        assert_memory_equal(theirs, text_data, tlen);
    }
}

static const char *ABC_SHA256 =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static int verify_all(const char *data, const char *digest, int64_t size, berth_error_t *err)
{
    berth_reader_t *v =
        reader_verify(reader_from_buffer(data, strlen(data), false), true, digest, size);
    char *out = NULL;
    size_t len;
    int r = reader_read_all(v, 1024, &out, &len, err);
    free(out);
    reader_close(v);
    return r;
}

static void test_verified_digest(void **state)
{
    const char data[] = "payload";
    cleanup_free char *dg = digest_buffer(DIGEST_SHA256, data, sizeof(data) - 1);
    int64_t size = 0;
    /* a plain reader promises nothing */
    berth_reader_t *plain = reader_from_buffer(data, sizeof(data) - 1, false);
    assert_null(reader_verified_digest(plain, &size));
    assert_int_equal(size, -1);
    /* a verifier promises its expected digest and size */
    berth_reader_t *v = reader_verify(plain, true, dg, (int64_t)sizeof(data) - 1);
    assert_string_equal(reader_verified_digest(v, &size), dg);
    assert_int_equal(size, (int64_t)sizeof(data) - 1);
    /* a stage that changes the bytes hides the promise */
    berth_reader_t *z = reader_compress(v, true, COMPRESSION_GZIP, -1);
    assert_null(reader_verified_digest(z, &size));
    reader_close(z);
    /* an invalid expected digest promises nothing (every read fails) */
    berth_reader_t *bad = reader_verify(reader_from_buffer(data, 3, false), true, "sha256:xyz", -1);
    assert_null(reader_verified_digest(bad, &size));
    reader_close(bad);
    assert_null(reader_verified_digest(NULL, &size));
}

static void test_verify(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(verify_all("abc", ABC_SHA256, 3, &err), 0);
    assert_int_equal(verify_all("abc", ABC_SHA256, -1, &err), 0);

    assert_true(verify_all("abd", ABC_SHA256, 3, &err) < 0);
    cleanup_free char *want =
        xasprintf("blob %s: digest mismatch: expected %s, got sha256:", ABC_SHA256, ABC_SHA256);
    assert_non_null(strstr(berth_error_msg(err), want));
    assert_int_equal(berth_error_status(err), EIO);

    assert_true(verify_all("abcd", ABC_SHA256, 3, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "size mismatch: expected 3 bytes, got more"));
    assert_true(verify_all("ab", ABC_SHA256, 3, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "size mismatch: expected 3 bytes, got 2"));
    assert_true(verify_all("abc", "sha256:nothex", 3, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), "blob sha256:nothex"));
    assert_true(verify_all("abc", NULL, 3, &err) < 0);

    /* too long is caught before the extra bytes are handed out */
    berth_reader_t *v =
        reader_verify(reader_from_buffer(text_data, 1 << 20, false), true, ABC_SHA256, 100);
    char buf[4096];
    ssize_t total = 0, n;
    berth_error_release(&err);
    while ((n = reader_read(v, buf, sizeof(buf), &err)) > 0)
        total += n;
    assert_true(n < 0);
    assert_true(total <= 100);
    /* sticky failure */
    assert_true(reader_read(v, buf, sizeof(buf), &err) < 0);
    reader_close(v);
}

static void test_digest_reader(void **state)
{
    (void)state;
    cleanup_reader berth_reader_t *d =
        reader_digest(reader_from_buffer("abc", 3, true), true, DIGEST_SHA256);
    assert_null(reader_digest_result(d));
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *out = NULL;
    size_t len;
    assert_int_equal(reader_read_all(d, 10, &out, &len, &err), 0);
    assert_string_equal(reader_digest_result(d), ABC_SHA256);
    assert_int_equal(reader_digest_size(d), 3);
}

static void test_limit_and_read_all(void **state)
{
    (void)state;
    cleanup_error berth_error_t err = NULL;
    for (size_t max = 0; max < 12; max++) {
        berth_reader_t *l = reader_limit(reader_from_buffer("0123456789", 10, false), true, max);
        char buf[64];
        ssize_t total = 0, n;
        while ((n = reader_read(l, buf, (size_t)(max % 3) + 1, &err)) > 0)
            total += n;
        if (max >= 10) {
            assert_int_equal(n, 0);
            assert_int_equal(total, 10);
        } else {
            assert_true(n < 0);
            assert_int_equal(berth_error_status(err), EFBIG);
            assert_true(total <= (ssize_t)max);
        }
        reader_close(l);

        berth_reader_t *r = reader_from_buffer("0123456789", 10, false);
        char *out = NULL;
        size_t len = 0;
        int rc = reader_read_all(r, max, &out, &len, &err);
        if (max >= 10) {
            assert_int_equal(rc, 0);
            assert_int_equal(len, 10);
            assert_string_equal(out, "0123456789");
        } else {
            assert_true(rc < 0);
            assert_int_equal(berth_error_status(err), EFBIG);
            assert_null(out);
        }
        free(out);
        reader_close(r);
    }
    /* big read_all through a file */
    cleanup_free char *path = fs_join(tmpdir, "big");
    assert_int_equal(fs_write_file_atomic(path, random_data, BIG, 0644, &err), 0);
    cleanup_reader berth_reader_t *f = NULL;
    assert_int_equal(reader_open_file(path, &f, &err), 0);
    cleanup_free char *all = NULL;
    size_t len;
    assert_int_equal(reader_read_all(f, BIG, &all, &len, &err), 0);
    assert_int_equal(len, BIG);
    assert_memory_equal(all, random_data, BIG);
    cleanup_reader berth_reader_t *missing = NULL;
    assert_true(reader_open_file("/nonexistent/berth", &missing, &err) < 0);
    assert_int_equal(berth_error_status(err), ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_gzip),         cmocka_unit_test(test_roundtrip_zstd),
        cmocka_unit_test(test_detect_and_passthrough), cmocka_unit_test(test_multi_member),
        cmocka_unit_test(test_truncated_and_corrupt),  cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_interop_with_tools),     cmocka_unit_test(test_verify),
        cmocka_unit_test(test_verified_digest),        cmocka_unit_test(test_digest_reader),
        cmocka_unit_test(test_limit_and_read_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
