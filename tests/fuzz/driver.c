/* Replays inputs through LLVMFuzzerTestOneInput for builds without libFuzzer (gcc, the ASan
 * build): each argument is a file or a directory of files.  A crash or sanitizer report fails
 * the test like it would under libFuzzer. */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int run_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "open %s failed\n", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    ssize_t n;
    while (buf && (n = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    close(fd);
    if (!buf)
        abort();
    /* An exact-size heap copy so ASan sees reads past the end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact)
        abort();
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

/* Defined by targets that need set-up, as libFuzzer allows. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

int main(int argc, char **argv)
{
    int ran = 0, failed = 0;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            failed |= run_file(argv[i]) < 0;
            ran++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            size_t n = strlen(argv[i]) + strlen(e->d_name) + 2;
            char *p = malloc(n);
            if (!p)
                abort();
            snprintf(p, n, "%s/%s", argv[i], e->d_name);
            failed |= run_file(p) < 0;
            ran++;
            free(p);
        }
        closedir(d);
    }
    fprintf(stderr, "%d inputs replayed\n", ran);
    return failed || ran == 0 ? 1 : 0;
}
