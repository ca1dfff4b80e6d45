#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

static char *make_tmpdir(void)
{
    char *d = xstrdup("/tmp/berth-fs-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Number of entries in dir whose name contains ".tmp-". */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp-"))
            n++;
    closedir(d);
    return n;
}

static void test_atomic_write(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *path = fs_join(dir, "f");
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_write_file_atomic(path, "hello", 5, 0640, &err), 0);
    assert_int_equal(fs_write_file_atomic(path, "world!", 6, 0600, &err), 0);
    cleanup_free char *buf = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(path, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 6);
    assert_string_equal(buf, "world!");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_temps(dir), 0);

    /* failure after the temp exists: renaming over a non-empty directory */
    cleanup_free char *sub = fs_join(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    cleanup_free char *subf = fs_join(sub, "x");
    write_file(subf, "x");
    assert_true(fs_write_file_atomic(sub, "data", 4, 0644, &err) < 0);
    assert_non_null(strstr(berth_error_msg(err), sub));
    assert_int_equal(count_temps(dir), 0);

    /* failure before: directory does not exist */
    cleanup_free char *nodir = fs_join(dir, "nope/f");
    berth_error_release(&err);
    assert_true(fs_write_file_atomic(nodir, "data", 4, 0644, &err) < 0);
    assert_int_equal(berth_error_status(err), ENOENT);

    /* the _at variant */
    cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_int_equal(fs_write_file_atomic_at(dfd, "g", "at", 2, 0644, &err), 0);
    cleanup_free char *gpath = fs_join(dir, "g");
    cleanup_free char *gbuf = NULL;
    assert_int_equal(fs_read_file(gpath, 2, &gbuf, NULL, &err), 0);
    assert_string_equal(gbuf, "at");
    assert_int_equal(count_temps(dir), 0);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_atomic_write_unwritable_dir(void **state)
{
    (void)state;
    if (geteuid() == 0) {
        /* root ignores directory permissions; use a read-only bind mount instead */
        cleanup_free char *dir = make_tmpdir();
        cleanup_error berth_error_t err = NULL;
        if (mount(dir, dir, NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
            umount2(dir, MNT_DETACH);
            rmdir(dir);
            skip();
        }
        cleanup_free char *path = fs_join(dir, "f");
        int r = fs_write_file_atomic(path, "x", 1, 0644, &err);
        int status = berth_error_status(err);
        assert_int_equal(umount2(dir, MNT_DETACH), 0);
        assert_true(r < 0);
        assert_int_equal(status, EROFS);
        assert_int_equal(count_temps(dir), 0);
        assert_int_equal(rmdir(dir), 0);
        return;
    }
    cleanup_free char *dir = make_tmpdir();
    assert_int_equal(chmod(dir, 0555), 0);
    cleanup_free char *path = fs_join(dir, "f");
    cleanup_error berth_error_t err = NULL;
    assert_true(fs_write_file_atomic(path, "x", 1, 0644, &err) < 0);
    assert_int_equal(berth_error_status(err), EACCES);
    assert_int_equal(count_temps(dir), 0);
    chmod(dir, 0755);
    rmdir(dir);
}

static void test_atomic_file(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *path = fs_join(dir, "blob");
    cleanup_error berth_error_t err = NULL;
    {
        cleanup_atomic_file struct fs_atomic_file f = {.fd = -1};
        assert_int_equal(fs_atomic_open(path, 0644, &f, &err), 0);
        assert_int_equal(write(f.fd, "abc", 3), 3);
        assert_int_equal(count_temps(dir), 1);
        /* not committed: cleanup removes it */
    }
    assert_int_equal(count_temps(dir), 0);
    assert_false(fs_exists(path));
    {
        cleanup_atomic_file struct fs_atomic_file f = {0};
        assert_int_equal(fs_atomic_open(path, 0644, &f, &err), 0);
        assert_int_equal(write(f.fd, "abc", 3), 3);
        assert_int_equal(fs_atomic_commit(&f, &err), 0);
    }
    assert_true(fs_exists(path));
    assert_int_equal(count_temps(dir), 0);
    {
        /* zero-initialised and never opened: abort must not close fd 0 */
        struct fs_atomic_file f = {0};
        fs_atomic_abort(&f);
        assert_true(fcntl(0, F_GETFD) >= 0 || errno != EBADF);
    }
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_read_file_limits(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *path = fs_join(dir, "f");
    write_file(path, "0123456789");
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *a = NULL;
    size_t len;
    assert_int_equal(fs_read_file(path, 10, &a, &len, &err), 0);
    assert_int_equal(len, 10);
    cleanup_free char *b = NULL;
    assert_true(fs_read_file(path, 9, &b, &len, &err) < 0);
    assert_int_equal(berth_error_status(err), EFBIG);
    /* a file whose stat size says nothing (procfs) */
    cleanup_free char *c = NULL;
    assert_int_equal(fs_read_file("/proc/self/status", 1 << 20, &c, &len, &err), 0);
    assert_true(len > 0);
    cleanup_free char *d = NULL;
    assert_true(fs_read_file("/proc/self/status", 8, &d, &len, &err) < 0);
    assert_int_equal(berth_error_status(err), EFBIG);
    cleanup_free char *e = NULL;
    cleanup_free char *missing = fs_join(dir, "missing");
    berth_error_release(&err);
    assert_true(fs_read_file(missing, 8, &e, &len, &err) < 0);
    assert_int_equal(berth_error_status(err), ENOENT);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_rm_rf(void **state)
{
    (void)state;
    cleanup_free char *outside = make_tmpdir();
    cleanup_free char *victim = fs_join(outside, "victim");
    write_file(victim, "must survive");
    cleanup_free char *victim_dir = fs_join(outside, "vdir");
    assert_int_equal(mkdir(victim_dir, 0755), 0);
    cleanup_free char *victim_dir_file = fs_join(victim_dir, "inner");
    write_file(victim_dir_file, "must survive too");

    cleanup_free char *dir = make_tmpdir();
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *deep = fs_join(dir, "a/b/c/d");
    assert_int_equal(fs_mkdir_p(deep, 0755, &err), 0);
    assert_int_equal(fs_mkdir_p(deep, 0755, &err), 0); /* idempotent */
    cleanup_free char *f1 = fs_join(dir, "a/b/file");
    write_file(f1, "x");
    cleanup_free char *f2 = fs_join(dir, "a/b/c/d/file");
    write_file(f2, "y");
    cleanup_free char *l1 = fs_join(dir, "a/link-file");
    assert_int_equal(symlink(victim, l1), 0);
    cleanup_free char *l2 = fs_join(dir, "a/b/link-dir");
    assert_int_equal(symlink(victim_dir, l2), 0);
    cleanup_free char *l3 = fs_join(dir, "a/dangling");
    assert_int_equal(symlink("/nonexistent/x", l3), 0);
    /* a symlink as the top itself: only the link goes */
    assert_int_equal(fs_rm_rf(l2, &err), 0);
    assert_false(fs_exists(l2));
    assert_true(fs_exists(victim_dir_file));
    assert_int_equal(symlink(victim_dir, l2), 0);
    /* read-only and no-permission dirs, as layers may contain */
    cleanup_free char *c = fs_join(dir, "a/b/c");
    cleanup_free char *dd = fs_join(dir, "a/b/c/d");
    cleanup_free char *b = fs_join(dir, "a/b");
    assert_int_equal(chmod(dd, 0000), 0);
    assert_int_equal(chmod(c, 0555), 0);
    assert_int_equal(chmod(b, 0500), 0);

    assert_int_equal(fs_rm_rf(dir, &err), 0);
    assert_false(fs_exists(dir));
    assert_true(fs_exists(victim));
    assert_true(fs_exists(victim_dir_file));
    /* ENOENT is fine */
    assert_int_equal(fs_rm_rf(dir, &err), 0);
    assert_int_equal(fs_rm_rf(outside, &err), 0);
}

static void test_rm_rf_symlinked_dir_inside(void **state)
{
    (void)state;
    cleanup_free char *outside = make_tmpdir();
    cleanup_free char *victim = fs_join(outside, "keep");
    write_file(victim, "k");
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *l = fs_join(dir, "to-outside");
    assert_int_equal(symlink(outside, l), 0);
    cleanup_free char *l2 = fs_join(dir, "to-root");
    assert_int_equal(symlink("/", l2), 0);
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_rm_rf(dir, &err), 0);
    assert_true(fs_exists(victim));
    assert_int_equal(fs_rm_rf(outside, &err), 0);
}

static void test_rm_rf_mount_point(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *mnt = fs_join(dir, "mnt");
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
        rmdir(mnt);
        rmdir(dir);
        skip();
    }
    cleanup_free char *inner = fs_join(mnt, "precious");
    write_file(inner, "p");
    cleanup_error berth_error_t err = NULL;
    int r = fs_rm_rf(dir, &err);
    bool survived = fs_exists(inner);
    berth_error_t err2 = NULL;
    int r2 = fs_rm_rf(mnt, &err2); /* the mount root itself is refused too */
    berth_error_release(&err2);
    bool survived2 = fs_exists(inner);
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
    assert_true(r < 0);
    assert_int_equal(berth_error_status(err), EBUSY);
    assert_true(survived);
    assert_true(r2 < 0);
    assert_true(survived2);
    berth_error_release(&err);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_tree_size(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *f = fs_join(dir, "f");
    char big[10000];
    memset(big, 'x', sizeof(big));
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fwrite(big, 1, sizeof(big), fp);
    fclose(fp);
    cleanup_free char *h = fs_join(dir, "hardlink");
    assert_int_equal(link(f, h), 0);
    cleanup_free char *l = fs_join(dir, "sym");
    assert_int_equal(symlink("/usr", l), 0);
    uint64_t disk = 0, apparent = 0;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(fs_tree_size(dir, &disk, &apparent, &err), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    /* file once (hard link not double counted) + dir + symlink's target string */
    assert_int_equal(apparent, 10000 + (uint64_t)st.st_size + 4);
    assert_true(disk >= 10000);
    assert_true(fs_tree_size("/nonexistent-berth", &disk, &apparent, &err) == 0 ||
                berth_error_status(err) == ENOENT);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_join(void **state)
{
    (void)state;
    cleanup_free char *a = fs_join("/a/", "/b");
    cleanup_free char *b = fs_join("a", "b/c");
    cleanup_free char *c = fs_join("/", "x");
    assert_string_equal(a, "/a/b");
    assert_string_equal(b, "a/b/c");
    assert_string_equal(c, "/x");
}

/* the mark advances only in FS_WRITEBACK_STEP strides; a pipe (where the kernel refuses the
 * request) is harmless and the data written is untouched */
static void test_writeback_progress(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *path = fs_join(dir, "f");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    cleanup_free char *buf = xmalloc(1024 * 1024);
    memset(buf, 'x', 1024 * 1024);
    int64_t mark = 0, total = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(write(fd, buf, 1024 * 1024), 1024 * 1024);
        total += 1024 * 1024;
        fs_writeback_progress(fd, &mark, total);
        assert_true(mark <= total && total - mark < FS_WRITEBACK_STEP);
    }
    assert_int_equal(mark, 2 * FS_WRITEBACK_STEP);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, total);
    int p[2];
    assert_int_equal(pipe(p), 0);
    mark = 0;
    fs_writeback_progress(p[1], &mark, FS_WRITEBACK_STEP);
    assert_int_equal(mark, FS_WRITEBACK_STEP);
    close(p[0]);
    close(p[1]);
    cleanup_error berth_error_t e = NULL;
    assert_int_equal(fs_rm_rf(dir, &e), 0);
}

static void make_aged(const char *dir, const char *name, int age_s)
{
    cleanup_free char *p = fs_join(dir, name);
    write_file(p, "x");
    struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static bool present(const char *dir, const char *name)
{
    cleanup_free char *p = fs_join(dir, name);
    return access(p, F_OK) == 0;
}

/* only "<name>.tmp-<dead pid>-XXXXXX" files older than FS_STALE_TEMP_AGE go */
static void test_remove_stale_temps(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    char dead[64], young[64], live[64], other[64], bad[64];
    snprintf(dead, sizeof(dead), "f.tmp-%d-abcdef", (int)child);
    snprintf(young, sizeof(young), "f.tmp-%d-ghijkl", (int)child);
    snprintf(live, sizeof(live), "f.tmp-%d-mnopqr", (int)getpid());
    snprintf(other, sizeof(other), "g.tmp-%d-abcdef", (int)child);
    snprintf(bad, sizeof(bad), "f.tmp-%d-abcdefg", (int)child);
    make_aged(dir, dead, FS_STALE_TEMP_AGE + 60);
    make_aged(dir, young, 10);
    make_aged(dir, live, FS_STALE_TEMP_AGE + 60);
    make_aged(dir, other, FS_STALE_TEMP_AGE + 60);
    make_aged(dir, bad, FS_STALE_TEMP_AGE + 60);
    make_aged(dir, "f", FS_STALE_TEMP_AGE + 60);
    cleanup_free char *f = fs_join(dir, "f");
    fs_remove_stale_temps_at(AT_FDCWD, f);
    assert_false(present(dir, dead));
    assert_true(present(dir, young));
    assert_true(present(dir, live));
    assert_true(present(dir, other));
    assert_true(present(dir, bad));
    assert_true(present(dir, "f"));
    /* NULL: any file's temps in the directory */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    fs_remove_stale_temps_at(dfd, NULL);
    close(dfd);
    assert_false(present(dir, other));
    assert_true(present(dir, young));
    assert_true(present(dir, live));
    assert_true(present(dir, bad));
    /* the atomic writers name their temps so that this applies to them */
    struct fs_atomic_file af;
    cleanup_error berth_error_t e2 = NULL;
    assert_int_equal(fs_atomic_open(f, 0644, &af, &e2), 0);
    char want[64];
    snprintf(want, sizeof(want), "/f.tmp-%d-", (int)getpid());
    const char *at = strstr(af.tmp_path, want);
    assert_non_null(at);
    assert_int_equal(strlen(at + strlen(want)), 6);
    fs_atomic_abort(&af);
    cleanup_error berth_error_t e = NULL;
    assert_int_equal(fs_rm_rf(dir, &e), 0);
}

/* ---- user-named outputs ---- */

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    berth_error_t err = NULL;
    assert_int_equal(fs_read_file(path, 1 << 20, &buf, &len, &err), 0);
    return buf;
}

/* A child that reads the FIFO (or accepts on the socket) into `out`; returns its pid. */
static pid_t reader_child(const char *path, const char *out, int listen_fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = listen_fd >= 0 ? accept(listen_fd, NULL, NULL) : open(path, O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0)
            _exit(1);
        char buf[4096];
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
            if (write(o, buf, (size_t)n) != n)
                _exit(1);
        _exit(n < 0 ? 1 : 0);
    }
    return pid;
}

static void wait_ok(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_output_regular_and_symlink(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *f = fs_join(dir, "out");
    cleanup_error berth_error_t err = NULL;
    /* new and existing regular files: atomic replace (a new inode), no temps left */
    assert_int_equal(fs_write_output(f, "one", 3, 0644, &err), 0);
    struct stat a, b;
    assert_int_equal(stat(f, &a), 0);
    assert_int_equal(fs_write_output(f, "two", 3, 0644, &err), 0);
    assert_int_equal(stat(f, &b), 0);
    assert_true(a.st_ino != b.st_ino);
    cleanup_free char *c = slurp(f);
    assert_string_equal(c, "two");
    /* a symlink (relative, through another symlink) is followed: links stay links */
    cleanup_free char *l1 = fs_join(dir, "l1");
    cleanup_free char *l2 = fs_join(dir, "l2");
    assert_int_equal(symlink("l2", l1), 0);
    assert_int_equal(symlink("out", l2), 0);
    assert_int_equal(fs_write_output(l1, "three", 5, 0644, &err), 0);
    assert_int_equal(lstat(l1, &a), 0);
    assert_true(S_ISLNK(a.st_mode));
    assert_int_equal(lstat(l2, &a), 0);
    assert_true(S_ISLNK(a.st_mode));
    cleanup_free char *c2 = slurp(f);
    assert_string_equal(c2, "three");
    /* a dangling symlink: its target is created */
    cleanup_free char *dl = fs_join(dir, "dangling");
    cleanup_free char *dt = fs_join(dir, "created");
    assert_int_equal(symlink(dt, dl), 0);
    assert_int_equal(fs_write_output(dl, "four", 4, 0644, &err), 0);
    cleanup_free char *c3 = slurp(dt);
    assert_string_equal(c3, "four");
    cleanup_free char *res = NULL;
    assert_int_equal(fs_output_resolve(l1, &res, &err), 0);
    assert_string_equal(res, f);
    /* a symlink loop and a directory are errors */
    cleanup_free char *loop = fs_join(dir, "loop");
    assert_int_equal(symlink("loop", loop), 0);
    assert_int_equal(fs_write_output(loop, "x", 1, 0644, &err), -1);
    assert_int_equal(berth_error_status(err), ELOOP);
    berth_error_release(&err);
    assert_int_equal(fs_write_output(dir, "x", 1, 0644, &err), -1);
    assert_int_equal(berth_error_status(err), EISDIR);
    berth_error_release(&err);
    /* an aborted output leaves nothing */
    cleanup_free char *g = fs_join(dir, "aborted");
    struct fs_output o cleanup_output = {.fd = -1, .target_fd = -1};
    assert_int_equal(fs_output_open(g, 0644, FS_OUTPUT_SEEKABLE, &o, &err), 0);
    assert_int_equal(write(o.fd, "x", 1), 1);
    fs_output_abort(&o);
    assert_false(fs_exists(g));
    assert_int_equal(count_temps(dir), 0);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_output_devices_fifos_sockets(void **state)
{
    (void)state;
    cleanup_free char *dir = make_tmpdir();
    cleanup_error berth_error_t err = NULL;
    /* /dev/null (through a symlink too) is written in place and stays a device */
    cleanup_free char *ln = fs_join(dir, "null-link");
    assert_int_equal(symlink("/dev/null", ln), 0);
    assert_int_equal(fs_write_output("/dev/null", "x", 1, 0644, &err), 0);
    assert_int_equal(fs_write_output(ln, "x", 1, 0644, &err), 0);
    struct stat st;
    assert_int_equal(lstat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(count_temps("/dev"), 0);

    /* a FIFO with a reader gets the bytes; a seekable output written out of order reaches it
     * in order at commit */
    cleanup_free char *fifo = fs_join(dir, "fifo");
    cleanup_free char *got = fs_join(dir, "got");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t r = reader_child(fifo, got, -1);
    assert_int_equal(fs_write_output(fifo, "via fifo", 8, 0644, &err), 0);
    wait_ok(r);
    cleanup_free char *c = slurp(got);
    assert_string_equal(c, "via fifo");
    r = reader_child(fifo, got, -1);
    struct fs_output o cleanup_output = {.fd = -1, .target_fd = -1};
    assert_int_equal(fs_output_open(fifo, 0644, FS_OUTPUT_SEEKABLE, &o, &err), 0);
    assert_true(o.in_place);
    assert_int_equal(pwrite(o.fd, "world", 5, 6), 5);
    assert_int_equal(pwrite(o.fd, "hello ", 6, 0), 6);
    assert_int_equal(fs_output_commit(&o, &err), 0);
    wait_ok(r);
    cleanup_free char *c2 = slurp(got);
    assert_string_equal(c2, "hello world");
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    /* /dev/fd/N and /proc/self/fd/N name open files: a pipe is written, a regular file is
     * truncated and written in place (not replaced through /proc) */
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", pp[1]);
    assert_int_equal(fs_write_output(fdpath, "via pipe", 8, 0644, &err), 0);
    close(pp[1]);
    char pb[16] = {0};
    assert_int_equal(read(pp[0], pb, sizeof(pb)), 8);
    assert_string_equal(pb, "via pipe");
    close(pp[0]);
    cleanup_free char *reg = fs_join(dir, "reg");
    write_file(reg, "longer old content");
    int rfd = open(reg, O_WRONLY);
    assert_true(rfd >= 0);
    struct stat before, after;
    assert_int_equal(stat(reg, &before), 0);
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", rfd);
    assert_int_equal(fs_write_output(fdpath, "new", 3, 0644, &err), 0);
    close(rfd);
    assert_int_equal(stat(reg, &after), 0);
    assert_true(before.st_ino == after.st_ino);
    cleanup_free char *rc = slurp(reg);
    assert_string_equal(rc, "new");

    /* a unix socket is connected to */
    cleanup_free char *sock = fs_join(dir, "sock");
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    r = reader_child(sock, got, lfd);
    assert_int_equal(fs_write_output(sock, "via socket", 10, 0644, &err), 0);
    wait_ok(r);
    close(lfd);
    cleanup_free char *c3 = slurp(got);
    assert_string_equal(c3, "via socket");
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(count_temps(dir), 0);
    assert_int_equal(fs_rm_rf(dir, &err), 0);
}

/* fs_read_fd is the one bounded read (it replaced the loops of registries.conf, the registry
 * client's CA files, run/spec.c, run/cgroup.c, build/ignore.c, build/containerfile.c and the
 * credential helper's pipe).  Pipes and /proc files announce no size: run/cgroup.c's copy cut
 * /proc/self/mountinfo at 1 MiB without a word, so cgroup mounts listed after the cut were
 * never found.  Here: content past 1 MiB arrives whole, and past max is EFBIG, not a cut. */
static void write_pattern_in_child(int wfd, size_t n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char chunk[4096];
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (char)('a' + i % 26);
        size_t left = n;
        while (left > 0) {
            size_t k = left < sizeof(chunk) ? left : sizeof(chunk);
            if (write(wfd, chunk, k) != (ssize_t)k)
                _exit(1);
            left -= k;
        }
        _exit(0);
    }
    close(wfd);
}

static void test_read_fd_bounded(void **state)
{
    const size_t big = 3u * 1024 * 1024 + 17; /* more than the old 1 MiB cut */
    int p[2];
    assert_int_equal(pipe(p), 0);
    write_pattern_in_child(p[1], big);
    char *buf = NULL;
    size_t len = 0;
    berth_error_t err = NULL;
    assert_int_equal(fs_read_fd(p[0], 64u << 20, "pipe", &buf, &len, &err), 0);
    assert_int_equal(len, big);
    assert_int_equal(buf[len], '\0');
    assert_int_equal(buf[big - 1], (char)('a' + (big - 1) % 4096 % 26));
    free(buf);
    close(p[0]);
    while (wait(NULL) > 0)
        ;

    /* exactly max is fine; one byte more is EFBIG naming the source */
    assert_int_equal(pipe(p), 0);
    write_pattern_in_child(p[1], 5000);
    assert_int_equal(fs_read_fd(p[0], 5000, "pipe", &buf, &len, &err), 0);
    assert_int_equal(len, 5000);
    free(buf);
    close(p[0]);
    while (wait(NULL) > 0)
        ;
    assert_int_equal(pipe(p), 0);
    write_pattern_in_child(p[1], 5001);
    buf = NULL;
    assert_int_equal(fs_read_fd(p[0], 5000, "helper output", &buf, &len, &err), -1);
    assert_int_equal(berth_error_status(err), EFBIG);
    assert_non_null(strstr(berth_error_msg(err), "helper output"));
    assert_null(buf);
    berth_error_release(&err);
    close(p[0]);
    while (wait(NULL) > 0)
        ;

    /* a real /proc file with no size in stat: read whole */
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fs_read_fd(fd, 64u << 20, "/proc/self/mountinfo", &buf, &len, &err), 0);
    assert_true(len > 0);
    assert_int_equal(strlen(buf), len);
    free(buf);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_atomic_write_unwritable_dir),
        cmocka_unit_test(test_atomic_file),
        cmocka_unit_test(test_read_file_limits),
        cmocka_unit_test(test_read_fd_bounded),
        cmocka_unit_test(test_rm_rf),
        cmocka_unit_test(test_rm_rf_symlinked_dir_inside),
        cmocka_unit_test(test_rm_rf_mount_point),
        cmocka_unit_test(test_tree_size),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_writeback_progress),
        cmocka_unit_test(test_remove_stale_temps),
        cmocka_unit_test(test_output_regular_and_symlink),
        cmocka_unit_test(test_output_devices_fifos_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
